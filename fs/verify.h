/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Verifying backups (`backupctl verify`): read a backup whole, as a
 * restore would, and check it against what the repository recorded of
 * it, as db2ckbkp does for DB2 images.
 *
 * - A native backup: every chunk fetched, its GCM tag checked and
 *   decoded to exactly its recorded size (bfs_repo_chunk_check()),
 *   several at once but hashed in stream order; then the size and the
 *   SHA-256 of the whole stream compared with the manifest's.  A bad
 *   chunk does not stop the run: every bad chunk is counted (the first
 *   BFS_VERIFY_MAX_BAD kept), so one run tells how much is damaged.
 * - An imported Trove backup: the legacy object decoded whole
 *   (trove_backup.h: its ETag, every gzip CRC, the padding, a single
 *   object's MD5), then its size and SHA-256 compared with the
 *   manifest's.
 *
 * It only reads and takes no lock, so it runs beside a mounted backupfs,
 * a backup being written or a gc (a chunk gc removes because its backup
 * was deleted meanwhile shows as missing).
 */
#ifndef BFS_VERIFY_H
#define BFS_VERIFY_H

#include "crypto.h"
#include "manifest.h"
#include "repo.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum bfs_verify_status {
	BFS_VERIFY_OK = 0,
	BFS_VERIFY_BAD,	  /* the backup is not what the repository recorded */
	BFS_VERIFY_ERROR, /* it could not be checked (network, memory, ...) */
};

/* Bad chunks a result keeps (all of them are counted). */
#define BFS_VERIFY_MAX_BAD 100
/* Chunk fetches in flight at most. */
#define BFS_VERIFY_MAX_INFLIGHT 64

struct bfs_verify_chunk {
	uint8_t id[BFS_ID_LEN];
	uint64_t offset;
	uint32_t size;
	const char *why; /* static: "failed authentication", "missing", ... */
};

struct bfs_verify_result {
	int status;	  /* enum bfs_verify_status */
	uint64_t bytes;	  /* plaintext bytes read and found good */
	double seconds;	  /* wall-clock time of the run */
	char reason[768]; /* the first problem found; "" when ok */
	size_t nbad;	  /* bad chunks found (a native backup) */
	struct bfs_verify_chunk bad[BFS_VERIFY_MAX_BAD]; /* the first ones */
};

/* Called from the verifying thread: plaintext bytes done of total. */
typedef void (*bfs_verify_progress_fn)(uint64_t done, uint64_t total,
				       void *arg);

struct bfs_verifier;

/*
 * A verifier over repo.  repo, backend_conf (the config's "backend":
 * imported backups' legacy containers are opened on the same account)
 * and state_dir (Trove inflate indexes) are borrowed and must outlive
 * it.  inflight: chunk fetches at once (0: 8; at most
 * BFS_VERIFY_MAX_INFLIGHT).  0 or -errno.
 */
int bfs_verifier_new(struct bfs_repo *repo, json_t *backend_conf,
		     const char *state_dir, unsigned inflight,
		     struct bfs_verifier **out);
void bfs_verifier_free(struct bfs_verifier *v);

/*
 * Verify the backup m describes; r gets the verdict and returns its
 * status.  progress may be NULL.  One verification at a time per
 * verifier.
 */
int bfs_verify_backup(struct bfs_verifier *v, const struct bfs_manifest *m,
		      bfs_verify_progress_fn progress, void *arg,
		      struct bfs_verify_result *r);

#endif
