// SPDX-License-Identifier: Apache-2.0
/*
 * The "files" datastore: a plain directory tree (the volume case).
 *
 *   {"datastore": "files", "path": "/srv/vol1",
 *    "snapshot": "auto" | "btrfs" | "reflink" | "copy" | "none"}
 *
 * A backup is a POSIX pax tar of the tree's content, entries named
 * relative to the root ("." is the root itself, so its mode, owner and
 * times come back too), with hard links, xattrs, ACLs, file flags and
 * sub-second mtimes.  It is read from a temporary snapshot (see
 * files_snapshot.c) unless the snapshot mode is "none".
 *
 * A restore (files_restore.c) extracts into a staging directory beside
 * the tree and swaps it in atomically.
 */
#include "files_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Stream bytes per entry beyond its data: pax header block + ustar
 * header + padding, roughly. */
#define FILES_ENTRY_OVERHEAD 1536

static const char *const files_keys[] = {"path", "snapshot", NULL};

static struct files_ds *files_of(struct bfs_datastore *ds)
{
	return (struct files_ds *)ds;
}

/* libarchive's errno when it has a real one, else dflt: it reports
 * format errors as EILSEQ and its own as -1. */
int files_ar_errno(struct archive *a, int dflt)
{
	int e = archive_errno(a);

	return e > 0 && e != EILSEQ ? -e : dflt;
}

const char *files_ar_msg(struct archive *a)
{
	const char *s = archive_error_string(a);

	return s ? s : "unknown error";
}

void files_locale_enter(struct files_locale *l)
{
	l->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	l->old = l->utf8 ? uselocale(l->utf8) : (locale_t)0;
	if (!l->utf8)
		bfs_debug("no C.UTF-8 locale: names converted as ASCII");
}

void files_locale_leave(struct files_locale *l)
{
	if (!l->utf8)
		return;
	uselocale(l->old);
	freelocale(l->utf8);
}

/* ---- open, close, strategy ------------------------------------------- */

/* Absolute, not "/", no "." or ".." components (it is compared as a
 * string prefix of what libarchive walks). */
static int files_check_path(const char *path)
{
	const char *p = path;
	size_t n;

	if (path[0] != '/' || !path[1])
		return -EINVAL;
	while (*p) {
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		p += n;
	}
	return 0;
}

static int files_parse_conf(struct files_ds *f, const char *instance,
			    json_t *conf, char *err, size_t errlen)
{
	const char *path = json_string_value(json_object_get(conf, "path"));
	json_t *snap = json_object_get(conf, "snapshot");
	size_t n;

	if (!path || files_check_path(path)) {
		snprintf(err, errlen,
			 "instance '%s' needs an absolute \"path\" (not '/')",
			 instance);
		return -EINVAL;
	}
	if (snap && (!json_is_string(snap) ||
		     files_snap_parse(json_string_value(snap), &f->snap))) {
		snprintf(err, errlen,
			 "unknown snapshot mode in instance '%s' (auto, btrfs, "
			 "reflink, copy or none)",
			 instance);
		return -EINVAL;
	}
	f->path = strdup(path);
	if (!f->path)
		return -ENOMEM;
	n = strlen(f->path);
	while (n > 1 && f->path[n - 1] == '/')
		f->path[--n] = '\0';
	return 0;
}

static void files_close(struct bfs_datastore *ds)
{
	struct files_ds *f = files_of(ds);

	free(f->path);
	free(f->state_dir);
	free(f);
}

static int files_open(const char *instance, json_t *conf, const char *state_dir,
		      struct bfs_datastore **out, char *err, size_t errlen)
{
	struct files_ds *f;
	int rc;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->snap = FILES_SNAP_AUTO;
	rc = files_parse_conf(f, instance, conf, err, errlen);
	if (rc)
		goto out_free;
	f->state_dir = strdup(state_dir);
	if (!f->state_dir) {
		rc = -ENOMEM;
		goto out_free;
	}
	*out = &f->base;
	return 0;
out_free:
	files_close(&f->base);
	return rc;
}

