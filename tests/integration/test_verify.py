# SPDX-License-Identifier: Apache-2.0
"""backupctl verify: every chunk of a backup read and checked (GCM tag,
size, the SHA-256 of the whole stream), and imported Trove backups
decoded whole; one line per backup, a bar on a terminal, --json, exit
status 0 (all ok), 1 (any bad or not checked), 2 (usage).

A SHA-256 mismatch with every chunk intact cannot be made here without
sealing a manifest with the key (Python's standard library has no
AES-GCM): tests/unit/test_verify.c makes one with the repository API."""

import errno
import json
import os
import pty
import re
import select
import subprocess
import uuid

import pytest
from trove import (Legacy, api_list, key_file, new_backup, run_import,
                   trove_object)

MiB = 1 << 20

TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
HEX64 = r"[0-9a-f]{64}"
OK_RE = re.compile(r"^ok (\S+)/(%s) \((\d+) bytes, (\d+) chunks, "
                   r"\d+\.\d MB/s\)$" % TS)
BAD_CHUNK_RE = re.compile(r"^BAD (\S+)/(%s): chunk (%s) at offset (\d+): "
                          r"(.+)$" % (TS, HEX64))
SUMMARY_RE = re.compile(r"^verify: (\d+) ok, (\d+) bad, (\d+) errors, "
                        r"(\d+) gone$")
JSON_KEYS = {"instance", "timestamp", "result", "reason", "format", "size",
             "chunks", "object", "bytes_checked", "seconds", "mb_per_s",
             "bad_chunks", "bad_chunks_total"}


def verify(env, *args):
    r = env.ctl("verify", *args, check=False)
    print(r.describe())  # in the report of a failing test
    assert "Sanitizer" not in r.stderr, r.describe()
    return r


def verify_json(env, *args):
    r = verify(env, *args, "--json")
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        pytest.fail("verify --json printed no JSON:\n" + r.describe())


def listed(env, instance="vol1"):
    """{timestamp: entry} of list --json, oldest first."""
    r = env.ctl("--json", "list", instance)
    return {e["timestamp"]: e for e in json.loads(r.stdout)}


def chunk_id(name):
    return name.rsplit("/", 1)[1]


