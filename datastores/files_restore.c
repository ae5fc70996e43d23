// SPDX-License-Identifier: Apache-2.0
/*
 * Restore of a "files" instance: the instance ends up holding exactly
 * the backup, or -- on any failure, or a crash at any point -- exactly
 * what it held before.
 *
 * The stream is extracted into a staging directory beside the tree
 * ("<parent>/.<name>.backupfs-restore-<random>", same filesystem), made
 * durable with syncfs, then exchanged with the tree in one
 * renameat2(RENAME_EXCHANGE); the old tree, now at the staging name, is
 * removed last.  "restore.journal" in the state directory names the
 * staging directory before it exists, so files_restore_recover() always
 * knows what to remove.
 */
#include "files_int.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FILES_RESTORE_JOURNAL "restore.journal"

/* Extraction flags; see restore_extract() for the one left out. */
#define FILES_EXTRACT_FLAGS                                                    \
	(ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | \
	 ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |                         \
	 ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_SECURE_SYMLINKS |            \
	 ARCHIVE_EXTRACT_SECURE_NODOTDOT)

struct files_restore {
	char *target;	/* the instance tree, symlinks resolved */
	char *parent;	/* its directory */
	char *staging;	/* new tree, then the old one after the swap */
	int created;	/* we made an empty target (fresh deployment) */
	int subvol;	/* target is a btrfs subvolume: so is staging */
	struct stat st; /* the target before the swap */
};

static void restore_free(struct files_restore *r)
{
	free(r->target);
	free(r->parent);
	free(r->staging);
}

static int restore_journal(struct files_ds *f, struct files_restore *r,
			   const char *phase)
{
	json_t *j;
	int rc;

	j = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "phase", phase,
		      "target", r->target, "staging", r->staging, "created",
		      r->created, "dev", (json_int_t)r->st.st_dev, "ino",
		      (json_int_t)r->st.st_ino);
	if (!j)
		return -ENOMEM;
	rc = ds_journal_write(f->state_dir, FILES_RESTORE_JOURNAL, j);
	json_decref(j);
	return rc;
}

/*
 * Finish or undo the restore a journal describes.  Whatever the phase,
 * the staging name holds the tree that must go: before the exchange the
 * new one (undo), after it the old one (finish).  The target's identity
 * tells which, also in the window between the exchange and "swapped".
 */
int files_restore_recover(struct files_ds *f)
{
	const char *phase, *staging, *target;
	int swapped, rc;
	struct stat st;
	json_t *j;

	rc = ds_journal_read(f->state_dir, FILES_RESTORE_JOURNAL, &j);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	phase = json_string_value(json_object_get(j, "phase"));
	staging = json_string_value(json_object_get(j, "staging"));
	target = json_string_value(json_object_get(j, "target"));
	if (!phase || !staging || !target) {
		rc = -EBADMSG;
		goto out_json;
	}
	swapped = !strcmp(phase, "swapped") ||
		  (!stat(target, &st) &&
		   ((json_int_t)st.st_dev !=
			    json_integer_value(json_object_get(j, "dev")) ||
		    (json_int_t)st.st_ino !=
			    json_integer_value(json_object_get(j, "ino"))));
	rc = files_tree_remove(staging);
	if (rc)
		goto out_json;
	if (!swapped && json_is_true(json_object_get(j, "created")))
		rmdir(target); /* the empty one we made */
	bfs_info("%s the restore of '%s' a crash interrupted",
		 swapped ? "completed" : "rolled back", target);
	rc = ds_journal_remove(f->state_dir, FILES_RESTORE_JOURNAL);
out_json:
	json_decref(j);
	if (rc)
		bfs_err("cannot recover the restore in '%s/%s': %s",
			f->state_dir, FILES_RESTORE_JOURNAL, strerror(-rc));
	return rc;
}

