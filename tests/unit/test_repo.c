// SPDX-License-Identifier: Apache-2.0
/* The native repository on a local backend in a temporary directory. */
#include "check.h"
#include "codec.h"
#include "fixture.h"
#include "repo.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1u << 20)

/* Test fixture: a backend and an open repository. */
struct fx {
	struct bfs_backend *be;
	struct bfs_repo *repo;
};

static void setup(struct fx *f)
{
	f->be = fx_backend("repo", NULL);
	f->repo = fx_repo(f->be);
}

static void teardown(struct fx *f)
{
	bfs_repo_close(f->repo);
	bfs_backend_close(f->be);
	fx_rm_tmpdir();
}

static void fill_text(uint8_t *p, size_t len)
{
	static const char line[] = "INSERT INTO t VALUES (42, 'backupfs');\n";
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)line[i % (sizeof(line) - 1)];
}

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void chunk_path(char *out, size_t len, const uint8_t id[BFS_ID_LEN])
{
	char hex[2 * BFS_ID_LEN + 1];

	bfs_hex(id, BFS_ID_LEN, hex);
	snprintf(out, len, "%s/chunks/%.2s/%s", tmpdir, hex, hex);
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long)st.st_size;
}

static void flip(const char *path, long off)
{
	uint8_t c;
	int fd = open(path, O_RDWR);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &c, 1, off), 1);
	c ^= 0x01;
	CHECK_EQ(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* chunk_get into a fresh buffer; compares with want when it succeeds */
static int get_chunk(struct fx *f, const uint8_t id[BFS_ID_LEN], uint32_t size,
		     const uint8_t *want)
{
	struct bfs_buf b;
	int ret;

	bfs_buf_init(&b, 64 * MIB);
	ret = bfs_repo_chunk_get(f->repo, id, size, &b);
	if (!ret) {
		CHECK_EQ(b.len, size);
		if (want)
			CHECK(!memcmp(b.data, want, size));
	}
	bfs_buf_release(&b);
	return ret;
}

static void test_init_open(void)
{
	struct bfs_repo *repo = NULL;
	const struct bfs_chunker_params *p;
	struct bfs_chunker_params want;
	uint8_t wrong[BFS_KEY_LEN];
	struct fx f;
	char err[256];
	size_t i;

	setup(&f);
	CHECK_EQ(bfs_repo_init(f.be, master), -EEXIST);
	CHECK_EQ(strlen(bfs_repo_id(f.repo)), 32);
	for (i = 0; i < 32; i++)
		CHECK(strchr("0123456789abcdef", bfs_repo_id(f.repo)[i]));
	CHECK(bfs_repo_backend(f.repo) == f.be);
	p = bfs_chunker_params(bfs_repo_chunker(f.repo));
	CHECK(p->min == BFS_CHUNK_MIN && p->avg == BFS_CHUNK_AVG &&
	      p->max == BFS_CHUNK_MAX);
	CHECK(bfs_repo_keys(f.repo) != NULL);
	teardown(&f);

	/* the chunker a repository was made with is the one it opens with */
	CHECK_EQ(bfs_chunker_params_for(4u << 20, &want), 0);
	f.be = fx_backend("repo", NULL);
	CHECK_EQ(bfs_repo_init_chunked(f.be, master, &want), 0);
	CHECK_EQ(bfs_repo_open(f.be, master, &f.repo, err, sizeof(err)), 0);
	p = bfs_chunker_params(bfs_repo_chunker(f.repo));
	CHECK(p->min == want.min && p->avg == want.avg && p->max == want.max);

	memcpy(wrong, master, sizeof(wrong));
	wrong[31] ^= 1;
	err[0] = 0;
	CHECK_EQ(bfs_repo_open(f.be, wrong, &repo, err, sizeof(err)),
		 -EKEYREJECTED);
	CHECK(strstr(err, "wrong key") != NULL);
	CHECK(strstr(err, bfs_repo_id(f.repo)) != NULL);
	CHECK(repo == NULL);
	/* the right key again, a second handle */
	CHECK_EQ(bfs_repo_open(f.be, master, &repo, err, sizeof(err)), 0);
	CHECK(!strcmp(bfs_repo_id(repo), bfs_repo_id(f.repo)));
	bfs_repo_close(repo);
	teardown(&f);
}

static void test_open_bad_config(void)
{
	struct bfs_repo *repo = NULL;
	struct bfs_backend *be = fx_backend("repo", NULL);
	const char *v2 = "{\"backupfs_repository\":2}";
	char err[256];

	CHECK_EQ(bfs_repo_open(be, master, &repo, err, sizeof(err)), -ENOENT);
	CHECK_EQ(bfs_backend_put(be, "config", "garbage", 7, 0), 0);
	CHECK_EQ(bfs_repo_open(be, master, &repo, err, sizeof(err)), -EBADMSG);
	CHECK_EQ(bfs_backend_put(be, "config", v2, strlen(v2), 0), 0);
	CHECK_EQ(bfs_repo_open(be, master, &repo, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "format 2") != NULL);
	CHECK(repo == NULL);
	bfs_backend_close(be);
	fx_rm_tmpdir();
}

static void round_trip(struct fx *f, const uint8_t *data, uint32_t len,
		       int codec, int compressible)
{
	uint8_t id[BFS_ID_LEN], id2[BFS_ID_LEN];
	uint64_t stored = 99;

	CHECK_EQ(bfs_repo_chunk_put(f->repo, data, len, codec,
				    bfs_codec_default_level(codec), id,
				    &stored),
		 0);
	CHECK(stored > 0);
	if (compressible && codec != BFS_CODEC_NONE && len >= 4096)
		CHECK(stored < len / 4);
	else
		CHECK_EQ(stored, len + BFS_CHUNK_HDR_LEN + BFS_TAG_LEN);
	CHECK_EQ(get_chunk(f, id, len, data), 0);
	/* dedup: the same plaintext is stored once */
	CHECK_EQ(bfs_repo_chunk_put(f->repo, data, len, codec,
				    bfs_codec_default_level(codec), id2,
				    &stored),
		 0);
	CHECK_EQ(stored, 0);
	CHECK(!memcmp(id, id2, BFS_ID_LEN));
	/* the size is part of what is checked */
	CHECK_EQ(get_chunk(f, id, len + 1, NULL), -EIO);
}

static void test_chunk_round_trip(void)
{
	static const uint32_t sizes[] = {1, 4096, MIB};
	static const int codecs[] = {BFS_CODEC_ZSTD, BFS_CODEC_ZLIB,
				     BFS_CODEC_NONE};
	uint8_t *data = malloc(MIB);
	size_t i, j;
	struct fx f;

	setup(&f);
	for (j = 0; j < 3; j++) {
		/* each codec gets its own data: no dedup across codecs */
		for (i = 0; i < 3; i++) {
			fill_random(data, sizes[i], 100 * j + i);
			round_trip(&f, data, sizes[i], codecs[j], 0);
		}
		for (i = 0; i < 3; i++) {
			fill_text(data, sizes[i]);
			data[0] = (uint8_t)(j + 'a');
			round_trip(&f, data, sizes[i], codecs[j], 1);
		}
	}
	free(data);
	teardown(&f);
}

static void test_chunk_bad_args(void)
{
	uint8_t id[BFS_ID_LEN] = {0}, data[16] = {0};
	uint64_t stored;
	struct fx f;

	setup(&f);
	CHECK_EQ(bfs_repo_chunk_put(f.repo, data, 0, BFS_CODEC_ZSTD, 3, id,
				    &stored),
		 -EINVAL);
	CHECK_EQ(bfs_repo_chunk_put(f.repo, data, 16, 77, 3, id, &stored),
		 -EINVAL);
	CHECK_EQ(get_chunk(&f, id, 0, NULL), -EINVAL);
	CHECK_EQ(get_chunk(&f, id, 16, NULL), -ENOENT);
	teardown(&f);
}

/* Each damaged byte of a stored chunk is caught, and repaired again. */
static void tamper_each(struct fx *f, const uint8_t id[BFS_ID_LEN],
			const uint8_t *data, uint32_t len)
{
	char path[256];
	long size, offs[11];
	size_t i;

	chunk_path(path, sizeof(path), id);
	size = file_size(path);
	CHECK(size > BFS_CHUNK_HDR_LEN + BFS_TAG_LEN);
	/* header: magic, version, codec, reserved, size, nonce */
	offs[0] = 0;
	offs[1] = 4;
	offs[2] = 5;
	offs[3] = 6;
	offs[4] = 8;
	offs[5] = 11;
	offs[6] = 12;
	offs[7] = BFS_CHUNK_HDR_LEN; /* ciphertext */
	offs[8] = (size - BFS_TAG_LEN) / 2 + 12;
	offs[9] = size - BFS_TAG_LEN; /* tag */
	offs[10] = size - 1;
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		flip(path, offs[i]);
		if (get_chunk(f, id, len, data) != -EIO)
			fprintf(stderr, "flipped byte %ld not caught\n",
				offs[i]);
		CHECK_EQ(get_chunk(f, id, len, data), -EIO);
		flip(path, offs[i]);
		CHECK_EQ(get_chunk(f, id, len, data), 0);
	}
}

