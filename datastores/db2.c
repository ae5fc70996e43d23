// SPDX-License-Identifier: Apache-2.0
/*
 * The "db2" datastore (Trove's DB2 strategy, made safe to restore).
 *
 *   {"datastore": "db2", "instance_user": "db2inst1",
 *    "databases": ["SAMPLE"], "backup_dir": "/home/db2inst1/db2inst1/backup",
 *    "archive_log_dir": "/home/db2inst1/db2inst1/ArchiveLogs",
 *    "exec_prefix": [...], "service": {...}}
 *
 * Every Db2 tool (db2, db2ckbkp, db2level) runs as instance_user, the
 * instance owner, in the instance's environment: through `runuser -u`
 * (ds_cmd.user), then `sh -c` sourcing ~/sqllib/db2profile when it
 * exists, then exec.  Not `runuser -l`: a login shell resets PATH and the
 * environment the exec prefix set, and reads dotfiles that may print into
 * the output parsed here; db2profile is what IBM's scripts source.  One
 * CLP command per shell, except where a connection must outlive one
 * command (GET_DBSIZE_INFO): the CLP keeps a connection per parent shell,
 * so those run in one `sh` that connects, runs them, and resets.
 *
 * Backup ("snapshots/<label>", native images only):
 *   online (default)   BACKUP DATABASE db ONLINE TO dir INCLUDE LOGS, only
 *                      when archive logging is on (LOGARCHMETH1/2 not OFF)
 *   "mode": "offline"  QUIESCE INSTANCE ... FORCE CONNECTIONS, BACKUP
 *                      DATABASE db TO dir each, UNQUIESCE INSTANCE -- also
 *                      when a backup failed (disruptive: only when asked)
 * into a fresh, journalled job directory of backup_dir, after a free-space
 * check against GET_DBSIZE_INFO; each image is checked with db2ckbkp,
 * then streamed as a pax tar: "backupfs-db2.json" (databases, image
 * timestamps, online or not) first, then the image files by their own
 * names.  "tables" in the strategy picks databases.
 *
 * Verify: the tar holds that manifest and exactly the images it names;
 * extracted into a job directory, each passes db2ckbkp.
 *
 * Restore: extract into a job directory, QUIESCE the instance, take an
 * offline safety backup of every database to be replaced, then per
 * database RESTORE DATABASE ... TAKEN AT ts [INTO target] REPLACE
 * EXISTING (offline images: WITHOUT ROLLING FORWARD; online images:
 * LOGTARGET, then ROLLFORWARD ... TO END OF BACKUP AND COMPLETE), health
 * check, UNQUIESCE.  Any failure restores the safety images (a database
 * that did not exist is dropped) and reports the first error.  The job's
 * journal says which databases were touched, so a crash in the middle is
 * rolled back the same way by recover().
 *
 * A backup of one database restores into an instance configured with
 * one database of another name (a clone): RESTORE ... INTO target.
 *
 * There is no Db2 on the test machines: the driver is tested against the
 * stand-in tests/tools/db2-standin/, which checks every command line
 * below (docs/DB2.md).
 */
#include "db2_int.h"
#include "ds_int.h"
#include "files_int.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB2_ARGS_MAX	   (DB2_DBS_MAX + 16)
#define DB2_OUT_MAX	   (64 * 1024)
#define DB2_QUERY_TIMEOUT  300 /* seconds: queries, QUIESCE, file ops */
#define DB2_MANIFEST_MAX   (64 * 1024)
#define DB2_VERSION_MAX	   32
#define DB2_TAG		   ".backupfs-db2-"
#define DB2_JOURNAL_PREFIX "db2-"
#define DB2_JOURNAL_SUFFIX ".journal"
#define DB2_MARK	   "@@backupfs-db2@@"

/* Source the instance's environment if it is there, then run "$@". */
#define DB2_SH_PROFILE                                                         \
	"p=\"$HOME/sqllib/db2profile\"; if [ -r \"$p\" ]; then . \"$p\"; fi; "

static const char db2_sh_exec[] = DB2_SH_PROFILE "exec \"$@\"";

/* $1 a database, then statements run on one connection, each output
 * preceded by a marker line. */
static const char db2_sh_connected[] =
	DB2_SH_PROFILE "db=$1; shift; db2 connect to \"$db\"; rc=$?; "
		       "[ $rc -lt 4 ] || exit $rc; "
		       "for c do echo '" DB2_MARK "'; db2 \"$c\"; rc=$?; "
		       "[ $rc -lt 4 ] || break; done; "
		       "db2 connect reset >/dev/null 2>&1; "
		       "db2 terminate >/dev/null 2>&1; exit $rc";

/* The default health check: every database accepts a connection (the
 * CLP's messages on stderr, where the reason is taken from). */
static const char db2_sh_health[] =
	DB2_SH_PROFILE "for db do db2 connect to \"$db\" >&2; rc=$?; "
		       "[ $rc -lt 4 ] || exit $rc; "
		       "db2 connect reset >/dev/null 2>&1; done; "
		       "db2 terminate >/dev/null 2>&1; exit 0";

static const char *const db2_keys[] = {
	"instance_user", "databases", "backup_dir", "archive_log_dir",
	"exec_prefix",	 "service",   NULL,
};

struct db2_ds {
	struct bfs_datastore base;
	char *state_dir;
	char *user;	       /* the instance owner */
	char inst[33];	       /* the instance name: the owner, upper case */
	char *backup_dir;      /* where images are written (job dirs) */
	char *archive_log_dir; /* or NULL: logs go into the job dir */
	json_t *databases;     /* array of upper-case aliases */
	struct ds_exec x;
	struct ds_service svc;
};

static struct db2_ds *db2_of(struct bfs_datastore *ds)
{
	return (struct db2_ds *)ds;
}

/* ---- running the tools ----------------------------------------------- */

/* An argv under construction (borrowed strings). */
struct db2_argv {
	const char *v[DB2_ARGS_MAX + 1];
	size_t n;
};

