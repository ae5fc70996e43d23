// SPDX-License-Identifier: Apache-2.0
#include "check.h"
#include "manifest.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define ID_A  "0123456789abcdef0123456789abcdef"
#define HEX64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct bfs_manifest *sample(void)
{
	struct bfs_manifest *m = bfs_manifest_new();
	uint8_t id[BFS_ID_LEN];
	int i;

	m->backup_id = strdup(ID_A);
	m->instance = strdup("pg1");
	m->timestamp = strdup("2026-11-21T03:00:00Z");
	CHECK_EQ(bfs_timestamp_parse(m->timestamp, &m->created), 0);
	m->datastore = strdup("postgresql");
	m->datastore_version = strdup("15.4");
	m->format = strdup("pg_dump");
	m->codec = strdup("zstd");
	m->label = strdup("");
	m->parent = strdup("2026-11-20T03:00:00Z");
	json_object_set_new(m->strategy, "mode", json_string("online"));
	json_object_set_new(m->extra, "databases", json_integer(3));
	memset(m->sha256, 0xab, sizeof(m->sha256));
	m->stored_bytes = 1234;
	for (i = 0; i < 3; i++) {
		memset(id, i + 1, sizeof(id));
		CHECK_EQ(bfs_manifest_add_chunk(m, id, 100 * (i + 1)), 0);
	}
	return m;
}

static int decode(const char *json, struct bfs_manifest **m)
{
	char err[256] = "";
	int ret = bfs_manifest_decode(json, strlen(json), m, err, sizeof(err));

	if (ret)
		CHECK(err[0] != 0);
	return ret;
}

static void test_round_trip(void)
{
	struct bfs_manifest *m = sample(), *d = NULL;
	char *json, *json2;
	size_t len, len2, i;

	CHECK_EQ(m->size, 600);
	CHECK_EQ(bfs_manifest_encode(m, &json, &len), 0);
	CHECK_EQ(len, strlen(json));
	CHECK_EQ(bfs_manifest_decode(json, len, &d, NULL, 0), 0);
	CHECK(d != NULL);
	if (!d)
		goto out;
	CHECK(!strcmp(d->backup_id, m->backup_id));
	CHECK(!strcmp(d->instance, "pg1"));
	CHECK(!strcmp(d->timestamp, m->timestamp));
	CHECK_EQ(d->created, m->created);
	CHECK(!strcmp(d->datastore, "postgresql"));
	CHECK(!strcmp(d->datastore_version, "15.4"));
	CHECK(!strcmp(d->format, "pg_dump"));
	CHECK(!strcmp(d->codec, "zstd"));
	CHECK(!strcmp(d->label, ""));
	CHECK(d->parent && !strcmp(d->parent, m->parent));
	CHECK(json_equal(d->strategy, m->strategy));
	CHECK(json_equal(d->extra, m->extra));
	CHECK_EQ(d->size, 600);
	CHECK(!memcmp(d->sha256, m->sha256, 32));
	CHECK_EQ(d->stored_bytes, 1234);
	CHECK_EQ(d->nchunks, 3);
	for (i = 0; i < 3; i++) {
		CHECK(!memcmp(d->chunks[i].id, m->chunks[i].id, BFS_ID_LEN));
		CHECK_EQ(d->chunks[i].size, m->chunks[i].size);
		CHECK_EQ(d->chunks[i].offset, m->chunks[i].offset);
	}
	/* re-encoding gives the same bytes */
	CHECK_EQ(bfs_manifest_encode(d, &json2, &len2), 0);
	CHECK(len2 == len && !memcmp(json, json2, len));
	free(json2);
	/* a decoded manifest can grow (its array capacity is right) */
	CHECK_EQ(bfs_manifest_add_chunk(d, d->chunks[0].id, 1), 0);
	CHECK_EQ(d->size, 601);
out:
	free(json);
	bfs_manifest_free(d);
	bfs_manifest_free(m);
}

