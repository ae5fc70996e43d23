# SPDX-License-Identifier: Apache-2.0
"""The swift backend against a real OpenStack Swift on loopback.

The session fixture swift_server (conftest.py) starts the all-in-one with
tools/swift-server.sh (and stops it at the end of the session only if it
was not running before).  Then:

  - build/tests/swift/test_swift, the C suite (BACKUPFS_TEST_SWIFT_BIN),
    must pass;
  - the same binary as a one-operation client ("--config FILE CMD") runs
    what is easier to check from Python: object names as Swift itself sees
    them, listing pages counted in the proxy's access log, Keystone v3
    against a stand-in identity service whose catalog points at the real
    Swift, and retries through a fault-injecting proxy (DESIGN.md section
    7: fakes only where faults are injected).

Standard library only (Debian's /usr/bin/python3 runs pytest-3).
"""

import http.client
import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_SWIFT = (os.environ.get("BACKUPFS_TEST_SWIFT_BIN")
              or str(REPO_ROOT / "build/tests/swift/test_swift"))
STATE = os.environ.get("BACKUPFS_SWIFT_DIR", "/var/tmp/backupfs-swift")
PROXY_LOG = os.path.join(STATE, "log/proxy.log")
AGENT = "backupfs/"

ODD_NAMES = [
    "odd/a&b",
    "odd/q?x=1&y=2",
    "odd/100%",
    "odd/%41%2F",
    "odd/hash#frag",
    "odd/with space",
    "odd/ both ends ",
    "odd/plus+sign",
    "odd/\u00fcn\u00efc\u00f6d\u00e9/\u30d5\u30a1\u30a4\u30eb",
    "odd/emoji \U0001f389",
    "odd/semi;colon=eq,comma:at@",
    "odd/quote\"s'",
]


# ---------------------------------------------------------------------------
# Swift: the server, raw HTTP, the C client


class Swift:
    """Credentials of the running all-in-one and raw HTTP to it."""

    def __init__(self, env):
        self.env = env
        self.auth_url = env["ST_AUTH"]
        self.user = env["ST_USER"]
        self.key = env["ST_KEY"]
        self.token, self.url = self.authenticate()
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port, self.account_path = u.hostname, u.port, u.path

    def authenticate(self):
        u = urllib.parse.urlsplit(self.auth_url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        c.request("GET", u.path, headers={"X-Auth-User": self.user,
                                          "X-Auth-Key": self.key})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200, "tempauth refused the test user"
        return r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]

    def request(self, method, path, body=None, headers=None):
        """method on <account>/<path> (path quoted here); (status, body,
        headers)."""
        h = {"X-Auth-Token": self.token}
        h.update(headers or {})
        c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        c.request(method, self.account_path + "/" + urllib.parse.quote(path),
                  body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data, r.headers

    def listing(self, container, prefix=""):
        names, marker = [], ""
        while True:
            q = urllib.parse.urlencode({"format": "json", "prefix": prefix,
                                        "marker": marker})
            h = {"X-Auth-Token": self.token}
            c = http.client.HTTPConnection(self.host, self.port, timeout=60)
            c.request("GET", "%s/%s?%s" % (self.account_path,
                                           urllib.parse.quote(container), q),
                      headers=h)
            r = c.getresponse()
            data = r.read()
            c.close()
            if r.status == 404:
                return names
            assert r.status in (200, 204)
            page = json.loads(data or b"[]")
            if not page:
                return names
            names += [e["name"] for e in page]
            marker = page[-1]["name"]

    def empty_and_delete(self, container):
        names = self.listing(container)
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda n: self.request("DELETE", container + "/" + n),
                        names))
        self.request("DELETE", container)


@pytest.fixture(scope="module")
def swift(swift_server):
    """The all-in-one (started once for the session by conftest.py)."""
    return Swift(swift_server.env)


@pytest.fixture
def container(swift):
    """A fresh container name; the container and its objects go at the
    end."""
    name = "bfs-pytest-" + secrets.token_hex(8)
    yield name
    swift.empty_and_delete(name)


