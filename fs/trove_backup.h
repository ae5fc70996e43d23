/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Imported Trove backups (docs/FORMAT.md, "Imported Trove backups"): the
 * legacy object a manifest of format "trove" points at, opened for
 * reading.  Shared by the read path (engine_trove.c) and by
 * `backupctl verify` (verify.c), so that both check the same things the
 * same way: the object still has the size and ETag the import verified,
 * its key comes from the sealed record extra.trove.key names, and the
 * decoder checks every gzip CRC and the padding.
 */
#ifndef BFS_TROVE_BACKUP_H
#define BFS_TROVE_BACKUP_H

#include "backend.h"
#include "manifest.h"
#include "repo.h"
#include "trove.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Legacy containers, each opened on first use (never created: a legacy
 * container that is gone is an error, not a new empty one) and kept
 * until the set is freed.  backend_conf is the config's "backend"
 * (borrowed: it must outlive the set).  Thread-safe.
 */
struct bfs_trove_containers;

int bfs_trove_containers_new(json_t *backend_conf,
			     struct bfs_trove_containers **out);
void bfs_trove_containers_free(struct bfs_trove_containers *c);

/* extra.trove.<key> of m as a string, or NULL: borrowed from m. */
const char *bfs_trove_backup_str(const struct bfs_manifest *m, const char *key);

/* bfs_trove_backup_open() flags */
/* The caller reads the whole object once, from byte 0: one decode
 * cursor, larger fetches, and a single object's MD5 checked against its
 * ETag at the end (the import's check, made again). */
#define BFS_TROVE_BACKUP_WHOLE 0x1

/* One imported backup's legacy object, open.  Reads through its reader
 * may run from several threads at once, as bfs_trove_read() allows. */
struct bfs_trove_backup;

/*
 * Open the legacy object of m (format "trove"): its container from c, a
 * HEAD that checks the object still has the size and ETag the import
 * verified, its key from the repository's key record, and a reader that
 * uses (and leaves) the inflate index <state_dir>/trove/<trove id>.idx.
 * *out is new.  -EIO with err saying why when the object cannot be the
 * one the import verified (gone, changed, its key record missing or
 * wrong, extra.trove malformed); other -errno (network, memory) may pass
 * with time.
 */
int bfs_trove_backup_open(struct bfs_trove_containers *c, struct bfs_repo *repo,
			  const char *state_dir, const struct bfs_manifest *m,
			  unsigned flags, struct bfs_trove_backup **out,
			  char *err, size_t errlen);
void bfs_trove_backup_free(struct bfs_trove_backup *tb);
/* Borrowed: valid until bfs_trove_backup_free(). */
struct bfs_trove_reader *bfs_trove_backup_reader(struct bfs_trove_backup *tb);

/* Progress of a long pass: plaintext bytes done so far. */
typedef void (*bfs_trove_progress_fn)(uint64_t done, void *arg);

/*
 * Read r from byte 0 to the verified end of its stream (every CRC, the
 * padding, and the MD5 the reader was told to expect), hashing: *size
 * and sha256 of the whole plaintext.  progress (may be NULL) is called
 * after each piece.  0, or -errno with err set.
 */
int bfs_trove_hash_all(struct bfs_trove_reader *r, uint8_t sha256[32],
		       uint64_t *size, bfs_trove_progress_fn progress,
		       void *arg, char *err, size_t errlen);

#endif
