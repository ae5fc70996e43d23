// SPDX-License-Identifier: Apache-2.0
/*
 * The "files" datastore: config checks, backup with each snapshot mode
 * into memory, verify of good and bad streams, restore and tree compare,
 * failed restores leaving the target as it was, crash recovery from
 * hand-written journals, and btrfs on a loop device when run as root.
 */
#include "buf.h"
#include "check.h"
#include "datastore.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define BIG	   100000
#define XATTR_NAME "user.backupfs.test"
#define UTF8_NAME  "with space \xc3\xa9\xe2\x82\xac.txt"

/* The scratch directory of this run (mkdtemp). */
static char base[] = "/tmp/bfs-files-XXXXXX";

/* ---- helpers ----------------------------------------------------------- */

static void join(char *out, const char *dir, const char *rel)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, rel) >= PATH_MAX)
		abort();
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int write_text(const char *dir, const char *rel, const char *text)
{
	char p[PATH_MAX];

	join(p, dir, rel);
	return write_file(p, text, strlen(text));
}

/* Whole file into a new buffer (NUL added); NULL if unreadable. */
static char *read_file(const char *path, size_t *len)
{
	struct stat st;
	char *data;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !(data = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return NULL;
	}
	*len = (size_t)read(fd, data, (size_t)st.st_size);
	data[*len] = '\0';
	close(fd);
	return data;
}

static void set_mtime(const char *dir, const char *rel, time_t sec, long ns)
{
	struct timespec t[2] = {{sec, ns}, {sec, ns}};
	char p[PATH_MAX];

	join(p, dir, rel);
	CHECK(!utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW));
}

/*
 * The test tree: sizes 0, 1 and 100000, nested directories, symlinks,
 * a hard link pair, an xattr, a name with spaces and UTF-8, modes,
 * a fifo, sub-second mtimes.
 */
static void build_tree(const char *root)
{
	char p[PATH_MAX], q[PATH_MAX];
	char *big = malloc(BIG);
	size_t i;

	CHECK(!mkdir(root, 0755));
	for (i = 0; i < BIG; i++)
		big[i] = (char)(i * 7 + i / 251);
	join(p, root, "empty");
	CHECK(!write_file(p, "", 0));
	CHECK(!write_text(root, "one", "x"));
	join(p, root, "big");
	CHECK(!write_file(p, big, BIG));
	free(big);
	join(p, root, "a");
	CHECK(!mkdir(p, 0750));
	join(p, root, "a/b");
	CHECK(!mkdir(p, 0755));
	join(p, root, "a/b/c");
	CHECK(!mkdir(p, 0700));
	CHECK(!write_text(root, "a/b/c/deep.txt", "deep\n"));
	join(p, root, "link");
	CHECK(!symlink("a/b", p));
	join(p, root, "dangling");
	CHECK(!symlink("/nonexistent/target", p));
	CHECK(!write_text(root, "hard1", "linked twice\n"));
	join(p, root, "hard1");
	join(q, root, "a/hard2");
	CHECK(!link(p, q));
	CHECK(!write_text(root, "xattr.txt", "has an xattr\n"));
	join(p, root, "xattr.txt");
	CHECK(!setxattr(p, XATTR_NAME, "hello", 5, 0));
	CHECK(!write_text(root, UTF8_NAME, "utf-8\n"));
	CHECK(!write_text(root, "private", "secret\n"));
	join(p, root, "private");
	CHECK(!chmod(p, 0600));
	CHECK(!write_text(root, "script", "#!/bin/sh\n"));
	join(p, root, "script");
	CHECK(!chmod(p, 0755));
	join(p, root, "fifo");
	CHECK(!mkfifo(p, 0640));
	/* Leaves first: setting a child's time does not touch its dir's. */
	set_mtime(root, "one", 1600000000, 123456789);
	set_mtime(root, "big", 1600000001, 1);
	set_mtime(root, "link", 1600000002, 500000000);
	set_mtime(root, "a/b/c/deep.txt", 1600000003, 999999999);
	set_mtime(root, "a/b/c", 1600000004, 42);
	set_mtime(root, "a/b", 1600000005, 0);
	set_mtime(root, "a", 1600000006, 7);
	set_mtime(root, ".", 1600000007, 700000000);
}

static int same_xattrs(const char *a, const char *b)
{
	char va[256], vb[256];
	ssize_t na, nb;

	na = lgetxattr(a, XATTR_NAME, va, sizeof(va));
	nb = lgetxattr(b, XATTR_NAME, vb, sizeof(vb));
	return na == nb && (na < 0 || !memcmp(va, vb, (size_t)na));
}