/* The exact layout promised in docs/FORMAT.md. */
static void test_layout(void)
{
	struct bfs_manifest *m = sample();
	const char *want_start =
		"{\"version\":1,\"backup_id\":\"" ID_A
		"\",\"instance\":\"pg1\","
		"\"timestamp\":\"2026-11-21T03:00:00Z\",\"created\":1795230000,"
		"\"datastore\":\"postgresql\",\"datastore_version\":\"15.4\","
		"\"format\":\"pg_dump\",\"codec\":\"zstd\",\"label\":\"\","
		"\"parent\":\"2026-11-20T03:00:00Z\","
		"\"strategy\":{\"mode\":\"online\"},"
		"\"extra\":{\"databases\":3},\"size\":600,\"sha256\":\"abab";
	const char *want_end =
		"\"stored_bytes\":1234,\"chunks\":[["
		"\"0101010101010101010101010101"
		"010101010101010101010101010101010101\",100],[\"0202";
	char *json;
	size_t len;

	free(m->parent);
	m->parent = strdup("2026-11-20T03:00:00Z");
	CHECK_EQ(bfs_manifest_encode(m, &json, &len), 0);
	CHECK(!strncmp(json, want_start, strlen(want_start)));
	CHECK(strstr(json, want_end) != NULL);
	free(json);
	/* no parent: null */
	free(m->parent);
	m->parent = NULL;
	CHECK_EQ(bfs_manifest_encode(m, &json, &len), 0);
	CHECK(strstr(json, "\"parent\":null") != NULL);
	free(json);
	bfs_manifest_free(m);
}

/*
 * Encode the sample, replace the first occurrence of from by to, decode:
 * returns what decode returned.
 */
static int mutate(const char *from, const char *to)
{
	struct bfs_manifest *m = sample(), *d = NULL;
	size_t len, pre, fl, tl;
	char *json, *p, *out;
	int ret;

	CHECK_EQ(bfs_manifest_encode(m, &json, &len), 0);
	p = strstr(json, from);
	CHECK(p != NULL);
	if (!p) {
		free(json);
		bfs_manifest_free(m);
		return 0;
	}
	pre = (size_t)(p - json);
	fl = strlen(from);
	tl = strlen(to);
	out = malloc(len + tl + 1);
	memcpy(out, json, pre);
	memcpy(out + pre, to, tl);
	memcpy(out + pre + tl, p + fl, len - pre - fl + 1);
	ret = decode(out, &d);
	if (!ret)
		bfs_manifest_free(d);
	else
		CHECK(d == NULL);
	free(out);
	free(json);
	bfs_manifest_free(m);
	return ret;
}

static void test_mutate_control(void)
{
	/* the mutation machinery itself: a no-op change decodes */
	CHECK_EQ(mutate("\"version\":1", "\"version\":1"), 0);
	/* unknown keys are ignored (forward compatibility) */
	CHECK_EQ(mutate("\"version\":1", "\"version\":1,\"future\":[1]"), 0);
}

static void test_bad_version(void)
{
	CHECK_EQ(mutate("\"version\":1", "\"version\":2"), -EBADMSG);
	CHECK_EQ(mutate("\"version\":1", "\"version\":\"1\""), -EBADMSG);
	CHECK_EQ(mutate("\"version\":1,", ""), -EBADMSG);
}

static void test_bad_types(void)
{
	CHECK_EQ(mutate("\"size\":600", "\"size\":\"600\""), -EBADMSG);
	CHECK_EQ(mutate("\"size\":600", "\"size\":-600"), -EBADMSG);
	CHECK_EQ(mutate("\"created\":", "\"created\":1.5,\"x\":"), -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":1"), -EBADMSG);
	CHECK_EQ(
		mutate("\"strategy\":{\"mode\":\"online\"}", "\"strategy\":[]"),
		-EBADMSG);
	CHECK_EQ(mutate("\"extra\":{\"databases\":3}", "\"extra\":null"),
		 -EBADMSG);
	CHECK_EQ(mutate("\"chunks\":[", "\"chunks\":{},\"x\":["), -EBADMSG);
	CHECK_EQ(mutate("\"label\":\"\"", "\"label\":null"), -EBADMSG);
	CHECK_EQ(mutate("\"parent\":\"2026-11-20T03:00:00Z\"",
			"\"parent\":null"),
		 0);
	CHECK_EQ(mutate("\"parent\":\"2026-11-20T03:00:00Z\"", "\"parent\":5"),
		 -EBADMSG);
	/* a duplicate key would let two readers disagree */
	CHECK_EQ(mutate("\"version\":1", "\"version\":1,\"version\":1"),
		 -EBADMSG);
}

