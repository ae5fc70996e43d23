# SPDX-License-Identifier: Apache-2.0
"""The "db2" datastore through the mounted filesystem.

Db2 cannot be installed here (IBM-only downloads): these tests run the
driver against the stand-in tests/tools/db2-standin/ (`db2`, `db2ckbkp`,
`db2level`), which accepts exactly the command lines the driver issues
and keeps its databases as small files.  They run as a real OS user,
bfsdb2 (created here if missing), the instance owner: the driver reaches
them through runuser and ~bfsdb2/sqllib/db2profile, and through an exec
prefix (`env PATH=<stand-in>:...`) that puts the stand-in on PATH.

What they pin down: online backups only with archive logging (INCLUDE
LOGS), offline ones quiesce the instance and always unquiesce it, the
backup stream (a tar of the images by their own names and a manifest),
restores of offline and online images (ROLLFORWARD for the latter), a
corrupt image or a failing RESTORE leaves the databases as they were, the
free-space check, crash leftovers removed at the next mount, foreign
files refused."""

import errno
import io
import json
import os
import pwd
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests/tools/db2-standin"
USER = "bfsdb2"
HOME = Path("/home") / USER
EXEC_PREFIX = ["env", "PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin" % STANDIN]
INST = "db2a"

# Expected error lines of the daemon when a job fails on purpose.
# (The CLP's messages say "error" too: "SQL2062N  An error occurred ...")
FAILED = r"(?i)(snapshot|restore) .* failed|exited with status|stays " \
         r"quiesced|rolling back|SQL\d{4,5}[NC]"

pytestmark = pytest.mark.bfs_timeout(180)


def ensure_user():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--create-home",
                        "--home-dir", str(HOME), "--shell", "/bin/sh", USER],
                       check=True)
        return pwd.getpwnam(USER)


