# SPDX-License-Identifier: Apache-2.0
"""schedules/<name> and executions/: cron schedules stored in the backend,
run by the daemon as snapshots, each slot once however many daemons mount
the backend; retention of a schedule's own backups.

The tests that watch schedules fire wait for real minute boundaries (a
cron slot is a minute): they are slow by nature, never timed."""

import errno
import json
import os
import time

import pytest

from conftest import create_job_file
from faultproxy import FaultProxy

SLOT_WAIT = 100  # a slot's execution is recorded this long after it


def sched(m, name, inst="vol1"):
    return m.inst(inst) / "schedules" / name


def write_file(path, data):
    """What `echo DATA > path` does: 0 or the errno of the failing step."""
    return create_job_file(path, data, trunc=True)


def executions(m, inst="vol1"):
    return os.listdir(m.inst(inst) / "executions")


def execution(m, eid, inst="vol1"):
    with open(m.inst(inst) / "executions" / eid, "rb") as f:
        return json.loads(f.read())


def slot_of(util, eid):
    """Epoch seconds of an execution id's slot (…-YYYYMMDDTHHMMZ)."""
    s = eid[-14:]
    return util.ts_epoch("%s-%s-%sT%s:%s:00Z" % (s[0:4], s[4:6], s[6:8],
                                                 s[9:11], s[11:13]))


def wait_second_of_minute(lo, hi):
    """Sleep until the wall clock's second of the minute is in [lo, hi]."""
    while not lo <= time.time() % 60 <= hi:
        time.sleep(0.5)


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.5)
    pytest.fail("timed out after %d s waiting for %s" % (timeout, what))


def finished(m, inst="vol1"):
    """{id: record} of executions no longer running."""
    out = {}
    for eid in executions(m, inst):
        try:
            rec = execution(m, eid, inst)
        except FileNotFoundError:
            continue
        if rec["state"] != "running":
            out[eid] = rec
    return out


def scheduled_backups(util, m, name, inst="vol1"):
    """Timestamps of backups whose label says schedule name made them."""
    return [ts for ts in m.backups(inst)
            if util.xattr(m.backup(ts, inst), "label").startswith(name + "-")]


# ---- schedules/ through the mount ----


def test_echo_redirect_creates_schedule(util, mnt):
    p = sched(mnt, "nightly")
    r = util.run(["sh", "-c", "echo '0 3 * * *' > '%s'" % p])
    assert r.returncode == 0, r.describe()
    s = util.read_json(p)
    assert s["name"] == "nightly" and s["instance"] == "vol1", s
    assert s["pattern"] == "0 3 * * *", s
    assert s["keep"] == 0 and s["strategy"] == {} and s["description"] == ""
    assert s["next_execution_time"].endswith("T03:00:00Z"), s
    assert util.ts_epoch(s["next_execution_time"]) > time.time()
    assert s["created_at"] == s["updated_at"]
    assert os.listdir(mnt.inst() / "schedules") == ["nightly"]
    assert oct(os.stat(p).st_mode & 0o777) == oct(0o644)


def test_cp_json_then_tee_replaces(util, mnt, tmp_path):
    src = tmp_path / "weekly.json"
    src.write_text(json.dumps({"pattern": "30 2 * * sun", "keep": 3,
                               "description": "weekly full",
                               "strategy": {"snapshot": "copy"}}))
    p = sched(mnt, "weekly")
    r = util.run(["cp", str(src), str(p)])
    assert r.returncode == 0, r.describe()
    s = util.read_json(p)
    assert s["pattern"] == "30 2 * * SUN" and s["keep"] == 3, s
    assert s["strategy"] == {"snapshot": "copy"}, s
    assert s["description"] == "weekly full"
    nxt = util.ts_epoch(s["next_execution_time"])
    assert time.gmtime(nxt).tm_wday == 6 and s["next_execution_time"] \
        .endswith("T02:30:00Z"), s
    time.sleep(1.1)
    r = util.run(["sh", "-c", "echo @hourly | tee '%s' >/dev/null" % p])
    assert r.returncode == 0, r.describe()
    s2 = util.read_json(p)
    assert s2["pattern"] == "@hourly" and s2["keep"] == 0, s2
    assert s2["created_at"] == s["created_at"], (s, s2)
    assert s2["updated_at"] > s["updated_at"], (s, s2)
    assert s2["next_execution_time"].endswith(":00:00Z"), s2


