// SPDX-License-Identifier: Apache-2.0
/*
 * Agnostic CouchDB backups: JSON lines through the HTTP API.
 *
 *   {"backupfs_couchdb":1,"datastore_version":"3.3.3","databases":["a"]}
 *   {"db":"a","security":{...},"revs_limit":1000}
 *   {"doc":{"_id":"x","_rev":"2-...","_revisions":{...},...}}
 *   ...
 *   {"end":"a","docs":2}
 *   {"backupfs_couchdb_end":1,"databases":1,"docs":2}
 *
 * The first bytes are exactly {"backupfs_couchdb" (sniff.c).  Each
 * database of the header comes in order, between its "db" and "end"
 * lines; a database deleted while the backup ran says "gone": true and
 * holds nothing.  The trailer's counts make a cut stream detectable.
 *
 * Documents: the database's _changes feed, paged with since/limit and
 * style=all_docs, names every leaf revision (conflicts and deletions
 * too); _bulk_get?revs=true&attachments=true (or, where that is missing,
 * one GET per revision) returns each with its _revisions history and its
 * attachments inline.  The feed is read until it has caught up, so every
 * document that existed when the backup began is in it, and documents a
 * writer adds meanwhile form a prefix of the feed's order.  A document
 * updated meanwhile may come twice (both revisions, the newer one's
 * history holding the older): restored, it is the newer.
 *
 * Restoring: couchdb_json_restore.c.
 *
 * Numbers in documents go through jansson: integers beyond 64 bits and
 * the exact text of floating-point numbers are not kept.  _local
 * documents (replication checkpoints) are not backed up.
 */
#include "couchdb_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_VERSION	   1
#define JSON_PAGE	   500 /* changes per _changes page */
#define JSON_BULK_GET	   100 /* revisions per _bulk_get */
#define JSON_LINE_MAX	   ((size_t)1 << 30)
#define JSON_CATCHUP_SLACK 10000 /* changes beyond 4x the doc count */

/* ---- writing ----------------------------------------------------------- */

static int jw_raw(struct couch_jctx *c, const char *s, size_t n)
{
	int rc = c->sink(c->arg, s, n);

	if (rc) {
		snprintf(c->err, c->errlen, "cannot write the backup: %s",
			 strerror(rc < 0 ? -rc : EIO));
		return rc < 0 ? rc : -EIO;
	}
	if (c->progress)
		c->progress->done += n;
	return 0;
}

/* j as one line; steals j. */
static int jw_line(struct couch_jctx *c, json_t *j)
{
	char *s;
	int rc;

	if (!j)
		return -ENOMEM;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	rc = jw_raw(c, s, strlen(s));
	if (!rc)
		rc = jw_raw(c, "\n", 1);
	free(s);
	return rc;
}

/* ---- reading ----------------------------------------------------------- */

int couch_jr_open(struct couch_jreader *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	r->cap = 1 << 20;
	r->buf = malloc(r->cap);
	if (!r->buf) {
		close(r->fd);
		return -ENOMEM;
	}
	return 0;
}

void couch_jr_close(struct couch_jreader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->buf = NULL;
	r->fd = -1;
}

static int jr_fill(struct couch_jreader *r)
{
	ssize_t n;
	char *grown;

	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap) {
		if (r->cap >= JSON_LINE_MAX)
			return -EFBIG;
		grown = realloc(r->buf, r->cap * 2);
		if (!grown)
			return -ENOMEM;
		r->buf = grown;
		r->cap *= 2;
	}
	do
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (!n)
		r->eof = 1;
	r->end += (size_t)n;
	return 0;
}

/*
 * The next line as a JSON object: 1 and *out (new reference), 0 at the
 * end of the file, -EBADMSG (reason in err) for a cut or broken line.
 */
