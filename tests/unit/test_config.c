// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static char dir[] = "/tmp/bfs-test-config-XXXXXX";

/* Write text to a config file and load it; err receives the message. */
static int load_text(const char *text, struct bfs_config **c, char *err,
		     size_t errlen)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/c.json", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	*c = NULL;
	return bfs_config_load(path, c, err, errlen);
}

#define GOOD_HEAD "{\"backend\": {\"type\": \"local\", \"path\": \"/r\"},\n" \
		  " \"key_file\": \"/k\", \"state_dir\": \"/s\""

static void test_good(void)
{
	struct bfs_config *c;
	char err[512] = "";

	CHECK_EQ(load_text(GOOD_HEAD ", \"cache_size\": \"64M\", "
			   "\"instances\": {\"v\": {\"datastore\": \"files\"}}}",
			   &c, err, sizeof(err)), 0);
	CHECK(c && c->cache_bytes == 64ull << 20);
	CHECK(c && !strcmp(c->key_file, "/k"));
	CHECK(c && json_object_size(c->instances) == 1);
	CHECK(c && c->readahead == BFS_DEFAULT_READAHEAD);
	bfs_config_free(c);
}

static void test_defaults_without_instances(void)
{
	struct bfs_config *c;
	char err[512] = "";

	CHECK_EQ(load_text(GOOD_HEAD "}", &c, err, sizeof(err)), 0);
	CHECK(c && json_is_object(c->instances));
	CHECK(c && c->cache_bytes == BFS_DEFAULT_CACHE_BYTES);
	CHECK(c && c->executions_keep == BFS_DEFAULT_EXECUTIONS_KEEP);
	bfs_config_free(c);
}

static void test_executions_keep(void)
{
	static const char *const bad[] = {"0", "-1", "100001", "\"5\"", "1.5"};
	struct bfs_config *c;
	char err[512] = "", text[256];

	CHECK_EQ(load_text(GOOD_HEAD ", \"executions_keep\": 3}", &c, err,
			   sizeof(err)),
		 0);
	CHECK(c && c->executions_keep == 3);
	bfs_config_free(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 GOOD_HEAD ", \"executions_keep\": %s}", bad[i]);
		err[0] = 0;
		CHECK_EQ(load_text(text, &c, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "executions_keep") != NULL);
	}
}

static void test_syntax_error_names_line(void)
{
	struct bfs_config *c;
	char err[512] = "";

	CHECK_EQ(load_text("{\n\"backend\": {,\n}", &c, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "c.json") != NULL);
	CHECK(strstr(err, "line 2") != NULL);
	CHECK(strstr(err, "column") != NULL);
}

static void test_unknown_and_missing_keys(void)
{
	struct bfs_config *c;
	char err[512] = "";

	CHECK_EQ(load_text(GOOD_HEAD ", \"bogus\": 1}", &c, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "unknown key 'bogus'") != NULL);
	CHECK_EQ(load_text("{\"backend\": {}, \"state_dir\": \"/s\"}", &c, err,
			   sizeof(err)), -EINVAL);
	CHECK(strstr(err, "'key_file'") != NULL);
	CHECK_EQ(load_text(GOOD_HEAD ", \"cache_size\": \"lots\"}", &c, err,
			   sizeof(err)), -EINVAL);
	CHECK(strstr(err, "'cache_size'") != NULL);
	CHECK_EQ(load_text("{\"backend\": {}, \"key_file\": \"rel\", "
			   "\"state_dir\": \"/s\"}", &c, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "absolute") != NULL);
}

static void test_missing_file(void)
{
	struct bfs_config *c = NULL;
	char err[512] = "";

	CHECK(bfs_config_load("/nonexistent/x.json", &c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "/nonexistent/x.json") != NULL);
}

static void test_parse_size(void)
{
	uint64_t v;

	CHECK(bfs_parse_size("123", &v) == 0 && v == 123);
	CHECK(bfs_parse_size("64K", &v) == 0 && v == 65536);
	CHECK(bfs_parse_size("2G", &v) == 0 && v == 2ull << 30);
	CHECK(bfs_parse_size("256MiB", &v) == 0 && v == 256ull << 20);
	CHECK_EQ(bfs_parse_size("", &v), -EINVAL);
	CHECK_EQ(bfs_parse_size("-1", &v), -EINVAL);
	CHECK_EQ(bfs_parse_size("12X", &v), -EINVAL);
	CHECK_EQ(bfs_parse_size("99999999999999999999", &v), -EINVAL);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(test_good);
	RUN(test_defaults_without_instances);
	RUN(test_executions_keep);
	RUN(test_syntax_error_names_line);
	RUN(test_unknown_and_missing_keys);
	RUN(test_missing_file);
	RUN(test_parse_size);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			return 1;
	}
	return check_summary();
}
