# SPDX-License-Identifier: Apache-2.0
"""The mariadb datastore against real MariaDB 10.11 servers, through the
mounted filesystem.

The instance under test is the session server of tools/mariadb-server.sh
(fixture mariadb_server); clones and freshly deployed instances are more
servers of the same script, each in its own directory on a free port,
stopped at the end of the test.  Native restores replace the session
server's whole data directory, so every test creates the databases it
looks at itself, under names of its own.

Covered: a native (mariabackup) snapshot taken under a writer restores to
a committed prefix; agnostic (mariadb-dump) backups of everything and of
listed tables restore exactly their scope, keys included; cut, bit-flipped
and foreign files are refused before anything changes; a dump that breaks
half-way is rolled back from the safety dump; restores into a clone and
into a freshly deployed instance (new state directory, new config); the
daemon killed with SIGKILL during a native restore, then remounted: the
pre-restore data, answering queries, nothing left behind.
"""

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest

INST = "maria1"


# ---------------------------------------------------------------------------
# Helpers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def maria_conf(srv, **extra):
    """The instance config of a MariadbServer: its socket, its data
    directory, and its script as the service's start and stop."""
    conf = {"datastore": "mariadb", "datadir": srv.data,
            "socket": srv.socket, "user": srv.user, "os_user": srv.os_user,
            "service": {"start": srv.start_argv, "stop": srv.stop_argv}}
    conf.update(extra)
    return conf


def sql_script(srv, text, timeout=120):
    """Run a script (DELIMITER allowed) through the mariadb client."""
    r = subprocess.run(["mariadb", "--no-defaults", "-S", srv.socket,
                        "-u" + srv.user, "-N", "-B"], input=text,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "mariadb failed: %s\n%s" % (r.stderr, text)
    return r.stdout.strip()


def table_rows(srv, table):
    return srv.sql("select * from %s order by 1" % table)


def create_table_sql(srv, table):
    """SHOW CREATE TABLE without the AUTO_INCREMENT counter: InnoDB
    reserves values in batches (256 for INSERT ... SELECT) and a restart,
    like the one after a physical restore, starts again at max(id) + 1."""
    text = srv.sql("show create table %s" % table).split("\t", 1)[1]
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)



def copy_errno(src, dst):
    """cp src dst (the standard tool): 0, or the errno its failure was."""
    try:
        shutil.copyfile(src, dst)
    except OSError as e:
        return e.errno
    return 0


def write_errno(dst, data):
    try:
        with open(dst, "wb") as f:
            f.write(data)
    except OSError as e:
        return e.errno
    return 0


def last_restore(util, inst):
    return util.status(inst)["last"]["restore"]


def mount_maria(env, srv, **extra):
    env.instances[INST] = maria_conf(srv, **extra)
    env.init()
    return env.mount()


class ExtraServer:
    """Another MariaDB of the script, initialised fresh in base, on a free
    port; stop() at the end."""

    def __init__(self, util, base):
        self.env = {"BACKUPFS_MARIADB_DIR": str(base),
                    "BACKUPFS_MARIADB_PORT": str(free_port())}
        self.srv = util.MariadbServer(self.env)
        self.srv.start()

    def stop(self):
        self.srv.stop()


