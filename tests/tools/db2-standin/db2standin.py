# SPDX-License-Identifier: Apache-2.0
"""A stand-in for IBM Db2's `db2` CLP, `db2ckbkp` and `db2level`.

Db2 cannot be installed on the test machines (IBM-only downloads), so the
"db2" datastore driver is tested against this.  It accepts exactly the
command lines backupfs issues (keywords case-insensitive, as the CLP
takes them) and fails loudly -- exit status 8, the command on stderr --
on anything else.  It answers with the CLP's message texts and exit
codes (0 done, 1 no rows, 2 warning, 4 DB2/SQL error, 8 system error).

Environment (as ~/sqllib/db2profile of the instance owner sets it):
  DB2INSTANCE            must name the user running the tool (the
                         instance owner), else SQL1390C / SQL1092N
  BFS_DB2_STANDIN_STATE  the state directory

State directory:
  dbs/<DB>/content       the database's data (bytes)
  dbs/<DB>/cfg.json      {"LOGARCHMETH1": "OFF" | "DISK:/x/", "LOGARCHMETH2",
                          "BACKUP_PENDING": false}
  dbs/<DB>/status.json   {"rollforward_pending": null | {...},
                          "restore_pending": false}
  dbs/<DB>/in_use        present: applications are connected (an offline
                         BACKUP or a RESTORE fails with SQL1035N until a
                         QUIESCE ... FORCE CONNECTIONS)
  dbs/<DB>/size          DATABASESIZE that GET_DBSIZE_INFO reports
                         (default: the content's size + 64 KiB)
  quiesced               present: the instance is quiesced
  fail/<VERB>            the next VERB (BACKUP, RESTORE, ROLLFORWARD,
                         DB2CKBKP, QUIESCE, UNQUIESCE, CONNECT) fails; the
                         file may hold "<DB|*> [N]": the database it
                         fails for, and how many times (1); it is removed
                         when it has fired
  hang/<VERB>            the next VERB (of the database the file names,
                         if any) waits until the file is removed (its
                         pid in hang/<VERB>.pid) -- for crash tests
  conn/<pid>             the connection of the shell <pid> (the CLP keeps
                         one per parent process, like its back-end db2bp)
  commands.log           one JSON line per command: tool, argv, user,
                         DB2INSTANCE, exit status

Images are written as real ones are named,
ALIAS.0.instance.DBPART000.yyyymmddhhmmss.001, and hold the database's
content, its configuration, for online backups a log file, and a
SHA-256 over all of it that db2ckbkp checks.
"""

import fcntl
import hashlib
import json
import os
import pwd
import re
import sys
import time

VERSION = "11.5.8.0"
IMAGE_MAGIC = b"BFS-DB2-STANDIN-IMAGE 1\n"
NAME = r"([A-Za-z@#$][A-Za-z0-9@#$]{0,7})"
DIR = r"(/[A-Za-z0-9/._+@-]*)"
TS = r"(\d{14})"

# The command lines backupfs issues, whole (re.fullmatch, keywords in any
# case as the CLP takes them).
GRAMMAR = [
    ("quiesce", r"QUIESCE INSTANCE (\S+) RESTRICTED ACCESS IMMEDIATE "
                r"FORCE CONNECTIONS"),
    ("unquiesce", r"UNQUIESCE INSTANCE (\S+)"),
    ("backup", r"BACKUP DATABASE %s TO %s" % (NAME, DIR)),
    ("backup_online", r"BACKUP DATABASE %s ONLINE TO %s INCLUDE LOGS"
                      % (NAME, DIR)),
    ("get_cfg", r"GET DB CFG FOR %s" % NAME),
    ("connect", r"CONNECT TO %s" % NAME),
    ("connect_reset", r"CONNECT RESET"),
    ("terminate", r"TERMINATE"),
    ("dbsize", r"CALL GET_DBSIZE_INFO\(\?,\?,\?,-1\)"),
    ("log_used", r"SELECT SUM\(TOTAL_LOG_USED_KB\) FROM "
                 r"SYSIBMADM\.LOG_UTILIZATION"),
    ("restore", r"RESTORE DATABASE %s FROM %s TAKEN AT %s(?: INTO %s)?"
                r"(?: LOGTARGET %s)? REPLACE EXISTING"
                r"( WITHOUT ROLLING FORWARD)? WITHOUT PROMPTING"
                % (NAME, DIR, TS, NAME, DIR)),
    ("rollforward", r"ROLLFORWARD DATABASE %s TO END OF BACKUP AND COMPLETE "
                    r"OVERFLOW LOG PATH \(%s\)" % (NAME, DIR)),
    ("drop", r"DROP DATABASE %s" % NAME),
]

