# SPDX-License-Identifier: Apache-2.0
"""The couchdb datastore through the mounted filesystem.

Agnostic backups (JSON through the HTTP API) run against pouchdb-server
(fixture couch_server, tools/couch-server.sh), which speaks CouchDB's API
but stores LevelDB, not .couch files.  Native backups (the .couch files)
cannot meet a real CouchDB here: they run on a data directory holding the
real CouchDB files of tests/data/couchdb/ (Apache CouchDB's own test
fixtures), and the instance's service commands are small stand-in shell
scripts (stop/start flip a flag file and log the call; health passes while
the flag says "running" and a path a test names does not exist), so the stop,
swap, start, health check and rollback are exercised for real while no
CouchDB reads the files.  The .couch header check below is written
independently of the C scanner (couch_file.erl's load_header).
"""

import base64
import errno
import hashlib
import io
import json
import os
import random
import tarfile
import threading
import urllib.parse
from pathlib import Path

import pytest

BLOCK = 4096


# ---------------------------------------------------------------------------
# .couch headers, checked in Python


def couch_header_end(data, off):
    """End of a valid header starting at block offset off, or None."""
    if off + 5 > len(data) or data[off] != 1:
        return None
    length = int.from_bytes(data[off + 1:off + 5], "big")
    if length < 18:
        return None
    pos, out = off + 5, bytearray()
    while len(out) < length:
        if pos >= len(data):
            return None
        if pos % BLOCK == 0:
            if data[pos] != 0:
                return None
            pos += 1
            continue
        take = min(length - len(out), BLOCK - pos % BLOCK, len(data) - pos)
        out += data[pos:pos + take]
        pos += take
    sig, body = bytes(out[:16]), bytes(out[16:])
    if hashlib.md5(body).digest() != sig or body[:2] not in (b"\x83\x68",
                                                            b"\x83\x69"):
        return None
    return pos


def couch_valid_end(data):
    """Where the newest valid header ends (0: none)."""
    best = 0
    for off in range(0, len(data), BLOCK):
        end = couch_header_end(data, off)
        if end:
            best = end
    return best


def fixture_dir(util):
    return util.REPO_ROOT / "tests" / "data" / "couchdb"


# ---------------------------------------------------------------------------
# CouchDB API helpers


def q(s):
    return urllib.parse.quote(s, safe="")


def call(couch, method, path, body=None, ok=(200, 201, 202)):
    st, js = couch.request(method, path, body)
    assert st in ok, "%s %s: %s %r" % (method, path, st, js)
    return js


def fresh_db(couch, name):
    couch.request("DELETE", "/" + q(name))
    call(couch, "PUT", "/" + q(name))
    return name


def put(couch, db, doc):
    r = call(couch, "PUT", "/%s/%s" % (q(db), q(doc["_id"])), doc)
    return r["rev"]


def db_state(couch, db):
    """{(id, rev): document with _revisions and attachments} of every leaf
    revision (conflicts and deletions too); None if db does not exist."""
    st, _ = couch.request("GET", "/" + q(db))
    if st == 404:
        return None
    ch = call(couch, "GET", "/%s/_changes?style=all_docs" % q(db))
    out = {}
    for r in ch["results"]:
        for c in r["changes"]:
            doc = call(couch, "GET", "/%s/%s?rev=%s&revs=true&attachments=true"
                       % (q(db), q(r["id"]), q(c["rev"])))
            out[(r["id"], c["rev"])] = doc
    return out


