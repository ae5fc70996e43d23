# SPDX-License-Identifier: Apache-2.0
"""The daemon killed with SIGKILL in the middle of a snapshot or a restore.

After a remount on the same state directory: the temporary snapshot is
gone, no partial backup is visible, the interrupted job says so, and an
interrupted restore left the instance whole (the old tree or the new one,
never a mix, and no staging directory behind)."""

import os
import signal
import subprocess
import time

import pytest

FILES = 160     # x 1 MiB of random data: long enough a job to kill mid-way

pytestmark = pytest.mark.log_errors(r"(?i)interrupted")


def fill_big(util):
    def fill(d):
        util.make_sample_tree(d)
        (d / "big").mkdir()
        for i in range(FILES):
            util.write_random(d / "big" / ("f%03d" % i), util.MiB, i)
    return fill


def kill_daemon(util, m):
    """SIGKILL the daemon's group, then clear the dead mount."""
    util._killpg(m.proc.pid, signal.SIGKILL)
    m.proc.wait(30)
    r = util.run([util.FUSERMOUNT, "-u", m.mnt], timeout=60)
    assert r.returncode == 0, r.describe()
    m._forget()


def leftovers(base, marker):
    """Paths under base whose name contains marker (temporaries)."""
    found = []
    for root, dirs, files in os.walk(base):
        for name in dirs + files:
            if marker in name:
                found.append(os.path.join(root, name))
    return found


def wait_until(pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.01)
    pytest.fail("timed out waiting for " + what)


@pytest.fixture(scope="module")
def killed_snapshot(util, tmp_path_factory, backend):
    """A snapshot (copy mode) killed while its temporary copy exists."""
    env = util.module_env(tmp_path_factory, "crash-snap", backend)
    with util.Watchdog(600, "the killed snapshot"):
        env.add_instance("vol1", tree=fill_big(util), snapshot="copy")
        env.init()
        env.snapshot("vol1", label="before")
        m = env.mount()
        inst = m.inst()
        assert util.create_job_file(inst / "snapshots" / "doomed") == 0
        wait_until(lambda: leftovers(env.base, "backupfs-snap"),
                   "the temporary snapshot to appear")
        kill_daemon(util, m)
        obs = {"snap_at_kill": leftovers(env.base, "backupfs-snap")}
        m2 = env.mount()
        inst = m2.inst()
        obs["leftovers"] = leftovers(env.base, "backupfs-snap")
        obs["backups"] = m2.backups()
        obs["job"] = util.read_json(inst / "snapshots" / "doomed")
        obs["events"] = util.read_events(inst)
        obs["status"] = util.status(inst)
        # manifest objects are named <timestamp>_<size>
        obs["manifests"] = sorted(
            n.rsplit("/", 1)[1].rsplit("_", 1)[0]
            for n in env.objects("manifests/vol1/"))
        # the instance works again: a new snapshot completes
        obs["after"] = util.snapshot_via_mount(inst, "after")[1]
    yield obs
    util.finish_module_env(env, [r"(?i)interrupted"])


def test_killed_snapshot_had_a_temporary_snapshot(killed_snapshot):
    assert killed_snapshot["snap_at_kill"], \
        "the kill came too late to test anything"


def test_killed_snapshot_temporary_removed(killed_snapshot):
    assert killed_snapshot["leftovers"] == []


def test_killed_snapshot_no_partial_backup(killed_snapshot):
    assert len(killed_snapshot["backups"]) == 1
    assert killed_snapshot["manifests"] == killed_snapshot["backups"]


def test_killed_snapshot_job_says_interrupted(killed_snapshot):
    job = killed_snapshot["job"]
    assert job["state"] == "failed", job
    assert "interrupted" in (job.get("error") or ""), job


def test_killed_snapshot_error_event(killed_snapshot):
    errors = [e for e in killed_snapshot["events"]
              if e["event"] == "backup.create.error"]
    assert errors and "interrupted" in errors[-1].get("error", "")


def test_killed_snapshot_instance_usable_again(killed_snapshot):
    assert killed_snapshot["status"]["state"] == "ACTIVE"
    assert killed_snapshot["after"]["state"] == "completed"


@pytest.fixture(scope="module")
def killed_restore(util, tmp_path_factory, backend):
    """A restore killed while it applies (MAINTENANCE)."""
    env = util.module_env(tmp_path_factory, "crash-restore", backend)
    with util.Watchdog(600, "the killed restore"):
        src = env.add_instance("vol1", tree=fill_big(util), snapshot="none")
        env.init()
        env.snapshot("vol1", label="old")
        backed_up = util.tree_of_dir(src)
        for i in range(0, FILES, 2):
            (src / "big" / ("f%03d" % i)).unlink()
        (src / "added-later").write_text("x\n")
        current = util.tree_of_dir(src)
        m = env.mount()
        inst = m.inst()
        ts = m.backups()[0]
        cp = subprocess.Popen(["cp", str(m.backup(ts)),
                               str(inst / "restore" / "x")],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: util.status(inst)["state"] == "MAINTENANCE",
                       "the restore to start applying")
            kill_daemon(util, m)
        finally:
            cp.wait(60)
        obs = {"cp_rc": cp.returncode, "backed_up": backed_up,
               "current": current}
        m2 = env.mount()
        inst = m2.inst()
        obs["tree"] = util.tree_of_dir(src)
        obs["leftovers"] = leftovers(src.parent, "backupfs-restore")
        obs["spool"] = os.listdir(env.state / "instances" / "vol1" / "spool")
        obs["events"] = util.read_events(inst)
        obs["status"] = util.status(inst)
    yield obs
    util.finish_module_env(env, [r"(?i)interrupted"])


def test_killed_restore_reported_to_cp(killed_restore):
    assert killed_restore["cp_rc"] != 0


def test_killed_restore_left_a_whole_tree(killed_restore):
    tree = killed_restore["tree"]
    assert tree in (killed_restore["backed_up"], killed_restore["current"]), \
        "the instance holds a mix of old and new:\n" + \
        "\n".join(sorted(set(tree) ^ set(killed_restore["current"])))[:2000]


def test_killed_restore_no_staging_left(killed_restore):
    assert killed_restore["leftovers"] == []
    assert killed_restore["spool"] == []


def test_killed_restore_error_event(killed_restore):
    errors = [e for e in killed_restore["events"]
              if e["event"] == "backup.restore.error"]
    assert errors and "interrupted" in errors[-1].get("error", "")


def test_killed_restore_instance_active(killed_restore):
    assert killed_restore["status"]["state"] == "ACTIVE"
