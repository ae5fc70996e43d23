// SPDX-License-Identifier: Apache-2.0
/*
 * backupfs: the FUSE daemon.  The only file that includes <fuse.h>.
 *
 * Each operation parses the path (tree.c), asks the engine and maps the
 * answer to FUSE; the engine does the work.  Operations run on several
 * threads at once (fuse_loop_mt); the mounted filesystem is the context
 * passed as private_data.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfs_version.h"
#include "engine.h"
#include "log.h"
#include "tree.h"

/* Largest strategy written into snapshots/<label>. */
#define FS_STRATEGY_MAX (64u << 10)
#define FS_PENDING_MAX 64

/* A snapshot or schedule file created but not yet closed: it exists for
 * getattr. */
struct fs_pending {
	enum bfs_node_kind kind;
	char instance[BFS_NAME_MAX + 1];
	char label[BFS_NAME_MAX + 1];
};

struct fs_ctx {
	struct bfs_engine *engine;
	struct fuse *fuse;
	uid_t owner;
	gid_t group;
	time_t mounted;
	pthread_mutex_t lock; /* pending */
	struct fs_pending pending[FS_PENDING_MAX];
};

/* An open file. */
struct fs_file {
	enum bfs_node_kind kind;
	struct bfs_instance *inst;
	struct bfs_backup *backup;    /* BFS_N_BACKUP */
	struct bfs_read_state rs;
	char *text; /* status, events, records */
	size_t text_len;
	struct bfs_restore *restore;  /* BFS_N_RESTORE_FILE until flushed */
	struct bfs_buf strategy;      /* new snapshot, schedule: what was
				       * written */
	char label[BFS_NAME_MAX + 1];
	int creating;		      /* new snapshot not yet started,
				       * schedule not yet stored */
	int result;                   /* result of the first flush */
	int flushed;
	int truncating;               /* opened with O_TRUNC (a shell's >) */
	int written;                  /* a write reached us */
};

static struct fs_ctx *fs_ctx(void)
{
	return fuse_get_context()->private_data;
}

static struct fs_file *fs_file(struct fuse_file_info *fi)
{
	return (struct fs_file *)(uintptr_t)fi->fh;
}

/* Restores, snapshots and deletions: the mount owner or root only,
 * even with allow_other. */
static int fs_may_change(void)
{
	uid_t uid = fuse_get_context()->uid;

	return uid == 0 || uid == fs_ctx()->owner ? 0 : -EACCES;
}

/* What a write-like operation on a node answers. */
static int fs_readonly_error(enum bfs_node_kind kind)
{
	switch (kind) {
	case BFS_N_BACKUPS:
	case BFS_N_BACKUP:
	case BFS_N_LATEST:
		return -EROFS;
	default:
		return -EPERM;
	}
}

/* ---- pending snapshot files ---- */

static int pending_find(struct fs_ctx *c, enum bfs_node_kind kind,
			const char *inst, const char *label)
{
	for (int i = 0; i < FS_PENDING_MAX; i++)
		if (c->pending[i].label[0] && c->pending[i].kind == kind &&
		    !strcmp(c->pending[i].instance, inst) &&
		    !strcmp(c->pending[i].label, label))
			return i;
	return -1;
}

