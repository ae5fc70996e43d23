/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the "files" datastore, shared by its three parts:
 *   files.c          the driver: config, backup stream, verify, crash
 *                    journals, recover
 *   files_restore.c  the staged, swapped-in restore and its recovery
 *   files_snapshot.c point-in-time views of a tree (btrfs snapshot,
 *                    reflink clone, plain copy) and the tree walks
 *
 * Everything here works on absolute paths and never changes the process
 * working directory (the daemon is multi-threaded).  A struct files_ds is
 * read-only after open, so backups may run beside each other (each
 * snapshot has its own journal, "snapshot-<random>.journal"); restores
 * are serialized by the job layer ("restore.journal" is one file).
 * Functions return 0 or -errno; those taking err/errlen write a one-line
 * reason there.
 */
#ifndef BFS_FILES_INT_H
#define BFS_FILES_INT_H

#include "datastore.h"
#include "ds_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <locale.h>
#include <stddef.h>
#include <stdint.h>

#define FILES_BLOCK (64 * 1024)

enum files_snap_mode {
	FILES_SNAP_AUTO,
	FILES_SNAP_BTRFS,
	FILES_SNAP_REFLINK,
	FILES_SNAP_COPY,
	FILES_SNAP_NONE,
};

/* The driver's handle; ds->instance is set by bfs_datastore_open(). */
struct files_ds {
	struct bfs_datastore base;
	char *path;	 /* absolute, no trailing slash */
	char *state_dir; /* the instance's private directory */
	enum files_snap_mode snap;
};

/* ---- files.c: shared with the restore ---- */

/*
 * libarchive converts names between pax's UTF-8 and the locale's
 * charset; in the daemon's "C" locale every non-ASCII name would fail
 * (a warning, and a "hdrcharset" header GNU tar complains about).  Names
 * are UTF-8 nearly always: run each archive operation in C.UTF-8, for
 * the calling thread only (uselocale), from before its archives are made
 * until after they are freed.  Names that are not UTF-8 still come back
 * byte for byte (libarchive stores those as binary).
 */
struct files_locale {
	locale_t utf8;
	locale_t old;
};
void files_locale_enter(struct files_locale *l);
void files_locale_leave(struct files_locale *l);

/* libarchive's errno for a failure (-errno), else dflt; its message. */
int files_ar_errno(struct archive *a, int dflt);
const char *files_ar_msg(struct archive *a);
/* A reader of the tar stream at path (tar formats only, no filters), or
 * NULL with a reason in err. */
struct archive *files_reader(const char *path, char *err, size_t errlen);
/* -EINVAL if the entry's name or hard link target is absolute or has a
 * ".." component, or it has no name. */
int files_check_entry(struct archive_entry *e, char *err, size_t errlen);

/* ---- files_restore.c ---- */

int files_restore(struct bfs_datastore *ds, const char *path,
		  struct bfs_progress *progress, char *err, size_t errlen);
/* Finish or undo a restore per "restore.journal" (none: 0). */
int files_restore_recover(struct files_ds *f);

/* ---- files_snapshot.c ---- */

/* Static name of a mode ("auto", "btrfs", ...). */
const char *files_snap_name(enum files_snap_mode mode);
/* 0, or -EINVAL for an unknown name. */
int files_snap_parse(const char *name, enum files_snap_mode *mode);

/* Where a backup reads from: the live tree or a temporary snapshot. */
struct files_snap {
	enum files_snap_mode mode; /* the mode used, never AUTO */
	char *root;		   /* the tree to read (owned) */
	char *tmp;		   /* temporary snapshot to remove, or NULL */
	char *journal;		   /* its journal's file name, or NULL */
	const char *state_dir;	   /* borrowed from the caller */
};

/*
 * Take a snapshot of the directory path (absolute) for instance, with
 * mode (AUTO picks one).  Journals the temporary path in state_dir
 * before creating it.  On error nothing is left behind.
 */
int files_snap_take(const char *path, const char *instance,
		    const char *state_dir, enum files_snap_mode mode,
		    struct files_snap *snap, char *err, size_t errlen);
/* Remove the temporary snapshot, then its journal; frees snap's
 * members.  Safe on a zeroed snap. */
int files_snap_drop(struct files_snap *snap);
/* Remove the snapshots that journals in state_dir name (a crash left
 * them). */
int files_snap_recover(const char *state_dir);

/*
 * Remove a tree we created (temporary snapshot, restore staging or the
 * tree a restore replaced); a btrfs subvolume is destroyed as one.
 * Refuses (-EPERM) any path whose last component lacks ".backupfs-":
 * a corrupt journal must never make us delete an operator's data.
 * A missing path is not an error.
 */
int files_tree_remove(const char *path);
/* Sum of st_size of regular files and count of entries under path,
 * without crossing mount points. */
int files_tree_size(const char *path, uint64_t *bytes, uint64_t *entries);

/* 1 if path is the root of a btrfs subvolume, else 0. */
int files_is_subvol(const char *path);
/* Create an empty btrfs subvolume at path (its parent must be btrfs). */
int files_subvol_create(const char *path);

#endif
