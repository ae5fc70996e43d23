// SPDX-License-Identifier: Apache-2.0
/* Schedules and executions: parsing, ids, and storage on a local repo. */
#include "check.h"
#include "fixture.h"
#include "schedule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
	struct bfs_backend *be;
	struct bfs_repo *repo;
};

static void setup(struct fx *f)
{
	f->be = fx_backend("sched", NULL);
	f->repo = fx_repo(f->be);
}

static void teardown(struct fx *f)
{
	bfs_repo_close(f->repo);
	bfs_backend_close(f->be);
	fx_rm_tmpdir();
}

static int parse(const char *text, json_t **out, char *err, size_t errlen)
{
	return bfs_schedule_parse(text, strlen(text), out, err, errlen);
}

static void test_parse_pattern(void)
{
	char err[256] = "";
	json_t *s = NULL;

	CHECK_EQ(parse("0 3 * * mon-fri\n", &s, err, sizeof(err)), 0);
	CHECK(!strcmp(json_string_value(json_object_get(s, "pattern")),
		      "0 3 * * MON-FRI"));
	CHECK_EQ(json_integer_value(json_object_get(s, "keep")), 0);
	CHECK(json_is_object(json_object_get(s, "strategy")));
	CHECK(!strcmp(json_string_value(json_object_get(s, "description")),
		      ""));
	json_decref(s);
	CHECK_EQ(parse("  @Daily  ", &s, err, sizeof(err)), 0);
	CHECK(!strcmp(json_string_value(json_object_get(s, "pattern")),
		      "@daily"));
	json_decref(s);
}

static void test_parse_json(void)
{
	char err[256] = "";
	json_t *s = NULL;

	CHECK_EQ(parse("{\"pattern\": \"*/15 * * * *\", \"keep\": 7, "
		       "\"strategy\": {\"snapshot\": \"copy\"}, "
		       "\"description\": \"every quarter\"}",
		       &s, err, sizeof(err)),
		 0);
	CHECK(!strcmp(json_string_value(json_object_get(s, "pattern")),
		      "*/15 * * * *"));
	CHECK_EQ(json_integer_value(json_object_get(s, "keep")), 7);
	CHECK(!strcmp(json_string_value(json_object_get(
			      json_object_get(s, "strategy"), "snapshot")),
		      "copy"));
	CHECK(!strcmp(json_string_value(json_object_get(s, "description")),
		      "every quarter"));
	json_decref(s);
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
		"",
		"   \n",
		"0 25 * * *",
		"* * * *",
		"0 3 * * *\n0 4 * * *",
		"{\"keep\": 2}",
		"{\"pattern\": 5}",
		"{\"pattern\": \"@daily\", \"keep\": -1}",
		"{\"pattern\": \"@daily\", \"keep\": \"3\"}",
		"{\"pattern\": \"@daily\", \"strategy\": []}",
		"{\"pattern\": \"@daily\", \"retention\": 3}",
		"{\"pattern\": \"@daily\", \"description\": \"a\\u0001b\"}",
		"{\"pattern\": \"@daily\", \"pattern\": \"@hourly\"}",
		"{\"pattern\": \"@daily\"",
		"[\"@daily\"]",
	};
	char err[256];
	json_t *s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		s = (json_t *)1;
		CHECK_EQ(parse(bad[i], &s, err, sizeof(err)), -EINVAL);
		CHECK(s == NULL);
		CHECK(err[0] != 0);
	}
	err[0] = 0;
	CHECK_EQ(parse("0 25 * * *", &s, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "hour") != NULL);
	CHECK_EQ(parse("{\"pattern\": \"@daily\", \"retention\": 3}", &s, err,
		       sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "retention") != NULL);
}

static void test_names(void)
{
	char long_name[BFS_SCHEDULE_NAME_MAX + 2];

	CHECK(bfs_schedule_name_ok("nightly"));
	CHECK(!bfs_schedule_name_ok("a/b"));
	CHECK(!bfs_schedule_name_ok("..x"));
	CHECK(!bfs_schedule_name_ok(".hidden"));
	CHECK(!bfs_schedule_name_ok(""));
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	CHECK(!bfs_schedule_name_ok(long_name));
	long_name[BFS_SCHEDULE_NAME_MAX] = 0;
	CHECK(bfs_schedule_name_ok(long_name));
}

static void test_execution_ids(void)
{
	char id[BFS_NAME_MAX + 1], sched[BFS_NAME_MAX + 1];
	time_t slot;

	/* 2028-02-29T03:05:00Z */
	CHECK_EQ(bfs_execution_id("night-ly", 1835406300, id, sizeof(id)), 0);
	CHECK(!strcmp(id, "night-ly-20280229T0305Z"));
	CHECK_EQ(bfs_execution_id_parse(id, sched, &slot), 0);
	CHECK(!strcmp(sched, "night-ly"));
	CHECK_EQ(slot, 1835406300);
	CHECK_EQ(bfs_execution_id_parse("nightly", sched, &slot), -EINVAL);
	CHECK_EQ(bfs_execution_id_parse("-20280229T0305Z", sched, &slot),
		 -EINVAL);
	CHECK_EQ(bfs_execution_id_parse("x-2028022XT0305Z", sched, &slot),
		 -EINVAL);
	CHECK_EQ(bfs_execution_id_parse("x_20280229T0305Z", sched, &slot),
		 -EINVAL);
	CHECK_EQ(bfs_execution_id_parse("x-20280229T0305", sched, &slot),
		 -EINVAL);
}

