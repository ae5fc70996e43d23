// SPDX-License-Identifier: Apache-2.0
/*
 * backupctl schedule create|list|show|delete and execution list|delete:
 * on the repository's sealed records directly, or with --mount on the
 * schedules/ and executions/ files of a mounted backupfs.
 */
#include "ctl.h"
#include "datastore.h"
#include "schedule.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char ctl_schedule_help[] =
	"usage: backupctl schedule create INSTANCE NAME PATTERN "
	"[--strategy JSON]\n"
	"                                 [--keep N] [--description TEXT]\n"
	"       backupctl schedule list [INSTANCE] [--json]\n"
	"       backupctl schedule show INSTANCE NAME\n"
	"       backupctl schedule delete INSTANCE NAME\n\n"
	"Schedules are stored in the repository: every backupfs mounting it\n"
	"runs them (each slot once).  PATTERN is a 5-field cron pattern (UTC)\n"
	"or @hourly, @daily, @weekly, @monthly, @yearly; --keep N keeps the\n"
	"schedule's newest N backups (0: all).  Works on the repository, or\n"
	"with --mount DIR on the files under the mount.\n"
	"exit status: 0 success, 1 failure (refused pattern, no such "
	"schedule),\n"
	"             2 usage error\n";

const char ctl_execution_help[] =
	"usage: backupctl execution list INSTANCE [--schedule NAME] [--json]\n"
	"       backupctl execution delete INSTANCE ID\n\n"
	"The executions of an instance's schedules, newest first: id, state\n"
	"(running, completed, failed, skipped), slot and output (the backup's\n"
	"timestamp or the error).\n"
	"exit status: 0 success, 1 failure (no such execution, running), 2 "
	"usage error\n";

static int ctl_sub_usage(const char *help, int ok)
{
	fputs(help, ok ? stdout : stderr);
	return ok ? 0 : EXIT_USAGE;
}

/* Options after a subcommand: --json, --help, and those of create/list. */
struct ctl_sub {
	const char *strategy;
	const char *description;
	const char *schedule;
	long keep;
	int help;
};