static int pending_add(struct fs_ctx *c, enum bfs_node_kind kind,
		       const char *inst, const char *label)
{
	int ret = -EMFILE;

	pthread_mutex_lock(&c->lock);
	if (pending_find(c, kind, inst, label) >= 0) {
		ret = -EEXIST;
		goto out_unlock;
	}
	for (int i = 0; i < FS_PENDING_MAX; i++) {
		if (!c->pending[i].label[0]) {
			c->pending[i].kind = kind;
			snprintf(c->pending[i].instance, BFS_NAME_MAX + 1, "%s",
				 inst);
			snprintf(c->pending[i].label, BFS_NAME_MAX + 1, "%s",
				 label);
			ret = 0;
			break;
		}
	}
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void pending_remove(struct fs_ctx *c, enum bfs_node_kind kind,
			   const char *inst, const char *label)
{
	int i;

	pthread_mutex_lock(&c->lock);
	i = pending_find(c, kind, inst, label);
	if (i >= 0)
		c->pending[i].label[0] = 0;
	pthread_mutex_unlock(&c->lock);
}

static int pending_exists(struct fs_ctx *c, enum bfs_node_kind kind,
			  const char *inst, const char *label)
{
	int i;

	pthread_mutex_lock(&c->lock);
	i = pending_find(c, kind, inst, label);
	pthread_mutex_unlock(&c->lock);
	return i >= 0;
}

/* ---- attributes ---- */

static void fs_stat_init(struct stat *st, mode_t mode, time_t t)
{
	struct fs_ctx *c = fs_ctx();

	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = c->owner;
	st->st_gid = c->group;
	st->st_blksize = 1 << 20;
	st->st_atime = st->st_mtime = st->st_ctime = t;
}

static int fs_lookup(const char *path, struct bfs_path *p,
		     struct bfs_instance **inst)
{
	int ret = bfs_path_parse(path, p);

	*inst = NULL;
	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	if (p->kind == BFS_N_ROOT || p->kind == BFS_N_INSTANCES)
		return 0;
	return bfs_engine_instance(fs_ctx()->engine, p->instance, inst);
}

static int fs_getattr_backup(struct bfs_instance *inst, const char *ts,
			     struct stat *st)
{
	uint64_t size;
	int64_t t;
	int ret;

	/* From the listing: stat() of many backups loads no manifest. */
	ret = bfs_instance_backup_stat(inst, ts, &size);
	if (ret)
		return ret == -ENOENT ? -ENOENT : -EIO;
	if (bfs_timestamp_parse(ts, &t))
		return -ENOENT;
	fs_stat_init(st, S_IFREG | 0444, (time_t)t);
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	return 0;
}

/* The content of a text node: status, events or a record. */
static int fs_text_of(struct bfs_instance *inst, struct bfs_path *p,
		      char **text, size_t *len)
{
	switch (p->kind) {
	case BFS_N_STATUS:
		return bfs_instance_status(inst, text, len);
	case BFS_N_EVENTS:
		return bfs_instance_events(inst, text, len);
	case BFS_N_SCHEDULE:
		return bfs_instance_schedule_show(inst, p->name, text, len);
	case BFS_N_EXECUTION:
		return bfs_instance_execution_show(inst, p->name, text, len);
	default:
		return bfs_instance_snapshot_show(inst, p->name, text, len);
	}
}

static int fs_getattr_text(struct bfs_instance *inst, struct bfs_path *p,
			   struct stat *st)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	int writable = p->kind == BFS_N_SNAPSHOT || p->kind == BFS_N_SCHEDULE;

	ret = fs_text_of(inst, p, &text, &len);
	free(text);
	if (ret == -ENOENT && writable &&
	    pending_exists(fs_ctx(), p->kind, p->instance, p->name))
		ret = 0;
	if (ret)
		return ret == -ENOENT || ret == -ENOMEM ? ret : -EIO;
	fs_stat_init(st, S_IFREG | (writable ? 0644 : 0444), time(NULL));
	st->st_size = (off_t)len;
	return 0;
}

static int fs_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct bfs_instance *inst;
	char ts[BFS_TIMESTAMP_LEN + 1], name[BFS_NAME_MAX + 1];
	struct bfs_path p;
	uint64_t size;
	int ret;

	(void)fi;
	ret = fs_lookup(path, &p, &inst);
	if (ret)
		return ret;
	switch (p.kind) {
	case BFS_N_BACKUP:
		return fs_getattr_backup(inst, p.name, st);
	case BFS_N_LATEST:
		ret = bfs_instance_latest(inst, ts);
		if (ret)
			return -ENOENT;
		fs_stat_init(st, S_IFLNK | 0777, time(NULL));
		st->st_size = BFS_TIMESTAMP_LEN;
		return 0;
	case BFS_N_RESTORE_FILE:
		ret = bfs_instance_restore_pending(inst, name, &size);
		if (ret || strcmp(name, p.name))
			return -ENOENT;
		fs_stat_init(st, S_IFREG | 0600, time(NULL));
		st->st_size = (off_t)size;
		return 0;
	case BFS_N_STATUS:
	case BFS_N_EVENTS:
	case BFS_N_SNAPSHOT:
	case BFS_N_SCHEDULE:
	case BFS_N_EXECUTION:
		return fs_getattr_text(inst, &p, st);
	default:
		fs_stat_init(st, S_IFDIR | 0755, fs_ctx()->mounted);
		return 0;
	}
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct bfs_instance *inst;
	char ts[BFS_TIMESTAMP_LEN + 1];
	struct bfs_path p;
	int ret;

	ret = fs_lookup(path, &p, &inst);
	if (ret)
		return ret;
	if (p.kind != BFS_N_LATEST)
		return -EINVAL;
	ret = bfs_instance_latest(inst, ts);
	if (ret)
		return -ENOENT;
	snprintf(buf, size, "%s", ts);
	return 0;
}

