// SPDX-License-Identifier: Apache-2.0
/*
 * The scheduler: one thread in the daemon that runs the configured
 * instances' schedules as snapshots, and the engine's schedule and
 * execution calls for the FUSE layer.
 *
 * Every SCHED_SCAN_SECS (and at each minute boundary) the thread lists
 * the schedules of each configured instance.  A schedule's due slot is
 * the most recent time its pattern fired (bfs_cron_prev): at start-up
 * that is the most recent slot missed while nothing was mounted, so such
 * a slot runs once and older ones never.  Slots before the schedule was
 * last written do not count.  A slot is claimed by creating its
 * execution record exclusively in the backend: of several daemons on one
 * backend exactly one creates it and runs the slot.  A claimed slot
 * whose instance runs another job waits for it, until the schedule's
 * next slot (struct sched_run).
 *
 * The thread only talks to the backend and starts jobs; FUSE operations
 * never wait for it.  A failing backend costs a warning and a retry at
 * the next scan.  Stopping waits for the executions it started to end
 * and records their results.
 */
#include "engine_int.h"
#include "log.h"
#include "schedule.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCHED_SCAN_SECS 5
/* Running records of the same schedule looked at before a slot runs. */
#define SCHED_PREV_CHECK 3

/*
 * A claimed slot.  It waits (strategy set) while the instance runs
 * another job, such as another schedule's slot of the same minute or a
 * restore, until the schedule's next slot; then its snapshot runs.
 */
struct sched_run {
	struct bfs_instance *inst; /* borrowed */
	json_t *rec;		   /* the execution record */
	char *strategy;		   /* while waiting: the snapshot's (JSON) */
	time_t give_up;		   /* while waiting: the next slot */
	unsigned keep;
	struct sched_run *next;
};

struct engine_sched {
	struct bfs_engine *e;
	pthread_t thread;
	pthread_mutex_t lock; /* stop */
	pthread_cond_t cond;
	int stop;
	json_t *seen;		/* "<instance>/<schedule>" -> last slot */
	struct sched_run *runs; /* the thread's own */
	char host[256];
};

static json_t *sched_ts(time_t t)
{
	char ts[BFS_TIMESTAMP_LEN + 1];

	bfs_timestamp_format(t, ts);
	return json_string(ts);
}

static const char *sched_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key)) ?: "";
}

/* ---- finishing an execution ---- */

static void sched_finish(struct engine_sched *s, struct bfs_instance *inst,
			 json_t *rec, const char *state, const char *backup,
			 const char *error)
{
	struct bfs_repo *repo = s->e->repo;
	const char *id = sched_str(rec, "id");
	char sched[BFS_NAME_MAX + 1];
	json_t *fields;
	time_t slot;
	int ret;

	json_object_set_new(rec, "state", json_string(state));
	json_object_set_new(rec, "finished", sched_ts(time(NULL)));
	json_object_set_new(rec, "backup",
			    backup ? json_string(backup) : json_null());
	json_object_set_new(rec, "error",
			    error ? json_string(error) : json_null());
	json_object_set_new(rec, "output", json_string(backup ?: error ?: ""));
	ret = bfs_execution_update(repo, inst->id, rec);
	if (ret)
		bfs_warn("cannot record execution '%s' of instance '%s': %s",
			 id, inst->id, strerror(-ret));
	fields = json_pack("{sssssssO}", "schedule", sched_str(rec, "schedule"),
			   "execution", id, "state", state, "slot",
			   json_object_get(rec, "slot"));
	if (fields && backup)
		json_object_set_new(fields, "backup", json_string(backup));
	if (fields && error)
		json_object_set_new(fields, "error", json_string(error));
	events_emit(inst,
		    strcmp(state, "completed") ? "schedule.execution.error"
					       : "schedule.execution.end",
		    fields);
	if (!bfs_execution_id_parse(id, sched, &slot)) {
		ret = bfs_execution_trim(repo, inst->id, sched,
					 s->e->conf->executions_keep);
		if (ret < 0)
			bfs_warn("cannot trim the executions of schedule '%s' "
				 "of instance '%s': %s",
				 sched, inst->id, strerror(-ret));
	}
}

