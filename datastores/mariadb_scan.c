// SPDX-License-Identifier: Apache-2.0
/*
 * The mariadb driver's formats, read without a database: the xbstream
 * walk and the SQL dump scan (see mariadb_int.h).
 *
 * xbstream, as mariabackup 10.11 writes it (extra/mariabackup/xbstream*),
 * is a sequence of chunks, integers little-endian:
 *
 *   "XBSTCK01"  flags:1  type:1  path_len:4  path
 *   type 'P':   payload_len:8  payload_offset:8  crc32:4  payload
 *   type 'E':   (nothing: the file at path is complete)
 *
 * The CRC is zlib's CRC-32 of the payload; chunks of several files may
 * interleave (--parallel), each file's in offset order.  The stream has
 * no end marker of its own: a whole one ends on a chunk boundary with
 * every file closed, xtrabackup_info (written last) among them.
 */
#include "mariadb_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define XBS_MAGIC     "XBSTCK01"
#define XBS_MAGIC_LEN 8
#define XBS_FIXED     14 /* magic, flags, type, path_len */
#define XBS_PAYLOAD   20 /* payload_len, payload_offset, crc32 */

enum { XBS_HEAD, XBS_PATH, XBS_PHEAD, XBS_DATA };

/* What a prepare needs; xtrabackup_info is the last file written. */
static const char *const xbs_required[] = {
	"backup-my.cnf",
	"xtrabackup_checkpoints",
	"xtrabackup_info",
	NULL,
};

static uint32_t xbs_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t xbs_le64(const unsigned char *p)
{
	return (uint64_t)xbs_le32(p) | (uint64_t)xbs_le32(p + 4) << 32;
}

void mdb_xbs_init(struct mdb_xbs *x)
{
	memset(x, 0, sizeof(*x));
	x->state = XBS_HEAD;
	x->head_need = XBS_FIXED;
	x->files = json_object();
}

void mdb_xbs_release(struct mdb_xbs *x)
{
	json_decref(x->files);
	x->files = NULL;
}

__attribute__((format(printf, 2, 3))) static int xbs_bad(struct mdb_xbs *x,
							 const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(x->err, sizeof(x->err), "corrupt xbstream at byte %llu: ",
		     (unsigned long long)x->offset);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(x->err))
		vsnprintf(x->err + n, sizeof(x->err) - (size_t)n, fmt, ap);
	va_end(ap);
	x->failed = -EBADMSG;
	return x->failed;
}

/* Relative, no "..", no control bytes: mbstream writes it under the
 * staging directory and nowhere else. */
static int xbs_path_ok(const char *p, size_t len)
{
	const char *c;
	size_t i;

	if (!len || p[0] == '/' || strlen(p) != len)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	for (c = p; c; c = strchr(c, '/')) {
		if (*c == '/')
			c++;
		if (!strncmp(c, "..", 2) && (c[2] == '/' || !c[2]))
			return 0;
	}
	return 1;
}

/* The chunk header is whole: check it and learn what follows. */
static int xbs_head(struct mdb_xbs *x)
{
	uint32_t plen;

	if (memcmp(x->head, XBS_MAGIC, XBS_MAGIC_LEN))
		return xbs_bad(x, "no chunk magic");
	/* mariabackup writes 0; 1 marks a chunk a reader may skip */
	if (x->head[8] > 1)
		return xbs_bad(x, "unknown chunk flags 0x%02x", x->head[8]);
	plen = xbs_le32(x->head + 10);
	if (!plen || plen >= sizeof(x->path))
		return xbs_bad(x, "path length %u", plen);
	if (x->head[9] != 'P' && x->head[9] != 'E')
		return xbs_bad(x, "unknown chunk type 0x%02x", x->head[9]);
	x->state = XBS_PATH;
	x->head_need = plen;
	return 0;
}

