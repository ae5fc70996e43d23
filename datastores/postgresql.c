// SPDX-License-Identifier: Apache-2.0
/*
 * The "postgresql" datastore.
 *
 *   {"datastore": "postgresql", "pgdata": "/var/lib/postgresql/15/main",
 *    "bin_dir": "/usr/lib/postgresql/15/bin", "host": "/run/postgresql",
 *    "port": 5432, "user": "postgres", "os_user": "postgres",
 *    "database": "app", "password_file": "/etc/backupfs/pg1.pw",
 *    "exec_prefix": [...], "service": {...}}
 *
 * Backups (the strategy picks one):
 *   native (default)  pg_basebackup -Ft -X fetch: one tar of the whole
 *                     cluster with the WAL it needs, taken online;
 *                     with "snapshot": "btrfs", a tar of a read-only
 *                     snapshot of the data directory (a btrfs subvolume
 *                     holding pg_wal too): crash-consistent, recovered
 *                     at start like after a power cut
 *   agnostic          pg_dump -Fc of "database", or of the listed tables
 *                     with their keys, sequences and defaults
 * Restores:
 *   native            extracted beside the data directory as os_user,
 *                     swapped in (swap.c): stop, swap, start, health
 *                     check, or the old directory goes back
 *   agnostic          pg_restore --clean --if-exists --single-transaction
 *                     of the whole archive: all of it or nothing (never
 *                     -t, which drops keys and defaults)
 *
 * Every tool runs as os_user (peer authentication on Debian) through the
 * exec prefix; the password, if any, comes from "password_file" and
 * reaches them in PGPASSWORD, never in argv.
 */
#include "ds_int.h"
#include "log.h"
#include "pg_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_ARGS_MAX	  (2 * 1024 + 32)
#define PG_QUERY_TIMEOUT  60
#define PG_VERSION_MAX	  64
#define PG_TABLES_OUT_MAX (16u << 20)

static const char *const pg_keys[] = {
	"pgdata",      "bin_dir", "host",     "port",
	"user",	       "os_user", "database", "password_file",
	"exec_prefix", "service", NULL,
};

/* Strategy keys of this driver beyond the common ones. */
static const char *const pg_strategy_keys[] = {"snapshot", NULL};

struct pg_ds {
	struct bfs_datastore base;
	char *state_dir;
	char *pgdata;
	char *bin_dir; /* or NULL: tools from PATH */
	char *host;    /* or NULL: libpq's default */
	char port[8];  /* or "" */
	char *user;
	char *os_user;
	char *database;
	char *password_env; /* "PGPASSWORD=...", or NULL */
	struct ds_exec x;
	struct ds_service svc;
};

static struct pg_ds *pg_of(struct bfs_datastore *ds)
{
	return (struct pg_ds *)ds;
}

/* ---- command lines --------------------------------------------------- */

/* An argv under construction; strings are borrowed but tool paths. */
struct pg_argv {
	const char *v[PG_ARGS_MAX];
	size_t n;
	char tool[4096];
};

