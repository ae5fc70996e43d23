// SPDX-License-Identifier: Apache-2.0
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bfs_buf_init(struct bfs_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int bfs_buf_reserve(struct bfs_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > b->max || b->len > b->max - extra)
		return -EFBIG;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1; /* room for bfs_buf_terminate() */
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int bfs_buf_append(struct bfs_buf *b, const void *data, size_t len)
{
	int ret;

	if (!len)
		return 0;
	ret = bfs_buf_reserve(b, len);
	if (ret)
		return ret;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int bfs_buf_terminate(struct bfs_buf *b)
{
	uint8_t *p;

	if (b->len < b->cap) {
		b->data[b->len] = 0;
		return 0;
	}
	p = realloc(b->data, b->len + 1);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = b->len + 1;
	b->data[b->len] = 0;
	return 0;
}

void bfs_buf_release(struct bfs_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

uint8_t *bfs_buf_detach(struct bfs_buf *b, size_t *len)
{
	uint8_t *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