static void db2_arg(struct db2_argv *a, const char *s)
{
	if (a->n < DB2_ARGS_MAX)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* "db2 BACKUP DATABASE SAMPLE TO /x": the command, for reasons. */
static void db2_what(const char *const *words, char *what, size_t cap)
{
	size_t n = 0;

	what[0] = '\0';
	for (; *words && n + 1 < cap; words++)
		n += (size_t)snprintf(what + n, cap - n, "%s%s", n ? " " : "",
				      *words);
}

/*
 * The one place where a Db2 tool's exit status and output become an
 * errno and a reason.  The CLP exits 0 (done), 1 (no rows), 2 (warning),
 * 4 (a DB2 or SQL error, its message on stdout) or 8 (a CLP system
 * error); db2ckbkp and db2level are not the CLP (clp 0): anything but 0
 * is a failure.  The tool's output is logged once here.
 */
static int db2_outcome(const char *const *words, int clp, int rc, int status,
		       const char *out, int quiet, char *err, size_t errlen)
{
	char what[256], msg[512], prev[512];
	char sev;
	int code;

	if (!rc)
		return 0;
	db2_what(words, what, sizeof(what));
	/* killed, timed out, not found, or the sink failed: ds_run knows */
	if (status <= 0 || status >= 126) {
		snprintf(prev, sizeof(prev), "%s", err);
		snprintf(err, errlen, "%s: %s", what, prev);
		return rc;
	}
	if (clp && (status == 1 || status == 2)) {
		if (db2_sql_message(out, msg, sizeof(msg), &code, &sev))
			bfs_info("'%s': %s", what, msg);
		err[0] = '\0';
		return 0;
	}
	if (clp && db2_sql_message(out, msg, sizeof(msg), &code, &sev)) {
		rc = -db2_sql_errno(code);
		snprintf(err, errlen, "%s: %s", what, msg);
	} else {
		snprintf(prev, sizeof(prev), "%s", err);
		snprintf(err, errlen, "%s: %s", what, prev);
		rc = -EIO;
	}
	bfs_log(quiet ? BFS_LOG_DEBUG : BFS_LOG_ERR,
		"'%s' exited with status %d; its output:\n%.4096s", what,
		status, out);
	return rc;
}

/* Run a tool (mkdir, rm, tar, ...) as the instance owner; stdout kept in
 * out[cap] if out. */
static int db2_os(struct db2_ds *d, const char *const *argv, char *out,
		  size_t cap, int quiet, char *err, size_t errlen)
{
	struct ds_cmd cmd = {.argv = argv,
			     .user = d->user,
			     .in_fd = -1,
			     .capture = out,
			     .capture_cap = out ? cap : 0,
			     .timeout = DB2_QUERY_TIMEOUT,
			     .quiet = quiet};

	return ds_run(&d->x, &cmd, err, errlen);
}

/*
 * Run words ("db2", "BACKUP", ...; or "db2ckbkp" ...) in the instance's
 * environment, stdout into out[cap].  timeout 0: none (a BACKUP of a big
 * database takes hours).
 */
static int db2_tool(struct db2_ds *d, const char *const *words, int clp,
		    char *out, size_t cap, int timeout, int quiet, char *err,
		    size_t errlen)
{
	struct db2_argv a = {.n = 0};
	struct ds_cmd cmd = {.user = d->user,
			     .in_fd = -1,
			     .capture = out,
			     .capture_cap = cap,
			     .timeout = timeout,
			     .quiet = 1}; /* logged in db2_outcome() */
	const char *const *w;
	int rc;

	db2_arg(&a, "sh");
	db2_arg(&a, "-c");
	db2_arg(&a, db2_sh_exec);
	db2_arg(&a, "backupfs-db2");
	for (w = words; *w; w++)
		db2_arg(&a, *w);
	cmd.argv = a.v;
	rc = ds_run(&d->x, &cmd, err, errlen);
	return db2_outcome(words, clp, rc, cmd.status, out, quiet, err, errlen);
}

static int db2_clp(struct db2_ds *d, const char *const *words, char *out,
		   size_t cap, int timeout, char *err, size_t errlen)
{
	return db2_tool(d, words, 1, out, cap, timeout, 0, err, errlen);
}

/* Statements on one connection to db; their outputs follow DB2_MARK
 * lines in out. */
static int db2_connected(struct db2_ds *d, const char *db,
			 const char *const *stmts, char *out, size_t cap,
			 int quiet, char *err, size_t errlen)
{
	struct db2_argv a = {.n = 0};
	struct ds_cmd cmd = {.user = d->user,
			     .in_fd = -1,
			     .capture = out,
			     .capture_cap = cap,
			     .timeout = DB2_QUERY_TIMEOUT,
			     .quiet = 1};
	struct db2_argv w = {.n = 0};
	const char *const *s;
	int rc;

	db2_arg(&a, "sh");
	db2_arg(&a, "-c");
	db2_arg(&a, db2_sh_connected);
	db2_arg(&a, "backupfs-db2");
	db2_arg(&a, db);
	db2_arg(&w, "db2 CONNECT TO");
	db2_arg(&w, db);
	for (s = stmts; *s; s++) {
		db2_arg(&a, *s);
		db2_arg(&w, "; db2");
		db2_arg(&w, *s);
	}
	cmd.argv = a.v;
	rc = ds_run(&d->x, &cmd, err, errlen);
	return db2_outcome(w.v, 1, rc, cmd.status, out, quiet, err, errlen);
}

/* The k-th (1-based) statement's output of db2_connected() (a new
 * string), or NULL. */
static char *db2_section(const char *out, int k)
{
	const char *p = out, *next;

	while (k-- > 0) {
		p = strstr(p, DB2_MARK "\n");
		if (!p)
			return NULL;
		p += sizeof(DB2_MARK);
	}
	next = strstr(p, DB2_MARK "\n");
	return strndup(p, next ? (size_t)(next - p) : strlen(p));
}

/* ---- open, close, strategy ------------------------------------------- */

static void db2_close(struct bfs_datastore *ds)
{
	struct db2_ds *d = db2_of(ds);

	ds_service_release(&d->svc);
	ds_exec_release(&d->x);
	json_decref(d->databases);
	free(d->state_dir);
	free(d->user);
	free(d->backup_dir);
	free(d->archive_log_dir);
	free(d);
}

static int db2_conf_str(json_t *conf, const char *key, const char *dflt,
			char **out)
{
	json_t *v = json_object_get(conf, key);

	*out = NULL;
	if (v && (!json_is_string(v) ||
		  strlen(json_string_value(v)) != json_string_length(v)))
		return -EINVAL;
	if (!v && !dflt)
		return 0;
	*out = strdup(v ? json_string_value(v) : dflt);
	return *out ? 0 : -ENOMEM;
}

static int db2_in(json_t *names, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v)
	{
		if (!strcasecmp(json_string_value(v), name))
			return 1;
	}
	return 0;
}

/* A checked, upper-cased copy of an array of aliases (new). */
static int db2_names(json_t *arr, json_t **out, char *err, size_t errlen,
		     const char *what)
{
	char name[DB2_DBNAME_MAX + 1];
	json_t *v, *names;
	size_t i;

	*out = NULL;
	if (!json_is_array(arr) || !json_array_size(arr) ||
	    json_array_size(arr) > DB2_DBS_MAX) {
		snprintf(err, errlen,
			 "%s must be a non-empty array of database names (at "
			 "most %d)",
			 what, DB2_DBS_MAX);
		return -EINVAL;
	}
	names = json_array();
	if (!names)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);

		if (!s || db2_check_dbname(s)) {
			snprintf(err, errlen,
				 "%s: '%s' is not a Db2 database name (1 to "
				 "8 of A-Z, 0-9, @, #, $; not a digit first)",
				 what, s ? s : "?");
			json_decref(names);
			return -EINVAL;
		}
		snprintf(name, sizeof(name), "%s", s);
		db2_upper(name);
		if (db2_in(names, name)) {
			snprintf(err, errlen, "%s: '%s' is listed twice", what,
				 name);
			json_decref(names);
			return -EINVAL;
		}
		json_array_append_new(names, json_string(name));
	}
	*out = names;
	return 0;
}

static int db2_parse_conf(struct db2_ds *d, const char *instance, json_t *conf,
			  char *err, size_t errlen)
{
	const char *bad = NULL;

	if (db2_conf_str(conf, "instance_user", "db2inst1", &d->user) ||
	    db2_check_user(d->user))
		bad = "\"instance_user\" (the instance owner's login name)";
	else if (db2_conf_str(conf, "backup_dir", NULL, &d->backup_dir) ||
		 db2_check_dir(d->backup_dir))
		bad = "\"backup_dir\" (an absolute path of A-Z a-z 0-9 / . _ "
		      "- + @)";
	else if (db2_conf_str(conf, "archive_log_dir", NULL,
			      &d->archive_log_dir) ||
		 (d->archive_log_dir && db2_check_dir(d->archive_log_dir)))
		bad = "\"archive_log_dir\" (an absolute path of A-Z a-z 0-9 / "
		      ". _ - + @)";
	if (bad) {
		snprintf(err, errlen, "instance '%s' needs a valid %s",
			 instance, bad);
		return -EINVAL;
	}
	snprintf(d->inst, sizeof(d->inst), "%s", d->user);
	db2_upper(d->inst);
	if (!json_object_get(conf, "databases")) {
		snprintf(err, errlen,
			 "instance '%s' needs \"databases\": the names of its "
			 "databases",
			 instance);
		return -EINVAL;
	}
	return db2_names(json_object_get(conf, "databases"), &d->databases, err,
			 errlen, "\"databases\"");
}

/* db2start, db2stop force, and a connection to every database: an
 * operator with systemd or a container runtime overrides them. */
static int db2_parse_service(struct db2_ds *d, json_t *conf, char *err,
			     size_t errlen)
{
	const char *start[] = {"sh",	       "-c",	   db2_sh_exec,
			       "backupfs-db2", "db2start", NULL};
	const char *stop[] = {"sh",	 "-c",	  db2_sh_exec, "backupfs-db2",
			      "db2stop", "force", NULL};
	struct db2_argv health = {.n = 0};
	json_t *v;
	size_t i;

	db2_arg(&health, "sh");
	db2_arg(&health, "-c");
	db2_arg(&health, db2_sh_health);
	db2_arg(&health, "backupfs-db2");
	json_array_foreach(d->databases, i, v)
		db2_arg(&health, json_string_value(v));
	return ds_service_parse(conf, start, stop, health.v, d->user, &d->svc,
				err, errlen);
}

static int db2_open(const char *instance, json_t *conf, const char *state_dir,
		    struct bfs_datastore **out, char *err, size_t errlen)
{
	struct db2_ds *d;
	int rc;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	rc = db2_parse_conf(d, instance, conf, err, errlen);
	if (!rc)
		rc = ds_exec_parse(conf, &d->x, err, errlen);
	if (!rc)
		rc = db2_parse_service(d, conf, err, errlen);
	if (!rc) {
		d->state_dir = strdup(state_dir);
		rc = d->state_dir ? 0 : -ENOMEM;
	}
	if (rc) {
		db2_close(&d->base);
		return rc;
	}
	*out = &d->base;
	return 0;
}

