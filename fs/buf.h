/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with a hard maximum size.
 *
 * Every buffer that holds data from the network, the backend or a user has
 * a maximum: growing past it fails with -EFBIG instead of eating memory.
 * Not thread-safe: a buffer belongs to one thread at a time.
 */
#ifndef BFS_BUF_H
#define BFS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct bfs_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Start empty; never grows beyond max bytes. */
void bfs_buf_init(struct bfs_buf *b, size_t max);
/* Make room for extra more bytes: 0, -ENOMEM or -EFBIG. */
int bfs_buf_reserve(struct bfs_buf *b, size_t extra);
int bfs_buf_append(struct bfs_buf *b, const void *data, size_t len);
/* Append a NUL that is not counted in len (for text parsers). */
int bfs_buf_terminate(struct bfs_buf *b);
static inline void bfs_buf_reset(struct bfs_buf *b)
{
	b->len = 0;
}
/* Free the memory; the buffer may be used again (it is empty). */
void bfs_buf_release(struct bfs_buf *b);
/* Hand the memory to the caller (free() it); the buffer is left empty. */
uint8_t *bfs_buf_detach(struct bfs_buf *b, size_t *len);

#endif