int couch_jr_next(struct couch_jreader *r, json_t **out, char *err,
		  size_t errlen)
{
	json_error_t jerr;
	char *nl;
	size_t len;
	int rc;

	*out = NULL;
	for (;;) {
		nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl)
			break;
		if (r->eof) {
			if (r->start == r->end)
				return 0;
			snprintf(err, errlen, "truncated: line %llu is cut",
				 (unsigned long long)r->lineno + 1);
			return -EBADMSG;
		}
		rc = jr_fill(r);
		if (rc) {
			snprintf(err, errlen, "cannot read line %llu: %s",
				 (unsigned long long)r->lineno + 1,
				 strerror(-rc));
			return rc == -EFBIG ? -EBADMSG : rc;
		}
	}
	len = (size_t)(nl - (r->buf + r->start));
	r->lineno++;
	*out = json_loadb(r->buf + r->start, len, JSON_ALLOW_NUL, &jerr);
	r->start += len + 1;
	r->off += len + 1;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		snprintf(err, errlen, "line %llu is not a JSON object%s%s",
			 (unsigned long long)r->lineno,
			 jerr.text[0] ? ": " : "", jerr.text);
		return -EBADMSG;
	}
	return 1;
}

/* ---- backup ------------------------------------------------------------ */

/* "/<db>" escaped into out. */
int couch_db_path(struct couch_jctx *c, const char *db, const char *rest,
		  char *out, size_t cap)
{
	char *e = couch_http_escape(c->h, db);
	int n;

	if (!e)
		return -ENOMEM;
	n = snprintf(out, cap, "/%s%s", e, rest ? rest : "");
	free(e);
	return (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static int jget(struct couch_jctx *c, const char *path, json_t **out)
{
	return couch_http_req(c->h, "GET", path, NULL, 0, out, c->err,
			      c->errlen);
}

/* GET /<db><rest>: 0, -ENOENT, or another error. */
int couch_db_get(struct couch_jctx *c, const char *db, const char *rest,
		 json_t **out)
{
	char path[COUCH_PATH_MAX];
	int rc = couch_db_path(c, db, rest, path, sizeof(path));

	return rc ? rc : jget(c, path, out);
}

/* A document's path in its database: "_design/" stays, the rest is
 * escaped. */
static char *doc_path(struct couch_jctx *c, const char *id)
{
	const char *keep = !strncmp(id, "_design/", 8) ? "_design/" : "";
	char *e = couch_http_escape(c->h, id + strlen(keep)), *p = NULL;

	if (e && asprintf(&p, "%s%s", keep, e) < 0)
		p = NULL;
	free(e);
	return p;
}

static int write_doc(struct couch_jctx *c, json_t *doc, uint64_t *ndocs)
{
	int rc = jw_line(c, json_pack("{sO}", "doc", doc));

	if (!rc) {
		(*ndocs)++;
		c->docs++;
	}
	return rc;
}

/* One revision with its history and attachments, by GET. */
static int get_rev(struct couch_jctx *c, const char *db, const char *id,
		   const char *rev, uint64_t *ndocs)
{
	char path[COUCH_PATH_MAX], *dp, *er;
	json_t *doc;
	int rc;

	dp = doc_path(c, id);
	er = couch_http_escape(c->h, rev);
	rc = dp && er ? couch_db_path(c, db, NULL, path, sizeof(path))
		      : -ENOMEM;
	if (!rc &&
	    (size_t)snprintf(path + strlen(path), sizeof(path) - strlen(path),
			     "/%s?rev=%s&revs=true&attachments=true", dp,
			     er) >= sizeof(path) - strlen(path))
		rc = -ENAMETOOLONG;
	free(dp);
	free(er);
	if (!rc)
		rc = jget(c, path, &doc);
	if (rc == -ENOENT) {
		/* compacted away since: its newer revision comes later */
		bfs_debug("couchdb '%s': revision %s of '%s' is gone", db, rev,
			  id);
		c->err[0] = '\0';
		return 0;
	}
	if (!rc)
		rc = write_doc(c, doc, ndocs);
	json_decref(doc);
	return rc;
}

/* The revisions in pairs[from..to) ({"id","rev"} objects). */
static int bulk_get(struct couch_jctx *c, const char *db, json_t *pairs,
		    size_t from, size_t to, uint64_t *ndocs)
{
	char path[COUCH_PATH_MAX], *body;
	json_t *req, *docs, *ans = NULL, *res, *d, *ok;
	size_t i, k;
	int rc;

	docs = json_array();
	for (i = from; docs && i < to; i++)
		if (json_array_append(docs, json_array_get(pairs, i)))
			break;
	req = json_pack("{so}", "docs", docs);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	rc = body ? couch_db_path(c, db,
				  "/_bulk_get?revs=true&attachments=true", path,
				  sizeof(path))
		  : -ENOMEM;
	if (!rc)
		rc = couch_http_req(c->h, "POST", path, body, strlen(body),
				    &ans, c->err, c->errlen);
	free(body);
	if (rc == -ENOENT || rc == -EOPNOTSUPP || rc == -EINVAL) {
		/* CouchDB 1.x: no _bulk_get */
		bfs_debug("couchdb: no _bulk_get (%s): one GET per revision",
			  c->err);
		c->err[0] = '\0';
		c->no_bulk_get = 1;
		rc = 0;
		for (i = from; !rc && i < to; i++) {
			json_t *p = json_array_get(pairs, i);

			rc = get_rev(
				c, db,
				json_string_value(json_object_get(p, "id")),
				json_string_value(json_object_get(p, "rev")),
				ndocs);
		}
		return rc;
	}
	if (rc)
		return rc;
	/* One result per asked revision, in order; a missing one (an
	 * {} or an error, as pouchdb gives for some) is asked by GET. */
	for (i = from; !rc && i < to; i++) {
		json_t *p = json_array_get(pairs, i);

		res = json_array_get(json_object_get(ans, "results"), i - from);
		ok = NULL;
		json_array_foreach(json_object_get(res, "docs"), k, d)
		{
			ok = json_object_get(d, "ok");
			if (ok)
				break;
		}
		if (json_is_object(ok) &&
		    json_is_string(json_object_get(ok, "_rev")) &&
		    json_equal(json_object_get(ok, "_rev"),
			       json_object_get(p, "rev")))
			rc = write_doc(c, ok, ndocs);
		else
			rc = get_rev(
				c, db,
				json_string_value(json_object_get(p, "id")),
				json_string_value(json_object_get(p, "rev")),
				ndocs);
	}
	json_decref(ans);
	return rc;
}

/* Every leaf revision of one page of _changes into pairs. */
static int page_pairs(json_t *page, json_t *pairs, size_t *nresults)
{
	json_t *results = json_object_get(page, "results"), *r, *ch;
	const char *id;
	size_t i, k;

	if (!json_is_array(results))
		return -EBADMSG;
	*nresults = json_array_size(results);
	json_array_foreach(results, i, r)
	{
		id = json_string_value(json_object_get(r, "id"));
		if (!id)
			return -EBADMSG;
		json_array_foreach(json_object_get(r, "changes"), k, ch)
		{
			json_t *rev = json_object_get(ch, "rev");

			if (!json_is_string(rev))
				return -EBADMSG;
			if (json_array_append_new(
				    pairs,
				    json_pack("{sssO}", "id", id, "rev", rev)))
				return -ENOMEM;
		}
	}
	return 0;
}

/* "&since=..." from a last_seq (an integer, or CouchDB 2's string). */
static int since_arg(struct couch_jctx *c, json_t *seq, char *out, size_t cap)
{
	char *e;

	if (json_is_integer(seq)) {
		snprintf(out, cap, "&since=%lld",
			 (long long)json_integer_value(seq));
		return 0;
	}
	if (!json_is_string(seq))
		return -EBADMSG;
	e = couch_http_escape(c->h, json_string_value(seq));
	if (!e)
		return -ENOMEM;
	if ((size_t)snprintf(out, cap, "&since=%s", e) >= cap) {
		free(e);
		return -ENAMETOOLONG;
	}
	free(e);
	return 0;
}

/* The documents of db, page by page, until the feed has caught up. */
static int dump_docs(struct couch_jctx *c, const char *db, uint64_t bound,
		     uint64_t *ndocs)
{
	char rest[COUCH_PATH_MAX], since[COUCH_PATH_MAX / 2] = "";
	json_t *page, *pairs;
	uint64_t seen = 0;
	size_t n, i, step;
	int rc;

	for (;;) {
		snprintf(rest, sizeof(rest),
			 "/_changes?style=all_docs&limit=%d%s", JSON_PAGE,
			 since);
		rc = couch_db_get(c, db, rest, &page);
		if (rc)
			return rc;
		pairs = json_array();
		rc = pairs ? page_pairs(page, pairs, &n) : -ENOMEM;
		if (rc == -EBADMSG)
			snprintf(c->err, c->errlen,
				 "couchdb '%s': unexpected _changes answer",
				 db);
		for (i = 0; !rc && i < json_array_size(pairs); i += step) {
			step = json_array_size(pairs) - i;
			if (step > JSON_BULK_GET)
				step = JSON_BULK_GET;
			if (c->no_bulk_get) {
				json_t *p = json_array_get(pairs, i);

				step = 1;
				rc = get_rev(c, db,
					     json_string_value(
						     json_object_get(p, "id")),
					     json_string_value(
						     json_object_get(p, "rev")),
					     ndocs);
			} else {
				rc = bulk_get(c, db, pairs, i, i + step, ndocs);
			}
		}
		if (!rc && n)
			rc = since_arg(c, json_object_get(page, "last_seq"),
				       since, sizeof(since));
		json_decref(pairs);
		json_decref(page);
		if (rc)
			return rc;
		seen += n;
		if (n < JSON_PAGE)
			return 0;
		if (seen > bound) {
			snprintf(c->err, c->errlen,
				 "couchdb '%s' changes faster than it can be "
				 "backed up (%llu changes read)",
				 db, (unsigned long long)seen);
			return -EAGAIN;
		}
	}
}

static uint64_t info_count(json_t *info, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(info, key));

	return v > 0 ? (uint64_t)v : 0;
}

static int dump_db(struct couch_jctx *c, const char *db)
{
	json_t *info = NULL, *sec = NULL, *lim = NULL, *line;
	uint64_t ndocs = 0, bound;
	int rc;

	rc = couch_db_get(c, db, NULL, &info);
	if (rc == -ENOENT) {
		bfs_warn("couchdb '%s' was deleted during the backup", db);
		c->err[0] = '\0';
		rc = jw_line(c, json_pack("{sssb}", "db", db, "gone", 1));
		goto out_end;
	}
	if (rc)
		return rc;
	bound = 4 * (info_count(info, "doc_count") +
		     info_count(info, "doc_del_count")) +
		JSON_CATCHUP_SLACK;
	json_decref(info);
	/* optional: pouchdb has no _revs_limit */
	if (couch_db_get(c, db, "/_security", &sec))
		sec = NULL;
	if (couch_db_get(c, db, "/_revs_limit", &lim) ||
	    !json_is_integer(lim)) {
		json_decref(lim);
		lim = NULL;
	}
	c->err[0] = '\0';
	line = json_pack("{ss}", "db", db);
	if (line && json_is_object(sec) && json_object_size(sec))
		json_object_set(line, "security", sec);
	if (line && lim)
		json_object_set(line, "revs_limit", lim);
	json_decref(sec);
	json_decref(lim);
	rc = jw_line(c, line);
	if (!rc)
		rc = dump_docs(c, db, bound, &ndocs);
out_end:
	if (!rc)
		rc = jw_line(c, json_pack("{sssI}", "end", db, "docs",
					  (json_int_t)ndocs));
	return rc;
}

/* The databases to back up: the listed ones (each must exist), or all
 * but the system ones ("_users", "_replicator", ...). */
static int json_databases(struct couch_jctx *c, json_t *tables, json_t **out)
{
	json_t *all, *v, *info;
	size_t i;
	int rc;

	*out = json_array();
	if (!*out)
		return -ENOMEM;
	if (tables) {
		json_array_foreach(tables, i, v)
		{
			rc = couch_db_get(c, json_string_value(v), NULL, &info);
			json_decref(info);
			if (rc == -ENOENT)
				snprintf(c->err, c->errlen,
					 "no CouchDB database '%s'",
					 json_string_value(v));
			if (rc || json_array_append(*out, v))
				return rc ? rc : -ENOMEM;
		}
		return 0;
	}
	rc = jget(c, "/_all_dbs", &all);
	if (rc)
		return rc;
	json_array_foreach(all, i, v)
	{
		const char *name = json_string_value(v);

		if (name && name[0] != '_' && json_array_append(*out, v)) {
			rc = -ENOMEM;
			break;
		}
	}
	json_decref(all);
	return rc;
}

/* The whole stream for the databases dbs. */
int couch_json_dump(struct couch_jctx *c, json_t *dbs, const char *version)
{
	json_t *v;
	size_t i;
	int rc;

	rc = jw_line(c,
		     json_pack("{sisssO}", "backupfs_couchdb", JSON_VERSION,
			       "datastore_version", version, "databases", dbs));
	json_array_foreach(dbs, i, v)
	{
		if (rc)
			break;
		rc = dump_db(c, json_string_value(v));
	}
	if (!rc)
		rc = jw_line(c, json_pack("{sisIsI}", "backupfs_couchdb_end",
					  JSON_VERSION, "databases",
					  (json_int_t)json_array_size(dbs),
					  "docs", (json_int_t)c->docs));
	return rc;
}

int couch_json_backup(struct couch_ds *cd, json_t *tables, bfs_sink_fn sink,
		      void *arg, struct bfs_progress *progress,
		      json_t *databases, char *version, size_t version_cap,
		      char *err, size_t errlen)
{
	struct couch_jctx c = {.cd = cd,
			       .sink = sink,
			       .arg = arg,
			       .progress = progress,
			       .err = err,
			       .errlen = errlen};
	json_t *dbs = NULL;
	int rc;

	rc = couch_http_open(cd, &c.h, err, errlen);
	if (rc)
		return rc;
	rc = couch_http_version(c.h, version, version_cap, err, errlen);
	if (!rc)
		rc = json_databases(&c, tables, &dbs);
	if (!rc)
		rc = json_array_extend(databases, dbs) ? -ENOMEM : 0;
	if (!rc)
		rc = couch_json_dump(&c, dbs, version);
	json_decref(dbs);
	couch_http_close(c.h);
	return rc;
}

int couch_json_estimate(struct couch_ds *cd, json_t *tables, uint64_t *bytes)
{
	struct couch_jctx c = {.cd = cd};
	char err[512];
	json_t *dbs = NULL, *v, *info;
	size_t i;
	int rc;

	c.err = err;
	c.errlen = sizeof(err);
	*bytes = 0;
	rc = couch_http_open(cd, &c.h, err, sizeof(err));
	if (rc)
		return rc;
	rc = json_databases(&c, tables, &dbs);
	json_array_foreach(dbs, i, v)
	{
		if (rc || couch_db_get(&c, json_string_value(v), NULL, &info))
			continue;
		*bytes +=
			info_count(json_object_get(info, "sizes"), "external") +
			info_count(info, "data_size") +
			(json_object_get(info, "sizes") ||
					 json_object_get(info, "data_size")
				 ? 0
				 : info_count(info, "disk_size"));
		json_decref(info);
	}
	json_decref(dbs);
	couch_http_close(c.h);
	return rc;
}

/* ---- verify ------------------------------------------------------------ */

/* What a stream holds, checked line by line. */
struct jcheck {
	json_t *dbs; /* borrowed from the header line */
	size_t next_db;
	const char *cur; /* the open database, or NULL */
	int gone;
	uint64_t cur_docs, docs;
	int done; /* trailer seen */
};

static int bad(char *err, size_t errlen, uint64_t line, const char *what)
{
	snprintf(err, errlen, "corrupt at line %llu: %s",
		 (unsigned long long)line, what);
	return -EBADMSG;
}

static int check_line(struct jcheck *k, json_t *j, uint64_t line, char *err,
		      size_t errlen)
{
	json_t *v;

	if (k->done)
		return bad(err, errlen, line, "data after the end");
	if ((v = json_object_get(j, "doc"))) {
		if (!k->cur || k->gone || !json_is_object(v) ||
		    !json_is_string(json_object_get(v, "_id")) ||
		    !json_is_string(json_object_get(v, "_rev")))
			return bad(err, errlen, line, "a stray document");
		k->cur_docs++;
		k->docs++;
		return 0;
	}
	if ((v = json_object_get(j, "db"))) {
		if (k->cur || k->next_db >= json_array_size(k->dbs) ||
		    !json_equal(v, json_array_get(k->dbs, k->next_db)))
			return bad(err, errlen, line,
				   "a database out of order");
		/* borrowed from the header, which outlives the line */
		k->cur = json_string_value(json_array_get(k->dbs, k->next_db));
		k->gone = json_is_true(json_object_get(j, "gone"));
		k->cur_docs = 0;
		k->next_db++;
		return 0;
	}
	if ((v = json_object_get(j, "end"))) {
		if (!k->cur || strcmp(k->cur, json_string_value(v) ?: "") ||
		    json_integer_value(json_object_get(j, "docs")) !=
			    (json_int_t)k->cur_docs)
			return bad(err, errlen, line,
				   "a database's end does not match it");
		k->cur = NULL;
		return 0;
	}
	if (json_object_get(j, "backupfs_couchdb_end")) {
		if (k->cur || k->next_db != json_array_size(k->dbs) ||
		    json_integer_value(json_object_get(j, "databases")) !=
			    (json_int_t)json_array_size(k->dbs) ||
		    json_integer_value(json_object_get(j, "docs")) !=
			    (json_int_t)k->docs)
			return bad(err, errlen, line,
				   "the trailer's counts do not match");
		k->done = 1;
		return 0;
	}
	return bad(err, errlen, line, "an unknown line");
}

/* The header line: *dbs borrowed from *hdr (new reference). */
int couch_json_header(struct couch_jreader *r, json_t **hdr, char *err,
		      size_t errlen)
{
	json_t *dbs, *v;
	size_t i;
	int rc;

	rc = couch_jr_next(r, hdr, err, errlen);
	if (rc <= 0)
		return rc ? rc : -EBADMSG;
	rc = 0;
	if (json_integer_value(json_object_get(*hdr, "backupfs_couchdb")) !=
	    JSON_VERSION) {
		snprintf(err, errlen,
			 "a CouchDB JSON backup of an unknown version");
		rc = -EINVAL;
	}
	dbs = json_object_get(*hdr, "databases");
	if (!rc && !json_is_array(dbs))
		rc = bad(err, errlen, 1, "no database list");
	json_array_foreach(dbs, i, v)
	{
		if (!rc && !json_is_string(v))
			rc = bad(err, errlen, 1,
				 "a database name is not a string");
	}
	if (rc) {
		json_decref(*hdr);
		*hdr = NULL;
	}
	return rc;
}

int couch_json_verify(struct couch_ds *cd, const char *path,
		      struct bfs_progress *progress, char *err, size_t errlen)
{
	struct jcheck k = {0};
	struct couch_jreader r;
	struct stat st;
	json_t *hdr = NULL, *j;
	int rc;

	(void)cd;
	rc = couch_jr_open(&r, path);
	if (rc)
		return rc;
	if (!fstat(r.fd, &st))
		progress->total = (uint64_t)st.st_size;
	rc = couch_json_header(&r, &hdr, err, errlen);
	if (rc)
		goto out_close;
	k.dbs = json_object_get(hdr, "databases");
	while ((rc = couch_jr_next(&r, &j, err, errlen)) > 0) {
		rc = check_line(&k, j, r.lineno, err, errlen);
		json_decref(j);
		if (rc)
			break;
		progress->done = r.off;
	}
	if (!rc && !k.done) {
		snprintf(err, errlen, "truncated: no trailer after line %llu",
			 (unsigned long long)r.lineno);
		rc = -EBADMSG;
	}
out_close:
	json_decref(hdr);
	couch_jr_close(&r);
	return rc;
}
