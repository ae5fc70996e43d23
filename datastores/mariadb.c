// SPDX-License-Identifier: Apache-2.0
/*
 * The "mariadb" datastore.
 *
 *   {"datastore": "mariadb", "datadir": "/var/lib/mysql",
 *    "socket": "/run/mysqld/mysqld.sock", "user": "root",
 *    "os_user": "mysql", "host": "127.0.0.1", "port": 3306,
 *    "password_file": "/etc/backupfs/maria1.pw", "bin_dir": "/usr/bin",
 *    "exec_prefix": [...], "service": {...}}
 *
 * Backups (the strategy picks one):
 *   native (default)  mariabackup --backup --stream=xbstream: the whole
 *                     instance, online; the stream is walked chunk by
 *                     chunk while it goes by (mariadb_scan.c) and the
 *                     tool's log must end with "completed OK!"
 *   agnostic          mariadb-dump --single-transaction --routines
 *                     --triggers --events of every user database (not
 *                     mysql, information_schema, performance_schema,
 *                     sys: accounts are in native backups only), or of
 *                     "tables": "db" is a database, whole (dropped and
 *                     recreated at restore), "db.table" one table of it
 *                     (the first dot separates) with its keys, indexes
 *                     and triggers
 * Restores:
 *   native            mbstream -x into a staging directory beside
 *                     datadir, mariabackup --prepare, chown to os_user,
 *                     then swapped in (swap.c): stop, swap, start,
 *                     health check, or the old directory goes back
 *   agnostic          the dump's scope (the databases and tables it
 *                     replaces, read from the dump itself) is dumped
 *                     first into the state directory; then the dump runs
 *                     through the mariadb client; if it fails, the safety
 *                     dump runs, which puts the scope back as it was.
 *                     Journalled: a crash while applying is undone the
 *                     same way at the next start.
 *
 * Every tool gets --no-defaults first, so nothing of /etc/mysql applies
 * (mbstream reads no option files and takes no such option).  Tools run
 * as the daemon's user (root: mariabackup reads the data directory's
 * files); only the restored files are given to os_user.  The password,
 * if any, comes from "password_file" and reaches the tools in an option
 * file of mode 0600 in the instance's state directory, named by
 * --defaults-file= in place of --no-defaults (an option file is what
 * every MariaDB tool reads, mariabackup included; MYSQL_PWD is
 * deprecated and an argv is world-readable).  The file exists only while
 * a tool that needs it runs, and a crash's leftover is removed at the
 * next start.  It is written on the admin host: with an exec prefix to
 * another host, authenticate there by the socket (unix_socket) instead.
 *
 * Default service, for a plain systemd host: systemctl stop|start
 * mariadb, health `mariadb -e "select 1"` over the instance's socket or
 * host; override them in "service" (the tests use their server script).
 */
#include "ds_int.h"
#include "log.h"
#include "mariadb_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MDB_ARGS_MAX	  232 /* below exec.c's bound, with the prefix */
#define MDB_NAMES_PER_RUN 200 /* databases or tables per mariadb-dump */
#define MDB_QUERY_TIMEOUT 60
#define MDB_LIST_MAX	  (4 << 20) /* bytes of a listing query's output */
#define MDB_VERSION_MAX	  128
#define MDB_CNF		  "mariadb-client.cnf"
#define MDB_SAFETY	  "mariadb-safety.sql"
#define MDB_JOURNAL	  "mariadb-restore.journal"

static const char *const mdb_keys[] = {
	"datadir",	 "socket",  "host",	   "port",    "user", "os_user",
	"password_file", "bin_dir", "exec_prefix", "service", NULL,
};

/* Not backed up by "agnostic" without "tables": the server's own. */
static const char mdb_system_dbs[] =
	"'mysql','information_schema','performance_schema','sys'";

struct mdb_ds {
	struct bfs_datastore base;
	char *state_dir;
	char *datadir;
	char *socket; /* or NULL: host */
	char *host;   /* or NULL: socket */
	char port[8]; /* or "" */
	char *user;
	char *os_user;
	char *bin_dir;	/* or NULL: tools from PATH */
	char *password; /* or NULL */
	char *cnf;	/* the option file's path */
	pthread_mutex_t cnf_lock;
	int cnf_users; /* tools that need the option file now */
	struct ds_exec x;
	struct ds_service svc;
};

static struct mdb_ds *mdb_of(struct bfs_datastore *ds)
{
	return (struct mdb_ds *)ds;
}

/* ---- the password's option file -------------------------------------- */

/* [client] password="...": quotes and backslashes escaped. */
static int mdb_cnf_write(struct mdb_ds *m)
{
	static const char head[] = "# backupfs: removed when the tool exits\n"
				   "[client]\npassword=\"";
	size_t n = strlen(m->password), i, k = 0;
	char *text;
	int fd, rc = 0;

	text = malloc(sizeof(head) + 2 * n + 4);
	if (!text)
		return -ENOMEM;
	memcpy(text, head, sizeof(head) - 1);
	k = sizeof(head) - 1;
	for (i = 0; i < n; i++) {
		if (m->password[i] == '"' || m->password[i] == '\\')
			text[k++] = '\\';
		text[k++] = m->password[i];
	}
	memcpy(text + k, "\"\n", 3);
	k += 2;
	unlink(m->cnf);
	fd = open(m->cnf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || fchmod(fd, 0600) || write(fd, text, k) != (ssize_t)k)
		rc = -errno;
	if (fd >= 0 && close(fd) && !rc)
		rc = -errno;
	explicit_bzero(text, k);
	free(text);
	if (rc)
		unlink(m->cnf);
	return rc;
}

/* A tool that may need the password is about to run. */
static int mdb_cnf_get(struct mdb_ds *m, char *err, size_t errlen)
{
	int rc = 0;

	if (!m->password)
		return 0;
	pthread_mutex_lock(&m->cnf_lock);
	if (!m->cnf_users)
		rc = mdb_cnf_write(m);
	if (!rc)
		m->cnf_users++;
	pthread_mutex_unlock(&m->cnf_lock);
	if (rc)
		snprintf(err, errlen, "cannot write '%s': %s", m->cnf,
			 strerror(-rc));
	return rc;
}

static void mdb_cnf_put(struct mdb_ds *m)
{
	if (!m->password)
		return;
	pthread_mutex_lock(&m->cnf_lock);
	if (!--m->cnf_users)
		unlink(m->cnf);
	pthread_mutex_unlock(&m->cnf_lock);
}

