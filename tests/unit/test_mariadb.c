// SPDX-License-Identifier: Apache-2.0
/*
 * The mariadb driver's formats (datastores/mariadb_scan.c): the xbstream
 * walk on whole, cut, bit-flipped and malformed streams, fed whole and a
 * byte at a time; the SQL dump scan's scope, header and trailer.
 */
#include "check.h"
#include "mariadb_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- xbstream ---- */

struct stream {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct stream *s, const void *data, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->p = realloc(s->p, s->cap);
		if (!s->p)
			abort();
	}
	memcpy(s->p + s->len, data, n);
	s->len += n;
}

static void put_le(struct stream *s, uint64_t v, int bytes)
{
	unsigned char b[8];

	for (int i = 0; i < bytes; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	put(s, b, (size_t)bytes);
}

static void chunk_head(struct stream *s, char type, const char *path)
{
	unsigned char fl[2] = {0, (unsigned char)type};

	put(s, "XBSTCK01", 8);
	put(s, fl, 2);
	put_le(s, strlen(path), 4);
	put(s, path, strlen(path));
}

static void payload(struct stream *s, const char *path, uint64_t off,
		    const char *data)
{
	size_t n = strlen(data);

	chunk_head(s, 'P', path);
	put_le(s, n, 8);
	put_le(s, off, 8);
	put_le(s, crc32(0, (const Bytef *)data, (uInt)n), 4);
	put(s, data, n);
}

static void eof(struct stream *s, const char *path)
{
	chunk_head(s, 'E', path);
}

/* A small backup: a data file in two chunks interleaved with another,
 * an empty file, and the three files a prepare needs. */
static struct stream good_stream(void)
{
	struct stream s = {0};

	payload(&s, "ibdata1", 0, "first half ");
	payload(&s, "shop/items.ibd", 0, "items");
	payload(&s, "ibdata1", 11, "second half");
	eof(&s, "shop/items.ibd");
	eof(&s, "ibdata1");
	eof(&s, "shop/empty.frm");
	payload(&s, "xtrabackup_checkpoints", 0,
		"backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 47528\n");
	eof(&s, "xtrabackup_checkpoints");
	payload(&s, "backup-my.cnf", 0, "[mysqld]\n");
	eof(&s, "backup-my.cnf");
	payload(&s, "xtrabackup_info", 0,
		"tool_version = 10.11.19-MariaDB\n"
		"server_version = 10.11.19-MariaDB-0+deb12u1\n");
	eof(&s, "xtrabackup_info");
	return s;
}

/* Feed whole (step 0) or in pieces of step bytes; the finish result. */
static int walk(const unsigned char *p, size_t len, size_t step,
		struct mdb_xbs *x)
{
	size_t off = 0, n;
	int rc = 0;

	mdb_xbs_init(x);
	while (!rc && off < len) {
		n = step && step < len - off ? step : len - off;
		rc = mdb_xbs_feed(x, p + off, n);
		off += n;
	}
	if (!rc)
		rc = mdb_xbs_finish(x);
	return rc;
}

static void test_xbs_good(void)
{
	struct stream s = good_stream();
	struct mdb_xbs x;
	char v[64];

	CHECK_EQ(walk(s.p, s.len, 0, &x), 0);
	mdb_xbs_value(x.checkpoints, "to_lsn", v, sizeof(v));
	CHECK(!strcmp(v, "47528"));
	mdb_xbs_value(x.info, "server_version", v, sizeof(v));
	CHECK(!strcmp(v, "10.11.19-MariaDB-0+deb12u1"));
	mdb_xbs_value(x.info, "nothing", v, sizeof(v));
	CHECK(!strcmp(v, ""));
	mdb_xbs_release(&x);
	for (size_t step = 1; step < 40; step += 7) {
		CHECK_EQ(walk(s.p, s.len, step, &x), 0);
		mdb_xbs_value(x.checkpoints, "to_lsn", v, sizeof(v));
		CHECK(!strcmp(v, "47528"));
		mdb_xbs_release(&x);
	}
	free(s.p);
}

/* Every cut fails: inside a chunk, or between chunks with a file open
 * or the last files missing. */
static void test_xbs_truncated(void)
{
	struct stream s = good_stream();
	struct mdb_xbs x;
	int bad = 0;

	for (size_t cut = 0; cut < s.len; cut++) {
		if (walk(s.p, cut, 0, &x) != -EBADMSG)
			bad++;
		mdb_xbs_release(&x);
	}
	CHECK_EQ(bad, 0);
	free(s.p);
}

static void test_xbs_bitflip(void)
{
	struct stream s = good_stream();
	const unsigned char *empty;
	struct mdb_xbs x;
	int bad = 0;

	/* Every byte of the stream matters (magic, flags, lengths, paths,
	 * CRCs, payloads) but the name in the lone 'E' chunk of an empty
	 * file: xbstream has no checksum over chunk headers. */
	empty = memmem(s.p, s.len, "shop/empty.frm", 14);
	CHECK(empty != NULL);
	for (size_t i = 0; i < s.len; i++) {
		if (s.p + i >= empty && s.p + i < empty + 14)
			continue;
		s.p[i] ^= 0x04;
		if (walk(s.p, s.len, 0, &x) == 0)
			bad++;
		mdb_xbs_release(&x);
		s.p[i] ^= 0x04;
	}
	CHECK_EQ(bad, 0);
	free(s.p);
}

static void test_xbs_malformed(void)
{
	struct stream s = {0};
	struct mdb_xbs x;

	/* a chunk after the file's end */
	s = good_stream();
	payload(&s, "ibdata1", 22, "more");
	CHECK_EQ(walk(s.p, s.len, 0, &x), -EBADMSG);
	CHECK(strstr(x.err, "after its end"));
	mdb_xbs_release(&x);
	free(s.p);
	/* a gap in a file */
	s = (struct stream){0};
	payload(&s, "ibdata1", 5, "late");
	CHECK_EQ(walk(s.p, s.len, 0, &x), -EBADMSG);
	mdb_xbs_release(&x);
	free(s.p);
	/* paths that would leave the staging directory */
	const char *unsafe[] = {"../etc/passwd", "/etc/passwd", "a/../../b",
				"a/..", "x\ny"};
	for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
		s = (struct stream){0};
		payload(&s, unsafe[i], 0, "x");
		CHECK_EQ(walk(s.p, s.len, 0, &x), -EBADMSG);
		CHECK(strstr(x.err, "unsafe path"));
		mdb_xbs_release(&x);
		free(s.p);
	}
	/* "..name" is a name */
	s = good_stream();
	payload(&s, "..name", 0, "x");
	eof(&s, "..name");
	CHECK_EQ(walk(s.p, s.len, 0, &x), 0);
	mdb_xbs_release(&x);
	free(s.p);
	/* unknown chunk type */
	s = good_stream();
	chunk_head(&s, 'S', "x");
	CHECK_EQ(walk(s.p, s.len, 0, &x), -EBADMSG);
	mdb_xbs_release(&x);
	free(s.p);
	/* nothing at all, and no xtrabackup_info */
	CHECK_EQ(walk((const unsigned char *)"", 0, 0, &x), -EBADMSG);
	mdb_xbs_release(&x);
	s = (struct stream){0};
	payload(&s, "backup-my.cnf", 0, "x");
	eof(&s, "backup-my.cnf");
	CHECK_EQ(walk(s.p, s.len, 0, &x), -EBADMSG);
	CHECK(strstr(x.err, "xtrabackup_checkpoints"));
	mdb_xbs_release(&x);
	free(s.p);
	/* an empty payload chunk is fine */
	s = good_stream();
	payload(&s, "z", 0, "");
	eof(&s, "z");
	CHECK_EQ(walk(s.p, s.len, 0, &x), 0);
	mdb_xbs_release(&x);
	free(s.p);
}