@pytest.mark.parametrize("bad", [
    "0 25 * * *", "* * * *", "61 * * * *", "0 0 * 13 *", "@reboot",
    '{"keep": 2}', '{"pattern": "@daily", "retention": 1}',
    '{"pattern": "@daily", "keep": -1}', '{"pattern": "@daily"',
    '{"pattern": "@daily", "strategy": {"snapshot": "bogus"}}', "",
])
def test_invalid_schedule_is_einval(util, mnt, bad):
    p = sched(mnt, "bad")
    if bad:
        assert write_file(p, bad) == errno.EINVAL
    else:  # created, nothing written, closed (no O_TRUNC: see README)
        assert util.create_job_file(p) == errno.EINVAL
    assert not p.exists()
    assert "bad" not in os.listdir(mnt.inst() / "schedules")


def test_invalid_replace_keeps_schedule(util, mnt):
    p = sched(mnt, "keepme")
    assert write_file(p, "15 4 * * *\n") == 0
    r = util.run(["sh", "-c", "/bin/echo '0 24 * * *' > '%s'" % p])
    assert r.returncode != 0, r.describe()
    assert util.read_json(p)["pattern"] == "15 4 * * *"
    assert "out of range" in mnt.log_text()


def test_rm_deletes_schedule(util, mnt):
    p = sched(mnt, "gone")
    assert write_file(p, "@daily") == 0
    os.unlink(p)
    assert not p.exists()
    assert util.errno_of(os.unlink, p) == errno.ENOENT
    assert util.errno_of(util.read_file, p) == errno.ENOENT


def test_executions_dir_is_read_only(util, mnt):
    d = mnt.inst() / "executions"
    assert os.listdir(d) == []
    assert write_file(d / "x-20260101T0000Z", "{}") in (errno.EPERM,
                                                          errno.EACCES)


def test_schedule_is_sealed_in_backend(util, mnt, vol1):
    assert write_file(sched(mnt, "sealed"), "17 5 * * *") == 0
    objs = vol1.objects("records/sched.vol1/")
    assert list(objs) == ["records/sched.vol1/sealed"], objs
    assert b"17 5" not in vol1.read_object("records/sched.vol1/sealed")


@pytest.mark.log_errors(r"failed authentication", r"is malformed")
def test_forged_schedule_is_refused(util, mnt, vol1):
    """A schedule object moved to another name (or instance) by someone
    with write access to the backend but not the key is not served."""
    assert write_file(sched(mnt, "real"), "17 5 * * *") == 0
    data = vol1.read_object("records/sched.vol1/real")
    vol1.write_object("records/sched.vol1/forged", data)
    assert util.errno_of(util.read_file, sched(mnt, "forged")) == errno.EIO
    vol1.write_object("records/sched.vol1/real", data[:-1] + bytes(
        [data[-1] ^ 1]))
    assert util.errno_of(util.read_file, sched(mnt, "real")) == errno.EIO


def test_schedule_seen_by_second_mount_and_after_remount(util, vol1,
                                                         tmp_path):
    m1 = vol1.mount()
    assert write_file(sched(m1, "shared"), "0 1 * * *") == 0
    cfg2 = vol1.write_config(tmp_path / "second.json",
                             state_dir=str(tmp_path / "state2"))
    m2 = vol1.mount(cfg=cfg2)
    assert util.read_json(sched(m2, "shared"))["pattern"] == "0 1 * * *"
    assert write_file(sched(m2, "from-two"), "0 2 * * *") == 0
    m1.remount()
    assert sorted(os.listdir(m1.inst() / "schedules")) == [
        "from-two", "shared"]
    assert util.read_json(sched(m1, "from-two"))["pattern"] == "0 2 * * *"
    os.unlink(sched(m1, "shared"))
    assert os.listdir(m2.inst() / "schedules") == ["from-two"]


# ---- execution ----


