// SPDX-License-Identifier: Apache-2.0
/*
 * The chunk cache over a fake loader (bfs_cache_new_with_loader), and the
 * worker pool it prefetches with.
 */
#include "cache.h"
#include "check.h"
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define BLK 1000u /* bytes per test chunk */

/* The fake source: chunk n is BLK bytes of (n + offset) & 0xff. */
struct source {
	atomic_int calls;     /* loader invocations */
	atomic_int fail_next; /* fail this many loads with -EIO */
	useconds_t delay;     /* per load, to make loads overlap */
	int short_by;	      /* return this many bytes too few */
};

static void make_id(unsigned n, uint8_t id[BFS_ID_LEN])
{
	memset(id, 0, BFS_ID_LEN);
	id[0] = (uint8_t)n;
	id[1] = (uint8_t)(n >> 8);
}

static int fake_load(void *arg, const uint8_t id[BFS_ID_LEN], uint32_t size,
		     struct bfs_buf *out)
{
	struct source *src = arg;
	uint8_t data[BLK];

	atomic_fetch_add(&src->calls, 1);
	if (src->delay)
		usleep(src->delay);
	if (atomic_fetch_sub(&src->fail_next, 1) > 0)
		return -EIO;
	atomic_fetch_add(&src->fail_next, 1);
	memset(data, id[0], sizeof(data));
	return bfs_buf_append(out, data, size - (uint32_t)src->short_by);
}

static struct bfs_cache *new_cache(struct source *src, struct bfs_pool *pool,
				   size_t max_bytes)
{
	struct bfs_cache *c = NULL;

	CHECK_EQ(bfs_cache_new_with_loader(fake_load, src, pool, max_bytes, &c),
		 0);
	return c;
}

/* Get chunk n, check its content, put it back.  Returns get's result. */
static int get_put(struct bfs_cache *c, unsigned n)
{
	struct bfs_cblock *b;
	uint8_t id[BFS_ID_LEN];
	int ret;

	make_id(n, id);
	ret = bfs_cache_get(c, id, BLK, &b);
	if (ret)
		return ret;
	CHECK_EQ(bfs_cblock_size(b), BLK);
	CHECK(bfs_cblock_data(b)[0] == (uint8_t)n);
	CHECK(bfs_cblock_data(b)[BLK - 1] == (uint8_t)n);
	bfs_cblock_put(b);
	return 0;
}

static void test_hit(void)
{
	struct source src = {0};
	struct bfs_cache *c = new_cache(&src, NULL, 10 * BLK);
	struct bfs_cache_stats st;

	CHECK_EQ(get_put(c, 1), 0);
	CHECK_EQ(get_put(c, 1), 0);
	CHECK_EQ(get_put(c, 2), 0);
	CHECK_EQ(get_put(c, 1), 0);
	CHECK_EQ(atomic_load(&src.calls), 2);
	bfs_cache_get_stats(c, &st);
	CHECK_EQ(st.hits, 2);
	CHECK_EQ(st.misses, 2);
	CHECK_EQ(st.loads, 2);
	CHECK_EQ(st.bytes, 2 * BLK);
	CHECK_EQ(st.evictions, 0);
	bfs_cache_free(c);
}

static void test_eviction_lru(void)
{
	struct source src = {0};
	struct bfs_cache *c = new_cache(&src, NULL, 4 * BLK);
	struct bfs_cache_stats st;
	unsigned n;

	for (n = 1; n <= 4; n++)
		CHECK_EQ(get_put(c, n), 0);
	CHECK_EQ(get_put(c, 1), 0); /* 1 is now the most recent */
	CHECK_EQ(get_put(c, 5), 0); /* evicts 2, the least recent */
	bfs_cache_get_stats(c, &st);
	CHECK_EQ(st.evictions, 1);
	CHECK_EQ(st.bytes, 4 * BLK);
	CHECK_EQ(atomic_load(&src.calls), 5);
	CHECK_EQ(get_put(c, 1), 0);
	CHECK_EQ(atomic_load(&src.calls), 5);
	CHECK_EQ(get_put(c, 2), 0);
	CHECK_EQ(atomic_load(&src.calls), 6);

	for (n = 10; n < 100; n++)
		CHECK_EQ(get_put(c, n), 0);
	bfs_cache_get_stats(c, &st);
	CHECK(st.bytes <= 4 * BLK);
	CHECK_EQ(st.evictions, 2 + 90); /* 2 and 3 above, then one each */
	bfs_cache_free(c);
}