static void test_bad_hex(void)
{
	CHECK_EQ(mutate(ID_A, "0123456789abcdef0123456789abcde"), -EBADMSG);
	CHECK_EQ(mutate(ID_A, "0123456789abcdef0123456789abcdeg"), -EBADMSG);
	CHECK_EQ(mutate(ID_A, "0123456789ABCDEF0123456789ABCDEF"), -EBADMSG);
	CHECK_EQ(mutate("\"sha256\":\"abab", "\"sha256\":\"ab"), -EBADMSG);
	CHECK_EQ(mutate("\"sha256\":\"abab", "\"sha256\":\"xbab"), -EBADMSG);
	CHECK_EQ(mutate("[\"0101", "[\"01"), -EBADMSG);
	CHECK_EQ(mutate("[\"0101", "[\"zz01"), -EBADMSG);
	CHECK_EQ(mutate("0101\",100]", "0101\",100,1]"), -EBADMSG);
	CHECK_EQ(mutate("0101\",100]", "0101\"]"), -EBADMSG);
}

static void test_sum_mismatch(void)
{
	CHECK_EQ(mutate("\"size\":600", "\"size\":601"), -EBADMSG);
	CHECK_EQ(mutate("\"size\":600", "\"size\":599"), -EBADMSG);
	CHECK_EQ(mutate("0101\",100]", "0101\",101]"), -EBADMSG);
	CHECK_EQ(mutate("0101\",100]", "0101\",0]"), -EBADMSG);
	CHECK_EQ(mutate("0101\",100]", "0101\",67108865]"), -EBADMSG);
	/* a size that would wrap a 64-bit sum */
	CHECK_EQ(mutate("\"size\":600", "\"size\":18446744073709551615"),
		 -EBADMSG);
}

static void test_chunk_bounds(void)
{
	struct bfs_manifest *m = bfs_manifest_new();
	uint8_t id[BFS_ID_LEN] = {0};

	CHECK_EQ(bfs_manifest_add_chunk(m, id, 0), -EINVAL);
	CHECK_EQ(bfs_manifest_add_chunk(m, id, BFS_MANIFEST_MAX_CHUNK_SIZE + 1),
		 -EINVAL);
	CHECK_EQ(bfs_manifest_add_chunk(m, id, BFS_MANIFEST_MAX_CHUNK_SIZE), 0);
	CHECK_EQ(m->size, BFS_MANIFEST_MAX_CHUNK_SIZE);
	/*
	 * Pretend it is full: the 2^24+1st chunk is refused.  (decode cannot
	 * meet that many: an entry takes >= 71 bytes of JSON and the JSON is
	 * bounded by BFS_MANIFEST_MAX_BYTES first; test_oversized.)
	 */
	m->nchunks = BFS_MANIFEST_MAX_CHUNKS;
	CHECK_EQ(bfs_manifest_add_chunk(m, id, 1), -EFBIG);
	m->nchunks = 1;
	bfs_manifest_free(m);
}

static void test_bad_names(void)
{
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\"..\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\".\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\"a/b\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\"a\\nb\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\"a\\u0001\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\"a\\u0000\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\"\""), -EBADMSG);
	CHECK_EQ(mutate("\"instance\":\"pg1\"", "\"instance\":\".hidden\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"datastore\":\"postgresql\"",
			"\"datastore\":\"../x\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"label\":\"\"", "\"label\":\"a/b\""), -EBADMSG);
	CHECK_EQ(mutate("\"label\":\"\"", "\"label\":\"before upgrade\""), 0);
	CHECK_EQ(mutate("\"format\":\"pg_dump\"", "\"format\":\"\\t\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"datastore_version\":\"15.4\"",
			"\"datastore_version\":\"1\\n\""),
		 -EBADMSG);
}

