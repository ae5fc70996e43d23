# SPDX-License-Identifier: Apache-2.0
"""The postgresql datastore against a real PostgreSQL 15 cluster
(tools/pg-server.sh): native and per-table backups taken under a writer
restore consistent; bad input changes nothing; a failed or killed restore
leaves the cluster as it was; a fresh host restores into a fresh cluster.

Native restores replace the whole cluster, so each test works in its own
database and checks only that one."""

import itertools
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import pytest

pytestmark = pytest.mark.bfs_timeout(600)

_DB_SEQ = itertools.count()

# The writer: one row per transaction into items, and the same count in
# tally, so a restored database shows whether it holds a committed prefix.
WRITER_SQL = """
do $$
begin
  for i in 1..%d loop
    insert into log(v) values (i);
    update tally set n = n + 1;
    commit;
    perform pg_sleep(0.002);
  end loop;
end $$;
"""


def pg_instance(srv, database, **extra):
    """The instance config of the session cluster, with its start/stop."""
    conf = {
        "datastore": "postgresql",
        "pgdata": srv.data,
        "bin_dir": srv.bin_dir,
        "host": srv.host,
        "port": srv.port,
        "user": srv.user,
        "os_user": srv.os_user,
        "database": database,
        "service": {"start": srv.start_argv, "stop": srv.stop_argv},
    }
    conf.update(extra)
    return conf


def make_db(srv, name):
    """A fresh database with items (serial key, default), other, log and
    tally."""
    srv.sql('drop database if exists "%s"' % name)
    srv.sql('create database "%s"' % name)
    srv.sql("create table items(id serial primary key, v text default 'x');"
            "insert into items(v) select g::text "
            "from generate_series(1, 1000) g;"
            "create table other(id int primary key);"
            "insert into other select generate_series(1, 10);"
            "create table log(id serial primary key, v int);"
            "create table tally(n int); insert into tally values (0);",
            db=name)


@pytest.fixture
def pg(util, env, pg_server):
    """(env, server, database): instance pg1 on the session cluster in a
    database of its own; the repository initialized, nothing mounted."""
    db = "t%d_%d" % (os.getpid(), next(_DB_SEQ))
    make_db(pg_server, db)
    env.instances["pg1"] = pg_instance(pg_server, db)
    env.init()
    return env, pg_server, db


def count(srv, db, table):
    return int(srv.sql("select count(*) from %s" % table, db=db))


def slots(srv):
    """backupfs's replication slots on the cluster."""
    out = srv.sql("select slot_name from pg_replication_slots "
                  "where slot_name like 'backupfs%'")
    return out.split() if out else []



def restore(util, m, ts, name="r1"):
    """cp backups/<ts> restore/<name>: the cp Result."""
    return util.run(["cp", m.backup(ts, "pg1"), m.inst("pg1") / "restore" / name],
                    timeout=300)


class Writer:
    """psql running WRITER_SQL in the background."""

    def __init__(self, srv, db, rows):
        self.srv = srv
        self.app = "bfs-writer-%s" % db
        self.proc = subprocess.Popen(
            [os.path.join(srv.bin_dir, "psql"), "-X", "-h", srv.host, "-p",
             str(srv.port), "-U", srv.user, "-d", db, "-v",
             "ON_ERROR_STOP=1", "-c", WRITER_SQL % rows],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=dict(os.environ, PGAPPNAME=self.app))

    def wait_rows(self, srv, db, n, timeout=60):
        deadline = time.monotonic() + timeout
        while count(srv, db, "log") < n:
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < deadline, "writer too slow"
            time.sleep(0.02)

    def stop(self):
        """End the writer's session on the server too: a backend running
        a DO loop does not notice its client is gone."""
        sel = ("from pg_stat_activity where application_name = '%s'"
               % self.app)
        self.srv.sql("select pg_terminate_backend(pid) " + sel)
        deadline = time.monotonic() + 60
        while self.srv.sql("select count(*) " + sel) != "0":
            assert time.monotonic() < deadline, "writer still running"
            time.sleep(0.05)
        self.proc.wait(60)
        self.proc.stderr.close()


