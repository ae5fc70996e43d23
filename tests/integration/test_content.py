# SPDX-License-Identifier: Apache-2.0
"""Content through the mount: one instance per case (a single file of a
boundary size, a large incompressible file, a compressible one, awkward
names), each backed up once; whole-file compares against the source,
seeded random preads, parallel readers.

One repository and one mount serve the whole module (shared_mount checks
the daemon log per test)."""

import errno
import hashlib
import os
import random
import threading

import pytest

MiB = 1 << 20

# instance id -> size of its single file "data.bin" (None: a tree)
SINGLE = {
    "size0": 0,
    "size1": 1,
    "mib-minus-1": MiB - 1,
    "mib": MiB,
    "mib-plus-1": MiB + 1,
    "large": 64 * MiB,
    "text": 32 * MiB,
}
CASES = list(SINGLE) + ["names"]
BIG = ["mib-plus-1", "text", "large"]

NAMES = {
    "with space.txt": b"spaces\n",
    "  leading": b"leading spaces\n",
    "trailing ": b"trailing space\n",
    "ünïcødé.txt": "ünïcødé\n".encode(),
    "日本語/ファイル.txt": "日本語\n".encode(),
    "emoji 🎉.bin": bytes(range(256)) * 9,
    "ü" * 60 + ".txt": b"a name over 100 bytes (pax)\n",
    "d" * 60 + "/" + "e" * 60 + "/" + "f" * 60 + ".dat": b"a long path\n",
    "quote\"'back\\slash": b"quoting\n",
    "per%cent#hash&amp;": b"url-ish\n",
}


def fill_names(d):
    for rel, data in NAMES.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    os.symlink("ünïcødé.txt", d / "link to ü")
    os.symlink("日本語", d / "dir link")


def fill_single(util, name, size):
    def fill(d):
        if name == "text":
            (d / "data.bin").write_bytes(util.make_text(size, 3))
        else:
            util.write_random(d / "data.bin", size, size)
    return fill


_streams = {}   # case -> its verified backup stream (see stream())


@pytest.fixture(scope="module")
def module_mount(util, tmp_path_factory, backend):
    env = util.module_env(tmp_path_factory, "content", backend)
    with util.Watchdog(600, "the content module's setup"):
        for name, size in SINGLE.items():
            env.add_instance(name, tree=fill_single(util, name, size))
        env.add_instance("names", tree=fill_names)
        env.init()
        for name in CASES:
            env.snapshot(name, label="content")
        m = env.mount()
    m.env = env
    yield m
    _streams.clear()
    util.finish_module_env(env)


def stream(util, m, case):
    """The backup of case, read whole once and checked against its source
    (cached for the module once it passed)."""
    if case not in _streams:
        data = util.read_file(m.backup(m.backups(case)[0], case))
        util.assert_same_tree(util.tree_of_tar(data),
                              util.tree_of_dir(m.env.src(case)),
                              "backup of %s vs source" % case)
        _streams[case] = data
    return _streams[case]


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, n)):
                if a[j] != b[j]:
                    return j
    return n


def check_range(got, want, off, length):
    assert len(got) == len(want), \
        "pread(%d bytes at %d): %d bytes back, want %d" % (
            length, off, len(got), len(want))
    if got != want:
        pytest.fail("pread(%d bytes at %d): first wrong byte at +%d"
                    % (length, off, first_diff(got, want)))


@pytest.mark.parametrize("case", CASES)
def test_one_backup(shared_mount, case):
    assert len(shared_mount.backups(case)) == 1


@pytest.mark.parametrize("case", CASES)
def test_stream_matches_source(util, shared_mount, case):
    data = util.read_file(shared_mount.backup(shared_mount.backups(case)[0],
                                              case))
    util.assert_same_tree(util.tree_of_tar(data),
                          util.tree_of_dir(shared_mount.env.src(case)),
                          "backup of %s vs source" % case)


@pytest.mark.parametrize("case", CASES)
def test_size(util, shared_mount, case):
    p = shared_mount.backup(shared_mount.backups(case)[0], case)
    n = len(stream(util, shared_mount, case))
    assert os.stat(p).st_size == n
    assert util.xattr(p, "size") == str(n)


@pytest.mark.parametrize("case", CASES)
def test_sha256_xattr(util, shared_mount, case):
    p = shared_mount.backup(shared_mount.backups(case)[0], case)
    assert util.xattr(p, "sha256") == util.sha256(stream(util, shared_mount,
                                                         case))


@pytest.mark.parametrize("case", list(SINGLE))
def test_file_bytes_in_stream(util, shared_mount, case):
    data = stream(util, shared_mount, case)
    off, size = util.tar_member_data(data, "data.bin")
    src = (shared_mount.env.src(case) / "data.bin").read_bytes()
    assert size == len(src) == SINGLE[case]
    check_range(data[off:off + size], src, off, size)


