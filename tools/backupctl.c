// SPDX-License-Identifier: Apache-2.0
/*
 * backupctl: the command line of backupfs.
 *
 * Commands that change an instance (snapshot) run the engine in-process
 * on the state directory, or go through a mount with --mount.  Commands
 * that only read or tidy the repository (list, verify, gc, delete) open
 * it directly and work while a backupfs is mounted.
 *
 * Exit codes: 0 success, 1 failure (verify: a backup bad or not
 * checked), 2 usage error, 3 the instance is busy (EBUSY).  status and
 * restore live in ctl_jobs.c.
 */
#include "bfs_version.h"
#include "ctl.h"
#include "datastore.h"
#include "engine.h"
#include "log.h"
#include "schedule.h"
#include "trove_backup.h"
#include "trove_import.h"
#include "verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static void ctl_usage(FILE *out)
{
	fprintf(out,
		"usage: backupctl --config FILE COMMAND [ARGS]\n\n"
		"commands:\n"
		"  init [--chunk-size SIZE]   create the key file and the "
		"repository\n"
		"  status [INSTANCE] [--json]\n"
		"                             state, running job (progress, "
		"rate, eta)\n"
		"                             and last results; without "
		"--mount: what\n"
		"                             the repository and the state "
		"dir hold\n"
		"  snapshot INSTANCE [--label L] [--strategy JSON] [--wait]\n"
		"                             take a backup (in-process, or "
		"through\n"
		"                             --mount MOUNTPOINT)\n"
		"  restore INSTANCE (TIMESTAMP | --file PATH) "
		"[--to OTHER_INSTANCE] [--wait]\n"
		"                             restore a backup or a file into "
		"INSTANCE\n"
		"                             (or OTHER_INSTANCE); returns "
		"when it ended\n"
		"  list [INSTANCE]            list instances, or an "
		"instance's backups\n"
		"  delete INSTANCE TIMESTAMP  delete a backup\n"
		"  verify INSTANCE [TIMESTAMP | --all]\n"
		"                             read a backup whole (default: "
		"the latest;\n"
		"                             --all: each of INSTANCE's) and "
		"check every\n"
		"                             chunk's tag, the size and the "
		"sha256\n"
		"  verify --all               the same for every backup of "
		"every instance\n"
		"  gc                         remove chunks no backup uses\n"
		"  schedule create INSTANCE NAME PATTERN [--strategy JSON]\n"
		"           [--keep N] [--description TEXT]\n"
		"                             create or replace a schedule "
		"(cron, UTC)\n"
		"  schedule list [INSTANCE] | show INSTANCE NAME | delete "
		"INSTANCE NAME\n"
		"  execution list INSTANCE [--schedule NAME] | delete "
		"INSTANCE ID\n"
		"                             scheduled runs, newest first\n"
		"  tables INSTANCE            what a strategy's \"tables\" "
		"may name\n"
		"                             (asked of the database)\n"
		"  import-trove --container NAME --from LIST.json "
		"[--key-file FILE]\n"
		"                             make Trove's backups in Swift "
		"container\n"
		"                             NAME backups of the repository, "
		"each\n"
		"                             verified once; LIST.json: "
		"openstack\n"
		"                             database backup list|show -f "
		"json, or\n"
		"                             the API's {\"backups\": [...]}; "
		"FILE\n"
		"                             (mode 0600) holds Trove's "
		"backup_aes_cbc_key\n\n"
		"options:\n"
		"  -c, --config FILE          configuration file (required)\n"
		"  -m, --mount DIR            go through a mounted backupfs\n"
		"      --json                 JSON output\n"
		"  -h, --help                 this help (COMMAND --help: the "
		"command's)\n"
		"  -V, --version              version\n\n"
		"exit status: 0 success, 1 failure (verify: a backup BAD or "
		"not checked),\n"
		"             2 usage error, 3 busy (EBUSY: the instance "
		"runs another job)\n");
}

static int ctl_load_config(struct ctl *c)
{
	char err[1024] = "";

	if (!c->config_path) {
		fprintf(stderr, "backupctl: --config FILE is required\n");
		return EXIT_USAGE;
	}
	if (bfs_config_load(c->config_path, &c->conf, err, sizeof(err))) {
		fprintf(stderr, "backupctl: %s\n", err);
		return 1;
	}
	bfs_log_set_level(c->conf->log_level < BFS_LOG_WARN ? c->conf->log_level
							    : BFS_LOG_WARN);
	return 0;
}

/* Open the repository alone (no state directory, no datastores). */
int ctl_open_repo(struct ctl *c, struct bfs_backend **be,
		  struct bfs_repo **repo)
{
	uint8_t master[BFS_KEY_LEN];
	char err[1024] = "";
	int ret;

	ret = bfs_key_file_read(c->conf->key_file, master, err, sizeof(err));
	if (!ret)
		ret = bfs_backend_open(c->conf->backend, be, err, sizeof(err));
	if (!ret) {
		ret = bfs_repo_open(*be, master, repo, err, sizeof(err));
		if (ret)
			bfs_backend_close(*be);
	}
	explicit_bzero(master, sizeof(master));
	if (ret)
		fprintf(stderr, "backupctl: %s\n", err);
	return ret ? 1 : 0;
}

/* ---- init ---- */

static int ctl_mkdir_parent(const char *path)
{
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * The average chunk size of a new repository: --chunk-size, else 4 MiB
 * on Swift, where every chunk is a request and the proxy's cost per
 * request bounds throughput, and 1 MiB elsewhere (finer deduplication).
 */
static int ctl_init_chunking(struct ctl *c, int argc, char **argv,
			     struct bfs_chunker_params *p)
{
	const char *type = json_string_value(
		json_object_get(c->conf->backend, "type"));
	uint64_t avg = type && !strcmp(type, "swift") ? 4u << 20 : 1u << 20;

	if (argc == 3 && !strcmp(argv[1], "--chunk-size")) {
		if (bfs_parse_size(argv[2], &avg))
			avg = 0;
	} else if (argc != 1) {
		fprintf(stderr, "usage: backupctl init [--chunk-size SIZE]\n");
		return EXIT_USAGE;
	}
	if (bfs_chunker_params_for(avg, p)) {
		fprintf(stderr,
			"backupctl: --chunk-size must be a power of two from "
			"256K to 16M, not '%s'\n",
			argv[2]);
		return EXIT_USAGE;
	}
	return 0;
}

static int cmd_init(struct ctl *c, int argc, char **argv)
{
	struct bfs_chunker_params params;
	uint8_t master[BFS_KEY_LEN];
	struct bfs_backend *be;
	char err[1024] = "";
	uint64_t size;
	int ret;

	ret = ctl_init_chunking(c, argc, argv, &params);
	if (ret)
		return ret;
	if (bfs_backend_open(c->conf->backend, &be, err, sizeof(err))) {
		fprintf(stderr, "backupctl: %s\n", err);
		return 1;
	}
	/* Refuse before creating a key that would not match. */
	if (!bfs_backend_stat(be, "config", &size)) {
		fprintf(stderr, "backupctl: the backend already holds a "
				"repository; not creating a new key\n");
		ret = 1;
		goto out_backend;
	}
	ctl_mkdir_parent(c->conf->key_file);
	ret = bfs_key_file_create(c->conf->key_file, master, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "backupctl: %s\n", err);
		ret = 1;
		goto out_backend;
	}
	ret = bfs_repo_init_chunked(be, master, &params);
	explicit_bzero(master, sizeof(master));
	if (ret) {
		fprintf(stderr,
			"backupctl: cannot initialize the repository: "
			"%s\n",
			strerror(-ret));
		unlink(c->conf->key_file);
		ret = 1;
		goto out_backend;
	}
	printf("created key file %s (keep a copy: without it the backups "
	       "cannot be read)\ninitialized the repository (chunks of "
	       "%u KiB on average)\n",
	       c->conf->key_file, params.avg >> 10);
out_backend:
	bfs_backend_close(be);
	return ret;
}