class Client:
    """build/tests/swift/test_swift --config FILE CMD: one backend
    operation per process."""

    def __init__(self, tmp_path, swift):
        self.tmp_path = tmp_path
        self.swift = swift
        self.keyfile = tmp_path / "swift.key"
        self.keyfile.write_text(swift.key + "\n")
        os.chmod(self.keyfile, 0o600)

    def v1_conf(self, container, **over):
        conf = {"type": "swift", "auth_url": self.swift.auth_url,
                "user": self.swift.user, "key_file": str(self.keyfile),
                "container": container}
        conf.update(over)
        return conf

    def run(self, conf, *args, stdin=b"", env=None, check=True,
            timeout=120):
        path = self.tmp_path / ("conf-%s.json" % secrets.token_hex(4))
        path.write_text(json.dumps(conf))
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("ST_", "OS_"))}
        e.update(env or {})
        r = subprocess.run([TEST_SWIFT, "--config", str(path)] + list(args),
                           input=stdin, capture_output=True, env=e,
                           timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail("test_swift %s failed (%d): %s"
                        % (" ".join(args), r.returncode,
                           r.stderr.decode(errors="replace")),
                        pytrace=False)
        return r

    def listing(self, conf, prefix, delim=""):
        out = self.run(conf, "list", prefix, delim).stdout.decode()
        rows = [line.split("\t", 2) for line in out.splitlines()]
        return [(name, int(size), flag == "1") for size, flag, name in rows]


@pytest.fixture
def client(tmp_path, swift):
    if not os.access(TEST_SWIFT, os.X_OK):
        pytest.fail("%s is missing (build first: meson compile -C build)"
                    % TEST_SWIFT, pytrace=False)
    return Client(tmp_path, swift)


def proxy_log_lines(pattern, since):
    """Lines of the proxy's access log after byte offset since that match
    pattern and come from backupfs (its User-Agent)."""
    rx = re.compile(pattern)
    with open(PROXY_LOG, "rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    return [line for line in text.splitlines()
            if AGENT in line and rx.search(line)]


def log_size():
    return os.path.getsize(PROXY_LOG)


# ---------------------------------------------------------------------------
# The C suite


@pytest.mark.bfs_timeout(900)
def test_c_suite(swift):
    """build/tests/swift/test_swift passes against the live Swift."""
    if not os.access(TEST_SWIFT, os.X_OK):
        pytest.fail("%s is missing (build first)" % TEST_SWIFT,
                    pytrace=False)
    env = dict(os.environ)
    env.update(swift.env)
    r = subprocess.run([TEST_SWIFT], capture_output=True, text=True,
                       errors="replace", env=env, timeout=850)
    summary = r.stdout.strip().splitlines()[-1:] or ["(no summary)"]
    assert r.returncode == 0 and re.match(r"\d+ passed, 0 failed$",
                                          summary[0]), \
        "test_swift: %s\n%s" % (summary[0], r.stderr[-6000:])
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr


# ---------------------------------------------------------------------------
# Object names


def test_odd_names_as_swift_sees_them(client, swift, container):
    """Names with & ? % # spaces and UTF-8 are stored under exactly those
    names (not double-encoded), and names Swift holds list and read back
    exactly through the backend."""
    conf = client.v1_conf(container)
    for name in ODD_NAMES:
        client.run(conf, "put", name, stdin=name.encode())
    assert sorted(swift.listing(container)) == sorted(ODD_NAMES)
    for name in ODD_NAMES:
        status, body, _ = swift.request("GET", container + "/" + name)
        assert (status, body) == (200, name.encode()), name
    # the other way round: stored by raw HTTP, read by the backend
    for name in ODD_NAMES:
        raw = "raw" + name[3:]
        assert swift.request("PUT", container + "/" + raw,
                             body=raw.encode())[0] == 201
    listed = client.listing(conf, "raw/")
    assert sorted(n for n, _, _ in listed) == sorted(
        "raw" + n[3:] for n in ODD_NAMES)
    for name, size, is_prefix in listed:
        assert size == len(name.encode()) and not is_prefix
        assert client.run(conf, "get", name).stdout == name.encode()
        assert client.run(conf, "stat", name).stdout.strip() == \
            str(size).encode()
    # UTF-8 byte order is code point order: Python's sort is Swift's
    want = sorted([n for n, _, _ in listed if "\u30d5" not in n] +
                  ["raw/\u00fcn\u00efc\u00f6d\u00e9/"])
    assert [p for p, _, _ in client.listing(conf, "raw/", "/")] == want


def test_names_swift_cannot_hold_are_refused(client, container):
    conf = client.v1_conf(container)
    r = client.run(conf, "put", "x/" + "y" * 200 + "/" + "z" * 200 + "/" +
                   "w" * 200 + "/" + "v" * 200 + "/" + "u" * 230,
                   stdin=b"x", check=False)
    assert r.returncode == 1 and b"over 1024 bytes" in r.stderr
    r = client.run(conf, "put", "../escape", stdin=b"x", check=False)
    assert r.returncode == 1 and b"-22" in r.stderr


# ---------------------------------------------------------------------------
# Listings


def put_many(swift, container, names):
    assert swift.request("PUT", container)[0] in (201, 202)
    with ThreadPoolExecutor(16) as ex:
        st = list(ex.map(lambda n: swift.request(
            "PUT", container + "/" + n, body=n.encode())[0], names))
    assert st == [201] * len(names)


def wait_for_log(pattern, since, want, timeout=5):
    lines = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = proxy_log_lines(pattern, since)
        if len(lines) >= want:
            break
        time.sleep(0.1)
    return lines


@pytest.mark.bfs_timeout(600)
def test_listing_2500_pages_with_marker(client, swift, container):
    """2500 objects with list_limit 1000: three GETs of the container (the
    last a short page), and not one HEAD of an object."""
    names = ["many/d%d/o%04d" % (i % 5, i) for i in range(2500)]
    put_many(swift, container, names)
    conf = client.v1_conf(container, list_limit=1000)
    since = log_size()
    listed = client.listing(conf, "many/")
    assert [n for n, _, _ in listed] == sorted(names)
    assert all(size == len(n) for n, size, _ in listed)
    pages = wait_for_log(r"GET /v1/\S+/%s%%3Fformat%%3Djson" % container,
                         since, 3)
    assert len(pages) == 3, "\n".join(pages)
    # the first page from the start, the others after the last name seen
    assert "marker%3D%26" in pages[0]
    assert all("marker%3Dmany%252F" in p for p in pages[1:])
    assert all("limit%3D1000" in p for p in pages)
    heads = proxy_log_lines(r"HEAD /v1/\S+/%s/" % container, since)
    assert heads == []
    # with the delimiter: five common prefixes, two to a page
    conf = client.v1_conf(container, list_limit=2)
    since = log_size()
    listed = client.listing(conf, "many/", "/")
    assert listed == [("many/d%d/" % i, 0, True) for i in range(5)]
    pages = wait_for_log(r"GET /v1/\S+/%s%%3Fformat%%3Djson" % container,
                         since, 3)
    assert len(pages) == 3, "\n".join(pages)


def test_listing_exact_multiple_ends_with_empty_page(client, swift,
                                                     container):
    put_many(swift, container, ["p/%02d" % i for i in range(20)])
    conf = client.v1_conf(container, list_limit=10)
    since = log_size()
    assert len(client.listing(conf, "p/")) == 20
    pages = wait_for_log(r"GET /v1/\S+/%s%%3Fformat%%3Djson" % container,
                         since, 3)
    assert len(pages) == 3


# ---------------------------------------------------------------------------
# Keystone v3, with a stand-in identity service


class FakeKeystone:
    """POST /v3/auth/tokens as Keystone answers it: checks the request body
    exactly, hands out the real Swift's tempauth token as X-Subject-Token
    and a catalog whose public RegionOne object-store endpoint is the real
    Swift (the others lead nowhere)."""

    def __init__(self, swift, lifetime=3600):
        self.swift = swift
        self.lifetime = lifetime
        self.requests = []
        self.accept = []  # bodies (dicts) that authenticate
        ks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                ks.requests.append((self.path, body,
                                    self.headers.get("Content-Type")))
                if self.path != "/v3/auth/tokens" or body not in ks.accept:
                    return self.reply(401, {"error": {
                        "code": 401, "title": "Unauthorized",
                        "message": "The request you have made requires "
                                   "authentication."}}, {})
                now = time.time()
                token = {
                    "issued_at": time.strftime(
                        "%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now)),
                    "expires_at": time.strftime(
                        "%Y-%m-%dT%H:%M:%S.000000Z",
                        time.gmtime(now + ks.lifetime)),
                    "catalog": ks.catalog()}
                self.reply(201, {"token": token},
                           {"X-Subject-Token": ks.swift.token})

            def reply(self, status, obj, headers):
                data = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def catalog(self):
        def ep(interface, region, url):
            return {"id": secrets.token_hex(4), "interface": interface,
                    "region": region, "region_id": region, "url": url}
        nowhere = "http://127.0.0.1:1/v1/AUTH_test"
        return [
            {"type": "identity", "name": "keystone", "endpoints": [
                ep("public", "RegionOne", self.url + "/v3")]},
            {"type": "object-store", "name": "swift", "endpoints": [
                ep("internal", "RegionOne", nowhere),
                ep("public", "RegionOne", self.swift.url),
                ep("public", "RegionTwo", nowhere)]},
        ]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keystone(swift):
    ks = FakeKeystone(swift)
    yield ks
    ks.close()


def password_body(user, password, project, user_dom=("name", "Default"),
                  project_dom=("name", "Default"), by_id=False):
    u = ({"id": user, "password": password} if by_id else
         {"name": user, "domain": {user_dom[0]: user_dom[1]},
          "password": password})
    p = ({"id": project} if by_id else
         {"name": project, "domain": {project_dom[0]: project_dom[1]}})
    return {"auth": {"identity": {"methods": ["password"],
                                  "password": {"user": u}},
                     "scope": {"project": p}}}


def test_keystone_v3_password(client, keystone, container, tmp_path):
    """user/project names with domain names; the public endpoint of the
    configured region; the password only in the request body."""
    pw = tmp_path / "pw"
    pw.write_text("s3cret pass\n")
    os.chmod(pw, 0o600)
    keystone.accept.append(password_body("tester", "s3cret pass", "test",
                                         ("name", "Dom"), ("name", "PDom")))
    conf = {"type": "swift", "auth_url": keystone.url + "/v3/",
            "user": "tester", "user_domain": "Dom", "password_file": str(pw),
            "project": "test", "project_domain": "PDom",
            "region": "RegionOne", "container": container}
    client.run(conf, "put", "v3/x", stdin=b"via keystone")
    assert client.run(conf, "get", "v3/x").stdout == b"via keystone"
    path, body, ctype = keystone.requests[-1]
    assert path == "/v3/auth/tokens" and ctype == "application/json"
    # another region or interface: no usable endpoint
    r = client.run(dict(conf, region="RegionThree"), "open", check=False)
    assert r.returncode == 1 and b"no object-store endpoint" in r.stderr
    r = client.run(dict(conf, interface="internal", deadline=1), "open",
                   check=False)
    assert r.returncode == 1 and b"127.0.0.1 port 1" in r.stderr
    # without domains: "Default" for the user, the user's for the project
    keystone.accept.append(password_body("tester", "s3cret pass", "test"))
    conf2 = {k: v for k, v in conf.items()
             if k not in ("user_domain", "project_domain")}
    client.run(conf2, "open")


def test_keystone_v3_ids_and_domain_ids(client, keystone, container,
                                        tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    os.chmod(pw, 0o600)
    keystone.accept.append(password_body("u-123", "pw", "p-456",
                                         by_id=True))
    conf = {"type": "swift", "auth_url": keystone.url + "/v3",
            "user_id": "u-123", "password_file": str(pw),
            "project_id": "p-456", "container": container}
    client.run(conf, "open")
    keystone.accept.append(password_body("tester", "pw", "test",
                                         ("id", "default"),
                                         ("id", "default")))
    conf = {"type": "swift", "auth_url": keystone.url + "/v3",
            "user": "tester", "user_domain_id": "default",
            "password_file": str(pw), "project": "test",
            "container": container}
    client.run(conf, "open")


def test_keystone_v3_wrong_password(client, keystone, container, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("wrong\n")
    os.chmod(pw, 0o600)
    conf = {"type": "swift", "auth_url": keystone.url + "/v3",
            "user": "tester", "password_file": str(pw), "project": "test",
            "container": container}
    r = client.run(conf, "open", check=False)
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "401" in err and '"tester"' in err and '"test"' in err
    assert "Default" in err and "wrong" not in err
    assert len([line for line in err.splitlines()
                if "test_swift: open" in line]) == 1


def test_keystone_v3_environment(client, keystone, container):
    """The openstack CLI's variables: an unversioned OS_AUTH_URL, domain
    ids, and an application credential picked by OS_AUTH_TYPE while a
    password is left over in the environment."""
    keystone.accept.append(password_body("tester", "pw", "test",
                                         ("id", "default"),
                                         ("id", "default")))
    env = {"OS_AUTH_URL": keystone.url, "OS_USERNAME": "tester",
           "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "test",
           "OS_USER_DOMAIN_ID": "default", "OS_PROJECT_DOMAIN_ID": "default",
           "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}
    conf = {"type": "swift", "container": container}
    client.run(conf, "put", "env/x", stdin=b"x", env=env)
    keystone.accept.append({"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": "ac-1", "secret": "acs"}}}})
    env.update(OS_AUTH_TYPE="v3applicationcredential",
               OS_APPLICATION_CREDENTIAL_ID="ac-1",
               OS_APPLICATION_CREDENTIAL_SECRET="acs")
    assert client.run(conf, "get", "env/x", env=env).stdout == b"x"
    assert keystone.requests[-1][1] == keystone.accept[-1]


def test_keystone_v3_application_credential_file(client, keystone, container,
                                                 tmp_path):
    sec = tmp_path / "ac"
    sec.write_text("acs2\n")
    os.chmod(sec, 0o600)
    keystone.accept.append({"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": "ac-2", "secret": "acs2"}}}})
    conf = {"type": "swift", "auth_url": keystone.url + "/v3",
            "application_credential_id": "ac-2",
            "application_credential_secret_file": str(sec),
            "container": container}
    client.run(conf, "open")
    os.chmod(sec, 0o644)
    r = client.run(conf, "open", check=False)
    assert r.returncode == 1 and b"0644" in r.stderr