/* ---- retention ---- */

static int sched_collect_ts(const char *ts, void *arg)
{
	return json_array_append_new(arg, json_string(ts)) ? -ENOMEM : 0;
}

/* Delete schedule's backups beyond the newest keep: only backups whose
 * authenticated manifest says this schedule made them. */
static void sched_retain(struct bfs_instance *inst, const char *schedule,
			 unsigned keep)
{
	json_t *all = json_array(), *mine = json_array(), *v;
	size_t i, n;
	int ret;

	if (!all || !mine)
		goto out_free;
	ret = bfs_instance_list_backups(inst, sched_collect_ts, all);
	if (ret) {
		bfs_warn("retention of schedule '%s' of instance '%s': cannot "
			 "list backups: %s",
			 schedule, inst->id, strerror(-ret));
		goto out_free;
	}
	json_array_foreach(all, i, v)
	{
		struct bfs_backup *b;

		if (bfs_instance_backup(inst, json_string_value(v), &b))
			continue;
		if (!strcmp(sched_str(b->m->extra, "schedule"), schedule))
			json_array_append(mine, v);
		bfs_backup_put(b);
	}
	n = json_array_size(mine);
	for (i = 0; n > keep && i < n - keep; i++) {
		const char *ts = json_string_value(json_array_get(mine, i));

		ret = bfs_instance_delete_backup(inst, ts);
		if (ret)
			bfs_warn("retention of schedule '%s' of instance "
				 "'%s': cannot delete backup %s: %s",
				 schedule, inst->id, ts, strerror(-ret));
		else
			bfs_info("retention of schedule '%s' of instance "
				 "'%s' deleted backup %s",
				 schedule, inst->id, ts);
	}
out_free:
	json_decref(all);
	json_decref(mine);
}

/* ---- running executions ---- */

/* Start a waiting run's snapshot if the instance is free: 1 when the
 * run has ended (failed, or skipped at its schedule's next slot), else
 * 0. */
static int sched_try_start(struct engine_sched *s, struct sched_run *r,
			   time_t now)
{
	const char *id = sched_str(r->rec, "id");
	const char *name = sched_str(r->rec, "schedule");
	char err[1024] = "";
	int ret;

	ret = jobs_snapshot_start(r->inst, id, name, r->strategy,
				  strlen(r->strategy), err, sizeof(err));
	if (ret == -EBUSY && now < r->give_up)
		return 0;
	if (ret == -EBUSY) {
		sched_finish(s, r->inst, r->rec, "skipped", NULL,
			     "the instance ran another job until the "
			     "schedule's next slot");
		return 1;
	}
	if (ret) {
		sched_finish(s, r->inst, r->rec, "failed", NULL,
			     *err ? err : strerror(-ret));
		return 1;
	}
	free(r->strategy);
	r->strategy = NULL;
	events_emit(r->inst, "schedule.execution.start",
		    json_pack("{sssssO}", "schedule", name, "execution", id,
			      "slot", json_object_get(r->rec, "slot")));
	return 0;
}