/* ---- snapshot ---- */

static int ctl_show_job(const char *json_text, int as_json)
{
	json_t *rec = json_loads(json_text, 0, NULL);
	const char *state, *error, *backup;
	int ok;

	if (!rec)
		return 1;
	state = json_string_value(json_object_get(rec, "state"));
	error = json_string_value(json_object_get(rec, "error"));
	backup = json_string_value(json_object_get(rec, "backup"));
	ok = state && !strcmp(state, "completed");
	if (as_json)
		printf("%s\n", json_text);
	else if (ok)
		printf("completed: backup %s\n", backup ? backup : "?");
	else
		fprintf(stderr, "backupctl: snapshot %s: %s\n",
			state ? state : "?", error ? error : "unknown error");
	json_decref(rec);
	return ok ? 0 : 1;
}

/* Poll a job record until it is no longer running. */
static int ctl_wait_record(char *(*fetch)(void *), void *arg, int as_json)
{
	struct ctl_bar bar;
	char *text;
	int ret;

	ctl_bar_init(&bar);
	for (;;) {
		json_t *rec, *p, *eta;
		const char *state;

		text = fetch(arg);
		if (!text) {
			fprintf(stderr, "backupctl: the snapshot's record "
					"vanished\n");
			return 1;
		}
		rec = json_loads(text, 0, NULL);
		state = json_string_value(json_object_get(rec, "state"));
		p = json_object_get(rec, "progress");
		if (state && strcmp(state, "running")) {
			json_decref(rec);
			break;
		}
		eta = json_object_get(p, "eta");
		ctl_bar_show(
			&bar, "snapshot",
			(uint64_t)json_integer_value(
				json_object_get(p, "done")),
			(uint64_t)json_integer_value(
				json_object_get(p, "total")),
			(double)json_integer_value(json_object_get(p, "rate")),
			json_is_integer(eta) ? (double)json_integer_value(eta)
					     : -1);
		json_decref(rec);
		free(text);
		usleep(200 * 1000);
	}
	ctl_bar_done(&bar);
	ret = ctl_show_job(text, as_json);
	free(text);
	return ret;
}

struct ctl_snap {
	struct bfs_instance *inst;
	const char *label;
	char path[4096];
};

static char *ctl_fetch_engine(void *arg)
{
	struct ctl_snap *s = arg;
	char *text;
	size_t len;

	return bfs_instance_snapshot_show(s->inst, s->label, &text, &len)
		       ? NULL
		       : text;
}

static char *ctl_fetch_file(void *arg)
{
	struct ctl_snap *s = arg;
	char buf[65536];
	ssize_t n;
	int fd;

	fd = open(s->path, O_RDONLY);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = 0;
	return strdup(buf);
}

static int ctl_snapshot_engine(struct ctl *c, const char *instance,
			       const char *label, const char *strategy)
{
	struct ctl_snap s = {.label = label};
	struct bfs_engine *e;
	char err[1024] = "";
	int ret;

	ret = bfs_engine_open(c->conf, &e, err, sizeof(err));
	c->conf = NULL; /* the engine took it */
	if (ret) {
		fprintf(stderr, "backupctl: %s\n", err);
		return 1;
	}
	ret = bfs_engine_start(e);
	if (!ret)
		ret = bfs_engine_instance(e, instance, &s.inst);
	if (ret) {
		fprintf(stderr, "backupctl: instance '%s': %s\n", instance,
			strerror(-ret));
		ret = 1;
		goto out_close;
	}
	ret = bfs_instance_snapshot_start(s.inst, label, strategy,
					  strlen(strategy), err, sizeof(err));
	if (ret) {
		fprintf(stderr, "backupctl: snapshot refused: %s\n",
			*err ? err : strerror(-ret));
		ret = ret == -EBUSY ? EXIT_BUSY : 1;
		goto out_close;
	}
	/* In-process, the job dies with us: always wait. */
	ret = ctl_wait_record(ctl_fetch_engine, &s, c->json);
out_close:
	bfs_engine_close(e);
	return ret;
}

static int ctl_snapshot_mount(struct ctl *c, const char *instance,
			      const char *label, const char *strategy, int wait)
{
	struct ctl_snap s = {.label = label};
	size_t len = strlen(strategy);
	int fd;

	snprintf(s.path, sizeof(s.path), "%s/instances/%s/snapshots/%s",
		 c->mount, instance, label);
	fd = open(s.path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || (len && write(fd, strategy, len) != (ssize_t)len) ||
	    close(fd)) {
		int err = errno;

		fprintf(stderr, "backupctl: cannot start snapshot '%s': %s\n",
			s.path, strerror(err));
		return err == EBUSY ? EXIT_BUSY : 1;
	}
	if (!wait) {
		printf("started: %s\n", s.path);
		return 0;
	}
	return ctl_wait_record(ctl_fetch_file, &s, c->json);
}