class Db2:
    """The stand-in's instance, as the test sees it: one directory per
    test under ~bfsdb2 holding the state and the backup directory."""

    def __init__(self):
        self.pw = ensure_user()
        HOME.mkdir(exist_ok=True)
        os.chown(HOME, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(HOME, 0o755)
        self.top = HOME / ("t-" + uuid.uuid4().hex[:12])
        self.state = self.top / "state"
        self.backup = self.top / "backup"
        for d in (self.top, self.state, self.state / "dbs", self.backup,
                  HOME / "sqllib"):
            self.mkdir(d)
        profile = HOME / "sqllib" / "db2profile"
        profile.write_text(
            "# backupfs test: the Db2 stand-in's instance environment\n"
            "DB2INSTANCE=%s; export DB2INSTANCE\n"
            "BFS_DB2_STANDIN_STATE=%s; export BFS_DB2_STANDIN_STATE\n"
            % (USER, self.state))
        self.chown(profile)

    def chown(self, p):
        os.chown(p, self.pw.pw_uid, self.pw.pw_gid)

    def mkdir(self, d):
        d.mkdir(parents=True, exist_ok=True)
        self.chown(d)

    def write(self, rel, data):
        p = self.state / rel
        self.mkdir(p.parent)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        self.chown(p)

    def remove(self):
        shutil.rmtree(self.top, ignore_errors=True)

    # -- databases ------------------------------------------------------

    def add_db(self, name, content, logarch="OFF"):
        self.write("dbs/%s/content" % name, content)
        self.set_cfg(name, LOGARCHMETH1=logarch)

    def set_cfg(self, name, **kv):
        p = self.state / "dbs" / name / "cfg.json"
        cfg = json.loads(p.read_text()) if p.exists() else {}
        cfg.update(kv)
        self.write("dbs/%s/cfg.json" % name, json.dumps(cfg))

    def content(self, name):
        return (self.state / "dbs" / name / "content").read_bytes()

    def set_content(self, name, data):
        self.write("dbs/%s/content" % name, data)

    def exists(self, name):
        return (self.state / "dbs" / name).is_dir()

    def db_status(self, name):
        p = self.state / "dbs" / name / "status.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def in_use(self, name):
        self.write("dbs/%s/in_use" % name, "")

    def fail(self, verb, db="*", times=1):
        self.write("fail/" + verb, "%s %d" % (db, times))

    def hang(self, verb, db=""):
        self.write("hang/" + verb, db)

    def quiesced(self):
        return (self.state / "quiesced").exists()

    # -- what the tools were asked ----------------------------------------

    def commands(self):
        p = self.state / "commands.log"
        if not p.exists():
            return []
        return [json.loads(l) for l in p.read_text().splitlines()]

    def lines(self, tool="db2"):
        return [c["cmd"] for c in self.commands() if c["tool"] == tool]

    def index(self, prefix, start=0):
        """Position of the first db2 command starting with prefix."""
        for i, c in enumerate(self.lines()[start:], start):
            if c.upper().startswith(prefix.upper()):
                return i
        return -1

    def leftovers(self):
        return sorted(os.listdir(self.backup))


@pytest.fixture
def db2():
    d = Db2()
    yield d
    d.remove()


def instance_conf(db2, databases, **over):
    conf = {"datastore": "db2", "instance_user": USER,
            "databases": databases, "backup_dir": str(db2.backup),
            "exec_prefix": EXEC_PREFIX,
            "service": {"health_timeout": 5}}
    conf.update(over)
    return conf


def mount_db2(env, db2, databases=("SAMPLE", "ORDERS"), **over):
    env.instances[INST] = instance_conf(db2, list(databases), **over)
    env.init()
    m = env.mount()
    return m, m.inst(INST)


@pytest.fixture
def two_dbs(db2):
    db2.add_db("SAMPLE", b"sample rows v1\n")
    db2.add_db("ORDERS", b"orders rows v1\n")
    return db2


def snapshot(util, inst, label, strategy=None):
    """snapshots/<label>, completed; its timestamp once backups/ lists it
    (the job's record says "completed" a moment before the listing is
    refreshed)."""
    ts, _ = util.snapshot_via_mount(inst, label, strategy)
    deadline = time.monotonic() + 10
    while not (inst / "backups" / ts).exists():
        assert time.monotonic() < deadline, "backups/%s never appeared" % ts
        time.sleep(0.05)
    return ts


def failed_snapshot(util, inst, label, strategy=None):
    """Start a snapshot that must fail; its job JSON."""
    assert util.create_job_file(inst / "snapshots" / label, strategy) == 0
    job = util.wait_job(inst / "snapshots" / label)
    assert job["state"] == "failed", job
    return job


def tar_of(path):
    data = Path(path).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return data, {m.name: t.extractfile(m).read() for m in t.getmembers()}


def restore(util, m, ts, name="r1", inst=INST, src=None):
    return util.restore_errno(src or m.backup(ts, INST),
                              m.inst(inst) / "restore" / name)


# ---------------------------------------------------------------------------
# the stand-in itself


def test_standin_rejects_other_command_lines(util, db2):
    """The stand-in fails loudly (exit 8, the command on stderr) on a
    command line the driver would not issue: the driver's syntax is
    checked, not guessed."""
    sh = 'p="$HOME/sqllib/db2profile"; . "$p"; exec "$@"'
    r = util.run(["runuser", "-u", USER, "--", "env",
                  "PATH=%s:/usr/bin:/bin" % STANDIN, "sh", "-c", sh, "x",
                  "db2", "BACKUP", "DB", "SAMPLE", "TO", str(db2.backup)])
    assert r.returncode == 8, r.describe()
    assert "BACKUP DB SAMPLE TO" in r.stderr
    # not as the instance owner: the CLP's authority error
    r = util.run(["env", "DB2INSTANCE=" + USER,
                  "BFS_DB2_STANDIN_STATE=%s" % db2.state,
                  str(STANDIN / "db2level")])
    assert r.returncode == 4 and "SQL1092N" in r.stdout, r.describe()


# ---------------------------------------------------------------------------
# backups


@pytest.mark.log_errors(FAILED)
def test_online_backup_refused_without_archive_logging(util, env, two_dbs):
    m, inst = mount_db2(env, two_dbs)
    job = failed_snapshot(util, inst, "online")
    assert "online backups need archive logging (LOGARCHMETH1)" in \
        job["error"], job
    assert '"mode": "offline"' in job["error"]
    last = util.status(inst)["last"]["backup"]
    assert last["state"] == "failed" and "LOGARCHMETH1" in last["error"]
    assert two_dbs.index("BACKUP") == -1, two_dbs.lines()
    assert m.backups(INST) == []
    assert two_dbs.leftovers() == []


def test_online_backup_includes_logs(util, env, two_dbs):
    for db in ("SAMPLE", "ORDERS"):
        two_dbs.set_cfg(db, LOGARCHMETH1="DISK:/archive/")
        two_dbs.in_use(db)      # online: applications stay connected
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "nightly")
    lines = two_dbs.lines()
    for db in ("SAMPLE", "ORDERS"):
        want = "BACKUP DATABASE %s ONLINE TO %s/.backupfs-db2-" % (
            db, two_dbs.backup)
        hit = [l for l in lines if l.startswith(want)]
        assert len(hit) == 1 and hit[0].endswith(" INCLUDE LOGS"), lines
    assert two_dbs.index("QUIESCE") == -1, lines
    assert len(two_dbs.lines("db2ckbkp")) == 2
    # every tool ran as the instance owner in its environment
    assert {(c["user"], c["instance"]) for c in two_dbs.commands()} == \
        {(USER, USER)}
    assert two_dbs.leftovers() == []
    assert util.xattr(m.backup(ts, INST), "format") == "db2-images-tar"