static int ctl_sub_parse(struct ctl *c, struct ctl_sub *s, int *argc,
			 char **argv)
{
	static const struct option opts[] = {
		{"strategy", required_argument, NULL, 's'},
		{"keep", required_argument, NULL, 'k'},
		{"description", required_argument, NULL, 'd'},
		{"schedule", required_argument, NULL, 'S'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char *end;
	int o, n = 0;

	memset(s, 0, sizeof(*s));
	s->keep = -1;
	optind = 0; /* GNU getopt permutes: operands may follow options */
	while ((o = getopt_long(*argc, argv, "h", opts, NULL)) != -1) {
		if (o == 's') {
			s->strategy = optarg;
		} else if (o == 'k') {
			errno = 0;
			s->keep = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || s->keep < 0) {
				fprintf(stderr, "backupctl: --keep wants a "
						"number >= 0\n");
				return -1;
			}
		} else if (o == 'd') {
			s->description = optarg;
		} else if (o == 'S') {
			s->schedule = optarg;
		} else if (o == 'j') {
			c->json = 1;
		} else if (o == 'h') {
			s->help = 1;
		} else {
			return -1;
		}
	}
	for (int i = optind; i < *argc; i++)
		argv[1 + n++] = argv[i];
	*argc = 1 + n;
	return 0;
}

static json_t *ctl_schedule_input(const char *pattern, const struct ctl_sub *s,
				  char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *in, *st;

	in = json_pack("{ss}", "pattern", pattern);
	if (!in)
		return NULL;
	if (s->strategy) {
		st = json_loads(s->strategy, 0, &jerr);
		if (!st) {
			snprintf(err, errlen, "--strategy is not JSON: %s",
				 jerr.text);
			json_decref(in);
			return NULL;
		}
		json_object_set_new(in, "strategy", st);
	}
	if (s->keep >= 0)
		json_object_set_new(in, "keep", json_integer(s->keep));
	if (s->description)
		json_object_set_new(in, "description",
				    json_string(s->description));
	return in;
}

/* A stored schedule as shown (with next_execution_time): new. */
static json_t *ctl_schedule_view(json_t *sched)
{
	char *text = bfs_schedule_render(sched, time(NULL));
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	free(text);
	return j;
}

/* Directly on the repository: a strategy is checked here when this
 * host's config has the instance, as a mount would check it; else the
 * daemon that runs the schedule checks it. */
static int ctl_schedule_check_strategy(struct ctl *c, const char *instance,
				       json_t *sched, char *err, size_t errlen)
{
	struct bfs_datastore *ds;
	int ret;

	ret = ctl_open_datastore(c, instance, &ds, err, errlen);
	if (ret == -ENOENT && !json_object_get(c->conf->instances, instance))
		return 0;
	if (ret)
		return ret;
	ret = bfs_datastore_check_strategy(
		ds, json_object_get(sched, "strategy"), err, errlen);
	bfs_datastore_close(ds);
	return ret;
}

static int ctl_schedule_create(struct ctl *c, struct ctl_sub *s, char **argv)
{
	char err[1024] = "", path[4096];
	struct bfs_backend *be;
	struct bfs_repo *repo;
	json_t *in, *sched, *got = NULL;
	char *text;
	int ret;

	in = ctl_schedule_input(argv[3], s, err, sizeof(err));
	if (!in) {
		fprintf(stderr, "backupctl: %s\n",
			*err ? err : "out of memory");
		return EXIT_USAGE;
	}
	text = json_dumps(in, JSON_COMPACT);
	json_decref(in);
	if (!text)
		return 1;
	ret = bfs_schedule_parse(text, strlen(text), &sched, err, sizeof(err));
	if (!ret && !bfs_schedule_name_ok(argv[2])) {
		snprintf(err, sizeof(err), "invalid schedule name '%s'",
			 argv[2]);
		json_decref(sched);
		ret = -EINVAL;
	}
	if (!ret && !c->mount) {
		ret = ctl_schedule_check_strategy(c, argv[1], sched, err,
						  sizeof(err));
		if (ret)
			json_decref(sched);
	}
	if (ret) {
		free(text);
		fprintf(stderr, "backupctl: %s\n", err);
		return 1;
	}
	if (c->mount) {
		json_decref(sched);
		ret = ctl_path(path, sizeof(path), c, argv[1], "schedules",
			       argv[2]);
		if (!ret)
			ret = ctl_mount_write(path, text);
		free(text);
		if (ret)
			return ctl_fail("cannot create schedule", argv[1],
					argv[2], ret);
		got = ctl_mount_json(path, &ret);
	} else {
		free(text);
		if (ctl_open_repo(c, &be, &repo)) {
			json_decref(sched);
			return 1;
		}
		ret = bfs_schedule_put(repo, argv[1], argv[2], sched,
				       time(NULL));
		if (!ret && !bfs_schedule_get(repo, argv[1], argv[2], &sched))
			got = ctl_schedule_view(sched);
		json_decref(sched);
		bfs_repo_close(repo);
		bfs_backend_close(be);
		if (ret)
			return ctl_fail("cannot create schedule", argv[1],
					argv[2], ret);
	}
	if (c->json && got)
		ctl_print_json(got);
	else if (got)
		printf("schedule %s/%s: %s, next %s\n", argv[1], argv[2],
		       json_string_value(json_object_get(got, "pattern")),
		       json_string_value(
			       json_object_get(got, "next_execution_time"))
			       ?: "never");
	json_decref(got);
	return 0;
}

/* One instance's schedules appended to out (views). */
static int ctl_schedules_of(struct ctl *c, struct bfs_repo *repo,
			    const char *inst, json_t *out)
{
	char path[4096];
	json_t *names = json_array(), *v, *s;
	size_t i;
	int ret = 0;

	if (!names)
		return -ENOMEM;
	if (c->mount) {
		ret = ctl_path(path, sizeof(path), c, inst, "schedules", NULL);
		if (!ret)
			ret = ctl_mount_names(path, names);
	} else {
		ret = bfs_schedule_list(repo, inst, ctl_name_collect, names);
	}
	json_array_foreach(names, i, v)
	{
		const char *name = json_string_value(v);
		int err;

		if (c->mount) {
			ctl_path(path, sizeof(path), c, inst, "schedules",
				 name);
			s = ctl_mount_json(path, &err);
		} else {
			json_t *raw;

			err = bfs_schedule_get(repo, inst, name, &raw);
			s = err ? NULL : ctl_schedule_view(raw);
			json_decref(raw);
		}
		if (s)
			json_array_append_new(out, s);
		else
			fprintf(stderr, "backupctl: schedule %s/%s: %s\n", inst,
				name, strerror(err ? -err : ENOMEM));
	}
	json_decref(names);
	return ret;
}

static int ctl_schedule_list(struct ctl *c, int argc, char **argv)
{
	struct bfs_backend *be = NULL;
	struct bfs_repo *repo = NULL;
	json_t *insts = json_array(), *out = json_array(), *v;
	const char *id;
	size_t i;
	int ret = 0;

	if (!insts || !out)
		return 1;
	if (!c->mount && ctl_open_repo(c, &be, &repo))
		return 1;
	if (argc == 3) {
		json_array_append_new(insts, json_string(argv[2]));
	} else {
		json_t *conf;

		if (repo)
			ret = bfs_repo_list_instances(repo, ctl_name_collect,
						      insts);
		json_object_foreach(c->conf->instances, id, conf)
		{
			int seen = 0;

			json_array_foreach(insts, i, v) seen |=
				!strcmp(json_string_value(v), id);
			if (!seen)
				json_array_append_new(insts, json_string(id));
		}
	}
	json_array_foreach(insts, i, v)
	{
		int r = ctl_schedules_of(c, repo, json_string_value(v), out);

		if (r && r != -ENOENT)
			ret = r;
	}
	if (c->json) {
		ctl_print_json(out);
	} else {
		json_array_foreach(out, i, v) printf(
			"%-16s %-20s %-20s next %s keep %lld\n",
			json_string_value(json_object_get(v, "instance")),
			json_string_value(json_object_get(v, "name")),
			json_string_value(json_object_get(v, "pattern")),
			json_string_value(
				json_object_get(v, "next_execution_time"))
				?: "never",
			(long long)json_integer_value(
				json_object_get(v, "keep")));
	}
	json_decref(insts);
	json_decref(out);
	if (repo) {
		bfs_repo_close(repo);
		bfs_backend_close(be);
	}
	if (ret)
		fprintf(stderr, "backupctl: listing schedules failed: %s\n",
			strerror(-ret));
	return ret ? 1 : 0;
}

/* show and delete, of a schedule or an execution */
static int ctl_record_op(struct ctl *c, char **argv, int execution, int del)
{
	const char *dir = execution ? "executions" : "schedules";
	const char *what = execution ? "execution" : "schedule";
	struct bfs_backend *be;
	struct bfs_repo *repo;
	char path[4096], msg[64];
	json_t *j = NULL;
	int ret;

	if (c->mount) {
		ret = ctl_path(path, sizeof(path), c, argv[1], dir, argv[2]);
		if (!ret && del)
			ret = unlink(path) ? -errno : 0;
		else if (!ret)
			j = ctl_mount_json(path, &ret);
	} else {
		if (ctl_open_repo(c, &be, &repo))
			return 1;
		if (del && execution) {
			ret = bfs_execution_get(repo, argv[1], argv[2], &j);
			if (!ret && !strcmp(json_string_value(
						    json_object_get(j, "state"))
						    ?: "",
					    "running"))
				ret = -EBUSY;
			if (!ret || ret == -EIO)
				ret = bfs_execution_delete(repo, argv[1],
							   argv[2]);
		} else if (del) {
			ret = bfs_schedule_delete(repo, argv[1], argv[2]);
		} else {
			json_t *raw = NULL;

			ret = bfs_schedule_get(repo, argv[1], argv[2], &raw);
			j = ret ? NULL : ctl_schedule_view(raw);
			json_decref(raw);
		}
		bfs_repo_close(repo);
		bfs_backend_close(be);
	}
	if (ret) {
		snprintf(msg, sizeof(msg), "cannot %s %s",
			 del ? "delete" : "show", what);
		json_decref(j);
		return ctl_fail(msg, argv[1], argv[2], ret);
	}
	if (del)
		printf("deleted %s %s/%s\n", what, argv[1], argv[2]);
	else
		ctl_print_json(j);
	json_decref(j);
	return 0;
}

int cmd_schedule(struct ctl *c, int argc, char **argv)
{
	struct ctl_sub s;
	const char *sub;

	if (ctl_sub_parse(c, &s, &argc, argv))
		return ctl_sub_usage(ctl_schedule_help, 0);
	if (s.help)
		return ctl_sub_usage(ctl_schedule_help, 1);
	sub = argc > 1 ? argv[1] : "";
	/* argv[1] is the subcommand: shift it off for the helpers */
	if (!strcmp(sub, "create") && argc == 5)
		return ctl_schedule_create(c, &s, argv + 1);
	if (!strcmp(sub, "list") && argc <= 3)
		return ctl_schedule_list(c, argc, argv);
	if (!strcmp(sub, "show") && argc == 4)
		return ctl_record_op(c, argv + 1, 0, 0);
	if (!strcmp(sub, "delete") && argc == 4)
		return ctl_record_op(c, argv + 1, 0, 1);
	return ctl_sub_usage(ctl_schedule_help, 0);
}

static int ctl_execution_list(struct ctl *c, const char *inst,
			      const char *schedule)
{
	struct bfs_backend *be = NULL;
	struct bfs_repo *repo = NULL;
	json_t *ids = NULL, *out = json_array(), *v, *r;
	char path[4096], sched[BFS_NAME_MAX + 1];
	size_t i;
	int ret;

	if (!out)
		return 1;
	if (c->mount) {
		struct dirent *d;
		DIR *dir;

		ids = json_array();
		ret = ctl_path(path, sizeof(path), c, inst, "executions", NULL);
		dir = ret ? NULL : opendir(path);
		if (!dir)
			ret = ret ? ret : -errno;
		/* the directory lists newest first */
		while (dir && (d = readdir(dir))) {
			time_t slot;

			if (d->d_name[0] == '.' ||
			    bfs_execution_id_parse(d->d_name, sched, &slot) ||
			    (schedule && strcmp(sched, schedule)))
				continue;
			json_array_append_new(ids, json_string(d->d_name));
		}
		if (dir)
			closedir(dir);
	} else {
		if (ctl_open_repo(c, &be, &repo))
			return 1;
		ret = bfs_execution_list(repo, inst, schedule, &ids);
	}
	json_array_foreach(ids, i, v)
	{
		int err;

		if (c->mount) {
			ctl_path(path, sizeof(path), c, inst, "executions",
				 json_string_value(v));
			r = ctl_mount_json(path, &err);
		} else {
			err = bfs_execution_get(repo, inst,
						json_string_value(v), &r);
		}
		if (r)
			json_array_append_new(out, r);
	}
	if (c->json) {
		ctl_print_json(out);
	} else {
		json_array_foreach(out, i, v) printf(
			"%-40s %-9s slot %s  %s\n",
			json_string_value(json_object_get(v, "id")),
			json_string_value(json_object_get(v, "state")),
			json_string_value(json_object_get(v, "slot")),
			json_string_value(json_object_get(v, "output")) ?: "");
	}
	json_decref(ids);
	json_decref(out);
	if (repo) {
		bfs_repo_close(repo);
		bfs_backend_close(be);
	}
	if (ret == -ENAMETOOLONG || ret == -EINVAL)
		ret = -ENOENT;
	if (ret)
		fprintf(stderr,
			"backupctl: listing executions of %s failed: "
			"%s\n",
			inst, strerror(-ret));
	return ret ? 1 : 0;
}

int cmd_execution(struct ctl *c, int argc, char **argv)
{
	struct ctl_sub s;
	const char *sub;

	if (ctl_sub_parse(c, &s, &argc, argv))
		return ctl_sub_usage(ctl_execution_help, 0);
	if (s.help)
		return ctl_sub_usage(ctl_execution_help, 1);
	sub = argc > 1 ? argv[1] : "";
	if (!strcmp(sub, "list") && argc == 3)
		return ctl_execution_list(c, argv[2], s.schedule);
	if (!strcmp(sub, "delete") && argc == 4)
		return ctl_record_op(c, argv + 1, 1, 1);
	return ctl_sub_usage(ctl_execution_help, 0);
}