static void pg_arg(struct pg_argv *a, const char *s)
{
	if (a->n + 1 < PG_ARGS_MAX)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* bin_dir/name, or name from PATH. */
static void pg_tool(struct pg_ds *pg, struct pg_argv *a, const char *name)
{
	a->n = 0;
	if (pg->bin_dir)
		snprintf(a->tool, sizeof(a->tool), "%s/%s", pg->bin_dir, name);
	else
		snprintf(a->tool, sizeof(a->tool), "%s", name);
	pg_arg(a, a->tool);
}

/* -h, -p, -U: where and who. */
static void pg_conn(struct pg_ds *pg, struct pg_argv *a)
{
	if (pg->host) {
		pg_arg(a, "-h");
		pg_arg(a, pg->host);
	}
	if (pg->port[0]) {
		pg_arg(a, "-p");
		pg_arg(a, pg->port);
	}
	pg_arg(a, "-U");
	pg_arg(a, pg->user);
	pg_arg(a, "-w"); /* never prompt */
}

static const char *const *pg_env(struct pg_ds *pg, const char **env)
{
	size_t n = 0;

	env[n++] = "PGCONNECT_TIMEOUT=10";
	env[n++] = "PGAPPNAME=backupfs";
	if (pg->password_env)
		env[n++] = pg->password_env;
	env[n] = NULL;
	return env;
}

static int pg_run(struct pg_ds *pg, struct pg_argv *a, struct ds_cmd *cmd,
		  char *err, size_t errlen)
{
	const char *env[4];

	cmd->argv = a->v;
	cmd->user = pg->os_user;
	cmd->env = pg_env(pg, env);
	return ds_run(&pg->x, cmd, err, errlen);
}

/* The output of a query on database db (psql -At) into out[cap]. */
static int pg_query_into(struct pg_ds *pg, const char *db, const char *sql,
			 char *out, size_t cap, char *err, size_t errlen)
{
	struct ds_cmd cmd = {.in_fd = -1,
			     .capture = out,
			     .capture_cap = cap,
			     .timeout = PG_QUERY_TIMEOUT};
	struct pg_argv a;

	pg_tool(pg, &a, "psql");
	pg_conn(pg, &a);
	pg_arg(&a, "-d");
	pg_arg(&a, db);
	pg_arg(&a, "-XAtq");
	pg_arg(&a, "-v");
	pg_arg(&a, "ON_ERROR_STOP=1");
	pg_arg(&a, "-c");
	pg_arg(&a, sql);
	return pg_run(pg, &a, &cmd, err, errlen);
}

/* One value from a query (its first line), into out[cap]. */
static int pg_query(struct pg_ds *pg, const char *db, const char *sql,
		    char *out, size_t cap, char *err, size_t errlen)
{
	int rc = pg_query_into(pg, db, sql, out, cap, err, errlen);

	out[strcspn(out, "\n")] = '\0';
	return rc;
}

/* ---- open, close, strategy ------------------------------------------- */

static void pg_close(struct bfs_datastore *ds)
{
	struct pg_ds *pg = pg_of(ds);

	ds_service_release(&pg->svc);
	ds_exec_release(&pg->x);
	free(pg->state_dir);
	free(pg->pgdata);
	free(pg->bin_dir);
	free(pg->host);
	free(pg->user);
	free(pg->os_user);
	free(pg->database);
	if (pg->password_env)
		explicit_bzero(pg->password_env, strlen(pg->password_env));
	free(pg->password_env);
	free(pg);
}

/*
 * The password, if any, from a file checked like every secret file; the
 * tools get it in PGPASSWORD (their environment, never argv or a log).
 */
static int pg_parse_password(struct pg_ds *pg, json_t *conf, char *err,
			     size_t errlen)
{
	json_t *v = json_object_get(conf, "password_file");
	char pw[1024];
	int rc;

	if (!v)
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"password_file\" must be a path");
		return -EINVAL;
	}
	rc = ds_secret_file(json_string_value(v), pw, sizeof(pw), err, errlen);
	if (!rc && asprintf(&pg->password_env, "PGPASSWORD=%s", pw) < 0)
		rc = -ENOMEM;
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

