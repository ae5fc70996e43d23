/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine: one mounted (or CLI-opened) repository with its instances,
 * backups and jobs.  Everything the FUSE layer and backupctl do goes
 * through here; nothing here knows about FUSE.
 *
 * Thread safety: every function may be called from several FUSE threads
 * at once.  Returned instances are borrowed (valid until the engine is
 * closed); returned backups and restores are new references.
 */
#ifndef BFS_ENGINE_H
#define BFS_ENGINE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "config.h"
#include "manifest.h"
#include "reader.h"
#include "repo.h"

struct bfs_engine;
struct bfs_instance;
struct backup_trove;

/* A loaded backup: an immutable, refcounted manifest (and for an imported
 * Trove backup, the state of its legacy reader). */
struct bfs_backup {
	_Atomic int refs;
	struct bfs_manifest *m;
	struct backup_trove *trove; /* NULL: a native backup */
};

/*
 * Open the backend, the repository (with the key file) and every
 * configured instance's datastore, lock the state directory against a
 * second engine, and finish or undo what a crash left.  conf is stolen.
 * On error err gets one line for the operator.
 */
int bfs_engine_open(struct bfs_config *conf, struct bfs_engine **out,
		    char *err, size_t errlen);
/*
 * Start the worker threads (decoding, uploads).  Separate from open so
 * the daemon can fork into the background between the two: threads do
 * not survive fork().
 */
int bfs_engine_start(struct bfs_engine *e);
/*
 * Start the scheduler thread that runs the instances' schedules (the
 * daemon only, after bfs_engine_start; backupctl never runs schedules).
 */
int bfs_engine_start_scheduler(struct bfs_engine *e);
/* Waits for running jobs (and scheduled executions) to finish. */
void bfs_engine_close(struct bfs_engine *e);
const struct bfs_config *bfs_engine_config(const struct bfs_engine *e);
struct bfs_repo *bfs_engine_repo(struct bfs_engine *e);

/* Instances: configured ones and those with backups in the repository,
 * sorted.  The callback must not call back into the engine. */
int bfs_engine_list_instances(struct bfs_engine *e, bfs_name_cb cb,
			      void *arg);
/* -ENOENT if neither configured nor in the repository. */
int bfs_engine_instance(struct bfs_engine *e, const char *id,
			struct bfs_instance **out);
const char *bfs_instance_id(const struct bfs_instance *inst);
/* Datastore name, or NULL for an instance only known from the repository. */
const char *bfs_instance_datastore(const struct bfs_instance *inst);

/* Backups, oldest first. */
int bfs_instance_list_backups(struct bfs_instance *inst, bfs_name_cb cb,
			      void *arg);
/* Newest backup's timestamp into ts (BFS_TIMESTAMP_LEN + 1): -ENOENT if
 * there is none. */
int bfs_instance_latest(struct bfs_instance *inst, char *ts);
/* Size of a backup from the listing alone (no manifest is loaded: what
 * ls -l needs); -ENOENT. */
int bfs_instance_backup_stat(struct bfs_instance *inst, const char *ts,
			     uint64_t *size);
/* The loaded, authenticated backup: a new reference. */
int bfs_instance_backup(struct bfs_instance *inst, const char *ts,
			struct bfs_backup **out);
void bfs_backup_put(struct bfs_backup *b);
ssize_t bfs_backup_read(struct bfs_engine *e, struct bfs_backup *b,
			struct bfs_read_state *st, void *buf, size_t size,
			uint64_t off);
/* Value of xattr user.backupfs.<name> as a new string; -ENODATA. */
int bfs_backup_xattr(const struct bfs_backup *b, const char *name,
		     char **value);
/* NULL-terminated list of the xattr names (without "user.backupfs."). */
extern const char *const bfs_backup_xattr_names[];
int bfs_instance_delete_backup(struct bfs_instance *inst, const char *ts);

/*
 * Snapshots.  start: check the strategy (a JSON text, may be empty),
 * refuse while another job runs on the instance (-EBUSY), record the job
 * as "running" under label and start it in the background.  -EEXIST if a
 * job record of that label exists; -EOPNOTSUPP for an instance without a
 * datastore; -EINVAL with a reason in err for a bad strategy.
 */
int bfs_instance_snapshot_start(struct bfs_instance *inst, const char *label,
				const char *strategy, size_t len, char *err,
				size_t errlen);
/* The job record as JSON text (new string); -ENOENT. */
int bfs_instance_snapshot_show(struct bfs_instance *inst, const char *label,
			       char **json, size_t *len);
int bfs_instance_list_snapshots(struct bfs_instance *inst, bfs_name_cb cb,
				void *arg);
/* Forget a finished job record (the backup stays); -EBUSY if running. */
int bfs_instance_snapshot_forget(struct bfs_instance *inst,
				 const char *label);

/*
 * Restores.  begin claims the instance's restore slot (-EBUSY while any
 * job runs) and opens a spool file; write spools (checking free space:
 * -ENOSPC); commit verifies and applies it, returning the result, and
 * ends the restore; abort drops it.  A restore is used by one open file.
 */
struct bfs_restore;
int bfs_instance_restore_begin(struct bfs_instance *inst, const char *name,
			       struct bfs_restore **out);
ssize_t bfs_restore_write(struct bfs_restore *r, const void *buf,
			  size_t size, uint64_t off);
int bfs_restore_commit(struct bfs_restore *r);
void bfs_restore_abort(struct bfs_restore *r);
/* Name and spooled size of the restore in progress: -ENOENT if none. */
int bfs_instance_restore_pending(struct bfs_instance *inst, char *name,
				 uint64_t *size);

/*
 * Schedules and executions (schedule.h) of an instance.  write parses
 * text (cron pattern or JSON), checks the strategy with the datastore
 * and creates or replaces the schedule: -EINVAL with a reason in err.
 * show gives the JSON text (new string).  Executions list newest first;
 * deleting a running one is -EBUSY.
 */
int bfs_instance_schedule_write(struct bfs_instance *inst, const char *name,
				const char *text, size_t len, char *err,
				size_t errlen);
int bfs_instance_schedule_show(struct bfs_instance *inst, const char *name,
			       char **json, size_t *len);
int bfs_instance_schedule_delete(struct bfs_instance *inst, const char *name);
int bfs_instance_list_schedules(struct bfs_instance *inst, bfs_name_cb cb,
				void *arg);
int bfs_instance_list_executions(struct bfs_instance *inst, bfs_name_cb cb,
				 void *arg);
int bfs_instance_execution_show(struct bfs_instance *inst, const char *id,
				char **json, size_t *len);
int bfs_instance_execution_delete(struct bfs_instance *inst, const char *id);

/* Status JSON (new string). */
int bfs_instance_status(struct bfs_instance *inst, char **json, size_t *len);
/* The events file's content (new string, JSON lines). */
int bfs_instance_events(struct bfs_instance *inst, char **text, size_t *len);

#endif