def test_keystone_token_refreshed_before_expiry(client, swift, container,
                                                tmp_path):
    """A 3 s token is renewed ahead of expiry (at 90 % of its life) while
    requests keep going: no request waits for a refused token."""
    ks = FakeKeystone(swift, lifetime=3)
    try:
        pw = tmp_path / "pw"
        pw.write_text("pw\n")
        os.chmod(pw, 0o600)
        ks.accept.append(password_body("tester", "pw", "test"))
        conf = {"type": "swift", "auth_url": ks.url + "/v3",
                "user": "tester", "password_file": str(pw),
                "project": "test", "container": container}
        client.run(conf, "put", "tok/x", stdin=b"abc")
        ks.requests.clear()
        # 16 stats over 4 s: the token of the first is renewed twice
        r = client.run(conf, "stat-loop", "16", "250", "tok/x")
        assert r.stdout.strip() == b"3"
        assert 2 <= len(ks.requests) <= 3, len(ks.requests)
    finally:
        ks.close()


# ---------------------------------------------------------------------------
# Faults: a proxy between the backend and Swift


class FaultProxy:
    """Forwards HTTP to the real Swift; rules inject faults into the
    answers of matching requests.  A rule: (method, path regex, fault,
    times); faults: ("status", code, headers), "truncate", "corrupt",
    "wrong-etag", "ignore-range", ("delay", seconds).  Tempauth answers
    are rewritten so that storage requests come through the proxy too."""

    def __init__(self, swift):
        self.swift = swift
        self.rules = []
        self.seen = []
        self.lock = threading.Lock()
        fp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                fp.handle(self)

            do_HEAD = do_PUT = do_DELETE = do_POST = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.port = self.server.server_port
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def add(self, method, path_rx, fault, times=1):
        self.rules.append([method, re.compile(path_rx), fault, times])

    def count(self, method, path_rx):
        rx = re.compile(path_rx)
        return len([1 for m, p in self.seen if m == method and rx.search(p)])

    def take(self, method, path):
        with self.lock:
            self.seen.append((method, path))
            for rule in self.rules:
                if rule[0] == method and rule[1].search(path) and rule[3]:
                    rule[3] -= 1
                    return rule[2]
        return None

    def handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else None
        fault = self.take(h.command, h.path)
        if isinstance(fault, tuple) and fault[0] == "status":
            return self.send(h, fault[1], dict(fault[2]), b"injected fault")
        if isinstance(fault, tuple) and fault[0] == "delay":
            time.sleep(fault[1])
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() not in ("host", "connection", "expect")}
        if fault == "ignore-range":
            headers.pop("Range", None)
        c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=60)
        c.request(h.command, h.path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        out = {k: v for k, v in r.headers.items()
               if k.lower() not in ("connection", "transfer-encoding",
                                    "content-length")}
        if "X-Storage-Url" in out:
            out["X-Storage-Url"] = out["X-Storage-Url"].replace(
                "127.0.0.1:8080", "127.0.0.1:%d" % self.port)
        if fault == "corrupt" and data:
            data = bytes([data[0] ^ 1]) + data[1:]
        if fault == "wrong-etag":
            out["Etag"] = "0" * 32
        if fault == "truncate":
            return self.send(h, r.status, out, data, cut=len(data) // 2)
        self.send(h, r.status, out, data, head=h.command == "HEAD",
                  length=r.headers.get("Content-Length"))

    @staticmethod
    def send(h, status, headers, data, cut=None, head=False, length=None):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length",
                      length if head and length else str(len(data)))
        if cut is not None:
            h.send_header("Connection", "close")
        h.end_headers()
        if head:
            return
        h.wfile.write(data if cut is None else data[:cut])
        if cut is not None:
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faults(swift):
    fp = FaultProxy(swift)
    yield fp
    fp.close()


def fault_conf(client, faults, container, **over):
    conf = client.v1_conf(container, auth_url=faults.url + "/auth/v1.0",
                          deadline=8)
    conf.update(over)
    return conf


OBJ = r"/v1/AUTH_test/bfs-pytest-[0-9a-f]+/f/obj$"


@pytest.fixture
def fobj(client, faults, container):
    """f/obj (64 KiB) stored through the proxy; the config to use."""
    conf = fault_conf(client, faults, container)
    data = os.urandom(65536)
    client.run(conf, "put", "f/obj", stdin=data)
    return conf, data


def test_5xx_retried_then_served(client, faults, fobj):
    conf, data = fobj
    faults.add("GET", OBJ, ("status", 503, {}), times=2)
    assert client.run(conf, "get", "f/obj").stdout == data
    assert faults.count("GET", OBJ) == 3


def test_5xx_until_the_deadline(client, faults, fobj):
    conf, _ = fobj
    faults.add("GET", OBJ, ("status", 503, {}), times=1000)
    t0 = time.monotonic()
    r = client.run(dict(conf, deadline=2), "get", "f/obj", check=False)
    took = time.monotonic() - t0
    assert r.returncode == 1 and b"-5 " in r.stderr
    assert b"503" in r.stderr and b"attempts" in r.stderr
    assert took < 3.5, took
    assert faults.count("GET", OBJ) >= 3


def test_404_is_not_retried(client, faults, fobj):
    conf, _ = fobj
    r = client.run(conf, "get", "f/missing", check=False)
    assert r.returncode == 1 and b"-2 " in r.stderr
    assert faults.count("GET", r"/f/missing$") == 1


def test_429_honours_retry_after(client, faults, fobj):
    conf, data = fobj
    faults.add("GET", OBJ, ("status", 429, {"Retry-After": "1"}))
    t0 = time.monotonic()
    assert client.run(conf, "get", "f/obj").stdout == data
    assert time.monotonic() - t0 >= 1.0


def test_retry_after_past_the_deadline_fails_at_once(client, faults, fobj):
    conf, _ = fobj
    faults.add("GET", OBJ, ("status", 429, {"Retry-After": "60"}))
    t0 = time.monotonic()
    r = client.run(dict(conf, deadline=5), "get", "f/obj", check=False)
    assert r.returncode == 1 and b"429" in r.stderr
    assert time.monotonic() - t0 < 2.5
    assert faults.count("GET", OBJ) == 1


def test_truncated_body_retried(client, faults, fobj):
    conf, data = fobj
    faults.add("GET", OBJ, "truncate")
    assert client.run(conf, "get", "f/obj").stdout == data
    assert faults.count("GET", OBJ) == 2
    faults.add("GET", OBJ, "truncate")
    assert client.run(conf, "get", "f/obj", "100", "30000").stdout == \
        data[100:30100]


def test_corrupted_body_caught_by_etag(client, faults, fobj):
    """A whole plain object must match its ETag (MD5): a damaged body is
    fetched again, and one that stays damaged is -EIO, never served."""
    conf, data = fobj
    faults.add("GET", OBJ, "corrupt")
    assert client.run(conf, "get", "f/obj").stdout == data
    assert faults.count("GET", OBJ) == 2
    faults.add("GET", OBJ, "corrupt", times=1000)
    r = client.run(dict(conf, deadline=2), "get", "f/obj", check=False)
    assert r.returncode == 1 and r.stdout == b""
    assert b"MD5" in r.stderr


def test_sealed_get_skips_the_md5(client, faults, fobj):
    """A sealed GET (chunks: the caller checks an AEAD tag, which costs
    less CPU than MD5) hands the body over as it came: one request, no
    MD5 check, so the damage reaches the caller, whose tag catches it
    (tests/integration/test_tamper.py: EIO, never wrong bytes)."""
    conf, data = fobj
    faults.add("GET", OBJ, "corrupt")
    got = client.run(conf, "get-sealed", "f/obj").stdout
    assert faults.count("GET", OBJ) == 1
    assert len(got) == len(data) and got != data


def test_put_etag_mismatch_retried(client, faults, container):
    conf = fault_conf(client, faults, container)
    faults.add("PUT", r"/f/put$", "wrong-etag")
    client.run(conf, "put", "f/put", stdin=b"payload")
    assert faults.count("PUT", r"/f/put$") == 2


def test_ignored_range_is_cut_to_size(client, faults, fobj):
    conf, data = fobj
    faults.add("GET", OBJ, "ignore-range", times=3)
    assert client.run(conf, "get", "f/obj", "1000", "24").stdout == \
        data[1000:1024]
    assert client.run(conf, "get", "f/obj", "65530", "0").stdout == \
        data[65530:]
    assert client.run(conf, "get", "f/obj", "70000", "10").stdout == b""


def test_401_reauthenticates_once(client, faults, fobj):
    conf, data = fobj
    faults.add("GET", OBJ, ("status", 401, {}))
    auths = faults.count("GET", r"^/auth/v1.0$")
    assert client.run(conf, "get", "f/obj").stdout == data
    assert faults.count("GET", r"^/auth/v1.0$") == auths + 2
    # refused again after the new token: -EACCES, no loop
    faults.add("GET", OBJ, ("status", 401, {}), times=2)
    r = client.run(conf, "get", "f/obj", check=False)
    assert r.returncode == 1 and b"-13 " in r.stderr


def test_slow_answer_times_out_and_is_retried(client, faults, fobj):
    conf, data = fobj
    faults.add("GET", OBJ, ("delay", 3))
    t0 = time.monotonic()
    assert client.run(dict(conf, timeout=1), "get", "f/obj").stdout == data
    assert time.monotonic() - t0 < 3
