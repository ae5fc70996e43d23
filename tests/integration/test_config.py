# SPDX-License-Identifier: Apache-2.0
"""A bad config makes `backupfs -o config=F MNT` exit non-zero before
mounting, with a message on stderr naming the file (and the line and
column, or the key) and what is wrong; nothing gets mounted."""

import json
import os
import re

import pytest


@pytest.fixture
def good(env):
    """An initialized repository and a valid config with instance vol1."""
    env.add_instance("vol1", tree="sample")
    env.init()
    return env


def start_bad(util, env, cfg):
    return util.mount_refused(env, cfg)


def without(msg, *paths):
    """msg with the given paths removed (they contain the test's name,
    which may contain the word a test looks for)."""
    for p in paths:
        msg = msg.replace(str(p), "<FILE>")
    return msg


def write_bad(env, conf, name="bad.json"):
    path = env.base / name
    path.write_text(json.dumps(conf, indent=1) + "\n")
    return path


def test_help_mentions_config_option(util):
    r = util.run([util.BACKUPFS, "--help"], timeout=30)
    assert "config=" in r.stdout + r.stderr, r.describe()


def test_valid_config_with_cache_size_mounts(good):
    good.extra["cache_size"] = "64M"
    good.write_config()
    m = good.mount()
    assert "vol1" in os.listdir(m.path / "instances")


def test_no_config_option_fails(util, env):
    mnt = env.base / "badmnt"
    mnt.mkdir()
    r = util.run([util.BACKUPFS, mnt], timeout=60)
    if util.in_mount_table(mnt):
        util.run([util.FUSERMOUNT, "-z", "-u", mnt], timeout=30)
        pytest.fail("mounted without a config:\n" + r.describe())
    assert r.returncode != 0, r.describe()


def test_missing_config_file(util, good):
    cfg = good.base / "does-not-exist.json"
    msg = start_bad(util, good, cfg)
    assert str(cfg) in msg


def test_empty_config_file(util, good):
    cfg = good.base / "empty.json"
    cfg.write_text("")
    msg = start_bad(util, good, cfg)
    assert str(cfg) in msg


def test_config_not_an_object(util, good):
    cfg = good.base / "list.json"
    cfg.write_text("[1, 2, 3]\n")
    msg = start_bad(util, good, cfg)
    assert str(cfg) in msg


def test_syntax_error_names_file_line_and_column(util, good):
    # line 5 lacks the comma that line 4 needs
    text = ("{\n"
            ' "backend": %s,\n'
            ' "key_file": %s,\n'
            ' "state_dir": %s\n'
            ' "instances": {}\n'
            "}\n") % (json.dumps(good.backend_config()),
                      json.dumps(str(good.key)), json.dumps(str(good.state)))
    cfg = good.base / "syntax.json"
    cfg.write_text(text)
    msg = start_bad(util, good, cfg)
    assert str(cfg) in msg
    rest = without(msg, cfg, good.repo, good.key, good.state)
    assert re.search(r"line\D{0,3}5\b|:5:\d+", rest, re.I), \
        "no line 5 in: " + msg
    assert re.search(r"col(umn)?\D{0,3}\d+|:5:\d+", rest, re.I), \
        "no column in: " + msg


@pytest.mark.parametrize("where,key", [
    ("top", "bogus_key"),
    ("backend", "bogus_option"),
    ("instance", "colour"),
])
def test_unknown_key_is_named(util, good, where, key):
    conf = good.config()
    if where == "top":
        conf[key] = 1
    elif where == "backend":
        conf["backend"][key] = 1
    else:
        conf["instances"] = {"vol1": dict(good.instances["vol1"], **{key: 1})}
    cfg = write_bad(good, conf)
    msg = start_bad(util, good, cfg)
    assert str(cfg) in msg
    assert key in without(msg, cfg), msg


# "backend.where": the key that says where the repository is
WHERE = {"local": "path", "swift": "container"}


@pytest.mark.parametrize("field", [
    "backend", "key_file", "state_dir", "backend.type", "backend.where",
    "instance.datastore", "instance.path",
])
def test_missing_field_is_named(util, good, field):
    field = field.replace(".where", "." + WHERE[good.kind])
    conf = good.config()
    conf["instances"] = {"vol1": dict(good.instances["vol1"])}
    if field.startswith("backend."):
        del conf["backend"][field.split(".")[1]]
    elif field.startswith("instance."):
        del conf["instances"]["vol1"][field.split(".")[1]]
    else:
        del conf[field]
    cfg = write_bad(good, conf)
    msg = start_bad(util, good, cfg)
    assert str(cfg) in msg
    assert field.split(".")[-1] in without(msg, cfg), msg


@pytest.mark.parametrize("where,key,value", [
    ("instance", "datastore", "nosuchdb"),
    ("instance", "snapshot", "sometimes"),
    ("backend", "type", "ftp"),
    ("top", "cache_size", "lots"),
    ("top", "instances", ["vol1"]),
])
def test_bad_value_is_named(util, good, where, key, value):
    conf = good.config()
    if where == "instance":
        conf["instances"] = {"vol1": dict(good.instances["vol1"],
                                          **{key: value})}
    elif where == "backend":
        conf["backend"][key] = value
    else:
        conf[key] = value
    cfg = write_bad(good, conf)
    msg = without(start_bad(util, good, cfg), cfg)
    assert key in msg or str(value) in msg, msg


def test_missing_key_file(util, good):
    key = good.base / "no-such.key"
    cfg = write_bad(good, good.config(key_file=str(key)))
    msg = start_bad(util, good, cfg)
    assert str(key) in msg


def test_key_file_is_a_directory(util, good):
    key = good.base / "keydir"
    key.mkdir(mode=0o700)
    cfg = write_bad(good, good.config(key_file=str(key)))
    msg = start_bad(util, good, cfg)
    assert str(key) in msg


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_mode_not_0600(util, good, mode):
    os.chmod(good.key, mode)
    msg = start_bad(util, good, good.cfg)
    assert str(good.key) in msg


def test_wrong_key(util, good, tmp_path):
    other = util.Env(tmp_path / "other")
    other.init()
    cfg = write_bad(good, good.config(key_file=str(other.key)))
    msg = start_bad(util, good, cfg)
    assert "key" in without(msg, cfg, other.key).lower(), msg


def test_garbage_key_file(util, good):
    key = good.base / "garbage.key"
    key.write_bytes(b"not a key\n")
    os.chmod(key, 0o600)
    cfg = write_bad(good, good.config(key_file=str(key)))
    msg = start_bad(util, good, cfg)
    assert str(key) in msg


def test_key_error_leaves_key_file_alone(util, good):
    before = good.key.read_bytes()
    os.chmod(good.key, 0o644)
    start_bad(util, good, good.cfg)
    assert good.key.read_bytes() == before