static void test_name_ok(void)
{
	char longname[BFS_NAME_MAX + 2];

	CHECK(bfs_name_ok("pg1"));
	CHECK(bfs_name_ok("2026-11-21T03:00:00Z"));
	CHECK(bfs_name_ok("caf\xc3\xa9 db"));
	CHECK(!bfs_name_ok(NULL));
	CHECK(!bfs_name_ok(""));
	CHECK(!bfs_name_ok("."));
	CHECK(!bfs_name_ok(".."));
	CHECK(!bfs_name_ok(".x"));
	CHECK(!bfs_name_ok("a/b"));
	CHECK(!bfs_name_ok("/"));
	CHECK(!bfs_name_ok("a\nb"));
	CHECK(!bfs_name_ok("a\x7f"));
	memset(longname, 'x', BFS_NAME_MAX);
	longname[BFS_NAME_MAX] = 0;
	CHECK(bfs_name_ok(longname));
	longname[BFS_NAME_MAX] = 'x';
	longname[BFS_NAME_MAX + 1] = 0;
	CHECK(!bfs_name_ok(longname));
}

static void test_timestamps(void)
{
	char buf[BFS_TIMESTAMP_LEN + 1];
	int64_t t;

	CHECK_EQ(bfs_timestamp_parse("1970-01-01T00:00:00Z", &t), 0);
	CHECK_EQ(t, 0);
	CHECK_EQ(bfs_timestamp_parse("2026-11-21T03:00:00Z", &t), 0);
	CHECK_EQ(t, 1795230000);
	bfs_timestamp_format(t, buf);
	CHECK(!strcmp(buf, "2026-11-21T03:00:00Z"));
	CHECK_EQ(bfs_timestamp_parse("2024-02-29T23:59:59Z", &t), 0);
	bfs_timestamp_format(t, buf);
	CHECK(!strcmp(buf, "2024-02-29T23:59:59Z"));
	CHECK_EQ(bfs_timestamp_parse("2000-02-29T00:00:00Z", &t), 0);
	CHECK_EQ(bfs_timestamp_parse("2026-13-01T00:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-00-01T00:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-02-29T00:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("1900-02-29T00:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-04-31T00:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-01-00T00:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-01-01T24:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-01-01T00:60:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-01-01T00:00:60Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("1969-12-31T23:59:59Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-11-21T03:00:00", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-11-21T03:00:00Z ", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-11-21 03:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-11-21T03:00:00+00", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("+026-11-21T03:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("2026-1-021T03:00:00Z", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse("", &t), -EINVAL);
	CHECK_EQ(bfs_timestamp_parse(NULL, &t), -EINVAL);
	bfs_timestamp_format(-5, buf);
	CHECK(!strcmp(buf, "1970-01-01T00:00:00Z"));
	bfs_timestamp_format(INT64_MAX, buf);
	CHECK(!strcmp(buf, "9999-12-31T23:59:59Z"));
	/* timestamps in manifests are checked too */
	CHECK_EQ(mutate("\"timestamp\":\"2026-11-21T03:00:00Z\"",
			"\"timestamp\":\"2026-13-01T00:00:00Z\""),
		 -EBADMSG);
	CHECK_EQ(mutate("\"parent\":\"2026-11-20T03:00:00Z\"",
			"\"parent\":\"yesterday\""),
		 -EBADMSG);
}

static void test_truncated(void)
{
	struct bfs_manifest *m = sample(), *d = NULL;
	char *json;
	size_t len, cut;
	int bad = 0;

	CHECK_EQ(bfs_manifest_encode(m, &json, &len), 0);
	/* every proper prefix is refused */
	for (cut = 0; cut < len; cut++) {
		if (bfs_manifest_decode(json, cut, &d, NULL, 0) != -EBADMSG)
			bad++;
		if (d) {
			bfs_manifest_free(d);
			d = NULL;
		}
	}
	CHECK_EQ(bad, 0);
	/* and so is trailing garbage */
	json = realloc(json, len + 2);
	memcpy(json + len, "{}", 2);
	CHECK_EQ(bfs_manifest_decode(json, len + 2, &d, NULL, 0), -EBADMSG);
	CHECK_EQ(decode("[]", &d), -EBADMSG);
	CHECK_EQ(decode("null", &d), -EBADMSG);
	free(json);
	bfs_manifest_free(m);
}

static void test_oversized(void)
{
	size_t len = (size_t)BFS_MANIFEST_MAX_BYTES + 1;
	struct bfs_manifest *d = NULL;
	char err[128];
	/* calloc maps zero pages lazily: decode must refuse before reading */
	char *big = calloc(1, len);

	CHECK(big != NULL);
	CHECK_EQ(bfs_manifest_decode(big, len, &d, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "too large") != NULL);
	free(big);
}

static void test_encode_refuses_invalid(void)
{
	struct bfs_manifest *m = sample();
	char *json = NULL;
	size_t len;

	free(m->instance);
	m->instance = strdup("../etc");
	CHECK_EQ(bfs_manifest_encode(m, &json, &len), -EINVAL);
	CHECK(json == NULL);
	bfs_manifest_free(m);
}

static void test_find(void)
{
	struct bfs_manifest *m = bfs_manifest_new();
	uint8_t id[BFS_ID_LEN] = {0};
	uint32_t sizes[] = {10, 1, 5, 20};
	size_t i;

	CHECK_EQ(bfs_manifest_find(m, 0), -1);
	for (i = 0; i < 4; i++)
		bfs_manifest_add_chunk(m, id, sizes[i]);
	/* offsets 0, 10, 11, 16; size 36 */
	CHECK_EQ(m->size, 36);
	CHECK_EQ(bfs_manifest_find(m, 0), 0);
	CHECK_EQ(bfs_manifest_find(m, 9), 0);  /* chunk end - 1 */
	CHECK_EQ(bfs_manifest_find(m, 10), 1); /* chunk end */
	CHECK_EQ(bfs_manifest_find(m, 11), 2);
	CHECK_EQ(bfs_manifest_find(m, 15), 2);
	CHECK_EQ(bfs_manifest_find(m, 16), 3);
	CHECK_EQ(bfs_manifest_find(m, 35), 3);	/* size - 1 */
	CHECK_EQ(bfs_manifest_find(m, 36), -1); /* size */
	CHECK_EQ(bfs_manifest_find(m, UINT64_MAX), -1);
	bfs_manifest_free(m);
}

static void test_find_many(void)
{
	struct bfs_manifest *m = bfs_manifest_new();
	uint8_t id[BFS_ID_LEN] = {0};
	size_t i, bad = 0;

	/* grows through several capacity doublings */
	for (i = 0; i < 1000; i++)
		CHECK_EQ(bfs_manifest_add_chunk(m, id, (uint32_t)(i % 7 + 1)),
			 0);
	for (i = 0; i < 1000; i++) {
		uint64_t o = m->chunks[i].offset;

		if (bfs_manifest_find(m, o) != (ssize_t)i ||
		    bfs_manifest_find(m, o + m->chunks[i].size - 1) !=
			    (ssize_t)i)
			bad++;
	}
	CHECK_EQ(bad, 0);
	bfs_manifest_free(m);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_layout);
	RUN(test_mutate_control);
	RUN(test_bad_version);
	RUN(test_bad_types);
	RUN(test_bad_hex);
	RUN(test_sum_mismatch);
	RUN(test_chunk_bounds);
	RUN(test_bad_names);
	RUN(test_name_ok);
	RUN(test_timestamps);
	RUN(test_truncated);
	RUN(test_oversized);
	RUN(test_encode_refuses_invalid);
	RUN(test_find);
	RUN(test_find_many);
	return check_summary();
}
