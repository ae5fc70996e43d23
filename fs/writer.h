/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The backup writer: a stream in, a manifest out.
 *
 *   write() -> chunker (this thread) -> pool: id, compress, seal, put
 *           -> chunk ids collected in stream order -> finish()
 *
 * A bounded number of chunks are in flight at once (memory stays bounded
 * whatever the stream's size); the SHA-256 of the whole stream is taken
 * on the way in.  One writer is used by one thread; the pool's workers do
 * the heavy part in parallel.  The manifest is *not* stored here: the
 * job commits it last, so a backup exists exactly when its manifest does.
 */
#ifndef BFS_WRITER_H
#define BFS_WRITER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "pool.h"
#include "repo.h"

struct bfs_writer;

/* repo and pool borrowed.  codec/level for new chunks. */
int bfs_writer_new(struct bfs_repo *repo, struct bfs_pool *pool, int codec,
		   int level, struct bfs_writer **out);
/* Consume len bytes.  An upload error of an earlier chunk is returned by
 * a later call (and by finish). */
int bfs_writer_write(struct bfs_writer *w, const void *data, size_t len);
/*
 * Flush, wait for every chunk and fill m's chunk list, size, sha256 and
 * stored_bytes.  Frees the writer whatever the result.
 */
int bfs_writer_finish(struct bfs_writer *w, struct bfs_manifest *m);
/* Stop: wait for chunks in flight, free the writer.  Chunks already
 * stored stay in the repository unreferenced until gc. */
void bfs_writer_abort(struct bfs_writer *w);

/* Bytes consumed and bytes newly stored so far (any thread). */
uint64_t bfs_writer_bytes_in(struct bfs_writer *w);
uint64_t bfs_writer_bytes_stored(struct bfs_writer *w);

#endif