/* ---- SQL dumps ---- */

static int scan_text(const char *text, struct mdb_scope *scope, char *err,
		     size_t errlen)
{
	char path[] = "/tmp/bfs-mdb-XXXXXX";
	int fd = mkstemp(path), rc;

	if (fd < 0)
		abort();
	unlink(path);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	lseek(fd, 0, SEEK_SET);
	err[0] = '\0';
	rc = mdb_sql_scan(fd, scope, NULL, err, errlen);
	close(fd);
	return rc;
}

static const char whole_dump[] =
	"/*M!999999\\- enable the sandbox mode */ \n"
	"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n"
	"--\n"
	"-- Host: localhost    Database: shop\n"
	"/*!40000 DROP DATABASE IF EXISTS `shop`*/;\n"
	"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;\n"
	"USE `shop`;\n"
	"DROP TABLE IF EXISTS `items`;\n"
	"CREATE TABLE `items` (\n"
	"  `id` int(11) NOT NULL\n"
	");\n"
	"INSERT INTO `items` VALUES (1),\n"
	"(2);\n"
	"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `we``ird`;\n"
	"\n"
	"-- Dump completed on 2026-11-22  6:36:27\n";

static void test_sql_whole(void)
{
	struct mdb_scope sc;
	char err[256];

	CHECK_EQ(scan_text(whole_dump, &sc, err, sizeof(err)), 0);
	CHECK(sc.header);
	CHECK(sc.completed);
	CHECK_EQ(json_array_size(sc.databases), 2);
	CHECK(!strcmp(json_string_value(json_array_get(sc.databases, 0)),
		      "shop"));
	CHECK(!strcmp(json_string_value(json_array_get(sc.databases, 1)),
		      "we`ird"));
	/* its tables are covered by the database */
	CHECK_EQ(json_object_size(sc.tables), 0);
	CHECK(!strcmp(sc.default_db, ""));
	mdb_scope_release(&sc);
}