/* ---- directories ---- */

struct fs_fill {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fs_fill_name(const char *name, void *arg)
{
	struct fs_fill *f = arg;

	return f->filler(f->buf, name, NULL, 0, 0) ? 1 : 0;
}

static int fs_readdir_fixed(struct fs_fill *f, const char *const *names)
{
	for (; *names; names++)
		if (fs_fill_name(*names, f))
			break;
	return 0;
}

/* Snapshots or schedules, and those being created. */
static int fs_readdir_pending(struct fs_fill *f, struct bfs_instance *inst,
			      enum bfs_node_kind kind)
{
	struct fs_ctx *c = fs_ctx();
	int ret;

	if (kind == BFS_N_SNAPSHOT)
		ret = bfs_instance_list_snapshots(inst, fs_fill_name, f);
	else
		ret = bfs_instance_list_schedules(inst, fs_fill_name, f);
	if (ret < 0)
		return ret == -ENOMEM ? ret : -EIO;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < FS_PENDING_MAX; i++)
		if (c->pending[i].label[0] && c->pending[i].kind == kind &&
		    !strcmp(c->pending[i].instance, bfs_instance_id(inst)))
			fs_fill_name(c->pending[i].label, f);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	static const char *const root[] = {"instances", NULL};
	static const char *const instance[] = {
		"backups",    "restore", "snapshots", "schedules",
		"executions", "status",	 "events",    NULL,
	};
	struct fs_fill f = {buf, filler};
	char name[BFS_NAME_MAX + 1];
	struct bfs_instance *inst;
	struct bfs_path p;
	uint64_t size;
	int ret;

	(void)off, (void)fi, (void)flags;
	ret = fs_lookup(path, &p, &inst);
	if (ret)
		return ret;
	if (!bfs_node_is_dir(p.kind))
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	switch (p.kind) {
	case BFS_N_ROOT:
		return fs_readdir_fixed(&f, root);
	case BFS_N_INSTANCES:
		ret = bfs_engine_list_instances(fs_ctx()->engine, fs_fill_name,
						&f);
		return ret < 0 ? ret : 0;
	case BFS_N_INSTANCE:
		return fs_readdir_fixed(&f, instance);
	case BFS_N_BACKUPS:
		ret = bfs_instance_list_backups(inst, fs_fill_name, &f);
		if (ret < 0)
			return ret;
		if (!bfs_instance_latest(inst, name))
			fs_fill_name("latest", &f);
		return 0;
	case BFS_N_RESTORE:
		if (!bfs_instance_restore_pending(inst, name, &size))
			fs_fill_name(name, &f);
		return 0;
	case BFS_N_SNAPSHOTS:
		return fs_readdir_pending(&f, inst, BFS_N_SNAPSHOT);
	case BFS_N_SCHEDULES:
		return fs_readdir_pending(&f, inst, BFS_N_SCHEDULE);
	case BFS_N_EXECUTIONS:
		ret = bfs_instance_list_executions(inst, fs_fill_name, &f);
		return ret < 0 ? (ret == -ENOMEM ? ret : -EIO) : 0;
	default:
		return -ENOTDIR;
	}
}

/* ---- files ---- */

static struct fs_file *fs_file_new(enum bfs_node_kind kind,
				   struct bfs_instance *inst)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->kind = kind;
	f->inst = inst;
	atomic_init(&f->rs.next_off, 0);
	bfs_buf_init(&f->strategy, FS_STRATEGY_MAX);
	return f;
}

static void fs_file_free(struct fs_file *f)
{
	if (f->backup)
		bfs_backup_put(f->backup);
	if (f->restore)
		bfs_restore_abort(f->restore);
	bfs_buf_release(&f->strategy);
	free(f->text);
	free(f);
}

static int fs_open_text(struct fs_file *f, struct bfs_path *p,
			struct fuse_file_info *fi)
{
	int ret;