static void test_chunk_tampered(void)
{
	uint8_t *data = malloc(MIB), id[BFS_ID_LEN];
	uint64_t stored;
	struct fx f;

	setup(&f);
	fill_random(data, 4096, 7);
	CHECK_EQ(bfs_repo_chunk_put(f.repo, data, 4096, BFS_CODEC_ZSTD, 3, id,
				    &stored),
		 0);
	tamper_each(&f, id, data, 4096); /* stored raw */
	fill_text(data, MIB);
	CHECK_EQ(bfs_repo_chunk_put(f.repo, data, MIB, BFS_CODEC_ZSTD, 3, id,
				    &stored),
		 0);
	tamper_each(&f, id, data, MIB); /* compressed */
	CHECK_EQ(bfs_repo_chunk_put(f.repo, data, 100, BFS_CODEC_ZLIB, 6, id,
				    &stored),
		 0);
	tamper_each(&f, id, data, 100);
	free(data);
	teardown(&f);
}

static void test_chunk_renamed(void)
{
	uint8_t a[4096], b[4096], ida[BFS_ID_LEN], idb[BFS_ID_LEN];
	uint8_t fake[BFS_ID_LEN];
	char pa[256], pb[256], pf[256];
	uint64_t stored;
	struct fx f;

	setup(&f);
	fill_random(a, sizeof(a), 1);
	fill_random(b, sizeof(b), 2);
	CHECK_EQ(bfs_repo_chunk_put(f.repo, a, 4096, BFS_CODEC_ZSTD, 3, ida,
				    &stored),
		 0);
	CHECK_EQ(bfs_repo_chunk_put(f.repo, b, 4096, BFS_CODEC_ZSTD, 3, idb,
				    &stored),
		 0);
	chunk_path(pa, sizeof(pa), ida);
	chunk_path(pb, sizeof(pb), idb);
	/* a's object under b's name */
	copy_file(pa, pb);
	CHECK_EQ(get_chunk(&f, idb, 4096, NULL), -EIO);
	/* a's object under a name nobody wrote */
	memset(fake, 0xee, sizeof(fake));
	chunk_path(pf, sizeof(pf), fake);
	CHECK_EQ(bfs_backend_put(f.be, pf + strlen(tmpdir) + 1, "", 0, 0), 0);
	copy_file(pa, pf);
	CHECK_EQ(get_chunk(&f, fake, 4096, NULL), -EIO);
	CHECK_EQ(get_chunk(&f, ida, 4096, a), 0);
	teardown(&f);
}