/* The strategy, and the databases it backs up (a new array). */
static int db2_strategy(struct db2_ds *d, json_t *strategy,
			struct ds_strategy *s, json_t **dbs, char *err,
			size_t errlen)
{
	json_t *v;
	size_t i;
	int rc;

	*dbs = NULL;
	rc = ds_strategy_parse(strategy, "db2", NULL, s, err, errlen);
	if (rc)
		return rc;
	if (s->format == DS_FORMAT_AGNOSTIC) {
		snprintf(err, errlen,
			 "DB2 backups are native images (BACKUP DATABASE): "
			 "there is no \"format\": \"agnostic\"");
		return -EINVAL;
	}
	if (s->type == DS_TYPE_INCREMENTAL) {
		snprintf(err, errlen,
			 "incremental DB2 backups are not supported (they need "
			 "TRACKMOD and the whole chain of images to restore); "
			 "a full backup stores only the chunks that changed");
		return -EINVAL;
	}
	if (!s->tables) {
		*dbs = json_incref(d->databases);
		return 0;
	}
	rc = db2_names(s->tables, dbs, err, errlen, "strategy \"tables\"");
	if (rc)
		return rc;
	json_array_foreach(*dbs, i, v)
	{
		if (!db2_in(d->databases, json_string_value(v))) {
			snprintf(err, errlen,
				 "strategy \"tables\": '%s' is not a database "
				 "of this instance (\"databases\")",
				 json_string_value(v));
			json_decref(*dbs);
			*dbs = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

static int db2_check_strategy(struct bfs_datastore *ds, json_t *strategy,
			      char *err, size_t errlen)
{
	struct ds_strategy s;
	json_t *dbs;
	int rc;

	rc = db2_strategy(db2_of(ds), strategy, &s, &dbs, err, errlen);
	json_decref(dbs);
	return rc;
}

/* ---- what the instance says ------------------------------------------ */

/* "11.5.8.0", from db2level. */
static int db2_level(struct db2_ds *d, char *version, size_t cap, char *err,
		     size_t errlen)
{
	const char *words[] = {"db2level", NULL};
	char *out = malloc(DB2_OUT_MAX);
	int rc;

	if (!out)
		return -ENOMEM;
	rc = db2_tool(d, words, 0, out, DB2_OUT_MAX, DB2_QUERY_TIMEOUT, 0, err,
		      errlen);
	if (!rc && db2_parse_level(out, version, cap)) {
		snprintf(err, errlen, "db2level did not say the Db2 version");
		rc = -EIO;
	}
	free(out);
	return rc;
}

static int db2_get_cfg(struct db2_ds *d, const char *db, struct db2_cfg *cfg,
		       char *err, size_t errlen)
{
	const char *words[] = {"db2", "GET", "DB", "CFG", "FOR", db, NULL};
	char *out = malloc(DB2_OUT_MAX);
	int rc;

	if (!out)
		return -ENOMEM;
	rc = db2_clp(d, words, out, DB2_OUT_MAX, DB2_QUERY_TIMEOUT, err,
		     errlen);
	if (!rc && db2_parse_cfg(out, cfg)) {
		snprintf(err, errlen,
			 "GET DB CFG FOR %s did not show LOGARCHMETH1", db);
		rc = -EIO;
	}
	free(out);
	return rc;
}

/* Online backups need archive logging and no backup pending. */
static int db2_check_online(struct db2_ds *d, json_t *dbs, char *err,
			    size_t errlen)
{
	struct db2_cfg cfg;
	json_t *v;
	size_t i;
	int rc;

	json_array_foreach(dbs, i, v)
	{
		const char *db = json_string_value(v);

		rc = db2_get_cfg(d, db, &cfg, err, errlen);
		if (rc)
			return rc;
		if (!db2_cfg_recoverable(&cfg)) {
			snprintf(err, errlen,
				 "database %s: online backups need archive "
				 "logging (LOGARCHMETH1); use \"mode\": "
				 "\"offline\" to quiesce the instance",
				 db);
			return -EINVAL;
		}
		if (cfg.backup_pending) {
			snprintf(err, errlen,
				 "database %s is in backup pending state "
				 "(archive "
				 "logging was just turned on): take an offline "
				 "backup first (\"mode\": \"offline\")",
				 db);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * What a backup of db takes, by Trove's estimate: GET_DBSIZE_INFO's
 * DATABASESIZE, plus for an online backup the log space in use (the
 * logs it includes).
 */
static int db2_size_of(struct db2_ds *d, const char *db, int online,
		       uint64_t *bytes, int quiet, char *err, size_t errlen)
{
	const char *stmts[] = {"CALL GET_DBSIZE_INFO(?,?,?,-1)",
			       online ? "SELECT SUM(TOTAL_LOG_USED_KB) FROM "
					"SYSIBMADM.LOG_UTILIZATION"
				      : NULL,
			       NULL};
	char *out = malloc(DB2_OUT_MAX), *sec;
	uint64_t logs = 0;
	int rc;

	if (!out)
		return -ENOMEM;
	rc = db2_connected(d, db, stmts, out, DB2_OUT_MAX, quiet, err, errlen);
	if (!rc) {
		sec = db2_section(out, 1);
		if (!sec || db2_parse_dbsize(sec, bytes))
			rc = -EIO;
		free(sec);
	}
	if (!rc && online) {
		sec = db2_section(out, 2);
		if (!sec || db2_parse_value(sec, &logs) ||
		    logs > UINT64_MAX / 2048)
			rc = -EIO;
		free(sec);
		*bytes += logs * 1024;
	}
	if (rc == -EIO && !err[0])
		snprintf(err, errlen, "cannot read the size of database %s",
			 db);
	free(out);
	return rc;
}

static int db2_sizes(struct db2_ds *d, json_t *dbs, int online, uint64_t *total,
		     char *err, size_t errlen)
{
	uint64_t n;
	json_t *v;
	size_t i;
	int rc;

	*total = 0;
	json_array_foreach(dbs, i, v)
	{
		rc = db2_size_of(d, json_string_value(v), online, &n, 0, err,
				 errlen);
		if (rc)
			return rc;
		*total += n;
	}
	return 0;
}

/* Free bytes where dir is, on the database host. */
static int db2_free_space(struct db2_ds *d, const char *dir, uint64_t *avail,
			  char *err, size_t errlen)
{
	const char *argv[] = {"df", "-P", "-k", "--", dir, NULL};
	char out[4096];
	int rc;

	rc = db2_os(d, argv, out, sizeof(out), 0, err, errlen);
	if (!rc && db2_parse_df(out, avail)) {
		snprintf(err, errlen, "cannot read the free space of '%s'",
			 dir);
		rc = -EIO;
	}
	return rc;
}

static int db2_check_space(struct db2_ds *d, uint64_t need, const char *what,
			   char *err, size_t errlen)
{
	uint64_t avail;
	int rc;

	rc = db2_free_space(d, d->backup_dir, &avail, err, errlen);
	if (rc)
		return rc;
	if (avail >= need)
		return 0;
	snprintf(err, errlen,
		 "not enough space in '%s' for %s: %llu MiB free, about %llu "
		 "MiB needed",
		 d->backup_dir, what, (unsigned long long)(avail >> 20),
		 (unsigned long long)((need + (1 << 20) - 1) >> 20));
	return -ENOSPC;
}

static int db2_estimate(struct bfs_datastore *ds, json_t *strategy,
			uint64_t *bytes)
{
	struct db2_ds *d = db2_of(ds);
	struct ds_strategy s;
	char err[512] = "";
	json_t *dbs;
	int rc;

	rc = db2_strategy(d, strategy, &s, &dbs, err, sizeof(err));
	if (!rc)
		rc = db2_sizes(d, dbs, s.mode == DS_MODE_ONLINE, bytes, err,
			       sizeof(err));
	json_decref(dbs);
	return rc;
}

/* ---- job directories and their journals ------------------------------ */

/*
 * One job's directories on the database host, journalled before they
 * exist: "<backup_dir>/.backupfs-db2-<random>" (images), and for a
 * restore a log directory, and whether the instance is quiesced; a
 * restore also says which databases it touched and where their safety
 * images are.  recover() finishes what a crash left.
 */
struct db2_job {
	struct db2_ds *d;
	char journal[64]; /* its name in state_dir */
	char *dir;
	char *logroot; /* restore: where logs are extracted (LOGTARGET) */
	json_t *j;
};

static int db2_job_save(struct db2_job *job)
{
	int rc = ds_journal_write(job->d->state_dir, job->journal, job->j);

	if (rc)
		bfs_err("cannot journal the DB2 job in '%s': %s",
			job->d->state_dir, strerror(-rc));
	return rc;
}

/* Only ever remove a directory of our own making. */
static int db2_ours(const char *path)
{
	const char *base = strrchr(path, '/');

	return base && !strncmp(base + 1, DB2_TAG, strlen(DB2_TAG)) &&
	       !db2_check_dir(path);
}

static int db2_rmdir(struct db2_ds *d, const char *path)
{
	const char *argv[] = {"rm", "-rf", "--", path, NULL};
	char err[512];
	int rc;

	if (!db2_ours(path)) {
		bfs_err("not removing '%s': not a DB2 job directory", path);
		return -EPERM;
	}
	rc = db2_os(d, argv, NULL, 0, 0, err, sizeof(err));
	if (rc)
		bfs_err("cannot remove '%s': %s", path, err);
	return rc;
}

static int db2_mkdir(struct db2_ds *d, const char *path, char *err,
		     size_t errlen)
{
	const char *argv[] = {"mkdir", "-p", "-m", "0750", "--", path, NULL};

	return db2_os(d, argv, NULL, 0, 0, err, errlen);
}

static void db2_job_free(struct db2_job *job)
{
	free(job->dir);
	free(job->logroot);
	json_decref(job->j);
	memset(job, 0, sizeof(*job));
}

/* Remove the job's directories, then its journal (kept if a directory
 * stays: the next start tries again). */
static void db2_job_end(struct db2_job *job)
{
	json_t *v;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(job->j, "dirs"), i, v)
	{
		if (db2_rmdir(job->d, json_string_value(v)))
			rc = -EIO;
	}
	if (!rc)
		ds_journal_remove(job->d->state_dir, job->journal);
	db2_job_free(job);
}

static int db2_job_begin(struct db2_ds *d, const char *kind, int logs,
			 struct db2_job *job, char *err, size_t errlen)
{
	json_t *dirs;
	char rnd[17];
	int rc;

	memset(job, 0, sizeof(*job));
	job->d = d;
	rc = ds_random_hex(rnd);
	if (rc)
		return rc;
	snprintf(job->journal, sizeof(job->journal),
		 DB2_JOURNAL_PREFIX "%s" DB2_JOURNAL_SUFFIX, rnd);
	dirs = json_array();
	job->j = json_pack("{s:s, s:o, s:b, s:s}", "kind", kind, "dirs", dirs,
			   "quiesced", 0, "phase", "prepare");
	if (!job->j ||
	    asprintf(&job->dir, "%s/" DB2_TAG "%s", d->backup_dir, rnd) < 0 ||
	    json_array_append_new(dirs, json_string(job->dir)))
		goto out_nomem;
	if (logs && d->archive_log_dir) {
		if (asprintf(&job->logroot, "%s/" DB2_TAG "%s",
			     d->archive_log_dir, rnd) < 0 ||
		    json_array_append_new(dirs, json_string(job->logroot)))
			goto out_nomem;
	} else if (logs && asprintf(&job->logroot, "%s/logs", job->dir) < 0) {
		goto out_nomem;
	}
	rc = db2_job_save(job);
	if (rc) {
		snprintf(err, errlen, "cannot journal the job: %s",
			 strerror(-rc));
		db2_job_free(job);
		return rc;
	}
	rc = db2_mkdir(d, job->dir, err, errlen);
	if (!rc && job->logroot)
		rc = db2_mkdir(d, job->logroot, err, errlen);
	if (rc)
		db2_job_end(job);
	return rc;
out_nomem:
	db2_job_free(job);
	return -ENOMEM;
}

static int db2_job_set(struct db2_job *job, const char *key, json_t *val)
{
	if (!val || json_object_set_new(job->j, key, val))
		return -ENOMEM;
	return db2_job_save(job);
}

/* ---- quiesce --------------------------------------------------------- */

/* Journalled first: a crash while quiesced is undone by recover(). */
static int db2_quiesce(struct db2_job *job, char *err, size_t errlen)
{
	const char *words[] = {
		"db2",	  "QUIESCE",   "INSTANCE", job->d->inst,  "RESTRICTED",
		"ACCESS", "IMMEDIATE", "FORCE",	   "CONNECTIONS", NULL};
	char out[4096];
	int rc;

	rc = db2_job_set(job, "quiesced", json_true());
	if (!rc)
		rc = db2_clp(job->d, words, out, sizeof(out), DB2_QUERY_TIMEOUT,
			     err, errlen);
	return rc;
}

static int db2_unquiesce_inst(struct db2_ds *d, char *err, size_t errlen)
{
	const char *words[] = {"db2", "UNQUIESCE", "INSTANCE", d->inst, NULL};
	char out[4096];
	int rc, tries;

	/* Leaving the instance quiesced locks every user out: try twice. */
	for (tries = 0; tries < 2; tries++) {
		rc = db2_clp(d, words, out, sizeof(out), DB2_QUERY_TIMEOUT, err,
			     errlen);
		if (!rc)
			break;
	}
	return rc;
}

static int db2_unquiesce(struct db2_job *job, char *err, size_t errlen)
{
	int rc;

	if (!json_is_true(json_object_get(job->j, "quiesced")))
		return 0;
	rc = db2_unquiesce_inst(job->d, err, errlen);
	if (!rc)
		rc = db2_job_set(job, "quiesced", json_false());
	return rc;
}

/* ---- backing up one database ----------------------------------------- */

static int db2_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The image files of db taken at ts in dir, sorted (a new array). */
static int db2_list_images(struct db2_ds *d, const char *dir, const char *db,
			   const char *ts, json_t **out, char *err,
			   size_t errlen)
{
	const char *argv[] = {"ls", "-1A", "--", dir, NULL};
	const char *names[999];
	char *buf = malloc(DB2_OUT_MAX), *p, *line;
	size_t n = 0, i;
	int rc;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	rc = db2_os(d, argv, buf, DB2_OUT_MAX, 0, err, errlen);
	for (p = buf; !rc && (line = strsep(&p, "\n"));)
		if (n < 999 && db2_image_of(line, db, ts))
			names[n++] = line;
	if (!rc && !n) {
		snprintf(err, errlen, "no image of %s taken at %s in '%s'", db,
			 ts, dir);
		rc = -EIO;
	}
	if (!rc) {
		qsort(names, n, sizeof(names[0]), db2_strcmp);
		*out = json_array();
		for (i = 0; *out && i < n; i++)
			if (json_array_append_new(*out, json_string(names[i])))
				break;
		if (!*out || i < n) {
			json_decref(*out);
			*out = NULL;
			rc = -ENOMEM;
		}
	}
	free(buf);
	return rc;
}

/* db2ckbkp of the image files (all parts of one backup) in dir. */
static int db2_ckbkp(struct db2_ds *d, const char *dir, json_t *images,
		     char *err, size_t errlen)
{
	struct db2_argv a = {.n = 0};
	char *paths[999] = {NULL}, *out;
	json_t *v;
	size_t i, n = 0;
	int rc = -ENOMEM;

	out = malloc(DB2_OUT_MAX);
	if (!out)
		return -ENOMEM;
	db2_arg(&a, "db2ckbkp");
	json_array_foreach(images, i, v)
	{
		if (i >= DB2_ARGS_MAX - 2 ||
		    asprintf(&paths[n], "%s/%s", dir, json_string_value(v)) < 0)
			goto out_free;
		db2_arg(&a, paths[n++]);
	}
	rc = db2_tool(d, a.v, 0, out, DB2_OUT_MAX, 0, 1, err, errlen);
	if (!rc && db2_parse_ckbkp(out))
		rc = -EBADMSG;
	if (rc) {
		char line[512], why[512];
		const char *e = strstr(out, "ERROR");

		snprintf(line, sizeof(line), "%.*s",
			 e ? (int)strcspn(e, "\n") : 0, e ? e : "");
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen,
			 "image '%s' failed db2ckbkp (the backup is "
			 "corrupt)%s%s",
			 json_string_value(json_array_get(images, 0)),
			 line[0] ? ": " : (why[0] ? ": " : ""),
			 line[0] ? line : why);
		bfs_warn("db2ckbkp of '%s/%s' failed; its output:\n%.4096s",
			 dir, json_string_value(json_array_get(images, 0)),
			 out);
		rc = -EBADMSG;
	}
out_free:
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(out);
	return rc;
}

/* BACKUP DATABASE db [ONLINE] TO dir [INCLUDE LOGS]; the timestamp out. */
static int db2_backup_db(struct db2_ds *d, const char *db, const char *dir,
			 int online, int quiet, char ts[DB2_TS_LEN + 1],
			 char *err, size_t errlen)
{
	struct db2_argv a = {.n = 0};
	char out[8192];
	int rc;

	db2_arg(&a, "db2");
	db2_arg(&a, "BACKUP");
	db2_arg(&a, "DATABASE");
	db2_arg(&a, db);
	if (online)
		db2_arg(&a, "ONLINE");
	db2_arg(&a, "TO");
	db2_arg(&a, dir);
	if (online) {
		db2_arg(&a, "INCLUDE");
		db2_arg(&a, "LOGS");
	}
	rc = db2_tool(d, a.v, 1, out, sizeof(out), 0, quiet, err, errlen);
	if (!rc && db2_parse_backup_ts(out, ts)) {
		snprintf(err, errlen,
			 "BACKUP DATABASE %s did not say the image's timestamp",
			 db);
		rc = -EIO;
	}
	return rc;
}

/* Back up db into dir, check the image; its manifest entry (new). */
static int db2_backup_one(struct db2_ds *d, const char *db, const char *dir,
			  int online, json_t **entry, char *err, size_t errlen)
{
	char ts[DB2_TS_LEN + 1];
	json_t *images;
	int rc;

	*entry = NULL;
	rc = db2_backup_db(d, db, dir, online, 0, ts, err, errlen);
	if (!rc)
		rc = db2_list_images(d, dir, db, ts, &images, err, errlen);
	if (rc)
		return rc;
	rc = db2_ckbkp(d, dir, images, err, errlen);
	if (rc) {
		json_decref(images);
		return rc;
	}
	*entry = json_pack("{s:s, s:s, s:b, s:o}", "name", db, "timestamp", ts,
			   "online", online, "images", images);
	return *entry ? 0 : -ENOMEM;
}

/* ---- the stream ------------------------------------------------------ */

struct db2_tar {
	struct archive *aw;
	bfs_sink_fn sink;
	void *sink_arg;
	int sink_rc;
	struct bfs_progress *progress;
	uint64_t fed; /* bytes of the current entry */
};

static la_ssize_t db2_tar_sink(struct archive *a, void *arg, const void *data,
			       size_t len)
{
	struct db2_tar *t = arg;
	int rc;

	rc = t->sink(t->sink_arg, data, len);
	if (rc) {
		t->sink_rc = rc < 0 ? rc : -EIO;
		archive_set_error(a, -t->sink_rc, "backup sink failed");
		return -1;
	}
	t->progress->done += len;
	return (la_ssize_t)len;
}

static int db2_tar_err(struct db2_tar *t, const char *what, char *err,
		       size_t errlen)
{
	int rc = t->sink_rc ? t->sink_rc : files_ar_errno(t->aw, -EIO);

	snprintf(err, errlen, "cannot write '%s' to the backup: %s", what,
		 t->sink_rc ? strerror(-rc) : files_ar_msg(t->aw));
	return rc;
}

/* cat's output goes into the archive entry. */
static int db2_tar_data(void *arg, const void *data, size_t len)
{
	struct db2_tar *t = arg;
	la_ssize_t n;

	n = archive_write_data(t->aw, data, len);
	if (n < 0 || (size_t)n != len)
		return t->sink_rc ? t->sink_rc : -EIO;
	t->fed += len;
	return 0;
}

static int db2_tar_header(struct db2_tar *t, const char *name, uint64_t size,
			  char *err, size_t errlen)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0640);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, time(NULL), 0);
	r = archive_write_header(t->aw, e);
	archive_entry_free(e);
	if (r < ARCHIVE_WARN)
		return db2_tar_err(t, name, err, errlen);
	t->fed = 0;
	return 0;
}

static int db2_tar_manifest(struct db2_tar *t, json_t *manifest, char *err,
			    size_t errlen)
{
	char *text = json_dumps(manifest, JSON_INDENT(1) | JSON_SORT_KEYS);
	size_t n;
	int rc;

	if (!text)
		return -ENOMEM;
	n = strlen(text);
	rc = db2_tar_header(t, DB2_MANIFEST, n, err, errlen);
	if (!rc && archive_write_data(t->aw, text, n) != (la_ssize_t)n)
		rc = db2_tar_err(t, DB2_MANIFEST, err, errlen);
	if (!rc && archive_write_finish_entry(t->aw) < ARCHIVE_WARN)
		rc = db2_tar_err(t, DB2_MANIFEST, err, errlen);
	free(text);
	return rc;
}

/* One image file from the database host: stat for the size, then cat. */
static int db2_tar_image(struct db2_ds *d, struct db2_tar *t, const char *dir,
			 const char *name, char *err, size_t errlen)
{
	char path[512], out[64];
	const char *st[] = {"stat", "-c", "%s", "--", path, NULL};
	const char *cat[] = {"cat", "--", path, NULL};
	struct ds_cmd cmd = {.argv = cat,
			     .user = d->user,
			     .in_fd = -1,
			     .out = db2_tar_data,
			     .out_arg = t};
	unsigned long long size;
	char *end;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = db2_os(d, st, out, sizeof(out), 0, err, errlen);
	if (rc)
		return rc;
	size = strtoull(out, &end, 10);
	if (end == out || (*end && *end != '\n'))
		return -EIO;
	rc = db2_tar_header(t, name, size, err, errlen);
	if (!rc)
		rc = ds_run(&d->x, &cmd, err, errlen);
	if (!rc && t->fed != size) {
		snprintf(err, errlen, "image '%s' changed while it was read",
			 path);
		rc = -EIO;
	}
	if (!rc && archive_write_finish_entry(t->aw) < ARCHIVE_WARN)
		rc = db2_tar_err(t, name, err, errlen);
	return rc;
}

/* The manifest, then every image it names, as a pax tar into sink. */
static int db2_stream(struct db2_ds *d, const char *dir, json_t *manifest,
		      bfs_sink_fn sink, void *sink_arg,
		      struct bfs_progress *progress, char *err, size_t errlen)
{
	struct db2_tar t = {
		.sink = sink, .sink_arg = sink_arg, .progress = progress};
	json_t *db, *im;
	size_t i, k;
	int rc = 0;

	progress->done = 0;
	t.aw = archive_write_new();
	if (!t.aw)
		return -ENOMEM;
	if (archive_write_set_format_pax(t.aw) ||
	    archive_write_set_bytes_per_block(t.aw, FILES_BLOCK) ||
	    archive_write_set_bytes_in_last_block(t.aw, 1) ||
	    archive_write_open(t.aw, &t, NULL, db2_tar_sink, NULL))
		rc = db2_tar_err(&t, "the archive start", err, errlen);
	if (!rc)
		rc = db2_tar_manifest(&t, manifest, err, errlen);
	json_array_foreach(json_object_get(manifest, "databases"), i, db)
	{
		json_array_foreach(json_object_get(db, "images"), k, im)
		{
			if (!rc)
				rc = db2_tar_image(d, &t, dir,
						   json_string_value(im), err,
						   errlen);
		}
	}
	if (!rc && archive_write_close(t.aw) != ARCHIVE_OK)
		rc = db2_tar_err(&t, "the end of the archive", err, errlen);
	archive_write_free(t.aw);
	return rc;
}

/* ---- backup ---------------------------------------------------------- */

static int db2_meta(struct db2_ds *d, const struct ds_strategy *s, json_t *dbs,
		    json_t *manifest, const char *version, json_t *meta)
{
	json_t *strategy = json_object(), *images = json_object(), *db;
	size_t i;

	if (!strategy || !images || ds_strategy_meta(s, strategy))
		goto out_nomem;
	json_array_foreach(json_object_get(manifest, "databases"), i, db)
	{
		if (json_object_set(
			    images,
			    json_string_value(json_object_get(db, "name")),
			    json_object_get(db, "timestamp")))
			goto out_nomem;
	}
	if (json_object_set_new(meta, "strategy", strategy) ||
	    json_object_set_new(meta, "format", json_string(DB2_FORMAT)) ||
	    json_object_set_new(meta, "datastore_version",
				json_string(version)) ||
	    json_object_set_new(meta, "instance", json_string(d->inst)) ||
	    json_object_set(meta, "databases", dbs) ||
	    json_object_set_new(meta, "mode",
				json_string(ds_mode_name(s->mode))) ||
	    json_object_set_new(meta, "images", images))
		return -ENOMEM;
	return 0;
out_nomem:
	json_decref(strategy);
	json_decref(images);
	return -ENOMEM;
}

static json_t *db2_manifest_new(struct db2_ds *d, const struct ds_strategy *s,
				const char *version, json_t *entries)
{
	char created[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:O}", "format",
			 DB2_FORMAT, "version", 1, "instance", d->inst, "mode",
			 ds_mode_name(s->mode), "datastore_version", version,
			 "created", created, "databases", entries);
}