def assert_committed_prefix(srv, db, low, high):
    """log holds exactly ids 1..N, tally says N, low <= N <= high."""
    n = count(srv, db, "log")
    assert srv.sql("select coalesce(max(id), 0) from log", db=db) == str(n)
    assert int(srv.sql("select n from tally", db=db)) == n
    assert low <= n <= high, (low, n, high)
    return n


# ---- native ---------------------------------------------------------------


def test_native_backup_is_a_base_backup_tar(util, pg):
    env, srv, db = pg
    m = env.mount()
    ts, job = util.snapshot_via_mount(m.inst("pg1"), "native")
    path = m.backup(ts, "pg1")
    assert util.xattr(path, "datastore") == "postgresql"
    assert util.xattr(path, "format") == "pg_basebackup-tar"
    assert util.xattr(path, "version").startswith("15.")
    assert json.loads(util.xattr(path, "strategy")) == {
        "format": "native", "mode": "online", "type": "full"}
    with tarfile.open(path) as t:
        names = set(t.getnames())
    assert {"PG_VERSION", "global/pg_control", "backup_label"} <= names
    assert any(n.startswith("pg_wal/") for n in names)
    # the slot that held the WAL for it is gone
    assert slots(srv) == []


def test_native_restore_reverts_changes(util, pg):
    env, srv, db = pg
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "before")
    srv.sql("delete from items where id > 10; insert into other values (99)",
            db=db)
    r = restore(util, m, ts)
    assert r.returncode == 0, r.describe()
    assert count(srv, db, "items") == 1000
    assert count(srv, db, "other") == 10
    st = util.status(m.inst("pg1"))
    assert st["state"] == "ACTIVE"
    assert st["last"]["restore"]["state"] == "completed"
    names = [e["event"] for e in util.read_events(m.inst("pg1"))]
    assert "backup.restore.start" in names and "backup.restore.end" in names
    assert srv.leftovers() == []


def test_native_backup_under_writer_restores_a_committed_prefix(util, pg):
    env, srv, db = pg
    m = env.mount()
    w = Writer(srv, db, 100000)
    try:
        w.wait_rows(srv, db, 200)
        low = count(srv, db, "log")
        ts, _ = util.snapshot_via_mount(m.inst("pg1"), "busy")
        high = count(srv, db, "log")
    finally:
        w.stop()
    assert high > low
    r = restore(util, m, ts)
    assert r.returncode == 0, r.describe()
    assert_committed_prefix(srv, db, low, high)
    assert srv.leftovers() == []


def test_restore_into_a_running_cluster_keeps_it_answering(util, pg):
    # the cluster answers right after close() returns
    env, srv, db = pg
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "a")
    assert restore(util, m, ts).returncode == 0
    assert srv.sql("select 1") == "1"
    assert srv.sql("show data_directory") == srv.data


# ---- agnostic -------------------------------------------------------------


def test_agnostic_backup_is_a_pg_dump_archive(util, pg):
    env, srv, db = pg
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "dump",
                                    '{"format": "agnostic"}')
    path = m.backup(ts, "pg1")
    assert util.xattr(path, "format") == "pg_dump-custom"
    with open(path, "rb") as f:
        assert f.read(5) == b"PGDMP"
    r = util.run([os.path.join(srv.bin_dir, "pg_restore"), "-l", path])
    assert r.returncode == 0, r.describe()
    assert "TABLE DATA public items" in r.stdout


def test_agnostic_whole_database_restore(util, pg):
    env, srv, db = pg
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "dump",
                                    '{"format": "agnostic"}')
    srv.sql("delete from items; drop table other", db=db)
    r = restore(util, m, ts)
    assert r.returncode == 0, r.describe()
    assert count(srv, db, "items") == 1000
    assert count(srv, db, "other") == 10


