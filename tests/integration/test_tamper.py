# SPDX-License-Identifier: Apache-2.0
"""A tampered chunk: reads fail with EIO and never return wrong bytes;
the daemon logs an error naming the chunk and keeps running."""

import errno
import os
import random
import re

import pytest

MiB = 1 << 20

# every test here provokes errors in the daemon log on purpose
pytestmark = pytest.mark.log_errors()


def chunk_objects(env):
    """{name: size} of the chunk objects of env's repository."""
    return env.objects("chunks/")


@pytest.fixture
def tampered(util, env):
    """vol2 (sample tree) and vol1 (8 MiB random) backed up; the largest
    chunk of vol1's backup gets one byte flipped in its middle; then
    mounted with a fresh state dir (nothing cached anywhere).  Returns
    (mount, the true stream of vol1's backup, the chunk's object name)."""
    env.add_instance("vol2", tree="sample")
    src = env.add_instance("vol1", tree=lambda d: util.write_random(
        d / "data.bin", 8 * MiB, 42))
    env.init()
    env.snapshot("vol2")
    before = chunk_objects(env)
    env.snapshot("vol1")
    after = chunk_objects(env)
    mine = set(after) - set(before)
    assert mine, "vol1's backup added no chunk object"

    m = env.mount()
    true = util.read_file(m.backup(m.backups()[0]))
    util.assert_same_tree(util.tree_of_tar(true), util.tree_of_dir(src),
                          "untampered backup vs source")
    problems = m.stop()
    assert not problems, problems

    chunk = max(mine, key=lambda n: (after[n], n))
    data = bytearray(env.read_object(chunk))
    data[len(data) // 2] ^= 0xFF
    env.write_object(chunk, bytes(data))

    cold = env.base / "cold-state"
    cold.mkdir()
    cfg = env.write_config(env.base / "cold.json", state_dir=str(cold))
    return env.mount(cfg=cfg), true, chunk


def read_until_error(path, block=128 * 1024):
    """Sequential read: (bytes before the error, the OSError or None)."""
    parts = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(10000):
            try:
                b = os.read(fd, block)
            except OSError as e:
                return b"".join(parts), e
            if not b:
                break
            parts.append(b)
    finally:
        os.close(fd)
    return b"".join(parts), None


def test_read_fails_with_eio(tampered):
    m, true, chunk = tampered
    got, err = read_until_error(m.backup(m.backups()[0]))
    assert err is not None, "the whole tampered backup read without error"
    assert err.errno == errno.EIO, err


def test_bytes_before_eio_are_a_prefix(tampered):
    m, true, chunk = tampered
    got, err = read_until_error(m.backup(m.backups()[0]))
    assert err is not None, "the whole tampered backup read without error"
    assert got == true[:len(got)], "wrong bytes served before the error"


def test_read_again_still_eio(tampered):
    m, true, chunk = tampered
    path = m.backup(m.backups()[0])
    read_until_error(path)
    got, err = read_until_error(path)
    assert err is not None and err.errno == errno.EIO, err
    assert got == true[:len(got)]


def read_range(fd, off, length):
    """pread until length bytes, EOF or an error: (bytes, errno or 0).
    A read may stop short where a bad chunk begins; the next one fails."""
    got = b""
    for _ in range(1000):
        if len(got) >= length:
            break
        try:
            b = os.pread(fd, length - len(got), off + len(got))
        except OSError as e:
            return got, e.errno
        if not b:
            break
        got += b
    return got, 0


def test_random_preads_eio_or_correct(tampered):
    m, true, chunk = tampered
    rng = random.Random(77)
    eio = 0
    fd = os.open(m.backup(m.backups()[0]), os.O_RDONLY)
    try:
        ranges = [(off, MiB) for off in range(0, len(true), MiB)]
        ranges += [(rng.randrange(len(true)), rng.randint(1, 300000))
                   for _ in range(200)]
        for off, length in ranges:
            got, err = read_range(fd, off, length)
            assert got == true[off:off + len(got)], \
                "wrong bytes in %d+%d" % (off, length)
            if err:
                assert err == errno.EIO, os.strerror(err)
                eio += 1
            else:
                assert len(got) == min(length, len(true) - off), \
                    "short read at %d+%d without an error" % (off, length)
    finally:
        os.close(fd)
    assert eio, "no read of the tampered backup failed"


def test_error_logged_naming_chunk(util, tampered):
    m, true, chunk = tampered
    read_until_error(m.backup(m.backups()[0]))
    cid = chunk.rsplit("/", 1)[1]
    lines = [l for l in m.log_text().splitlines()
             if util.ERROR_LINE_RE.search(l)]
    named = [l for l in lines
             if any(len(h) >= 12 and cid.startswith(h.lower())
                    for h in re.findall(r"[0-9a-fA-F]{12,}", l))]
    assert named, "no error line names chunk %s:\n%s" % (
        cid, "\n".join(lines[:20]))


def test_daemon_survives(util, tampered):
    m, true, chunk = tampered
    read_until_error(m.backup(m.backups()[0]))
    assert m.alive(), m.log_tail()
    assert util.status(m.inst())["state"] in util.STATES


def test_other_backup_still_readable(util, tampered, env):
    m, true, chunk = tampered
    read_until_error(m.backup(m.backups()[0]))
    p = m.backup(m.backups("vol2")[0], "vol2")
    data = util.read_file(p)
    assert util.sha256(data) == util.xattr(p, "sha256")
    util.assert_same_tree(util.tree_of_tar(data),
                          util.tree_of_dir(env.src("vol2")), "vol2 backup")