static int cmd_snapshot(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"label", required_argument, NULL, 'l'},
		{"strategy", required_argument, NULL, 's'},
		{"wait", no_argument, NULL, 'w'},
		{0},
	};
	char label[64];
	const char *lab = NULL, *strategy = "";
	int wait = 0, o;

	optind = 0; /* GNU getopt: start over with a new vector */
	while ((o = getopt_long(argc, argv, "l:s:w", opts, NULL)) != -1) {
		if (o == 'l')
			lab = optarg;
		else if (o == 's')
			strategy = optarg;
		else if (o == 'w')
			wait = 1;
		else
			return EXIT_USAGE;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: backupctl snapshot INSTANCE "
				"[--label L] [--strategy JSON] [--wait]\n");
		return EXIT_USAGE;
	}
	if (!lab) {
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(label, sizeof(label), "manual-%Y%m%dT%H%M%SZ", &tm);
		lab = label;
	}
	if (c->mount)
		return ctl_snapshot_mount(c, argv[optind], lab, strategy, wait);
	return ctl_snapshot_engine(c, argv[optind], lab, strategy);
}

/* ---- through a mount ---- */

void ctl_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	printf("%s\n", s ? s : "null");
	free(s);
}

int ctl_path(char *out, size_t len, struct ctl *c, const char *inst,
	     const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/instances/%s/%s%s%s", c->mount, inst,
			 dir, name ? "/" : "", name ? name : "");

	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* Write text into a file under the mount: close() says whether it took. */
