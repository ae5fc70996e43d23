// SPDX-License-Identifier: Apache-2.0
/*
 * Opening the legacy object of an imported Trove backup: see
 * trove_backup.h.  Opening checks the object's size and ETag against
 * the ones the import verified, so an object changed since then is
 * refused before a byte of it is served or hashed.
 */
#include "trove_backup.h"

#include "crypto.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What a whole pass reads at a time (as the import does). */
#define TB_PIECE (4u << 20)
#define TB_FETCH (4u << 20)

struct legacy_backend {
	char *container;
	struct bfs_backend *be;
};

struct bfs_trove_containers {
	json_t *conf; /* borrowed */
	pthread_mutex_t lock;
	struct legacy_backend *open;
	size_t nopen;
};

struct bfs_trove_backup {
	struct bfs_backend *be; /* borrowed from the containers */
	char *object;
	struct bfs_trove_reader *reader;
};

int bfs_trove_containers_new(json_t *backend_conf,
			     struct bfs_trove_containers **out)
{
	struct bfs_trove_containers *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->conf = backend_conf;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void bfs_trove_containers_free(struct bfs_trove_containers *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nopen; i++) {
		bfs_backend_close(c->open[i].be);
		free(c->open[i].container);
	}
	free(c->open);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Open container as c->open[i] (i == c->nopen), lock held. */
static int tb_container_add(struct bfs_trove_containers *c, size_t i,
			    const char *container, char *err, size_t errlen)
{
	struct legacy_backend *grown;
	int ret;

	grown = realloc(c->open, (i + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->open = grown;
	ret = bfs_backend_open_container(c->conf, container, &c->open[i].be,
					 err, errlen);
	if (ret)
		return ret;
	c->open[i].container = strdup(container);
	if (!c->open[i].container) {
		bfs_backend_close(c->open[i].be);
		return -ENOMEM;
	}
	c->nopen++;
	return 0;
}

static int tb_container(struct bfs_trove_containers *c, const char *container,
			struct bfs_backend **out, char *err, size_t errlen)
{
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nopen; i++)
		if (!strcmp(c->open[i].container, container))
			break;
	if (i == c->nopen)
		ret = tb_container_add(c, i, container, err, errlen);
	if (!ret)
		*out = c->open[i].be;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static json_t *tb_extra(const struct bfs_manifest *m)
{
	return json_object_get(m->extra, "trove");
}

const char *bfs_trove_backup_str(const struct bfs_manifest *m, const char *key)
{
	return json_string_value(json_object_get(tb_extra(m), key));
}

static uint64_t tb_object_size(const struct bfs_manifest *m)
{
	return (uint64_t)json_integer_value(
		json_object_get(tb_extra(m), "object_size"));
}

static int tb_fetch(void *arg, uint64_t off, size_t len, struct bfs_buf *out)
{
	struct bfs_trove_backup *tb = arg;

	return bfs_backend_get(tb->be, tb->object, off, len, out);
}

/* The object must be the one the import verified: same size and ETag. */
static int tb_check_object(struct bfs_trove_backup *tb,
			   const struct bfs_manifest *m, char *err,
			   size_t errlen)
{
	const char *etag = bfs_trove_backup_str(m, "etag");
	uint64_t want = tb_object_size(m);
	struct bfs_object_info info;
	int ret;

	ret = bfs_backend_info(tb->be, tb->object, &info);
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

/* Trove's pass phrase from its key record: *pass is new (NULL for an
 * object that is not encrypted). */
static int tb_key(struct bfs_repo *repo, const struct bfs_manifest *m,
		  char **pass, char *err, size_t errlen)
{
	const char *name = bfs_trove_backup_str(m, "key");
	json_t *rec = NULL;
	const char *p;
	int ret;

	*pass = NULL;
	if (!json_is_true(json_object_get(tb_extra(m), "encrypted")))
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

static int tb_hex32(const char *s)
{
	size_t i;

	for (i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return !s[32];
}

/* The reader's parameters; index gets the index file's path. */
static void tb_params(struct bfs_trove_backup *tb, const struct bfs_manifest *m,
		      const char *state_dir, unsigned flags, char *index,
		      size_t len, struct bfs_trove_params *p)
{
	const char *layout = bfs_trove_backup_str(m, "layout");

	snprintf(index, len, "%s/trove", state_dir);
	if (mkdir(index, 0700) && errno != EEXIST)
		bfs_warn("cannot create %s: %s", index, strerror(errno));
	snprintf(index, len, "%s/trove/%s.idx", state_dir,
		 bfs_trove_backup_str(m, "id") ?: m->backup_id);
	memset(p, 0, sizeof(*p));
	p->name = tb->object;
	p->size = tb_object_size(m);
	p->etag = bfs_trove_backup_str(m, "etag");
	p->kdf = bfs_trove_kdf_from_name(bfs_trove_backup_str(m, "kdf")
						 ?: "auto");
	if (p->kdf < 0)
		p->kdf = BFS_TROVE_KDF_AUTO;
	p->index_path = index;
	p->fetch = tb_fetch;
	p->fetch_arg = tb;
	if (!(flags & BFS_TROVE_BACKUP_WHOLE))
		return;
	p->cursors = 1;
	p->fetch_size = TB_FETCH;
	/* a single object's ETag is its MD5; a large object's is not */
	if (layout && !strcmp(layout, "single") && p->etag && tb_hex32(p->etag))
		p->expect_md5 = p->etag;
}

/* Everything after the container: the HEAD, the key, the reader. */
static int tb_open_reader(struct bfs_trove_backup *tb, struct bfs_repo *repo,
			  const char *state_dir, const struct bfs_manifest *m,
			  unsigned flags, char *err, size_t errlen)
{
	struct bfs_trove_params p;
	char index[PATH_MAX], *pass = NULL;
	int ret;

	ret = tb_check_object(tb, m, err, errlen);
	if (!ret)
		ret = tb_key(repo, m, &pass, err, errlen);
	if (ret)
		return ret;
	tb_params(tb, m, state_dir, flags, index, sizeof(index), &p);
	p.pass = pass;
	ret = bfs_trove_reader_open(&p, &tb->reader, err, errlen);
	if (pass)
		explicit_bzero(pass, strlen(pass));
	free(pass);
	if (ret == -EKEYREJECTED)
		bfs_errf(err, errlen,
			 "wrong key: no key derivation decrypts %s",
			 tb->object);
	return ret == -EKEYREJECTED ? -EIO : ret;
}

int bfs_trove_backup_open(struct bfs_trove_containers *c, struct bfs_repo *repo,
			  const char *state_dir, const struct bfs_manifest *m,
			  unsigned flags, struct bfs_trove_backup **out,
			  char *err, size_t errlen)
{
	const char *container = bfs_trove_backup_str(m, "container");
	const char *object = bfs_trove_backup_str(m, "object");
	struct bfs_trove_backup *tb;
	int ret;

	*out = NULL;
	if (!bfs_manifest_is_trove(m) || !container || !object)
		return bfs_errf(err, errlen, "no container or object"), -EIO;
	tb = calloc(1, sizeof(*tb));
	if (!tb)
		return -ENOMEM;
	ret = tb_container(c, container, &tb->be, err, errlen);
	if (!ret) {
		tb->object = strdup(object);
		ret = tb->object ? 0 : -ENOMEM;
	}
	if (!ret)
		ret = tb_open_reader(tb, repo, state_dir, m, flags, err,
				     errlen);
	if (ret) {
		bfs_trove_backup_free(tb);
		return ret;
	}
	*out = tb;
	return 0;
}

void bfs_trove_backup_free(struct bfs_trove_backup *tb)
{
	if (!tb)
		return;
	bfs_trove_reader_free(tb->reader);
	free(tb->object);
	free(tb);
}

struct bfs_trove_reader *bfs_trove_backup_reader(struct bfs_trove_backup *tb)
{
	return tb->reader;
}

int bfs_trove_hash_all(struct bfs_trove_reader *r, uint8_t sha256[32],
		       uint64_t *size, bfs_trove_progress_fn progress,
		       void *arg, char *err, size_t errlen)
{
	struct bfs_sha256 *sha = bfs_sha256_new();
	uint8_t *buf = malloc(TB_PIECE);
	uint64_t off = 0, end;
	ssize_t n = -ENOMEM;

	if (!sha || !buf)
		goto out_free;
	/* reading up to a read of 0 bytes reaches the verified end: the
	 * last trailer, the padding, the MD5 */
	while ((n = bfs_trove_read(r, off, TB_PIECE, buf, err, errlen)) > 0) {
		bfs_sha256_update(sha, buf, (size_t)n);
		off += (uint64_t)n;
		if (progress)
			progress(off, arg);
	}
	if (n < 0)
		goto out_free;
	bfs_sha256_final(sha, sha256);
	sha = NULL;
	if (!bfs_trove_reader_size(r, &end) || end != off) {
		bfs_errf(err, errlen,
			 "the stream did not reach a verified "
			 "end");
		n = -EIO;
		goto out_free;
	}
	*size = off;
out_free:
	if (n == -ENOMEM)
		bfs_errf(err, errlen, "out of memory");
	bfs_sha256_free(sha);
	free(buf);
	return (int)n;
}
