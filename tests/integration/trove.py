# SPDX-License-Identifier: Apache-2.0
"""Trove's legacy backups made as Trove made them, for the tests of
backupctl import-trove and of reading imported backups through the mount
(test_trove_import.py, test_trove_read.py).

The data goes through `gzip`, then for .enc through `openssl enc
-aes-256-cbc -salt` with each key derivation Trove's images used (-md md5:
OpenSSL < 1.1; -md sha256: OpenSSL >= 1.1; -md sha512 -pbkdf2 -iter 10000:
the 2020 images), and is stored as Trove stored it: a single object, a DLO
(segments <id>_00000000... and a zero-byte manifest with
X-Object-Manifest, Trove until 2015) or an SLO (?multipart-manifest=put,
since), with small segments so every large object spans several."""

import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

# Trove's backup_aes_cbc_key for these tests: distinctive, so a leak is
# found by searching for it.
KEY = "trove-key-" + os.urandom(12).hex()
SEG = 16 * 1024  # bytes per large-object segment (Swift takes >= 1)

# kind: (object name suffix, openssl -md options or None, kdf recorded)
KINDS = {
    "md5": (".gz.enc", ["-md", "md5"], "bytestokey-md5"),
    "sha256": (".xbstream.gz.enc", ["-md", "sha256"], "bytestokey-sha256"),
    "pbkdf2": (".gz.enc", ["-md", "sha512", "-pbkdf2", "-iter", "10000"],
               "pbkdf2-sha512"),
    "gz": (".gz", None, "none"),
    "xbstream": (".xbstream.gz", None, "none"),
    "tar": (".tar.gz", None, "none"),
}
LAYOUTS = ("single", "dlo", "slo")
PAYLOAD = {"md5": "raw", "sha256": "xbstream", "pbkdf2": "raw", "gz": "raw",
           "xbstream": "xbstream", "tar": "tar"}


# ---------------------------------------------------------------------------
# Trove's pipeline