static int pg_parse_conf(struct pg_ds *pg, const char *instance, json_t *conf,
			 char *err, size_t errlen)
{
	const char *bad = NULL;
	int rc;

	if ((rc = ds_conf_str(conf, "pgdata", NULL, &pg->pgdata)) ||
	    !pg->pgdata || pg->pgdata[0] != '/')
		bad = "\"pgdata\" (an absolute path)";
	else if (ds_conf_str(conf, "bin_dir", NULL, &pg->bin_dir))
		bad = "\"bin_dir\"";
	else if (ds_conf_str(conf, "host", NULL, &pg->host))
		bad = "\"host\"";
	else if (ds_conf_port(conf, pg->port))
		bad = "\"port\" (1 to 65535)";
	else if (ds_conf_str(conf, "user", "postgres", &pg->user))
		bad = "\"user\"";
	else if (ds_conf_str(conf, "os_user", "postgres", &pg->os_user))
		bad = "\"os_user\"";
	else if (ds_conf_str(conf, "database", "postgres", &pg->database) ||
		 pg->database[0] == '-')
		bad = "\"database\"";
	if (bad) {
		snprintf(err, errlen, "instance '%s' needs a valid %s",
			 instance, bad);
		return -EINVAL;
	}
	if (!pg->user || !pg->os_user || !pg->database)
		return -ENOMEM;
	return pg_parse_password(pg, conf, err, errlen);
}

/* pg_ctl defaults: an operator with systemd or pg_ctlcluster overrides
 * them in "service". */
static int pg_parse_service(struct pg_ds *pg, json_t *conf, char *err,
			    size_t errlen)
{
	struct pg_argv ctl, psql;
	const char *start[] = {NULL, "-D",  pg->pgdata, "-w",
			       "-t", "300", "start",	NULL};
	const char *stop[] = {NULL,  "-D", pg->pgdata, "-w",   "-t",
			      "300", "-m", "fast",     "stop", NULL};

	pg_tool(pg, &ctl, "pg_ctl");
	start[0] = stop[0] = ctl.tool;
	pg_tool(pg, &psql, "psql");
	pg_conn(pg, &psql);
	pg_arg(&psql, "-d");
	pg_arg(&psql, pg->database);
	pg_arg(&psql, "-XAtqc");
	pg_arg(&psql, "select 1");
	return ds_service_parse(conf, start, stop, psql.v, pg->os_user,
				&pg->svc, err, errlen);
}

static int pg_open(const char *instance, json_t *conf, const char *state_dir,
		   struct bfs_datastore **out, char *err, size_t errlen)
{
	struct pg_ds *pg;
	int rc;

	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	rc = pg_parse_conf(pg, instance, conf, err, errlen);
	if (!rc)
		rc = ds_exec_parse(conf, &pg->x, err, errlen);
	if (!rc)
		rc = pg_parse_service(pg, conf, err, errlen);
	if (!rc) {
		pg->state_dir = strdup(state_dir);
		rc = pg->state_dir ? 0 : -ENOMEM;
	}
	if (rc) {
		pg_close(&pg->base);
		return rc;
	}
	*out = &pg->base;
	return 0;
}

/* "btrfs", or NULL for pg_basebackup; -EINVAL for anything else. */
static int pg_snapshot_kind(json_t *strategy, const char **kind)
{
	json_t *v = json_object_get(strategy, "snapshot");

	*kind = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v) || strcmp(json_string_value(v), "btrfs"))
		return -EINVAL;
	*kind = "btrfs";
	return 0;
}

static int pg_strategy(struct bfs_datastore *ds, json_t *strategy,
		       struct ds_strategy *s, const char **snap, char *err,
		       size_t errlen)
{
	int rc;

	rc = ds_strategy_parse(strategy, "postgresql", pg_strategy_keys, s, err,
			       errlen);
	if (rc)
		return rc;
	if (pg_snapshot_kind(strategy, snap)) {
		snprintf(err, errlen,
			 "strategy \"snapshot\" must be \"btrfs\" (or absent "
			 "for pg_basebackup)");
		return -EINVAL;
	}
	if (s->type == DS_TYPE_INCREMENTAL) {
		snprintf(err, errlen,
			 "PostgreSQL %s has no incremental backups; a full "
			 "backup stores only the chunks that changed",
			 "before 17");
		return -EINVAL;
	}
	if (s->mode == DS_MODE_OFFLINE) {
		snprintf(err, errlen,
			 "offline backups of PostgreSQL are not needed: "
			 "every method here is online");
		return -EINVAL;
	}
	if (*snap && s->format != DS_FORMAT_NATIVE) {
		snprintf(err, errlen,
			 "a btrfs snapshot is a native backup: drop "
			 "\"snapshot\" or use \"format\": \"native\"");
		return -EINVAL;
	}
	if (s->tables && s->format == DS_FORMAT_NATIVE) {
		snprintf(err, errlen,
			 "a native backup is the whole cluster: per-table "
			 "backups need \"format\": \"agnostic\"");
		return -EINVAL;
	}
	(void)ds;
	return 0;
}

