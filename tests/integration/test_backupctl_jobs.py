# SPDX-License-Identifier: Apache-2.0
"""backupctl status and restore (through --mount and in-process), each
command's --help, the documented exit codes and the progress display."""

import json
import os
import pty
import re
import shutil
import subprocess

import pytest

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


def ctl_commands(util):
    """The commands `backupctl --help` lists."""
    r = util.run([util.BACKUPCTL, "--help"], timeout=30)
    assert r.returncode == 0, r.describe()
    text = r.stdout.split("commands:", 1)[1].split("options:", 1)[0]
    return sorted({m.group(1) for m in
                   re.finditer(r"^  ([a-z][a-z-]+)", text, re.M)})


def test_help_lists_status_and_restore(util):
    cmds = ctl_commands(util)
    assert "status" in cmds and "restore" in cmds, cmds


def test_help_documents_exit_codes(util):
    out = util.run([util.BACKUPCTL, "--help"], timeout=30).stdout
    tail = out.split("exit status:", 1)[1]
    for code, word in ((0, "success"), (1, "failure"), (2, "usage"),
                       (3, "busy")):
        assert re.search(r"\b%d %s" % (code, word), tail), out


def test_every_command_has_help(util):
    for cmd in ctl_commands(util):
        # no --config: help needs none
        r = util.run([util.BACKUPCTL, cmd, "--help"], timeout=30)
        assert r.returncode == 0, r.describe()
        assert r.stdout.startswith("usage: backupctl"), r.describe()
        assert " %s" % cmd in r.stdout.splitlines()[0] + \
            r.stdout.splitlines()[1], r.describe()


def test_restore_help_names_its_options(util):
    r = util.run([util.BACKUPCTL, "restore", "-h"], timeout=30)
    assert r.returncode == 0, r.describe()
    for opt in ("--file", "--to", "--wait", "3"):
        assert opt in r.stdout, r.stdout


@pytest.fixture
def backed_up(util, env):
    """vol1 (sample tree) and an empty vol2, one backup of vol1 made
    in-process; returns (env, timestamp)."""
    env.add_instance("vol1", tree="sample")
    env.add_instance("vol2")
    env.init()
    env.snapshot("vol1", label="first")
    r = env.ctl("list", "vol1")
    ts = r.stdout.split()[0]
    assert util.TS_RE.match(ts), r.stdout
    return env, ts


# --- status