def test_per_table_restore_keeps_keys_and_touches_only_that_table(util, pg):
    env, srv, db = pg
    m = env.mount()
    ts, _ = util.snapshot_via_mount(
        m.inst("pg1"), "items-only",
        '{"format": "agnostic", "tables": ["items"]}')
    assert json.loads(util.xattr(m.backup(ts, "pg1"), "strategy"))[
        "tables"] == ["items"]
    srv.sql("delete from items where id > 5; insert into other values (99)",
            db=db)
    r = restore(util, m, ts)
    assert r.returncode == 0, r.describe()
    assert count(srv, db, "items") == 1000
    assert count(srv, db, "other") == 11     # not in the backup: untouched
    cons = srv.sql("select conname from pg_constraint "
                   "where conrelid = 'items'::regclass and contype = 'p'",
                   db=db)
    assert cons == "items_pkey"
    # the sequence and the default came back: a new row gets id 1001
    assert srv.sql("with r as (insert into items default values "
                   "returning id, v) select * from r", db=db) == "1001|x"


def test_agnostic_backup_under_writer_restores_a_committed_prefix(util, pg):
    env, srv, db = pg
    m = env.mount()
    w = Writer(srv, db, 100000)
    try:
        w.wait_rows(srv, db, 200)
        low = count(srv, db, "log")
        ts, _ = util.snapshot_via_mount(
            m.inst("pg1"), "busy-dump",
            '{"format": "agnostic", "tables": ["log", "tally"]}')
        high = count(srv, db, "log")
    finally:
        w.stop()
    r = restore(util, m, ts)
    assert r.returncode == 0, r.describe()
    assert_committed_prefix(srv, db, low, high)


# ---- refusals -------------------------------------------------------------

BAD_STRATEGIES = [
    '{"type": "incremental"}',
    '{"mode": "offline"}',
    '{"tables": ["items"]}',
    '{"format": "agnostic", "snapshot": "btrfs"}',
    '{"snapshot": "zfs"}',
    '{"format": "agnostic", "tables": ["-x"]}',
    '{"bogus": 1}',
]


@pytest.mark.parametrize("strategy", BAD_STRATEGIES)
def test_invalid_strategy_is_einval(util, pg, strategy):
    env, srv, db = pg
    m = env.mount()
    before = m.backups("pg1")
    e = util.create_job_file(m.inst("pg1") / "snapshots" / "bad", strategy)
    assert e == util.errno.EINVAL
    assert m.backups("pg1") == before


def corrupt_copies(data):
    """(what, bytes) variants of a good backup that must not restore."""
    mid = len(data) // 2
    flipped = bytearray(data)
    for i in range(mid, mid + 4096):
        flipped[i] ^= 0xFF
    return [("truncated", data[:mid]), ("flipped", bytes(flipped))]


@pytest.mark.log_errors(r"restore of instance 'pg1'", r"'(tar|pg_restore)'",
                        r"backup\.restore\.error")
@pytest.mark.parametrize("strategy", [None, '{"format": "agnostic"}'],
                         ids=["native", "agnostic"])
def test_corrupt_backup_fails_and_changes_nothing(util, pg, tmp_path,
                                                  strategy):
    env, srv, db = pg
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "good", strategy)
    data = util.read_file(m.backup(ts, "pg1"))
    srv.sql("delete from items where id > 7", db=db)
    for what, bad in corrupt_copies(data):
        src = tmp_path / what
        src.write_bytes(bad)
        e = util.restore_errno(src, m.inst("pg1") / "restore" / what)
        assert e in (util.errno.EINVAL, util.errno.EBADMSG,
                     util.errno.EIO), (what, e)
        assert count(srv, db, "items") == 7, what
        last = util.status(m.inst("pg1"))["last"]["restore"]
        assert last["state"] == "failed" and last["error"], (what, last)
    assert srv.leftovers() == []
    assert util.status(m.inst("pg1"))["state"] == "ACTIVE"