static int pg_check_strategy(struct bfs_datastore *ds, json_t *strategy,
			     char *err, size_t errlen)
{
	struct ds_strategy s;
	const char *snap;

	return pg_strategy(ds, strategy, &s, &snap, err, errlen);
}

static int pg_estimate(struct bfs_datastore *ds, json_t *strategy,
		       uint64_t *bytes)
{
	struct pg_ds *pg = pg_of(ds);
	char out[64], err[256];
	struct ds_strategy s;
	const char *snap;
	int rc;

	rc = pg_strategy(ds, strategy, &s, &snap, err, sizeof(err));
	if (rc)
		return rc;
	rc = pg_query(pg, pg->database,
		      s.format == DS_FORMAT_NATIVE
			      ? "select sum(pg_database_size(oid)) from "
				"pg_database"
			      : "select pg_database_size(current_database())",
		      out, sizeof(out), err, sizeof(err));
	if (rc)
		return rc;
	*bytes = strtoull(out, NULL, 10);
	return 0;
}

/* ---- backup ---------------------------------------------------------- */

/* "15.18" from the server. */
static int pg_server_version(struct pg_ds *pg, char *out, size_t cap, char *err,
			     size_t errlen)
{
	int rc = pg_query(pg, pg->database, "show server_version", out, cap,
			  err, errlen);

	out[strcspn(out, " ")] = '\0';
	if (!rc && !out[0]) {
		snprintf(err, errlen, "the server did not say its version");
		rc = -EIO;
	}
	return rc;
}

/* ---- the WAL a base backup needs ---- */

/*
 * pg_basebackup -X fetch (the only WAL method that fits in one tar on
 * stdout) collects the WAL at the end of the backup: a checkpoint in
 * between may recycle it ("requested WAL segment ... has already been
 * removed"), unless wal_keep_size is large.  A physical replication
 * slot made with reserve_wal before the backup holds every segment from
 * then on; it is journalled first and dropped after, or at the next
 * start after a crash (a forgotten slot would keep WAL forever).
 */
#define PG_SLOT_JOURNAL_PREFIX "pgslot-"
#define PG_SLOT_JOURNAL_SUFFIX ".journal"

static int pg_slot_sql(struct pg_ds *pg, const char *fmt, const char *slot,
		       int quiet, char *err, size_t errlen)
{
	char sql[256], out[64];
	struct ds_cmd cmd = {.in_fd = -1,
			     .capture = out,
			     .capture_cap = sizeof(out),
			     .timeout = PG_QUERY_TIMEOUT,
			     .quiet = quiet};
	struct pg_argv a;

	snprintf(sql, sizeof(sql), fmt, slot);
	pg_tool(pg, &a, "psql");
	pg_conn(pg, &a);
	pg_arg(&a, "-d");
	pg_arg(&a, pg->database);
	pg_arg(&a, "-XAtq");
	pg_arg(&a, "-v");
	pg_arg(&a, "ON_ERROR_STOP=1");
	pg_arg(&a, "-c");
	pg_arg(&a, sql);
	return pg_run(pg, &a, &cmd, err, errlen);
}

static int pg_slot_drop(struct pg_ds *pg, const char *slot, const char *journal)
{
	char err[512];
	int rc;

	rc = pg_slot_sql(pg,
			 "select pg_drop_replication_slot(slot_name) from "
			 "pg_replication_slots where slot_name = '%s'",
			 slot, 0, err, sizeof(err));
	if (rc)
		bfs_warn("instance '%s': cannot drop replication slot '%s': %s",
			 pg->base.instance, slot, err);
	else
		ds_journal_remove(pg->state_dir, journal);
	return rc;
}

