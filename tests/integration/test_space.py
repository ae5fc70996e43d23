# SPDX-License-Identifier: Apache-2.0
"""Free space is checked before a snapshot (the repository) and while a
restore spools (the state directory): a full disk is a clear ENOSPC from
close(), and nothing is half-done afterwards."""

import errno
import os

import pytest

pytestmark = pytest.mark.log_errors(r"(?i)space|spool")


@pytest.fixture
def small_fs(util, tmp_path):
    """mount(name, size) -> a tmpfs of that size; unmounted at the end.

    Request it before env: fixtures are torn down in reverse order, and
    the daemon must be gone before its repository can be unmounted."""
    mounted = []

    def mount(name, size):
        d = tmp_path / name
        d.mkdir()
        r = util.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                      "tmpfs", str(d)])
        assert r.returncode == 0, r.describe()
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        r = util.run(["umount", str(d)])
        assert r.returncode == 0, r.describe()


def fill_random(util, mib):
    def fill(d):
        for i in range(mib):
            util.write_random(d / ("f%03d" % i), util.MiB, i)
    return fill


# Local only: the repository is a small tmpfs.  Swift has no notion of free
# space (an object store without quotas never says it is full), so there is
# nothing to check before a snapshot there.
@pytest.mark.backends("local")
def test_snapshot_refused_when_repository_too_small(util, small_fs, env):
    env.repo = small_fs("repo2", "24m")
    env.add_instance("vol1", tree=fill_random(util, 40), snapshot="none")
    env.init()
    m = env.mount()
    inst = m.inst()
    err = util.create_job_file(inst / "snapshots" / "too-big")
    assert err == errno.ENOSPC, os.strerror(err) if err else "accepted"
    assert m.backups() == []
    assert not os.path.exists(inst / "snapshots" / "too-big")
    assert env.objects("manifests/") == {}


def test_restore_spool_full_is_enospc(util, small_fs, env):
    src = env.add_instance("vol1", tree=fill_random(util, 40),
                           snapshot="none")
    env.init()
    env.snapshot("vol1", label="big")
    before = util.tree_of_dir(src)
    env.state = small_fs("state2", "72m")
    env.write_config()
    m = env.mount()
    inst = m.inst()
    ts = m.backups()[0]
    assert util.restore_errno(m.backup(ts), inst / "restore" / "x") == \
        errno.ENOSPC
    util.assert_same_tree(util.tree_of_dir(src), before)
    assert os.listdir(inst / "restore") == []
    assert os.listdir(env.state / "instances" / "vol1" / "spool") == []
    assert util.status(inst)["state"] == "ACTIVE"
