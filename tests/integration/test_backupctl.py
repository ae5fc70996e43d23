# SPDX-License-Identifier: Apache-2.0
"""backupctl init, snapshot and gc, and the instance snapshot modes."""

import json
import os
import stat
from pathlib import Path

import pytest


def chunk_files(env):
    """Names of the chunk objects of env's repository."""
    return set(env.objects("chunks/"))


def backup_of_label(util, m, label, instance="vol1"):
    for ts in m.backups(instance):
        if util.xattr(m.backup(ts, instance), "label") == label:
            return ts
    pytest.fail("no backup labelled %r in %s" % (label, m.backups(instance)))


def assert_backup_matches(util, m, ts, src, instance="vol1"):
    data = util.read_file(m.backup(ts, instance))
    util.assert_same_tree(util.tree_of_tar(data), util.tree_of_dir(src),
                          "backup %s vs source" % ts)


# --- init


def test_init_creates_key_file_0600(env):
    env.add_instance("vol1")
    env.init()
    st = os.stat(env.key)
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size > 0


def test_init_creates_repository(env):
    env.add_instance("vol1")
    env.init()
    assert env.objects(), "init wrote nothing into the repository"


def test_init_creates_missing_repository_dir(env):
    """The directory, or the Swift container, is created if missing."""
    env.add_instance("vol1")
    env.remove_repository()
    assert not env.repository_exists()
    env.init()
    assert env.repository_exists()
    assert env.objects()


def repo_chunker(env):
    return json.loads(env.read_object("config"))["chunker"]


def test_init_default_chunk_size_by_backend(env):
    """4 MiB on Swift (a chunk is a request), 1 MiB on a local backend."""
    env.add_instance("vol1")
    r = env.init()
    avg = (4 if env.kind == "swift" else 1) << 20
    assert repo_chunker(env) == {"min": avg // 4, "avg": avg,
                                 "max": avg * 4}, r.describe()
    assert "chunks of %d KiB" % (avg >> 10) in r.stdout, r.describe()


def test_init_chunk_size_is_kept_and_used(util, env):
    def big(d):
        (d / "random.bin").write_bytes(os.urandom(12 << 20))
    src = env.add_instance("vol1", tree=big)
    env.write_config()
    env.ctl("init", "--chunk-size", "256K")
    assert repo_chunker(env) == {"min": 64 << 10, "avg": 256 << 10,
                                 "max": 1 << 20}
    env.snapshot("vol1")
    r = env.ctl("--json", "verify", "vol1")
    v, = json.loads(r.stdout)
    assert v["result"] == "ok", v
    # 12 MiB and more in chunks of 64 KiB to 1 MiB
    assert 12 <= v["chunks"] <= (v["size"] >> 16) + 1, v
    m = env.mount()
    assert_backup_matches(util, m, m.backups()[0], src)


@pytest.mark.parametrize("size", ["3M", "128K", "32M", "-1M", "x", ""])
def test_init_bad_chunk_size_is_usage_error(env, size):
    env.add_instance("vol1")
    env.write_config()
    r = env.ctl("init", "--chunk-size", size, check=False)
    assert r.returncode == 2 and "--chunk-size" in r.stderr, r.describe()
    assert not env.key.exists()
    assert not env.objects()


def test_init_twice_fails(env):
    env.add_instance("vol1")
    env.init()
    r = env.ctl("init", check=False)
    assert r.returncode != 0, r.describe()


def test_init_twice_keeps_key_file(env):
    env.add_instance("vol1")
    env.init()
    before = env.key.read_bytes()
    st = os.stat(env.key)
    env.ctl("init", check=False)
    assert env.key.read_bytes() == before
    st2 = os.stat(env.key)
    assert (st2.st_ino, st2.st_mtime_ns, stat.S_IMODE(st2.st_mode)) == \
        (st.st_ino, st.st_mtime_ns, 0o600)


def test_repository_usable_after_second_init(util, env):
    src = env.add_instance("vol1", tree="sample")
    env.init()
    env.ctl("init", check=False)
    env.snapshot("vol1")
    m = env.mount()
    assert len(m.backups()) == 1
    assert_backup_matches(util, m, m.backups()[0], src)


# --- snapshot


def test_snapshot_exits_0_and_backup_appears(util, vol1):
    m = vol1.mount()
    assert len(m.backups()) == 1
    assert_backup_matches(util, m, m.backups()[0], vol1.src())


def test_snapshot_label(util, vol1):
    m = vol1.mount()
    assert util.xattr(m.backup(m.backups()[0]), "label") == "first"


def test_snapshot_without_label(util, vol1):
    vol1.snapshot("vol1")
    m = vol1.mount()
    assert len(m.backups()) == 2


def test_snapshot_unknown_instance_fails(vol1):
    r = vol1.snapshot("no-such-instance", check=False)
    assert r.returncode != 0, r.describe()


def test_snapshot_missing_source_fails(util, env):
    src = env.add_instance("vol1", tree="sample")
    env.init()
    moved = env.base / "moved-away"
    os.rename(src, moved)
    r = env.snapshot("vol1", check=False)
    assert r.returncode != 0, r.describe()
    os.rename(moved, src)
    m = env.mount()
    assert m.backups() == [], "a failed snapshot left a backup"


