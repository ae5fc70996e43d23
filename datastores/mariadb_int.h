/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the mariadb driver reads out of its two backup formats, with no
 * database and no command involved (so the unit tests reach it):
 *
 *   xbstream   mariabackup --stream=xbstream, walked chunk by chunk:
 *              structure, CRC-32 of every payload, offsets in order, every
 *              file closed by its EOF chunk, and the files a prepare
 *              needs present.  Fed in pieces, so the same check runs on
 *              a backup while it streams and on a file to restore.
 *   SQL dump   mariadb-dump output: its header, the "-- Dump completed"
 *              line mariadb-dump writes last (a cut dump has none), and
 *              its scope -- the databases it replaces whole and the
 *              tables it replaces one by one -- which a restore saves
 *              first so that it can put them back.
 */
#ifndef BFS_MARIADB_INT_H
#define BFS_MARIADB_INT_H

#include "datastore.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- xbstream ---- */

#define MDB_XBS_HEAD_MAX 4096 /* a chunk's header with its path */
#define MDB_XBS_KEEP	 4096 /* bytes kept of the small files below */

struct mdb_xbs {
	int state;     /* where in a chunk the next byte belongs */
	int eof_chunk; /* the chunk being read is an 'E' */
	unsigned char head[MDB_XBS_HEAD_MAX];
	size_t head_len, head_need;
	char path[MDB_XBS_HEAD_MAX];
	uint64_t left; /* payload bytes still to come */
	uint32_t crc, want_crc;
	json_t *files; /* path -> bytes so far, or true once closed */
	uint64_t offset, chunks;
	int failed; /* -EBADMSG once; the reason in err */
	char err[256];
	/* kept for the checks and the metadata */
	char info[MDB_XBS_KEEP];	/* xtrabackup_info */
	char checkpoints[MDB_XBS_KEEP]; /* xtrabackup_checkpoints */
	char *keep;			/* the buffer of the current chunk */
	uint64_t keep_off;
};

void mdb_xbs_init(struct mdb_xbs *x);
void mdb_xbs_release(struct mdb_xbs *x);
/* Take the next len bytes of the stream: 0, or -EBADMSG (sticky) with
 * the reason in x->err. */
int mdb_xbs_feed(struct mdb_xbs *x, const void *data, size_t len);
/* The stream ended here: 0 if it is a whole backup, else -EBADMSG. */
int mdb_xbs_finish(struct mdb_xbs *x);
/* The value of "key = value" in a kept file, into out[cap] ("" if
 * absent). */
void mdb_xbs_value(const char *text, const char *key, char *out, size_t cap);

/* ---- SQL dumps ---- */

#define MDB_NAME_MAX 256 /* bytes of a database or table name */

struct mdb_scope {
	json_t *databases; /* array: replaced whole */
	json_t *tables;	   /* object: database -> array of tables */
	/* the database the client must start in (a dump of tables that
	 * never says USE), or "" */
	char default_db[MDB_NAME_MAX];
	int header;    /* a mariadb-dump header at the start */
	int completed; /* ends with "-- Dump completed" */
};

/*
 * Read the dump at fd (from its current offset) to its end and fill
 * scope (release with mdb_scope_release()).  -EINVAL with a reason when
 * the dump names an invalid name or a table of no known database,
 * -errno on a read error.  Whether it is complete is scope->completed.
 */
int mdb_sql_scan(int fd, struct mdb_scope *scope, struct bfs_progress *progress,
		 char *err, size_t errlen);
void mdb_scope_release(struct mdb_scope *scope);
/* A name fit for a command line and an SQL identifier: printable, no
 * NUL, no leading '-', at most MDB_NAME_MAX - 1 bytes. */
int mdb_name_ok(const char *name);

#endif
