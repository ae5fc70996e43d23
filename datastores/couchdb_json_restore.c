// SPDX-License-Identifier: Apache-2.0
/*
 * Restoring an agnostic CouchDB backup (the format: couchdb_json.c).
 *
 * Each database of the backup is deleted, created and filled
 * with _bulk_docs and "new_edits": false (the revisions are stored as
 * they are: same _rev, same history, deletions kept).  Before anything
 * changes, the current state of those databases is saved in this same
 * format into the state directory and "couch-restore.journal" names it;
 * on a failure, or after a crash (recover), those databases are deleted
 * and the saved state applied the same way.  Databases the backup does
 * not hold are left alone.
 */
#include "couchdb_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSON_BATCH_DOCS	 500		    /* documents per _bulk_docs */
#define JSON_BATCH_BYTES ((size_t)16 << 20) /* bytes per _bulk_docs */
#define JSON_JOURNAL	 "couch-restore.journal"
#define JSON_SAVED	 "couch-restore-saved.jsonl"

#define BULK_PREFIX "{\"new_edits\":false,\"docs\":["

/* A _bulk_docs request being built. */
struct jbatch {
	char *p;
	size_t n, cap;
	size_t docs;
};

static int jb_add(struct jbatch *b, const char *s, size_t n)
{
	size_t cap;
	char *grown;

	if (b->n + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 65536;
		while (cap < b->n + n + 1)
			cap *= 2;
		grown = realloc(b->p, cap);
		if (!grown)
			return -ENOMEM;
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

/* The first refusal in a _bulk_docs answer, as a reason. */
static int bulk_refused(json_t *ans, const char *db, char *err, size_t errlen)
{
	json_t *r;
	size_t i;

	json_array_foreach(ans, i, r)
	{
		if (!json_object_get(r, "error"))
			continue;
		snprintf(err, errlen, "couchdb refused '%s' in '%s': %s: %s",
			 json_string_value(json_object_get(r, "id")) ?: "?", db,
			 json_string_value(json_object_get(r, "error")) ?: "?",
			 json_string_value(json_object_get(r, "reason")) ?: "");
		return -EIO;
	}
	return 0;
}

static int jb_flush(struct couch_jctx *c, const char *db, struct jbatch *b)
{
	char path[COUCH_PATH_MAX];
	json_t *ans = NULL;
	int rc;

	if (!b->docs)
		return 0;
	rc = jb_add(b, "]}", 2);
	if (!rc)
		rc = couch_db_path(c, db, "/_bulk_docs", path, sizeof(path));
	if (!rc)
		rc = couch_http_req(c->h, "POST", path, b->p, b->n, &ans,
				    c->err, c->errlen);
	if (!rc)
		rc = bulk_refused(ans, db, c->err, c->errlen);
	json_decref(ans);
	b->n = 0;
	b->docs = 0;
	return rc ? rc : jb_add(b, BULK_PREFIX, strlen(BULK_PREFIX));
}

static int db_delete(struct couch_jctx *c, const char *db)
{
	char path[COUCH_PATH_MAX];
	int rc = couch_db_path(c, db, NULL, path, sizeof(path));

	if (!rc)
		rc = couch_http_req(c->h, "DELETE", path, NULL, 0, NULL, c->err,
				    c->errlen);
	if (rc == -ENOENT) {
		c->err[0] = '\0';
		rc = 0;
	}
	return rc;
}

static int db_put(struct couch_jctx *c, const char *db, const char *rest,
		  json_t *body)
{
	char path[COUCH_PATH_MAX], *s = NULL;
	int rc = couch_db_path(c, db, rest, path, sizeof(path));

	if (!rc && body) {
		s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!s)
			rc = -ENOMEM;
	}
	if (!rc)
		rc = couch_http_req(c->h, "PUT", path, s, s ? strlen(s) : 0,
				    NULL, c->err, c->errlen);
	free(s);
	return rc;
}

/* Replace db with an empty one carrying the saved settings. */
static int db_reset(struct couch_jctx *c, const char *db, json_t *line)
{
	json_t *sec = json_object_get(line, "security");
	json_t *lim = json_object_get(line, "revs_limit");
	int rc;

	rc = db_delete(c, db);
	if (!rc)
		rc = db_put(c, db, NULL, NULL);
	if (!rc && json_is_object(sec))
		rc = db_put(c, db, "/_security", sec);
	if (!rc && json_is_integer(lim) && db_put(c, db, "/_revs_limit", lim)) {
		/* pouchdb-server has no _revs_limit: keep its default */
		bfs_debug("couchdb '%s': %s", db, c->err);
		c->err[0] = '\0';
	}
	return rc;
}

/* Apply the (verified) stream at path: each database replaced. */
static int json_apply(struct couch_jctx *c, const char *path,
		      struct bfs_progress *progress)
{
	struct jbatch b = {0};
	struct couch_jreader r;
	json_t *hdr = NULL, *j = NULL, *v;
	char *db = NULL, *s;
	int rc, skip = 0;

	rc = couch_jr_open(&r, path);
	if (rc)
		return rc;
	rc = couch_json_header(&r, &hdr, c->err, c->errlen);
	if (!rc)
		rc = jb_add(&b, BULK_PREFIX, strlen(BULK_PREFIX));
	while (!rc && (rc = couch_jr_next(&r, &j, c->err, c->errlen)) > 0) {
		rc = 0;
		if ((v = json_object_get(j, "doc"))) {
			if (skip || !db)
				goto next;
			s = json_dumps(v, JSON_COMPACT);
			rc = s ? 0 : -ENOMEM;
			if (!rc && b.docs)
				rc = jb_add(&b, ",", 1);
			if (!rc)
				rc = jb_add(&b, s, strlen(s));
			free(s);
			b.docs++;
			if (!rc && (b.docs >= JSON_BATCH_DOCS ||
				    b.n >= JSON_BATCH_BYTES))
				rc = jb_flush(c, db, &b);
		} else if ((v = json_object_get(j, "db"))) {
			free(db);
			db = strdup(json_string_value(v) ?: "");
			skip = json_is_true(json_object_get(j, "gone"));
			rc = !db ? -ENOMEM : skip ? 0 : db_reset(c, db, j);
		} else if (json_object_get(j, "end")) {
			if (db && !skip)
				rc = jb_flush(c, db, &b);
			free(db);
			db = NULL;
		} else if (json_object_get(j, "backupfs_couchdb_end")) {
			json_decref(j);
			j = NULL;
			break;
		}
	next:
		json_decref(j);
		j = NULL;
		if (progress)
			progress->done = r.off;
	}
	if (rc > 0)
		rc = 0;
	free(db);
	free(b.p);
	json_decref(hdr);
	couch_jr_close(&r);
	return rc;
}

static int fd_sink(void *arg, const void *data, size_t len)
{
	return bfs_write_all(*(int *)arg, data, len);
}

/* The current state of the databases in dbs that exist (listed in
 * *existed, new), saved into the state directory. */
static int json_save(struct couch_jctx *c, json_t *dbs, json_t **existed)
{
	struct couch_jctx save = *c;
	char path[4096];
	json_t *v, *info;
	size_t i;
	int fd, rc = 0;

	*existed = json_array();
	if (!*existed)
		return -ENOMEM;
	json_array_foreach(dbs, i, v)
	{
		rc = couch_db_get(c, json_string_value(v), NULL, &info);
		json_decref(info);
		if (rc == -ENOENT) {
			c->err[0] = '\0';
			rc = 0;
			continue;
		}
		if (rc || json_array_append(*existed, v))
			return rc ? rc : -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s", c->cd->state_dir, JSON_SAVED);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(c->err, c->errlen,
			 "cannot save the current state: "
			 "%s",
			 strerror(-rc));
		return rc;
	}
	save.sink = fd_sink;
	save.arg = &fd;
	save.progress = NULL;
	save.docs = 0;
	rc = couch_json_dump(&save, *existed, "saved before a restore");
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	c->no_bulk_get = save.no_bulk_get;
	if (rc && !c->err[0])
		snprintf(c->err, c->errlen,
			 "cannot save the current state: "
			 "%s",
			 strerror(-rc));
	return rc;
}