	if ((fi->flags & O_ACCMODE) != O_RDONLY && p->kind != BFS_N_SNAPSHOT &&
	    p->kind != BFS_N_SCHEDULE)
		return -EACCES;
	ret = fs_text_of(f->inst, p, &f->text, &f->text_len);
	if (ret)
		return ret == -ENOENT || ret == -ENOMEM ? ret : -EIO;
	/* A schedule opened for writing is replaced at close by what is
	 * written. */
	if ((fi->flags & O_ACCMODE) != O_RDONLY && p->kind == BFS_N_SCHEDULE) {
		ret = fs_may_change();
		if (ret)
			return ret;
		snprintf(f->label, sizeof(f->label), "%s", p->name);
		f->creating = 1;
		f->truncating = !!(fi->flags & O_TRUNC);
		fi->direct_io = 1;
		return 0;
	}
	/* A snapshot file opened for writing exists already: touch is a
	 * no-op, replacing its content is refused (rm it first). */
	if ((fi->flags & O_ACCMODE) != O_RDONLY && (fi->flags & O_TRUNC))
		return -EEXIST;
	/* The content changes while the file exists: no page cache. */
	fi->direct_io = 1;
	return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi);

/* A restore or snapshot file that no longer exists (applied, failed or
 * refused) -- though the kernel may still hold its entry. */
static int fs_job_file_gone(struct bfs_path *p, struct bfs_instance *inst)
{
	char name[BFS_NAME_MAX + 1];
	uint64_t size;
	char *text;
	size_t len;

	if (p->kind == BFS_N_RESTORE_FILE)
		return bfs_instance_restore_pending(inst, name, &size) ||
		       strcmp(name, p->name);
	if (p->kind != BFS_N_SNAPSHOT ||
	    pending_exists(fs_ctx(), BFS_N_SNAPSHOT, p->instance, p->name))
		return 0;
	if (bfs_instance_snapshot_show(inst, p->name, &text, &len))
		return 1;
	free(text);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct bfs_instance *inst;
	struct bfs_path p;
	struct fs_file *f;
	int ret;

	ret = fs_lookup(path, &p, &inst);
	if (ret)
		return ret;
	if (bfs_node_is_dir(p.kind))
		return -EISDIR;
	/*
	 * The kernel keeps a created file's entry for the entry timeout,
	 * and libfuse's high-level API can only invalidate inodes: writing
	 * the name of a finished restore (or a refused snapshot) again at
	 * once opens the stale entry.  That is a new file, as create()
	 * would have made it.
	 */
	if ((fi->flags & O_ACCMODE) != O_RDONLY && fs_job_file_gone(&p, inst))
		return fs_create(path, 0644, fi);
	f = fs_file_new(p.kind, inst);
	if (!f)
		return -ENOMEM;
	switch (p.kind) {
	case BFS_N_BACKUP:
		ret = (fi->flags & O_ACCMODE) != O_RDONLY ? -EROFS
			: bfs_instance_backup(inst, p.name, &f->backup);
		/* Backups never change: keep what the kernel cached. */
		fi->keep_cache = 1;
		break;
	case BFS_N_RESTORE_FILE:
		ret = -EBUSY;
		break;
	default:
		ret = fs_open_text(f, &p, fi);
		break;
	}
	if (ret) {
		fs_file_free(f);
		return ret;
	}
	fi->fh = (uintptr_t)f;
	return 0;
}

static int fs_create_snapshot(struct fs_file *f, struct bfs_path *p)
{
	char *text;
	size_t len;
	int ret;

	if (!bfs_instance_datastore(f->inst))
		return -EOPNOTSUPP;
	if (!bfs_instance_snapshot_show(f->inst, p->name, &text, &len)) {
		free(text);
		return -EEXIST;
	}
	ret = pending_add(fs_ctx(), BFS_N_SNAPSHOT, p->instance, p->name);
	if (ret)
		return ret;
	snprintf(f->label, sizeof(f->label), "%s", p->name);
	f->creating = 1;
	return 0;
}