/* A WAL-reserving slot into slot[]/journal[], or "" when none could be
 * made (the backup goes on without, as pg_basebackup alone would). */
static void pg_slot_create(struct pg_ds *pg, char slot[40], char journal[64])
{
	char rnd[17], err[512];
	json_t *j;

	slot[0] = journal[0] = '\0';
	if (ds_random_hex(rnd))
		return;
	snprintf(slot, 40, "backupfs_%s", rnd);
	snprintf(journal, 64,
		 PG_SLOT_JOURNAL_PREFIX "%s" PG_SLOT_JOURNAL_SUFFIX, rnd);
	j = json_pack("{s:s}", "slot", slot);
	if (!j || ds_journal_write(pg->state_dir, journal, j)) {
		json_decref(j);
		slot[0] = journal[0] = '\0';
		return;
	}
	json_decref(j);
	if (pg_slot_sql(pg,
			"select 1 from pg_create_physical_replication_slot("
			"'%s', true, false)",
			slot, 0, err, sizeof(err))) {
		bfs_warn("instance '%s': backing up without a replication slot "
			 "(%s): a checkpoint may recycle WAL the backup needs",
			 pg->base.instance, err);
		ds_journal_remove(pg->state_dir, journal);
		slot[0] = journal[0] = '\0';
	}
}

/*
 * Drop the slots journals in the state directory name (a crash).  One
 * that cannot be dropped now (the server is down) stays journalled and
 * is tried again at the next backup or start: a warning, not a failure.
 */
static void pg_slot_recover(struct pg_ds *pg)
{
	size_t p = strlen(PG_SLOT_JOURNAL_PREFIX);
	size_t x = strlen(PG_SLOT_JOURNAL_SUFFIX);
	struct dirent *de;
	const char *slot;
	json_t *j;
	DIR *d;

	d = opendir(pg->state_dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n <= p + x ||
		    strncmp(de->d_name, PG_SLOT_JOURNAL_PREFIX, p) ||
		    strcmp(de->d_name + n - x, PG_SLOT_JOURNAL_SUFFIX) ||
		    ds_journal_read(pg->state_dir, de->d_name, &j))
			continue;
		slot = json_string_value(json_object_get(j, "slot"));
		if (slot && !strncmp(slot, "backupfs_", 9) &&
		    strspn(slot + 9, "0123456789abcdef") == strlen(slot + 9)) {
			bfs_info(
				"instance '%s': dropping replication slot '%s' "
				"a crash left",
				pg->base.instance, slot);
			pg_slot_drop(pg, slot, de->d_name);
		}
		json_decref(j);
	}
	closedir(d);
}

static int pg_basebackup(struct pg_ds *pg, bfs_sink_fn sink, void *arg,
			 struct bfs_progress *progress, char *err,
			 size_t errlen)
{
	struct ds_cmd cmd = {
		.in_fd = -1, .out = sink, .out_arg = arg, .progress = progress};
	char slot[40], journal[64];
	struct pg_argv a;
	int rc;

	pg_slot_recover(pg);
	pg_slot_create(pg, slot, journal);
	pg_tool(pg, &a, "pg_basebackup");
	pg_conn(pg, &a);
	/* stdout takes one tar; only -X fetch puts the WAL into it */
	pg_arg(&a, "-D");
	pg_arg(&a, "-");
	pg_arg(&a, "-Ft");
	pg_arg(&a, "-X");
	pg_arg(&a, "fetch");
	pg_arg(&a, "-c");
	pg_arg(&a, "fast");
	rc = pg_run(pg, &a, &cmd, err, errlen);
	if (slot[0])
		pg_slot_drop(pg, slot, journal);
	return rc;
}