@pytest.mark.log_errors(r"restore of instance 'pg1'")
@pytest.mark.parametrize("content,kind", [
    (b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n", "MariaDB"),
    (b"XBSTCK01" + b"\0" * 100, "mariabackup"),
    (b"hello, world\n" * 100, "not a backup"),
])
def test_foreign_file_is_einval_with_reason(util, pg, tmp_path, content,
                                            kind):
    env, srv, db = pg
    m = env.mount()
    src = tmp_path / "foreign"
    src.write_bytes(content)
    e = util.restore_errno(src, m.inst("pg1") / "restore" / "foreign")
    assert e == util.errno.EINVAL
    err = util.status(m.inst("pg1"))["last"]["restore"]["error"]
    assert "not a PostgreSQL backup" in err and kind in err, err
    assert count(srv, db, "items") == 1000


@pytest.mark.log_errors(r"restore of instance 'pg1'", r"health check",
                        r"'psql'", r"'sh'")
def test_failed_health_check_puts_the_old_cluster_back(util, env, pg_server,
                                                       tmp_path):
    # The health check asks for a table made after the backup: on the
    # restored cluster it fails, so the restore must roll back.
    srv = pg_server
    db = "health_%d" % os.getpid()
    make_db(srv, db)
    psql = os.path.join(srv.bin_dir, "psql")
    health = [psql, "-X", "-h", srv.host, "-p", str(srv.port), "-U",
              srv.user, "-d", db, "-Atc", "select count(*) from made_later"]
    env.instances["pg1"] = pg_instance(srv, db, service={
        "start": srv.start_argv, "stop": srv.stop_argv, "health": health,
        "health_timeout": 5})
    env.init()
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "old")
    srv.sql("create table made_later(x int); delete from items", db=db)
    r = restore(util, m, ts)
    assert r.returncode != 0
    err = util.status(m.inst("pg1"))["last"]["restore"]["error"]
    assert "health check" in err, err
    assert count(srv, db, "items") == 0          # as before the restore
    assert srv.sql("select count(*) from made_later", db=db) == "0"
    assert srv.leftovers() == []
    assert util.status(m.inst("pg1"))["state"] == "ACTIVE"


# ---- crashes --------------------------------------------------------------


def kill_daemon(util, m):
    """SIGKILL the daemon's group, then clear the dead mount."""
    util._killpg(m.proc.pid, signal.SIGKILL)
    m.proc.wait(30)
    r = util.run([util.FUSERMOUNT, "-u", m.mnt], timeout=60)
    assert r.returncode == 0, r.describe()
    m._forget()


def wait_for(pred, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


@pytest.mark.log_errors(r"(?i)interrupted", r"rolled back")
def test_killed_restore_is_rolled_back_at_remount(util, env, pg_server,
                                                  tmp_path):
    # The health check of the first restore hangs (a flag file makes it
    # sleep), so the daemon dies after the swap and before the verdict.
    srv = pg_server
    db = "killed_%d" % os.getpid()
    make_db(srv, db)
    flag = tmp_path / "hang-health"
    psql = os.path.join(srv.bin_dir, "psql")
    health = ["sh", "-c",
              'if [ -e "$1" ]; then rm -f "$1"; sleep 300; fi; '
              'exec "$2" -X -h "$3" -p "$4" -U postgres -d postgres '
              '-Atc "select 1"',
              "sh", str(flag), psql, srv.host, str(srv.port)]
    env.instances["pg1"] = pg_instance(srv, db, service={
        "start": srv.start_argv, "stop": srv.stop_argv, "health": health})
    env.init()
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "old")
    srv.sql("delete from items where id > 3", db=db)
    flag.write_text("")
    cp = subprocess.Popen(["cp", m.backup(ts, "pg1"),
                           m.inst("pg1") / "restore" / "doomed"],
                          stderr=subprocess.DEVNULL)
    wait_for(lambda: not flag.exists(), "the health check to start")
    assert any(".backupfs-old-" in n for n in srv.leftovers())
    kill_daemon(util, m)
    cp.wait(60)
    m2 = env.mount()
    # recovery at open: the old cluster is back and answering
    assert count(srv, db, "items") == 3
    assert srv.leftovers() == []
    assert util.status(m2.inst("pg1"))["state"] == "ACTIVE"
    subprocess.run(["pkill", "-f", "sleep 300"], check=False)