def _sh(args, data, env=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(args, input=data, capture_output=True, env=e,
                       timeout=120)
    assert r.returncode == 0, "%s: %s" % (args, r.stderr.decode())
    return r.stdout


def gzip(data):
    return _sh(["gzip", "-c"], data)


def openssl_enc(data, md_opts, key=KEY):
    # Trove ran `-pass pass:KEY`; env: keeps the key off our argv.
    return _sh(["openssl", "enc", "-aes-256-cbc", "-salt", *md_opts,
                "-pass", "env:TROVE_TEST_KEY"], data,
               {"TROVE_TEST_KEY": key})


def plaintext(kind, seed, size=None):
    """What the datastore streamed: text with some incompressible bytes;
    a real tar for .tar.gz; an xbstream-looking stream for xbstream."""
    rng = random.Random(seed)
    size = size or 90 * 1024 + rng.randrange(30000)
    text = b"".join(b"%08d %s\n" % (i, rng.choice([b"INSERT INTO t",
                                                     b"VALUES (1, 'a')",
                                                     b"trove backup"]))
                    for i in range(size // 40))
    data = text + rng.randbytes(size // 3)
    if kind in ("sha256", "xbstream"):
        data = b"XBSTCK01" + data
    if kind == "tar":
        return tar_of({"data/base/1": data, "PG_VERSION": b"15\n"})
    return data


def tar_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def trove_object(kind, plain, key=KEY):
    """The bytes Trove stored for plain: gzip (two members for "gz", as a
    concatenation gzip -d reads whole), then openssl for .enc."""
    if kind == "gz":
        half = len(plain) // 2
        z = gzip(plain[:half]) + gzip(plain[half:])
    else:
        z = gzip(plain)
    md = KINDS[kind][1]
    return openssl_enc(z, md, key) if md else z


# ---------------------------------------------------------------------------
# The legacy container


class Legacy:
    """A fresh container of the repository's account holding Trove-made
    objects; deleted at the end of the module."""

    def __init__(self, account):
        self.swift = account
        self.container = "bfs-trove-" + os.urandom(8).hex()
        st, _, _ = self.swift.request("PUT", self.container)
        assert st in (201, 202), st

    def location(self, name):
        return "%s/%s/%s" % (self.swift.url, self.container, name)

    def _put(self, name, data, headers=None):
        st, _, _ = self.swift.request("PUT", self.container + "/" + name,
                                      data=data, headers=headers)
        assert st == 201, (name, st)

    def put(self, name, data, headers=None):
        self._put(name, data, headers)
        self.wait_listed(name, [name])

    def wait_listed(self, prefix, names):
        """Swift may list an object a moment after its PUT (a busy
        container server): the import finds objects, and Swift a DLO's
        segments, by listing."""
        deadline = time.monotonic() + 60
        while True:
            have = {n for n, _ in self.swift.listing(self.container, prefix)}
            if set(names) <= have:
                return
            assert time.monotonic() < deadline, \
                "not listed after 60 s: %s" % sorted(set(names) - have)
            time.sleep(0.2)

    def delete(self, name):
        self.swift.delete(self.container, name)

    def upload(self, bid, suffix, data, layout):
        """Store data as Trove stored <bid><suffix>; returns the name."""
        name = bid + suffix
        if layout == "single":
            self.put(name, data)
            return name
        segs = [data[i:i + SEG] for i in range(0, len(data), SEG)] or [b""]
        assert len(segs) >= 2, "too small for segments: %d" % len(data)
        listing, names = [], [name]
        for n, seg in enumerate(segs):
            sname = "%s_%08d" % (bid, n)
            self._put(sname, seg)
            names.append(sname)
            listing.append({"path": "/%s/%s" % (self.container, sname),
                            "etag": hashlib.md5(seg).hexdigest(),
                            "size_bytes": len(seg)})
        if layout == "dlo":
            self._put(name, b"", {"X-Object-Manifest": "%s/%s_"
                                  % (self.container, bid)})
        else:
            st, _, body = self.swift.request(
                "PUT", self.container + "/" + name,
                data=json.dumps(listing).encode(),
                query={"multipart-manifest": "put"})
            assert st == 201, (st, body)
        self.wait_listed(bid, names)
        return name

    def wait_unlisted(self, name):
        deadline = time.monotonic() + 60
        while name in dict(self.swift.listing(self.container, name)):
            assert time.monotonic() < deadline, "still listed: " + name
            time.sleep(0.2)

    def etag(self, name):
        st, h, _ = self.swift.request("HEAD", self.container + "/" + name)
        assert st == 200, st
        return h["ETag"].strip('"')

    def drop(self):
        self.swift.empty_and_delete(self.container)


class Backup:
    """One Trove backup: its entry in the list, and what it holds."""

    def __init__(self, kind, layout, plain, instance, created, name=None,
                 bid=None, parent=None):
        self.kind = kind
        self.layout = layout
        self.plain = plain
        self.id = bid or str(uuid.uuid4())
        self.instance = instance
        self.created = created
        self.name = name or "nightly"
        self.parent = parent
        self.object = None

    @property
    def ts(self):
        t = self.created.replace(" ", "T")
        return t[:19] + "Z"

    def api(self, legacy, **over):
        """The Trove API's view (GET /v1.0/{project}/backups)."""
        e = {"id": self.id, "name": self.name, "description": None,
             "locationRef": legacy.location(self.object),
             "instance_id": self.instance, "created": self.created,
             "updated": self.created, "size": 0.01,
             "status": "COMPLETED", "parent_id": self.parent,
             "project_id": "abc",
             "datastore": {"type": "mysql", "version": "5.7",
                           "version_id": str(uuid.uuid4())}}
        e.update(over)
        return e


def store(legacy, b, key=KEY):
    """Upload b's object as Trove would have; returns b."""
    data = trove_object(b.kind, b.plain, key)
    b.object = legacy.upload(b.id, KINDS[b.kind][0], data, b.layout)
    b.stored = data
    return b


def new_backup(legacy, kind="gz", layout="single", instance=None,
               created="2015-03-01T04:00:00", seed=1, **kw):
    b = Backup(kind, layout, plaintext(kind, seed), instance
               or str(uuid.uuid4()), created, **kw)
    return store(legacy, b)


def write_list(path, doc):
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")
    return path


def api_list(env, legacy, backups, name="list.json", **over):
    return write_list(env.base / name,
                      {"backups": [b.api(legacy, **over) for b in backups]})


def key_file(env, key=KEY, name="trove.key"):
    return env.secret_file(name, key)


def run_import(env, legacy, listfile, key=None, json_out=False,
               container=None):
    args = ["import-trove", "--container", container or legacy.container,
            "--from", listfile]
    if key:
        args += ["--key-file", key]
    if json_out:
        args.append("--json")
    r = env.ctl(*args, check=False)
    print(r.describe())  # in the report of a failing test
    return r


def lines_of(r):
    return r.stdout.splitlines()


def listed(env, instance):
    r = env.ctl("--json", "list", instance)
    return {e["timestamp"]: e for e in json.loads(r.stdout)}


def assert_imported(env, b):
    got = listed(env, b.instance)
    assert b.ts in got, "%s not in %s" % (b.ts, sorted(got))
    e = got[b.ts]
    assert e["size"] == len(b.plain)
    assert e["sha256"] == hashlib.sha256(b.plain).hexdigest()
    assert e["format"] == "trove"
    assert e["id"] == b.id.replace("-", "")
    return e
