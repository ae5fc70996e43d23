// SPDX-License-Identifier: Apache-2.0
/*
 * The decoded-chunk cache: a hash table of blocks keyed by chunk id, and
 * an LRU list of the loaded blocks nobody holds.
 *
 * One mutex protects the table, the list, the refcounts, the states and
 * the stats; loads run outside it.  A block is in one of three states:
 *
 *   loading  in the table; its loader (a getter or a prefetch job) holds
 *            a reference, and other getters wait on the condvar
 *   ready    in the table; on the LRU list exactly when refs == 0
 *   failed   out of the table, so the next get loads again; freed when
 *            the last waiter has taken the error and dropped its ref
 *
 * Only ready blocks count towards the byte bound, and only unreferenced
 * ones are evicted.  Stats: a hit is a get that found the id in the
 * table (ready, or loading for someone else); loads counts loader calls.
 */
#include "cache.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MIN_BUCKETS 64

enum cblock_state {
	CB_LOADING,
	CB_READY,
	CB_FAILED,
};

struct bfs_cblock {
	struct bfs_cache *cache;
	struct bfs_cblock *hnext;	/* hash chain, while in the table */
	struct bfs_cblock *prev, *next; /* LRU, while ready and unreferenced */
	uint8_t *data;			/* size bytes once ready */
	unsigned refs;
	enum cblock_state state;
	int err; /* of a failed load */
	uint32_t size;
	uint8_t id[BFS_ID_LEN];
};

struct bfs_cache {
	pthread_mutex_t lock;
	pthread_cond_t done; /* a load or a prefetch job finished */
	bfs_cache_load_fn load;
	void *load_arg;
	struct bfs_pool *pool; /* may be NULL: no prefetching */
	size_t max_bytes;
	struct bfs_cblock **table; /* nbuckets chains, a power of two */
	size_t nbuckets;
	size_t nblocks;	       /* in the table */
	struct bfs_cblock lru; /* sentinel: next is the most recent */
	unsigned prefetching;  /* prefetch jobs queued or running */
	struct bfs_cache_stats st;
};

/*
 * The hash table.
 */

/* Ids are HMAC outputs, but tests and bugs may not be: mix anyway. */
static size_t cache_bucket(const struct bfs_cache *c,
			   const uint8_t id[BFS_ID_LEN])
{
	uint64_t h = 0;
	unsigned i;

	for (i = 0; i < 8; i++)
		h = h << 8 | id[i];
	h ^= (uint64_t)id[8] << 32 | (uint64_t)id[31] << 16 | id[16];
	h *= 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 32) & (c->nbuckets - 1);
}

static struct bfs_cblock *cache_find(const struct bfs_cache *c,
				     const uint8_t id[BFS_ID_LEN])
{
	struct bfs_cblock *b;

	for (b = c->table[cache_bucket(c, id)]; b; b = b->hnext)
		if (!memcmp(b->id, id, BFS_ID_LEN))
			return b;
	return NULL;
}

/* Double the buckets; on ENOMEM keep the longer chains. */
static void cache_grow(struct bfs_cache *c)
{
	struct bfs_cblock **old = c->table, *b, *next;
	size_t oldn = c->nbuckets, i, k;

	c->table = calloc(oldn * 2, sizeof(*c->table));
	if (!c->table) {
		c->table = old;
		return;
	}
	c->nbuckets = oldn * 2;
	for (i = 0; i < oldn; i++) {
		for (b = old[i]; b; b = next) {
			next = b->hnext;
			k = cache_bucket(c, b->id);
			b->hnext = c->table[k];
			c->table[k] = b;
		}
	}
	free(old);
}

static void cache_insert(struct bfs_cache *c, struct bfs_cblock *b)
{
	size_t k;

	if (c->nblocks >= c->nbuckets)
		cache_grow(c);
	k = cache_bucket(c, b->id);
	b->hnext = c->table[k];
	c->table[k] = b;
	c->nblocks++;
}

static void cache_unlink(struct bfs_cache *c, struct bfs_cblock *b)
{
	struct bfs_cblock **pp = &c->table[cache_bucket(c, b->id)];

	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = b->hnext;
		c->nblocks--;
	}
	b->hnext = NULL;
}

/*
 * The LRU list and the references.
 */

