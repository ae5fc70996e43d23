/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read path: a pread on a backup becomes chunk lookups in the cache.
 * When a handle reads sequentially, the next chunks are decoded ahead in
 * the pool, so a streaming reader keeps every core busy.
 */
#ifndef BFS_READER_H
#define BFS_READER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "manifest.h"

/* Per open file: where the last read ended.  Owned by one handle;
 * reads on one handle may come from several threads, so it is atomic. */
struct bfs_read_state {
	_Atomic uint64_t next_off;
};

/*
 * Read up to size bytes at off.  Returns the byte count (short only at
 * end of file, 0 past it) or -errno (-EIO for a chunk that fails
 * authentication: nothing of it is copied).
 */
ssize_t bfs_read(struct bfs_cache *cache, const struct bfs_manifest *m,
		 struct bfs_read_state *st, unsigned readahead, void *buf,
		 size_t size, uint64_t off);

#endif
