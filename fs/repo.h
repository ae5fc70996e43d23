/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The native repository (docs/FORMAT.md): a backend holding
 *
 *   config                          plaintext JSON: format version, id,
 *                                   chunker parameters, key check
 *   chunks/<2 hex>/<64 hex id>      sealed, compressed chunks
 *   manifests/<instance>/<ts>_<size>  sealed manifests; a backup exists
 *                                   exactly when its manifest does
 *   records/<kind>/<name>           other sealed JSON records
 *   locks/<kind>-<id>               writer and gc locks
 *
 * A repository handle is shared by every FUSE thread: all functions are
 * thread-safe.  Functions return 0 or -errno and log the reason of a
 * failure once.
 */
#ifndef BFS_REPO_H
#define BFS_REPO_H

#include "backend.h"
#include "buf.h"
#include "chunker.h"
#include "crypto.h"
#include "manifest.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define BFS_REPO_FORMAT 1
/* chunk object header: "BFSC", version, codec, 2 reserved, u32 size, nonce */
#define BFS_CHUNK_HDR_LEN 24

struct bfs_repo;

/*
 * Write the config object of a new repository (fresh id, default chunker
 * parameters).  -EEXIST if the backend already holds one.
 */
int bfs_repo_init(struct bfs_backend *be, const uint8_t master[BFS_KEY_LEN]);
/* The same with the chunker's parameters (bfs_chunker_params_for). */
int bfs_repo_init_chunked(struct bfs_backend *be,
			  const uint8_t master[BFS_KEY_LEN],
			  const struct bfs_chunker_params *params);

/*
 * Open a repository.  be is borrowed and must outlive the repository.
 * -ENOENT: not initialized (no config object); -EKEYREJECTED: the key does
 * not match; -EBADMSG: unreadable config.  err gets a one-line reason.
 */
int bfs_repo_open(struct bfs_backend *be, const uint8_t master[BFS_KEY_LEN],
		  struct bfs_repo **out, char *err, size_t errlen);
void bfs_repo_close(struct bfs_repo *repo);

/* Borrowed, valid while the repository is open. */
struct bfs_backend *bfs_repo_backend(struct bfs_repo *repo);
const struct bfs_keys *bfs_repo_keys(const struct bfs_repo *repo);
const struct bfs_chunker *bfs_repo_chunker(const struct bfs_repo *repo);
const char *bfs_repo_id(const struct bfs_repo *repo);

/*
 * Store one chunk of plaintext: id = HMAC, skip the upload when an object
 * of that id exists already (dedup), else compress with codec/level
 * (stored uncompressed when that is not smaller), seal and put.
 * *stored gets the bytes written to the backend (0 when deduplicated).
 * The caller must hold a writer lock (bfs_repo_lock()) so gc cannot
 * remove a chunk between the existence check and the manifest commit.
 */
int bfs_repo_chunk_put(struct bfs_repo *repo, const void *data, size_t len,
		       int codec, int level, uint8_t id[BFS_ID_LEN],
		       uint64_t *stored);
/*
 * Fetch, authenticate, decompress one chunk whose plaintext must be size
 * bytes; out (appended) gets exactly size bytes.  A chunk that fails
 * authentication or decoding is -EIO with an error logged naming it;
 * -ENOENT if missing.
 */
int bfs_repo_chunk_get(struct bfs_repo *repo, const uint8_t id[BFS_ID_LEN],
		       uint32_t size, struct bfs_buf *out);
/*
 * The same check without a log line, for callers that report bad chunks
 * themselves (backupctl verify): on -EIO *why says what is wrong with
 * the chunk ("failed authentication", "truncated", ...; NULL when the
 * backend itself failed with EIO), on -ENOENT it is "missing"; else
 * NULL.  *why is static.
 */
int bfs_repo_chunk_check(struct bfs_repo *repo, const uint8_t id[BFS_ID_LEN],
			 uint32_t size, struct bfs_buf *out, const char **why);

/* Seal and store m as manifests/<instance>/<timestamp>_<size>,
 * create-if-absent (-EEXIST if that timestamp is taken). */
int bfs_repo_manifest_put(struct bfs_repo *repo, const struct bfs_manifest *m);
/*
 * Load and authenticate a manifest: *out is new.  size is the backup's
 * size as a listing gave it, or BFS_SIZE_UNKNOWN (then a listing finds
 * the object: one request more).  -ENOENT; -EIO when tampered, malformed
 * or not matching its name (logged).
 */
#define BFS_SIZE_UNKNOWN UINT64_MAX
int bfs_repo_manifest_get(struct bfs_repo *repo, const char *instance,
			  const char *timestamp, uint64_t size,
			  struct bfs_manifest **out);
int bfs_repo_manifest_delete(struct bfs_repo *repo, const char *instance,
			     const char *timestamp);

/* Name callbacks: a non-zero return stops and is returned. */
typedef int (*bfs_name_cb)(const char *name, void *arg);
/* Instance ids that have at least one manifest, sorted. */
int bfs_repo_list_instances(struct bfs_repo *repo, bfs_name_cb cb, void *arg);
/* An instance's backups, oldest first, with their sizes (from the
 * object names: unauthenticated until the manifest is loaded). */
typedef int (*bfs_backup_cb)(const char *timestamp, uint64_t size, void *arg);
int bfs_repo_list_backups(struct bfs_repo *repo, const char *instance,
			  bfs_backup_cb cb, void *arg);

/* Sealed JSON records (schedules, imported keys, ...): kind and name must
 * pass bfs_name_ok().  get returns a new reference. */
int bfs_repo_record_put(struct bfs_repo *repo, const char *kind,
			const char *name, json_t *value, unsigned flags);
int bfs_repo_record_get(struct bfs_repo *repo, const char *kind,
			const char *name, json_t **value);
int bfs_repo_record_delete(struct bfs_repo *repo, const char *kind,
			   const char *name);
int bfs_repo_record_list(struct bfs_repo *repo, const char *kind,
			 bfs_name_cb cb, void *arg);

/*
 * Locks.  A writer lock is shared (many backups at once); the gc lock is
 * exclusive of every writer.  Locks are objects under locks/ carrying the
 * host, pid and time; a lock older than BFS_LOCK_STALE_SECS is ignored and
 * removed (its holder died).  -EBUSY when the other kind is held.
 */
#define BFS_LOCK_STALE_SECS (6 * 3600)
struct bfs_repo_lock;
int bfs_repo_lock_writer(struct bfs_repo *repo, struct bfs_repo_lock **out);
int bfs_repo_lock_gc(struct bfs_repo *repo, struct bfs_repo_lock **out);
/* Refresh the lock's time so long jobs do not look stale.  -ESTALE if the
 * lock has vanished (another host removed it as stale): a gc may have run,
 * so the job must fail. */
int bfs_repo_lock_refresh(struct bfs_repo_lock *lock);
void bfs_repo_unlock(struct bfs_repo_lock *lock);

struct bfs_gc_stats {
	uint64_t chunks_total;
	uint64_t chunks_removed;
	uint64_t bytes_removed;
	uint64_t manifests;
};
/* Remove chunks no manifest references.  Takes the gc lock (-EBUSY while
 * a backup is being written). */
int bfs_repo_gc(struct bfs_repo *repo, struct bfs_gc_stats *stats);

#endif
