// SPDX-License-Identifier: Apache-2.0
/*
 * The "local" backend: objects are files below one directory, an object
 * name's '/' separated components being directories and the file name.
 *
 * Every access goes through a directory fd opened once (the *at() calls),
 * so the root cannot be swapped under a running daemon.  Puts write a
 * temporary file in the target directory and rename it into place, so a
 * reader sees an old object or a new one, never half of one.  Names whose
 * components start with '.' are this driver's own temporaries: they never
 * show in listings and callers may not use them.
 */
#include "backend.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define LOCAL_DIR_MODE	0700
#define LOCAL_FILE_MODE 0600
/* ".tmp." and 16 hex digits */
#define LOCAL_TMP_LEN 21

struct local_backend {
	struct bfs_backend base;
	int rootfd;
	char *root;
};

static const struct bfs_backend_ops local_ops;

static struct local_backend *local_of(struct bfs_backend *be)
{
	/* Only our own ops table may reach us: a checked downcast. */
	if (be->ops != &local_ops)
		abort();
	return (struct local_backend *)be;
}

/* Log an unexpected failure once, here, and return -err. */
static int local_fail(const struct local_backend *lb, const char *what,
		      const char *name, int err)
{
	char buf[128];

	bfs_err("local backend \"%s\": cannot %s \"%s\": %s", lb->root, what,
		name, strerror_r(err, buf, sizeof(buf)));
	return -err;
}

/* -EINVAL if a component starts with '.' (reserved for temporaries). */
static int local_reserved(const struct local_backend *lb, const char *name)
{
	const char *p;

	if (name[0] != '.') {
		for (p = strchr(name, '/'); p; p = strchr(p + 1, '/'))
			if (p[1] == '.')
				break;
		if (!p)
			return 0;
	}
	bfs_err("local backend \"%s\": refusing reserved object name \"%s\"",
		lb->root, name);
	return -EINVAL;
}

/* mkdir -p of path (relative to dirfd unless absolute); 0 or -errno. */
static int local_mkdirs(int dirfd, const char *path)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path), i;
	char c;

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != 0)
			continue;
		c = tmp[i];
		tmp[i] = 0;
		if (mkdirat(dirfd, tmp, LOCAL_DIR_MODE) && errno != EEXIST)
			return -errno;
		tmp[i] = c;
	}
	return 0;
}

static int local_conf(json_t *conf, const char **path, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	/* json_object_foreach() is a loop: keep its brace where it is */
	/* clang-format off */
	json_object_foreach(conf, key, v) {
		if (strcmp(key, "type") && strcmp(key, "path")) {
			snprintf(err, errlen, "unknown key \"%.64s\" in "
				 "local backend config", key);
			return -EINVAL;
		}
	}
	/* clang-format on */
	*path = json_string_value(json_object_get(conf, "path"));
	if (!*path || !**path) {
		snprintf(err, errlen, "local backend needs a \"path\" string");
		return -EINVAL;
	}
	if (**path != '/') {
		snprintf(err, errlen,
			 "local backend path \"%.200s\" is not absolute",
			 *path);
		return -EINVAL;
	}
	return 0;
}

int bfs_local_open(json_t *conf, struct bfs_backend **out, char *err,
		   size_t errlen)
{
	struct local_backend *lb;
	const char *path;
	char buf[128];
	int ret;

	*out = NULL;
	ret = local_conf(conf, &path, err, errlen);
	if (ret)
		return ret;
	ret = local_mkdirs(AT_FDCWD, path);
	if (ret) {
		snprintf(err, errlen, "cannot create \"%.200s\": %s", path,
			 strerror_r(-ret, buf, sizeof(buf)));
		return ret;
	}
	lb = calloc(1, sizeof(*lb));
	if (lb)
		lb->root = strdup(path);
	if (!lb || !lb->root) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out_free;
	}
	lb->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lb->rootfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open \"%.200s\": %s", path,
			 strerror_r(-ret, buf, sizeof(buf)));
		goto out_free;
	}
	lb->base.ops = &local_ops;
	*out = &lb->base;
	return 0;

out_free:
	if (lb)
		free(lb->root);
	free(lb);
	return ret;
}

static void local_destroy(struct bfs_backend *be)
{
	struct local_backend *lb = local_of(be);

	close(lb->rootfd);
	free(lb->root);
	free(lb);
}

