/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Webhook delivery of notifications: each event's JSON is POSTed to the
 * configured URL by one background thread, so a slow or dead receiver
 * never blocks or fails the job that emitted it.
 *
 * The queue is bounded (NOTIFY_QUEUE_MAX events): when it is full the
 * oldest event is dropped, with one warning per overflow episode.  A
 * failed delivery (no connection, a timeout, HTTP 5xx or 429) is retried
 * up to "retries" times with exponential backoff; other HTTP statuses are
 * final.  bfs_notify_free() drains what is queued for at most
 * NOTIFY_DRAIN_SECS, then aborts the transfer in flight.
 *
 * bfs_notify_post() may be called from any thread at once.
 */
#ifndef BFS_NOTIFY_H
#define BFS_NOTIFY_H

#include "config.h"

#include <stddef.h>

#define NOTIFY_QUEUE_MAX  1024
#define NOTIFY_DRAIN_SECS 3

struct bfs_notify;

/*
 * A notifier for conf (borrowed: the config outlives the notifier); reads
 * the token file (a regular file of mode 0600, one line) now, so a bad
 * one refuses the mount.  *out is new; err gets one line on error.
 */
int bfs_notify_new(const struct bfs_webhook_conf *conf, struct bfs_notify **out,
		   char *err, size_t errlen);
/* Start the delivery thread (after fork: threads do not survive it). */
int bfs_notify_start(struct bfs_notify *n);
/* Queue a copy of one event's JSON text; never blocks on the network. */
void bfs_notify_post(struct bfs_notify *n, const char *json);
/* Drain (bounded by NOTIFY_DRAIN_SECS), stop the thread and free. */
void bfs_notify_free(struct bfs_notify *n);

#endif
