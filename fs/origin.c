// SPDX-License-Identifier: Apache-2.0
/*
 * Where a file written into restore/ came from.  A restore gets bytes,
 * not a backup: a base backup tar of PostgreSQL is a valid tar for a
 * "files" instance too.  But a file that is exactly a stored backup (same
 * size, same SHA-256) tells its datastore, and restoring it into an
 * instance of another datastore is refused with a reason that names the
 * backup -- before the datastore is touched.
 */
#include "crypto.h"
#include "engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ORIGIN_BLOCK (1u << 20)

/* Names collected from a listing (the callback may not call back). */
struct origin_names {
	char **v;
	size_t n;
};

static int origin_collect(const char *name, void *arg)
{
	struct origin_names *l = arg;
	char **grown = realloc(l->v, (l->n + 1) * sizeof(*l->v));

	if (!grown)
		return -ENOMEM;
	l->v = grown;
	l->v[l->n] = strdup(name);
	return l->v[l->n++] ? 0 : -ENOMEM;
}

static void origin_names_free(struct origin_names *l)
{
	while (l->n)
		free(l->v[--l->n]);
	free(l->v);
}

static int origin_hash(int fd, uint8_t out[32])
{
	struct bfs_sha256 *h = bfs_sha256_new();
	char *buf = malloc(ORIGIN_BLOCK);
	off_t off = 0;
	ssize_t n;

	if (!h || !buf) {
		bfs_sha256_free(h);
		free(buf);
		return -ENOMEM;
	}
	while ((n = pread(fd, buf, ORIGIN_BLOCK, off)) > 0) {
		bfs_sha256_update(h, buf, (size_t)n);
		off += n;
	}
	free(buf);
	if (n < 0) {
		bfs_sha256_free(h);
		return -errno;
	}
	bfs_sha256_final(h, out);
	return 0;
}

/* Is backup ts of inst the file (size, sha)?  Its datastore if so. */
static int origin_match(struct bfs_instance *inst, const char *ts,
			uint64_t size, const uint8_t sha[32], char *ds,
			size_t dslen)
{
	struct bfs_backup *b;
	uint64_t bsize;
	int match;

	if (bfs_instance_backup_stat(inst, ts, &bsize) || bsize != size)
		return 0;
	if (bfs_instance_backup(inst, ts, &b))
		return 0;
	match = b->m->size == size && !memcmp(b->m->sha256, sha, 32) &&
		b->m->datastore && b->m->datastore[0];
	if (match)
		snprintf(ds, dslen, "%s", b->m->datastore);
	bfs_backup_put(b);
	return match;
}

int engine_restore_origin(struct bfs_engine *e, int fd, uint64_t size,
			  const uint8_t *sha256, struct engine_origin *out)
{
	struct origin_names insts = {0}, backups;
	struct bfs_instance *inst;
	uint8_t sha[32];
	size_t i, j;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = bfs_engine_list_instances(e, origin_collect, &insts);
	if (!rc && sha256)
		memcpy(sha, sha256, sizeof(sha));
	else if (!rc)
		rc = origin_hash(fd, sha);
	for (i = 0; !rc && !out->found && i < insts.n; i++) {
		if (bfs_engine_instance(e, insts.v[i], &inst))
			continue;
		backups = (struct origin_names){0};
		rc = bfs_instance_list_backups(inst, origin_collect, &backups);
		for (j = 0; !rc && j < backups.n; j++) {
			if (!origin_match(inst, backups.v[j], size, sha,
					  out->datastore,
					  sizeof(out->datastore)))
				continue;
			snprintf(out->instance, sizeof(out->instance), "%s",
				 insts.v[i]);
			snprintf(out->ts, sizeof(out->ts), "%s", backups.v[j]);
			out->found = 1;
			break;
		}
		origin_names_free(&backups);
	}
	origin_names_free(&insts);
	return rc;
}