/* A tar of a read-only btrfs snapshot of the data directory. */
static int pg_btrfs_backup(struct pg_ds *pg, bfs_sink_fn sink, void *arg,
			   struct bfs_progress *progress, char *err,
			   size_t errlen)
{
	struct ds_cmd cmd = {
		.in_fd = -1, .out = sink, .out_arg = arg, .progress = progress};
	struct ds_tmpsnap snap;
	int rc;

	rc = ds_tmpsnap_take(&pg->x, pg->state_dir, pg->pgdata, &snap, err,
			     errlen);
	if (rc)
		return rc;
	{
		/* The pid file would stop the restored server starting. */
		const char *argv[] = {"tar",
				      "-C",
				      snap.path,
				      "-cf",
				      "-",
				      "--exclude=./postmaster.pid",
				      "--exclude=./postmaster.opts",
				      ".",
				      NULL};

		cmd.argv = argv;
		rc = ds_run(&pg->x, &cmd, err, errlen);
	}
	/* The stream is whole even if the snapshot outlives it: a
	 * leftover stays journalled for recover(). */
	if (ds_tmpsnap_drop(&pg->x, pg->state_dir, &snap))
		bfs_warn("cannot remove the snapshot of '%s'", pg->pgdata);
	return rc;
}

static int pg_dump(struct pg_ds *pg, const struct ds_strategy *s,
		   bfs_sink_fn sink, void *arg, struct bfs_progress *progress,
		   char *err, size_t errlen)
{
	struct ds_cmd cmd = {
		.in_fd = -1, .out = sink, .out_arg = arg, .progress = progress};
	struct pg_argv a;
	json_t *t;
	size_t i;

	pg_tool(pg, &a, "pg_dump");
	pg_conn(pg, &a);
	pg_arg(&a, "-d");
	pg_arg(&a, pg->database);
	pg_arg(&a, "-Fc");
	json_array_foreach(s->tables, i, t)
	{
		pg_arg(&a, "-t");
		pg_arg(&a, json_string_value(t));
	}
	return pg_run(pg, &a, &cmd, err, errlen);
}

static int pg_meta(struct pg_ds *pg, const struct ds_strategy *s,
		   const char *snap, const char *version, json_t *meta)
{
	json_t *strategy = json_object();
	const char *format;

	if (s->format == DS_FORMAT_AGNOSTIC)
		format = "pg_dump-custom";
	else
		format = snap ? "btrfs-tar" : "pg_basebackup-tar";
	if (!strategy || ds_strategy_meta(s, strategy) ||
	    (snap &&
	     json_object_set_new(strategy, "snapshot", json_string(snap))) ||
	    json_object_set_new(meta, "strategy", strategy) ||
	    json_object_set_new(meta, "format", json_string(format)) ||
	    json_object_set_new(meta, "datastore_version",
				json_string(version)) ||
	    json_object_set_new(meta, "database", json_string(pg->database)))
		return -ENOMEM;
	return 0;
}

static int pg_backup(struct bfs_datastore *ds, json_t *strategy,
		     bfs_sink_fn sink, void *sink_arg,
		     struct bfs_progress *progress, json_t *meta, char *err,
		     size_t errlen)
{
	struct pg_ds *pg = pg_of(ds);
	char version[PG_VERSION_MAX];
	struct ds_strategy s;
	const char *snap;
	int rc;

	rc = pg_strategy(ds, strategy, &s, &snap, err, errlen);
	if (!rc)
		rc = pg_server_version(pg, version, sizeof(version), err,
				       errlen);
	if (rc)
		return rc;
	if (s.format == DS_FORMAT_AGNOSTIC)
		rc = pg_dump(pg, &s, sink, sink_arg, progress, err, errlen);
	else if (snap)
		rc = pg_btrfs_backup(pg, sink, sink_arg, progress, err, errlen);
	else
		rc = pg_basebackup(pg, sink, sink_arg, progress, err, errlen);
	return rc ? rc : pg_meta(pg, &s, snap, version, meta);
}