/* Back up dbs into the job directory: quiesced around it if offline. */
static int db2_take_images(struct db2_job *job, json_t *dbs, int online,
			   json_t *entries, char *err, size_t errlen)
{
	char uerr[512];
	json_t *v, *entry;
	size_t i;
	int rc = 0, r;

	if (!online)
		rc = db2_quiesce(job, err, errlen);
	json_array_foreach(dbs, i, v)
	{
		if (rc)
			break;
		rc = db2_backup_one(job->d, json_string_value(v), job->dir,
				    online, &entry, err, errlen);
		if (!rc && json_array_append_new(entries, entry))
			rc = -ENOMEM;
	}
	/* Also after a failed QUIESCE or BACKUP: never leave it locked. */
	r = db2_unquiesce(job, uerr, sizeof(uerr));
	if (r && !rc) {
		snprintf(err, errlen, "%s", uerr);
		rc = r;
	} else if (r) {
		bfs_err("the instance stays quiesced: %s", uerr);
	}
	return rc;
}

static int db2_backup(struct bfs_datastore *ds, json_t *strategy,
		      bfs_sink_fn sink, void *sink_arg,
		      struct bfs_progress *progress, json_t *meta, char *err,
		      size_t errlen)
{
	struct db2_ds *d = db2_of(ds);
	char version[DB2_VERSION_MAX];
	json_t *dbs, *entries = NULL, *manifest = NULL;
	struct ds_strategy s;
	struct db2_job job;
	uint64_t need = 0;
	int online, rc;

	rc = db2_strategy(d, strategy, &s, &dbs, err, errlen);
	if (rc)
		return rc;
	online = s.mode == DS_MODE_ONLINE;
	rc = db2_level(d, version, sizeof(version), err, errlen);
	if (!rc && online)
		rc = db2_check_online(d, dbs, err, errlen);
	if (!rc)
		rc = db2_sizes(d, dbs, online, &need, err, errlen);
	if (!rc)
		rc = db2_check_space(d, need, "the DB2 backup images", err,
				     errlen);
	if (!rc) {
		progress->total = need;
		rc = db2_job_begin(d, "backup", 0, &job, err, errlen);
	}
	if (rc)
		goto out_dbs;
	entries = json_array();
	rc = entries ? db2_take_images(&job, dbs, online, entries, err, errlen)
		     : -ENOMEM;
	if (!rc) {
		manifest = db2_manifest_new(d, &s, version, entries);
		rc = manifest ? db2_stream(d, job.dir, manifest, sink, sink_arg,
					   progress, err, errlen)
			      : -ENOMEM;
	}
	/* The stream is whole even if the directory outlives it: a
	 * leftover stays journalled for recover(). */
	db2_job_end(&job);
	if (!rc)
		rc = db2_meta(d, &s, dbs, manifest, version, meta);
	json_decref(manifest);
	json_decref(entries);
out_dbs:
	json_decref(dbs);
	return rc;
}

