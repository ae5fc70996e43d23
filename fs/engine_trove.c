// SPDX-License-Identifier: Apache-2.0
/*
 * Reading imported Trove backups (docs/FORMAT.md, "Imported Trove
 * backups"): a manifest of format "trove" has no chunks; its bytes are a
 * legacy object in another container of the same Swift account, decoded
 * by fs/trove_reader.c.
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
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "engine_int.h"
#include "log.h"
#include "trove.h"
#include "util.h"

/* Legacy containers opened so far: one backend each, for the engine's
 * lifetime. */
struct legacy_backend {
	char *container;
	struct bfs_backend *be;
};

struct bfs_trove_backups {
	pthread_mutex_t lock;
	struct legacy_backend *open;
	size_t nopen;
};

struct backup_trove {
	pthread_mutex_t lock;
	struct bfs_trove_reader *reader; /* NULL until the first read */
	struct bfs_backend *be;          /* borrowed from the engine */
	char *object;
	int failed; /* -errno of a failed open: logged once, sticks */
};

static json_t *trove_extra(const struct bfs_manifest *m)
{
	return json_object_get(m->extra, "trove");
}

static const char *trove_str(const struct bfs_manifest *m, const char *key)
{
	return json_string_value(json_object_get(trove_extra(m), key));
}

int engine_trove_new(struct bfs_trove_backups **out)
{
	struct bfs_trove_backups *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void engine_trove_free(struct bfs_trove_backups *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nopen; i++) {
		bfs_backend_close(t->open[i].be);
		free(t->open[i].container);
	}
	free(t->open);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int trove_backend(struct bfs_trove_backups *t, json_t *conf,
			 const char *container, struct bfs_backend **out,
			 char *err, size_t errlen)
{
	struct legacy_backend *grown;
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->nopen; i++)
		if (!strcmp(t->open[i].container, container))
			break;
	if (i == t->nopen) {
		grown = realloc(t->open, (i + 1) * sizeof(*grown));
		ret = grown ? 0 : -ENOMEM;
		if (grown)
			t->open = grown;
		if (!ret)
			/* never created: a legacy container that is gone
			 * is an error, not a new empty container */
			ret = bfs_backend_open_container(conf, container,
							 &t->open[i].be, err,
							 errlen);
		if (!ret)
			t->open[i].container = strdup(container);
		if (!ret && !t->open[i].container) {
			bfs_backend_close(t->open[i].be);
			ret = -ENOMEM;
		}
		if (!ret)
			t->nopen++;
	}
	if (!ret)
		*out = t->open[i].be;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

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
	bfs_trove_reader_free(bt->reader);
	free(bt->object);
	pthread_mutex_destroy(&bt->lock);
	free(bt);
}

static int trove_fetch(void *arg, uint64_t off, size_t len,
		       struct bfs_buf *out)
{
	struct backup_trove *bt = arg;

	return bfs_backend_get(bt->be, bt->object, off, len, out);
}

/* The object must be the one the import verified: same size and ETag. */
static int trove_check_object(struct backup_trove *bt,
			      const struct bfs_manifest *m, char *err,
			      size_t errlen)
{
	json_t *tr = trove_extra(m);
	const char *etag = trove_str(m, "etag");
	uint64_t want = (uint64_t)json_integer_value(
		json_object_get(tr, "object_size"));
	struct bfs_object_info info;
	int ret;

	ret = bfs_backend_info(bt->be, bt->object, &info);
	if (ret == -ENOENT)
		return bfs_errf(err, errlen, "the object is gone"), -EIO;
	if (ret)
		return bfs_errf(err, errlen, "cannot look at the object: %s",
				strerror(-ret)),
		       ret;
	if (info.size != want || !etag || strcmp(info.etag, etag)) {
		bfs_errf(err, errlen,
			 "the object changed since it was imported "
			 "(size %llu, ETag %s; imported: size %llu, ETag %s)",
			 (unsigned long long)info.size, info.etag,
			 (unsigned long long)want, etag ? etag : "?");
		return -EIO;
	}
	return 0;
}