static void test_sql_tables(void)
{
	/* backupfs's own dump of tables of two databases */
	static const char text[] = "-- MariaDB dump made by backupfs\n"
				   "CREATE DATABASE IF NOT EXISTS `shop`;\n"
				   "USE `shop`;\n"
				   "/*M!999999\\- enable the sandbox mode */ \n"
				   "-- MariaDB dump 10.19\n"
				   "-- Host: localhost    Database: shop\n"
				   "DROP TABLE IF EXISTS `items`;\n"
				   "CREATE TABLE `items` (\n"
				   "LOCK TABLES `items` WRITE;\n"
				   "INSERT INTO `items` VALUES (1);\n"
				   "DROP TABLE IF EXISTS `users`;\n"
				   "-- Dump completed on 2026-11-22 16:36:27\n"
				   "CREATE DATABASE IF NOT EXISTS `crm`;\n"
				   "USE `crm`;\n"
				   "-- MariaDB dump 10.19\n"
				   "-- Host: localhost    Database: crm\n"
				   "DROP TABLE IF EXISTS `leads`;\n"
				   "-- Dump completed on 2026-11-22 16:36:27\n";
	struct mdb_scope sc;
	char err[256];
	json_t *t;

	CHECK_EQ(scan_text(text, &sc, err, sizeof(err)), 0);
	CHECK(sc.header && sc.completed);
	CHECK_EQ(json_array_size(sc.databases), 0);
	CHECK_EQ(json_object_size(sc.tables), 2);
	t = json_object_get(sc.tables, "shop");
	CHECK_EQ(json_array_size(t), 2);
	CHECK(!strcmp(json_string_value(json_array_get(t, 0)), "items"));
	CHECK(!strcmp(json_string_value(json_array_get(t, 1)), "users"));
	t = json_object_get(sc.tables, "crm");
	CHECK_EQ(json_array_size(t), 1);
	CHECK(!strcmp(sc.default_db, ""));
	mdb_scope_release(&sc);
}