@pytest.mark.log_errors(r"(?i)interrupted")
def test_restore_killed_while_staging_leaves_the_cluster_alone(
        util, env, pg_server, tmp_path):
    # tar -x is held up by a slow exec prefix (fault injection) while the
    # staging directory exists; the cluster still runs on its data
    srv = pg_server
    db = "kstage_%d" % os.getpid()
    make_db(srv, db)
    gate = tmp_path / "gate"
    prefix = ["sh", "-c",
              'gate=$1; shift; for a; do [ "$a" = -x ] && '
              '{ touch "$gate"; sleep 300; }; done; exec "$@"',
              "sh", str(gate)]
    env.instances["pg1"] = pg_instance(srv, db, exec_prefix=prefix)
    env.init()
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "old")
    srv.sql("delete from items where id > 4", db=db)
    cp = subprocess.Popen(["cp", m.backup(ts, "pg1"),
                           m.inst("pg1") / "restore" / "doomed"],
                          stderr=subprocess.DEVNULL)
    wait_for(gate.exists, "the extraction to start")
    assert any(".backupfs-restore-" in n for n in srv.leftovers())
    kill_daemon(util, m)
    cp.wait(60)
    subprocess.run(["pkill", "-f", "sleep 300"], check=False)
    m2 = env.mount()
    assert srv.leftovers() == []
    assert count(srv, db, "items") == 4
    assert util.status(m2.inst("pg1"))["state"] == "ACTIVE"


@pytest.mark.log_errors(r"(?i)interrupted", r"replication slot")
def test_killed_snapshot_leaves_no_backup(util, env, pg_server, tmp_path):
    # pg_basebackup is held up by a slow exec prefix (fault injection):
    # the daemon dies while the backup streams
    srv = pg_server
    db = "ksnap_%d" % os.getpid()
    make_db(srv, db)
    gate = tmp_path / "gate"
    prefix = ["sh", "-c",
              'gate=$1; shift; for a; do case "$a" in */pg_basebackup) '
              'touch "$gate"; sleep 300;; esac; done; exec "$@"',
              "sh", str(gate)]
    env.instances["pg1"] = pg_instance(srv, db, exec_prefix=prefix)
    env.init()
    m = env.mount()
    assert util.create_job_file(m.inst("pg1") / "snapshots" / "doomed") == 0
    wait_for(gate.exists, "pg_basebackup to start")
    # a slot holds the WAL the backup needs from its start
    assert len(slots(srv)) == 1
    kill_daemon(util, m)
    subprocess.run(["pkill", "-f", "sleep 300"], check=False)
    m2 = env.mount()
    assert slots(srv) == []       # a forgotten slot would keep WAL forever
    assert m2.backups("pg1") == []
    job = util.read_json(m2.inst("pg1") / "snapshots" / "doomed")
    assert job["state"] == "failed", job
    assert util.status(m2.inst("pg1"))["state"] == "ACTIVE"
    assert srv.leftovers() == []


# ---- another instance, another host ------------------------------------


@pytest.fixture
def second_cluster(util):
    """A freshly initialized PostgreSQL cluster of its own (port 5434), in
    a directory user postgres can reach (tmp_path's parents are 0700)."""
    base = tempfile.mkdtemp(prefix="backupfs-pg2-", dir="/var/tmp")
    os.chmod(base, 0o755)
    script_env = {"BACKUPFS_PG_DIR": os.path.join(base, "pg"),
                  "BACKUPFS_PG_PORT": "5434"}
    r = util.server_script(util.PG_SCRIPT, "start", env=script_env)
    assert r.returncode == 0, r.describe()
    try:
        yield util.PgServer(script_env)
    finally:
        util.server_script(util.PG_SCRIPT, "stop", env=script_env)
        shutil.rmtree(base, ignore_errors=True)


