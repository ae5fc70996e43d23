// SPDX-License-Identifier: Apache-2.0
#include "tree.h"

#include <errno.h>
#include <string.h>

#define TREE_MAX_DEPTH 4

/* Split path into at most TREE_MAX_DEPTH components checked as names. */
static int tree_split(const char *path, char comp[][BFS_NAME_MAX + 1],
		      int *n)
{
	const char *p = path;

	*n = 0;
	if (*p != '/')
		return -ENOENT;
	while (*p) {
		const char *end;
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		len = (size_t)(end - p);
		if (*n == TREE_MAX_DEPTH)
			return -ENOENT;
		if (len > BFS_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp[*n], p, len);
		comp[*n][len] = 0;
		if (!bfs_name_ok(comp[*n]))
			return -EINVAL;
		(*n)++;
		p = end;
	}
	return 0;
}

static int tree_dir_kind(const char *name, enum bfs_node_kind *dir,
			 enum bfs_node_kind *child)
{
	static const struct {
		const char *name;
		enum bfs_node_kind dir, child;
	} dirs[] = {
		{"backups", BFS_N_BACKUPS, BFS_N_BACKUP},
		{"restore", BFS_N_RESTORE, BFS_N_RESTORE_FILE},
		{"snapshots", BFS_N_SNAPSHOTS, BFS_N_SNAPSHOT},
		{"schedules", BFS_N_SCHEDULES, BFS_N_SCHEDULE},
		{"executions", BFS_N_EXECUTIONS, BFS_N_EXECUTION},
		{"status", BFS_N_STATUS, BFS_N_STATUS},
		{"events", BFS_N_EVENTS, BFS_N_EVENTS},
	};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!strcmp(name, dirs[i].name)) {
			*dir = dirs[i].dir;
			*child = dirs[i].child;
			return 0;
		}
	}
	return -ENOENT;
}

int bfs_path_parse(const char *path, struct bfs_path *out)
{
	char comp[TREE_MAX_DEPTH][BFS_NAME_MAX + 1];
	enum bfs_node_kind dir, child;
	int n, ret;

	memset(out, 0, sizeof(*out));
	ret = tree_split(path, comp, &n);
	if (ret)
		return ret;
	out->kind = BFS_N_ROOT;
	if (n == 0)
		return 0;
	if (strcmp(comp[0], "instances"))
		return -ENOENT;
	out->kind = BFS_N_INSTANCES;
	if (n == 1)
		return 0;
	memcpy(out->instance, comp[1], sizeof(out->instance));
	out->kind = BFS_N_INSTANCE;
	if (n == 2)
		return 0;
	if (tree_dir_kind(comp[2], &dir, &child))
		return -ENOENT;
	out->kind = dir;
	if (n == 3)
		return 0;
	if (!bfs_node_is_dir(dir))
		return -ENOTDIR;
	out->kind = child;
	if (child == BFS_N_BACKUP && !strcmp(comp[3], "latest"))
		out->kind = BFS_N_LATEST;
	memcpy(out->name, comp[3], sizeof(out->name));
	return 0;
}

int bfs_node_is_dir(enum bfs_node_kind kind)
{
	switch (kind) {
	case BFS_N_ROOT:
	case BFS_N_INSTANCES:
	case BFS_N_INSTANCE:
	case BFS_N_BACKUPS:
	case BFS_N_RESTORE:
	case BFS_N_SNAPSHOTS:
	case BFS_N_SCHEDULES:
	case BFS_N_EXECUTIONS:
		return 1;
	default:
		return 0;
	}
}
