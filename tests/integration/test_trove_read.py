# SPDX-License-Identifier: Apache-2.0
"""Imported Trove backups read through the mount, as files.

Legacy objects made as Trove made them (trove.py) are imported with
`backupctl import-trove`; then instances/<id>/backups/<created> must read
back byte for byte whatever the key derivation and the layout (single
object, DLO, SLO), with exact sizes and the Trove xattrs; random reads
must be right before and after the first full pass (which leaves an
inflate index in the state directory); an object changed in Swift after
the import, or a DLO that lost a segment, must fail the read with EIO and
a log line that names the backup, never serve wrong bytes.

Swift only (@pytest.mark.backends("swift")): Trove's objects live in Swift
(see test_trove_import.py)."""

import errno
import os
import random
import threading
import uuid

import pytest
from trove import (KINDS, Backup, Legacy, api_list, key_file, new_backup,
                   run_import, store, trove_object)

pytestmark = pytest.mark.backends("swift")

KiB = 1 << 10
MiB = 1 << 20
# The reader's log line for a backup it refuses: "Trove backup
# <instance>/<timestamp> (<object>): <why>".
BACKUP_ERROR = r"^backupfs: error: Trove backup [0-9a-f-]+/[0-9TZ:-]+ \("


@pytest.fixture(scope="module")
def legacy(backend):
    lg = Legacy(backend.swift.account)
    yield lg
    lg.drop()


def import_ok(env, legacy, backups, key=True):
    lst = api_list(env, legacy, backups)
    r = run_import(env, legacy, lst, key=key_file(env) if key else None)
    assert r.returncode == 0, r.describe()


# ---------------------------------------------------------------------------
# One repository with every kind (single objects), large objects, a
# parent and child, and a 6 MiB backup; mounted once for the module.


@pytest.fixture(scope="module")
def imported(util, tmp_path_factory, backend, legacy):
    """(env, mount, {name: Backup}): everything imported, then mounted on
    the state directory the import used (its inflate indexes)."""
    env = util.module_env(tmp_path_factory, "trove-read", backend)
    env.init()
    inst = str(uuid.uuid4())
    backups = {}
    for i, kind in enumerate(sorted(KINDS)):
        backups[kind] = new_backup(legacy, kind, "single", inst,
                                   "2014-05-%02dT03:00:00" % (i + 1), seed=i)
    backups["dlo"] = new_backup(legacy, "md5", "dlo", inst,
                                "2014-06-01T03:00:00", seed=20)
    backups["slo"] = new_backup(legacy, "sha256", "slo", inst,
                                "2014-06-02T03:00:00", seed=21)
    parent = backups["slo"]
    backups["child"] = new_backup(legacy, "gz", "single", inst,
                                  "2014-06-03T03:00:00", seed=22,
                                  parent=parent.id)
    backups["orphan"] = new_backup(legacy, "gz", "single", inst,
                                   "2014-06-04T03:00:00", seed=23,
                                   parent=str(uuid.uuid4()))
    big = Backup("pbkdf2", "slo", random.Random(7).randbytes(6 * MiB), inst,
                 "2014-07-01T03:00:00", name="big")
    backups["big"] = store(legacy, big)
    import_ok(env, legacy, backups.values())
    m = env.mount()
    yield env, m, backups
    util.finish_module_env(env)


@pytest.fixture(scope="module")
def module_mount(imported):
    """For shared_mount: the log lines of each test are checked."""
    return imported[1]


def path_of(m, b):
    return m.backup(b.ts, b.instance)


@pytest.mark.parametrize("which", sorted(KINDS) + ["dlo", "slo", "big"])
def test_reads_back_exact(util, imported, which, shared_mount):
    env, m, backups = imported
    b = backups[which]
    p = path_of(m, b)
    assert os.stat(p).st_size == len(b.plain)
    data = util.read_file(p)
    assert data == b.plain, "%s read back with wrong bytes" % which


def test_listing_shows_exact_sizes(util, imported, shared_mount):
    env, m, backups = imported
    inst = next(iter(backups.values())).instance
    names = sorted(os.listdir(m.inst(inst) / "backups"))
    assert names == sorted([b.ts for b in backups.values()] + ["latest"])
    for b in backups.values():
        assert os.stat(path_of(m, b)).st_size == len(b.plain)
    assert os.readlink(m.inst(inst) / "backups" / "latest") == \
        backups["big"].ts


