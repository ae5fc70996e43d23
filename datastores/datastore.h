/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Datastore drivers: each knows one kind of database (or a plain
 * directory tree) -- how to stream a backup out of it without disrupting
 * it, and how to verify and apply a backup stream atomically.
 *
 * Callers use the bfs_datastore_*() wrappers, never ->ops directly.
 * A datastore handle belongs to one instance; the job layer serializes
 * restores of an instance, but a backup may run beside reads of status:
 * backup() and restore() are never called concurrently on one handle.
 */
#ifndef BFS_DATASTORE_H
#define BFS_DATASTORE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Progress of a running job, read by other threads (status file). */
struct bfs_progress {
	_Atomic uint64_t done;  /* bytes streamed or applied */
	_Atomic uint64_t total; /* estimate, 0 if unknown */
};

/* Receives the backup stream, in order.  Returns 0 or -errno (which
 * aborts the backup). */
typedef int (*bfs_sink_fn)(void *arg, const void *data, size_t len);

struct bfs_datastore;

struct bfs_datastore_ops {
	const char *name;
	/* Instance config keys this driver accepts beyond "datastore". */
	const char *const *config_keys;
	/* Validate conf (borrowed; keep a reference if needed) and set up.
	 * state_dir is the instance's own private directory. */
	int (*open)(const char *instance, json_t *conf, const char *state_dir,
		    struct bfs_datastore **out, char *err, size_t errlen);
	void (*close)(struct bfs_datastore *ds);
	/* Check a strategy object (may be empty): -EINVAL with reason. */
	int (*check_strategy)(struct bfs_datastore *ds, json_t *strategy,
			      char *err, size_t errlen);
	/* Bytes a backup will stream, roughly (free space, progress). */
	int (*estimate)(struct bfs_datastore *ds, json_t *strategy,
			uint64_t *bytes);
	/*
	 * Stream a backup into sink, non-disruptively as the instance's
	 * config and the strategy say.  meta (an object) receives what a
	 * restore needs later: at least "format" and "datastore_version".
	 * Temporary snapshots are removed before returning, also on error.
	 */
	int (*backup)(struct bfs_datastore *ds, json_t *strategy,
		      bfs_sink_fn sink, void *sink_arg,
		      struct bfs_progress *progress, json_t *meta, char *err,
		      size_t errlen);
	/* Check that the file at path is a complete backup stream of this
	 * datastore, changing nothing: -EINVAL (not ours) or -EBADMSG. */
	int (*verify)(struct bfs_datastore *ds, const char *path,
		      struct bfs_progress *progress, char *err, size_t errlen);
	/*
	 * Apply a verified stream: the instance ends up holding exactly the
	 * backup, or -- on any failure -- exactly what it held before.
	 */
	int (*restore)(struct bfs_datastore *ds, const char *path,
		       struct bfs_progress *progress, char *err,
		       size_t errlen);
	/* After a crash: remove temporary snapshots, finish or undo a
	 * restore that was interrupted.  Called once at open. */
	int (*recover)(struct bfs_datastore *ds);
	/* Optional: what a strategy's "tables" may name (tables, databases)
	 * as a new array of strings. */
	int (*tables)(struct bfs_datastore *ds, json_t **out, char *err,
		      size_t errlen);
};

/* Drivers embed this as their first member. */
struct bfs_datastore {
	const struct bfs_datastore_ops *ops;
	char *instance;
};

/* The driver of a datastore name, or NULL. */
const struct bfs_datastore_ops *bfs_datastore_find(const char *name);

int bfs_datastore_open(const char *instance, json_t *conf,
		       const char *state_dir, struct bfs_datastore **out,
		       char *err, size_t errlen);
void bfs_datastore_close(struct bfs_datastore *ds);
int bfs_datastore_check_strategy(struct bfs_datastore *ds, json_t *strategy,
				 char *err, size_t errlen);
int bfs_datastore_estimate(struct bfs_datastore *ds, json_t *strategy,
			   uint64_t *bytes);
int bfs_datastore_backup(struct bfs_datastore *ds, json_t *strategy,
			 bfs_sink_fn sink, void *sink_arg,
			 struct bfs_progress *progress, json_t *meta,
			 char *err, size_t errlen);
int bfs_datastore_verify(struct bfs_datastore *ds, const char *path,
			 struct bfs_progress *progress, char *err,
			 size_t errlen);
int bfs_datastore_restore(struct bfs_datastore *ds, const char *path,
			  struct bfs_progress *progress, char *err,
			  size_t errlen);
int bfs_datastore_recover(struct bfs_datastore *ds);
/* -EOPNOTSUPP for a datastore without tables ("files"). */
int bfs_datastore_tables(struct bfs_datastore *ds, json_t **out, char *err,
			 size_t errlen);
static inline const char *bfs_datastore_name(const struct bfs_datastore *ds)
{
	return ds->ops->name;
}

extern const struct bfs_datastore_ops bfs_files_ops;
extern const struct bfs_datastore_ops bfs_postgresql_ops;
extern const struct bfs_datastore_ops bfs_couchdb_ops;
extern const struct bfs_datastore_ops bfs_mariadb_ops;
extern const struct bfs_datastore_ops bfs_db2_ops;

#endif
