// SPDX-License-Identifier: Apache-2.0
/*
 * The database drivers' toolkit (datastores/ds_int.h): commands and their
 * errors, the exec prefix and its quoting, strategies, services, the
 * atomic data-directory swap with its rollback and crash recovery, and
 * stream sniffing.  Services here are small shell commands over a flag
 * file, so a "start" and a failing "health" are real processes.
 */
#include "check.h"
#include "ds_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/bfs-ds-XXXXXX";

static void path_of(char *out, const char *rel)
{
	if (snprintf(out, PATH_MAX, "%s/%s", base, rel) >= PATH_MAX)
		abort();
}

static int write_text(const char *rel, const char *text)
{
	char p[PATH_MAX];
	FILE *f;

	path_of(p, rel);
	f = fopen(p, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

static int exists(const char *rel)
{
	char p[PATH_MAX];

	path_of(p, rel);
	return access(p, F_OK) == 0;
}

/* Entries of base/dir whose name has needle in it. */
static int count_named(const char *dir, const char *needle)
{
	char cmd[PATH_MAX + 128], line[512];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ls -a '%s/%s'", base, dir);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p))
		n += strstr(line, needle) != NULL;
	pclose(p);
	return n;
}

static const struct ds_exec local = {0};

/* ---- commands ---------------------------------------------------------- */

struct collect {
	char buf[4096];
	size_t len;
	int fail_after; /* fail once this many bytes came, 0: never */
};

static int collect_sink(void *arg, const void *data, size_t len)
{
	struct collect *c = arg;
	size_t n =
		len < sizeof(c->buf) - c->len ? len : sizeof(c->buf) - c->len;

	memcpy(c->buf + c->len, data, n);
	c->len += n;
	if (c->fail_after && c->len >= (size_t)c->fail_after)
		return -ENOSPC;
	return 0;
}

static void test_run_ok_and_capture(void)
{
	const char *argv[] = {"sh", "-c", "printf 'hello\\nworld'", NULL};
	struct ds_cmd cmd = {.argv = argv, .in_fd = -1};
	char out[64], err[256] = "";

	cmd.capture = out;
	cmd.capture_cap = sizeof(out);
	CHECK_EQ(ds_run(&local, &cmd, err, sizeof(err)), 0);
	CHECK(!strcmp(out, "hello\nworld"));
	CHECK_EQ(cmd.status, 0);
	/* the capture is cut, never overrun */
	cmd.capture_cap = 4;
	CHECK_EQ(ds_run(&local, &cmd, err, sizeof(err)), 0);
	CHECK(!strcmp(out, "hel"));
}

static void test_run_failure_reason(void)
{
	const char *argv[] = {"sh", "-c",
			      "echo first >&2; echo 'the real reason' >&2; "
			      "exit 3",
			      NULL};
	char err[256] = "";

	CHECK_EQ(ds_run_argv(&local, NULL, argv, err, sizeof(err)), -EIO);
	CHECK(strstr(err, "sh failed (exit status 3): the real reason"));
	CHECK(!strstr(err, "first"));
}

static void test_run_errno_mapping(void)
{
	const char *nospc[] = {"sh", "-c",
			       "echo 'write: No space left on device' >&2; "
			       "exit 1",
			       NULL};
	const char *refused[] = {"sh", "-c",
				 "echo 'could not connect to server: x' >&2; "
				 "exit 2",
				 NULL};
	const char *missing[] = {"/nonexistent/tool", NULL};
	const char *notfound[] = {"sh", "-c", "exit 127", NULL};
	char err[256];

	CHECK_EQ(ds_run_argv(&local, NULL, nospc, err, sizeof(err)), -ENOSPC);
	CHECK_EQ(ds_run_argv(&local, NULL, refused, err, sizeof(err)),
		 -ECONNREFUSED);
	CHECK_EQ(ds_run_argv(&local, NULL, missing, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "cannot run tool"));
	CHECK_EQ(ds_run_argv(&local, NULL, notfound, err, sizeof(err)),
		 -ENOENT);
	CHECK(strstr(err, "command not found"));
}

static void test_run_sink_gets_stdout(void)
{
	const char *argv[] = {"sh", "-c", "printf abc; printf def", NULL};
	struct bfs_progress prog = {0};
	struct collect c = {0};
	struct ds_cmd cmd = {.argv = argv,
			     .in_fd = -1,
			     .out = collect_sink,
			     .out_arg = &c,
			     .progress = &prog};
	char err[256];

	CHECK_EQ(ds_run(&local, &cmd, err, sizeof(err)), 0);
	CHECK_EQ(c.len, 6);
	CHECK(!memcmp(c.buf, "abcdef", 6));
	CHECK_EQ(prog.done, 6);
}

static void test_run_sink_failure_stops_tool(void)
{
	/* yes(1) never ends by itself: the sink's error must stop it */
	const char *argv[] = {"yes", NULL};
	struct collect c = {.fail_after = 1000};
	struct ds_cmd cmd = {
		.argv = argv, .in_fd = -1, .out = collect_sink, .out_arg = &c};
	char err[256];

	CHECK_EQ(ds_run(&local, &cmd, err, sizeof(err)), -ENOSPC);
	CHECK(strstr(err, "cannot store its output"));
}

static void test_run_timeout(void)
{
	const char *argv[] = {"sleep", "30", NULL};
	struct ds_cmd cmd = {.argv = argv, .in_fd = -1, .timeout = 1};
	char err[256];

	CHECK_EQ(ds_run(&local, &cmd, err, sizeof(err)), -ETIMEDOUT);
	CHECK(strstr(err, "did not finish within 1 s"));
}

static void test_run_stdin_and_env(void)
{
	const char *argv[] = {"sh", "-c", "cat; printf \"$BFS_SECRET\"", NULL};
	const char *env[] = {"BFS_SECRET=s3cr3t", NULL};
	struct ds_cmd cmd = {.argv = argv, .env = env};
	char out[64], err[256], p[PATH_MAX];

	CHECK_EQ(write_text("stdin.txt", "from-file;"), 0);
	path_of(p, "stdin.txt");
	cmd.in_fd = open(p, O_RDONLY);
	cmd.capture = out;
	cmd.capture_cap = sizeof(out);
	CHECK(cmd.in_fd >= 0);
	CHECK_EQ(ds_run(&local, &cmd, err, sizeof(err)), 0);
	close(cmd.in_fd);
	CHECK(!strcmp(out, "from-file;s3cr3t"));
}

static void test_exec_prefix(void)
{
	json_t *conf = json_pack("{s:[s,s]}", "exec_prefix", "env",
				 "BFS_PREFIXED=yes");
	const char *argv[] = {"sh", "-c", "printf \"$BFS_PREFIXED\"", NULL};
	struct ds_cmd cmd = {.argv = argv, .in_fd = -1};
	struct ds_exec x;
	char out[16], err[256] = "";

	cmd.capture = out;
	cmd.capture_cap = sizeof(out);
	CHECK_EQ(ds_exec_parse(conf, &x, err, sizeof(err)), 0);
	CHECK_EQ(x.remote_shell, 0);
	CHECK_EQ(ds_run(&x, &cmd, err, sizeof(err)), 0);
	CHECK(!strcmp(out, "yes"));
	ds_exec_release(&x);
	json_decref(conf);

	conf = json_pack("{s:[s,s]}", "exec_prefix", "/usr/bin/ssh", "db1");
	CHECK_EQ(ds_exec_parse(conf, &x, err, sizeof(err)), 0);
	CHECK_EQ(x.remote_shell, 1);
	ds_exec_release(&x);
	json_decref(conf);

	conf = json_pack("{s:[s,i]}", "exec_prefix", "env", 1);
	CHECK_EQ(ds_exec_parse(conf, &x, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "exec_prefix"));
	json_decref(conf);
}

/* ssh joins its words into one line for the remote shell: each word
 * must come back intact, whatever it holds. */
static void test_shell_quote(void)
{
	static const char *const words[] = {"plain",	 "with space", "it's",
					    "$HOME;`x`", "",	       "'"};
	char cmd[1024], out[256], err[256];
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		char *q = ds_shell_quote(words[i]);
		const char *argv[] = {"sh", "-c", cmd, NULL};
		struct ds_cmd c = {.argv = argv,
				   .in_fd = -1,
				   .capture = out,
				   .capture_cap = sizeof(out)};

		CHECK(q != NULL);
		snprintf(cmd, sizeof(cmd), "printf %%s %s", q);
		CHECK_EQ(ds_run(&local, &c, err, sizeof(err)), 0);
		CHECK(!strcmp(out, words[i]));
		free(q);
	}
}

static void test_secret_file(void)
{
	char p[PATH_MAX], pw[64], err[256];

	CHECK_EQ(write_text("pw", "hunter2\nsecond line\n"), 0);
	path_of(p, "pw");
	chmod(p, 0644);
	CHECK_EQ(ds_secret_file(p, pw, sizeof(pw), err, sizeof(err)), -EPERM);
	chmod(p, 0600);
	CHECK_EQ(ds_secret_file(p, pw, sizeof(pw), err, sizeof(err)), 0);
	CHECK(!strcmp(pw, "hunter2"));
	CHECK_EQ(write_text("pw", "\n"), 0);
	CHECK_EQ(ds_secret_file(p, pw, sizeof(pw), err, sizeof(err)), -EINVAL);
}

/* ---- strategies ---------------------------------------------------------- */

static int parse(const char *text, struct ds_strategy *s, char *err,
		 size_t errlen)
{
	static const char *const extra[] = {"snapshot", NULL};
	json_t *j = json_loads(text, 0, NULL);
	int rc;

	if (!j)
		return -999;
	rc = ds_strategy_parse(j, "test", extra, s, err, errlen);
	json_decref(j);
	return rc;
}

/* The config readers the drivers share: strings and ports. */
static void test_conf_readers(void)
{
	json_t *c = json_loads("{\"user\": \"pg\", \"empty\": \"\", "
			       "\"n\": 5, \"port\": 5433}",
			       0, NULL);
	json_t *bad;
	char port[8] = "";
	char *v;

	CHECK_EQ(ds_conf_str(c, "user", "x", &v), 0);
	CHECK(v && !strcmp(v, "pg"));
	free(v);
	CHECK_EQ(ds_conf_str(c, "missing", "dflt", &v), 0);
	CHECK(v && !strcmp(v, "dflt"));
	free(v);
	CHECK_EQ(ds_conf_str(c, "missing", NULL, &v), 0);
	CHECK(v == NULL);
	CHECK_EQ(ds_conf_str(c, "empty", NULL, &v), -EINVAL);
	CHECK_EQ(ds_conf_str(c, "n", NULL, &v), -EINVAL);
	CHECK_EQ(ds_conf_port(c, port), 0);
	CHECK(!strcmp(port, "5433"));
	const char *refused[] = {"{\"port\": 0}", "{\"port\": 65536}",
				 "{\"port\": \"5432\"}", "{\"port\": 54.5}"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		bad = json_loads(refused[i], 0, NULL);
		CHECK_EQ(ds_conf_port(bad, port), -EINVAL);
		json_decref(bad);
	}
	CHECK(!strcmp(port, "5433"));
	bad = json_object();
	CHECK_EQ(ds_conf_port(bad, port), 0); /* absent: left as it is */
	CHECK(!strcmp(port, "5433"));
	json_decref(bad);
	json_decref(c);
}

static void test_strategy_defaults_and_values(void)
{
	struct ds_strategy s;
	char err[256] = "";
	json_t *j, *meta;

	CHECK_EQ(parse("{}", &s, err, sizeof(err)), 0);
	CHECK_EQ(s.format, DS_FORMAT_NATIVE);
	CHECK_EQ(s.mode, DS_MODE_ONLINE);
	CHECK_EQ(s.type, DS_TYPE_FULL);
	CHECK(s.tables == NULL);
	j = json_loads("{\"format\": \"agnostic\", \"mode\": \"offline\", "
		       "\"type\": \"incremental\", \"tables\": [\"a\", "
		       "\"s.b\"], \"snapshot\": \"x\"}",
		       0, NULL);
	CHECK_EQ(ds_strategy_parse(j, "test",
				   (const char *const[]){"snapshot", NULL}, &s,
				   err, sizeof(err)),
		 0);
	CHECK_EQ(s.format, DS_FORMAT_AGNOSTIC);
	CHECK_EQ(s.mode, DS_MODE_OFFLINE);
	CHECK_EQ(s.type, DS_TYPE_INCREMENTAL);
	CHECK_EQ(json_array_size(s.tables), 2);
	meta = json_object();
	CHECK_EQ(ds_strategy_meta(&s, meta), 0);
	CHECK(!strcmp(json_string_value(json_object_get(meta, "format")),
		      "agnostic"));
	CHECK_EQ(json_array_size(json_object_get(meta, "tables")), 2);
	json_decref(meta);
	json_decref(j);
}

static void test_strategy_rejects(void)
{
	static const char *const bad[] = {
		"{\"bogus\": 1}",
		"{\"format\": \"Native\"}",
		"{\"format\": 1}",
		"{\"mode\": \"hot\"}",
		"{\"type\": \"differential\"}",
		"{\"tables\": []}",
		"{\"tables\": \"t\"}",
		"{\"tables\": [\"-t\"]}",
		"{\"tables\": [\"a/b\"]}",
		"{\"tables\": [\"a\\nb\"]}",
		"{\"tables\": [\"\"]}",
		"{\"tables\": [1]}",
	};
	struct ds_strategy s;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_EQ(parse(bad[i], &s, err, sizeof(err)), -EINVAL);
		CHECK(err[0]);
	}
	CHECK_EQ(parse("{\"bogus\": 1}", &s, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "'bogus'") && strstr(err, "snapshot"));
}