def fill_rich_db(couch, db, n=30):
    """Plain docs, a doc with three revisions, a binary attachment, a
    deleted doc, a design doc and a conflict (two leaves)."""
    fresh_db(couch, db)
    docs = [{"_id": "d%03d" % i, "n": i, "text": "x" * (i % 7)}
            for i in range(n)]
    call(couch, "POST", "/%s/_bulk_docs" % q(db), {"docs": docs})
    rev = put(couch, db, {"_id": "multi", "v": 1})
    rev = put(couch, db, {"_id": "multi", "_rev": rev, "v": 2})
    put(couch, db, {"_id": "multi", "_rev": rev, "v": 3, "u": "ü日本"})
    blob = random.Random(5).randbytes(3000)
    put(couch, db, {"_id": "att", "_attachments": {"blob.bin": {
        "content_type": "application/octet-stream",
        "data": base64.b64encode(blob).decode()}}})
    rev = put(couch, db, {"_id": "gone", "v": 1})
    call(couch, "DELETE", "/%s/gone?rev=%s" % (q(db), rev))
    put(couch, db, {"_id": "_design/app", "views": {"all": {
        "map": "function(doc) { emit(doc._id, 1); }"}}})
    call(couch, "POST", "/%s/_bulk_docs" % q(db), {"new_edits": False, "docs": [
        {"_id": "conflict", "_rev": "1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "side": "a"},
        {"_id": "conflict", "_rev": "1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
         "side": "b"}]})
    return blob


def mess_up(couch, db):
    """Change db in every way after a backup."""
    rev = call(couch, "GET", "/%s/multi" % q(db))["_rev"]
    put(couch, db, {"_id": "multi", "_rev": rev, "v": 99})
    rev = call(couch, "GET", "/%s/d001" % q(db))["_rev"]
    call(couch, "DELETE", "/%s/d001?rev=%s" % (q(db), rev))
    put(couch, db, {"_id": "new-after-backup", "v": 1})


# ---------------------------------------------------------------------------
# Instances


SERVICE_SH = r"""#!/bin/sh
# Stand-in for CouchDB's service commands (no CouchDB can run here).
d=$(dirname "$0")
echo "$1" >> "$d/calls"
case "$1" in
stop) rm -f "$d/running" ;;
start) touch "$d/running" ;;
health)
	[ -e "$d/running" ] || exit 1
	# fail while the path named in fail-if-exists exists
	[ ! -e "$d/fail-if-exists" ] || [ ! -e "$(cat "$d/fail-if-exists")" ]
	;;
esac
"""


def stand_in_service(base):
    d = Path(base) / "svc"
    d.mkdir(exist_ok=True)
    sh = d / "svc.sh"
    sh.write_text(SERVICE_SH)
    os.chmod(sh, 0o755)
    (d / "running").touch()
    return d, {"start": [str(sh), "start"], "stop": [str(sh), "stop"],
               "health": [str(sh), "health"], "health_timeout": 2}


def svc_calls(svc):
    p = svc / "calls"
    return p.read_text().split() if p.exists() else []


def add_couch(env, couch_url, name="couch1", data_dir=None, **extra):
    base = env.base / name
    base.mkdir(exist_ok=True)
    svc, service = stand_in_service(base)
    inst = {"datastore": "couchdb", "url": couch_url,
            "data_dir": str(data_dir or base / "data"),
            "os_user": "nobody", "service": service}
    inst.update(extra)
    env.instances[name] = inst
    return svc


@pytest.fixture
def agn(env, couch_server):
    """env with couch instance couch1 on pouchdb-server, mounted; returns
    (mount, couch, unique db name prefix)."""
    add_couch(env, couch_server.url)
    env.init()
    m = env.mount()
    prefix = "t%s-" % os.urandom(4).hex()
    yield m, couch_server, prefix
    for db in call(couch_server, "GET", "/_all_dbs"):
        if db.startswith(prefix):
            couch_server.request("DELETE", "/" + q(db))


def agnostic_snapshot(util, m, label, tables=None):
    s = {"format": "agnostic"}
    if tables:
        s["tables"] = tables
    return util.snapshot_via_mount(m.inst("couch1"), label, json.dumps(s))[0]


def restore(util, m, data, name="r1"):
    """Write data into restore/ (bytes or a backup path): the errno."""
    dst = m.inst("couch1") / "restore" / name
    if isinstance(data, (bytes, bytearray)):
        return util.create_job_file(dst, bytes(data))
    return util.restore_errno(data, dst)


def last_restore_error(util, m):
    return util.status(m.inst("couch1"))["last"]["restore"]["error"] or ""


# ---------------------------------------------------------------------------
# Agnostic


def test_agnostic_roundtrip_keeps_revisions_and_attachments(util, agn):
    m, couch, p = agn
    a, b = p + "alpha", p + "beta"
    fill_rich_db(couch, a)
    fill_rich_db(couch, b, n=5)
    want = {a: db_state(couch, a), b: db_state(couch, b)}
    assert len(want[a]) == 30 + 6  # multi, att, gone, design, 2 leaves
    ts = agnostic_snapshot(util, m, "json1")
    mess_up(couch, a)
    couch.request("DELETE", "/" + q(b))
    assert db_state(couch, a) != want[a]
    assert restore(util, m, m.backup(ts, "couch1")) == 0
    for db in (a, b):
        got = db_state(couch, db)
        assert got == want[db], db
    # the history of the three-revision doc, and its attachment, survive
    multi = call(couch, "GET", "/%s/multi?revs=true" % q(a))
    assert multi["_rev"].startswith("3-")
    assert len(multi["_revisions"]["ids"]) == 3
    att = call(couch, "GET", "/%s/att?attachments=true" % q(a))
    assert base64.b64decode(att["_attachments"]["blob.bin"]["data"]) == \
        random.Random(5).randbytes(3000)
    # the deleted doc is still deleted, with its tombstone revision
    assert couch.request("GET", "/%s/gone" % q(a))[0] == 404
    tomb = [d for (i, r), d in db_state(couch, a).items() if i == "gone"]
    assert len(tomb) == 1 and tomb[0]["_deleted"] is True, tomb
    assert tomb[0]["_rev"].startswith("2-")


def test_agnostic_stream_format_and_xattrs(util, agn):
    m, couch, p = agn
    a = p + "fmt"
    fill_rich_db(couch, a, n=3)
    ts = agnostic_snapshot(util, m, "fmt", [a])
    path = m.backup(ts, "couch1")
    data = util.read_file(path)
    assert data.startswith(b'{"backupfs_couchdb"')
    lines = [json.loads(l) for l in data.decode().splitlines()]
    assert lines[0]["databases"] == [a]
    assert lines[0]["datastore_version"] == "4.2.0"
    trailer = lines[-1]
    docs = [l for l in lines if "doc" in l]
    assert trailer == {"backupfs_couchdb_end": 1, "databases": 1,
                       "docs": len(docs)}
    assert len(docs) == 3 + 6  # a conflict is two leaves
    assert all("_revisions" in d["doc"] for d in docs)
    assert util.xattr(path, "format") == "couch-json"
    assert util.xattr(path, "datastore") == "couchdb"
    assert util.xattr(path, "version") == "4.2.0"
    assert json.loads(util.xattr(path, "strategy"))["tables"] == [a]


def test_per_database_backup_restores_only_those(util, agn):
    m, couch, p = agn
    a, b = p + "only", p + "other"
    fill_rich_db(couch, a, n=4)
    fill_rich_db(couch, b, n=4)
    want_a = db_state(couch, a)
    ts = agnostic_snapshot(util, m, "only-a", [a])
    header = json.loads(util.read_file(m.backup(ts, "couch1"))
                        .split(b"\n", 1)[0])
    assert header["databases"] == [a]
    mess_up(couch, a)
    mess_up(couch, b)
    want_b = db_state(couch, b)
    assert restore(util, m, m.backup(ts, "couch1")) == 0
    assert db_state(couch, a) == want_a
    assert db_state(couch, b) == want_b  # untouched


def test_backupctl_tables_lists_the_databases(util, env, agn):
    m, couch, p = agn
    call(couch, "PUT", "/" + q(p + "listed"))
    r = env.ctl("tables", "couch1", "--json")
    assert p + "listed" in json.loads(r.stdout)


def test_system_databases_left_out_unless_listed(util, agn):
    m, couch, p = agn
    fresh_db(couch, p + "user")
    ts = agnostic_snapshot(util, m, "all")
    dbs = json.loads(util.read_file(m.backup(ts, "couch1"))
                     .split(b"\n", 1)[0])["databases"]
    assert p + "user" in dbs
    assert not [d for d in dbs if d.startswith("_")], dbs
    ts = agnostic_snapshot(util, m, "users", ["_users"])
    dbs = json.loads(util.read_file(m.backup(ts, "couch1"))
                     .split(b"\n", 1)[0])["databases"]
    assert dbs == ["_users"]


@pytest.mark.log_errors("restore", "truncated", "corrupt", "trailer")
@pytest.mark.parametrize("damage", ["cut-mid-line", "cut-at-line",
                                    "doc-removed", "not-json"])
def test_damaged_json_backup_fails_and_changes_nothing(util, agn, damage):
    m, couch, p = agn
    a = p + "dmg"
    fill_rich_db(couch, a, n=20)
    ts = agnostic_snapshot(util, m, "dmg", [a])
    data = util.read_file(m.backup(ts, "couch1"))
    lines = data.split(b"\n")
    if damage == "cut-mid-line":
        bad = data[:len(data) // 2]
    elif damage == "cut-at-line":
        bad = b"\n".join(lines[:5]) + b"\n"
    elif damage == "doc-removed":
        bad = b"\n".join(lines[:3] + lines[4:])
    else:
        bad = data.replace(b'"_rev"', b'"_rev', 1)
    mess_up(couch, a)
    before = db_state(couch, a)
    assert restore(util, m, bad) == errno.EINVAL
    assert db_state(couch, a) == before
    assert last_restore_error(util, m)


@pytest.mark.log_errors("restore", "not a CouchDB backup")
@pytest.mark.parametrize("content", [b"PGDMP\x01\x0e\x00 dump", b"\x00" * 5000,
                                     b"-- MariaDB dump 10.19\n"])
def test_foreign_file_fails_with_einval_and_reason(util, agn, content):
    m, couch, p = agn
    a = fresh_db(couch, p + "foreign")
    put(couch, a, {"_id": "keep"})
    before = db_state(couch, a)
    assert restore(util, m, content) == errno.EINVAL
    assert "not a CouchDB backup: the file is" in last_restore_error(util, m)
    assert db_state(couch, a) == before


def test_backup_while_a_writer_adds_docs_restores_a_prefix(util, agn):
    m, couch, p = agn
    a = fresh_db(couch, p + "busy")
    first = 1200
    call(couch, "POST", "/%s/_bulk_docs" % q(a),
         {"docs": [{"_id": "w%06d" % i} for i in range(first)]})
    stop = threading.Event()
    written = []

    def writer():
        i = first
        while not stop.is_set() and i < first + 3000:
            put(couch, a, {"_id": "w%06d" % i})
            written.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        ts = agnostic_snapshot(util, m, "busy", [a])
    finally:
        stop.set()
        t.join(60)
    assert restore(util, m, m.backup(ts, "couch1")) == 0
    ids = sorted(k[0] for k in db_state(couch, a))
    # every doc of before the backup, then a gap-free run of the writer's
    assert len(ids) >= first
    assert ids == ["w%06d" % i for i in range(len(ids))]


@pytest.mark.log_errors("restore")
def test_restore_failure_rolls_back_to_saved_state(util, agn):
    # a backup whose second database holds a revision the server refuses
    # ("_rev": "xx"): the first was replaced already and must come back,
    # the second (which did not exist) must be gone again.
    m, couch, p = agn
    a, b = p + "first", p + "second"
    fill_rich_db(couch, a, n=6)
    ts = agnostic_snapshot(util, m, "rb", [a])
    data = util.read_file(m.backup(ts, "couch1")).decode().splitlines()
    hdr = json.loads(data[0])
    hdr["databases"].append(b)
    trailer = json.loads(data[-1])
    trailer["databases"] = 2
    trailer["docs"] += 1
    bad = [json.dumps(hdr)] + data[1:-1] + [
        json.dumps({"db": b}),
        json.dumps({"doc": {"_id": "x", "_rev": "xx"}}),
        json.dumps({"end": b, "docs": 1}),
        json.dumps(trailer)]
    mess_up(couch, a)
    before = db_state(couch, a)
    e = restore(util, m, ("\n".join(bad) + "\n").encode())
    assert e != 0
    assert db_state(couch, a) == before
    assert db_state(couch, b) is None
    assert "rollback failed" not in last_restore_error(util, m)
    assert util.wait_state(m.inst("couch1"))["state"] == "ACTIVE"


def test_interrupted_restore_is_rolled_back_at_the_next_mount(util, env,
                                                              couch_server):
    # What a crash in the middle of an agnostic restore leaves: the
    # journal ("applying") and the saved state of the databases it was
    # replacing.  The next mount puts that state back.
    couch = couch_server
    add_couch(env, couch.url)
    env.init()
    p = "t%s-" % os.urandom(4).hex()
    a, b = p + "kept", p + "half"
    try:
        fill_rich_db(couch, a, n=5)
        want = db_state(couch, a)
        m = env.mount()
        ts = agnostic_snapshot(util, m, "saved", [a])
        saved = util.read_file(m.backup(ts, "couch1"))
        assert m.stop() == []
        state = env.state / "instances" / "couch1"
        (state / "couch-restore-saved.jsonl").write_bytes(saved)
        (state / "couch-restore.journal").write_text(json.dumps(
            {"phase": "applying", "databases": [a, b], "existed": [a]}))
        mess_up(couch, a)
        fresh_db(couch, b)  # half-restored, did not exist before
        m = env.mount()
        assert db_state(couch, a) == want
        assert db_state(couch, b) is None
        assert not (state / "couch-restore.journal").exists()
        assert not (state / "couch-restore-saved.jsonl").exists()
        assert util.status(m.inst("couch1"))["state"] == "ACTIVE"
    finally:
        for db in (a, b):
            couch.request("DELETE", "/" + q(db))


@pytest.mark.parametrize("strategy", [
    '{"type": "incremental"}', '{"mode": "offline"}', '{"tables": ["a"]}',
    '{"format": "agnostic", "tables": ["Bad Name"]}',
    '{"format": "agnostic", "tables": []}', '{"bogus": 1}'])
def test_invalid_strategy_fails_with_einval(util, agn, strategy):
    m, couch, p = agn
    e = util.create_job_file(m.inst("couch1") / "snapshots" / "bad", strategy)
    assert e == errno.EINVAL, os.strerror(e) if e else "accepted"
    assert m.backups("couch1") == []


# ---------------------------------------------------------------------------
# Native (real .couch files, stand-in service)


def make_data_dir(util, d):
    """A CouchDB data directory: 1.x files, a 2.x shard and node dbs, a
    view index and a file being appended to.  Returns {relative path:
    expected backed-up bytes} of the .couch files."""
    fx = fixture_dir(util)
    d.mkdir(parents=True)
    want = {}
    for name, rel in [("test.couch", "test.couch"),
                      ("db321.couch", "db321.couch"),
                      ("db_v7_without_purge_req.couch",
                       "shards/00000000-7fffffff/app.1700000000.couch"),
                      ("db_v7_with_1_purge_req.couch", "_dbs.couch")]:
        data = (fx / name).read_bytes()
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
        want[rel] = data
    # an update in progress: data blocks after the last header, and a
    # header cut short
    base = (fx / "test.couch").read_bytes()
    torn = bytearray(base)
    torn += bytes(BLOCK - len(torn) % BLOCK)
    torn += b"\x00" + random.Random(3).randbytes(5000)
    torn += bytes(BLOCK - len(torn) % BLOCK) + b"\x01\x00\x00\x01\x00" + \
        b"cut"
    (d / "torn.couch").write_bytes(torn)
    want["torn.couch"] = base
    (d / ".test_design" / "mrview").mkdir(parents=True)
    (d / ".test_design" / "mrview" / "abc.view").write_bytes(b"view")
    (d / "couch.uri").write_text("http://127.0.0.1:5984/\n")
    return want


def tar_members(data):
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for mem in tf:
            if mem.isreg():
                out[mem.name] = tf.extractfile(mem).read()
            else:
                out[mem.name] = None
    return out


def couch_files(d):
    return {str(p.relative_to(d)): p.read_bytes()
            for p in Path(d).rglob("*.couch")}


@pytest.fixture
def native(env, util):
    """env with couch instance couch1 over a data directory of real
    .couch files, stand-in service; mounted.  Returns (mount, data dir,
    expected .couch contents, service dir)."""
    data = env.base / "couch1" / "data"
    (env.base / "couch1").mkdir()
    want = make_data_dir(util, data)
    # nothing listens there: native backups do not need the server
    svc = add_couch(env, "http://127.0.0.1:9", data_dir=data)
    env.init()
    return env.mount(), data, want, svc


def test_native_backup_holds_couch_files_cut_on_headers(util, native):
    m, data, want, svc = native
    ts, _ = util.snapshot_via_mount(m.inst("couch1"), "n1")
    path = m.backup(ts, "couch1")
    members = tar_members(util.read_file(path))
    files = {k: v for k, v in members.items() if v is not None}
    assert files == want
    for name, content in files.items():
        assert couch_valid_end(content) == len(content), name
    # the view index and other files are left out; directories kept
    assert not [k for k in members if ".test_design" in k or "uri" in k]
    assert "shards/00000000-7fffffff" in members
    assert util.xattr(path, "format") == "couch-files-tar"
    assert util.xattr(path, "datastore") == "couchdb"
    meta_dbs = json.loads(util.xattr(path, "strategy"))
    assert meta_dbs["format"] == "native"
    assert svc_calls(svc) == []  # online: no stop


def test_native_restore_is_byte_identical(util, native):
    m, data, want, svc = native
    ts, _ = util.snapshot_via_mount(m.inst("couch1"), "n1")
    backed = tar_members(util.read_file(m.backup(ts, "couch1")))
    (data / "test.couch").unlink()
    (data / "db321.couch").write_bytes(b"garbage")
    (data / "late.couch").write_bytes(b"\x00" * 100)
    assert restore(util, m, m.backup(ts, "couch1")) == 0
    got = couch_files(data)
    assert got == {k: v for k, v in backed.items() if v is not None}
    for name, content in got.items():
        assert couch_valid_end(content) == len(content), name
    nobody = util.nobody_ids()[0]
    assert all(p.stat().st_uid == nobody for p in data.rglob("*"))
    assert data.stat().st_uid == nobody
    calls = svc_calls(svc)
    assert calls[:2] == ["stop", "start"] and "health" in calls, calls
    assert util.wait_state(m.inst("couch1"))["state"] == "ACTIVE"


@pytest.mark.log_errors("health", "restore", "put .* back")
def test_native_restore_failed_health_check_rolls_back(util, native):
    m, data, want, svc = native
    ts, _ = util.snapshot_via_mount(m.inst("couch1"), "n1")
    (data / "db321.couch").unlink()
    before = util.tree_of_dir(data)
    # the health check fails on the restored data only (it holds
    # db321.couch), so the rollback's start passes it
    (svc / "fail-if-exists").write_text(str(data / "db321.couch"))
    assert restore(util, m, m.backup(ts, "couch1")) != 0
    assert util.tree_of_dir(data) == before
    calls = svc_calls(svc)
    assert calls.count("stop") >= 2 and calls[-1] in ("start", "health"), \
        calls
    assert (svc / "running").exists()
    assert not [p for p in data.parent.iterdir() if ".backupfs-" in p.name]


@pytest.mark.log_errors("restore")
@pytest.mark.parametrize("damage", ["flip-last-header", "cut-member",
                                    "cut-stream", "foreign-member"])
def test_native_damaged_tar_fails_and_changes_nothing(util, native, damage):
    m, data, want, svc = native
    ts, _ = util.snapshot_via_mount(m.inst("couch1"), "n1")
    tar = bytearray(util.read_file(m.backup(ts, "couch1")))
    off, size = util.tar_member_data(bytes(tar), "test.couch")
    if damage == "flip-last-header":
        tar[off + 28672 + 40] ^= 0x01
    elif damage == "cut-member":
        # a member whose copy was not cut on a header: 100 bytes short
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) \
                as tf:
            content = want["test.couch"][:-100]
            ti = tarfile.TarInfo("test.couch")
            ti.size = len(content)
            tf.addfile(ti, io.BytesIO(content))
        tar = buf.getvalue()
    elif damage == "cut-stream":
        tar = tar[:off + 10000]
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) \
                as tf:
            ti = tarfile.TarInfo("PG_VERSION")
            ti.size = 3
            tf.addfile(ti, io.BytesIO(b"15\n"))
        tar = buf.getvalue()
    (data / "db321.couch").write_bytes(b"changed after the backup")
    before = util.tree_of_dir(data)
    assert restore(util, m, bytes(tar)) == errno.EINVAL
    assert util.tree_of_dir(data) == before
    assert svc_calls(svc) == []  # never stopped
    assert last_restore_error(util, m)


def test_native_backup_through_exec_prefix_spools_the_same(util, env):
    # With an exec prefix the files are read with `head -c` through it
    # (env here stands for ssh) and spooled: same stream content.
    data = env.base / "couch1" / "data"
    (env.base / "couch1").mkdir()
    want = make_data_dir(util, data)
    add_couch(env, "http://127.0.0.1:9", data_dir=data,
              exec_prefix=["/usr/bin/env"])
    env.init()
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("couch1"), "p1")
    files = {k: v for k, v in
             tar_members(util.read_file(m.backup(ts, "couch1"))).items()
             if v is not None}
    assert files == want
    assert not list(env.state.rglob("couch-spool*"))