static void test_chunk_truncated(void)
{
	static const long cuts[] = {0, 1, 23, 39, 40, 100, -1};
	uint8_t data[4096], id[BFS_ID_LEN];
	char path[256];
	uint64_t stored;
	long size;
	size_t i;
	struct fx f;
	int fd;

	setup(&f);
	fill_random(data, sizeof(data), 3);
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		data[0] = (uint8_t)i; /* a new chunk each time */
		CHECK_EQ(bfs_repo_chunk_put(f.repo, data, 4096, BFS_CODEC_ZSTD,
					    3, id, &stored),
			 0);
		chunk_path(path, sizeof(path), id);
		size = file_size(path);
		CHECK_EQ(truncate(path, cuts[i] < 0 ? size + cuts[i] : cuts[i]),
			 0);
		CHECK_EQ(get_chunk(&f, id, 4096, NULL), -EIO);
	}
	/* one byte too many */
	data[0] = 0xff;
	CHECK_EQ(bfs_repo_chunk_put(f.repo, data, 4096, BFS_CODEC_ZSTD, 3, id,
				    &stored),
		 0);
	chunk_path(path, sizeof(path), id);
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK_EQ(write(fd, "x", 1), 1);
	close(fd);
	CHECK_EQ(get_chunk(&f, id, 4096, NULL), -EIO);
	teardown(&f);
}