/* ---- services and the swap ---------------------------------------------- */

/*
 * A pretend database: "running" exists while it runs; it is healthy
 * when running and its data directory holds "ok".
 */
static void make_service(struct ds_service *svc, const char *health_extra)
{
	char start[2 * PATH_MAX + 64], stop[PATH_MAX + 64],
		health[2 * PATH_MAX];
	json_t *conf;
	char err[256];

	/* like pg_ctl: starting a running service fails */
	snprintf(start, sizeof(start),
		 "test ! -e '%s/running' && touch '%s/running'", base, base);
	snprintf(stop, sizeof(stop), "rm -f '%s/running'", base);
	snprintf(health, sizeof(health),
		 "test -f '%s/running' && test -f '%s/data/ok'%s", base, base,
		 health_extra);
	conf = json_pack("{s:{s:[s,s,s], s:[s,s,s], s:[s,s,s], s:i}}",
			 "service", "start", "sh", "-c", start, "stop", "sh",
			 "-c", stop, "health", "sh", "-c", health,
			 "health_timeout", 1);
	CHECK_EQ(ds_service_parse(conf, NULL, NULL, NULL, NULL, svc, err,
				  sizeof(err)),
		 0);
	json_decref(conf);
}

static void reset_data(void)
{
	char cmd[PATH_MAX + 64];

	snprintf(cmd, sizeof(cmd),
		 "rm -rf '%s/data' '%s'/.data.* '%s/state' '%s/running'", base,
		 base, base, base);
	CHECK_EQ(system(cmd), 0);
	path_of(cmd, "data");
	mkdir(cmd, 0700);
	path_of(cmd, "state");
	mkdir(cmd, 0700);
	CHECK_EQ(write_text("data/ok", "old\n"), 0);
	CHECK_EQ(write_text("data/old-only", "x\n"), 0);
	CHECK_EQ(write_text("running", ""), 0);
}