def test_backup_stream_is_manifest_and_images(util, env, two_dbs):
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "b", '{"mode": "offline"}')
    data, members = tar_of(m.backup(ts, INST))
    names = list(members)
    assert names[0] == "backupfs-db2.json", names
    man = json.loads(members["backupfs-db2.json"])
    assert man["format"] == "db2-images-tar" and man["version"] == 1
    assert man["mode"] == "offline" and man["instance"] == USER.upper()
    assert [d["name"] for d in man["databases"]] == ["SAMPLE", "ORDERS"]
    images = [i for d in man["databases"] for i in d["images"]]
    # relative names, exactly the images (not Trove's absolute paths)
    assert sorted(names[1:]) == sorted(images)
    for d in man["databases"]:
        assert d["online"] is False
        for i in d["images"]:
            assert i.startswith("%s.0.%s.DBPART000.%s." % (
                d["name"], USER, d["timestamp"])), i
            assert b"sample rows v1" in members[i] or \
                b"orders rows v1" in members[i]
    assert util.xattr(m.backup(ts, INST), "version") == "11.5.8.0"
    assert "offline" in util.xattr(m.backup(ts, INST), "strategy")


def test_offline_backup_quiesces_and_unquiesces(util, env, two_dbs):
    two_dbs.in_use("SAMPLE")    # only FORCE CONNECTIONS lets BACKUP run
    m, inst = mount_db2(env, two_dbs)
    util.snapshot_via_mount(inst, "cold", '{"mode": "offline"}')
    q = two_dbs.index("QUIESCE INSTANCE %s RESTRICTED ACCESS IMMEDIATE "
                      "FORCE CONNECTIONS" % USER.upper())
    b1 = two_dbs.index("BACKUP DATABASE SAMPLE TO ")
    b2 = two_dbs.index("BACKUP DATABASE ORDERS TO ")
    u = two_dbs.index("UNQUIESCE INSTANCE " + USER.upper())
    assert 0 <= q < b1 < b2 < u, two_dbs.lines()
    assert not two_dbs.quiesced()
    assert two_dbs.leftovers() == []


@pytest.mark.log_errors(FAILED)
def test_offline_backup_failure_still_unquiesces(util, env, two_dbs):
    two_dbs.fail("BACKUP", "ORDERS")
    m, inst = mount_db2(env, two_dbs)
    job = failed_snapshot(util, inst, "cold", '{"mode": "offline"}')
    assert "SQL2062N" in job["error"], job
    lines = two_dbs.lines()
    assert two_dbs.index("BACKUP DATABASE ORDERS") < \
        two_dbs.index("UNQUIESCE INSTANCE"), lines
    assert not two_dbs.quiesced()
    assert m.backups(INST) == []
    assert two_dbs.leftovers() == []


@pytest.mark.log_errors(FAILED)
def test_free_space_checked_first(util, env, two_dbs):
    """backup_dir on a real 1 MiB tmpfs; GET_DBSIZE_INFO says 64 MiB."""
    two_dbs.write("dbs/SAMPLE/size", str(64 << 20))
    r = util.run(["mount", "-t", "tmpfs", "-o",
                  "size=1m,mode=0755,uid=%d,gid=%d" % (
                      two_dbs.pw.pw_uid, two_dbs.pw.pw_gid),
                  "bfs-db2-test", two_dbs.backup])
    assert r.returncode == 0, r.describe()
    try:
        m, inst = mount_db2(env, two_dbs)
        job = failed_snapshot(util, inst, "big", '{"mode": "offline"}')
        assert "not enough space in '%s'" % two_dbs.backup in job["error"]
        assert "1 MiB free, about 65 MiB needed" in job["error"], job
        assert two_dbs.index("QUIESCE") == -1, two_dbs.lines()
        assert two_dbs.index("BACKUP") == -1
    finally:
        util.run(["umount", two_dbs.backup])


