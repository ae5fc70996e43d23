// SPDX-License-Identifier: Apache-2.0
/*
 * backupctl status and restore, and the progress display.
 *
 * status: through --mount it reads each instance's status file (the live
 * state of the mounted daemon).  Without a mount it reports what the
 * repository and this host's state directory hold: the backups, the last
 * result of each kind, and a job journal left by a running or interrupted
 * job; the live state is then unknown ("state": null).
 *
 * restore: through --mount it copies the backup (or --file PATH) into
 * instances/<target>/restore/ and reports what close() returns (the
 * restore runs within close()); without a mount it runs the same restore
 * in-process on the state directory (refused while a backupfs using it is
 * mounted).  Either way the command returns when the restore has ended,
 * so --wait is the default and accepted for symmetry with snapshot.
 */
#include "ctl.h"
#include "engine.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CTL_COPY_BYTES (1u << 20)
#define CTL_POLL_US    (200 * 1000)

/* ---- the progress display ---- */

void ctl_bar_init(struct ctl_bar *b)
{
	memset(b, 0, sizeof(*b));
	b->tty = isatty(STDERR_FILENO);
	b->last_step = -1;
}

static void ctl_human_secs(double s, char *out, size_t len)
{
	if (s < 0)
		snprintf(out, len, "?");
	else if (s < 120)
		snprintf(out, len, "%.0fs", s);
	else if (s < 7200)
		snprintf(out, len, "%.0fm", s / 60);
	else
		snprintf(out, len, "%.1fh", s / 3600);
}

void ctl_bar_show(struct ctl_bar *b, const char *phase, uint64_t done,
		  uint64_t total, double rate, double eta)
{
	double pct = total ? 100.0 * (double)(done < total ? done : total) /
				     (double)total
			   : 0;
	int width = 30, fill = (int)(pct * width / 100), step;
	char etas[16];
	struct timespec now;
	double t;

	clock_gettime(CLOCK_MONOTONIC, &now);
	t = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	if (strcmp(b->cur, phase)) {
		snprintf(b->cur, sizeof(b->cur), "%s", phase);
		b->t0 = t;
	}
	if (rate <= 0 && t - b->t0 > 0.05)
		rate = (double)done / (t - b->t0);
	if (eta < 0 && rate > 0 && done < total)
		eta = (double)(total - done) / rate;
	ctl_human_secs(eta, etas, sizeof(etas));
	if (b->tty) {
		fprintf(stderr,
			"\r%-10.10s [%.*s%*s] %5.1f%% %9.1f MiB %7.1f MiB/s "
			"eta %-5s",
			phase, fill, "##############################",
			width - fill, "", pct, (double)done / (1 << 20),
			rate / (1 << 20), etas);
		fflush(stderr);
		b->drawn = 1;
		return;
	}
	step = (int)(pct / 10);
	if (!strcmp(b->phase, phase) && step == b->last_step)
		return;
	snprintf(b->phase, sizeof(b->phase), "%s", phase);
	b->last_step = step;
	fprintf(stderr, "%s: %.0f%% (%.1f of %.1f MiB, %.1f MiB/s, eta %s)\n",
		phase, pct, (double)done / (1 << 20), (double)total / (1 << 20),
		rate / (1 << 20), etas);
}

void ctl_bar_done(struct ctl_bar *b)
{
	if (b->drawn)
		fprintf(stderr, "\n");
	b->drawn = 0;
}

/* ---- status ---- */

static int ctl_status_usage(void)
{
	fprintf(stderr, "usage: backupctl status [INSTANCE] [--json]\n");
	return EXIT_USAGE;
}