/* ---- command lines --------------------------------------------------- */

/* An argv under construction; strings are borrowed but tool and first. */
struct mdb_argv {
	const char *v[MDB_ARGS_MAX];
	size_t n;
	char tool[4096];
	char first[4200];
};

static void mdb_arg(struct mdb_argv *a, const char *s)
{
	if (a->n + 1 < MDB_ARGS_MAX)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* bin_dir/name, or name from PATH, with nothing after it. */
static void mdb_tool_bare(struct mdb_ds *m, struct mdb_argv *a,
			  const char *name)
{
	a->n = 0;
	if (m->bin_dir)
		snprintf(a->tool, sizeof(a->tool), "%s/%s", m->bin_dir, name);
	else
		snprintf(a->tool, sizeof(a->tool), "%s", name);
	mdb_arg(a, a->tool);
}

/* A tool with its option-file argument first, as every one needs. */
static void mdb_tool(struct mdb_ds *m, struct mdb_argv *a, const char *name)
{
	mdb_tool_bare(m, a, name);
	if (m->password)
		snprintf(a->first, sizeof(a->first), "--defaults-file=%s",
			 m->cnf);
	else
		snprintf(a->first, sizeof(a->first), "--no-defaults");
	mdb_arg(a, a->first);
}

/* Where and who: the socket, or host and port; the user. */
static void mdb_conn(struct mdb_ds *m, struct mdb_argv *a)
{
	if (m->host) {
		mdb_arg(a, "-h");
		mdb_arg(a, m->host);
		mdb_arg(a, "--protocol=TCP");
		if (m->port[0]) {
			mdb_arg(a, "-P");
			mdb_arg(a, m->port);
		}
	} else {
		mdb_arg(a, "-S");
		mdb_arg(a, m->socket);
	}
	mdb_arg(a, "-u");
	mdb_arg(a, m->user);
}

/* Run a tool that talks to the server (holds the option file). */
static int mdb_run(struct mdb_ds *m, struct mdb_argv *a, struct ds_cmd *cmd,
		   char *err, size_t errlen)
{
	int rc;

	cmd->argv = a->v;
	rc = mdb_cnf_get(m, err, errlen);
	if (rc)
		return rc;
	rc = ds_run(&m->x, cmd, err, errlen);
	mdb_cnf_put(m);
	return rc;
}

/* The output of one query (mariadb -N -B), into out[cap]. */
static int mdb_query(struct mdb_ds *m, const char *sql, char *out, size_t cap,
		     char *err, size_t errlen)
{
	struct ds_cmd cmd = {.in_fd = -1,
			     .capture = out,
			     .capture_cap = cap,
			     .timeout = MDB_QUERY_TIMEOUT};
	struct mdb_argv a;

	mdb_tool(m, &a, "mariadb");
	mdb_conn(m, &a);
	mdb_arg(&a, "-N");
	mdb_arg(&a, "-B");
	mdb_arg(&a, "-e");
	mdb_arg(&a, sql);
	return mdb_run(m, &a, &cmd, err, errlen);
}

/* ---- names ------------------------------------------------------------ */

/* `name` with backticks doubled (new string). */
static char *mdb_quote_ident(const char *name)
{
	size_t n = strlen(name), i, k = 0;
	char *q = malloc(2 * n + 3);

	if (!q)
		return NULL;
	q[k++] = '`';
	for (i = 0; i < n; i++) {
		if (name[i] == '`')
			q[k++] = '`';
		q[k++] = name[i];
	}
	q[k++] = '`';
	q[k] = '\0';
	return q;
}

static void mdb_hex(const char *s, char *out)
{
	static const char digits[] = "0123456789ABCDEF";

	for (; *s; s++) {
		*out++ = digits[(unsigned char)*s >> 4];
		*out++ = digits[(unsigned char)*s & 15];
	}
	*out = '\0';
}

static int mdb_unhex(const char *hex, size_t len, char *out, size_t cap)
{
	size_t i;
	unsigned int b;

	if (len % 2 || len / 2 >= cap)
		return -EINVAL;
	for (i = 0; i < len; i += 2) {
		if (sscanf(hex + i, "%2x", &b) != 1)
			return -EINVAL;
		out[i / 2] = (char)b;
	}
	out[len / 2] = '\0';
	return 0;
}

/*
 * The names a query returns as HEX(name), one per line, as a new JSON
 * array: hex so that no name can break the listing.  Names fit for a
 * command line only (mdb_name_ok).
 */
static int mdb_list(struct mdb_ds *m, const char *sql, json_t **out, char *err,
		    size_t errlen)
{
	char *buf, *line, *save = NULL, name[MDB_NAME_MAX];
	json_t *arr;
	int rc;

	*out = NULL;
	buf = malloc(MDB_LIST_MAX);
	arr = json_array();
	if (!buf || !arr) {
		free(buf);
		json_decref(arr);
		return -ENOMEM;
	}
	rc = mdb_query(m, sql, buf, MDB_LIST_MAX, err, errlen);
	for (line = rc ? NULL : strtok_r(buf, "\n", &save); line && !rc;
	     line = strtok_r(NULL, "\n", &save)) {
		if (mdb_unhex(line, strlen(line), name, sizeof(name)) ||
		    !mdb_name_ok(name)) {
			snprintf(err, errlen,
				 "the server has a database or table whose "
				 "name backupfs cannot pass to mariadb-dump");
			rc = -EINVAL;
		} else if (json_array_append_new(arr, json_string(name))) {
			rc = -ENOMEM;
		}
	}
	free(buf);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static int mdb_user_databases(struct mdb_ds *m, json_t **out, char *err,
			      size_t errlen)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "select hex(schema_name) from information_schema.schemata "
		 "where schema_name not in (%s) order by schema_name",
		 mdb_system_dbs);
	return mdb_list(m, sql, out, err, errlen);
}

static int mdb_all_databases(struct mdb_ds *m, json_t **out, char *err,
			     size_t errlen)
{
	return mdb_list(m,
			"select hex(schema_name) from "
			"information_schema.schemata",
			out, err, errlen);
}

