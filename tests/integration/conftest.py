# SPDX-License-Identifier: Apache-2.0
"""Harness of the integration suite: it mounts the real backupfs with FUSE.

Standard library only: the suite runs under Debian's /usr/bin/python3
(pytest-3).  The binaries come from BACKUPFS_BIN and BACKUPCTL_BIN (set by
the meson test), else from build/ of this checkout:

    cd REPO && pytest-3 -v tests/integration

Rules the fixtures keep (reference/style.md, "Tests"):
  - the daemon runs with -f in its own process group, its output in a log
    file; mounting polls os.path.ismount while checking it is alive;
  - unmounting is a plain `fusermount3 -u`, after which the daemon must exit
    with status 0 within 10 s; otherwise `fusermount3 -z -u`, SIGTERM, then
    SIGKILL of the group, and the test fails; no daemon is ever left behind;
  - a test fails when its daemon logged an error line it did not declare
    with @pytest.mark.log_errors(...), or any sanitizer line;
  - a failing test's report carries a reproducer command line;
  - nothing is skipped: without /dev/fuse, root or the binaries every test
    fails.  BACKUPFS_TEST_SUMMARY names a JSON file that receives the counts
    of passed/failed/skipped tests (tools/run-tests.sh fails on any skip).

Backends: every test that uses an Env (fixtures env, env_factory, or a
module Env made with module_env(..., backend)) runs once per backend kind,
test_x[local] and test_x[swift].  For Swift the session starts the
all-in-one once (tools/swift-server.sh; stopped at the end only if this
session started it), and each Env gets a fresh container of its own,
deleted by its teardown.  Tests reach the repository behind backupfs's back
only through Env.objects(), read_object(), write_object() and
delete_object(), so the same test works on both.  A test that makes sense
on one backend only says so with @pytest.mark.backends("local") (or
"swift") and a comment why.  Keystone (tools/keystone-server.sh) is started
once too when a test asks for it (fixture keystone_server), with tokens
living KEYSTONE_TTL seconds.  So are the database servers, each on
loopback: PostgreSQL 15 (pg_server, tools/pg-server.sh), MariaDB 10.11
(mariadb_server, tools/mariadb-server.sh) and pouchdb-server for the
CouchDB API (couch_server, tools/couch-server.sh).

Helpers are module-level functions here; tests reach them through the
`util` fixture (this module).
"""

import calendar
import errno
import faulthandler
import hashlib
import io
import json
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKUPFS = (os.environ.get("BACKUPFS_BIN")
            or str(REPO_ROOT / "build/fs/backupfs"))
BACKUPCTL = (os.environ.get("BACKUPCTL_BIN")
             or str(REPO_ROOT / "build/tools/backupctl"))
FUSERMOUNT = shutil.which("fusermount3") or "/usr/bin/fusermount3"
SWIFT_SCRIPT = REPO_ROOT / "tools/swift-server.sh"
KEYSTONE_SCRIPT = REPO_ROOT / "tools/keystone-server.sh"
PG_SCRIPT = REPO_ROOT / "tools/pg-server.sh"
MARIADB_SCRIPT = REPO_ROOT / "tools/mariadb-server.sh"
COUCH_SCRIPT = REPO_ROOT / "tools/couch-server.sh"

# Where an Env keeps its repository; every test that uses one runs once per
# kind (ids test_x[local], test_x[swift]) unless @pytest.mark.backends(...)
# narrows it down.
BACKENDS = ("local", "swift")

KiB = 1 << 10
MiB = 1 << 20

MOUNT_TIMEOUT = 30      # daemon start to mounted
UNMOUNT_TIMEOUT = 10    # fusermount3 -u to daemon exit (style.md)
JOB_TIMEOUT = 60        # a snapshot job (the contract's bound)
CMD_TIMEOUT = 300       # any helper command (backupctl snapshot of 200 MB)
TEST_TIMEOUT = 300      # watchdog default; @pytest.mark.bfs_timeout(s)
SERVER_TIMEOUT = 300    # tools/<server>-server.sh start
# Token lifetime of a Keystone this session starts (the script's default,
# 60 s, makes every test that outlives a token a minute long).  One that
# runs already keeps its own; `keystone-server.sh env` tells which.
KEYSTONE_TTL = os.environ.get("BACKUPFS_KEYSTONE_TOKEN_EXPIRATION", "20")

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
STATES = {"ACTIVE", "BACKUP", "RESTORE", "MAINTENANCE", "ERROR"}
DENIED = (errno.EACCES, errno.EPERM)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)

# A daemon log line that is an error (backupfs logs "backupfs: error: ...")
# and the sanitizer lines that fail a test whatever it declared.
ERROR_LINE_RE = re.compile(
    r"(^|[\s:\[])(error|fatal|critical|panic)(:|\]|\s|$)", re.IGNORECASE)
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|"
                          r"MemorySanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "log_errors(*regexes): the test provokes daemon errors on purpose; "
        "error lines matching one of the regexes (any, without regexes) "
        "do not fail it (sanitizer lines still do)")
    config.addinivalue_line(
        "markers", "bfs_timeout(seconds): watchdog bound of the test "
        "(default %d s): then every daemon is killed" % TEST_TIMEOUT)
    config.addinivalue_line(
        "markers", "backends(*kinds): run the test on these backends only "
        "(of %s; by default on all); say why in a comment" % (BACKENDS,))


def pytest_generate_tests(metafunc):
    """Env-level parametrization: a test that uses an Env (fixture
    `backend`, through env, env_factory or a module Env) runs once per
    backend kind.  Module scope: the tests of a module run on one backend,
    then on the next, so a module-scoped Env is made once per kind."""
    if "backend" not in metafunc.fixturenames:
        return
    m = metafunc.definition.get_closest_marker("backends")
    kinds = list(m.args) if m else list(BACKENDS)
    unknown = [k for k in kinds if k not in BACKENDS]
    if unknown or not kinds:
        raise ValueError("%s: @pytest.mark.backends%r: kinds are %s"
                         % (metafunc.definition.nodeid, tuple(kinds),
                            BACKENDS))
    metafunc.parametrize("backend", kinds, indirect=True, scope="module")


# ---------------------------------------------------------------------------
# Outcome summary for tools/run-tests.sh

_outcomes = {}
_collect_errors = 0


def pytest_collectreport(report):
    global _collect_errors
    if report.failed:
        _collect_errors += 1