def test_fresh_host_restores_into_a_fresh_cluster(util, pg, env_factory,
                                                  tmp_path, second_cluster):
    # Host A backs up; host B has only the key and the backend (new state
    # directory, new config) and a freshly initialized cluster.
    env, srv, db = pg
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "to-move")
    m.stop()
    b = env_factory(tmp_path / "host-b")
    b.key = env.key
    if env.backend.kind == "swift":
        b.container = env.container
    else:
        b.repo = env.repo
    b.instances["pg1"] = pg_instance(second_cluster, db)
    b.write_config()
    mb = b.mount()
    assert ts in mb.backups("pg1")
    r = util.run(["cp", mb.backup(ts, "pg1"), mb.inst("pg1") / "restore/"],
                 timeout=300)
    assert r.returncode == 0, r.describe()
    assert count(second_cluster, db, "items") == 1000
    assert second_cluster.sql("show port") == "5434"


@pytest.mark.log_errors(r"restore of instance '(vol1|pg1)'")
def test_restore_into_another_datastore_is_einval(util, pg):
    # A base backup is a valid tar for a files instance too: the stored
    # backup it is tells the datastore, and the restore is refused.
    env, srv, db = pg
    src = env.add_instance("vol1", tree="sample")
    before = util.tree_of_dir(src)
    env.write_config()
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "native")
    e = util.restore_errno(m.backup(ts, "pg1"),
                           m.inst("vol1") / "restore" / "x")
    assert e == util.errno.EINVAL
    err = util.status(m.inst("vol1"))["last"]["restore"]["error"]
    assert "postgresql" in err and ts in err, err
    assert util.tree_of_dir(src) == before
    # written back to front (no running hash): found all the same
    data = util.read_file(m.backup(ts, "pg1"))
    fd = os.open(m.inst("vol1") / "restore" / "z", os.O_WRONLY | os.O_CREAT)
    step = 1 << 20
    for off in reversed(range(0, len(data), step)):
        os.pwrite(fd, data[off:off + step], off)
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == util.errno.EINVAL
    err = util.status(m.inst("vol1"))["last"]["restore"]["error"]
    assert "postgresql" in err and ts in err, err
    # and the other way round
    vts, _ = util.snapshot_via_mount(m.inst("vol1"), "tree")
    e = util.restore_errno(m.backup(vts, "vol1"),
                           m.inst("pg1") / "restore" / "y")
    assert e == util.errno.EINVAL
    err = util.status(m.inst("pg1"))["last"]["restore"]["error"]
    assert "files" in err, err
    assert count(srv, db, "items") == 1000


# ---- btrfs snapshots ------------------------------------------------------


@pytest.fixture(scope="module")
def btrfs_cluster(util):
    """A cluster whose data directory (pg_wal too) is a btrfs subvolume,
    port 5435, in a directory user postgres can reach."""
    base = tempfile.mkdtemp(prefix="backupfs-pgbtrfs-", dir="/var/tmp")
    os.chmod(base, 0o755)
    script_env = {"BACKUPFS_PG_DIR": os.path.join(base, "pg"),
                  "BACKUPFS_PG_PORT": "5435", "BACKUPFS_PG_BTRFS": "1"}
    r = util.server_script(util.PG_SCRIPT, "start", env=script_env)
    assert r.returncode == 0, r.describe()
    try:
        yield util.PgServer(script_env)
    finally:
        util.server_script(util.PG_SCRIPT, "stop", env=script_env)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_btrfs(util, env, btrfs_cluster):
    db = "b%d_%d" % (os.getpid(), next(_DB_SEQ))
    make_db(btrfs_cluster, db)
    env.instances["pg1"] = pg_instance(btrfs_cluster, db)
    env.init()
    return env, btrfs_cluster, db