OK = "DB20000I  The %s command completed successfully."


class Exit(Exception):
    """Leave with a status, the message on stdout (the CLP's way)."""

    def __init__(self, status, message=""):
        super().__init__(message)
        self.status = status
        self.message = message


def sql_error(text):
    return Exit(4, text)


def not_found(db):
    return sql_error('SQL1013N  The database alias name or database name '
                     '"%s" could not be found.  SQLSTATE=42705' % db)


def in_use():
    return sql_error("SQL1035N  The operation failed because the specified "
                     "database cannot be connected to in the mode "
                     "specified.  SQLSTATE=57019")


class State:
    def __init__(self, root):
        self.root = root
        self.lock = None  # the state's lock file, held by a command

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    # -- files, written atomically ------------------------------------

    def write(self, rel, data):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = p + ".tmp%d" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.replace(tmp, p)

    def read(self, rel, default=None):
        try:
            with open(self.path(rel), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return default

    def exists(self, rel):
        return os.path.exists(self.path(rel))

    def remove(self, rel):
        try:
            os.unlink(self.path(rel))
        except FileNotFoundError:
            pass

    # -- databases ------------------------------------------------------

    def db_exists(self, db):
        return os.path.isdir(self.path("dbs", db))

    def db_need(self, db):
        if not self.db_exists(db):
            raise not_found(db)

    def cfg(self, db):
        c = {"LOGARCHMETH1": "OFF", "LOGARCHMETH2": "OFF",
             "BACKUP_PENDING": False}
        c.update(json.loads(self.read("dbs/%s/cfg.json" % db, b"{}")))
        return c

    def set_cfg(self, db, c):
        self.write("dbs/%s/cfg.json" % db, json.dumps(c))

    def status(self, db):
        s = {"rollforward_pending": None, "restore_pending": False}
        s.update(json.loads(self.read("dbs/%s/status.json" % db, b"{}")))
        return s

    def set_status(self, db, s):
        self.write("dbs/%s/status.json" % db, json.dumps(s))

    def content(self, db):
        return self.read("dbs/%s/content" % db, b"")

    # -- fault injection ------------------------------------------------

    def fires(self, verb, *dbs):
        """The one-shot failure fail/<verb> applies to one of dbs."""
        rel = "fail/" + verb
        data = self.read(rel)
        if data is None:
            return False
        words = data.decode().split()
        want = words[0].upper() if words else "*"
        left = int(words[1]) if len(words) > 1 else 1
        if want != "*" and want not in [d.upper() for d in dbs if d]:
            return False
        if left > 1:
            self.write(rel, "%s %d" % (want, left - 1))
        else:
            self.remove(rel)
        return True

    def hang(self, verb, *dbs):
        """Wait while hang/<verb> exists (if it names a database, only for
        that one)."""
        rel = "hang/" + verb
        data = self.read(rel)
        if data is None:
            return
        want = data.decode().strip().upper()
        if want and want not in [d.upper() for d in dbs if d]:
            return
        self.write(rel + ".pid", "%d\n" % os.getpid())
        # other commands go on meanwhile, as they would beside a long
        # BACKUP or RESTORE of a real instance
        if self.lock:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
        while self.exists(rel):
            time.sleep(0.05)
        if self.lock:
            fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.remove(rel + ".pid")


def recoverable(cfg):
    return any(cfg.get(k, "OFF").upper() != "OFF"
               for k in ("LOGARCHMETH1", "LOGARCHMETH2"))


def image_bytes(header, content):
    head = json.dumps(header, sort_keys=True).encode() + b"\n"
    body = head + content
    digest = hashlib.sha256(body).hexdigest().encode()
    return IMAGE_MAGIC + body + b"\nSHA256 " + digest + b"\n"


def image_parse(data):
    """(header, content) of an image, or raise ValueError."""
    if not data.startswith(IMAGE_MAGIC):
        raise ValueError("not a backup image (bad header)")
    body = data[len(IMAGE_MAGIC):]
    m = re.search(rb"\nSHA256 ([0-9a-f]{64})\n\Z", body)
    if not m:
        raise ValueError("the image is truncated (no trailer)")
    body = body[:m.start()]
    if hashlib.sha256(body).hexdigest().encode() != m.group(1):
        raise ValueError("checksum mismatch")
    head, _, content = body.partition(b"\n")
    header = json.loads(head)
    if len(content) != header["content_len"]:
        raise ValueError("content length mismatch")
    return header, content


def image_name(db, instance, ts):
    return "%s.0.%s.DBPART000.%s.001" % (db, instance, ts)


def find_image(directory, db, ts):
    pat = re.compile(r"%s\.0\.[A-Za-z0-9_-]+\.DBPART000\.%s\.001\Z"
                     % (re.escape(db), ts))
    try:
        names = sorted(n for n in os.listdir(directory) if pat.match(n))
    except OSError:
        return None
    return os.path.join(directory, names[0]) if names else None


def dir_ok(d):
    return os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK)