static int restore_target(struct files_ds *f, struct files_restore *r,
			  char *err, size_t errlen)
{
	const char *base = strrchr(f->path, '/') + 1;
	char *parent;
	int rc = 0;

	r->target = realpath(f->path, NULL);
	if (r->target) {
		r->parent = strdup(r->target);
		if (!r->parent)
			return -ENOMEM;
		parent = strrchr(r->parent, '/');
		if (parent == r->parent)
			parent++; /* "/x": the parent is "/" */
		*parent = '\0';
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	/* A fresh deployment: the tree does not exist yet. */
	parent = strndup(f->path, (size_t)(base - 1 - f->path));
	if (!parent)
		return -ENOMEM;
	r->parent = realpath(parent[0] ? parent : "/", NULL);
	if (!r->parent)
		rc = -errno;
	else if (asprintf(&r->target, "%s/%s", r->parent, base) < 0)
		rc = -ENOMEM;
	free(parent);
	if (rc)
		snprintf(err, errlen, "cannot find the directory of '%s': %s",
			 f->path, strerror(-rc));
	return rc;
}

/* The target a swap can replace, room for the tree, a staging name. */
static int restore_prepare(struct files_ds *f, const char *spool,
			   struct files_restore *r, char *err, size_t errlen)
{
	struct statvfs vfs;
	struct statx stx;
	struct stat sp;
	char rnd[17];
	int rc;

	rc = restore_target(f, r, err, errlen);
	if (rc)
		return rc;
	if (!statx(AT_FDCWD, r->target, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS,
		   &stx) &&
	    (stx.stx_attributes & stx.stx_attributes_mask &
	     STATX_ATTR_MOUNT_ROOT)) {
		snprintf(err, errlen,
			 "'%s' is a mount point: it cannot be swapped; use a "
			 "directory inside it as the instance path",
			 r->target);
		return -EBUSY;
	}
	if (stat(spool, &sp) || statvfs(r->parent, &vfs))
		return -errno;
	if ((uint64_t)sp.st_size > (uint64_t)vfs.f_bavail * vfs.f_frsize) {
		snprintf(err, errlen,
			 "no room to restore '%s': %llu bytes needed, %llu "
			 "available in '%s'",
			 r->target, (unsigned long long)sp.st_size,
			 (unsigned long long)vfs.f_bavail * vfs.f_frsize,
			 r->parent);
		return -ENOSPC;
	}
	rc = ds_random_hex(rnd);
	if (rc)
		return rc;
	if (asprintf(&r->staging, "%s/.%s.backupfs-restore-%s", r->parent,
		     strrchr(r->target, '/') + 1, rnd) < 0)
		return -ENOMEM;
	return 0;
}

/* Make the target if missing, note what it is, journal, make staging. */
static int restore_begin(struct files_ds *f, struct files_restore *r, char *err,
			 size_t errlen)
{
	int rc;

	if (mkdir(r->target, 0700) == 0)
		r->created = 1;
	else if (errno != EEXIST)
		return -errno;
	if (stat(r->target, &r->st))
		return -errno;
	if (!S_ISDIR(r->st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a directory", r->target);
		return -ENOTDIR;
	}
	r->subvol = files_is_subvol(r->target);
	rc = restore_journal(f, r, "extracting");
	if (rc) {
		snprintf(err, errlen, "cannot journal the restore in '%s': %s",
			 f->state_dir, strerror(-rc));
		return rc;
	}
	/* A subvolume stays one, so "btrfs" snapshots keep working. */
	rc = r->subvol ? files_subvol_create(r->staging)
		       : (mkdir(r->staging, 0700) ? -errno : 0);
	if (rc)
		snprintf(err, errlen, "cannot create '%s': %s", r->staging,
			 strerror(-rc));
	return rc;
}

/* One extraction: the stream, the disk writer, the staging root. */
struct extract_ctx {
	struct archive *rd;
	struct archive *wd;
	const char *staging;
	int root_seen;		 /* the stream had a "." entry */
	struct timespec root[2]; /* its atime and mtime */
	char *err;
	size_t errlen;
};

static int is_root_name(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "./");
}

/*
 * libarchive only defers the times of directories it creates, and the
 * staging root exists already: the entries written into it would bump
 * its mtime.  Keep the root's times to set them after the last entry.
 */
static void extract_note_root(struct extract_ctx *x, struct archive_entry *e)
{
	x->root_seen = 1;
	x->root[1].tv_sec = archive_entry_mtime(e);
	x->root[1].tv_nsec = archive_entry_mtime_nsec(e);
	x->root[0] = x->root[1];
	if (archive_entry_atime_is_set(e)) {
		x->root[0].tv_sec = archive_entry_atime(e);
		x->root[0].tv_nsec = archive_entry_atime_nsec(e);
	}
}

/* Point the entry into staging: libarchive's disk writer resolves
 * relative names against the process's cwd, which a multi-threaded
 * daemon cannot move. */
static int restore_rebase(struct archive_entry *e, const char *staging)
{
	const char *name = archive_entry_pathname(e);
	const char *link = archive_entry_hardlink(e);
	char *p;

	if (is_root_name(name))
		p = strdup(staging);
	else if (asprintf(&p, "%s/%s", staging, name) < 0)
		p = NULL;
	if (!p)
		return -ENOMEM;
	archive_entry_copy_pathname(e, p);
	free(p);
	if (!link)
		return 0;
	if (asprintf(&p, "%s/%s", staging, link) < 0)
		return -ENOMEM;
	archive_entry_copy_hardlink(e, p);
	free(p);
	return 0;
}

static int extract_data(struct extract_ctx *x, const char *name)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(x->rd, &buf, &size, &off)) ==
	       ARCHIVE_OK) {
		if (archive_write_data_block(x->wd, buf, size, off) <
		    ARCHIVE_WARN) {
			snprintf(x->err, x->errlen, "cannot restore '%s': %s",
				 name, files_ar_msg(x->wd));
			return files_ar_errno(x->wd, -EIO);
		}
	}
	if (r == ARCHIVE_EOF)
		return 0;
	snprintf(x->err, x->errlen, "backup corrupt at '%s': %s", name,
		 files_ar_msg(x->rd));
	return -EBADMSG;
}