/* ---- reading a backup ------------------------------------------------ */

/* An entry's name without leading "./". */
static const char *db2_entry_name(struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);

	while (name && name[0] == '.' && name[1] == '/')
		name += 2;
	return name;
}

static int db2_read_manifest(struct archive *rd, struct archive_entry *e,
			     json_t **manifest, char *err, size_t errlen)
{
	la_int64_t size = archive_entry_size(e);
	json_error_t jerr;
	la_ssize_t n;
	char *buf;
	int rc;

	if (archive_entry_filetype(e) != AE_IFREG || size <= 0 ||
	    size > DB2_MANIFEST_MAX) {
		snprintf(err, errlen, "'%s' is not a manifest", DB2_MANIFEST);
		return -EINVAL;
	}
	buf = malloc((size_t)size);
	if (!buf)
		return -ENOMEM;
	n = archive_read_data(rd, buf, (size_t)size);
	if (n != size) {
		snprintf(err, errlen, "corrupt at '%s': %s", DB2_MANIFEST,
			 n < 0 ? files_ar_msg(rd) : "short");
		free(buf);
		return -EBADMSG;
	}
	*manifest = json_loadb(buf, (size_t)n, 0, &jerr);
	free(buf);
	if (!*manifest) {
		snprintf(err, errlen, "'%s' is not JSON: %s", DB2_MANIFEST,
			 jerr.text);
		return -EINVAL;
	}
	rc = db2_manifest_check(*manifest, err, errlen);
	if (rc) {
		json_decref(*manifest);
		*manifest = NULL;
	}
	return rc;
}

