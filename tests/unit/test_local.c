// SPDX-License-Identifier: Apache-2.0
/* The backend wrappers (name checks) and the local driver. */
#include "backend.h"
#include "check.h"
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct bfs_backend *open_local(const char *path)
{
	struct bfs_backend *be = NULL;
	char err[256];
	json_t *conf = json_pack("{s:s,s:s}", "type", "local", "path", path);

	CHECK_EQ(bfs_backend_open(conf, &be, err, sizeof(err)), 0);
	json_decref(conf);
	return be;
}

static struct bfs_backend *fresh(void)
{
	fx_make_tmpdir("local");
	return open_local(tmpdir);
}

static void done(struct bfs_backend *be)
{
	bfs_backend_close(be);
	fx_rmtree(tmpdir);
}

static int put(struct bfs_backend *be, const char *name, const char *s)
{
	return bfs_backend_put(be, name, s, strlen(s), 0);
}

/* get(off, len) as a C string into out */
static int get(struct bfs_backend *be, const char *name, uint64_t off,
	       uint64_t len, char *out, size_t outlen)
{
	struct bfs_buf b;
	int ret;

	bfs_buf_init(&b, outlen - 1);
	ret = bfs_backend_get(be, name, off, len, &b);
	out[0] = 0;
	if (!ret && b.len) {
		memcpy(out, b.data, b.len);
		out[b.len] = 0;
	}
	bfs_buf_release(&b);
	return ret;
}

static void test_name_ok(void)
{
	char longc[300];

	CHECK(bfs_backend_name_ok("config"));
	CHECK(bfs_backend_name_ok("chunks/ab/abcdef"));
	CHECK(bfs_backend_name_ok("manifests/pg1/2026-11-21T03:00:00Z"));
	CHECK(bfs_backend_name_ok("a/.b"));
	CHECK(bfs_backend_name_ok("caf\xc3\xa9"));
	CHECK(!bfs_backend_name_ok(NULL));
	CHECK(!bfs_backend_name_ok(""));
	CHECK(!bfs_backend_name_ok("../x"));
	CHECK(!bfs_backend_name_ok("x/.."));
	CHECK(!bfs_backend_name_ok("x/../y"));
	CHECK(!bfs_backend_name_ok("/x"));
	CHECK(!bfs_backend_name_ok("x/"));
	CHECK(!bfs_backend_name_ok("a//b"));
	CHECK(!bfs_backend_name_ok("a/./b"));
	CHECK(!bfs_backend_name_ok("."));
	CHECK(!bfs_backend_name_ok("a\nb"));
	CHECK(!bfs_backend_name_ok("a/b\n"));
	CHECK(!bfs_backend_name_ok("a\x7f"));
	CHECK(!bfs_backend_name_ok("a\tb"));
	memset(longc, 'x', 255);
	longc[255] = 0;
	CHECK(bfs_backend_name_ok(longc));
	longc[255] = 'x';
	longc[256] = 0;
	CHECK(!bfs_backend_name_ok(longc));
	memcpy(longc, "a/", 2); /* "a/" + 254 x: fine again */
	CHECK(bfs_backend_name_ok(longc));
}

static int count_cb(const char *name, uint64_t size, int is_prefix, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void test_wrappers_refuse(void)
{
	struct bfs_backend *be = fresh();
	const char *bad[] = {"../x", "/x", "a//b", "a/./b", "a\nb", "", "a/"};
	struct bfs_buf b;
	uint64_t size;
	size_t i;
	int n = 0;

	bfs_buf_init(&b, 100);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(bfs_backend_put(be, bad[i], "x", 1, 0), -EINVAL);
		CHECK_EQ(bfs_backend_get(be, bad[i], 0, 0, &b), -EINVAL);
		CHECK_EQ(bfs_backend_stat(be, bad[i], &size), -EINVAL);
		CHECK_EQ(bfs_backend_remove(be, bad[i]), -EINVAL);
	}
	CHECK_EQ(bfs_backend_list(be, "../", 0, count_cb, &n), -EINVAL);
	CHECK_EQ(bfs_backend_list(be, "/", 0, count_cb, &n), -EINVAL);
	CHECK_EQ(bfs_backend_list(be, "a//", 0, count_cb, &n), -EINVAL);
	CHECK_EQ(bfs_backend_list(be, "", ':', count_cb, &n), -EINVAL);
	CHECK_EQ(bfs_backend_put(be, "x", "x", 1, 0x100), -EINVAL);
	/* names starting with '.' are the local driver's temporaries */
	CHECK_EQ(bfs_backend_put(be, ".tmp.x", "x", 1, 0), -EINVAL);
	CHECK_EQ(bfs_backend_put(be, "a/.b", "x", 1, 0), -EINVAL);
	CHECK_EQ(n, 0);
	bfs_buf_release(&b);
	done(be);
}