def test_trove_xattrs(util, imported, legacy, shared_mount):
    env, m, backups = imported
    b = backups["pbkdf2"]
    p = path_of(m, b)
    assert util.xattr(p, "format") == "trove"
    assert util.xattr(p, "trove_id") == b.id
    assert util.xattr(p, "checksum") == legacy.etag(b.object)
    assert util.xattr(p, "datastore") == "mysql"
    assert util.xattr(p, "version") == "5.7"
    assert util.xattr(p, "sha256") == util.sha256(b.plain)
    names = os.listxattr(p)
    for n in ("format", "trove_id", "checksum", "sha256"):
        assert "user.backupfs." + n in names, names


def test_parent_xattr(util, imported, shared_mount):
    env, m, backups = imported
    # imported too: its timestamp, a name beside it
    assert util.xattr(path_of(m, backups["child"]), "parent") == \
        backups["slo"].ts
    # not imported: Trove's id of it
    orphan = backups["orphan"]
    assert util.xattr(path_of(m, orphan), "parent") == orphan.parent


def random_preads(path, plain, count, seed, size=4 * KiB):
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(count):
            off = rng.randrange(0, len(plain) - size)
            got = os.pread(fd, size, off)
            assert got == plain[off:off + size], "pread at %d" % off
    finally:
        os.close(fd)


def test_index_kept_and_random_reads(util, imported, shared_mount):
    env, m, backups = imported
    b = backups["big"]
    util.read_file(path_of(m, b))
    idx = env.state / "trove" / (b.id + ".idx")
    assert idx.is_file(), "no inflate index after a full pass: %s" % idx
    random_preads(path_of(m, b), b.plain, 200, 1)


def test_two_sequential_readers_at_once(util, imported, shared_mount):
    env, m, backups = imported
    b = backups["big"]
    out = {}

    def read(i):
        out[i] = util.read_file(path_of(m, b))

    ts = [threading.Thread(target=read, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert out.get(0) == b.plain and out.get(1) == b.plain


# ---------------------------------------------------------------------------
# A mount that never saw the backups: no index yet


def test_random_reads_before_any_full_pass(util, imported, shared_mount):
    env, _, backups = imported
    b = backups["big"]
    cold = env.base / "cold-state"
    cold.mkdir(exist_ok=True)
    cfg = env.write_config(env.base / "cold.json", state_dir=str(cold))
    m = env.mount(cfg=cfg)
    try:
        p = path_of(m, b)
        # forward, backward, near the end: every one right
        fd = os.open(p, os.O_RDONLY)
        try:
            for off in (5 * MiB, 1 * MiB, len(b.plain) - 4 * KiB, 0):
                assert os.pread(fd, 4 * KiB, off) == \
                    b.plain[off:off + 4 * KiB], "pread at %d" % off
        finally:
            os.close(fd)
    finally:
        assert m.stop() == []


# ---------------------------------------------------------------------------
# Objects changed behind the import's back


@pytest.fixture
def one_imported(util, env, legacy):
    """A fresh repository with one encrypted SLO backup imported; not
    mounted.  Returns (env, backup)."""
    env.init()
    b = new_backup(legacy, "sha256", "slo", created="2015-01-01T03:00:00",
                   seed=31)
    import_ok(env, legacy, [b])
    return env, b


def read_errno(path):
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError as e:
        return e.errno
    return 0


@pytest.mark.log_errors(BACKUP_ERROR + r".*changed since it was imported")
def test_replaced_object_is_eio(util, one_imported, legacy):
    env, b = one_imported
    # the same plaintext encrypted again (a new salt): other bytes
    legacy.delete(b.object)
    legacy.wait_unlisted(b.object)
    legacy.put(b.object, trove_object(b.kind, b.plain))
    m = env.mount()
    p = path_of(m, b)
    assert read_errno(p) == errno.EIO
    assert read_errno(p) == errno.EIO, "the second read served bytes"
    named = [l for l in m.log_text().splitlines()
             if b.instance in l and b.ts in l and "changed" in l]
    assert named, "no log line naming the backup:\n" + m.log_tail()
    assert m.alive()


@pytest.mark.log_errors(BACKUP_ERROR + r".*changed since it was imported")
def test_dlo_lost_segment_is_eio(util, env, legacy):
    env.init()
    b = new_backup(legacy, "md5", "dlo", created="2015-02-01T03:00:00",
                   seed=32)
    import_ok(env, legacy, [b])
    seg = "%s_%08d" % (b.id, 1)
    legacy.delete(seg)
    legacy.wait_unlisted(seg)
    m = env.mount()
    assert read_errno(path_of(m, b)) == errno.EIO
    assert m.alive()