def test_btrfs_snapshot_under_writer_restores_a_committed_prefix(util,
                                                                 pg_btrfs):
    env, srv, db = pg_btrfs
    m = env.mount()
    w = Writer(srv, db, 100000)
    try:
        w.wait_rows(srv, db, 200)
        low = count(srv, db, "log")
        ts, _ = util.snapshot_via_mount(m.inst("pg1"), "snap",
                                        '{"snapshot": "btrfs"}')
        high = count(srv, db, "log")
    finally:
        w.stop()
    path = m.backup(ts, "pg1")
    assert util.xattr(path, "format") == "btrfs-tar"
    assert json.loads(util.xattr(path, "strategy"))["snapshot"] == "btrfs"
    with tarfile.open(path) as t:
        names = set(t.getnames())
    assert "./PG_VERSION" in names and "./postmaster.pid" not in names
    assert srv.leftovers() == []           # the snapshot went at once
    r = restore(util, m, ts)
    assert r.returncode == 0, r.describe()
    # crash-consistent: recovery at start replays to a committed prefix
    assert_committed_prefix(srv, db, low, high)
    # the data directory is still a subvolume, so snapshots keep working
    st = os.stat(srv.data)
    assert st.st_ino == 256, "not a subvolume root after the restore"
    util.snapshot_via_mount(m.inst("pg1"), "again", '{"snapshot": "btrfs"}')
    assert srv.leftovers() == []


@pytest.mark.log_errors(r"(?i)interrupted")
def test_killed_btrfs_snapshot_is_removed_at_remount(util, env,
                                                     btrfs_cluster, tmp_path):
    # tar is held up by a slow exec prefix (fault injection) while the
    # temporary snapshot exists; the daemon dies then
    srv = btrfs_cluster
    db = "kb%d" % os.getpid()
    make_db(srv, db)
    gate = tmp_path / "gate"
    prefix = ["sh", "-c",
              'gate=$1; shift; [ "$1" = tar ] && { touch "$gate"; '
              'sleep 300; }; exec "$@"', "sh", str(gate)]
    env.instances["pg1"] = pg_instance(srv, db, exec_prefix=prefix)
    env.init()
    m = env.mount()
    assert util.create_job_file(m.inst("pg1") / "snapshots" / "doomed",
                                '{"snapshot": "btrfs"}') == 0
    wait_for(gate.exists, "tar to start")
    assert any(".backupfs-snap-" in n for n in srv.leftovers())
    kill_daemon(util, m)
    subprocess.run(["pkill", "-f", "sleep 300"], check=False)
    m2 = env.mount()
    assert srv.leftovers() == []
    assert m2.backups("pg1") == []
    assert util.status(m2.inst("pg1"))["state"] == "ACTIVE"


def test_backupctl_tables_lists_what_a_strategy_may_name(util, pg):
    env, srv, db = pg
    r = env.ctl("tables", "pg1", "--json")
    assert json.loads(r.stdout) == ["public.items", "public.log",
                                    "public.other", "public.tally"]
    # and such a name works in a strategy
    m = env.mount()
    util.snapshot_via_mount(m.inst("pg1"), "by-listed-name",
                            '{"format": "agnostic", "tables": '
                            '["public.other"]}')


def test_clone_into_another_instance(util, pg, second_cluster):
    # pg1's backup restored into pg2, another cluster on the same host
    env, srv, db = pg
    env.instances["pg2"] = pg_instance(second_cluster, db)
    env.write_config()
    m = env.mount()
    ts, _ = util.snapshot_via_mount(m.inst("pg1"), "to-clone")
    r = util.run(["cp", m.backup(ts, "pg1"), m.inst("pg2") / "restore/"],
                 timeout=300)
    assert r.returncode == 0, r.describe()
    assert count(second_cluster, db, "items") == 1000
    assert util.status(m.inst("pg2"))["last"]["restore"]["state"] == \
        "completed"
    # the source is untouched and both answer
    srv.sql("insert into other values (500)", db=db)
    assert count(srv, db, "other") == 11
    assert count(second_cluster, db, "other") == 10
