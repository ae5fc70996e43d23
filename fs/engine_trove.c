// SPDX-License-Identifier: Apache-2.0
/*
 * Reading imported Trove backups (docs/FORMAT.md, "Imported Trove
 * backups"): a manifest of format "trove" has no chunks; its bytes are a
 * legacy object in another container of the same Swift account, opened
 * by fs/trove_backup.c and decoded by fs/trove_reader.c.
 *
 * The legacy reader is opened on the first read, not when the manifest
 * is loaded: stat, xattrs and ls need no request to the legacy container
 * and no key.  Opening checks the object's ETag against the one the
 * import verified, so an object changed since then is refused before a
 * byte of it is served.  Every failure is logged once per backup with
 * its name and fails the read with EIO.
 */
#include "engine_trove.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "log.h"
#include "trove.h"

struct backup_trove {
	pthread_mutex_t lock;
	struct bfs_trove_backup *tb; /* NULL until the first read */
	int failed; /* -errno of a failed open: logged once, sticks */
};

int engine_trove_backup_new(const struct bfs_manifest *m,
			    struct backup_trove **out)
{
	struct backup_trove *bt;

	*out = NULL;
	if (!bfs_manifest_is_trove(m))
		return 0;
	bt = calloc(1, sizeof(*bt));
	if (!bt)
		return -ENOMEM;
	pthread_mutex_init(&bt->lock, NULL);
	*out = bt;
	return 0;
}

void engine_trove_backup_free(struct backup_trove *bt)
{
	if (!bt)
		return;
	bfs_trove_backup_free(bt->tb);
	pthread_mutex_destroy(&bt->lock);
	free(bt);
}

/* The reader, opened on first use; a failed open is logged once and
 * makes every read fail. */
static int trove_reader(struct bfs_engine *e, struct backup_trove *bt,
			const struct bfs_manifest *m,
			struct bfs_trove_reader **out)
{
	char err[512] = "";
	int ret;

	pthread_mutex_lock(&bt->lock);
	ret = bt->failed;
	if (!ret && !bt->tb) {
		ret = bfs_trove_backup_open(e->trove, e->repo,
					    e->conf->state_dir, m, 0, &bt->tb,
					    err, sizeof(err));
		if (ret) {
			/* the network may come back; integrity will not */
			if (ret == -EIO)
				bt->failed = ret;
			bfs_err("Trove backup %s/%s (%s): %s", m->instance,
				m->timestamp,
				bfs_trove_backup_str(m, "object") ?: "?", err);
		}
	}
	*out = bt->tb ? bfs_trove_backup_reader(bt->tb) : NULL;
	pthread_mutex_unlock(&bt->lock);
	return ret ? -EIO : 0;
}

ssize_t engine_trove_read(struct bfs_engine *e, struct backup_trove *bt,
			  const struct bfs_manifest *m, void *buf, size_t size,
			  uint64_t off)
{
	struct bfs_trove_reader *r;
	char err[512] = "";
	ssize_t n;

	if (off >= m->size || !size)
		return 0;
	if (size > m->size - off)
		size = (size_t)(m->size - off);
	if (trove_reader(e, bt, m, &r))
		return -EIO;
	n = bfs_trove_read(r, off, size, buf, err, sizeof(err));
	if (n >= 0 && (size_t)n != size) {
		/* the import measured the size: a shorter stream is wrong */
		snprintf(err, sizeof(err),
			 "the stream ends at %llu, before the %llu bytes the "
			 "import verified",
			 (unsigned long long)(off + (uint64_t)n),
			 (unsigned long long)m->size);
		n = -EIO;
	}
	if (n < 0)
		bfs_err("Trove backup %s/%s (%s): read at %llu: %s",
			m->instance, m->timestamp,
			bfs_trove_backup_str(m, "object") ?: "?",
			(unsigned long long)off,
			err[0] ? err : strerror((int)-n));
	return n < 0 ? -EIO : n;
}

int engine_trove_xattr(const struct bfs_manifest *m, const char *name,
		       char **value)
{
	const char *v = NULL;

	*value = NULL;
	if (!bfs_manifest_is_trove(m))
		return -ENODATA;
	if (!strcmp(name, "trove_id"))
		v = bfs_trove_backup_str(m, "id");
	else if (!strcmp(name, "checksum"))
		v = bfs_trove_backup_str(m, "checksum");
	else if (!strcmp(name, "trove_parent_id"))
		v = bfs_trove_backup_str(m, "parent_id");
	if (!v || !*v)
		return -ENODATA;
	*value = strdup(v);
	return *value ? 0 : -ENOMEM;
}
