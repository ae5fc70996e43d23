# SPDX-License-Identifier: Apache-2.0
"""Scale: an instance with thousands of backups.

`ls -l` of instances/<I>/backups must cost Swift requests in proportion to
the pages of the container listing, not to the backups: a backup's size is
in its manifest's object name (manifests/<I>/<timestamp>_<size>), so stat()
of a backup loads no manifest.  The test counts the requests in the log of
a faultproxy.py in front of Swift (it injects no fault here, it only logs).

The backups are made by tests/tools/clone_backups (BACKUPFS_TEST_CLONE_BIN,
set by the meson test; else build/ of this checkout): real manifests,
sealed, referencing the chunks of the one backup taken with backupctl, with
their own ids and timestamps one minute apart.  One of them is read back
whole through the mount to show they are real.

Swift only (@pytest.mark.backends("swift")): the property is about HTTP
requests to an object store with paged listings; a local repository lists
a directory in one call and has no request log."""

import json
import math
import os
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from faultproxy import FaultProxy

pytestmark = pytest.mark.backends("swift")

REPO_ROOT = Path(__file__).resolve().parents[2]
CLONE = (os.environ.get("BACKUPFS_TEST_CLONE_BIN")
         or str(REPO_ROOT / "build/tests/tools/clone_backups"))

BACKUPS = 2000          # backups of vol1 in all
LIST_LIMIT = 500        # the backend's page size: several pages
CLONE_STEP = 60         # seconds between two clones (clone_backups.c)


@pytest.fixture
def proxy(swift_server):
    """A faultproxy in front of the Swift all-in-one (no rules: a logger)."""
    u = urllib.parse.urlsplit(swift_server.auth_url)
    fp = FaultProxy("%s://%s" % (u.scheme, u.netloc))
    fp.start()
    yield fp
    fp.stop()


def classify(env, entry):
    """(method, what) of a logged request: what is "listing <prefix>" for a
    listing of env's container, "manifests" or "chunks" (or the object's
    top directory) for an object of it, "auth" or "other"."""
    path, _, query = entry["path"].partition("?")
    path = urllib.parse.unquote(path)
    if path.startswith("/auth/"):
        return entry["method"], "auth"
    head = "/%s" % env.container
    parts = path.split("/", 3)          # "", "v1", "AUTH_x", rest
    rest = "/" + parts[3] if len(parts) == 4 else ""
    if rest == head:
        prefix = urllib.parse.parse_qs(query).get("prefix", [""])[0]
        return entry["method"], "listing " + prefix
    if rest.startswith(head + "/"):
        return entry["method"], rest[len(head) + 1:].split("/", 1)[0]
    return entry["method"], "other"


def ls_long(util, path):
    """`ls -l` of path (the real binary): {name: (type char, size)}."""
    r = util.run(["ls", "-l", "--time-style=+%s", path])
    assert r.returncode == 0, r.describe()
    out = {}
    for line in r.stdout.splitlines()[1:]:       # after "total N"
        f = line.split(None, 6)
        name = f[6].split(" -> ", 1)[0]
        out[name] = (f[0][0], int(f[4]))
    return out


