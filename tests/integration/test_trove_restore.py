# SPDX-License-Identifier: Apache-2.0
"""Restoring from imported Trove backups (issue 4 part 6): a backup Trove
made (gzip, then openssl enc with the 2020 images' PBKDF2, in Swift) of a
PostgreSQL base backup and of a MariaDB dump, imported with `backupctl
import-trove`, then copied from the mount into an instance's restore/,
restores like any backup.  One that Trove's list says belongs to another
datastore is refused.

Swift only: Trove's objects live in Swift (see test_trove_read.py)."""

import os
import subprocess
import uuid

import pytest
from test_mariadb import make_shop, maria_conf, shop_state, sql_script
from test_postgresql import count, make_db, pg_instance
from trove import (Backup, Legacy, api_list, key_file, run_import, store)

pytestmark = [pytest.mark.backends("swift"), pytest.mark.bfs_timeout(600)]


@pytest.fixture(scope="module")
def legacy(backend):
    lg = Legacy(backend.swift.account)
    yield lg
    lg.drop()


def import_one(env, legacy, plain, datastore, created):
    """plain stored as Trove stored it and imported: the Backup."""
    b = Backup("pbkdf2", "single", plain, str(uuid.uuid4()), created)
    store(legacy, b)
    lst = api_list(env, legacy, [b], datastore={
        "type": datastore, "version": "15", "version_id": str(uuid.uuid4())})
    r = run_import(env, legacy, lst, key=key_file(env))
    assert r.returncode == 0, r.describe()
    return b


def base_backup(srv):
    """A pg_basebackup tar of the cluster, as Trove's PostgreSQL
    strategy streamed it (tar on stdout, WAL fetched into it)."""
    r = subprocess.run(
        ["runuser", "-u", srv.os_user, "--",
         os.path.join(srv.bin_dir, "pg_basebackup"), "-h", srv.host, "-p",
         str(srv.port), "-U", srv.user, "-D", "-", "-Ft", "-X", "fetch",
         "-c", "fast"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def test_trove_postgresql_backup_restores(util, env, legacy, pg_server):
    srv = pg_server
    db = "trove_%d" % os.getpid()
    make_db(srv, db)
    env.instances["pg1"] = pg_instance(srv, db)
    env.init()
    b = import_one(env, legacy, base_backup(srv), "postgresql",
                   "2020-06-01T03:00:00")
    srv.sql("delete from items where id > 2", db=db)
    m = env.mount()
    src = m.backup(b.ts, b.instance)
    assert util.xattr(src, "datastore") == "postgresql"
    r = util.run(["cp", src, m.inst("pg1") / "restore/"], timeout=300)
    assert r.returncode == 0, r.describe()
    assert count(srv, db, "items") == 1000
    assert util.status(m.inst("pg1"))["last"]["restore"]["state"] == \
        "completed"


def test_trove_mariadb_dump_restores(util, env, legacy, mariadb_server):
    srv = mariadb_server
    make_shop(srv, "trove_shop")
    want = shop_state(srv, "trove_shop")
    dump = subprocess.run(
        ["mariadb-dump", "--no-defaults", "-S", srv.socket,
         "-u" + srv.user, "--single-transaction", "--databases",
         "trove_shop"], capture_output=True, timeout=300)
    assert dump.returncode == 0, dump.stderr.decode()
    env.instances["maria1"] = maria_conf(srv)
    env.init()
    b = import_one(env, legacy, dump.stdout, "mariadb",
                   "2020-06-02T03:00:00")
    sql_script(srv, "delete from trove_shop.orders; "
                    "drop table trove_shop.users;")
    m = env.mount()
    r = util.run(["cp", m.backup(b.ts, b.instance),
                  m.inst("maria1") / "restore/"], timeout=300)
    assert r.returncode == 0, r.describe()
    assert shop_state(srv, "trove_shop") == want


@pytest.mark.log_errors(r"restore of instance 'pg1'")
def test_trove_backup_of_another_datastore_is_refused(util, env, legacy,
                                                      pg_server):
    # Trove's list says mysql: the base backup tar would pass the
    # PostgreSQL checks, but the import recorded where it came from
    srv = pg_server
    db = "trove_other_%d" % os.getpid()
    make_db(srv, db)
    env.instances["pg1"] = pg_instance(srv, db)
    env.init()
    b = import_one(env, legacy, base_backup(srv), "mysql",
                   "2020-06-03T03:00:00")
    srv.sql("delete from items where id > 2", db=db)
    m = env.mount()
    e = util.restore_errno(m.backup(b.ts, b.instance),
                           m.inst("pg1") / "restore" / "x")
    assert e == util.errno.EINVAL
    err = util.status(m.inst("pg1"))["last"]["restore"]["error"]
    assert "mysql" in err, err
    assert count(srv, db, "items") == 2