/* 1 when the run has ended (and was recorded), else 0. */
static int sched_poll_one(struct engine_sched *s, struct sched_run *r,
			  time_t now)
{
	const char *id = sched_str(r->rec, "id");
	const char *state;
	char *text = NULL;
	size_t len;
	json_t *snap;
	int ret;

	if (r->strategy)
		return sched_try_start(s, r, now);
	ret = bfs_instance_snapshot_show(r->inst, id, &text, &len);
	if (ret == -ENOENT) {
		sched_finish(s, r->inst, r->rec, "failed", NULL,
			     "the snapshot's job record vanished");
		return 1;
	}
	if (ret)
		return 0;
	snap = json_loadb(text, len, 0, NULL);
	free(text);
	state = sched_str(snap, "state");
	if (!strcmp(state, "running") || !snap) {
		json_decref(snap);
		return 0;
	}
	if (!strcmp(state, "completed")) {
		sched_finish(s, r->inst, r->rec, "completed",
			     sched_str(snap, "backup"), NULL);
		if (r->keep)
			sched_retain(r->inst, sched_str(r->rec, "schedule"),
				     r->keep);
	} else {
		sched_finish(s, r->inst, r->rec, "failed", NULL,
			     json_string_value(json_object_get(snap, "error"))
				     ?: "snapshot failed");
	}
	json_decref(snap);
	/* the execution record says it all: keep snapshots/ for hand-made
	 * snapshots */
	bfs_instance_snapshot_forget(r->inst, id);
	return 1;
}

static void sched_run_free(struct sched_run *r)
{
	json_decref(r->rec);
	free(r->strategy);
	free(r);
}