/* Read an entry to its end: only then is the stream checked. */
static int db2_drain(struct archive *rd)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(rd, &buf, &size, &off)) ==
	       ARCHIVE_OK)
		;
	return r == ARCHIVE_EOF ? 0 : -EBADMSG;
}

/* The names of the images the manifest lists: name -> false (new). */
static json_t *db2_expected(json_t *manifest)
{
	json_t *want = json_object(), *db, *im;
	size_t i, k;

	json_array_foreach(json_object_get(manifest, "databases"), i, db)
	{
		json_array_foreach(json_object_get(db, "images"), k, im)
		{
			if (want &&
			    json_object_set_new(want, json_string_value(im),
						json_false())) {
				json_decref(want);
				want = NULL;
			}
		}
	}
	return want;
}

static int db2_check_images(struct archive *rd, json_t *want,
			    struct bfs_progress *progress, char *err,
			    size_t errlen)
{
	struct archive_entry *e;
	la_int64_t before = archive_filter_bytes(rd, -1);
	const char *name, *key;
	json_t *v;
	int r, rc;

	while ((r = archive_read_next_header(rd, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(err, errlen, "corrupt tar: %s",
				 files_ar_msg(rd));
			return -EBADMSG;
		}
		rc = files_check_entry(e, err, errlen);
		if (rc)
			return rc;
		name = db2_entry_name(e);
		v = json_object_get(want, name);
		if (!v || archive_entry_filetype(e) != AE_IFREG) {
			snprintf(err, errlen,
				 "'%s' is not an image the manifest names",
				 name);
			return -EBADMSG;
		}
		if (json_is_true(v)) {
			snprintf(err, errlen, "image '%s' is in the tar twice",
				 name);
			return -EBADMSG;
		}
		json_object_set_new(want, name, json_true());
		if (db2_drain(rd)) {
			snprintf(err, errlen, "corrupt at '%s': %s", name,
				 files_ar_msg(rd));
			return -EBADMSG;
		}
		before = archive_filter_bytes(rd, -1);
		progress->done = (uint64_t)before;
	}
	json_object_foreach(want, key, v)
	{
		if (!json_is_true(v)) {
			snprintf(err, errlen,
				 "image '%s' named in the manifest is missing",
				 key);
			return -EBADMSG;
		}
	}
	/* We always write the end-of-archive blocks: without them the
	 * stream was cut right after an entry. */
	if (archive_filter_bytes(rd, -1) - before < 1024) {
		snprintf(err, errlen, "truncated: no end of archive");
		return -EBADMSG;
	}
	return 0;
}

/*
 * The backup at path: its manifest (new), after checking the whole tar
 * unless manifest_only.  -EINVAL: not a DB2 backup of backupfs;
 * -EBADMSG: one, but damaged.
 */
static int db2_read_backup(const char *path, int manifest_only,
			   json_t **manifest, struct bfs_progress *progress,
			   char *err, size_t errlen)
{
	struct archive_entry *e;
	struct files_locale loc;
	struct archive *rd;
	json_t *want;
	int r, rc;

	*manifest = NULL;
	files_locale_enter(&loc);
	rd = files_reader(path, err, errlen);
	if (!rd) {
		files_locale_leave(&loc);
		return -EINVAL;
	}
	r = archive_read_next_header(rd, &e);
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
		snprintf(err, errlen, "not a DB2 backup: %s", files_ar_msg(rd));
		rc = -EINVAL;
	} else if (!db2_entry_name(e) ||
		   strcmp(db2_entry_name(e), DB2_MANIFEST)) {
		snprintf(err, errlen,
			 "not a DB2 backup: a tar archive whose first entry is "
			 "not %s",
			 DB2_MANIFEST);
		rc = -EINVAL;
	} else {
		rc = db2_read_manifest(rd, e, manifest, err, errlen);
	}
	if (!rc && !manifest_only) {
		want = db2_expected(*manifest);
		rc = want ? db2_check_images(rd, want, progress, err, errlen)
			  : -ENOMEM;
		json_decref(want);
	}
	archive_read_free(rd);
	files_locale_leave(&loc);
	if (rc) {
		json_decref(*manifest);
		*manifest = NULL;
	}
	return rc;
}

