// SPDX-License-Identifier: Apache-2.0
#include "reader.h"

#include <errno.h>
#include <string.h>

/*
 * The next count chunks, but no more than half the cache in all (after
 * the first): readahead counts chunks, and a repository's chunks may be
 * 16 times larger than the default ones (init --chunk-size 16M, chunks up
 * to 64 MiB), so a window of 8 could outgrow the cache and evict its own
 * chunks before they are read.
 */
static void rd_prefetch(struct bfs_cache *cache,
			const struct bfs_manifest *m, size_t from,
			unsigned count)
{
	size_t budget = bfs_cache_max_bytes(cache) / 2, bytes = 0;

	for (size_t i = from; i < m->nchunks && i < from + count; i++) {
		bytes += m->chunks[i].size;
		if (i > from && bytes > budget)
			break;
		bfs_cache_prefetch(cache, m->chunks[i].id, m->chunks[i].size);
	}
}

ssize_t bfs_read(struct bfs_cache *cache, const struct bfs_manifest *m,
		 struct bfs_read_state *st, unsigned readahead, void *buf,
		 size_t size, uint64_t off)
{
	uint8_t *out = buf;
	size_t done = 0;
	ssize_t idx;
	int sequential;

	if (off >= m->size || !size)
		return 0;
	if (size > m->size - off)
		size = (size_t)(m->size - off);
	idx = bfs_manifest_find(m, off);
	if (idx < 0)
		return -EIO;
	sequential = atomic_load(&st->next_off) == off;
	while (done < size) {
		const struct bfs_chunk_ref *c = &m->chunks[idx];
		uint64_t in_chunk = off + done - c->offset;
		size_t n = c->size - in_chunk;
		struct bfs_cblock *b;
		int ret;

		/* Start decoding what comes next before waiting for this
		 * chunk, so the pool works while we copy. */
		if (sequential && readahead)
			rd_prefetch(cache, m, (size_t)idx + 1, readahead);
		ret = bfs_cache_get(cache, c->id, c->size, &b);
		/* Never a short read: the kernel would take it for end of
		 * file and serve zeros after it. */
		if (ret)
			return ret;
		if (n > size - done)
			n = size - done;
		memcpy(out + done, bfs_cblock_data(b) + in_chunk, n);
		bfs_cblock_put(b);
		done += n;
		idx++;
	}
	atomic_store(&st->next_off, off + done);
	return (ssize_t)done;
}
