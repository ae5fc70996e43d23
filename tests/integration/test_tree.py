# SPDX-License-Identifier: Apache-2.0
"""The tree: instances/ from the config and from the repository, the
layout of an instance directory, and names that must not resolve."""

import errno
import os
import stat

import pytest

INSTANCE_ENTRIES = {"backups": "dir", "restore": "dir", "snapshots": "dir",
                    "schedules": "dir", "executions": "dir",
                    "status": "file", "events": "file"}
BAD_NAMES = ["a\x01b", "vol1\n", "\x7f", "tab\tname", "esc\x1b[0m", "\x1f",
             "cr\r"]
DOTTED_NAMES = ["...", "a..b", "..vol1", "vol1..", ".. "]
LOOKUP_REFUSED = (errno.ENOENT, errno.EINVAL)


@pytest.fixture
def two(util, env):
    """vol1 (one backup) and vol2 (no backup) in the config; mounted."""
    env.add_instance("vol1", tree="sample")
    env.add_instance("vol2", tree="sample")
    env.init()
    env.snapshot("vol1", label="first")
    return env.mount()


def assert_alive(util, m):
    assert m.alive(), "backupfs died:\n" + m.log_tail()
    assert util.status(m.inst("vol1"))["state"] in util.STATES


def test_root_has_instances(mnt):
    assert "instances" in os.listdir(mnt.path)
    assert stat.S_ISDIR(os.stat(mnt.path / "instances").st_mode)


def test_instances_lists_configured_instances(two):
    assert set(os.listdir(two.path / "instances")) == {"vol1", "vol2"}


@pytest.mark.parametrize("name,kind", sorted(INSTANCE_ENTRIES.items()))
def test_instance_dir_entry(mnt, name, kind):
    assert name in os.listdir(mnt.inst())
    st = os.stat(mnt.inst() / name)
    if kind == "dir":
        assert stat.S_ISDIR(st.st_mode)
    else:
        assert stat.S_ISREG(st.st_mode)


def test_instance_without_backups_lists_none(two):
    assert os.listdir(two.inst("vol2") / "backups") == []


def test_instance_without_backups_has_layout(two):
    assert set(INSTANCE_ENTRIES) <= set(os.listdir(two.inst("vol2")))


@pytest.fixture
def fresh(util, vol1):
    """What the original config's mount shows of vol1, then a mount of a
    fresh config: same key and backend, no instances, new state dir."""
    vol1.snapshot("vol1", label="second")
    m = vol1.mount()
    seen = {}
    for ts in m.backups():
        p = m.backup(ts)
        seen[ts] = (util.sha256(util.read_file(p)), os.stat(p).st_size,
                    util.xattr(p, "id"), util.xattr(p, "label"))
    problems = m.stop()
    assert not problems, problems
    cfg = vol1.write_config(vol1.base / "fresh.json", instances={},
                            state_dir=str(vol1.base / "fresh-state"))
    (vol1.base / "fresh-state").mkdir()
    return vol1.mount(cfg=cfg), seen


def test_fresh_config_lists_repository_instances(fresh):
    m, _ = fresh
    assert os.listdir(m.path / "instances") == ["vol1"]


def test_fresh_config_lists_same_backups(fresh):
    m, seen = fresh
    assert m.backups() == sorted(seen)


def test_fresh_config_backups_read_identically(util, fresh):
    m, seen = fresh
    for ts, (digest, size, ident, label) in seen.items():
        p = m.backup(ts)
        assert os.stat(p).st_size == size
        assert util.sha256(util.read_file(p)) == digest
        assert (util.xattr(p, "id"), util.xattr(p, "label")) == \
            (ident, label)


def test_config_instance_and_repository_instance_both_listed(util, vol1):
    # vol1 has a backup but leaves the config; vol2 joins it
    vol1.instances = {}
    vol1.add_instance("vol2")
    vol1.write_config()
    m = vol1.mount()
    assert set(os.listdir(m.path / "instances")) == {"vol1", "vol2"}
    assert len(m.backups("vol1")) == 1


def test_dotdot_under_instances(util, mnt):
    top = mnt.path / "instances" / ".."
    assert os.stat(top).st_ino == os.stat(mnt.path).st_ino
    assert "vol1" in os.listdir(mnt.inst() / ".." / ".." / "instances")
    assert_alive(util, mnt)


@pytest.mark.parametrize("where", ["instances", "instances/vol1",
                                   "instances/vol1/backups",
                                   "instances/vol1/snapshots",
                                   "instances/vol1/restore"])
def test_control_byte_names_do_not_resolve(util, mnt, where):
    for name in BAD_NAMES:
        for _ in range(2):
            e = util.errno_of(os.lstat, mnt.path / where / name)
            assert e in LOOKUP_REFUSED, "%r: %s" % (name, os.strerror(e))
    assert_alive(util, mnt)


@pytest.mark.parametrize("where", ["instances", "instances/vol1/backups",
                                   "instances/vol1/snapshots"])
def test_names_with_dots_do_not_resolve(util, mnt, where):
    for name in DOTTED_NAMES:
        e = util.errno_of(os.lstat, mnt.path / where / name)
        assert e in LOOKUP_REFUSED, "%r: %s" % (name, os.strerror(e))
    assert_alive(util, mnt)


@pytest.mark.parametrize("length", [255, 256, 1000])
def test_long_names_do_not_resolve(util, mnt, length):
    for where in ("instances", "instances/vol1/backups"):
        e = util.errno_of(os.lstat, mnt.path / where / ("x" * length))
        assert e in LOOKUP_REFUSED + (errno.ENAMETOOLONG,), os.strerror(e)
    assert_alive(util, mnt)


@pytest.mark.parametrize("rel", [
    "instances/no-such-instance",
    "instances/vol1/no-such-entry",
    "instances/vol1/backups/2000-01-01T00:00:00Z",
    "instances/vol1/backups/not-a-timestamp",
    "instances/vol1/snapshots/no-such-label",
    "instances/vol1/restore/no-such-file",
])
def test_missing_name_twice_is_enoent(util, mnt, rel):
    for attempt in range(2):
        e = util.errno_of(os.lstat, mnt.path / rel)
        assert e == errno.ENOENT, "lookup %d: %s" % (attempt + 1,
                                                      os.strerror(e))
