/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's side of imported Trove backups (engine_trove.c): per
 * backup a legacy reader opened on the first read (trove_backup.h),
 * through the engine's legacy containers.  Engine-internal.
 */
#ifndef BFS_ENGINE_TROVE_H
#define BFS_ENGINE_TROVE_H

#include <stdint.h>
#include <sys/types.h>

#include "manifest.h"
#include "trove_backup.h"

struct bfs_engine;
struct backup_trove; /* one backup's legacy reader */

/* *out: NULL for a native backup, else the state reads of m need. */
int engine_trove_backup_new(const struct bfs_manifest *m,
			    struct backup_trove **out);
void engine_trove_backup_free(struct backup_trove *bt);

/* Read as bfs_backup_read() does: never short before m->size; -EIO
 * (with a log line naming the backup) on any failure. */
ssize_t engine_trove_read(struct bfs_engine *e, struct backup_trove *bt,
			  const struct bfs_manifest *m, void *buf, size_t size,
			  uint64_t off);

/* The Trove-only xattrs (trove_id, checksum, trove_parent_id): 0, or
 * -ENODATA (not a Trove backup, or not known). */
int engine_trove_xattr(const struct bfs_manifest *m, const char *name,
		       char **value);

#endif
