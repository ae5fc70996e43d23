# SPDX-License-Identifier: Apache-2.0
"""The fault-injecting proxy (faultproxy.py) checked on its own.

Its upstream here is a small http.server in this process: no Swift, no
Keystone.  What is checked: bodies pass through unchanged in both directions
whatever their framing, and stream (the proxy never waits for a whole body);
each fault happens exactly as configured, to exactly the requests it was
configured for; the request log counts what went through."""

import hashlib
import http.client
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from faultproxy import FaultProxy

MiB = 1 << 20
BIG = 5 * MiB
HERE = os.path.dirname(os.path.abspath(__file__))


def data_of(n, seed=1):
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------------------
# The upstream: a tiny object store

class Upstream(http.server.ThreadingHTTPServer):
    """Objects by path in memory.  Besides PUT/GET/HEAD/DELETE of any path:

    GET /auth/v1.0        tempauth-like: X-Storage-Url at this server
    GET /v3/auth/tokens   a JSON body with a catalog URL at this server
    GET /chunked/N        N bytes in chunked framing
    GET /close/N          N bytes, delimited by closing the connection
    GET /gated/N          N bytes: 1 MiB, then waits for .gate, the rest
    PUT /gated/...        sets .got_first once 1 MiB of the body is in
    PUT /refuse/...       with Expect: 100-continue: 401 before the body
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.objects = {}
        self.seen = []             # (method, path, headers dict)
        self.connections = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.got_first = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def handle_error(self, request, client_address):
        # the proxy cuts connections on purpose
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def count(self, method, path=None):
        with self.lock:
            return sum(1 for m, p, _ in self.seen
                       if m == method and (path is None or p == path))

    def last_headers(self):
        with self.lock:
            return self.seen[-1][2]


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *a):
        pass

    def handle_expect_100(self):
        # PUT /refuse/...: answered before the body, like Swift refusing a
        # token
        if self.path.startswith("/refuse/"):
            self._note()
            self.close_connection = True
            self._send(401, b"refused\n")
            return False
        return super().handle_expect_100()

    def _note(self):
        with self.server.lock:
            self.server.seen.append((self.command, self.path,
                                     {k.lower(): v for k, v in
                                      self.headers.items()}))

    def _send(self, status, body=b"", headers=(), head=False):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _read_body(self, gated=False):
        parts, n = [], 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                n += size
                self.rfile.readline()
                if gated and n >= MiB:
                    self.server.got_first.set()
        else:
            left = int(self.headers.get("Content-Length", 0))
            while left:
                b = self.rfile.read1(min(left, 65536))
                if not b:
                    raise ConnectionError("short body")
                parts.append(b)
                left -= len(b)
                n += len(b)
                if gated and n >= MiB:
                    self.server.got_first.set()
        return b"".join(parts)

    def do_PUT(self):
        self._note()
        body = self._read_body(gated=self.path.startswith("/gated/"))
        with self.server.lock:
            self.server.objects[self.path] = body
        self._send(201, headers=[("Etag", hashlib.md5(body).hexdigest())])

    def do_DELETE(self):
        self._note()
        with self.server.lock:
            self.server.objects.pop(self.path, None)
        self.send_response(204)
        self.end_headers()

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        self._note()
        path = urllib.parse.urlsplit(self.path).path
        parts = path.split("/")
        if path == "/auth/v1.0":
            url = self.server.url + "/v1/AUTH_test"
            body = json.dumps({"storage": {"default": "local",
                                           "local": url}}).encode()
            return self._send(200, body, [
                ("X-Storage-Url", url), ("X-Auth-Token", "AUTH_tk1"),
                ("Content-Type", "application/json; charset=utf-8")],
                head)
        if path == "/v3/auth/tokens":
            body = json.dumps({"token": {"catalog": [{
                "type": "object-store", "endpoints": [{
                    "interface": "public",
                    "url": self.server.url + "/v1/AUTH_p"}]}]}}).encode()
            return self._send(201, body,
                              [("Content-Type", "application/json"),
                               ("X-Subject-Token", "tk")], head)
        if parts[1] == "chunked":
            data = data_of(int(parts[2]))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 100000):
                piece = data[i:i + 100000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if parts[1] == "close":
            data = data_of(int(parts[2]))
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        if parts[1] == "gated":
            data = data_of(int(parts[2]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:MiB])
            self.server.gate.wait(60)
            self.wfile.write(data[MiB:])
            return
        with self.server.lock:
            body = self.server.objects.get(self.path)
        if body is None:
            return self._send(404, b"not found\n", head=head)
        self._send(200, body, [("Etag", hashlib.md5(body).hexdigest())],
                   head)


@pytest.fixture
def upstream():
    u = Upstream()
    u.thread.start()
    yield u
    u.gate.set()
    u.shutdown()
    u.server_close()


@pytest.fixture
def proxy(upstream):
    fp = FaultProxy(upstream.url)
    fp.start()
    yield fp
    fp.stop()


def conn_to(fp, timeout=30):
    return http.client.HTTPConnection("127.0.0.1", fp.port, timeout=timeout)


def request(fp, method, path, body=None, headers=None, conn=None):
    """One request through the proxy: (status, headers dict, body)."""
    c = conn or conn_to(fp)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def put_object(fp, path, data):
    st, h, _ = request(fp, "PUT", path, data)
    assert st == 201
    assert h["etag"] == hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------------------
# Pass-through


def test_big_body_both_ways_content_length(proxy, upstream):
    data = data_of(BIG, 7)
    c = conn_to(proxy)
    st, h, _ = request(proxy, "PUT", "/v1/AUTH_test/c/big", data, conn=c)
    assert st == 201
    assert upstream.objects["/v1/AUTH_test/c/big"] == data
    st, h, got = request(proxy, "GET", "/v1/AUTH_test/c/big", conn=c)
    assert st == 200
    assert int(h["content-length"]) == BIG
    assert got == data
    st, h, got = request(proxy, "HEAD", "/v1/AUTH_test/c/big", conn=c)
    assert (st, got, int(h["content-length"])) == (200, b"", BIG)
    c.close()
    assert proxy.wait_idle()
    log = proxy.log()
    assert [(e["method"], e["status"]) for e in log] == [
        ("PUT", 201), ("GET", 200), ("HEAD", 200)]
    assert (log[0]["bytes_in"], log[1]["bytes_out"]) == (BIG, BIG)
    assert all(e["fault"] is None and e["error"] is None for e in log)


def test_keep_alive_both_sides(proxy, upstream):
    put_object(proxy, "/o", b"x")
    before = upstream.connections
    c = conn_to(proxy)
    for _ in range(5):
        st, _, got = request(proxy, "GET", "/o", conn=c)
        assert (st, got) == (200, b"x")
    c.close()
    # one client connection, one upstream connection for all five
    assert upstream.connections - before == 1


def test_chunked_request_body(proxy, upstream):
    data = data_of(BIG, 8)

    def pieces():
        for i in range(0, len(data), 300000):
            yield data[i:i + 300000]

    c = conn_to(proxy)
    c.request("PUT", "/v1/AUTH_test/c/chunked", body=pieces(),
              encode_chunked=True)
    r = c.getresponse()
    r.read()
    assert r.status == 201
    assert upstream.objects["/v1/AUTH_test/c/chunked"] == data
    assert upstream.last_headers()["transfer-encoding"] == "chunked"
    assert proxy.wait_idle()
    assert proxy.log()[-1]["bytes_in"] == BIG


def test_chunked_response_body(proxy):
    st, h, got = request(proxy, "GET", "/chunked/%d" % BIG)
    assert st == 200
    assert h["transfer-encoding"] == "chunked"
    assert got == data_of(BIG)


def test_close_delimited_response_body(proxy):
    c = conn_to(proxy)
    st, h, got = request(proxy, "GET", "/close/%d" % (MiB + 3), conn=c)
    assert (st, got) == (200, data_of(MiB + 3))
    assert h["transfer-encoding"] == "chunked"
    # the client connection stays usable; the proxy reconnects upstream
    st, _, _ = request(proxy, "GET", "/missing", conn=c)
    assert st == 404
    c.close()


def test_response_streams(proxy, upstream):
    """The first MiB reaches the client while the upstream still holds the
    rest back: no whole-body buffering."""
    c = conn_to(proxy)
    c.request("GET", "/gated/%d" % (3 * MiB))
    r = c.getresponse()
    first = r.read(MiB)
    assert first == data_of(3 * MiB)[:MiB]
    upstream.gate.set()
    assert first + r.read() == data_of(3 * MiB)
    c.close()


def test_request_streams(proxy, upstream):
    """The upstream has the first MiB of a PUT body while the client has
    not sent the rest yet."""
    data = data_of(3 * MiB, 9)
    seen_early = []

    def pieces():
        yield data[:MiB]
        seen_early.append(upstream.got_first.wait(30))
        yield data[MiB:]

    c = conn_to(proxy)
    c.request("PUT", "/gated/put", body=pieces(),
              headers={"Content-Length": str(len(data))})
    r = c.getresponse()
    r.read()
    assert r.status == 201
    assert seen_early == [True]
    assert upstream.objects["/gated/put"] == data


def test_expect_100_continue_pass_through(proxy, upstream):
    data = data_of(100000, 3)
    with socket.create_connection(("127.0.0.1", proxy.port), 30) as s:
        s.sendall(b"PUT /o100 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"Expect: 100-continue\r\n\r\n" % len(data))
        f = s.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 100")
        assert f.readline() == b"\r\n"
        s.sendall(data)
        assert f.readline().startswith(b"HTTP/1.1 201")
    assert upstream.objects["/o100"] == data
    # the upstream's 100 Continue was relayed
    assert upstream.last_headers()["expect"] == "100-continue"


def test_expect_100_final_answer_before_body(proxy, upstream):
    """The upstream refuses a PUT before its body (as Swift does with a bad
    token): the client gets that answer, sends no body, and the connection
    closes."""
    with socket.create_connection(("127.0.0.1", proxy.port), 30) as s:
        s.sendall(b"PUT /refuse/o HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 10000000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        resp = http.client.HTTPResponse(s)
        resp.begin()
        assert resp.status == 401
        assert resp.getheader("Connection") == "close"
        resp.read()
        assert s.recv(1) == b""
    assert upstream.count("PUT") == 1
    assert "/refuse/o" not in upstream.objects
    assert proxy.wait_idle()
    e = proxy.requests(method="PUT")[0]
    assert (e["status"], e["bytes_in"]) == (401, 0)


def test_expect_100_for_a_routed_upstream(upstream):
    """A routed upstream (Keystone's development server ignores Expect):
    the proxy sends 100 Continue itself and the upstream gets no Expect."""
    other = Upstream()
    other.thread.start()
    try:
        with FaultProxy(other.url, routes={"/v3": upstream.url}) as fp:
            with socket.create_connection(("127.0.0.1", fp.port), 30) as s:
                s.sendall(b"PUT /v3/x HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 5\r\n"
                          b"Expect: 100-continue\r\n\r\n")
                f = s.makefile("rb")
                assert f.readline().startswith(b"HTTP/1.1 100")
                assert f.readline() == b"\r\n"
                s.sendall(b"hello")
                assert f.readline().startswith(b"HTTP/1.1 201")
        assert upstream.objects["/v3/x"] == b"hello"
        assert "expect" not in upstream.last_headers()
    finally:
        other.shutdown()
        other.server_close()


def test_storage_url_rewritten(proxy, upstream):
    st, h, body = request(proxy, "GET", "/auth/v1.0")
    assert st == 200
    assert h["x-storage-url"] == proxy.url + "/v1/AUTH_test"
    assert json.loads(body)["storage"]["local"] == proxy.url + \
        "/v1/AUTH_test"
    assert int(h["content-length"]) == len(body)
    # the upstream saw its own Host, not the proxy's
    assert upstream.last_headers()["host"] == \
        urllib.parse.urlsplit(upstream.url).netloc


def test_catalog_rewritten_with_route(upstream):
    """A second upstream behind a path prefix (as Keystone behind /v3): its
    auth response body is rewritten to point at the proxy."""
    other = Upstream()
    other.thread.start()
    try:
        with FaultProxy(other.url, routes={"/v3": upstream.url}) as fp:
            st, h, body = request(fp, "GET", "/v3/auth/tokens")
            assert st == 201
            cat = json.loads(body)["token"]["catalog"]
            assert cat[0]["endpoints"][0]["url"] == fp.url + "/v1/AUTH_p"
            assert upstream.count("GET", "/v3/auth/tokens") == 1
            put_object(fp, "/v1/AUTH_p/c/o", b"data")
            assert other.objects["/v1/AUTH_p/c/o"] == b"data"
            assert "/v1/AUTH_p/c/o" not in upstream.objects
    finally:
        other.shutdown()
        other.server_close()


def test_object_listing_body_not_rewritten(proxy, upstream):
    """Only auth responses are rewritten: object data that happens to hold
    the upstream's URL passes through untouched."""
    data = json.dumps({"url": upstream.url}).encode()
    put_object(proxy, "/v1/AUTH_test/c/json", data)
    assert request(proxy, "GET", "/v1/AUTH_test/c/json")[2] == data


def test_upstream_down_is_502(upstream):
    u = Upstream()
    dead = u.url
    u.server_close()
    with FaultProxy(dead) as fp:
        st, _, body = request(fp, "GET", "/x")
    assert st == 502
    assert fp.wait_idle()
    assert fp.requests()[0]["error"]


# ---------------------------------------------------------------------------
# Status faults


@pytest.mark.parametrize("status", [503, 500, 401])
def test_status_fault_next_n(proxy, upstream, status):
    put_object(proxy, "/v1/AUTH_test/c/o", b"hello")
    rid = proxy.add_rule(method="GET", path=r"/c/o$", action="status",
                         status=status, count=2)
    got = [request(proxy, "GET", "/v1/AUTH_test/c/o")[0] for _ in range(3)]
    assert got == [status, status, 200]
    # other methods and paths are not touched
    assert request(proxy, "HEAD", "/v1/AUTH_test/c/o")[0] == 200
    assert request(proxy, "GET", "/v1/AUTH_test/c/other")[0] == 404
    # the faulted requests never reached the upstream
    assert upstream.count("GET", "/v1/AUTH_test/c/o") == 1
    r = proxy.rule(rid)
    assert (r["fired"], r["remaining"], r["seen"]) == (2, 0, 3)
    assert proxy.count("GET", status=status, fault="status") == 2


def test_429_retry_after(proxy):
    proxy.add_rule(method="PUT", path="^/v1/", action="status", status=429,
                   retry_after=3)
    st, h, _ = request(proxy, "PUT", "/v1/AUTH_test/c/o", b"abc")
    assert st == 429
    assert h["retry-after"] == "3"
    assert request(proxy, "PUT", "/v1/AUTH_test/c/o", b"abc")[0] == 201


def test_status_fault_keeps_connection_after_body(proxy, upstream):
    """A refused PUT's body is read and dropped: the connection serves the
    next request."""
    proxy.add_rule(method="PUT", action="status", status=503)
    c = conn_to(proxy)
    assert request(proxy, "PUT", "/a", data_of(2 * MiB), conn=c)[0] == 503
    assert request(proxy, "PUT", "/a", b"ok", conn=c)[0] == 201
    c.close()
    assert upstream.count("PUT") == 1
    assert proxy.wait_idle()
    assert proxy.requests(method="PUT")[0]["bytes_in"] == 2 * MiB


def test_status_fault_with_expect_100_sends_no_continue(proxy, upstream):
    proxy.add_rule(method="PUT", action="status", status=401)
    with socket.create_connection(("127.0.0.1", proxy.port), 30) as s:
        s.sendall(b"PUT /o HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000"
                  b"\r\nExpect: 100-continue\r\n\r\n")
        resp = http.client.HTTPResponse(s)
        resp.begin()
        assert resp.status == 401
        assert resp.getheader("Connection") == "close"
        resp.read()
    assert upstream.count("PUT") == 0


def test_status_fault_forwarded(proxy, upstream):
    """forward=True: the upstream does the PUT, the client still gets 503."""
    proxy.add_rule(method="PUT", action="status", status=503, forward=True)
    assert request(proxy, "PUT", "/v1/AUTH_test/c/f", b"body")[0] == 503
    assert upstream.objects["/v1/AUTH_test/c/f"] == b"body"


def test_status_fault_all(proxy):
    proxy.add_rule(path="/always", action="status", status=500, count="all")
    assert [request(proxy, "GET", "/always")[0]
            for _ in range(6)] == [500] * 6


def test_status_fault_after(proxy, upstream):
    """after=2: the third matching request is the one that fails."""
    put_object(proxy, "/seg", b"s")
    proxy.add_rule(method="GET", path="^/seg$", action="status",
                   status=503, after=2)
    assert [request(proxy, "GET", "/seg")[0]
            for _ in range(4)] == [200, 200, 503, 200]


def test_probability_is_seeded(proxy):
    proxy.add_rule(path="^/p$", action="status", status=503, count=None,
                   probability=0.5, seed=42)
    got = [request(proxy, "GET", "/p")[0] for _ in range(40)]
    rng = random.Random(42)
    want = [503 if rng.random() < 0.5 else 404 for _ in range(40)]
    assert got == want
    assert 5 < got.count(503) < 35


def test_first_matching_rule_decides(proxy):
    proxy.add_rule(path="^/x$", action="status", status=500, count=1)
    proxy.add_rule(path="^/x$", action="status", status=503, count=1)
    got = [request(proxy, "GET", "/x")[0] for _ in range(3)]
    assert got == [500, 503, 404]


def test_clear_and_remove_rules(proxy):
    rid = proxy.add_rule(action="status", status=500, count=None)
    proxy.remove_rule(rid)
    assert request(proxy, "GET", "/x")[0] == 404
    proxy.add_rule(action="status", status=500, count=None)
    proxy.clear_rules()
    assert request(proxy, "GET", "/x")[0] == 404
    assert proxy.rules() == []


# ---------------------------------------------------------------------------
# Delays


def test_delay_before_headers(proxy):
    put_object(proxy, "/d", b"d")
    proxy.add_rule(method="GET", path="^/d$", action="delay", delay=0.6)
    t0 = time.monotonic()
    st, _, body = request(proxy, "GET", "/d")
    assert (st, body) == (200, b"d")
    assert time.monotonic() - t0 >= 0.6
    t0 = time.monotonic()
    request(proxy, "GET", "/d")       # count 1: the next one is not held
    assert proxy.count("GET", "^/d$", fault="delay") == 1


def test_delay_mid_body(proxy, upstream):
    data = data_of(2 * MiB, 4)
    put_object(proxy, "/m", data)
    proxy.add_rule(method="GET", path="^/m$", action="delay", delay=0.6,
                   at="mid_body", after_bytes=MiB + 5)
    c = conn_to(proxy)
    c.request("GET", "/m")
    r = c.getresponse()
    first = r.read(MiB + 5)
    t0 = time.monotonic()
    rest = r.read()
    assert time.monotonic() - t0 >= 0.55
    assert first + rest == data
    c.close()


def test_delay_ends_when_proxy_stops(upstream):
    fp = FaultProxy(upstream.url)
    fp.start()
    fp.add_rule(action="delay", delay=300)
    c = conn_to(fp)
    c.request("GET", "/x")
    time.sleep(0.2)
    t0 = time.monotonic()
    fp.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        c.getresponse().read()
    assert time.monotonic() - t0 < 30


# ---------------------------------------------------------------------------
# Dropped connections and truncated bodies


def test_drop_before_headers_forwarded(proxy, upstream):
    proxy.add_rule(method="PUT", action="drop")
    with pytest.raises((http.client.RemoteDisconnected,
                        ConnectionResetError)):
        request(proxy, "PUT", "/v1/AUTH_test/c/lost", b"payload")
    # the PUT happened upstream; only its answer was lost
    assert upstream.objects["/v1/AUTH_test/c/lost"] == b"payload"
    e = proxy.requests(method="PUT")[0]
    assert (e["status"], e["fault"]) == (None, "drop")
    assert request(proxy, "PUT", "/v1/AUTH_test/c/lost", b"2")[0] == 201


def test_drop_before_headers_not_forwarded(proxy, upstream):
    proxy.add_rule(method="PUT", action="drop", forward=False)
    with pytest.raises((http.client.RemoteDisconnected,
                        ConnectionResetError, BrokenPipeError)):
        request(proxy, "PUT", "/v1/AUTH_test/c/never", b"payload")
    assert upstream.count("PUT") == 0


def test_drop_after_headers(proxy):
    data = data_of(MiB, 5)
    put_object(proxy, "/h", data)
    proxy.add_rule(method="GET", action="drop", at="after_headers")
    c = conn_to(proxy)
    c.request("GET", "/h")
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Length") == str(MiB)
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        r.read()
    c.close()
    assert proxy.wait_idle()
    assert proxy.requests(method="GET")[0]["bytes_out"] == 0


def test_drop_mid_body(proxy):
    data = data_of(2 * MiB, 6)
    put_object(proxy, "/md", data)
    proxy.add_rule(method="GET", action="drop", at="mid_body",
                   after_bytes=700000)
    c = conn_to(proxy)
    c.request("GET", "/md")
    r = c.getresponse()
    got = b""
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        while True:
            b = r.read1(65536)
            if not b:
                raise http.client.IncompleteRead(got)
            got += b
    c.close()
    # never more than the bytes before the cut, and those unchanged
    assert len(got) <= 700000
    assert got == data[:len(got)]
    assert proxy.wait_idle()
    e = proxy.requests(method="GET")[0]
    assert (e["status"], e["fault"], e["bytes_out"]) == (200, "drop", 700000)


def test_drop_is_a_reset(proxy):
    """A drop ends the connection with a TCP RST: recv() fails with
    ECONNRESET rather than seeing a clean end of file."""
    proxy.add_rule(action="drop", forward=False)
    with socket.create_connection(("127.0.0.1", proxy.port), 30) as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            while s.recv(65536):
                pass


def test_truncate(proxy):
    data = data_of(MiB, 10)
    put_object(proxy, "/t", data)
    proxy.add_rule(method="GET", path="^/t$", action="truncate",
                   after_bytes=12345)
    c = conn_to(proxy)
    c.request("GET", "/t")
    r = c.getresponse()
    assert r.getheader("Content-Length") == str(MiB)
    with pytest.raises(http.client.IncompleteRead) as ei:
        r.read()
    # a clean end of file after exactly that many bytes
    assert ei.value.partial == data[:12345]
    c.close()
    assert request(proxy, "GET", "/t")[2] == data


def test_truncate_default_is_half(proxy):
    put_object(proxy, "/t2", data_of(1000))
    proxy.add_rule(method="GET", action="truncate")
    c = conn_to(proxy)
    c.request("GET", "/t2")
    with pytest.raises(http.client.IncompleteRead) as ei:
        c.getresponse().read()
    assert len(ei.value.partial) == 500
    c.close()


@pytest.mark.parametrize("after", [None, 0, 999])
def test_corrupt_flips_one_byte(proxy, after):
    data = data_of(1000)
    put_object(proxy, "/c1", data)
    kw = {} if after is None else {"after_bytes": after}
    proxy.add_rule(method="GET", action="corrupt", **kw)
    c = conn_to(proxy)
    c.request("GET", "/c1")
    got = c.getresponse().read()
    i = 500 if after is None else after
    assert len(got) == len(data)
    assert [k for k in range(len(data)) if got[k] != data[k]] == [i]
    assert got[i] == data[i] ^ 0xFF
    # the connection stays usable, and the next answer is whole
    c.request("GET", "/c1")
    assert c.getresponse().read() == data
    c.close()


def test_truncate_chunked_response(proxy):
    proxy.add_rule(method="GET", action="truncate", after_bytes=150000)
    c = conn_to(proxy)
    c.request("GET", "/chunked/%d" % MiB)
    r = c.getresponse()
    got = b""
    with pytest.raises(http.client.IncompleteRead):
        while True:
            b = r.read1(65536)
            if not b:
                break
            got += b
    assert got == data_of(MiB)[:150000]
    c.close()


def test_truncate_never_sends_the_whole_body(proxy):
    """after_bytes beyond the body is cut to one byte short."""
    put_object(proxy, "/short", b"0123456789")
    proxy.add_rule(method="GET", action="truncate", after_bytes=1000)
    c = conn_to(proxy)
    c.request("GET", "/short")
    with pytest.raises(http.client.IncompleteRead) as ei:
        c.getresponse().read()
    assert ei.value.partial == b"012345678"
    c.close()


# ---------------------------------------------------------------------------
# The request log


def test_log_counts_requests(proxy):
    put_object(proxy, "/v1/AUTH_test/c/o", b"o")
    proxy.clear_log()
    c = conn_to(proxy)
    for marker in ("", "a", "b"):
        request(proxy, "GET", "/v1/AUTH_test/c?format=json&marker=" + marker,
                conn=c)
    request(proxy, "GET", "/v1/AUTH_test/c/o", conn=c)
    c.close()
    assert proxy.count("GET", path=r"^/v1/AUTH_test/c\?") == 3
    assert proxy.count("GET", path=r"/c/o$", status=200) == 1
    assert proxy.count() == 4
    assert proxy.wait_idle()
    log = proxy.log()
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)
    assert all(e["duration"] is not None and e["time"] > 0 for e in log)