/* 0 or -errno for a disk writer result; warnings are logged. */
static int extract_result(struct extract_ctx *x, int r, const char *name)
{
	if (r == ARCHIVE_WARN)
		bfs_warn("restore of '%s': %s", name, files_ar_msg(x->wd));
	if (r == ARCHIVE_OK || r == ARCHIVE_WARN)
		return 0;
	snprintf(x->err, x->errlen, "cannot restore '%s': %s", name,
		 files_ar_msg(x->wd));
	return files_ar_errno(x->wd, -EIO);
}

static int extract_entry(struct extract_ctx *x, struct archive_entry *e)
{
	char *name;
	int rc;

	rc = files_check_entry(e, x->err, x->errlen);
	if (rc)
		return rc;
	name = strdup(archive_entry_pathname(e));
	if (!name)
		return -ENOMEM;
	if (is_root_name(name))
		extract_note_root(x, e);
	rc = restore_rebase(e, x->staging);
	if (!rc)
		rc = extract_result(x, archive_write_header(x->wd, e), name);
	if (!rc)
		rc = extract_data(x, name);
	if (!rc)
		rc = extract_result(x, archive_write_finish_entry(x->wd), name);
	free(name);
	return rc;
}

static int extract_all(struct extract_ctx *x, const char *spool,
		       struct bfs_progress *progress)
{
	struct archive_entry *e;
	int r, rc = 0;

