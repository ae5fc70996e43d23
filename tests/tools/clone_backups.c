// SPDX-License-Identifier: Apache-2.0
/*
 * clone_backups: give an instance many real backups quickly, for the
 * scale tests (tests/integration/test_scale.py).
 *
 *   clone_backups --config FILE [--threads T] INSTANCE N
 *
 * Loads the newest backup of INSTANCE and writes N more manifests that
 * reference its chunks with its metadata, one minute apart going back
 * from it.  Each clone is a backup like any other, readable and
 * authenticated: a fresh random backup id, a timestamp (and created) of
 * its own, as parent the clone a minute older (the oldest has none),
 * stored_bytes 0 (it stored no chunk) and the label "clone-<i>".
 *
 * Manifests go through bfs_repo_manifest_put(), which refuses a taken
 * timestamp, on a few threads (on Swift each costs a listing, a PUT and,
 * create-if-absent, a wait and a HEAD: thousands in a row take minutes),
 * under a writer lock as a snapshot's commit does, so a gc cannot remove
 * the shared chunks meanwhile.
 *
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include "backend.h"
#include "config.h"
#include "crypto.h"
#include "log.h"
#include "manifest.h"
#include "repo.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE  2
#define MAX_THREADS 64
#define MAX_CLONES  1000000
#define CLONE_STEP  60 /* seconds between two clones */

struct clone_ctx {
	struct bfs_repo *repo;
	char *tmpl; /* the newest backup's manifest JSON */
	size_t tmpl_len;
	int64_t base; /* its created time */
	int n;
	int next; /* next clone to write, 1..n */
	int err;  /* first failure (-errno), stops every thread */
	pthread_mutex_t lock;
};

static void clone_usage(FILE *out)
{
	fprintf(out, "usage: clone_backups --config FILE [--threads T] "
		     "INSTANCE N\n");
}

static int clone_open(const char *config, struct bfs_config **conf,
		      struct bfs_backend **be, struct bfs_repo **repo)
{
	uint8_t master[BFS_KEY_LEN];
	char err[1024] = "";
	int ret;

	ret = bfs_config_load(config, conf, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "clone_backups: %s\n", err);
		return ret;
	}
	bfs_log_set_level((*conf)->log_level < BFS_LOG_WARN ? (*conf)->log_level
							    : BFS_LOG_WARN);
	ret = bfs_key_file_read((*conf)->key_file, master, err, sizeof(err));
	if (!ret)
		ret = bfs_backend_open((*conf)->backend, be, err, sizeof(err));
	if (!ret) {
		ret = bfs_repo_open(*be, master, repo, err, sizeof(err));
		if (ret)
			bfs_backend_close(*be);
	}
	explicit_bzero(master, sizeof(master));
	if (ret) {
		fprintf(stderr, "clone_backups: %s\n", err);
		bfs_config_free(*conf);
	}
	return ret;
}

struct newest {
	char ts[BFS_TIMESTAMP_LEN + 1];
	uint64_t size;
	int found;
};

/* Backups come oldest first: the last one seen is the newest. */
static int clone_newest_cb(const char *ts, uint64_t size, void *arg)
{
	struct newest *nw = arg;

	memcpy(nw->ts, ts, sizeof(nw->ts));
	nw->size = size;
	nw->found = 1;
	return 0;
}

/* The newest backup's manifest, as JSON the threads decode each for
 * themselves (then no manifest is shared between threads). */
static int clone_template(struct clone_ctx *c, const char *instance)
{
	struct newest nw = {0};
	struct bfs_manifest *m;
	int ret;

	ret = bfs_repo_list_backups(c->repo, instance, clone_newest_cb, &nw);
	if (ret) {
		fprintf(stderr, "clone_backups: cannot list '%s': %s\n",
			instance, strerror(-ret));
		return ret;
	}
	if (!nw.found) {
		fprintf(stderr, "clone_backups: '%s' has no backup\n",
			instance);
		return -ENOENT;
	}
	ret = bfs_repo_manifest_get(c->repo, instance, nw.ts, nw.size, &m);
	if (ret) {
		fprintf(stderr, "clone_backups: cannot load backup %s/%s: %s\n",
			instance, nw.ts, strerror(-ret));
		return ret;
	}
	c->base = m->created;
	ret = bfs_manifest_encode(m, &c->tmpl, &c->tmpl_len);
	bfs_manifest_free(m);
	if (ret)
		fprintf(stderr, "clone_backups: cannot encode %s/%s: %s\n",
			instance, nw.ts, strerror(-ret));
	return ret;
}

static char *clone_timestamp(int64_t t)
{
	char *s = malloc(BFS_TIMESTAMP_LEN + 1);

	if (s)
		bfs_timestamp_format(t, s);
	return s;
}

