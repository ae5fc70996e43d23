# SPDX-License-Identifier: Apache-2.0
"""status (JSON) and events (JSON lines) of an instance."""

import os
import re
import time

import pytest

ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def test_status_fields(util, mnt):
    st = util.status(mnt.inst())
    assert st["instance"] == "vol1"
    assert st["datastore"] == "files"
    assert st["state"] in util.STATES


def test_status_active_when_idle(util, mnt):
    assert util.status(mnt.inst())["state"] == "ACTIVE"


def test_status_read_twice(util, mnt):
    assert util.status(mnt.inst())["state"] == \
        util.status(mnt.inst())["state"]


def test_status_per_instance(util, env):
    env.add_instance("vol1")
    env.add_instance("vol2")
    env.init()
    m = env.mount()
    assert util.status(m.inst("vol2"))["instance"] == "vol2"
    assert util.status(m.inst("vol1"))["instance"] == "vol1"


def test_status_active_after_snapshot(util, mnt):
    util.snapshot_via_mount(mnt.inst(), "s1")
    assert util.wait_state(mnt.inst(), ("ACTIVE",))["state"] == "ACTIVE"


def test_events_are_json_lines_with_fields(util, mnt):
    util.snapshot_via_mount(mnt.inst(), "s1")
    events = util.read_events(mnt.inst())
    assert events
    for e in events:
        assert {"time", "event", "instance"} <= set(e), e
        assert e["instance"] == "vol1", e
        assert isinstance(e["event"], str) and e["event"], e


def test_event_time_is_iso8601(util, mnt):
    util.snapshot_via_mount(mnt.inst(), "s1")
    for e in util.read_events(mnt.inst()):
        assert isinstance(e["time"], str) and ISO_RE.match(e["time"]), e


def test_events_after_snapshot(util, mnt):
    ts, _ = util.snapshot_via_mount(mnt.inst(), "s1")
    names = [e["event"] for e in util.read_events(mnt.inst())]
    assert "backup.create.start" in names, names
    assert "backup.create.end" in names, names
    assert names.index("backup.create.start") < \
        names.index("backup.create.end")


def test_create_end_event_names_backup(util, mnt):
    ts, _ = util.snapshot_via_mount(mnt.inst(), "s1")
    ends = [e for e in util.read_events(mnt.inst())
            if e["event"] == "backup.create.end"]
    assert ends and ends[-1].get("backup") == ts, ends


def test_events_after_rm(util, mnt):
    ts = mnt.backups()[0]
    os.unlink(mnt.backup(ts))
    dels = [e for e in util.read_events(mnt.inst())
            if e["event"] == "backup.delete.end"]
    assert dels, util.read_events(mnt.inst())
    assert dels[-1].get("backup", ts) == ts, dels


def test_events_stay_in_their_instance(util, env):
    env.add_instance("vol1", tree="sample")
    env.add_instance("vol2", tree="sample")
    env.init()
    m = env.mount()
    before = util.read_events(m.inst("vol2"))
    util.snapshot_via_mount(m.inst("vol1"), "only-vol1")
    assert util.read_events(m.inst("vol2")) == before


def test_events_append_only(util, mnt):
    util.snapshot_via_mount(mnt.inst(), "s1")
    first = util.read_events(mnt.inst())
    util.snapshot_via_mount(mnt.inst(), "s2")
    second = util.read_events(mnt.inst())
    assert second[:len(first)] == first
    assert len(second) > len(first)


# --- state and progress while a (slow) snapshot runs


@pytest.fixture(scope="module")
def running(util, tmp_path_factory, backend):
    """A snapshot of 128 MiB of random data started through the mount;
    (job, status, job) samples taken while it ran, and the final job."""
    env = util.module_env(tmp_path_factory, "running", backend)
    with util.Watchdog(400, "the running-snapshot scenario"):
        env.add_instance("vol1", tree=lambda d: util.write_random(
            d / "random.bin", 128 * util.MiB, 5))
        env.init()
        m = env.mount()
        job = m.inst() / "snapshots" / "slow"
        assert util.create_job_file(job) == 0
        samples = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            before = util.read_json(job)
            if before["state"] != "running":
                break
            st = util.status(m.inst())
            after = util.read_json(job)
            samples.append((before, st, after))
            time.sleep(0.02)
        final = util.wait_job(job, timeout=120)
    yield samples, final
    util.finish_module_env(env)


def test_status_backup_while_snapshot_runs(running):
    samples, final = running
    assert final["state"] == "completed", final
    bracketed = [st for b, st, a in samples if a["state"] == "running"]
    if not bracketed:
        pytest.fail("the 128 MiB snapshot finished before it could be "
                    "observed running")
    assert all(st["state"] == "BACKUP" for st in bracketed), bracketed[:3]


def test_progress_while_snapshot_runs(running):
    samples, final = running
    progs = [b["progress"] for b, st, a in samples]
    if not progs:
        pytest.fail("the 128 MiB snapshot finished before it could be "
                    "observed running")
    for p in progs:
        assert p["done"] >= 0 and p["total"] >= 0, p
    dones = [p["done"] for p in progs]
    assert dones == sorted(dones), "progress went backwards: %r" % dones


def _running_progress(samples):
    """status's job progress of the samples bracketed by running jobs."""
    out = [st["job"]["progress"] for b, st, a in samples
           if a["state"] == "running" and st.get("job")]
    if not out:
        pytest.fail("the 128 MiB snapshot finished before it could be "
                    "observed running")
    return out


def test_status_progress_has_rate_eta_started(util, running):
    samples, final = running
    progs = _running_progress(samples)
    for p in progs:
        assert {"done", "total", "percent", "rate", "eta", "started"} <= \
            set(p), p
        assert isinstance(p["rate"], int) and p["rate"] >= 0, p
        assert p["eta"] is None or (isinstance(p["eta"], int) and
                                    p["eta"] >= 0), p
        assert util.TS_RE.match(p["started"]), p
    assert len({p["started"] for p in progs}) == 1, progs[:3]
    # once bytes flow there is a rate, and with a total an estimate
    assert any(p["rate"] > 0 for p in progs), progs[-3:]
    assert any(p["eta"] is not None for p in progs
               if p["total"] and p["done"] < p["total"]), progs[-3:]


def test_status_progress_consistent(running):
    samples, final = running
    for p in _running_progress(samples):
        if p["total"]:
            want = 100.0 * min(p["done"], p["total"]) / p["total"]
            assert abs(p["percent"] - want) < 0.01, p
        else:
            assert p["percent"] == 0, p
        assert 0 <= p["percent"] <= 100, p
        if p["eta"] is not None:
            assert p["done"] < p["total"] and p["rate"] > 0, p


def test_finished_job_eta_zero(running):
    samples, final = running
    assert final["progress"]["eta"] == 0, final
    assert final["progress"]["done"] > 0, final
