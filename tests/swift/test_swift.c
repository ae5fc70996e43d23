// SPDX-License-Identifier: Apache-2.0
/*
 * The swift backend against a live Swift (not part of the unit suite).
 * The Swift comes from ST_AUTH, ST_USER and ST_KEY, as for the swift CLI:
 *
 *   tools/swift-server.sh start
 *   export $(tools/swift-server.sh env)
 *   build/tests/swift/test_swift
 *
 * Each run works in fresh containers with random names and deletes them
 * (and everything in them) at the end.
 *
 * With arguments it is a small client of the backend, for the pytest
 * suite (tests/integration/test_swift_backend.py):
 *
 *   test_swift --config FILE open|put NAME|get NAME [OFF LEN]|stat NAME|
 *                            rm NAME|list PREFIX [/]|stat-loop N MS NAME
 *
 * FILE holds the backend's JSON object; put reads the object from stdin,
 * get writes it to stdout, list prints "size<TAB>is_prefix<TAB>name",
 * stat-loop stats NAME N times MS milliseconds apart in one process (token
 * refresh over time).
 */
#include "../unit/check.h"
#include "backend.h"
#include "codec.h"
#include "log.h"
#include "manifest.h"
#include "repo.h"
#include "swift_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB	    (1u << 20)
#define NCONTAINERS 16

static char st_auth[512], st_user[128], st_key[128];
static char keyfile[] = "/tmp/bfs-swift-key-XXXXXX";
static char cont_main[64];
static char containers[NCONTAINERS][64];
static int ncontainers;

/* ------------------------------------------------------------------ */
/* Helpers */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 32);
	}
}

/* A fresh container name, remembered for the clean-up. */
static const char *new_container(void)
{
	uint8_t rnd[8];
	char *c = containers[ncontainers];
	int i, n;

	if (ncontainers == NCONTAINERS)
		abort();
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		abort();
	n = snprintf(c, 64, "bfs-test-");
	for (i = 0; i < 8; i++)
		n += snprintf(c + n, 64 - (size_t)n, "%02x", rnd[i]);
	ncontainers++;
	return c;
}

static json_t *conf_for(const char *cont)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "type", "swift",
			 "auth_url", st_auth, "user", st_user, "key_file",
			 keyfile, "container", cont, "deadline", 30);
}

static json_t *conf_set(json_t *conf, const char *key, json_t *v)
{
	json_object_set_new(conf, key, v);
	return conf;
}

/* Open with conf (stolen); NULL (and a failed check) on error. */
static struct bfs_backend *open_conf(json_t *conf)
{
	struct bfs_backend *be = NULL;
	char err[512] = "";
	int ret;

	ret = bfs_backend_open(conf, &be, err, sizeof(err));
	if (ret)
		fprintf(stderr, "open: %d: %s\n", ret, err);
	CHECK_EQ(ret, 0);
	json_decref(conf);
	return be;
}

static struct bfs_backend *open_main(void)
{
	return open_conf(conf_for(cont_main));
}

/* Open expected to fail with want; err gets the reason. */
static int open_fails(json_t *conf, int want, char *err, size_t errlen)
{
	struct bfs_backend *be = NULL;
	int ret;

	err[0] = 0;
	ret = bfs_backend_open(conf, &be, err, errlen);
	json_decref(conf);
	fprintf(stderr, "  (expected failure %d: %s)\n", ret, err);
	CHECK_EQ(ret, want);
	CHECK(be == NULL);
	CHECK(strchr(err, '\n') == NULL);
	if (be)
		bfs_backend_close(be);
	return ret;
}

static int get_all(struct bfs_backend *be, const char *name, uint64_t off,
		   uint64_t len, struct bfs_buf *out)
{
	bfs_buf_reset(out);
	return bfs_backend_get(be, name, off, len, out);
}

static int write_secret(const char *path, const char *secret, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "%s\n", secret);
	fclose(f);
	return chmod(path, mode) ? -errno : 0;
}

/* Run fn(i, arg) for i in [0, n) on nthreads threads. */
struct par {
	void (*fn)(int i, void *arg);
	void *arg;
	int n, next;
	pthread_mutex_t lock;
};

static void *par_main(void *p)
{
	struct par *par = p;
	int i;

	for (;;) {
		pthread_mutex_lock(&par->lock);
		i = par->next++;
		pthread_mutex_unlock(&par->lock);
		if (i >= par->n)
			return NULL;
		par->fn(i, par->arg);
	}
}

static void parallel(int nthreads, int n, void (*fn)(int, void *), void *arg)
{
	struct par par = {.fn = fn, .arg = arg, .n = n};
	pthread_t t[64];
	int i;

	pthread_mutex_init(&par.lock, NULL);
	for (i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, par_main, &par);
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&par.lock);
}

/* ------------------------------------------------------------------ */
/* Raw HTTP, independent of the backend: checks and segment set-up. */

static char raw_token[1024], raw_url[1024];

static size_t raw_hdr(char *buf, size_t size, size_t n, void *arg)
{
	size_t len = size * n;
	char *dst = NULL;
	size_t skip = 0;

	if (len > 14 && !strncasecmp(buf, "X-Auth-Token: ", 14)) {
		dst = raw_token;
		skip = 14;
	} else if (len > 15 && !strncasecmp(buf, "X-Storage-Url: ", 15)) {
		dst = raw_url;
		skip = 15;
	}
	if (dst && len - skip < 1024) {
		memcpy(dst, buf + skip, len - skip);
		dst[len - skip] = 0;
		dst[strcspn(dst, "\r\n")] = 0;
	}
	return len;
}

static size_t raw_body(char *buf, size_t size, size_t n, void *arg)
{
	if (arg && bfs_buf_append(arg, buf, size * n))
		return 0;
	return size * n;
}

static int raw_auth(void)
{
	struct curl_slist *h = NULL;
	char u[256], k[256];
	CURL *c = curl_easy_init();
	long code = 0;

	snprintf(u, sizeof(u), "X-Auth-User: %s", st_user);
	snprintf(k, sizeof(k), "X-Auth-Key: %s", st_key);
	h = curl_slist_append(curl_slist_append(h, u), k);
	curl_easy_setopt(c, CURLOPT_URL, st_auth);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, raw_hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, raw_body);
	curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return code == 200 && raw_token[0] && raw_url[0] ? 0 : -EACCES;
}

