/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the "postgresql" datastore:
 *   postgresql.c  the driver
 *   pg_tar.c      checking a base backup tar (structure, PG_VERSION,
 *                 pg_control, and every file against backup_manifest)
 */
#ifndef BFS_PG_INT_H
#define BFS_PG_INT_H

#include "datastore.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Check the tar at path is a whole, unchanged PostgreSQL data directory:
 * safe names, no truncation, PG_VERSION and global/pg_control present,
 * and -- when it holds a backup_manifest (pg_basebackup's) -- every file
 * matching the manifest's size and checksum, the manifest its own.
 * version[vlen] receives PG_VERSION's content ("15").  -EINVAL: not a
 * data directory; -EBADMSG: damaged.
 */
int pg_tar_verify(const char *path, struct bfs_progress *progress,
		  char *version, size_t vlen, int *has_manifest, char *err,
		  size_t errlen);

/* CRC-32C as PostgreSQL computes it; start with crc 0. */
uint32_t pg_crc32c_update(uint32_t crc, const void *data, size_t len);

#endif