static int files_check_strategy(struct bfs_datastore *ds, json_t *strategy,
				char *err, size_t errlen)
{
	enum files_snap_mode mode;
	const char *key;
	json_t *val;

	json_object_foreach(strategy, key, val)
	{
		if (strcmp(key, "snapshot")) {
			snprintf(err, errlen,
				 "unknown strategy key '%s' for datastore "
				 "'files' (only \"snapshot\")",
				 key);
			return -EINVAL;
		}
		if (!json_is_string(val) ||
		    files_snap_parse(json_string_value(val), &mode)) {
			snprintf(err, errlen,
				 "unknown snapshot mode in strategy (auto, "
				 "btrfs, reflink, copy or none)");
			return -EINVAL;
		}
	}
	return 0;
}

static int files_estimate(struct bfs_datastore *ds, json_t *strategy,
			  uint64_t *bytes)
{
	uint64_t entries;
	int rc;

	rc = files_tree_size(files_of(ds)->path, bytes, &entries);
	if (rc)
		return rc;
	*bytes += entries * FILES_ENTRY_OVERHEAD + 1024;
	return 0;
}

/* ---- backup: the tree as a pax stream -------------------------------- */

struct tar_ctx {
	struct archive *rd; /* archive_read_disk of the tree */
	struct archive *aw; /* pax writer into the sink */
	struct archive_entry_linkresolver *links;
	const char *root;
	size_t rootlen;
	int live; /* reading the live tree: files may vanish */
	bfs_sink_fn sink;
	void *sink_arg;
	int sink_rc; /* the sink's own error, if it failed */
	struct bfs_progress *progress;
	char *buf;
	char *err;
	size_t errlen;
};

static la_ssize_t tar_sink(struct archive *a, void *arg, const void *data,
			   size_t len)
{
	struct tar_ctx *t = arg;
	int rc;

	rc = t->sink(t->sink_arg, data, len);
	if (rc) {
		t->sink_rc = rc < 0 ? rc : -EIO;
		archive_set_error(a, -t->sink_rc, "backup sink failed");
		return -1;
	}
	t->progress->done += len;
	return (la_ssize_t)len;
}

/* Fail with the writer's error (the sink's, if it was the sink). */
static int tar_werr(struct tar_ctx *t, const char *what)
{
	int rc = t->sink_rc ? t->sink_rc : files_ar_errno(t->aw, -EIO);

	snprintf(t->err, t->errlen, "cannot write '%s' to the backup: %s", what,
		 t->sink_rc ? strerror(-rc) : files_ar_msg(t->aw));
	return rc;
}

static int tar_open(struct tar_ctx *t)
{
	t->rd = archive_read_disk_new();
	t->aw = archive_write_new();
	t->links = archive_entry_linkresolver_new();
	t->buf = malloc(FILES_BLOCK);
	if (!t->rd || !t->aw || !t->links || !t->buf)
		return -ENOMEM;
	if (archive_write_set_format_pax(t->aw) ||
	    archive_write_set_bytes_per_block(t->aw, FILES_BLOCK) ||
	    archive_write_set_bytes_in_last_block(t->aw, 1))
		return tar_werr(t, "the archive settings");
	archive_entry_linkresolver_set_strategy(t->links,
						archive_format(t->aw));
	if (archive_write_open(t->aw, t, NULL, tar_sink, NULL))
		return tar_werr(t, "the archive start");
	/* The snapshot holds no other mounts; the live tree must not
	 * either, or both would differ. */
	archive_read_disk_set_symlink_hybrid(t->rd);
	if (archive_read_disk_set_standard_lookup(t->rd) ||
	    archive_read_disk_set_behavior(
		    t->rd, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS) ||
	    archive_read_disk_open(t->rd, t->root)) {
		snprintf(t->err, t->errlen, "cannot read '%s': %s", t->root,
			 files_ar_msg(t->rd));
		return files_ar_errno(t->rd, -EIO);
	}
	return 0;
}