static void test_service_parse(void)
{
	const char *start[] = {"pg_ctl", "start", NULL};
	const char *stop[] = {"pg_ctl", "stop", NULL};
	const char *health[] = {"psql", NULL};
	struct ds_service svc;
	char err[256] = "";
	json_t *conf;

	conf = json_pack("{s:{s:[s]}}", "service", "stop", "systemctl");
	CHECK_EQ(ds_service_parse(conf, start, stop, health, "postgres", &svc,
				  err, sizeof(err)),
		 0);
	CHECK(!strcmp(svc.start.argv[0], "pg_ctl"));
	CHECK(!strcmp(svc.start.user, "postgres"));
	CHECK(!strcmp(svc.stop.argv[0], "systemctl"));
	CHECK(svc.stop.user == NULL); /* overrides run as given */
	CHECK_EQ(svc.health_timeout, 120);
	ds_service_release(&svc);
	json_decref(conf);

	conf = json_pack("{s:{s:[]}}", "service", "start");
	CHECK_EQ(ds_service_parse(conf, start, stop, health, NULL, &svc, err,
				  sizeof(err)),
		 -EINVAL);
	json_decref(conf);
	conf = json_pack("{s:{s:[s]}}", "service", "restart", "x");
	CHECK_EQ(ds_service_parse(conf, start, stop, health, NULL, &svc, err,
				  sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "'restart'"));
	json_decref(conf);
	conf = json_pack("{s:{s:i}}", "service", "health_timeout", 0);
	CHECK_EQ(ds_service_parse(conf, start, stop, health, NULL, &svc, err,
				  sizeof(err)),
		 -EINVAL);
	json_decref(conf);
}

