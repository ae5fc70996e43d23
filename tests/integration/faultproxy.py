# SPDX-License-Identifier: Apache-2.0
"""An HTTP/1.1 reverse proxy that injects faults between backupfs and Swift.

The one fake of the test suite (DESIGN.md section 7): everything else is
real, and this proxy sits in front of the real Swift to make it slow, drop
connections, truncate bodies or answer errors, at run time and on purpose.
Standard library only; runs under /usr/bin/python3 or the pyenv python3.

In process:

    from faultproxy import FaultProxy
    fp = FaultProxy("http://127.0.0.1:8080")
    port = fp.start()            # backupfs: auth_url = fp.url + "/auth/v1.0"
    fp.add_rule(method="GET", path=r"^/v1/AUTH_test/c/o$",
                action="status", status=503, count=2)
    ...
    fp.count(method="GET", status=503)        # from the request log
    fp.stop()

FaultProxy(upstream, tls=(CERT_FILE, KEY_FILE)) speaks HTTPS to its
clients (fp.url is https://...) and plain HTTP to the upstream: the TLS
tests put it in front of Swift.

Out of process:

    python3 faultproxy.py --listen 127.0.0.1:0 --upstream URL \\
        [--route /v3=http://127.0.0.1:5000] [--control-file F] \\
        [--log-file F.jsonl] [--port-file F]

It prints "faultproxy: listening on http://HOST:PORT" and runs until SIGTERM
or SIGINT.  Rules come from the control file (JSON, {"rules": [...]},
re-read whenever it changes; a rewrite resets the rules' counters) or from
the control endpoint, which the proxy answers itself and never logs:

    GET    /__faultproxy__/rules   the rules with their counters
    PUT    /__faultproxy__/rules   replace them (JSON list or {"rules": []})
    POST   /__faultproxy__/rules   add one rule (JSON object) -> {"id": N}
    DELETE /__faultproxy__/rules   remove every rule
    GET    /__faultproxy__/log     the request log (JSON list)
    DELETE /__faultproxy__/log     clear it

A rule (keyword arguments of add_rule(), or a JSON object):

    method       regex matched in full against the method, case-insensitive;
                 None or "*" matches any
    path         regex searched in the request target (path and query,
                 as sent, still percent-encoded); None matches any
    action       "status"    answer `status` (503, 500, 401, 429, ...) with
                             a short text body; `retry_after` adds
                             Retry-After, `headers` adds more headers
                 "delay"     wait `delay` seconds, `at` "before_headers"
                             (default: the upstream answered, its response
                             waits) or "mid_body" (after `after_bytes`
                             bytes of the body)
                 "drop"      close the connection abortively (TCP RST), `at`
                             "before_headers" (default), "after_headers"
                             (status line and headers sent, no body) or
                             "mid_body" (after `after_bytes` body bytes)
                 "truncate"  send the upstream's headers (Content-Length
                             unchanged), only `after_bytes` bytes of the
                             body, then close cleanly (FIN)
                 "corrupt"   send the whole body with the byte at
                             `after_bytes` inverted (a bit flip on the way
                             that TCP did not catch)
    forward      "status" and "drop" before headers: whether the request
                 still goes to the upstream first (its response is then
                 thrown away).  Default: False for "status" (the proxy
                 answers instead of Swift), True for "drop" (the request was
                 done, the answer is lost on the way)
    count        apply to the next N matching requests (default 1); None or
                 "all": to every matching request
    after        let the first K matching requests through first (default 0)
    probability  apply to a matching request with this probability, drawn
                 from random.Random(seed) of the rule (one draw per matching
                 request past `after` while the rule has count left)
    seed         the seed of that generator (default 0)

The first rule that matches and applies decides; one request gets at most one
fault.  `after_bytes` defaults to half the body when its length is known
(else 64 KiB) and is kept below the body length, so a truncation always
truncates; on a body too short to hold it the fault happens right after the
headers.

Requests are forwarded with Host set to the upstream, X-Storage-Url and
Location headers that point at an upstream are rewritten to point at the
proxy (so that after auth every request goes through it), and JSON auth
responses (paths under /auth/, .../auth/tokens, .../tokens) of at most 1 MiB
get the same rewrite in their body: with a route such as
{"/v3": "http://127.0.0.1:5000"} a Keystone catalog's object-store URL then
points at the proxy too.  Bodies stream both ways in chunks of at most
CHUNK bytes, whatever their framing (Content-Length, chunked, or closed by
the upstream).  Expect: 100-continue goes on to the main upstream (Swift),
whose 100 Continue or early final answer (say 401) is relayed, so a refused
body is never sent, as without the proxy.  For a routed upstream, and for a
fault the proxy answers itself, the proxy decides: 100 Continue once it
reads the body; an answer instead leaves the body unsent, and the
connection is then closed (after a lingering read, so the answer is not
lost to a TCP reset).

The request log has one dict per request: seq, time (epoch seconds at
arrival), method, path, status (None when no status line reached the
client), fault (the action applied, or None), rule (its id), duration,
bytes_in (request body bytes read), bytes_out (response body bytes sent),
error (what went wrong on the way, or None), done (False while the proxy
still handles it).  An entry exists from the moment the request has been
read, and its status is set before the status line is sent, so a client that
got an answer always finds it in the log, with the right status; duration,
bytes_out and error are final once done is True (wait_idle() waits for
that).
"""

