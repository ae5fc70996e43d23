// SPDX-License-Identifier: Apache-2.0
/*
 * The .couch header scanner (datastores/couchdb_header.c) on real CouchDB
 * files (tests/data/couchdb/, see its README): every fixture ends on its
 * newest valid header; a copy cut anywhere is cut back to an earlier
 * header; a flipped byte in the last header fails its MD5 and the scan
 * falls back to the header before; empty and header-less files have none.
 * The backward search and the forward scan must agree on every input.
 * The data directory comes from BFS_TEST_DATA (set by meson).
 */
#include "check.h"
#include "couchdb_int.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

struct fixture {
	const char *name;
	uint64_t size;
	uint64_t last_off; /* the newest header */
	uint64_t prev_off; /* the one before it */
	uint64_t headers;
};

static const struct fixture fixtures[] = {
	{"test.couch", 28878, 28672, 24576, 8},
	{"db321.couch", 28864, 28672, 24576, 7},
	{"db_v7_without_purge_req.couch", 65781, 65536, 61440, 17},
	{"db_v7_with_1_purge_req.couch", 16617, 16384, 12288, 5},
};

#define NFIX (sizeof(fixtures) / sizeof(fixtures[0]))

struct mem {
	const uint8_t *p;
	size_t n;
	int fail; /* return -EIO */
};

static ssize_t mem_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct mem *m = arg;

	if (m->fail)
		return -EIO;
	if (off >= m->n)
		return 0;
	if (len > m->n - off)
		len = m->n - (size_t)off;
	memcpy(buf, m->p + off, len);
	return (ssize_t)len;
}

