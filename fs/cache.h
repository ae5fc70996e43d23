/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decoded-chunk cache of the read path: an LRU of plaintext chunks
 * keyed by chunk id, bounded in bytes, with refcounted blocks.
 *
 * Contract:
 * - bfs_cache_get() returns a block holding a reference; the data stays
 *   valid and unchanged until bfs_cblock_put().  Referenced blocks are
 *   never evicted, so the cache may briefly exceed its bound by what
 *   readers hold.
 * - Concurrent gets (and prefetches) of one id share a single load: the
 *   others wait for it.  A failed load is not cached: every waiter gets
 *   the error and the next get tries again.
 * - Every function is safe to call from several threads at once.
 */
#ifndef BFS_CACHE_H
#define BFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "pool.h"
#include "repo.h"

struct bfs_cache;
struct bfs_cblock;

struct bfs_cache_stats {
	uint64_t hits, misses, loads, evictions, bytes;
};

/* repo and pool are borrowed and must outlive the cache. */
int bfs_cache_new(struct bfs_repo *repo, struct bfs_pool *pool,
		  size_t max_bytes, struct bfs_cache **out);

/*
 * Loads a chunk of size plaintext bytes into out (empty, at most size
 * bytes, appended to); exactly size bytes on success, else -errno.
 * Called from the getting thread or from a pool worker, possibly from
 * several threads at once (for different ids).
 */
typedef int (*bfs_cache_load_fn)(void *arg, const uint8_t id[BFS_ID_LEN],
				 uint32_t size, struct bfs_buf *out);
/*
 * A cache over another source than a repository (and for tests):
 * bfs_cache_new() is this with a loader calling bfs_repo_chunk_get().
 * arg is borrowed.  pool is borrowed and may be NULL: prefetch then does
 * nothing.
 */
int bfs_cache_new_with_loader(bfs_cache_load_fn load, void *arg,
			      struct bfs_pool *pool, size_t max_bytes,
			      struct bfs_cache **out);

/* Waits for running prefetches.  Every block must have been put. */
void bfs_cache_free(struct bfs_cache *c);

/* Load (or find) a chunk of size plaintext bytes: *out gets a new
 * reference.  -EIO / -ENOENT / -ENOMEM from the load. */
int bfs_cache_get(struct bfs_cache *c, const uint8_t id[BFS_ID_LEN],
		  uint32_t size, struct bfs_cblock **out);
/* Start loading a chunk in the pool unless cached or loading; never
 * blocks, errors are dropped (a later get reports them). */
void bfs_cache_prefetch(struct bfs_cache *c, const uint8_t id[BFS_ID_LEN],
			uint32_t size);

/* Borrowed: valid until bfs_cblock_put(). */
const uint8_t *bfs_cblock_data(const struct bfs_cblock *b);
uint32_t bfs_cblock_size(const struct bfs_cblock *b);
void bfs_cblock_put(struct bfs_cblock *b);

void bfs_cache_get_stats(struct bfs_cache *c, struct bfs_cache_stats *st);
/* The byte budget the cache was made with. */
size_t bfs_cache_max_bytes(const struct bfs_cache *c);

#endif
