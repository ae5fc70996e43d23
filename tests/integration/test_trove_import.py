# SPDX-License-Identifier: Apache-2.0
"""backupctl import-trove: Trove's legacy backups become backups of the
repository (docs/FORMAT.md, "Imported Trove backups").

The legacy objects are made with the very commands Trove ran and stored
in Trove's three layouts (trove.py).  The import is checked with
`backupctl --json list`: size and SHA-256 of the plaintext, and
extra.trove.  Reading imported backups through the mount:
test_trove_read.py.

Swift only (@pytest.mark.backends("swift")): Trove's objects live in Swift,
in another container of the same account as the repository; a local
repository has no such container."""

import hashlib
import json
import os
import random
import uuid

import pytest
from trove import (KEY, KINDS, LAYOUTS, PAYLOAD, Backup, Legacy, api_list,
                   assert_imported, gzip, key_file, lines_of, listed,
                   new_backup, plaintext, run_import, store, trove_object,
                   write_list)

pytestmark = pytest.mark.backends("swift")


@pytest.fixture(scope="module")
def legacy(backend):
    lg = Legacy(backend.swift.account)
    yield lg
    lg.drop()


# ---------------------------------------------------------------------------
# Every kind in every layout, imported in one run (module-scoped)


@pytest.fixture(scope="module")
def matrix(util, tmp_path_factory, backend, legacy):
    """One repository, one import of 19 backups: each kind in each layout
    (one instance per layout) and a 6 MiB one (several reads, fetches and
    checkpoints); yields (env, {(kind, layout): Backup}, the import's
    Result, the list file)."""
    env = util.module_env(tmp_path_factory, "trove-matrix", backend)
    env.init()
    backups = {}
    insts = {lay: str(uuid.uuid4()) for lay in LAYOUTS}
    pairs = [(kind, lay) for kind in KINDS for lay in LAYOUTS]
    for i, (kind, lay) in enumerate(pairs):
        created = "2014-%02d-%02dT03:00:00" % (1 + i // 28, 1 + i % 28)
        backups[(kind, lay)] = new_backup(
            legacy, kind, lay, insts[lay], created, seed=i,
            name="nightly-%s-%s" % (kind, lay))
    big = Backup("pbkdf2", "slo", random.Random(9).randbytes(6 << 20),
                 insts["slo"], "2016-01-01T00:00:00", name="big")
    backups[("big", "slo")] = store(legacy, big)
    lst = api_list(env, legacy, backups.values())
    r = run_import(env, legacy, lst, key=key_file(env))
    yield env, backups, r, lst
    util.finish_module_env(env)


@pytest.mark.bfs_timeout(600)
def test_matrix_run(matrix):
    """Every backup imported, one line each and a summary; exit 0."""
    env, backups, r, _ = matrix
    assert r.returncode == 0, r.describe()
    out = lines_of(r)
    assert len(out) == len(backups) + 1, r.describe()
    assert out[-1] == ("import-trove: %d imported, 0 already imported, "
                       "0 skipped, 0 missing, 0 failed" % len(backups))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_matrix_kind_layout(matrix, legacy, kind, layout):
    """Listed with the plaintext's size and SHA-256; extra.trove says
    where its bytes are and how they were made."""
    env, backups, r, _ = matrix
    b = backups[(kind, layout)]
    want = ("imported %s -> instances/%s/backups/%s (%d bytes, %s, %s)"
            % (b.id, b.instance, b.ts, len(b.plain), layout, KINDS[kind][2]))
    assert want in lines_of(r), r.describe()
    e = assert_imported(env, b)
    assert e["label"] == b.name
    assert e["datastore"] == "mysql"
    t = e["trove"]
    assert t["id"] == b.id and t["container"] == legacy.container
    assert t["object"] == b.object
    assert t["layout"] == layout
    assert t["kdf"] == KINDS[kind][2]
    assert t["payload"] == PAYLOAD[kind]
    assert t["encrypted"] == (KINDS[kind][1] is not None)
    assert (t["key"] or "").startswith("trove-") == t["encrypted"]
    assert t["status"] == "COMPLETED"
    assert t["object_size"] == len(b.stored)
    if layout == "single":
        assert t["etag"] == hashlib.md5(b.stored).hexdigest()
    assert t["checksum"] == t["etag"]


def test_matrix_big(matrix):
    """6 MiB through several 4 MiB reads: size and SHA-256 exact."""
    env, backups, r, _ = matrix
    assert_imported(env, backups[("big", "slo")])


def test_matrix_index_files(matrix):
    """The pass leaves each reader's index in <state_dir>/trove (0700),
    for the read path; an index holds no secret."""
    env, backups, _, _ = matrix
    d = env.state / "trove"
    assert (os.stat(d).st_mode & 0o777) == 0o700
    for b in backups.values():
        assert (d / (b.id + ".idx")).is_file(), b.id


def test_matrix_idempotent(matrix, legacy):
    """The same import again: every entry already imported, nothing read
    from the legacy container but a listing, nothing new stored."""
    env, backups, _, lst = matrix
    before = env.objects()
    r = run_import(env, legacy, lst, key=key_file(env))
    assert r.returncode == 0, r.describe()
    out = lines_of(r)
    for b in backups.values():
        assert ("already imported %s -> instances/%s/backups/%s"
                % (b.id, b.instance, b.ts)) in out, r.describe()
    assert out[-1].startswith("import-trove: 0 imported, %d already"
                              % len(backups))
    assert env.objects() == before


def test_matrix_one_key_record(matrix):
    """The key is stored once, as a sealed record named by its HMAC."""
    env, _, _, _ = matrix
    recs = [n for n in env.objects("records/keys/")]
    assert len(recs) == 1, recs
    assert recs[0].startswith("records/keys/trove-")
    assert len(recs[0].rsplit("/", 1)[1]) == len("trove-") + 16


def test_matrix_key_never_in_clear(matrix, legacy):
    """Not in any object of the repository, in the state directory, or in
    what backupctl printed (an import with --json too)."""
    env, _, r, lst = matrix
    k = KEY.encode()
    for name in env.objects():
        assert k not in env.read_object(name), name
    for p in env.state.rglob("*"):
        if p.is_file():
            assert k not in p.read_bytes(), p
    r2 = run_import(env, legacy, lst, key=key_file(env), json_out=True)
    for res in (r, r2):
        assert KEY not in res.stdout and KEY not in res.stderr


def test_matrix_json_output(matrix, legacy):
    """--json: the same outcomes as a JSON array."""
    env, backups, _, lst = matrix
    r = run_import(env, legacy, lst, json_out=True)
    assert r.returncode == 0, r.describe()
    out = json.loads(r.stdout)
    assert len(out) == len(backups)
    by_id = {e["id"]: e for e in out}
    for b in backups.values():
        e = by_id[b.id]
        assert e["result"] == "already imported"
        assert e["instance"] == b.instance and e["timestamp"] == b.ts


# ---------------------------------------------------------------------------
# One repository per test


@pytest.fixture
def repo(env):
    env.init()
    return env


def test_missing_object_reported_rest_imported(repo, legacy):
    """An entry without an object is reported, nothing invented for it;
    the others are imported; exit 1."""
    a = new_backup(legacy, "gz", created="2015-01-01T01:00:00", seed=11)
    c = new_backup(legacy, "md5", "slo", created="2015-01-02T01:00:00",
                   seed=12)
    gone = Backup("gz", "single", b"", str(uuid.uuid4()),
                  "2015-01-03T01:00:00")
    doc = [{"ID": x.id, "Instance ID": x.instance, "Name": x.name,
            "Status": "COMPLETED", "Parent ID": None, "Updated": x.created}
           for x in (a, gone, c)]
    r = run_import(repo, legacy, write_list(repo.base / "l.json", doc),
                   key=key_file(repo))
    assert r.returncode == 1, r.describe()
    assert ("missing %s: no object %s.* in container %s"
            % (gone.id, gone.id, legacy.container)) in lines_of(r)
    assert_imported(repo, a)
    assert_imported(repo, c)
    assert repo.ctl("list", gone.instance).stdout == ""
    assert "1 missing" in lines_of(r)[-1]


@pytest.mark.parametrize("kind", ["md5", "pbkdf2"])
def test_wrong_key_fails_that_backup(repo, legacy, kind):
    """A wrong key: failed with a message naming the backup and its
    object; no manifest, no key record; a plain backup in the same list
    is still imported."""
    b = new_backup(legacy, kind, created="2015-02-01T01:00:00", seed=21)
    ok = new_backup(legacy, "tar", created="2015-02-02T01:00:00", seed=22)
    r = run_import(repo, legacy, api_list(repo, legacy, [b, ok]),
                   key=key_file(repo, "not-" + KEY))
    assert r.returncode == 1, r.describe()
    assert ("failed %s: wrong key (no key derivation decrypts %s)"
            % (b.id, b.object)) in lines_of(r), r.describe()
    assert repo.ctl("list", b.instance).stdout == ""
    assert_imported(repo, ok)
    assert not repo.objects("records/keys/")
    assert KEY not in r.stdout + r.stderr


def test_encrypted_without_any_key(repo, legacy):
    b = new_backup(legacy, "sha256", created="2015-02-03T01:00:00", seed=23)
    r = run_import(repo, legacy, api_list(repo, legacy, [b]))
    assert r.returncode == 1, r.describe()
    assert "failed %s: " % b.id in r.stdout and "--key-file" in r.stdout
    assert repo.ctl("list", b.instance).stdout == ""


def test_key_given_once_is_stored(repo, legacy):
    """A key given once is stored: a later import of other encrypted
    backups needs no --key-file; a stored key that does not fit is
    still a wrong key."""
    a = new_backup(legacy, "md5", created="2015-03-01T01:00:00", seed=31)
    b = new_backup(legacy, "pbkdf2", "dlo", created="2015-03-02T01:00:00",
                   seed=32)
    r = run_import(repo, legacy, api_list(repo, legacy, [a], "a.json"),
                   key=key_file(repo))
    assert r.returncode == 0, r.describe()
    assert len(repo.objects("records/keys/")) == 1
    r = run_import(repo, legacy, api_list(repo, legacy, [b], "b.json"))
    assert r.returncode == 0, r.describe()
    assert_imported(repo, b)
    other = Backup("sha256", "single", plaintext("sha256", 33),
                   str(uuid.uuid4()), "2015-03-03T01:00:00")
    store(legacy, other, key="another-key")
    r = run_import(repo, legacy, api_list(repo, legacy, [other], "c.json"))
    assert r.returncode == 1
    assert "failed %s: wrong key" % other.id in r.stdout
    # given now, it is tried first and stored too
    r = run_import(repo, legacy, api_list(repo, legacy, [other], "c.json"),
                   key=key_file(repo, "another-key", "k2"))
    assert r.returncode == 0, r.describe()
    assert len(repo.objects("records/keys/")) == 2


def truncate(data):
    return data[:-37]


def flip(data):
    """One byte flipped well inside the deflate data."""
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:]