int ctl_mount_write(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

json_t *ctl_mount_json(const char *path, int *err)
{
	json_t *j = json_load_file(path, 0, NULL);

	*err = j ? 0 : errno ? -errno : -EIO;
	return j;
}

int ctl_fail(const char *what, const char *a, const char *b, int ret)
{
	fprintf(stderr, "backupctl: %s %s/%s: %s\n", what, a, b,
		ret == -EINVAL ? "refused (see the daemon's log)"
			       : strerror(-ret));
	return 1;
}

/* A backup's user.backupfs.NAME under the mount: new string, or NULL
 * when it has none. */
static char *ctl_mount_xattr(const char *path, const char *name)
{
	char key[64], buf[256];
	ssize_t n;

	snprintf(key, sizeof(key), "user.backupfs.%s", name);
	n = getxattr(path, key, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = 0;
	return strdup(buf);
}

int ctl_name_collect(const char *name, void *arg)
{
	return json_array_append_new(arg, json_string(name)) ? -ENOMEM : 0;
}

static int ctl_cmp_names(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		      json_string_value(*(json_t *const *)b));
}

int ctl_mount_names(const char *dir, json_t *names)
{
	struct dirent *d;
	json_t **v;
	size_t n;
	DIR *dp;
	int ret = 0;

	dp = opendir(dir);
	if (!dp)
		return -errno;
	while (!ret && (d = readdir(dp)))
		if (d->d_name[0] != '.')
			ret = ctl_name_collect(d->d_name, names);
	closedir(dp);
	/* sort in place: the array's own slots, as jansson keeps them */
	n = json_array_size(names);
	v = malloc((n ?: 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(names, i));
	qsort(v, n, sizeof(*v), ctl_cmp_names);
	json_array_clear(names);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(names, v[i]);
	free(v);
	return ret;
}

/* One backup as list prints it, read from its xattrs. */
static void ctl_mount_list_one(const char *path, const char *ts, json_t *out)
{
	enum { LABEL, SIZE, DATASTORE, NKEYS = 7 };
	static const char *const keys[NKEYS] = {
		"label", "size",   "datastore", "format",
		"id",	 "sha256", "parent",
	};
	char *v[NKEYS];
	json_t *o, *x;

	for (size_t i = 0; i < NKEYS; i++)
		v[i] = ctl_mount_xattr(path, keys[i]);
	if (out) {
		o = json_pack("{ss}", "timestamp", ts);
		for (size_t i = 0; o && i < NKEYS; i++) {
			if (!v[i])
				x = json_null();
			else if (i == SIZE)
				x = json_integer(strtoll(v[i], NULL, 10));
			else
				x = json_string(v[i]);
			json_object_set_new(o, keys[i], x);
		}
		json_array_append_new(out, o);
	} else {
		printf("%s  %12s  %-10s %s\n", ts, v[SIZE] ?: "?",
		       v[DATASTORE] ?: "?", v[LABEL] ?: "");
	}
	for (size_t i = 0; i < NKEYS; i++)
		free(v[i]);
}

/* list through the mount: what the daemon shows. */
static int ctl_list_mount(struct ctl *c, const char *instance)
{
	char dir[4096], path[4096 + 64];
	json_t *out = c->json && instance ? json_array() : NULL;
	json_t *names = json_array(), *v;
	size_t i;
	int ret;

	if (instance)
		ret = ctl_path(dir, sizeof(dir), c, instance, "backups", NULL);
	else if (snprintf(dir, sizeof(dir), "%s/instances", c->mount) <
		 (int)sizeof(dir))
		ret = 0;
	else
		ret = -ENAMETOOLONG;
	if (!ret)
		ret = names ? ctl_mount_names(dir, names) : -ENOMEM;
	json_array_foreach(names, i, v)
	{
		const char *name = json_string_value(v);

		if (!instance) {
			printf("%s\n", name);
			continue;
		}
		if (!strcmp(name, "latest")) /* the symlink to the newest */
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		ctl_mount_list_one(path, name, out);
	}
	json_decref(names);
	if (out && !ret)
		ctl_print_json(out);
	json_decref(out);
	if (ret)
		fprintf(stderr, "backupctl: listing %s failed: %s\n", dir,
			strerror(-ret));
	return ret ? 1 : 0;
}

/* ---- list, delete, gc ---- */

static int ctl_print_name(const char *name, void *arg)
{
	(void)arg;
	printf("%s\n", name);
	return 0;
}

/* A backup for list --json; an imported Trove backup says where its
 * bytes are (extra.trove holds no secret: its key is a record's name). */
static json_t *ctl_backup_json(const char *ts, const struct bfs_manifest *m)
{
	char sha[2 * sizeof(m->sha256) + 1];
	json_t *o;

	bfs_hex(m->sha256, sizeof(m->sha256), sha);
	o = json_pack("{sssssIssssssssss?}", "timestamp", ts, "label", m->label,
		      "size", (json_int_t)m->size, "datastore", m->datastore,
		      "format", m->format, "id", m->backup_id, "sha256", sha,
		      "parent", m->parent);
	if (o && bfs_manifest_is_trove(m))
		json_object_set(o, "trove", json_object_get(m->extra, "trove"));
	return o;
}

static int ctl_list_backup(const char *ts, uint64_t size, void *arg)
{
	void **a = arg;
	struct bfs_repo *repo = a[0];
	const char *instance = a[1];
	json_t *out = a[2];
	struct bfs_manifest *m;

	if (bfs_repo_manifest_get(repo, instance, ts, size, &m)) {
		printf("%s  (unreadable)\n", ts);
		return 0;
	}
	if (out)
		json_array_append_new(out, ctl_backup_json(ts, m));
	else
		printf("%s  %12llu  %-10s %s\n", ts,
		       (unsigned long long)m->size, m->datastore, m->label);
	bfs_manifest_free(m);
	return 0;
}

static int cmd_list(struct ctl *c, int argc, char **argv)
{
	struct bfs_backend *be;
	struct bfs_repo *repo;
	json_t *out = NULL;
	int ret;

	if (argc > 2)
		return EXIT_USAGE;
	if (c->mount)
		return ctl_list_mount(c, argc == 2 ? argv[1] : NULL);
	if (ctl_open_repo(c, &be, &repo))
		return 1;
	if (argc == 1) {
		ret = bfs_repo_list_instances(repo, ctl_print_name, NULL);
	} else {
		void *a[3] = {repo, argv[1], NULL};

		out = c->json ? json_array() : NULL;
		a[2] = out;
		ret = bfs_repo_list_backups(repo, argv[1], ctl_list_backup, a);
		if (out) {
			char *s = json_dumps(out, JSON_INDENT(2));

			printf("%s\n", s ? s : "[]");
			free(s);
			json_decref(out);
		}
	}
	bfs_repo_close(repo);
	bfs_backend_close(be);
	if (ret)
		fprintf(stderr, "backupctl: listing failed: %s\n",
			strerror(-ret));
	return ret ? 1 : 0;
}

static int cmd_delete(struct ctl *c, int argc, char **argv)
{
	struct bfs_backend *be;
	struct bfs_repo *repo;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: backupctl delete INSTANCE TIMESTAMP\n");
		return EXIT_USAGE;
	}
	if (c->mount) {
		char path[4096];

		/* rm backups/TS: the daemon deletes it and says so in the
		 * instance's events */
		ret = ctl_path(path, sizeof(path), c, argv[1], "backups",
			       argv[2]);
		if (!ret && unlink(path))
			ret = -errno;
	} else {
		if (ctl_open_repo(c, &be, &repo))
			return 1;
		ret = bfs_repo_manifest_delete(repo, argv[1], argv[2]);
		bfs_repo_close(repo);
		bfs_backend_close(be);
	}
	if (ret) {
		fprintf(stderr, "backupctl: cannot delete %s/%s: %s\n", argv[1],
			argv[2], strerror(-ret));
		return 1;
	}
	printf("deleted %s/%s (run gc to reclaim its chunks)\n", argv[1],
	       argv[2]);
	return 0;
}

static int cmd_gc(struct ctl *c, int argc, char **argv)
{
	struct bfs_gc_stats st = {0};
	struct bfs_backend *be;
	struct bfs_repo *repo;
	int ret;

	(void)argv;
	if (argc != 1)
		return EXIT_USAGE;
	if (ctl_open_repo(c, &be, &repo))
		return 1;
	ret = bfs_repo_gc(repo, &st);
	bfs_repo_close(repo);
	bfs_backend_close(be);
	if (ret) {
		fprintf(stderr, "backupctl: gc failed: %s\n",
			ret == -EBUSY ? "a backup is being written; try later"
				      : strerror(-ret));
		return 1;
	}
	if (c->json)
		printf("{\"manifests\": %llu, \"chunks\": %llu, "
		       "\"removed\": %llu, \"bytes_removed\": %llu}\n",
		       (unsigned long long)st.manifests,
		       (unsigned long long)st.chunks_total,
		       (unsigned long long)st.chunks_removed,
		       (unsigned long long)st.bytes_removed);
	else
		printf("gc: %llu backups, %llu chunks, removed %llu chunks "
		       "(%llu bytes)\n",
		       (unsigned long long)st.manifests,
		       (unsigned long long)st.chunks_total,
		       (unsigned long long)st.chunks_removed,
		       (unsigned long long)st.bytes_removed);
	return 0;
}

/* ---- import-trove ---- */

struct ctl_import {
	json_t *out; /* --json: the outcomes, else NULL */
};

static json_t *ctl_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void ctl_import_json(json_t *out, const struct bfs_trove_outcome *o)
{
	json_t *e = json_object();

	if (!e)
		return;
	json_object_set_new(e, "id", json_string(o->id));
	json_object_set_new(e, "result",
			    json_string(bfs_trove_result_name(o->result)));
	json_object_set_new(e, "instance", ctl_str_or_null(o->instance));
	json_object_set_new(e, "timestamp", ctl_str_or_null(o->timestamp));
	json_object_set_new(e, "object", ctl_str_or_null(o->object));
	json_object_set_new(e, "size",
			    o->result == BFS_TROVE_IMPORTED
				    ? json_integer((json_int_t)o->size)
				    : json_null());
	json_object_set_new(e, "layout", ctl_str_or_null(o->layout));
	json_object_set_new(e, "kdf", ctl_str_or_null(o->kdf));
	json_object_set_new(e, "reason",
			    ctl_str_or_null(o->reason[0] ? o->reason : NULL));
	json_array_append_new(out, e);
}

/* One line per entry as soon as it is done: a long import shows its
 * progress. */
static void ctl_import_report(const struct bfs_trove_outcome *o, void *arg)
{
	struct ctl_import *ci = arg;

	if (ci->out) {
		ctl_import_json(ci->out, o);
		return;
	}
	switch (o->result) {
	case BFS_TROVE_IMPORTED:
		printf("imported %s -> instances/%s/backups/%s (%llu bytes, "
		       "%s, %s)\n",
		       o->id, o->instance, o->timestamp,
		       (unsigned long long)o->size, o->layout, o->kdf);
		break;
	case BFS_TROVE_ALREADY:
		printf("already imported %s -> instances/%s/backups/%s\n",
		       o->id, o->instance, o->timestamp);
		break;
	default:
		printf("%s %s: %s\n", bfs_trove_result_name(o->result), o->id,
		       o->reason);
	}
	fflush(stdout);
}

/* The legacy container: the repository's Swift account, never created. */
static int ctl_open_legacy(struct ctl *c, const char *container,
			   struct bfs_backend **out)
{
	char err[1024] = "";

	if (!bfs_backend_open_container(c->conf->backend, container, out, err,
					sizeof(err)))
		return 0;
	fprintf(stderr, "backupctl: import-trove: %s\n", err);
	return 1;
}

static int ctl_import_run(struct ctl *c, const char *container,
			  const struct bfs_trove_list *list, const char *pass)
{
	struct ctl_import ci = {.out = c->json ? json_array() : NULL};
	unsigned n[BFS_TROVE_NRESULTS];
	struct bfs_trove_import imp = {
		.container = container,
		.state_dir = c->conf->state_dir,
		.pass = pass,
		.report = ctl_import_report,
		.arg = &ci,
	};
	struct bfs_backend *be;
	int ret, ran = 0;

	if (ctl_open_repo(c, &be, &imp.repo)) {
		json_decref(ci.out);
		return 1;
	}
	ret = ctl_open_legacy(c, container, &imp.legacy);
	if (!ret) {
		ret = bfs_trove_import_run(&imp, list, n);
		ran = !ret;
		bfs_backend_close(imp.legacy);
		if (ret)
			fprintf(stderr, "backupctl: import-trove: %s\n",
				strerror(-ret));
		ret = ret || n[BFS_TROVE_MISSING] || n[BFS_TROVE_FAILED];
	}
	bfs_repo_close(imp.repo);
	bfs_backend_close(be);
	if (ci.out && ran) {
		char *s = json_dumps(ci.out, JSON_INDENT(2));

		printf("%s\n", s ? s : "[]");
		free(s);
	} else if (ran) {
		printf("import-trove: %u imported, %u already imported, "
		       "%u skipped, %u missing, %u failed\n",
		       n[BFS_TROVE_IMPORTED], n[BFS_TROVE_ALREADY],
		       n[BFS_TROVE_SKIPPED], n[BFS_TROVE_MISSING],
		       n[BFS_TROVE_FAILED]);
	}
	json_decref(ci.out);
	return ret ? 1 : 0;
}

static int ctl_import_usage(void)
{
	fprintf(stderr, "usage: backupctl import-trove --container NAME "
			"--from LIST.json [--key-file FILE] [--json]\n");
	return EXIT_USAGE;
}

static int cmd_import_trove(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"container", required_argument, NULL, 'C'},
		{"from", required_argument, NULL, 'f'},
		{"key-file", required_argument, NULL, 'k'},
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	const char *container = NULL, *from = NULL, *key_file = NULL;
	struct bfs_trove_list list;
	char err[1024] = "", *pass = NULL;
	int o, ret;

	optind = 0; /* GNU getopt: start over with a new vector */
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'C')
			container = optarg;
		else if (o == 'f')
			from = optarg;
		else if (o == 'k')
			key_file = optarg;
		else if (o == 'j')
			c->json = 1;
		else
			return ctl_import_usage();
	}
	if (!container || !*container || !from || optind != argc)
		return ctl_import_usage();
	if (key_file &&
	    bfs_trove_key_file_read(key_file, &pass, err, sizeof(err))) {
		fprintf(stderr, "backupctl: %s\n", err);
		return 1;
	}
	ret = bfs_trove_list_load(from, &list, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "backupctl: %s\n", err);
		bfs_trove_pass_free(pass);
		return 1;
	}
	ret = ctl_import_run(c, container, &list, pass);
	bfs_trove_list_release(&list);
	bfs_trove_pass_free(pass);
	return ret;
}

