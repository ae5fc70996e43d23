// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>

#include "buf.h"
#include "check.h"

static void test_append_grows(void)
{
	struct bfs_buf b;
	char data[10000];

	memset(data, 'x', sizeof(data));
	bfs_buf_init(&b, 1 << 20);
	CHECK_EQ(bfs_buf_append(&b, data, sizeof(data)), 0);
	CHECK_EQ(bfs_buf_append(&b, "yz", 2), 0);
	CHECK_EQ(b.len, sizeof(data) + 2);
	CHECK(b.data[sizeof(data)] == 'y');
	CHECK_EQ(bfs_buf_terminate(&b), 0);
	CHECK(b.data[b.len] == 0);
	bfs_buf_release(&b);
	CHECK(b.data == NULL);
}

static void test_maximum_enforced(void)
{
	struct bfs_buf b;
	char data[100] = {0};

	bfs_buf_init(&b, 150);
	CHECK_EQ(bfs_buf_append(&b, data, 100), 0);
	CHECK_EQ(bfs_buf_append(&b, data, 51), -EFBIG);
	CHECK_EQ(b.len, 100);
	CHECK_EQ(bfs_buf_append(&b, data, 50), 0);
	CHECK_EQ(bfs_buf_terminate(&b), 0);
	CHECK_EQ(bfs_buf_reserve(&b, (size_t)-1), -EFBIG);
	bfs_buf_release(&b);
}

static void test_detach(void)
{
	struct bfs_buf b;
	size_t len;
	uint8_t *p;

	bfs_buf_init(&b, 100);
	CHECK_EQ(bfs_buf_append(&b, "abc", 3), 0);
	p = bfs_buf_detach(&b, &len);
	CHECK_EQ(len, 3);
	CHECK(memcmp(p, "abc", 3) == 0);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
}

int main(void)
{
	RUN(test_append_grows);
	RUN(test_maximum_enforced);
	RUN(test_detach);
	return check_summary();
}