static int mdb_tables_of(struct mdb_ds *m, const char *db, json_t **out,
			 char *err, size_t errlen)
{
	char hex[2 * MDB_NAME_MAX + 1], sql[2 * MDB_NAME_MAX + 160];

	mdb_hex(db, hex);
	snprintf(sql, sizeof(sql),
		 "select hex(table_name) from information_schema.tables "
		 "where table_schema = unhex('%s')",
		 hex);
	return mdb_list(m, sql, out, err, errlen);
}

static int mdb_json_has(json_t *arr, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		if (!strcmp(json_string_value(v), name))
			return 1;
	}
	return 0;
}

/* ---- open, close, strategy ------------------------------------------- */

static void mdb_close(struct bfs_datastore *ds)
{
	struct mdb_ds *m = mdb_of(ds);

	ds_service_release(&m->svc);
	ds_exec_release(&m->x);
	if (m->cnf && m->cnf_users)
		unlink(m->cnf);
	pthread_mutex_destroy(&m->cnf_lock);
	free(m->state_dir);
	free(m->datadir);
	free(m->socket);
	free(m->host);
	free(m->user);
	free(m->os_user);
	free(m->bin_dir);
	if (m->password)
		explicit_bzero(m->password, strlen(m->password));
	free(m->password);
	free(m->cnf);
	free(m);
}

static int mdb_parse_password(struct mdb_ds *m, json_t *conf, char *err,
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
	if (!rc) {
		m->password = strdup(pw);
		if (!m->password ||
		    asprintf(&m->cnf, "%s/%s", m->state_dir, MDB_CNF) < 0)
			rc = -ENOMEM;
	}
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

static int mdb_parse_conf(struct mdb_ds *m, const char *instance, json_t *conf,
			  char *err, size_t errlen)
{
	const char *bad = NULL;

	if (ds_conf_str(conf, "datadir", NULL, &m->datadir) || !m->datadir ||
	    m->datadir[0] != '/')
		bad = "\"datadir\" (an absolute path)";
	else if (ds_conf_str(conf, "host", NULL, &m->host) ||
		 (m->host && m->host[0] == '-'))
		bad = "\"host\"";
	else if (ds_conf_str(conf, "socket",
			     m->host ? NULL : "/run/mysqld/mysqld.sock",
			     &m->socket) ||
		 (m->socket && m->socket[0] != '/'))
		bad = "\"socket\" (an absolute path)";
	else if (m->host && json_object_get(conf, "socket"))
		bad = "\"socket\" or \"host\", not both,";
	else if (ds_conf_port(conf, m->port))
		bad = "\"port\" (1 to 65535)";
	else if (ds_conf_str(conf, "user", "root", &m->user) ||
		 m->user[0] == '-')
		bad = "\"user\"";
	else if (ds_conf_str(conf, "os_user", "mysql", &m->os_user) ||
		 m->os_user[0] == '-')
		bad = "\"os_user\"";
	else if (ds_conf_str(conf, "bin_dir", NULL, &m->bin_dir))
		bad = "\"bin_dir\"";
	if (bad) {
		snprintf(err, errlen, "instance '%s' needs a valid %s",
			 instance, bad);
		return -EINVAL;
	}
	if (!m->user || !m->os_user)
		return -ENOMEM;
	return mdb_parse_password(m, conf, err, errlen);
}

/* systemctl defaults: a host without systemd overrides them. */
static int mdb_parse_service(struct mdb_ds *m, json_t *conf, char *err,
			     size_t errlen)
{
	const char *start[] = {"systemctl", "start", "mariadb", NULL};
	const char *stop[] = {"systemctl", "stop", "mariadb", NULL};
	struct mdb_argv health;

	mdb_tool(m, &health, "mariadb");
	mdb_conn(m, &health);
	mdb_arg(&health, "--connect-timeout=5");
	mdb_arg(&health, "-e");
	mdb_arg(&health, "select 1");
	return ds_service_parse(conf, start, stop, health.v, NULL, &m->svc, err,
				errlen);
}

static int mdb_open(const char *instance, json_t *conf, const char *state_dir,
		    struct bfs_datastore **out, char *err, size_t errlen)
{
	struct mdb_ds *m;
	int rc;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->cnf_lock, NULL);
	m->state_dir = strdup(state_dir);
	rc = m->state_dir ? 0 : -ENOMEM;
	if (!rc)
		rc = mdb_parse_conf(m, instance, conf, err, errlen);
	if (!rc)
		rc = ds_exec_parse(conf, &m->x, err, errlen);
	if (!rc)
		rc = mdb_parse_service(m, conf, err, errlen);
	if (rc) {
		mdb_close(&m->base);
		return rc;
	}
	*out = &m->base;
	return 0;
}

/* "db" or "db.table" of a strategy's "tables" entry. */
static int mdb_split(const char *entry, char *db, char *table)
{
	const char *dot = strchr(entry, '.');

	table[0] = '\0';
	if (!dot) {
		snprintf(db, MDB_NAME_MAX, "%s", entry);
		return mdb_name_ok(db) ? 0 : -EINVAL;
	}
	if ((size_t)(dot - entry) >= MDB_NAME_MAX)
		return -EINVAL;
	snprintf(db, MDB_NAME_MAX, "%.*s", (int)(dot - entry), entry);
	snprintf(table, MDB_NAME_MAX, "%s", dot + 1);
	return mdb_name_ok(db) && mdb_name_ok(table) ? 0 : -EINVAL;
}

static int mdb_strategy(struct bfs_datastore *ds, json_t *strategy,
			struct ds_strategy *s, char *err, size_t errlen)
{
	char db[MDB_NAME_MAX], table[MDB_NAME_MAX];
	json_t *t;
	size_t i;
	int rc;

	rc = ds_strategy_parse(strategy, "mariadb", NULL, s, err, errlen);
	if (rc)
		return rc;
	if (s->type == DS_TYPE_INCREMENTAL) {
		snprintf(err, errlen,
			 "incremental MariaDB backups are not supported: a "
			 "full backup stores only the chunks that changed");
		return -EINVAL;
	}
	if (s->mode == DS_MODE_OFFLINE) {
		snprintf(err, errlen,
			 "offline backups of MariaDB are not needed: "
			 "mariabackup and mariadb-dump --single-transaction "
			 "are online");
		return -EINVAL;
	}
	if (s->tables && s->format == DS_FORMAT_NATIVE) {
		snprintf(err, errlen,
			 "a native backup is the whole instance: per-table "
			 "backups need \"format\": \"agnostic\"");
		return -EINVAL;
	}
	json_array_foreach(s->tables, i, t)
	{
		if (mdb_split(json_string_value(t), db, table)) {
			snprintf(err, errlen,
				 "strategy \"tables\" entry %zu must be "
				 "\"database\" or \"database.table\"",
				 i);
			return -EINVAL;
		}
	}
	(void)ds;
	return 0;
}