static void tar_close(struct tar_ctx *t)
{
	if (t->rd)
		archive_read_free(t->rd);
	if (t->aw)
		archive_write_free(t->aw);
	if (t->links)
		archive_entry_linkresolver_free(t->links);
	free(t->buf);
}

/* Name the entry relative to the root: "." for the root itself. */
static int tar_rename(struct tar_ctx *t, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	char *rel;

	if (!name || strncmp(name, t->root, t->rootlen) ||
	    (name[t->rootlen] && name[t->rootlen] != '/')) {
		snprintf(t->err, t->errlen, "unexpected entry '%s' under '%s'",
			 name ? name : "?", t->root);
		return -EIO;
	}
	rel = strdup(name[t->rootlen] ? name + t->rootlen + 1 : ".");
	if (!rel)
		return -ENOMEM;
	archive_entry_copy_pathname(e, rel); /* not from e's own buffer */
	free(rel);
	return 0;
}

static int tar_copy_data(struct tar_ctx *t, const char *name)
{
	la_ssize_t n, w;

	while ((n = archive_read_data(t->rd, t->buf, FILES_BLOCK)) > 0) {
		w = archive_write_data(t->aw, t->buf, (size_t)n);
		if (w < 0)
			return tar_werr(t, name);
		if (w < n)
			break; /* grew while we read: the header says less */
	}
	if (n < 0) {
		snprintf(t->err, t->errlen, "cannot read '%s/%s': %s", t->root,
			 name, files_ar_msg(t->rd));
		return files_ar_errno(t->rd, -EIO);
	}
	return 0;
}

static int tar_put(struct tar_ctx *t, struct archive_entry *e)
{
	struct archive_entry *spare = NULL;
	const char *name;
	int r, rc;

	/* tar cannot hold sockets (GNU tar skips them too). */
	if (archive_entry_filetype(e) == AE_IFSOCK)
		return 0;
	rc = tar_rename(t, e);
	if (rc)
		return rc;
	name = archive_entry_pathname(e);
	/* atime and ctime change at every backup and cannot be restored:
	 * leaving them out keeps unchanged trees' streams identical. */
	archive_entry_unset_atime(e);
	archive_entry_unset_ctime(e);
	archive_entry_unset_birthtime(e);
	/* The tar strategy only rewrites later links, never defers. */
	archive_entry_linkify(t->links, &e, &spare);
	if (!e)
		return 0;
	r = archive_write_header(t->aw, e);
	if (r == ARCHIVE_WARN)
		bfs_warn("backup of '%s/%s': %s", t->root, name,
			 files_ar_msg(t->aw));
	else if (r != ARCHIVE_OK)
		return tar_werr(t, name);
	if (archive_entry_filetype(e) == AE_IFREG &&
	    archive_entry_size(e) > 0) {
		rc = tar_copy_data(t, name);
		if (rc)
			return rc;
	}
	if (archive_write_finish_entry(t->aw) < ARCHIVE_WARN)
		return tar_werr(t, name);
	return 0;
}

/* 1 to skip the entry just read, 0 to store it, or -errno. */
static int tar_read_result(struct tar_ctx *t, int r)
{
	if (r == ARCHIVE_OK)
		return 0;
	if (r == ARCHIVE_WARN) {
		bfs_warn("backup of '%s': %s", t->root, files_ar_msg(t->rd));
		return 0;
	}
	if (r == ARCHIVE_FAILED && t->live && archive_errno(t->rd) == ENOENT) {
		bfs_warn("backup of '%s': %s", t->root, files_ar_msg(t->rd));
		return 1;
	}
	snprintf(t->err, t->errlen, "cannot read '%s': %s", t->root,
		 files_ar_msg(t->rd));
	return files_ar_errno(t->rd, -EIO);
}