static void test_open_config(void)
{
	struct bfs_backend *be = NULL;
	char err[256], path[128];
	struct stat st;
	json_t *conf;

	conf = json_pack("{s:s}", "type", "gopher");
	CHECK_EQ(bfs_backend_open(conf, &be, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "gopher") && strstr(err, "local"));
	json_decref(conf);

	conf = json_pack("{s:s}", "path", "/tmp");
	CHECK_EQ(bfs_backend_open(conf, &be, err, sizeof(err)), -EINVAL);
	json_decref(conf);

	conf = json_pack("{s:s,s:s,s:i}", "type", "local", "path", "/tmp",
			 "colour", 1);
	CHECK_EQ(bfs_backend_open(conf, &be, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "colour") != NULL);
	json_decref(conf);

	conf = json_pack("{s:s,s:s}", "type", "local", "path", "rel/dir");
	CHECK_EQ(bfs_backend_open(conf, &be, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "absolute") != NULL);
	json_decref(conf);

	conf = json_pack("{s:s,s:i}", "type", "local", "path", 5);
	CHECK_EQ(bfs_backend_open(conf, &be, err, sizeof(err)), -EINVAL);
	json_decref(conf);
	CHECK(be == NULL);

	/* a missing directory is created, mode 0700 */
	fx_make_tmpdir("local");
	snprintf(path, sizeof(path), "%s/new/repo", tmpdir);
	be = open_local(path);
	CHECK(be != NULL);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0700);
	bfs_backend_close(be);
	/* and an existing one is fine */
	be = open_local(path);
	CHECK(be != NULL);
	done(be);
}

static void test_put_get(void)
{
	struct bfs_backend *be = fresh();
	char out[64], path[128];
	struct bfs_buf b;
	struct stat st;
	uint64_t size;

	CHECK_EQ(put(be, "dir/sub/obj", "0123456789"), 0);
	snprintf(path, sizeof(path), "%s/dir/sub/obj", tmpdir);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(get(be, "dir/sub/obj", 0, 0, out, sizeof(out)), 0);
	CHECK(!strcmp(out, "0123456789"));
	CHECK_EQ(get(be, "dir/sub/obj", 2, 3, out, sizeof(out)), 0);
	CHECK(!strcmp(out, "234"));
	CHECK_EQ(get(be, "dir/sub/obj", 7, 0, out, sizeof(out)), 0);
	CHECK(!strcmp(out, "789"));
	CHECK_EQ(get(be, "dir/sub/obj", 7, 100, out, sizeof(out)), 0);
	CHECK(!strcmp(out, "789"));
	CHECK_EQ(get(be, "dir/sub/obj", 10, 0, out, sizeof(out)), 0);
	CHECK(!strcmp(out, ""));
	CHECK_EQ(get(be, "dir/sub/obj", 1000, 5, out, sizeof(out)), 0);
	CHECK(!strcmp(out, ""));
	CHECK_EQ(get(be, "dir/sub/nope", 0, 0, out, sizeof(out)), -ENOENT);
	CHECK_EQ(get(be, "dir/sub", 0, 0, out, sizeof(out)), -ENOENT);
	CHECK_EQ(get(be, "dir/sub/obj/x", 0, 0, out, sizeof(out)), -ENOENT);
	/* the buffer's maximum is enforced before reading */
	CHECK_EQ(get(be, "dir/sub/obj", 0, 0, out, 6), -EFBIG);
	CHECK_EQ(get(be, "dir/sub/obj", 0, 5, out, 6), 0);
	/* get appends */
	bfs_buf_init(&b, 100);
	CHECK_EQ(bfs_backend_get(be, "dir/sub/obj", 0, 2, &b), 0);
	CHECK_EQ(bfs_backend_get(be, "dir/sub/obj", 8, 0, &b), 0);
	CHECK(b.len == 4 && !memcmp(b.data, "0189", 4));
	bfs_buf_release(&b);
	/* empty objects exist */
	CHECK_EQ(bfs_backend_put(be, "empty", NULL, 0, 0), 0);
	CHECK_EQ(bfs_backend_stat(be, "empty", &size), 0);
	CHECK_EQ(size, 0);
	/* overwrite replaces */
	CHECK_EQ(put(be, "dir/sub/obj", "new"), 0);
	CHECK_EQ(get(be, "dir/sub/obj", 0, 0, out, sizeof(out)), 0);
	CHECK(!strcmp(out, "new"));
	CHECK_EQ(bfs_backend_stat(be, "dir/sub/obj", &size), 0);
	CHECK_EQ(size, 3);
	CHECK_EQ(bfs_backend_stat(be, "dir/sub", &size), -ENOENT);
	CHECK_EQ(bfs_backend_remove(be, "dir/sub/obj"), 0);
	CHECK_EQ(bfs_backend_remove(be, "dir/sub/obj"), -ENOENT);
	CHECK_EQ(bfs_backend_remove(be, "dir/sub"), -ENOENT);
	CHECK_EQ(bfs_backend_stat(be, "dir/sub/obj", &size), -ENOENT);
	done(be);
}