@pytest.mark.parametrize("damage", [truncate, flip])
@pytest.mark.parametrize("kind", ["gz", "md5"])
def test_damaged_object_fails(repo, legacy, kind, damage):
    """A truncated object, or one with a byte flipped (its gzip CRC, or
    the cipher's padding): failed, nothing imported for it."""
    b = Backup(kind, "single", random.Random(41).randbytes(200 * 1024),
               str(uuid.uuid4()), "2015-04-01T01:00:00")
    b.object = b.id + KINDS[kind][0]
    legacy.put(b.object, damage(trove_object(kind, b.plain)))
    r = run_import(repo, legacy, api_list(repo, legacy, [b]),
                   key=key_file(repo))
    assert r.returncode == 1, r.describe()
    assert lines_of(r)[0].startswith("failed %s: '%s'" % (b.id, b.object)), \
        r.describe()
    assert repo.ctl("list", b.instance).stdout == ""


def test_flipped_byte_is_a_crc_error(repo, legacy):
    """Random data is stored by deflate as is: a flipped byte there is
    found by the member's CRC32 only."""
    b = Backup("gz", "single", random.Random(42).randbytes(300 * 1024),
               str(uuid.uuid4()), "2015-04-02T01:00:00")
    b.object = b.id + ".gz"
    legacy.put(b.object, flip(gzip(b.plain)))
    r = run_import(repo, legacy, api_list(repo, legacy, [b]))
    assert r.returncode == 1, r.describe()
    assert "crc32 mismatch" in lines_of(r)[0], r.describe()