import argparse
import copy
import http.client
import http.server
import itertools
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

CHUNK = 256 * 1024              # largest piece of a body held at once
REWRITE_MAX = 1 << 20           # largest auth response body rewritten
UPSTREAM_TIMEOUT = 300          # seconds without progress from the upstream
CONTROL_PREFIX = "/__faultproxy__/"

ACTIONS = ("status", "delay", "drop", "truncate", "corrupt")
STAGES = ("before_headers", "after_headers", "mid_body")

# Swift objects may carry many X-Object-Meta-* headers; http.client and
# http.server stop at 100 headers per message.
http.client._MAXHEADERS = max(getattr(http.client, "_MAXHEADERS", 100), 1000)

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate",
              "proxy-authorization", "proxy-connection", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "expect"}
REWRITE_HEADERS = {"x-storage-url", "location", "content-location"}
AUTH_PATH_RE = re.compile(r"(^/auth(/|$)|/auth/tokens$|/tokens$)")


class ClientGone(Exception):
    """The client closed its connection or sent a malformed body."""


class UpstreamFailed(Exception):
    """No response could be had from the upstream."""


class Rule:
    """One fault rule with its counters (see the module docstring)."""

    _ids = itertools.count(1)

    def __init__(self, method=None, path=None, action="status", status=503,
                 retry_after=None, headers=None, delay=0.0,
                 at="before_headers", after_bytes=None, forward=None,
                 count=1, after=0, probability=None, seed=0, body=None):
        if action not in ACTIONS:
            raise ValueError("unknown action %r (one of %s)"
                             % (action, ", ".join(ACTIONS)))
        if at not in STAGES:
            raise ValueError("unknown stage %r (one of %s)"
                             % (at, ", ".join(STAGES)))
        if action in ("truncate", "corrupt"):
            at = "mid_body"
        if action == "status" and at != "before_headers":
            raise ValueError("a status fault happens before the headers")
        if action == "delay" and at == "after_headers":
            raise ValueError("delay: before_headers or mid_body")
        if count == "all":
            count = None
        if count is not None and int(count) < 0:
            raise ValueError("count must be >= 0, None or 'all'")
        if probability is not None and not 0 <= float(probability) <= 1:
            raise ValueError("probability must be within [0, 1]")
        self.id = next(Rule._ids)
        self.method = None if method in (None, "*") else method
        self.path = path
        self._method_re = (re.compile(method, re.IGNORECASE)
                           if self.method is not None else None)
        self._path_re = re.compile(path) if path is not None else None
        self.action = action
        self.status = int(status)
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.body = body
        self.delay = float(delay)
        self.at = at
        self.after_bytes = None if after_bytes is None else int(after_bytes)
        self.forward = (action == "drop") if forward is None else bool(forward)
        self.count = None if count is None else int(count)
        self.after = int(after)
        self.probability = None if probability is None else float(probability)
        self.seed = seed
        self._rng = random.Random(seed)
        self.seen = 0           # matching requests
        self.fired = 0          # requests it was applied to

    def matches(self, method, target):
        if self._method_re is not None and \
                not self._method_re.fullmatch(method):
            return False
        return self._path_re is None or bool(self._path_re.search(target))

    def take(self):
        """A matching request: True when the fault applies to it (and is
        counted).  Called with the proxy's lock held."""
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        if self.probability is not None and \
                self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def describe(self):
        d = {k: getattr(self, k) for k in (
            "id", "method", "path", "action", "status", "retry_after",
            "headers", "body", "delay", "at", "after_bytes", "forward",
            "count", "after", "probability", "seed", "seen", "fired")}
        d["remaining"] = (None if self.count is None
                          else max(self.count - self.fired, 0))
        return d