static void ctl_status_line(json_t *st)
{
	const char *id = json_string_value(json_object_get(st, "instance"));
	const char *ds = json_string_value(json_object_get(st, "datastore"));
	const char *state = json_string_value(json_object_get(st, "state"));
	json_t *job = json_object_get(st, "job");
	json_t *last = json_object_get(st, "last");
	const char *kinds[] = {"backup", "restore"};

	printf("%s: %s (%s)", id ? id : "?", state ? state : "not mounted",
	       ds ? ds : "no datastore");
	if (json_is_object(job)) {
		json_t *p = json_object_get(job, "progress");
		json_t *eta = json_object_get(p, "eta");
		char etas[16] = "?";

		if (json_is_integer(eta))
			ctl_human_secs((double)json_integer_value(eta), etas,
				       sizeof(etas));
		printf(", %s '%s' %.1f%% (%.1f MiB/s, eta %s)",
		       json_string_value(json_object_get(job, "kind")) ?: "job",
		       json_string_value(json_object_get(job, "label")) ?: "",
		       json_number_value(json_object_get(p, "percent")),
		       (double)json_integer_value(json_object_get(p, "rate")) /
			       (1 << 20),
		       etas);
	}
	if (json_is_integer(json_object_get(st, "backups")))
		printf(", %lld backups, latest %s",
		       (long long)json_integer_value(
			       json_object_get(st, "backups")),
		       json_string_value(json_object_get(st, "latest")) ?: "-");
	printf("\n");
	for (size_t i = 0; i < 2; i++) {
		json_t *r = json_object_get(last, kinds[i]);
		const char *err;

		if (!json_is_object(r))
			continue;
		err = json_string_value(json_object_get(r, "error"));
		printf("  last %s: %s at %s (%s %s)\n", kinds[i],
		       json_string_value(json_object_get(r, "state")) ?: "?",
		       json_string_value(json_object_get(r, "finished"))
			       ?: json_string_value(
					  json_object_get(r, "started"))
			       ?: "?",
		       json_string_value(json_object_get(r, "backup"))
			       ? "backup"
			       : "from",
		       json_string_value(json_object_get(r, "backup"))
			       ?: json_string_value(json_object_get(r, "name"))
			       ?: json_string_value(json_object_get(r, "label"))
			       ?: "?");
		if (err)
			printf("    error: %s\n", err);
	}
	if (json_is_object(json_object_get(st, "journal")))
		printf("  a %s job is recorded as running (or was "
		       "interrupted): %s\n",
		       json_string_value(json_object_get(
			       json_object_get(st, "journal"), "kind"))
			       ?: "?",
		       json_string_value(json_object_get(
			       json_object_get(st, "journal"), "name"))
			       ?: "?");
}

static json_t *ctl_read_json_file(const char *path, int *err)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);

	*err = 0;
	if (!j)
		*err = json_error_code(&jerr) == json_error_cannot_open_file
			       ? ENOENT
			       : EINVAL;
	return j;
}