static int fs_create_schedule(struct fs_file *f, struct bfs_path *p)
{
	int ret;

	ret = pending_add(fs_ctx(), BFS_N_SCHEDULE, p->instance, p->name);
	if (ret)
		return ret;
	snprintf(f->label, sizeof(f->label), "%s", p->name);
	f->creating = 1;
	return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct bfs_instance *inst;
	struct bfs_path p;
	struct fs_file *f;
	int ret;

	(void)mode;
	ret = bfs_path_parse(path, &p);
	if (ret)
		return ret;
	if (p.kind != BFS_N_SNAPSHOT && p.kind != BFS_N_RESTORE_FILE &&
	    p.kind != BFS_N_SCHEDULE)
		return fs_readonly_error(p.kind);
	ret = bfs_engine_instance(fs_ctx()->engine, p.instance, &inst);
	if (!ret)
		ret = fs_may_change();
	if (ret)
		return ret;
	f = fs_file_new(p.kind, inst);
	if (!f)
		return -ENOMEM;
	snprintf(f->label, sizeof(f->label), "%s", p.name);
	if (p.kind == BFS_N_SNAPSHOT)
		ret = fs_create_snapshot(f, &p);
	else if (p.kind == BFS_N_SCHEDULE)
		ret = fs_create_schedule(f, &p);
	else
		ret = bfs_instance_restore_begin(inst, p.name, &f->restore);
	if (ret) {
		fs_file_free(f);
		return ret;
	}
	f->truncating = !!(fi->flags & O_TRUNC);
	fi->direct_io = 1;
	fi->fh = (uintptr_t)f;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct fs_file *f = fs_file(fi);

	(void)path;
	if (f->backup)
		return (int)bfs_backup_read(fs_ctx()->engine, f->backup,
					    &f->rs, buf, size, (uint64_t)off);
	if (!f->text)
		return -EBADF;
	if ((size_t)off >= f->text_len)
		return 0;
	if (size > f->text_len - (size_t)off)
		size = f->text_len - (size_t)off;
	memcpy(buf, f->text + off, size);
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	struct fs_file *f = fs_file(fi);
	int ret;

	(void)path;
	if (f->restore) {
		f->written = 1;
		return (int)bfs_restore_write(f->restore, buf, size,
					      (uint64_t)off);
	}
	if (!f->creating)
		return -EBADF;
	if ((size_t)off != f->strategy.len)
		return -EINVAL; /* a strategy is written front to back */
	f->written = 1;
	ret = bfs_buf_append(&f->strategy, buf, size);
	return ret == -EFBIG ? -EFBIG : ret ? ret : (int)size;
}

/* Drop what the kernel cached of a job file that is gone (a refused
 * snapshot, a finished restore).  libfuse's high-level API invalidates
 * the inode, not the entry: fs_open() handles the stale entry. */
static void fs_forget(struct fs_file *f, const char *dir)
{
	char path[2 * BFS_NAME_MAX + 32];

	snprintf(path, sizeof(path), "/instances/%s/%s/%s",
		 bfs_instance_id(f->inst), dir, f->label);
	fuse_invalidate_path(fs_ctx()->fuse, path);
}

static int fs_flush_snapshot(struct fs_file *f)
{
	char err[1024] = "";
	int ret;

	ret = bfs_instance_snapshot_start(f->inst, f->label,
					  (const char *)f->strategy.data,
					  f->strategy.len, err, sizeof(err));
	/* The operator's mistake, reported to them by close(): a warning
	 * here, not an error of the daemon. */
	if (ret)
		bfs_warn("snapshot '%s' of instance '%s' refused: %s", f->label,
			bfs_instance_id(f->inst), *err ? err : strerror(-ret));
	pending_remove(fs_ctx(), BFS_N_SNAPSHOT, bfs_instance_id(f->inst),
		       f->label);
	f->creating = 0;
	/* A refused snapshot leaves no file. */
	if (ret)
		fs_forget(f, "snapshots");
	return ret;
}

/* Store the schedule written; a refused new one leaves no file. */
static int fs_flush_schedule(struct fs_file *f)
{
	char err[1024] = "";
	char *text;
	size_t len;
	int ret;

	ret = bfs_instance_schedule_write(f->inst, f->label,
					  (const char *)f->strategy.data,
					  f->strategy.len, err, sizeof(err));
	/* the operator's mistake, reported by close(): a warning */
	if (ret)
		bfs_warn("schedule '%s' of instance '%s' refused: %s", f->label,
			 bfs_instance_id(f->inst), *err ? err : strerror(-ret));
	pending_remove(fs_ctx(), BFS_N_SCHEDULE, bfs_instance_id(f->inst),
		       f->label);
	f->creating = 0;
	if (ret && bfs_instance_schedule_show(f->inst, f->label, &text, &len))
		fs_forget(f, "schedules");
	else if (ret)
		free(text);
	return ret;
}

