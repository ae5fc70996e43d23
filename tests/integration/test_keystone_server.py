# SPDX-License-Identifier: Apache-2.0
"""tools/keystone-server.sh: Keystone v3 on 5000 and the Swift proxy on 8081
that trusts it, checked with plain HTTP (urllib).

The session fixture keystone_server (conftest.py) starts the servers with
the script (after the tempauth Swift) and fails, with the script's output,
if they cannot start; it stops at the end only what was not running
before.  What is
checked: a password token for tester in project test carries a catalog that
points at 8081 and works there (container and object PUT, GET, listing); a
wrong password and a bogus token get 401; a token from tester's application
credential works; a token stops working once its configured lifetime is
over, and a new one works again."""

import hashlib
import json
import os
import stat
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KS = "http://127.0.0.1:5000/v3"
PROXY = "http://127.0.0.1:8081"


@pytest.fixture(scope="module")
def servers(keystone_server):
    """Started servers (once for the session, by conftest.py) and the `env`
    of the script (a dict)."""
    return keystone_server.env


def call(method, url, token=None, body=None, headers=None, timeout=30):
    """(status, headers, body bytes); HTTP errors are answers too."""
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if isinstance(body, (dict, list)):
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def password_auth(env, password=None):
    return {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": env["OS_USERNAME"],
            "domain": {"name": env["OS_USER_DOMAIN_NAME"]},
            "password": password or env["OS_PASSWORD"]}}},
        "scope": {"project": {
            "name": env["OS_PROJECT_NAME"],
            "domain": {"name": env["OS_PROJECT_DOMAIN_NAME"]}}}}}


def token_of(env, auth):
    st, h, body = call("POST", env["OS_AUTH_URL"] + "/auth/tokens", body=auth)
    assert st == 201, body
    return h["X-Subject-Token"], json.loads(body)["token"]


def storage_url(token_body):
    """The public object-store URL of the catalog in RegionOne.  (The
    templated catalog names the region in "region" only: no "region_id",
    no endpoint "id", unlike the SQL catalog.)"""
    for svc in token_body["catalog"]:
        if svc["type"] == "object-store":
            for ep in svc["endpoints"]:
                region = ep.get("region_id") or ep.get("region")
                if ep["interface"] == "public" and region == "RegionOne":
                    return ep["url"]
    pytest.fail("no public object-store endpoint in the catalog: %r"
                % token_body["catalog"])


def put_get_roundtrip(token, url):
    container = "c-" + uuid.uuid4().hex[:8]
    st, _, body = call("PUT", "%s/%s" % (url, container), token=token,
                       body=b"")
    assert st in (201, 202), body
    data = os.urandom(100000)
    st, h, body = call("PUT", "%s/%s/obj" % (url, container), token=token,
                       body=data)
    assert st == 201, body
    assert h["Etag"] == hashlib.md5(data).hexdigest()
    st, _, got = call("GET", "%s/%s/obj" % (url, container), token=token)
    assert (st, got) == (200, data)
    st, _, listing = call("GET", "%s/%s?format=json" % (url, container),
                          token=token)
    assert st == 200
    assert [o["name"] for o in json.loads(listing)] == ["obj"]
    st, _, _ = call("DELETE", "%s/%s/obj" % (url, container), token=token)
    assert st == 204
    st, _, _ = call("DELETE", "%s/%s" % (url, container), token=token)
    assert st == 204


def test_env_names_everything(servers):
    for k in ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD",
              "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
              "OS_PROJECT_DOMAIN_NAME", "BACKUPFS_KEYSTONE_APPCRED_ID_FILE",
              "BACKUPFS_KEYSTONE_APPCRED_SECRET_FILE",
              "BACKUPFS_KEYSTONE_TOKEN_EXPIRATION"):
        assert servers.get(k), k
    assert servers["OS_AUTH_URL"] == KS
    assert servers["OS_IDENTITY_API_VERSION"] == "3"
    assert servers["OS_REGION_NAME"] == "RegionOne"


def test_password_token_catalog_points_at_8081(servers):
    token, body = token_of(servers, password_auth(servers))
    assert body["project"]["name"] == "test"
    assert body["user"]["name"] == "tester"
    assert "member" in [r["name"] for r in body["roles"]]
    assert storage_url(body) == "%s/v1/AUTH_%s" % (PROXY,
                                                   body["project"]["id"])


def test_password_token_put_and_get(servers):
    token, body = token_of(servers, password_auth(servers))
    put_get_roundtrip(token, storage_url(body))


def test_wrong_password_is_401(servers):
    st, _, _ = call("POST", KS + "/auth/tokens",
                    body=password_auth(servers, password="not-testing"))
    assert st == 401


def test_bogus_token_is_401_on_8081(servers):
    _, body = token_of(servers, password_auth(servers))
    st, h, _ = call("HEAD", storage_url(body), token="gAAAAAbogus")
    assert st == 401
    st, _, _ = call("GET", storage_url(body))     # no token at all
    assert st == 401


def test_application_credential_token(servers):
    paths = [servers["BACKUPFS_KEYSTONE_APPCRED_ID_FILE"],
             servers["BACKUPFS_KEYSTONE_APPCRED_SECRET_FILE"]]
    for p in paths:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    cred_id, secret = (Path(p).read_text().strip() for p in paths)
    token, body = token_of(servers, {"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cred_id, "secret": secret}}}})
    assert body["project"]["name"] == "test"
    assert body["application_credential"]["id"] == cred_id
    put_get_roundtrip(token, storage_url(body))
    # a wrong secret is refused
    st, _, _ = call("POST", KS + "/auth/tokens", body={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cred_id, "secret": "wrong"}}}})
    assert st == 401


def parse_ts(ts):
    # "2026-11-22T01:02:03.000000Z"
    return time.mktime(time.strptime(ts.split(".")[0].rstrip("Z"),
                                     "%Y-%m-%dT%H:%M:%S")) - time.timezone


@pytest.mark.bfs_timeout(600)
def test_token_expires_and_a_new_one_works(servers):
    ttl = int(servers["BACKUPFS_KEYSTONE_TOKEN_EXPIRATION"])
    token, body = token_of(servers, password_auth(servers))
    lifetime = parse_ts(body["expires_at"]) - parse_ts(body["issued_at"])
    assert abs(lifetime - ttl) <= 1, (body["issued_at"], body["expires_at"])
    url = storage_url(body)
    t0 = time.monotonic()
    st, _, _ = call("HEAD", url, token=token)
    assert st in (200, 204)
    # Valid until expires_at, refused after it; wait for that, bounded.
    deadline = t0 + ttl + 60
    while True:
        st, _, _ = call("HEAD", url, token=token)
        if st == 401:
            break
        assert st in (200, 204)
        assert time.monotonic() < deadline, \
            "token still accepted %d s after it was issued (lifetime %d s)" \
            % (time.monotonic() - t0, ttl)
        time.sleep(1)
    elapsed = time.monotonic() - t0
    assert elapsed >= ttl - 2, "token refused after %.1f s of %d" % (
        elapsed, ttl)
    # Keystone says the same
    st, _, _ = call("GET", KS + "/auth/tokens", token=token,
                    headers={"X-Subject-Token": token})
    assert st in (401, 404)
    # and a new token works at once
    token2, body2 = token_of(servers, password_auth(servers))
    st, _, _ = call("HEAD", storage_url(body2), token=token2)
    assert st in (200, 204)