static int trove_key(struct bfs_repo *repo, const struct bfs_manifest *m,
		     char **pass, char *err, size_t errlen)
{
	const char *name = trove_str(m, "key");
	json_t *rec = NULL;
	const char *p;
	int ret;

	*pass = NULL;
	if (!json_is_true(json_object_get(trove_extra(m), "encrypted")))
		return 0;
	ret = name ? bfs_repo_record_get(repo, "keys", name, &rec) : -ENOENT;
	p = json_string_value(json_object_get(rec, "pass"));
	if (!ret && p)
		*pass = strdup(p);
	json_decref(rec);
	if (ret || !p) {
		bfs_errf(err, errlen, "its key record %s is %s",
			 name ? name : "(none)",
			 ret == -ENOENT || !name ? "missing" : "unreadable");
		return -EIO;
	}
	return *pass ? 0 : -ENOMEM;
}

static int trove_open(struct bfs_engine *e, struct backup_trove *bt,
		      const struct bfs_manifest *m, char *err, size_t errlen)
{
	struct bfs_trove_params p = {0};
	char index[PATH_MAX], *pass = NULL;
	const char *container = trove_str(m, "container");
	const char *object = trove_str(m, "object");
	int ret;

	if (!container || !object)
		return bfs_errf(err, errlen, "no container or object"), -EIO;
	ret = trove_backend(e->trove, e->conf->backend, container, &bt->be,
			    err, errlen);
	if (!ret) {
		bt->object = strdup(object);
		ret = bt->object ? 0 : -ENOMEM;
	}
	if (!ret)
		ret = trove_check_object(bt, m, err, errlen);
	if (!ret)
		ret = trove_key(e->repo, m, &pass, err, errlen);
	if (ret)
		return ret;
	snprintf(index, sizeof(index), "%s/trove", e->conf->state_dir);
	if (mkdir(index, 0700) && errno != EEXIST)
		bfs_warn("cannot create %s: %s", index, strerror(errno));
	snprintf(index, sizeof(index), "%s/trove/%s.idx", e->conf->state_dir,
		 trove_str(m, "id") ?: m->backup_id);
	p.name = object;
	p.size = (uint64_t)json_integer_value(
		json_object_get(trove_extra(m), "object_size"));
	p.etag = trove_str(m, "etag");
	p.pass = pass;
	p.kdf = bfs_trove_kdf_from_name(trove_str(m, "kdf") ?: "auto");
	if (p.kdf < 0)
		p.kdf = BFS_TROVE_KDF_AUTO;
	p.index_path = index;
	p.fetch = trove_fetch;
	p.fetch_arg = bt;
	ret = bfs_trove_reader_open(&p, &bt->reader, err, errlen);
	if (pass)
		explicit_bzero(pass, strlen(pass));
	free(pass);
	if (ret == -EKEYREJECTED)
		bfs_errf(err, errlen, "wrong key: no key derivation decrypts "
				      "%s", object);
	return ret == -EKEYREJECTED ? -EIO : ret;
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
	if (!ret && !bt->reader) {
		ret = trove_open(e, bt, m, err, sizeof(err));
		if (ret) {
			/* the network may come back; integrity will not */
			if (ret == -EIO)
				bt->failed = ret;
			bfs_err("Trove backup %s/%s (%s): %s", m->instance,
				m->timestamp, trove_str(m, "object") ?: "?",
				err);
		}
	}
	*out = bt->reader;
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
			trove_str(m, "object") ?: "?",
			(unsigned long long)off, err[0] ? err : strerror((int)-n));
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
		v = trove_str(m, "id");
	else if (!strcmp(name, "checksum"))
		v = trove_str(m, "checksum");
	else if (!strcmp(name, "trove_parent_id"))
		v = trove_str(m, "parent_id");
	if (!v || !*v)
		return -ENODATA;
	*value = strdup(v);
	return *value ? 0 : -ENOMEM;
}