static int json_journal(struct couch_ds *cd, const char *phase, json_t *dbs,
			json_t *existed)
{
	json_t *j = json_pack("{sssOso}", "phase", phase, "databases", dbs,
			      "existed",
			      existed ? json_incref(existed) : json_array());
	int rc;

	if (!j)
		return -ENOMEM;
	rc = ds_journal_write(cd->state_dir, JSON_JOURNAL, j);
	json_decref(j);
	return rc;
}

static void json_forget(struct couch_ds *cd)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", cd->state_dir, JSON_SAVED);
	unlink(path);
	ds_journal_remove(cd->state_dir, JSON_JOURNAL);
}

/* Put the saved state back: the databases that did not exist go, the
 * others are replaced by what was saved. */
static int json_rollback(struct couch_jctx *c, json_t *dbs, json_t *existed)
{
	char path[4096];
	json_t *v, *w;
	size_t i, k;
	int rc = 0, was;

	json_array_foreach(dbs, i, v)
	{
		was = 0;
		json_array_foreach(existed, k, w)
		{
			was |= json_equal(v, w);
		}
		if (!was && (rc = db_delete(c, json_string_value(v))))
			return rc;
	}
	snprintf(path, sizeof(path), "%s/%s", c->cd->state_dir, JSON_SAVED);
	return json_apply(c, path, NULL);
}