/*
 * Which database of the instance each database of the backup goes into:
 * itself, or -- a clone -- the instance's only database when the backup
 * holds one of another name.  A new object source -> target.
 */
static int db2_targets(struct db2_ds *d, json_t *manifest, json_t **out,
		       char *err, size_t errlen)
{
	json_t *dbs = json_object_get(manifest, "databases"), *db;
	json_t *map = json_object();
	const char *name;
	size_t i;

	*out = NULL;
	if (!map)
		return -ENOMEM;
	json_array_foreach(dbs, i, db)
	{
		name = json_string_value(json_object_get(db, "name"));
		if (db2_in(d->databases, name)) {
			json_object_set_new(map, name, json_string(name));
		} else if (json_array_size(dbs) == 1 &&
			   json_array_size(d->databases) == 1) {
			json_object_set(map, name,
					json_array_get(d->databases, 0));
		} else {
			snprintf(err, errlen,
				 "the backup holds database %s, which this "
				 "instance does not have (\"databases\"); a "
				 "backup of one database restores into an "
				 "instance of one database of another name",
				 name);
			json_decref(map);
			return -EINVAL;
		}
	}
	*out = map;
	return 0;
}

/* Extract the tar into dir on the database host, as the instance owner
 * (the images end up its own). */
static int db2_extract(struct db2_ds *d, const char *path, const char *dir,
		       char *err, size_t errlen)
{
	const char *argv[] = {"tar", "-x", "-f", "-", "-C", dir, NULL};
	struct ds_cmd cmd = {.argv = argv, .user = d->user, .timeout = 0};
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cmd.in_fd = fd;
	rc = ds_run(&d->x, &cmd, err, errlen);
	close(fd);
	return rc;
}

static int db2_spool_size(const char *path, uint64_t *size)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* ---- verify ---------------------------------------------------------- */

static int db2_verify_images(struct db2_ds *d, const char *path,
			     json_t *manifest, char *err, size_t errlen)
{
	struct db2_job job;
	uint64_t size = 0;
	json_t *db;
	size_t i;
	int rc;

	rc = db2_spool_size(path, &size);
	if (!rc)
		rc = db2_check_space(d, size, "checking the DB2 images", err,
				     errlen);
	if (!rc)
		rc = db2_job_begin(d, "verify", 0, &job, err, errlen);
	if (rc)
		return rc;
	rc = db2_extract(d, path, job.dir, err, errlen);
	json_array_foreach(json_object_get(manifest, "databases"), i, db)
	{
		if (!rc)
			rc = db2_ckbkp(d, job.dir,
				       json_object_get(db, "images"), err,
				       errlen);
	}
	db2_job_end(&job);
	return rc;
}

static int db2_verify(struct bfs_datastore *ds, const char *path,
		      struct bfs_progress *progress, char *err, size_t errlen)
{
	struct db2_ds *d = db2_of(ds);
	json_t *manifest, *map;
	enum ds_kind kind;
	int rc;

	rc = ds_sniff(path, &kind);
	if (rc)
		return rc;
	if (kind != DS_KIND_TAR) {
		snprintf(err, errlen, "not a DB2 backup: the file is %s",
			 ds_kind_name(kind));
		return -EINVAL;
	}
	rc = db2_read_backup(path, 0, &manifest, progress, err, errlen);
	if (rc)
		return rc;
	rc = db2_targets(d, manifest, &map, err, errlen);
	json_decref(map);
	if (!rc)
		rc = db2_verify_images(d, path, manifest, err, errlen);
	json_decref(manifest);
	return rc;
}

/* ---- restore --------------------------------------------------------- */

/* RESTORE DATABASE src FROM dir TAKEN AT ts [INTO target] [LOGTARGET
 * logdir] REPLACE EXISTING [WITHOUT ROLLING FORWARD] WITHOUT PROMPTING */
static int db2_restore_db(struct db2_ds *d, const char *src, const char *dir,
			  const char *ts, const char *target,
			  const char *logdir, int online, char *err,
			  size_t errlen)
{
	struct db2_argv a = {.n = 0};
	char out[8192];

	db2_arg(&a, "db2");
	db2_arg(&a, "RESTORE");
	db2_arg(&a, "DATABASE");
	db2_arg(&a, src);
	db2_arg(&a, "FROM");
	db2_arg(&a, dir);
	db2_arg(&a, "TAKEN");
	db2_arg(&a, "AT");
	db2_arg(&a, ts);
	if (strcmp(src, target)) {
		db2_arg(&a, "INTO");
		db2_arg(&a, target);
	}
	if (online) {
		db2_arg(&a, "LOGTARGET");
		db2_arg(&a, logdir);
	}
	db2_arg(&a, "REPLACE");
	db2_arg(&a, "EXISTING");
	if (!online) {
		/* an offline image of a recoverable database would
		 * otherwise wait in rollforward pending state */
		db2_arg(&a, "WITHOUT");
		db2_arg(&a, "ROLLING");
		db2_arg(&a, "FORWARD");
	}
	db2_arg(&a, "WITHOUT");
	db2_arg(&a, "PROMPTING");
	return db2_clp(d, a.v, out, sizeof(out), 0, err, errlen);
}

static int db2_rollforward(struct db2_ds *d, const char *db, const char *logdir,
			   char *err, size_t errlen)
{
	char paren[256], out[8192];
	const char *words[] = {"db2",  "ROLLFORWARD", "DATABASE", db,
			       "TO",   "END",	      "OF",	  "BACKUP",
			       "AND",  "COMPLETE",    "OVERFLOW", "LOG",
			       "PATH", paren,	      NULL};

	snprintf(paren, sizeof(paren), "(%s)", logdir);
	return db2_clp(d, words, out, sizeof(out), 0, err, errlen);
}

static int db2_drop(struct db2_ds *d, const char *db, char *err, size_t errlen)
{
	const char *words[] = {"db2", "DROP", "DATABASE", db, NULL};
	char out[4096];

	return db2_clp(d, words, out, sizeof(out), 0, err, errlen);
}

/*
 * Put the databases a restore touched back as they were: their safety
 * images, or -- those that did not exist -- dropped.  Every one is
 * tried; the first error is returned.
 */
static int db2_rollback(struct db2_ds *d, json_t *j, char *err, size_t errlen)
{
	const char *sdir = json_string_value(json_object_get(j, "safety_dir"));
	json_t *safety = json_object_get(j, "safety"), *v, *ts;
	char e[512];
	size_t i;
	int rc = 0, r;

	json_array_foreach(json_object_get(j, "touched"), i, v)
	{
		const char *db = json_string_value(v);

		ts = json_object_get(safety, db);
		if (!db)
			continue;
		bfs_info("rolling back database %s", db);
		if (json_is_string(ts) && sdir)
			r = db2_restore_db(d, db, sdir, json_string_value(ts),
					   db, NULL, 0, e, sizeof(e));
		else if (json_is_null(ts))
			r = db2_drop(d, db, e, sizeof(e));
		else {
			snprintf(e, sizeof(e), "no safety image of %s", db);
			r = -EIO;
		}
		if (r && !rc) {
			snprintf(err, errlen, "%s", e);
			rc = r;
		}
	}
	return rc;
}

/* Offline safety images of the targets (the instance is quiesced); a
 * target that does not exist yet is noted as null. */
