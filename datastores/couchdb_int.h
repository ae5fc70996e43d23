/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the "couchdb" datastore, shared by its parts:
 *   couchdb.c         the driver: config, strategy, dispatch, recover
 *   couchdb_header.c  the .couch file header scanner (pure: no I/O but
 *                     through a read callback; unit-tested on real files)
 *   couchdb_native.c  native: a tar of the .couch files copied live, each
 *                     cut after its newest valid header; the swapped-in
 *                     restore
 *   couchdb_http.c    a small CouchDB HTTP client over libcurl
 *   couchdb_json.c    agnostic: per-database JSON lines through the HTTP
 *                     API, restored with _bulk_docs and new_edits: false
 *
 * A struct couch_ds is read-only after open.  Each backup or restore
 * makes its own HTTP handle, so nothing here is shared between threads.
 * Functions return 0 or -errno; those taking err/errlen leave a one-line
 * reason there.
 */
#ifndef BFS_COUCHDB_INT_H
#define BFS_COUCHDB_INT_H

#include "datastore.h"
#include "ds_int.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- couchdb_header.c: the scanner ----------------------------------- */

/*
 * A .couch file is 4096-byte blocks; each block's first byte is 1 where a
 * header starts and 0 otherwise.  A header is that 1, a 4-byte big-endian
 * length, then that many bytes (the prefix bytes of the blocks it crosses
 * skipped): a 16-byte MD5 of the rest, and the rest, an Erlang
 * term_to_binary of the {db_header, ...} tuple (0x83 0x68 or 0x83 0x69).
 * The file is valid up to the end of its newest valid header: what follows
 * is an append in progress, invisible to CouchDB until the next header.
 */
#define BFS_COUCH_BLOCK	     4096
#define BFS_COUCH_HEADER_MAX (16u << 20) /* a sane header length, bytes */

/* Reads up to len bytes at off (short only at the end): bytes or -errno. */
typedef ssize_t (*bfs_couch_pread_fn)(void *arg, void *buf, size_t len,
				      uint64_t off);

/*
 * Check the header that starts at off (a multiple of 4096) of a file of
 * size bytes: 0 and *end (the first byte after it), -EBADMSG if there is
 * none there or it is damaged (bad prefix, length, MD5 or term, or it runs
 * past size), or the reader's -errno.
 */
int bfs_couch_check_header(bfs_couch_pread_fn rd, void *arg, uint64_t size,
			   uint64_t off, uint64_t *end);
/*
 * The newest valid header that ends at or before size: 0 with its offset
 * and end, -ENOENT if there is none, or the reader's -errno.  Reads
 * backwards from size, so a file that grows meanwhile is fine.
 */
int bfs_couch_find_header(bfs_couch_pread_fn rd, void *arg, uint64_t size,
			  uint64_t *off, uint64_t *end);

/* Forward, streaming: feed a file's bytes in order, in any pieces. */
struct bfs_couch_scan {
	uint64_t pos;	   /* bytes fed */
	uint64_t last_off; /* newest valid header so far */
	uint64_t last_end; /* its end; 0: none yet */
	uint64_t headers;  /* valid headers seen */
	int active;	   /* a candidate is being read */
	void *cand;	   /* its state (owned) */
};

int bfs_couch_scan_init(struct bfs_couch_scan *s);
int bfs_couch_scan_feed(struct bfs_couch_scan *s, const void *data, size_t len);
void bfs_couch_scan_release(struct bfs_couch_scan *s);

/* ---- couchdb.c: the driver's handle ----------------------------------- */

struct couch_ds {
	struct bfs_datastore base;
	char *state_dir;
	char *url;	/* no trailing slash */
	char *data_dir; /* absolute, no trailing slash */
	char *os_user;
	char *user;	/* HTTP basic auth, or NULL */
	char *password; /* with user; never logged */
	struct ds_exec x;
	struct ds_service svc;
};

/* ---- couchdb_http.c ---------------------------------------------------- */

struct couch_http; /* one curl handle: one thread at a time */

int couch_http_open(const struct couch_ds *cd, struct couch_http **out,
		    char *err, size_t errlen);
