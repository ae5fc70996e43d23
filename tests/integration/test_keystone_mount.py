# SPDX-License-Identifier: Apache-2.0
"""The mounted filesystem on Swift with Keystone v3 authentication.

Keystone (tools/keystone-server.sh, tokens living a few seconds: see
KEYSTONE_TTL in conftest.py) on 5000 and its Swift proxy on 8081: a mount
whose backend logs in with a password (user and project by name, with
their domains) and one with an application credential (id and secret
file) each take a snapshot and read it back byte-exact.  Then both keep
snapshotting and reading for longer than a token lives, through a
faultproxy that routes /v3 to Keystone and everything else to 8081 (the
catalog rewritten to point at it), which counts the token requests: a new
token comes before the old one expires (no request is refused), and not
one per request.

Swift only (@pytest.mark.backends("swift")): Keystone authenticates users
of the object store; a local repository has nothing to authenticate."""

import math
import time

import pytest

from faultproxy import FaultProxy

pytestmark = pytest.mark.backends("swift")

KiB = 1 << 10
MiB = 1 << 20
TOKENS = r"^/v3/auth/tokens$"


def password_auth(env, ks, auth_url):
    e = ks.env
    pw = env.secret_file("keystone.password", e["OS_PASSWORD"])
    return {"auth_url": auth_url, "user": e["OS_USERNAME"],
            "user_domain": e["OS_USER_DOMAIN_NAME"],
            "password_file": str(pw), "project": e["OS_PROJECT_NAME"],
            "project_domain": e["OS_PROJECT_DOMAIN_NAME"],
            "region": e["OS_REGION_NAME"]}


def appcred_auth(env, ks, auth_url):
    secret = open(ks.appcred_secret_file, encoding="utf-8").read().strip()
    sec = env.secret_file("keystone.appcred", secret)
    return {"auth_url": auth_url,
            "application_credential_id": ks.appcred_id,
            "application_credential_secret_file": str(sec)}


AUTHS = {"password": password_auth, "appcred": appcred_auth}


def keystone_env(util, env, ks, kind, auth_url=None):
    """env on Swift behind Keystone (the test project's account, through
    8081), logging in by kind; vol1 with a sample tree and 1 MiB of random
    data; initialized."""
    env.swift = ks.account()
    env.swift_auth = AUTHS[kind](env, ks, auth_url or ks.auth_url)
    src = env.add_instance("vol1", tree="sample", snapshot="none")
    util.write_random(src / "data.bin", MiB, 5)
    env.init()
    return env


def check_backup(util, env, m, ts):
    p = m.backup(ts)
    data = util.read_file(p)
    assert util.sha256(data) == util.xattr(p, "sha256")
    util.assert_same_tree(util.tree_of_tar(data), util.tree_of_dir(env.src()),
                          "backup %s vs source" % ts)


@pytest.mark.parametrize("kind", sorted(AUTHS))
def test_snapshot_and_read_back(util, env, keystone_server, kind):
    keystone_env(util, env, keystone_server, kind)
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst(), "via-keystone")
    assert m.backups() == [ts]
    check_backup(util, env, m, ts)
    # the objects are in the Keystone project's account (behind 8081)
    assert env.objects("chunks/"), "no chunk in the project's container"
    assert any(n.startswith("manifests/vol1/")
               for n in env.objects("manifests/"))


@pytest.fixture
def proxies():
    """kind -> a faultproxy in front of 8081 with /v3 routed to Keystone.
    (Request it before env_factory: the mounts go first, then the
    proxies.)"""
    out = {}
    for kind in sorted(AUTHS):
        fp = FaultProxy("http://127.0.0.1:8081",
                        routes={"/v3": "http://127.0.0.1:5000"})
        fp.start()
        out[kind] = fp
    yield out
    for fp in out.values():
        fp.stop()


@pytest.mark.bfs_timeout(600)
def test_tokens_renewed_across_their_lifetime(util, keystone_server, proxies,
                                              env_factory, tmp_path):
    ks = keystone_server
    mounts = {}
    for kind, fp in sorted(proxies.items()):
        env = keystone_env(util, env_factory(tmp_path / kind), ks, kind,
                           fp.url + "/v3")
        mounts[kind] = (env, env.mount())
        fp.clear_log()
    # Keep both busy for one and a half token lifetimes: each round a
    # change in the source, a snapshot (chunk and manifest PUTs), and the
    # new backup read back whole (chunk GETs, not cached yet).
    rounds = 0
    start = time.monotonic()
    while time.monotonic() - start < 1.5 * ks.ttl or rounds < 2:
        rounds += 1
        for kind, (env, m) in sorted(mounts.items()):
            util.write_random(env.src() / "data.bin", 256 * KiB,
                              1000 + rounds)
            ts, _ = util.snapshot_via_mount(m.inst(), "r%d" % rounds)
            check_backup(util, env, m, ts)
    elapsed = time.monotonic() - start
    for kind, fp in sorted(proxies.items()):
        assert fp.wait_idle(30)
        tokens = fp.count(method="POST", path=TOKENS)
        refused = fp.requests(status=401)
        # renewed at least once; at most once in 90 % of a lifetime (the
        # refresh point), not once per request
        most = math.ceil(elapsed / (0.9 * ks.ttl)) + 1
        assert 1 <= tokens <= most, \
            "%s: %d token requests in %.0f s (tokens live %d s)" % (
                kind, tokens, elapsed, ks.ttl)
        assert refused == [], \
            "%s: requests refused (token not renewed in time): %r" % (
                kind, refused[:5])
        env, m = mounts[kind]
        assert len(m.backups()) == rounds
        assert fp.count(path=r"/%s/chunks/" % env.container) > 0, \
            "the mount's Swift requests did not go through the proxy"