static int json_dbs_of(const char *path, json_t **dbs, char *err, size_t errlen)
{
	struct couch_jreader r;
	json_t *hdr = NULL;
	int rc;

	*dbs = NULL;
	rc = couch_jr_open(&r, path);
	if (rc)
		return rc;
	rc = couch_json_header(&r, &hdr, err, errlen);
	if (!rc)
		*dbs = json_incref(json_object_get(hdr, "databases"));
	json_decref(hdr);
	couch_jr_close(&r);
	return rc;
}

int couch_json_restore(struct couch_ds *cd, const char *path,
		       struct bfs_progress *progress, char *err, size_t errlen)
{
	struct couch_jctx c = {.cd = cd, .err = err, .errlen = errlen};
	json_t *dbs = NULL, *existed = NULL;
	char rb[512] = "";
	size_t n;
	int rc, r;

	rc = json_dbs_of(path, &dbs, err, errlen);
	if (!rc)
		rc = couch_http_open(cd, &c.h, err, errlen);
	if (rc)
		goto out_free;
	/* An earlier restore a crash left goes back first: one journal. */
	rc = couch_json_recover(cd);
	if (rc)
		snprintf(err, errlen, "cannot roll back an earlier restore: %s",
			 strerror(-rc));
	else
		rc = json_journal(cd, "saving", dbs, NULL);
	if (!rc)
		rc = json_save(&c, dbs, &existed);
	if (!rc)
		rc = json_journal(cd, "applying", dbs, existed);
	if (rc) {
		json_forget(cd);
		goto out_close;
	}
	rc = json_apply(&c, path, progress);
	if (!rc) {
		json_forget(cd);
		goto out_close;
	}
	/* The reason is the first failure; the rollback's goes after. */
	c.err = rb;
	c.errlen = sizeof(rb);
	r = json_rollback(&c, dbs, existed);
	if (!r) {
		json_forget(cd);
	} else {
		n = strlen(err);
		bfs_err("cannot roll back the restore of '%s': %s",
			cd->base.instance, rb);
		snprintf(err + n, errlen - n, "; rollback failed: %s", rb);
	}
out_close:
	couch_http_close(c.h);
out_free:
	json_decref(dbs);
	json_decref(existed);
	return rc;
}

int couch_json_recover(struct couch_ds *cd)
{
	char err[512] = "";
	struct couch_jctx c = {.cd = cd, .err = err, .errlen = sizeof(err)};
	const char *phase;
	json_t *j;
	int rc;

	rc = ds_journal_read(cd->state_dir, JSON_JOURNAL, &j);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	phase = json_string_value(json_object_get(j, "phase"));
	if (phase && !strcmp(phase, "applying")) {
		rc = couch_http_open(cd, &c.h, err, sizeof(err));
		if (!rc)
			rc = json_rollback(&c, json_object_get(j, "databases"),
					   json_object_get(j, "existed"));
		couch_http_close(c.h);
		if (!rc)
			bfs_info("rolled back the restore of '%s' a crash "
				 "interrupted",
				 cd->base.instance);
	}
	if (!rc)
		json_forget(cd);
	else
		bfs_err("cannot roll back the restore of '%s' a crash "
			"interrupted: %s",
			cd->base.instance, err);
	json_decref(j);
	return rc;
}
