/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared across the engine.  All are thread-safe. */
#ifndef BFS_UTIL_H
#define BFS_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* write() all of len bytes, retrying on EINTR and short writes: 0 or
 * -errno. */
int bfs_write_all(int fd, const void *data, size_t len);

/* read() up to cap bytes, retrying on EINTR and short reads, until end of
 * file or cap: the byte count, or -errno.  (For small files read whole:
 * ask for one byte more than allowed to see that a file is too big.) */
ssize_t bfs_read_all(int fd, char *buf, size_t cap);

/* Format a one-line reason into an optional caller buffer (err may be
 * NULL or errlen 0: then nothing is written). */
void bfs_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