static struct bfs_manifest *make_manifest(const char *instance, const char *ts,
					  const uint8_t (*ids)[BFS_ID_LEN],
					  size_t n, uint32_t size)
{
	struct bfs_manifest *m = bfs_manifest_new();
	size_t i;

	m->backup_id = strdup("00112233445566778899aabbccddeeff");
	m->instance = strdup(instance);
	m->timestamp = strdup(ts);
	bfs_timestamp_parse(ts, &m->created);
	m->datastore = strdup("files");
	m->datastore_version = strdup("");
	m->format = strdup("tar");
	m->codec = strdup("zstd");
	m->label = strdup("nightly");
	for (i = 0; i < n; i++)
		CHECK_EQ(bfs_manifest_add_chunk(m, ids[i], size), 0);
	return m;
}

static int put_manifest(struct fx *f, const char *instance, const char *ts,
			const uint8_t (*ids)[BFS_ID_LEN], size_t n,
			uint32_t size)
{
	struct bfs_manifest *m = make_manifest(instance, ts, ids, n, size);
	int ret = bfs_repo_manifest_put(f->repo, m);

	bfs_manifest_free(m);
	return ret;
}

#define TS1 "2026-11-21T03:00:00Z"
#define TS2 "2026-11-22T03:00:00Z"

static void test_manifest_round_trip(void)
{
	uint8_t ids[3][BFS_ID_LEN];
	struct bfs_manifest *m, *got = NULL;
	struct fx f;
	char *a, *b;
	size_t la, lb;

	setup(&f);
	memset(ids, 0x5a, sizeof(ids));
	ids[1][0] = 1;
	m = make_manifest("pg1", TS1, (const uint8_t(*)[BFS_ID_LEN])ids, 3,
			  1000);
	CHECK_EQ(bfs_repo_manifest_put(f.repo, m), 0);
	CHECK_EQ(bfs_repo_manifest_put(f.repo, m), -EEXIST);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 0);
	CHECK(got != NULL);
	if (got) {
		CHECK_EQ(bfs_manifest_encode(m, &a, &la), 0);
		CHECK_EQ(bfs_manifest_encode(got, &b, &lb), 0);
		CHECK(la == lb && !memcmp(a, b, la));
		free(a);
		free(b);
		bfs_manifest_free(got);
	}
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS2, BFS_SIZE_UNKNOWN,
				       &got),
		 -ENOENT);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "..", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -EINVAL);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", "yesterday",
				       BFS_SIZE_UNKNOWN, &got),
		 -EINVAL);
	CHECK_EQ(bfs_repo_manifest_delete(f.repo, "pg1", TS1), 0);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -ENOENT);
	CHECK_EQ(bfs_repo_manifest_delete(f.repo, "pg1", TS1), -ENOENT);
	bfs_manifest_free(m);
	teardown(&f);
}

static void test_manifest_tampered(void)
{
	uint8_t ids[1][BFS_ID_LEN] = {{7}};
	struct bfs_manifest *got = NULL;
	char path[256], other[256];
	struct fx f;
	long size;

	setup(&f);
	CHECK_EQ(put_manifest(&f, "pg1", TS1, ids, 1, 10), 0);
	path_of(path, sizeof(path), "manifests/pg1/" TS1 "_10");
	size = file_size(path);
	/* header, nonce, ciphertext and tag */
	flip(path, 0);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	flip(path, 0);
	flip(path, 10);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	flip(path, 10);
	flip(path, 30);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	flip(path, 30);
	flip(path, size - 1);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	flip(path, size - 1);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 0);
	bfs_manifest_free(got);
	got = NULL;

	/* copied to another time, or to another instance: refused */
	CHECK_EQ(put_manifest(&f, "pg2", TS2, ids, 1, 10), 0);
	path_of(other, sizeof(other), "manifests/pg1/" TS2 "_10");
	copy_file(path, other);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS2, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	path_of(other, sizeof(other), "manifests/pg2/" TS1 "_10");
	copy_file(path, other);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg2", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	/* and over an existing one */
	path_of(other, sizeof(other), "manifests/pg2/" TS2 "_10");
	copy_file(path, other);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg2", TS2, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	/* the size in the name is checked against the sealed one */
	CHECK_EQ(bfs_repo_manifest_delete(f.repo, "pg2", TS2), 0);
	path_of(other, sizeof(other), "manifests/pg1/" TS2 "_10");
	unlink(other);
	path_of(other, sizeof(other), "manifests/pg1/" TS1 "_11");
	CHECK(!rename(path, other));
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, BFS_SIZE_UNKNOWN,
				       &got),
		 -EIO);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, 11, &got), -EIO);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "pg1", TS1, 10, &got), -ENOENT);
	CHECK(got == NULL);
	teardown(&f);
}