@pytest.mark.parametrize("with_checksum", [False, True])
def test_dlo_missing_segment_fails(repo, legacy, with_checksum):
    """A DLO whose middle segment is gone reads as a shorter object with
    another ETag: the decode fails (and with Trove's checksum in the
    list, the ETag mismatch is reported too)."""
    b = new_backup(legacy, "md5", "dlo", created="2015-05-01T01:00:00",
                   seed=51)
    etag = legacy.etag(b.object)
    seg = "%s_%08d" % (b.id, 1)
    legacy.delete(seg)
    legacy.wait_unlisted(seg)
    over = {"checksum": etag} if with_checksum else {}
    r = run_import(repo, legacy, api_list(repo, legacy, [b], **over),
                   key=key_file(repo))
    assert r.returncode == 1, r.describe()
    line = lines_of(r)[0]
    assert line.startswith("failed %s: " % b.id), r.describe()
    if with_checksum:
        assert "is not Trove's checksum %s" % etag in line, line
        assert "; and '%s'" % b.object in line, line
    assert repo.ctl("list", b.instance).stdout == ""


@pytest.mark.parametrize("layout", ["single", "slo"])
def test_checksum_mismatch_fails(repo, legacy, layout):
    """Trove's checksum (where the list has one) must be Swift's ETag."""
    b = new_backup(legacy, "gz", layout, created="2015-05-02T01:00:00",
                   seed=52)
    wrong = hashlib.md5(b"something else").hexdigest()
    r = run_import(repo, legacy, api_list(repo, legacy, [b], checksum=wrong))
    assert r.returncode == 1, r.describe()
    assert ("failed %s: Swift's ETag %s is not Trove's checksum %s"
            % (b.id, legacy.etag(b.object), wrong)) == lines_of(r)[0]
    assert repo.ctl("list", b.instance).stdout == ""
    # the right one passes, and is kept
    r = run_import(repo, legacy, api_list(repo, legacy, [b],
                                          checksum=legacy.etag(b.object)))
    assert r.returncode == 0, r.describe()
    assert assert_imported(repo, b)["trove"]["checksum"] == \
        legacy.etag(b.object)


