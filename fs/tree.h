/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mounted tree's shape (DESIGN section 2), as a pure function from a
 * path to a node kind and its names.  Whether the instance or backup
 * exists is the engine's business; this only says what a path would be.
 *
 *   /                                   BFS_N_ROOT
 *   /instances                          BFS_N_INSTANCES
 *   /instances/<id>                     BFS_N_INSTANCE
 *   /instances/<id>/backups             BFS_N_BACKUPS
 *   /instances/<id>/backups/latest      BFS_N_LATEST
 *   /instances/<id>/backups/<ts>        BFS_N_BACKUP
 *   /instances/<id>/restore             BFS_N_RESTORE
 *   /instances/<id>/restore/<name>      BFS_N_RESTORE_FILE
 *   /instances/<id>/snapshots           BFS_N_SNAPSHOTS
 *   /instances/<id>/snapshots/<label>   BFS_N_SNAPSHOT
 *   /instances/<id>/schedules           BFS_N_SCHEDULES
 *   /instances/<id>/schedules/<name>    BFS_N_SCHEDULE
 *   /instances/<id>/executions          BFS_N_EXECUTIONS
 *   /instances/<id>/executions/<id>     BFS_N_EXECUTION
 *   /instances/<id>/status              BFS_N_STATUS
 *   /instances/<id>/events              BFS_N_EVENTS
 */
#ifndef BFS_TREE_H
#define BFS_TREE_H

#include "manifest.h"

enum bfs_node_kind {
	BFS_N_ROOT,
	BFS_N_INSTANCES,
	BFS_N_INSTANCE,
	BFS_N_BACKUPS,
	BFS_N_LATEST,
	BFS_N_BACKUP,
	BFS_N_RESTORE,
	BFS_N_RESTORE_FILE,
	BFS_N_SNAPSHOTS,
	BFS_N_SNAPSHOT,
	BFS_N_STATUS,
	BFS_N_EVENTS,
	BFS_N_SCHEDULES,
	BFS_N_SCHEDULE,
	BFS_N_EXECUTIONS,
	BFS_N_EXECUTION,
};

struct bfs_path {
	enum bfs_node_kind kind;
	char instance[BFS_NAME_MAX + 1];
	char name[BFS_NAME_MAX + 1]; /* timestamp, label or file name */
};

/*
 * Parse an absolute path.  -ENOENT for a path that is not in the tree,
 * -ENAMETOOLONG for a component over 255 bytes, -EINVAL for a component
 * that bfs_name_ok() refuses (control bytes, "..", leading '.').
 */
int bfs_path_parse(const char *path, struct bfs_path *out);

/* Whether a node is a directory. */
int bfs_node_is_dir(enum bfs_node_kind kind);

#endif
