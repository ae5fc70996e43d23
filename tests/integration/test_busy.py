# SPDX-License-Identifier: Apache-2.0
"""While a restore of an instance runs, a second restore or a snapshot of
it gets EBUSY, and reading backups/ still works.

One scenario (a ~200 MB restore copied into restore/ from a thread) runs
once for the module; each test checks one thing it observed."""

import errno
import os
import threading
import time

import pytest

FILES = 200     # x 1 MiB


def fill_big(util):
    block = util.make_text(util.MiB, 99)

    def fill(d):
        util.make_sample_tree(d)
        (d / "big").mkdir()
        for i in range(FILES):
            (d / "big" / ("f%03d" % i)).write_bytes(
                b"%016d" % i + block[16:])
    return fill


def in_restore(st):
    return st.get("state") in ("RESTORE", "MAINTENANCE")


@pytest.fixture(scope="module")
def scenario(util, tmp_path_factory, backend):
    env = util.module_env(tmp_path_factory, "busy", backend)
    with util.Watchdog(600, "the busy scenario"):
        obs = run_scenario(util, env)
    yield obs
    # refusing a job with EBUSY is an expected condition, not an error;
    # tolerate a daemon that logs it anyway
    util.finish_module_env(env, [r"(?i)busy|locked|in progress|maintenance"])


def run_scenario(util, env):
    src = env.add_instance("vol1", tree=fill_big(util))
    env.init()
    env.snapshot("vol1", label="big")
    want = util.tree_of_dir(src)
    for i in range(0, FILES, 2):
        (src / "big" / ("f%03d" % i)).unlink()
    (src / "added-later").write_text("x\n")
    m = env.mount()
    inst = m.inst()
    ts = m.backups()[0]
    backup = m.backup(ts)
    size = os.stat(backup).st_size
    probes = [(0, util.MiB), (size // 2, util.MiB), (size - 1000, 4000)]
    fd = os.open(backup, os.O_RDONLY)
    try:
        expect = [os.pread(fd, n, off) for off, n in probes]
    finally:
        os.close(fd)

    obs = {"want": want, "src": src, "mount": m, "backups_before":
           m.backups(), "size": size}
    result = {}

    def restore():
        result["errno"] = util.restore_errno(backup, inst / "restore" / "big")
        result["end"] = time.monotonic()

    t = threading.Thread(target=restore, daemon=True)
    t.start()
    deadline = time.monotonic() + 300
    while t.is_alive() and time.monotonic() < deadline:
        st = util.status(inst)
        if in_restore(st):
            obs["status"] = st
            break
        time.sleep(0.02)
    if "status" in obs:
        obs["snapshot_errno"] = util.create_job_file(
            inst / "snapshots" / "during-restore")
        obs["snapshot_while_running"] = t.is_alive()
        obs["restore2_errno"] = second_restore(util, backup,
                                               inst / "restore" / "second")
        obs["restore2_while_running"] = t.is_alive()
        try:
            listing = os.listdir(inst / "backups")
            fd = os.open(backup, os.O_RDONLY)
            try:
                got = [os.pread(fd, n, off) for off, n in probes]
            finally:
                os.close(fd)
            obs["read_ok"] = (ts in listing and got == expect)
        except OSError as e:
            obs["read_ok"] = False
            obs["read_error"] = e
        obs["read_while_running"] = t.is_alive()
    t.join(max(1, deadline - time.monotonic()))
    if t.is_alive():
        pytest.fail("the restore did not finish within 300 s")
    obs["restore_errno"] = result.get("errno")
    obs["tree_after"] = util.tree_of_dir(src)
    obs["status_after"] = util.wait_state(inst, ("ACTIVE",))
    obs["backups_after"] = m.backups()
    return obs


def second_restore(util, backup, dest):
    """Start a second restore: open, write a MiB of a backup, close."""
    with open(backup, "rb") as f:
        head = f.read(util.MiB)
    return util.create_job_file(dest, head, trunc=True)


def require_observed(obs):
    if "status" not in obs:
        pytest.fail("status never showed RESTORE or MAINTENANCE while the "
                    "restore ran (copy finished: %r)" % obs.get(
                        "restore_errno"))


def test_status_shows_restore_while_running(scenario):
    require_observed(scenario)
    assert scenario["status"]["state"] in ("RESTORE", "MAINTENANCE")


def test_snapshot_during_restore_is_ebusy(scenario):
    require_observed(scenario)
    e = scenario["snapshot_errno"]
    if e == 0 and not scenario["snapshot_while_running"]:
        pytest.fail("inconclusive: the restore ended before the snapshot "
                    "attempt, which succeeded")
    assert e == errno.EBUSY, os.strerror(e) if e else "snapshot accepted"


def test_second_restore_during_restore_is_ebusy(scenario):
    require_observed(scenario)
    e = scenario["restore2_errno"]
    if e != errno.EBUSY and not scenario["restore2_while_running"]:
        pytest.fail("inconclusive: the restore ended before the second "
                    "restore attempt (%s)" % (os.strerror(e) if e else "ok"))
    assert e == errno.EBUSY, os.strerror(e) if e else "restore accepted"


def test_reading_backups_during_restore_works(scenario):
    require_observed(scenario)
    assert scenario["read_ok"], scenario.get("read_error")


def test_big_restore_succeeds(scenario):
    assert scenario["restore_errno"] == 0, os.strerror(
        scenario["restore_errno"] or 0)


def test_big_restore_result(util, scenario):
    util.assert_same_tree(scenario["tree_after"], scenario["want"],
                          "source after the big restore")


def test_no_backup_made_during_restore(scenario):
    assert scenario["backups_after"] == scenario["backups_before"]


def test_active_after_big_restore(scenario):
    assert scenario["status_after"]["state"] == "ACTIVE"


def test_restore_dir_empty_after_big_restore(scenario):
    inst = scenario["mount"].inst()
    assert os.listdir(inst / "restore") == []