static void sched_poll_runs(struct engine_sched *s, time_t now)
{
	struct sched_run **pp = &s->runs, *r;

	while ((r = *pp)) {
		if (!sched_poll_one(s, r, now)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		sched_run_free(r);
	}
}

/* Unmounting: a run still waiting for its instance will not start. */
static void sched_drop_waiting(struct engine_sched *s)
{
	struct sched_run **pp = &s->runs, *r;

	while ((r = *pp)) {
		if (!r->strategy) {
			pp = &r->next;
			continue;
		}
		sched_finish(s, r->inst, r->rec, "skipped", NULL,
			     "backupfs stopped while the slot waited for the "
			     "instance");
		*pp = r->next;
		sched_run_free(r);
	}
}

/* ---- starting executions ---- */

/* Whether a record names a live run: ours, or another host's that is
 * not stale.  Our host's records of dead processes are marked failed. */
static int sched_record_running(struct engine_sched *s,
				struct bfs_instance *inst, json_t *rec)
{
	int64_t started;
	json_int_t pid;

	if (strcmp(sched_str(rec, "state"), "running"))
		return 0;
	/* Ours (this process) only if we track it: callers look at the
	 * tracked runs first, so a record of ours here is one whose result
	 * could not be written. */
	pid = json_integer_value(json_object_get(rec, "pid"));
	if (!strcmp(sched_str(rec, "host"), s->host) &&
	    (pid <= 0 || pid == getpid() ||
	     (kill((pid_t)pid, 0) && errno == ESRCH))) {
		sched_finish(s, inst, rec, "failed", NULL,
			     "interrupted by a restart of backupfs");
		return 0;
	}
	if (bfs_timestamp_parse(sched_str(rec, "started"), &started))
		return 0;
	return time(NULL) - started < BFS_LOCK_STALE_SECS;
}

/* Is an earlier run of schedule still going, here or on another host? */
static int sched_previous_running(struct engine_sched *s,
				  struct bfs_instance *inst,
				  const char *schedule, const char *id)
{
	json_t *ids, *rec;
	size_t i, seen = 0;
	int running = 0;

	for (struct sched_run *r = s->runs; r; r = r->next)
		if (r->inst == inst &&
		    !strcmp(sched_str(r->rec, "schedule"), schedule))
			return 1;
	if (bfs_execution_list(s->e->repo, inst->id, schedule, &ids))
		return 0;
	for (i = 0;
	     i < json_array_size(ids) && seen < SCHED_PREV_CHECK && !running;
	     i++) {
		const char *other = json_string_value(json_array_get(ids, i));

		if (!strcmp(other, id))
			continue;
		seen++;
		if (bfs_execution_get(s->e->repo, inst->id, other, &rec))
			continue;
		running = sched_record_running(s, inst, rec);
		json_decref(rec);
	}
	json_decref(ids);
	return running;
}

/* The slot after slot of sched: when a run still waiting gives up. */
static time_t sched_next_slot(json_t *sched, time_t slot)
{
	struct bfs_cron cron;
	time_t updated, next;

	if (bfs_schedule_times(sched, &cron, &updated) ||
	    bfs_cron_next(&cron, slot, &next))
		return slot + 60;
	return next;
}

static void sched_start(struct engine_sched *s, struct bfs_instance *inst,
			const char *name, json_t *sched, json_t *rec,
			time_t slot)
{
	const char *id = sched_str(rec, "id");
	struct sched_run *r;

	if (sched_previous_running(s, inst, name, id)) {
		sched_finish(s, inst, rec, "skipped", NULL,
			     "the previous run of the schedule is still going");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r)
		r->strategy = json_dumps(json_object_get(sched, "strategy"),
					 JSON_COMPACT);
	if (!r || !r->strategy) {
		sched_finish(s, inst, rec, "failed", NULL, strerror(ENOMEM));
		free(r);
		return;
	}
	r->inst = inst;
	r->rec = json_incref(rec);
	r->give_up = sched_next_slot(sched, slot);
	r->keep = (unsigned)json_integer_value(json_object_get(sched, "keep"));
	if (sched_try_start(s, r, time(NULL))) {
		sched_run_free(r);
		return;
	}
	if (r->strategy)
		bfs_info("execution '%s' of instance '%s' waits for the "
			 "instance's running job to end",
			 id, inst->id);
	r->next = s->runs;
	s->runs = r;
}

/* Claim slot of schedule name and run it: 0, or -EAGAIN to try again
 * at the next scan (the backend failed). */
static int sched_run_slot(struct engine_sched *s, struct bfs_instance *inst,
			  const char *name, json_t *sched, time_t slot)
{
	char id[BFS_NAME_MAX + 1];
	time_t now = time(NULL);
	json_t *rec;
	int ret;

	if (bfs_execution_id(name, slot, id, sizeof(id)))
		return 0;
	/* clang-format off */
	rec = json_pack("{ss ss ss so so so ss sn sn sn sn ss sI}",
			"id", id, "schedule", name, "instance", inst->id,
			"slot", sched_ts(slot), "started", sched_ts(now),
			"strategy", json_deep_copy(json_object_get(sched,
								   "strategy")),
			"state", "running", "finished", "backup", "error",
			"output", "host", s->host, "pid", (json_int_t)getpid());
	/* clang-format on */
	if (!rec)
		return -EAGAIN;
	ret = bfs_execution_claim(s->e->repo, inst->id, rec);
	if (ret == -EEXIST) {
		bfs_debug("execution '%s' of instance '%s' is claimed already",
			  id, inst->id);
		ret = 0;
	} else if (ret) {
		bfs_warn("cannot claim execution '%s' of instance '%s': %s", id,
			 inst->id, strerror(-ret));
		ret = -EAGAIN;
	} else {
		bfs_info("running execution '%s' of instance '%s'", id,
			 inst->id);
		sched_start(s, inst, name, sched, rec, slot);
	}
	json_decref(rec);
	return ret;
}

struct sched_scan {
	struct engine_sched *s;
	struct bfs_instance *inst;
	time_t now;
};

static int sched_scan_one(const char *name, void *arg)
{
	struct sched_scan *sc = arg;
	struct engine_sched *s = sc->s;
	char key[2 * BFS_NAME_MAX + 2];
	struct bfs_cron cron;
	time_t slot, updated;
	json_t *sched, *seen;

	if (bfs_schedule_get(s->e->repo, sc->inst->id, name, &sched))
		return 0;
	if (bfs_schedule_times(sched, &cron, &updated) ||
	    bfs_cron_prev(&cron, sc->now, &slot) || slot < updated)
		goto out_sched;
	snprintf(key, sizeof(key), "%s/%s", sc->inst->id, name);
	seen = json_object_get(s->seen, key);
	if (seen && json_integer_value(seen) >= slot)
		goto out_sched;
	if (sched_run_slot(s, sc->inst, name, sched, slot) != -EAGAIN)
		json_object_set_new(s->seen, key, json_integer(slot));
out_sched:
	json_decref(sched);
	return 0;
}

/* The configured instances: stable pointers (freed only at close). */
static struct bfs_instance **sched_instances(struct bfs_engine *e, size_t *n)
{
	struct bfs_instance **v;

	pthread_mutex_lock(&e->lock);
	v = calloc(e->ninstances + 1, sizeof(*v));
	*n = 0;
	for (size_t i = 0; v && i < e->ninstances; i++)
		if (e->instances[i]->ds)
			v[(*n)++] = e->instances[i];
	pthread_mutex_unlock(&e->lock);
	return v;
}

static void sched_scan(struct engine_sched *s, time_t now)
{
	struct bfs_instance **v;
	size_t n;

	v = sched_instances(s->e, &n);
	for (size_t i = 0; v && i < n; i++) {
		struct sched_scan sc = {s, v[i], now};
		int ret = bfs_schedule_list(s->e->repo, v[i]->id,
					    sched_scan_one, &sc);

		if (ret)
			bfs_warn("cannot list the schedules of instance '%s': "
				 "%s",
				 v[i]->id, strerror(-ret));
	}
	free(v);
}

/* Records this host's earlier processes left running: now failed. */
static void sched_recover(struct engine_sched *s)
{
	struct bfs_instance **v;
	json_t *ids, *rec, *id;
	size_t n, j;

	v = sched_instances(s->e, &n);
	for (size_t i = 0; v && i < n; i++) {
		if (bfs_execution_list(s->e->repo, v[i]->id, NULL, &ids))
			continue;
		json_array_foreach(ids, j, id)
		{
			if (bfs_execution_get(s->e->repo, v[i]->id,
					      json_string_value(id), &rec))
				continue;
			sched_record_running(s, v[i], rec);
			json_decref(rec);
		}
		json_decref(ids);
	}
	free(v);
}

static int sched_stopping(struct engine_sched *s, int wait_secs)
{
	struct timespec ts;
	int stop;

	pthread_mutex_lock(&s->lock);
	if (!s->stop && wait_secs) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait_secs;
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

static void *sched_thread(void *arg)
{
	struct engine_sched *s = arg;
	time_t last = 0, now;

	sched_recover(s);
	while (!sched_stopping(s, 0)) {
		/* one now for both: a run waiting since the previous slot
		 * gives up before the scan sees the next one */
		now = time(NULL);
		sched_poll_runs(s, now);
		if (now - last >= SCHED_SCAN_SECS || now / 60 != last / 60) {
			sched_scan(s, now);
			last = now;
		}
		sched_stopping(s, 1);
	}
	/* unmounting: let what we started end, and record it */
	sched_drop_waiting(s);
	while (s->runs) {
		sched_poll_runs(s, time(NULL));
		if (s->runs)
			usleep(200 * 1000);
	}
	return NULL;
}

int bfs_engine_start_scheduler(struct bfs_engine *e)
{
	struct engine_sched *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->e = e;
	s->seen = json_object();
	if (!s->seen) {
		free(s);
		return -ENOMEM;
	}
	if (gethostname(s->host, sizeof(s->host) - 1))
		snprintf(s->host, sizeof(s->host), "unknown");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	ret = -pthread_create(&s->thread, NULL, sched_thread, s);
	if (ret) {
		bfs_err("cannot start the scheduler: %s", strerror(-ret));
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		json_decref(s->seen);
		free(s);
		return ret;
	}
	e->sched = s;
	return 0;
}

void sched_stop(struct engine_sched *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	json_decref(s->seen);
	free(s);
}

/* ---- the engine's calls for the FUSE layer ---- */

static int sched_text(json_t *v, char **json, size_t *len)
{
	char *t = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	size_t n;

	if (!t)
		return -ENOMEM;
	n = strlen(t);
	*json = realloc(t, n + 2);
	if (!*json) {
		free(t);
		return -ENOMEM;
	}
	(*json)[n++] = '\n';
	(*json)[n] = 0;
	*len = n;
	return 0;
}

int bfs_instance_schedule_write(struct bfs_instance *inst, const char *name,
				const char *text, size_t len, char *err,
				size_t errlen)
{
	json_t *sched;
	int ret;

	if (!bfs_schedule_name_ok(name)) {
		snprintf(err, errlen,
			 "invalid schedule name (at most %d bytes)",
			 BFS_SCHEDULE_NAME_MAX);
		return -EINVAL;
	}
	ret = bfs_schedule_parse(text, len, &sched, err, errlen);
	if (ret)
		return ret;
	if (inst->ds)
		ret = bfs_datastore_check_strategy(
			inst->ds, json_object_get(sched, "strategy"), err,
			errlen);
	if (!ret) {
		ret = bfs_schedule_put(inst->e->repo, inst->id, name, sched,
				       time(NULL));
		if (ret)
			snprintf(err, errlen, "cannot store the schedule: %s",
				 strerror(-ret));
	}
	json_decref(sched);
	return ret;
}

int bfs_instance_schedule_show(struct bfs_instance *inst, const char *name,
			       char **json, size_t *len)
{
	json_t *sched;
	char *t;
	int ret;

	ret = bfs_schedule_get(inst->e->repo, inst->id, name, &sched);
	if (ret)
		return ret;
	t = bfs_schedule_render(sched, time(NULL));
	json_decref(sched);
	if (!t)
		return -ENOMEM;
	*len = strlen(t);
	*json = realloc(t, *len + 2);
	if (!*json) {
		free(t);
		return -ENOMEM;
	}
	(*json)[(*len)++] = '\n';
	(*json)[*len] = 0;
	return 0;
}

int bfs_instance_schedule_delete(struct bfs_instance *inst, const char *name)
{
	return bfs_schedule_delete(inst->e->repo, inst->id, name);
}

int bfs_instance_list_schedules(struct bfs_instance *inst, bfs_name_cb cb,
				void *arg)
{
	int ret = bfs_schedule_list(inst->e->repo, inst->id, cb, arg);

	return ret == -ENAMETOOLONG ? 0 : ret;
}

int bfs_instance_list_executions(struct bfs_instance *inst, bfs_name_cb cb,
				 void *arg)
{
	json_t *ids, *id;
	size_t i;
	int ret;

	ret = bfs_execution_list(inst->e->repo, inst->id, NULL, &ids);
	if (ret)
		return ret == -ENAMETOOLONG ? 0 : ret;
	json_array_foreach(ids, i, id)
	{
		ret = cb(json_string_value(id), arg);
		if (ret)
			break;
	}
	json_decref(ids);
	return ret;
}

int bfs_instance_execution_show(struct bfs_instance *inst, const char *id,
				char **json, size_t *len)
{
	json_t *rec;
	int ret;

	ret = bfs_execution_get(inst->e->repo, inst->id, id, &rec);
	if (ret)
		return ret;
	ret = sched_text(rec, json, len);
	json_decref(rec);
	return ret;
}

int bfs_instance_execution_delete(struct bfs_instance *inst, const char *id)
{
	int64_t started;
	json_t *rec;
	int ret;

	ret = bfs_execution_get(inst->e->repo, inst->id, id, &rec);
	if (ret == -EIO) /* a damaged record may go */
		return bfs_execution_delete(inst->e->repo, inst->id, id);
	if (ret)
		return ret;
	ret = strcmp(sched_str(rec, "state"), "running") ? 0 : -EBUSY;
	/* a run no host has finished for this long is dead: may go */
	if (ret && !bfs_timestamp_parse(sched_str(rec, "started"), &started) &&
	    time(NULL) - started >= BFS_LOCK_STALE_SECS)
		ret = 0;
	json_decref(rec);
	return ret ? ret : bfs_execution_delete(inst->e->repo, inst->id, id);
}
