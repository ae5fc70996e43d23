// SPDX-License-Identifier: Apache-2.0
/*
 * Verifying backups: see verify.h.
 *
 * A native backup's chunks are fetched by a pool of workers into a ring
 * of slots, at most one ring ahead of the chunk being hashed: the fetches
 * (network bound) overlap, the SHA-256 sees the stream in order, and
 * memory stays at ring size times the largest chunk.
 */
#include "verify.h"

#include "buf.h"
#include "pool.h"
#include "trove_backup.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VF_DEFAULT_INFLIGHT 8

struct bfs_verifier {
	struct bfs_repo *repo;
	const char *state_dir;
	struct bfs_trove_containers *legacy;
	struct bfs_pool *pool;
	unsigned inflight;
};

/* One chunk being fetched, or fetched and waiting to be hashed. */
struct vf_slot {
	struct vf_run *run;
	size_t index; /* into the manifest's chunks */
	struct bfs_buf buf;
	const char *why;
	int ret;
	int done; /* under run->lock */
};

struct vf_run {
	struct bfs_verifier *v;
	const struct bfs_manifest *m;
	pthread_mutex_t lock;
	pthread_cond_t landed; /* a slot is done */
	struct vf_slot *slots;
	size_t nslots;
	size_t next; /* the next chunk to submit */
};

int bfs_verifier_new(struct bfs_repo *repo, json_t *backend_conf,
		     const char *state_dir, unsigned inflight,
		     struct bfs_verifier **out)
{
	struct bfs_verifier *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return -ENOMEM;
	v->repo = repo;
	v->state_dir = state_dir;
	v->inflight = inflight ? inflight : VF_DEFAULT_INFLIGHT;
	if (v->inflight > BFS_VERIFY_MAX_INFLIGHT)
		v->inflight = BFS_VERIFY_MAX_INFLIGHT;
	ret = bfs_trove_containers_new(backend_conf, &v->legacy);
	if (!ret)
		ret = bfs_pool_new(v->inflight, &v->pool);
	if (ret) {
		bfs_verifier_free(v);
		return ret;
	}
	*out = v;
	return 0;
}

void bfs_verifier_free(struct bfs_verifier *v)
{
	if (!v)
		return;
	if (v->pool)
		bfs_pool_free(v->pool);
	bfs_trove_containers_free(v->legacy);
	free(v);
}

/* ---- verdicts ---- */

