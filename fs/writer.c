// SPDX-License-Identifier: Apache-2.0
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* One chunk on its way to the repository. */
struct wr_slot {
	uint8_t *data;
	uint32_t len;
	uint8_t id[BFS_ID_LEN];
	int state; /* WR_FREE, WR_BUSY, WR_DONE */
	int err;
	struct bfs_writer *w;
};

enum { WR_FREE, WR_BUSY, WR_DONE };

struct bfs_writer {
	struct bfs_repo *repo;
	struct bfs_pool *pool;
	const struct bfs_chunker *chunker;
	int codec, level;
	struct bfs_sha256 *sha;

	/* Stream bytes not yet cut into a chunk: pending[start..end). */
	uint8_t *pending;
	size_t start, end, pending_cap;

	/* A ring of slots: head is the oldest chunk in flight. */
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct wr_slot *slots;
	unsigned nslots, head, count;

	/* Chunks completed in order, appended to this manifest. */
	struct bfs_manifest *chunks;
	int err;
	_Atomic uint64_t bytes_in, bytes_stored;
};

static void wr_store(void *arg)
{
	struct wr_slot *s = arg;
	struct bfs_writer *w = s->w;
	uint64_t stored = 0;
	int ret;

	ret = bfs_repo_chunk_put(w->repo, s->data, s->len, w->codec, w->level,
				 s->id, &stored);
	free(s->data);
	s->data = NULL;
	atomic_fetch_add(&w->bytes_stored, stored);
	pthread_mutex_lock(&w->lock);
	s->err = ret;
	s->state = WR_DONE;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->lock);
}

/* Wait for the oldest chunk and append it to the list.  Lock held. */
static int wr_retire_oldest(struct bfs_writer *w)
{
	struct wr_slot *s = &w->slots[w->head];
	int ret;

	while (s->state != WR_DONE)
		pthread_cond_wait(&w->done, &w->lock);
	ret = s->err;
	if (!ret && !w->err)
		ret = bfs_manifest_add_chunk(w->chunks, s->id, s->len);
	if (ret && !w->err)
		w->err = ret;
	s->state = WR_FREE;
	w->head = (w->head + 1) % w->nslots;
	w->count--;
	return w->err;
}

/* Hand one chunk (taken from the front of pending) to the pool. */
static int wr_submit(struct bfs_writer *w, size_t len)
{
	struct wr_slot *s;
	uint8_t *copy;
	int ret;

	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, w->pending + w->start, len);
	w->start += len;

	pthread_mutex_lock(&w->lock);
	if (w->count == w->nslots)
		wr_retire_oldest(w);
	ret = w->err;
	if (ret) {
		pthread_mutex_unlock(&w->lock);
		free(copy);
		return ret;
	}
	s = &w->slots[(w->head + w->count) % w->nslots];
	w->count++;
	s->data = copy;
	s->len = (uint32_t)len;
	s->state = WR_BUSY;
	s->err = 0;
	pthread_mutex_unlock(&w->lock);

	ret = bfs_pool_submit(w->pool, wr_store, s);
	if (ret) /* run it here rather than lose it */
		wr_store(s);
	return 0;
}

/* Cut and submit chunks while a full window (max bytes) is pending, or
 * everything when at_end. */
static int wr_cut(struct bfs_writer *w, int at_end)
{
	uint32_t max = bfs_chunker_params(w->chunker)->max;
	int ret;

	while (w->end - w->start >= max || (at_end && w->end > w->start)) {
		size_t n = bfs_chunker_cut(w->chunker, w->pending + w->start,
					   w->end - w->start);

		ret = wr_submit(w, n);
		if (ret)
			return ret;
	}
	return 0;
}

static void wr_free(struct bfs_writer *w)
{
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->done);
	bfs_manifest_free(w->chunks);
	if (w->sha)
		bfs_sha256_free(w->sha);
	free(w->pending);
	free(w->slots);
	free(w);
}

int bfs_writer_new(struct bfs_repo *repo, struct bfs_pool *pool, int codec,
		   int level, struct bfs_writer **out)
{
	struct bfs_writer *w;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->repo = repo;
	w->pool = pool;
	w->chunker = bfs_repo_chunker(repo);
	w->codec = codec;
	w->level = level;
	/* Two chunks per worker keeps every core busy while this thread
	 * cuts the next one. */
	w->nslots = 2 * bfs_pool_threads(pool) + 1;
	w->pending_cap = 2 * (size_t)bfs_chunker_params(w->chunker)->max;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->done, NULL);
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	w->pending = malloc(w->pending_cap);
	w->sha = bfs_sha256_new();
	w->chunks = bfs_manifest_new();
	if (!w->slots || !w->pending || !w->sha || !w->chunks) {
		wr_free(w);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < w->nslots; i++)
		w->slots[i].w = w;
	*out = w;
	return 0;
}

int bfs_writer_write(struct bfs_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	int ret;

	if (w->err)
		return w->err;
	bfs_sha256_update(w->sha, data, len);
	atomic_fetch_add(&w->bytes_in, len);
	while (len) {
		size_t room, n;

		if (w->start && w->pending_cap - w->end < len) {
			/* Less than max bytes are left after a cut: moving
			 * them to the front is cheap and rare. */
			memmove(w->pending, w->pending + w->start,
				w->end - w->start);
			w->end -= w->start;
			w->start = 0;
		}
		room = w->pending_cap - w->end;
		n = len < room ? len : room;
		memcpy(w->pending + w->end, p, n);
		w->end += n;
		p += n;
		len -= n;
		ret = wr_cut(w, 0);
		if (ret)
			return ret;
	}
	return 0;
}

/* Wait for everything in flight; returns the first error. */
static int wr_drain(struct bfs_writer *w)
{
	int ret;

	pthread_mutex_lock(&w->lock);
	while (w->count)
		wr_retire_oldest(w);
	ret = w->err;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int bfs_writer_finish(struct bfs_writer *w, struct bfs_manifest *m)
{
	int ret;

	ret = wr_cut(w, 1);
	if (!ret)
		ret = wr_drain(w);
	else
		wr_drain(w);
	if (ret)
		goto out_free;
	/* Move the collected chunk list into the caller's manifest. */
	free(m->chunks);
	m->chunks = w->chunks->chunks;
	m->nchunks = w->chunks->nchunks;
	m->size = w->chunks->size;
	w->chunks->chunks = NULL;
	w->chunks->nchunks = 0;
	m->stored_bytes = atomic_load(&w->bytes_stored);
	bfs_sha256_final(w->sha, m->sha256);
	w->sha = NULL;
out_free:
	wr_free(w);
	return ret;
}

void bfs_writer_abort(struct bfs_writer *w)
{
	if (!w)
		return;
	wr_drain(w);
	wr_free(w);
}

uint64_t bfs_writer_bytes_in(struct bfs_writer *w)
{
	return atomic_load(&w->bytes_in);
}

uint64_t bfs_writer_bytes_stored(struct bfs_writer *w)
{
	return atomic_load(&w->bytes_stored);
}