/*
 * close() returns what flush returns: this is where a restore is applied
 * and a snapshot started, so cp's exit status is the result.  Only the
 * first flush of a file acts (dup'ed descriptors flush again) -- but a
 * shell's "cmd > file" opens with O_TRUNC, dup2()s and closes the
 * original before cmd writes a byte: a flush of such a file with
 * nothing written yet waits for the next one (or for release).
 */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *f = fs_file(fi);
	struct bfs_restore *r;

	(void)path;
	if (f->flushed)
		return f->result;
	if (f->truncating && !f->written)
		return 0;
	if (f->creating && f->kind == BFS_N_SCHEDULE) {
		f->result = fs_flush_schedule(f);
		f->flushed = 1;
	} else if (f->creating) {
		f->result = fs_flush_snapshot(f);
		f->flushed = 1;
	} else if (f->restore) {
		r = f->restore;
		f->restore = NULL;
		f->result = bfs_restore_commit(r);
		f->flushed = 1;
		fs_forget(f, "restore"); /* the file is gone, done or not */
	}
	return f->result;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *f = fs_file(fi);

	(void)path;
	/* "> file" with nothing written: flush waited for us. */
	if (f->creating && !f->flushed && f->truncating) {
		if (f->kind == BFS_N_SCHEDULE)
			fs_flush_schedule(f);
		else
			fs_flush_snapshot(f);
	}
	if (f->creating)
		pending_remove(fs_ctx(), f->kind, bfs_instance_id(f->inst),
			       f->label);
	fs_file_free(f);
	return 0;
}

static int fs_unlink(const char *path)
{
	struct bfs_instance *inst;
	struct bfs_path p;
	int ret;

	ret = fs_lookup(path, &p, &inst);
	if (ret)
		return ret;
	if (p.kind != BFS_N_BACKUP && p.kind != BFS_N_SNAPSHOT &&
	    p.kind != BFS_N_SCHEDULE && p.kind != BFS_N_EXECUTION)
		return p.kind == BFS_N_RESTORE_FILE ? -EBUSY
						    : fs_readonly_error(p.kind);
	ret = fs_may_change();
	if (ret)
		return ret;
	if (p.kind == BFS_N_SNAPSHOT)
		return bfs_instance_snapshot_forget(inst, p.name);
	if (p.kind == BFS_N_SCHEDULE || p.kind == BFS_N_EXECUTION) {
		ret = p.kind == BFS_N_SCHEDULE
			      ? bfs_instance_schedule_delete(inst, p.name)
			      : bfs_instance_execution_delete(inst, p.name);
		if (ret == -ENOENT || ret == -EBUSY || ret == -ENOMEM)
			return ret;
		return ret ? -EIO : 0;
	}
	return bfs_instance_delete_backup(inst, p.name);
}

static int fs_truncate(const char *path, off_t size,
		       struct fuse_file_info *fi)
{
	struct bfs_path p;
	int ret;

	ret = bfs_path_parse(path, &p);
	if (ret)
		return ret;
	/* O_TRUNC on a file that was just created is harmless. */
	if (fi && size == 0 && (fs_file(fi)->creating || fs_file(fi)->restore))
		return 0;
	/* A schedule is replaced at close by what is written: truncating
	 * it first (a shell's > without atomic O_TRUNC) changes nothing. */
	if (p.kind == BFS_N_SCHEDULE && size == 0)
		return fs_may_change();
	return fs_readonly_error(p.kind);
}

static int fs_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct bfs_path p;
	int ret;

	(void)tv, (void)fi;
	ret = bfs_path_parse(path, &p);
	if (ret)
		return ret;
	/* touch on a snapshot or a spooling restore file: nothing to do. */
	if (p.kind == BFS_N_SNAPSHOT || p.kind == BFS_N_RESTORE_FILE ||
	    p.kind == BFS_N_SCHEDULE)
		return 0;
	return fs_readonly_error(p.kind);
}

static int fs_deny_path(const char *path)
{
	struct bfs_path p;
	int ret = bfs_path_parse(path, &p);

	return ret ? ret : fs_readonly_error(p.kind);
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode, (void)fi;
	return fs_deny_path(path);
}