static double vf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The first problem found says the status and the reason. */
static void __attribute__((format(printf, 3, 4)))
vf_verdict(struct bfs_verify_result *r, int status, const char *fmt, ...)
{
	va_list ap;

	if (r->status != BFS_VERIFY_OK)
		return;
	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

static void vf_bad_chunk(struct bfs_verify_result *r,
			 const struct bfs_chunk_ref *c, const char *why)
{
	char hex[2 * BFS_ID_LEN + 1];

	bfs_hex(c->id, BFS_ID_LEN, hex);
	vf_verdict(r, BFS_VERIFY_BAD, "chunk %s at offset %llu: %s", hex,
		   (unsigned long long)c->offset, why);
	if (r->nbad < BFS_VERIFY_MAX_BAD) {
		struct bfs_verify_chunk *b = &r->bad[r->nbad];

		memcpy(b->id, c->id, BFS_ID_LEN);
		b->offset = c->offset;
		b->size = c->size;
		b->why = why;
	}
	r->nbad++;
}

/* The whole stream against the manifest: size first, then SHA-256. */
static void vf_compare(const struct bfs_manifest *m, uint64_t size,
		       const uint8_t sha[32], struct bfs_verify_result *r)
{
	char got[65], want[65];

	if (size != m->size) {
		vf_verdict(r, BFS_VERIFY_BAD,
			   "size mismatch: the stream has %llu bytes, the "
			   "manifest says %llu",
			   (unsigned long long)size,
			   (unsigned long long)m->size);
		return;
	}
	if (!memcmp(sha, m->sha256, 32))
		return;
	bfs_hex(sha, 32, got);
	bfs_hex(m->sha256, 32, want);
	vf_verdict(r, BFS_VERIFY_BAD,
		   "sha256 mismatch: the stream hashes to %s, the manifest "
		   "says %s",
		   got, want);
}

/* ---- native backups ---- */

static void vf_fetch(void *arg)
{
	struct vf_slot *s = arg;
	struct vf_run *run = s->run;
	const struct bfs_chunk_ref *c = &run->m->chunks[s->index];
	const char *why;
	int ret;

	bfs_buf_reset(&s->buf);
	ret = bfs_repo_chunk_check(run->v->repo, c->id, c->size, &s->buf, &why);
	pthread_mutex_lock(&run->lock);
	s->ret = ret;
	s->why = why;
	s->done = 1;
	pthread_cond_broadcast(&run->landed);
	pthread_mutex_unlock(&run->lock);
}

static struct vf_slot *vf_slot(struct vf_run *run, size_t i)
{
	return &run->slots[i % run->nslots];
}

/* Submit chunks up to one ring ahead of chunk i: 0 or -ENOMEM. */
static int vf_fill(struct vf_run *run, size_t i)
{
	while (run->next < run->m->nchunks && run->next < i + run->nslots) {
		struct vf_slot *s = vf_slot(run, run->next);

		/* the slot's previous chunk was taken: nobody else looks */
		s->index = run->next;
		s->done = 0;
		if (bfs_pool_submit(run->v->pool, vf_fetch, s))
			return -ENOMEM;
		run->next++;
	}
	return 0;
}

static void vf_wait(struct vf_run *run, struct vf_slot *s)
{
	pthread_mutex_lock(&run->lock);
	while (!s->done)
		pthread_cond_wait(&run->landed, &run->lock);
	pthread_mutex_unlock(&run->lock);
}

/* Hash a good chunk (while the stream is whole), or record why not.
 * Returns 1 when the run cannot go on. */
static int vf_take(struct vf_run *run, struct vf_slot *s,
		   struct bfs_sha256 *sha, struct bfs_verify_result *r)
{
	const struct bfs_chunk_ref *c = &run->m->chunks[s->index];
	char hex[2 * BFS_ID_LEN + 1];

	if (!s->ret) {
		/* past a bad chunk the hash means nothing: just look on */
		if (r->status == BFS_VERIFY_OK)
			bfs_sha256_update(sha, s->buf.data, s->buf.len);
		r->bytes += s->buf.len;
		return 0;
	}
	if (s->ret == -EIO || s->ret == -ENOENT) {
		vf_bad_chunk(r, c, s->why ? s->why : "input/output error");
		return 0;
	}
	/* the backend, not the chunk: every further fetch would likely
	 * fail the same way, after its retries */
	bfs_hex(c->id, BFS_ID_LEN, hex);
	vf_verdict(r, BFS_VERIFY_ERROR, "chunk %s at offset %llu: %s", hex,
		   (unsigned long long)c->offset, strerror(-s->ret));
	return 1;
}

static void vf_chunks(struct vf_run *run, struct bfs_sha256 *sha,
		      bfs_verify_progress_fn progress, void *arg,
		      struct bfs_verify_result *r)
{
	const struct bfs_manifest *m = run->m;
	size_t i;

	for (i = 0; i < m->nchunks; i++) {
		if (vf_fill(run, i) && i == run->next) {
			vf_verdict(r, BFS_VERIFY_ERROR, "out of memory");
			break;
		}
		vf_wait(run, vf_slot(run, i));
		if (vf_take(run, vf_slot(run, i), sha, r)) {
			i++;
			break;
		}
		if (progress)
			progress(m->chunks[i].offset + m->chunks[i].size,
				 m->size, arg);
	}
	/* fetches still in flight must land before their slots go */
	for (; i < run->next; i++)
		vf_wait(run, vf_slot(run, i));
}

static void vf_native(struct bfs_verifier *v, const struct bfs_manifest *m,
		      bfs_verify_progress_fn progress, void *arg,
		      struct bfs_verify_result *r)
{
	struct vf_run run = {.v = v, .m = m};
	struct bfs_sha256 *sha = bfs_sha256_new();
	uint8_t digest[32];
	size_t i;

	/* a ring twice the fetches in flight: workers fetch on while the
	 * chunk before theirs is hashed */
	run.nslots = 2 * (size_t)v->inflight;
	run.slots = calloc(run.nslots, sizeof(*run.slots));
	if (!sha || !run.slots) {
		vf_verdict(r, BFS_VERIFY_ERROR, "out of memory");
		goto out_free;
	}
	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.landed, NULL);
	for (i = 0; i < run.nslots; i++) {
		run.slots[i].run = &run;
		bfs_buf_init(&run.slots[i].buf, BFS_MANIFEST_MAX_CHUNK_SIZE);
	}
	vf_chunks(&run, sha, progress, arg, r);
	if (r->status == BFS_VERIFY_OK) {
		bfs_sha256_final(sha, digest);
		sha = NULL;
		vf_compare(m, r->bytes, digest, r);
	}
	for (i = 0; i < run.nslots; i++)
		bfs_buf_release(&run.slots[i].buf);
	pthread_cond_destroy(&run.landed);
	pthread_mutex_destroy(&run.lock);
out_free:
	free(run.slots);
	bfs_sha256_free(sha);
}

/* ---- imported Trove backups ---- */

struct vf_trove_progress {
	bfs_verify_progress_fn fn;
	void *arg;
	uint64_t total;
};

static void vf_trove_progress(uint64_t done, void *arg)
{
	struct vf_trove_progress *p = arg;

	p->fn(done, p->total, p->arg);
}

static void vf_trove(struct bfs_verifier *v, const struct bfs_manifest *m,
		     bfs_verify_progress_fn progress, void *arg,
		     struct bfs_verify_result *r)
{
	struct vf_trove_progress p = {progress, arg, m->size};
	const char *object = bfs_trove_backup_str(m, "object");
	struct bfs_trove_backup *tb;
	char err[512] = "";
	uint8_t sha[32];
	uint64_t size;
	int ret;

	ret = bfs_trove_backup_open(v->legacy, v->repo, v->state_dir, m,
				    BFS_TROVE_BACKUP_WHOLE, &tb, err,
				    sizeof(err));
	if (!ret) {
		ret = bfs_trove_hash_all(bfs_trove_backup_reader(tb), sha,
					 &size,
					 progress ? vf_trove_progress : NULL,
					 &p, err, sizeof(err));
		bfs_trove_backup_free(tb);
	}
	if (ret) {
		/* EIO: the bytes are wrong; ENOENT: the object or its
		 * container is gone; anything else: not reached */
		vf_verdict(r,
			   ret == -EIO || ret == -ENOENT ? BFS_VERIFY_BAD
							 : BFS_VERIFY_ERROR,
			   "Trove object %s: %s", object ? object : "?",
			   err[0] ? err : strerror(-ret));
		return;
	}
	r->bytes = size;
	vf_compare(m, size, sha, r);
}

int bfs_verify_backup(struct bfs_verifier *v, const struct bfs_manifest *m,
		      bfs_verify_progress_fn progress, void *arg,
		      struct bfs_verify_result *r)
{
	double t0 = vf_now();

	memset(r, 0, sizeof(*r));
	if (bfs_manifest_is_trove(m))
		vf_trove(v, m, progress, arg, r);
	else
		vf_native(v, m, progress, arg, r);
	r->seconds = vf_now() - t0;
	return r->status;
}