static void lru_add(struct bfs_cache *c, struct bfs_cblock *b)
{
	b->prev = &c->lru;
	b->next = c->lru.next;
	c->lru.next->prev = b;
	c->lru.next = b;
}

static void lru_del(struct bfs_cblock *b)
{
	b->prev->next = b->next;
	b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

static void cblock_free(struct bfs_cblock *b)
{
	free(b->data);
	free(b);
}

/* Drop least recently used blocks until the cache fits its bound. */
static void cache_evict(struct bfs_cache *c)
{
	struct bfs_cblock *b;

	while (c->st.bytes > c->max_bytes && c->lru.prev != &c->lru) {
		b = c->lru.prev;
		lru_del(b);
		cache_unlink(c, b);
		c->st.bytes -= b->size;
		c->st.evictions++;
		cblock_free(b);
	}
}

static void cblock_ref(struct bfs_cblock *b)
{
	if (b->state == CB_READY && b->refs == 0)
		lru_del(b);
	b->refs++;
}

/* Under the lock.  A ready block goes on the list, a failed one away. */
static void cblock_unref(struct bfs_cache *c, struct bfs_cblock *b)
{
	if (--b->refs)
		return;
	if (b->state == CB_READY) {
		lru_add(c, b);
		cache_evict(c);
	} else {
		cblock_free(b);
	}
}

/*
 * Loading.
 */

static struct bfs_cblock *
cblock_new(struct bfs_cache *c, const uint8_t id[BFS_ID_LEN], uint32_t size)
{
	struct bfs_cblock *b;

	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->cache = c;
	b->state = CB_LOADING;
	b->refs = 1; /* the loader's */
	b->size = size;
	memcpy(b->id, id, BFS_ID_LEN);
	return b;
}

/* Under the lock: publish a load's outcome to the waiters. */
static void cblock_finish(struct bfs_cache *c, struct bfs_cblock *b, int err,
			  uint8_t *data)
{
	if (err) {
		b->state = CB_FAILED;
		b->err = err;
		cache_unlink(c, b);
	} else {
		b->state = CB_READY;
		b->data = data;
		c->st.bytes += b->size;
	}
	pthread_cond_broadcast(&c->done);
}

/* Run the loader (without the lock) and publish the result. */
static void cache_load(struct bfs_cache *c, struct bfs_cblock *b)
{
	struct bfs_buf buf;
	char hex[2 * BFS_ID_LEN + 1];
	int ret;

	bfs_buf_init(&buf, b->size);
	ret = c->load(c->load_arg, b->id, b->size, &buf);
	if (ret > 0)
		ret = -EIO; /* not a valid -errno: a loader bug */
	if (!ret && buf.len != b->size) {
		bfs_hex(b->id, BFS_ID_LEN, hex);
		bfs_err("chunk '%s' loaded as %zu bytes, expected %u", hex,
			buf.len, (unsigned)b->size);
		ret = -EIO;
	}
	if (ret)
		bfs_buf_release(&buf);
	pthread_mutex_lock(&c->lock);
	c->st.loads++;
	cblock_finish(c, b, ret, ret ? NULL : bfs_buf_detach(&buf, NULL));
	pthread_mutex_unlock(&c->lock);
}

/* Under the lock: wait for b's load (if needed), then hand it out. */
static int cache_wait(struct bfs_cache *c, struct bfs_cblock *b,
		      struct bfs_cblock **out)
{
	int ret;

	while (b->state == CB_LOADING)
		pthread_cond_wait(&c->done, &c->lock);
	if (b->state == CB_FAILED) {
		ret = b->err;
		cblock_unref(c, b);
		return ret;
	}
	*out = b;
	return 0;
}

int bfs_cache_get(struct bfs_cache *c, const uint8_t id[BFS_ID_LEN],
		  uint32_t size, struct bfs_cblock **out)
{
	char hex[2 * BFS_ID_LEN + 1];
	struct bfs_cblock *b;
	uint32_t known;
	int ret;

	pthread_mutex_lock(&c->lock);
	b = cache_find(c, id);
	if (b && b->size != size) {
		/* The id fixes the content, so its size: a bad manifest. */
		known = b->size;
		pthread_mutex_unlock(&c->lock);
		bfs_hex(id, BFS_ID_LEN, hex);
		bfs_err("chunk '%s' wanted as %u bytes, known as %u", hex,
			(unsigned)size, (unsigned)known);
		return -EIO;
	}
	if (b) {
		c->st.hits++;
		cblock_ref(b);
	} else {
		c->st.misses++;
		b = cblock_new(c, id, size);
		if (!b) {
			pthread_mutex_unlock(&c->lock);
			return -ENOMEM;
		}
		cache_insert(c, b);
		pthread_mutex_unlock(&c->lock);
		cache_load(c, b);
		pthread_mutex_lock(&c->lock);
	}
	ret = cache_wait(c, b, out);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void cache_prefetch_job(void *arg)
{
	struct bfs_cblock *b = arg;
	struct bfs_cache *c = b->cache;

	cache_load(c, b);
	pthread_mutex_lock(&c->lock);
	cblock_unref(c, b);
	c->prefetching--;
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
}

void bfs_cache_prefetch(struct bfs_cache *c, const uint8_t id[BFS_ID_LEN],
			uint32_t size)
{
	struct bfs_cblock *b;

	if (!c->pool)
		return;
	pthread_mutex_lock(&c->lock);
	if (cache_find(c, id)) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	b = cblock_new(c, id, size);
	if (!b) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	cache_insert(c, b);
	c->prefetching++;
	pthread_mutex_unlock(&c->lock);
	if (!bfs_pool_submit(c->pool, cache_prefetch_job, b))
		return;
	/* Could not queue: fail the load so that waiters do not hang. */
	pthread_mutex_lock(&c->lock);
	cblock_finish(c, b, -ENOMEM, NULL);
	cblock_unref(c, b);
	c->prefetching--;
	pthread_mutex_unlock(&c->lock);
}

/*
 * Blocks.
 */

const uint8_t *bfs_cblock_data(const struct bfs_cblock *b)
{
	/* A valid pointer even for an empty chunk, for memcpy's sake. */
	static const uint8_t empty[1];

	return b->data ? b->data : empty;
}

uint32_t bfs_cblock_size(const struct bfs_cblock *b)
{
	return b->size;
}

void bfs_cblock_put(struct bfs_cblock *b)
{
	struct bfs_cache *c;

	if (!b)
		return;
	c = b->cache;
	pthread_mutex_lock(&c->lock);
	cblock_unref(c, b);
	pthread_mutex_unlock(&c->lock);
}

/*
 * The cache.
 */

static int cache_repo_load(void *arg, const uint8_t id[BFS_ID_LEN],
			   uint32_t size, struct bfs_buf *out)
{
	return bfs_repo_chunk_get(arg, id, size, out);
}

size_t bfs_cache_max_bytes(const struct bfs_cache *c)
{
	return c->max_bytes;
}

int bfs_cache_new(struct bfs_repo *repo, struct bfs_pool *pool,
		  size_t max_bytes, struct bfs_cache **out)
{
	return bfs_cache_new_with_loader(cache_repo_load, repo, pool, max_bytes,
					 out);
}

int bfs_cache_new_with_loader(bfs_cache_load_fn load, void *arg,
			      struct bfs_pool *pool, size_t max_bytes,
			      struct bfs_cache **out)
{
	struct bfs_cache *c;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->nbuckets = CACHE_MIN_BUCKETS;
	c->table = calloc(c->nbuckets, sizeof(*c->table));
	if (!c->table) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->done, NULL);
	c->load = load;
	c->load_arg = arg;
	c->pool = pool;
	c->max_bytes = max_bytes;
	c->lru.prev = c->lru.next = &c->lru;
	*out = c;
	return 0;
}

void bfs_cache_free(struct bfs_cache *c)
{
	struct bfs_cblock *b, *next;
	size_t i;

	if (!c)
		return;
	/* Prefetch jobs hold the cache: let them finish. */
	pthread_mutex_lock(&c->lock);
	while (c->prefetching)
		pthread_cond_wait(&c->done, &c->lock);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < c->nbuckets; i++) {
		for (b = c->table[i]; b; b = next) {
			next = b->hnext;
			if (b->refs)
				bfs_err("cache freed with a chunk still held");
			cblock_free(b);
		}
	}
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c->table);
	free(c);
}

void bfs_cache_get_stats(struct bfs_cache *c, struct bfs_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}