def test_strategy_tables_pick_databases(util, env, two_dbs):
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "one", '{"mode": "offline", '
                                    '"tables": ["orders"]}')
    _, members = tar_of(m.backup(ts, INST))
    man = json.loads(members["backupfs-db2.json"])
    assert [d["name"] for d in man["databases"]] == ["ORDERS"]
    assert two_dbs.index("BACKUP DATABASE SAMPLE") == -1


def test_backupctl_tables_lists_the_databases(util, env, two_dbs):
    mount_db2(env, two_dbs)
    got = json.loads(env.ctl("tables", INST, "--json").stdout)
    assert sorted(got) == ["ORDERS", "SAMPLE"]


def test_incremental_and_bad_strategies_refused(util, env, two_dbs):
    m, inst = mount_db2(env, two_dbs)
    for i, s in enumerate(('{"type": "incremental"}',
                           '{"format": "agnostic"}', '{"tables": ["NOPE"]}',
                           '{"snapshot": "btrfs"}')):
        assert util.create_job_file(inst / "snapshots" / ("x%d" % i), s) \
            == errno.EINVAL, s
    assert two_dbs.commands() == []


# ---------------------------------------------------------------------------
# restores


def test_restore_offline_image(util, env, two_dbs):
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "cold", '{"mode": "offline"}')
    two_dbs.set_content("SAMPLE", b"changed after the backup\n")
    two_dbs.set_content("ORDERS", b"orders changed too\n")
    n = len(two_dbs.commands())
    assert restore(util, m, ts) == 0
    assert two_dbs.content("SAMPLE") == b"sample rows v1\n"
    assert two_dbs.content("ORDERS") == b"orders rows v1\n"
    after = [c["cmd"] for c in two_dbs.commands()[n:] if c["tool"] == "db2"]
    restores = [l for l in after if l.startswith("RESTORE DATABASE")]
    assert len(restores) == 2, after
    for l in restores:
        assert " TAKEN AT " in l and l.endswith(
            " REPLACE EXISTING WITHOUT ROLLING FORWARD WITHOUT PROMPTING"), l
    assert not [l for l in after if l.startswith("ROLLFORWARD")], after
    assert not two_dbs.quiesced()
    assert two_dbs.leftovers() == []
    assert util.status(inst)["last"]["restore"]["state"] == "completed"
    assert util.status(inst)["state"] == "ACTIVE"


def test_restore_online_image_rolls_forward(util, env, two_dbs):
    for db in ("SAMPLE", "ORDERS"):
        two_dbs.set_cfg(db, LOGARCHMETH1="LOGRETAIN")
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "hot")
    two_dbs.set_content("SAMPLE", b"changed after the backup\n")
    n = len(two_dbs.commands())
    assert restore(util, m, ts) == 0
    assert two_dbs.content("SAMPLE") == b"sample rows v1\n"
    after = [c["cmd"] for c in two_dbs.commands()[n:] if c["tool"] == "db2"]
    for db in ("SAMPLE", "ORDERS"):
        r = [l for l in after
             if l.startswith("RESTORE DATABASE %s FROM %s/.backupfs-db2-" % (
                 db, two_dbs.backup))]
        assert len(r) == 1 and " LOGTARGET " in r[0], after
        assert r[0].endswith(" REPLACE EXISTING WITHOUT PROMPTING"), r
        rf = [l for l in after if l.startswith("ROLLFORWARD DATABASE %s TO "
                                               "END OF BACKUP AND COMPLETE "
                                               "OVERFLOW LOG PATH (" % db)]
        assert len(rf) == 1, after
        assert two_dbs.db_status(db)["rollforward_pending"] is None
    assert not two_dbs.quiesced()
    assert two_dbs.leftovers() == []