static void test_put_excl(void)
{
	struct bfs_backend *be = fresh();
	char out[64];

	CHECK_EQ(bfs_backend_put(be, "claims/x", "first", 5, BFS_PUT_EXCL), 0);
	CHECK_EQ(bfs_backend_put(be, "claims/x", "second", 6, BFS_PUT_EXCL),
		 -EEXIST);
	CHECK_EQ(get(be, "claims/x", 0, 0, out, sizeof(out)), 0);
	CHECK(!strcmp(out, "first"));
	CHECK_EQ(bfs_backend_put(be, "top", "t", 1, BFS_PUT_EXCL), 0);
	CHECK_EQ(bfs_backend_put(be, "top", "t", 1, BFS_PUT_EXCL), -EEXIST);
	done(be);
}

struct race {
	struct bfs_backend *be;
	int ret;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;

	r->ret = bfs_backend_put(r->be, "slots/2026-11-21T03:00:00Z", "me", 2,
				 BFS_PUT_EXCL);
	return NULL;
}

/* Claims are exclusive: of many racing creators exactly one wins. */
static void test_put_excl_race(void)
{
	struct bfs_backend *be = fresh();
	struct race r[16];
	pthread_t t[16];
	int i, won = 0, lost = 0;

	for (i = 0; i < 16; i++) {
		r[i].be = be;
		pthread_create(&t[i], NULL, race_thread, &r[i]);
	}
	for (i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		won += r[i].ret == 0;
		lost += r[i].ret == -EEXIST;
	}
	CHECK_EQ(won, 1);
	CHECK_EQ(lost, 15);
	done(be);
}

/* No temporary is left behind by puts, failed or not. */
static void test_no_temporaries(void)
{
	struct bfs_backend *be = fresh();
	char path[128];
	struct dirent *de;
	int n = 0;
	DIR *d;

	CHECK_EQ(put(be, "d/a", "1"), 0);
	CHECK_EQ(put(be, "d/a", "2"), 0);
	CHECK_EQ(bfs_backend_put(be, "d/a", "3", 1, BFS_PUT_EXCL), -EEXIST);
	snprintf(path, sizeof(path), "%s/d", tmpdir);
	d = opendir(path);
	CHECK(d != NULL);
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	CHECK_EQ(n, 1);
	done(be);
}

struct listing {
	char text[1024];
	int stop_after;
	int calls;
};

static int list_cb(const char *name, uint64_t size, int is_prefix, void *arg)
{
	struct listing *l = arg;
	size_t used = strlen(l->text);

	snprintf(l->text + used, sizeof(l->text) - used, "%s%s:%llu ",
		 is_prefix ? "P " : "", name, (unsigned long long)size);
	if (++l->calls == l->stop_after)
		return 42;
	return 0;
}

static const char *list(struct bfs_backend *be, const char *prefix, char delim,
			struct listing *l)
{
	memset(l, 0, sizeof(*l));
	CHECK_EQ(bfs_backend_list(be, prefix, delim, list_cb, l), 0);
	return l->text;
}

static void touch(const char *rel)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
}