static int mdb_check_strategy(struct bfs_datastore *ds, json_t *strategy,
			      char *err, size_t errlen)
{
	struct ds_strategy s;

	return mdb_strategy(ds, strategy, &s, err, errlen);
}

static int mdb_estimate(struct bfs_datastore *ds, json_t *strategy,
			uint64_t *bytes)
{
	struct mdb_ds *m = mdb_of(ds);
	char out[64], err[256];
	struct ds_strategy s;
	int rc;

	rc = mdb_strategy(ds, strategy, &s, err, sizeof(err));
	if (rc)
		return rc;
	rc = mdb_query(m,
		       "select coalesce(sum(data_length + index_length), 0) "
		       "from information_schema.tables",
		       out, sizeof(out), err, sizeof(err));
	if (rc)
		return rc;
	*bytes = strtoull(out, NULL, 10);
	return 0;
}

/* ---- backup ---------------------------------------------------------- */

static int mdb_server_version(struct mdb_ds *m, char *out, size_t cap,
			      char *err, size_t errlen)
{
	int rc = mdb_query(m, "select version()", out, cap, err, errlen);

	out[strcspn(out, "\n")] = '\0';
	if (!rc && !out[0]) {
		snprintf(err, errlen, "the server did not say its version");
		rc = -EIO;
	}
	return rc;
}

/* The stream goes by the xbstream check on its way to the sink. */
struct mdb_xb_sink {
	struct mdb_xbs xbs;
	bfs_sink_fn sink;
	void *arg;
};

static int mdb_xb_sink(void *arg, const void *data, size_t len)
{
	struct mdb_xb_sink *s = arg;
	int rc;

	rc = mdb_xbs_feed(&s->xbs, data, len);
	if (rc) {
		bfs_err("mariabackup's stream: %s", s->xbs.err);
		return rc;
	}
	return s->sink(s->arg, data, len);
}

/* mariabackup's log says "completed OK!" last when it succeeded. */
static int mdb_completed_ok(const char *log, const char *tool, char *err,
			    size_t errlen)
{
	size_t n = strlen(log);

	while (n && (log[n - 1] == '\n' || log[n - 1] == ' '))
		n--;
	if (n >= 13 && !strncmp(log + n - 13, "completed OK!", 13))
		return 0;
	snprintf(err, errlen, "%s did not report \"completed OK!\"", tool);
	return -EIO;
}

static int mdb_mariabackup(struct mdb_ds *m, bfs_sink_fn sink, void *arg,
			   struct bfs_progress *progress, json_t *meta,
			   char *err, size_t errlen)
{
	struct mdb_xb_sink *xs;
	char datadir[4200], log[1024], v[MDB_VERSION_MAX];
	struct ds_cmd cmd = {.in_fd = -1,
			     .out = mdb_xb_sink,
			     .progress = progress,
			     .err_tail = log,
			     .err_tail_cap = sizeof(log)};
	struct mdb_argv a;
	int rc;

	xs = calloc(1, sizeof(*xs));
	if (!xs)
		return -ENOMEM;
	mdb_xbs_init(&xs->xbs);
	xs->sink = sink;
	xs->arg = arg;
	cmd.out_arg = xs;
	snprintf(datadir, sizeof(datadir), "--datadir=%s", m->datadir);
	mdb_tool(m, &a, "mariabackup");
	mdb_arg(&a, "--backup");
	mdb_arg(&a, "--stream=xbstream");
	mdb_arg(&a, datadir);
	mdb_conn(m, &a);
	rc = mdb_run(m, &a, &cmd, err, errlen);
	if (!rc)
		rc = mdb_completed_ok(log, "mariabackup", err, errlen);
	if (!rc) {
		rc = mdb_xbs_finish(&xs->xbs);
		if (rc)
			snprintf(err, errlen, "mariabackup's stream: %s",
				 xs->xbs.err);
	} else if (xs->xbs.failed) {
		snprintf(err, errlen, "mariabackup's stream: %s", xs->xbs.err);
	}
	if (!rc) {
		mdb_xbs_value(xs->xbs.checkpoints, "to_lsn", v, sizeof(v));
		if (v[0] && json_object_set_new(meta, "to_lsn", json_string(v)))
			rc = -ENOMEM;
		mdb_xbs_value(xs->xbs.info, "tool_version", v, sizeof(v));
		if (!rc && v[0] &&
		    json_object_set_new(meta, "mariabackup_version",
					json_string(v)))
			rc = -ENOMEM;
	}
	mdb_xbs_release(&xs->xbs);
	free(xs);
	return rc;
}

/* A line of SQL of our own into the stream. */
static int mdb_emit(bfs_sink_fn sink, void *arg, struct bfs_progress *progress,
		    const char *text)
{
	if (progress)
		progress->done += strlen(text);
	return sink(arg, text, strlen(text));
}

/* "USE `db`;" and friends: fmt takes the quoted name (once or twice). */
static int mdb_emit_db(bfs_sink_fn sink, void *arg,
		       struct bfs_progress *progress, const char *fmt,
		       const char *db)
{
	char *q = mdb_quote_ident(db), *line = NULL;
	int rc;

	if (!q || asprintf(&line, fmt, q, q) < 0) {
		free(q);
		return -ENOMEM;
	}
	rc = mdb_emit(sink, arg, progress, line);
	free(line);
	free(q);
	return rc;
}

/*
 * mariadb-dump of names[from, from + n): whole databases (db == NULL,
 * dropped and recreated at restore) or tables of db.
 */
static int mdb_dump_run(struct mdb_ds *m, const char *db, json_t *names,
			size_t from, size_t n, bfs_sink_fn sink, void *arg,
			struct bfs_progress *progress, char *err, size_t errlen)
{
	struct ds_cmd cmd = {
		.in_fd = -1, .out = sink, .out_arg = arg, .progress = progress};
	struct mdb_argv a;
	size_t i;