/* method on <storage url>/path (encoded by the caller); the status. */
static long raw_req(const char *method, const char *path, const char *hdr,
		    const void *body, size_t len, struct bfs_buf *out)
{
	struct curl_slist *h = NULL;
	char url[2048], tok[1100], line[512];
	const char *p, *nl;
	CURL *c = curl_easy_init();
	long code = 0;

	snprintf(url, sizeof(url), "%s/%s", raw_url, path);
	snprintf(tok, sizeof(tok), "X-Auth-Token: %s", raw_token);
	h = curl_slist_append(h, tok);
	/* hdr: one header line, or several separated by '\n' */
	for (p = hdr; p && *p; p = nl ? nl + 1 : "") {
		nl = strchr(p, '\n');
		snprintf(line, sizeof(line), "%.*s",
			 (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
		h = curl_slist_append(h, line);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, raw_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (!strcmp(method, "PUT")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
	}
	curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return code;
}

/* ------------------------------------------------------------------ */
/* Open and the container */

static void test_open_creates_container(void)
{
	const char *c = new_container();
	struct bfs_backend *be;
	int n = 0;

	CHECK_EQ(raw_req("HEAD", c, NULL, NULL, 0, NULL), 404);
	be = open_conf(conf_for(c));
	if (!be)
		return;
	CHECK_EQ(raw_req("HEAD", c, NULL, NULL, 0, NULL), 204);
	bfs_backend_close(be);
	/* the second time it exists: HEAD only */
	be = open_conf(conf_for(c));
	CHECK(be != NULL);
	bfs_backend_close(be);
	CHECK_EQ(n, 0);
}

/* A legacy container is read, never created: create_container false. */
static void test_open_no_create(void)
{
	const char *c = new_container();
	struct bfs_backend *be = NULL;
	char err[512];
	json_t *conf;

	/* the main container exists from here on */
	bfs_backend_close(open_main());
	open_fails(conf_set(conf_for(c), "create_container", json_false()),
		   -ENOENT, err, sizeof(err));
	CHECK(strstr(err, c) && strstr(err, "does not exist"));
	CHECK_EQ(raw_req("HEAD", c, NULL, NULL, 0, NULL), 404);
	open_fails(conf_set(conf_for(c), "create_container", json_string("no")),
		   -EINVAL, err, sizeof(err));
	/* the helper: the same config on another container */
	conf = conf_for(c);
	CHECK_EQ(bfs_backend_open_container(conf, c, &be, err, sizeof(err)),
		 -ENOENT);
	CHECK(be == NULL && strstr(err, c));
	CHECK_EQ(raw_req("HEAD", c, NULL, NULL, 0, NULL), 404);
	CHECK_EQ(bfs_backend_open_container(conf, cont_main, &be, err,
					    sizeof(err)),
		 0);
	if (be)
		CHECK_EQ(bfs_backend_put(be, "nocreate/x", "x", 1, 0), 0);
	bfs_backend_close(be);
	json_decref(conf);
	/* the config given is not changed */
	conf = json_pack("{s:s,s:s}", "type", "local", "path", "/tmp");
	be = NULL;
	CHECK_EQ(bfs_backend_open_container(conf, c, &be, err, sizeof(err)),
		 -EOPNOTSUPP);
	CHECK(be == NULL);
	json_decref(conf);
}

/* info of a plain object: its MD5 as ETag, Trove's metadata. */
static void test_info_plain(void)
{
	struct bfs_backend *be = open_main();
	struct bfs_object_info info;
	struct bfs_buf none;
	char path[256], md5[33];

	if (!be)
		return;
	bfs_buf_init(&none, 4096);
	snprintf(path, sizeof(path), "%s/info/plain.gz", cont_main);
	CHECK_EQ(raw_req("PUT", path,
			 "X-Object-Meta-Datastore: mysql\n"
			 "X-Object-Meta-Datastore-Version: 5.7",
			 "hello trove", 11, &none),
		 201);
	swift_md5_hex("hello trove", 11, md5);
	memset(&info, 0x55, sizeof(info));
	CHECK_EQ(bfs_backend_info(be, "info/plain.gz", &info), 0);
	CHECK_EQ(info.size, 11);
	CHECK(!strcmp(info.etag, md5));
	CHECK_EQ(info.layout, BFS_LAYOUT_SINGLE);
	CHECK(!strcmp(info.datastore, "mysql"));
	CHECK(!strcmp(info.datastore_version, "5.7"));
	/* no metadata: empty strings */
	CHECK_EQ(bfs_backend_put(be, "info/bare", "x", 1, 0), 0);
	CHECK_EQ(bfs_backend_info(be, "info/bare", &info), 0);
	CHECK(info.size == 1 && !info.datastore[0] &&
	      !info.datastore_version[0] && info.layout == BFS_LAYOUT_SINGLE);
	CHECK_EQ(bfs_backend_info(be, "info/missing", &info), -ENOENT);
	CHECK(!strcmp(bfs_object_layout_name(BFS_LAYOUT_SINGLE), "single"));
	bfs_buf_release(&none);
	bfs_backend_close(be);
}

static void test_no_space_op(void)
{
	struct bfs_backend *be = open_main();
	uint64_t avail;

	if (!be)
		return;
	CHECK_EQ(bfs_backend_space(be, &avail), -EOPNOTSUPP);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* Round trips */

static void roundtrip(struct bfs_backend *be, size_t size)
{
	uint8_t *data = malloc(size + 1);
	struct bfs_buf b;
	uint64_t got = 123;
	char name[64];

	bfs_buf_init(&b, 8 * MIB);
	fill_random(data, size, size);
	snprintf(name, sizeof(name), "rt/obj-%zu", size);
	CHECK_EQ(bfs_backend_put(be, name, data, size, 0), 0);
	CHECK_EQ(bfs_backend_stat(be, name, &got), 0);
	CHECK_EQ(got, size);
	CHECK_EQ(get_all(be, name, 0, 0, &b), 0);
	CHECK_EQ(b.len, size);
	CHECK(b.len == size && (!size || !memcmp(b.data, data, size)));
	CHECK_EQ(bfs_backend_remove(be, name), 0);
	CHECK_EQ(bfs_backend_stat(be, name, &got), -ENOENT);
	CHECK_EQ(get_all(be, name, 0, 0, &b), -ENOENT);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(bfs_backend_remove(be, name), -ENOENT);
	bfs_buf_release(&b);
	free(data);
}

static void test_roundtrip_sizes(void)
{
	static const size_t sizes[] = {0, 1, MIB, 5 * MIB};
	struct bfs_backend *be = open_main();
	size_t i;

	if (!be)
		return;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		roundtrip(be, sizes[i]);
	bfs_backend_close(be);
}

/* get() appends; a failed get leaves the buffer as it was. */
static void test_get_appends(void)
{
	struct bfs_backend *be = open_main();
	struct bfs_buf b;

	if (!be)
		return;
	bfs_buf_init(&b, 1024);
	CHECK_EQ(bfs_backend_put(be, "app/x", "world", 5, 0), 0);
	CHECK_EQ(bfs_buf_append(&b, "hello ", 6), 0);
	CHECK_EQ(bfs_backend_get(be, "app/x", 0, 0, &b), 0);
	CHECK(b.len == 11 && !memcmp(b.data, "hello world", 11));
	CHECK_EQ(bfs_backend_get(be, "app/missing", 0, 0, &b), -ENOENT);
	CHECK_EQ(bfs_backend_get(be, "app/missing", 5, 5, &b), -ENOENT);
	CHECK_EQ(b.len, 11);
	bfs_buf_release(&b);
	bfs_backend_close(be);
}

struct range_case {
	uint64_t off, len;
	size_t want_off, want_len;
};

static void test_ranges(void)
{
	static const struct range_case cases[] = {
		{0, 0, 0, 1000},    {0, 1, 0, 1},	{999, 1, 999, 1},
		{999, 10, 999, 1},  {1000, 1, 0, 0},	{1000, 0, 0, 0},
		{5000, 0, 0, 0},    {5000, 7, 0, 0},	{10, 0, 10, 990},
		{0, 1000, 0, 1000}, {0, 2000, 0, 1000}, {500, 250, 500, 250},
		{1, 998, 1, 998},
	};
	struct bfs_backend *be = open_main();
	uint8_t data[1000];
	struct bfs_buf b;
	size_t i;

	if (!be)
		return;
	bfs_buf_init(&b, MIB);
	fill_random(data, sizeof(data), 7);
	CHECK_EQ(bfs_backend_put(be, "range/1000", data, sizeof(data), 0), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ(get_all(be, "range/1000", cases[i].off, cases[i].len,
				 &b),
			 0);
		CHECK_EQ(b.len, cases[i].want_len);
		CHECK(b.len == cases[i].want_len &&
		      !memcmp(b.data, data + cases[i].want_off, b.len));
	}
	/* the empty object */
	CHECK_EQ(bfs_backend_put(be, "range/0", "", 0, 0), 0);
	CHECK_EQ(get_all(be, "range/0", 0, 10, &b), 0);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(get_all(be, "range/0", 3, 0, &b), 0);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(get_all(be, "range/0", 0, 0, &b), 0);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(get_all(be, "range/none", 10, 10, &b), -ENOENT);
	bfs_buf_release(&b);
	/* an answer over the buffer's maximum: -EFBIG, nothing kept */
	bfs_buf_init(&b, 100);
	CHECK_EQ(get_all(be, "range/1000", 0, 0, &b), -EFBIG);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(get_all(be, "range/1000", 100, 100, &b), 0);
	CHECK(b.len == 100 && !memcmp(b.data, data + 100, 100));
	bfs_buf_release(&b);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* Create-if-absent */

static void test_excl(void)
{
	struct bfs_backend *be = open_main();
	struct bfs_buf b;

	if (!be)
		return;
	bfs_buf_init(&b, 1024);
	CHECK_EQ(bfs_backend_put(be, "excl/one", "first", 5, BFS_PUT_EXCL), 0);
	CHECK_EQ(bfs_backend_put(be, "excl/one", "second", 6, BFS_PUT_EXCL),
		 -EEXIST);
	CHECK_EQ(get_all(be, "excl/one", 0, 0, &b), 0);
	CHECK(b.len == 5 && !memcmp(b.data, "first", 5));
	CHECK_EQ(bfs_backend_put(be, "excl/one", "third", 5, 0), 0);
	CHECK_EQ(get_all(be, "excl/one", 0, 0, &b), 0);
	CHECK(b.len == 5 && !memcmp(b.data, "third", 5));
	bfs_buf_release(&b);
	bfs_backend_close(be);
}

struct race {
	struct bfs_backend *be;
	pthread_barrier_t barrier;
	char name[32];
	int result[16];
};

static void race_one(int i, void *arg)
{
	struct race *r = arg;
	char body[64];
	int n;

	n = snprintf(body, sizeof(body), "claimed by thread %d", i);
	pthread_barrier_wait(&r->barrier);
	r->result[i] =
		bfs_backend_put(r->be, r->name, body, (size_t)n, BFS_PUT_EXCL);
}

/* Sixteen writers at once, each on its own connection: one wins, and
 * what is stored is the winner's.  (Swift's If-None-Match alone lets
 * most of them "win".) */
static void race_round(struct race *r, int round)
{
	int i, wins = 0, winner = -1;
	struct bfs_buf b;
	char want[64];

	snprintf(r->name, sizeof(r->name), "excl/race-%d", round);
	pthread_barrier_init(&r->barrier, NULL, 16);
	parallel(16, 16, race_one, r);
	pthread_barrier_destroy(&r->barrier);
	for (i = 0; i < 16; i++) {
		if (!r->result[i]) {
			wins++;
			winner = i;
		} else {
			CHECK_EQ(r->result[i], -EEXIST);
		}
	}
	CHECK_EQ(wins, 1);
	bfs_buf_init(&b, 1024);
	CHECK_EQ(get_all(r->be, r->name, 0, 0, &b), 0);
	snprintf(want, sizeof(want), "claimed by thread %d", winner);
	CHECK(b.len == strlen(want) && !memcmp(b.data, want, b.len));
	bfs_buf_release(&b);
}

static void test_excl_race(void)
{
	json_t *conf = conf_for(cont_main);
	struct race r;
	int round;

	json_object_set_new(conf, "connections", json_integer(16));
	r.be = open_conf(conf);
	if (!r.be)
		return;
	for (round = 0; round < 5; round++)
		race_round(&r, round);
	bfs_backend_close(r.be);
}

/* ------------------------------------------------------------------ */
/* Listing */

#define NMANY 2500

struct seen {
	int count, prefixes, disorder, bad_size, stop_after;
	char last[1100];
	char first_prefix[64];
};

static int seen_cb(const char *name, uint64_t size, int is_prefix, void *arg)
{
	struct seen *s = arg;
	unsigned i;

	if (s->count && strcmp(s->last, name) >= 0)
		s->disorder++;
	snprintf(s->last, sizeof(s->last), "%s", name);
	s->count++;
	if (is_prefix) {
		if (!s->prefixes++)
			snprintf(s->first_prefix, sizeof(s->first_prefix), "%s",
				 name);
		if (size)
			s->bad_size++;
	} else if (sscanf(name, "many/d%*2u/o%4u", &i) == 1 && size != i % 7) {
		s->bad_size++;
	}
	return s->stop_after && s->count == s->stop_after ? 42 : 0;
}

static void many_put(int i, void *arg)
{
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "many/d%02d/o%04d", i % 10, i);
	ret = bfs_backend_put(arg, name, "0123456", (size_t)(i % 7), 0);
	CHECK_EQ(ret, 0);
}

static struct bfs_backend *open_limit(int limit)
{
	json_t *conf = conf_for(cont_main);

	json_object_set_new(conf, "list_limit", json_integer(limit));
	return open_conf(conf);
}

static struct seen list_with(struct bfs_backend *be, const char *prefix,
			     char delim, int stop_after, int *ret)
{
	struct seen s = {.stop_after = stop_after};

	*ret = bfs_backend_list(be, prefix, delim, seen_cb, &s);
	return s;
}

static void test_list_many(void)
{
	struct bfs_backend *be = open_main(), *b500, *b700, *b3;
	struct seen s;
	int ret;

	if (!be)
		return;
	parallel(16, NMANY, many_put, be);
	b500 = open_limit(500);
	b700 = open_limit(700);
	b3 = open_limit(3);
	if (!b500 || !b700 || !b3)
		goto out_close;
	/* 5 full pages and an empty one; 3 full pages and a short one */
	s = list_with(b500, "many/", 0, 0, &ret);
	CHECK(ret == 0 && s.count == NMANY && !s.disorder && !s.bad_size);
	s = list_with(b700, "many/", 0, 0, &ret);
	CHECK(ret == 0 && s.count == NMANY && !s.disorder && !s.bad_size);
	s = list_with(be, "many/", 0, 0, &ret);
	CHECK(ret == 0 && s.count == NMANY && !s.disorder && !s.bad_size);
	/* common prefixes, paged three at a time with the marker */
	s = list_with(b3, "many/", '/', 0, &ret);
	CHECK(ret == 0 && s.count == 10 && s.prefixes == 10 && !s.disorder);
	CHECK(!strcmp(s.first_prefix, "many/d00/"));
	CHECK(!strcmp(s.last, "many/d09/"));
	s = list_with(b3, "many/d0", '/', 0, &ret);
	CHECK(ret == 0 && s.count == 10 && s.prefixes == 10);
	s = list_with(b500, "many/d03/", '/', 0, &ret);
	CHECK(ret == 0 && s.count == NMANY / 10 && !s.prefixes && !s.bad_size);
	s = list_with(b3, "", '/', 0, &ret);
	CHECK(ret == 0 && s.prefixes >= 1 && !s.disorder);
	s = list_with(be, "nothing/", 0, 0, &ret);
	CHECK(ret == 0 && s.count == 0);
	/* a callback's non-zero value stops the listing, across pages */
	s = list_with(b3, "many/", 0, 5, &ret);
	CHECK(ret == 42 && s.count == 5);
out_close:
	bfs_backend_close(b3);
	bfs_backend_close(b700);
	bfs_backend_close(b500);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* Names */

static const char *const odd_names[] = {
	"names/a&b",
	"names/q?x=1&y=2",
	"names/100%",
	"names/%41%2F%zz",
	"names/hash#frag",
	"names/with space",
	"names/ leading and trailing ",
	"names/plus+sign",
	/* "names/ünïcödé/ファイル" */
	"names/\xc3\xbcn\xc3\xaf"
	"c\xc3\xb6"
	"d\xc3\xa9/\xe3\x83\x95"
	"\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab",
	"names/emoji \xf0\x9f\x8e\x89",
	"names/semi;colon=eq,comma:colon@at$dollar!bang",
	"names/quote\"s'",
	"names/back\\slash",
	"names/tilde~star*(paren)",
	"names/[brackets]{braces}|pipe^caret`tick",
	"names/<angle>",
};

#define NODD (sizeof(odd_names) / sizeof(odd_names[0]))

struct name_seen {
	int found[NODD];
	int other;
};

static int name_cb(const char *name, uint64_t size, int is_prefix, void *arg)
{
	struct name_seen *s = arg;
	size_t i;

	for (i = 0; i < NODD; i++) {
		if (!strcmp(name, odd_names[i])) {
			s->found[i] += size == strlen(odd_names[i]) ? 1 : 100;
			return 0;
		}
	}
	s->other++;
	return 0;
}

static void test_names(void)
{
	struct bfs_backend *be = open_main();
	struct name_seen s = {.other = 0};
	struct bfs_buf b;
	uint64_t size;
	size_t i;
	char long_name[1200];

	if (!be)
		return;
	bfs_buf_init(&b, 4096);
	for (i = 0; i < NODD; i++) {
		const char *n = odd_names[i];

		CHECK_EQ(bfs_backend_put(be, n, n, strlen(n), 0), 0);
		CHECK_EQ(bfs_backend_stat(be, n, &size), 0);
		CHECK_EQ(size, strlen(n));
		CHECK_EQ(get_all(be, n, 0, 0, &b), 0);
		CHECK(b.len == strlen(n) && !memcmp(b.data, n, b.len));
	}
	CHECK_EQ(bfs_backend_list(be, "names/", 0, name_cb, &s), 0);
	for (i = 0; i < NODD; i++)
		if (s.found[i] != 1)
			fprintf(stderr, "  listed %d times: \"%s\"\n",
				s.found[i], odd_names[i]);
	for (i = 0; i < NODD; i++)
		CHECK_EQ(s.found[i], 1);
	CHECK_EQ(s.other, 0);
	for (i = 0; i < NODD; i++)
		CHECK_EQ(bfs_backend_remove(be, odd_names[i]), 0);
	/* what Swift cannot store is refused before a request */
	CHECK_EQ(bfs_backend_put(be, "names/bad-\xff", "x", 1, 0), -EINVAL);
	CHECK_EQ(bfs_backend_put(be, "names/over\xc0\xaf", "x", 1, 0), -EINVAL);
	memset(long_name, 'a', sizeof(long_name));
	for (i = 200; i < sizeof(long_name); i += 200)
		long_name[i] = '/';
	long_name[1030] = 0;
	CHECK_EQ(bfs_backend_put(be, long_name, "x", 1, 0), -ENAMETOOLONG);
	bfs_buf_release(&b);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* Large objects: DLO and SLO, made with raw HTTP */

static const size_t seg_sizes[] = {1000, 1500, 700};
#define NSEG  3
#define LOBIG 3200

/* Puts the segments; etag gets Swift's ETag of a manifest of them: the
 * MD5 of their MD5s in hex, concatenated. */
static void put_segments(const char *kind, const uint8_t *data, char *slo,
			 size_t slolen, char etag[33])
{
	char path[256], md5s[NSEG * 32 + 1] = "";
	struct bfs_buf none;
	size_t i, off = 0, used;
	char md5[33];

	bfs_buf_init(&none, 4096);
	used = (size_t)snprintf(slo, slolen, "[");
	for (i = 0; i < NSEG; i++) {
		snprintf(path, sizeof(path), "%s/seg/%s/%08zu", cont_main, kind,
			 i);
		CHECK_EQ(raw_req("PUT", path, NULL, data + off, seg_sizes[i],
				 &none),
			 201);
		swift_md5_hex(data + off, seg_sizes[i], md5);
		memcpy(md5s + 32 * i, md5, 33);
		used += (size_t)snprintf(slo + used, slolen - used,
					 "%s{\"path\":\"/%s/seg/%s/%08zu\","
					 "\"etag\":\"%s\",\"size_bytes\":%zu}",
					 i ? "," : "", cont_main, kind, i, md5,
					 seg_sizes[i]);
		off += seg_sizes[i];
	}
	snprintf(slo + used, slolen - used, "]");
	swift_md5_hex(md5s, strlen(md5s), etag);
	bfs_buf_release(&none);
}

/* HEAD of a large object: its kind, the whole size, Swift's ETag. */
static void check_info(struct bfs_backend *be, const char *name, int layout,
		       const char *etag)
{
	struct bfs_object_info info;

	CHECK_EQ(bfs_backend_info(be, name, &info), 0);
	CHECK_EQ(info.layout, layout);
	CHECK_EQ(info.size, LOBIG);
	CHECK(!strcmp(info.etag, etag));
	if (strcmp(info.etag, etag))
		fprintf(stderr, "  %s: etag %s, want %s\n", name, info.etag,
			etag);
	CHECK(!info.datastore[0]);
}

static void check_large(struct bfs_backend *be, const char *name,
			const uint8_t *data)
{
	static const uint64_t ranges[][2] = {
		{0, 0},	   {990, 20}, {2490, 20},   {999, 1502}, {3190, 100},
		{3200, 5}, {0, 3200}, {1000, 1500}, {2499, 0},	 {1, 3198},
	};
	struct bfs_buf b;
	uint64_t size = 0, off, len, want;
	size_t i;

	bfs_buf_init(&b, MIB);
	CHECK_EQ(bfs_backend_stat(be, name, &size), 0);
	CHECK_EQ(size, LOBIG);
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		off = ranges[i][0];
		len = ranges[i][1];
		want = off >= LOBIG ? 0 : LOBIG - off;
		if (len && len < want)
			want = len;
		CHECK_EQ(get_all(be, name, off, len, &b), 0);
		CHECK_EQ(b.len, want);
		CHECK(b.len == want && !memcmp(b.data, data + off, want));
	}
	bfs_buf_release(&b);
}

static int large_cb(const char *name, uint64_t size, int is_prefix, void *arg)
{
	uint64_t *sizes = arg;

	if (!strcmp(name, "big/dlo"))
		sizes[0] = size;
	if (!strcmp(name, "big/slo"))
		sizes[1] = size;
	return 0;
}

static void test_large_objects(void)
{
	struct bfs_backend *be = open_main();
	uint8_t data[LOBIG];
	char slo[2048], path[256], hdr[256], dlo_etag[33], slo_etag[33];
	uint64_t listed[2] = {99, 99};
	struct bfs_buf none;

	if (!be)
		return;
	bfs_buf_init(&none, 4096);
	fill_random(data, sizeof(data), 3200);
	put_segments("dlo", data, slo, sizeof(slo), dlo_etag);
	snprintf(path, sizeof(path), "%s/big/dlo", cont_main);
	snprintf(hdr, sizeof(hdr), "X-Object-Manifest: %s/seg/dlo/", cont_main);
	CHECK_EQ(raw_req("PUT", path, hdr, "", 0, &none), 201);
	put_segments("slo", data, slo, sizeof(slo), slo_etag);
	snprintf(path, sizeof(path), "%s/big/slo?multipart-manifest=put",
		 cont_main);
	CHECK_EQ(raw_req("PUT", path, NULL, slo, strlen(slo), &none), 201);
	check_large(be, "big/dlo", data);
	check_large(be, "big/slo", data);
	check_info(be, "big/dlo", BFS_LAYOUT_DLO, dlo_etag);
	check_info(be, "big/slo", BFS_LAYOUT_SLO, slo_etag);
	/* as Swift lists them: a DLO with 0 bytes, an SLO with its size */
	CHECK_EQ(bfs_backend_list(be, "big/", 0, large_cb, listed), 0);
	CHECK_EQ(listed[0], 0);
	CHECK_EQ(listed[1], LOBIG);
	bfs_buf_release(&none);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* Configuration and authentication failures */

static void test_open_errors(void)
{
	char err[512], bad[] = "/tmp/bfs-swift-bad-XXXXXX", big[300];
	int fd = mkstemp(bad);
	double t0;

	CHECK(fd >= 0);
	close(fd);
	/* a wrong key: 401, said in one line naming the user */
	CHECK_EQ(write_secret(bad, "wrong-key", 0600), 0);
	open_fails(conf_set(conf_for(cont_main), "key_file", json_string(bad)),
		   -EACCES, err, sizeof(err));
	CHECK(strstr(err, "401") && strstr(err, st_user));
	CHECK(!strstr(err, "wrong-key"));
	open_fails(conf_set(conf_for(cont_main), "user",
			    json_string("test:nobody")),
		   -EACCES, err, sizeof(err));
	/* a secret file others can read: refused like the repository key */
	CHECK_EQ(write_secret(bad, st_key, 0640), 0);
	open_fails(conf_set(conf_for(cont_main), "key_file", json_string(bad)),
		   -EPERM, err, sizeof(err));
	CHECK(strstr(err, bad) && strstr(err, "0640"));
	unlink(bad);
	open_fails(conf_set(conf_for(cont_main), "key_file", json_string(bad)),
		   -ENOENT, err, sizeof(err));
	CHECK(strstr(err, bad) != NULL);
	/* container names Swift cannot take */
	open_fails(
		conf_set(conf_for(cont_main), "container", json_string("a/b")),
		-EINVAL, err, sizeof(err));
	CHECK(strstr(err, "a/b") != NULL);
	memset(big, 'c', sizeof(big));
	big[sizeof(big) - 1] = 0;
	open_fails(conf_set(conf_for(cont_main), "container", json_string(big)),
		   -EINVAL, err, sizeof(err));
	open_fails(conf_set(conf_for(cont_main), "container",
			    json_string("tab\there")),
		   -EINVAL, err, sizeof(err));
	/* settings */
	open_fails(conf_set(conf_for(cont_main), "colour", json_string("red")),
		   -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "\"colour\"") != NULL);
	open_fails(conf_set(conf_for(cont_main), "key", json_string("testing")),
		   -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "inline") && !strstr(err, "testing"));
	open_fails(conf_set(conf_for(cont_main), "project", json_string("p")),
		   -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "/v3") != NULL);
	open_fails(conf_set(conf_for(cont_main), "timeout", json_string("30")),
		   -EINVAL, err, sizeof(err));
	open_fails(
		conf_set(conf_for(cont_main), "connections", json_integer(0)),
		-EINVAL, err, sizeof(err));
	open_fails(conf_set(conf_for(cont_main), "interface",
			    json_string("private")),
		   -EINVAL, err, sizeof(err));
	open_fails(
		conf_set(conf_for(cont_main), "insecure", json_string("yes")),
		-EINVAL, err, sizeof(err));
	/* an auth URL nobody answers: retried until the deadline, no longer */
	t0 = now_s();
	open_fails(
		conf_set(conf_set(conf_for(cont_main), "auth_url",
				  json_string("http://127.0.0.1:1/auth/v1.0")),
			 "deadline", json_real(1.5)),
		-EIO, err, sizeof(err));
	CHECK(now_s() - t0 < 3.0);
	CHECK(strstr(err, "127.0.0.1") != NULL);
}

/* The environment, as the swift CLI reads it. */
static void test_environment(void)
{
	struct bfs_backend *be;
	char err[512];
	double t0;

	be = open_conf(json_pack("{s:s,s:s}", "type", "swift", "container",
				 cont_main));
	if (be)
		CHECK_EQ(bfs_backend_put(be, "env/x", "x", 1, 0), 0);
	bfs_backend_close(be);
	/* "insecure" is accepted (and logs a warning) */
	be = open_conf(conf_set(conf_for(cont_main), "insecure", json_true()));
	bfs_backend_close(be);
	unsetenv("ST_AUTH");
	open_fails(
		json_pack("{s:s,s:s}", "type", "swift", "container", cont_main),
		-EINVAL, err, sizeof(err));
	CHECK(strstr(err, "ST_AUTH") && strstr(err, "OS_AUTH_URL"));
	/* a preset token and storage URL nobody answers */
	setenv("OS_STORAGE_URL", "http://127.0.0.1:1/v1/AUTH_test", 1);
	setenv("OS_AUTH_TOKEN", "AUTH_tk0123", 1);
	t0 = now_s();
	open_fails(json_pack("{s:s,s:s,s:f}", "type", "swift", "container",
			     cont_main, "deadline", 1.0),
		   -EIO, err, sizeof(err));
	CHECK(now_s() - t0 < 2.5);
	CHECK(!strstr(err, "AUTH_tk0123"));
	unsetenv("OS_STORAGE_URL");
	unsetenv("OS_AUTH_TOKEN");
	setenv("ST_AUTH", st_auth, 1);
}

/* ------------------------------------------------------------------ */
/* Tokens */

static void stat_one(int i, void *arg)
{
	uint64_t size = 0;

	CHECK_EQ(bfs_backend_stat(arg, "tok/a", &size), 0);
	CHECK_EQ(size, 3);
}

static void test_token_renewal(void)
{
	struct bfs_backend *be = open_main();
	struct bfs_buf b;
	unsigned n;

	if (!be)
		return;
	bfs_buf_init(&b, 1024);
	CHECK_EQ(bfs_backend_put(be, "tok/a", "abc", 3, 0), 0);
	/* a revoked token: one 401, one new token, the read succeeds */
	n = bfs_swift_test_auth_count(be);
	bfs_swift_test_set_token(be, "AUTH_tk00000000000000000000000000000000",
				 0);
	CHECK_EQ(get_all(be, "tok/a", 0, 0, &b), 0);
	CHECK(b.len == 3 && !memcmp(b.data, "abc", 3));
	CHECK_EQ(bfs_swift_test_auth_count(be), n + 1);
	/* sixteen threads refused at once authenticate once */
	n = bfs_swift_test_auth_count(be);
	bfs_swift_test_set_token(be, "AUTH_tk11111111111111111111111111111111",
				 0);
	parallel(16, 16, stat_one, be);
	CHECK_EQ(bfs_swift_test_auth_count(be), n + 1);
	/* a token about to expire is renewed before it is used */
	n = bfs_swift_test_auth_count(be);
	bfs_swift_test_set_token(be, NULL, 2);
	CHECK_EQ(get_all(be, "tok/a", 0, 0, &b), 0);
	CHECK_EQ(bfs_swift_test_auth_count(be), n);
	usleep(1900 * 1000);
	CHECK_EQ(get_all(be, "tok/a", 0, 0, &b), 0);
	CHECK_EQ(bfs_swift_test_auth_count(be), n + 1);
	bfs_buf_release(&b);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* Many threads on few connections */

static void busy_one(int i, void *arg)
{
	struct bfs_backend *be = arg;
	uint8_t data[65536];
	struct bfs_buf b;
	uint64_t size = 0;
	char name[64];

	bfs_buf_init(&b, MIB);
	fill_random(data, sizeof(data), (uint64_t)i);
	snprintf(name, sizeof(name), "busy/%03d", i);
	CHECK_EQ(bfs_backend_put(be, name, data, sizeof(data), 0), 0);
	CHECK_EQ(bfs_backend_stat(be, name, &size), 0);
	CHECK_EQ(size, sizeof(data));
	CHECK_EQ(get_all(be, name, 1000, 2000, &b), 0);
	CHECK(b.len == 2000 && !memcmp(b.data, data + 1000, 2000));
	CHECK_EQ(get_all(be, name, 0, 0, &b), 0);
	CHECK(b.len == sizeof(data) && !memcmp(b.data, data, b.len));
	CHECK_EQ(bfs_backend_remove(be, name), 0);
	bfs_buf_release(&b);
}

static void test_concurrency(void)
{
	json_t *conf = conf_for(cont_main);
	struct bfs_backend *be;

	json_object_set_new(conf, "connections", json_integer(2));
	be = open_conf(conf);
	if (!be)
		return;
	parallel(24, 96, busy_one, be);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* The real repository on Swift */

static const uint8_t master[BFS_KEY_LEN] = {
	9,  8,	7,  6,	5,  4,	3,  2,	1,  10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

static struct bfs_manifest *make_manifest(const char *ts,
					  const uint8_t (*ids)[BFS_ID_LEN],
					  const uint32_t *sizes, size_t n)
{
	struct bfs_manifest *m = bfs_manifest_new();
	size_t i;

	m->backup_id = strdup("00112233445566778899aabbccddeeff");
	m->instance = strdup("pg1");
	m->timestamp = strdup(ts);
	bfs_timestamp_parse(ts, &m->created);
	m->datastore = strdup("postgresql");
	m->datastore_version = strdup("15");
	m->format = strdup("pg_basebackup");
	m->codec = strdup("zstd");
	m->label = strdup("nightly");
	for (i = 0; i < n; i++)
		CHECK_EQ(bfs_manifest_add_chunk(m, ids[i], sizes[i]), 0);
	return m;
}

static int name_count(const char *name, void *arg)
{
	int *n = arg;

	(*n)++;
	return 0;
}

static int backup_count(const char *ts, uint64_t size, void *arg)
{
	(void)ts, (void)size;
	return name_count(NULL, arg);
}

static void repo_chunks(struct bfs_repo *repo, uint8_t ids[3][BFS_ID_LEN],
			uint8_t *data, const uint32_t *sizes)
{
	uint64_t stored;
	struct bfs_buf b;
	size_t i, off = 0;

	bfs_buf_init(&b, 8 * MIB);
	for (i = 0; i < 3; i++, off += sizes[i - 1]) {
		CHECK_EQ(bfs_repo_chunk_put(repo, data + off, sizes[i],
					    BFS_CODEC_ZSTD, 3, ids[i], &stored),
			 0);
		CHECK(stored > 0);
		/* the same again: deduplicated, nothing stored */
		CHECK_EQ(bfs_repo_chunk_put(repo, data + off, sizes[i],
					    BFS_CODEC_ZSTD, 3, ids[i], &stored),
			 0);
		CHECK_EQ(stored, 0);
		bfs_buf_reset(&b);
		CHECK_EQ(bfs_repo_chunk_get(repo, ids[i], sizes[i], &b), 0);
		CHECK(b.len == sizes[i] && !memcmp(b.data, data + off, b.len));
	}
	bfs_buf_release(&b);
}

static void repo_manifests(struct bfs_repo *repo, uint8_t ids[3][BFS_ID_LEN],
			   const uint32_t *sizes)
{
	static const char *ts1 = "2026-11-21T03:00:00Z";
	static const char *ts2 = "2026-11-22T03:00:00Z";
	struct bfs_manifest *m, *got = NULL;
	int n = 0;

	m = make_manifest(ts1, (const uint8_t(*)[BFS_ID_LEN])ids, sizes, 3);
	CHECK_EQ(bfs_repo_manifest_put(repo, m), 0);
	CHECK_EQ(bfs_repo_manifest_put(repo, m), -EEXIST);
	bfs_manifest_free(m);
	m = make_manifest(ts2, (const uint8_t(*)[BFS_ID_LEN])ids, sizes, 2);
	CHECK_EQ(bfs_repo_manifest_put(repo, m), 0);
	bfs_manifest_free(m);
	CHECK_EQ(bfs_repo_manifest_get(repo, "pg1", ts1, BFS_SIZE_UNKNOWN, &got), 0);
	if (got) {
		CHECK_EQ(got->nchunks, 3);
		CHECK_EQ(got->size, sizes[0] + sizes[1] + sizes[2]);
		CHECK(!strcmp(got->datastore, "postgresql"));
		CHECK(!memcmp(got->chunks[2].id, ids[2], BFS_ID_LEN));
		bfs_manifest_free(got);
	}
	CHECK_EQ(bfs_repo_list_instances(repo, name_count, &n), 0);
	CHECK_EQ(n, 1);
	n = 0;
	CHECK_EQ(bfs_repo_list_backups(repo, "pg1", backup_count, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(bfs_repo_manifest_delete(repo, "pg1", ts2), 0);
	n = 0;
	CHECK_EQ(bfs_repo_list_backups(repo, "pg1", backup_count, &n), 0);
	CHECK_EQ(n, 1);
}

static void test_repo_end_to_end(void)
{
	static const uint32_t sizes[3] = {MIB, 100000, 3000};
	struct bfs_backend *be = open_conf(conf_for(new_container()));
	struct bfs_repo *repo = NULL, *again = NULL;
	uint8_t ids[3][BFS_ID_LEN], wrong[BFS_KEY_LEN];
	struct bfs_repo_lock *lock = NULL;
	struct bfs_gc_stats gc = {0};
	uint8_t *data;
	char err[256];

	if (!be)
		return;
	data = malloc(MIB + 103000);
	fill_random(data, MIB + 103000, 99);
	CHECK_EQ(bfs_repo_init(be, master), 0);
	CHECK_EQ(bfs_repo_init(be, master), -EEXIST);
	CHECK_EQ(bfs_repo_open(be, master, &repo, err, sizeof(err)), 0);
	if (!repo)
		goto out_close;
	CHECK_EQ(bfs_repo_lock_writer(repo, &lock), 0);
	repo_chunks(repo, ids, data, sizes);
	repo_manifests(repo, ids, sizes);
	bfs_repo_unlock(lock);
	/* ids[2] is still referenced by the first backup: nothing to do */
	CHECK_EQ(bfs_repo_gc(repo, &gc), 0);
	CHECK_EQ(gc.chunks_total, 3);
	CHECK_EQ(gc.chunks_removed, 0);
	memcpy(wrong, master, sizeof(wrong));
	wrong[0] ^= 1;
	CHECK_EQ(bfs_repo_open(be, wrong, &again, err, sizeof(err)),
		 -EKEYREJECTED);
	bfs_repo_close(repo);
out_close:
	free(data);
	bfs_backend_close(be);
}

/* ------------------------------------------------------------------ */
/* Clean-up: every object of every container of this run, then them. */

struct rm_list {
	char **names;
	int n, cap;
};

static int rm_collect(const char *name, uint64_t size, int is_prefix, void *arg)
{
	struct rm_list *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->names = realloc(l->names, (size_t)l->cap * sizeof(char *));
	}
	l->names[l->n++] = strdup(name);
	return 0;
}

struct rm_ctx {
	struct bfs_backend *be;
	struct rm_list *l;
};

static void rm_one(int i, void *arg)
{
	struct rm_ctx *c = arg;

	bfs_backend_remove(c->be, c->l->names[i]);
	free(c->l->names[i]);
}

static void cleanup(void)
{
	struct rm_list l = {0};
	struct rm_ctx ctx;
	struct bfs_backend *be;
	char err[512];
	json_t *conf;
	int i, ret;

	for (i = 0; i < ncontainers; i++) {
		be = NULL;
		conf = conf_for(containers[i]);
		ret = bfs_backend_open(conf, &be, err, sizeof(err));
		json_decref(conf);
		if (ret)
			continue;
		l.n = 0;
		bfs_backend_list(be, "", 0, rm_collect, &l);
		ctx.be = be;
		ctx.l = &l;
		parallel(16, l.n, rm_one, &ctx);
		bfs_backend_close(be);
		if (raw_req("DELETE", containers[i], NULL, NULL, 0, NULL) !=
		    204)
			fprintf(stderr, "cannot delete container %s\n",
				containers[i]);
	}
	free(l.names);
}

/* ------------------------------------------------------------------ */
/* Tool mode for the pytest suite */

static int tool_fail(const char *what, int ret, const char *err)
{
	fprintf(stderr, "test_swift: %s: %d (%s)%s%s\n", what, ret,
		strerror(-ret), err && *err ? ": " : "", err ? err : "");
	return 1;
}

static int tool_list_cb(const char *name, uint64_t size, int is_prefix,
			void *arg)
{
	printf("%llu\t%d\t%s\n", (unsigned long long)size, is_prefix, name);
	return 0;
}

static int tool_read_stdin(struct bfs_buf *b)
{
	char chunk[65536];
	size_t n;
	int ret = 0;

	while (!ret && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		ret = bfs_buf_append(b, chunk, n);
	return ret;
}

static int tool_int(const char *s)
{
	return (int)strtol(s, NULL, 10);
}

static int tool_stat_loop(struct bfs_backend *be, int n, int ms,
			  const char *name)
{
	uint64_t size;
	int i, ret = 0;

	for (i = 0; !ret && i < n; i++) {
		if (i)
			usleep((useconds_t)ms * 1000);
		ret = bfs_backend_stat(be, name, &size);
	}
	if (!ret)
		printf("%llu\n", (unsigned long long)size);
	return ret;
}

static int tool_op(struct bfs_backend *be, int argc, char **argv)
{
	const char *op = argv[0], *name = argc > 1 ? argv[1] : "";
	struct bfs_buf b;
	uint64_t size;
	int ret;

	bfs_buf_init(&b, 256 * MIB);
	if (!strcmp(op, "open")) {
		ret = 0;
		printf("ok\n");
	} else if (!strcmp(op, "put")) {
		ret = tool_read_stdin(&b);
		if (!ret)
			ret = bfs_backend_put(be, name, b.data, b.len, 0);
	} else if (!strcmp(op, "get")) {
		ret = bfs_backend_get(
			be, name, argc > 3 ? strtoull(argv[2], NULL, 10) : 0,
			argc > 3 ? strtoull(argv[3], NULL, 10) : 0, &b);
		if (!ret)
			fwrite(b.data, 1, b.len, stdout);
	} else if (!strcmp(op, "get-sealed")) {
		ret = bfs_backend_get_sealed(be, name, &b);
		if (!ret)
			fwrite(b.data, 1, b.len, stdout);
	} else if (!strcmp(op, "stat")) {
		ret = bfs_backend_stat(be, name, &size);
		if (!ret)
			printf("%llu\n", (unsigned long long)size);
	} else if (!strcmp(op, "stat-loop") && argc > 3) {
		ret = tool_stat_loop(be, tool_int(argv[1]), tool_int(argv[2]),
				     argv[3]);
	} else if (!strcmp(op, "rm")) {
		ret = bfs_backend_remove(be, name);
	} else if (!strcmp(op, "list")) {
		ret = bfs_backend_list(be, name,
				       argc > 2 && argv[2][0] == '/' ? '/' : 0,
				       tool_list_cb, NULL);
	} else {
		fprintf(stderr, "test_swift: unknown command \"%s\"\n", op);
		ret = -EINVAL;
	}
	bfs_buf_release(&b);
	return ret ? tool_fail(op, ret, NULL) : 0;
}

static int tool_main(int argc, char **argv)
{
	struct bfs_backend *be = NULL;
	json_error_t jerr;
	char err[512] = "";
	json_t *conf;
	int ret;

	if (argc < 4 || strcmp(argv[1], "--config")) {
		fprintf(stderr, "usage: test_swift [--config FILE CMD ARGS]\n");
		return 2;
	}
	conf = json_load_file(argv[2], 0, &jerr);
	if (!conf) {
		fprintf(stderr, "test_swift: %s: %s\n", argv[2], jerr.text);
		return 2;
	}
	ret = bfs_backend_open(conf, &be, err, sizeof(err));
	json_decref(conf);
	if (ret)
		return tool_fail("open", ret, err);
	ret = tool_op(be, argc - 3, argv + 3);
	bfs_backend_close(be);
	return ret;
}

/* ------------------------------------------------------------------ */

static int setup_env(void)
{
	const char *a = getenv("ST_AUTH"), *u = getenv("ST_USER"),
		   *k = getenv("ST_KEY");
	int fd;

	if (!a || !u || !k) {
		fprintf(stderr, "test_swift needs ST_AUTH, ST_USER and ST_KEY "
				"(tools/swift-server.sh start; export "
				"$(tools/swift-server.sh env))\n");
		return -1;
	}
	snprintf(st_auth, sizeof(st_auth), "%s", a);
	snprintf(st_user, sizeof(st_user), "%s", u);
	snprintf(st_key, sizeof(st_key), "%s", k);
	fd = mkstemp(keyfile);
	if (fd < 0)
		return -1;
	close(fd);
	if (write_secret(keyfile, st_key, 0600) || raw_auth()) {
		fprintf(stderr, "test_swift: cannot authenticate at %s\n",
			st_auth);
		return -1;
	}
	snprintf(cont_main, sizeof(cont_main), "%s", new_container());
	return 0;
}

int main(int argc, char **argv)
{
	const char *lvl = getenv("BFS_TEST_LOG");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	bfs_log_set_level(lvl && !strcmp(lvl, "debug") ? BFS_LOG_DEBUG
						       : BFS_LOG_INFO);
	if (argc > 1)
		return tool_main(argc, argv);
	if (setup_env())
		return 1;
	RUN(test_open_creates_container);
	RUN(test_open_no_create);
	RUN(test_info_plain);
	RUN(test_no_space_op);
	RUN(test_roundtrip_sizes);
	RUN(test_get_appends);
	RUN(test_ranges);
	RUN(test_excl);
	RUN(test_excl_race);
	RUN(test_list_many);
	RUN(test_names);
	RUN(test_large_objects);
	RUN(test_open_errors);
	RUN(test_environment);
	RUN(test_token_renewal);
	RUN(test_concurrency);
	RUN(test_repo_end_to_end);
	cleanup();
	unlink(keyfile);
	curl_global_cleanup();
	return check_summary();
}