/* instances/<id>/status of the mount: new reference, or NULL (printed). */
static json_t *ctl_status_mount(struct ctl *c, const char *id)
{
	char path[4096];
	json_t *st;
	int fd, err;

	snprintf(path, sizeof(path), "%s/instances/%s/status", c->mount, id);
	/* json_load_file would say "cannot open"; say why. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "backupctl: instance '%s': %s\n", id,
			strerror(errno));
		return NULL;
	}
	close(fd);
	st = ctl_read_json_file(path, &err);
	if (!st)
		fprintf(stderr, "backupctl: %s: %s\n", path, strerror(err));
	return st;
}

struct ctl_count {
	json_int_t n;
	char latest[64];
};

static int ctl_count_backup(const char *ts, uint64_t size, void *arg)
{
	struct ctl_count *cnt = arg;

	(void)size;
	cnt->n++;
	snprintf(cnt->latest, sizeof(cnt->latest), "%s", ts);
	return 0;
}

/* What the repository and the state directory say of id: new. */
static json_t *ctl_status_offline(struct ctl *c, struct bfs_repo *repo,
				  const char *id)
{
	json_t *inst = json_object_get(c->conf->instances, id);
	struct ctl_count cnt = {0};
	char path[4096];
	json_t *st, *last, *journal;
	int ret, err;

	ret = bfs_repo_list_backups(repo, id, ctl_count_backup, &cnt);
	if (ret && ret != -ENOENT) {
		fprintf(stderr, "backupctl: listing the backups of '%s': %s\n",
			id, strerror(-ret));
		return NULL;
	}
	if (!inst && !cnt.n) {
		fprintf(stderr, "backupctl: instance '%s': %s\n", id,
			strerror(ENOENT));
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/instances/%s/last.json",
		 c->conf->state_dir, id);
	last = ctl_read_json_file(path, &err);
	snprintf(path, sizeof(path), "%s/instances/%s/job.journal",
		 c->conf->state_dir, id);
	journal = ctl_read_json_file(path, &err);
	st = json_pack("{sssosnsIsososo}", "instance", id, "datastore",
		       json_deep_copy(json_object_get(inst, "datastore"))
			       ?: json_null(),
		       "state", "backups", cnt.n, "latest",
		       cnt.n ? json_string(cnt.latest) : json_null(), "last",
		       json_is_object(last) ? last : json_null(), "journal",
		       journal ? journal : json_null());
	if (last && !json_is_object(last))
		json_decref(last);
	return st;
}

static int ctl_collect_name(const char *name, void *arg)
{
	json_t *names = arg;

	if (!json_object_get(names, name))
		json_object_set_new(names, name, json_true());
	return 0;
}

/* Sorted instance names: of the mount, or of repository and config. */
static int ctl_instance_names(struct ctl *c, struct bfs_repo *repo,
			      json_t *names)
{
	const char *key;
	json_t *v;

	if (c->mount) {
		char path[4096];
		struct dirent *d;
		DIR *dir;

		snprintf(path, sizeof(path), "%s/instances", c->mount);
		dir = opendir(path);
		if (!dir) {
			fprintf(stderr,
				"backupctl: %s is not a mounted backupfs: %s\n",
				c->mount, strerror(errno));
			return 1;
		}
		while ((d = readdir(dir)))
			if (d->d_name[0] != '.')
				ctl_collect_name(d->d_name, names);
		closedir(dir);
		return 0;
	}
	if (bfs_repo_list_instances(repo, ctl_collect_name, names)) {
		fprintf(stderr, "backupctl: cannot list the instances\n");
		return 1;
	}
	json_object_foreach(c->conf->instances, key, v)
		ctl_collect_name(key, names);
	return 0;
}

static int ctl_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct bfs_backend *be = NULL;
	struct bfs_repo *repo = NULL;
	json_t *names = json_object(), *out = json_array(), *v;
	const char *one = NULL, *key;
	int o, ret = 0;

	optind = 0;
	while ((o = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (o != 'j') {
			ret = ctl_status_usage();
			goto out_free;
		}
		c->json = 1;
	}
	if (argc - optind > 1) {
		ret = ctl_status_usage();
		goto out_free;
	}
	if (optind < argc)
		one = argv[optind];
	if (!c->mount && ctl_open_repo(c, &be, &repo)) {
		ret = 1;
		goto out_free;
	}
	if (one)
		json_object_set_new(names, one, json_true());
	else if (ctl_instance_names(c, repo, names))
		ret = 1;
	/* json_object keys are unordered: sort for stable output. */
	{
		size_t n = 0, i;
		const char **ids =
			calloc(json_object_size(names) + 1, sizeof(*ids));

		if (!ids) {
			ret = 1;
			goto out_close;
		}
		json_object_foreach(names, key, v) ids[n++] = key;
		qsort(ids, n, sizeof(*ids), ctl_strcmp);
		for (i = 0; i < n; i++) {
			json_t *st =
				c->mount ? ctl_status_mount(c, ids[i])
					 : ctl_status_offline(c, repo, ids[i]);

			if (!st) {
				ret = 1;
				continue;
			}
			if (!c->json)
				ctl_status_line(st);
			json_array_append_new(out, st);
		}
		free(ids);
	}
	if (c->json) {
		json_t *what = one ? json_array_get(out, 0) : out;
		char *s =
			what ? json_dumps(what, JSON_INDENT(2) | JSON_SORT_KEYS)
			     : NULL;

		if (s)
			printf("%s\n", s);
		free(s);
	}
out_close:
	if (repo)
		bfs_repo_close(repo);
	if (be)
		bfs_backend_close(be);
out_free:
	json_decref(names);
	json_decref(out);
	return ret;
}

/* ---- restore ---- */

static int ctl_restore_usage(void)
{
	fprintf(stderr, "usage: backupctl restore INSTANCE (TIMESTAMP | "
			"--file PATH) [--to OTHER_INSTANCE] [--wait]\n");
	return EXIT_USAGE;
}

/* The status of the restore's target, for the bar and the reason. */
struct ctl_restore {
	struct ctl *c;
	const char *target;
	const char *name;
	struct bfs_instance *inst; /* in-process; NULL through a mount */
	struct ctl_bar bar;
	pthread_t poller;
	_Atomic int stop;
};

static json_t *ctl_restore_status(struct ctl_restore *r)
{
	char path[4096];
	json_t *st;
	char *text;
	size_t len;
	int err;

	if (r->inst) {
		if (bfs_instance_status(r->inst, &text, &len))
			return NULL;
		st = json_loads(text, 0, NULL);
		free(text);
		return st;
	}
	snprintf(path, sizeof(path), "%s/instances/%s/status", r->c->mount,
		 r->target);
	return ctl_read_json_file(path, &err);
}

/* While close() (or commit) verifies and applies: the job's progress. */
static void *ctl_restore_poll(void *arg)
{
	struct ctl_restore *r = arg;

	while (!atomic_load(&r->stop)) {
		json_t *st = ctl_restore_status(r);
		json_t *job = json_object_get(st, "job");
		json_t *p = json_object_get(job, "progress");
		const char *state =
			json_string_value(json_object_get(st, "state"));

		if (json_is_object(p) &&
		    json_integer_value(json_object_get(p, "total")) > 0 &&
		    !strcmp(json_string_value(json_object_get(job, "kind"))
				    ?: "",
			    "restore")) {
			json_t *eta = json_object_get(p, "eta");

			ctl_bar_show(&r->bar,
				     state && !strcmp(state, "MAINTENANCE")
					     ? "applying"
					     : "verifying",
				     (uint64_t)json_integer_value(
					     json_object_get(p, "done")),
				     (uint64_t)json_integer_value(
					     json_object_get(p, "total")),
				     (double)json_integer_value(
					     json_object_get(p, "rate")),
				     json_is_integer(eta)
					     ? (double)json_integer_value(eta)
					     : -1);
		}
		json_decref(st);
		usleep(CTL_POLL_US);
	}
	return NULL;
}

static void ctl_restore_poll_start(struct ctl_restore *r)
{
	atomic_store(&r->stop, 0);
	if (pthread_create(&r->poller, NULL, ctl_restore_poll, r))
		atomic_store(&r->stop, 2); /* no poller: no bar, still works */
}

static void ctl_restore_poll_stop(struct ctl_restore *r)
{
	if (atomic_load(&r->stop) == 2)
		return;
	atomic_store(&r->stop, 1);
	pthread_join(r->poller, NULL);
	ctl_bar_done(&r->bar);
}

/* The reason the target's status gives for this failed restore. */
static void ctl_restore_reason(struct ctl_restore *r, int err)
{
	json_t *st = ctl_restore_status(r);
	json_t *last = json_object_get(json_object_get(st, "last"), "restore");
	const char *name = json_string_value(json_object_get(last, "name"));
	const char *why = json_string_value(json_object_get(last, "error"));

	if (name && !strcmp(name, r->name) && why)
		fprintf(stderr,
			"backupctl: restore of '%s' from '%s' failed: "
			"%s: %s\n",
			r->target, r->name, strerror(err), why);
	else
		fprintf(stderr,
			"backupctl: restore of '%s' from '%s' failed: %s\n",
			r->target, r->name, strerror(err));
	json_decref(st);
}

static int ctl_restore_exit(struct ctl_restore *r, int err)
{
	if (!err) {
		if (r->c->json)
			printf("{\"instance\": \"%s\", \"file\": \"%s\", "
			       "\"result\": \"completed\"}\n",
			       r->target, r->name);
		else
			printf("restored instance %s from %s\n", r->target,
			       r->name);
		return 0;
	}
	if (err == EBUSY) {
		fprintf(stderr,
			"backupctl: instance '%s' is busy (another snapshot "
			"or restore runs): %s\n",
			r->target, strerror(err));
		return EXIT_BUSY;
	}
	ctl_restore_reason(r, err);
	return 1;
}

static int ctl_restore_mount(struct ctl *c, const char *instance,
			     const char *ts, const char *file, const char *to)
{
	struct ctl_restore r = {.c = c, .target = to ? to : instance};
	char src[4096], dst[4096], base[4096];
	char *buf = NULL;
	uint64_t done = 0;
	struct stat st;
	int in, out, err = 0;

	if (file)
		snprintf(src, sizeof(src), "%s", file);
	else
		snprintf(src, sizeof(src), "%s/instances/%s/backups/%s",
			 c->mount, instance, ts);
	snprintf(base, sizeof(base), "%s", src);
	r.name = basename(base);
	snprintf(dst, sizeof(dst), "%s/instances/%s/restore/%s", c->mount,
		 r.target, r.name);
	ctl_bar_init(&r.bar);
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st)) {
		fprintf(stderr, "backupctl: cannot read '%s': %s\n", src,
			strerror(errno));
		if (in >= 0)
			close(in);
		return 1;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		err = errno;
		close(in);
		if (err == EBUSY)
			return ctl_restore_exit(&r, err);
		fprintf(stderr,
			"backupctl: cannot start the restore '%s': %s\n", dst,
			strerror(err));
		return 1;
	}
	buf = malloc(CTL_COPY_BYTES);
	if (!buf)
		err = ENOMEM;
	while (!err) {
		ssize_t n = read(in, buf, CTL_COPY_BYTES), w = 0;

		if (n < 0) {
			err = errno;
			fprintf(stderr, "backupctl: reading '%s': %s\n", src,
				strerror(err));
			break;
		}
		if (!n)
			break;
		while (w < n) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0) {
				err = errno;
				break;
			}
			w += k;
		}
		done += (uint64_t)w;
		ctl_bar_show(&r.bar, "spooling", done, (uint64_t)st.st_size, 0,
			     -1);
	}
	free(buf);
	close(in);
	ctl_bar_done(&r.bar);
	/* close() verifies and applies the restore and returns the result. */
	ctl_restore_poll_start(&r);
	if (close(out) && !err)
		err = errno;
	ctl_restore_poll_stop(&r);
	return ctl_restore_exit(&r, err);
}