# ---------------------------------------------------------------------------
# db2


class Clp:
    def __init__(self, state, instance):
        self.s = state
        self.instance = instance
        self.conn_rel = "conn/%d" % os.getppid()

    def connected(self):
        db = self.s.read(self.conn_rel)
        if db is None:
            raise sql_error("SQL1024N  A database connection does not "
                            "exist.  SQLSTATE=08003")
        return db.decode()

    def check_instance(self, name):
        if name.upper() != self.instance.upper():
            raise Exit(8, "db2-standin: instance %r is not DB2INSTANCE %r"
                       % (name, self.instance))

    def quiesce(self, name):
        self.check_instance(name)
        self.s.hang("QUIESCE")
        if self.s.fires("QUIESCE"):
            raise sql_error("SQL1371W  Injected QUIESCE failure.")
        self.s.write("quiesced", self.instance + "\n")
        # FORCE CONNECTIONS
        for db in os.listdir(self.s.path("dbs")):
            self.s.remove("dbs/%s/in_use" % db)
        for c in os.listdir(self.s.path("conn")):
            self.s.remove("conn/" + c)
        return 0, OK % "QUIESCE INSTANCE"

    def unquiesce(self, name):
        self.check_instance(name)
        if self.s.fires("UNQUIESCE"):
            raise sql_error("SQL1371W  Injected UNQUIESCE failure.")
        self.s.remove("quiesced")
        return 0, OK % "UNQUIESCE INSTANCE"

    def backup(self, db, directory, online=False):
        db = db.upper()
        s = self.s
        s.db_need(db)
        st = s.status(db)
        if st["restore_pending"] or st["rollforward_pending"]:
            raise sql_error('SQL1117N  A connection to or activation of '
                            'database "%s" cannot be made because of '
                            'ROLL-FORWARD PENDING.  SQLSTATE=57019' % db)
        if not dir_ok(directory):
            raise sql_error('SQL2036N  The path for the file or device "%s" '
                            'is not valid.' % directory)
        cfg = s.cfg(db)
        if online and (not recoverable(cfg) or cfg["BACKUP_PENDING"]):
            raise sql_error("SQL2413N  Online backup is not allowed because "
                            "the database is not recoverable or a backup "
                            "pending condition is in effect.")
        if not online and s.exists("dbs/%s/in_use" % db):
            raise in_use()
        s.hang("BACKUP", db)
        if s.fires("BACKUP", db):
            raise sql_error('SQL2062N  An error occurred while accessing '
                            'media "%s".  Reason code: "11".' % directory)
        t = time.time()
        while True:
            ts = time.strftime("%Y%m%d%H%M%S", time.localtime(t))
            path = os.path.join(directory,
                                image_name(db, self.instance, ts))
            if not os.path.exists(path):
                break
            t += 1
        header = {"db": db, "instance": self.instance, "timestamp": ts,
                  "online": online, "cfg": cfg,
                  "content_len": len(s.content(db))}
        if online:
            header["log"] = {"name": "S0000000.LOG",
                             "data": "%s %s" % (db, ts)}
        with open(path, "wb") as f:
            f.write(image_bytes(header, s.content(db)))
        if not online and cfg["BACKUP_PENDING"]:
            cfg["BACKUP_PENDING"] = False
            s.set_cfg(db, cfg)
        return 0, ("\nBackup successful. The timestamp for this backup "
                   "image is : %s\n" % ts)

    def backup_online(self, db, directory):
        return self.backup(db, directory, online=True)

    def get_cfg(self, db):
        db = db.upper()
        self.s.db_need(db)
        c = self.s.cfg(db)
        st = self.s.status(db)
        rows = [
            ("Database configuration release level", "", "0x1500"),
            ("Database release level", "", "0x1500"),
            ("Backup pending", "", "YES" if c["BACKUP_PENDING"] else "NO"),
            ("All committed transactions have been written to disk", "",
             "YES"),
            ("Rollforward pending", "",
             "DATABASE" if st["rollforward_pending"] else "NO"),
            ("Restore pending", "",
             "YES" if st["restore_pending"] else "NO"),
            ("Path to log files", "",
             "/home/%s/%s/NODE0000/SQL00001/LOGSTREAM0000/"
             % (self.instance, self.instance)),
            ("First log archive method", "LOGARCHMETH1", c["LOGARCHMETH1"]),
            ("Archive compression for logarchmeth1", "LOGARCHCOMPR1", "OFF"),
            ("Options for logarchmeth1", "LOGARCHOPT1", ""),
            ("Second log archive method", "LOGARCHMETH2", c["LOGARCHMETH2"]),
            ("Archive compression for logarchmeth2", "LOGARCHCOMPR2", "OFF"),
        ]
        lines = ["", "       Database Configuration for Database %s" % db, ""]
        for text, key, val in rows:
            left = " %s" % text
            tag = "(%s)" % key if key else ""
            lines.append("%s%s = %s" % (left, tag.rjust(57 - len(left)), val))
        return 0, "\n".join(lines) + "\n"

    def connect(self, db):
        db = db.upper()
        s = self.s
        s.db_need(db)
        st = s.status(db)
        if st["restore_pending"]:
            raise sql_error('SQL1119N  A connection to or activation of '
                            'database "%s" cannot be made because a '
                            'previous restore is incomplete or still in '
                            'progress.  SQLSTATE=57019' % db)
        if st["rollforward_pending"]:
            raise sql_error('SQL1117N  A connection to or activation of '
                            'database "%s" cannot be made because of '
                            'ROLL-FORWARD PENDING.  SQLSTATE=57019' % db)
        if s.fires("CONNECT", db):
            raise sql_error("SQL1032N  No start database manager command "
                            "was issued.  SQLSTATE=57019")
        s.write(self.conn_rel, db)
        return 0, ("\n   Database Connection Information\n\n"
                   " Database server        = DB2/LINUXX8664 %s\n"
                   " SQL authorization ID   = %s\n"
                   " Local database alias   = %s\n"
                   % (VERSION, self.instance.upper(), db))

    def connect_reset(self):
        self.s.remove(self.conn_rel)
        return 0, OK % "SQL"

    def terminate(self):
        self.s.remove(self.conn_rel)
        return 0, OK % "TERMINATE"

    def dbsize(self):
        db = self.connected()
        size = self.s.read("dbs/%s/size" % db)
        n = int(size) if size else len(self.s.content(db)) + 65536
        return 0, ("\n  Value of output parameters\n"
                   "  --------------------------\n"
                   "  Parameter Name  : SNAPSHOTTIMESTAMP\n"
                   "  Parameter Value : %s\n\n"
                   "  Parameter Name  : DATABASESIZE\n"
                   "  Parameter Value : %d\n\n"
                   "  Parameter Name  : DATABASECAPACITY\n"
                   "  Parameter Value : 35067944960\n\n"
                   "  Return Status = 0\n"
                   % (time.strftime("%Y-%m-%d-%H.%M.%S.000000"), n))

    def log_used(self):
        db = self.connected()
        kb = int(self.s.read("dbs/%s/log_used_kb" % db, b"4"))
        return 0, ("\n1\n--------------------\n%20d\n\n"
                   "  1 record(s) selected.\n" % kb)

    def restore(self, src, directory, ts, into, logtarget, no_rollfwd):
        src = src.upper()
        target = (into or src).upper()
        s = self.s
        path = find_image(directory, src, ts)
        if not path:
            raise sql_error('SQL2542N  No match for a database image file '
                            'was found based on the source database alias '
                            '"%s" and timestamp "%s" provided.' % (src, ts))
        try:
            with open(path, "rb") as f:
                header, content = image_parse(f.read())
        except (OSError, ValueError, KeyError) as e:
            raise sql_error("SQL2530N  The backup image is corrupted.  "
                            "Restore of database from this backup image "
                            "is not possible. (%s)" % e)
        online = header["online"]
        if online and no_rollfwd:
            raise sql_error("SQL2537N  Roll-forward is required following "
                            "the Restore.")
        existed = s.db_exists(target)
        if existed and s.exists("dbs/%s/in_use" % target):
            raise in_use()
        if logtarget is not None and not dir_ok(logtarget):
            raise sql_error('SQL2036N  The path for the file or device "%s" '
                            'is not valid.' % logtarget)
        s.hang("RESTORE", src, target)
        if s.fires("RESTORE", src, target):
            # a restore that fails half-way leaves the database unusable
            os.makedirs(s.path("dbs", target), exist_ok=True)
            s.write("dbs/%s/content" % target, b"")
            st = s.status(target)
            st["restore_pending"] = True
            s.set_status(target, st)
            raise sql_error('SQL2062N  An error occurred while accessing '
                            'media "%s".  Reason code: "12".' % directory)
        log = None
        if online and logtarget is not None:
            log = header["log"]
            lp = os.path.join(logtarget, log["name"])
            if os.path.exists(lp):
                raise sql_error('SQL2581N  Restore is unable to extract log '
                                'files or restore a log directory from the '
                                'backup image to the specified path.  '
                                'Reason code "3".')
            with open(lp, "w") as f:
                f.write(log["data"])
        os.makedirs(s.path("dbs", target), exist_ok=True)
        s.remove("dbs/%s/size" % target)
        s.write("dbs/%s/content" % target, content)
        cfg = dict(header["cfg"])
        cfg["BACKUP_PENDING"] = False
        s.set_cfg(target, cfg)
        pending = None
        if online:
            pending = {"log": header["log"]["name"],
                       "data": header["log"]["data"]}
        elif recoverable(cfg) and not no_rollfwd:
            pending = {"log": None}
        s.set_status(target, {"rollforward_pending": pending,
                              "restore_pending": False})
        if existed and target == src:
            return 2, ('SQL2540W  Restore is successful, however a warning '
                       '"2539" was encountered during Database Restore '
                       'while processing in No Interrupt mode.')
        return 0, OK % "RESTORE DATABASE"

    def rollforward(self, db, logdir):
        db = db.upper()
        s = self.s
        s.db_need(db)
        st = s.status(db)
        pending = st["rollforward_pending"]
        if not pending:
            raise sql_error('SQL4970N  Roll-forward recovery on database '
                            '"%s" cannot reach the specified stop point '
                            '(end-of-log or point-in-time) because the '
                            'database is not in roll-forward pending '
                            'state.' % db)
        missing = ('SQL1273N  An operation reading the logs on database '
                   '"%s" cannot continue because of a missing log file '
                   '"%s" on database partition "0" and log stream "0".'
                   % (db, pending.get("log") or "S0000000.LOG"))
        if not pending.get("log"):
            raise sql_error(missing)
        lp = os.path.join(logdir, pending["log"])
        try:
            with open(lp) as f:
                data = f.read()
        except OSError:
            raise sql_error(missing)
        if data != pending["data"]:
            raise sql_error(missing)
        if s.fires("ROLLFORWARD", db):
            raise sql_error(missing)
        st["rollforward_pending"] = None
        s.set_status(db, st)
        return 0, ("\n                                 Rollforward Status\n\n"
                   " Input database alias                   = %s\n"
                   " Number of members have returned status = 1\n\n"
                   " Member ID                              = 0\n"
                   " Rollforward status                     = not pending\n"
                   " Next log file to be read               =\n"
                   " Log files processed                    = %s - %s\n"
                   " Last committed transaction             = %s UTC\n\n"
                   + OK % "ROLLFORWARD") % (
                       db, pending["log"], pending["log"],
                       time.strftime("%Y-%m-%d-%H.%M.%S.000000"))

    def drop(self, db):
        db = db.upper()
        s = self.s
        s.db_need(db)
        if s.exists("dbs/%s/in_use" % db):
            raise in_use()
        d = s.path("dbs", db)
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)
        return 0, OK % "DROP DATABASE"