	while (!rc &&
	       (r = archive_read_next_header(x->rd, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(x->err, x->errlen, "'%s' is corrupt: %s",
				 spool, files_ar_msg(x->rd));
			return -EBADMSG;
		}
		rc = extract_entry(x, e);
		progress->done = (uint64_t)archive_filter_bytes(x->rd, -1);
	}
	if (rc)
		return rc;
	/* Directory modes and times are set last, at close. */
	if (archive_write_close(x->wd) < ARCHIVE_WARN) {
		snprintf(x->err, x->errlen, "cannot finish '%s': %s",
			 x->staging, files_ar_msg(x->wd));
		return files_ar_errno(x->wd, -EIO);
	}
	if (x->root_seen &&
	    utimensat(AT_FDCWD, x->staging, x->root, AT_SYMLINK_NOFOLLOW))
		bfs_warn("restore of '%s': cannot set its times: %s",
			 x->staging, strerror(errno));
	return 0;
}

static int restore_extract(const char *spool, const char *staging,
			   struct bfs_progress *progress, char *err,
			   size_t errlen)
{
	struct extract_ctx x = {
		.staging = staging,
		.err = err,
		.errlen = errlen,
	};
	struct files_locale loc;
	int rc;

	files_locale_enter(&loc);
	x.rd = files_reader(spool, err, errlen);
	if (!x.rd) {
		rc = -EINVAL;
		goto out_locale;
	}
	x.wd = archive_write_disk_new();
	if (!x.wd) {
		rc = -ENOMEM;
		goto out_rd;
	}
	/*
	 * No ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS: our names are made
	 * absolute (restore_rebase); files_check_entry() refused absolute
	 * ones first.  Owners are restored by number, like the block
	 * device a volume backup stands for (no name lookup).
	 */
	archive_write_disk_set_options(x.wd, FILES_EXTRACT_FLAGS);
	rc = extract_all(&x, spool, progress);
	archive_write_free(x.wd);
out_rd:
	archive_read_free(x.rd);
out_locale:
	files_locale_leave(&loc);
	return rc;
}

/* Make the staged tree durable, then exchange it with the target. */
static int restore_swap(struct files_ds *f, struct files_restore *r, char *err,
			size_t errlen)
{
	int fd, rc = 0;

	fd = open(r->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (!rc && renameat2(AT_FDCWD, r->target, AT_FDCWD, r->staging,
			     RENAME_EXCHANGE))
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "cannot swap '%s' in: %s", r->target,
			 strerror(-rc));
		return rc;
	}
	fd = open(r->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd))
			bfs_warn("cannot sync '%s': %s", r->parent,
				 strerror(errno));
		close(fd);
	}
	rc = restore_journal(f, r, "swapped");
	if (rc) /* recover() will still find the swap by the target's id */
		bfs_warn("cannot journal the restore of '%s': %s", r->target,
			 strerror(-rc));
	return 0;
}

int files_restore(struct bfs_datastore *ds, const char *path,
		  struct bfs_progress *progress, char *err, size_t errlen)
{
	struct files_ds *f = (struct files_ds *)ds;
	struct files_restore r = {0};
	struct stat st;
	int rc;

	/* A leftover of an earlier restore goes first: one journal. */
	rc = files_restore_recover(f);
	if (rc)
		snprintf(err, errlen, "cannot clean up an earlier restore: %s",
			 strerror(-rc));
	if (!rc && !stat(path, &st))
		progress->total = (uint64_t)st.st_size;
	if (!rc)
		rc = restore_prepare(f, path, &r, err, errlen);
	if (!rc)
		rc = restore_begin(f, &r, err, errlen);
	if (!rc)
		rc = restore_extract(path, r.staging, progress, err, errlen);
	if (!rc)
		rc = restore_swap(f, &r, err, errlen);
	if (rc && r.staging) {
		/* The target was not touched: drop what we made. */
		if (!files_tree_remove(r.staging))
			ds_journal_remove(f->state_dir,
					     FILES_RESTORE_JOURNAL);
		if (r.created)
			rmdir(r.target);
		goto out_free;
	}
	if (rc)
		goto out_free;
	/* The restore is done; the old tree's removal may still fail
	 * (it stays journalled and recover() retries). */
	if (!files_tree_remove(r.staging))
		ds_journal_remove(f->state_dir, FILES_RESTORE_JOURNAL);
	else
		bfs_warn("restore of '%s': cannot remove the old tree '%s'",
			 r.target, r.staging);
out_free:
	restore_free(&r);
	return rc;
}