def pytest_runtest_logreport(report):
    prev = _outcomes.get(report.nodeid)
    if prev in ("failed", "errors"):
        return
    if report.failed:
        outcome = "failed" if report.when == "call" else "errors"
    elif report.skipped:
        outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.when == "call":
        outcome = "xpassed" if hasattr(report, "wasxfail") else "passed"
    else:
        return
    _outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session, exitstatus):
    _kill_leftover_daemons()
    path = os.environ.get("BACKUPFS_TEST_SUMMARY")
    if not path:
        return
    counts = {k: 0 for k in ("passed", "failed", "errors", "skipped",
                             "xfailed", "xpassed")}
    for outcome in _outcomes.values():
        counts[outcome] += 1
    counts["errors"] += _collect_errors
    counts["collected"] = session.testscollected
    counts["exitstatus"] = int(exitstatus)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(counts, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Reproducer in the report of a failing test


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    daemons = getattr(item, "_bfs_daemons", [])
    test_id = "%s::%s" % (item.path, item.nodeid.split("::", 1)[-1])
    lines = [
        "# rerun this test:",
        "cd %s && BACKUPFS_BIN=%s BACKUPCTL_BIN=%s pytest-3 -v %s" % (
            shlex.quote(str(REPO_ROOT)), shlex.quote(BACKUPFS),
            shlex.quote(BACKUPCTL), shlex.quote(test_id)),
    ]
    for d in daemons:
        lines += ["# mount what the test mounted (its files stay in place):",
                  "mkdir -p %s && %s" % (shlex.quote(d.mnt), d.command_line()),
                  "# daemon log: %s; last lines:" % d.log_path]
        lines += ["#   " + l for l in d.log_tail(25).splitlines()]
    rep.sections.append(("backupfs reproducer", "\n".join(lines)))


# ---------------------------------------------------------------------------
# Processes

class Result:
    """What run() returns: returncode, stdout and stderr as text."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def describe(self):
        return "$ %s\nexit status %s\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(shlex.quote(str(a)) for a in self.args),
            self.returncode, self.stdout, self.stderr)


def run(args, timeout=CMD_TIMEOUT, **kw):
    """Run a command in its own process group, output in temporary files
    (a daemonizing child that keeps a pipe open cannot hang us); on timeout
    kill the whole group and fail the test."""
    args = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True, **kw)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            out.seek(0)
            err.seek(0)
            pytest.fail("timed out after %s s: %s\n--- stdout\n%s\n--- stderr"
                        "\n%s" % (timeout, " ".join(map(shlex.quote, args)),
                                  _text(out.read()), _text(err.read())))
        out.seek(0)
        err.seek(0)
        return Result(args, rc, _text(out.read()), _text(err.read()))


def _text(b):
    return b.decode("utf-8", "replace")


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def nobody_ids():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


_NOBODY_CODE = r"""
import json, os, sys
op, args = sys.argv[1], sys.argv[2:]
err = 0
try:
    if op == "unlink":
        os.unlink(args[0])
    elif op == "create":
        fd = os.open(args[0], os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            if len(args) > 1:
                os.write(fd, args[1].encode())
        finally:
            os.close(fd)
    elif op == "copy":
        with open(args[0], "rb") as src:
            fd = os.open(args[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                while True:
                    b = src.read(1 << 20)
                    if not b:
                        break
                    os.write(fd, b)
            finally:
                os.close(fd)
    elif op == "read":
        with open(args[0], "rb") as f:
            f.read(4096)
    else:
        raise SystemExit("unknown op " + op)
except OSError as e:
    err = e.errno
print(json.dumps({"errno": err}))
"""


def as_nobody(op, *args, timeout=120):
    """Do one file operation as user nobody (no supplementary groups) and
    return its errno (0 on success).  ops: unlink PATH, create PATH [DATA],
    copy SRC DST, read PATH."""
    uid, gid = nobody_ids()
    r = run([sys.executable, "-c", _NOBODY_CODE, op, *args], timeout=timeout,
            user=uid, group=gid, extra_groups=[], cwd="/")
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])["errno"]
    except (IndexError, ValueError, KeyError):
        pytest.fail("helper run as nobody failed:\n" + r.describe())


# ---------------------------------------------------------------------------
# Mounts

_LIVE = set()         # every started Daemon not yet stopped
_LIVE_LOCK = threading.Lock()


def _mount_points():
    """Mount points of the mount table (reads no file system: cannot hang
    on a dead FUSE daemon)."""
    pts = set()
    with open("/proc/self/mountinfo", encoding="utf-8",
              errors="surrogateescape") as f:
        for line in f:
            field = line.split(" ")[4]
            pts.add(re.sub(r"\\([0-7]{3})",
                           lambda m: chr(int(m.group(1), 8)), field))
    return pts


def in_mount_table(path):
    return os.path.realpath(path) in _mount_points()


class Daemon:
    """One backupfs process and its mount point.

    Started with -f, in its own process group, output appended to log_path;
    stop() unmounts cleanly and returns what went wrong (a list)."""

    def __init__(self, cfg, mnt, log_path, options=()):
        self.cfg = str(cfg)
        self.mnt = str(mnt)
        self.log_path = str(log_path)
        self.options = list(options)
        self.proc = None
        self.watchdog_killed = False

    def argv(self):
        opts = ",".join(["config=" + self.cfg] + self.options)
        return [BACKUPFS, "-f", "-o", opts, self.mnt]

    def command_line(self):
        return " ".join(shlex.quote(a) for a in self.argv())

    def start(self):
        assert self.proc is None, "daemon already running"
        self.watchdog_killed = False
        os.makedirs(self.mnt, exist_ok=True)
        if in_mount_table(self.mnt):
            pytest.fail("%s is mounted already" % self.mnt)
        with open(self.log_path, "ab") as log:
            log.write(("--- harness: %s\n" % self.command_line()).encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                with _LIVE_LOCK:
                    _LIVE.discard(self)
                if in_mount_table(self.mnt):
                    run([FUSERMOUNT, "-z", "-u", self.mnt], timeout=30)
                pytest.fail("backupfs exited with status %d before mounting "
                            "%s:\n%s" % (rc, self.mnt, self.log_tail(40)))
            if os.path.ismount(self.mnt):
                return
            if time.monotonic() > deadline:
                self.force_stop()
                pytest.fail("%s not mounted %d s after starting backupfs:\n%s"
                            % (self.mnt, MOUNT_TIMEOUT, self.log_tail(40)))
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Plain unmount, then the daemon must exit 0 within 10 s.  Returns
        a list of problems (empty: clean); never leaves a daemon behind."""
        if self.proc is None:
            return []
        problems = []
        rc = self.proc.poll()
        if rc is not None and self.watchdog_killed:
            problems.append("backupfs killed by the watchdog: the test ran "
                            "over its time bound")
        elif rc is not None:
            problems.append("backupfs died while mounted (status %d)" % rc)
        else:
            try:
                r = subprocess.run([FUSERMOUNT, "-u", self.mnt],
                                   stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True,
                                   timeout=UNMOUNT_TIMEOUT + 20)
                unmounted = r.returncode == 0
                why = "status %d: %s" % (r.returncode, r.stderr.strip())
            except subprocess.TimeoutExpired:
                unmounted = False
                why = "fusermount3 -u hung"
            if not unmounted:
                problems.append("plain unmount failed (%s)" % why)
            else:
                try:
                    rc = self.proc.wait(UNMOUNT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append("backupfs did not exit within %d s of "
                                    "the unmount" % UNMOUNT_TIMEOUT)
                else:
                    if rc != 0:
                        problems.append("backupfs exited with status %d "
                                        "after the unmount" % rc)
        if problems:
            self.force_stop()
        else:
            self._forget()
        return problems

    def force_stop(self):
        """Lazy unmount, SIGTERM, then SIGKILL the process group."""
        if in_mount_table(self.mnt):
            subprocess.run([FUSERMOUNT, "-z", "-u", self.mnt],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        if self.proc is not None:
            pgid = self.proc.pid
            if self.proc.poll() is None:
                _killpg(pgid, signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            # children (tar, ...) of the daemon share its group
            _killpg(pgid, signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._forget()

    def watchdog_kill(self):
        """SIGKILL the daemon: blocked file operations on the mount then
        fail with ENOTCONN."""
        if self.proc is not None:
            self.watchdog_killed = True
            _killpg(self.proc.pid, signal.SIGKILL)

    def _forget(self):
        self.proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return _text(f.read())
        except OSError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_problems(self, allowed, since=0):
        """Sanitizer lines, and error lines no regex of allowed matches
        (allowed None: every error line is fine)."""
        bad = []
        for line in self.log_text(since).splitlines():
            if line.startswith("--- harness:"):
                continue
            if SANITIZER_RE.search(line):
                bad.append(line)
            elif ERROR_LINE_RE.search(line) and allowed is not None and \
                    not any(re.search(p, line) for p in allowed):
                bad.append(line)
        return bad


class Mount(Daemon):
    """A mounted backupfs with path helpers."""

    @property
    def path(self):
        return Path(self.mnt)

    def inst(self, name="vol1"):
        return Path(self.mnt) / "instances" / name

    def backups(self, name="vol1"):
        """Timestamps in backups/, oldest first ("latest" left out)."""
        return sorted(n for n in os.listdir(self.inst(name) / "backups")
                      if n != "latest")

    def backup(self, ts, name="vol1"):
        return self.inst(name) / "backups" / ts

    def remount(self):
        problems = self.stop()
        if problems:
            pytest.fail("unmount for a remount failed: %s\n%s"
                        % ("; ".join(problems), self.log_tail(40)))
        self.start()


def mount_refused(env, cfg, env_vars=None, what="a bad config"):
    """Start backupfs (daemonizing, as an operator would) on cfg; require
    that it fails without mounting; returns its stderr.  env_vars: more
    environment for it."""
    mnt = env.base / "badmnt"
    mnt.mkdir(exist_ok=True)
    e = dict(os.environ)
    e.update(env_vars or {})
    r = run([BACKUPFS, "-o", "config=%s" % cfg, mnt], timeout=60, env=e)
    if in_mount_table(mnt):
        u = run([FUSERMOUNT, "-u", mnt], timeout=30)
        if u.returncode != 0:
            run([FUSERMOUNT, "-z", "-u", mnt], timeout=30)
        pytest.fail("backupfs mounted %s:\n%s" % (what, r.describe()))
    assert r.returncode != 0, "backupfs accepted %s:\n%s" % (what,
                                                             r.describe())
    assert r.stderr.strip(), "no message on stderr:\n" + r.describe()
    return r.stderr


def _kill_leftover_daemons():
    with _LIVE_LOCK:
        left = list(_LIVE)
    for d in left:
        d.force_stop()


def allowed_log_errors(node):
    """The regexes a test declared with @pytest.mark.log_errors: None
    allows every error line, [] none."""
    m = node.get_closest_marker("log_errors") if node is not None else None
    if m is None:
        return []
    return list(m.args) if m.args else None


# ---------------------------------------------------------------------------
# Swift and Keystone: the servers, and raw HTTP behind backupfs's back


def _http(method, url, data=None, headers=None, timeout=60):
    """One request with urllib: (status, headers, body); HTTP errors are
    answers too, connection trouble raises OSError."""
    if data is None and method in ("PUT", "POST"):
        data = b""
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except OSError:
            body = b""
        return e.code, e.headers, body
    except urllib.error.URLError as e:
        raise OSError("%s %s: %s" % (method, url, e.reason)) from None


class SwiftAccount:
    """Raw HTTP to one Swift account, to look at and clean up what backupfs
    stored.  authenticate() -> (token, storage URL) is called again after a
    401 (a restarted Swift forgets its tempauth tokens)."""

    def __init__(self, authenticate):
        self._authenticate = authenticate
        self._lock = threading.Lock()
        self._cred = None

    def _credentials(self, stale=None):
        with self._lock:
            if self._cred is None or self._cred is stale:
                self._cred = self._authenticate()
            return self._cred

    @property
    def url(self):
        return self._credentials()[1]

    def request(self, method, path="", data=None, query=None, headers=None,
                timeout=60):
        """method on <storage URL>/<path> (quoted here): (status, headers,
        body).  A refused token is renewed once; connection errors and 5xx
        are tried again for a few seconds (a Swift just restarted)."""
        cred = self._credentials()
        renewed = False
        deadline = time.monotonic() + 20
        while True:
            url = cred[1]
            if path:
                url += "/" + urllib.parse.quote(path, safe="/")
            if query:
                url += "?" + urllib.parse.urlencode(query)
            h = {"X-Auth-Token": cred[0]}
            h.update(headers or {})
            try:
                st, hdrs, body = _http(method, url, data, h, timeout)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            if st == 401 and not renewed:
                renewed = True
                cred = self._credentials(stale=cred)
                continue
            if st >= 500 and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            return st, hdrs, body

    def listing(self, container, prefix=""):
        """[(name, bytes)] of container's objects under prefix, in name
        order ([] when the container does not exist)."""
        out, marker = [], ""
        while True:
            st, _, body = self.request("GET", container, query={
                "format": "json", "prefix": prefix, "marker": marker})
            if st == 404:
                return out
            if st not in (200, 204):
                raise OSError("listing of %s: HTTP %d" % (container, st))
            page = json.loads(body or b"[]")
            if not page:
                return out
            out += [(e["name"], e["bytes"]) for e in page]
            marker = page[-1]["name"]

    def get(self, container, name):
        st, _, body = self.request("GET", container + "/" + name)
        if st != 200:
            raise OSError("GET %s/%s: HTTP %d" % (container, name, st))
        return body

    def put(self, container, name, data):
        st, _, _ = self.request("PUT", container + "/" + name, data=data)
        if st != 201:
            raise OSError("PUT %s/%s: HTTP %d" % (container, name, st))

    def delete(self, container, name):
        st, _, _ = self.request("DELETE", container + "/" + name)
        if st not in (204, 404):
            raise OSError("DELETE %s/%s: HTTP %d" % (container, name, st))

    def container_exists(self, container):
        st, _, _ = self.request("HEAD", container)
        if st not in (204, 200, 404):
            raise OSError("HEAD %s: HTTP %d" % (container, st))
        return st != 404

    def empty_and_delete(self, container, timeout=60):
        """Delete every object of container, then the container (gone
        already is fine)."""
        deadline = time.monotonic() + timeout
        while True:
            names = [n for n, _ in self.listing(container)]
            if names:
                with ThreadPoolExecutor(8) as ex:
                    list(ex.map(lambda n: self.delete(container, n), names))
            st, _, _ = self.request("DELETE", container)
            if st in (204, 404):
                return
            # 409: a listing that lags behind the deletes
            if st != 409 or time.monotonic() > deadline:
                raise OSError("DELETE container %s: HTTP %d" % (container,
                                                                 st))
            time.sleep(0.2)


def tempauth(auth_url, user, key):
    """An authenticate() for SwiftAccount: tempauth v1."""
    def authenticate():
        st, h, _ = _http("GET", auth_url, headers={"X-Auth-User": user,
                                                   "X-Auth-Key": key},
                         timeout=30)
        if st != 200:
            raise OSError("tempauth %s refused %s: HTTP %d" % (auth_url, user,
                                                              st))
        return h["X-Auth-Token"], h["X-Storage-Url"]
    return authenticate


def keystone_v3(auth_url, auth):
    """An authenticate() for SwiftAccount: POST auth (a dict: the "auth"
    object) to Keystone v3; the public object-store URL of the catalog."""
    def authenticate():
        st, h, body = _http("POST", auth_url.rstrip("/") + "/auth/tokens",
                            json.dumps({"auth": auth}).encode(),
                            {"Content-Type": "application/json"}, 30)
        if st != 201:
            raise OSError("keystone refused %r: HTTP %d" % (
                list(auth["identity"]["methods"]), st))
        for svc in json.loads(body)["token"]["catalog"]:
            if svc["type"] == "object-store":
                for ep in svc["endpoints"]:
                    if ep["interface"] == "public":
                        return h["X-Subject-Token"], ep["url"]
        raise OSError("no public object-store endpoint in the catalog")
    return authenticate


def server_script(script, cmd, timeout=SERVER_TIMEOUT, env=None):
    """Run tools/<server>.sh cmd; its Result (never raises on a non-zero
    exit; fails the test on a timeout)."""
    e = dict(os.environ)
    e.update(env or {})
    return run([script, cmd], timeout=timeout, env=e)


def _script_env(script, env=None):
    r = server_script(script, "env", 60, env)
    if r.returncode != 0:
        pytest.fail("%s env failed:\n%s" % (script, r.describe()),
                    pytrace=False)
    out = {}
    for line in r.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


class SwiftServer:
    """The tempauth Swift all-in-one (tools/swift-server.sh) on 8080."""

    def __init__(self):
        env = _script_env(SWIFT_SCRIPT)
        self.env = env
        self.auth_url = env["ST_AUTH"]
        self.user = env["ST_USER"]
        self.key = env["ST_KEY"]
        self.account = SwiftAccount(tempauth(self.auth_url, self.user,
                                             self.key))

    def running(self):
        return server_script(SWIFT_SCRIPT, "status", 60).returncode == 0

    def start(self):
        r = server_script(SWIFT_SCRIPT, "start")
        if r.returncode != 0:
            pytest.fail("tools/swift-server.sh start failed:\n"
                        + r.describe(), pytrace=False)

    def stop(self):
        r = server_script(SWIFT_SCRIPT, "stop", 120)
        if r.returncode != 0:
            pytest.fail("tools/swift-server.sh stop failed:\n"
                        + r.describe(), pytrace=False)


class KeystoneServer:
    """Keystone v3 on 5000 and its Swift proxy on 8081
    (tools/keystone-server.sh): the `env` of the script as a dict, the
    token lifetime, and the test user's credentials."""

    def __init__(self):
        self.env = _script_env(KEYSTONE_SCRIPT)
        self.auth_url = self.env["OS_AUTH_URL"]
        self.ttl = int(self.env["BACKUPFS_KEYSTONE_TOKEN_EXPIRATION"])
        self.appcred_id = Path(
            self.env["BACKUPFS_KEYSTONE_APPCRED_ID_FILE"]).read_text().strip()
        self.appcred_secret_file = \
            self.env["BACKUPFS_KEYSTONE_APPCRED_SECRET_FILE"]

    def password_auth(self):
        e = self.env
        return {"identity": {"methods": ["password"], "password": {"user": {
            "name": e["OS_USERNAME"],
            "domain": {"name": e["OS_USER_DOMAIN_NAME"]},
            "password": e["OS_PASSWORD"]}}},
            "scope": {"project": {
                "name": e["OS_PROJECT_NAME"],
                "domain": {"name": e["OS_PROJECT_DOMAIN_NAME"]}}}}

    def account(self):
        """The test project's Swift account (through 8081)."""
        return SwiftAccount(keystone_v3(self.auth_url, self.password_auth()))


def _keystone_log_tails():
    state = Path(os.environ.get("BACKUPFS_KEYSTONE_DIR",
                                "/var/tmp/backupfs-keystone"))
    out = []
    for name in ("keystone.log", "keystone-app.log", "proxy.log",
                 "init.log"):
        p = state / "log" / name
        try:
            lines = p.read_text(errors="replace").splitlines()[-20:]
        except OSError as e:
            lines = ["(%s)" % e]
        out.append("--- %s\n%s" % (p, "\n".join(lines)))
    return "\n".join(out)


@pytest.fixture(scope="session")
def swift_server():
    """The Swift all-in-one, started once for the session unless it runs
    already (then left running; else stopped at the end)."""
    was_running = server_script(SWIFT_SCRIPT, "status", 60).returncode == 0
    if not was_running:
        r = server_script(SWIFT_SCRIPT, "start")
        if r.returncode != 0:
            pytest.fail("tools/swift-server.sh start failed:\n"
                        + r.describe(), pytrace=False)
    srv = SwiftServer()
    yield srv
    if not was_running:
        server_script(SWIFT_SCRIPT, "stop", 120)


@pytest.fixture(scope="session")
def keystone_server(swift_server):
    """Keystone and the 8081 proxy, started once for the session (tokens
    living KEYSTONE_TTL s) unless they run already (then left running with
    their own lifetime; else stopped at the end, before Swift)."""
    was_running = server_script(KEYSTONE_SCRIPT, "status",
                                60).returncode == 0
    if not was_running:
        r = server_script(KEYSTONE_SCRIPT, "start", env={
            "BACKUPFS_KEYSTONE_TOKEN_EXPIRATION": KEYSTONE_TTL})
        if r.returncode != 0:
            pytest.fail("tools/keystone-server.sh start failed:\n%s\n%s"
                        % (r.describe(), _keystone_log_tails()),
                        pytrace=False)
    srv = KeystoneServer()
    yield srv
    if not was_running:
        server_script(KEYSTONE_SCRIPT, "stop", 120)


class DbServer:
    """A database server of a tools/<name>-server.sh script.

    .env is what `script env` prints (a dict of strings); each of its keys
    is an attribute too, named in lower case without the BACKUPFS_<DB>_
    prefix: BACKUPFS_PG_DATA -> .data.  Two are converted: PORT to an int
    (.port) and the JSON argv arrays START and STOP to lists (.start_argv,
    .stop_argv: the exact commands a driver is configured with).
    script_env (BACKUPFS_* variables) selects another instance of the
    script, such as a second PostgreSQL cluster."""

    SCRIPT = None
    PREFIX = None

    def __init__(self, script_env=None):
        self.script_env = dict(script_env or {})
        self.env = _script_env(self.SCRIPT, self.script_env)
        for k, v in self.env.items():
            if not k.startswith(self.PREFIX):
                continue
            name = k[len(self.PREFIX):].lower()
            if name in ("start", "stop"):
                setattr(self, name + "_argv", json.loads(v))
            elif name == "port":
                self.port = int(v)
            else:
                setattr(self, name, v)
        # what an interrupted earlier run left in the server's persistent
        # directory is not this run's leftover (see leftovers())
        self._old_leftovers = set(self._tagged_siblings())

    def _tagged_siblings(self):
        data = getattr(self, "data", None)
        if not data or not os.path.isdir(os.path.dirname(data)):
            return []
        return [n for n in os.listdir(os.path.dirname(data))
                if ".backupfs-" in n]

    def leftovers(self):
        """backupfs's staging, old or snapshot directories beside the
        data directory (datastores/swap.c names them .backupfs-*) that
        were not there when this object was made: sorted names."""
        return sorted(n for n in self._tagged_siblings()
                      if n not in self._old_leftovers)

    def script(self, cmd, timeout=SERVER_TIMEOUT):
        """`script cmd` for this instance: its Result."""
        return server_script(self.SCRIPT, cmd, timeout, self.script_env)

    def running(self):
        return self.script("status", 60).returncode == 0

    def start(self):
        r = self.script("start")
        if r.returncode != 0:
            pytest.fail("%s start failed:\n%s" % (self.SCRIPT, r.describe()),
                        pytrace=False)

    def stop(self):
        r = self.script("stop", 180)
        if r.returncode != 0:
            pytest.fail("%s stop failed:\n%s" % (self.SCRIPT, r.describe()),
                        pytrace=False)


class PgServer(DbServer):
    """PostgreSQL 15 (tools/pg-server.sh): .bin_dir, .data, .host (the
    socket directory), .port, .user, .os_user, .log, .btrfs_mount (empty
    unless the data directory is a btrfs subvolume), .start_argv,
    .stop_argv."""

    SCRIPT = PG_SCRIPT
    PREFIX = "BACKUPFS_PG_"

    def psql(self, sql, db="postgres", timeout=CMD_TIMEOUT):
        """psql -Atc sql over the socket: its Result."""
        return run([os.path.join(self.bin_dir, "psql"), "-X", "-h",
                    self.host, "-p", str(self.port), "-U", self.user, "-d",
                    db, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                   timeout=timeout)

    def sql(self, sql, db="postgres"):
        """The output of sql (psql -At), stripped; fails the test on an
        error."""
        r = self.psql(sql, db)
        if r.returncode != 0:
            pytest.fail("psql failed:\n" + r.describe(), pytrace=False)
        return r.stdout.strip()


class MariadbServer(DbServer):
    """MariaDB 10.11 (tools/mariadb-server.sh): .data, .socket, .port,
    .user, .os_user, .log, .start_argv, .stop_argv."""

    SCRIPT = MARIADB_SCRIPT
    PREFIX = "BACKUPFS_MARIADB_"

    def mariadb(self, sql, db=None, timeout=CMD_TIMEOUT):
        """mariadb -N -B -e sql over the socket: its Result."""
        return run(["mariadb", "--no-defaults", "-S", self.socket,
                    "-u" + self.user, "-N", "-B", "-e", sql]
                   + ([db] if db else []), timeout=timeout)

    def sql(self, sql, db=None):
        """The output of sql (tab-separated, no column names), stripped;
        fails the test on an error."""
        r = self.mariadb(sql, db)
        if r.returncode != 0:
            pytest.fail("mariadb failed:\n" + r.describe(), pytrace=False)
        return r.stdout.strip()


class CouchServer(DbServer):
    """pouchdb-server, the CouchDB API (tools/couch-server.sh): .url,
    .data, .start_argv, .stop_argv."""

    SCRIPT = COUCH_SCRIPT
    PREFIX = "BACKUPFS_COUCH_"

    def request(self, method, path, body=None, timeout=60):
        """(status, decoded JSON or None) of one request; body (a dict or
        list) goes as JSON.  Connection trouble raises OSError."""
        data, headers = None, {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        st, _, raw = _http(method, self.url.rstrip("/") + path, data,
                           headers, timeout)
        try:
            return st, json.loads(raw) if raw else None
        except ValueError:
            return st, None


def _db_server(cls):
    """Start cls's server unless it runs already; yield a cls; stop it at
    the end only if it was started here."""
    was_running = server_script(cls.SCRIPT, "status", 60).returncode == 0
    if not was_running:
        r = server_script(cls.SCRIPT, "start")
        if r.returncode != 0:
            pytest.fail("%s start failed:\n%s" % (cls.SCRIPT, r.describe()),
                        pytrace=False)
    yield cls()
    if not was_running:
        server_script(cls.SCRIPT, "stop", 180)


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL 15 cluster of tools/pg-server.sh (127.0.0.1:5433),
    started once for the session unless it runs already (then left
    running; else stopped at the end): a PgServer."""
    yield from _db_server(PgServer)


@pytest.fixture(scope="session")
def mariadb_server():
    """MariaDB 10.11 of tools/mariadb-server.sh (127.0.0.1:3307), started
    once for the session unless it runs already: a MariadbServer."""
    yield from _db_server(MariadbServer)


@pytest.fixture(scope="session")
def couch_server():
    """pouchdb-server of tools/couch-server.sh (127.0.0.1:5984), started
    once for the session unless it runs already: a CouchServer."""
    yield from _db_server(CouchServer)


class Backend:
    """The kind of repository of an Env ("local" or "swift") and, for
    Swift, the server."""

    def __init__(self, kind="local", swift=None):
        assert kind in BACKENDS, kind
        self.kind = kind
        self.swift = swift

    def __repr__(self):
        return self.kind


@pytest.fixture(scope="module")
def backend(request):
    """The backend kind of this test's Envs (parametrized by
    pytest_generate_tests)."""
    kind = getattr(request, "param", "local")
    swift = request.getfixturevalue("swift_server") \
        if kind == "swift" else None
    return Backend(kind, swift)


# ---------------------------------------------------------------------------
# A repository, its config and its mounts


class Env:
    """A repository, key, state dir, sources and config under base.

    add_instance() creates a source directory; write_config() writes
    base/backupfs.json; init() runs `backupctl init`; mount() mounts.

    The repository is on backend.kind: "local" (the directory repo) or
    "swift" (a fresh container of the tempauth all-in-one, named
    .container, deleted by teardown()).  objects(), read_object(),
    write_object() and delete_object() reach it behind backupfs's back
    whatever its kind.  For Swift, swift_auth holds the auth keys of the
    backend config and backend_extra more keys (a test may change both, say
    to go through a fault proxy or Keystone; then set .swift to a
    SwiftAccount of the same account for the helpers)."""

    def __init__(self, base, node=None, backend=None):
        self.base = Path(base)
        self.backend = backend or Backend()
        self.kind = self.backend.kind
        self.repo = self.base / "repo"
        self.state = self.base / "state"
        self.key = self.base / "repo.key"
        self.cfg = self.base / "backupfs.json"
        self.node = node
        self.instances = {}
        self.extra = {}
        self.backend_extra = {}
        self.daemons = []
        self._public = None
        self._n = 0
        for d in (self.state, self.base / "src"):
            d.mkdir(parents=True, exist_ok=True)
        if self.kind == "local":
            self.repo.mkdir(parents=True, exist_ok=True)
            self.swift = self.container = self.swift_auth = None
        else:
            srv = self.backend.swift
            self.swift = srv.account
            self.container = "bfs-pytest-" + os.urandom(8).hex()
            self.swift_auth = {
                "auth_url": srv.auth_url, "user": srv.user,
                "key_file": str(self.secret_file("swift.key", srv.key))}

    def secret_file(self, name, value):
        """base/name holding value, mode 0600 (backupfs's rule for
        secrets)."""
        path = self.base / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
        return path

    # -- the repository behind backupfs's back --------------------------

    def backend_config(self):
        if self.kind == "local":
            conf = {"type": "local", "path": str(self.repo)}
        else:
            conf = {"type": "swift"}
            conf.update(self.swift_auth)
            conf["container"] = self.container
        conf.update(self.backend_extra)
        return conf

    def _local_path(self, name):
        assert name and not name.startswith("/") and ".." not in \
            name.split("/"), name
        return self.repo / name

    def objects(self, prefix=""):
        """{name: size} of the repository's objects whose names start with
        prefix, in name order (the local backend's temporaries, any
        component starting with ".", left out)."""
        if self.kind == "swift":
            return dict(self.swift.listing(self.container, prefix))
        out = {}
        if not self.repo.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(self.repo):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                if f.startswith("."):
                    continue
                p = Path(dirpath) / f
                name = str(p.relative_to(self.repo))
                if name.startswith(prefix):
                    out[name] = p.stat().st_size
        return dict(sorted(out.items()))

    def read_object(self, name):
        if self.kind == "swift":
            return self.swift.get(self.container, name)
        return self._local_path(name).read_bytes()

    def write_object(self, name, data):
        """Replace (or create) the object name with data."""
        if self.kind == "swift":
            return self.swift.put(self.container, name, data)
        p = self._local_path(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)

    def delete_object(self, name):
        if self.kind == "swift":
            return self.swift.delete(self.container, name)
        self._local_path(name).unlink()

    def repository_exists(self):
        """The directory, or the container, exists."""
        if self.kind == "swift":
            return self.swift.container_exists(self.container)
        return self.repo.exists()

    def remove_repository(self):
        """Remove the repository whole (directory or container)."""
        if self.kind == "swift":
            self.swift.empty_and_delete(self.container)
        elif self.repo.exists():
            shutil.rmtree(self.repo)

    def src(self, name="vol1"):
        return Path(self.instances[name]["path"])

    def add_instance(self, name="vol1", tree=None, snapshot="auto",
                     path=None):
        """A files instance; tree: None (empty), "sample", or a callable
        that fills the source directory.  Returns the source path."""
        src = Path(path) if path else self.base / "src" / name
        src.mkdir(parents=True, exist_ok=True)
        if tree == "sample":
            make_sample_tree(src)
        elif tree is not None:
            tree(src)
        self.instances[name] = {"datastore": "files", "path": str(src),
                                "snapshot": snapshot}
        return src

    def config(self, **over):
        conf = {
            "backend": self.backend_config(),
            "key_file": str(self.key),
            "state_dir": str(self.state),
            "instances": self.instances,
        }
        conf.update(self.extra)
        conf.update(over)
        return conf

    def write_config(self, path=None, **over):
        path = Path(path) if path else self.cfg
        path.write_text(json.dumps(self.config(**over), indent=1,
                                   ensure_ascii=False) + "\n",
                        encoding="utf-8")
        return path

    def ctl(self, *args, cfg=None, check=True, timeout=CMD_TIMEOUT):
        r = run([BACKUPCTL, "--config", cfg or self.cfg, *args],
                timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail("backupctl failed:\n" + r.describe())
        return r

    def init(self, chunk_size=None):
        """backupctl init; chunk_size (e.g. "1M") for a test whose data
        must make several chunks whatever the backend's default."""
        self.write_config()
        if chunk_size:
            return self.ctl("init", "--chunk-size", chunk_size)
        return self.ctl("init")

    def snapshot(self, instance="vol1", label=None, check=True):
        """`backupctl snapshot INSTANCE [--label L] --wait`."""
        args = ["snapshot", instance]
        if label is not None:
            args += ["--label", label]
        return self.ctl(*args, "--wait", check=check)

    def public_dir(self):
        """A directory user nobody can reach (tmp_path's parents are 0700)."""
        if self._public is None:
            self._public = Path(tempfile.mkdtemp(prefix="backupfs-test-"))
            os.chmod(self._public, 0o755)
        return self._public

    def mount(self, cfg=None, allow_other=False, options=()):
        self._n += 1
        opts = list(options)
        if allow_other:
            opts.append("allow_other")
            mnt = self.public_dir() / ("mnt%d" % self._n)
        else:
            mnt = self.base / ("mnt%d" % self._n)
        m = Mount(cfg or self.cfg, mnt, self.base / ("backupfs-%d.log"
                                                     % self._n), opts)
        self.daemons.append(m)
        if self.node is not None:
            if not hasattr(self.node, "_bfs_daemons"):
                self.node._bfs_daemons = []
            self.node._bfs_daemons.append(m)
        m.start()
        return m

    def teardown(self, allowed):
        """Stop every daemon, check their logs; returns problems."""
        problems = []
        for d in self.daemons:
            for p in d.stop():
                problems.append("%s: %s" % (d.mnt, p))
            bad = d.log_problems(allowed)
            if bad:
                problems.append("%s: unexpected lines in the daemon log %s:"
                                "\n  %s" % (d.mnt, d.log_path,
                                            "\n  ".join(bad[:20])))
        if self._public is not None and \
                not any(in_mount_table(d.mnt) for d in self.daemons):
            shutil.rmtree(self._public, ignore_errors=True)
        if self.kind == "swift" and not any(d.alive() for d in self.daemons):
            try:
                self.remove_repository()
            except OSError as e:
                problems.append("cannot delete the container %s: %s"
                                % (self.container, e))
        return problems


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session", autouse=True)
def preflight():
    """Fail (never skip) when the suite cannot mount for real."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (allow_other, nobody tests, loop mounts)")
    try:
        if not stat.S_ISCHR(os.stat("/dev/fuse").st_mode):
            missing.append("/dev/fuse as a character device")
    except OSError as e:
        missing.append("/dev/fuse (%s)" % e.strerror)
    if not os.access(FUSERMOUNT, os.X_OK):
        missing.append("fusermount3 (apt-get install fuse3)")
    for b in (BACKUPFS, BACKUPCTL):
        if not os.access(b, os.X_OK):
            missing.append("%s (build first: meson compile -C build)" % b)
    if missing:
        pytest.fail("the FUSE integration suite cannot run; missing: "
                    + "; ".join(missing), pytrace=False)


class Watchdog:
    """After limit seconds, dump every thread's traceback and kill every
    daemon: file operations blocked on a hung mount then fail (ENOTCONN)
    instead of hanging CI.  A context manager; .fired tells."""

    def __init__(self, limit, what):
        self.limit = limit
        self.what = what
        self.fired = False
        self._timer = threading.Timer(limit, self._bark)
        self._timer.daemon = True

    def _bark(self):
        self.fired = True
        sys.stderr.write("watchdog: %s ran over %d s; tracebacks, then "
                         "every daemon killed\n" % (self.what, self.limit))
        faulthandler.dump_traceback(all_threads=True)
        with _LIVE_LOCK:
            for d in list(_LIVE):
                d.watchdog_kill()

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        if self.fired:
            pytest.fail("watchdog: %s ran over %d s (daemons killed)"
                        % (self.what, self.limit), pytrace=False)
        return False


@pytest.fixture(autouse=True)
def watchdog(request):
    """Every test runs under a Watchdog (@pytest.mark.bfs_timeout)."""
    m = request.node.get_closest_marker("bfs_timeout")
    with Watchdog(m.args[0] if m else TEST_TIMEOUT, request.node.nodeid):
        yield


@pytest.fixture(scope="session")
def util():
    """This module: the helpers below, for the test files."""
    return sys.modules[__name__]


@pytest.fixture
def env_factory(request, backend):
    """make(base) -> Env: a repository layout under base on this test's
    backend (not initialized, no instances yet).  At the end of the test
    every mount of every Env is stopped and its log checked, and a Swift
    container deleted."""
    envs = []

    def make(base):
        e = Env(base, request.node, backend)
        envs.append(e)
        return e

    yield make
    problems = []
    for e in envs:
        problems += e.teardown(allowed_log_errors(request.node))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def env(env_factory, tmp_path):
    """An Env in tmp_path (see env_factory)."""
    return env_factory(tmp_path)


@pytest.fixture
def vol1(env):
    """env with instance vol1 (sample tree), initialized, one backup
    labelled "first" taken with backupctl; nothing mounted yet."""
    env.add_instance("vol1", tree="sample")
    env.init()
    env.snapshot("vol1", label="first")
    return env


@pytest.fixture
def mnt(vol1):
    """vol1 mounted."""
    return vol1.mount()


@pytest.fixture
def shared_mount(request, backend):
    """Per-test view of a module-scoped Mount (the module defines a fixture
    `module_mount`, on `backend`): registers it for the reproducer and
    checks the log lines the test produced."""
    m = request.getfixturevalue("module_mount")
    request.node._bfs_daemons = [m]
    since = m._log_size()
    yield m
    if not m.alive():
        pytest.fail("backupfs died during the test:\n" + m.log_tail(40),
                    pytrace=False)
    bad = m.log_problems(allowed_log_errors(request.node), since)
    if bad:
        pytest.fail("unexpected lines in the daemon log %s:\n  %s"
                    % (m.log_path, "\n  ".join(bad[:20])), pytrace=False)


def module_env(tmp_path_factory, name, backend):
    """An Env on backend (the module-scoped fixture `backend`) for a
    module-scoped fixture; call finish_module_env() at its end."""
    return Env(tmp_path_factory.mktemp(name), backend=backend)


def finish_module_env(e, allowed=()):
    """Stop the mounts of a module Env; fail on problems or on error lines
    that match none of the regexes in allowed."""
    problems = e.teardown(list(allowed))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    # passed: drop the large sources and repositories
    if not any(in_mount_table(d.mnt) for d in e.daemons):
        shutil.rmtree(e.base, ignore_errors=True)


# ---------------------------------------------------------------------------
# Source trees and their comparison


def make_sample_tree(root):
    """A few text files, a subdir, a symlink, modes, an empty file."""
    root = Path(root)
    (root / "etc").mkdir(exist_ok=True)
    (root / "data" / "2026").mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text("hello from backupfs\n")
    (root / "etc" / "app.conf").write_text("port = 5433\nname = test\n")
    os.chmod(root / "etc" / "app.conf", 0o600)
    (root / "data" / "2026" / "users.csv").write_text(
        "id,name\n" + "".join("%d,user%d\n" % (i, i) for i in range(2000)))
    (root / "bin.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "bin.sh", 0o755)
    (root / "empty").write_bytes(b"")
    (root / "blob.bin").write_bytes(random.Random(7).randbytes(300 * KiB))
    if not os.path.lexists(root / "conf-link"):
        os.symlink("etc/app.conf", root / "conf-link")
    os.chmod(root / "data", 0o750)


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tree_of_dir(root, mtimes=False):
    """{relative path: entry} of a directory tree (the root left out):
    ("dir", mode), ("file", mode, size, sha256[, mtime_ns]),
    ("symlink", target), ("other", type)."""
    root = str(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode)
            elif stat.S_ISREG(st.st_mode):
                e = ("file", mode, st.st_size, _sha256_file(p))
                out[rel] = e + (st.st_mtime_ns,) if mtimes else e
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def _tar_name(name):
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def tree_of_tar(data):
    """tree_of_dir() of the tar stream data (bytes): member names are taken
    relative to the source directory ("./x" and "x" alike)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            rel = _tar_name(m.name)
            if rel in ("", "."):
                continue
            if m.issym():
                out[rel] = ("symlink", m.linkname)
            elif m.isdir():
                out[rel] = ("dir", m.mode & 0o7777)
            elif m.isreg():
                h = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
                out[rel] = ("file", m.mode & 0o7777, m.size, h)
            else:
                out[rel] = ("other", m.type)
    return out


def tar_member_data(data, relpath):
    """(offset, size) of a regular member's data inside the stream."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            if _tar_name(m.name) == relpath and m.isreg():
                return m.offset_data, m.size
    raise KeyError(relpath)


def diff_trees(got, want):
    """A readable difference of two tree dicts ("" when equal)."""
    lines = []
    for k in sorted(set(got) | set(want)):
        g, w = got.get(k), want.get(k)
        if g != w:
            lines.append("%r: got %r, want %r" % (k, g, w))
    return "\n".join(lines[:40])


def assert_same_tree(got, want, what="tree"):
    d = diff_trees(got, want)
    assert not d, "%s differs:\n%s" % (what, d)


# ---------------------------------------------------------------------------
# The mounted tree


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def read_json(path):
    data = read_file(path)
    try:
        return json.loads(data)
    except ValueError as e:
        pytest.fail("%s is not JSON (%s): %r" % (path, e, data[:500]))


def read_events(inst):
    """The events file of an instance as a list of dicts."""
    out = []
    for line in read_file(Path(inst) / "events").decode().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as e:
                pytest.fail("events line is not JSON (%s): %r" % (e, line))
    return out


def xattr(path, name):
    """The value of user.backupfs.<name> of path, as text."""
    return os.getxattr(path, "user.backupfs." + name).decode("utf-8")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def ts_epoch(ts):
    assert TS_RE.match(ts), "not a UTC timestamp: %r" % ts
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


def errno_of(fn, *args, **kw):
    """Call fn; 0 if it returned, else the errno of its OSError."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return 0


def create_job_file(path, data=None, trunc=False):
    """Create path (O_CREAT, and O_TRUNC when trunc, as a shell's `>`
    does), write data, close: 0 or the errno of the first failing step
    (open, write or close)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        return e.errno
    err = 0
    try:
        if data:
            os.write(fd, data if isinstance(data, bytes) else data.encode())
    except OSError as e:
        err = e.errno
    try:
        os.close(fd)
    except OSError as e:
        err = err or e.errno
    return err


def wait_job(path, timeout=JOB_TIMEOUT):
    """Poll a snapshots/<label> file until its state is completed or
    failed; returns the last JSON."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = read_json(path)
        if last.get("state") in ("completed", "failed"):
            return last
        assert last.get("state") == "running", "bad job state: %r" % last
        time.sleep(0.1)
    pytest.fail("job %s not done after %d s: %r" % (path, timeout, last))


def snapshot_via_mount(inst, label, strategy=None):
    """Start a snapshot through snapshots/<label>, wait, require it
    completed; returns (timestamp, job JSON)."""
    err = create_job_file(Path(inst) / "snapshots" / label, strategy)
    assert err == 0, "creating snapshots/%r: %s" % (label, os.strerror(err))
    job = wait_job(Path(inst) / "snapshots" / label)
    assert job["state"] == "completed", job
    assert TS_RE.match(job.get("backup") or ""), job
    return job["backup"], job


def status(inst):
    return read_json(Path(inst) / "status")


def wait_state(inst, states=("ACTIVE",), timeout=JOB_TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = status(inst)
        if last.get("state") in states:
            return last
        time.sleep(0.05)
    pytest.fail("%s/status not in %s after %d s: %r"
                % (inst, states, timeout, last))


def restore_errno(backup_path, restore_path):
    """shutil.copyfile into restore/: 0 or the errno of the copy/close."""
    try:
        shutil.copyfile(backup_path, restore_path)
    except OSError as e:
        return e.errno
    return 0


def write_random(path, size, seed):
    """size seeded pseudo-random (incompressible) bytes; returns them."""
    data = random.Random(seed).randbytes(size)
    Path(path).write_bytes(data)
    return data


def make_text(size, seed):
    """size bytes of compressible, text-like lines."""
    rng = random.Random(seed)
    words = ["backup", "restore", "instance", "postgres", "mariadb", "chunk",
             "manifest", "snapshot", "swift", "trove", "cinder", "volume",
             "the", "a", "of", "to", "and", "in", "is", "on"]
    phrases = [" ".join(rng.choice(words) for _ in range(6))
               for _ in range(500)]
    parts = []
    n = 0
    i = 0
    while n < size:
        line = "%09d %s %s\n" % (i, phrases[rng.randrange(500)],
                                 phrases[rng.randrange(500)])
        parts.append(line)
        n += len(line)
        i += 1
    return "".join(parts).encode()[:size]