static int fs_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	(void)uid, (void)gid, (void)fi;
	return fs_deny_path(path);
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	(void)to, (void)flags;
	return fs_deny_path(from);
}

static int fs_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	return fs_deny_path(path) == -ENOENT ? -EPERM : fs_deny_path(path);
}

static int fs_rmdir(const char *path)
{
	return fs_deny_path(path);
}

static int fs_link(const char *from, const char *to)
{
	(void)from;
	return fs_deny_path(to) == -ENOENT ? -EPERM : fs_deny_path(to);
}

static int fs_symlink(const char *target, const char *path)
{
	(void)target;
	return fs_deny_path(path) == -ENOENT ? -EPERM : fs_deny_path(path);
}

/* ---- extended attributes ---- */

#define XATTR_PREFIX "user.backupfs."

static int fs_xattr_backup(const char *path, struct bfs_backup **b)
{
	struct bfs_instance *inst;
	struct bfs_path p;
	int ret;

	ret = fs_lookup(path, &p, &inst);
	if (ret)
		return ret;
	if (p.kind != BFS_N_BACKUP)
		return -ENODATA;
	return bfs_instance_backup(inst, p.name, b);
}

static int fs_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	struct bfs_backup *b;
	char *v;
	size_t len;
	int ret;

	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)))
		return -ENODATA;
	ret = fs_xattr_backup(path, &b);
	if (ret)
		return ret == -ENOENT || ret == -ENODATA ? ret : -EIO;
	ret = bfs_backup_xattr(b, name + strlen(XATTR_PREFIX), &v);
	bfs_backup_put(b);
	if (ret)
		return ret;
	len = strlen(v);
	if (size && len > size)
		ret = -ERANGE;
	else if (size)
		memcpy(value, v, len);
	free(v);
	return ret ? ret : (int)len;
}

static int fs_listxattr(const char *path, char *list, size_t size)
{
	struct bfs_backup *b;
	size_t total = 0;
	int ret;

	ret = fs_xattr_backup(path, &b);
	if (ret == -ENODATA)
		return 0;
	if (ret)
		return ret;
	for (const char *const *n = bfs_backup_xattr_names; *n; n++) {
		size_t len = strlen(XATTR_PREFIX) + strlen(*n) + 1;
		char *v;

		if (bfs_backup_xattr(b, *n, &v))
			continue;
		free(v);
		if (size && total + len > size) {
			ret = -ERANGE;
			break;
		}
		if (size)
			snprintf(list + total, len, XATTR_PREFIX "%s", *n);
		total += len;
	}
	bfs_backup_put(b);
	return ret ? ret : (int)total;
}

static int fs_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	(void)name, (void)value, (void)size, (void)flags;
	return fs_deny_path(path);
}

static int fs_removexattr(const char *path, const char *name)
{
	(void)name;
	return fs_deny_path(path);
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 1 << 20;
	sv->f_frsize = 1 << 20;
	sv->f_namemax = BFS_NAME_MAX;
	return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Names and sizes may change behind the kernel's back (jobs, other
	 * hosts): short attribute caching, none for missing names. */
	cfg->entry_timeout = 1;
	cfg->attr_timeout = 1;
	cfg->negative_timeout = 0;
	cfg->use_ino = 0;
	cfg->nullpath_ok = 0;
	conn->max_readahead = 1u << 20;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations fs_ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.readdir = fs_readdir,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.unlink = fs_unlink,
	.truncate = fs_truncate,
	.utimens = fs_utimens,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.rename = fs_rename,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.link = fs_link,
	.symlink = fs_symlink,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
	.statfs = fs_statfs,
};

/* ---- start-up ---- */

struct fs_opts {
	char *config;
	int help;
	int version;
};

static const struct fuse_opt fs_opt_spec[] = {
	{"config=%s", offsetof(struct fs_opts, config), 0},
	{"-h", offsetof(struct fs_opts, help), 1},
	{"--help", offsetof(struct fs_opts, help), 1},
	{"-V", offsetof(struct fs_opts, version), 1},
	{"--version", offsetof(struct fs_opts, version), 1},
	FUSE_OPT_END,
};