/* Open a regular file object; -ENOENT for anything that is not one. */
static int local_open_object(struct local_backend *lb, const char *name,
			     int *fdp, uint64_t *size)
{
	struct stat st;
	int fd;

	fd = openat(lb->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return -ENOENT;
		return local_fail(lb, "open", name, errno);
	}
	if (fstat(fd, &st)) {
		close(fd);
		return local_fail(lb, "stat", name, errno);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*fdp = fd;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int local_get(struct bfs_backend *be, const char *name, uint64_t off,
		     uint64_t len, unsigned flags, struct bfs_buf *out)
{
	struct local_backend *lb = local_of(be);
	uint64_t size = 0, n, got = 0;
	int fd = -1, ret;
	ssize_t r;

	(void)flags; /* a local file has no checksum to skip */
	if (local_reserved(lb, name))
		return -EINVAL;
	ret = local_open_object(lb, name, &fd, &size);
	if (ret)
		return ret;
	n = off < size ? size - off : 0;
	if (len && len < n)
		n = len;
	if (n > SIZE_MAX) {
		ret = -EFBIG;
		goto out_close;
	}
	/* Bounded by the buffer's maximum before a byte is read. */
	ret = bfs_buf_reserve(out, (size_t)n);
	if (ret)
		goto out_close;
	while (got < n) {
		r = pread(fd, out->data + out->len + got, (size_t)(n - got),
			  (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = local_fail(lb, "read", name, errno);
			goto out_close;
		}
		if (r == 0)
			break; /* replaced by a shorter file meanwhile */
		got += (uint64_t)r;
	}
	out->len += (size_t)got;
out_close:
	close(fd);
	return ret;
}

/* Open the directory that holds name, creating it (and its parents). */
static int local_open_parent(struct local_backend *lb, const char *name,
			     const char **base)
{
	const char *slash = strrchr(name, '/');
	char dir[PATH_MAX];
	size_t n;
	int fd, ret;

	if (!slash) {
		*base = name;
		fd = openat(lb->rootfd, ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd >= 0 ? fd : -errno;
	}
	*base = slash + 1;
	n = (size_t)(slash - name);
	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, name, n);
	dir[n] = 0;
	fd = openat(lb->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	ret = local_mkdirs(lb->rootfd, dir);
	if (ret)
		return ret;
	fd = openat(lb->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Write a new temporary file in dirfd, synced to disk. */
static int local_write_tmp(int dirfd, const void *data, size_t len,
			   char tmp[LOCAL_TMP_LEN + 1])
{
	uint8_t rnd[8];
	int fd, ret, i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	memcpy(tmp, ".tmp.", 5);
	for (i = 0; i < 8; i++)
		snprintf(tmp + 5 + 2 * i, 3, "%02x", rnd[i]);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    LOCAL_FILE_MODE);
	if (fd < 0)
		return -errno;
	ret = bfs_write_all(fd, data, len);
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (ret)
		unlinkat(dirfd, tmp, 0);
	return ret;
}

/*
 * Move tmp to base unless base exists, atomically, so that hosts sharing
 * the directory can claim names.  Filesystems without RENAME_NOREPLACE
 * get link() + unlink(), which is just as exclusive.
 */
static int local_rename_excl(int dirfd, const char *tmp, const char *base)
{
	if (!renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE))
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (linkat(dirfd, tmp, dirfd, base, 0))
		return -errno;
	unlinkat(dirfd, tmp, 0);
	return 0;
}

static int local_put(struct bfs_backend *be, const char *name, const void *data,
		     size_t len, unsigned flags)
{
	struct local_backend *lb = local_of(be);
	char tmp[LOCAL_TMP_LEN + 1];
	const char *base;
	int dirfd, ret;

	if (local_reserved(lb, name))
		return -EINVAL;
	dirfd = local_open_parent(lb, name, &base);
	if (dirfd < 0)
		return local_fail(lb, "create the directory of", name, -dirfd);
	ret = local_write_tmp(dirfd, data, len, tmp);
	if (ret) {
		ret = local_fail(lb, "write", name, -ret);
		goto out_close;
	}
	if (flags & BFS_PUT_EXCL)
		ret = local_rename_excl(dirfd, tmp, base);
	else if (renameat(dirfd, tmp, dirfd, base))
		ret = -errno;
	if (ret) {
		unlinkat(dirfd, tmp, 0);
		if (ret != -EEXIST)
			ret = local_fail(lb, "rename into", name, -ret);
		goto out_close;
	}
	/* The rename itself must survive a crash too. */
	if (fsync(dirfd))
		ret = local_fail(lb, "sync the directory of", name, errno);
out_close:
	close(dirfd);
	return ret;
}

static int local_remove(struct bfs_backend *be, const char *name)
{
	struct local_backend *lb = local_of(be);

	if (local_reserved(lb, name))
		return -EINVAL;
	if (!unlinkat(lb->rootfd, name, 0))
		return 0;
	if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
		return -ENOENT;
	return local_fail(lb, "remove", name, errno);
}

static int local_stat(struct bfs_backend *be, const char *name, uint64_t *size)
{
	struct local_backend *lb = local_of(be);
	struct stat st;

	if (local_reserved(lb, name))
		return -EINVAL;
	if (fstatat(lb->rootfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -ENOENT;
		return local_fail(lb, "stat", name, errno);
	}
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* A local object is a plain file: no ETag, no metadata. */
static int local_info(struct bfs_backend *be, const char *name,
		      struct bfs_object_info *out)
{
	out->layout = BFS_LAYOUT_SINGLE;
	return local_stat(be, name, &out->size);
}

/*
 * Listing.  A depth-first walk yields full names in byte order when each
 * directory's entries are sorted with a directory sorting as its name
 * followed by '/' (that is where its contents sort: "a-b" < "a/x").
 */
struct local_ent {
	char *key; /* name, plus '/' for a directory */
	uint64_t size;
	int isdir;
};

struct local_walk {
	struct local_backend *lb;
	char delimiter;
	bfs_list_cb cb;
	void *arg;
	char path[PATH_MAX]; /* full name being built */
};

static int local_ent_cmp(const void *a, const void *b)
{
	const struct local_ent *x = a, *y = b;

	/* strcmp() compares as unsigned char: byte order */
	return strcmp(x->key, y->key);
}

static void local_ents_free(struct local_ent *ents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ents[i].key);
	free(ents);
}

/* Type and size of a directory entry: 1 file, 2 directory, 0 other. */
static int local_ent_type(int dirfd, const struct dirent *de, uint64_t *size)
{
	struct stat st;

	*size = 0;
	if (de->d_type == DT_DIR)
		return 2;
	if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
		return 0;
	if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
		return 0; /* removed meanwhile */
	*size = (uint64_t)st.st_size;
	return S_ISREG(st.st_mode) ? 1 : S_ISDIR(st.st_mode) ? 2 : 0;
}

static int local_ent_add(struct local_ent **ents, size_t *n, size_t *cap,
			 const char *name, int type, uint64_t size)
{
	struct local_ent *p;
	size_t len = strlen(name);

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		p = realloc(*ents, *cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*ents = p;
	}
	p = &(*ents)[*n];
	p->key = malloc(len + 2);
	if (!p->key)
		return -ENOMEM;
	memcpy(p->key, name, len);
	p->key[len] = type == 2 ? '/' : 0;
	p->key[len + 1] = 0;
	p->size = size;
	p->isdir = type == 2;
	(*n)++;
	return 0;
}

/* The entries of d whose names start with match, sorted. */
static int local_read_dir(DIR *d, const char *match, struct local_ent **out,
			  size_t *nout)
{
	size_t n = 0, cap = 0, mlen = strlen(match);
	struct local_ent *ents = NULL;
	struct dirent *de;
	uint64_t size;
	int type, ret = 0;

	errno = 0;
	while ((de = readdir(d))) {
		/* temporaries, ".", ".." and names we could not hand out */
		if (de->d_name[0] == '.' || !bfs_backend_name_ok(de->d_name) ||
		    strncmp(de->d_name, match, mlen))
			continue;
		type = local_ent_type(dirfd(d), de, &size);
		if (!type)
			continue;
		ret = local_ent_add(&ents, &n, &cap, de->d_name, type, size);
		if (ret)
			goto out_free;
	}
	if (errno) {
		ret = -errno;
		goto out_free;
	}
	if (n)
		qsort(ents, n, sizeof(*ents), local_ent_cmp);
	*out = ents;
	*nout = n;
	return 0;

out_free:
	local_ents_free(ents, n);
	return ret;
}

static int local_open_subdir(int dirfd, const char *name)
{
	return openat(dirfd, name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* 1 if the directory fd (owned) holds an object at any depth, else 0. */
static int local_has_object(int fd)
{
	struct local_ent *ents;
	size_t n, i;
	DIR *d;
	int ret, sub;

	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	ret = local_read_dir(d, "", &ents, &n);
	if (ret)
		goto out_close;
	for (i = 0; !ret && i < n; i++) {
		if (!ents[i].isdir) {
			ret = 1;
			break;
		}
		ents[i].key[strlen(ents[i].key) - 1] = 0;
		sub = local_open_subdir(dirfd(d), ents[i].key);
		if (sub >= 0)
			ret = local_has_object(sub);
	}
	local_ents_free(ents, n);
out_close:
	closedir(d);
	return ret;
}

static int local_walk_dir(struct local_walk *w, int fd, size_t plen,
			  const char *match);

/* Report one entry of a directory whose full name prefix is path[0..plen) */
static int local_walk_ent(struct local_walk *w, int dirfd, size_t plen,
			  struct local_ent *e)
{
	size_t klen = strlen(e->key);
	int sub, ret;

	if (plen + klen >= sizeof(w->path))
		return -ENAMETOOLONG;
	memcpy(w->path + plen, e->key, klen + 1);
	if (!e->isdir)
		return w->cb(w->path, e->size, 0, w->arg);
	e->key[klen - 1] = 0;
	sub = local_open_subdir(dirfd, e->key);
	if (sub < 0)
		return errno == ENOENT
			       ? 0
			       : local_fail(w->lb, "list", w->path, errno);
	if (!w->delimiter)
		return local_walk_dir(w, sub, plen + klen, "");
	/* a "directory" exists in an object store only if it holds objects */
	ret = local_has_object(sub);
	if (ret < 0)
		return local_fail(w->lb, "list", w->path, -ret);
	return ret ? w->cb(w->path, 0, 1, w->arg) : 0;
}

/* Walk the directory fd (owned) whose full name prefix is path[0..plen). */
static int local_walk_dir(struct local_walk *w, int fd, size_t plen,
			  const char *match)
{
	struct local_ent *ents;
	size_t n, i;
	DIR *d;
	int ret;

	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return local_fail(w->lb, "list", w->path, errno);
	}
	ret = local_read_dir(d, match, &ents, &n);
	if (ret) {
		local_fail(w->lb, "list", w->path, -ret);
		goto out_close;
	}
	for (i = 0; !ret && i < n; i++)
		ret = local_walk_ent(w, dirfd(d), plen, &ents[i]);
	local_ents_free(ents, n);
out_close:
	closedir(d);
	return ret;
}

static int local_list(struct bfs_backend *be, const char *prefix,
		      char delimiter, bfs_list_cb cb, void *arg)
{
	struct local_backend *lb = local_of(be);
	const char *slash = strrchr(prefix, '/');
	struct local_walk *w;
	size_t plen = slash ? (size_t)(slash - prefix) + 1 : 0;
	int fd, ret;

	if (plen >= sizeof(w->path))
		return -ENAMETOOLONG;
	w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->lb = lb;
	w->delimiter = delimiter;
	w->cb = cb;
	w->arg = arg;
	/* "manifests/pg": walk "manifests/", entries starting with "pg" */
	memcpy(w->path, prefix, plen);
	w->path[plen] = 0;
	fd = openat(lb->rootfd, plen ? w->path : ".",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = errno == ENOENT || errno == ENOTDIR
			      ? 0
			      : local_fail(lb, "list", prefix, errno);
		goto out_free;
	}
	ret = local_walk_dir(w, fd, plen, prefix + plen);
out_free:
	free(w);
	return ret;
}

static int local_space(struct bfs_backend *be, uint64_t *avail)
{
	struct statvfs sv;

	if (fstatvfs(local_of(be)->rootfd, &sv))
		return -errno;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

static const struct bfs_backend_ops local_ops = {
	.name = "local",
	.get = local_get,
	.put = local_put,
	.remove = local_remove,
	.stat = local_stat,
	.info = local_info,
	.list = local_list,
	.space = local_space,
	.destroy = local_destroy,
};