/* ---- verify ---- */

/* Bad chunks a text report names per backup (--json: BFS_VERIFY_MAX_BAD) */
#define CTL_VERIFY_SHOW 10

enum ctl_verdict { CTL_OK, CTL_BAD, CTL_ERROR, CTL_GONE, CTL_NVERDICTS };

static const char *const ctl_verdict_json[] = {"ok", "bad", "error", "gone"};
static const char *const ctl_verdict_text[] = {"ok", "BAD", "ERROR", "gone"};

/* A backup to verify; size from a listing, or BFS_SIZE_UNKNOWN. */
struct ctl_target {
	char *instance;
	char ts[BFS_TIMESTAMP_LEN + 1];
	uint64_t size;
};

struct ctl_targets {
	struct ctl_target *v;
	size_t n;
	const char *instance; /* the instance being listed */
};

struct ctl_verify {
	struct bfs_repo *repo;
	struct bfs_verifier *v;
	json_t *out;		    /* --json: the results, else NULL */
	struct bfs_verify_result r; /* of the backup being verified */
	unsigned n[CTL_NVERDICTS];  /* backups per verdict */
	double bar_at;		    /* when the bar was last drawn */
	int bar;		    /* a bar is on the terminal */
};

static void ctl_targets_release(struct ctl_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].instance);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static int ctl_target_add(struct ctl_targets *t, const char *instance,
			  const char *ts, uint64_t size)
{
	struct ctl_target *grown = realloc(t->v, (t->n + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	t->v = grown;
	grown[t->n].instance = strdup(instance);
	if (!grown[t->n].instance)
		return -ENOMEM;
	snprintf(grown[t->n].ts, sizeof(grown[t->n].ts), "%s", ts);
	grown[t->n].size = size;
	t->n++;
	return 0;
}

static int ctl_target_listed(const char *ts, uint64_t size, void *arg)
{
	struct ctl_targets *t = arg;

	return ctl_target_add(t, t->instance, ts, size);
}

/* Every backup of instance, oldest first; latest_only: the newest. */
static int ctl_targets_of(struct bfs_repo *repo, const char *instance,
			  int latest_only, struct ctl_targets *t)
{
	size_t first = t->n;
	int ret;

	t->instance = instance;
	ret = bfs_repo_list_backups(repo, instance, ctl_target_listed, t);
	if (ret || !latest_only || t->n - first < 2)
		return ret;
	for (size_t i = first; i < t->n - 1; i++)
		free(t->v[i].instance);
	t->v[first] = t->v[t->n - 1];
	t->n = first + 1;
	return 0;
}

/* Every backup of every instance. */
static int ctl_targets_all(struct bfs_repo *repo, struct ctl_targets *t)
{
	json_t *names = json_array();
	size_t i;
	int ret;

	if (!names)
		return -ENOMEM;
	ret = bfs_repo_list_instances(repo, ctl_name_collect, names);
	for (i = 0; !ret && i < json_array_size(names); i++) {
		const char *name = json_string_value(json_array_get(names, i));

		ret = ctl_targets_of(repo, name, 0, t);
	}
	json_decref(names);
	return ret;
}

static double ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ctl_progress(uint64_t done, uint64_t total)
{
	int width = 30, fill;
	double pct;

	if (!isatty(STDERR_FILENO))
		return;
	pct = total ? 100.0 * (double)(done < total ? done : total) /
			      (double)total
		    : 0;
	fill = (int)(pct * width / 100);
	fprintf(stderr, "\r[%.*s%*s] %5.1f%% %8.1f MiB", fill,
		"##############################", width - fill, "", pct,
		(double)done / (1 << 20));
	fflush(stderr);
}

/* verify's bar, redrawn at most ten times a second. */
static void ctl_verify_progress(uint64_t done, uint64_t total, void *arg)
{
	struct ctl_verify *cv = arg;
	double now = ctl_now();

	if (!isatty(STDERR_FILENO) || (cv->bar && now - cv->bar_at < 0.1))
		return;
	cv->bar = 1;
	cv->bar_at = now;
	ctl_progress(done, total);
}

static void ctl_verify_clear_bar(struct ctl_verify *cv)
{
	if (!cv->bar)
		return;
	fprintf(stderr, "\r%64s\r", "");
	fflush(stderr);
	cv->bar = 0;
}

static double ctl_mb_per_s(const struct bfs_verify_result *r)
{
	return (double)r->bytes / (r->seconds > 1e-3 ? r->seconds : 1e-3) / 1e6;
}

static json_t *ctl_verify_bad_json(const struct bfs_verify_result *r)
{
	json_t *a = json_array();
	char hex[2 * BFS_ID_LEN + 1];

	for (size_t i = 0; a && i < r->nbad && i < BFS_VERIFY_MAX_BAD; i++) {
		const struct bfs_verify_chunk *b = &r->bad[i];

		bfs_hex(b->id, BFS_ID_LEN, hex);
		json_array_append_new(
			a, json_pack("{sssIsIss}", "id", hex, "offset",
				     (json_int_t)b->offset, "size",
				     (json_int_t)b->size, "reason", b->why));
	}
	return a;
}

static void ctl_verify_json(struct ctl_verify *cv, const struct ctl_target *t,
			    const struct bfs_manifest *m, int verdict,
			    const char *reason)
{
	const struct bfs_verify_result *r = &cv->r;
	const char *object = m && bfs_manifest_is_trove(m)
				     ? bfs_trove_backup_str(m, "object")
				     : NULL;
	json_t *e = json_object();

	if (!e)
		return;
	json_object_set_new(e, "instance", json_string(t->instance));
	json_object_set_new(e, "timestamp", json_string(t->ts));
	json_object_set_new(e, "result",
			    json_string(ctl_verdict_json[verdict]));
	json_object_set_new(e, "reason", ctl_str_or_null(reason));
	json_object_set_new(e, "format", ctl_str_or_null(m ? m->format : NULL));
	json_object_set_new(
		e, "size", m ? json_integer((json_int_t)m->size) : json_null());
	json_object_set_new(e, "chunks",
			    m ? json_integer((json_int_t)m->nchunks)
			      : json_null());
	json_object_set_new(e, "object", ctl_str_or_null(object));
	json_object_set_new(e, "bytes_checked",
			    json_integer((json_int_t)r->bytes));
	json_object_set_new(e, "seconds", json_real(r->seconds));
	json_object_set_new(e, "mb_per_s", json_real(ctl_mb_per_s(r)));
	json_object_set_new(e, "bad_chunks", ctl_verify_bad_json(r));
	json_object_set_new(e, "bad_chunks_total",
			    json_integer((json_int_t)r->nbad));
	json_array_append_new(cv->out, e);
}

/* A bad native backup: a line per bad chunk, at most CTL_VERIFY_SHOW. */
static void ctl_verify_bad_lines(const struct ctl_target *t,
				 const struct bfs_verify_result *r)
{
	char hex[2 * BFS_ID_LEN + 1];
	size_t i;

	for (i = 0; i < r->nbad && i < CTL_VERIFY_SHOW; i++) {
		bfs_hex(r->bad[i].id, BFS_ID_LEN, hex);
		printf("BAD %s/%s: chunk %s at offset %llu: %s\n", t->instance,
		       t->ts, hex, (unsigned long long)r->bad[i].offset,
		       r->bad[i].why);
	}
	if (r->nbad > i)
		printf("BAD %s/%s: %zu bad chunks in all, the first %zu shown "
		       "(--json lists up to %d)\n",
		       t->instance, t->ts, r->nbad, i, BFS_VERIFY_MAX_BAD);
}

static void ctl_verify_text(struct ctl_verify *cv, const struct ctl_target *t,
			    const struct bfs_manifest *m, int verdict,
			    const char *reason)
{
	const struct bfs_verify_result *r = &cv->r;

	if (verdict == CTL_OK && bfs_manifest_is_trove(m))
		printf("ok %s/%s (%llu bytes, Trove object %s, %.1f MB/s)\n",
		       t->instance, t->ts, (unsigned long long)m->size,
		       bfs_trove_backup_str(m, "object") ?: "?",
		       ctl_mb_per_s(r));
	else if (verdict == CTL_OK)
		printf("ok %s/%s (%llu bytes, %zu chunks, %.1f MB/s)\n",
		       t->instance, t->ts, (unsigned long long)m->size,
		       m->nchunks, ctl_mb_per_s(r));
	else if (verdict == CTL_BAD && r->nbad)
		ctl_verify_bad_lines(t, r);
	else
		printf("%s %s/%s: %s\n", ctl_verdict_text[verdict], t->instance,
		       t->ts, reason);
	fflush(stdout);
}

static void ctl_verify_report(struct ctl_verify *cv, const struct ctl_target *t,
			      const struct bfs_manifest *m, int verdict,
			      const char *reason)
{
	ctl_verify_clear_bar(cv);
	cv->n[verdict]++;
	if (cv->out)
		ctl_verify_json(cv, t, m, verdict, reason);
	else
		ctl_verify_text(cv, t, m, verdict, reason);
}

/* Load the manifest: 0, or the verdict on a backup that has none. */
static int ctl_verify_manifest(struct ctl_verify *cv,
			       const struct ctl_target *t,
			       struct bfs_manifest **m, const char **reason)
{
	int ret =
		bfs_repo_manifest_get(cv->repo, t->instance, t->ts, t->size, m);

	if (!ret)
		return 0;
	if (ret == -ENOENT && t->size != BFS_SIZE_UNKNOWN) {
		/* listed a moment ago: deleted since, not damaged */
		*reason = "deleted while verifying";
		return CTL_GONE;
	}
	if (ret == -ENOENT) {
		*reason = "no such backup";
		return CTL_ERROR;
	}
	if (ret == -EIO) {
		*reason = "the manifest is unreadable (failed authentication, "
			  "or malformed)";
		return CTL_BAD;
	}
	*reason = strerror(-ret);
	return CTL_ERROR;
}

/* The manifest is no longer there (not: cannot be read). */
static int ctl_backup_gone(struct ctl_verify *cv, const struct ctl_target *t,
			   uint64_t size)
{
	struct bfs_manifest *m = NULL;
	int ret;

	ret = bfs_repo_manifest_get(cv->repo, t->instance, t->ts, size, &m);
	bfs_manifest_free(m);
	return ret == -ENOENT;
}

static void ctl_verify_one(struct ctl_verify *cv, const struct ctl_target *t)
{
	struct bfs_manifest *m = NULL;
	const char *reason = NULL;
	int verdict;

	memset(&cv->r, 0, sizeof(cv->r));
	verdict = ctl_verify_manifest(cv, t, &m, &reason);
	if (!m) {
		ctl_verify_report(cv, t, NULL, verdict, reason);
		return;
	}
	switch (bfs_verify_backup(cv->v, m, ctl_verify_progress, cv, &cv->r)) {
	case BFS_VERIFY_OK:
		verdict = CTL_OK;
		break;
	case BFS_VERIFY_BAD:
		verdict = CTL_BAD;
		break;
	default:
		verdict = CTL_ERROR;
	}
	reason = verdict == CTL_OK ? NULL : cv->r.reason;
	/* chunks gc removed under a backup deleted meanwhile */
	if (verdict != CTL_OK && ctl_backup_gone(cv, t, m->size)) {
		verdict = CTL_GONE;
		reason = "deleted while verifying";
	}
	ctl_verify_report(cv, t, m, verdict, reason);
	bfs_manifest_free(m);
}

static int ctl_verify_run(struct ctl *c, struct bfs_repo *repo,
			  const struct ctl_targets *t, int summary)
{
	struct ctl_verify *cv = calloc(1, sizeof(*cv));
	int ret;

	if (!cv)
		return 1;
	cv->repo = repo;
	cv->out = c->json ? json_array() : NULL;
	ret = bfs_verifier_new(repo, c->conf->backend, c->conf->state_dir,
			       c->conf->readahead, &cv->v);
	if (ret) {
		fprintf(stderr, "backupctl: verify: %s\n", strerror(-ret));
		goto out_free;
	}
	for (size_t i = 0; i < t->n; i++)
		ctl_verify_one(cv, &t->v[i]);
	bfs_verifier_free(cv->v);
	if (cv->out) {
		char *s = json_dumps(cv->out, JSON_INDENT(2));

		printf("%s\n", s ? s : "[]");
		free(s);
	} else if (summary) {
		printf("verify: %u ok, %u bad, %u errors, %u gone\n",
		       cv->n[CTL_OK], cv->n[CTL_BAD], cv->n[CTL_ERROR],
		       cv->n[CTL_GONE]);
	}
	ret = cv->n[CTL_BAD] || cv->n[CTL_ERROR];
out_free:
	json_decref(cv->out);
	free(cv);
	return ret ? 1 : 0;
}

static int ctl_verify_usage(void)
{
	fprintf(stderr, "usage: backupctl verify INSTANCE [TIMESTAMP | --all] "
			"[--json]\n"
			"       backupctl verify --all [--json]\n");
	return EXIT_USAGE;
}

/* What to verify: a backup, an instance's latest or all, or all. */
static int ctl_verify_targets(struct bfs_repo *repo, const char *instance,
			      const char *ts, int all, struct ctl_targets *t)
{
	int ret;

	if (ts)
		return ctl_target_add(t, instance, ts, BFS_SIZE_UNKNOWN);
	ret = instance ? ctl_targets_of(repo, instance, !all, t)
		       : ctl_targets_all(repo, t);
	if (!ret && instance && !t->n)
		ret = -ENOENT;
	return ret;
}

static int cmd_verify(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"all", no_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	const char *instance = NULL, *ts = NULL;
	struct ctl_targets t = {0};
	struct bfs_backend *be;
	struct bfs_repo *repo;
	int all = 0, o, ret;
	int64_t when;

	optind = 0; /* GNU getopt: start over with a new vector */
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'a')
			all = 1;
		else if (o == 'j')
			c->json = 1;
		else
			return ctl_verify_usage();
	}
	if (optind < argc)
		instance = argv[optind++];
	if (optind < argc)
		ts = argv[optind++];
	if (optind != argc || (!instance && !all) || (ts && all) ||
	    (instance && !bfs_name_ok(instance)) ||
	    (ts && bfs_timestamp_parse(ts, &when)))
		return ctl_verify_usage();
	if (ctl_open_repo(c, &be, &repo))
		return 1;
	ret = ctl_verify_targets(repo, instance, ts, all, &t);
	if (ret == -ENOENT)
		fprintf(stderr,
			"backupctl: verify: instance '%s' has no backups\n",
			instance);
	else if (ret)
		fprintf(stderr, "backupctl: verify: listing failed: %s\n",
			strerror(-ret));
	else
		ret = ctl_verify_run(c, repo, &t, all);
	ctl_targets_release(&t);
	bfs_repo_close(repo);
	bfs_backend_close(be);
	return ret ? 1 : 0;
}