	mdb_tool(m, &a, "mariadb-dump");
	mdb_conn(m, &a);
	mdb_arg(&a, "--single-transaction");
	mdb_arg(&a, "--triggers");
	if (!db) {
		mdb_arg(&a, "--routines");
		mdb_arg(&a, "--events");
		mdb_arg(&a, "--add-drop-database");
		mdb_arg(&a, "--databases");
	}
	mdb_arg(&a, "--");
	if (db)
		mdb_arg(&a, db);
	for (i = from; i < from + n && i < json_array_size(names); i++)
		mdb_arg(&a, json_string_value(json_array_get(names, i)));
	return mdb_run(m, &a, &cmd, err, errlen);
}

/* All of names, MDB_NAMES_PER_RUN at a time (argv has a bound). */
static int mdb_dump_all(struct mdb_ds *m, const char *db, json_t *names,
			bfs_sink_fn sink, void *arg,
			struct bfs_progress *progress, char *err, size_t errlen)
{
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < json_array_size(names); i += MDB_NAMES_PER_RUN)
		rc = mdb_dump_run(m, db, names, i, MDB_NAMES_PER_RUN, sink, arg,
				  progress, err, errlen);
	return rc;
}

/*
 * The parts of a scope: whole databases, then the tables of each other
 * database behind a USE (created first if missing: the dump of tables
 * does not say CREATE DATABASE).
 */
static int mdb_dump_scope(struct mdb_ds *m, json_t *databases, json_t *tables,
			  bfs_sink_fn sink, void *arg,
			  struct bfs_progress *progress, char *err,
			  size_t errlen)
{
	const char *db;
	json_t *names;
	int rc = 0;

	if (json_array_size(databases))
		rc = mdb_dump_all(m, NULL, databases, sink, arg, progress, err,
				  errlen);
	json_object_foreach(tables, db, names)
	{
		if (rc)
			break;
		rc = mdb_emit_db(sink, arg, progress,
				 "CREATE DATABASE IF NOT EXISTS %s;\n"
				 "USE %s;\n",
				 db);
		if (!rc)
			rc = mdb_dump_all(m, db, names, sink, arg, progress,
					  err, errlen);
	}
	return rc;
}

/* The strategy's "tables" as whole databases and tables per database. */
static int mdb_strategy_scope(const struct ds_strategy *s, json_t *databases,
			      json_t *tables)
{
	char db[MDB_NAME_MAX], table[MDB_NAME_MAX];
	json_t *t, *arr;
	size_t i;

	json_array_foreach(s->tables, i, t)
	{
		mdb_split(json_string_value(t), db, table);
		if (!table[0] && !mdb_json_has(databases, db) &&
		    json_array_append_new(databases, json_string(db)))
			return -ENOMEM;
	}
	json_array_foreach(s->tables, i, t)
	{
		mdb_split(json_string_value(t), db, table);
		if (!table[0] || mdb_json_has(databases, db))
			continue;
		arr = json_object_get(tables, db);
		if (!arr) {
			arr = json_array();
			if (!arr || json_object_set_new(tables, db, arr))
				return -ENOMEM;
		}
		if (!mdb_json_has(arr, table) &&
		    json_array_append_new(arr, json_string(table)))
			return -ENOMEM;
	}
	return 0;
}

static int mdb_dump(struct mdb_ds *m, const struct ds_strategy *s,
		    bfs_sink_fn sink, void *arg, struct bfs_progress *progress,
		    json_t *meta, char *err, size_t errlen)
{
	json_t *databases = NULL, *tables = json_object();
	int rc;

	if (!tables)
		return -ENOMEM;
	if (s->tables) {
		databases = json_array();
		rc = databases ? mdb_strategy_scope(s, databases, tables)
			       : -ENOMEM;
	} else {
		rc = mdb_user_databases(m, &databases, err, errlen);
		if (!rc && !json_array_size(databases)) {
			snprintf(err, errlen,
				 "the instance has no databases to dump "
				 "(only %s)",
				 mdb_system_dbs);
			rc = -ENODATA;
		}
	}
	/* The first line says what this is; the sniffer knows it. */
	if (!rc)
		rc = mdb_emit(sink, arg, progress,
			      "-- MariaDB dump made by backupfs\n"
			      "/*!40101 SET NAMES utf8mb4 */;\n");
	if (!rc)
		rc = mdb_dump_scope(m, databases, tables, sink, arg, progress,
				    err, errlen);
	if (!rc && (json_object_set(meta, "databases", databases) ||
		    json_object_set(meta, "tables", tables)))
		rc = -ENOMEM;
	json_decref(databases);
	json_decref(tables);
	return rc;
}

/* What a restore into a freshly deployed instance needs, beside the
 * strategy: the server it came from and the tools it takes. */
static int mdb_meta(const struct ds_strategy *s, const char *version,
		    json_t *meta)
{
	json_t *strategy = json_object();
	int native = s->format == DS_FORMAT_NATIVE;

	if (!strategy || ds_strategy_meta(s, strategy) ||
	    json_object_set_new(meta, "strategy", strategy) ||
	    json_object_set_new(meta, "format",
				json_string(native ? "xbstream" : "sql")) ||
	    json_object_set_new(meta, "datastore_version",
				json_string(version)) ||
	    json_object_set_new(
		    meta, "restore_needs",
		    json_string(native ? "a MariaDB server of the same major "
					 "version with mariabackup and "
					 "mbstream; the data directory is "
					 "replaced whole, accounts included"
				       : "a running MariaDB server and the "
					 "mariadb client; the dump creates "
					 "its databases")))
		return -ENOMEM;
	return 0;
}

static int mdb_backup(struct bfs_datastore *ds, json_t *strategy,
		      bfs_sink_fn sink, void *sink_arg,
		      struct bfs_progress *progress, json_t *meta, char *err,
		      size_t errlen)
{
	struct mdb_ds *m = mdb_of(ds);
	char version[MDB_VERSION_MAX];
	struct ds_strategy s;
	int rc;

	rc = mdb_strategy(ds, strategy, &s, err, errlen);
	if (!rc)
		rc = mdb_server_version(m, version, sizeof(version), err,
					errlen);
	if (rc)
		return rc;
	if (s.format == DS_FORMAT_AGNOSTIC)
		rc = mdb_dump(m, &s, sink, sink_arg, progress, meta, err,
			      errlen);
	else
		rc = mdb_mariabackup(m, sink, sink_arg, progress, meta, err,
				     errlen);
	return rc ? rc : mdb_meta(&s, version, meta);
}