# ---------------------------------------------------------------------------
# The three list formats, and what the entries say


def list_formats(legacy, b, fmt):
    if fmt == "api":
        return {"backups": [b.api(legacy)]}
    if fmt == "cli-list":
        # openstack database backup list -f json: no location, no created
        return [{"ID": b.id, "Instance ID": b.instance, "Name": b.name,
                 "Status": "COMPLETED", "Parent ID": None,
                 "Updated": b.created}]
    # openstack database backup show -f json: one object, lower case,
    # datastore as a string
    return {"created": b.created, "datastore": "mariadb",
            "datastore_version": "10.4", "description": None, "id": b.id,
            "instance_id": b.instance, "locationRef": legacy.location(
                b.object), "name": b.name, "parent_id": None,
            "project_id": "abc", "size": 0.01, "status": "COMPLETED",
            "updated": b.created}


@pytest.mark.parametrize("fmt", ["api", "cli-list", "cli-show"])
def test_list_formats(repo, legacy, fmt):
    """All three shapes; the CLI's list has no locationRef (the object is
    found by listing, never a segment of it) and only "Updated"."""
    b = new_backup(legacy, "xbstream", "dlo", created="2015-06-01T01:00:00",
                   seed=61)
    lst = write_list(repo.base / "l.json", list_formats(legacy, b, fmt))
    r = run_import(repo, legacy, lst)
    assert r.returncode == 0, r.describe()
    assert lines_of(r)[0].startswith("imported %s -> instances/%s/backups/%s"
                                     % (b.id, b.instance, b.ts))
    e = assert_imported(repo, b)
    assert e["datastore"] == {"api": "mysql", "cli-list": "unknown",
                              "cli-show": "mariadb"}[fmt]