static int swap_into(struct ds_service *svc, const char *ok_text, char *err,
		     size_t errlen)
{
	char data[PATH_MAX], state[PATH_MAX], p[PATH_MAX];
	struct ds_swap s;
	FILE *f;
	int rc;

	path_of(data, "data");
	path_of(state, "state");
	rc = ds_swap_begin(&s, &local, svc, state, data, NULL, err, errlen);
	if (rc)
		return rc;
	snprintf(p, sizeof(p), "%s/new-only", s.staging);
	f = fopen(p, "w");
	if (f)
		fclose(f);
	if (ok_text) {
		snprintf(p, sizeof(p), "%s/ok", s.staging);
		f = fopen(p, "w");
		if (f) {
			fputs(ok_text, f);
			fclose(f);
		}
	}
	return ds_swap_commit(&s, err, errlen);
}

static void test_swap_commits(void)
{
	struct ds_service svc;
	char err[512] = "";

	reset_data();
	make_service(&svc, "");
	CHECK_EQ(swap_into(&svc, "new\n", err, sizeof(err)), 0);
	CHECK(exists("data/new-only"));
	CHECK(!exists("data/old-only"));
	CHECK(exists("running"));
	CHECK_EQ(count_named("", ".backupfs-"), 0);
	CHECK(!exists("state/swap.journal"));
	ds_service_release(&svc);
}

