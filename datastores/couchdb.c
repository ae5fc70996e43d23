// SPDX-License-Identifier: Apache-2.0
/*
 * The "couchdb" datastore (Trove's CouchDB strategy, made safe).
 *
 *   {"datastore": "couchdb", "url": "http://127.0.0.1:5984",
 *    "data_dir": "/var/lib/couchdb", "os_user": "couchdb",
 *    "user": "admin", "password_file": "/etc/backupfs/couch1.pw",
 *    "exec_prefix": [...], "service": {...}}
 *
 * Backups (the strategy picks one):
 *   native (default)  a pax tar of the data directory's .couch files
 *                     (1.x NAME.couch, 2.x/3.x shards/<range>/NAME.<n>.couch
 *                     and the node's _dbs/_nodes/_users... files), copied
 *                     while CouchDB runs: each copy is cut right after the
 *                     newest valid header at or before the size it had
 *                     when the copy began (couchdb_native.c), so it is a
 *                     consistent state of that database.  Hidden
 *                     directories (view indexes .<db>_design/, .shards/,
 *                     .delete/) are left out: CouchDB rebuilds views.
 *   agnostic          JSON lines through the HTTP API: every leaf
 *                     revision of every document, deleted ones too, with
 *                     its revision history and attachments inline
 *                     (couchdb_json.c); "tables" names the databases
 * Restores:
 *   native            every member checked to end on a valid header,
 *                     extracted beside data_dir, chowned to os_user and
 *                     swapped in (swap.c): stop, swap, start, health
 *                     check, or the old directory goes back
 *   agnostic          each database of the backup replaced: deleted,
 *                     created, then _bulk_docs with new_edits: false so
 *                     _rev values and histories survive; their state
 *                     before is saved first and put back on any failure
 *
 * The service defaults are systemctl start/stop couchdb and a GET / with
 * curl, run through the exec prefix (as given, not as os_user).  The
 * password, if any, comes from "password_file" and reaches curl through
 * its API, never a command line or a log.
 */
#include "couchdb_int.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUCH_DEFAULT_URL  "http://127.0.0.1:5984"
#define COUCH_DEFAULT_DATA "/var/lib/couchdb"
#define COUCH_DEFAULT_USER "couchdb"
#define COUCH_VERSION_MAX  64
#define COUCH_DB_NAME_MAX  238 /* CouchDB's own limit */

static const char *const couch_keys[] = {
	"url",		 "data_dir",	"os_user", "user",
	"password_file", "exec_prefix", "service", NULL,
};

static struct couch_ds *couch_of(struct bfs_datastore *ds)
{
	return (struct couch_ds *)ds;
}

/* ---- open, close ------------------------------------------------------ */

static void couch_close(struct bfs_datastore *ds)
{
	struct couch_ds *cd = couch_of(ds);

	ds_service_release(&cd->svc);
	ds_exec_release(&cd->x);
	free(cd->state_dir);
	free(cd->url);
	free(cd->data_dir);
	free(cd->os_user);
	free(cd->user);
	if (cd->password)
		explicit_bzero(cd->password, strlen(cd->password));
	free(cd->password);
	free(cd);
}

static void couch_strip_slashes(char *s)
{
	size_t n = strlen(s);

	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
}

static int couch_url_ok(const char *url)
{
	return (!strncmp(url, "http://", 7) && url[7]) ||
	       (!strncmp(url, "https://", 8) && url[8]);
}