struct names {
	char text[512];
	int stop_at;
	int calls;
};

static int names_cb(const char *name, void *arg)
{
	struct names *n = arg;
	size_t used = strlen(n->text);

	snprintf(n->text + used, sizeof(n->text) - used, "%s ", name);
	return ++n->calls == n->stop_at ? 7 : 0;
}

static int backups_cb(const char *ts, uint64_t size, void *arg)
{
	struct names *n = arg;
	size_t used = strlen(n->text);

	snprintf(n->text + used, sizeof(n->text) - used, "%s:%llu ", ts,
		 (unsigned long long)size);
	return ++n->calls == n->stop_at ? 7 : 0;
}

static void test_list(void)
{
	uint8_t ids[1][BFS_ID_LEN] = {{7}};
	struct names n;
	struct fx f;

	setup(&f);
	memset(&n, 0, sizeof(n));
	CHECK_EQ(bfs_repo_list_instances(f.repo, names_cb, &n), 0);
	CHECK(!strcmp(n.text, ""));
	CHECK_EQ(put_manifest(&f, "pg1", TS2, ids, 1, 10), 0);
	CHECK_EQ(put_manifest(&f, "pg1", TS1, ids, 1, 10), 0);
	CHECK_EQ(put_manifest(&f, "pg1", "2025-01-01T00:00:00Z", ids, 1, 10),
		 0);
	CHECK_EQ(put_manifest(&f, "pg1-a", TS1, ids, 1, 10), 0);
	CHECK_EQ(put_manifest(&f, "b", TS1, ids, 1, 10), 0);
	/* not backups: ignored */
	CHECK_EQ(bfs_backend_put(f.be, "manifests/pg1/notes", "x", 1, 0), 0);
	CHECK_EQ(bfs_backend_put(f.be, "manifests/pg1/" TS1 "_01", "x", 1, 0),
		 0);
	CHECK_EQ(bfs_backend_put(f.be, "manifests/pg1/sub/" TS1, "x", 1, 0), 0);
	CHECK_EQ(bfs_backend_put(f.be, "manifests/stray", "x", 1, 0), 0);

	memset(&n, 0, sizeof(n));
	CHECK_EQ(bfs_repo_list_instances(f.repo, names_cb, &n), 0);
	CHECK(!strcmp(n.text, "b pg1 pg1-a "));
	memset(&n, 0, sizeof(n));
	CHECK_EQ(bfs_repo_list_backups(f.repo, "pg1", backups_cb, &n), 0);
	CHECK(!strcmp(n.text,
		      "2025-01-01T00:00:00Z:10 " TS1 ":10 " TS2 ":10 "));
	memset(&n, 0, sizeof(n));
	CHECK_EQ(bfs_repo_list_backups(f.repo, "nobody", backups_cb, &n), 0);
	CHECK(!strcmp(n.text, ""));
	CHECK_EQ(bfs_repo_list_backups(f.repo, "../x", backups_cb, &n),
		 -EINVAL);
	/* a non-zero return stops the listing */
	memset(&n, 0, sizeof(n));
	n.stop_at = 2;
	CHECK_EQ(bfs_repo_list_backups(f.repo, "pg1", backups_cb, &n), 7);
	CHECK_EQ(n.calls, 2);
	memset(&n, 0, sizeof(n));
	n.stop_at = 1;
	CHECK_EQ(bfs_repo_list_instances(f.repo, names_cb, &n), 7);
	CHECK_EQ(n.calls, 1);
	teardown(&f);
}

