// SPDX-License-Identifier: Apache-2.0
#include "codec.h"
#include "engine_int.h"
#include "log.h"
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ---- */

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int engine_write_json(const char *path, json_t *value)
{
	char tmp[4096];
	const char *slash = strrchr(path, '/');
	int fd, ret = 0;
	char *text;
	size_t n;

	/* The temporary is a hidden name in the same directory, not
	 * path + suffix, which could pass NAME_MAX for a 255-byte name. */
	if (!slash || (size_t)(slash - path) + 16 >= sizeof(tmp))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%.*s/.tmp-XXXXXX", (int)(slash - path),
		 path);
	text = json_dumps(value, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	n = strlen(text);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	if (write(fd, text, n) != (ssize_t)n || fsync(fd))
		ret = errno ? -errno : -EIO;
	close(fd);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
out_free:
	if (ret)
		bfs_err("cannot write '%s': %s", path, strerror(-ret));
	free(text);
	return ret;
}

double engine_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- instances ---- */

int engine_instance_new(struct bfs_engine *e, const char *id, json_t *conf,
			struct bfs_instance **out, char *err, size_t errlen)
{
	struct bfs_instance *inst;
	char path[4096];
	int ret;

	if (!bfs_name_ok(id)) {
		snprintf(err, errlen, "invalid instance id '%s'", id);
		return -EINVAL;
	}
	inst = calloc(1, sizeof(*inst));
	if (!inst)
		return -ENOMEM;
	inst->e = e;
	pthread_mutex_init(&inst->lock, NULL);
	pthread_cond_init(&inst->job_done, NULL);
	inst->id = strdup(id);
	snprintf(path, sizeof(path), "%s/instances/%s", e->conf->state_dir, id);
	inst->dir = strdup(path);
	inst->records = json_object();
	inst->last = json_object();
	if (!inst->id || !inst->dir || !inst->records || !inst->last) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = mkdir_p(inst->dir, 0700);
	if (ret) {
		snprintf(err, errlen, "cannot create state directory '%s': %s",
			 inst->dir, strerror(-ret));
		goto out_free;
	}
	if (conf) {
		ret = bfs_datastore_open(id, conf, inst->dir, &inst->ds, err,
					 errlen);
		if (ret)
			goto out_free;
	}
	ret = jobs_load(inst);
	if (ret) {
		snprintf(err, errlen, "cannot load job records of '%s': %s",
			 id, strerror(-ret));
		goto out_free;
	}
	*out = inst;
	return 0;

out_free:
	engine_instance_free(inst);
	return ret;
}

void engine_instance_free(struct bfs_instance *inst)
{
	if (!inst)
		return;
	jobs_wait_all(inst);
	for (size_t i = 0; i < inst->nbackups; i++)
		if (inst->backups[i].b)
			bfs_backup_put(inst->backups[i].b);
	free(inst->backups);
	if (inst->ds)
		bfs_datastore_close(inst->ds);
	json_decref(inst->records);
	json_decref(inst->last);
	pthread_mutex_destroy(&inst->lock);
	pthread_cond_destroy(&inst->job_done);
	free(inst->error);
	free(inst->dir);
	free(inst->id);
	free(inst);
}

static int inst_cmp(const void *a, const void *b)
{
	const struct bfs_instance *const *x = a, *const *y = b;

	return strcmp((*x)->id, (*y)->id);
}

/* Find by id; engine lock held. */
static struct bfs_instance *engine_find(struct bfs_engine *e, const char *id)
{
	for (size_t lo = 0, hi = e->ninstances; lo < hi;) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(id, e->instances[mid]->id);