def test_times_normalized_to_utc(repo, legacy):
    """No zone is UTC; an offset is converted; fractions are dropped."""
    cases = [("2015-07-01T12:30:00", "2015-07-01T12:30:00Z"),
             ("2015-07-02T12:30:00.123456", "2015-07-02T12:30:00Z"),
             ("2015-07-03T14:30:00+02:00", "2015-07-03T12:30:00Z"),
             ("2015-07-04 01:30:00Z", "2015-07-04T01:30:00Z"),
             ("2015-07-04T23:30:00-0130", "2015-07-05T01:00:00Z")]
    inst = str(uuid.uuid4())
    bs = [new_backup(legacy, "gz", instance=inst, created=c, seed=70 + i)
          for i, (c, _) in enumerate(cases)]
    r = run_import(repo, legacy, api_list(repo, legacy, bs))
    assert r.returncode == 0, r.describe()
    assert sorted(listed(repo, inst)) == sorted(w for _, w in cases)


def test_skipped_and_bad_entries(repo, legacy):
    """Not COMPLETED: skipped (exit 0 when nothing else is wrong); an
    entry that cannot be imported as it stands: failed."""
    ok = new_backup(legacy, "gz", created="2015-08-01T01:00:00", seed=81)
    doc = {"backups": [
        ok.api(legacy),
        dict(ok.api(legacy), id=str(uuid.uuid4()), status="FAILED"),
        dict(ok.api(legacy), id=str(uuid.uuid4()), status="BUILDING"),
    ]}
    r = run_import(repo, legacy, write_list(repo.base / "l.json", doc))
    assert r.returncode == 0, r.describe()
    out = lines_of(r)
    assert "skipped %s: status FAILED" % doc["backups"][1]["id"] in out
    assert "skipped %s: status BUILDING" % doc["backups"][2]["id"] in out
    assert out[-1] == ("import-trove: 1 imported, 0 already imported, "
                       "2 skipped, 0 missing, 0 failed")
    bad = {"backups": [dict(ok.api(legacy), id="not-a-uuid"),
                       dict(ok.api(legacy), instance_id=None),
                       dict(ok.api(legacy), created="yesterday")]}
    r = run_import(repo, legacy, write_list(repo.base / "b.json", bad))
    assert r.returncode == 1, r.describe()
    out = lines_of(r)
    assert "failed not-a-uuid: not a Trove backup id (a UUID)" in out
    assert "failed %s: no instance id in the list" % ok.id in out
    assert "failed %s: \"created\" is not a time" % ok.id in out


def test_parent_listed_after_child(repo, legacy):
    """An incremental listed before its parent: imported oldest first, so
    its manifest names the parent's timestamp."""
    inst = str(uuid.uuid4())
    full = new_backup(legacy, "md5", "slo", inst, "2015-09-01T01:00:00",
                      seed=91)
    inc = new_backup(legacy, "md5", "single", inst, "2015-09-02T01:00:00",
                     seed=92, parent=full.id)
    r = run_import(repo, legacy, api_list(repo, legacy, [inc, full]),
                   key=key_file(repo))
    assert r.returncode == 0, r.describe()
    assert lines_of(r)[0].startswith("imported %s" % full.id)
    got = listed(repo, inst)
    assert got[inc.ts]["parent"] == full.ts
    assert got[inc.ts]["trove"]["parent_id"] == full.id
    assert got[full.ts]["parent"] is None


def test_parent_imported_earlier(repo, legacy):
    """The parent from an earlier import is found in the repository."""
    inst = str(uuid.uuid4())
    full = new_backup(legacy, "gz", "single", inst, "2015-09-03T01:00:00",
                      seed=93)
    inc = new_backup(legacy, "gz", "single", inst, "2015-09-04T01:00:00",
                     seed=94, parent=full.id)
    assert run_import(repo, legacy, api_list(repo, legacy, [full], "f.json")
                      ).returncode == 0
    r = run_import(repo, legacy, api_list(repo, legacy, [inc], "i.json"))
    assert r.returncode == 0, r.describe()
    assert listed(repo, inst)[inc.ts]["parent"] == full.ts


