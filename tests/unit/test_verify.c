// SPDX-License-Identifier: Apache-2.0
/*
 * Verifying native backups (verify.h) on a local repository in a
 * temporary directory: good backups at every fetch parallelism, a chunk
 * tampered with, a chunk missing, many bad chunks, a manifest whose
 * SHA-256 is not its stream's (written here with the key: the one honest
 * way to make one).  Imported Trove backups need Swift: the integration
 * suite covers them.
 */
#include "check.h"
#include "codec.h"
#include "fixture.h"
#include "repo.h"
#include "verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
	struct bfs_backend *be;
	struct bfs_repo *repo;
	struct bfs_verifier *v;
	json_t *conf;
};

static void setup(struct fx *f, unsigned inflight)
{
	f->be = fx_backend("verify", &f->conf);
	f->repo = fx_repo(f->be);
	CHECK_EQ(bfs_verifier_new(f->repo, f->conf, tmpdir, inflight, &f->v),
		 0);
}

static void teardown(struct fx *f)
{
	bfs_verifier_free(f->v);
	bfs_repo_close(f->repo);
	bfs_backend_close(f->be);
	json_decref(f->conf);
	fx_rm_tmpdir();
}

/* A backup of n chunks of the given sizes (seeded by i), stored; the
 * manifest is not: verify takes it as it is. */
static struct bfs_manifest *make_backup(struct fx *f, const uint32_t *sizes,
					size_t n, uint64_t seed)
{
	struct bfs_manifest *m = bfs_manifest_new();
	struct bfs_sha256 *sha = bfs_sha256_new();
	uint8_t id[BFS_ID_LEN], *data;
	uint64_t stored;

	m->format = strdup("tar");
	for (size_t i = 0; i < n; i++) {
		data = malloc(sizes[i]);
		fill_random(data, sizes[i], seed + i);
		/* zstd on random data: stored raw; every third compressible */
		if (i % 3 == 2)
			memset(data, 'x', sizes[i] / 2);
		CHECK_EQ(bfs_repo_chunk_put(f->repo, data, sizes[i],
					    BFS_CODEC_ZSTD, 3, id, &stored),
			 0);
		CHECK_EQ(bfs_manifest_add_chunk(m, id, sizes[i]), 0);
		bfs_sha256_update(sha, data, sizes[i]);
		free(data);
	}
	bfs_sha256_final(sha, m->sha256);
	return m;
}

/* Set m's sha256 to that of its chunks as stored. */
static void rehash(struct fx *f, struct bfs_manifest *m)
{
	struct bfs_sha256 *sha = bfs_sha256_new();
	struct bfs_buf b;

	bfs_buf_init(&b, BFS_MANIFEST_MAX_CHUNK_SIZE);
	for (size_t i = 0; i < m->nchunks; i++) {
		bfs_buf_reset(&b);
		CHECK_EQ(bfs_repo_chunk_get(f->repo, m->chunks[i].id,
					    m->chunks[i].size, &b),
			 0);
		bfs_sha256_update(sha, b.data, b.len);
	}
	bfs_sha256_final(sha, m->sha256);
	bfs_buf_release(&b);
}

static void chunk_path(const uint8_t id[BFS_ID_LEN], char *out, size_t len)
{
	char hex[2 * BFS_ID_LEN + 1];

	bfs_hex(id, BFS_ID_LEN, hex);
	snprintf(out, len, "%s/chunks/%.2s/%s", tmpdir, hex, hex);
}

static void flip_byte(const uint8_t id[BFS_ID_LEN])
{
	char path[256];
	FILE *fp;
	long size;
	int c;

	chunk_path(id, path, sizeof(path));
	fp = fopen(path, "r+b");
	CHECK(fp != NULL);
	if (!fp)
		return;
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	fseek(fp, size / 2, SEEK_SET);
	c = fgetc(fp);
	fseek(fp, size / 2, SEEK_SET);
	fputc(c ^ 0xff, fp);
	fclose(fp);
}

static void remove_chunk(const uint8_t id[BFS_ID_LEN])
{
	char path[256];

	chunk_path(id, path, sizeof(path));
	CHECK_EQ(unlink(path), 0);
}

struct progress {
	uint64_t last, total;
	unsigned calls;
	int backwards;
};

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
	struct progress *p = arg;

	if (done < p->last || done > total)
		p->backwards = 1;
	p->last = done;
	p->total = total;
	p->calls++;
}

