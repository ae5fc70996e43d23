// SPDX-License-Identifier: Apache-2.0
/*
 * Non-disruptive snapshots of a "files" instance, after Cinder's flow
 * (reference/trove-cinder-formats.md 2.6): take a temporary snapshot,
 * back up from it, always remove it -- and journal it in the state
 * directory before it exists, so a crash cannot leak one.
 *
 * Temporary trees are named ".backupfs-snap-<instance>-<random>" (beside
 * the tree for btrfs and reflink, which need the same filesystem; in the
 * state directory for a plain copy, Cinder's temporary-volume fallback).
 */
#include "files_int.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Inode number of a btrfs subvolume's root (BTRFS_FIRST_FREE_OBJECTID). */
#define FILES_BTRFS_ROOT_INO 256
/* Rough per-entry cost on disk of a copy (a block, an inode). */
#define FILES_ENTRY_COST 4096
#define FILES_COPY_BUF	 (128 * 1024)

static const char *const snap_names[] = {
	[FILES_SNAP_AUTO] = "auto",	  [FILES_SNAP_BTRFS] = "btrfs",
	[FILES_SNAP_REFLINK] = "reflink", [FILES_SNAP_COPY] = "copy",
	[FILES_SNAP_NONE] = "none",
};

const char *files_snap_name(enum files_snap_mode mode)
{
	if ((size_t)mode >= sizeof(snap_names) / sizeof(snap_names[0]))
		return "?";
	return snap_names[mode];
}

int files_snap_parse(const char *name, enum files_snap_mode *mode)
{
	size_t i;

	for (i = 0; name && i < sizeof(snap_names) / sizeof(snap_names[0]);
	     i++) {
		if (!strcmp(snap_names[i], name)) {
			*mode = (enum files_snap_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The parent directory of an absolute path (new string), and where its
 * last component starts. */
static char *path_parent(const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return NULL;
	if (base)
		*base = slash + 1;
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* ---- btrfs ----------------------------------------------------------- */

int files_is_subvol(const char *path)
{
	struct statfs sfs;
	struct stat st;

	if (lstat(path, &st) || !S_ISDIR(st.st_mode) ||
	    st.st_ino != FILES_BTRFS_ROOT_INO || statfs(path, &sfs))
		return 0;
	return sfs.f_type == (__typeof__(sfs.f_type))BTRFS_SUPER_MAGIC;
}

/* Open the parent directory of path and copy its last component into
 * name[size]; btrfs ioctls name subvolumes relative to their parent. */
static int open_parent(const char *path, char *name, size_t size)
{
	const char *base;
	char *parent;
	int fd;

	parent = path_parent(path, &base);
	if (!parent)
		return -EINVAL;
	if (strlen(base) >= size) {
		free(parent);
		return -ENAMETOOLONG;
	}
	memcpy(name, base, strlen(base) + 1);
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(parent);
	return fd < 0 ? -errno : fd;
}

/* Read-only snapshot of subvolume src at dst (same filesystem). */
static int btrfs_snapshot(const char *src, const char *dst)
{
	struct btrfs_ioctl_vol_args_v2 args;
	int pfd, sfd, rc = 0;

	memset(&args, 0, sizeof(args));
	pfd = open_parent(dst, args.name, sizeof(args.name));
	if (pfd < 0)
		return pfd;
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0) {
		rc = -errno;
		goto out_pfd;
	}
	args.fd = sfd;
	args.flags = BTRFS_SUBVOL_RDONLY;
	if (ioctl(pfd, BTRFS_IOC_SNAP_CREATE_V2, &args))
		rc = -errno;
	close(sfd);
out_pfd:
	close(pfd);
	return rc;
}

int files_subvol_create(const char *path)
{
	struct btrfs_ioctl_vol_args args;
	int pfd, rc = 0;

	memset(&args, 0, sizeof(args));
	pfd = open_parent(path, args.name, sizeof(args.name));
	if (pfd < 0)
		return pfd;
	if (ioctl(pfd, BTRFS_IOC_SUBVOL_CREATE, &args))
		rc = -errno;
	close(pfd);
	return rc;
}

static int btrfs_destroy(const char *path)
{
	struct btrfs_ioctl_vol_args args;
	int pfd, fd, rc = 0;
	__u64 flags = 0;

	memset(&args, 0, sizeof(args));
	pfd = open_parent(path, args.name, sizeof(args.name));
	if (pfd < 0)
		return pfd;
	if (!ioctl(pfd, BTRFS_IOC_SNAP_DESTROY, &args))
		goto out_pfd;
	rc = -errno;
	/*
	 * Without CAP_SYS_ADMIN (or user_subvol_rm_allowed) the owner can
	 * still make the snapshot writable, empty it and rmdir it: let the
	 * caller's tree walk do that.
	 */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, &flags))
			bfs_debug("cannot make '%s' writable: %s", path,
				  strerror(errno));
		close(fd);
	}
out_pfd:
	close(pfd);
	return rc;
}

/* ---- tree walks ------------------------------------------------------ */

static FTS *tree_open(const char *path)
{
	char *argv[] = {(char *)path, NULL};

	/* Physical, no chdir (threads), never into other mounts. */
	return fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
}

static int tree_remove_one(FTSENT *e)
{
	mode_t mode = e->fts_statp->st_mode;

	switch (e->fts_info) {
	case FTS_D:
		/* A restored tree may hold dr-x------ directories: make
		 * them writable before fts reads and we empty them. */
		if ((mode & 0700) != 0700 &&
		    chmod(e->fts_accpath, (mode | 0700) & 07777))
			return -errno;
		return 0;
	case FTS_DP:
		return rmdir(e->fts_accpath) ? -errno : 0;
	case FTS_DNR:
	case FTS_ERR:
	case FTS_NS:
		return -e->fts_errno;
	default:
		return unlink(e->fts_accpath) ? -errno : 0;
	}
}

int files_tree_remove(const char *path)
{
	const char *base = strrchr(path, '/');
	struct stat st;
	FTSENT *e;
	FTS *fts;
	int rc = 0, r;

	if (!base || !strstr(base, ".backupfs-")) {
		bfs_err("refusing to remove '%s': not a tree of ours", path);
		return -EPERM;
	}
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) ? -errno : 0;
	if (files_is_subvol(path) && !btrfs_destroy(path))
		return 0;
	fts = tree_open(path);
	if (!fts)
		return -errno;
	/* Remove as much as possible; report the first error. */
	while ((e = fts_read(fts))) {
		r = tree_remove_one(e);
		if (r && r != -ENOENT && !rc) {
			bfs_err("cannot remove '%s': %s", e->fts_path,
				strerror(-r));
			rc = r;
		}
	}
	if (errno && !rc)
		rc = -errno;
	fts_close(fts);
	return rc;
}

