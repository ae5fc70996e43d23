// SPDX-License-Identifier: Apache-2.0
#include <errno.h>

#include "check.h"
#include "tree.h"

static void test_kinds(void)
{
	static const struct {
		const char *path;
		enum bfs_node_kind kind;
		const char *instance, *name;
	} cases[] = {
		{"/", BFS_N_ROOT, "", ""},
		{"/instances", BFS_N_INSTANCES, "", ""},
		{"/instances/", BFS_N_INSTANCES, "", ""},
		{"/instances/pg1", BFS_N_INSTANCE, "pg1", ""},
		{"/instances/pg1/backups", BFS_N_BACKUPS, "pg1", ""},
		{"/instances/pg1/backups/latest", BFS_N_LATEST, "pg1",
		 "latest"},
		{"/instances/pg1/backups/2026-11-21T03:00:00Z", BFS_N_BACKUP,
		 "pg1", "2026-11-21T03:00:00Z"},
		{"/instances/pg1/restore", BFS_N_RESTORE, "pg1", ""},
		{"/instances/pg1/restore/x y", BFS_N_RESTORE_FILE, "pg1",
		 "x y"},
		{"/instances/pg1/snapshots", BFS_N_SNAPSHOTS, "pg1", ""},
		{"/instances/pg1/snapshots/\xc3\xa9t\xc3\xa9", BFS_N_SNAPSHOT,
		 "pg1", "\xc3\xa9t\xc3\xa9"},
		{"/instances/pg1/status", BFS_N_STATUS, "pg1", ""},
		{"/instances/pg1/events", BFS_N_EVENTS, "pg1", ""},
		{"/instances/pg1/schedules", BFS_N_SCHEDULES, "pg1", ""},
		{"/instances/pg1/schedules/nightly", BFS_N_SCHEDULE, "pg1",
		 "nightly"},
		{"/instances/pg1/executions", BFS_N_EXECUTIONS, "pg1", ""},
		{"/instances/pg1/executions/nightly-20261122T0300Z",
		 BFS_N_EXECUTION, "pg1", "nightly-20261122T0300Z"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bfs_path p;

		CHECK_EQ(bfs_path_parse(cases[i].path, &p), 0);
		CHECK_EQ(p.kind, cases[i].kind);
		CHECK(!strcmp(p.instance, cases[i].instance));
		CHECK(!strcmp(p.name, cases[i].name));
	}
}

static void test_not_in_tree(void)
{
	struct bfs_path p;

	CHECK_EQ(bfs_path_parse("/other", &p), -ENOENT);
	CHECK_EQ(bfs_path_parse("/instances/pg1/other", &p), -ENOENT);
	CHECK_EQ(bfs_path_parse("/instances/pg1/backups/a/b", &p), -ENOENT);
	CHECK_EQ(bfs_path_parse("/instances/pg1/status/x", &p), -ENOTDIR);
	CHECK_EQ(bfs_path_parse("relative", &p), -ENOENT);
}

static void test_bad_names(void)
{
	char longname[300 + 32] = "/instances/";
	struct bfs_path p;

	CHECK_EQ(bfs_path_parse("/instances/..", &p), -EINVAL);
	CHECK_EQ(bfs_path_parse("/instances/pg1/snapshots/a\nb", &p),
		 -EINVAL);
	CHECK_EQ(bfs_path_parse("/instances/pg1/snapshots/\x7f", &p),
		 -EINVAL);
	CHECK_EQ(bfs_path_parse("/instances/.hidden", &p), -EINVAL);
	memset(longname + 11, 'a', 256);
	longname[11 + 256] = 0;
	CHECK_EQ(bfs_path_parse(longname, &p), -ENAMETOOLONG);
	longname[11 + 255] = 0;
	CHECK_EQ(bfs_path_parse(longname, &p), 0);
}

int main(void)
{
	RUN(test_kinds);
	RUN(test_not_in_tree);
	RUN(test_bad_names);
	return check_summary();
}