		if (!c)
			return e->instances[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Insert; engine lock held. */
static int engine_add(struct bfs_engine *e, struct bfs_instance *inst)
{
	struct bfs_instance **p;

	p = realloc(e->instances, (e->ninstances + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	e->instances = p;
	e->instances[e->ninstances++] = inst;
	qsort(e->instances, e->ninstances, sizeof(*p), inst_cmp);
	return 0;
}

struct discover_ctx {
	struct bfs_engine *e;
};

static int discover_one(const char *id, void *arg)
{
	struct discover_ctx *ctx = arg;
	struct bfs_instance *inst;
	char err[512];

	if (engine_find(ctx->e, id))
		return 0;
	if (engine_instance_new(ctx->e, id, NULL, &inst, err, sizeof(err))) {
		bfs_warn("skipping instance '%s' found in the repository: %s",
			 id, err);
		return 0;
	}
	if (engine_add(ctx->e, inst))
		engine_instance_free(inst);
	return 0;
}

/* Add the repository's instances we do not know yet.  Engine lock held
 * (listing is rare: at most once per ENGINE_LISTING_TTL). */
static void engine_discover(struct bfs_engine *e)
{
	struct discover_ctx ctx = {e};
	time_t now = time(NULL);

	if (e->discovered && now - e->discovered < ENGINE_LISTING_TTL)
		return;
	if (bfs_repo_list_instances(e->repo, discover_one, &ctx))
		bfs_warn("cannot list the repository's instances");
	e->discovered = now;
}

int bfs_engine_list_instances(struct bfs_engine *e, bfs_name_cb cb, void *arg)
{
	int ret = 0;

	pthread_mutex_lock(&e->lock);
	engine_discover(e);
	for (size_t i = 0; i < e->ninstances && !ret; i++)
		ret = cb(e->instances[i]->id, arg);
	pthread_mutex_unlock(&e->lock);
	return ret;
}

int bfs_engine_instance(struct bfs_engine *e, const char *id,
			struct bfs_instance **out)
{
	struct bfs_instance *inst;

	pthread_mutex_lock(&e->lock);
	inst = engine_find(e, id);
	if (!inst) {
		engine_discover(e);
		inst = engine_find(e, id);
	}
	pthread_mutex_unlock(&e->lock);
	*out = inst;
	return inst ? 0 : -ENOENT;
}

const char *bfs_instance_id(const struct bfs_instance *inst)
{
	return inst->id;
}

const char *bfs_instance_datastore(const struct bfs_instance *inst)
{
	return inst->ds ? bfs_datastore_name(inst->ds) : NULL;
}

/* ---- backups ---- */

void engine_invalidate_backups(struct bfs_instance *inst)
{
	pthread_mutex_lock(&inst->lock);
	inst->listed = 0;
	pthread_mutex_unlock(&inst->lock);
}

struct list_ctx {
	struct backup_slot *slots;
	size_t n, cap;
};

static int list_collect(const char *ts, uint64_t size, void *arg)
{
	struct list_ctx *ctx = arg;

	/* Two manifests of one timestamp (a clash between hosts): the
	 * first one listed is the backup, as repo_manifest_find() says. */
	if (ctx->n && !strcmp(ctx->slots[ctx->n - 1].ts, ts))
		return 0;
	if (ctx->n == ctx->cap) {
		size_t cap = ctx->cap ? 2 * ctx->cap : 64;
		struct backup_slot *p = realloc(ctx->slots, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		ctx->slots = p;
		ctx->cap = cap;
	}
	memcpy(ctx->slots[ctx->n].ts, ts, BFS_TIMESTAMP_LEN + 1);
	ctx->slots[ctx->n].size = size;
	ctx->slots[ctx->n].b = NULL;
	ctx->n++;
	return 0;
}

static struct backup_slot *slot_find(struct backup_slot *s, size_t n,
				     const char *ts)
{
	for (size_t lo = 0, hi = n; lo < hi;) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(ts, s[mid].ts);

		if (!c)
			return &s[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/*
 * Refresh the backup listing when stale, keeping loaded manifests of
 * backups that still exist.  Instance lock held; the listing itself runs
 * under it so concurrent lookups do not list twice.
 */
static int inst_refresh(struct bfs_instance *inst)
{
	struct list_ctx ctx = {0};
	time_t now = time(NULL);
	int ret;

	if (inst->listed && now - inst->listed < ENGINE_LISTING_TTL)
		return 0;
	ret = bfs_repo_list_backups(inst->e->repo, inst->id, list_collect,
				    &ctx);
	if (ret) {
		free(ctx.slots);
		return ret;
	}
	for (size_t i = 0; i < inst->nbackups; i++) {
		struct backup_slot *old = &inst->backups[i];
		struct backup_slot *s = slot_find(ctx.slots, ctx.n, old->ts);

		if (s && s->size == old->size)
			s->b = old->b;
		else if (old->b)
			bfs_backup_put(old->b);
	}
	free(inst->backups);
	inst->backups = ctx.slots;
	inst->nbackups = ctx.n;
	inst->listed = now;
	return 0;
}

int bfs_instance_list_backups(struct bfs_instance *inst, bfs_name_cb cb,
			      void *arg)
{
	char (*names)[BFS_TIMESTAMP_LEN + 1];
	size_t n;
	int ret;

	/* Copy the names so the callback runs without the lock. */
	pthread_mutex_lock(&inst->lock);
	ret = inst_refresh(inst);
	n = inst->nbackups;
	names = ret ? NULL : malloc((n ? n : 1) * sizeof(*names));
	if (!ret && !names)
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < n; i++)
		memcpy(names[i], inst->backups[i].ts, sizeof(names[i]));
	pthread_mutex_unlock(&inst->lock);
	for (size_t i = 0; !ret && i < n; i++)
		ret = cb(names[i], arg);
	free(names);
	return ret;
}

int bfs_instance_latest(struct bfs_instance *inst, char *ts)
{
	int ret;

	pthread_mutex_lock(&inst->lock);
	ret = inst_refresh(inst);
	if (!ret && !inst->nbackups)
		ret = -ENOENT;
	if (!ret)
		memcpy(ts, inst->backups[inst->nbackups - 1].ts,
		       BFS_TIMESTAMP_LEN + 1);
	pthread_mutex_unlock(&inst->lock);
	return ret;
}

static struct bfs_backup *backup_new(struct bfs_manifest *m)
{
	struct bfs_backup *b = malloc(sizeof(*b));

	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->m = m;
	if (engine_trove_backup_new(m, &b->trove)) {
		free(b);
		return NULL;
	}
	return b;
}

void bfs_backup_put(struct bfs_backup *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		engine_trove_backup_free(b->trove);
		bfs_manifest_free(b->m);
		free(b);
	}
}

int bfs_instance_backup_stat(struct bfs_instance *inst, const char *ts,
			     uint64_t *size)
{
	struct backup_slot *s;
	int ret;

	pthread_mutex_lock(&inst->lock);
	ret = inst_refresh(inst);
	s = ret ? NULL : slot_find(inst->backups, inst->nbackups, ts);
	if (s)
		*size = s->size;
	pthread_mutex_unlock(&inst->lock);
	return ret ? ret : s ? 0 : -ENOENT;
}

int bfs_instance_backup(struct bfs_instance *inst, const char *ts,
			struct bfs_backup **out)
{
	struct bfs_manifest *m;
	struct backup_slot *s;
	struct bfs_backup *b;
	uint64_t size = 0;
	int ret;

	pthread_mutex_lock(&inst->lock);
	ret = inst_refresh(inst);
	s = ret ? NULL : slot_find(inst->backups, inst->nbackups, ts);
	if (s)
		size = s->size;
	if (s && s->b) {
		atomic_fetch_add(&s->b->refs, 1);
		*out = s->b;
		pthread_mutex_unlock(&inst->lock);
		return 0;
	}
	pthread_mutex_unlock(&inst->lock);
	if (ret)
		return ret;
	if (!s)
		return -ENOENT;

	/* Load outside the lock: a slow backend must not stall the
	 * instance.  Two threads may load the same manifest; one wins. */
	ret = bfs_repo_manifest_get(inst->e->repo, inst->id, ts, size, &m);
	if (ret)
		return ret;
	b = backup_new(m);
	if (!b) {
		bfs_manifest_free(m);
		return -ENOMEM;
	}
	pthread_mutex_lock(&inst->lock);
	s = slot_find(inst->backups, inst->nbackups, ts);
	if (s && !s->b) {
		s->b = b;
		atomic_fetch_add(&b->refs, 1);
	}
	pthread_mutex_unlock(&inst->lock);
	*out = b;
	return 0;
}

ssize_t bfs_backup_read(struct bfs_engine *e, struct bfs_backup *b,
			struct bfs_read_state *st, void *buf, size_t size,
			uint64_t off)
{
	if (b->trove)
		return engine_trove_read(e, b->trove, b->m, buf, size, off);
	return bfs_read(e->cache, b->m, st, e->conf->readahead, buf, size, off);
}

const char *const bfs_backup_xattr_names[] = {
	"id", "datastore", "version", "format", "codec", "size", "sha256",
	"label", "parent", "strategy", "created", "stored",
	/* imported Trove backups only */
	"trove_id", "checksum", "trove_parent_id", NULL,
};

static char *xattr_string(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int bfs_backup_xattr(const struct bfs_backup *b, const char *name,
		     char **value)
{
	const struct bfs_manifest *m = b->m;
	char num[32], hex[65];

	*value = NULL;
	if (!strcmp(name, "id")) {
		*value = xattr_string(m->backup_id);
	} else if (!strcmp(name, "datastore")) {
		*value = xattr_string(m->datastore);
	} else if (!strcmp(name, "version")) {
		*value = xattr_string(m->datastore_version);
	} else if (!strcmp(name, "format")) {
		*value = xattr_string(m->format);
	} else if (!strcmp(name, "codec")) {
		*value = xattr_string(m->codec);
	} else if (!strcmp(name, "size") || !strcmp(name, "stored")) {
		snprintf(num, sizeof(num), "%llu",
			 (unsigned long long)(name[1] == 'i' ? m->size
							     : m->stored_bytes));
		*value = strdup(num);
	} else if (!strcmp(name, "sha256")) {
		bfs_hex(m->sha256, sizeof(m->sha256), hex);
		*value = strdup(hex);
	} else if (!strcmp(name, "label")) {
		*value = xattr_string(m->label);
	} else if (!strcmp(name, "parent")) {
		*value = xattr_string(m->parent);
		/* a Trove parent that was not imported: Trove's id of it */
		if (!*value)
			return engine_trove_xattr(m, "trove_parent_id", value);
	} else if (!strcmp(name, "strategy")) {
		*value = json_dumps(m->strategy, JSON_COMPACT | JSON_SORT_KEYS);
	} else if (!strcmp(name, "created")) {
		*value = xattr_string(m->timestamp);
	} else {
		return engine_trove_xattr(m, name, value);
	}
	return *value ? 0 : -ENODATA;
}

int bfs_instance_delete_backup(struct bfs_instance *inst, const char *ts)
{
	uint64_t size = 0;
	int have_size, ret;

	have_size = !bfs_instance_backup_stat(inst, ts, &size);
	ret = bfs_repo_manifest_delete(inst->e->repo, inst->id, ts);
	engine_invalidate_backups(inst);
	if (!ret)
		events_emit(inst, "backup.delete.end",
			    json_pack("{ssso}", "backup", ts, "bytes",
				      have_size ? json_integer((json_int_t)size)
						: json_null()));
	return ret;
}

/* ---- status and events ---- */

int bfs_instance_status(struct bfs_instance *inst, char **json, size_t *len)
{
	json_t *st;

	pthread_mutex_lock(&inst->lock);
	st = jobs_status(inst);
	pthread_mutex_unlock(&inst->lock);
	if (!st)
		return -ENOMEM;
	*json = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(st);
	if (!*json)
		return -ENOMEM;
	*len = strlen(*json);
	/* End with a newline, as text files do. */
	{
		char *p = realloc(*json, *len + 2);

		if (!p) {
			free(*json);
			return -ENOMEM;
		}
		p[(*len)++] = '\n';
		p[*len] = 0;
		*json = p;
	}
	return 0;
}

int bfs_instance_events(struct bfs_instance *inst, char **text, size_t *len)
{
	return events_read(inst, text, len);
}

/* ---- the engine ---- */

static int engine_lock_state(struct bfs_engine *e, char *err, size_t errlen)
{
	const char *dir = e->conf->state_dir;
	char path[4096];
	int ret;

	ret = mkdir_p(dir, 0700);
	if (ret) {
		snprintf(err, errlen, "cannot create state directory '%s': %s",
			 dir, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	e->state_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (e->state_lock_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", path,
			 strerror(errno));
		return ret;
	}
	if (flock(e->state_lock_fd, LOCK_EX | LOCK_NB)) {
		snprintf(err, errlen,
			 "state directory '%s' is in use by another backupfs "
			 "or backupctl (use backupctl --mount to go through "
			 "the mount)", dir);
		return -EBUSY;
	}
	return 0;
}

static int engine_open_repo(struct bfs_engine *e, char *err, size_t errlen)
{
	uint8_t master[BFS_KEY_LEN];
	int ret;

	ret = bfs_key_file_read(e->conf->key_file, master, err, errlen);
	if (ret)
		return ret;
	ret = bfs_backend_open(e->conf->backend, &e->be, err, errlen);
	if (!ret)
		ret = bfs_repo_open(e->be, master, &e->repo, err, errlen);
	explicit_bzero(master, sizeof(master));
	return ret;
}

static int engine_open_instances(struct bfs_engine *e, char *err,
				 size_t errlen)
{
	const char *id;
	json_t *conf;

	json_object_foreach(e->conf->instances, id, conf) {
		struct bfs_instance *inst;
		int ret;

		ret = engine_instance_new(e, id, conf, &inst, err, errlen);
		if (!ret)
			ret = engine_add(e, inst);
		if (ret)
			return ret;
		jobs_recover(inst);
	}
	return 0;
}

/* Name the config file in front of a reason: the operator's starting
 * point for every start-up error. */
static void engine_err_prefix(const char *path, char *err, size_t errlen)
{
	char reason[1024];

	snprintf(reason, sizeof(reason), "%s", err);
	if (strncmp(reason, "config '", 8))
		snprintf(err, errlen, "config '%s': %s", path, reason);
}

int bfs_engine_open(struct bfs_config *conf, struct bfs_engine **out,
		    char *err, size_t errlen)
{
	struct bfs_engine *e;
	int ret;

	e = calloc(1, sizeof(*e));
	if (!e) {
		bfs_config_free(conf);
		return -ENOMEM;
	}
	e->conf = conf;
	e->state_lock_fd = -1;
	pthread_mutex_init(&e->lock, NULL);
	ret = bfs_trove_containers_new(conf->backend, &e->trove);
	if (!ret && conf->webhook.url)
		ret = bfs_notify_new(&conf->webhook, &e->notify, err, errlen);
	if (!ret)
		ret = engine_lock_state(e, err, errlen);
	if (!ret)
		ret = engine_open_repo(e, err, errlen);
	if (!ret)
		ret = engine_open_instances(e, err, errlen);
	if (ret) {
		engine_err_prefix(conf->path, err, errlen);
		bfs_engine_close(e);
		return ret;
	}
	*out = e;
	return 0;
}

/*
 * Pool threads block on the backend (a chunk GET or PUT) as well as doing
 * the CPU work, so their number bounds the requests in flight: one per
 * core is too few to hide a remote backend's latency on a small machine.
 */
#define ENGINE_MIN_THREADS 8

static unsigned engine_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > ENGINE_MIN_THREADS ? (unsigned)n : ENGINE_MIN_THREADS;
}

int bfs_engine_start(struct bfs_engine *e)
{
	int ret;

	ret = bfs_pool_new(engine_threads(), &e->read_pool);
	if (!ret)
		ret = bfs_pool_new(engine_threads(), &e->write_pool);
	if (!ret)
		ret = bfs_cache_new(e->repo, e->read_pool,
				    (size_t)e->conf->cache_bytes, &e->cache);
	if (!ret && e->notify)
		ret = bfs_notify_start(e->notify);
	if (ret)
		bfs_err("cannot start worker threads: %s", strerror(-ret));
	return ret;
}

void bfs_engine_close(struct bfs_engine *e)
{
	if (!e)
		return;
	sched_stop(e->sched);
	for (size_t i = 0; i < e->ninstances; i++)
		engine_instance_free(e->instances[i]);
	free(e->instances);
	/* After the instances: their jobs' last events are queued. */
	bfs_notify_free(e->notify);
	if (e->cache)
		bfs_cache_free(e->cache);
	if (e->write_pool)
		bfs_pool_free(e->write_pool);
	if (e->read_pool)
		bfs_pool_free(e->read_pool);
	bfs_trove_containers_free(e->trove);
	if (e->repo)
		bfs_repo_close(e->repo);
	if (e->be)
		bfs_backend_close(e->be);
	if (e->state_lock_fd >= 0)
		close(e->state_lock_fd);
	pthread_mutex_destroy(&e->lock);
	bfs_config_free(e->conf);
	free(e);
}

const struct bfs_config *bfs_engine_config(const struct bfs_engine *e)
{
	return e->conf;
}

struct bfs_repo *bfs_engine_repo(struct bfs_engine *e)
{
	return e->repo;
}