def test_same_backup_under_another_time_is_already_imported(repo, legacy):
    """Imported from the CLI's list (its "Updated" time), then from the
    API (created): recognized by its id, not imported twice."""
    b = new_backup(legacy, "gz", created="2015-10-01T01:00:00", seed=101)
    cli = [{"ID": b.id, "Instance ID": b.instance, "Name": b.name,
            "Status": "COMPLETED", "Updated": "2015-10-01T01:07:00"}]
    r = run_import(repo, legacy, write_list(repo.base / "c.json", cli))
    assert r.returncode == 0, r.describe()
    r = run_import(repo, legacy, api_list(repo, legacy, [b]))
    assert r.returncode == 0, r.describe()
    assert lines_of(r)[0] == ("already imported %s -> instances/%s/backups/"
                              "2015-10-01T01:07:00Z" % (b.id, b.instance))
    assert list(listed(repo, b.instance)) == ["2015-10-01T01:07:00Z"]


def test_conflict_same_instance_and_time(repo, legacy):
    """Another backup at the same instance and time: a reported conflict,
    the first one stays."""
    a = new_backup(legacy, "gz", created="2015-11-01T01:00:00", seed=111)
    b = new_backup(legacy, "gz", instance=a.instance,
                   created="2015-11-01T01:00:00", seed=112)
    r = run_import(repo, legacy, api_list(repo, legacy, [a, b]))
    assert r.returncode == 1, r.describe()
    assert ("failed %s: instances/%s/backups/%s is another backup (%s)"
            % (b.id, a.instance, a.ts, a.id.replace("-", ""))) in lines_of(r)
    assert listed(repo, a.instance)[a.ts]["id"] == a.id.replace("-", "")


def test_ambiguous_objects(repo, legacy):
    """Two objects of one id (and no locationRef to choose): reported."""
    b = new_backup(legacy, "gz", created="2015-12-01T01:00:00", seed=121)
    legacy.put(b.id + ".tar.gz", gzip(b"x"))
    cli = [{"ID": b.id, "Instance ID": b.instance, "Status": "COMPLETED",
            "Updated": b.created}]
    r = run_import(repo, legacy, write_list(repo.base / "l.json", cli))
    assert r.returncode == 1, r.describe()
    assert lines_of(r)[0].startswith("failed %s: ambiguous: 2 objects"
                                     % b.id), r.describe()


def test_location_in_another_container(repo, legacy):
    b = new_backup(legacy, "gz", created="2016-01-01T01:00:00", seed=131)
    e = b.api(legacy, locationRef="http://swift/v1/AUTH_x/database_backups/"
              + b.object)
    r = run_import(repo, legacy, write_list(repo.base / "l.json",
                                            {"backups": [e]}))
    assert r.returncode == 1, r.describe()
    assert ("failed %s: its locationRef is in container \"database_backups\""
            % b.id) in lines_of(r)[0]


# ---------------------------------------------------------------------------
# The command line


def test_usage_errors(repo, legacy):
    r = repo.ctl("import-trove", "--from", "x.json", check=False)
    assert r.returncode == 2 and "usage" in r.stderr
    r = repo.ctl("import-trove", "--container", "c", check=False)
    assert r.returncode == 2
    r = repo.ctl("import-trove", "--container", "c", "--from", "x", "extra",
                 check=False)
    assert r.returncode == 2
    help_text = repo.ctl("--help").stdout
    assert "import-trove --container NAME --from LIST.json" in help_text


def test_key_file_mode_and_bad_lists(repo, legacy):
    """A key file others can read is refused (and its content never
    printed); a list of no known shape is an error naming the file."""
    k = key_file(repo)
    os.chmod(k, 0o640)
    lst = write_list(repo.base / "l.json", {"backups": []})
    r = run_import(repo, legacy, lst, key=k)
    assert r.returncode == 1 and "chmod 600" in r.stderr, r.describe()
    assert KEY not in r.stderr + r.stdout
    bad = write_list(repo.base / "bad.json", {"items": []})
    r = run_import(repo, legacy, bad)
    assert r.returncode == 1 and str(bad) in r.stderr, r.describe()
    r = run_import(repo, legacy, repo.base / "nonexistent.json")
    assert r.returncode == 1 and "nonexistent.json" in r.stderr


def test_missing_container_is_not_created(repo, legacy):
    name = "bfs-trove-none-" + os.urandom(6).hex()
    lst = write_list(repo.base / "l.json", {"backups": []})
    r = run_import(repo, legacy, lst, container=name)
    assert r.returncode == 1, r.describe()
    assert name in r.stderr and "does not exist" in r.stderr
    assert not repo.swift.container_exists(name)