static void test_referenced_not_evicted(void)
{
	struct source src = {0};
	struct bfs_cache *c = new_cache(&src, NULL, 2 * BLK);
	struct bfs_cache_stats st;
	struct bfs_cblock *held, *again;
	uint8_t id[BFS_ID_LEN];
	unsigned n;

	make_id(7, id);
	CHECK_EQ(bfs_cache_get(c, id, BLK, &held), 0);
	for (n = 20; n < 60; n++)
		CHECK_EQ(get_put(c, n), 0);
	/* Still there, unchanged, and found without a load. */
	CHECK(bfs_cblock_data(held)[0] == 7 && bfs_cblock_data(held)[999] == 7);
	CHECK_EQ(bfs_cache_get(c, id, BLK, &again), 0);
	CHECK(again == held);
	CHECK_EQ(atomic_load(&src.calls), 41);
	bfs_cblock_put(again);
	bfs_cblock_put(held);
	/* Unreferenced now, so the bound applies to it again. */
	bfs_cache_get_stats(c, &st);
	CHECK(st.bytes <= 2 * BLK);

	/* A bound smaller than one chunk: held blocks still work. */
	bfs_cache_free(c);
	c = new_cache(&src, NULL, 0);
	CHECK_EQ(bfs_cache_get(c, id, BLK, &held), 0);
	CHECK(bfs_cblock_data(held)[500] == 7);
	bfs_cblock_put(held);
	bfs_cache_get_stats(c, &st);
	CHECK_EQ(st.bytes, 0);
	bfs_cache_free(c);
}

static void test_failed_load_not_cached(void)
{
	struct source src = {0};
	struct bfs_cache *c = new_cache(&src, NULL, 10 * BLK);
	struct bfs_cache_stats st;

	atomic_store(&src.fail_next, 1);
	CHECK_EQ(get_put(c, 3), -EIO);
	CHECK_EQ(get_put(c, 3), 0);
	CHECK_EQ(get_put(c, 3), 0);
	CHECK_EQ(atomic_load(&src.calls), 2);
	bfs_cache_get_stats(c, &st);
	CHECK_EQ(st.bytes, BLK);

	/* A loader that returns the wrong length is a failed load too. */
	src.short_by = 1;
	CHECK_EQ(get_put(c, 4), -EIO);
	src.short_by = 0;
	CHECK_EQ(get_put(c, 4), 0);
	bfs_cache_free(c);
}

static void test_wrong_size(void)
{
	struct source src = {0};
	struct bfs_cache *c = new_cache(&src, NULL, 10 * BLK);
	struct bfs_cblock *b;
	uint8_t id[BFS_ID_LEN];

	CHECK_EQ(get_put(c, 5), 0);
	make_id(5, id);
	CHECK_EQ(bfs_cache_get(c, id, BLK - 1, &b), -EIO);
	bfs_cache_free(c);
}

/* Several threads get one id at the same time. */
struct racer {
	struct bfs_cache *c;
	pthread_barrier_t *start;
	unsigned n;
	int ret;
	struct bfs_cblock *b;
};

static void *racer_run(void *arg)
{
	struct racer *r = arg;
	uint8_t id[BFS_ID_LEN];

	make_id(r->n, id);
	pthread_barrier_wait(r->start);
	r->ret = bfs_cache_get(r->c, id, BLK, &r->b);
	return NULL;
}

#define RACERS 8