def test_status_mount_json_one_instance(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    r = env.ctl("--mount", m.path, "status", "vol1", "--json")
    st = json.loads(r.stdout)
    assert st["instance"] == "vol1" and st["state"] == "ACTIVE", st
    assert st["datastore"] == "files" and st["job"] is None, st
    assert st == util.status(m.inst()), st


def test_status_mount_all_instances(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    r = env.ctl("--mount", m.path, "--json", "status")
    ids = [st["instance"] for st in json.loads(r.stdout)]
    assert ids == ["vol1", "vol2"], r.stdout
    r = env.ctl("--mount", m.path, "status")
    assert re.search(r"^vol1: ACTIVE \(files\)", r.stdout, re.M), r.stdout
    assert re.search(r"^vol2: ACTIVE \(files\)", r.stdout, re.M), r.stdout


def test_status_offline_from_repository_and_state(util, backed_up):
    env, ts = backed_up
    st = json.loads(env.ctl("status", "vol1", "--json").stdout)
    assert st["instance"] == "vol1" and st["state"] is None, st
    assert st["backups"] == 1 and st["latest"] == ts, st
    assert st["datastore"] == "files", st
    assert st["last"]["backup"]["state"] == "completed", st
    assert st["last"]["backup"]["backup"] == ts, st
    assert st["journal"] is None, st
    text = env.ctl("status").stdout
    assert re.search(r"^vol1: not mounted \(files\), 1 backups, latest %s"
                     % re.escape(ts), text, re.M), text


def test_status_offline_while_mounted(util, backed_up):
    # reads the repository and state files only: works beside a mount
    env, ts = backed_up
    env.mount()
    st = json.loads(env.ctl("status", "vol1", "--json").stdout)
    assert st["latest"] == ts, st


def test_status_unknown_instance_fails(util, backed_up):
    env, ts = backed_up
    r = env.ctl("status", "nosuch", check=False)
    assert r.returncode == EXIT_FAIL and "nosuch" in r.stderr, r.describe()
    m = env.mount()
    r = env.ctl("--mount", m.path, "status", "nosuch", check=False)
    assert r.returncode == EXIT_FAIL and "nosuch" in r.stderr, r.describe()


def test_status_usage_error(util, backed_up):
    env, ts = backed_up
    r = env.ctl("status", "vol1", "vol2", check=False)
    assert r.returncode == EXIT_USAGE, r.describe()


# --- restore


def test_restore_through_mount(util, backed_up):
    env, ts = backed_up
    want = util.tree_of_dir(env.src("vol1"))
    (env.src("vol1") / "README.txt").write_text("changed\n")
    m = env.mount()
    r = env.ctl("--mount", m.path, "restore", "vol1", ts, "--wait")
    assert "restored instance vol1 from %s" % ts in r.stdout, r.describe()
    util.assert_same_tree(util.tree_of_dir(env.src("vol1")), want)
    last = util.status(m.inst())["last"]["restore"]
    assert last["state"] == "completed" and last["name"] == ts, last
    # not a terminal: plain progress lines, no bar redrawn in place
    assert re.search(r"^spooling: 100%", r.stderr, re.M), r.stderr
    assert "\r" not in r.stderr, r.stderr


def test_restore_to_other_instance(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    env.ctl("--mount", m.path, "restore", "vol1", ts, "--to", "vol2")
    util.assert_same_tree(util.tree_of_dir(env.src("vol2")),
                          util.tree_of_dir(env.src("vol1")))
    assert util.status(m.inst("vol2"))["last"]["restore"]["state"] == \
        "completed"


def test_restore_file_through_mount(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    copy = env.base / "copy.tar"
    shutil.copyfile(m.backup(ts), copy)
    r = env.ctl("--mount", m.path, "--json", "restore", "vol2", "--file",
                copy)
    assert json.loads(r.stdout)["result"] == "completed", r.stdout
    util.assert_same_tree(util.tree_of_dir(env.src("vol2")),
                          util.tree_of_dir(env.src("vol1")))


@pytest.mark.log_errors()
def test_restore_corrupt_file_fails_with_reason(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    before = util.tree_of_dir(env.src("vol1"))
    bad = env.base / "corrupt.tar"
    data = bytearray(util.read_file(m.backup(ts)))
    data[:512] = os.urandom(512)    # the first tar header is garbage
    bad.write_bytes(bytes(data))
    r = env.ctl("--mount", m.path, "restore", "vol1", "--file", bad,
                check=False)
    assert r.returncode == EXIT_FAIL, r.describe()
    reason = util.status(m.inst())["last"]["restore"]["error"]
    assert reason and reason in r.stderr, (reason, r.describe())
    assert "corrupt.tar" in r.stderr, r.describe()
    util.assert_same_tree(util.tree_of_dir(env.src("vol1")), before)


@pytest.mark.log_errors()
def test_restore_busy_exit_code(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    # a restore being spooled holds the instance: another is EBUSY
    held = open(m.inst() / "restore" / "held", "wb")
    try:
        r = env.ctl("--mount", m.path, "restore", "vol1", ts, check=False)
        assert r.returncode == EXIT_BUSY, r.describe()
        assert "busy" in r.stderr, r.describe()
    finally:
        try:
            held.close()    # an empty restore: refused, nothing changes
        except OSError:
            pass


def test_restore_in_process(util, backed_up):
    env, ts = backed_up
    want = util.tree_of_dir(env.src("vol1"))
    (env.src("vol1") / "README.txt").write_text("changed\n")
    r = env.ctl("restore", "vol1", ts)
    assert "restored instance vol1" in r.stdout, r.describe()
    util.assert_same_tree(util.tree_of_dir(env.src("vol1")), want)
    st = json.loads(env.ctl("status", "vol1", "--json").stdout)
    assert st["last"]["restore"]["state"] == "completed", st


@pytest.mark.parametrize("args", [
    ["restore"],
    ["restore", "vol1"],
    ["restore", "vol1", "TS", "--file", "/etc/hostname"],
    ["restore", "vol1", "TS", "extra"],
    ["restore", "vol1", "--bogus"],
])
def test_restore_usage_errors(util, backed_up, args):
    env, ts = backed_up
    r = env.ctl(*args, check=False)
    assert r.returncode == EXIT_USAGE, r.describe()
    assert "usage:" in r.stderr, r.describe()


def test_restore_missing_backup_fails(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    r = env.ctl("--mount", m.path, "restore", "vol1",
                "2001-01-01T00:00:00Z", check=False)
    assert r.returncode == EXIT_FAIL, r.describe()
    assert "2001-01-01T00:00:00Z" in r.stderr, r.describe()


def test_restore_progress_bar_on_terminal(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    master, slave = pty.openpty()
    try:
        p = subprocess.run(
            [util.BACKUPCTL, "--config", env.cfg, "--mount", m.path,
             "restore", "vol1", ts], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0, (p.stdout, out)
    text = out.decode("utf-8", "replace")
    assert "\r" in text and "[###" in text and "100.0%" in text, text


# --- list and delete through the mount


def test_list_through_mount_matches_repository(util, backed_up):
    env, ts = backed_up
    env.snapshot("vol1", label="second")
    m = env.mount()
    r = env.ctl("--mount", m.path, "list")
    assert r.stdout.split() == ["vol1", "vol2"], r.stdout
    via_mount = env.ctl("--mount", m.path, "list", "vol1").stdout
    direct = env.ctl("list", "vol1").stdout
    assert via_mount.split() == direct.split() and len(
        via_mount.splitlines()) == 2, (via_mount, direct)
    mine = json.loads(env.ctl("--mount", m.path, "--json", "list",
                              "vol1").stdout)
    repo = json.loads(env.ctl("--json", "list", "vol1").stdout)
    keys = ("timestamp", "id", "label", "size", "sha256", "datastore",
            "format")
    assert [[b[k] for k in keys] for b in mine] == \
        [[b[k] for k in keys] for b in repo], (mine, repo)
    assert [b["label"] for b in mine] == ["first", "second"], mine


def test_delete_through_mount_is_an_event(util, backed_up):
    env, ts = backed_up
    m = env.mount()
    r = env.ctl("--mount", m.path, "delete", "vol1", ts)
    assert ts in r.stdout, r.describe()
    assert ts not in m.backups("vol1")
    assert env.ctl("list", "vol1").stdout == ""
    ends = [e for e in util.read_events(m.inst("vol1"))
            if e["event"] == "backup.delete.end"]
    assert [e["backup"] for e in ends] == [ts], ends
    r = env.ctl("--mount", m.path, "delete", "vol1", ts, check=False)
    assert r.returncode == 1 and "No such file" in r.stderr, r.describe()
