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
/* get: the caller authenticates what it reads (an AEAD-sealed chunk or
 * manifest), so the backend may skip a checksum of its own that costs
 * CPU on every byte (Swift's MD5 of a whole object). */
#define BFS_GET_SEALED 0x1

/*
 * Listing callback: one call per object (is_prefix 0, size = object size)
 * or, with a delimiter, per common prefix ending in the delimiter
 * (is_prefix 1, size 0).  Names are full object names.  A non-zero return
 * stops the listing and is returned by list().
 */
typedef int (*bfs_list_cb)(const char *name, uint64_t size, int is_prefix,
			   void *arg);

/* How an object is stored (Swift's large objects read as one). */
enum bfs_object_layout {
	BFS_LAYOUT_SINGLE = 0, /* a plain object */
	BFS_LAYOUT_DLO = 1,    /* a manifest with X-Object-Manifest */
	BFS_LAYOUT_SLO = 2,    /* a manifest with X-Static-Large-Object */
};

#define BFS_INFO_ETAG_MAX 72
#define BFS_INFO_META_MAX 128

/* What bfs_backend_info() tells about one object.  Strings are "" when
 * the backend does not know them (or they did not fit). */
struct bfs_object_info {
	uint64_t size;		      /* of the whole object, joined */
	char etag[BFS_INFO_ETAG_MAX]; /* quotes stripped */
	int layout;		      /* enum bfs_object_layout */
	/* X-Object-Meta-Datastore and -Datastore-Version (Trove's) */
	char datastore[BFS_INFO_META_MAX];
	char datastore_version[BFS_INFO_META_MAX];
};

struct bfs_backend_ops {
	const char *name;
	/*
	 * Read len bytes at off into out (appended).  len 0 means "to the
	 * end".  Reading past the end returns what there is; -ENOENT for a
	 * missing object.  flags: BFS_GET_*.
	 */
	int (*get)(struct bfs_backend *be, const char *name, uint64_t off,
		   uint64_t len, unsigned flags, struct bfs_buf *out);
	/* Store an object whole and atomically (readers never see half). */
	int (*put)(struct bfs_backend *be, const char *name, const void *data,
		   size_t len, unsigned flags);
	/* -ENOENT if missing. */
	int (*remove)(struct bfs_backend *be, const char *name);
	/* Size of an object; -ENOENT if missing. */
	int (*stat)(struct bfs_backend *be, const char *name, uint64_t *size);
	/* Optional: size, ETag, layout and metadata of an object (one
	 * HEAD); out is zeroed by the wrapper.  -ENOENT if missing. */
	int (*info)(struct bfs_backend *be, const char *name,
		    struct bfs_object_info *out);
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
/*
 * Open the backend of conf (borrowed) on another container of the same
 * account, never creating it: a copy of conf with "container" replaced
 * and "create_container" false.  A missing container is -ENOENT with a
 * message naming it; a backend without containers (local) -EOPNOTSUPP.
 */
int bfs_backend_open_container(json_t *conf, const char *container,
			       struct bfs_backend **out, char *err,
			       size_t errlen);
void bfs_backend_close(struct bfs_backend *be);

int bfs_backend_get(struct bfs_backend *be, const char *name, uint64_t off,
		    uint64_t len, struct bfs_buf *out);
/* A whole object the caller authenticates (BFS_GET_SEALED). */
int bfs_backend_get_sealed(struct bfs_backend *be, const char *name,
			   struct bfs_buf *out);
int bfs_backend_put(struct bfs_backend *be, const char *name,
		    const void *data, size_t len, unsigned flags);
int bfs_backend_remove(struct bfs_backend *be, const char *name);
int bfs_backend_stat(struct bfs_backend *be, const char *name,
		     uint64_t *size);
int bfs_backend_list(struct bfs_backend *be, const char *prefix,
		     char delimiter, bfs_list_cb cb, void *arg);

/* -EOPNOTSUPP when the backend cannot tell. */
int bfs_backend_space(struct bfs_backend *be, uint64_t *avail);
/* -EOPNOTSUPP when the backend has no info op; -ENOENT if missing. */
int bfs_backend_info(struct bfs_backend *be, const char *name,
		     struct bfs_object_info *out);
/* "single", "dlo", "slo" (or "?"). */
const char *bfs_object_layout_name(int layout);

/* 1 if name is a valid object name (see above), else 0. */
int bfs_backend_name_ok(const char *name);

/* Drivers. */
int bfs_local_open(json_t *conf, struct bfs_backend **out, char *err,
		   size_t errlen);
int bfs_swift_open(json_t *conf, struct bfs_backend **out, char *err,
		   size_t errlen);

#endif