@pytest.mark.log_errors(FAILED, r"db2ckbkp")
def test_corrupt_image_is_refused_untouched(util, env, two_dbs, tmp_path):
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "cold", '{"mode": "offline"}')
    data = bytearray(Path(m.backup(ts, INST)).read_bytes())
    # one bit of SAMPLE's data inside its image: the tar stays valid
    at = data.find(b"sample rows v1")
    assert at > 0
    data[at] ^= 0x01
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    two_dbs.set_content("SAMPLE", b"current\n")
    n = len(two_dbs.commands())
    err = restore(util, m, ts, src=bad)
    assert err in (errno.EINVAL, errno.EBADMSG), os.strerror(err)
    last = util.status(inst)["last"]["restore"]
    assert last["state"] == "failed" and "db2ckbkp" in last["error"], last
    assert two_dbs.content("SAMPLE") == b"current\n"
    after = [c["cmd"] for c in two_dbs.commands()[n:]]
    assert not [l for l in after if l.startswith(("RESTORE", "QUIESCE"))]
    assert two_dbs.leftovers() == []


def test_restore_is_maintenance(util, env, two_dbs):
    """While the RESTOREs run the instance is in MAINTENANCE: snapshots
    and other restores get EBUSY, backups stay readable."""
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "cold", '{"mode": "offline"}')
    want = Path(m.backup(ts, INST)).read_bytes()
    two_dbs.set_content("SAMPLE", b"changed\n")
    two_dbs.hang("RESTORE", "SAMPLE")
    res = {}
    t = threading.Thread(target=lambda: res.update(err=restore(util, m, ts)))
    t.start()
    try:
        wait_for(lambda: (two_dbs.state / "hang" / "RESTORE.pid").exists(),
                 "the RESTORE to start")
        assert util.status(inst)["state"] == "MAINTENANCE"
        assert util.create_job_file(inst / "snapshots" / "during") == \
            errno.EBUSY
        assert restore(util, m, ts, name="r2") == errno.EBUSY
        assert Path(m.backup(ts, INST)).read_bytes() == want
    finally:
        (two_dbs.state / "hang" / "RESTORE").unlink()
        t.join(60)
    assert res["err"] == 0
    assert two_dbs.content("SAMPLE") == b"sample rows v1\n"
    assert util.status(inst)["state"] == "ACTIVE"


@pytest.mark.log_errors(FAILED)
def test_failing_restore_rolls_back(util, env, two_dbs):
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "cold", '{"mode": "offline"}')
    two_dbs.set_content("SAMPLE", b"sample now\n")
    two_dbs.set_content("ORDERS", b"orders now\n")
    two_dbs.fail("RESTORE", "ORDERS")     # SAMPLE restored, ORDERS breaks
    n = len(two_dbs.commands())
    assert restore(util, m, ts) == errno.EIO
    last = util.status(inst)["last"]["restore"]
    assert "SQL2062N" in last["error"], last
    # both back as they were before the restore, usable
    assert two_dbs.content("SAMPLE") == b"sample now\n"
    assert two_dbs.content("ORDERS") == b"orders now\n"
    for db in ("SAMPLE", "ORDERS"):
        st = two_dbs.db_status(db)
        assert not st.get("restore_pending") and \
            not st.get("rollforward_pending"), (db, st)
    after = [c["cmd"] for c in two_dbs.commands()[n:] if c["tool"] == "db2"]
    safety = [l for l in after if l.startswith("RESTORE DATABASE") and
              "/safety " in l]
    assert len(safety) == 2, after
    assert not two_dbs.quiesced()
    assert two_dbs.leftovers() == []


@pytest.mark.log_errors(FAILED, r"(?i)roll back|rollback")
def test_failed_rollback_is_retried_at_the_next_start(util, env, two_dbs):
    """RESTORE of ORDERS fails, and so does its rollback: the instance
    stays quiesced with the safety images kept; the next mount restores
    them and unquiesces."""
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "cold", '{"mode": "offline"}')
    two_dbs.set_content("SAMPLE", b"sample now\n")
    two_dbs.set_content("ORDERS", b"orders now\n")
    two_dbs.fail("RESTORE", "ORDERS", times=2)
    assert restore(util, m, ts) == errno.EIO
    err = util.status(inst)["last"]["restore"]["error"]
    assert "the rollback failed too" in err and "stays quiesced" in err, err
    assert two_dbs.quiesced()
    assert two_dbs.content("SAMPLE") == b"sample now\n"     # rolled back
    assert two_dbs.db_status("ORDERS")["restore_pending"]   # broken
    assert len(two_dbs.leftovers()) == 1                    # safety kept
    m.remount()
    assert two_dbs.content("SAMPLE") == b"sample now\n"
    assert two_dbs.content("ORDERS") == b"orders now\n"
    assert not two_dbs.db_status("ORDERS")["restore_pending"]
    assert not two_dbs.quiesced()
    assert two_dbs.leftovers() == []


