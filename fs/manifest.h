/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A backup's manifest: what it is and the ordered list of its chunks.
 * Serialized as JSON (jansson); sealing with AES-256-GCM is the
 * repository's job (repo.h).  The JSON layout is in docs/FORMAT.md.
 *
 * A manifest is immutable once built: several threads may read one.
 */
#ifndef BFS_MANIFEST_H
#define BFS_MANIFEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto.h"

#define BFS_MANIFEST_VERSION 1
/* Bounds applied to manifests read from the backend. */
#define BFS_MANIFEST_MAX_BYTES (256u << 20)
#define BFS_MANIFEST_MAX_CHUNKS (16u << 20)
#define BFS_MANIFEST_MAX_CHUNK_SIZE (64u << 20)
#define BFS_NAME_MAX 255
#define BFS_TIMESTAMP_LEN 20 /* "2026-11-21T03:00:00Z" */

struct bfs_chunk_ref {
	uint8_t id[BFS_ID_LEN];
	uint64_t offset; /* plaintext offset: derived, not stored */
	uint32_t size;   /* plaintext size */
};

struct bfs_manifest {
	char *backup_id;        /* 32 hex digits, random */
	char *instance;
	char *timestamp;        /* UTC ISO 8601, unique per instance */
	int64_t created;        /* unix seconds of timestamp */
	char *datastore;        /* "files", "postgresql", ... */
	char *datastore_version;/* may be "" */
	char *format;           /* payload format: "tar", "pg_dump", ... */
	char *codec;            /* codec of new chunks: "zstd", ... */
	char *label;            /* may be "" */
	char *parent;           /* timestamp of the parent, or NULL */
	json_t *strategy;       /* owned; an object, may be empty */
	json_t *extra;          /* owned; datastore metadata, an object */
	uint64_t size;          /* plaintext bytes */
	uint8_t sha256[32];     /* of the whole plaintext */
	uint64_t stored_bytes;  /* bytes of new chunks this backup stored */
	size_t nchunks;
	struct bfs_chunk_ref *chunks;
};

/* The format of an imported Trove backup: no chunks; its size is the
 * verified plaintext size and extra.trove says where its bytes are. */
#define BFS_FORMAT_TROVE "trove"
int bfs_manifest_is_trove(const struct bfs_manifest *m);

/* A zeroed manifest with empty strategy and extra objects: new. */
struct bfs_manifest *bfs_manifest_new(void);
void bfs_manifest_free(struct bfs_manifest *m);

/* Append a chunk (offset computed); updates size.  0 or -ENOMEM/-EFBIG. */
int bfs_manifest_add_chunk(struct bfs_manifest *m, const uint8_t id[BFS_ID_LEN],
			   uint32_t size);

/* Serialize: *out is a new malloc()ed string (not NUL-counted in *len). */
int bfs_manifest_encode(const struct bfs_manifest *m, char **out,
			size_t *len);
/*
 * Parse and validate (types, bounds, names, sum of chunk sizes equals
 * size).  -EBADMSG with a reason in err for anything malformed.
 */
int bfs_manifest_decode(const char *data, size_t len,
			struct bfs_manifest **out, char *err, size_t errlen);

/* Index of the chunk holding plaintext offset off, or -1 past the end. */
ssize_t bfs_manifest_find(const struct bfs_manifest *m, uint64_t off);

/*
 * Timestamps.  bfs_timestamp_format() writes "YYYY-MM-DDTHH:MM:SSZ" (UTC)
 * into out (BFS_TIMESTAMP_LEN + 1 bytes); bfs_timestamp_parse() accepts
 * exactly that form and returns 0 or -EINVAL.
 */
void bfs_timestamp_format(int64_t t, char *out);
int bfs_timestamp_parse(const char *s, int64_t *t);

/*
 * Names given by users or read from the backend (instance ids, labels,
 * timestamps): 1..255 bytes, no '/', no NUL, no control bytes, no ".."
 * anywhere, not starting with '.' (reserved for our own temporaries).
 */
int bfs_name_ok(const char *name);

#endif