/* ---- verify ---------------------------------------------------------- */

/* The major version the instance's binaries run, or "" if unknown. */
static void pg_binaries_major(struct pg_ds *pg, char *out, size_t cap)
{
	struct ds_cmd cmd = {.in_fd = -1,
			     .capture = out,
			     .capture_cap = cap,
			     .quiet = 1,
			     .timeout = PG_QUERY_TIMEOUT};
	struct pg_argv a;
	char err[256];
	const char *v;

	out[0] = '\0';
	if (!pg->bin_dir)
		return;
	pg_tool(pg, &a, "postgres");
	pg_arg(&a, "-V");
	if (ds_run(&pg->x, &cmd, err, sizeof(err))) {
		out[0] = '\0';
		return;
	}
	/* "postgres (PostgreSQL) 15.18 (Debian ...)" */
	v = strstr(out, ") ");
	v = v ? v + 2 : "";
	memmove(out, v, strlen(v) + 1);
	out[strcspn(out, ". \n")] = '\0';
}

static int pg_verify_tar(struct pg_ds *pg, const char *path,
			 struct bfs_progress *progress, char *err,
			 size_t errlen)
{
	char version[16], major[64];
	int manifest, rc;

	rc = pg_tar_verify(path, progress, version, sizeof(version), &manifest,
			   err, errlen);
	if (rc)
		return rc;
	if (!manifest)
		bfs_info("instance '%s': the backup has no backup_manifest: "
			 "its structure is checked, not its content",
			 pg->base.instance);
	pg_binaries_major(pg, major, sizeof(major));
	if (major[0] && strcmp(major, version)) {
		snprintf(err, errlen,
			 "a PostgreSQL %s cluster cannot run on the instance's "
			 "PostgreSQL %s binaries (restore it into a %s "
			 "instance)",
			 version, major, version);
		return -EINVAL;
	}
	return 0;
}

/* pg_restore reads the whole archive, checking every block. */
static int pg_verify_dump(struct pg_ds *pg, const char *path, char *err,
			  size_t errlen)
{
	struct ds_cmd cmd = {.in_fd = -1};
	struct pg_argv a;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cmd.in_fd = fd;
	pg_tool(pg, &a, "pg_restore");
	pg_arg(&a, "-f");
	pg_arg(&a, "/dev/null");
	rc = pg_run(pg, &a, &cmd, err, errlen);
	close(fd);
	return rc ? -EBADMSG : 0;
}

static int pg_verify(struct bfs_datastore *ds, const char *path,
		     struct bfs_progress *progress, char *err, size_t errlen)
{
	struct pg_ds *pg = pg_of(ds);
	enum ds_kind kind;
	int rc;

	rc = ds_sniff(path, &kind);
	if (rc)
		return rc;
	if (kind == DS_KIND_PG_DUMP)
		rc = pg_verify_dump(pg, path, err, errlen);
	else if (kind == DS_KIND_TAR)
		rc = pg_verify_tar(pg, path, progress, err, errlen);
	else {
		snprintf(err, errlen, "not a PostgreSQL backup: the file is %s",
			 ds_kind_name(kind));
		return -EINVAL;
	}
	if (rc == -EBADMSG && kind == DS_KIND_PG_DUMP && !err[0])
		snprintf(err, errlen, "the pg_dump archive is corrupt");
	return rc;
}

/* ---- restore --------------------------------------------------------- */

/* Extract the tar into the staging directory, as the database's user
 * (the files end up its own, and the archive cannot write elsewhere). */
static int pg_extract(struct pg_ds *pg, const char *path, const char *dir,
		      struct bfs_progress *progress, char *err, size_t errlen)
{
	const char *argv[] = {
		"tar", "-x", "-f", "-", "-C", dir, "--no-same-owner", NULL};
	struct ds_cmd cmd = {.argv = argv, .user = pg->os_user};
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cmd.in_fd = fd;
	rc = ds_run(&pg->x, &cmd, err, errlen);
	close(fd);
	if (!rc)
		progress->done = progress->total;
	return rc;
}