static void race(struct bfs_cache *c, unsigned n, struct racer *r)
{
	pthread_barrier_t start;
	pthread_t t[RACERS];
	int i;

	pthread_barrier_init(&start, NULL, RACERS);
	for (i = 0; i < RACERS; i++) {
		r[i] = (struct racer){.c = c, .start = &start, .n = n};
		pthread_create(&t[i], NULL, racer_run, &r[i]);
	}
	for (i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
}

static void test_concurrent_single_load(void)
{
	struct source src = {.delay = 100000};
	struct bfs_cache *c = new_cache(&src, NULL, 10 * BLK);
	struct racer r[RACERS];
	int i;

	race(c, 9, r);
	CHECK_EQ(atomic_load(&src.calls), 1);
	for (i = 0; i < RACERS; i++) {
		CHECK_EQ(r[i].ret, 0);
		CHECK(r[i].b == r[0].b);
		CHECK(r[i].ret || bfs_cblock_data(r[i].b)[0] == 9);
	}
	for (i = 0; i < RACERS; i++)
		if (!r[i].ret)
			bfs_cblock_put(r[i].b);

	/* A failed shared load: every waiter gets the error, once. */
	atomic_store(&src.calls, 0);
	atomic_store(&src.fail_next, 1);
	race(c, 10, r);
	CHECK_EQ(atomic_load(&src.calls), 1);
	for (i = 0; i < RACERS; i++)
		CHECK_EQ(r[i].ret, -EIO);
	CHECK_EQ(get_put(c, 10), 0);
	CHECK_EQ(atomic_load(&src.calls), 2);
	bfs_cache_free(c);
}

static void test_prefetch(void)
{
	struct source src = {.delay = 20000};
	struct bfs_pool *pool = NULL;
	struct bfs_cache *c;
	struct bfs_cache_stats st;
	uint8_t id[BFS_ID_LEN];
	unsigned n;

	CHECK_EQ(bfs_pool_new(2, &pool), 0);
	c = new_cache(&src, pool, 100 * BLK);
	for (n = 30; n < 40; n++) {
		make_id(n, id);
		bfs_cache_prefetch(c, id, BLK);
		bfs_cache_prefetch(c, id, BLK); /* already loading: no-op */
	}
	/* Gets wait for the prefetches in flight; no load twice. */
	for (n = 30; n < 40; n++)
		CHECK_EQ(get_put(c, n), 0);
	CHECK_EQ(atomic_load(&src.calls), 10);
	bfs_cache_get_stats(c, &st);
	CHECK_EQ(st.hits, 10);
	CHECK_EQ(st.loads, 10);

	/* A cached id is not prefetched again; a failed prefetch is
	 * dropped and the next get loads.  (Wait for the prefetch to end:
	 * a get while it runs would share its failure.) */
	make_id(30, id);
	bfs_cache_prefetch(c, id, BLK);
	atomic_store(&src.fail_next, 1);
	make_id(41, id);
	bfs_cache_prefetch(c, id, BLK);
	do {
		usleep(1000);
		bfs_cache_get_stats(c, &st);
	} while (st.loads < 11);
	CHECK_EQ(atomic_load(&src.calls), 11);
	CHECK_EQ(get_put(c, 41), 0);
	CHECK_EQ(atomic_load(&src.calls), 12);

	/* Free waits for prefetches still queued. */
	for (n = 50; n < 60; n++) {
		make_id(n, id);
		bfs_cache_prefetch(c, id, BLK);
	}
	bfs_cache_free(c);
	CHECK_EQ(atomic_load(&src.calls), 22);
	bfs_pool_free(pool);
}

/*
 * The pool.
 */

struct counter {
	atomic_int n;
	pthread_mutex_t lock;
	int order[100];
	int next;
};

static void count_job(void *arg)
{
	atomic_fetch_add(&((struct counter *)arg)->n, 1);
}

struct ordered {
	struct counter *ctr;
	int i;
};

static void order_job(void *arg)
{
	struct ordered *o = arg;

	pthread_mutex_lock(&o->ctr->lock);
	o->ctr->order[o->ctr->next++] = o->i;
	pthread_mutex_unlock(&o->ctr->lock);
}

static void test_pool(void)
{
	struct counter ctr = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct ordered jobs[100];
	struct bfs_pool *p = NULL;
	int i;

	CHECK_EQ(bfs_pool_new(0, &p), 0);
	CHECK_EQ(bfs_pool_threads(p), (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	for (i = 0; i < 10000; i++)
		CHECK_EQ(bfs_pool_submit(p, count_job, &ctr), 0);
	bfs_pool_free(p); /* runs everything queued first */
	CHECK_EQ(atomic_load(&ctr.n), 10000);

	/* One thread: FIFO order. */
	CHECK_EQ(bfs_pool_new(1, &p), 0);
	CHECK_EQ(bfs_pool_threads(p), 1);
	for (i = 0; i < 100; i++) {
		jobs[i] = (struct ordered){.ctr = &ctr, .i = i};
		CHECK_EQ(bfs_pool_submit(p, order_job, &jobs[i]), 0);
	}
	bfs_pool_free(p);
	CHECK_EQ(ctr.next, 100);
	for (i = 0; i < 100; i++)
		CHECK_EQ(ctr.order[i], i);
	bfs_pool_free(NULL);
}

int main(void)
{
	RUN(test_pool);
	RUN(test_hit);
	RUN(test_eviction_lru);
	RUN(test_referenced_not_evicted);
	RUN(test_failed_load_not_cached);
	RUN(test_wrong_size);
	RUN(test_concurrent_single_load);
	RUN(test_prefetch);
	return check_summary();
}