def test_two_quick_snapshots_get_distinct_timestamps(vol1):
    vol1.snapshot("vol1", label="second")
    vol1.snapshot("vol1", label="third")
    m = vol1.mount()
    assert len(m.backups()) == 3


@pytest.mark.parametrize("mode", ["none", "copy", "auto"])
def test_snapshot_mode_on_ext4(util, env, mode):
    src = env.add_instance("vol1", tree="sample", snapshot=mode)
    env.init()
    env.snapshot("vol1")
    m = env.mount()
    assert len(m.backups()) == 1
    assert_backup_matches(util, m, m.backups()[0], src)


# --- snapshot modes that need btrfs (a loop-mounted image)


@pytest.fixture(scope="module")
def btrfs_root(util, tmp_path_factory):
    d = tmp_path_factory.mktemp("btrfs")
    img = d / "btrfs.img"
    mnt = d / "mnt"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(1 << 30)
    r = util.run(["mkfs.btrfs", "-q", img], timeout=120)
    if r.returncode != 0:
        pytest.fail("mkfs.btrfs failed (btrfs-progs is a test "
                    "dependency):\n" + r.describe())
    r = util.run(["mount", "-o", "loop", img, mnt], timeout=120)
    if r.returncode != 0:
        pytest.fail("cannot loop-mount btrfs:\n" + r.describe())
    yield mnt
    r = util.run(["umount", mnt], timeout=120)
    if r.returncode != 0:
        util.run(["umount", "-l", mnt], timeout=120)
    img.unlink()
    if r.returncode != 0:
        pytest.fail("umount of the btrfs image failed:\n" + r.describe())


def subvolumes(util, root):
    r = util.run(["btrfs", "subvolume", "list", root], timeout=60)
    assert r.returncode == 0, r.describe()
    # "ID 256 gen 8 top level 5 path a/b": only the path identifies a
    # subvolume; the generation moves with every write.
    return sorted(line.split(" path ", 1)[1] for line in r.stdout.splitlines())


@pytest.fixture
def btrfs_env(util, env_factory, btrfs_root, request):
    """An Env on btrfs whose vol1 source is a subvolume."""
    base = btrfs_root / request.node.name.replace("/", "_")
    e = env_factory(base)
    r = util.run(["btrfs", "subvolume", "create", base / "src" / "vol1"])
    assert r.returncode == 0, r.describe()
    return e


@pytest.mark.parametrize("mode", ["btrfs", "reflink", "copy", "auto"])
def test_snapshot_mode_on_btrfs(util, btrfs_env, btrfs_root, mode):
    src = btrfs_env.add_instance("vol1", tree="sample", snapshot=mode)
    btrfs_env.init()
    before = subvolumes(util, btrfs_root)
    btrfs_env.snapshot("vol1")
    assert subvolumes(util, btrfs_root) == before, \
        "the temporary snapshot was not removed"
    m = btrfs_env.mount()
    assert len(m.backups()) == 1
    assert_backup_matches(util, m, m.backups()[0], src)


# --- gc


def test_gc_with_nothing_unreferenced(util, env):
    env.add_instance("vol1", tree=lambda d: util.write_random(
        d / "a.bin", 3 * util.MiB, 1))
    env.init()
    env.snapshot("vol1")
    before = chunk_files(env)
    assert before, "no chunk objects under chunks/"
    env.ctl("gc")
    assert chunk_files(env) == before


@pytest.fixture
def deleted(util, env):
    """Two backups with disjoint content; the one labelled "old" deleted
    through the mount; unmounted again.  Returns (env, chunks before gc)."""
    src = env.add_instance("vol1", tree=lambda d: util.write_random(
        d / "a.bin", 3 * util.MiB, 1))
    env.init()
    env.snapshot("vol1", label="old")
    (src / "a.bin").unlink()
    util.write_random(src / "b.bin", 3 * util.MiB, 2)
    env.snapshot("vol1", label="new")
    m = env.mount()
    os.unlink(m.backup(backup_of_label(util, m, "old")))
    problems = m.stop()
    assert not problems, problems
    return env, chunk_files(env)


def test_gc_removes_unreferenced_chunks(env, deleted):
    env, before = deleted
    env.ctl("gc")
    after = chunk_files(env)
    assert after < before, "gc removed no chunk of the deleted backup"


def test_gc_prints_what_it_removed(env, deleted):
    env, before = deleted
    r = env.ctl("gc")
    removed = before - chunk_files(env)
    out = r.stdout + r.stderr
    assert str(len(removed)) in out or \
        all(Path(c).name in out for c in removed), r.describe()


def test_gc_keeps_referenced_backup_readable(util, env, deleted):
    env, _ = deleted
    env.ctl("gc")
    m = env.mount()
    assert len(m.backups()) == 1
    ts = m.backups()[0]
    data = util.read_file(m.backup(ts))
    assert util.sha256(data) == util.xattr(m.backup(ts), "sha256")
    assert_backup_matches(util, m, ts, env.src())


def test_gc_twice_removes_nothing_more(env, deleted):
    env, _ = deleted
    env.ctl("gc")
    once = chunk_files(env)
    env.ctl("gc")
    assert chunk_files(env) == once