static int same_content(const char *a, const char *b, const struct stat *st)
{
	char la[PATH_MAX], lb[PATH_MAX];
	size_t na, nb;
	char *da, *db;
	int same;

	if (S_ISLNK(st->st_mode)) {
		ssize_t x = readlink(a, la, sizeof(la));
		ssize_t y = readlink(b, lb, sizeof(lb));

		return x == y && x > 0 && !memcmp(la, lb, (size_t)x);
	}
	if (!S_ISREG(st->st_mode))
		return 1;
	da = read_file(a, &na);
	db = read_file(b, &nb);
	same = da && db && na == nb && !memcmp(da, db, na);
	free(da);
	free(db);
	return same;
}

static int count_entries(const char *dir)
{
	struct dirent *d;
	DIR *dh = opendir(dir);
	int n = 0;

	if (!dh)
		return -1;
	while ((d = readdir(dh)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			n++;
	closedir(dh);
	return n;
}

/* Number of differences between the trees (printed). */
static int compare_tree(const char *a, const char *b)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	struct stat sa, sb;
	struct dirent *d;
	int diff = 0;
	DIR *dh;

	if (lstat(a, &sa) || lstat(b, &sb)) {
		fprintf(stderr, "missing: '%s' or '%s'\n", a, b);
		return 1;
	}
	if (sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid ||
	    sa.st_gid != sb.st_gid ||
	    (!S_ISDIR(sa.st_mode) && sa.st_size != sb.st_size) ||
	    sa.st_mtim.tv_sec != sb.st_mtim.tv_sec ||
	    sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec ||
	    !same_content(a, b, &sa) || !same_xattrs(a, b)) {
		fprintf(stderr,
			"differs: '%s' (mode %o mtime %ld.%09ld) vs "
			"'%s' (mode %o mtime %ld.%09ld)\n",
			a, sa.st_mode, (long)sa.st_mtim.tv_sec,
			sa.st_mtim.tv_nsec, b, sb.st_mode,
			(long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
		diff++;
	}
	if (!S_ISDIR(sa.st_mode) || !S_ISDIR(sb.st_mode))
		return diff;
	if (count_entries(a) != count_entries(b)) {
		fprintf(stderr, "entries differ: '%s' vs '%s'\n", a, b);
		diff++;
	}
	dh = opendir(a);
	while (dh && (d = readdir(dh))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		join(pa, a, d->d_name);
		join(pb, b, d->d_name);
		diff += compare_tree(pa, pb);
	}
	if (dh)
		closedir(dh);
	return diff;
}

/* Entries whose name contains needle in dir. */
static int count_named(const char *dir, const char *needle)
{
	struct dirent *d;
	DIR *dh = opendir(dir);
	int n = 0;

	if (!dh)
		return -1;
	while ((d = readdir(dh)))
		if (strstr(d->d_name, needle))
			n++;
	closedir(dh);
	return n;
}

static int rm_rf(const char *path)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

/* ---- the datastore ------------------------------------------------------ */

static int sink_mem(void *arg, const void *data, size_t len)
{
	return bfs_buf_append(arg, data, len);
}

struct fail_sink {
	size_t left;
};

static int sink_fail(void *arg, const void *data, size_t len)
{
	struct fail_sink *f = arg;

	(void)data;
	if (len > f->left)
		return -EIO;
	f->left -= len;
	return 0;
}

static struct bfs_datastore *open_files(const char *inst, const char *path,
					const char *snap, const char *state)
{
	struct bfs_datastore *ds = NULL;
	char err[256];
	json_t *conf;
	int rc;

	mkdir(state, 0700);
	conf = json_pack("{s:s, s:s}", "datastore", "files", "path", path);
	if (snap)
		json_object_set_new(conf, "snapshot", json_string(snap));
	rc = bfs_datastore_open(inst, conf, state, &ds, err, sizeof(err));
	if (rc)
		fprintf(stderr, "open: %s\n", err);
	CHECK_EQ(rc, 0);
	json_decref(conf);
	return ds;
}

/* Back up with strategy {"snapshot": snap} into b; returns the rc. */
static int backup_mem(struct bfs_datastore *ds, const char *snap,
		      struct bfs_buf *b, json_t **meta)
{
	struct bfs_progress pr = {0};
	json_t *strategy = json_object();
	char err[512] = "";
	int rc;

	if (snap)
		json_object_set_new(strategy, "snapshot", json_string(snap));
	*meta = json_object();
	bfs_buf_init(b, 64 << 20);
	rc = bfs_datastore_backup(ds, strategy, sink_mem, b, &pr, *meta, err,
				  sizeof(err));
	if (rc)
		fprintf(stderr, "backup (%s): %s\n", snap ? snap : "-", err);
	else
		CHECK_EQ(pr.done, b->len);
	json_decref(strategy);
	return rc;
}

static void spool(const char *path, const void *data, size_t len)
{
	CHECK(!write_file(path, data, len));
}

static int verify(struct bfs_datastore *ds, const char *path)
{
	char err[512] = "";
	int rc;

	rc = bfs_datastore_verify(ds, path, NULL, err, sizeof(err));
	if (rc)
		fprintf(stderr, "verify (expected or not): %s\n", err);
	return rc;
}

static int restore(struct bfs_datastore *ds, const char *path)
{
	struct bfs_progress pr = {0};
	char err[512] = "";
	int rc;

	rc = bfs_datastore_restore(ds, path, &pr, err, sizeof(err));
	if (rc)
		fprintf(stderr, "restore (expected or not): %s\n", err);
	else
		CHECK(pr.done > 0 && pr.done <= pr.total);
	return rc;
}

static void check_hard_links(const char *root)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct stat a, b;

	join(p, root, "hard1");
	join(q, root, "a/hard2");
	CHECK(!lstat(p, &a) && !lstat(q, &b));
	CHECK_EQ(a.st_ino, b.st_ino);
	CHECK_EQ(a.st_nlink, 2);
}

/* ---- tests --------------------------------------------------------------- */

static void test_config(void)
{
	struct bfs_datastore *ds = NULL;
	char err[256], state[PATH_MAX];
	json_t *conf;

	join(state, base, "state-config");
	mkdir(state, 0700);
	conf = json_pack("{s:s, s:s, s:s}", "datastore", "files", "path",
			 "/srv/x", "colour", "blue");
	CHECK_EQ(bfs_datastore_open("vol1", conf, state, &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "unknown key 'colour' in instance 'vol1'"));
	json_decref(conf);

	conf = json_pack("{s:s, s:s}", "datastore", "files", "path", "rel/x");
	CHECK_EQ(bfs_datastore_open("vol1", conf, state, &ds, err, sizeof(err)),
		 -EINVAL);
	json_decref(conf);
	conf = json_pack("{s:s, s:s}", "datastore", "files", "path", "/");
	CHECK_EQ(bfs_datastore_open("vol1", conf, state, &ds, err, sizeof(err)),
		 -EINVAL);
	json_decref(conf);
	conf = json_pack("{s:s, s:s}", "datastore", "files", "path",
			 "/srv/../etc");
	CHECK_EQ(bfs_datastore_open("vol1", conf, state, &ds, err, sizeof(err)),
		 -EINVAL);
	json_decref(conf);
	conf = json_pack("{s:s, s:s, s:s}", "datastore", "files", "path",
			 "/srv/x", "snapshot", "lvm");
	CHECK_EQ(bfs_datastore_open("vol1", conf, state, &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "snapshot"));
	json_decref(conf);
	conf = json_pack("{s:s, s:s}", "datastore", "oracle", "path", "/x");
	CHECK_EQ(bfs_datastore_open("vol1", conf, state, &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "unknown datastore 'oracle'"));
	json_decref(conf);
	conf = json_pack("{s:s, s:s}", "datastore", "files", "path", "/srv/x/");
	CHECK_EQ(bfs_datastore_open("a/b", conf, state, &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(bfs_datastore_open("vol1", conf, state, &ds, err, sizeof(err)),
		 0);
	CHECK(ds && !strcmp(ds->instance, "vol1"));
	CHECK(ds && !strcmp(bfs_datastore_name(ds), "files"));
	bfs_datastore_close(ds);
	json_decref(conf);
	CHECK(bfs_datastore_find("files") == &bfs_files_ops);
	CHECK(bfs_datastore_find("nope") == NULL);
}

static void test_strategy(void)
{
	char err[256], state[PATH_MAX];
	struct bfs_datastore *ds;
	json_t *s;

	join(state, base, "state-strategy");
	ds = open_files("vol1", "/srv/x", NULL, state);
	if (!ds)
		return;
	CHECK_EQ(bfs_datastore_check_strategy(ds, NULL, err, sizeof(err)), 0);
	s = json_pack("{s:s}", "snapshot", "copy");
	CHECK_EQ(bfs_datastore_check_strategy(ds, s, err, sizeof(err)), 0);
	json_decref(s);
	s = json_pack("{s:s}", "snapshot", "zfs");
	CHECK_EQ(bfs_datastore_check_strategy(ds, s, err, sizeof(err)),
		 -EINVAL);
	json_decref(s);
	s = json_pack("{s:i}", "snapshot", 3);
	CHECK_EQ(bfs_datastore_check_strategy(ds, s, err, sizeof(err)),
		 -EINVAL);
	json_decref(s);
	s = json_pack("{s:b}", "force", 1);
	CHECK_EQ(bfs_datastore_check_strategy(ds, s, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "'force'"));
	json_decref(s);
	s = json_array();
	CHECK_EQ(bfs_datastore_check_strategy(ds, s, err, sizeof(err)),
		 -EINVAL);
	json_decref(s);
	bfs_datastore_close(ds);
}

static void test_estimate(void)
{
	char src[PATH_MAX], state[PATH_MAX];
	struct bfs_datastore *ds;
	uint64_t bytes = 0;

	join(src, base, "src");
	join(state, base, "state-est");
	ds = open_files("est", src, NULL, state);
	if (!ds)
		return;
	CHECK_EQ(bfs_datastore_estimate(ds, NULL, &bytes), 0);
	CHECK(bytes > BIG + 1 && bytes < BIG + 100000);
	bfs_datastore_close(ds);
}

/* Back up src with a mode, verify, restore into a fresh path, compare. */
static void roundtrip(const char *snap, const char *want_mode)
{
	char src[PATH_MAX], dst[PATH_MAX], state[PATH_MAX];
	char state2[PATH_MAX], sp[PATH_MAX], name[64];
	struct bfs_datastore *ds, *ds2;
	struct bfs_buf b;
	json_t *meta;

	join(src, base, "src");
	snprintf(name, sizeof(name), "dst-%s", snap);
	join(dst, base, name);
	snprintf(name, sizeof(name), "state-%s", snap);
	join(state, base, name);
	snprintf(name, sizeof(name), "state2-%s", snap);
	join(state2, base, name);
	snprintf(name, sizeof(name), "spool-%s", snap);
	join(sp, base, name);

	ds = open_files("vol1", src, "none", state);
	if (!ds)
		return;
	CHECK_EQ(backup_mem(ds, snap, &b, &meta), 0);
	CHECK(!strcmp(json_string_value(json_object_get(meta, "format")),
		      "tar"));
	CHECK(json_string_value(json_object_get(meta, "datastore_version")));
	CHECK(!strcmp(json_string_value(json_object_get(meta, "snapshot")),
		      want_mode));
	/* Temporary snapshots and their journals are gone. */
	CHECK_EQ(count_named(state, ".backupfs-"), 0);
	CHECK_EQ(count_named(state, ".journal"), 0);
	CHECK_EQ(count_named(base, ".backupfs-"), 0);
	spool(sp, b.data, b.len);
	CHECK_EQ(verify(ds, sp), 0);

	ds2 = open_files("vol2", dst, NULL, state2);
	if (ds2) {
		/* A fresh deployment: dst does not exist yet. */
		CHECK(!exists(dst));
		CHECK_EQ(restore(ds2, sp), 0);
		CHECK_EQ(compare_tree(src, dst), 0);
		check_hard_links(dst);
		CHECK_EQ(count_named(base, ".backupfs-"), 0);
		CHECK_EQ(count_named(state2, ".journal"), 0);
		bfs_datastore_close(ds2);
	}
	json_decref(meta);
	bfs_buf_release(&b);
	bfs_datastore_close(ds);
}

static void test_roundtrip_none(void)
{
	roundtrip("none", "none");
}

static void test_roundtrip_copy(void)
{
	roundtrip("copy", "copy");
}

/* Restoring over a tree with other content replaces it whole. */
static void test_restore_replaces(void)
{
	char src[PATH_MAX], dst[PATH_MAX], state[PATH_MAX], sp[PATH_MAX];
	struct bfs_datastore *ds;

	join(src, base, "src");
	join(dst, base, "dst-none");
	join(state, base, "state-replace");
	join(sp, base, "spool-none");
	CHECK(!write_text(dst, "stray", "must go\n"));
	CHECK(!write_text(dst, "one", "changed"));
	ds = open_files("vol2", dst, NULL, state);
	if (!ds)
		return;
	CHECK_EQ(restore(ds, sp), 0);
	CHECK_EQ(compare_tree(src, dst), 0);
	CHECK_EQ(count_named(base, ".backupfs-"), 0);
	bfs_datastore_close(ds);
}

static void test_reflink_auto(void)
{
	char src[PATH_MAX], state[PATH_MAX];
	struct bfs_datastore *ds;
	struct bfs_buf b;
	struct statfs sfs;
	char err[512] = "";
	json_t *meta, *s;
	int rc;

	join(src, base, "src");
	join(state, base, "state-reflink");
	CHECK(!statfs(base, &sfs));
	if (sfs.f_type != EXT4_SUPER_MAGIC) {
		fprintf(stderr, "skip: '%s' is not ext4\n", base);
		return;
	}
	ds = open_files("vol1", src, NULL, state);
	if (!ds)
		return;
	meta = json_object();
	s = json_pack("{s:s}", "snapshot", "reflink");
	bfs_buf_init(&b, 64 << 20);
	rc = bfs_datastore_backup(ds, s, sink_mem, &b, NULL, meta, err,
				  sizeof(err));
	CHECK_EQ(rc, -EOPNOTSUPP);
	CHECK(strstr(err, "reflink"));
	CHECK_EQ(count_named(base, ".backupfs-"), 0);
	CHECK_EQ(count_named(state, ".journal"), 0);
	json_decref(s);
	json_decref(meta);
	bfs_buf_release(&b);
	/* auto: not a subvolume, no reflink, so a copy. */
	CHECK_EQ(backup_mem(ds, NULL, &b, &meta), 0);
	CHECK(!strcmp(json_string_value(json_object_get(meta, "snapshot")),
		      "copy"));
	CHECK_EQ(count_named(base, ".backupfs-"), 0);
	CHECK_EQ(count_named(state, ".backupfs-"), 0);
	json_decref(meta);
	bfs_buf_release(&b);
	bfs_datastore_close(ds);
}

/* A sink failing midway fails the backup and removes the snapshot. */
static void test_sink_error(void)
{
	char src[PATH_MAX], state[PATH_MAX], err[256];
	struct fail_sink f = {.left = 65536};
	struct bfs_datastore *ds;
	json_t *meta = json_object(), *s;

	join(src, base, "src");
	join(state, base, "state-sink");
	ds = open_files("vol1", src, "copy", state);
	if (!ds)
		return;
	s = json_object();
	CHECK_EQ(bfs_datastore_backup(ds, s, sink_fail, &f, NULL, meta, err,
				      sizeof(err)),
		 -EIO);
	CHECK_EQ(count_named(state, ".backupfs-"), 0);
	CHECK_EQ(count_named(state, ".journal"), 0);
	CHECK_EQ(json_object_size(meta), 0);
	json_decref(s);
	json_decref(meta);
	bfs_datastore_close(ds);
}

/* A tar with one entry named name (and hard link target link). */
static void write_evil_tar(const char *path, const char *name, const char *link)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	archive_write_set_format_pax(a);
	CHECK_EQ(archive_write_open_filename(a, path), ARCHIVE_OK);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	if (link)
		archive_entry_set_hardlink(e, link);
	else
		archive_entry_set_size(e, 4);
	CHECK_EQ(archive_write_header(a, e), ARCHIVE_OK);
	if (!link)
		CHECK_EQ(archive_write_data(a, "evil", 4), 4);
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
}

static void test_verify_rejects(void)
{
	char sp[PATH_MAX], bad[PATH_MAX], state[PATH_MAX];
	struct bfs_datastore *ds;
	size_t len, i;
	char *data;
	int rc;

	join(sp, base, "spool-none");
	join(bad, base, "bad");
	join(state, base, "state-verify");
	ds = open_files("vol1", "/srv/x", NULL, state);
	data = read_file(sp, &len);
	CHECK(data && len > 4096);
	if (!ds || !data)
		goto out;
	/* Cut in the middle of the big file's data. */
	spool(bad, data, len / 2);
	CHECK_EQ(verify(ds, bad), -EBADMSG);
	/* Cut at an entry boundary: only the end-of-archive blocks lack. */
	spool(bad, data, len - 1024);
	CHECK_EQ(verify(ds, bad), -EBADMSG);
	spool(bad, data, len - 1);
	CHECK_EQ(verify(ds, bad), -EBADMSG);
	/* A damaged header (checksum) after the first entry. */
	data[1536 + 100] ^= 0x55;
	spool(bad, data, len);
	rc = verify(ds, bad);
	data[1536 + 100] ^= 0x55;
	CHECK(rc == -EBADMSG || rc == -EINVAL);
	/* Random bytes, an empty file, a missing one. */
	for (i = 0; i < 8192; i++)
		data[i] = (char)(rand() & 0xff);
	spool(bad, data, 8192);
	rc = verify(ds, bad);
	CHECK(rc == -EINVAL || rc == -EBADMSG);
	spool(bad, "", 0);
	CHECK_EQ(verify(ds, bad), -EINVAL);
	join(bad, base, "missing");
	CHECK_EQ(verify(ds, bad), -ENOENT);
	/* Names that would escape the restore. */
	join(bad, base, "evil.tar");
	write_evil_tar(bad, "/etc/evil", NULL);
	CHECK_EQ(verify(ds, bad), -EINVAL);
	write_evil_tar(bad, "a/../../evil", NULL);
	CHECK_EQ(verify(ds, bad), -EINVAL);
	write_evil_tar(bad, "x", "../../etc/passwd");
	CHECK_EQ(verify(ds, bad), -EINVAL);
	write_evil_tar(bad, "fine", NULL);
	CHECK_EQ(verify(ds, bad), 0);
out:
	free(data);
	bfs_datastore_close(ds);
}

/* cp -a: the same content, modes, owners, times and xattrs. */
static int copy_tree_as_is(const char *from, const char *to)
{
	char cmd[3 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "cp -a -- '%s' '%s'", from, to);
	return system(cmd) ? -EIO : 0;
}

/* A failed restore leaves the target exactly as it was. */
static void test_restore_truncated(void)
{
	char sp[PATH_MAX], bad[PATH_MAX], state[PATH_MAX], dst[PATH_MAX];
	char ref[PATH_MAX], evil[PATH_MAX];
	struct bfs_datastore *ds;
	size_t len;
	char *data;

	join(sp, base, "spool-none");
	join(bad, base, "truncated");
	join(state, base, "state-trunc");
	join(dst, base, "trunc-target");
	join(ref, base, "trunc-ref");
	build_tree(dst);
	CHECK(!write_text(dst, "only-here", "old\n"));
	set_mtime(dst, ".", 1600000007, 700000000);
	/* The reference is a copy of the target itself: two trees built
	 * apart could differ in mtimes by a clock tick. */
	CHECK(!copy_tree_as_is(dst, ref));
	data = read_file(sp, &len);
	if (!data)
		return;
	spool(bad, data, len / 2);
	free(data);
	ds = open_files("trunc", dst, NULL, state);
	if (!ds)
		return;
	CHECK_EQ(restore(ds, bad), -EBADMSG);
	CHECK_EQ(compare_tree(ref, dst), 0);
	CHECK_EQ(count_named(base, ".backupfs-"), 0);
	CHECK_EQ(count_named(state, ".journal"), 0);
	/* Unsafe names are refused before anything lands. */
	join(evil, base, "evil.tar");
	write_evil_tar(evil, "/tmp/evil", NULL);
	CHECK_EQ(restore(ds, evil), -EINVAL);
	CHECK_EQ(compare_tree(ref, dst), 0);
	CHECK_EQ(count_named(base, ".backupfs-"), 0);
	bfs_datastore_close(ds);

	/* A fresh deployment whose restore fails leaves no directory. */
	join(dst, base, "never-made");
	join(state, base, "state-never");
	ds = open_files("never", dst, NULL, state);
	if (!ds)
		return;
	CHECK_EQ(restore(ds, bad), -EBADMSG);
	CHECK(!exists(dst));
	bfs_datastore_close(ds);
}

/* A symlink out of the tree, then a file through it. */
static void write_symlink_escape(const char *path, const char *outside)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	archive_write_set_format_pax(a);
	CHECK_EQ(archive_write_open_filename(a, path), ARCHIVE_OK);
	archive_entry_set_pathname(e, "l");
	archive_entry_set_filetype(e, AE_IFLNK);
	archive_entry_set_perm(e, 0777);
	archive_entry_set_symlink(e, outside);
	CHECK_EQ(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "l/pwned");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 4);
	CHECK_EQ(archive_write_header(a, e), ARCHIVE_OK);
	CHECK_EQ(archive_write_data(a, "evil", 4), 4);
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
}

/* Writing through a symlink the stream made is refused. */
static void test_restore_symlink_escape(void)
{
	char state[PATH_MAX], dst[PATH_MAX], ref[PATH_MAX], evil[PATH_MAX];
	char outside[PATH_MAX];
	struct bfs_datastore *ds;

	join(state, base, "state-escape");
	join(dst, base, "escape-target");
	join(ref, base, "escape-ref");
	join(evil, base, "escape.tar");
	join(outside, base, "outside");
	CHECK(!mkdir(dst, 0755) && !mkdir(ref, 0755) && !mkdir(outside, 0755));
	CHECK(!write_text(dst, "keep", "keep\n"));
	CHECK(!write_text(ref, "keep", "keep\n"));
	set_mtime(dst, ".", 1600000000, 0);
	set_mtime(ref, ".", 1600000000, 0);
	write_symlink_escape(evil, outside);
	ds = open_files("escape", dst, NULL, state);
	if (!ds)
		return;
	CHECK(restore(ds, evil) < 0);
	CHECK_EQ(count_entries(outside), 0);
	CHECK_EQ(compare_tree(ref, dst), 0);
	CHECK_EQ(count_named(base, ".backupfs-"), 0);
	bfs_datastore_close(ds);
}

static void write_journal(const char *state, const char *name, json_t *j)
{
	char p[PATH_MAX];

	join(p, state, name);
	CHECK_EQ(json_dump_file(j, p, 0), 0);
	json_decref(j);
}

static json_t *restore_journal(const char *phase, const char *target,
			       const char *staging, const struct stat *st)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "phase", phase,
			 "target", target, "staging", staging, "created", 0,
			 "dev", (json_int_t)st->st_dev, "ino",
			 (json_int_t)st->st_ino);
}