static void test_sql_plain_table_dump(void)
{
	/* `mariadb-dump shop items`: no USE, the header names the db */
	static const char text[] = "/*M!999999\\- enable the sandbox mode */ \n"
				   "-- MariaDB dump 10.19\n"
				   "--\n"
				   "-- Host: localhost    Database: shop\n"
				   "DROP TABLE IF EXISTS `items`;\n"
				   "-- Dump completed on 2026-11-22 16:36:27\n";
	struct mdb_scope sc;
	char err[256];

	CHECK_EQ(scan_text(text, &sc, err, sizeof(err)), 0);
	CHECK(!strcmp(sc.default_db, "shop"));
	CHECK_EQ(json_array_size(json_object_get(sc.tables, "shop")), 1);
	mdb_scope_release(&sc);
}

static void test_sql_incomplete_and_bad(void)
{
	struct mdb_scope sc;
	char err[256], *cut;
	size_t n = strlen(whole_dump);

	/* every cut loses the trailer */
	for (size_t i = 0; i + 2 < n; i += 3) {
		cut = strndup(whole_dump, i);
		if (!scan_text(cut, &sc, err, sizeof(err))) {
			CHECK(!sc.completed);
			mdb_scope_release(&sc);
		}
		free(cut);
	}
	/* "-- Dump completed" that is not the last line */
	CHECK_EQ(scan_text("-- MariaDB dump\n-- Dump completed\nUSE `x`;\n",
			   &sc, err, sizeof(err)),
		 0);
	CHECK(!sc.completed);
	mdb_scope_release(&sc);
	/* a header further down is no header */
	CHECK_EQ(scan_text("\n\n\n-- MariaDB dump\n-- Dump completed\n", &sc,
			   err, sizeof(err)),
		 0);
	CHECK(!sc.header);
	mdb_scope_release(&sc);
	/* a table of no known database */
	CHECK_EQ(scan_text("-- MariaDB dump\nDROP TABLE IF EXISTS `t`;\n", &sc,
			   err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "which database"));
	/* names a command line must not see */
	CHECK_EQ(scan_text("-- MariaDB dump\nUSE `-x`;\n", &sc, err,
			   sizeof(err)),
		 -EINVAL);
	CHECK_EQ(scan_text("-- MariaDB dump\nUSE `a\tb`;\n", &sc, err,
			   sizeof(err)),
		 -EINVAL);
	CHECK_EQ(scan_text("-- MariaDB dump\nUSE `open;\n", &sc, err,
			   sizeof(err)),
		 -EINVAL);
	/* tables of two databases with no USE */
	CHECK_EQ(scan_text("-- MariaDB dump\n-- Host: h    Database: a\n"
			   "DROP TABLE IF EXISTS `t`;\n"
			   "-- Host: h    Database: b\n"
			   "DROP TABLE IF EXISTS `u`;\n",
			   &sc, err, sizeof(err)),
		 -EINVAL);
}

static void test_name_ok(void)
{
	CHECK(mdb_name_ok("shop"));
	CHECK(mdb_name_ok("we`ird name"));
	CHECK(mdb_name_ok("b\xc3\xa4"
			  "ckerei"));
	CHECK(!mdb_name_ok(""));
	CHECK(!mdb_name_ok("-rf"));
	CHECK(!mdb_name_ok("a\nb"));
}

int main(void)
{
	RUN(test_xbs_good);
	RUN(test_xbs_truncated);
	RUN(test_xbs_bitflip);
	RUN(test_xbs_malformed);
	RUN(test_sql_whole);
	RUN(test_sql_tables);
	RUN(test_sql_plain_table_dump);
	RUN(test_sql_incomplete_and_bad);
	RUN(test_name_ok);
	return check_summary();
}