static void check_good(unsigned inflight, size_t n)
{
	uint32_t *sizes = calloc(n, sizeof(*sizes));
	struct bfs_verify_result r;
	struct progress p = {0};
	struct bfs_manifest *m;
	struct fx f;

	setup(&f, inflight);
	for (size_t i = 0; i < n; i++)
		sizes[i] = 1000 + 7919 * (uint32_t)i % 70000;
	m = make_backup(&f, sizes, n, 100);
	CHECK_EQ(bfs_verify_backup(f.v, m, on_progress, &p, &r), BFS_VERIFY_OK);
	CHECK_EQ(r.status, BFS_VERIFY_OK);
	CHECK_EQ(r.bytes, m->size);
	CHECK_EQ(r.nbad, 0);
	CHECK(r.reason[0] == 0);
	CHECK(r.seconds >= 0);
	CHECK_EQ(p.calls, n);
	CHECK_EQ(p.last, m->size);
	CHECK_EQ(p.total, m->size);
	CHECK(!p.backwards);
	/* a verifier verifies one backup after another */
	CHECK_EQ(bfs_verify_backup(f.v, m, NULL, NULL, &r), BFS_VERIFY_OK);
	bfs_manifest_free(m);
	free(sizes);
	teardown(&f);
}

/* Hashed in order whatever the parallelism, with more chunks than
 * slots in the ring. */
static void test_good(void)
{
	check_good(1, 1);
	check_good(1, 5);
	check_good(3, 40);
	check_good(0, 40);
	check_good(BFS_VERIFY_MAX_INFLIGHT + 10, 200);
}

static void test_empty(void)
{
	struct bfs_verify_result r;
	struct bfs_manifest *m;
	struct fx f;

	setup(&f, 2);
	m = make_backup(&f, NULL, 0, 1);
	CHECK_EQ(bfs_verify_backup(f.v, m, NULL, NULL, &r), BFS_VERIFY_OK);
	CHECK_EQ(r.bytes, 0);
	m->sha256[3] ^= 1;
	CHECK_EQ(bfs_verify_backup(f.v, m, NULL, NULL, &r), BFS_VERIFY_BAD);
	bfs_manifest_free(m);
	teardown(&f);
}

/* The same chunk twice in one stream (deduplicated) is fine. */
static void test_repeated_chunk(void)
{
	static const uint32_t sizes[] = {5000, 6000};
	struct bfs_verify_result r;
	struct bfs_manifest *m;
	struct fx f;

	setup(&f, 4);
	m = make_backup(&f, sizes, 2, 5);
	/* chunks A B A B: still the hash of A B, so a mismatch ... */
	CHECK_EQ(bfs_manifest_add_chunk(m, m->chunks[0].id, sizes[0]), 0);
	CHECK_EQ(bfs_manifest_add_chunk(m, m->chunks[1].id, sizes[1]), 0);
	CHECK_EQ(bfs_verify_backup(f.v, m, NULL, NULL, &r), BFS_VERIFY_BAD);
	CHECK(!strncmp(r.reason, "sha256 mismatch", 15));
	CHECK_EQ(r.bytes, m->size);
	/* ... until the manifest says the hash of the four */
	rehash(&f, m);
	CHECK_EQ(bfs_verify_backup(f.v, m, NULL, NULL, &r), BFS_VERIFY_OK);
	bfs_manifest_free(m);
	teardown(&f);
}

static void test_tampered_chunk(void)
{
	static const uint32_t sizes[] = {30000, 40000, 50000, 60000, 70000};
	char hex[2 * BFS_ID_LEN + 1], want[300];
	struct bfs_verify_result r;
	struct progress p = {0};
	struct bfs_manifest *m;
	struct fx f;

	setup(&f, 2);
	m = make_backup(&f, sizes, 5, 10);
	flip_byte(m->chunks[2].id);
	CHECK_EQ(bfs_verify_backup(f.v, m, on_progress, &p, &r),
		 BFS_VERIFY_BAD);
	CHECK_EQ(r.nbad, 1);
	CHECK(!memcmp(r.bad[0].id, m->chunks[2].id, BFS_ID_LEN));
	CHECK_EQ(r.bad[0].offset, 70000);
	CHECK_EQ(r.bad[0].size, 50000);
	CHECK(!strcmp(r.bad[0].why, "failed authentication"));
	bfs_hex(m->chunks[2].id, BFS_ID_LEN, hex);
	snprintf(want, sizeof(want),
		 "chunk %s at offset 70000: failed authentication", hex);
	CHECK(!strcmp(r.reason, want));
	/* it went on to the end: the other chunks were read */
	CHECK_EQ(r.bytes, m->size - 50000);
	CHECK_EQ(p.last, m->size);
	bfs_manifest_free(m);
	teardown(&f);
}

static void test_missing_chunks(void)
{
	static const uint32_t sizes[] = {3000, 4000, 5000, 6000};
	struct bfs_verify_result r;
	struct bfs_manifest *m;
	struct fx f;

	setup(&f, 3);
	m = make_backup(&f, sizes, 4, 20);
	remove_chunk(m->chunks[0].id);
	flip_byte(m->chunks[3].id);
	CHECK_EQ(bfs_verify_backup(f.v, m, NULL, NULL, &r), BFS_VERIFY_BAD);
	CHECK_EQ(r.nbad, 2);
	CHECK(!strcmp(r.bad[0].why, "missing"));
	CHECK_EQ(r.bad[0].offset, 0);
	CHECK(!strcmp(r.bad[1].why, "failed authentication"));
	CHECK_EQ(r.bad[1].offset, 12000);
	CHECK(strstr(r.reason, "at offset 0: missing") != NULL);
	bfs_manifest_free(m);
	teardown(&f);
}