int files_tree_size(const char *path, uint64_t *bytes, uint64_t *entries)
{
	FTSENT *e;
	FTS *fts;
	int rc = 0;

	*bytes = 0;
	*entries = 0;
	fts = tree_open(path);
	if (!fts)
		return -errno;
	while (!rc && (e = fts_read(fts))) {
		switch (e->fts_info) {
		case FTS_DP:
			continue;
		case FTS_DNR:
		case FTS_ERR:
		case FTS_NS:
			/* A live tree changes under us: gone is fine. */
			if (e->fts_errno != ENOENT)
				rc = -e->fts_errno;
			continue;
		case FTS_F:
			*bytes += (uint64_t)e->fts_statp->st_size;
			break;
		}
		(*entries)++;
	}
	if (!rc && errno)
		rc = -errno;
	fts_close(fts);
	return rc;
}

/* ---- clones (reflink and copy) ---------------------------------------- */

/* An inode already cloned, for hard links. */
struct clone_link {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct clone_ctx {
	const char *src;
	size_t srclen;
	const char *dst;
	int reflink; /* FICLONE, else copy the bytes */
	void *links; /* tsearch() tree of struct clone_link */
	char *buf;   /* FILES_COPY_BUF bytes, for copies */
	char *err;
	size_t errlen;
};

static int link_cmp(const void *a, const void *b)
{
	const struct clone_link *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

static void link_free(void *p)
{
	struct clone_link *l = p;

	free(l->path);
	free(l);
}

static int clone_remember(struct clone_ctx *c, const struct stat *st,
			  const char *dst)
{
	struct clone_link *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->dev = st->st_dev;
	l->ino = st->st_ino;
	l->path = strdup(dst);
	if (!l->path || !tsearch(l, &c->links, link_cmp)) {
		link_free(l);
		return -ENOMEM;
	}
	return 0;
}

static int clone_xattrs(struct clone_ctx *c, const char *src, const char *dst)
{
	char *names, *name;
	ssize_t len, vlen;
	int rc = 0;

	len = llistxattr(src, NULL, 0);
	if (len <= 0)
		return len < 0 && errno != ENOTSUP ? -errno : 0;
	names = malloc((size_t)len);
	if (!names)
		return -ENOMEM;
	len = llistxattr(src, names, (size_t)len);
	if (len < 0)
		rc = -errno;
	for (name = names; !rc && name < names + len;
	     name += strlen(name) + 1) {
		vlen = lgetxattr(src, name, c->buf, FILES_COPY_BUF);
		if (vlen < 0 || lsetxattr(dst, name, c->buf, (size_t)vlen, 0))
			rc = -errno;
		if (rc)
			snprintf(c->err, c->errlen,
				 "cannot copy xattr '%s' of '%s': %s", name,
				 src, strerror(-rc));
	}
	free(names);
	return rc;
}

/*
 * Give dst src's owner, xattrs (ACLs included), mode and times, in that
 * order: chown clears set-id bits, and anything after utimensat would
 * touch the times.  An owner we cannot reproduce fails the clone -- the
 * backup would record the wrong one.
 */
static int clone_meta(struct clone_ctx *c, const char *src,
		      const struct stat *st, const char *dst)
{
	struct timespec times[2] = {st->st_atim, st->st_mtim};
	struct stat now;
	int rc;

	if (lchown(dst, st->st_uid, st->st_gid) &&
	    (lstat(dst, &now) || now.st_uid != st->st_uid ||
	     now.st_gid != st->st_gid)) {
		snprintf(c->err, c->errlen,
			 "cannot give the copy of '%s' its owner %u:%u", src,
			 (unsigned)st->st_uid, (unsigned)st->st_gid);
		return -EPERM;
	}
	rc = clone_xattrs(c, src, dst);
	if (rc)
		return rc;
	if (!S_ISLNK(st->st_mode) &&
	    fchmodat(AT_FDCWD, dst, st->st_mode & 07777, 0))
		return -errno;
	if (utimensat(AT_FDCWD, dst, times, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

static int copy_bytes(struct clone_ctx *c, int sfd, int dfd)
{
	ssize_t n;
	int rc;

	/* copy_file_range may share extents, and stays in the kernel. */
	while ((n = copy_file_range(sfd, NULL, dfd, NULL, 1 << 30, 0)) > 0)
		;
	if (n == 0)
		return 0;
	if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
	    errno != EOPNOTSUPP)
		return -errno;
	while ((n = read(sfd, c->buf, FILES_COPY_BUF)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		rc = bfs_write_all(dfd, c->buf, (size_t)n);
		if (rc)
			return rc;
	}
	return 0;
}

static int clone_data(struct clone_ctx *c, const char *src, int sfd, int dfd)
{
	if (!c->reflink)
		return copy_bytes(c, sfd, dfd);
	if (!ioctl(dfd, FICLONE, sfd))
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL ||
	    errno == EXDEV) {
		snprintf(c->err, c->errlen,
			 "the filesystem of '%s' cannot reflink into '%s'", src,
			 c->dst);
		return -EOPNOTSUPP;
	}
	return -errno;
}

static int clone_file(struct clone_ctx *c, FTSENT *e, const char *dst)
{
	const struct stat *st = e->fts_statp;
	struct clone_link key = {.dev = st->st_dev, .ino = st->st_ino};
	struct clone_link **seen;
	int sfd, dfd, rc;

	if (st->st_nlink > 1) {
		seen = tfind(&key, &c->links, link_cmp);
		if (seen)
			return link((*seen)->path, dst) ? -errno : 0;
	}
	sfd = open(e->fts_accpath,
		   O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (sfd < 0)
		return -errno;
	dfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (dfd < 0) {
		rc = -errno;
		goto out_sfd;
	}
	rc = clone_data(c, e->fts_path, sfd, dfd);
	if (close(dfd) && !rc)
		rc = -errno;
	if (!rc)
		rc = clone_meta(c, e->fts_accpath, st, dst);
	if (!rc && st->st_nlink > 1)
		rc = clone_remember(c, st, dst);
out_sfd:
	close(sfd);
	return rc;
}

static int clone_symlink(struct clone_ctx *c, FTSENT *e, const char *dst)
{
	size_t size = (size_t)e->fts_statp->st_size + 1;
	ssize_t n;
	char *target;
	int rc = 0;

	target = malloc(size);
	if (!target)
		return -ENOMEM;
	n = readlink(e->fts_accpath, target, size);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n >= size)
		rc = -EAGAIN; /* changed under us */
	if (!rc) {
		target[n] = '\0';
		if (symlink(target, dst))
			rc = -errno;
	}
	free(target);
	return rc ? rc : clone_meta(c, e->fts_accpath, e->fts_statp, dst);
}

static int clone_one(struct clone_ctx *c, FTSENT *e, const char *dst)
{
	const struct stat *st = e->fts_statp;

	switch (e->fts_info) {
	case FTS_D:
		/* The root exists; 0700 until clone_meta, post-order. */
		if (e->fts_level == FTS_ROOTLEVEL)
			return 0;
		return mkdir(dst, 0700) ? -errno : 0;
	case FTS_DP:
		return clone_meta(c, e->fts_accpath, st, dst);
	case FTS_F:
		return clone_file(c, e, dst);
	case FTS_SL:
	case FTS_SLNONE:
		return clone_symlink(c, e, dst);
	case FTS_DEFAULT:
		/* tar cannot hold sockets, nor will the backup. */
		if (S_ISSOCK(st->st_mode))
			return 0;
		if (mknod(dst, st->st_mode & (S_IFMT | 07777), st->st_rdev))
			return -errno;
		return clone_meta(c, e->fts_accpath, st, dst);
	case FTS_DNR:
	case FTS_ERR:
	case FTS_NS:
		return -e->fts_errno;
	default:
		return 0;
	}
}

/* Clone the tree src into the new directory dst (which must not exist). */
static int clone_tree(const char *src, const char *dst, int reflink, char *err,
		      size_t errlen)
{
	struct clone_ctx c = {
		.src = src,
		.srclen = strlen(src),
		.dst = dst,
		.reflink = reflink,
		.err = err,
		.errlen = errlen,
	};
	char *to;
	FTSENT *e;
	FTS *fts;
	int rc = 0;

	c.buf = malloc(FILES_COPY_BUF);
	if (!c.buf)
		return -ENOMEM;
	if (mkdir(dst, 0700)) {
		rc = -errno;
		goto out_buf;
	}
	fts = tree_open(src);
	if (!fts) {
		rc = -errno;
		goto out_buf;
	}
	while (!rc && (e = fts_read(fts))) {
		if (asprintf(&to, "%s%s", dst, e->fts_path + c.srclen) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = clone_one(&c, e, to);
		if (rc && errlen && !err[0])
			snprintf(err, errlen, "cannot copy '%s' to '%s': %s",
				 e->fts_path, to, strerror(-rc));
		free(to);
	}
	if (!rc && errno)
		rc = -errno;
	fts_close(fts);
	tdestroy(c.links, link_free);
out_buf:
	free(c.buf);
	return rc;
}

/* ---- snapshots ------------------------------------------------------- */

static int snap_check_space(const char *path, const char *dir, char *err,
			    size_t errlen)
{
	uint64_t bytes, entries, need, avail;
	struct statvfs vfs;
	int rc;

	rc = files_tree_size(path, &bytes, &entries);
	if (rc) {
		snprintf(err, errlen, "cannot measure '%s': %s", path,
			 strerror(-rc));
		return rc;
	}
	if (statvfs(dir, &vfs)) {
		rc = -errno;
		snprintf(err, errlen, "cannot stat '%s': %s", dir,
			 strerror(-rc));
		return rc;
	}
	need = bytes + entries * FILES_ENTRY_COST;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (need > avail) {
		snprintf(err, errlen,
			 "no room for a copy of '%s' in '%s': %llu bytes "
			 "needed, %llu available",
			 path, dir, (unsigned long long)need,
			 (unsigned long long)avail);
		return -ENOSPC;
	}
	return 0;
}

/* Name the temporary tree and its journal; check what the mode needs. */
static int snap_prepare(const char *path, const char *instance,
			const char *state_dir, enum files_snap_mode mode,
			struct files_snap *snap, char *err, size_t errlen)
{
	char rnd[17], *dir;
	int rc;

	if (mode == FILES_SNAP_BTRFS && !files_is_subvol(path)) {
		snprintf(err, errlen, "'%s' is not a btrfs subvolume", path);
		return -EINVAL;
	}
	dir = mode == FILES_SNAP_COPY ? strdup(state_dir)
				      : path_parent(path, NULL);
	if (!dir)
		return -ENOMEM;
	rc = mode == FILES_SNAP_COPY ? snap_check_space(path, dir, err, errlen)
				     : 0;
	if (!rc)
		rc = ds_random_hex(rnd);
	if (!rc && (asprintf(&snap->tmp, "%s/.backupfs-snap-%s-%s", dir,
			     instance, rnd) < 0 ||
		    asprintf(&snap->journal, "snapshot-%s.journal", rnd) < 0))
		rc = -ENOMEM;
	free(dir);
	return rc;
}

static int snap_create(const char *path, struct files_snap *snap, char *err,
		       size_t errlen)
{
	int rc;

	if (snap->mode != FILES_SNAP_BTRFS)
		return clone_tree(path, snap->tmp,
				  snap->mode == FILES_SNAP_REFLINK, err,
				  errlen);
	rc = btrfs_snapshot(path, snap->tmp);
	if (rc)
		snprintf(err, errlen, "cannot snapshot '%s' as '%s': %s", path,
			 snap->tmp, strerror(-rc));
	return rc;
}

static int snap_try(const char *path, const char *instance,
		    const char *state_dir, enum files_snap_mode mode,
		    struct files_snap *snap, char *err, size_t errlen)
{
	json_t *j;
	int rc;

	memset(snap, 0, sizeof(*snap));
	snap->state_dir = state_dir;
	snap->mode = mode;
	if (mode == FILES_SNAP_NONE) {
		snap->root = strdup(path);
		return snap->root ? 0 : -ENOMEM;
	}
	rc = snap_prepare(path, instance, state_dir, mode, snap, err, errlen);
	if (rc)
		goto out_free;
	j = json_pack("{s:s, s:s}", "mode", files_snap_name(mode), "path",
		      snap->tmp);
	rc = j ? ds_journal_write(state_dir, snap->journal, j) : -ENOMEM;
	json_decref(j);
	if (rc) {
		snprintf(err, errlen, "cannot journal a snapshot in '%s': %s",
			 state_dir, strerror(-rc));
		goto out_free;
	}
	rc = snap_create(path, snap, err, errlen);
	if (!rc) {
		snap->root = strdup(snap->tmp);
		if (snap->root)
			return 0;
		rc = -ENOMEM;
	}
	files_snap_drop(snap);
	return rc;
out_free:
	free(snap->tmp);
	free(snap->journal);
	memset(snap, 0, sizeof(*snap));
	return rc;
}

int files_snap_take(const char *path, const char *instance,
		    const char *state_dir, enum files_snap_mode mode,
		    struct files_snap *snap, char *err, size_t errlen)
{
	static const enum files_snap_mode order[] = {
		FILES_SNAP_BTRFS,
		FILES_SNAP_REFLINK,
		FILES_SNAP_COPY,
		FILES_SNAP_NONE,
	};
	int rc = -EINVAL;
	size_t i;

	if (mode != FILES_SNAP_AUTO)
		return snap_try(path, instance, state_dir, mode, snap, err,
				errlen);
	/* Cheapest consistent view first; the live tree last. */
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] == FILES_SNAP_BTRFS && !files_is_subvol(path))
			continue;
		if (errlen)
			err[0] = '\0';
		rc = snap_try(path, instance, state_dir, order[i], snap, err,
			      errlen);
		if (!rc) {
			bfs_info("instance '%s': backing up with snapshot '%s'",
				 instance, files_snap_name(order[i]));
			return 0;
		}
		bfs_info("instance '%s': snapshot '%s' not usable: %s",
			 instance, files_snap_name(order[i]),
			 errlen && err[0] ? err : strerror(-rc));
	}
	return rc;
}

int files_snap_drop(struct files_snap *snap)
{
	int rc = 0;

	if (snap->tmp) {
		rc = files_tree_remove(snap->tmp);
		if (rc)
			bfs_err("cannot remove temporary snapshot '%s': %s",
				snap->tmp, strerror(-rc));
	}
	/* A snapshot we could not remove stays journalled for recover(). */
	if (!rc && snap->journal)
		rc = ds_journal_remove(snap->state_dir, snap->journal);
	free(snap->root);
	free(snap->tmp);
	free(snap->journal);
	memset(snap, 0, sizeof(*snap));
	return rc;
}

static int snap_recover_one(const char *state_dir, const char *name)
{
	const char *path;
	json_t *j;
	int rc;

	rc = ds_journal_read(state_dir, name, &j);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	path = json_string_value(json_object_get(j, "path"));
	rc = path ? files_tree_remove(path) : -EBADMSG;
	if (!rc) {
		bfs_info("removed temporary snapshot '%s' left by a crash",
			 path);
		rc = ds_journal_remove(state_dir, name);
	}
	json_decref(j);
	return rc;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

int files_snap_recover(const char *state_dir)
{
	struct dirent *d;
	DIR *dir;
	int rc = 0, r;

	dir = opendir(state_dir);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, "snapshot-", 9))
			continue;
		if (has_suffix(d->d_name, ".journal.tmp")) {
			/* Never renamed: its snapshot was never made. */
			unlinkat(dirfd(dir), d->d_name, 0);
			continue;
		}
		if (!has_suffix(d->d_name, ".journal"))
			continue;
		r = snap_recover_one(state_dir, d->d_name);
		if (r && !rc) {
			bfs_err("cannot recover '%s/%s': %s", state_dir,
				d->d_name, strerror(-r));
			rc = r;
		}
	}
	closedir(dir);
	return rc;
}