/* ---- verify ---------------------------------------------------------- */

/* "10.11" of "10.11.19-MariaDB-0+deb12u1", in out[cap]. */
static void mdb_major(const char *version, char *out, size_t cap)
{
	const char *dot = strchr(version, '.');
	size_t n = dot ? (size_t)(dot - version) + 1 : 0;

	if (dot)
		n += strspn(dot + 1, "0123456789");
	snprintf(out, cap, "%.*s", (int)n, version);
}

/* The MariaDB version of the instance's mariabackup, or "" if unknown. */
static void mdb_tool_major(struct mdb_ds *m, char *out, size_t cap)
{
	char log[512], e[256];
	struct ds_cmd cmd = {.in_fd = -1,
			     .quiet = 1,
			     .timeout = MDB_QUERY_TIMEOUT,
			     .err_tail = log,
			     .err_tail_cap = sizeof(log)};
	struct mdb_argv a;
	const char *v;

	out[0] = '\0';
	mdb_tool_bare(m, &a, "mariabackup");
	mdb_arg(&a, "--version");
	cmd.argv = a.v;
	if (ds_run(&m->x, &cmd, e, sizeof(e)))
		return;
	/* "mariabackup based on MariaDB server 10.11.19-MariaDB ..." */
	v = strstr(log, "MariaDB server ");
	if (v)
		mdb_major(v + strlen("MariaDB server "), out, cap);
}

static int mdb_verify_xbstream(struct mdb_ds *m, const char *path,
			       struct bfs_progress *progress, char *err,
			       size_t errlen)
{
	char *buf, version[MDB_VERSION_MAX], have[32], want[32];
	struct mdb_xbs *x;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	x = malloc(sizeof(*x));
	buf = malloc(256 * 1024);
	if (!x || !buf) {
		rc = -ENOMEM;
		goto out_free;
	}
	mdb_xbs_init(x);
	while (!rc && (n = read(fd, buf, 256 * 1024)) != 0) {
		if (n < 0) {
			if (errno != EINTR)
				rc = -errno;
			continue;
		}
		rc = mdb_xbs_feed(x, buf, (size_t)n);
		progress->done += (uint64_t)n;
	}
	if (!rc)
		rc = mdb_xbs_finish(x);
	if (rc == -EBADMSG)
		snprintf(err, errlen, "%s", x->err);
	if (!rc) {
		mdb_xbs_value(x->info, "server_version", version,
			      sizeof(version));
		mdb_major(version, want, sizeof(want));
		mdb_tool_major(m, have, sizeof(have));
		if (want[0] && have[0] && strcmp(want, have)) {
			snprintf(err, errlen,
				 "a backup of MariaDB %s cannot be prepared "
				 "by the instance's mariabackup %s (restore it "
				 "into a %s instance)",
				 want, have, want);
			rc = -EINVAL;
		}
	}
	mdb_xbs_release(x);
out_free:
	free(buf);
	free(x);
	close(fd);
	return rc;
}

/* Read the whole dump: its scope, and whether it is complete. */
static int mdb_scan_file(const char *path, struct mdb_scope *scope,
			 struct bfs_progress *progress, char *err,
			 size_t errlen)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = mdb_sql_scan(fd, scope, progress, err, errlen);
	close(fd);
	if (rc)
		return rc;
	if (!scope->header) {
		snprintf(err, errlen, "not a mariadb-dump file (no header)");
		rc = -EINVAL;
	} else if (!scope->completed) {
		snprintf(err, errlen,
			 "truncated: the dump does not end with \"-- Dump "
			 "completed\"");
		rc = -EBADMSG;
	} else if (!json_array_size(scope->databases) &&
		   !json_object_size(scope->tables)) {
		snprintf(err, errlen, "the dump holds no database or table");
		rc = -EINVAL;
	}
	if (rc)
		mdb_scope_release(scope);
	return rc;
}

static int mdb_verify(struct bfs_datastore *ds, const char *path,
		      struct bfs_progress *progress, char *err, size_t errlen)
{
	struct mdb_ds *m = mdb_of(ds);
	struct mdb_scope scope;
	enum ds_kind kind;
	int rc;

	rc = ds_sniff(path, &kind);
	if (rc)
		return rc;
	if (kind == DS_KIND_XBSTREAM)
		return mdb_verify_xbstream(m, path, progress, err, errlen);
	if (kind == DS_KIND_SQL_DUMP) {
		rc = mdb_scan_file(path, &scope, progress, err, errlen);
		if (!rc)
			mdb_scope_release(&scope);
		return rc;
	}
	snprintf(err, errlen, "not a MariaDB backup: the file is %s",
		 ds_kind_name(kind));
	return -EINVAL;
}

/* ---- restore: native ------------------------------------------------- */

static int mdb_extract(struct mdb_ds *m, const char *path, const char *dir,
		       char *err, size_t errlen)
{
	struct ds_cmd cmd = {0};
	struct mdb_argv a;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cmd.in_fd = fd;
	/* mbstream reads no option files (and refuses --no-defaults) */
	mdb_tool_bare(m, &a, "mbstream");
	mdb_arg(&a, "-x");
	mdb_arg(&a, "-C");
	mdb_arg(&a, dir);
	cmd.argv = a.v;
	rc = ds_run(&m->x, &cmd, err, errlen);
	close(fd);
	return rc;
}

static int mdb_prepare(struct mdb_ds *m, const char *dir, char *err,
		       size_t errlen)
{
	char target[4200], log[1024];
	struct ds_cmd cmd = {
		.in_fd = -1, .err_tail = log, .err_tail_cap = sizeof(log)};
	struct mdb_argv a;
	int rc;

	snprintf(target, sizeof(target), "--target-dir=%s", dir);
	mdb_tool(m, &a, "mariabackup");
	mdb_arg(&a, "--prepare");
	mdb_arg(&a, target);
	rc = mdb_run(m, &a, &cmd, err, errlen);
	return rc ? rc
		  : mdb_completed_ok(log, "mariabackup --prepare", err, errlen);
}