static int pg_restore_native(struct pg_ds *pg, const char *path,
			     struct bfs_progress *progress, char *err,
			     size_t errlen)
{
	struct ds_swap swap;
	int rc;

	rc = ds_swap_begin(&swap, &pg->x, &pg->svc, pg->state_dir, pg->pgdata,
			   pg->os_user, err, errlen);
	if (rc)
		return rc;
	rc = pg_extract(pg, path, swap.staging, progress, err, errlen);
	if (rc) {
		ds_swap_abort(&swap);
		return rc;
	}
	return ds_swap_commit(&swap, err, errlen);
}

/* One transaction: the database holds all of the archive or none. */
static int pg_restore_dump(struct pg_ds *pg, const char *path,
			   struct bfs_progress *progress, char *err,
			   size_t errlen)
{
	struct ds_cmd cmd = {0};
	struct pg_argv a;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cmd.in_fd = fd;
	pg_tool(pg, &a, "pg_restore");
	pg_conn(pg, &a);
	pg_arg(&a, "-d");
	pg_arg(&a, pg->database);
	pg_arg(&a, "--clean");
	pg_arg(&a, "--if-exists");
	pg_arg(&a, "--single-transaction");
	pg_arg(&a, "--exit-on-error");
	pg_arg(&a, "--no-owner");
	rc = pg_run(pg, &a, &cmd, err, errlen);
	close(fd);
	if (!rc)
		rc = ds_service_health(&pg->x, &pg->svc, err, errlen);
	if (!rc)
		progress->done = progress->total;
	return rc;
}

static int pg_restore(struct bfs_datastore *ds, const char *path,
		      struct bfs_progress *progress, char *err, size_t errlen)
{
	struct pg_ds *pg = pg_of(ds);
	enum ds_kind kind;
	int rc;

	rc = ds_sniff(path, &kind);
	if (rc)
		return rc;
	if (kind == DS_KIND_PG_DUMP)
		return pg_restore_dump(pg, path, progress, err, errlen);
	return pg_restore_native(pg, path, progress, err, errlen);
}

/* The tables of "database", as pg_dump -t takes them: schema.table. */
static int pg_tables(struct bfs_datastore *ds, json_t **out, char *err,
		     size_t errlen)
{
	struct pg_ds *pg = pg_of(ds);
	char *buf, *line, *save = NULL;
	json_t *arr;
	int rc;

	buf = malloc(PG_TABLES_OUT_MAX);
	arr = json_array();
	rc = buf && arr ? 0 : -ENOMEM;
	if (!rc)
		rc = pg_query_into(pg, pg->database,
				   "select quote_ident(schemaname) || '.' || "
				   "quote_ident(tablename) from pg_tables "
				   "where schemaname not in ('pg_catalog', "
				   "'information_schema') order by 1",
				   buf, PG_TABLES_OUT_MAX, err, errlen);
	for (line = rc ? NULL : strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (json_array_append_new(arr, json_string(line)))
			rc = -ENOMEM;
	free(buf);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static int pg_recover(struct bfs_datastore *ds)
{
	struct pg_ds *pg = pg_of(ds);
	int rc, r;

	rc = ds_tmpsnap_recover(&pg->x, pg->state_dir);
	r = ds_swap_recover(&pg->x, &pg->svc, pg->state_dir);
	pg_slot_recover(pg);
	return rc ? rc : r;
}

const struct bfs_datastore_ops bfs_postgresql_ops = {
	.name = "postgresql",
	.config_keys = pg_keys,
	.open = pg_open,
	.close = pg_close,
	.check_strategy = pg_check_strategy,
	.estimate = pg_estimate,
	.backup = pg_backup,
	.verify = pg_verify,
	.restore = pg_restore,
	.recover = pg_recover,
	.tables = pg_tables,
};