/* Every bad chunk is counted; the first BFS_VERIFY_MAX_BAD are kept. */
static void test_many_bad(void)
{
	enum { N = BFS_VERIFY_MAX_BAD + 30 };
	uint32_t sizes[N];
	struct bfs_verify_result r;
	struct bfs_manifest *m;
	struct fx f;

	setup(&f, 8);
	for (size_t i = 0; i < N; i++)
		sizes[i] = 100 + (uint32_t)i;
	m = make_backup(&f, sizes, N, 30);
	for (size_t i = 1; i < N; i++)
		remove_chunk(m->chunks[i].id);
	CHECK_EQ(bfs_verify_backup(f.v, m, NULL, NULL, &r), BFS_VERIFY_BAD);
	CHECK_EQ(r.nbad, N - 1);
	CHECK_EQ(r.bytes, 100);
	CHECK(!memcmp(r.bad[0].id, m->chunks[1].id, BFS_ID_LEN));
	CHECK(!memcmp(r.bad[BFS_VERIFY_MAX_BAD - 1].id,
		      m->chunks[BFS_VERIFY_MAX_BAD].id, BFS_ID_LEN));
	bfs_manifest_free(m);
	teardown(&f);
}

/* A manifest sealed with the key whose sha256 is not its stream's. */
static void test_sha_mismatch(void)
{
	static const uint32_t sizes[] = {10000, 20000};
	struct bfs_verify_result r;
	struct bfs_manifest *m, *loaded = NULL;
	struct fx f;

	setup(&f, 2);
	m = make_backup(&f, sizes, 2, 40);
	m->sha256[31] ^= 0x80;
	m->backup_id = strdup("0123456789abcdef0123456789abcdef");
	m->instance = strdup("vol1");
	m->timestamp = strdup("2026-01-02T03:04:05Z");
	CHECK_EQ(bfs_timestamp_parse(m->timestamp, &m->created), 0);
	m->datastore = strdup("files");
	m->datastore_version = strdup("");
	m->codec = strdup("zstd");
	m->label = strdup("");
	CHECK_EQ(bfs_repo_manifest_put(f.repo, m), 0);
	CHECK_EQ(bfs_repo_manifest_get(f.repo, "vol1", m->timestamp,
				       BFS_SIZE_UNKNOWN, &loaded),
		 0);
	if (loaded) {
		CHECK_EQ(bfs_verify_backup(f.v, loaded, NULL, NULL, &r),
			 BFS_VERIFY_BAD);
		CHECK_EQ(r.nbad, 0);
		CHECK_EQ(r.bytes, 30000);
		CHECK(!strncmp(r.reason, "sha256 mismatch: ", 17));
	}
	bfs_manifest_free(loaded);
	bfs_manifest_free(m);
	teardown(&f);
}

/* The quiet check says why; the logging one still fails the same. */
static void test_chunk_check(void)
{
	static const uint32_t sizes[] = {4000};
	struct bfs_manifest *m;
	struct bfs_buf out;
	const char *why;
	struct fx f;

	setup(&f, 1);
	m = make_backup(&f, sizes, 1, 50);
	bfs_buf_init(&out, 1 << 20);
	CHECK_EQ(
		bfs_repo_chunk_check(f.repo, m->chunks[0].id, 4000, &out, &why),
		0);
	CHECK(why == NULL);
	CHECK_EQ(out.len, 4000);
	bfs_buf_reset(&out);
	CHECK_EQ(
		bfs_repo_chunk_check(f.repo, m->chunks[0].id, 4001, &out, &why),
		-EIO);
	CHECK(why && !strcmp(why, "size differs from the manifest's"));
	flip_byte(m->chunks[0].id);
	CHECK_EQ(
		bfs_repo_chunk_check(f.repo, m->chunks[0].id, 4000, &out, &why),
		-EIO);
	CHECK(why && !strcmp(why, "failed authentication"));
	CHECK_EQ(bfs_repo_chunk_get(f.repo, m->chunks[0].id, 4000, &out), -EIO);
	remove_chunk(m->chunks[0].id);
	CHECK_EQ(
		bfs_repo_chunk_check(f.repo, m->chunks[0].id, 4000, &out, &why),
		-ENOENT);
	CHECK(why && !strcmp(why, "missing"));
	CHECK_EQ(bfs_repo_chunk_get(f.repo, m->chunks[0].id, 4000, &out),
		 -ENOENT);
	CHECK_EQ(out.len, 0);
	bfs_buf_release(&out);
	bfs_manifest_free(m);
	teardown(&f);
}

int main(void)
{
	RUN(test_good);
	RUN(test_empty);
	RUN(test_repeated_chunk);
	RUN(test_tampered_chunk);
	RUN(test_missing_chunks);
	RUN(test_many_bad);
	RUN(test_sha_mismatch);
	RUN(test_chunk_check);
	return check_summary();
}