@pytest.mark.parametrize("case", BIG)
@pytest.mark.parametrize("block", [4096, 65536 + 7, 3 * MiB])
def test_sequential_reads(util, shared_mount, case, block):
    want = stream(util, shared_mount, case)
    parts = []
    fd = os.open(shared_mount.backup(shared_mount.backups(case)[0], case),
                 os.O_RDONLY)
    try:
        for _ in range(len(want) // block + 2):
            b = os.read(fd, block)
            if not b:
                break
            parts.append(b)
    finally:
        os.close(fd)
    got = b"".join(parts)
    check_range(got, want, 0, len(want))


def random_ranges(seed, size, n, maxlen=300000):
    """n (offset, length) pairs: uniform, straddling 1 MiB boundaries,
    reaching EOF, past EOF."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.randint(1, maxlen)
        kind = i % 4
        if kind == 0 or size == 0:
            off = rng.randrange(max(size, 1))
        elif kind == 1 and size > MiB:
            b = rng.randint(1, size // MiB) * MiB
            off = max(0, b - rng.randint(1, length))
        elif kind == 2:
            off = max(0, size - rng.randint(0, length))
        else:
            off = size + rng.randint(0, 4096) if i % 8 == 3 else \
                rng.randrange(size)
        out.append((off, length))
    return out


@pytest.mark.parametrize("case,n", [("large", 1000), ("text", 300),
                                    ("mib-plus-1", 200), ("names", 100)])
def test_random_preads(util, shared_mount, case, n):
    want = stream(util, shared_mount, case)
    fd = os.open(shared_mount.backup(shared_mount.backups(case)[0], case),
                 os.O_RDONLY)
    try:
        for off, length in random_ranges(1234 + n, len(want), n):
            got = os.pread(fd, length, off)
            check_range(got, want[off:off + length], off, length)
    finally:
        os.close(fd)


def test_preads_at_every_mib_boundary(util, shared_mount):
    want = stream(util, shared_mount, "large")
    fd = os.open(shared_mount.backup(shared_mount.backups("large")[0],
                                     "large"), os.O_RDONLY)
    try:
        for k in range(1, len(want) // MiB + 1):
            for off, length in ((k * MiB - 1, 2), (k * MiB - 4096, 8192),
                                (k * MiB, 1), (k * MiB - 1, 1)):
                got = os.pread(fd, length, off)
                check_range(got, want[off:off + length], off, length)
    finally:
        os.close(fd)


@pytest.mark.parametrize("case", CASES)
def test_pread_at_eof(util, shared_mount, case):
    want = stream(util, shared_mount, case)
    size = len(want)
    fd = os.open(shared_mount.backup(shared_mount.backups(case)[0], case),
                 os.O_RDONLY)
    try:
        assert os.pread(fd, 10, size) == b""
        assert os.pread(fd, 10, size + MiB) == b""
        assert os.pread(fd, 1, size - 1) == want[-1:]
        check_range(os.pread(fd, 5000, max(0, size - 1000)),
                    want[max(0, size - 1000):], max(0, size - 1000), 5000)
    finally:
        os.close(fd)


def run_threads(targets, timeout=240):
    errors = []

    def wrap(fn):
        def go():
            try:
                fn()
            except BaseException as e:  # reported below
                errors.append(e)
        return go

    threads = [threading.Thread(target=wrap(t), daemon=True)
               for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "reader threads hang"
    assert not errors, errors


def test_parallel_sequential_readers(util, shared_mount):
    want = util.sha256(stream(util, shared_mount, "large"))
    path = shared_mount.backup(shared_mount.backups("large")[0], "large")
    digests = []

    def reader(block):
        def go():
            with open(path, "rb", buffering=0) as f:
                h = hashlib.sha256()
                while True:
                    b = f.read(block)
                    if not b:
                        break
                    h.update(b)
            digests.append(h.hexdigest())
        return go

    run_threads([reader(b) for b in (4096, 65536, MiB + 3, 4 * MiB)])
    assert digests == [want] * 4


def test_parallel_random_readers(util, shared_mount):
    want = stream(util, shared_mount, "large")
    path = shared_mount.backup(shared_mount.backups("large")[0], "large")

    def reader(seed):
        def go():
            fd = os.open(path, os.O_RDONLY)
            try:
                for off, length in random_ranges(seed, len(want), 150):
                    got = os.pread(fd, length, off)
                    if got != want[off:off + length]:
                        raise AssertionError("thread %d: wrong bytes at %d+%d"
                                             % (seed, off, length))
            finally:
                os.close(fd)
        return go

    run_threads([reader(s) for s in range(4)])


def test_parallel_readers_of_different_backups(util, shared_mount):
    cases = ["large", "text", "mib", "names"]
    want = {c: util.sha256(stream(util, shared_mount, c)) for c in cases}
    got = {}

    def reader(case):
        def go():
            p = shared_mount.backup(shared_mount.backups(case)[0], case)
            got[case] = util.sha256(util.read_file(p))
        return go

    run_threads([reader(c) for c in cases])
    assert got == want


def test_names_survive(util, shared_mount):
    tree = util.tree_of_tar(stream(util, shared_mount, "names"))
    for rel in NAMES:
        assert rel in tree, rel
    assert tree["link to ü"] == ("symlink", "ünïcødé.txt")


@pytest.mark.parametrize("case", ["large", "names"])
def test_missing_backup_twice(util, shared_mount, case):
    p = shared_mount.inst(case) / "backups" / "1999-12-31T23:59:59Z"
    assert util.errno_of(os.lstat, p) == errno.ENOENT
    assert util.errno_of(os.lstat, p) == errno.ENOENT
    assert util.errno_of(os.open, p, os.O_RDONLY) == errno.ENOENT