static void test_list(void)
{
	struct bfs_backend *be = fresh();
	struct listing l;
	char path[256];

	/* '-' sorts before '/': "a-b" comes before "a/x" */
	CHECK_EQ(put(be, "b", "1"), 0);
	CHECK_EQ(put(be, "ab", "22"), 0);
	CHECK_EQ(put(be, "a/y/z", "333"), 0);
	CHECK_EQ(put(be, "a/x", "4444"), 0);
	CHECK_EQ(put(be, "a-b", "55555"), 0);
	/* temporaries, empty directories and symlinks are not objects */
	touch(".tmp.0123");
	touch("a/.tmp.4567");
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	CHECK_EQ(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/empty/deeper", tmpdir);
	CHECK_EQ(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/link", tmpdir);
	CHECK_EQ(symlink("b", path), 0);

	CHECK(!strcmp(list(be, "", 0, &l), "a-b:5 a/x:4 a/y/z:3 ab:2 b:1 "));
	CHECK(!strcmp(list(be, "a", 0, &l), "a-b:5 a/x:4 a/y/z:3 ab:2 "));
	CHECK(!strcmp(list(be, "a/", 0, &l), "a/x:4 a/y/z:3 "));
	CHECK(!strcmp(list(be, "a/y", 0, &l), "a/y/z:3 "));
	CHECK(!strcmp(list(be, "a/x", 0, &l), "a/x:4 "));
	CHECK(!strcmp(list(be, "nothing/", 0, &l), ""));
	CHECK(!strcmp(list(be, "b/", 0, &l), ""));
	CHECK(!strcmp(list(be, "empty/", 0, &l), ""));

	CHECK(!strcmp(list(be, "", '/', &l), "a-b:5 P a/:0 ab:2 b:1 "));
	CHECK(!strcmp(list(be, "a", '/', &l), "a-b:5 P a/:0 ab:2 "));
	CHECK(!strcmp(list(be, "a/", '/', &l), "a/x:4 P a/y/:0 "));
	CHECK(!strcmp(list(be, "e", '/', &l), ""));

	/* a non-zero callback return stops the listing and is returned */
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	CHECK_EQ(bfs_backend_list(be, "", 0, list_cb, &l), 42);
	CHECK_EQ(l.calls, 2);
	done(be);
}

/* The repository's use: a prefix that ends mid-name. */
static void test_list_partial_prefix(void)
{
	struct bfs_backend *be = fresh();
	struct listing l;

	CHECK_EQ(put(be, "manifests/pg1/2026-11-21T03:00:00Z", "x"), 0);
	CHECK_EQ(put(be, "manifests/pg1/2026-11-20T03:00:00Z", "x"), 0);
	CHECK_EQ(put(be, "manifests/pg2/2026-11-21T03:00:00Z", "x"), 0);
	CHECK_EQ(put(be, "manifests/other/2026-11-21T03:00:00Z", "x"), 0);
	CHECK(!strcmp(list(be, "manifests/pg", 0, &l),
		      "manifests/pg1/2026-11-20T03:00:00Z:1 "
		      "manifests/pg1/2026-11-21T03:00:00Z:1 "
		      "manifests/pg2/2026-11-21T03:00:00Z:1 "));
	CHECK(!strcmp(list(be, "manifests/pg", '/', &l),
		      "P manifests/pg1/:0 P manifests/pg2/:0 "));
	CHECK(!strcmp(list(be, "manifests/", '/', &l),
		      "P manifests/other/:0 P manifests/pg1/:0 "
		      "P manifests/pg2/:0 "));
	/* a prefix whose "directory" holds no objects is not reported */
	CHECK_EQ(bfs_backend_remove(be, "manifests/pg2/2026-11-21T03:00:00Z"),
		 0);
	CHECK(!strcmp(list(be, "manifests/", '/', &l),
		      "P manifests/other/:0 P manifests/pg1/:0 "));
	done(be);
}

/* info: the size; a file has no ETag, metadata or segments. */
static void test_info(void)
{
	struct bfs_backend *be = fresh();
	struct bfs_object_info info;
	char err[256];
	json_t *conf;

	CHECK_EQ(put(be, "legacy/x.gz", "hello"), 0);
	memset(&info, 0x55, sizeof(info));
	CHECK_EQ(bfs_backend_info(be, "legacy/x.gz", &info), 0);
	CHECK_EQ(info.size, 5);
	CHECK_EQ(info.layout, BFS_LAYOUT_SINGLE);
	CHECK(!info.etag[0] && !info.datastore[0] &&
	      !info.datastore_version[0]);
	CHECK_EQ(bfs_backend_info(be, "legacy/none", &info), -ENOENT);
	CHECK_EQ(bfs_backend_info(be, "../x", &info), -EINVAL);
	CHECK(!strcmp(bfs_object_layout_name(BFS_LAYOUT_DLO), "dlo"));
	CHECK(!strcmp(bfs_object_layout_name(BFS_LAYOUT_SLO), "slo"));
	CHECK(!strcmp(bfs_object_layout_name(7), "?"));
	/* a directory has no containers */
	conf = json_pack("{s:s,s:s}", "type", "local", "path", tmpdir);
	bfs_backend_close(be);
	be = (struct bfs_backend *)1;
	CHECK_EQ(bfs_backend_open_container(conf, "database_backups", &be, err,
					    sizeof(err)),
		 -EOPNOTSUPP);
	CHECK(be == NULL && strstr(err, "database_backups"));
	json_decref(conf);
	fx_rmtree(tmpdir);
}

int main(void)
{
	RUN(test_name_ok);
	RUN(test_wrappers_refuse);
	RUN(test_open_config);
	RUN(test_put_get);
	RUN(test_put_excl);
	RUN(test_put_excl_race);
	RUN(test_no_temporaries);
	RUN(test_list);
	RUN(test_list_partial_prefix);
	RUN(test_info);
	return check_summary();
}