static int couch_parse_auth(struct couch_ds *cd, json_t *conf, char *err,
			    size_t errlen)
{
	json_t *pf = json_object_get(conf, "password_file");
	char pw[1024];
	int rc;

	if (ds_conf_str(conf, "user", NULL, &cd->user)) {
		snprintf(err, errlen, "\"user\" must be a name");
		return -EINVAL;
	}
	if (!cd->user != !pf) {
		snprintf(err, errlen,
			 "\"user\" and \"password_file\" go together (HTTP "
			 "basic auth)");
		return -EINVAL;
	}
	if (!pf)
		return 0;
	if (!json_is_string(pf)) {
		snprintf(err, errlen, "\"password_file\" must be a path");
		return -EINVAL;
	}
	rc = ds_secret_file(json_string_value(pf), pw, sizeof(pw), err, errlen);
	if (!rc) {
		cd->password = strdup(pw);
		rc = cd->password ? 0 : -ENOMEM;
	}
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

static int couch_parse_conf(struct couch_ds *cd, const char *instance,
			    json_t *conf, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (ds_conf_str(conf, "url", COUCH_DEFAULT_URL, &cd->url) ||
	    !couch_url_ok(cd->url))
		bad = "\"url\" (http:// or https://)";
	else if (ds_conf_str(conf, "data_dir", COUCH_DEFAULT_DATA,
			     &cd->data_dir) ||
		 cd->data_dir[0] != '/' || !cd->data_dir[1])
		bad = "\"data_dir\" (an absolute path, not /)";
	else if (ds_conf_str(conf, "os_user", COUCH_DEFAULT_USER,
			     &cd->os_user) ||
		 cd->os_user[0] == '-')
		bad = "\"os_user\"";
	if (bad) {
		snprintf(err, errlen, "instance '%s' needs a valid %s",
			 instance, bad);
		return -EINVAL;
	}
	couch_strip_slashes(cd->url);
	couch_strip_slashes(cd->data_dir);
	return couch_parse_auth(cd, conf, err, errlen);
}

static int couch_parse_service(struct couch_ds *cd, json_t *conf, char *err,
			       size_t errlen)
{
	const char *start[] = {"systemctl", "start", "couchdb", NULL};
	const char *stop[] = {"systemctl", "stop", "couchdb", NULL};
	const char *health[] = {"curl", "-fsS", "-o", "/dev/null",
				"-m",	"10",	NULL, NULL};
	char *root;
	int rc;

	if (asprintf(&root, "%s/", cd->url) < 0)
		return -ENOMEM;
	health[6] = root;
	rc = ds_service_parse(conf, start, stop, health, NULL, &cd->svc, err,
			      errlen);
	free(root);
	return rc;
}

static int couch_open(const char *instance, json_t *conf, const char *state_dir,
		      struct bfs_datastore **out, char *err, size_t errlen)
{
	struct couch_ds *cd;
	int rc;

	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return -ENOMEM;
	rc = couch_parse_conf(cd, instance, conf, err, errlen);
	if (!rc)
		rc = ds_exec_parse(conf, &cd->x, err, errlen);
	if (!rc)
		rc = couch_parse_service(cd, conf, err, errlen);
	if (!rc) {
		cd->state_dir = strdup(state_dir);
		rc = cd->state_dir ? 0 : -ENOMEM;
	}
	if (rc) {
		couch_close(&cd->base);
		return rc;
	}
	*out = &cd->base;
	return 0;
}

/* ---- strategy ---------------------------------------------------------- */

/* CouchDB's rule for database names: ^[a-z_][a-z0-9_$()+/-]*$ (a
 * leading "_" only for the system databases, which may be listed). */
static int couch_db_name_ok(const char *name)
{
	const char *p;

	if (!name[0] || strlen(name) > COUCH_DB_NAME_MAX ||
	    !((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return 0;
	for (p = name + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      strchr("_$()+/-", *p)))
			return 0;
	return 1;
}

static int couch_strategy(json_t *strategy, struct ds_strategy *s, char *err,
			  size_t errlen)
{
	json_t *t;
	size_t i;
	int rc;

	rc = ds_strategy_parse(strategy, "couchdb", NULL, s, err, errlen);
	if (rc)
		return rc;
	if (s->type == DS_TYPE_INCREMENTAL) {
		snprintf(err, errlen,
			 "CouchDB backups are full backups; a full backup "
			 "stores only the chunks that changed");
		return -EINVAL;
	}
	if (s->mode == DS_MODE_OFFLINE) {
		snprintf(err, errlen,
			 "offline backups of CouchDB are not needed: its "
			 "files are append-only and copied while it runs");
		return -EINVAL;
	}
	if (s->tables && s->format == DS_FORMAT_NATIVE) {
		snprintf(err, errlen,
			 "a native backup is the whole data directory: "
			 "per-database backups need \"format\": \"agnostic\"");
		return -EINVAL;
	}
	json_array_foreach(s->tables, i, t)
	{
		if (!couch_db_name_ok(json_string_value(t))) {
			snprintf(err, errlen,
				 "strategy \"tables\" entry %zu is not a "
				 "CouchDB database name",
				 i);
			return -EINVAL;
		}
	}
	return 0;
}

static int couch_check_strategy(struct bfs_datastore *ds, json_t *strategy,
				char *err, size_t errlen)
{
	struct ds_strategy s;

	(void)ds;
	return couch_strategy(strategy, &s, err, errlen);
}

static int couch_estimate(struct bfs_datastore *ds, json_t *strategy,
			  uint64_t *bytes)
{
	struct couch_ds *cd = couch_of(ds);
	struct ds_strategy s;
	char err[256];
	int rc;

	rc = couch_strategy(strategy, &s, err, sizeof(err));
	if (rc)
		return rc;
	if (s.format == DS_FORMAT_NATIVE)
		return couch_native_estimate(cd, bytes);
	return couch_json_estimate(cd, s.tables, bytes);
}

/* ---- backup ------------------------------------------------------------ */

/* The server's version; a native backup does not need the server up. */
static void couch_version_or_unknown(struct couch_ds *cd, char *out, size_t cap)
{
	struct couch_http *h;
	char err[512];

	snprintf(out, cap, "unknown");
	if (couch_http_open(cd, &h, err, sizeof(err)))
		return;
	if (couch_http_version(h, out, cap, err, sizeof(err))) {
		snprintf(out, cap, "unknown");
		bfs_warn("cannot tell the CouchDB version of '%s': %s",
			 cd->base.instance, err);
	}
	couch_http_close(h);
}

static int couch_meta(const struct ds_strategy *s, const char *version,
		      json_t *databases, json_t *meta)
{
	json_t *strategy = json_object();

	if (!strategy || ds_strategy_meta(s, strategy) ||
	    json_object_set_new(meta, "strategy", strategy) ||
	    json_object_set_new(meta, "format",
				json_string(s->format == DS_FORMAT_NATIVE
						    ? "couch-files-tar"
						    : "couch-json")) ||
	    json_object_set_new(meta, "datastore_version",
				json_string(version)) ||
	    json_object_set(meta, "databases", databases))
		return -ENOMEM;
	return 0;
}

static int couch_backup(struct bfs_datastore *ds, json_t *strategy,
			bfs_sink_fn sink, void *sink_arg,
			struct bfs_progress *progress, json_t *meta, char *err,
			size_t errlen)
{
	struct couch_ds *cd = couch_of(ds);
	char version[COUCH_VERSION_MAX];
	struct ds_strategy s;
	json_t *databases;
	int rc;

	rc = couch_strategy(strategy, &s, err, errlen);
	if (rc)
		return rc;
	databases = json_array();
	if (!databases)
		return -ENOMEM;
	if (s.format == DS_FORMAT_NATIVE) {
		couch_version_or_unknown(cd, version, sizeof(version));
		rc = couch_native_backup(cd, sink, sink_arg, progress,
					 databases, err, errlen);
	} else {
		rc = couch_json_backup(cd, s.tables, sink, sink_arg, progress,
				       databases, version, sizeof(version), err,
				       errlen);
	}
	if (!rc)
		rc = couch_meta(&s, version, databases, meta);
	json_decref(databases);
	return rc;
}

/* ---- verify, restore --------------------------------------------------- */

static int couch_kind(const char *path, enum ds_kind *kind, char *err,
		      size_t errlen)
{
	int rc = ds_sniff(path, kind);

	if (rc) {
		snprintf(err, errlen, "cannot read '%s': %s", path,
			 strerror(-rc));
		return rc;
	}
	if (*kind != DS_KIND_COUCH_JSON && *kind != DS_KIND_TAR) {
		snprintf(err, errlen, "not a CouchDB backup: the file is %s",
			 ds_kind_name(*kind));
		return -EINVAL;
	}
	return 0;
}

static int couch_verify(struct bfs_datastore *ds, const char *path,
			struct bfs_progress *progress, char *err, size_t errlen)
{
	struct couch_ds *cd = couch_of(ds);
	enum ds_kind kind;
	int rc;

	rc = couch_kind(path, &kind, err, errlen);
	if (rc)
		return rc;
	if (kind == DS_KIND_COUCH_JSON)
		return couch_json_verify(cd, path, progress, err, errlen);
	return couch_native_verify(cd, path, progress, err, errlen);
}

static int couch_restore(struct bfs_datastore *ds, const char *path,
			 struct bfs_progress *progress, char *err,
			 size_t errlen)
{
	struct couch_ds *cd = couch_of(ds);
	enum ds_kind kind;
	int rc;

	rc = couch_kind(path, &kind, err, errlen);
	if (rc)
		return rc;
	if (kind == DS_KIND_COUCH_JSON)
		return couch_json_restore(cd, path, progress, err, errlen);
	return couch_native_restore(cd, path, progress, err, errlen);
}

/* The databases a per-database backup may name (_all_dbs). */
static int couch_tables(struct bfs_datastore *ds, json_t **out, char *err,
			size_t errlen)
{
	struct couch_http *h;
	int rc;

	rc = couch_http_open(couch_of(ds), &h, err, errlen);
	if (rc)
		return rc;
	rc = couch_http_req(h, "GET", "/_all_dbs", NULL, 0, out, err, errlen);
	couch_http_close(h);
	if (!rc && !json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		snprintf(err, errlen, "_all_dbs is not a list");
		rc = -EIO;
	}
	return rc;
}

static int couch_recover(struct bfs_datastore *ds)
{
	struct couch_ds *cd = couch_of(ds);
	int rc, r;

	rc = ds_swap_recover(&cd->x, &cd->svc, cd->state_dir);
	r = couch_json_recover(cd);
	return rc ? rc : r;
}

const struct bfs_datastore_ops bfs_couchdb_ops = {
	.name = "couchdb",
	.config_keys = couch_keys,
	.open = couch_open,
	.close = couch_close,
	.check_strategy = couch_check_strategy,
	.estimate = couch_estimate,
	.backup = couch_backup,
	.verify = couch_verify,
	.restore = couch_restore,
	.recover = couch_recover,
	.tables = couch_tables,
};