static void fs_usage(const char *prog)
{
	printf("usage: %s -o config=FILE [options] MOUNTPOINT\n\n"
	       "Expose the database backups of a backupfs repository as "
	       "files.\n\n"
	       "backupfs options:\n"
	       "    -o config=FILE         configuration file (JSON; see "
	       "backupfs(1) and README)\n"
	       "    -f                     stay in the foreground, log to "
	       "stderr\n"
	       "    -d                     foreground with FUSE debug "
	       "output\n"
	       "    -s                     single-threaded\n"
	       "    -o allow_other         let other users read (changes "
	       "stay owner-only)\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          version\n\n"
	       "The configuration file:\n"
	       "  {\"backend\": {\"type\": \"local\", \"path\": DIR},\n"
	       "   \"key_file\": FILE, \"state_dir\": DIR,\n"
	       "   \"cache_size\": \"256M\", \"readahead\": 8, "
	       "\"log_level\": \"info\",\n"
	       "   \"instances\": {ID: {\"datastore\": \"files\", \"path\": "
	       "DIR,\n"
	       "                      \"snapshot\": "
	       "\"auto|btrfs|reflink|copy|none\"}}}\n"
	       "  datastores: files, postgresql, mariadb, couchdb, db2 (their "
	       "keys: README)\n\n"
	       "Create the key and repository with: backupctl --config FILE "
	       "init\n\n",
	       prog);
}

static int fs_run(struct fuse *fuse, struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *lc;
	int ret;

	if (cmd->singlethread)
		return fuse_loop(fuse);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_max_threads(lc, 16);
	fuse_loop_cfg_set_idle_threads(lc, cmd->max_idle_threads);
	ret = fuse_loop_mt(fuse, lc);
	fuse_loop_cfg_destroy(lc);
	return ret;
}

/* Parse, open the engine (errors reach the terminal), mount, then go to
 * the background and start the worker threads. */
static int fs_main(struct fuse_args *args, struct fs_opts *opts,
		   struct fuse_cmdline_opts *cmd)
{
	struct fs_ctx ctx = {0};
	struct bfs_config *conf;
	char err[1024] = "";
	struct fuse *fuse;
	int ret;

	ret = bfs_config_load(opts->config, &conf, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "backupfs: %s\n", err);
		return 1;
	}
	bfs_log_set_level(conf->log_level);
	ret = bfs_engine_open(conf, &ctx.engine, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "backupfs: %s\n", err);
		return 1;
	}
	ctx.owner = getuid();
	ctx.group = getgid();
	ctx.mounted = time(NULL);
	pthread_mutex_init(&ctx.lock, NULL);
	ret = 1;
	fuse = fuse_new(args, &fs_ops, sizeof(fs_ops), &ctx);
	if (!fuse)
		goto out_engine;
	ctx.fuse = fuse;
	if (fuse_mount(fuse, cmd->mountpoint))
		goto out_destroy;
	if (fuse_daemonize(cmd->foreground))
		goto out_unmount;
	if (!cmd->foreground)
		bfs_log_use_syslog(1);
	if (bfs_engine_start(ctx.engine) ||
	    bfs_engine_start_scheduler(ctx.engine) ||
	    fuse_set_signal_handlers(fuse_get_session(fuse)))
		goto out_unmount;
	ret = fs_run(fuse, cmd) ? 1 : 0;
	fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
out_engine:
	bfs_engine_close(ctx.engine);
	pthread_mutex_destroy(&ctx.lock);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct fs_opts opts = {0};
	int ret = 1;

	if (fuse_opt_parse(&args, &opts, fs_opt_spec, NULL))
		return 1;
	if (opts.help) {
		fs_usage(argv[0]);
		fuse_lib_help(&args);
		ret = 0;
		goto out_args;
	}
	if (opts.version) {
		printf("backupfs %s (FUSE %s)\n", BFS_VERSION,
		       fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &cmd))
		goto out_args;
	if (!opts.config || !cmd.mountpoint) {
		fprintf(stderr, "backupfs: %s\nusage: %s -o config=FILE "
			"MOUNTPOINT (see --help)\n",
			!opts.config ? "missing -o config=FILE"
				     : "missing mount point", argv[0]);
		goto out_cmd;
	}
	ret = fs_main(&args, &opts, &cmd);
out_cmd:
	free(cmd.mountpoint);
out_args:
	free(opts.config);
	fuse_opt_free_args(&args);
	return ret;
}