static void test_store(void)
{
	char err[256];
	json_t *s, *got, *again;
	struct fx f;
	char *text;

	setup(&f);
	CHECK_EQ(parse("@hourly", &s, err, sizeof(err)), 0);
	CHECK_EQ(bfs_schedule_get(f.repo, "pg1", "h", &got), -ENOENT);
	CHECK_EQ(bfs_schedule_put(f.repo, "pg1", "h", s, 1000000000), 0);
	CHECK_EQ(bfs_schedule_get(f.repo, "pg1", "h", &got), 0);
	CHECK(!strcmp(json_string_value(json_object_get(got, "created_at")),
		      "2001-09-09T01:46:40Z"));
	json_decref(got);
	/* replacing keeps created_at, moves updated_at */
	CHECK_EQ(bfs_schedule_put(f.repo, "pg1", "h", s, 1000000600), 0);
	CHECK_EQ(bfs_schedule_get(f.repo, "pg1", "h", &again), 0);
	CHECK(!strcmp(json_string_value(json_object_get(again, "created_at")),
		      "2001-09-09T01:46:40Z"));
	CHECK(!strcmp(json_string_value(json_object_get(again, "updated_at")),
		      "2001-09-09T01:56:40Z"));
	text = bfs_schedule_render(again, 1000000600);
	CHECK(text && strstr(text, "\"next_execution_time\": "
				   "\"2001-09-09T02:00:00Z\""));
	free(text);
	/* a schedule is bound to its instance: not readable under another */
	CHECK_EQ(bfs_schedule_get(f.repo, "pg2", "h", &got), -ENOENT);
	CHECK_EQ(bfs_schedule_delete(f.repo, "pg1", "h"), 0);
	CHECK_EQ(bfs_schedule_get(f.repo, "pg1", "h", &got), -ENOENT);
	json_decref(s);
	json_decref(again);
	json_decref(got);
	teardown(&f);
}

static json_t *exec_rec(const char *sched, time_t slot)
{
	char id[BFS_NAME_MAX + 1];

	bfs_execution_id(sched, slot, id, sizeof(id));
	return json_pack("{ssssss}", "id", id, "schedule", sched, "state",
			 "running");
}

static void test_executions(void)
{
	json_t *r, *ids;
	struct fx f;

	setup(&f);
	for (int i = 0; i < 5; i++) {
		r = exec_rec(i % 2 ? "b" : "a", 1800000000 + 60 * i);
		CHECK_EQ(bfs_execution_claim(f.repo, "pg1", r), 0);
		/* the claim is exclusive */
		CHECK_EQ(bfs_execution_claim(f.repo, "pg1", r), -EEXIST);
		CHECK_EQ(bfs_execution_update(f.repo, "pg1", r), 0);
		json_decref(r);
	}
	CHECK_EQ(bfs_execution_list(f.repo, "pg1", NULL, &ids), 0);
	CHECK_EQ(json_array_size(ids), 5);
	/* newest slot first */
	CHECK(!strcmp(json_string_value(json_array_get(ids, 0)),
		      "a-20270115T0804Z"));
	CHECK(!strcmp(json_string_value(json_array_get(ids, 4)),
		      "a-20270115T0800Z"));
	json_decref(ids);
	CHECK_EQ(bfs_execution_list(f.repo, "pg1", "b", &ids), 0);
	CHECK_EQ(json_array_size(ids), 2);
	json_decref(ids);
	CHECK_EQ(bfs_execution_trim(f.repo, "pg1", "a", 1), 2);
	CHECK_EQ(bfs_execution_list(f.repo, "pg1", "a", &ids), 0);
	CHECK_EQ(json_array_size(ids), 1);
	CHECK(!strcmp(json_string_value(json_array_get(ids, 0)),
		      "a-20270115T0804Z"));
	json_decref(ids);
	CHECK_EQ(bfs_execution_get(f.repo, "pg1", "a-20270115T0804Z", &r), 0);
	CHECK(!strcmp(json_string_value(json_object_get(r, "state")),
		      "running"));
	json_decref(r);
	CHECK_EQ(bfs_execution_delete(f.repo, "pg1", "a-20270115T0804Z"), 0);
	CHECK_EQ(bfs_execution_get(f.repo, "pg1", "a-20270115T0804Z", &r),
		 -ENOENT);
	teardown(&f);
}

int main(void)
{
	RUN(test_parse_pattern);
	RUN(test_parse_json);
	RUN(test_parse_bad);
	RUN(test_names);
	RUN(test_execution_ids);
	RUN(test_store);
	RUN(test_executions);
	return check_summary();
}