@pytest.fixture
def extra_server(util):
    """make(name) -> a new MariadbServer, fresh from mariadb-install-db,
    stopped and removed after the test.  Not under tmp_path: mariadbd
    runs as mysql, which cannot pass pytest's 0700 directories."""
    base = Path(tempfile.mkdtemp(prefix="bfs-maria-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    servers = []

    def make(name):
        s = ExtraServer(util, base / name)
        servers.append(s)
        return s.srv

    yield make
    for s in servers:
        s.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def maria(mariadb_server):
    """The session server, after the previous test: running."""
    if not mariadb_server.running():
        mariadb_server.start()
    return mariadb_server


def make_shop(srv, db, rows=200):
    """A database with keys, an index, an auto_increment, a foreign key,
    a view, a trigger and an Aria table beside InnoDB."""
    sql_script(srv, """
        drop database if exists `{db}`;
        create database `{db}`;
        use `{db}`;
        create table items (id int primary key auto_increment,
                            name varchar(40) not null, price int,
                            key by_name (name)) engine=innodb;
        insert into items (name, price)
            select concat('item', seq), seq * 3 from seq_1_to_{rows};
        create table users (id int primary key, name varchar(40))
            engine=aria;
        insert into users select seq, concat('user', seq)
            from seq_1_to_20;
        create table orders (id int primary key, item int not null,
                             foreign key (item) references items (id))
            engine=innodb;
        insert into orders select seq, seq from seq_1_to_10;
        create table audit (n int) engine=innodb;
        create trigger items_audit after insert on items
            for each row insert into audit values (new.id);
        create view cheap as select id, name from items where price < 30;
    """.format(db=db, rows=rows))


def shop_state(srv, db):
    """Everything of make_shop's database a restore must bring back."""
    return {t: (create_table_sql(srv, "`%s`.`%s`" % (db, t)),
                table_rows(srv, "`%s`.`%s`" % (db, t)))
            for t in ("items", "users", "orders", "audit")} | {
        "tables": srv.sql("select table_name from information_schema.tables"
                          " where table_schema = '%s' order by 1" % db),
        "triggers": srv.sql("select trigger_name from "
                            "information_schema.triggers where "
                            "trigger_schema = '%s'" % db)}


# ---------------------------------------------------------------------------
# Native: mariabackup under a writer

WRITER_SQL = """
drop database if exists wr;
create database wr;
use wr;
create table orders (id int primary key, note varchar(20)) engine=innodb;
create table order_lines (order_id int, n int, primary key (order_id, n))
    engine=innodb;
create table ctl (stop int) engine=innodb;
insert into ctl values (0);
delimiter //
create procedure writer()
begin
  declare i int default 1;
  while (select stop from ctl) = 0 do
    start transaction;
    insert into orders values (i, 'x');
    insert into order_lines values (i, 1), (i, 2), (i, 3);
    commit;
    set i = i + 1;
  end while;
end//
delimiter ;
"""


def committed(srv):
    return int(srv.sql("select count(*) from wr.orders"))


@pytest.mark.bfs_timeout(600)
def test_native_snapshot_under_writer_restores_a_committed_prefix(
        util, env, maria):
    sql_script(maria, WRITER_SQL)
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    writer = subprocess.Popen(
        ["mariadb", "--no-defaults", "-S", maria.socket, "-u" + maria.user,
         "wr", "-e", "call writer()"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while committed(maria) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        low = committed(maria)       # committed before the backup began
        ts, job = util.snapshot_via_mount(inst, "under-writer")
        high = committed(maria)      # committed once it had ended
    finally:
        maria.sql("update wr.ctl set stop = 1")
        _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert high > low, "the writer did not run during the backup"
    b = m.backup(ts, INST)
    assert util.xattr(b, "datastore") == "mariadb"
    assert util.xattr(b, "format") == "xbstream"
    assert util.xattr(b, "version") == maria.sql("select version()")
    assert json.loads(util.xattr(b, "strategy"))["format"] == "native"
    maria.sql("drop table wr.order_lines")

    assert copy_errno(b, inst / "restore" / ts) == 0
    n = committed(maria)
    assert low <= n <= high
    # a prefix of the committed transactions, each one whole
    assert maria.sql("select min(id), max(id) from wr.orders") == \
        "1\t%d" % n
    assert int(maria.sql("select count(*) from wr.order_lines")) == 3 * n
    assert maria.sql("select count(distinct order_id) from wr.order_lines") == \
        str(n)
    for line in maria.sql("check table wr.orders, wr.order_lines").splitlines():
        assert line.endswith("OK"), line
    assert last_restore(util, inst)["state"] == "completed"
    assert maria.leftovers() == []


@pytest.mark.bfs_timeout(600)
def test_agnostic_snapshot_under_writer_restores_a_committed_prefix(
        util, env, maria):
    # mariadb-dump --single-transaction: one consistent read view
    sql_script(maria, WRITER_SQL)
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    writer = subprocess.Popen(
        ["mariadb", "--no-defaults", "-S", maria.socket, "-u" + maria.user,
         "wr", "-e", "call writer()"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while committed(maria) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        low = committed(maria)
        ts, _ = util.snapshot_via_mount(
            inst, "dump-under-writer",
            '{"format": "agnostic", "tables": ["wr.orders", '
            '"wr.order_lines"]}')
        high = committed(maria)
    finally:
        maria.sql("update wr.ctl set stop = 1")
        _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert high > low, "the writer did not run during the backup"
    assert copy_errno(m.backup(ts, INST), inst / "restore" / ts) == 0
    n = committed(maria)
    assert low <= n <= high
    assert maria.sql("select min(id), max(id) from wr.orders") == \
        "1\t%d" % n
    assert int(maria.sql("select count(*) from wr.order_lines")) == 3 * n


# ---------------------------------------------------------------------------
# Agnostic: mariadb-dump


def test_agnostic_whole_restores_every_database(util, env, maria):
    make_shop(maria, "ag_shop")
    make_shop(maria, "ag_crm", rows=50)
    want_shop, want_crm = shop_state(maria, "ag_shop"), \
        shop_state(maria, "ag_crm")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(inst, "all", '{"format": "agnostic"}')
    b = m.backup(ts, INST)
    assert util.xattr(b, "format") == "sql"
    assert util.read_file(b).rstrip().splitlines()[-1].startswith(
        b"-- Dump completed")
    # everything changes after the backup
    sql_script(maria, """
        delete from ag_shop.orders where id > 5;
        update ag_shop.items set price = 0;
        drop table ag_shop.users;
        create table ag_shop.extra (x int);
        drop database ag_crm;
    """)
    assert copy_errno(b, inst / "restore" / "all.sql") == 0
    assert shop_state(maria, "ag_shop") == want_shop   # extra is gone too
    assert shop_state(maria, "ag_crm") == want_crm
    assert last_restore(util, inst)["state"] == "completed"


def test_backupctl_tables_lists_databases_and_tables(util, env, maria):
    make_shop(maria, "tl_shop")
    mount_maria(env, maria)
    got = json.loads(env.ctl("tables", INST, "--json").stdout)
    assert "tl_shop" in got and "tl_shop.orders" in got
    assert not any(n.split(".")[0] in ("mysql", "sys") for n in got)


def test_agnostic_tables_restores_only_those_with_their_keys(util, env,
                                                             maria):
    make_shop(maria, "tb_shop")
    make_shop(maria, "tb_other", rows=30)
    items = (create_table_sql(maria, "tb_shop.items"),
             table_rows(maria, "tb_shop.items"))
    other = shop_state(maria, "tb_other")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(
        inst, "tables",
        '{"format": "agnostic", "tables": ["tb_shop.items", "tb_other"]}')
    b = m.backup(ts, INST)
    assert json.loads(util.xattr(b, "strategy"))["tables"] == \
        ["tb_shop.items", "tb_other"]
    sql_script(maria, """
        update tb_shop.items set price = -1;
        delete from tb_shop.users where id > 3;
        update tb_other.items set name = 'changed';
        drop table tb_other.audit;
    """)
    users_now = table_rows(maria, "tb_shop.users")
    assert copy_errno(b, inst / "restore" / "tables.sql") == 0
    # the listed table and database are back, with keys and index ...
    assert (create_table_sql(maria, "tb_shop.items"),
            table_rows(maria, "tb_shop.items")) == items
    assert "PRIMARY KEY (`id`)" in items[0] and "KEY `by_name`" in items[0]
    assert shop_state(maria, "tb_other") == other
    # ... and nothing else was touched
    assert table_rows(maria, "tb_shop.users") == users_now
    assert maria.sql("select count(*) from tb_shop.users") == "3"


def test_agnostic_table_into_a_database_that_is_gone(util, env, maria):
    make_shop(maria, "tb_gone")
    want = table_rows(maria, "tb_gone.users")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(
        inst, "one", '{"format": "agnostic", "tables": ["tb_gone.users"]}')
    maria.sql("drop database tb_gone")
    assert copy_errno(m.backup(ts, INST), inst / "restore" / "one") == 0
    assert table_rows(maria, "tb_gone.users") == want
    assert maria.sql("show tables from tb_gone") == "users"


# ---------------------------------------------------------------------------
# Refused before anything changes


@pytest.mark.log_errors(r"restore of instance 'maria1'")
def test_truncated_dump_refused_data_untouched(util, env, maria):
    make_shop(maria, "tr_shop")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(inst, "d", '{"format": "agnostic"}')
    maria.sql("update tr_shop.items set price = 7")
    now = shop_state(maria, "tr_shop")
    data = util.read_file(m.backup(ts, INST))
    for cut in (len(data) // 2, len(data) - 10):
        e = write_errno(inst / "restore" / ("cut%d.sql" % cut), data[:cut])
        assert e in (errno.EINVAL, errno.EBADMSG, errno.EIO), \
            os.strerror(e) if e else "the restore succeeded"
        assert "truncated" in last_restore(util, inst)["error"]
        assert shop_state(maria, "tr_shop") == now


@pytest.mark.log_errors(r"restore of instance 'maria1'")
def test_corrupt_native_backup_refused_data_untouched(util, env, maria):
    make_shop(maria, "co_shop")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(inst, "n")
    maria.sql("update co_shop.items set price = 9")
    now = shop_state(maria, "co_shop")
    data = bytearray(util.read_file(m.backup(ts, INST)))
    cases = {"truncated": bytes(data[:len(data) * 2 // 3])}
    data[len(data) // 2] ^= 0x10
    cases["bit-flipped"] = bytes(data)
    for what, bad in cases.items():
        e = write_errno(inst / "restore" / what, bad)
        assert e in (errno.EINVAL, errno.EBADMSG, errno.EIO), \
            "%s: %s" % (what, os.strerror(e) if e else "restored")
        assert "xbstream" in last_restore(util, inst)["error"], what
        assert shop_state(maria, "co_shop") == now, what
        assert maria.leftovers() == [], what
    assert util.status(inst)["state"] == "ACTIVE"


@pytest.mark.log_errors(r"restore of instance 'maria1'")
def test_foreign_files_refused_with_the_reason(util, env, maria):
    make_shop(maria, "fo_shop")
    now = shop_state(maria, "fo_shop")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    cases = {
        "pg.dump": (b"PGDMP\x01\x0e\x00" + b"\x00" * 600,
                    "PostgreSQL pg_dump archive"),
        "couch.json": (b'{"backupfs_couchdb": 1, "docs": []}',
                       "CouchDB"),
        "random.bin": (os.urandom(4096), "not a backup backupfs knows"),
    }
    for name, (data, what) in cases.items():
        e = write_errno(inst / "restore" / name, data)
        assert e == errno.EINVAL, \
            "%s: %s" % (name, os.strerror(e) if e else "restored")
        reason = last_restore(util, inst)["error"]
        assert "not a MariaDB backup" in reason and what in reason, reason
    assert shop_state(maria, "fo_shop") == now


@pytest.mark.parametrize("strategy", [
    '{"format": "bogus"}', '{"type": "incremental"}', '{"mode": "offline"}',
    '{"tables": ["s.items"]}', '{"format": "agnostic", "tables": ["-x"]}',
    '{"format": "agnostic", "tables": ["s."]}', '{"snapshot": "btrfs"}'])
def test_invalid_strategy_refused(util, env, maria, strategy):
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    e = util.create_job_file(inst / "snapshots" / "bad", strategy)
    assert e == errno.EINVAL, os.strerror(e) if e else "close succeeded"
    assert m.backups(INST) == []
    assert "snapshot 'bad' of instance 'maria1' refused" in m.log_text()


@pytest.mark.log_errors(r"restore of instance 'maria1'",
                        r"exited with status", r"ERROR 1064",
                        r"^backupfs: error: 'mariadb': ")
def test_dump_failing_half_way_is_rolled_back(util, env, maria):
    make_shop(maria, "rb_a")
    make_shop(maria, "rb_b")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(
        inst, "ab", '{"format": "agnostic", "tables": ["rb_a", '
        '"rb_b.items", "rb_b.users"]}')
    sql_script(maria, """
        update rb_a.items set price = 1;
        create table rb_a.newer (x int);
        update rb_b.items set price = 2;
        delete from rb_b.users;
        create table rb_b.newer (x int);
    """)
    now = shop_state(maria, "rb_a"), shop_state(maria, "rb_b")
    # Complete by its trailer, but the second half is not SQL: rb_a and
    # rb_b.items are replaced before the client stops at the error.
    data = util.read_file(m.backup(ts, INST))
    at = data.index(b"-- Table structure for table `users`",
                    data.index(b"USE `rb_b`"))
    bad = data[:at] + b"THIS IS NOT SQL;\n" + data[at:]
    e = write_errno(inst / "restore" / "broken.sql", bad)
    assert e == errno.EIO, os.strerror(e) if e else "restored"
    reason = last_restore(util, inst)["error"]
    assert "ERROR 1064" in reason and "put back" in reason, reason
    assert (shop_state(maria, "rb_a"), shop_state(maria, "rb_b")) == now
    assert not [n for n in os.listdir(env.state / "instances" / INST)
                if "safety" in n or n.endswith(".cnf")]


# ---------------------------------------------------------------------------
# Other instances: a clone, a fresh deployment


@pytest.mark.bfs_timeout(600)
def test_restore_into_a_clone(util, env, maria, extra_server):
    make_shop(maria, "cl_shop")
    want = shop_state(maria, "cl_shop")
    clone = extra_server("clone")
    env.instances["maria2"] = maria_conf(clone)
    m = mount_maria(env, maria)
    ts_n, _ = util.snapshot_via_mount(m.inst(INST), "n")
    ts_a, _ = util.snapshot_via_mount(
        m.inst(INST), "a", '{"format": "agnostic", "tables": ["cl_shop"]}')
    # agnostic first: it needs no more than a running server
    assert copy_errno(m.backup(ts_a, INST),
                      m.inst("maria2") / "restore" / "a.sql") == 0
    assert shop_state(clone, "cl_shop") == want
    clone.sql("drop database cl_shop")
    assert copy_errno(m.backup(ts_n, INST),
                      m.inst("maria2") / "restore" / "n.xb") == 0
    assert shop_state(clone, "cl_shop") == want
    assert clone.leftovers() == []
    # the source is untouched
    assert shop_state(maria, "cl_shop") == want


@pytest.mark.bfs_timeout(600)
def test_fresh_deployment_restores_from_key_and_backend(util, env, maria,
                                                        extra_server,
                                                        tmp_path):
    make_shop(maria, "fr_shop")
    want = shop_state(maria, "fr_shop")
    m = mount_maria(env, maria)
    ts_n, _ = util.snapshot_via_mount(m.inst(INST), "n")
    ts_a, _ = util.snapshot_via_mount(
        m.inst(INST), "a", '{"format": "agnostic", "tables": ["fr_shop"]}')
    m.stop()
    # A new admin host: the key file and the backend, a new state
    # directory, and the instance pointing at a freshly initialised server.
    fresh = extra_server("fresh")
    assert "fr_shop" not in fresh.sql("show databases").split()
    state2 = tmp_path / "state2"
    state2.mkdir()
    cfg2 = env.write_config(tmp_path / "fresh.json", state_dir=str(state2),
                            instances={INST: maria_conf(fresh)})
    m2 = env.mount(cfg=cfg2)
    inst = m2.inst(INST)
    assert m2.backups(INST) == sorted([ts_n, ts_a])
    assert copy_errno(m2.backup(ts_a, INST), inst / "restore" / "a") == 0
    assert shop_state(fresh, "fr_shop") == want
    fresh.sql("drop database fr_shop")
    assert copy_errno(m2.backup(ts_n, INST), inst / "restore" / "n") == 0
    assert shop_state(fresh, "fr_shop") == want
    assert fresh.leftovers() == []


# ---------------------------------------------------------------------------
# SIGKILL during a native restore


def kill_daemon(util, m):
    util._killpg(m.proc.pid, signal.SIGKILL)
    m.proc.wait(30)
    r = util.run([util.FUSERMOUNT, "-u", m.mnt], timeout=60)
    assert r.returncode == 0, r.describe()
    m._forget()


@pytest.mark.bfs_timeout(600)
@pytest.mark.log_errors(r"(?i)interrupted", r"restore of instance 'maria1'")
def test_killed_native_restore_is_rolled_back(util, env, maria, tmp_path):
    make_shop(maria, "ki_shop")
    mark = tmp_path / "health.pid"
    # The health check of the restore hangs (its pid in mark): the kill
    # comes with the restored data swapped in and the server started.
    slow = dict(maria_conf(maria)["service"],
                health=["sh", "-c", 'echo $$ > "$0"; exec sleep 600',
                        str(mark)])
    m = mount_maria(env, maria, service=slow)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(inst, "n")
    maria.sql("update ki_shop.items set price = 42")
    before = shop_state(maria, "ki_shop")
    cp = subprocess.Popen(["cp", str(m.backup(ts, INST)),
                           str(inst / "restore" / "n")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (mark.exists() and mark.read_text().strip()):
            assert time.monotonic() < deadline, "no health check"
            assert cp.poll() is None, cp.stderr.read()
            time.sleep(0.05)
        swapped = maria.leftovers()
        kill_daemon(util, m)
    finally:
        if mark.exists() and mark.read_text().strip():
            try:
                os.kill(int(mark.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert cp.wait(60) != 0
    # the old data directory was aside when the daemon died
    assert any("backupfs-old" in n for n in swapped), swapped

    # remount with the default health check: recovery puts it back
    env.instances[INST] = maria_conf(maria)
    env.write_config()
    m2 = env.mount()
    assert shop_state(maria, "ki_shop") == before
    assert maria.sql("select price from ki_shop.items limit 1") == "42"
    assert maria.leftovers() == []
    assert util.status(m2.inst(INST))["state"] == "ACTIVE"
    ev = [e for e in util.read_events(m2.inst(INST))
          if e.get("event", e.get("type")) == "backup.restore.error"]
    assert ev, util.read_events(m2.inst(INST))


# ---------------------------------------------------------------------------
# A password from password_file


PASSWORD = 'p"w\\x\'y z'


@pytest.fixture
def maria_user(maria):
    """A database user with a password that needs quoting."""
    lit = PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
    sql_script(maria, """
        drop user if exists bk@localhost;
        create user bk@localhost identified by '%s';
        grant all on *.* to bk@localhost;
    """ % lit)
    yield "bk"
    maria.sql("drop user if exists bk@localhost")


@pytest.mark.bfs_timeout(600)
def test_password_file_reaches_the_tools_and_nothing_else(util, env, maria,
                                                         maria_user):
    make_shop(maria, "pw_shop")
    want = shop_state(maria, "pw_shop")
    pw = env.secret_file("maria.pw", PASSWORD)
    m = mount_maria(env, maria, user=maria_user, password_file=str(pw))
    inst = m.inst(INST)
    ts_a, _ = util.snapshot_via_mount(
        inst, "a", '{"format": "agnostic", "tables": ["pw_shop"]}')
    ts_n, _ = util.snapshot_via_mount(inst, "n")
    maria.sql("drop database pw_shop")
    assert copy_errno(m.backup(ts_a, INST), inst / "restore" / "a") == 0
    assert shop_state(maria, "pw_shop") == want
    maria.sql("update pw_shop.items set price = 5")
    # the default health check logs in as bk too
    assert copy_errno(m.backup(ts_n, INST), inst / "restore" / "n") == 0
    assert shop_state(maria, "pw_shop") == want
    state = env.state / "instances" / INST
    assert not [n for n in os.listdir(state) if n.endswith(".cnf")]
    assert "p\"w" not in m.log_text()


def test_password_file_must_be_private(util, env, maria, maria_user):
    env.init()
    pw = env.secret_file("maria.pw", PASSWORD)
    os.chmod(pw, 0o644)
    env.instances[INST] = maria_conf(maria, user=maria_user,
                                     password_file=str(pw))
    env.write_config()
    err = util.mount_refused(env, env.cfg, what="a readable password file")
    assert "maria.pw" in err


# ---------------------------------------------------------------------------
# A backup of another major version; SIGKILL during an agnostic restore


def xb_chunks(data):
    """The chunks of an xbstream: (flags, type, path, offset, payload)."""
    off, out = 0, []
    while off < len(data):
        assert data[off:off + 8] == b"XBSTCK01", off
        flags, typ = data[off + 8], data[off + 9:off + 10]
        plen = int.from_bytes(data[off + 10:off + 14], "little")
        path = data[off + 14:off + 14 + plen]
        off += 14 + plen
        if typ == b"E":
            out.append((flags, typ, path, 0, b""))
            continue
        n = int.from_bytes(data[off:off + 8], "little")
        at = int.from_bytes(data[off + 8:off + 16], "little")
        off += 20
        out.append((flags, typ, path, at, data[off:off + n]))
        off += n
    return out


def xb_build(chunks):
    out = []
    for flags, typ, path, at, payload in chunks:
        out.append(b"XBSTCK01" + bytes([flags]) + typ +
                   len(path).to_bytes(4, "little") + path)
        if typ == b"P":
            out.append(len(payload).to_bytes(8, "little") +
                       at.to_bytes(8, "little") +
                       zlib.crc32(payload).to_bytes(4, "little") + payload)
    return b"".join(out)


@pytest.mark.log_errors(r"restore of instance 'maria1'")
def test_native_backup_of_another_major_version_refused(util, env, maria):
    make_shop(maria, "mv_shop")
    m = mount_maria(env, maria)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(inst, "n")
    maria.sql("update mv_shop.items set price = 3")
    now = shop_state(maria, "mv_shop")
    chunks = xb_chunks(util.read_file(m.backup(ts, INST)))
    # a well-formed stream whose xtrabackup_info says MariaDB 10.6
    forged = []
    for flags, typ, path, at, payload in chunks:
        if path == b"xtrabackup_info" and typ == b"P":
            assert at == 0 and b"server_version = 10.11." in payload
            payload = re.sub(rb"server_version = [^\n]*",
                             b"server_version = 10.6.21-MariaDB", payload)
        forged.append((flags, typ, path, at, payload))
    assert xb_build(chunks) == util.read_file(m.backup(ts, INST))
    e = write_errno(inst / "restore" / "old.xb", xb_build(forged))
    assert e == errno.EINVAL, os.strerror(e) if e else "restored"
    reason = last_restore(util, inst)["error"]
    assert "MariaDB 10.6 cannot be prepared" in reason, reason
    assert shop_state(maria, "mv_shop") == now


@pytest.mark.bfs_timeout(600)
@pytest.mark.log_errors(r"(?i)interrupted", r"restore of instance 'maria1'")
def test_killed_agnostic_restore_is_rolled_back(util, env, maria, tmp_path):
    make_shop(maria, "ka_shop")
    mark = tmp_path / "health.pid"
    # The first health check (before anything changes) passes; the one
    # after the dump was applied hangs, its pid in mark.
    script = ('if [ -e "$0.seen" ]; then echo $$ > "$0"; exec sleep 600; '
              'fi; touch "$0.seen"; exec mariadb --no-defaults -S "$1" '
              '-u"$2" -e "select 1"')
    slow = dict(maria_conf(maria)["service"],
                health=["sh", "-c", script, str(mark), maria.socket,
                        maria.user])
    m = mount_maria(env, maria, service=slow)
    inst = m.inst(INST)
    ts, _ = util.snapshot_via_mount(
        inst, "a", '{"format": "agnostic", "tables": ["ka_shop.items", '
        '"ka_shop.orders"]}')
    sql_script(maria, """
        update ka_shop.items set price = 77;
        delete from ka_shop.orders where id > 2;
    """)
    before = shop_state(maria, "ka_shop")
    cp = subprocess.Popen(["cp", str(m.backup(ts, INST)),
                           str(inst / "restore" / "a.sql")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (mark.exists() and mark.read_text().strip()):
            assert time.monotonic() < deadline, "no second health check"
            assert cp.poll() is None, cp.stderr.read()
            time.sleep(0.05)
        applied = maria.sql("select distinct price from ka_shop.items "
                            "limit 2")
        kill_daemon(util, m)
    finally:
        if mark.exists() and mark.read_text().strip():
            try:
                os.kill(int(mark.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert cp.wait(60) != 0
    assert applied != "77", "the kill came before the dump was applied"

    env.instances[INST] = maria_conf(maria)
    env.write_config()
    m2 = env.mount()
    assert shop_state(maria, "ka_shop") == before
    state = env.state / "instances" / INST
    assert not [n for n in os.listdir(state)
                if "safety" in n or "mariadb-restore" in n]
    assert util.status(m2.inst(INST))["state"] == "ACTIVE"
    assert "rolled back the SQL restore" in m2.log_text()