static int tar_write_tree(struct tar_ctx *t)
{
	struct archive_entry *e;
	int r, rc;

	rc = tar_open(t);
	if (rc)
		return rc;
	e = archive_entry_new();
	if (!e)
		return -ENOMEM;
	for (;;) {
		archive_entry_clear(e);
		r = archive_read_next_header2(t->rd, e);
		if (r == ARCHIVE_EOF)
			break;
		rc = tar_read_result(t, r);
		if (rc > 0)
			continue; /* skipped */
		if (rc)
			break;
		archive_read_disk_descend(t->rd);
		rc = tar_put(t, e);
		if (rc)
			break;
	}
	archive_entry_free(e);
	if (rc > 0)
		rc = 0;
	if (!rc && archive_write_close(t->aw) != ARCHIVE_OK)
		rc = tar_werr(t, "the end of the archive");
	return rc;
}

/* Stream the tree at root (a snapshot, or the live tree) into sink. */
static int files_stream(const char *root, int live, bfs_sink_fn sink,
			void *sink_arg, struct bfs_progress *progress,
			char *err, size_t errlen)
{
	struct tar_ctx t = {
		.root = root,
		.rootlen = strlen(root),
		.live = live,
		.sink = sink,
		.sink_arg = sink_arg,
		.progress = progress,
		.err = err,
		.errlen = errlen,
	};
	struct files_locale loc;
	int rc;

	files_locale_enter(&loc);
	rc = tar_write_tree(&t);
	tar_close(&t);
	files_locale_leave(&loc);
	return rc;
}

static int files_meta(json_t *meta, enum files_snap_mode mode)
{
	if (json_object_set_new(meta, "format", json_string("tar")) ||
	    json_object_set_new(meta, "datastore_version",
				json_string(archive_version_string())) ||
	    json_object_set_new(meta, "snapshot",
				json_string(files_snap_name(mode))))
		return -ENOMEM;
	return 0;
}

static int files_backup(struct bfs_datastore *ds, json_t *strategy,
			bfs_sink_fn sink, void *sink_arg,
			struct bfs_progress *progress, json_t *meta, char *err,
			size_t errlen)
{
	struct files_ds *f = files_of(ds);
	enum files_snap_mode mode = f->snap;
	struct files_snap snap;
	struct stat st;
	const char *s;
	int rc;

	s = json_string_value(json_object_get(strategy, "snapshot"));
	if (s)
		files_snap_parse(s, &mode); /* checked by check_strategy */
	rc = stat(f->path, &st) ? -errno : 0;
	if (!rc && !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	if (rc) {
		snprintf(err, errlen, "cannot back up '%s': %s", f->path,
			 strerror(-rc));
		return rc;
	}
	rc = files_snap_take(f->path, ds->instance, f->state_dir, mode, &snap,
			     err, errlen);
	if (rc)
		return rc;
	mode = snap.mode;
	rc = files_stream(snap.root, mode == FILES_SNAP_NONE, sink, sink_arg,
			  progress, err, errlen);
	/* The stream is whole even if the snapshot outlives it: a leftover
	 * stays journalled for recover(), the backup stands. */
	files_snap_drop(&snap);
	return rc ? rc : files_meta(meta, mode);
}

/* ---- verify ---------------------------------------------------------- */

/* An absolute name or a ".." component would escape the restore. */
static int files_unsafe_name(const char *name)
{
	const char *p = name;
	size_t n;

	if (name[0] == '/')
		return 1;
	while (*p) {
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 1;
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

int files_check_entry(struct archive_entry *e, char *err, size_t errlen)
{
	const char *name = archive_entry_pathname(e);
	const char *link = archive_entry_hardlink(e);

	if (!name || !*name) {
		snprintf(err, errlen, "entry without a name");
		return -EINVAL;
	}
	if (files_unsafe_name(name) || (link && files_unsafe_name(link))) {
		snprintf(err, errlen, "unsafe entry '%s'%s%s", name,
			 link ? " linked to " : "", link ? link : "");
		return -EINVAL;
	}
	return 0;
}

/* A tar reader of the file at path: tar formats only, no filters (we
 * never compress the stream ourselves). */
struct archive *files_reader(const char *path, char *err, size_t errlen)
{
	struct archive *rd = archive_read_new();

	if (!rd)
		return NULL;
	if (archive_read_support_format_tar(rd) ||
	    archive_read_open_filename(rd, path, FILES_BLOCK)) {
		snprintf(err, errlen, "cannot open '%s': %s", path,
			 files_ar_msg(rd));
		archive_read_free(rd);
		return NULL;
	}
	return rd;
}

/* Read an entry's data to its end: only then is the stream checked. */
static int files_drain(struct archive *rd)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(rd, &buf, &size, &off)) ==
	       ARCHIVE_OK)
		;
	return r == ARCHIVE_EOF ? 0 : -EBADMSG;
}