static void test_records(void)
{
	json_t *v = json_pack("{s:s,s:i}", "pattern", "0 3 * * *", "keep", 7);
	json_t *got = NULL;
	char path[256], other[256];
	struct names n;
	struct fx f;

	setup(&f);
	CHECK_EQ(bfs_repo_record_put(f.repo, "schedules", "nightly", v,
				     BFS_PUT_EXCL),
		 0);
	CHECK_EQ(bfs_repo_record_put(f.repo, "schedules", "nightly", v,
				     BFS_PUT_EXCL),
		 -EEXIST);
	CHECK_EQ(bfs_repo_record_get(f.repo, "schedules", "nightly", &got), 0);
	CHECK(json_equal(v, got));
	json_decref(got);
	/* overwrite, and non-object values */
	got = json_string("x");
	CHECK_EQ(bfs_repo_record_put(f.repo, "schedules", "nightly", got, 0),
		 0);
	json_decref(got);
	CHECK_EQ(bfs_repo_record_get(f.repo, "schedules", "nightly", &got), 0);
	CHECK(json_is_string(got));
	json_decref(got);
	CHECK_EQ(bfs_repo_record_put(f.repo, "schedules", "hourly", v, 0), 0);
	CHECK_EQ(bfs_repo_record_put(f.repo, "keys", "a", v, 0), 0);
	memset(&n, 0, sizeof(n));
	CHECK_EQ(bfs_repo_record_list(f.repo, "schedules", names_cb, &n), 0);
	CHECK(!strcmp(n.text, "hourly nightly "));
	CHECK_EQ(bfs_repo_record_get(f.repo, "schedules", "weekly", &got),
		 -ENOENT);
	CHECK_EQ(bfs_repo_record_put(f.repo, "a/b", "x", v, 0), -EINVAL);
	CHECK_EQ(bfs_repo_record_put(f.repo, "k", "..", v, 0), -EINVAL);
	CHECK_EQ(bfs_repo_record_get(f.repo, "k", ".x", &got), -EINVAL);
	/* tampered, and moved to another name */
	path_of(path, sizeof(path), "records/schedules/hourly");
	flip(path, 25);
	CHECK_EQ(bfs_repo_record_get(f.repo, "schedules", "hourly", &got),
		 -EIO);
	flip(path, 25);
	path_of(other, sizeof(other), "records/schedules/weekly");
	copy_file(path, other);
	CHECK_EQ(bfs_repo_record_get(f.repo, "schedules", "weekly", &got),
		 -EIO);
	/* a manifest-sealed object is no record (other magic and key) */
	CHECK_EQ(put_manifest(&f, "pg1", TS1, NULL, 0, 0), 0);
	path_of(path, sizeof(path), "manifests/pg1/" TS1 "_0");
	copy_file(path, other);
	CHECK_EQ(bfs_repo_record_get(f.repo, "schedules", "weekly", &got),
		 -EIO);
	CHECK_EQ(bfs_repo_record_delete(f.repo, "schedules", "hourly"), 0);
	CHECK_EQ(bfs_repo_record_delete(f.repo, "schedules", "hourly"),
		 -ENOENT);
	json_decref(v);
	teardown(&f);
}

static int count_cb(const char *name, uint64_t size, int is_prefix, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int count_locks(struct fx *f)
{
	int n = 0;

	CHECK_EQ(bfs_backend_list(f->be, "locks/", 0, count_cb, &n), 0);
	return n;
}

static void put_lock(struct fx *f, const char *name, long age)
{
	char text[128];

	snprintf(text, sizeof(text),
		 "{\"host\":\"elsewhere\",\"pid\":1,\"time\":%lld}",
		 (long long)time(NULL) - age);
	CHECK_EQ(bfs_backend_put(f->be, name, text, strlen(text), 0), 0);
}

static void test_locks(void)
{
	struct bfs_repo_lock *w1 = NULL, *w2 = NULL, *g = NULL, *x = NULL;
	uint64_t size;
	struct fx f;

	setup(&f);
	/* writers share, and block gc */
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &w1), 0);
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &w2), 0);
	CHECK_EQ(count_locks(&f), 2);
	CHECK_EQ(bfs_repo_lock_gc(f.repo, &g), -EBUSY);
	CHECK(g == NULL);
	CHECK_EQ(count_locks(&f), 2); /* gc removed its own */
	CHECK_EQ(bfs_repo_lock_refresh(w1), 0);
	bfs_repo_unlock(w1);
	CHECK_EQ(bfs_repo_lock_gc(f.repo, &g), -EBUSY);
	bfs_repo_unlock(w2);
	CHECK_EQ(count_locks(&f), 0);

	/* gc excludes writers and other gcs */
	CHECK_EQ(bfs_repo_lock_gc(f.repo, &g), 0);
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &x), -EBUSY);
	CHECK(x == NULL);
	CHECK_EQ(bfs_repo_lock_gc(f.repo, &x), -EBUSY);
	CHECK_EQ(count_locks(&f), 1);
	bfs_repo_unlock(g);
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &w1), 0);
	bfs_repo_unlock(w1);
	bfs_repo_unlock(NULL);

	/* a live lock of another host counts; a stale one is removed */
	put_lock(&f, "locks/gc-0123456789abcdef", 60);
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &w1), -EBUSY);
	CHECK_EQ(count_locks(&f), 1);
	put_lock(&f, "locks/gc-0123456789abcdef", BFS_LOCK_STALE_SECS + 60);
	put_lock(&f, "locks/writer-0123456789abcdef", BFS_LOCK_STALE_SECS + 60);
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &w1), 0);
	CHECK_EQ(bfs_backend_stat(f.be, "locks/gc-0123456789abcdef", &size),
		 -ENOENT);
	bfs_repo_unlock(w1);
	CHECK_EQ(bfs_repo_lock_gc(f.repo, &g), 0);
	CHECK_EQ(bfs_backend_stat(f.be, "locks/writer-0123456789abcdef", &size),
		 -ENOENT);
	bfs_repo_unlock(g);
	/* an unreadable lock counts as held */
	CHECK_EQ(bfs_backend_put(f.be, "locks/writer-bad", "?", 1, 0), 0);
	CHECK_EQ(bfs_repo_lock_gc(f.repo, &g), -EBUSY);
	CHECK_EQ(bfs_backend_remove(f.be, "locks/writer-bad"), 0);
	CHECK_EQ(count_locks(&f), 0);
	teardown(&f);
}