# ---------------------------------------------------------------------------
# Out of process: control file, control endpoint, log file


def control_call(port, method, what, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, "/__faultproxy__/" + what,
              body=None if body is None else json.dumps(body))
    r = c.getresponse()
    data = r.read()
    c.close()
    assert r.status == 200, data
    return json.loads(data)


def test_out_of_process(upstream, tmp_path):
    ctl = tmp_path / "rules.json"
    port_file = tmp_path / "port"
    log_file = tmp_path / "log.jsonl"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "faultproxy.py"),
         "--listen", "127.0.0.1:0", "--upstream", upstream.url,
         "--control-file", str(ctl), "--port-file", str(port_file),
         "--log-file", str(log_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("faultproxy: listening on http://127.0.0.1:"), \
            line + proc.stderr.read().decode()
        port = int(port_file.read_text())
        assert line.strip().endswith(":%d" % port)
        fp = type("P", (), {"port": port})

        ctl.write_text(json.dumps({"rules": [
            {"method": "GET", "path": "^/f$", "action": "status",
             "status": 503, "count": 1}]}))
        assert [request(fp, "GET", "/f")[0] for _ in range(2)] == [503, 404]
        rules = control_call(port, "GET", "rules")
        assert (rules[0]["fired"], rules[0]["remaining"]) == (1, 0)

        # a changed control file replaces the rules (fresh counters)
        ctl.write_text(json.dumps({"rules": [
            {"path": "^/f$", "action": "status", "status": 500,
             "count": "all"}]}))
        assert request(fp, "GET", "/f")[0] == 500

        # the endpoint: add, list, clear
        control_call(port, "DELETE", "rules")
        rid = control_call(port, "POST", "rules", {
            "path": "^/g$", "action": "status", "status": 429,
            "retry_after": 1})["id"]
        st, h, _ = request(fp, "GET", "/g")
        assert (st, h["retry-after"]) == (429, "1")
        assert control_call(port, "GET", "rules")[0]["id"] == rid

        log = control_call(port, "GET", "log")
        assert [(e["path"], e["status"]) for e in log] == [
            ("/f", 503), ("/f", 404), ("/f", 500), ("/g", 429)]
        control_call(port, "DELETE", "log")
        assert control_call(port, "GET", "log") == []
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        err = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    assert rc == 0, err
    lines = [json.loads(l) for l in log_file.read_text().splitlines()]
    assert [e["status"] for e in lines] == [503, 404, 500, 429]


def test_bad_rule_is_refused(proxy):
    with pytest.raises(ValueError):
        proxy.add_rule(action="explode")
    with pytest.raises(ValueError):
        proxy.add_rule(action="status", at="mid_body")
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    c.request("POST", "/__faultproxy__/rules", body=b'{"action": "nope"}')
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 400