@pytest.mark.bfs_timeout(900)
def test_ls_l_of_many_backups_costs_listing_pages(util, proxy, env):
    """BACKUPS backups: ls -l lists them with their sizes for a listing
    GET per page and no GET or HEAD of a manifest or chunk.  (proxy before
    env: the mounts stop before the proxy does.)"""
    t_start = time.monotonic()

    # One real backup, straight to Swift; its size from its manifest.
    env.add_instance("vol1", tree="sample")
    env.init()
    env.snapshot("vol1", label="first")
    listed = json.loads(env.ctl("--json", "list", "vol1").stdout)
    assert len(listed) == 1, listed
    first, size = listed[0]["timestamp"], listed[0]["size"]

    # Clone it into BACKUPS backups in all.
    r = util.run([CLONE, "--config", env.cfg, "vol1", BACKUPS - 1])
    assert r.returncode == 0, "clone_backups failed:\n" + r.describe()
    print(r.stdout.strip())
    t_cloned = time.monotonic()
    t0 = util.ts_epoch(first)
    want = {time.strftime("%Y-%m-%dT%H:%M:%SZ",
                          time.gmtime(t0 - i * CLONE_STEP))
            for i in range(BACKUPS)}
    # Swift updates container listings after the PUT (later still when a
    # container server was busy): wait for the listing to show them all.
    deadline = time.monotonic() + 60
    while True:
        stored = len(env.objects("manifests/vol1/"))
        if stored == BACKUPS or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert stored == BACKUPS, "the listing shows %d manifests" % stored

    # Mount through the proxy, with small listing pages.
    env.swift_auth["auth_url"] = proxy.url + "/auth/v1.0"
    env.backend_extra["list_limit"] = LIST_LIMIT
    env.write_config()
    m = env.mount()
    backups_dir = m.inst("vol1") / "backups"
    assert proxy.wait_idle()
    proxy.clear_log()

    # The listing stays fresh for 5 s (ENGINE_LISTING_TTL): ls -l takes
    # well under that, so one listing answers readdir and every stat().
    t_ls = time.monotonic()
    entries = ls_long(util, backups_dir)
    t_ls = time.monotonic() - t_ls
    assert proxy.wait_idle()
    log = proxy.log()

    counts = Counter(classify(env, e) for e in log)
    pages = math.ceil(BACKUPS / LIST_LIMIT)
    summary = "ls -l of %d backups (list_limit %d, %.2f s): %d requests: " \
        "%s" % (BACKUPS, LIST_LIMIT, t_ls, len(log),
                ", ".join("%s %s: %d" % (k[0], k[1], v)
                          for k, v in sorted(counts.items())))
    print(summary)

    assert entries.pop("latest", ("?",))[0] == "l", "no latest symlink"
    backups = entries
    assert set(backups) == want, "%d entries, %d expected; %s" % (
        len(backups), len(want), summary)
    bad = {n: e for n, e in backups.items() if e != ("-", size)}
    assert not bad, "wrong type or size (want %d): %r" % (
        size, sorted(bad.items())[:5])

    listings = counts[("GET", "listing manifests/vol1/")]
    assert pages <= listings <= pages + 1, \
        "listing GETs of manifests/vol1/: %d, want %d..%d; %s" % (
            listings, pages, pages + 1, summary)
    objects = {k: v for k, v in counts.items()
               if k[0] in ("GET", "HEAD") and k[1] in ("manifests",
                                                       "chunks")}
    assert not objects, "GET/HEAD of manifest or chunk objects: %r; %s" % (
        objects, summary)
    # Besides the listing, at most a few requests that do not depend on
    # the number of backups (say a token renewed on the way).
    assert len(log) <= listings + 5, "more requests than the listing: " \
        + summary

    # The clones are real backups: one read back whole through the mount.
    proxy.clear_log()
    clone = sorted(want)[BACKUPS // 2]
    p = m.backup(clone)
    data = util.read_file(p)
    assert proxy.wait_idle()
    read = Counter(classify(env, e) for e in proxy.log())
    print("reading clone %s: %s" % (clone, dict(read)))
    # the counting above sees manifest and chunk GETs when there are some
    assert read[("GET", "manifests")] == 1 and read[("GET", "chunks")], read
    assert len(data) == size
    assert util.sha256(data) == util.xattr(p, "sha256"), \
        "clone %s read back with wrong bytes" % clone
    util.assert_same_tree(util.tree_of_tar(data), util.tree_of_dir(env.src()),
                          "clone %s vs source" % clone)
    # ... with metadata of its own
    assert util.xattr(p, "id") != util.xattr(m.backup(first), "id")
    i = (t0 - util.ts_epoch(clone)) // CLONE_STEP
    assert util.xattr(p, "label") == "clone-%d" % i
    assert util.xattr(p, "parent") == sorted(want)[BACKUPS // 2 - 1]
    print("clone %.1f s, ls -l %.2f s, test %.1f s" % (
        t_cloned - t_start, t_ls, time.monotonic() - t_start))