/* ---- tables ---- */

/* Open INSTANCE's datastore as the config describes it, without the
 * engine (no recovery, no repository): -ENOENT when the config has no
 * such instance. */
int ctl_open_datastore(struct ctl *c, const char *instance,
		       struct bfs_datastore **ds, char *err, size_t errlen)
{
	json_t *conf = json_object_get(c->conf->instances, instance);
	char dir[4096];

	if (!conf) {
		snprintf(err, errlen, "no instance '%s' in the config",
			 instance);
		return -ENOENT;
	}
	snprintf(dir, sizeof(dir), "%s/instances/%s", c->conf->state_dir,
		 instance);
	return bfs_datastore_open(instance, conf, dir, ds, err, errlen);
}

/* What a strategy's "tables" may name in INSTANCE, asked of the
 * database itself (no repository needed). */
static int cmd_tables(struct ctl *c, int argc, char **argv)
{
	struct bfs_datastore *ds;
	char err[1024] = "";
	json_t *tables, *t;
	size_t i;
	int ret;

	if (argc == 3 && !strcmp(argv[2], "--json")) {
		c->json = 1;
		argc--;
	}
	if (argc != 2 || !bfs_name_ok(argv[1])) {
		fprintf(stderr, "usage: backupctl tables INSTANCE [--json]\n");
		return EXIT_USAGE;
	}
	ret = ctl_open_datastore(c, argv[1], &ds, err, sizeof(err));
	if (ret == -ENOENT) {
		fprintf(stderr, "backupctl: %s\n", err);
		return 1;
	}
	if (!ret) {
		ret = bfs_datastore_tables(ds, &tables, err, sizeof(err));
		bfs_datastore_close(ds);
	}
	if (ret) {
		fprintf(stderr, "backupctl: tables of '%s': %s\n", argv[1],
			err);
		return 1;
	}
	if (c->json) {
		char *text = json_dumps(tables, JSON_INDENT(2));

		printf("%s\n", text ? text : "[]");
		free(text);
	} else {
		json_array_foreach(tables, i, t)
			printf("%s\n", json_string_value(t));
	}
	json_decref(tables);
	return 0;
}

