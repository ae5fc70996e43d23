# SPDX-License-Identifier: Apache-2.0
"""Faults between the mounted filesystem and Swift.

The daemon's backend authenticates at faultproxy.py (auth_url at the
proxy, which rewrites X-Storage-Url), so every request to Swift goes
through it, and the tests make some of them fail on purpose:

  - transient faults on chunk GETs (503s, a 429 with Retry-After, a slow
    answer, a dropped connection, a truncated body): reads succeed and
    return exactly the backup's bytes;
  - a persistent 503: the read fails with EIO within the backend's deadline,
    the daemon lives on and reads work once the fault is gone;
  - chunk uploads failing midway through a snapshot: the job fails, says
    why, and leaves no backup behind (also after a remount);
  - a 401: one new token, and the read succeeds;
  - Swift itself stopped and started again while mounted.

Swift only (@pytest.mark.backends("swift")): these are faults of the HTTP
object store; a local repository has no network in between.  The backend
runs with "deadline": 5 and "timeout": 3 so that giving up is quick."""

import errno
import json
import os
import time

import pytest

from faultproxy import FaultProxy

pytestmark = pytest.mark.backends("swift")

MiB = 1 << 20
DATA = 6 * MiB          # vol1's random data: several chunks (1 MiB average)
DEADLINE = 5            # the backend's deadline per operation, seconds
TIMEOUT = 3             # and per request
FAIL_BOUND = 20         # a failing read must fail within this (seconds)


def swift_gave_up(method, why):
    """Regex of the error line of a request to a chunk object that failed
    for good (after retries), why a regex of the reason."""
    return r'^backupfs: error: swift %s "chunks/[0-9a-f]{2}/[0-9a-f]{64}": ' \
           r'%s \(after \d+ attempts\)$' % (method, why)


def chunks_path(env):
    """Regex of the request target of env's chunk objects (as sent)."""
    return r"^/v1/AUTH_[^/]+/%s/chunks/" % env.container


@pytest.fixture
def proxy(swift_server):
    """A faultproxy in front of the Swift all-in-one."""
    fp = FaultProxy("http://127.0.0.1:8080")
    fp.start()
    yield fp
    fp.stop()


def fill(util):
    def go(d):
        util.make_sample_tree(d)
        util.write_random(d / "data.bin", DATA, 11)
    return go


@pytest.fixture
def faulty(util, proxy, env):
    """vol1 (sample tree and DATA random bytes) with one backup labelled
    "first", on Swift through the proxy (deadline 5 s, timeout 3 s); not
    mounted.  Returns the env.  (proxy before env: the mounts stop before
    the proxy does.)"""
    env.swift_auth["auth_url"] = proxy.url + "/auth/v1.0"
    env.backend_extra.update(deadline=DEADLINE, timeout=TIMEOUT)
    env.add_instance("vol1", tree=fill(util), snapshot="none")
    env.init()
    env.snapshot("vol1", label="first")
    return env


def check_backup(util, env, m, ts=None):
    """Read the backup whole through the mount: its bytes must be the
    source's tar (and match its sha256 xattr).  Returns the data."""
    ts = ts or m.backups()[0]
    p = m.backup(ts)
    data = util.read_file(p)
    assert util.sha256(data) == util.xattr(p, "sha256"), \
        "the backup read back with wrong bytes"
    util.assert_same_tree(util.tree_of_tar(data), util.tree_of_dir(env.src()),
                          "backup vs source")
    return data


def read_head(path, n=MiB):
    """Open and read n bytes: (seconds taken, errno or 0)."""
    t0 = time.monotonic()
    try:
        with open(path, "rb", buffering=0) as f:
            f.read(n)
    except OSError as e:
        return time.monotonic() - t0, e.errno
    return time.monotonic() - t0, 0


# ---------------------------------------------------------------------------
# (a) transient faults: retried, and the bytes are right

TRANSIENT = {
    # a few 503s in a row
    "503s": dict(action="status", status=503, count=3),
    # rate limited, come back in a second
    "429": dict(action="status", status=429, retry_after=1, count=1),
    # an answer slower than the request timeout: timed out, asked again
    "slow": dict(action="delay", delay=TIMEOUT + 1, count=1),
    # the connection reset after Swift answered (the answer is lost)
    "dropped": dict(action="drop", count=1),
    # reset in the middle of the body
    "dropped-mid-body": dict(action="drop", at="mid_body", count=1),
    # half the body, then a clean close (Content-Length not reached)
    "truncated": dict(action="truncate", count=1),
    # the whole body with one byte flipped: the chunk's tag fails, and
    # the chunk is fetched again
    "corrupted": dict(action="corrupt", count=1),
}


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_read_survives_transient_fault(util, faulty, proxy, fault):
    m = faulty.mount()
    rule = proxy.add_rule(method="GET", path=chunks_path(faulty),
                          **TRANSIENT[fault])
    check_backup(util, faulty, m)
    got = proxy.rule(rule)
    assert got["fired"] == got["count"], \
        "the fault was not applied as often as configured: %r" % got
    if fault == "429":
        # asked again only after the second that Retry-After said
        assert proxy.wait_idle()
        log = proxy.requests(method="GET", path=chunks_path(faulty))
        hit = [e for e in log if e["rule"] == rule][0]
        again = [e for e in log if e["path"] == hit["path"] and
                 e["seq"] > hit["seq"]]
        assert again, "the rate-limited GET was not tried again"
        assert again[0]["time"] - hit["time"] >= 0.99, \
            "tried again %.2f s after a 429 with Retry-After: 1" % (
                again[0]["time"] - hit["time"])