static void test_swap_rolls_back_on_failed_health(void)
{
	struct ds_service svc;
	char err[512] = "";

	reset_data();
	make_service(&svc, "");
	/* no "ok" in the new data: the health check fails */
	CHECK_EQ(swap_into(&svc, NULL, err, sizeof(err)), -EIO);
	CHECK(strstr(err, "health check"));
	CHECK(exists("data/old-only"));
	CHECK(!exists("data/new-only"));
	CHECK(exists("running"));
	CHECK_EQ(count_named("", ".backupfs-"), 0);
	CHECK(!exists("state/swap.journal"));
	ds_service_release(&svc);
}

static void test_swap_rolls_back_on_failed_start(void)
{
	char start[PATH_MAX + 64], err[512] = "";
	struct ds_service svc;

	reset_data();
	make_service(&svc, "");
	/* start fails while the new data is in place, works after */
	snprintf(start, sizeof(start),
		 "test -f '%s/data/old-only' && touch '%s/running'", base,
		 base);
	free(svc.start.argv[2]);
	svc.start.argv[2] = strdup(start);
	CHECK_EQ(swap_into(&svc, "new\n", err, sizeof(err)), -EIO);
	CHECK(exists("data/old-only"));
	CHECK(exists("running"));
	CHECK_EQ(count_named("", ".backupfs-"), 0);
	ds_service_release(&svc);
}