def parse(words):
    """(verb, groups) of a command line, or None."""
    cmd = " ".join(words)
    for verb, pattern in GRAMMAR:
        m = re.fullmatch(pattern, cmd, re.IGNORECASE)
        if m:
            return verb, m.groups()
    return None


# ---------------------------------------------------------------------------
# entry points


def _user():
    return pwd.getpwuid(os.geteuid()).pw_name


def _log(state, tool, argv, status):
    if state is None:
        return
    rec = {"tool": tool, "argv": argv, "cmd": " ".join(argv),
           "user": _user(), "instance": os.environ.get("DB2INSTANCE"),
           "ppid": os.getppid(), "status": status}
    with open(state.path("commands.log"), "a") as f:
        f.write(json.dumps(rec) + "\n")


def _environment(tool):
    """The state, after the checks the real tools' environment implies."""
    inst = os.environ.get("DB2INSTANCE")
    root = os.environ.get("BFS_DB2_STANDIN_STATE")
    if not inst or not root or not os.path.isdir(root):
        raise Exit(4, "SQL1390C  The environment variable DB2INSTANCE is "
                      "not defined or is invalid.")
    if inst != _user():
        raise Exit(4, 'SQL1092N  The requested command or operation failed '
                      'because the user ID does not have the authority to '
                      'perform the requested command or operation.  User '
                      'ID: "%s".' % _user().upper())
    state = State(root)
    for d in ("dbs", "conn", "fail", "hang"):
        os.makedirs(state.path(d), exist_ok=True)
    return state, inst