static int mdb_chown(struct mdb_ds *m, const char *dir, char *err,
		     size_t errlen)
{
	char owner[256];
	const char *argv[] = {"chown", "-R", "--", owner, dir, NULL};

	snprintf(owner, sizeof(owner), "%s:", m->os_user);
	return ds_run_argv(&m->x, NULL, argv, err, errlen);
}

static int mdb_restore_native(struct mdb_ds *m, const char *path,
			      struct bfs_progress *progress, char *err,
			      size_t errlen)
{
	struct ds_swap swap;
	int rc;

	rc = ds_swap_begin(&swap, &m->x, &m->svc, m->state_dir, m->datadir,
			   m->os_user, err, errlen);
	if (rc)
		return rc;
	rc = mdb_extract(m, path, swap.staging, err, errlen);
	if (!rc)
		rc = mdb_prepare(m, swap.staging, err, errlen);
	if (!rc)
		rc = mdb_chown(m, swap.staging, err, errlen);
	if (rc) {
		ds_swap_abort(&swap);
		return rc;
	}
	progress->done = progress->total;
	/* the health check may need the password's option file */
	rc = mdb_cnf_get(m, err, errlen);
	if (rc) {
		ds_swap_abort(&swap);
		return rc;
	}
	rc = ds_swap_commit(&swap, err, errlen);
	mdb_cnf_put(m);
	return rc;
}

/* ---- restore: agnostic ----------------------------------------------- */

struct mdb_file_sink {
	int fd;
};