def flip_byte(env, name):
    data = bytearray(env.read_object(name))
    data[len(data) // 2] ^= 0xFF
    env.write_object(name, bytes(data))


@pytest.fixture
def big(util, env):
    """vol1 with 8 MiB of random data (several chunks of 1 MiB, the size
    set at init), one backup; not mounted.  Returns (env, timestamp, the
    backup's chunk objects)."""
    env.add_instance("vol1", tree=lambda d: util.write_random(
        d / "data.bin", 8 * MiB, 42))
    env.init(chunk_size="1M")
    env.snapshot("vol1")
    chunks = env.objects("chunks/")
    assert len(chunks) >= 3, "expected several chunks: %s" % chunks
    (ts,) = listed(env)
    return env, ts, chunks


# ---------------------------------------------------------------------------
# A good backup


def test_good_backup_ok(util, vol1):
    r = verify(vol1, "vol1")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 1, lines
    m = OK_RE.match(lines[0])
    assert m, lines[0]
    (ts, e), = listed(vol1).items()
    assert m.group(1) == "vol1" and m.group(2) == ts
    assert int(m.group(3)) == e["size"]
    assert int(m.group(4)) >= 1


def test_timestamp_given(util, vol1):
    (ts,) = listed(vol1)
    r = verify(vol1, "vol1", ts)
    assert r.returncode == 0
    assert OK_RE.match(r.stdout.strip()).group(2) == ts


def test_latest_by_default(util, vol1):
    vol1.snapshot("vol1", label="second")
    first, second = listed(vol1)
    r = verify(vol1, "vol1")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and OK_RE.match(lines[0]).group(2) == second


def test_verify_while_mounted(util, vol1):
    """It only reads the repository: a mount on the same state directory,
    reading at the same time, is no obstacle, and the mount goes on."""
    m = vol1.mount()
    ts = m.backups()[0]
    with open(m.backup(ts), "rb") as f:
        head = f.read(4096)
        r = verify(vol1, "vol1", ts)
        rest = f.read()
    assert r.returncode == 0, r.describe()
    assert OK_RE.match(r.stdout.strip())
    assert util.sha256(head + rest) == util.xattr(m.backup(ts), "sha256")
    r = verify(vol1, "--all")
    assert r.returncode == 0
    assert m.alive()


# ---------------------------------------------------------------------------
# Damaged backups


def test_flipped_byte_names_the_chunk(big):
    env, ts, chunks = big
    name = max(chunks, key=lambda n: (chunks[n], n))
    flip_byte(env, name)
    r = verify(env, "vol1")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 1, lines
    m = BAD_CHUNK_RE.match(lines[0])
    assert m, lines[0]
    assert m.group(1) == "vol1" and m.group(2) == ts
    assert m.group(3) == chunk_id(name)
    assert int(m.group(4)) < listed(env)[ts]["size"]
    assert m.group(5) == "failed authentication"


def test_deleted_chunk_is_missing(big):
    env, ts, chunks = big
    name = sorted(chunks)[1]
    env.delete_object(name)
    r = verify(env, "vol1", ts)
    assert r.returncode == 1
    m = BAD_CHUNK_RE.match(r.stdout.strip())
    assert m, r.stdout
    assert m.group(3) == chunk_id(name) and m.group(5) == "missing"


def test_every_bad_chunk_reported(big):
    """A bad chunk does not stop the run: each gets its line, in stream
    order, and the offsets say where."""
    env, ts, chunks = big
    names = sorted(chunks)[:2]
    flip_byte(env, names[0])
    env.delete_object(names[1])
    r = verify(env, "vol1")
    assert r.returncode == 1
    got = [BAD_CHUNK_RE.match(l) for l in r.stdout.splitlines()]
    assert len(got) == 2 and all(got), r.stdout
    assert {m.group(3): m.group(5) for m in got} == {
        chunk_id(names[0]): "failed authentication",
        chunk_id(names[1]): "missing"}
    assert int(got[0].group(4)) < int(got[1].group(4))


def test_bad_chunk_json(big):
    env, ts, chunks = big
    name = max(chunks, key=lambda n: (chunks[n], n))
    flip_byte(env, name)
    r, out = verify_json(env, "vol1")
    assert r.returncode == 1
    assert len(out) == 1
    e = out[0]
    assert set(e) == JSON_KEYS
    assert e["result"] == "bad"
    assert e["bad_chunks_total"] == 1
    (b,) = e["bad_chunks"]
    assert b["id"] == chunk_id(name)
    assert b["reason"] == "failed authentication"
    assert 0 < b["size"] <= e["size"] and b["offset"] + b["size"] <= e["size"]
    assert e["reason"] == "chunk %s at offset %d: failed authentication" % (
        b["id"], b["offset"])
    assert e["bytes_checked"] == e["size"] - b["size"]


@pytest.mark.log_errors()
def test_mount_reads_fail_where_verify_says(util, big):
    """What verify calls bad, a sequential read through the mount refuses
    (EIO) there: at the chunk's offset, or up to the kernel's readahead
    before it (a page straddling the offset cannot be served whole)."""
    env, ts, chunks = big
    name = max(chunks, key=lambda n: (chunks[n], n))
    flip_byte(env, name)
    _, out = verify_json(env, "vol1")
    off = out[0]["bad_chunks"][0]["offset"]
    m = env.mount()
    got = 0
    with open(m.backup(ts), "rb", buffering=0) as f:
        with pytest.raises(OSError) as e:
            while True:
                b = f.read(128 * 1024)
                assert b, "the whole backup read without an error"
                got += len(b)
    assert e.value.errno == errno.EIO
    assert off - MiB <= got <= off, (got, off)


# ---------------------------------------------------------------------------
# --all


@pytest.fixture
def two_and_other(util, env):
    """vol1 with two backups of different random data, the older one's
    largest chunk (only it can hold that data) with a flipped byte; vol2
    with one good backup.  Returns (env, old ts, new ts, the chunk id)."""
    src = env.add_instance("vol1", tree=lambda d: util.write_random(
        d / "data.bin", 4 * MiB, 1))
    env.add_instance("vol2", tree="sample")
    env.init()
    env.snapshot("vol2")
    before = env.objects("chunks/")
    env.snapshot("vol1", label="one")
    first = {n: s for n, s in env.objects("chunks/").items()
             if n not in before}
    util.write_random(src / "data.bin", 4 * MiB, 2)
    env.snapshot("vol1", label="two")
    old, new = listed(env)
    name = max(first, key=lambda n: (first[n], n))
    flip_byte(env, name)
    return env, old, new, chunk_id(name)


def test_all_of_an_instance(two_and_other):
    env, old, new, cid = two_and_other
    r = verify(env, "vol1", "--all")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 3, lines
    bad = BAD_CHUNK_RE.match(lines[0])
    assert bad and bad.group(2) == old and bad.group(3) == cid, lines[0]
    ok = OK_RE.match(lines[1])
    assert ok and ok.group(2) == new, lines[1]
    assert SUMMARY_RE.match(lines[2]).groups() == ("1", "1", "0", "0")


def test_latest_is_ok_when_only_an_older_one_is_bad(two_and_other):
    env, old, new, cid = two_and_other
    r = verify(env, "vol1")
    assert r.returncode == 0
    assert OK_RE.match(r.stdout.strip()).group(2) == new


def test_all_of_every_instance(two_and_other):
    env, old, new, cid = two_and_other
    r = verify(env, "--all")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert SUMMARY_RE.match(lines[-1]).groups() == ("2", "1", "0", "0")
    verdicts = {}
    for line in lines[:-1]:
        m = OK_RE.match(line) or BAD_CHUNK_RE.match(line)
        assert m, line
        verdicts[(m.group(1), m.group(2))] = line.split()[0]
    vol2 = listed(env, "vol2")
    assert verdicts == {("vol1", old): "BAD", ("vol1", new): "ok",
                        ("vol2", next(iter(vol2))): "ok"}


def test_all_json(two_and_other):
    env, old, new, cid = two_and_other
    r, out = verify_json(env, "--all")
    assert r.returncode == 1
    assert [(e["instance"], e["timestamp"], e["result"]) for e in out] == [
        ("vol1", old, "bad"), ("vol1", new, "ok"),
        ("vol2", next(iter(listed(env, "vol2"))), "ok")]
    for e in out:
        assert set(e) == JSON_KEYS
        assert e["format"] == "tar" and e["object"] is None
        assert e["chunks"] >= 1 and e["seconds"] >= 0
    ok = out[1]
    assert ok["reason"] is None and ok["bad_chunks"] == []
    assert ok["bad_chunks_total"] == 0
    assert ok["bytes_checked"] == ok["size"] == listed(env)[new]["size"]
    assert [b["id"] for b in out[0]["bad_chunks"]] == [cid]


def test_json_before_the_command(vol1):
    r = vol1.ctl("--json", "verify", "vol1", check=False)
    assert r.returncode == 0, r.describe()
    (e,) = json.loads(r.stdout)
    assert e["result"] == "ok" and e["reason"] is None


def test_all_of_an_empty_repository(env):
    env.add_instance("vol1")
    env.init()
    r = verify(env, "--all")
    assert r.returncode == 0
    assert SUMMARY_RE.match(r.stdout.strip()).groups() == ("0", "0", "0",
                                                           "0")


# ---------------------------------------------------------------------------
# Missing backups and usage


def test_missing_timestamp(vol1):
    r = verify(vol1, "vol1", "2001-01-01T00:00:00Z")
    assert r.returncode == 1
    assert r.stdout.strip() == \
        "ERROR vol1/2001-01-01T00:00:00Z: no such backup"


def test_instance_without_backups(vol1):
    r = verify(vol1, "nosuch")
    assert r.returncode == 1
    assert "nosuch" in r.stderr and not r.stdout


@pytest.mark.parametrize("args", [
    [], ["vol1", "2001-01-01T00:00:00Z", "--all"], ["vol1", "yesterday"],
    ["vol1", "2001-01-01T00:00:00Z", "extra"], ["../x"], ["--bogus"]])
def test_usage_errors(vol1, args):
    r = verify(vol1, *args)
    assert r.returncode == 2
    assert "usage" in r.stderr and not r.stdout


def test_help_documents_verify(util):
    r = util.run([util.BACKUPCTL, "--help"])
    assert r.returncode == 0
    assert "verify INSTANCE [TIMESTAMP | --all]" in r.stdout
    assert "verify --all" in r.stdout


# ---------------------------------------------------------------------------
# The progress bar


def run_on_tty(args, timeout=120):
    """args with stderr on a pseudo-terminal: (exit status, stdout,
    what the terminal got)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        slave = -1
        tty = b""
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                p.kill()
                pytest.fail("no output and no end in %d s" % timeout)
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not b:
                break
            tty += b
        out = p.stdout.read()
        return p.wait(timeout), out.decode(), tty.decode("utf-8", "replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_progress_bar_on_a_terminal(util, big):
    env, ts, chunks = big
    rc, out, tty = run_on_tty([util.BACKUPCTL, "--config", str(env.cfg),
                               "verify", "vol1"])
    assert rc == 0, (out, tty)
    assert OK_RE.match(out.strip()), out
    assert "\r[" in tty and "%" in tty, repr(tty)
    # and not when stderr is no terminal
    r = verify(env, "vol1")
    assert "\r" not in r.stderr


# ---------------------------------------------------------------------------
# Imported Trove backups.  Swift only (@pytest.mark.backends("swift")):
# Trove's objects live in a container of the repository's Swift account
# (see test_trove_import.py); a local repository has none.


@pytest.fixture
def legacy(backend):
    lg = Legacy(backend.swift.account)
    yield lg
    lg.drop()


@pytest.fixture
def imported(env, legacy):
    """An encrypted SLO, an encrypted single object and a plain one, Trove
    backups of one instance, imported.  Returns (env, {name: Backup})."""
    env.init()
    inst = str(uuid.uuid4())
    backups = {
        "slo": new_backup(legacy, "sha256", "slo", inst,
                          "2015-01-01T03:00:00", seed=41),
        "single": new_backup(legacy, "md5", "single", inst,
                             "2015-01-02T03:00:00", seed=42),
        "plain": new_backup(legacy, "gz", "single", inst,
                            "2015-01-03T03:00:00", seed=43),
    }
    r = run_import(env, legacy, api_list(env, legacy, backups.values()),
                   key=key_file(env))
    assert r.returncode == 0, r.describe()
    return env, backups


def in_order(backups):
    return sorted(backups.values(), key=lambda b: b.ts)


TROVE_OK_RE = re.compile(r"^ok (\S+)/(%s) \((\d+) bytes, Trove object "
                         r"(\S+), \d+\.\d MB/s\)$" % TS)


@pytest.mark.backends("swift")
def test_trove_backups_verify_ok(imported):
    env, backups = imported
    inst = backups["slo"].instance
    r = verify(env, inst, "--all")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 4, lines
    for line, b in zip(lines, in_order(backups)):
        m = TROVE_OK_RE.match(line)
        assert m, line
        assert (m.group(1), m.group(2)) == (inst, b.ts)
        assert int(m.group(3)) == len(b.plain)
        assert m.group(4) == b.object
    assert SUMMARY_RE.match(lines[3]).groups() == ("3", "0", "0", "0")
    _, out = verify_json(env, inst, backups["slo"].ts)
    (e,) = out
    assert e["result"] == "ok" and e["format"] == "trove"
    assert e["object"] == backups["slo"].object and e["chunks"] == 0
    assert e["bytes_checked"] == e["size"] == len(backups["slo"].plain)


@pytest.mark.backends("swift")
def test_trove_replaced_object_is_bad(imported, legacy):
    env, backups = imported
    b = backups["single"]
    # the same plaintext encrypted again (a new salt): other bytes
    legacy.delete(b.object)
    legacy.wait_unlisted(b.object)
    legacy.put(b.object, trove_object(b.kind, b.plain))
    r = verify(env, b.instance, "--all")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 4, lines
    assert TROVE_OK_RE.match(lines[0]) and TROVE_OK_RE.match(lines[2])
    assert lines[1].startswith("BAD %s/%s: Trove object %s: "
                               % (b.instance, b.ts, b.object)), lines[1]
    assert "changed since it was imported" in lines[1]
    assert SUMMARY_RE.match(lines[3]).groups() == ("2", "1", "0", "0")


@pytest.mark.backends("swift")
def test_trove_deleted_object_is_bad(imported, legacy):
    env, backups = imported
    b = backups["plain"]
    legacy.delete(b.object)
    legacy.wait_unlisted(b.object)
    r, out = verify_json(env, b.instance, b.ts)
    assert r.returncode == 1
    (e,) = out
    assert e["result"] == "bad" and "the object is gone" in e["reason"]


@pytest.mark.backends("swift")
def test_trove_lost_key_record_is_bad(imported):
    """The key lives in the repository, sealed: without its record the
    encrypted backups cannot be read, the plain one still can."""
    env, backups = imported
    inst = backups["slo"].instance
    key = listed(env, inst)[backups["slo"].ts]["trove"]["key"]
    env.delete_object("records/keys/" + key)
    r, out = verify_json(env, inst, "--all")
    assert r.returncode == 1
    got = {e["timestamp"]: e for e in out}
    for name in ("slo", "single"):
        e = got[backups[name].ts]
        assert e["result"] == "bad"
        assert "key record %s is missing" % key in e["reason"], e
    assert got[backups["plain"].ts]["result"] == "ok"
