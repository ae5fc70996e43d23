# SPDX-License-Identifier: Apache-2.0
"""Mounting on Swift: what the operator sees at mount time.

  - wrong credentials, or Swift not answering: backupfs exits non-zero
    before daemonizing, with a message that says what failed;
  - the credentials from the environment (ST_AUTH, ST_USER, ST_KEY), as for
    the `swift` CLI, when the config leaves them out;
  - TLS: verified by default.  A faultproxy speaking HTTPS (a certificate
    of a CA made here, for 127.0.0.1) sits in front of Swift: without the
    CA the mount is refused; with "cacert" in the config, or OS_CACERT in
    the environment (as for the `openstack` CLI), it mounts and reads; a
    certificate for another host is refused even with the CA.

Swift only (@pytest.mark.backends("swift")): authentication and TLS are
the object store's; a local repository has neither."""

import re
import socket

import pytest

from faultproxy import FaultProxy

pytestmark = pytest.mark.backends("swift")


def openssl(util, *args):
    r = util.run(["openssl"] + list(args), timeout=60)
    assert r.returncode == 0, r.describe()


@pytest.fixture(scope="module")
def pki(util, tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and one for another host
    name, both signed by the CA: {name: path}."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    openssl(util, "req", "-x509", *ec, "-keyout", d / "ca.key", "-out",
            d / "ca.pem", "-days", "2", "-subj", "/CN=backupfs test CA")
    for name, san in (("good", "IP:127.0.0.1"),
                      ("wrong", "DNS:swift.invalid")):
        openssl(util, "req", *ec, "-keyout", d / (name + ".key"), "-out",
                d / (name + ".csr"), "-subj", "/CN=" + san.split(":")[1])
        ext = d / (name + ".ext")
        ext.write_text("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % san)
        openssl(util, "x509", "-req", "-in", d / (name + ".csr"), "-CA",
                d / "ca.pem", "-CAkey", d / "ca.key", "-CAcreateserial",
                "-out", d / (name + ".pem"), "-days", "2", "-extfile", ext)
    return {"ca": d / "ca.pem",
            "good": (d / "good.pem", d / "good.key"),
            "wrong": (d / "wrong.pem", d / "wrong.key")}


def https_proxy(pki, which):
    fp = FaultProxy("http://127.0.0.1:8080", tls=pki[which])
    fp.start()
    return fp


@pytest.fixture
def tls_proxy(pki, swift_server):
    """HTTPS in front of Swift, with the certificate for 127.0.0.1."""
    fp = https_proxy(pki, "good")
    yield fp
    fp.stop()


@pytest.fixture
def wrong_host_proxy(pki, swift_server):
    """HTTPS in front of Swift, with a certificate for another host."""
    fp = https_proxy(pki, "wrong")
    yield fp
    fp.stop()


@pytest.fixture
def vol1_backup(util, env):
    """vol1 (sample tree) with one backup, on plain HTTP Swift."""
    env.add_instance("vol1", tree="sample", snapshot="none")
    env.init()
    env.snapshot("vol1")
    return env


def read_back(util, env, m):
    p = m.backup(m.backups()[0])
    data = util.read_file(p)
    assert util.sha256(data) == util.xattr(p, "sha256")
    util.assert_same_tree(util.tree_of_tar(data),
                          util.tree_of_dir(env.src()), "backup vs source")


# ---------------------------------------------------------------------------
# Refused at mount time, before daemonizing


def test_wrong_key_refused_at_mount(util, vol1_backup):
    env = vol1_backup
    env.swift_auth["key_file"] = str(env.secret_file("wrong.key", "nope"))
    msg = util.mount_refused(env, env.write_config(),
                             what="a wrong Swift key")
    assert env.swift_auth["auth_url"] in msg, msg
    assert re.search(r"\b401\b|unauthori[sz]ed|refused", msg, re.I), msg


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_swift_not_answering_refused_at_mount(util, vol1_backup):
    env = vol1_backup
    url = "http://127.0.0.1:%d/auth/v1.0" % free_port()
    env.swift_auth["auth_url"] = url
    env.backend_extra.update(deadline=3, timeout=2)
    msg = util.mount_refused(env, env.write_config(),
                             what="an auth URL nobody answers")
    assert url in msg, msg
    assert re.search(r"connect", msg, re.I), msg


# ---------------------------------------------------------------------------
# Credentials from the environment


def test_credentials_from_environment(util, vol1_backup, monkeypatch):
    env = vol1_backup
    srv = env.backend.swift
    for k in ("auth_url", "user", "key_file"):
        del env.swift_auth[k]
    monkeypatch.setenv("ST_AUTH", srv.auth_url)
    monkeypatch.setenv("ST_USER", srv.user)
    monkeypatch.setenv("ST_KEY", srv.key)
    env.write_config()
    m = env.mount()
    read_back(util, env, m)


# ---------------------------------------------------------------------------
# TLS


def test_tls_unknown_ca_refused(util, vol1_backup, tls_proxy):
    env = vol1_backup
    env.swift_auth["auth_url"] = tls_proxy.url + "/auth/v1.0"
    msg = util.mount_refused(env, env.write_config(),
                             what="a certificate of an unknown CA")
    assert re.search(r"certificate", msg, re.I), msg
    assert tls_proxy.count() == 0, "a request got through unverified TLS"


def test_tls_with_cacert(util, vol1_backup, tls_proxy):
    env = vol1_backup
    env.swift_auth["auth_url"] = tls_proxy.url + "/auth/v1.0"
    env.backend_extra["cacert"] = str(tls_proxy.tls[0].parent / "ca.pem")
    env.write_config()
    m = env.mount()
    read_back(util, env, m)
    ts, _ = util.snapshot_via_mount(m.inst(), "over-tls")
    assert ts in m.backups()
    assert tls_proxy.count(path=r"/%s/chunks/" % env.container) > 0, \
        "the chunks did not go through the HTTPS proxy"


def test_tls_with_os_cacert(util, vol1_backup, tls_proxy, monkeypatch):
    env = vol1_backup
    env.swift_auth["auth_url"] = tls_proxy.url + "/auth/v1.0"
    monkeypatch.setenv("OS_CACERT", str(tls_proxy.tls[0].parent / "ca.pem"))
    env.write_config()
    m = env.mount()
    read_back(util, env, m)
    assert tls_proxy.count(path=r"/%s/chunks/" % env.container) > 0


def test_tls_wrong_host_refused(util, vol1_backup, wrong_host_proxy):
    env = vol1_backup
    fp = wrong_host_proxy
    env.swift_auth["auth_url"] = fp.url + "/auth/v1.0"
    env.backend_extra["cacert"] = str(fp.tls[0].parent / "ca.pem")
    msg = util.mount_refused(env, env.write_config(),
                             what="a certificate for another host")
    assert re.search(r"certificate|host ?name|SSL", msg, re.I), msg
    assert fp.count() == 0, "a request got through to the wrong host"


@pytest.mark.log_errors(r"^backupfs: warning: swift: TLS certificates are "
                        r"not verified")
def test_tls_insecure_says_so(util, vol1_backup, tls_proxy):
    """"insecure": true is the operator's explicit choice: it mounts
    without the CA, and the log says that nothing is verified."""
    env = vol1_backup
    env.swift_auth["auth_url"] = tls_proxy.url + "/auth/v1.0"
    env.backend_extra["insecure"] = True
    env.write_config()
    m = env.mount()
    read_back(util, env, m)
    assert re.search(r"not verified", m.log_text()), m.log_tail()