def _finish(state, tool, argv, status, out, err=""):
    if out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    if err:
        sys.stderr.write(err + "\n")
    sys.stdout.flush()
    try:
        _log(state, tool, argv, status)
    finally:
        os._exit(status)


def main_db2(argv):
    words = argv[1:]
    state = None
    try:
        state, inst = _environment("db2")
        p = parse(words)
        if p is None:
            _finish(state, "db2", words, 8, "",
                    "db2-standin: not a command line backupfs issues: %r"
                    % " ".join(words))
        verb, groups = p
        state.lock = open(state.path(".lock"), "a")
        clp = Clp(state, inst)
        fn = getattr(clp, verb)
        args = list(groups)
        if verb == "restore":
            args[-1] = bool(args[-1])
        fcntl.flock(state.lock, fcntl.LOCK_EX)
        status, out = fn(*args)
        _finish(state, "db2", words, status, out)
    except Exit as e:
        if e.status == 8:
            _finish(state, "db2", words, 8, "", str(e.message))
        _finish(state, "db2", words, e.status, e.message)


def main_db2ckbkp(argv):
    files = argv[1:]
    state = None
    root = os.environ.get("BFS_DB2_STANDIN_STATE")
    if root and os.path.isdir(root):
        state = State(root)
    if not files or any(f.startswith("-") for f in files):
        _finish(state, "db2ckbkp", files, 8, "",
                "db2-standin: db2ckbkp takes image file names only: %r"
                % files)
    lines = []
    errors = 0
    injected = state is not None and state.fires(
        "DB2CKBKP", *[os.path.basename(f).split(".")[0] for f in files])
    for i, f in enumerate(files, 1):
        try:
            with open(f, "rb") as fh:
                image_parse(fh.read())
            if injected:
                raise ValueError("checksum mismatch (injected)")
            lines.append("[%d] Buffers processed:  ####" % i)
        except (OSError, ValueError, KeyError) as e:
            lines.append("[%d] Buffers processed:  #" % i)
            lines.append("ERROR!  %s: %s" % (os.path.basename(f), e))
            errors += 1
    lines.append("")
    if errors:
        lines.append("Image Verification Complete - ERRORS DETECTED:  %d"
                     % errors)
    else:
        lines.append("Image Verification Complete - successful.")
    _finish(state, "db2ckbkp", files, 1 if errors else 0,
            "\n" + "\n".join(lines))


def main_db2level(argv):
    state = None
    try:
        state, inst = _environment("db2level")
        if argv[1:]:
            _finish(state, "db2level", argv[1:], 8, "",
                    "db2-standin: db2level takes no arguments")
        _finish(state, "db2level", [], 0,
                'DB21085I  This instance or install (instance name, where '
                'applicable: "%s") uses "64" bits and DB2 code release '
                '"SQL11058" with level identifier "0609010F".\n'
                'Informational tokens are "DB2 v%s", "s2209201700", '
                '"DYN2209201700AMD64", and Fix Pack "0".\n'
                'Product is installed at "/opt/ibm/db2/V11.5".'
                % (inst, VERSION))
    except Exit as e:
        _finish(state, "db2level", argv[1:], e.status, e.message)