static int mdb_file_sink(void *arg, const void *data, size_t len)
{
	struct mdb_file_sink *f = arg;
	const char *p = data;
	ssize_t n;

	while (len) {
		n = write(f->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * What must go back if the dump fails, for the databases it replaces
 * whole: each one that exists (dumped whole) or a DROP of each that
 * does not.
 */
static int mdb_safety_databases(struct mdb_ds *m, json_t *scope_dbs,
				json_t *existing, struct mdb_file_sink *f,
				char *err, size_t errlen)
{
	json_t *dump = json_array(), *v;
	size_t i;
	int rc = 0;

	if (!dump)
		return -ENOMEM;
	json_array_foreach(scope_dbs, i, v)
	{
		const char *db = json_string_value(v);

		if (mdb_json_has(existing, db))
			rc = json_array_append(dump, v) ? -ENOMEM : 0;
		else
			rc = mdb_emit_db(mdb_file_sink, f, NULL,
					 "DROP DATABASE IF EXISTS %s;\n", db);
		if (rc)
			break;
	}
	if (!rc)
		rc = mdb_dump_all(m, NULL, dump, mdb_file_sink, f, NULL, err,
				  errlen);
	json_decref(dump);
	return rc;
}

/* The same for the tables of one database the dump replaces. */
static int mdb_safety_tables(struct mdb_ds *m, const char *db, json_t *tables,
			     json_t *existing_dbs, struct mdb_file_sink *f,
			     char *err, size_t errlen)
{
	json_t *have = NULL, *dump, *v;
	size_t i;
	int rc;

	if (!mdb_json_has(existing_dbs, db))
		return mdb_emit_db(mdb_file_sink, f, NULL,
				   "DROP DATABASE IF EXISTS %s;\n", db);
	rc = mdb_tables_of(m, db, &have, err, errlen);
	if (rc)
		return rc;
	dump = json_array();
	rc = dump ? mdb_emit_db(mdb_file_sink, f, NULL, "USE %s;\n", db)
		  : -ENOMEM;
	json_array_foreach(tables, i, v)
	{
		if (rc)
			break;
		if (mdb_json_has(have, json_string_value(v))) {
			rc = json_array_append(dump, v) ? -ENOMEM : 0;
			continue;
		}
		rc = mdb_emit_db(mdb_file_sink, f, NULL,
				 "DROP TABLE IF EXISTS %s;\n",
				 json_string_value(v));
	}
	if (!rc)
		rc = mdb_dump_all(m, db, dump, mdb_file_sink, f, NULL, err,
				  errlen);
	json_decref(dump);
	json_decref(have);
	return rc;
}

/* Dump the scope as it is now into the safety file (fsynced). */
static int mdb_safety_dump(struct mdb_ds *m, const struct mdb_scope *scope,
			   const char *path, char *err, size_t errlen)
{
	struct mdb_file_sink f;
	json_t *existing = NULL, *names;
	const char *db;
	int rc;

	rc = mdb_all_databases(m, &existing, err, errlen);
	if (rc)
		return rc;
	f.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (f.fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", path,
			 strerror(-rc));
		json_decref(existing);
		return rc;
	}
	rc = mdb_emit(mdb_file_sink, &f, NULL,
		      "-- MariaDB dump: what backupfs puts back if a restore "
		      "fails\n"
		      "/*!40101 SET NAMES utf8mb4 */;\n"
		      "SET FOREIGN_KEY_CHECKS=0;\n");
	if (!rc)
		rc = mdb_safety_databases(m, scope->databases, existing, &f,
					  err, errlen);
	json_object_foreach(scope->tables, db, names)
	{
		if (rc)
			break;
		rc = mdb_safety_tables(m, db, names, existing, &f, err, errlen);
	}
	if (!rc && fsync(f.fd))
		rc = -errno;
	if (close(f.fd) && !rc)
		rc = -errno;
	json_decref(existing);
	return rc;
}

/* Run an SQL file through the mariadb client: stops at its first error. */
static int mdb_apply(struct mdb_ds *m, const char *path, const char *db,
		     char *err, size_t errlen)
{
	struct ds_cmd cmd = {0};
	struct mdb_argv a;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cmd.in_fd = fd;
	mdb_tool(m, &a, "mariadb");
	mdb_conn(m, &a);
	mdb_arg(&a, "--batch");
	if (db && db[0])
		mdb_arg(&a, db);
	rc = mdb_run(m, &a, &cmd, err, errlen);
	close(fd);
	return rc;
}

static int mdb_journal(struct mdb_ds *m, const char *phase, const char *safety)
{
	json_t *j = json_pack("{s:s, s:s}", "phase", phase, "safety", safety);
	int rc;

	if (!j)
		return -ENOMEM;
	rc = ds_journal_write(m->state_dir, MDB_JOURNAL, j);
	json_decref(j);
	return rc;
}

/* Put the scope back from the safety dump; err gets what happened. */
static int mdb_put_back(struct mdb_ds *m, const char *safety, char *err,
			size_t errlen)
{
	char e[512] = "";
	size_t n = strlen(err);
	int rc;

	rc = mdb_apply(m, safety, NULL, e, sizeof(e));
	if (rc) {
		bfs_err("cannot put the data back from '%s': %s", safety, e);
		snprintf(err + n, errlen - n,
			 "; putting the previous data back failed too: %s "
			 "(the safety dump stays in '%s')",
			 e, safety);
		return rc;
	}
	snprintf(err + n, errlen - n, "; the previous data was put back");
	return 0;
}

static int mdb_restore_sql(struct mdb_ds *m, const char *path,
			   struct bfs_progress *progress, char *err,
			   size_t errlen)
{
	struct mdb_scope scope;
	char *safety = NULL;
	int rc;

	rc = mdb_scan_file(path, &scope, NULL, err, errlen);
	if (rc)
		return rc;
	if (asprintf(&safety, "%s/%s", m->state_dir, MDB_SAFETY) < 0) {
		mdb_scope_release(&scope);
		return -ENOMEM;
	}
	rc = mdb_cnf_get(m, err, errlen);
	if (rc)
		goto out_free;
	/* Nothing is touched unless the server answers now. */
	rc = ds_service_health(&m->x, &m->svc, err, errlen);
	if (!rc)
		rc = mdb_journal(m, "saving", safety);
	if (!rc) {
		rc = mdb_safety_dump(m, &scope, safety, err, errlen);
		if (rc) {
			size_t n = strlen(err);

			snprintf(err + n, errlen - n,
				 " (while saving the data the restore "
				 "replaces; nothing was changed)");
		}
	}
	if (!rc)
		rc = mdb_journal(m, "applying", safety);
	if (rc)
		goto out_drop;
	rc = mdb_apply(m, path, scope.default_db, err, errlen);
	if (!rc)
		rc = ds_service_health(&m->x, &m->svc, err, errlen);
	if (rc && mdb_put_back(m, safety, err, errlen))
		goto out_put; /* keep the journal and the dump */
	if (!rc)
		progress->done = progress->total;
out_drop:
	unlink(safety);
	ds_journal_remove(m->state_dir, MDB_JOURNAL);
out_put:
	mdb_cnf_put(m);
out_free:
	free(safety);
	mdb_scope_release(&scope);
	return rc;
}

static int mdb_restore(struct bfs_datastore *ds, const char *path,
		       struct bfs_progress *progress, char *err, size_t errlen)
{
	struct mdb_ds *m = mdb_of(ds);
	enum ds_kind kind;
	int rc;

	rc = ds_sniff(path, &kind);
	if (rc)
		return rc;
	if (kind == DS_KIND_SQL_DUMP)
		return mdb_restore_sql(m, path, progress, err, errlen);
	return mdb_restore_native(m, path, progress, err, errlen);
}

/* ---- recovery -------------------------------------------------------- */

/* An SQL restore a crash interrupted: put its scope back. */
static int mdb_recover_sql(struct mdb_ds *m)
{
	const char *phase, *safety;
	char err[1024] = "";
	json_t *j;
	int rc;

	rc = ds_journal_read(m->state_dir, MDB_JOURNAL, &j);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	phase = json_string_value(json_object_get(j, "phase"));
	safety = json_string_value(json_object_get(j, "safety"));
	if (!phase || !safety || !strstr(safety, MDB_SAFETY)) {
		json_decref(j);
		return -EBADMSG;
	}
	if (!strcmp(phase, "applying")) {
		rc = ds_service_health(&m->x, &m->svc, err, sizeof(err));
		if (!rc)
			rc = mdb_apply(m, safety, NULL, err, sizeof(err));
		if (rc)
			bfs_err("cannot roll back the SQL restore a crash "
				"interrupted (the safety dump stays in '%s'): "
				"%s",
				safety, err);
		else
			bfs_info("rolled back the SQL restore of instance "
				 "'%s' a crash interrupted",
				 m->base.instance ? m->base.instance : "");
	}
	if (!rc) {
		unlink(safety);
		rc = ds_journal_remove(m->state_dir, MDB_JOURNAL);
	}
	json_decref(j);
	return rc;
}

/* What "tables" may name: each user database, and each of its tables
 * as "db.table". */
static int mdb_tables(struct bfs_datastore *ds, json_t **out, char *err,
		      size_t errlen)
{
	struct mdb_ds *m = mdb_of(ds);
	json_t *dbs, *tables = NULL, *arr, *d, *t;
	char *entry;
	size_t i, j;
	int rc;

	rc = mdb_user_databases(m, &dbs, err, errlen);
	if (rc)
		return rc;
	arr = json_array();
	rc = arr ? 0 : -ENOMEM;
	json_array_foreach(dbs, i, d)
	{
		if (!rc && json_array_append(arr, d))
			rc = -ENOMEM;
		if (!rc)
			rc = mdb_tables_of(m, json_string_value(d), &tables,
					   err, errlen);
		if (rc)
			break;
		json_array_foreach(tables, j, t)
		{
			if (asprintf(&entry, "%s.%s", json_string_value(d),
				     json_string_value(t)) < 0) {
				rc = -ENOMEM;
				break;
			}
			if (json_array_append_new(arr, json_string(entry)))
				rc = -ENOMEM;
			free(entry);
			if (rc)
				break;
		}
		json_decref(tables);
		tables = NULL;
		if (rc)
			break;
	}
	json_decref(dbs);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static int mdb_recover(struct bfs_datastore *ds)
{
	struct mdb_ds *m = mdb_of(ds);
	char err[256];
	int rc, r;

	/* a crash's leftover option file goes; a new one when needed */
	if (m->password)
		unlink(m->cnf);
	rc = mdb_cnf_get(m, err, sizeof(err));
	if (rc)
		return rc;
	rc = ds_swap_recover(&m->x, &m->svc, m->state_dir);
	r = mdb_recover_sql(m);
	mdb_cnf_put(m);
	return rc ? rc : r;
}

const struct bfs_datastore_ops bfs_mariadb_ops = {
	.name = "mariadb",
	.config_keys = mdb_keys,
	.open = mdb_open,
	.close = mdb_close,
	.check_strategy = mdb_check_strategy,
	.estimate = mdb_estimate,
	.backup = mdb_backup,
	.verify = mdb_verify,
	.restore = mdb_restore,
	.recover = mdb_recover,
	.tables = mdb_tables,
};