void couch_http_close(struct couch_http *h);
/*
 * One request: method, path (from the server root, escaped), body (JSON,
 * or NULL).  A 2xx answer's JSON body goes to *out (new reference) when
 * out is not NULL.  Else -errno mapped from the HTTP status or the curl
 * error (404 -ENOENT, 401/403 -EACCES, 409/412 -EEXIST, ...), the reason
 * in err (logged at debug only: the caller decides what is an error).
 */
int couch_http_req(struct couch_http *h, const char *method, const char *path,
		   const char *body, size_t body_len, json_t **out, char *err,
		   size_t errlen);
/* s escaped for a URL path segment or query value (new string). */
char *couch_http_escape(struct couch_http *h, const char *s);
/* The server's "version" from GET / into out[cap]. */
int couch_http_version(struct couch_http *h, char *out, size_t cap, char *err,
		       size_t errlen);

/* ---- couchdb_native.c -------------------------------------------------- */

int couch_native_backup(struct couch_ds *cd, bfs_sink_fn sink, void *arg,
			struct bfs_progress *progress, json_t *databases,
			char *err, size_t errlen);
int couch_native_verify(struct couch_ds *cd, const char *path,
			struct bfs_progress *progress, char *err,
			size_t errlen);
int couch_native_restore(struct couch_ds *cd, const char *path,
			 struct bfs_progress *progress, char *err,
			 size_t errlen);
/* Sum of the .couch files' sizes. */
int couch_native_estimate(struct couch_ds *cd, uint64_t *bytes);

/* ---- couchdb_json.c ---------------------------------------------------- */

/* tables: borrowed array of database names, or NULL: all but "_..." */
int couch_json_backup(struct couch_ds *cd, json_t *tables, bfs_sink_fn sink,
		      void *arg, struct bfs_progress *progress,
		      json_t *databases, char *version, size_t version_cap,
		      char *err, size_t errlen);
int couch_json_verify(struct couch_ds *cd, const char *path,
		      struct bfs_progress *progress, char *err, size_t errlen);
int couch_json_restore(struct couch_ds *cd, const char *path,
		       struct bfs_progress *progress, char *err, size_t errlen);
/* Roll back an agnostic restore a crash interrupted (none: 0). */
int couch_json_recover(struct couch_ds *cd);
int couch_json_estimate(struct couch_ds *cd, json_t *tables, uint64_t *bytes);

/* ---- couchdb_json.c: the stream, shared with couchdb_json_restore.c ---- */

#define COUCH_PATH_MAX 4096

/* One backup, save or restore: the server, where lines go, the reason. */
struct couch_jctx {
	struct couch_ds *cd;
	struct couch_http *h;
	bfs_sink_fn sink;
	void *arg;
	struct bfs_progress *progress;
	uint64_t docs; /* written, all databases */
	int no_bulk_get;
	char *err;
	size_t errlen;
};

/* Lines of a stream file, each a JSON object. */
struct couch_jreader {
	int fd;
	char *buf;
	size_t cap, start, end;
	int eof;
	uint64_t off;	 /* bytes consumed */
	uint64_t lineno; /* of the last line returned */
};

int couch_jr_open(struct couch_jreader *r, const char *path);
void couch_jr_close(struct couch_jreader *r);
/* The next line: 1 and *out (new reference), 0 at the end of the file,
 * -EBADMSG for a cut or broken line (reason in err). */
int couch_jr_next(struct couch_jreader *r, json_t **out, char *err,
		  size_t errlen);
/* The first line, checked: *hdr a new reference holding "databases". */
int couch_json_header(struct couch_jreader *r, json_t **hdr, char *err,
		      size_t errlen);
/* The whole stream of the databases dbs into c's sink. */
int couch_json_dump(struct couch_jctx *c, json_t *dbs, const char *version);
/* "/<db><rest>" with db escaped, into out[cap]. */
int couch_db_path(struct couch_jctx *c, const char *db, const char *rest,
		  char *out, size_t cap);
/* GET /<db><rest>: 0 and *out, -ENOENT, or another error. */
int couch_db_get(struct couch_jctx *c, const char *db, const char *rest,
		 json_t **out);

#endif