/* `backupctl COMMAND --help`: usage, what it does, its options. */
static const char ctl_help_init[] =
	"usage: backupctl --config FILE init [--chunk-size SIZE]\n\n"
	"Create the key file (key_file, mode 0600) and the repository in\n"
	"the configured backend.  Refuses to overwrite an existing key.\n\n"
	"  --chunk-size SIZE  average chunk size, a power of two from 256K\n"
	"                     to 16M (default 4M on Swift, where each chunk\n"
	"                     is a request; 1M on a local backend)\n";
static const char ctl_help_status[] =
	"usage: backupctl --config FILE [--mount DIR] status [INSTANCE] "
	"[--json]\n\n"
	"With --mount: each instance's status file of the mounted backupfs\n"
	"(state, running job with done/total/percent/rate/eta, last result\n"
	"of each kind).  Without: what the repository and this host's state\n"
	"directory hold (backups, latest, last results, a job journal left\n"
	"by a running or interrupted job); the live state is then null.\n\n"
	"  --json    one JSON object (INSTANCE given) or an array\n";
static const char ctl_help_snapshot[] =
	"usage: backupctl --config FILE [--mount DIR] snapshot INSTANCE\n"
	"       [--label L] [--strategy JSON] [--wait]\n\n"
	"Take a backup of INSTANCE.  Without --mount it runs in-process on\n"
	"the state directory (and always waits); with --mount it creates\n"
	"snapshots/<label> in the mount.\n\n"
	"  --label L         the job's label (default manual-<time>)\n"
	"  --strategy JSON   the datastore's strategy\n"
	"  --wait            wait for the end, with a progress bar on a\n"
	"                    terminal and plain lines otherwise\n";
