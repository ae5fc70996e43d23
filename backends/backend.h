/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Object storage backends: "local" (a directory) and "swift" (OpenStack
 * Swift).
 *
 * Objects are named by '/'-separated relative names made of the
 * repository's own vocabulary (see docs/FORMAT.md); callers never pass
 * names with "..", a leading '/', NUL or control bytes, and
 * bfs_backend_*() refuses them with -EINVAL once, here, for every driver.
 *
 * Every function may be called from several threads at once.
 * Functions return 0 (or a byte count) or -errno.
 */
#ifndef BFS_BACKEND_H
#define BFS_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct bfs_backend;

/* put() flags */
#define BFS_PUT_EXCL 0x1 /* create only if absent: -EEXIST otherwise */

/*
 * Listing callback: one call per object (is_prefix 0, size = object size)
 * or, with a delimiter, per common prefix ending in the delimiter
 * (is_prefix 1, size 0).  Names are full object names.  A non-zero return
 * stops the listing and is returned by list().
 */
typedef int (*bfs_list_cb)(const char *name, uint64_t size, int is_prefix,
			   void *arg);

struct bfs_backend_ops {
	const char *name;
	/*
	 * Read len bytes at off into out (appended).  len 0 means "to the
	 * end".  Reading past the end returns what there is; -ENOENT for a
	 * missing object.
	 */
	int (*get)(struct bfs_backend *be, const char *name, uint64_t off,
		   uint64_t len, struct bfs_buf *out);
	/* Store an object whole and atomically (readers never see half). */
	int (*put)(struct bfs_backend *be, const char *name, const void *data,
		   size_t len, unsigned flags);
	/* -ENOENT if missing. */
	int (*remove)(struct bfs_backend *be, const char *name);
	/* Size of an object; -ENOENT if missing. */
	int (*stat)(struct bfs_backend *be, const char *name, uint64_t *size);
	/* Objects whose names start with prefix, in byte order of name.
	 * delimiter is 0 or '/'. */
	int (*list)(struct bfs_backend *be, const char *prefix, char delimiter,
		    bfs_list_cb cb, void *arg);
	/* Optional: bytes that can still be stored, where the backend
	 * knows (a quota-less object store does not). */
	int (*space)(struct bfs_backend *be, uint64_t *avail);
	void (*destroy)(struct bfs_backend *be);
};

/* Drivers embed this as their first member. */
struct bfs_backend {
	const struct bfs_backend_ops *ops;
};

/*
 * Open the backend described by the config's "backend" object (borrowed).
 * On error writes a one-line reason into err.
 */
int bfs_backend_open(json_t *conf, struct bfs_backend **out, char *err,
		     size_t errlen);
void bfs_backend_close(struct bfs_backend *be);

int bfs_backend_get(struct bfs_backend *be, const char *name, uint64_t off,
		    uint64_t len, struct bfs_buf *out);
int bfs_backend_put(struct bfs_backend *be, const char *name,
		    const void *data, size_t len, unsigned flags);
int bfs_backend_remove(struct bfs_backend *be, const char *name);
int bfs_backend_stat(struct bfs_backend *be, const char *name,
		     uint64_t *size);
int bfs_backend_list(struct bfs_backend *be, const char *prefix,
		     char delimiter, bfs_list_cb cb, void *arg);

/* -EOPNOTSUPP when the backend cannot tell. */
int bfs_backend_space(struct bfs_backend *be, uint64_t *avail);

/* 1 if name is a valid object name (see above), else 0. */
int bfs_backend_name_ok(const char *name);

/* Drivers. */
int bfs_local_open(json_t *conf, struct bfs_backend **out, char *err,
		   size_t errlen);
int bfs_swift_open(json_t *conf, struct bfs_backend **out, char *err,
		   size_t errlen);

#endif