@pytest.mark.log_errors(FAILED)
def test_failing_rollforward_rolls_back(util, env, two_dbs):
    for db in ("SAMPLE", "ORDERS"):
        two_dbs.set_cfg(db, LOGARCHMETH1="LOGRETAIN")
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "hot")
    two_dbs.set_content("SAMPLE", b"sample now\n")
    two_dbs.fail("ROLLFORWARD", "SAMPLE")
    assert restore(util, m, ts) != 0
    assert "SQL1273N" in util.status(inst)["last"]["restore"]["error"]
    assert two_dbs.content("SAMPLE") == b"sample now\n"
    assert two_dbs.db_status("SAMPLE").get("rollforward_pending") is None
    assert not two_dbs.quiesced()


def test_restore_into_clone_instance(util, env, two_dbs):
    """A backup of SAMPLE restores into an instance whose only database
    has another name: RESTORE ... INTO."""
    two_dbs.add_db("CLONE", b"the clone's own data\n")
    env.instances["db2b"] = instance_conf(two_dbs, ["CLONE"])
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "s", '{"mode": "offline", '
                                    '"tables": ["SAMPLE"]}')
    assert restore(util, m, ts, inst="db2b") == 0
    assert two_dbs.content("CLONE") == b"sample rows v1\n"
    assert two_dbs.content("SAMPLE") == b"sample rows v1\n"
    assert [l for l in two_dbs.lines() if l.startswith(
        "RESTORE DATABASE SAMPLE FROM") and " INTO CLONE " in l]


def test_restore_into_fresh_instance(util, env, two_dbs):
    """The target database does not exist yet (a freshly deployed
    instance): no safety image for it, RESTORE ... INTO creates it."""
    env.instances["db2b"] = instance_conf(two_dbs, ["NEWDB"])
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "s", '{"mode": "offline", '
                  '"tables": ["ORDERS"]}')
    assert not two_dbs.exists("NEWDB")
    assert restore(util, m, ts, inst="db2b") == 0
    assert two_dbs.content("NEWDB") == b"orders rows v1\n"
    assert two_dbs.leftovers() == []


@pytest.mark.log_errors(FAILED)
def test_failed_restore_into_fresh_instance_drops_it(util, env, two_dbs):
    env.instances["db2b"] = instance_conf(two_dbs, ["NEWDB"])
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "s", '{"mode": "offline", '
                  '"tables": ["ORDERS"]}')
    two_dbs.fail("RESTORE", "NEWDB")
    assert restore(util, m, ts, inst="db2b") == errno.EIO
    assert not two_dbs.exists("NEWDB"), two_dbs.lines()
    assert "DROP DATABASE NEWDB" in two_dbs.lines()
    assert not two_dbs.quiesced()


def test_online_restore_logs_in_archive_log_dir(util, env, two_dbs):
    """With archive_log_dir, the image's logs are extracted into a job
    subdirectory of it, removed afterwards; the operator's own archived
    logs there stay."""
    arch = two_dbs.top / "ArchiveLogs"
    two_dbs.mkdir(arch)
    (arch / "S0000007.LOG").write_text("the operator's archived log\n")
    for db in ("SAMPLE", "ORDERS"):
        two_dbs.set_cfg(db, LOGARCHMETH1="DISK:%s/" % arch)
    m, inst = mount_db2(env, two_dbs, archive_log_dir=str(arch))
    ts = snapshot(util, inst, "hot")
    two_dbs.set_content("ORDERS", b"changed\n")
    assert restore(util, m, ts) == 0
    assert two_dbs.content("ORDERS") == b"orders rows v1\n"
    rf = [l for l in two_dbs.lines() if l.startswith("ROLLFORWARD")]
    assert len(rf) == 2 and all(
        "OVERFLOW LOG PATH (%s/.backupfs-db2-" % arch in l for l in rf), rf
    assert sorted(os.listdir(arch)) == ["S0000007.LOG"]
    assert two_dbs.leftovers() == []


@pytest.mark.log_errors(FAILED)
def test_backup_of_two_dbs_refused_by_other_instance(util, env, two_dbs):
    two_dbs.add_db("CLONE", b"the clone's own data\n")
    env.instances["db2b"] = instance_conf(two_dbs, ["CLONE"])
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "s", '{"mode": "offline"}')
    assert restore(util, m, ts, inst="db2b") == errno.EINVAL
    err = util.status(m.inst("db2b"))["last"]["restore"]["error"]
    assert "does not have" in err, err
    assert two_dbs.content("CLONE") == b"the clone's own data\n"