static int db2_safety(struct db2_job *job, json_t *map, char *err,
		      size_t errlen)
{
	json_t *safety = json_object(), *v;
	char ts[DB2_TS_LEN + 1], *sdir;
	json_t *images;
	const char *src;
	int rc;

	if (!safety || asprintf(&sdir, "%s/safety", job->dir) < 0) {
		json_decref(safety);
		return -ENOMEM;
	}
	rc = db2_job_set(job, "safety_dir", json_string(sdir));
	if (!rc)
		rc = db2_mkdir(job->d, sdir, err, errlen);
	json_object_foreach(map, src, v)
	{
		const char *db = json_string_value(v);

		if (rc)
			break;
		/* quiet: a database that does not exist yet is expected,
		 * and any other reason reaches the restore's error */
		rc = db2_backup_db(job->d, db, sdir, 0, 1, ts, err, errlen);
		if (rc == -ENOENT && strstr(err, "SQL1013N")) {
			/* not there yet: a rollback drops it */
			json_object_set_new(safety, db, json_null());
			rc = 0;
			continue;
		}
		if (!rc)
			rc = db2_list_images(job->d, sdir, db, ts, &images, err,
					     errlen);
		if (rc)
			break;
		rc = db2_ckbkp(job->d, sdir, images, err, errlen);
		json_decref(images);
		if (!rc)
			json_object_set_new(safety, db, json_string(ts));
	}
	if (rc) {
		char why[512];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen,
			 "the safety backup before the restore failed: %s",
			 why);
		json_decref(safety);
	} else {
		rc = db2_job_set(job, "safety", safety);
	}
	free(sdir);
	return rc;
}

/* Restore every database of the backup, rolling forward online ones. */
static int db2_apply(struct db2_job *job, json_t *manifest, json_t *map,
		     char *err, size_t errlen)
{
	json_t *touched = json_object_get(job->j, "touched"), *db;
	char logdir[512];
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(manifest, "databases"), i, db)
	{
		const char *src =
			json_string_value(json_object_get(db, "name"));
		const char *ts =
			json_string_value(json_object_get(db, "timestamp"));
		const char *target =
			json_string_value(json_object_get(map, src));
		int online = json_is_true(json_object_get(db, "online"));

		/* journalled before the database changes */
		if (json_array_append_new(touched, json_string(target)))
			return -ENOMEM;
		rc = db2_job_save(job);
		snprintf(logdir, sizeof(logdir), "%s/%s", job->logroot, target);
		if (!rc && online)
			rc = db2_mkdir(job->d, logdir, err, errlen);
		if (!rc)
			rc = db2_restore_db(job->d, src, job->dir, ts, target,
					    logdir, online, err, errlen);
		if (!rc && online)
			rc = db2_rollforward(job->d, target, logdir, err,
					     errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* Room for the extracted images and the safety images. */
static int db2_restore_space(struct db2_ds *d, const char *path, json_t *map,
			     char *err, size_t errlen)
{
	uint64_t need = 0, n = 0;
	const char *src;
	json_t *v;
	int rc;

	rc = db2_spool_size(path, &need);
	if (rc)
		return rc;
	json_object_foreach(map, src, v)
	{
		/* a database that does not exist needs no safety image */
		if (!db2_size_of(d, json_string_value(v), 0, &n, 1, err,
				 errlen))
			need += n;
	}
	err[0] = '\0';
	return db2_check_space(d, need, "the DB2 images and the safety backup",
			       err, errlen);
}

static int db2_restore_run(struct db2_job *job, const char *path,
			   json_t *manifest, json_t *map, char *err,
			   size_t errlen)
{
	struct db2_ds *d = job->d;
	char rerr[512];
	int rc, r;

	rc = db2_job_set(job, "touched", json_array());
	if (!rc)
		rc = db2_extract(d, path, job->dir, err, errlen);
	if (!rc)
		rc = db2_quiesce(job, err, errlen);
	if (!rc)
		rc = db2_safety(job, map, err, errlen);
	if (rc)
		return rc;
	rc = db2_job_set(job, "phase", json_string("applying"));
	if (!rc)
		rc = db2_apply(job, manifest, map, err, errlen);
	if (!rc)
		rc = ds_service_health(&d->x, &d->svc, err, errlen);
	if (!rc)
		return db2_job_set(job, "phase", json_string("done"));
	bfs_err("restore of DB2 instance '%s' failed, rolling back: %s",
		d->base.instance, err);
	r = db2_rollback(d, job->j, rerr, sizeof(rerr));
	if (r) {
		size_t n = strlen(err);

		snprintf(err + n, errlen - n,
			 "; the rollback failed too (%s): the instance stays "
			 "quiesced, the safety images stay in '%s' and are "
			 "restored again at the next start",
			 rerr, job->dir);
		return rc;
	}
	db2_job_set(job, "phase", json_string("rolled back"));
	return rc;
}

static int db2_restore(struct bfs_datastore *ds, const char *path,
		       struct bfs_progress *progress, char *err, size_t errlen)
{
	struct db2_ds *d = db2_of(ds);
	json_t *manifest, *map = NULL;
	struct db2_job job;
	char uerr[512];
	int rc, r, keep;

	rc = db2_read_backup(path, 1, &manifest, progress, err, errlen);
	if (rc)
		return rc;
	rc = db2_targets(d, manifest, &map, err, errlen);
	if (!rc)
		rc = db2_restore_space(d, path, map, err, errlen);
	if (!rc)
		rc = db2_job_begin(d, "restore", 1, &job, err, errlen);
	if (rc)
		goto out_free;
	rc = db2_restore_run(&job, path, manifest, map, err, errlen);
	keep = rc &&
	       !strcmp(json_string_value(json_object_get(job.j, "phase")) ?: "",
		       "applying");
	if (keep) {
		/* The rollback failed: the databases are neither the old nor
		 * the new ones.  The instance stays quiesced (users kept
		 * out) and the journal stays: recover() tries again. */
		db2_job_free(&job);
		goto out_free;
	}
	r = db2_unquiesce(&job, uerr, sizeof(uerr));
	if (r && !rc) {
		snprintf(err, errlen, "%s", uerr);
		rc = r;
	} else if (r) {
		bfs_err("the instance stays quiesced: %s", uerr);
	}
	db2_job_end(&job);
	if (!rc)
		progress->done = progress->total;
out_free:
	json_decref(map);
	json_decref(manifest);
	return rc;
}

/* ---- recover --------------------------------------------------------- */

static int db2_is_journal(const char *name)
{
	size_t n = strlen(name), p = strlen(DB2_JOURNAL_PREFIX),
	       s = strlen(DB2_JOURNAL_SUFFIX);

	return n > p + s && !strncmp(name, DB2_JOURNAL_PREFIX, p) &&
	       !strcmp(name + n - s, DB2_JOURNAL_SUFFIX);
}

/* Finish or undo one job a crash left. */
static int db2_recover_one(struct db2_ds *d, const char *name)
{
	struct db2_job job = {.d = d};
	const char *kind, *phase;
	char err[512];
	int rc;

	rc = ds_journal_read(d->state_dir, name, &job.j);
	if (rc)
		return rc;
	snprintf(job.journal, sizeof(job.journal), "%s", name);
	kind = json_string_value(json_object_get(job.j, "kind")) ?: "?";
	phase = json_string_value(json_object_get(job.j, "phase")) ?: "?";
	bfs_info("finishing the DB2 %s job a crash left (%s)", kind, name);
	if (!strcmp(kind, "restore") && !strcmp(phase, "applying")) {
		rc = db2_rollback(d, job.j, err, sizeof(err));
		if (rc) {
			bfs_err("cannot roll back the interrupted restore of "
				"DB2 instance '%s': %s",
				d->base.instance, err);
			json_decref(job.j);
			return rc;
		}
		db2_job_set(&job, "phase", json_string("rolled back"));
	}
	rc = db2_unquiesce(&job, err, sizeof(err));
	if (rc) {
		bfs_err("cannot unquiesce DB2 instance '%s': %s",
			d->base.instance, err);
		json_decref(job.j);
		return rc;
	}
	db2_job_end(&job);
	return 0;
}

static int db2_recover(struct bfs_datastore *ds)
{
	struct db2_ds *d = db2_of(ds);
	struct dirent *de;
	DIR *dir;
	int rc = 0, r;

	dir = opendir(d->state_dir);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		if (!db2_is_journal(de->d_name))
			continue;
		r = db2_recover_one(d, de->d_name);
		if (r && !rc)
			rc = r;
	}
	closedir(dir);
	return rc;
}

/* The databases a strategy's "tables" may name: the configured ones
 * (each is backed up whole; DB2 has no per-table images here). */
static int db2_tables(struct bfs_datastore *ds, json_t **out, char *err,
		      size_t errlen)
{
	(void)err;
	(void)errlen;
	*out = json_deep_copy(db2_of(ds)->databases);
	return *out ? 0 : -ENOMEM;
}

const struct bfs_datastore_ops bfs_db2_ops = {
	.name = "db2",
	.config_keys = db2_keys,
	.open = db2_open,
	.close = db2_close,
	.check_strategy = db2_check_strategy,
	.estimate = db2_estimate,
	.backup = db2_backup,
	.verify = db2_verify,
	.restore = db2_restore,
	.recover = db2_recover,
	.tables = db2_tables,
};