/* Refreshing a lock keeps it from going stale. */
static int lock_name_cb(const char *name, uint64_t size, int is_prefix,
			void *arg)
{
	snprintf(arg, 128, "%s", name);
	return 0;
}

static void test_lock_refresh(void)
{
	struct bfs_repo_lock *w = NULL, *g = NULL;
	char name[128] = "";
	struct fx f;

	setup(&f);
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &w), 0);
	CHECK_EQ(bfs_backend_list(f.be, "locks/", 0, lock_name_cb, name), 0);
	/* make it look dead, then refresh it */
	put_lock(&f, name, BFS_LOCK_STALE_SECS + 60);
	CHECK_EQ(bfs_repo_lock_refresh(w), 0);
	CHECK_EQ(bfs_repo_lock_gc(f.repo, &g), -EBUSY);
	/* removed by another host as stale: the holder must learn it */
	CHECK_EQ(bfs_backend_remove(f.be, name), 0);
	CHECK_EQ(bfs_repo_lock_refresh(w), -ESTALE);
	bfs_repo_unlock(w);
	CHECK_EQ(count_locks(&f), 0);
	teardown(&f);
}

static void put_chunk(struct fx *f, uint64_t seed, uint8_t id[BFS_ID_LEN],
		      uint64_t *stored)
{
	uint8_t data[1000];

	fill_random(data, sizeof(data), seed);
	CHECK_EQ(bfs_repo_chunk_put(f->repo, data, sizeof(data), BFS_CODEC_ZSTD,
				    3, id, stored),
		 0);
}

static void test_gc(void)
{
	uint8_t ids[4][BFS_ID_LEN], ref[2][BFS_ID_LEN];
	struct bfs_repo_lock *w = NULL;
	struct bfs_gc_stats st;
	uint64_t stored[4];
	struct fx f;
	int i;

	setup(&f);
	for (i = 0; i < 4; i++)
		put_chunk(&f, 1000 + i, ids[i], &stored[i]);
	memcpy(ref[0], ids[0], BFS_ID_LEN);
	memcpy(ref[1], ids[1], BFS_ID_LEN);
	CHECK_EQ(put_manifest(&f, "pg1", TS1, (const uint8_t(*)[BFS_ID_LEN])ref,
			      2, 1000),
		 0);
	memcpy(ref[0], ids[1], BFS_ID_LEN);
	CHECK_EQ(put_manifest(&f, "pg2", TS1, (const uint8_t(*)[BFS_ID_LEN])ref,
			      1, 1000),
		 0);

	/* never under a writer */
	CHECK_EQ(bfs_repo_lock_writer(f.repo, &w), 0);
	CHECK_EQ(bfs_repo_gc(f.repo, &st), -EBUSY);
	bfs_repo_unlock(w);
	CHECK_EQ(get_chunk(&f, ids[3], 1000, NULL), 0);

	CHECK_EQ(bfs_repo_gc(f.repo, &st), 0);
	CHECK_EQ(st.manifests, 2);
	CHECK_EQ(st.chunks_total, 4);
	CHECK_EQ(st.chunks_removed, 2);
	CHECK_EQ(st.bytes_removed, stored[2] + stored[3]);
	CHECK_EQ(get_chunk(&f, ids[0], 1000, NULL), 0);
	CHECK_EQ(get_chunk(&f, ids[1], 1000, NULL), 0);
	CHECK_EQ(get_chunk(&f, ids[2], 1000, NULL), -ENOENT);
	CHECK_EQ(get_chunk(&f, ids[3], 1000, NULL), -ENOENT);
	CHECK_EQ(count_locks(&f), 0);

	/* a second run finds nothing to do */
	CHECK_EQ(bfs_repo_gc(f.repo, &st), 0);
	CHECK_EQ(st.chunks_total, 2);
	CHECK_EQ(st.chunks_removed, 0);

	/* deleting a backup frees what only it used */
	CHECK_EQ(bfs_repo_manifest_delete(f.repo, "pg1", TS1), 0);
	CHECK_EQ(bfs_repo_gc(f.repo, &st), 0);
	CHECK_EQ(st.chunks_removed, 1);
	CHECK_EQ(get_chunk(&f, ids[0], 1000, NULL), -ENOENT);
	CHECK_EQ(get_chunk(&f, ids[1], 1000, NULL), 0);
	teardown(&f);
}

