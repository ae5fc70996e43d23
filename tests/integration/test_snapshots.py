# SPDX-License-Identifier: Apache-2.0
"""snapshots/<label>: creating the file starts a backup when it is closed;
reading it shows the job as JSON."""

import errno
import json
import os
import stat
import time

import pytest

BAD_LABELS = ["a..b", "..hidden", "trailing..", "ctl\x01byte", "new\nline",
              "tab\there", "del\x7f", "x" * 256, "é" * 128]


def test_create_file_starts_backup(util, mnt):
    ts, _ = util.snapshot_via_mount(mnt.inst(), "snap1")
    assert ts in mnt.backups()
    assert len(mnt.backups()) == 2


def test_snapshot_backup_carries_label(util, mnt):
    ts, _ = util.snapshot_via_mount(mnt.inst(), "snap1")
    assert util.xattr(mnt.backup(ts), "label") == "snap1"


def test_snapshot_backup_matches_source(util, mnt, vol1):
    ts, _ = util.snapshot_via_mount(mnt.inst(), "snap1")
    data = util.read_file(mnt.backup(ts))
    util.assert_same_tree(util.tree_of_tar(data), util.tree_of_dir(vol1.src()),
                          "snapshot vs source")


def test_snapshot_sees_source_changes(util, mnt, vol1):
    (vol1.src() / "added.txt").write_text("added after the first backup\n")
    ts, _ = util.snapshot_via_mount(mnt.inst(), "after-change")
    tree = util.tree_of_tar(util.read_file(mnt.backup(ts)))
    assert "added.txt" in tree


def test_touch_starts_backup(util, mnt):
    path = mnt.inst() / "snapshots" / "touched"
    r = util.run(["touch", path], timeout=60)
    assert r.returncode == 0, r.describe()
    job = util.wait_job(path)
    assert job["state"] == "completed", job
    assert job["backup"] in mnt.backups()


def test_job_json_when_completed(util, mnt):
    ts, job = util.snapshot_via_mount(mnt.inst(), "snap1")
    assert job["state"] == "completed"
    assert job["backup"] == ts
    assert job["error"] is None
    prog = job["progress"]
    assert isinstance(prog["done"], int) and isinstance(prog["total"], int)
    assert prog["done"] >= 0 and prog["total"] >= 0


def test_job_file_is_regular_file(util, mnt):
    util.snapshot_via_mount(mnt.inst(), "snap1")
    st = os.stat(mnt.inst() / "snapshots" / "snap1")
    assert stat.S_ISREG(st.st_mode)
    assert "snap1" in os.listdir(mnt.inst() / "snapshots")


def test_job_json_while_running_or_done(util, mnt):
    path = mnt.inst() / "snapshots" / "early"
    assert util.create_job_file(path) == 0
    job = util.read_json(path)  # read at once: running or already done
    assert job["state"] in ("running", "completed"), job
    assert set(job) >= {"state", "progress", "error"}, job
    assert util.wait_job(path)["state"] == "completed"


def test_strategy_copy_is_valid(util, mnt):
    ts, _ = util.snapshot_via_mount(mnt.inst(), "with-copy",
                                    '{"snapshot": "copy"}')
    assert util.xattr(mnt.backup(ts), "label") == "with-copy"


def test_strategy_by_shell_redirection(util, mnt):
    # echo STRATEGY > snapshots/<label>: the shell's first close comes
    # before the write; the strategy written after it must count.
    path = mnt.inst() / "snapshots" / "redirected"
    r = util.run(["bash", "-c", 'echo \'{"snapshot": "copy"}\' > "$1"',
                  "bash", path], timeout=60)
    assert r.returncode == 0, r.describe()
    job = util.wait_job(path)
    assert job["state"] == "completed", job
    assert json.loads(util.xattr(mnt.backup(job["backup"]), "strategy")) \
        == {"snapshot": "copy"}


def test_shell_truncation_starts_backup(util, mnt):
    # ": > snapshots/<label>" writes nothing: the backup starts at release
    path = mnt.inst() / "snapshots" / "truncated"
    r = util.run(["bash", "-c", ': > "$1"', "bash", path], timeout=60)
    assert r.returncode == 0, r.describe()
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    job = util.wait_job(path)
    assert job["state"] == "completed", job
    assert job["backup"] in mnt.backups()


def test_empty_strategy_object_is_valid(util, mnt):
    util.snapshot_via_mount(mnt.inst(), "with-empty", "{}")


@pytest.mark.parametrize("strategy", ["not json", '{"bogus": 1}', "[1, 2]",
                                      '{"snapshot": "nonsense"}', "{"])