def _base_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError("upstream %r: an http:// URL is needed" % url)
    return "http://%s" % u.netloc


class _UpstreamConnection(http.client.HTTPConnection):
    """An HTTPConnection that sends the request line as latin-1, so that
    whatever bytes the client sent in its path reach the upstream."""

    def _encode_request(self, request):
        return request.encode("latin-1")


class FaultProxy:
    """The proxy: FaultProxy(upstream).start() -> port; .stop().

    Thread-safe: rules and the log may be changed and read from any thread
    while requests are served."""

    def __init__(self, upstream, listen="127.0.0.1", port=0, routes=None,
                 control_file=None, log_file=None,
                 upstream_timeout=UPSTREAM_TIMEOUT, tls=None):
        self.upstream = _base_url(upstream)
        # tls: (certificate file, key file): clients speak HTTPS to the
        # proxy (the upstream is still plain HTTP)
        self.tls = tls
        self.routes = sorted(((p.rstrip("/") or "/", _base_url(u))
                              for p, u in (routes or {}).items()),
                             key=lambda r: -len(r[0]))
        self.listen = listen
        self.port = port
        self.control_file = control_file
        self.log_file = log_file
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._rules = []
        self._log = []
        self._seq = itertools.count(1)
        self._control_sig = None
        self._server = None
        self._thread = None
        self._stopping = threading.Event()
        self._conns = set()
        self._log_fp = None

    # -- life cycle -------------------------------------------------------

    def start(self):
        """Listen and serve in a background thread; returns the port."""
        if self._server is not None:
            raise RuntimeError("faultproxy already started")
        self._stopping.clear()
        if self.log_file:
            self._log_fp = open(self.log_file, "a", encoding="utf-8")
        self._server = _Server((self.listen, self.port), _Handler, self)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            # the handshake happens in the handler's thread, at its first
            # read: a slow client never holds up the accept loop
            self._server.socket = ctx.wrap_socket(
                self._server.socket, server_side=True,
                do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="faultproxy", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        """Stop listening and close every client connection (pending delays
        end at once); returns when the accept loop has ended."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(10)
        self._server = None
        self.wait_idle(10)      # the log file gets every finished request
        if self._log_fp is not None:
            self._log_fp.close()
            self._log_fp = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def url(self):
        host = self.listen if self.listen not in ("", "0.0.0.0") \
            else "127.0.0.1"
        return "%s://%s:%d" % (self.scheme, host, self.port)

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    # -- rules ------------------------------------------------------------

    def add_rule(self, **kw):
        """Add a rule (keyword arguments: see the module docstring);
        returns its id."""
        rule = Rule(**kw)
        with self._lock:
            self._rules.append(rule)
        return rule.id

    def set_rules(self, rules):
        """Replace every rule by these (a list of dicts); returns their
        ids."""
        new = [Rule(**r) for r in rules]
        with self._lock:
            self._rules = new
        return [r.id for r in new]

    def remove_rule(self, rule_id):
        with self._lock:
            self._rules = [r for r in self._rules if r.id != rule_id]

    def clear_rules(self):
        with self._lock:
            self._rules = []

    def rules(self):
        """The rules with their counters (seen, fired, remaining)."""
        self._reload_control_file()
        with self._lock:
            return [r.describe() for r in self._rules]

    def rule(self, rule_id):
        for r in self.rules():
            if r["id"] == rule_id:
                return r
        raise KeyError(rule_id)

    def _reload_control_file(self):
        if not self.control_file:
            return
        try:
            st = os.stat(self.control_file)
        except FileNotFoundError:
            sig = None
        else:
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if sig == self._control_sig:
                return
        rules = []
        if sig is not None:
            try:
                with open(self.control_file, encoding="utf-8") as f:
                    text = f.read()
                data = json.loads(text) if text.strip() else {}
                specs = data.get("rules", []) if isinstance(data, dict) \
                    else data
                rules = [Rule(**r) for r in specs]
            except (OSError, ValueError, TypeError) as e:
                # Half-written or wrong: keep the old rules, try again on
                # the next request.
                sys.stderr.write("faultproxy: control file %r: %s\n"
                                 % (self.control_file, e))
                return
        with self._lock:
            self._control_sig = sig
            self._rules = rules

    def _pick(self, method, target):
        self._reload_control_file()
        with self._lock:
            for r in self._rules:
                if r.matches(method, target) and r.take():
                    return copy.copy(r)
        return None

    # -- request log ------------------------------------------------------

    def _new_entry(self, method, target):
        e = {"seq": next(self._seq), "time": time.time(), "method": method,
             "path": target, "status": None, "fault": None, "rule": None,
             "duration": None, "bytes_in": 0, "bytes_out": 0, "error": None,
             "done": False}
        with self._lock:
            self._log.append(e)
        return e

    def _set(self, entry, **kw):
        with self._lock:
            entry.update(kw)

    def _finish_entry(self, entry, t0):
        with self._lock:
            entry["duration"] = time.monotonic() - t0
            entry["done"] = True
            line = json.dumps(entry) if self._log_fp else None
            if line:
                self._log_fp.write(line + "\n")
                self._log_fp.flush()
            self._idle.notify_all()

    def log(self):
        """A copy of the request log (a list of dicts, oldest first)."""
        with self._lock:
            return [dict(e) for e in self._log]

    def wait_idle(self, timeout=30):
        """Wait until every logged request is done (its duration, bytes_out
        and error final); True unless the timeout expired first."""
        with self._idle:
            return self._idle.wait_for(
                lambda: all(e["done"] for e in self._log), timeout)

    def clear_log(self):
        with self._lock:
            self._log = []

    def requests(self, method=None, path=None, status=None, fault=None):
        """Log entries whose method equals `method` (any if None), whose
        target matches the regex `path` (searched), whose status equals
        `status` and whose fault equals `fault` (each: any if None)."""
        pre = re.compile(path) if path is not None else None
        out = []
        for e in self.log():
            if method is not None and e["method"] != method.upper():
                continue
            if pre is not None and not pre.search(e["path"]):
                continue
            if status is not None and e["status"] != status:
                continue
            if fault is not None and e["fault"] != fault:
                continue
            out.append(e)
        return out

    def count(self, method=None, path=None, status=None, fault=None):
        return len(self.requests(method, path, status, fault))

    # -- helpers for the handler ------------------------------------------

    def _route(self, target):
        path = target.split("?", 1)[0]
        for prefix, base in self.routes:
            if prefix == "/" or path == prefix or \
                    path.startswith(prefix + "/"):
                return base
        return self.upstream

    def _rewrite_url(self, value, proxy_base):
        for base in [self.upstream] + [b for _, b in self.routes]:
            if value == base or value.startswith(base + "/"):
                return proxy_base + value[len(base):]
        return value

    def _rewrite_text(self, text, proxy_base):
        for base in [self.upstream] + [b for _, b in self.routes]:
            text = text.replace(base, proxy_base)
            # JSON may escape the slashes
            text = text.replace(base.replace("/", "\\/"),
                                proxy_base.replace("/", "\\/"))
        return text


class _Closed:
    """Stands in for rfile and wfile of a connection closed by a fault."""

    closed = True

    def write(self, data):
        raise ClientGone("connection closed by a fault")

    def read(self, *a):
        return b""

    read1 = readline = read

    def flush(self):
        pass

    def close(self):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, proxy):
        self.proxy = proxy
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):
        # A client that went away is not worth a traceback on stderr.
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ClientGone)):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def setup(self):
        super().setup()
        self.fp = self.server.proxy
        self.upconn = None          # (base, _UpstreamConnection)
        self.aborted = False
        with self.fp._lock:
            self.fp._conns.add(self.connection)

    def finish(self):
        with self.fp._lock:
            self.fp._conns.discard(self.connection)
        self._close_upstream()
        if self.aborted:
            return
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, fmt, *args):
        pass

    def handle_expect_100(self):
        # Answered by _client_body() once the body is really wanted.
        return True

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    # -- connection handling ----------------------------------------------

    def _abort(self, reset):
        """Close the client connection now: with a TCP RST (reset) or a
        clean FIN."""
        self.close_connection = True
        self.aborted = True
        sock = self.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        sock.close()            # the last reference: really closes
        self.rfile = self.wfile = _Closed()

    def _write(self, data):
        try:
            self.wfile.write(data)
        except OSError as e:
            raise ClientGone("client connection lost: %s" % e) from None

    def _close_upstream(self):
        if self.upconn is not None:
            self.upconn[1].close()
            self.upconn = None

    def _upstream(self, base):
        """An upstream connection to base, reused while it is idle and
        healthy."""
        if self.upconn is not None:
            b, conn = self.upconn
            stale = b != base or conn.sock is None
            if not stale:
                try:
                    r, _, _ = select.select([conn.sock], [], [], 0)
                    stale = bool(r)   # EOF or unexpected bytes
                except (OSError, ValueError):
                    stale = True
            if not stale:
                return conn, True
            self._close_upstream()
        u = urllib.parse.urlsplit(base)
        conn = _UpstreamConnection(u.hostname, u.port or 80,
                                   timeout=self.fp.upstream_timeout)
        self.upconn = (base, conn)
        return conn, False

    # -- request body -----------------------------------------------------

    def _body_framing(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                raise ClientGone("unsupported Transfer-Encoding %r" % te)
            return "chunked", None
        cl = self.headers.get("Content-Length")
        if cl is None:
            return "none", 0
        try:
            n = int(cl)
        except ValueError:
            raise ClientGone("bad Content-Length %r" % cl) from None
        if n < 0:
            raise ClientGone("bad Content-Length %r" % cl)
        return ("length", n) if n else ("none", 0)

    def _expects_continue(self):
        return self.headers.get("Expect", "").lower() == "100-continue"

    def _client_body(self, entry):
        """Yield the request body in pieces of at most CHUNK bytes (decoded
        from chunked framing), sending 100 Continue first when asked."""
        kind, n = self._body_framing()
        if kind == "none":
            return
        if self._expects_continue() and not self.sent_continue:
            self.sent_continue = True
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        rfile = self.rfile
        try:
            if kind == "length":
                left = n
                while left:
                    b = rfile.read1(min(left, CHUNK))
                    if not b:
                        raise ClientGone("request body ended %d bytes "
                                         "early" % left)
                    left -= len(b)
                    entry["bytes_in"] += len(b)
                    yield b
                return
            while True:
                line = rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise ClientGone("bad chunk header")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ClientGone("bad chunk size %r" % line) from None
                if size == 0:
                    while True:         # trailers, dropped
                        line = rfile.readline(65537)
                        if line in (b"\r\n", b"\n"):
                            return
                        if not line:
                            raise ClientGone("chunked body ended early")
                left = size
                while left:
                    b = rfile.read1(min(left, CHUNK))
                    if not b:
                        raise ClientGone("chunk ended early")
                    left -= len(b)
                    entry["bytes_in"] += len(b)
                    yield b
                if rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise ClientGone("bad chunk end")
        except OSError as e:
            raise ClientGone("client connection lost: %s" % e) from None

    def _discard_body(self, entry):
        """Read and drop the request body, unless the client waits for 100
        Continue: then it never sends it and the connection must close."""
        if self._body_framing()[0] == "none":
            return
        if self._expects_continue() and not self.sent_continue:
            self.close_connection = True
            self.linger = True
            return
        for _ in self._client_body(entry):
            pass

    # -- responses ---------------------------------------------------------

    def _head(self, status, reason, headers):
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        lines += ["%s: %s" % (k, v) for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        self.headers_sent = True
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _answer(self, entry, status, body=None, headers=(), reason=None):
        """An answer made by the proxy (a fault, a control call, a 502)."""
        if body is None:
            body = "%d %s\n" % (status,
                                http.client.responses.get(status, ""))
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = [("Content-Length", str(len(body)))]
        if not any(k.lower() == "content-type" for k, _ in headers):
            hdrs.append(("Content-Type", "text/plain; charset=UTF-8"))
        hdrs += list(headers)
        if entry is not None:
            self.fp._set(entry, status=status)
        self._head(status, reason or http.client.responses.get(status, ""),
                   hdrs)
        if self.command != "HEAD":
            self._write(body)
            if entry is not None:
                entry["bytes_out"] += len(body)

    # -- the request --------------------------------------------------------

    def _serve(self):
        self.sent_continue = False
        self.headers_sent = False
        self.linger = False
        self._close_upstream_after = False
        target = self.path
        if target.startswith(CONTROL_PREFIX):
            return self._control(target[len(CONTROL_PREFIX):])
        t0 = time.monotonic()
        entry = self.fp._new_entry(self.command, target)
        try:
            self._proxy(entry, target)
            if self.linger and not self.aborted:
                self._linger_close()
        except ClientGone as e:
            self.fp._set(entry, error=str(e))
            self.close_connection = True
            self._close_upstream()
        finally:
            self.fp._finish_entry(entry, t0)

    def _proxy(self, entry, target):
        fp = self.fp
        method = self.command
        rule = fp._pick(method, target)
        if rule is not None:
            fp._set(entry, fault=rule.action, rule=rule.id)

        if rule is not None and not rule.forward and (
                rule.action == "status" or (rule.action == "drop"
                                            and rule.at == "before_headers")):
            if rule.action == "drop":
                self._abort(reset=True)
                return
            self._discard_body(entry)
            return self._fault_status(entry, rule)

        base = fp._route(target)
        try:
            resp = self._forward(entry, base, method, target)
        except UpstreamFailed as e:
            fp._set(entry, error=str(e))
            self.close_connection = True
            self._answer(entry, 502, "502 Bad Gateway: %s\n" % e)
            return

        try:
            self._respond(entry, rule, resp, target)
        except UpstreamFailed as e:
            fp._set(entry, error=str(e))
            self._close_upstream()
            if self.headers_sent:
                # all that is left is to cut the client off
                self._abort(reset=True)
            else:
                self.close_connection = True
                self._answer(entry, 502, "502 Bad Gateway: %s\n" % e)

    def _respond(self, entry, rule, resp, target):
        """Relay the upstream's response, applying the rule's fault."""
        fp = self.fp
        method = self.command
        if rule is not None and rule.at == "before_headers" and \
                rule.action in ("status", "drop"):
            # forwarded: the upstream did the work, its answer is lost
            self._close_upstream()
            if rule.action == "drop":
                self._abort(reset=True)
                return
            return self._fault_status(entry, rule)

        if rule is not None and rule.action == "delay" and \
                rule.at == "before_headers":
            if fp._stopping.wait(rule.delay):
                raise ClientGone("proxy stopping")

        proxy_base = fp.scheme + "://" + (self.headers.get("Host") or
                                  "%s:%d" % self.server.server_address[:2])
        headers = []
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP:
                continue
            if lk in REWRITE_HEADERS:
                v = fp._rewrite_url(v, proxy_base)
            headers.append((k, v))

        no_body = (method == "HEAD" or resp.status in (204, 304)
                   or 100 <= resp.status < 200)
        body = None             # an iterator of body pieces
        length = None           # known body length, or None
        if not no_body:
            length = resp.length        # None: chunked or close-delimited
            ctype = resp.getheader("Content-Type", "")
            if AUTH_PATH_RE.search(target.split("?", 1)[0]) and \
                    "json" in ctype.lower() and \
                    (length is None or length <= REWRITE_MAX):
                data = self._read_bounded(resp, REWRITE_MAX)
                text = fp._rewrite_text(data.decode("utf-8",
                                                    "surrogateescape"),
                                        proxy_base)
                data = text.encode("utf-8", "surrogateescape")
                body = iter([data])
                length = len(data)
                headers = [(k, v) for k, v in headers
                           if k.lower() != "content-length"]
                headers.append(("Content-Length", str(length)))
            if body is None:
                body = self._upstream_body(resp)
            if length is None:
                headers = [(k, v) for k, v in headers
                           if k.lower() != "content-length"]
                if self.request_version == "HTTP/1.1":
                    headers.append(("Transfer-Encoding", "chunked"))
                else:
                    self.close_connection = True
        chunked = (not no_body and length is None
                   and self.request_version == "HTTP/1.1")
        if resp.will_close:
            self._close_upstream_after = True

        fp._set(entry, status=resp.status)
        self._head(resp.status, resp.reason, headers)

        if rule is not None and rule.action == "drop" and \
                rule.at == "after_headers":
            self._close_upstream()
            self._abort(reset=True)
            return
        if no_body:
            self._done_with_upstream(resp)
            if rule is not None and rule.at == "mid_body":
                self._mid_body_fault(rule)
            return

        cut = None
        if rule is not None and rule.at == "mid_body":
            cut = rule.after_bytes
            if cut is None:
                cut = length // 2 if length is not None else 64 * 1024
            if length is not None:
                cut = max(0, min(cut, length - 1))
        sent = 0
        for piece in body:
            if cut is not None and sent + len(piece) > cut and \
                    rule.action == "corrupt":
                i = cut - sent
                piece = piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1:]
                cut = None
            if cut is not None and sent + len(piece) >= cut:
                head, piece = piece[:cut - sent], piece[cut - sent:]
                if head:
                    self._send_piece(head, chunked, entry)
                    sent += len(head)
                if self._mid_body_fault(rule):
                    return
                cut = None
                if not piece:
                    continue
            self._send_piece(piece, chunked, entry)
            sent += len(piece)
        if cut is not None and rule.action != "corrupt":
            # body shorter than the cut
            if self._mid_body_fault(rule):
                return
        if chunked:
            self._write(b"0\r\n\r\n")
        self._done_with_upstream(resp)

    def _mid_body_fault(self, rule):
        """Apply a mid-body fault; True when the connection is gone."""
        if rule.action == "delay":
            if self.fp._stopping.wait(rule.delay):
                raise ClientGone("proxy stopping")
            return False
        self._close_upstream()
        self._abort(reset=(rule.action == "drop"))
        return True

    def _send_piece(self, data, chunked, entry):
        if chunked:
            self._write(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self._write(data)
        entry["bytes_out"] += len(data)

    def _done_with_upstream(self, resp):
        if self._close_upstream_after or \
                not resp.isclosed():
            self._close_upstream()
        self._close_upstream_after = False

    def _upstream_body(self, resp):
        while True:
            if resp.length == 0:
                resp.close()        # all read: the connection is reusable
                return
            try:
                b = resp.read1(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                raise UpstreamFailed("upstream body: %s" % e) from None
            if not b:
                if resp.length:     # Content-Length not reached
                    raise UpstreamFailed("upstream body ended %d bytes "
                                         "early" % resp.length)
                return
            yield b

    def _read_bounded(self, resp, limit):
        parts, n = [], 0
        for b in self._upstream_body(resp):
            parts.append(b)
            n += len(b)
            if n > limit:
                raise UpstreamFailed("auth response body over %d bytes"
                                     % limit)
        return b"".join(parts)

    def _fault_status(self, entry, rule):
        headers = []
        if rule.retry_after is not None:
            headers.append(("Retry-After", str(rule.retry_after)))
        headers += list(rule.headers.items())
        self._answer(entry, rule.status, rule.body, headers)

    def _forward(self, entry, base, method, target):
        """Send the request (streaming its body) to the upstream; return
        the response with its headers read."""
        kind, _ = self._body_framing()
        headers = []
        drop = {h.strip().lower() for h in
                self.headers.get("Connection", "").split(",")}
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in drop or lk == "host":
                continue
            if kind == "chunked" and lk == "content-length":
                continue
            headers.append((k, v))
        headers.insert(0, ("Host", urllib.parse.urlsplit(base).netloc))
        if kind == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        # Expect: 100-continue goes on to Swift, whose answer decides
        # whether the client sends its body (a routed upstream such as
        # Keystone's development server knows nothing of it: the proxy
        # answers for it).
        expect = (kind != "none" and self._expects_continue()
                  and base == self.fp.upstream)
        if expect:
            headers.append(("Expect", "100-continue"))
        # Until a body byte has gone out, a reused connection that turns
        # out to be dead is replaced once.
        for attempt in (1, 2):
            conn, reused = self._upstream(base)
            try:
                conn.putrequest(method, target, skip_host=True,
                                skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders()
                final = self._await_continue(conn) if expect else False
            except (OSError, UpstreamFailed) as e:
                self._close_upstream()
                if attempt == 1 and reused:
                    continue
                raise UpstreamFailed("cannot send to %s: %s" % (base, e)) \
                    from None
            break
        if final:
            # The upstream answered before the body: the client, which
            # waits for 100 Continue, never sends it, and neither
            # connection can carry another request.
            self.close_connection = True
            self.linger = True
            self._close_upstream_after = True
            try:
                return conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                self._close_upstream()
                raise UpstreamFailed("no response from %s: %s" % (base, e)) \
                    from None
        send_error = None
        for piece in self._client_body(entry):
            if send_error is not None:
                continue            # keep draining the client
            try:
                if kind == "chunked":
                    conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                else:
                    conn.send(piece)
            except OSError as e:
                send_error = e
                self.close_connection = True
        if kind == "chunked" and send_error is None:
            try:
                conn.send(b"0\r\n\r\n")
            except OSError as e:
                send_error = e
        try:
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self._close_upstream()
            if send_error is None and kind == "none" and reused and \
                    isinstance(e, (http.client.RemoteDisconnected,
                                   ConnectionResetError, BrokenPipeError)):
                return self._forward_retry(base, method, target, headers)
            raise UpstreamFailed("no response from %s: %s" % (base, e)) \
                from None
        if send_error is not None:
            self._close_upstream_after = True
        return resp

    def _await_continue(self, conn):
        """After headers with Expect: 100-continue: consume the upstream's
        100 Continue and return False, or return True when its first
        answer is a final response (left unread for getresponse())."""
        sock = conn.sock
        try:
            head = sock.recv(12, socket.MSG_PEEK | socket.MSG_WAITALL)
        except OSError as e:
            raise UpstreamFailed("waiting for 100 Continue: %s" % e) \
                from None
        if len(head) < 12:
            raise UpstreamFailed("upstream closed the connection")
        if not re.match(rb"HTTP/1\.[01] 100", head):
            return True
        buf = b""
        while not buf.endswith(b"\r\n\r\n"):
            b = sock.recv(1)
            if not b or len(buf) > 8192:
                raise UpstreamFailed("bad interim response %r" % buf[:80])
            buf += b
        return False

    def _linger_close(self):
        """Close the client connection without losing the answer just sent:
        a close with unread request bytes would send a TCP RST, and the
        client might see it before the answer.  So shut down the sending
        side and read what comes, for a few seconds at most."""
        sock = self.connection
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.5)
            end = time.monotonic() + 5
            while time.monotonic() < end and sock.recv(CHUNK):
                pass
        except OSError:
            pass

    def _forward_retry(self, base, method, target, headers):
        conn, _ = self._upstream(base)
        try:
            conn.putrequest(method, target, skip_host=True,
                            skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            return conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self._close_upstream()
            raise UpstreamFailed("no response from %s: %s" % (base, e)) \
                from None

    # -- control endpoint ---------------------------------------------------

    def _control(self, what):
        fp = self.fp
        try:
            body = b"".join(self._client_body({"bytes_in": 0}))
            what = what.split("?", 1)[0].rstrip("/")
            if what == "rules" and self.command == "GET":
                out = fp.rules()
            elif what == "rules" and self.command == "PUT":
                data = json.loads(body or b"[]")
                if isinstance(data, dict):
                    data = data.get("rules", [])
                out = {"ids": fp.set_rules(data)}
            elif what == "rules" and self.command == "POST":
                out = {"id": fp.add_rule(**json.loads(body))}
            elif what == "rules" and self.command == "DELETE":
                fp.clear_rules()
                out = {}
            elif what == "log" and self.command == "GET":
                out = fp.log()
            elif what == "log" and self.command == "DELETE":
                fp.clear_log()
                out = {}
            else:
                return self._answer(None, 404, "no such control call\n")
        except (ValueError, TypeError) as e:
            return self._answer(None, 400, "bad control call: %s\n" % e)
        self._answer(None, 200, json.dumps(out, indent=1) + "\n",
                     [("Content-Type", "application/json")])


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="HTTP reverse proxy that injects faults (backupfs "
        "tests)")
    ap.add_argument("--listen", default="127.0.0.1:0",
                    help="HOST:PORT to listen on (port 0: any free port)")
    ap.add_argument("--upstream", required=True,
                    help="base URL of the upstream, e.g. "
                    "http://127.0.0.1:8080")
    ap.add_argument("--route", action="append", default=[],
                    metavar="PREFIX=URL",
                    help="send paths under PREFIX to another upstream "
                    "(repeatable), e.g. /v3=http://127.0.0.1:5000")
    ap.add_argument("--control-file",
                    help="JSON rules, re-read whenever the file changes")
    ap.add_argument("--log-file", help="append the request log here "
                    "(one JSON object a line)")
    ap.add_argument("--port-file", help="write the port number here once "
                    "listening")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    routes = {}
    for r in args.route:
        prefix, sep, url = r.partition("=")
        if not sep:
            ap.error("--route wants PREFIX=URL, not %r" % r)
        routes[prefix] = url
    fp = FaultProxy(args.upstream, listen=host or "127.0.0.1",
                    port=int(port or 0), routes=routes,
                    control_file=args.control_file, log_file=args.log_file)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    port = fp.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("faultproxy: listening on %s" % fp.url, flush=True)
    while not done.wait(1):
        pass
    fp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