static const char ctl_help_restore[] =
	"usage: backupctl --config FILE [--mount DIR] restore INSTANCE\n"
	"       (TIMESTAMP | --file PATH) [--to OTHER_INSTANCE] [--wait] "
	"[--json]\n\n"
	"Restore INSTANCE's backup TIMESTAMP, or the file PATH, into\n"
	"INSTANCE or OTHER_INSTANCE.  With --mount the bytes are copied into\n"
	"instances/<target>/restore/ and close() gives the result; without,\n"
	"the same restore runs in-process on the state directory.  It\n"
	"returns when the restore has ended (--wait is implied), showing\n"
	"spooling, verifying and applying progress on stderr.\n\n"
	"  --file PATH            restore this file instead of a backup\n"
	"  --to OTHER_INSTANCE    restore into another instance\n"
	"  --wait                 accepted; the command always waits\n"
	"  --json                 print the result as JSON\n\n"
	"exit status: 0 restored, 1 failed (the reason is printed),\n"
	"             2 usage error, 3 the target instance is busy\n";
static const char ctl_help_list[] =
	"usage: backupctl --config FILE [--json] list [INSTANCE]\n\n"
	"List the repository's instances, or INSTANCE's backups (--json:\n"
	"timestamp, id, label, size, sha256, datastore, format, parent).\n"
	"With --mount: what the mount shows (its instances; the backups'\n"
	"xattrs).\n";
static const char ctl_help_delete[] =
	"usage: backupctl --config FILE delete INSTANCE TIMESTAMP\n\n"
	"Delete a backup (its manifest); gc reclaims its chunks.  With\n"
	"--mount: rm of the backup's file, which the daemon reports as a\n"
	"backup.delete.end event.\n";
static const char ctl_help_verify[] =
	"usage: backupctl --config FILE verify INSTANCE [TIMESTAMP | --all] "
	"[--json]\n"
	"       backupctl --config FILE verify --all [--json]\n\n"
	"Read backups whole and check every chunk's tag, the size and the\n"
	"sha256 (default: INSTANCE's latest).\n\n"
	"  --all     every backup of INSTANCE, or of every instance\n"
	"  --json    one JSON object per backup\n";
static const char ctl_help_gc[] = "usage: backupctl --config FILE gc\n\n"
				  "Remove the chunks no backup uses.\n";
static const char ctl_help_tables[] =
	"usage: backupctl --config FILE tables INSTANCE [--json]\n\n"
	"What a strategy's \"tables\" may name (asked of the database).\n";
static const char ctl_help_import_trove[] =
	"usage: backupctl --config FILE import-trove --container NAME\n"
	"       --from LIST.json [--key-file FILE] [--json]\n\n"
	"Make Trove's backups in Swift container NAME backups of the\n"
	"repository, each verified once.\n\n"
	"  --container NAME   Trove's container (database_backups)\n"
	"  --from LIST.json   openstack database backup list|show -f json\n"
	"  --key-file FILE    Trove's backup_aes_cbc_key (mode 0600)\n"
	"  --json             a JSON array of outcomes\n";

static const struct {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *help; /* NULL: the command handles --help itself */
} ctl_commands[] = {
	{"init", cmd_init, ctl_help_init},
	{"status", cmd_status, ctl_help_status},
	{"snapshot", cmd_snapshot, ctl_help_snapshot},
	{"restore", cmd_restore, ctl_help_restore},
	{"list", cmd_list, ctl_help_list},
	{"delete", cmd_delete, ctl_help_delete},
	{"gc", cmd_gc, ctl_help_gc},
	{"import-trove", cmd_import_trove, ctl_help_import_trove},
	{"verify", cmd_verify, ctl_help_verify},
	{"tables", cmd_tables, ctl_help_tables},
	{"schedule", cmd_schedule, ctl_schedule_help},
	{"execution", cmd_execution, ctl_execution_help},
};

/* COMMAND ... --help (or -h) anywhere before "--". */
static int ctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"mount", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct ctl c = {0};
	int o, ret;

	/* "+": stop at the command; its own options follow it. */
	while ((o = getopt_long(argc, argv, "+c:m:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			c.config_path = optarg;
			break;
		case 'm':
			c.mount = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		case 'V':
			printf("backupctl %s\n", BFS_VERSION);
			return 0;
		default:
			ctl_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]);
	     i++) {
		if (strcmp(argv[optind], ctl_commands[i].name))
			continue;
		if (ctl_commands[i].help &&
		    ctl_wants_help(argc - optind, argv + optind)) {
			fputs(ctl_commands[i].help, stdout);
			return 0;
		}
		ret = ctl_load_config(&c);
		if (!ret)
			ret = ctl_commands[i].run(&c, argc - optind,
						  argv + optind);
		bfs_config_free(c.conf);
		return ret;
	}
	fprintf(stderr, "backupctl: unknown command '%s'\n", argv[optind]);
	ctl_usage(stderr);
	return EXIT_USAGE;
}