static void test_recover(void)
{
	char state[PATH_MAX], snap[PATH_MAX], tgt[PATH_MAX], stg[PATH_MAX];
	char p[PATH_MAX], ours[PATH_MAX];
	struct bfs_datastore *ds;
	struct stat st;
	size_t len;
	char *data;

	join(state, base, "state-recover");
	join(tgt, base, "rtarget");
	join(stg, base, ".rtarget.backupfs-restore-00112233");
	ds = open_files("rec", tgt, NULL, state);
	if (!ds)
		return;

	/* 1. A temporary copy snapshot a crash left. */
	join(snap, state, ".backupfs-snap-rec-deadbeefdeadbeef");
	build_tree(snap);
	write_journal(state, "snapshot-deadbeefdeadbeef.journal",
		      json_pack("{s:s, s:s}", "mode", "copy", "path", snap));
	join(p, state, "snapshot-0000000000000000.journal.tmp");
	CHECK(!write_file(p, "{", 1));
	CHECK_EQ(bfs_datastore_recover(ds), 0);
	CHECK(!exists(snap));
	CHECK_EQ(count_named(state, "snapshot-"), 0);

	/* 2. Crash while extracting: staging goes, target untouched. */
	build_tree(tgt);
	CHECK(!stat(tgt, &st));
	CHECK(!mkdir(stg, 0700));
	CHECK(!write_text(stg, "half", "written"));
	write_journal(state, "restore.journal",
		      restore_journal("extracting", tgt, stg, &st));
	CHECK_EQ(bfs_datastore_recover(ds), 0);
	CHECK(!exists(stg));
	CHECK(exists(tgt));
	join(p, tgt, "big");
	data = read_file(p, &len);
	CHECK(data && len == BIG);
	free(data);
	CHECK_EQ(count_named(state, "restore"), 0);

	/* 3. Crash after the swap: the old tree (at staging) goes. */
	CHECK(!mkdir(stg, 0755));
	CHECK(!write_text(stg, "old", "old tree\n"));
	CHECK(!stat(stg, &st));
	CHECK(!renameat2(AT_FDCWD, tgt, AT_FDCWD, stg, RENAME_EXCHANGE));
	write_journal(state, "restore.journal",
		      restore_journal("swapped", tgt, stg, &st));
	CHECK_EQ(bfs_datastore_recover(ds), 0);
	CHECK(!exists(stg));
	join(p, tgt, "old");
	CHECK(exists(p));
	CHECK_EQ(count_named(state, "restore"), 0);

	/* 4. Swapped but still journalled "extracting": the target's
	 * identity shows the swap happened; the restore completes. */
	CHECK(!stat(tgt, &st));
	CHECK(!mkdir(stg, 0755));
	CHECK(!write_text(stg, "new", "new tree\n"));
	CHECK(!renameat2(AT_FDCWD, tgt, AT_FDCWD, stg, RENAME_EXCHANGE));
	write_journal(state, "restore.journal",
		      restore_journal("extracting", tgt, stg, &st));
	CHECK_EQ(bfs_datastore_recover(ds), 0);
	CHECK(!exists(stg));
	join(p, tgt, "new");
	CHECK(exists(p));

	/* 5. A journal naming a tree not ours removes nothing. */
	join(ours, base, "precious");
	CHECK(!mkdir(ours, 0755));
	write_journal(state, "snapshot-1111111111111111.journal",
		      json_pack("{s:s, s:s}", "mode", "copy", "path", ours));
	CHECK_EQ(bfs_datastore_recover(ds), -EPERM);
	CHECK(exists(ours));
	join(p, state, "snapshot-1111111111111111.journal");
	unlink(p);
	bfs_datastore_close(ds);
}