static int verify_entries(struct archive *rd, const char *path,
			  struct bfs_progress *progress, char *err,
			  size_t errlen)
{
	struct archive_entry *e;
	la_int64_t before = 0;
	uint64_t n = 0;
	int r, rc;

	while ((r = archive_read_next_header(rd, &e)) != ARCHIVE_EOF) {
		/* ARCHIVE_RETRY too: a damaged header is no entry. */
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(err, errlen, "'%s' is %s: %s", path,
				 n || archive_format(rd) ? "corrupt"
							 : "not a tar stream",
				 files_ar_msg(rd));
			return n || archive_format(rd) ? -EBADMSG : -EINVAL;
		}
		rc = files_check_entry(e, err, errlen);
		if (rc)
			return rc;
		if (files_drain(rd)) {
			snprintf(err, errlen, "'%s' is corrupt at '%s': %s",
				 path, archive_entry_pathname(e),
				 files_ar_msg(rd));
			return -EBADMSG;
		}
		n++;
		before = archive_filter_bytes(rd, -1);
		progress->done = (uint64_t)before;
	}
	if (!n) {
		snprintf(err, errlen, "'%s' holds no entries", path);
		return -EINVAL;
	}
	/*
	 * libarchive takes an end of file right after an entry for the end
	 * of the archive; we always write the end-of-archive blocks, so
	 * their absence means the stream was cut.
	 */
	if (archive_filter_bytes(rd, -1) - before < 1024) {
		snprintf(err, errlen, "'%s' is truncated: no end of archive",
			 path);
		return -EBADMSG;
	}
	return 0;
}

static int files_verify(struct bfs_datastore *ds, const char *path,
			struct bfs_progress *progress, char *err, size_t errlen)
{
	struct files_locale loc;
	struct archive *rd;
	struct stat st;
	int rc;

	if (stat(path, &st)) {
		rc = -errno;
		snprintf(err, errlen, "cannot stat '%s': %s", path,
			 strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		snprintf(err, errlen, "'%s' is not a backup: %s", path,
			 S_ISREG(st.st_mode) ? "empty" : "not a file");
		return -EINVAL;
	}
	progress->total = (uint64_t)st.st_size;
	files_locale_enter(&loc);
	rd = files_reader(path, err, errlen);
	if (rd) {
		rc = verify_entries(rd, path, progress, err, errlen);
		archive_read_free(rd);
	} else {
		rc = -EINVAL;
	}
	files_locale_leave(&loc);
	return rc;
}

static int files_recover(struct bfs_datastore *ds)
{
	struct files_ds *f = files_of(ds);
	int rc, r;

	rc = files_snap_recover(f->state_dir);
	r = files_restore_recover(f);
	return rc ? rc : r;
}

const struct bfs_datastore_ops bfs_files_ops = {
	.name = "files",
	.config_keys = files_keys,
	.open = files_open,
	.close = files_close,
	.check_strategy = files_check_strategy,
	.estimate = files_estimate,
	.backup = files_backup,
	.verify = files_verify,
	.restore = files_restore,
	.recover = files_recover,
};