/* A stop that fails changes nothing, and leaves nothing to recover. */
static void test_swap_failed_stop_changes_nothing(void)
{
	struct ds_service svc;
	char err[512] = "";

	reset_data();
	make_service(&svc, "");
	free(svc.stop.argv[2]);
	svc.stop.argv[2] = strdup("echo 'cannot stop' >&2; exit 1");
	CHECK_EQ(swap_into(&svc, "new\n", err, sizeof(err)), -EIO);
	CHECK(strstr(err, "cannot stop"));
	CHECK(!strstr(err, "rollback failed"));
	CHECK(exists("data/old-only"));
	CHECK(exists("running"));
	CHECK_EQ(count_named("", ".backupfs-"), 0);
	CHECK(!exists("state/swap.journal"));
	ds_service_release(&svc);
}

/* A crash after the old data moved aside and the new one moved in: the
 * journal says "swapping"; recovery puts the old data back. */
static void test_swap_recover_undoes(void)
{
	char data[PATH_MAX], state[PATH_MAX], cmd[4 * PATH_MAX];
	struct ds_service svc;
	struct ds_swap s;
	json_t *j;
	char err[512] = "";

	reset_data();
	make_service(&svc, "");
	path_of(data, "data");
	path_of(state, "state");
	CHECK_EQ(ds_swap_begin(&s, &local, &svc, state, data, NULL, err,
			       sizeof(err)),
		 0);
	/* what ds_swap_commit() does, up to a crash before the health check */
	j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "phase", "swapping",
		      "data", s.data, "staging", s.staging, "old", s.old,
		      "subvol", 0, "created", 0);
	CHECK_EQ(ds_journal_write(state, "swap.journal", j), 0);
	json_decref(j);
	snprintf(cmd, sizeof(cmd),
		 "rm -f '%s/running' && mv '%s' '%s' && mv '%s' '%s' && "
		 "touch '%s/new-only'",
		 base, s.data, s.old, s.staging, s.data, s.data);
	CHECK_EQ(system(cmd), 0);
	free(s.data);
	free(s.staging);
	free(s.old);
	CHECK(exists("data/new-only"));
	CHECK_EQ(ds_swap_recover(&local, &svc, state), 0);
	CHECK(exists("data/old-only"));
	CHECK(!exists("data/new-only"));
	CHECK(exists("running"));
	CHECK_EQ(count_named("", ".backupfs-"), 0);
	CHECK(!exists("state/swap.journal"));
	ds_service_release(&svc);
}

/* A crash after the health check passed: recovery finishes (drops the
 * old data); one in "staging": recovery drops the staging directory. */
static void test_swap_recover_finishes(void)
{
	char data[PATH_MAX], state[PATH_MAX], old[PATH_MAX + 64];
	struct ds_service svc;
	json_t *j;

	reset_data();
	make_service(&svc, "");
	path_of(data, "data");
	path_of(state, "state");
	snprintf(old, sizeof(old), "%s/.data.backupfs-old-1234", base);
	CHECK_EQ(mkdir(old, 0700), 0);
	j = json_pack("{s:s, s:s, s:s, s:s}", "phase", "committed", "data",
		      data, "staging", "/nonexistent/.x.backupfs-restore-1",
		      "old", old);
	CHECK_EQ(ds_journal_write(state, "swap.journal", j), 0);
	json_decref(j);
	CHECK_EQ(ds_swap_recover(&local, &svc, state), 0);
	CHECK(access(old, F_OK) != 0);
	CHECK(exists("data/old-only"));
	CHECK(!exists("state/swap.journal"));

	snprintf(old, sizeof(old), "%s/.data.backupfs-restore-99", base);
	CHECK_EQ(mkdir(old, 0700), 0);
	j = json_pack("{s:s, s:s, s:s, s:s}", "phase", "staging", "data", data,
		      "staging", old, "old", "/nonexistent/.x.backupfs-old-1");
	CHECK_EQ(ds_journal_write(state, "swap.journal", j), 0);
	json_decref(j);
	CHECK_EQ(ds_swap_recover(&local, &svc, state), 0);
	CHECK(access(old, F_OK) != 0);
	CHECK(exists("data/old-only"));
	ds_service_release(&svc);
}

