# SPDX-License-Identifier: Apache-2.0
"""tools/pg-server.sh, tools/mariadb-server.sh and tools/couch-server.sh:
the database servers the driver tests run against, checked on their own.

The session fixtures pg_server, mariadb_server and couch_server
(conftest.py) start them with the scripts and fail, with the script's
output, if they cannot; they stop at the end only what was not running
before.  What is checked for each: it answers where `env` says; a start
while it runs changes nothing; the STOP argv of `env` stops it (nothing of
it is left running) and the START argv brings it back with the data
written before.  For PostgreSQL also a second cluster beside the first,
on a btrfs subvolume; for MariaDB also a start on a data directory that a
restore replaced with root's files."""

import os
import pwd
import shutil
import socket
import stat
import uuid
from pathlib import Path

import pytest


def procs_naming(text):
    """PIDs of live (not zombie) processes whose command line holds text."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if st != "Z" and text in cmd:
            out.append(int(d))
    return out


def port_open(port):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_argv(util, argv, what):
    """Run a START or STOP argv as a driver would; fail unless it exits 0."""
    assert isinstance(argv, list) and argv and \
        all(isinstance(a, str) for a in argv), argv
    r = util.run(argv, timeout=180)
    assert r.returncode == 0, "%s failed:\n%s" % (what, r.describe())
    return r


def name():
    return "t_" + uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------
# PostgreSQL


def test_pg_answers_where_env_says(pg_server):
    assert pg_server.sql("select 1") == "1"
    assert pg_server.port == 5433 or "BACKUPFS_PG_PORT" in os.environ
    assert pg_server.sql("show port") == str(pg_server.port)
    assert pg_server.sql("show listen_addresses") == "127.0.0.1"
    assert pg_server.sql("show data_directory") == pg_server.data
    assert pg_server.sql("show unix_socket_directories") == pg_server.host
    # Crash and snapshot tests need real flushes.
    assert pg_server.sql("show fsync") == "on"
    assert pg_server.user == "postgres" and pg_server.os_user == "postgres"
    assert port_open(pg_server.port)


def test_pg_start_while_running_changes_nothing(pg_server):
    pid = Path(pg_server.data, "postmaster.pid").read_text().split()[0]
    r = pg_server.script("start")
    assert r.returncode == 0, r.describe()
    assert "already running" in r.stdout
    assert Path(pg_server.data,
                "postmaster.pid").read_text().split()[0] == pid
    assert pg_server.script("status").returncode == 0


def test_pg_stop_start_argv_keeps_data(pg_server, util):
    t = name()
    pg_server.sql("create table %s (id int primary key, v text);"
                  "insert into %s values (1, 'kept')" % (t, t))
    postmaster = int(Path(pg_server.data,
                          "postmaster.pid").read_text().split()[0])
    try:
        run_argv(util, pg_server.stop_argv, "BACKUPFS_PG_STOP")
        assert not Path(pg_server.data, "postmaster.pid").exists()
        assert procs_naming(pg_server.data) == []
        assert postmaster not in procs_naming("postgres")
        assert not port_open(pg_server.port)
        assert pg_server.psql("select 1").returncode != 0
        assert pg_server.script("status").returncode != 0
    finally:
        run_argv(util, pg_server.start_argv, "BACKUPFS_PG_START")
    assert pg_server.sql("select v from %s where id = 1" % t) == "kept"
    assert pg_server.sql("show port") == str(pg_server.port)
    assert pg_server.sql("show listen_addresses") == "127.0.0.1"
    assert pg_server.script("status").returncode == 0
    pg_server.sql("drop table %s" % t)


@pytest.fixture
def pg_second(pg_server):
    """A second, fresh cluster beside pg_server: its own state directory
    and port, data directory on btrfs; stopped and removed at the end."""
    state = "/var/tmp/backupfs-pg-test-%d" % os.getpid()
    shutil.rmtree(state, ignore_errors=True)
    port = free_port()
    env = {"BACKUPFS_PG_DIR": state, "BACKUPFS_PG_PORT": str(port),
           "BACKUPFS_PG_BTRFS": "1"}
    srv = type(pg_server)(env)
    try:
        srv.start()
        yield srv
    finally:
        srv.script("stop", 180)
        if not os.path.ismount(Path(state, "btrfs")):
            shutil.rmtree(state, ignore_errors=True)


def test_pg_second_cluster_on_btrfs(pg_server, pg_second, util):
    two = pg_second
    assert two.port != pg_server.port
    assert two.data != pg_server.data and two.host != pg_server.host
    assert two.sql("show port") == str(two.port)
    assert two.sql("show data_directory") == two.data
    # The data directory (pg_wal in it) is a subvolume of its own.
    assert two.btrfs_mount and two.data.startswith(two.btrfs_mount + "/")
    r = util.run(["stat", "-f", "-c", "%T", two.data])
    assert r.stdout.strip() == "btrfs", r.describe()
    r = util.run(["btrfs", "subvolume", "show", two.data])
    assert r.returncode == 0, r.describe()
    assert Path(two.data, "pg_wal").is_dir() and \
        not Path(two.data, "pg_wal").is_symlink()
    assert os.stat(two.data).st_uid == \
        pwd.getpwnam("postgres").pw_uid
    assert stat.S_IMODE(os.stat(two.data).st_mode) == 0o700
    # Independent of the first cluster.
    t = name()
    two.sql("create table %s (i int); insert into %s values (7)" % (t, t))
    assert two.sql("select i from %s" % t) == "7"
    assert pg_server.psql("select 1 from %s" % t).returncode != 0
    assert pg_server.sql("select 1") == "1"
    # A plain cluster is not turned into a btrfs one or back.
    r = util.run([str(two.SCRIPT), "start"], env=dict(
        os.environ, **dict(two.script_env, BACKUPFS_PG_BTRFS="0")))
    assert r.returncode != 0 and "remove" in r.stderr, r.describe()
    # Its stop/start argv work too; stop then unmounts the image.
    run_argv(util, two.stop_argv, "second BACKUPFS_PG_STOP")
    assert two.psql("select 1").returncode != 0
    run_argv(util, two.start_argv, "second BACKUPFS_PG_START")
    assert two.sql("select i from %s" % t) == "7"
    two.stop()
    assert not os.path.ismount(two.btrfs_mount)
    assert procs_naming(two.data) == []
    assert not port_open(two.port)
    assert pg_server.sql("select 1") == "1"


# ---------------------------------------------------------------------------
# MariaDB


def test_mariadb_answers_where_env_says(mariadb_server, util):
    m = mariadb_server
    assert m.sql("select 1") == "1"
    assert m.port == 3307 or "BACKUPFS_MARIADB_PORT" in os.environ
    assert m.sql("select @@port") == str(m.port)
    assert m.sql("select @@socket") == m.socket
    assert m.sql("select @@datadir").rstrip("/") == m.data
    assert m.sql("select @@bind_address") == "127.0.0.1"
    assert m.user == "root" and m.os_user == "mysql"
    # Over TCP too, as root with the empty password.
    r = util.run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P",
                  str(m.port), "-uroot", "-N", "-B", "-e", "select 2"])
    assert r.returncode == 0 and r.stdout.strip() == "2", r.describe()
    # mariadbd runs as mysql.
    pids = procs_naming("--datadir=%s " % m.data)
    assert len(pids) == 1, pids
    assert os.stat("/proc/%d" % pids[0]).st_uid == \
        pwd.getpwnam("mysql").pw_uid


def test_mariadb_start_while_running_changes_nothing(mariadb_server):
    before = procs_naming("--datadir=%s " % mariadb_server.data)
    r = mariadb_server.script("start")
    assert r.returncode == 0, r.describe()
    assert "already running" in r.stdout
    assert procs_naming("--datadir=%s " % mariadb_server.data) == before
    assert len(before) == 1
    assert mariadb_server.script("status").returncode == 0


def _mariadb_stopped(m):
    assert procs_naming("--datadir=%s " % m.data) == []
    assert not os.path.exists(m.socket)
    assert not port_open(m.port)
    assert m.mariadb("select 1").returncode != 0
    assert m.script("status").returncode != 0


def test_mariadb_stop_start_argv_keeps_data(mariadb_server, util):
    m = mariadb_server
    db = name()
    m.sql("create database %s; create table %s.t (id int primary key, "
          "v varchar(20)) engine=InnoDB; create table %s.a (i int) "
          "engine=Aria; insert into %s.t values (1, 'kept'); "
          "insert into %s.a values (5)" % (db, db, db, db, db))
    try:
        # The STOP argv returns only once mariadbd has exited.
        run_argv(util, m.stop_argv, "BACKUPFS_MARIADB_STOP")
        _mariadb_stopped(m)
    finally:
        run_argv(util, m.start_argv, "BACKUPFS_MARIADB_START")
    # The START argv returns only once the server answers.
    assert m.sql("select v from %s.t where id = 1" % db) == "kept"
    assert m.sql("select i from %s.a" % db) == "5"
    assert m.script("status").returncode == 0
    m.sql("drop database %s" % db)


def test_mariadb_start_after_restore_with_roots_files(mariadb_server, util):
    """A restore replaces the data directory, as root: START must give it
    to mysql and come up on it."""
    m = mariadb_server
    db = name()
    m.sql("create database %s; create table %s.t (i int) engine=InnoDB; "
          "insert into %s.t values (9)" % (db, db, db))
    run_argv(util, m.stop_argv, "BACKUPFS_MARIADB_STOP")
    aside = m.data + ".test-aside"
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(m.data, aside)
    try:
        # copytree copies content and modes, not owners: all root's now.
        shutil.copytree(aside, m.data, symlinks=True)
        assert os.stat(m.data).st_uid == 0
        run_argv(util, m.start_argv, "BACKUPFS_MARIADB_START")
    except BaseException:
        shutil.rmtree(m.data, ignore_errors=True)
        os.rename(aside, m.data)
        m.start()
        raise
    shutil.rmtree(aside)
    assert m.sql("select i from %s.t" % db) == "9"
    mysql = pwd.getpwnam("mysql").pw_uid
    not_mysql = [str(p) for p in Path(m.data).rglob("*")
                 if p.lstat().st_uid != mysql]
    assert not_mysql == []
    m.sql("drop database %s" % db)


# ---------------------------------------------------------------------------
# CouchDB API (pouchdb-server)


def test_couch_answers_where_env_says(couch_server):
    c = couch_server
    assert c.url == "http://127.0.0.1:5984" or \
        "BACKUPFS_COUCH_PORT" in os.environ
    st, body = c.request("GET", "/")
    assert st == 200, body
    # pouchdb-server's welcome has no "couchdb" key.
    assert body.get("express-pouchdb") == "Welcome!" or \
        body.get("couchdb") == "Welcome", body
    st, dbs = c.request("GET", "/_all_dbs")
    assert st == 200 and isinstance(dbs, list), dbs
    # Admin party: an anonymous client is an admin.
    st, session = c.request("GET", "/_session")
    assert st == 200 and "_admin" in session["userCtx"]["roles"], session
    assert Path(c.data).is_dir()


def test_couch_start_while_running_changes_nothing(couch_server):
    before = procs_naming("--dir %s " % couch_server.data)
    r = couch_server.script("start")
    assert r.returncode == 0, r.describe()
    assert "already running" in r.stdout
    assert len(before) == 1
    assert procs_naming("--dir %s " % couch_server.data) == before


def test_couch_stop_start_argv_keeps_data(couch_server, util):
    c = couch_server
    db = name()
    st, body = c.request("PUT", "/" + db)
    assert st == 201, body
    doc = {"kind": "kept", "n": 42, "text": "zürich"}
    st, body = c.request("PUT", "/%s/doc1" % db, doc)
    assert st == 201, body
    rev = body["rev"]
    # Each database is a LevelDB directory in the data directory.
    assert Path(c.data, db).is_dir()
    try:
        run_argv(util, c.stop_argv, "BACKUPFS_COUCH_STOP")
        assert procs_naming("--dir %s " % c.data) == []
        with pytest.raises(OSError):
            c.request("GET", "/", timeout=5)
        assert c.script("status").returncode != 0
    finally:
        run_argv(util, c.start_argv, "BACKUPFS_COUCH_START")
    # The START argv returns only once GET / answers.
    st, got = c.request("GET", "/%s/doc1" % db)
    assert st == 200, got
    assert got["_rev"] == rev
    assert {k: got[k] for k in doc} == doc
    st, info = c.request("GET", "/" + db)
    assert st == 200 and info["doc_count"] == 1, info
    st, body = c.request("DELETE", "/" + db)
    assert st == 200 and body["ok"] is True, body
    assert c.script("status").returncode == 0