# ---------------------------------------------------------------------------
# (b) a persistent 503: EIO within the deadline, then recovery


@pytest.mark.log_errors(swift_gave_up("GET", r"503 .*"))
def test_persistent_503_is_eio_then_recovers(util, faulty, proxy):
    m = faulty.mount()
    path = m.backup(m.backups()[0])
    proxy.add_rule(method="GET", path=chunks_path(faulty), action="status",
                   status=503, count="all")
    took, err = read_head(path)
    assert err == errno.EIO, \
        "read under persistent 503: %s" % (os.strerror(err) if err else
                                           "succeeded")
    assert took < FAIL_BOUND, "the read failed only after %.1f s" % took
    assert proxy.count(method="GET", path=chunks_path(faulty),
                       status=503) >= 2, "no retry before giving up"
    assert m.alive(), m.log_tail()
    assert util.status(m.inst())["state"] == "ACTIVE"
    proxy.clear_rules()
    check_backup(util, faulty, m)


# ---------------------------------------------------------------------------
# (c) chunk uploads failing midway through a snapshot

AFTER = 2       # chunk PUTs that succeed before the failures start
UPLOAD_ERRORS = [
    swift_gave_up("PUT", r"503 .*"),
    r"^backupfs: error: snapshot 'doomed' of instance 'vol1' failed: "
    # Who notices first: the writer of the tar (the file named is where
    # it was when the failed upload of an earlier piece came back), or
    # the end of the stream, waiting for the last uploads.
    r"(cannot write '[^']+' to the backup|storing chunks failed): "
    r"Input/output error$",
]


@pytest.fixture(scope="module")
def failed_upload(util, tmp_path_factory, backend):
    """One scenario for the module: vol1 with a backup, new data added, a
    snapshot through the mount whose chunk PUTs fail (503) after the first
    AFTER, then a remount and a snapshot with Swift behaving.  Returns what
    was seen."""
    fp = FaultProxy("http://127.0.0.1:8080")
    fp.start()
    env = util.module_env(tmp_path_factory, "failed-upload", backend)
    try:
        with util.Watchdog(300, "the failed-upload scenario"):
            obs = run_failed_upload(util, env, fp)
    except BaseException:
        env.teardown(None)
        fp.stop()
        raise
    # Unmount at once: all is observed, and a mount left running would go
    # on asking the backend (its scheduler lists schedules every few
    # seconds) while a later test of this module stops Swift.
    try:
        util.finish_module_env(env, UPLOAD_ERRORS)
    finally:
        fp.stop()
    yield obs


def run_failed_upload(util, env, fp):
    env.swift_auth["auth_url"] = fp.url + "/auth/v1.0"
    env.backend_extra.update(deadline=DEADLINE, timeout=TIMEOUT)
    src = env.add_instance("vol1", tree=fill(util), snapshot="none")
    # 1 MiB chunks: uploads fail after the first AFTER of several
    env.init(chunk_size="1M")
    env.snapshot("vol1", label="first")
    util.write_random(src / "new.bin", 8 * MiB, 12)
    m = env.mount()
    inst = m.inst()
    obs = {"backups": m.backups(),
           "manifests": sorted(env.objects("manifests/"))}
    chunks = chunks_path(env)
    fp.add_rule(method="PUT", path=chunks, action="status", status=503,
                count="all", after=AFTER)
    obs["create_errno"] = util.create_job_file(inst / "snapshots" / "doomed")
    if obs["create_errno"]:
        return obs
    obs["job"] = util.wait_job(inst / "snapshots" / "doomed")
    obs["status"] = util.wait_state(inst, ("ACTIVE", "ERROR"))
    obs["events"] = util.read_events(inst)
    fp.wait_idle()
    obs["puts"] = fp.count(method="PUT", path=chunks)
    obs["refused"] = fp.count(method="PUT", path=chunks, status=503)
    fp.clear_rules()
    obs["backups_after"] = m.backups()
    obs["manifests_after"] = sorted(env.objects("manifests/"))
    obs["locks_after"] = env.objects("locks/")
    m.remount()
    obs["backups_remount"] = m.backups()
    obs["job_remount"] = util.read_json(inst / "snapshots" / "doomed")
    obs["status_remount"] = util.status(inst)
    # Swift behaves again: the next snapshot completes and reads back
    ts, _ = util.snapshot_via_mount(inst, "after")
    p = m.backup(ts)
    obs["after"] = (ts, m.backups(), util.read_file(p),
                    util.xattr(p, "sha256"), util.tree_of_dir(src))
    return obs