# The slots that pass on the wall clock are the suite's slowest minutes,
# so they pass once, on Swift, the production backend.  The scheduler is
# the same on both; what differs, the exclusive claim of a slot, is
# tested on a local repository in tests/unit/test_schedule.c and on
# Swift by two daemons below.
@pytest.mark.backends("swift")
@pytest.mark.bfs_timeout(420)
def test_every_minute_runs_each_slot_and_keeps_n(util, vol1):
    """A "* * * * *" schedule with keep 2 over three slots: three
    executions with the right slots, each a backup; retention leaves the
    schedule's newest two and every other backup (a manual one whose label
    looks like the schedule's included); executions_keep bounds the
    records."""
    vol1.extra["executions_keep"] = 2
    vol1.write_config()
    m = vol1.mount()
    # a hand-made backup whose label looks scheduled: retention must go by
    # the manifest, not the label
    lookalike, _ = util.snapshot_via_mount(m.inst(), "every-20200101T0000Z")
    manual = m.backups()
    wait_second_of_minute(5, 45)
    t0 = time.time()
    assert write_file(sched(m, "every"),
                      '{"pattern": "* * * * *", "keep": 2}') == 0
    first_slot = (int(t0) // 60 + 1) * 60

    def three_ended():
        ends = [e for e in util.read_events(m.inst())
                if e["event"] in ("schedule.execution.end",
                                  "schedule.execution.error")]
        return ends if len(ends) >= 3 else None
    ends = wait_for("three executions", three_ended, 3 * 60 + SLOT_WAIT)
    slots = [util.ts_epoch(e["slot"]) for e in ends[:3]]
    assert slots == [first_slot, first_slot + 60, first_slot + 120], ends
    for e in ends[:3]:
        assert e["event"] == "schedule.execution.end", e
        assert e["state"] == "completed" and e["schedule"] == "every", e
        assert util.ts_epoch(e["backup"]) >= util.ts_epoch(e["slot"]), e
    starts = [e for e in util.read_events(m.inst())
              if e["event"] == "schedule.execution.start"]
    assert [util.ts_epoch(e["slot"]) for e in starts[:3]] == slots

    # retention: the newest two of the schedule's, and every manual one
    made = [e["backup"] for e in ends[:3]]
    wait_for("retention", lambda: made[0] not in m.backups(), 60)
    assert set(made[1:]) <= set(m.backups())
    assert set(manual) <= set(m.backups())
    assert lookalike in m.backups()
    assert util.xattr(m.backup(made[2]), "label") == ends[2]["execution"]

    # executions: newest first, bounded by executions_keep
    def bounded():
        ids = executions(m)
        return ids if len(ids) == 2 and ends[0]["execution"] not in ids \
            else None
    ids = wait_for("executions trimmed to 2", bounded, 30)
    ids_sorted = sorted(ids, key=lambda i: slot_of(util, i), reverse=True)
    assert ids == ids_sorted
    rec = execution(m, ends[2]["execution"])
    assert rec["id"] == ends[2]["execution"] and rec["schedule"] == "every"
    assert rec["state"] == "completed" and rec["output"] == made[2], rec
    assert rec["slot"] == ends[2]["slot"] and rec["finished"], rec
    assert rec["started"] >= rec["slot"], rec
    # scheduled snapshots leave no job files behind in snapshots/
    assert "every-20200101T0000Z" in os.listdir(m.inst() / "snapshots")
    assert not [n for n in os.listdir(m.inst() / "snapshots")
                if n.startswith("every-") and n != "every-20200101T0000Z"]

    # rm of a record; the schedule stays
    os.unlink(sched(m, "every"))
    done = [i for i in executions(m) if execution(m, i)["state"] != "running"]
    os.unlink(m.inst() / "executions" / done[0])
    assert done[0] not in executions(m)
    assert util.errno_of(os.unlink, m.inst() / "executions" / done[0]) \
        == errno.ENOENT


# The catch-up rule is the scheduler's alone (see above).
@pytest.mark.backends("swift")
@pytest.mark.bfs_timeout(400)
def test_missed_slots_run_most_recent_once_at_mount(util, vol1):
    m = vol1.mount()
    wait_second_of_minute(2, 40)
    created = time.time()
    assert write_file(sched(m, "catchup"), "* * * * *") == 0
    problems = m.stop()
    assert not problems, problems
    first_missed = (int(created) // 60 + 1) * 60
    # two slots pass while nothing is mounted
    while time.time() < first_missed + 60 + 2:
        time.sleep(0.5)
    wait_second_of_minute(2, 30)
    mounted = time.time()
    m.start()
    ids = wait_for("the catch-up execution", lambda: finished(m), 40)
    assert len(ids) == 1, ids
    (eid, rec), = ids.items()
    assert slot_of(util, eid) == int(mounted) // 60 * 60, (eid, mounted)
    assert slot_of(util, eid) > first_missed
    assert rec["state"] == "completed", rec
    assert rec["output"] in m.backups()
    # once: a remount in the same minute does not run it again
    wait_second_of_minute(0, 40)
    minute = int(time.time()) // 60
    if minute * 60 == slot_of(util, eid):
        m.remount()
        time.sleep(6)
        if int(time.time()) // 60 == minute:
            assert list(finished(m)) == [eid]


@pytest.mark.backends("swift")  # two hosts share a backend: Swift's job
@pytest.mark.bfs_timeout(420)
def test_two_daemons_run_each_slot_once(util, vol1, tmp_path):
    """Two daemons (two state dirs) mounting one container with one key:
    each slot is claimed by exactly one of them."""
    m1 = vol1.mount()
    cfg2 = vol1.write_config(tmp_path / "second.json",
                             state_dir=str(tmp_path / "state2"))
    m2 = vol1.mount(cfg=cfg2)
    wait_second_of_minute(5, 45)
    t0 = time.time()
    assert write_file(sched(m1, "twice"), "* * * * *") == 0
    first_slot = (int(t0) // 60 + 1) * 60

    def two_done():
        done = finished(m1)
        return done if len(done) >= 2 else None
    done = wait_for("two executions", two_done, 2 * 60 + SLOT_WAIT)
    time.sleep(3)
    slots = sorted(slot_of(util, i) for i in finished(m1))
    assert slots[:2] == [first_slot, first_slot + 60], slots
    starts = {}
    for m in (m1, m2):
        for e in util.read_events(m.inst()):
            if e["event"] == "schedule.execution.start":
                starts.setdefault(e["execution"], []).append(str(m.mnt))
    for eid in done:
        assert len(starts.get(eid, [])) == 1, (eid, starts)
        assert done[eid]["state"] == "completed", done[eid]
    # one backup per slot
    labels = [util.xattr(m1.backup(ts), "label") for ts in m1.backups()]
    for eid in done:
        assert labels.count(eid) == 1, (eid, labels)


@pytest.mark.backends("swift")  # a slow backend: the fault proxy's job
@pytest.mark.bfs_timeout(420)
def test_slot_skipped_while_previous_run_goes_on(util, env):
    """The first run's manifest PUT is answered 80 s late, so the run
    spans the next slot: that slot is recorded as skipped, the first
    completes, and the one after runs again."""
    fp = FaultProxy("http://127.0.0.1:8080")
    fp.start()
    try:
        env.swift_auth["auth_url"] = fp.url + "/auth/v1.0"
        env.backend_extra.update(timeout=150, deadline=300)
        env.add_instance("vol1", tree="sample")
        env.init()
        m = env.mount()
        wait_second_of_minute(5, 40)
        first = (int(time.time()) // 60 + 1) * 60
        fp.add_rule(method="PUT", path=r"manifests/vol1/", action="delay",
                    delay=80, count=1)
        assert write_file(sched(m, "slow"), "* * * * *") == 0

        def three():
            ends = {}
            for e in util.read_events(m.inst()):
                if e["event"] in ("schedule.execution.end",
                                  "schedule.execution.error"):
                    ends[util.ts_epoch(e["slot"])] = e
            return ends if {first, first + 60, first + 120} <= set(ends) \
                else None
        ends = wait_for("three slots", three, 3 * 60 + SLOT_WAIT)
        assert ends[first]["state"] == "completed", ends
        assert ends[first + 60]["state"] == "skipped", ends
        assert ends[first + 60]["event"] == "schedule.execution.error"
        assert "still going" in ends[first + 60]["error"], ends
        assert ends[first + 120]["state"] == "completed", ends
        rec = execution(m, ends[first + 60]["execution"])
        assert rec["state"] == "skipped" and rec["backup"] is None, rec
        assert "still going" in rec["output"], rec
        labels = [util.xattr(m.backup(ts), "label") for ts in m.backups()]
        assert ends[first + 60]["execution"] not in labels
        assert ends[first]["execution"] in labels
    finally:
        # unmount while Swift is still reachable through the proxy
        problems = [p for d in env.daemons for p in d.stop()]
        fp.stop()
    assert not problems, problems


@pytest.mark.backends("swift")  # a slow backend: the fault proxy's job
@pytest.mark.bfs_timeout(420)
def test_slot_waits_for_another_job(util, env):
    """A hand-made snapshot whose manifest PUT is answered 40 s late
    spans a slot that two schedules share: each run waits for the
    instance (for the hand-made job, then for the other schedule's) and
    completes in its slot; neither is skipped."""
    fp = FaultProxy("http://127.0.0.1:8080")
    fp.start()
    try:
        env.swift_auth["auth_url"] = fp.url + "/auth/v1.0"
        env.backend_extra.update(timeout=150, deadline=300)
        env.add_instance("vol1", tree="sample")
        env.init()
        m = env.mount()
        wait_second_of_minute(5, 30)
        slot = (int(time.time()) // 60 + 1) * 60
        for name in ("hourly", "daily"):
            assert write_file(sched(m, name), "* * * * *") == 0
        wait_second_of_minute(45, 50)
        assert time.time() < slot
        fp.add_rule(method="PUT", path=r"manifests/vol1/", action="delay",
                    delay=40, count=1)
        by_hand = m.inst() / "snapshots" / "by-hand"
        assert util.create_job_file(by_hand) == 0

        def both_ended():
            ends = {e["schedule"]: e for e in util.read_events(m.inst())
                    if e["event"] in ("schedule.execution.end",
                                      "schedule.execution.error")}
            return ends if len(ends) == 2 else None
        ends = wait_for("both runs of the slot", both_ended, 40 + SLOT_WAIT)
        job = util.wait_job(by_hand)
        assert job["state"] == "completed", job
        events = util.read_events(m.inst())
        hand_end = [e for e in events if e["event"] == "backup.create.end"
                    and e.get("label") == "by-hand"]
        assert len(hand_end) == 1, events
        for name, e in ends.items():
            assert e["event"] == "schedule.execution.end", ends
            assert util.ts_epoch(e["slot"]) == slot, ends
            rec = execution(m, e["execution"])
            assert rec["state"] == "completed", rec
            # it ran after the hand-made job, not beside it
            assert rec["backup"] > job["backup"], (rec, job)
            start, = [x for x in events
                      if x["event"] == "schedule.execution.start"
                      and x["schedule"] == name]
            assert start["time"] >= hand_end[0]["time"], (start, hand_end)
        assert len(set(ends[n]["backup"] for n in ends)) == 2, ends
    finally:
        # unmount while Swift is still reachable through the proxy
        problems = [p for d in env.daemons for p in d.stop()]
        fp.stop()
    assert not problems, problems


# ---- backupctl schedule / execution ----


def test_backupctl_schedule_commands(util, vol1):
    r = vol1.ctl("schedule", "create", "vol1", "nightly", "0 3 * * *",
                 "--keep", "7", "--description", "nightly full",
                 "--strategy", '{"snapshot": "copy"}')
    assert "0 3 * * *" in r.stdout, r.describe()
    r = vol1.ctl("--json", "schedule", "show", "vol1", "nightly")
    s = json.loads(r.stdout)
    assert (s["pattern"], s["keep"], s["description"], s["strategy"]) == \
        ("0 3 * * *", 7, "nightly full", {"snapshot": "copy"}), s
    assert s["next_execution_time"].endswith("T03:00:00Z"), s
    vol1.ctl("schedule", "create", "vol1", "hourly", "@hourly")
    r = vol1.ctl("schedule", "list", "vol1", "--json")
    assert [x["name"] for x in json.loads(r.stdout)] == ["hourly", "nightly"]
    r = vol1.ctl("schedule", "list")
    assert "nightly" in r.stdout and "@hourly" in r.stdout, r.describe()
    # the daemon sees what backupctl stored, and the other way round
    m = vol1.mount()
    assert util.read_json(sched(m, "nightly"))["keep"] == 7
    assert write_file(sched(m, "via-mount"), "5 5 * * *") == 0
    r = vol1.ctl("schedule", "show", "vol1", "via-mount")
    assert json.loads(r.stdout)["pattern"] == "5 5 * * *"
    vol1.ctl("schedule", "delete", "vol1", "hourly")
    assert not sched(m, "hourly").exists()
    # through the mount
    r = vol1.ctl("--mount", str(m.path), "schedule", "create", "vol1",
                 "m", "*/10 * * * *")
    assert util.read_json(sched(m, "m"))["pattern"] == "*/10 * * * *"
    r = vol1.ctl("--mount", str(m.path), "--json", "schedule", "list",
                 "vol1")
    assert [x["name"] for x in json.loads(r.stdout)] == [
        "m", "nightly", "via-mount"]
    vol1.ctl("--mount", str(m.path), "schedule", "delete", "vol1", "m")
    assert not sched(m, "m").exists()


@pytest.mark.parametrize("args,code", [
    (["schedule", "create", "vol1", "bad", "0 25 * * *"], 1),
    (["schedule", "create", "vol1", "bad", "@daily", "--keep", "x"], 2),
    (["schedule", "create", "vol1", "bad", "@daily", "--strategy", "{"], 2),
    (["schedule", "create", "vol1", "a..b", "@daily"], 1),
    # the files datastore of vol1 in this host's config refuses it
    (["schedule", "create", "vol1", "bad", "@daily", "--strategy",
      '{"snapshot": "teleport"}'], 1),
    (["schedule", "create", "vol1", "only-name"], 2),
    (["schedule", "show", "vol1", "missing"], 1),
    (["schedule", "delete", "vol1", "missing"], 1),
    (["schedule", "frobnicate"], 2),
    (["schedule"], 2),
    (["execution", "list"], 2),
    (["execution", "delete", "vol1", "missing-20260101T0000Z"], 1),
    (["execution", "delete", "vol1"], 2),
])
def test_backupctl_schedule_exit_codes(util, vol1, args, code):
    r = vol1.ctl(*args, check=False)
    assert r.returncode == code, r.describe()
    assert r.stderr.strip(), r.describe()
    r = vol1.ctl("schedule", "list", "vol1", "--json")
    assert json.loads(r.stdout) == []


def test_backupctl_help_without_config(util):
    for cmd in (["schedule", "--help"], ["schedule", "create", "--help"],
                ["execution", "--help"]):
        r = util.run([util.BACKUPCTL, *cmd])
        assert r.returncode == 0, r.describe()
        assert "usage: backupctl " + cmd[0] in r.stdout, r.describe()
    r = util.run([util.BACKUPCTL, "--help"])
    assert "schedule create" in r.stdout and "execution list" in r.stdout


@pytest.mark.bfs_timeout(300)
def test_backupctl_execution_commands(util, vol1):
    """A slot run by the daemon, seen and deleted with backupctl."""
    m = vol1.mount()
    wait_second_of_minute(5, 50)
    vol1.ctl("schedule", "create", "vol1", "ctl", "* * * * *")
    done = wait_for("an execution", lambda: finished(m), 60 + SLOT_WAIT)
    eid = list(done)[0]
    r = vol1.ctl("--json", "execution", "list", "vol1", "--schedule", "ctl")
    recs = json.loads(r.stdout)
    assert recs and recs[-1]["id"] == eid, recs
    assert recs[-1]["state"] == "completed", recs
    assert recs[-1]["output"] in m.backups()
    r = vol1.ctl("execution", "list", "vol1", "--schedule", "other")
    assert r.stdout == ""
    vol1.ctl("schedule", "delete", "vol1", "ctl")
    r = vol1.ctl("execution", "list", "vol1")
    assert eid in r.stdout and "completed" in r.stdout, r.describe()
    vol1.ctl("execution", "delete", "vol1", eid)
    assert eid not in executions(m)
    r = vol1.ctl("execution", "delete", "vol1", eid, check=False)
    assert r.returncode == 1, r.describe()