/* A corrupt journal never makes us remove what is not ours. */
static void test_swap_recover_refuses_foreign_paths(void)
{
	char data[PATH_MAX], state[PATH_MAX];
	struct ds_service svc;
	json_t *j;

	reset_data();
	make_service(&svc, "");
	path_of(data, "data");
	path_of(state, "state");
	j = json_pack("{s:s, s:s, s:s, s:s}", "phase", "committed", "data",
		      data, "staging", "/x/.a.backupfs-restore-1", "old", data);
	CHECK_EQ(ds_journal_write(state, "swap.journal", j), 0);
	json_decref(j);
	CHECK(ds_swap_recover(&local, &svc, state) < 0);
	CHECK(exists("data/old-only"));
	ds_service_release(&svc);
}

/* ---- sniffing ------------------------------------------------------------ */

static void test_sniff(void)
{
	char p[PATH_MAX], tar[1024] = {0};
	enum ds_kind kind;

	path_of(p, "s");
	CHECK_EQ(write_text("s", "PGDMP\x01\x0e"), 0);
	CHECK_EQ(ds_sniff(p, &kind), 0);
	CHECK_EQ(kind, DS_KIND_PG_DUMP);
	CHECK_EQ(write_text("s", "-- MariaDB dump 10.19\n"), 0);
	CHECK_EQ(ds_sniff(p, &kind), 0);
	CHECK_EQ(kind, DS_KIND_SQL_DUMP);
	CHECK_EQ(write_text("s", "XBSTCK01"), 0);
	CHECK_EQ(ds_sniff(p, &kind), 0);
	CHECK_EQ(kind, DS_KIND_XBSTREAM);
	CHECK_EQ(write_text("s", "{\"backupfs_couchdb\": 1}\n"), 0);
	CHECK_EQ(ds_sniff(p, &kind), 0);
	CHECK_EQ(kind, DS_KIND_COUCH_JSON);
	CHECK_EQ(write_text("s", "hello"), 0);
	CHECK_EQ(ds_sniff(p, &kind), 0);
	CHECK_EQ(kind, DS_KIND_UNKNOWN);
	memcpy(tar + 257, "ustar", 5);
	{
		FILE *f = fopen(p, "w");

		CHECK(f && fwrite(tar, 1, sizeof(tar), f) == sizeof(tar));
		if (f)
			fclose(f);
	}
	CHECK_EQ(ds_sniff(p, &kind), 0);
	CHECK_EQ(kind, DS_KIND_TAR);
	CHECK(strstr(ds_kind_name(DS_KIND_XBSTREAM), "MariaDB"));
}

int main(void)
{
	char cmd[64];

	if (!mkdtemp(base))
		return 2;
	RUN(test_run_ok_and_capture);
	RUN(test_run_failure_reason);
	RUN(test_run_errno_mapping);
	RUN(test_run_sink_gets_stdout);
	RUN(test_run_sink_failure_stops_tool);
	RUN(test_run_timeout);
	RUN(test_run_stdin_and_env);
	RUN(test_exec_prefix);
	RUN(test_shell_quote);
	RUN(test_secret_file);
	RUN(test_conf_readers);
	RUN(test_strategy_defaults_and_values);
	RUN(test_strategy_rejects);
	RUN(test_service_parse);
	RUN(test_swap_commits);
	RUN(test_swap_rolls_back_on_failed_health);
	RUN(test_swap_rolls_back_on_failed_start);
	RUN(test_swap_failed_stop_changes_nothing);
	RUN(test_swap_recover_undoes);
	RUN(test_swap_recover_finishes);
	RUN(test_swap_recover_refuses_foreign_paths);
	RUN(test_sniff);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", base);
	return check_summary();
}
