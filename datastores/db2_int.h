/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the "db2" datastore: what its tools print, parsed (pure
 * functions, unit-tested in tests/unit/test_db2.c), and the names it
 * accepts.  The driver itself is db2.c.
 *
 * The texts are those of the Db2 11.x command line processor (CLP) and
 * its utilities; see docs/DB2.md for the commands the driver issues.
 */
#ifndef BFS_DB2_INT_H
#define BFS_DB2_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define DB2_DBNAME_MAX 8  /* a database alias: 1 to 8 characters */
#define DB2_TS_LEN     14 /* yyyymmddhhmmss of a backup image */
#define DB2_IMAGE_MAX  128
#define DB2_MANIFEST   "backupfs-db2.json" /* first entry of the tar */
#define DB2_FORMAT     "db2-images-tar"
#define DB2_DBS_MAX    64 /* databases in one backup */

/* ---- names ----------------------------------------------------------- */

/*
 * A database alias: 1 to 8 of A-Z, a-z, 0-9, @, #, $, first not a
 * digit.  Db2 folds aliases to upper case; so does db2_upper().
 */
int db2_check_dbname(const char *name);
void db2_upper(char *s);
/* An OS user name for the instance owner (portable login name). */
int db2_check_user(const char *user);
/*
 * A directory as the CLP takes it unquoted (BACKUP ... TO dir,
 * OVERFLOW LOG PATH (dir)): absolute, no "." or ".." component, of
 * A-Z a-z 0-9 / . _ - + @ only, at most 200 bytes.
 */
int db2_check_dir(const char *path);

/*
 * An image file name as BACKUP DATABASE writes it:
 *   ALIAS.0.INSTANCE.DBPARTnnn.yyyymmddhhmmss.nnn   (Db2 9.7 and later)
 *   ALIAS.0.INSTANCE.NODEnnnn.CATNnnnn.yyyymmddhhmmss.nnn  (before)
 * 0 with the alias (upper case as written) and timestamp copied out, or
 * -EINVAL.  alias may be NULL, ts may be NULL.
 */
int db2_image_parse(const char *name, char alias[DB2_DBNAME_MAX + 1],
		    char ts[DB2_TS_LEN + 1]);
/* 1 if name is an image of database db taken at ts. */
int db2_image_of(const char *name, const char *db, const char *ts);

/* ---- tool output ----------------------------------------------------- */

/* What `db2 GET DB CFG FOR db` says about logging and pending states. */
struct db2_cfg {
	char logarchmeth1[128]; /* "OFF", "LOGRETAIN", "DISK:/path/", ... */
	char logarchmeth2[128];
	int backup_pending;
	int rollfwd_pending;
	int restore_pending;
};

/* -EBADMSG if the output has no LOGARCHMETH1 line. */
int db2_parse_cfg(const char *out, struct db2_cfg *cfg);
/* Archive logging on (rollforward recoverable): an online backup works. */
int db2_cfg_recoverable(const struct db2_cfg *cfg);

/* DATABASESIZE of `CALL GET_DBSIZE_INFO(?,?,?,-1)`, in bytes. */
int db2_parse_dbsize(const char *out, uint64_t *bytes);
/* The single value of a one-row, one-column SELECT (a NULL, "-", is 0). */
int db2_parse_value(const char *out, uint64_t *value);
/* "The timestamp for this backup image is : 20261122030000" */
int db2_parse_backup_ts(const char *out, char ts[DB2_TS_LEN + 1]);
/* "11.5.8.0" from db2level's "Informational tokens are "DB2 v11.5.8.0"" */
int db2_parse_level(const char *out, char *version, size_t cap);
/* 0 if db2ckbkp said "Image Verification Complete - successful.", else
 * -EBADMSG. */
int db2_parse_ckbkp(const char *out);
/* The "Available" column (1024-blocks) of `df -P -k dir`, in bytes. */
int db2_parse_df(const char *out, uint64_t *bytes);

/*
 * The first CLP message line of out ("SQL1035N  The database is
 * currently in use.  SQLSTATE=57019"), trimmed, into line[cap], and its
 * number (1035) and severity ('N', 'C' or 'W') -- or 0 if there is none.
 */
int db2_sql_message(const char *out, char *line, size_t cap, int *code,
		    char *severity);
/* The errno for an SQL message number (EIO if none fits). */
int db2_sql_errno(int code);

/* ---- the manifest inside the tar ------------------------------------- */

/*
 * Check a parsed backupfs-db2.json (borrowed): format, version, and
 * "databases": [{"name", "timestamp", "online", "images": [...]}], each
 * image name one of that database at that timestamp, no name twice.
 * -EINVAL with a reason.
 */
int db2_manifest_check(json_t *m, char *err, size_t errlen);

#endif
