# SPDX-License-Identifier: Apache-2.0
"""backups/<ts>: attributes, content, xattrs, latest, read-only, rm."""

import errno
import os
import stat
import time

import pytest

XATTRS = ["id", "datastore", "format", "codec", "size", "sha256", "label"]


@pytest.fixture
def timed(vol1):
    """vol1 with a second backup whose wall-clock window is known."""
    t0 = time.time()
    vol1.snapshot("vol1", label="timed")
    t1 = time.time()
    return vol1.mount(), (t0, t1)


def newest(m):
    return m.backups()[-1]


def test_backup_name_is_utc_timestamp(util, mnt):
    ts = mnt.backups()
    assert len(ts) == 1
    assert util.TS_RE.match(ts[0]), ts


def test_backup_is_regular_file_mode_0444(mnt):
    st = os.lstat(mnt.backup(mnt.backups()[0]))
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o444


def test_backup_size_is_plaintext_size(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    assert os.stat(p).st_size == len(util.read_file(p))


def test_backup_mtime_is_backup_time(util, timed):
    m, (t0, t1) = timed
    ts = newest(m)
    epoch = util.ts_epoch(ts)
    assert int(t0) - 1 <= epoch <= t1 + 1, (ts, t0, t1)
    assert int(os.stat(m.backup(ts)).st_mtime) == epoch


def test_backup_is_pax_tar_of_source(util, mnt, vol1):
    data = util.read_file(mnt.backup(mnt.backups()[0]))
    # POSIX ustar magic (pax archives are ustar plus extended headers)
    assert data[257:263] == b"ustar\x00" and data[263:265] == b"00", \
        data[257:265]
    util.assert_same_tree(util.tree_of_tar(data), util.tree_of_dir(vol1.src()),
                          "backup vs source")


def test_backup_is_source_at_snapshot_time(util, vol1):
    want = util.tree_of_dir(vol1.src())
    (vol1.src() / "README.txt").write_text("changed later\n")
    (vol1.src() / "new-file").write_text("added later\n")
    m = vol1.mount()
    data = util.read_file(m.backup(m.backups()[0]))
    util.assert_same_tree(util.tree_of_tar(data), want, "backup")


def test_backup_readable_with_tar_command(util, mnt, vol1):
    r = util.run(["tar", "-tf", mnt.backup(mnt.backups()[0])], timeout=60)
    assert r.returncode == 0, r.describe()
    names = {n.rstrip("/").removeprefix("./") for n in r.stdout.splitlines()}
    assert set(util.tree_of_dir(vol1.src())) <= names


def test_pread_at_offsets(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    data = util.read_file(p)
    size = len(data)
    fd = os.open(p, os.O_RDONLY)
    try:
        for off in (0, 1, 511, 512, size // 2, size - 1, size, size + 10):
            for n in (1, 100, 4096, 70000):
                assert os.pread(fd, n, off) == data[off:off + n], (off, n)
    finally:
        os.close(fd)


# --- latest


def test_latest_is_symlink_to_newest(timed):
    m, _ = timed
    latest = m.inst() / "backups" / "latest"
    assert stat.S_ISLNK(os.lstat(latest).st_mode)
    assert os.readlink(latest) == newest(m)


def test_latest_is_relative(mnt):
    target = os.readlink(mnt.inst() / "backups" / "latest")
    assert "/" not in target
    assert target == mnt.backups()[0]


def test_latest_reads_newest(util, timed):
    m, _ = timed
    assert util.read_file(m.inst() / "backups" / "latest") == \
        util.read_file(m.backup(newest(m)))


# --- xattrs


@pytest.mark.parametrize("name", XATTRS)
def test_xattr_listed(mnt, name):
    names = os.listxattr(mnt.backup(mnt.backups()[0]))
    assert "user.backupfs." + name in names, names


def test_xattr_datastore(util, mnt):
    assert util.xattr(mnt.backup(mnt.backups()[0]), "datastore") == "files"


def test_xattr_format(util, mnt):
    assert util.xattr(mnt.backup(mnt.backups()[0]), "format") == "tar"


def test_xattr_codec_set(util, mnt):
    assert util.xattr(mnt.backup(mnt.backups()[0]), "codec")


def test_xattr_id_set_and_unique(util, timed):
    m, _ = timed
    ids = [util.xattr(m.backup(ts), "id") for ts in m.backups()]
    assert all(ids) and len(set(ids)) == len(ids), ids


def test_xattr_size_equals_st_size(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    assert util.xattr(p, "size") == str(os.stat(p).st_size)


def test_xattr_sha256_matches_content(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    assert util.xattr(p, "sha256") == util.sha256(util.read_file(p))


def test_xattr_label(util, mnt):
    assert util.xattr(mnt.backup(mnt.backups()[0]), "label") == "first"


def test_xattr_missing_name_is_enodata(mnt):
    p = mnt.backup(mnt.backups()[0])
    with pytest.raises(OSError) as ei:
        os.getxattr(p, "user.backupfs.no-such-attribute")
    assert ei.value.errno == errno.ENODATA


# --- read-only


def _ro(util, fn, *args):
    e = util.errno_of(fn, *args)
    assert e in util.READ_ONLY, "expected EROFS/EACCES/EPERM, got %s" % (
        os.strerror(e) if e else "success")


def test_open_for_writing_fails(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND):
        e = util.errno_of(lambda: os.close(os.open(p, flags)))
        assert e in util.READ_ONLY, (flags, os.strerror(e) if e else "ok")


def test_truncate_fails(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    size = os.stat(p).st_size
    _ro(util, os.truncate, p, 0)
    assert os.stat(p).st_size == size


def test_chmod_fails(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    _ro(util, os.chmod, p, 0o644)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o444


def test_rename_fails(util, mnt):
    ts = mnt.backups()[0]
    _ro(util, os.rename, mnt.backup(ts), mnt.inst() / "backups" / "renamed")
    assert mnt.backups() == [ts]


def test_create_file_fails(util, mnt):
    p = mnt.inst() / "backups" / "2030-01-01T00:00:00Z"
    _ro(util, lambda: os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)))
    assert not os.path.lexists(p)


def test_mkdir_fails(util, mnt):
    _ro(util, os.mkdir, mnt.inst() / "backups" / "newdir")


def test_symlink_fails(util, mnt):
    _ro(util, os.symlink, "x", mnt.inst() / "backups" / "newlink")


def test_backup_intact_after_refused_writes(util, mnt):
    p = mnt.backup(mnt.backups()[0])
    digest = util.xattr(p, "sha256")
    for fn in (lambda: os.truncate(p, 0), lambda: os.chmod(p, 0o666),
               lambda: os.close(os.open(p, os.O_WRONLY))):
        util.errno_of(fn)
    assert util.sha256(util.read_file(p)) == digest


# --- rm


def test_rm_deletes_backup(util, timed):
    m, _ = timed
    old = m.backups()[0]
    os.unlink(m.backup(old))
    assert old not in m.backups()
    assert util.errno_of(os.lstat, m.backup(old)) == errno.ENOENT


def test_rm_stays_deleted_after_remount(timed):
    m, _ = timed
    old, keep = m.backups()
    os.unlink(m.backup(old))
    m.remount()
    assert m.backups() == [keep]


def test_rm_newest_moves_latest(timed):
    m, _ = timed
    old, new = m.backups()
    os.unlink(m.backup(new))
    assert os.readlink(m.inst() / "backups" / "latest") == old


def test_rm_keeps_other_backup_readable(util, timed):
    m, _ = timed
    old, new = m.backups()
    p = m.backup(new)
    digest = util.xattr(p, "sha256")
    os.unlink(m.backup(old))
    assert util.sha256(util.read_file(p)) == digest


def test_rm_missing_backup_is_enoent(util, mnt):
    e = util.errno_of(os.unlink, mnt.inst() / "backups" /
                      "2000-01-01T00:00:00Z")
    assert e == errno.ENOENT


@pytest.fixture
def shared(vol1):
    """vol1 mounted with allow_other (user nobody can reach it)."""
    return vol1.mount(allow_other=True)


def test_non_owner_can_read_backup(util, shared):
    # mode 0444 and allow_other: reading is not reserved to the owner
    assert util.as_nobody("read", shared.backup(shared.backups()[0])) == 0


def test_rm_by_non_owner_fails(util, shared):
    ts = shared.backups()[0]
    e = util.as_nobody("unlink", shared.backup(ts))
    assert e in util.DENIED, os.strerror(e) if e else "unlink succeeded"
    assert shared.backups() == [ts]