@pytest.mark.log_errors(FAILED)
def test_foreign_file_refused(util, env, two_dbs, tmp_path):
    m, inst = mount_db2(env, two_dbs)
    pgdump = tmp_path / "pg.dump"
    pgdump.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 600)
    assert restore(util, m, None, src=pgdump) == errno.EINVAL
    err = util.status(inst)["last"]["restore"]["error"]
    assert err == "not a DB2 backup: the file is a PostgreSQL pg_dump " \
                  "archive", err
    # a tar, but not ours
    t = tmp_path / "other.tar"
    with tarfile.open(t, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"hi\n"))
    assert restore(util, m, None, src=t, name="r2") == errno.EINVAL
    assert "not a DB2 backup" in \
        util.status(inst)["last"]["restore"]["error"]
    assert two_dbs.commands() == []


# ---------------------------------------------------------------------------
# crash recovery


def kill_daemon(util, m):
    util._killpg(m.proc.pid, signal.SIGKILL)
    m.proc.wait(30)
    r = util.run([util.FUSERMOUNT, "-u", m.mnt], timeout=60)
    assert r.returncode == 0, r.describe()
    m._forget()


def wait_for(pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    pytest.fail("timed out waiting for " + what)


def kill_hung_tool(db2, verb):
    """SIGKILL the stand-in process waiting on hang/<verb>, as the
    crash of a host would end it."""
    pid = int((db2.state / "hang" / (verb + ".pid")).read_text())
    os.kill(pid, signal.SIGKILL)
    (db2.state / "hang" / verb).unlink()


@pytest.mark.log_errors(r"(?i)interrupted")
def test_crash_during_offline_backup(util, env, two_dbs):
    """SIGKILL while the instance is quiesced and the job directory holds
    an image: the next mount unquiesces and removes it."""
    two_dbs.hang("BACKUP")
    m, inst = mount_db2(env, two_dbs)
    assert util.create_job_file(inst / "snapshots" / "doomed",
                                '{"mode": "offline"}') == 0
    wait_for(lambda: (two_dbs.state / "hang" / "BACKUP.pid").exists(),
             "BACKUP to start")
    assert two_dbs.quiesced()
    assert len(two_dbs.leftovers()) == 1
    kill_daemon(util, m)
    kill_hung_tool(two_dbs, "BACKUP")
    m2 = env.mount()
    inst = m2.inst(INST)
    assert not two_dbs.quiesced(), two_dbs.lines()
    assert two_dbs.leftovers() == []
    assert m2.backups(INST) == []
    assert util.read_json(inst / "snapshots" / "doomed")["state"] == "failed"
    assert util.status(inst)["state"] == "ACTIVE"


@pytest.mark.log_errors(r"(?i)interrupted")
def test_crash_during_restore_rolls_back(util, env, two_dbs):
    """SIGKILL in the middle of the RESTOREs (SAMPLE done, ORDERS under
    way): the next mount restores both safety images."""
    m, inst = mount_db2(env, two_dbs)
    ts = snapshot(util, inst, "cold", '{"mode": "offline"}')
    two_dbs.set_content("SAMPLE", b"sample now\n")
    two_dbs.set_content("ORDERS", b"orders now\n")
    two_dbs.hang("RESTORE", "ORDERS")    # SAMPLE restored by then
    holder = {}

    def copy():
        holder["err"] = restore(util, m, ts)

    t = threading.Thread(target=copy)
    t.start()
    wait_for(lambda: (two_dbs.state / "hang" / "RESTORE.pid").exists(),
             "the RESTORE of ORDERS")
    assert two_dbs.content("SAMPLE") == b"sample rows v1\n"
    kill_daemon(util, m)
    t.join(60)
    kill_hung_tool(two_dbs, "RESTORE")
    assert two_dbs.quiesced()
    m2 = env.mount()
    inst = m2.inst(INST)
    assert two_dbs.content("SAMPLE") == b"sample now\n", two_dbs.lines()
    assert two_dbs.content("ORDERS") == b"orders now\n"
    assert not two_dbs.quiesced()
    assert two_dbs.leftovers() == []
    assert util.status(inst)["state"] == "ACTIVE"
