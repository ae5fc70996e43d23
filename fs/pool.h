/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fixed-size pool of worker threads running submitted functions in
 * FIFO order.  Used for readahead (decode chunks on all cores) and for
 * the backup pipeline.  All functions are thread-safe.
 */
#ifndef BFS_POOL_H
#define BFS_POOL_H

struct bfs_pool;

/* nthreads 0 means one per online CPU.  0 or -errno. */
int bfs_pool_new(unsigned nthreads, struct bfs_pool **out);
unsigned bfs_pool_threads(const struct bfs_pool *p);
/* Queue fn(arg).  Never blocks; 0 or -ENOMEM. */
int bfs_pool_submit(struct bfs_pool *p, void (*fn)(void *arg), void *arg);
/* Run every queued function, then stop and free the threads. */
void bfs_pool_free(struct bfs_pool *p);

#endif