/* The file a chunk belongs to: its byte count, or -1 once closed. */
static int64_t xbs_file_pos(struct mdb_xbs *x)
{
	json_t *v = json_object_get(x->files, x->path);

	if (!v)
		return 0;
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static int xbs_set_pos(struct mdb_xbs *x, json_t *v)
{
	if (!v || json_object_set_new(x->files, x->path, v))
		return xbs_bad(x, "out of memory");
	return 0;
}

static int xbs_path(struct mdb_xbs *x, size_t plen)
{
	memcpy(x->path, x->head, plen);
	x->path[plen] = '\0';
	if (!xbs_path_ok(x->path, plen))
		return xbs_bad(x, "unsafe path '%.64s'", x->path);
	if (xbs_file_pos(x) < 0)
		return xbs_bad(x, "a chunk of '%.64s' after its end", x->path);
	x->chunks++;
	if (x->eof_chunk) {
		x->state = XBS_HEAD;
		x->head_need = XBS_FIXED;
		return xbs_set_pos(x, json_true());
	}
	x->state = XBS_PHEAD;
	x->head_need = XBS_PAYLOAD;
	return 0;
}

static int xbs_phead(struct mdb_xbs *x)
{
	uint64_t len = xbs_le64(x->head), off = xbs_le64(x->head + 8);
	int64_t pos = xbs_file_pos(x);

	if (off != (uint64_t)pos)
		return xbs_bad(x, "'%.64s' continues at %llu, not %lld",
			       x->path, (unsigned long long)off,
			       (long long)pos);
	if (len > INT64_MAX - off)
		return xbs_bad(x, "payload length %llu",
			       (unsigned long long)len);
	x->want_crc = xbs_le32(x->head + 16);
	x->crc = (uint32_t)crc32(0, Z_NULL, 0);
	x->left = len;
	x->keep = NULL;
	if (!strcmp(x->path, "xtrabackup_info"))
		x->keep = x->info;
	else if (!strcmp(x->path, "xtrabackup_checkpoints"))
		x->keep = x->checkpoints;
	x->keep_off = off;
	x->state = XBS_DATA;
	return xbs_set_pos(x, json_integer((json_int_t)(off + len)));
}

/* The payload is whole: its CRC must match. */
static int xbs_data_end(struct mdb_xbs *x)
{
	if (x->crc != x->want_crc)
		return xbs_bad(x, "checksum mismatch in '%.64s'", x->path);
	x->state = XBS_HEAD;
	x->head_need = XBS_FIXED;
	return 0;
}

static void xbs_keep(struct mdb_xbs *x, const unsigned char *p, size_t n)
{
	size_t room;

	if (!x->keep || x->keep_off >= MDB_XBS_KEEP - 1)
		return;
	room = MDB_XBS_KEEP - 1 - (size_t)x->keep_off;
	memcpy(x->keep + x->keep_off, p, n < room ? n : room);
}

int mdb_xbs_feed(struct mdb_xbs *x, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t n;
	int rc = 0;

	if (!x->files)
		return xbs_bad(x, "out of memory");
	while (len && !x->failed) {
		if (x->state == XBS_DATA) {
			n = x->left < len ? (size_t)x->left : len;
			x->crc = (uint32_t)crc32(x->crc, p, (uInt)n);
			xbs_keep(x, p, n);
			x->keep_off += n;
			x->left -= n;
			p += n;
			len -= n;
			x->offset += n;
			if (!x->left)
				rc = xbs_data_end(x);
			continue;
		}
		n = x->head_need - x->head_len;
		if (n > len)
			n = len;
		memcpy(x->head + x->head_len, p, n);
		x->head_len += n;
		p += n;
		len -= n;
		if (x->head_len < x->head_need) {
			x->offset += n;
			break;
		}
		x->head_len = 0;
		if (x->state == XBS_HEAD) {
			x->eof_chunk = x->head[9] == 'E';
			rc = xbs_head(x);
		} else if (x->state == XBS_PATH) {
			rc = xbs_path(x, x->head_need);
		} else {
			rc = xbs_phead(x);
		}
		x->offset += n;
		/* an empty payload is complete at once */
		if (!rc && x->state == XBS_DATA && !x->left)
			rc = xbs_data_end(x);
	}
	return x->failed ? x->failed : rc;
}

int mdb_xbs_finish(struct mdb_xbs *x)
{
	const char *const *req;
	const char *path;
	json_t *v;

	if (x->failed)
		return x->failed;
	if (!x->chunks)
		return xbs_bad(x, "no chunks");
	if (x->state != XBS_HEAD || x->head_len)
		return xbs_bad(x, "truncated inside a chunk of '%.64s'",
			       x->state == XBS_HEAD ? "" : x->path);
	json_object_foreach(x->files, path, v)
	{
		if (!json_is_true(v))
			return xbs_bad(x, "truncated: '%.64s' has no end",
				       path);
	}
	for (req = xbs_required; *req; req++)
		if (!json_is_true(json_object_get(x->files, *req)))
			return xbs_bad(x, "truncated: no '%s'", *req);
	return 0;
}

void mdb_xbs_value(const char *text, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *line, *v;

	out[0] = '\0';
	for (line = text; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, key, klen))
			continue;
		v = line + klen;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v != '=')
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		snprintf(out, cap, "%.*s", (int)strcspn(v, "\r\n"), v);
		return;
	}
}

/* ---- SQL dumps --------------------------------------------------------- */

#define SQL_LINE_KEEP  1024 /* the start of each line is all we look at */
#define SQL_TABLES_MAX 100000
#define SQL_HEAD_LINES 3 /* where the "-- MariaDB dump" line may be */