/* Turn m (a copy of the template) into clone i of n. */
static int clone_fill(struct bfs_manifest *m, int64_t base, int i, int n)
{
	uint8_t id[16];
	char hex[33], label[32];

	if (bfs_random(id, sizeof(id)))
		return -EIO;
	bfs_hex(id, sizeof(id), hex);
	snprintf(label, sizeof(label), "clone-%d", i);
	free(m->backup_id);
	free(m->timestamp);
	free(m->parent);
	free(m->label);
	m->backup_id = strdup(hex);
	m->created = base - (int64_t)i * CLONE_STEP;
	m->timestamp = clone_timestamp(m->created);
	m->parent = i < n ? clone_timestamp(m->created - CLONE_STEP) : NULL;
	m->label = strdup(label);
	m->stored_bytes = 0;
	if (!m->backup_id || !m->timestamp || (i < n && !m->parent) ||
	    !m->label)
		return -ENOMEM;
	return 0;
}

/* The next clone to write, or 0 when done or after a failure. */
static int clone_take(struct clone_ctx *c)
{
	int i = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->err && c->next <= c->n)
		i = c->next++;
	pthread_mutex_unlock(&c->lock);
	return i;
}

/* Record the first failure (the others are most likely its echoes). */
static void clone_fail(struct clone_ctx *c, int ret, const char *what)
{
	pthread_mutex_lock(&c->lock);
	if (!c->err) {
		c->err = ret;
		fprintf(stderr, "clone_backups: %s: %s\n", what,
			ret == -EEXIST ? "the timestamp is taken"
				       : strerror(-ret));
	}
	pthread_mutex_unlock(&c->lock);
}

static void *clone_thread(void *arg)
{
	struct clone_ctx *c = arg;
	struct bfs_manifest *m;
	char what[320];
	int i, ret;

	ret = bfs_manifest_decode(c->tmpl, c->tmpl_len, &m, what, sizeof(what));
	if (ret) {
		clone_fail(c, ret, what);
		return NULL;
	}
	while ((i = clone_take(c))) {
		ret = clone_fill(m, c->base, i, c->n);
		if (!ret)
			ret = bfs_repo_manifest_put(c->repo, m);
		if (ret) {
			snprintf(what, sizeof(what),
				 "cannot write clone %d (%s)", i,
				 m->timestamp ? m->timestamp : "?");
			clone_fail(c, ret, what);
		}
	}
	bfs_manifest_free(m);
	return NULL;
}

static int clone_run(struct clone_ctx *c, int nthreads)
{
	pthread_t t[MAX_THREADS];
	struct bfs_repo_lock *lock;
	int i, started, ret;

	ret = bfs_repo_lock_writer(c->repo, &lock);
	if (ret) {
		fprintf(stderr, "clone_backups: no writer lock: %s\n",
			ret == -EBUSY ? "gc is running" : strerror(-ret));
		return ret;
	}
	c->next = 1;
	for (started = 0; started < nthreads; started++) {
		ret = pthread_create(&t[started], NULL, clone_thread, c);
		if (ret) {
			clone_fail(c, -ret, "cannot start a thread");
			break;
		}
	}
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	bfs_repo_unlock(lock);
	return c->err;
}

static int clone_parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"threads", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct clone_ctx c = {0};
	const char *config = NULL;
	struct bfs_config *conf;
	struct bfs_backend *be;
	int nthreads = 16, o, ret;
	struct timespec t0, t1;

	while ((o = getopt_long(argc, argv, "c:j:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			config = optarg;
			break;
		case 'j':
			if (clone_parse_int(optarg, 1, MAX_THREADS, &nthreads))
				goto usage;
			break;
		case 'h':
			clone_usage(stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (!config || optind != argc - 2 ||
	    clone_parse_int(argv[optind + 1], 1, MAX_CLONES, &c.n))
		goto usage;
	if (clone_open(config, &conf, &be, &c.repo))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_init(&c.lock, NULL);
	ret = clone_template(&c, argv[optind]);
	if (!ret)
		ret = clone_run(&c, nthreads < c.n ? nthreads : c.n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ret)
		printf("cloned %d backups of '%s' in %.1f s\n", c.n,
		       argv[optind],
		       (double)(t1.tv_sec - t0.tv_sec) +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	pthread_mutex_destroy(&c.lock);
	free(c.tmpl);
	bfs_repo_close(c.repo);
	bfs_backend_close(be);
	bfs_config_free(conf);
	return ret ? 1 : 0;
usage:
	clone_usage(stderr);
	return EXIT_USAGE;
}