def test_invalid_strategy_fails_close_with_einval(util, mnt, strategy):
    before = mnt.backups()
    e = util.create_job_file(mnt.inst() / "snapshots" / "bad", strategy)
    assert e == errno.EINVAL, os.strerror(e) if e else "close succeeded"
    assert mnt.backups() == before


def test_invalid_strategy_reason_in_status(util, mnt):
    e = util.create_job_file(mnt.inst() / "snapshots" / "bad",
                             '{"bogus": 1}')
    assert e == errno.EINVAL
    last = util.status(mnt.inst())["last"]["backup"]
    assert last["state"] == "refused" and last["label"] == "bad", last
    assert "bogus" in last["error"], last
    # a good one after it is the last result again
    ts, _ = util.snapshot_via_mount(mnt.inst(), "good")
    last = util.status(mnt.inst())["last"]["backup"]
    assert last["state"] == "completed" and last["backup"] == ts, last


def test_refused_label_can_be_used_again_at_once(util, mnt):
    # the kernel may still hold the refused file's entry: the same name
    # written again is a new snapshot
    e = util.create_job_file(mnt.inst() / "snapshots" / "retry",
                             '{"bogus": 1}')
    assert e == errno.EINVAL
    ts, _ = util.snapshot_via_mount(mnt.inst(), "retry", "{}")
    assert ts in mnt.backups()


def test_invalid_strategy_starts_no_backup(util, mnt):
    before = len(mnt.backups())
    util.create_job_file(mnt.inst() / "snapshots" / "bad", '{"bogus": 1}')
    # a valid job after it: exactly one backup more, the valid one
    ts, _ = util.snapshot_via_mount(mnt.inst(), "good")
    assert len(mnt.backups()) == before + 1
    assert util.xattr(mnt.backup(ts), "label") == "good"


@pytest.mark.parametrize("label", BAD_LABELS, ids=lambda s: repr(s)[:24])
def test_bad_label_refused(util, mnt, label):
    before = mnt.backups()
    e = util.create_job_file(mnt.inst() / "snapshots" / label)
    assert e in (errno.EINVAL, errno.ENAMETOOLONG), \
        os.strerror(e) if e else "accepted"
    assert mnt.backups() == before


def test_dotdot_label_refused(util, mnt):
    # the kernel resolves ".." itself: the create can only fail
    e = util.create_job_file(mnt.inst() / "snapshots" / "..")
    assert e != 0
    assert len(mnt.backups()) == 1


@pytest.mark.parametrize("label", ["before upgrade", "Müller – 日本語 ✓",
                                   "with.dots-and_underscores",
                                   "l" * 255])
def test_label_accepted(util, mnt, label):
    ts, _ = util.snapshot_via_mount(mnt.inst(), label)
    assert util.xattr(mnt.backup(ts), "label") == label
    assert label in os.listdir(mnt.inst() / "snapshots")


def test_lookup_before_create_does_not_hide_job(util, mnt):
    path = mnt.inst() / "snapshots" / "later"
    assert util.errno_of(os.lstat, path) == errno.ENOENT
    assert util.errno_of(os.lstat, path) == errno.ENOENT
    ts, _ = util.snapshot_via_mount(mnt.inst(), "later")
    assert os.path.exists(path)
    assert os.path.exists(mnt.backup(ts))


def test_two_snapshots_in_a_row(util, mnt):
    a, _ = util.snapshot_via_mount(mnt.inst(), "one")
    b, _ = util.snapshot_via_mount(mnt.inst(), "two")
    assert a != b
    assert {a, b} <= set(mnt.backups())
    assert os.readlink(mnt.inst() / "backups" / "latest") == max(a, b)


@pytest.mark.log_errors()
def test_failing_snapshot_reports_failed(util, mnt, vol1):
    os.rename(vol1.src(), vol1.base / "moved-away")
    path = mnt.inst() / "snapshots" / "doomed"
    before = mnt.backups()
    util.create_job_file(path)
    job = util.wait_job(path)
    assert job["state"] == "failed", job
    assert isinstance(job["error"], str) and job["error"], job
    assert mnt.backups() == before
    os.rename(vol1.base / "moved-away", vol1.src())
    assert util.wait_state(mnt.inst(), ("ACTIVE",))["state"] == "ACTIVE"


def test_non_owner_snapshot_refused(util, vol1):
    m = vol1.mount(allow_other=True)
    e = util.as_nobody("create", m.inst() / "snapshots" / "by-nobody")
    assert e in util.DENIED, os.strerror(e) if e else "accepted"
    assert len(m.backups()) == 1


def test_owner_snapshot_with_allow_other(util, vol1):
    m = vol1.mount(allow_other=True)
    util.snapshot_via_mount(m.inst(), "by-root")
    assert len(m.backups()) == 2
