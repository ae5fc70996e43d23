// SPDX-License-Identifier: Apache-2.0
/*
 * Worker threads over one mutex-protected FIFO queue.  Jobs are small
 * (decode one chunk, write one chunk), so a single queue does not
 * contend measurably and keeps the order callers submitted in.
 */
#include "pool.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* A generous cap: more threads than this only adds contention. */
#define POOL_MAX_THREADS 256u

struct pool_job {
	void (*fn)(void *arg);
	void *arg;
	struct pool_job *next;
};

struct bfs_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* a job was queued, or stopping */
	struct pool_job *head;	/* next to run */
	struct pool_job **tail; /* where to link the next job */
	int stopping;		/* set by bfs_pool_free() */
	unsigned nthreads;	/* threads started */
	pthread_t *threads;
};

static void *pool_worker(void *arg)
{
	struct bfs_pool *p = arg;
	struct pool_job *job;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		/* Stop only once the queue is empty: free() drains it. */
		if (!p->head)
			break;
		job = p->head;
		p->head = job->next;
		if (!p->head)
			p->tail = &p->head;
		pthread_mutex_unlock(&p->lock);
		job->fn(job->arg);
		free(job);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static unsigned pool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

/* Stop and join the threads started so far. */
static void pool_stop(struct bfs_pool *p)
{
	unsigned i;

	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
}

int bfs_pool_new(unsigned nthreads, struct bfs_pool **out)
{
	struct bfs_pool *p;
	unsigned want;
	int ret;

	want = nthreads ? nthreads : pool_default_threads();
	if (want > POOL_MAX_THREADS)
		want = POOL_MAX_THREADS;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->threads = calloc(want, sizeof(*p->threads));
	if (!p->threads) {
		ret = -ENOMEM;
		goto out_free;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->tail = &p->head;
	for (p->nthreads = 0; p->nthreads < want; p->nthreads++) {
		ret = -pthread_create(&p->threads[p->nthreads], NULL,
				      pool_worker, p);
		if (ret) {
			bfs_err("cannot start worker thread: error %d", -ret);
			goto out_stop;
		}
	}
	*out = p;
	return 0;
out_stop:
	pool_stop(p);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
out_free:
	free(p);
	return ret;
}

unsigned bfs_pool_threads(const struct bfs_pool *p)
{
	return p->nthreads;
}

int bfs_pool_submit(struct bfs_pool *p, void (*fn)(void *arg), void *arg)
{
	struct pool_job *job;

	job = malloc(sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->fn = fn;
	job->arg = arg;
	job->next = NULL;
	pthread_mutex_lock(&p->lock);
	*p->tail = job;
	p->tail = &job->next;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void bfs_pool_free(struct bfs_pool *p)
{
	if (!p)
		return;
	pool_stop(p);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