static uint8_t *load(const char *name, size_t *len)
{
	const char *dir = getenv("BFS_TEST_DATA");
	char path[PATH_MAX];
	uint8_t *buf;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/couchdb/%s", dir ? dir : "tests/data",
		 name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s (set BFS_TEST_DATA)\n", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int find(const uint8_t *p, size_t n, uint64_t *off, uint64_t *end)
{
	struct mem m = {p, n, 0};

	*off = *end = 0;
	return bfs_couch_find_header(mem_pread, &m, n, off, end);
}

static int check_at(const uint8_t *p, size_t n, uint64_t off, uint64_t *end)
{
	struct mem m = {p, n, 0};

	*end = 0;
	return bfs_couch_check_header(mem_pread, &m, n, off, end);
}

/* Forward scan in pieces of piece bytes: last_end and headers. */
static uint64_t scan(const uint8_t *p, size_t n, size_t piece,
		     uint64_t *headers, uint64_t *last_off)
{
	struct bfs_couch_scan s;
	size_t i, k;

	if (bfs_couch_scan_init(&s))
		return UINT64_MAX;
	for (i = 0; i < n; i += k) {
		k = n - i < piece ? n - i : piece;
		if (bfs_couch_scan_feed(&s, p + i, k)) {
			bfs_couch_scan_release(&s);
			return UINT64_MAX;
		}
	}
	if (headers)
		*headers = s.headers;
	if (last_off)
		*last_off = s.last_off;
	bfs_couch_scan_release(&s);
	return s.last_end;
}

static void test_fixtures_end_on_their_last_header(void)
{
	uint64_t off, end, headers, soff;
	uint8_t *p;
	size_t i, n;

	for (i = 0; i < NFIX; i++) {
		p = load(fixtures[i].name, &n);
		CHECK(p);
		if (!p)
			continue;
		CHECK_EQ(n, fixtures[i].size);
		CHECK_EQ(find(p, n, &off, &end), 0);
		CHECK_EQ(off, fixtures[i].last_off);
		CHECK_EQ(end, n);
		CHECK_EQ(scan(p, n, n, &headers, &soff), n);
		CHECK_EQ(headers, fixtures[i].headers);
		CHECK_EQ(soff, fixtures[i].last_off);
		free(p);
	}
}

static void test_scan_in_pieces_agrees(void)
{
	static const size_t pieces[] = {1, 2, 3, 5, 17, 4095, 4096, 4097, 9000};
	uint64_t headers;
	uint8_t *p;
	size_t i, k, n;

	for (i = 0; i < NFIX; i++) {
		p = load(fixtures[i].name, &n);
		CHECK(p);
		if (!p)
			continue;
		for (k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
			CHECK_EQ(scan(p, n, pieces[k], &headers, NULL), n);
			CHECK_EQ(headers, fixtures[i].headers);
		}
		free(p);
	}
}

/* A live copy read while CouchDB appends: cut anywhere in the last
 * header (or before it) the copy ends on the header before. */
static void test_cut_copy_finds_earlier_header(void)
{
	uint64_t off, end, prev_end, cut;
	uint8_t *p;
	size_t i, n;

	for (i = 0; i < NFIX; i++) {
		p = load(fixtures[i].name, &n);
		CHECK(p);
		if (!p)
			continue;
		CHECK_EQ(check_at(p, n, fixtures[i].prev_off, &prev_end), 0);
		CHECK(prev_end > fixtures[i].prev_off);
		CHECK(prev_end <= fixtures[i].last_off);
		for (cut = fixtures[i].last_off; cut < n; cut += 37) {
			CHECK_EQ(find(p, (size_t)cut, &off, &end), 0);
			CHECK_EQ(off, fixtures[i].prev_off);
			CHECK_EQ(end, prev_end);
			CHECK_EQ(scan(p, (size_t)cut, 4096, NULL, NULL),
				 prev_end);
		}
		CHECK_EQ(find(p, n - 1, &off, &end), 0);
		CHECK_EQ(off, fixtures[i].prev_off);
		/* cut exactly after the earlier header: that one is whole */
		CHECK_EQ(find(p, (size_t)prev_end, &off, &end), 0);
		CHECK_EQ(end, prev_end);
		CHECK_EQ(find(p, (size_t)prev_end - 1, &off, &end), 0);
		CHECK(off < fixtures[i].prev_off);
		free(p);
	}
}

static void test_header_past_size_is_invalid(void)
{
	uint64_t end;
	uint8_t *p;
	size_t n;

	p = load("test.couch", &n);
	CHECK(p);
	if (!p)
		return;
	CHECK_EQ(check_at(p, n, 28672, &end), 0);
	CHECK_EQ(end, n);
	CHECK_EQ(check_at(p, 28672 + 3, 28672, &end), -EBADMSG);
	CHECK_EQ(check_at(p, n - 1, 28672, &end), -EBADMSG);
	CHECK_EQ(check_at(p, n, 28672 + 1, &end), -EBADMSG); /* unaligned */
	CHECK_EQ(check_at(p, n, 4096 * 8, &end), -EBADMSG);  /* past size */
	free(p);
}

/* One flipped byte anywhere in the last header: MD5 mismatch (or a bad
 * length), and the file's valid end moves back to the header before. */
static void test_flipped_byte_in_last_header(void)
{
	uint64_t off, end, prev_end, pos;
	uint8_t *p;
	size_t i, n;

	for (i = 0; i < NFIX; i++) {
		p = load(fixtures[i].name, &n);
		CHECK(p);
		if (!p)
			continue;
		CHECK_EQ(check_at(p, n, fixtures[i].prev_off, &prev_end), 0);
		for (pos = fixtures[i].last_off + 1; pos < n; pos += 7) {
			p[pos] ^= 0x20;
			CHECK_EQ(check_at(p, n, fixtures[i].last_off, &end),
				 -EBADMSG);
			CHECK_EQ(find(p, n, &off, &end), 0);
			CHECK_EQ(off, fixtures[i].prev_off);
			CHECK_EQ(end, prev_end);
			CHECK_EQ(scan(p, n, 1000, NULL, NULL), prev_end);
			p[pos] ^= 0x20;
		}
		CHECK_EQ(find(p, n, &off, &end), 0);
		CHECK_EQ(end, n);
		free(p);
	}
}

static void test_flipped_md5_byte(void)
{
	uint64_t end;
	uint8_t *p;
	size_t n;

	p = load("db321.couch", &n);
	CHECK(p);
	if (!p)
		return;
	p[28672 + 5 + 3] ^= 1; /* inside the MD5 itself */
	CHECK_EQ(check_at(p, n, 28672, &end), -EBADMSG);
	free(p);
}

static void test_empty_file_has_no_header(void)
{
	uint64_t off, end;
	uint8_t none = 0;

	CHECK_EQ(find(&none, 0, &off, &end), -ENOENT);
	CHECK_EQ(scan(&none, 0, 1, NULL, NULL), 0);
}

static void test_file_without_header(void)
{
	uint64_t off, end;
	uint8_t *p, *zero;
	size_t n;

	/* db321's block 0 is data: its first 4096 bytes hold no header */
	p = load("db321.couch", &n);
	CHECK(p);
	if (!p)
		return;
	CHECK_EQ(p[0], 0);
	CHECK_EQ(find(p, 4096, &off, &end), -ENOENT);
	CHECK_EQ(scan(p, 4096, 4096, NULL, NULL), 0);
	free(p);
	zero = calloc(1, 5 * 4096 + 100);
	CHECK(zero);
	if (!zero)
		return;
	CHECK_EQ(find(zero, 5 * 4096 + 100, &off, &end), -ENOENT);
	/* a prefix 1 with a length no header has */
	zero[4096] = 1;
	memcpy(zero + 4097, "\x7f\xff\xff\xff", 4);
	CHECK_EQ(find(zero, 5 * 4096 + 100, &off, &end), -ENOENT);
	memcpy(zero + 4097, "\x00\x00\x00\x05", 4);
	CHECK_EQ(find(zero, 5 * 4096 + 100, &off, &end), -ENOENT);
	/* a plausible length, garbage payload */
	memcpy(zero + 4097, "\x00\x00\x00\x40", 4);
	CHECK_EQ(find(zero, 5 * 4096 + 100, &off, &end), -ENOENT);
	CHECK_EQ(scan(zero, 5 * 4096 + 100, 512, NULL, NULL), 0);
	free(zero);
}

/* Data appended after the last header (an update in progress): the valid
 * end is still the header's. */
static void test_append_in_progress(void)
{
	uint64_t off, end;
	uint8_t *p, *q;
	size_t n, extra = 3 * 4096 + 1234, i;

	p = load("test.couch", &n);
	CHECK(p);
	if (!p)
		return;
	q = malloc(n + extra);
	CHECK(q);
	if (!q) {
		free(p);
		return;
	}
	memcpy(q, p, n);
	for (i = n; i < n + extra; i++)
		q[i] = (uint8_t)(i * 31 + 7);
	for (i = (n + 4095) / 4096 * 4096; i < n + extra; i += 4096)
		q[i] = 0; /* data blocks */
	CHECK_EQ(find(q, n + extra, &off, &end), 0);
	CHECK_EQ(off, 28672);
	CHECK_EQ(end, n);
	CHECK_EQ(scan(q, n + extra, 777, NULL, NULL), n);
	/* a header started in the appended data and cut: still n */
	q[(n + 4095) / 4096 * 4096] = 1;
	CHECK_EQ(find(q, n + extra, &off, &end), 0);
	CHECK_EQ(end, n);
	CHECK_EQ(scan(q, n + extra, 4096, NULL, NULL), n);
	free(q);
	free(p);
}

/* A continuation block of a header must have prefix 0. */
static void test_header_across_blocks(void)
{
	uint64_t off, end;
	uint8_t *p, *q;
	size_t n, len = 4096 + 700, qn;

	/* test.couch up to its last header, then a header claiming 4796
	 * bytes whose continuation block starts with 1 (CouchDB writes 0
	 * there): neither it nor that block is a header, so the valid end
	 * is the header before. */
	p = load("test.couch", &n);
	CHECK(p);
	if (!p)
		return;
	qn = 28672 + len + 10;
	q = calloc(1, qn);
	CHECK(q);
	if (!q) {
		free(p);
		return;
	}
	memcpy(q, p, 28672); /* up to (not with) the last header */
	q[28672] = 1;
	q[28673] = 0;
	q[28674] = 0;
	q[28675] = (uint8_t)(len >> 8);
	q[28676] = (uint8_t)len;
	q[28672 + 4096] = 1; /* a new header where a continuation must be */
	CHECK_EQ(find(q, qn, &off, &end), 0);
	CHECK_EQ(off, 24576);
	CHECK_EQ(scan(q, qn, 333, NULL, NULL), end);
	free(q);
	free(p);
}

static void test_reader_error_is_returned(void)
{
	struct mem m = {(const uint8_t *)"x", 1, 1};
	uint64_t off, end;

	CHECK_EQ(bfs_couch_find_header(mem_pread, &m, 8192, &off, &end), -EIO);
	CHECK_EQ(bfs_couch_check_header(mem_pread, &m, 8192, 0, &end), -EIO);
}

int main(void)
{
	RUN(test_fixtures_end_on_their_last_header);
	RUN(test_scan_in_pieces_agrees);
	RUN(test_cut_copy_finds_earlier_header);
	RUN(test_header_past_size_is_invalid);
	RUN(test_flipped_byte_in_last_header);
	RUN(test_flipped_md5_byte);
	RUN(test_empty_file_has_no_header);
	RUN(test_file_without_header);
	RUN(test_append_in_progress);
	RUN(test_header_across_blocks);
	RUN(test_reader_error_is_returned);
	return check_summary();
}
