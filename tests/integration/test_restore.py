# SPDX-License-Identifier: Apache-2.0
"""restore/: a file written into it is restored into the instance when it
is closed; close() returns the result; a failed restore changes nothing."""

import errno
import os
import random
import shutil

import pytest


def add_blob(util):
    def fill(d):
        util.make_sample_tree(d)
        util.write_random(d / "blob-2m.bin", 2 * util.MiB + 17, 11)
    return fill


@pytest.fixture
def changed(util, env):
    """vol1 backed up, then changed in every way; mounted.  Returns
    (mount, env, tree at backup time, backup timestamp)."""
    src = env.add_instance("vol1", tree=add_blob(util))
    env.init()
    env.snapshot("vol1", label="good")
    want = util.tree_of_dir(src)
    (src / "added-later.txt").write_text("not in the backup\n")
    (src / "newdir").mkdir()
    (src / "newdir" / "x").write_text("x\n")
    (src / "README.txt").write_text("modified after the backup\n")
    (src / "empty").unlink()
    shutil.rmtree(src / "data")
    os.chmod(src / "bin.sh", 0o600)
    os.unlink(src / "conf-link")
    os.symlink("README.txt", src / "conf-link")
    with open(src / "blob-2m.bin", "r+b") as f:
        f.seek(1 << 20)
        f.write(b"changed!")
    m = env.mount()
    assert util.tree_of_dir(src) != want
    return m, env, want, m.backups()[0]


def test_restore_close_returns_0(util, changed):
    m, env, want, ts = changed
    assert util.restore_errno(m.backup(ts), m.inst() / "restore" / "r1") == 0


def test_restore_reverts_source(util, changed):
    m, env, want, ts = changed
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r1")
    util.assert_same_tree(util.tree_of_dir(env.src()), want, "restored source")


def test_restored_source_equals_backup_content(util, changed):
    m, env, want, ts = changed
    data = util.read_file(m.backup(ts))
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r1")
    util.assert_same_tree(util.tree_of_dir(env.src()), util.tree_of_tar(data),
                          "restored source vs backup")


def test_restore_with_cp(util, changed):
    m, env, want, ts = changed
    r = util.run(["cp", m.backup(ts), m.inst() / "restore/"], timeout=120)
    assert r.returncode == 0, r.describe()
    util.assert_same_tree(util.tree_of_dir(env.src()), want, "restored source")


def test_restore_with_shell_redirection(util, changed):
    # "cat backup > restore/x": the shell opens with O_TRUNC, dup2()s and
    # closes the first descriptor before cat writes; the restore must
    # wait for the data, not apply an empty file at that first close.
    m, env, want, ts = changed
    r = util.run(["bash", "-c", 'cat "$1" > "$2"', "bash", m.backup(ts),
                  m.inst() / "restore" / "r1"], timeout=120)
    assert r.returncode == 0, r.describe()
    util.assert_same_tree(util.tree_of_dir(env.src()), want, "restored source")
    assert util.status(m.inst())["last"]["restore"]["state"] == "completed"


def test_restore_file_does_not_remain(util, changed):
    m, env, want, ts = changed
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r1")
    assert os.listdir(m.inst() / "restore") == []
    assert util.errno_of(os.lstat, m.inst() / "restore" / "r1") == \
        errno.ENOENT


def test_restore_events(util, changed):
    m, env, want, ts = changed
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r1")
    names = [e["event"] for e in util.read_events(m.inst())]
    assert "backup.restore.start" in names, names
    assert "backup.restore.end" in names, names
    assert names.index("backup.restore.start") < \
        names.index("backup.restore.end")


def test_status_active_after_restore(util, changed):
    m, env, want, ts = changed
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r1")
    assert util.wait_state(m.inst(), ("ACTIVE",))["state"] == "ACTIVE"


def test_snapshot_after_restore(util, changed):
    m, env, want, ts = changed
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r1")
    new, _ = util.snapshot_via_mount(m.inst(), "after-restore")
    util.assert_same_tree(util.tree_of_tar(util.read_file(m.backup(new))),
                          want, "backup of the restored source")


def test_restore_twice(util, changed):
    m, env, want, ts = changed
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r1")
    (env.src() / "README.txt").write_text("changed again\n")
    shutil.copyfile(m.backup(ts), m.inst() / "restore" / "r2")
    util.assert_same_tree(util.tree_of_dir(env.src()), want, "restored source")


# --- invalid input: nothing changes