/* In-process: the same restore through the engine on the state dir. */
static int ctl_restore_engine(struct ctl *c, const char *instance,
			      const char *ts, const char *file, const char *to)
{
	struct ctl_restore r = {.c = c, .target = to ? to : instance};
	struct bfs_instance *src_inst = NULL;
	struct bfs_read_state rs = {0};
	struct bfs_backup *b = NULL;
	struct bfs_restore *res = NULL;
	char base[4096], errbuf[1024] = "";
	struct bfs_engine *e;
	uint64_t off = 0, total = 0;
	char *buf = NULL;
	int fd = -1, err = 0, ret;

	snprintf(base, sizeof(base), "%s", file ? file : ts);
	r.name = basename(base);
	ctl_bar_init(&r.bar);
	ret = bfs_engine_open(c->conf, &e, errbuf, sizeof(errbuf));
	c->conf = NULL; /* the engine took it */
	if (ret) {
		fprintf(stderr, "backupctl: %s\n", errbuf);
		return 1;
	}
	ret = bfs_engine_start(e);
	if (!ret)
		ret = bfs_engine_instance(e, r.target, &r.inst);
	if (!ret && !file)
		ret = bfs_engine_instance(e, instance, &src_inst);
	if (ret) {
		fprintf(stderr, "backupctl: instance '%s': %s\n",
			r.inst ? instance : r.target, strerror(-ret));
		ret = 1;
		goto out_close;
	}
	if (file) {
		struct stat st;

		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st)) {
			fprintf(stderr, "backupctl: cannot read '%s': %s\n",
				file, strerror(errno));
			ret = 1;
			goto out_close;
		}
		total = (uint64_t)st.st_size;
	} else {
		ret = bfs_instance_backup(src_inst, ts, &b);
		if (ret) {
			fprintf(stderr, "backupctl: backup %s/%s: %s\n",
				instance, ts, strerror(-ret));
			ret = 1;
			goto out_close;
		}
		total = b->m->size;
	}
	ret = bfs_instance_restore_begin(r.inst, r.name, &res);
	if (ret) {
		if (ret == -EBUSY) {
			ret = ctl_restore_exit(&r, EBUSY);
		} else {
			fprintf(stderr,
				"backupctl: cannot start the restore "
				"of '%s': %s\n",
				r.target, strerror(-ret));
			ret = 1;
		}
		goto out_close;
	}
	buf = malloc(CTL_COPY_BYTES);
	if (!buf)
		err = ENOMEM;
	while (!err) {
		ssize_t n = fd >= 0 ? pread(fd, buf, CTL_COPY_BYTES, (off_t)off)
				    : bfs_backup_read(e, b, &rs, buf,
						      CTL_COPY_BYTES, off);

		if (n < 0) {
			err = fd >= 0 ? errno : (int)-n;
			fprintf(stderr, "backupctl: reading '%s': %s\n",
				file ? file : ts, strerror(err));
			break;
		}
		if (!n)
			break;
		n = bfs_restore_write(res, buf, (size_t)n, off);
		if (n < 0) {
			err = (int)-n;
			break;
		}
		off += (uint64_t)n;
		ctl_bar_show(&r.bar, "spooling", off, total, 0, -1);
	}
	free(buf);
	ctl_bar_done(&r.bar);
	if (err) {
		bfs_restore_abort(res);
		fprintf(stderr, "backupctl: restore of '%s' failed: %s\n",
			r.target, strerror(err));
		ret = 1;
		goto out_close;
	}
	ctl_restore_poll_start(&r);
	ret = bfs_restore_commit(res);
	ctl_restore_poll_stop(&r);
	ret = ctl_restore_exit(&r, -ret);
out_close:
	if (fd >= 0)
		close(fd);
	if (b)
		bfs_backup_put(b);
	bfs_engine_close(e);
	return ret;
}

int cmd_restore(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"wait", no_argument, NULL, 'w'},
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	const char *file = NULL, *to = NULL, *instance, *ts = NULL;
	int o;

	optind = 0;
	while ((o = getopt_long(argc, argv, "f:t:wj", opts, NULL)) != -1) {
		if (o == 'f')
			file = optarg;
		else if (o == 't')
			to = optarg;
		else if (o == 'j')
			c->json = 1;
		else if (o != 'w')
			return ctl_restore_usage();
	}
	if (optind >= argc)
		return ctl_restore_usage();
	instance = argv[optind++];
	if (optind < argc)
		ts = argv[optind++];
	if (optind != argc || !!ts == !!file)
		return ctl_restore_usage();
	if (c->mount)
		return ctl_restore_mount(c, instance, ts, file, to);
	return ctl_restore_engine(c, instance, ts, file, to);
}