/* ---- btrfs ----------------------------------------------------------- */

static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[3 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

static void btrfs_cases(const char *mnt)
{
	char vol[PATH_MAX], plain[PATH_MAX], state[PATH_MAX], sp[PATH_MAX];
	char ref[PATH_MAX], dst[PATH_MAX];
	struct bfs_datastore *ds;
	struct bfs_buf b;
	struct stat st;
	json_t *meta;

	join(vol, mnt, "vol");
	join(plain, mnt, "plain");
	join(dst, mnt, "restored");
	join(state, base, "state-btrfs");
	join(sp, base, "spool-btrfs");
	join(ref, base, "src");
	CHECK_EQ(
		sh("btrfs -q subvolume create '%s' >/dev/null 2>&1%s", vol, ""),
		0);
	CHECK_EQ(sh("cp -a '%s/.' '%s'", ref, vol), 0);
	set_mtime(vol, ".", 1600000007, 700000000);
	ds = open_files("bvol", vol, "btrfs", state);
	if (!ds)
		return;
	CHECK_EQ(backup_mem(ds, NULL, &b, &meta), 0);
	CHECK(!strcmp(json_string_value(json_object_get(meta, "snapshot")),
		      "btrfs"));
	CHECK_EQ(count_named(mnt, ".backupfs-"), 0);
	CHECK_EQ(count_named(state, ".journal"), 0);
	spool(sp, b.data, b.len);
	json_decref(meta);
	bfs_buf_release(&b);
	CHECK_EQ(verify(ds, sp), 0);
	/* Restore over the subvolume: it stays one. */
	CHECK(!write_text(vol, "stray", "must go\n"));
	CHECK_EQ(restore(ds, sp), 0);
	CHECK_EQ(compare_tree(ref, vol), 0);
	check_hard_links(vol);
	CHECK(!stat(vol, &st) && st.st_ino == 256);
	CHECK_EQ(count_named(mnt, ".backupfs-"), 0);
	/* auto on a subvolume is btrfs. */
	CHECK_EQ(backup_mem(ds, "auto", &b, &meta), 0);
	CHECK(!strcmp(json_string_value(json_object_get(meta, "snapshot")),
		      "btrfs"));
	json_decref(meta);
	bfs_buf_release(&b);
	bfs_datastore_close(ds);

	/* reflink works on btrfs, in a plain directory. */
	CHECK_EQ(sh("cp -a '%s' '%s'", ref, plain), 0);
	ds = open_files("bplain", plain, "reflink", state);
	if (!ds)
		return;
	CHECK_EQ(backup_mem(ds, NULL, &b, &meta), 0);
	CHECK(!strcmp(json_string_value(json_object_get(meta, "snapshot")),
		      "reflink"));
	CHECK_EQ(count_named(mnt, ".backupfs-"), 0);
	spool(sp, b.data, b.len);
	json_decref(meta);
	bfs_buf_release(&b);
	bfs_datastore_close(ds);
	ds = open_files("brest", dst, NULL, state);
	if (!ds)
		return;
	CHECK_EQ(restore(ds, sp), 0);
	CHECK_EQ(compare_tree(ref, dst), 0);
	bfs_datastore_close(ds);
}

/* No room for a copy: -ENOSPC, and auto reads the live tree. */
static void test_copy_no_space(void)
{
	char src[PATH_MAX], state[PATH_MAX], err[512];
	struct bfs_datastore *ds;
	json_t *meta, *s;
	struct bfs_buf b;

	if (geteuid() != 0) {
		fprintf(stderr, "skip: a small tmpfs needs root\n");
		return;
	}
	join(src, base, "src");
	join(state, base, "state-small");
	CHECK(!mkdir(state, 0700));
	if (sh("mount -t tmpfs -o size=64k tmpfs '%s'%s", state, "")) {
		fprintf(stderr, "skip: cannot mount a tmpfs\n");
		return;
	}
	ds = open_files("small", src, NULL, state);
	if (!ds)
		goto out_umount;
	meta = json_object();
	s = json_pack("{s:s}", "snapshot", "copy");
	bfs_buf_init(&b, 64 << 20);
	CHECK_EQ(bfs_datastore_backup(ds, s, sink_mem, &b, NULL, meta, err,
				      sizeof(err)),
		 -ENOSPC);
	CHECK(strstr(err, "no room"));
	CHECK_EQ(count_named(state, ".backupfs-"), 0);
	CHECK_EQ(count_named(state, ".journal"), 0);
	json_decref(s);
	json_decref(meta);
	bfs_buf_release(&b);
	CHECK_EQ(backup_mem(ds, "auto", &b, &meta), 0);
	CHECK(!strcmp(json_string_value(json_object_get(meta, "snapshot")),
		      "none"));
	json_decref(meta);
	bfs_buf_release(&b);
	bfs_datastore_close(ds);
out_umount:
	CHECK_EQ(sh("umount '%s'%s", state, ""), 0);
}

static void test_btrfs(void)
{
	char img[PATH_MAX], mnt[PATH_MAX];

	if (geteuid() != 0 || system("command -v mkfs.btrfs >/dev/null")) {
		fprintf(stderr, "skip: btrfs needs root and mkfs.btrfs\n");
		return;
	}
	join(img, base, "btrfs.img");
	join(mnt, base, "mnt");
	CHECK(!mkdir(mnt, 0755));
	if (sh("truncate -s 300M '%s' && mkfs.btrfs -q '%s' >/dev/null 2>&1",
	       img, img) ||
	    sh("mount -o loop '%s' '%s'", img, mnt)) {
		fprintf(stderr, "skip: cannot make or mount a btrfs image\n");
		return;
	}
	btrfs_cases(mnt);
	CHECK_EQ(sh("umount '%s'%s", mnt, ""), 0);
	unlink(img);
	rmdir(mnt);
}

int main(void)
{
	char src[PATH_MAX];

	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	umask(022);
	join(src, base, "src");
	build_tree(src);
	RUN(test_config);
	RUN(test_strategy);
	RUN(test_estimate);
	RUN(test_roundtrip_none);
	RUN(test_roundtrip_copy);
	RUN(test_restore_replaces);
	RUN(test_reflink_auto);
	RUN(test_sink_error);
	RUN(test_verify_rejects);
	RUN(test_restore_truncated);
	RUN(test_restore_symlink_escape);
	RUN(test_recover);
	RUN(test_copy_no_space);
	RUN(test_btrfs);
	if (!check_failed_total)
		rm_rf(base);
	else
		fprintf(stderr, "left '%s' for a look\n", base);
	return check_summary();
}
