# SPDX-License-Identifier: Apache-2.0
"""Notifications: the fields every event carries, and their delivery to a
webhook (HTTP POST from a background thread, retried after a 5xx, never
blocking or failing the job).

The receiver is a python http.server on 127.0.0.1 in the test process.
Syslog delivery is not tested here (it would need a syslog daemon); the
foreground daemon's log carries the same lines and is checked instead."""

import http.server
import json
import os
import socket
import threading
import time

import pytest

DELIVERY_TIMEOUT = 60   # generous: backoff and a slow machine


class Receiver:
    """A webhook receiver: records every request; answers with the codes
    of `script` in turn, then 200."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests = []     # (status answered, headers, body bytes)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    code = outer.script.pop(0) if outer.script else 200
                    outer.requests.append((code, dict(self.headers), body,
                                           self.command, self.path))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def delivered(self):
        """Parsed bodies of the requests answered 2xx."""
        with self.lock:
            return [json.loads(b) for c, h, b, m, p in self.requests
                    if 200 <= c < 300]

    def wait_events(self, names, timeout=DELIVERY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [e["event"] for e in self.delivered()]
            if all(n in got for n in names):
                return self.delivered()
            time.sleep(0.1)
        pytest.fail("webhook did not receive %s within %d s; requests: %r"
                    % (names, timeout, self.requests))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def webhook_env(env, url, **over):
    env.add_instance("vol1", tree="sample")
    env.extra["webhook"] = dict({"url": url, "timeout": 5, "retries": 3},
                                **over)
    env.init()
    return env


# --- event fields


def by_event(events, name):
    return [e for e in events if e["event"] == name]


def test_snapshot_events_carry_fields(util, env):
    env.add_instance("vol1", tree="sample")
    env.init()
    m = env.mount()
    ts, job = util.snapshot_via_mount(m.inst(), "fields")
    events = util.read_events(m.inst())
    start = by_event(events, "backup.create.start")[-1]
    end = by_event(events, "backup.create.end")[-1]
    assert start["label"] == "fields" and start["instance"] == "vol1", start
    assert isinstance(start["bytes"], int), start
    assert end["label"] == "fields" and end["backup"] == ts, end
    assert end["bytes"] == job["size"] > 0, (end, job)
    assert isinstance(end["duration"], (int, float)) and \
        end["duration"] >= 0, end
    for e in (start, end):
        assert util.TS_RE.match(e["time"]), e


def test_restore_events_name_the_backup(util, env):
    env.add_instance("vol1", tree="sample")
    env.init()
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst(), "src")
    assert util.restore_errno(m.backup(ts), m.inst() / "restore" / ts) == 0
    events = util.read_events(m.inst())
    start = by_event(events, "backup.restore.start")[-1]
    end = by_event(events, "backup.restore.end")[-1]
    assert start["label"] == ts and start["bytes"] > 0, start
    assert end["backup"] == ts and end["source_instance"] == "vol1", end
    assert end["bytes"] == os.stat(m.backup(ts)).st_size, end
    assert end["duration"] >= 0, end


@pytest.mark.log_errors()
def test_restore_error_event_says_why(util, env):
    env.add_instance("vol1", tree="sample")
    env.init()
    m = env.mount()
    bad = env.base / "garbage.tar"
    bad.write_bytes(os.urandom(100000))
    assert util.restore_errno(bad, m.inst() / "restore" / "garbage.tar") != 0
    err = by_event(util.read_events(m.inst()), "backup.restore.error")[-1]
    assert err["label"] == "garbage.tar" and err["error"], err
    assert err["bytes"] == 100000 and err["duration"] >= 0, err
    assert "backup" not in err, err


@pytest.mark.log_errors()
def test_failed_snapshot_event_and_record(util, env):
    src = env.add_instance("vol1", tree="sample")
    env.init()
    m = env.mount()
    os.rename(src, env.base / "moved-away")
    path = m.inst() / "snapshots" / "doomed"
    assert util.create_job_file(path) == 0
    job = util.wait_job(path)
    assert job["state"] == "failed", job
    assert job["progress"]["eta"] is None, job
    err = by_event(util.read_events(m.inst()), "backup.create.error")[-1]
    assert err["label"] == "doomed" and err["error"] == job["error"], err
    assert isinstance(err["bytes"], int) and err["duration"] >= 0, err
    os.rename(env.base / "moved-away", src)


def test_delete_event_carries_size(util, env):
    env.add_instance("vol1", tree="sample")
    env.init()
    m = env.mount()
    ts, job = util.snapshot_via_mount(m.inst(), "gone")
    size = os.stat(m.backup(ts)).st_size
    os.unlink(m.backup(ts))
    d = by_event(util.read_events(m.inst()), "backup.delete.end")[-1]
    assert d["backup"] == ts and d["bytes"] == size, d


def test_events_logged_by_foreground_daemon(util, env):
    env.add_instance("vol1", tree="sample")
    env.init()
    m = env.mount()
    util.snapshot_via_mount(m.inst(), "logged")
    end = by_event(util.read_events(m.inst()), "backup.create.end")[-1]
    logged = [json.loads(l.split("info: event ", 1)[1])
              for l in m.log_text().splitlines() if "info: event " in l]
    assert end in logged, m.log_tail(10)


# --- webhook


def test_webhook_retried_after_500_arrives_once(util, env):
    rcv = Receiver(script=[500])
    try:
        webhook_env(env, rcv.url)
        m = env.mount()
        ts, _ = util.snapshot_via_mount(m.inst(), "hooked")
        got = rcv.wait_events(["backup.create.start", "backup.create.end"])
        with rcv.lock:
            reqs = list(rcv.requests)
        # the first POST was answered 500 and was sent again
        assert reqs[0][0] == 500, reqs
        first = json.loads(reqs[0][2])
        assert [e for e in got if e == first] == [first], (first, got)
        # each event delivered exactly once, as written to the events file
        events = util.read_events(m.inst())
        for e in got:
            assert got.count(e) == 1, got
            assert e in events, (e, events)
        end = [e for e in got if e["event"] == "backup.create.end"][0]
        assert end["backup"] == ts and end["instance"] == "vol1", end
        for code, headers, body, method, path in reqs:
            assert method == "POST" and path == "/hook"
            ctype = {k.lower(): v for k, v in headers.items()}[
                "content-type"]
            assert ctype == "application/json", headers
        assert "HTTP status 500" in m.log_text(), m.log_tail(20)
    finally:
        rcv.close()


def test_webhook_bearer_token_sent_never_logged(util, env, receiver):
    token = "s3cr3t-" + os.urandom(8).hex()
    tf = env.secret_file("hook.token", token)
    webhook_env(env, receiver.url, token_file=str(tf))
    m = env.mount()
    util.snapshot_via_mount(m.inst(), "tok")
    receiver.wait_events(["backup.create.end"])
    with receiver.lock:
        auths = [{k.lower(): v for k, v in h.items()}.get("authorization")
                 for c, h, b, mt, p in receiver.requests]
    assert auths and all(a == "Bearer " + token for a in auths), auths
    assert m.stop() == []
    assert token not in m.log_text()


def test_webhook_token_file_mode_checked(util, env, receiver):
    tf = env.secret_file("hook.token", "abc")
    os.chmod(tf, 0o644)
    webhook_env(env, receiver.url, token_file=str(tf))
    msg = util.mount_refused(env, env.cfg)
    assert "token" in msg and "0644" in msg, msg


@pytest.mark.parametrize("hook,word", [
    ({"url": "ftp://127.0.0.1/x"}, "webhook.url"),
    ({"timeout": 5}, "webhook.url"),
    ({"url": "http://127.0.0.1/x", "colour": 1}, "colour"),
    ({"url": "http://127.0.0.1/x", "timeout": 0}, "webhook.timeout"),
    ({"url": "http://127.0.0.1/x", "retries": "many"}, "webhook.retries"),
    ({"url": "http://127.0.0.1/x", "cacert": "rel/ca.pem"},
     "webhook.cacert"),
])
def test_webhook_config_checked(util, env, hook, word):
    env.add_instance("vol1", tree="sample")
    env.init()
    env.extra["webhook"] = hook
    cfg = env.write_config(env.base / "bad.json")
    msg = util.mount_refused(env, cfg).replace(str(cfg), "<FILE>")
    assert word in msg, msg


def test_unreachable_webhook_never_blocks_a_snapshot(util, env):
    # A listener that never accepts: connections hang until the timeout.
    # The snapshot completes regardless and the unmount (a clean exit
    # within the harness's bound) abandons the delivery in flight.
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(0)
    try:
        url = "http://127.0.0.1:%d/hook" % sink.getsockname()[1]
        webhook_env(env, url, timeout=60, retries=10)
        m = env.mount()
        ts, job = util.snapshot_via_mount(m.inst(), "despite")
        assert job["state"] == "completed" and ts in m.backups(), job
        names = [e["event"] for e in util.read_events(m.inst())]
        assert "backup.create.end" in names, names
        assert m.stop() == []   # a clean exit within the harness's bound
        assert not m.alive()
    finally:
        sink.close()


def test_refused_webhook_never_fails_a_snapshot(util, env):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens: connection refused
    webhook_env(env, "http://127.0.0.1:%d/hook" % port, retries=1)
    m = env.mount()
    ts, job = util.snapshot_via_mount(m.inst(), "refused")
    assert job["state"] == "completed", job
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while "event dropped after 2 attempts" not in m.log_text():
        assert time.monotonic() < deadline, m.log_tail(20)
        time.sleep(0.1)