def bad_input(kind, good):
    """Bytes that are not a valid backup stream of the files datastore."""
    rng = random.Random(kind)
    if kind == "random":
        return rng.randbytes(300 * 1024)
    if kind == "text":
        return b"this is not a tar archive\n" * 1000
    if kind == "truncated-half":
        return good[:len(good) // 2 + 123]
    if kind == "truncated-header":
        return good[:300]
    if kind == "bad-header-checksum":
        b = bytearray(good)
        b[10] ^= 0x55  # inside the first member's name
        return bytes(b)
    raise ValueError(kind)


BAD_KINDS = ["random", "text", "truncated-half", "truncated-header",
             "bad-header-checksum"]


@pytest.fixture(params=BAD_KINDS)
def failed(request, util, changed):
    """A cp of invalid bytes into restore/ (run with the real cp).  Returns
    (mount, env, source tree before, cp result)."""
    m, env, want, ts = changed
    good = util.read_file(m.backup(ts))
    f = env.base / ("bad-" + request.param)
    f.write_bytes(bad_input(request.param, good))
    before = util.tree_of_dir(env.src(), mtimes=True)
    r = util.run(["cp", f, m.inst() / "restore" / "bad"], timeout=120)
    return m, env, before, r


@pytest.mark.log_errors()
def test_invalid_restore_fails_cp(failed):
    m, env, before, r = failed
    assert r.returncode != 0, "cp of an invalid file succeeded:\n" + \
        r.describe()


@pytest.mark.log_errors()
def test_invalid_restore_changes_nothing(util, failed):
    m, env, before, r = failed
    util.assert_same_tree(util.tree_of_dir(env.src(), mtimes=True), before,
                          "source after a failed restore")


@pytest.mark.log_errors()
def test_invalid_restore_file_does_not_remain(failed):
    m, env, before, r = failed
    assert os.listdir(m.inst() / "restore") == []


@pytest.mark.log_errors()
def test_invalid_restore_error_event(util, failed):
    m, env, before, r = failed
    errs = [e for e in util.read_events(m.inst())
            if e["event"] == "backup.restore.error"]
    assert errs, util.read_events(m.inst())
    assert isinstance(errs[-1].get("error"), str) and errs[-1]["error"]


@pytest.mark.log_errors()
def test_invalid_restore_leaves_instance_active(util, failed):
    m, env, before, r = failed
    assert util.wait_state(m.inst(), ("ACTIVE",))["state"] == "ACTIVE"


@pytest.mark.log_errors()
def test_invalid_restore_errno_is_einval_or_eio(util, changed):
    m, env, want, ts = changed
    f = env.base / "random.bin"
    f.write_bytes(bad_input("random", b""))
    e = util.restore_errno(f, m.inst() / "restore" / "bad")
    assert e in (errno.EINVAL, errno.EIO), \
        os.strerror(e) if e else "restore succeeded"


@pytest.mark.log_errors()
def test_good_restore_after_failed_one(util, changed):
    m, env, want, ts = changed
    f = env.base / "random.bin"
    f.write_bytes(bad_input("random", b""))
    util.restore_errno(f, m.inst() / "restore" / "bad")
    assert util.restore_errno(m.backup(ts), m.inst() / "restore" / "ok") == 0
    util.assert_same_tree(util.tree_of_dir(env.src()), want, "restored source")


# --- permissions


def test_non_owner_restore_refused(util, env):
    src = env.add_instance("vol1", tree="sample")
    env.init()
    env.snapshot("vol1")
    (src / "README.txt").write_text("changed after the backup\n")
    m = env.mount(allow_other=True)
    copy = env.public_dir() / "backup.tar"
    shutil.copyfile(m.backup(m.backups()[0]), copy)
    os.chmod(copy, 0o644)
    before = util.tree_of_dir(src, mtimes=True)
    e = util.as_nobody("copy", copy, m.inst() / "restore" / "by-nobody")
    assert e in util.DENIED, os.strerror(e) if e else "restore accepted"
    util.assert_same_tree(util.tree_of_dir(src, mtimes=True), before,
                          "source after a refused restore")
    assert os.listdir(m.inst() / "restore") == []


@pytest.mark.log_errors()
def test_same_name_again_right_after_a_failed_restore(util, changed):
    # the kernel must not keep the finished restore file's entry: the
    # same name written again at once is a new restore, not EBUSY
    m, env, want, ts = changed
    f = env.base / "random.bin"
    f.write_bytes(bad_input("random", b""))
    assert util.restore_errno(f, m.inst() / "restore" / "again") in (
        errno.EINVAL, errno.EIO)
    assert util.restore_errno(m.backup(ts),
                              m.inst() / "restore" / "again") == 0
    util.assert_same_tree(util.tree_of_dir(env.src()), want, "restored source")