/* A manifest that cannot be read stops gc before anything is removed. */
static void test_gc_unreadable_manifest(void)
{
	uint8_t ids[2][BFS_ID_LEN];
	struct bfs_gc_stats st;
	uint64_t stored;
	char path[256];
	struct fx f;

	setup(&f);
	put_chunk(&f, 1, ids[0], &stored);
	put_chunk(&f, 2, ids[1], &stored);
	CHECK_EQ(put_manifest(&f, "pg1", TS1, (const uint8_t(*)[BFS_ID_LEN])ids,
			      1, 1000),
		 0);
	path_of(path, sizeof(path), "manifests/pg1/" TS1 "_1000");
	flip(path, 40);
	CHECK(bfs_repo_gc(f.repo, &st) < 0);
	flip(path, 40);
	CHECK_EQ(get_chunk(&f, ids[1], 1000, NULL), 0);
	/* an object gc does not understand stops it too */
	CHECK_EQ(bfs_backend_put(f.be, "manifests/pg1/other", "x", 1, 0), 0);
	CHECK_EQ(bfs_repo_gc(f.repo, &st), -EBADMSG);
	CHECK_EQ(get_chunk(&f, ids[1], 1000, NULL), 0);
	CHECK_EQ(bfs_backend_remove(f.be, "manifests/pg1/other"), 0);
	CHECK_EQ(bfs_repo_gc(f.repo, &st), 0);
	CHECK_EQ(st.chunks_removed, 1);
	CHECK_EQ(count_locks(&f), 0);
	teardown(&f);
}

/* FUSE threads share one handle. */
struct worker {
	struct fx *f;
	int seed;
	int bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t data[5000], id[BFS_ID_LEN];
	uint64_t stored;
	int i;

	for (i = 0; i < 50; i++) {
		/* half the chunks are shared between threads */
		fill_random(data, sizeof(data),
			    i % 2 ? (uint64_t)i
				  : (uint64_t)(w->seed * 1000 + i));
		if (bfs_repo_chunk_put(w->f->repo, data, sizeof(data),
				       BFS_CODEC_ZSTD, 3, id, &stored) ||
		    get_chunk(w->f, id, sizeof(data), data))
			w->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct worker w[8];
	pthread_t t[8];
	struct fx f;
	int i, bad = 0;

	setup(&f);
	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){.f = &f, .seed = i};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	CHECK_EQ(bad, 0);
	teardown(&f);
}

int main(void)
{
	RUN(test_init_open);
	RUN(test_open_bad_config);
	RUN(test_chunk_round_trip);
	RUN(test_chunk_bad_args);
	RUN(test_chunk_tampered);
	RUN(test_chunk_renamed);
	RUN(test_chunk_truncated);
	RUN(test_manifest_round_trip);
	RUN(test_manifest_tampered);
	RUN(test_list);
	RUN(test_records);
	RUN(test_locks);
	RUN(test_lock_refresh);
	RUN(test_gc);
	RUN(test_gc_unreadable_manifest);
	RUN(test_threads);
	return check_summary();
}