struct sql_scan {
	struct mdb_scope *scope;
	char line[SQL_LINE_KEEP + 1];
	size_t len;		      /* bytes kept of the current line */
	size_t line_bytes;	      /* bytes of it seen */
	char last[SQL_LINE_KEEP + 1]; /* the last non-blank line */
	uint64_t lines;
	char use_db[MDB_NAME_MAX]; /* after USE, or "" */
	char hdr_db[MDB_NAME_MAX]; /* of the last "-- Host:" line */
	size_t ntables;
	char *err;
	size_t errlen;
};

int mdb_name_ok(const char *name)
{
	size_t i, len = strlen(name);

	if (!len || len >= MDB_NAME_MAX || name[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * The identifier quoted in backticks at *p ("``" is a backtick), into
 * out[MDB_NAME_MAX]; *p moves past it.  -1 if there is none or it is not
 * a valid name.
 */
static int sql_ident(const char **p, char *out)
{
	const char *s = *p;
	size_t n = 0;

	if (*s++ != '`')
		return -1;
	for (;;) {
		if (!*s)
			return -1;
		if (*s == '`') {
			if (s[1] != '`')
				break;
			s++;
		}
		if (n + 1 >= MDB_NAME_MAX)
			return -1;
		out[n++] = *s++;
	}
	out[n] = '\0';
	*p = s + 1;
	return mdb_name_ok(out) ? 0 : -1;
}

static int sql_in(json_t *arr, const char *name)
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

static int sql_add(json_t *arr, const char *name)
{
	if (sql_in(arr, name))
		return 0;
	return json_array_append_new(arr, json_string(name)) ? -ENOMEM : 0;
}

static int sql_bad_name(struct sql_scan *s)
{
	snprintf(s->err, s->errlen,
		 "line %llu of the dump names an invalid database or table",
		 (unsigned long long)s->lines);
	return -EINVAL;
}

static int sql_table(struct sql_scan *s, const char *p)
{
	char db[MDB_NAME_MAX], t[MDB_NAME_MAX];
	const char *cur;
	json_t *arr;

	if (sql_ident(&p, t))
		return sql_bad_name(s);
	if (p[0] == '.' && p[1] == '`') {
		/* `db`.`t` */
		memcpy(db, t, sizeof(db));
		p++;
		if (sql_ident(&p, t))
			return sql_bad_name(s);
		cur = db;
	} else if (s->use_db[0]) {
		cur = s->use_db;
	} else if (s->hdr_db[0]) {
		cur = s->hdr_db;
		if (s->scope->default_db[0] &&
		    strcmp(s->scope->default_db, cur)) {
			snprintf(s->err, s->errlen,
				 "the dump holds tables of several databases "
				 "without USE statements");
			return -EINVAL;
		}
		snprintf(s->scope->default_db, MDB_NAME_MAX, "%s", cur);
	} else {
		snprintf(s->err, s->errlen,
			 "the dump does not say which database table '%s' "
			 "belongs to",
			 t);
		return -EINVAL;
	}
	arr = json_object_get(s->scope->tables, cur);
	if (!arr) {
		arr = json_array();
		if (!arr || json_object_set_new(s->scope->tables, cur, arr))
			return -ENOMEM;
	}
	if (sql_in(arr, t))
		return 0;
	if (++s->ntables > SQL_TABLES_MAX) {
		snprintf(s->err, s->errlen, "the dump holds over %d tables",
			 SQL_TABLES_MAX);
		return -EINVAL;
	}
	return sql_add(arr, t);
}

static int sql_database(struct sql_scan *s, const char *p)
{
	char db[MDB_NAME_MAX];

	if (sql_ident(&p, db))
		return sql_bad_name(s);
	return sql_add(s->scope->databases, db);
}

static int sql_use(struct sql_scan *s, const char *p)
{
	if (sql_ident(&p, s->use_db))
		return sql_bad_name(s);
	return 0;
}

/* "-- Host: localhost    Database: shop" (unquoted, may be empty). */
static void sql_host(struct sql_scan *s, const char *line)
{
	const char *d = strstr(line, "Database: ");
	char name[MDB_NAME_MAX];

	if (!d)
		return;
	d += strlen("Database: ");
	snprintf(name, sizeof(name), "%s", d);
	name[strcspn(name, "\r\n")] = '\0';
	while (name[0] && name[strlen(name) - 1] == ' ')
		name[strlen(name) - 1] = '\0';
	if (mdb_name_ok(name))
		memcpy(s->hdr_db, name, sizeof(name));
}

/*
 * The statements that tell the scope, each at the start of a line as
 * mariadb-dump writes them.  A database is replaced whole when the dump
 * drops it (--add-drop-database, which backupfs always uses) or creates
 * it the way `mariadb-dump --databases` does; backupfs's own dumps of
 * tables say "CREATE DATABASE IF NOT EXISTS" without the version
 * comment, which leaves the rest of the database alone.
 */
static const struct {
	const char *start;
	int (*fn)(struct sql_scan *s, const char *rest);
} sql_rules[] = {
	{"USE `", sql_use},
	{"/*!40000 DROP DATABASE IF EXISTS `", sql_database},
	{"DROP DATABASE IF EXISTS `", sql_database},
	{"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `", sql_database},
	{"DROP TABLE IF EXISTS `", sql_table},
	{"CREATE TABLE `", sql_table},
	{"CREATE TABLE IF NOT EXISTS `", sql_table},
	{"LOCK TABLES `", sql_table},
	{"INSERT INTO `", sql_table},
	{"INSERT IGNORE INTO `", sql_table},
	{"REPLACE INTO `", sql_table},
};

static int sql_line(struct sql_scan *s)
{
	const char *l = s->line;
	size_t i, n;

	s->line[s->len] = '\0';
	s->lines++;
	if (s->len && strspn(l, " \t\r") != s->len)
		memcpy(s->last, l, s->len + 1);
	if (s->lines <= SQL_HEAD_LINES && (!strncmp(l, "-- MariaDB dump", 15) ||
					   !strncmp(l, "-- MySQL dump", 13)))
		s->scope->header = 1;
	if (!strncmp(l, "-- Host: ", 9)) {
		sql_host(s, l);
		return 0;
	}
	/* A line cut at SQL_LINE_KEEP may hold a partial name: the
	 * identifier parser then finds no closing backtick. */
	for (i = 0; i < sizeof(sql_rules) / sizeof(sql_rules[0]); i++) {
		n = strlen(sql_rules[i].start);
		if (!strncmp(l, sql_rules[i].start, n))
			return sql_rules[i].fn(s, l + n - 1);
	}
	return 0;
}

/*
 * mariadb-dump's last line, whole: "-- Dump completed" (--skip-dump-date)
 * or "-- Dump completed on 2026-11-22  6:36:27".  The caller checks that
 * a newline ended it.
 */
static int sql_trailer(const char *line)
{
	int y, mo, d, h, mi, sec, n = -1;
	size_t len;

	if (!strcmp(line, "-- Dump completed"))
		return 1;
	if (strncmp(line, "-- Dump completed on ", 21))
		return 0;
	line += 21;
	len = strlen(line);
	if (sscanf(line, "%4d-%2d-%2d %2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
		   &sec, &n) != 6 ||
	    n < 0 || (size_t)n != len)
		return 0;
	/* the seconds have two digits: a cut one has one */
	return len >= 3 && line[len - 3] == ':';
}

/* Tables of databases the dump replaces whole are covered already. */
static void sql_fold(struct mdb_scope *scope)
{
	json_t *v;
	size_t i;

	json_array_foreach(scope->databases, i, v)
	{
		json_object_del(scope->tables, json_string_value(v));
	}
}

void mdb_scope_release(struct mdb_scope *scope)
{
	json_decref(scope->databases);
	json_decref(scope->tables);
	scope->databases = scope->tables = NULL;
}

int mdb_sql_scan(int fd, struct mdb_scope *scope, struct bfs_progress *progress,
		 char *err, size_t errlen)
{
	struct sql_scan *s;
	char *buf;
	ssize_t n;
	int rc = 0;

	memset(scope, 0, sizeof(*scope));
	scope->databases = json_array();
	scope->tables = json_object();
	s = calloc(1, sizeof(*s));
	buf = malloc(64 * 1024);
	if (!s || !buf || !scope->databases || !scope->tables) {
		rc = -ENOMEM;
		goto out_free;
	}
	s->scope = scope;
	s->err = err;
	s->errlen = errlen;
	while (!rc && (n = read(fd, buf, 64 * 1024)) != 0) {
		const char *p = buf, *end, *nl;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		end = buf + n;
		if (progress)
			progress->done += (uint64_t)n;
		while (!rc && p < end) {
			size_t take;

			nl = memchr(p, '\n', (size_t)(end - p));
			take = (size_t)((nl ? nl : end) - p);
			if (s->len < SQL_LINE_KEEP) {
				size_t room = SQL_LINE_KEEP - s->len;

				memcpy(s->line + s->len, p,
				       take < room ? take : room);
				s->len += take < room ? take : room;
			}
			s->line_bytes += take;
			p += take;
			if (nl) {
				p++;
				rc = sql_line(s);
				s->len = s->line_bytes = 0;
			}
		}
	}
	if (!rc && s->line_bytes)
		rc = sql_line(s);
	if (!rc) {
		scope->completed = !s->line_bytes && sql_trailer(s->last);
		sql_fold(scope);
	}
out_free:
	free(buf);
	free(s);
	if (rc)
		mdb_scope_release(scope);
	return rc;
}