def job_of(obs):
    assert obs["create_errno"] == 0, \
        "creating snapshots/doomed: %s" % os.strerror(obs["create_errno"])
    return obs["job"]


def test_failing_uploads_happened(failed_upload):
    obs = failed_upload
    job_of(obs)
    assert obs["puts"] > AFTER and obs["refused"] > 0, \
        "%d chunk PUTs, %d refused: the fault never happened" % (
            obs["puts"], obs["refused"])


def test_failing_uploads_fail_the_job(failed_upload):
    job = job_of(failed_upload)
    assert job["state"] == "failed", job
    assert not job.get("backup"), job


def test_failed_job_says_why(failed_upload):
    job = job_of(failed_upload)
    assert "Input/output error" in (job.get("error") or ""), job


def test_failed_job_status_says_why(failed_upload):
    job = job_of(failed_upload)
    st = failed_upload["status"]
    assert st["state"] == "ACTIVE", st
    assert job["error"] in json.dumps(st), \
        "status does not carry the job's error %r: %r" % (job["error"], st)


def test_failed_job_error_event(failed_upload):
    job = job_of(failed_upload)
    errors = [e for e in failed_upload["events"]
              if e["event"] == "backup.create.error"]
    assert errors and errors[-1].get("error") == job["error"], \
        failed_upload["events"]


def test_failed_upload_leaves_no_backup(failed_upload):
    obs = failed_upload
    job_of(obs)
    assert obs["backups_after"] == obs["backups"]
    assert obs["manifests_after"] == obs["manifests"]


def test_failed_upload_leaves_no_lock(failed_upload):
    job_of(failed_upload)
    assert failed_upload["locks_after"] == {}, \
        "the writer lock was left behind"


def test_failed_upload_no_backup_after_remount(failed_upload):
    obs = failed_upload
    job = job_of(obs)
    assert obs["backups_remount"] == obs["backups"]
    assert obs["job_remount"]["state"] == "failed"
    assert obs["job_remount"].get("error") == job["error"]
    assert job["error"] in json.dumps(obs["status_remount"]), \
        obs["status_remount"]


def test_snapshot_after_failed_upload_works(util, failed_upload):
    obs = failed_upload
    job_of(obs)
    ts, listed, data, sha, tree = obs["after"]
    assert listed == sorted(obs["backups"] + [ts])
    assert util.sha256(data) == sha
    util.assert_same_tree(util.tree_of_tar(data), tree, "backup vs source")


# ---------------------------------------------------------------------------
# (d) a refused token


def test_401_gets_one_new_token(util, faulty, proxy):
    m = faulty.mount()
    auth = r"^/auth/v1\.0$"
    before = proxy.count(method="GET", path=auth)
    rule = proxy.add_rule(method="GET", path=chunks_path(faulty),
                          action="status", status=401, count=1)
    check_backup(util, faulty, m)
    assert proxy.rule(rule)["fired"] == 1
    assert proxy.count(method="GET", path=auth) == before + 1


# ---------------------------------------------------------------------------
# (e) Swift down and back while mounted

SWIFT_DOWN = swift_gave_up("GET", r"Failed to connect to 127\.0\.0\.1 port "
                           r"8080 after \d+ ms: Couldn't connect to server")
# the scheduler's listing of the container, if a scan falls in the outage
SWIFT_DOWN_LISTING = (r'^backupfs: error: swift GET "[^"/]+": Failed to '
                      r"connect to 127\.0\.0\.1 port 8080 after \d+ ms: "
                      r"Couldn't connect to server \(after \d+ attempts\)$")
SCHEDULES_UNLISTED = (r"^backupfs: warning: cannot list the schedules of "
                      r"instance 'vol1': Input/output error$")


@pytest.mark.bfs_timeout(240)
@pytest.mark.log_errors(SWIFT_DOWN, SWIFT_DOWN_LISTING, SCHEDULES_UNLISTED)
def test_swift_stopped_and_started_while_mounted(util, env, swift_server):
    env.backend_extra.update(deadline=DEADLINE, timeout=TIMEOUT)
    env.add_instance("vol1", tree=fill(util), snapshot="none")
    env.init()
    env.snapshot("vol1", label="first")
    m = env.mount()
    path = m.backup(m.backups()[0])
    sha = util.xattr(path, "sha256")            # the manifest is loaded
    try:
        swift_server.stop()
        took, err = read_head(path)
        assert err == errno.EIO, \
            "read with Swift down: %s" % (os.strerror(err) if err else
                                          "succeeded")
        assert took < FAIL_BOUND, "the read failed only after %.1f s" % took
        assert m.alive(), m.log_tail()
    finally:
        swift_server.start()
    # the same mount reads again (a restarted tempauth forgot the token:
    # a new one is fetched), and takes a snapshot
    data = check_backup(util, env, m)
    assert util.sha256(data) == sha
    ts, _ = util.snapshot_via_mount(m.inst(), "after-restart")
    check_backup(util, env, m, ts)
