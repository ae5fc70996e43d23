/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Content-defined chunking: a FastCDC-style gear hash with normalized
 * chunking (a stricter mask before the average size, a looser one after),
 * bounded by min and max.
 *
 * The gear table is derived from a repository key, so chunk boundaries do
 * not leak content fingerprints to someone who only sees chunk sizes, yet
 * are stable across backups of one repository (which is what makes
 * incremental backups free).
 *
 * A chunker is immutable after creation: any number of threads may use
 * one at the same time.
 */
#ifndef BFS_CHUNKER_H
#define BFS_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

struct bfs_chunker_params {
	uint32_t min; /* no cut before this many bytes */
	uint32_t avg; /* a power of two: the target average */
	uint32_t max; /* always cut here */
};

#define BFS_CHUNK_MIN (256u << 10)
#define BFS_CHUNK_AVG (1u << 20)
#define BFS_CHUNK_MAX (4u << 20)

/* What `backupctl init --chunk-size` may choose as the average. */
#define BFS_CHUNK_AVG_LOWEST  (256u << 10)
#define BFS_CHUNK_AVG_HIGHEST (16u << 20)

/*
 * The parameters for an average chunk size: min avg/4, max avg*4, as for
 * the default 1 MiB.  -EINVAL unless avg is a power of two from
 * BFS_CHUNK_AVG_LOWEST to BFS_CHUNK_AVG_HIGHEST.
 */
int bfs_chunker_params_for(uint64_t avg, struct bfs_chunker_params *out);

struct bfs_chunker;

/* -EINVAL unless 64 <= min < avg < max <= 64 MiB and avg a power of 2. */
int bfs_chunker_new(const uint8_t gear_key[32],
		    const struct bfs_chunker_params *params,
		    struct bfs_chunker **out);
void bfs_chunker_free(struct bfs_chunker *c);
const struct bfs_chunker_params *
bfs_chunker_params(const struct bfs_chunker *c);

/*
 * Length of the next chunk at the start of data[0..len).  The caller must
 * pass at least max bytes unless the stream ends within them (then it
 * passes all that is left, and at EOF a final chunk shorter than min is
 * fine).  Returns a value in 1..min(len, max), or 0 when len is 0.
 */
size_t bfs_chunker_cut(const struct bfs_chunker *c, const uint8_t *data,
		       size_t len);

#endif
