// SPDX-License-Identifier: Apache-2.0
/*
 * Jobs: snapshots (non-disruptive backups) and restores of an instance.
 *
 * One job runs per instance at a time; a second one gets EBUSY (the
 * filesystem's "423 Locked").  Reading backups never takes part in this.
 * Every job is journalled in the instance's state directory before it
 * changes anything, so a restart can tell what was interrupted
 * (Cinder's previous_status, as a file).
 */
#include "codec.h"
#include "engine_int.h"
#include "log.h"
#include "writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Spooling stops this far from a full disk. */
#define SPOOL_RESERVE_BYTES (64ull << 20)
/* Largest strategy text a snapshot file may hold. */
#define STRATEGY_MAX_BYTES (64u << 10)
/* Tries to find a free timestamp when two backups share a second. */
#define TIMESTAMP_TRIES 120

static void job_path(struct bfs_instance *inst, const char *what,
		     const char *name, char *path, size_t len)
{
	if (name)
		snprintf(path, len, "%s/%s/%s", inst->dir, what, name);
	else
		snprintf(path, len, "%s/%s", inst->dir, what);
}

/* ---- the journal ---- */

static int journal_write(struct bfs_instance *inst, const char *kind,
			 const char *name)
{
	char path[4096];
	json_t *j = json_pack("{ssss}", "kind", kind, "name", name);
	int ret;

	if (!j)
		return -ENOMEM;
	job_path(inst, "job.journal", NULL, path, sizeof(path));
	ret = engine_write_json(path, j);
	json_decref(j);
	return ret;
}

static void journal_clear(struct bfs_instance *inst)
{
	char path[4096];

	job_path(inst, "job.journal", NULL, path, sizeof(path));
	unlink(path);
}

/* ---- snapshot job records ---- */

static int record_save(struct bfs_instance *inst, const char *label,
		       json_t *rec)
{
	char path[4096];

	job_path(inst, "snapshots", label, path, sizeof(path));
	return engine_write_json(path, rec);
}

static int record_load_one(struct bfs_instance *inst, const char *label)
{
	char path[4096];
	json_error_t jerr;
	json_t *rec;

	job_path(inst, "snapshots", label, path, sizeof(path));
	rec = json_load_file(path, 0, &jerr);
	if (!rec || !json_is_object(rec)) {
		bfs_warn("ignoring unreadable job record '%s'", path);
		json_decref(rec);
		return 0;
	}
	return json_object_set_new(inst->records, label, rec) ? -ENOMEM : 0;
}

void jobs_set_last(struct bfs_instance *inst, const char *kind, json_t *rec)
{
	char path[4096];

	json_object_set(inst->last, kind, rec);
	job_path(inst, "last.json", NULL, path, sizeof(path));
	engine_write_json(path, inst->last);
}

int jobs_load(struct bfs_instance *inst)
{
	char path[4096];
	struct dirent *d;
	json_t *last;
	DIR *dir;
	int ret = 0;

	job_path(inst, "last.json", NULL, path, sizeof(path));
	last = json_load_file(path, 0, NULL);
	if (json_is_object(last)) {
		json_decref(inst->last);
		inst->last = last;
	} else {
		json_decref(last);
	}

	job_path(inst, "snapshots", NULL, path, sizeof(path));
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	job_path(inst, "spool", NULL, path, sizeof(path));
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	job_path(inst, "snapshots", NULL, path, sizeof(path));
	dir = opendir(path);
	if (!dir)
		return -errno;
	while (!ret && (d = readdir(dir))) {
		if (!bfs_name_ok(d->d_name)) /* also skips temporaries */
			continue;
		ret = record_load_one(inst, d->d_name);
	}
	closedir(dir);
	return ret;
}

/* Empty the spool directory: spooled restores do not survive a restart. */
static void spool_clear(struct bfs_instance *inst)
{
	char path[4096], file[4096 + 256];
	struct dirent *d;
	DIR *dir;

	job_path(inst, "spool", NULL, path, sizeof(path));
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, d->d_name);
		unlink(file);
	}
	closedir(dir);
}

/*
 * After a restart: the datastore removes temporary snapshots and finishes
 * or rolls back an interrupted restore; then the job record and the
 * events say what happened.
 */
void jobs_recover(struct bfs_instance *inst)
{
	const char *reason = "interrupted by a restart of backupfs";
	char path[4096];
	const char *label;
	json_t *j, *rec;
	int ret;

	if (inst->ds) {
		ret = bfs_datastore_recover(inst->ds);
		if (ret)
			bfs_err("recovery of instance '%s' failed: %s",
				inst->id, strerror(-ret));
	}
	spool_clear(inst);
	json_object_foreach(inst->records, label, rec)
	{
		if (strcmp(json_string_value(json_object_get(rec, "state"))
				   ?: "",
			   "running"))
			continue;
		json_object_set_new(rec, "state", json_string("failed"));
		json_object_set_new(rec, "error", json_string(reason));
		record_save(inst, label, rec);
	}
	job_path(inst, "job.journal", NULL, path, sizeof(path));
	j = json_load_file(path, 0, NULL);
	if (!j)
		return;
	if (!strcmp(json_string_value(json_object_get(j, "kind")) ?: "",
		    "restore"))
		events_emit(
			inst, "backup.restore.error",
			json_pack("{ssss}", "label",
				  json_string_value(json_object_get(j, "name"))
					  ?: "",
				  "error", reason));
	else
		events_emit(
			inst, "backup.create.error",
			json_pack("{ssss}", "label",
				  json_string_value(json_object_get(j, "name"))
					  ?: "",
				  "error", reason));
	json_decref(j);
	journal_clear(inst);
}

/* ---- snapshots ---- */

/*
 * {"done", "total", "percent", "started", "rate", "eta"} of a job: new
 * reference.  rate is bytes/s since the current phase began (a restore
 * verifies, then applies, each counting from 0); eta is seconds, null when
 * unknown (no rate yet, no total, done past an estimated total, or the job
 * failed), 0 once it completed.
 */
enum progress_when { PROGRESS_RUNNING, PROGRESS_COMPLETED, PROGRESS_FAILED };

static json_t *progress_json(struct bfs_job *job, enum progress_when when)
{
	struct bfs_progress *p = &job->progress;
	uint64_t done = atomic_load(&p->done);
	uint64_t total = atomic_load(&p->total);
	double pct = total ? 100.0 * (double)(done < total ? done : total) /
				     (double)total
			   : 0.0;
	double secs = engine_now() - job->phase_t0;
	double rate = secs > 0.001 ? (double)done / secs : 0.0;
	char ts[BFS_TIMESTAMP_LEN + 1];
	json_t *eta;

	bfs_timestamp_format(job->started, ts);
	if (when == PROGRESS_COMPLETED)
		eta = json_integer(0);
	else if (when == PROGRESS_RUNNING && rate > 0 && total && done < total)
		eta = json_integer(
			(json_int_t)((double)(total - done) / rate + 0.5));
	else
		eta = json_null();
	return json_pack("{sIsIsfsssIso}", "done", (json_int_t)done, "total",
			 (json_int_t)total, "percent", pct, "started", ts,
			 "rate", (json_int_t)rate, "eta", eta);
}

static void job_free(struct bfs_job *job)
{
	json_decref(job->strategy);
	free(job);
}

/* Job is over: forget it and wake waiters.  Instance lock held. */
static void job_end(struct bfs_instance *inst)
{
	inst->job = NULL;
	pthread_cond_broadcast(&inst->job_done);
}

static int snap_commit(struct bfs_job *job, struct bfs_manifest *m)
{
	struct bfs_repo *repo = job->inst->e->repo;
	int64_t t = job->started;
	int ret = -EEXIST;

	/* Timestamps are unique per instance: on a clash take the next
	 * free second.  The create-if-absent put makes this race-free
	 * against other hosts too. */
	for (int i = 0; i < TIMESTAMP_TRIES && ret == -EEXIST; i++, t++) {
		free(m->timestamp);
		m->timestamp = malloc(BFS_TIMESTAMP_LEN + 1);
		if (!m->timestamp)
			return -ENOMEM;
		bfs_timestamp_format(t, m->timestamp);
		m->created = t;
		ret = bfs_repo_manifest_put(repo, m);
	}
	return ret;
}

static int snap_fill_manifest(struct bfs_job *job, struct bfs_manifest *m,
			      json_t *meta)
{
	struct bfs_instance *inst = job->inst;
	char parent[BFS_TIMESTAMP_LEN + 1];
	uint8_t id[16];
	char hex[33];
	const char *s;
	json_t *eff;

	if (bfs_random(id, sizeof(id)))
		return -EIO;
	bfs_hex(id, sizeof(id), hex);
	m->backup_id = strdup(hex);
	m->instance = strdup(inst->id);
	m->datastore = strdup(bfs_datastore_name(inst->ds));
	s = json_string_value(json_object_get(meta, "datastore_version"));
	m->datastore_version = strdup(s ? s : "");
	s = json_string_value(json_object_get(meta, "format"));
	m->format = strdup(s ? s : "raw");
	m->codec = strdup(bfs_codec_name(BFS_CODEC_DEFAULT));
	m->label = strdup(job->label);
	/* which schedule made it: retention trusts this, never the label */
	if (job->schedule[0])
		json_object_set_new(meta, "schedule",
				    json_string(job->schedule));
	if (!bfs_instance_latest(inst, parent))
		m->parent = strdup(parent);
	/* The strategy as it ran (defaults filled in), if the driver says. */
	eff = json_object_get(meta, "strategy");
	json_decref(m->strategy);
	m->strategy = json_deep_copy(json_is_object(eff) ? eff : job->strategy);
	json_object_del(meta, "strategy");
	json_decref(m->extra);
	m->extra = json_incref(meta);
	if (!m->backup_id || !m->instance || !m->datastore ||
	    !m->datastore_version || !m->format || !m->codec || !m->label ||
	    !m->strategy)
		return -ENOMEM;
	return 0;
}

/* The datastore's stream goes to the writer through here, which also
 * keeps the writer lock fresh during long backups. */
struct snap_sink {
	struct bfs_writer *w;
	struct bfs_repo_lock *lock;
	time_t refreshed;
};

static int snap_sink(void *arg, const void *data, size_t len)
{
	struct snap_sink *s = arg;
	time_t now = time(NULL);
	int ret;

	if (now - s->refreshed >= BFS_LOCK_STALE_SECS / 4) {
		/* -ESTALE: another host took the lock for dead, and a gc
		 * may have removed chunks this backup deduplicated against. */
		ret = bfs_repo_lock_refresh(s->lock);
		if (ret)
			return ret;
		s->refreshed = now;
	}
	return bfs_writer_write(s->w, data, len);
}

/* Stream the datastore into the repository and commit the manifest. */
static int snap_run(struct bfs_job *job, struct bfs_manifest *m, char *err,
		    size_t errlen)
{
	struct bfs_engine *e = job->inst->e;
	struct bfs_repo_lock *lock;
	struct snap_sink sink;
	struct bfs_writer *w;
	json_t *meta;
	int ret;

	ret = bfs_repo_lock_writer(e->repo, &lock);
	if (ret) {
		snprintf(err, errlen, "repository is locked (gc running?)");
		return ret;
	}
	meta = json_object();
	ret = meta ? bfs_writer_new(e->repo, e->write_pool, BFS_CODEC_DEFAULT,
				    bfs_codec_default_level(BFS_CODEC_DEFAULT),
				    &w)
		   : -ENOMEM;
	if (ret)
		goto out_unlock;
	sink = (struct snap_sink){w, lock, time(NULL)};
	ret = bfs_datastore_backup(job->inst->ds, job->strategy, snap_sink,
				   &sink, &job->progress, meta, err, errlen);
	if (ret) {
		bfs_writer_abort(w);
		goto out_unlock;
	}
	ret = bfs_writer_finish(w, m);
	if (ret) {
		snprintf(err, errlen, "storing chunks failed: %s",
			 strerror(-ret));
		goto out_unlock;
	}
	ret = snap_fill_manifest(job, m, meta);
	if (!ret)
		ret = snap_commit(job, m);
	if (ret)
		snprintf(err, errlen, "committing the manifest failed: %s",
			 strerror(-ret));
out_unlock:
	json_decref(meta);
	bfs_repo_unlock(lock);
	return ret;
}

static void snap_finish(struct bfs_job *job, struct bfs_manifest *m, int ret,
			const char *err)
{
	struct bfs_instance *inst = job->inst;
	json_t *rec, *fields;
	char now[BFS_TIMESTAMP_LEN + 1];
	double secs = engine_now() - job->t0;

	/* Before the record says "completed": a reader that sees it must
	 * find the backup in backups/ too. */
	engine_invalidate_backups(inst);
	bfs_timestamp_format(time(NULL), now);
	pthread_mutex_lock(&inst->lock);
	rec = json_object_get(inst->records, job->label);
	json_object_set_new(rec, "state",
			    json_string(ret ? "failed" : "completed"));
	json_object_set_new(rec, "finished", json_string(now));
	json_object_set_new(rec, "error", ret ? json_string(err) : json_null());
	json_object_set_new(
		rec, "progress",
		progress_json(job, ret ? PROGRESS_FAILED : PROGRESS_COMPLETED));
	if (!ret) {
		json_object_set_new(rec, "backup", json_string(m->timestamp));
		json_object_set_new(rec, "size",
				    json_integer((json_int_t)m->size));
		json_object_set_new(rec, "stored",
				    json_integer((json_int_t)m->stored_bytes));
	}
	jobs_set_last(inst, "backup", rec);
	record_save(inst, job->label, rec);
	journal_clear(inst);
	job_end(inst);
	pthread_mutex_unlock(&inst->lock);

	if (ret) {
		bfs_err("snapshot '%s' of instance '%s' failed: %s", job->label,
			inst->id, err);
		fields = json_pack("{sssssIsf}", "label", job->label, "error",
				   err, "bytes",
				   (json_int_t)atomic_load(&job->progress.done),
				   "duration", secs);
		events_emit(inst, "backup.create.error", fields);
		return;
	}
	fields = json_pack("{sssssIsIsf}", "label", job->label, "backup",
			   m->timestamp, "bytes", (json_int_t)m->size, "stored",
			   (json_int_t)m->stored_bytes, "duration", secs);
	events_emit(inst, "backup.create.end", fields);
}

static void *snap_thread(void *arg)
{
	struct bfs_job *job = arg;
	struct bfs_instance *inst = job->inst;
	struct bfs_manifest *m = bfs_manifest_new();
	char err[1024] = "";
	int ret;

	events_emit(job->inst, "backup.create.start",
		    json_pack("{sssI}", "label", job->label, "bytes",
			      (json_int_t)atomic_load(&job->progress.total)));
	ret = m ? snap_run(job, m, err, sizeof(err)) : -ENOMEM;
	if (ret && !*err)
		snprintf(err, sizeof(err), "%s", strerror(-ret));
	snap_finish(job, m, ret, err);
	bfs_manifest_free(m);
	job_free(job);
	/* The last touch of the instance: after this the engine may free
	 * it (jobs_wait_all). */
	pthread_mutex_lock(&inst->lock);
	inst->job_threads--;
	pthread_cond_broadcast(&inst->job_done);
	pthread_mutex_unlock(&inst->lock);
	return NULL;
}

static int snap_parse_strategy(struct bfs_instance *inst, const char *text,
			       size_t len, json_t **out, char *err,
			       size_t errlen)
{
	json_error_t jerr;
	json_t *s;
	size_t i = 0;
	int ret;

	while (i < len && (text[i] == ' ' || text[i] == '\n' ||
			   text[i] == '\t' || text[i] == '\r'))
		i++;
	if (len > STRATEGY_MAX_BYTES) {
		snprintf(err, errlen, "strategy over %u bytes",
			 STRATEGY_MAX_BYTES);
		return -EINVAL;
	}
	s = i == len ? json_object() : json_loadb(text, len, 0, &jerr);
	if (!s) {
		snprintf(err, errlen,
			 "strategy is not JSON: line %d, column "
			 "%d: %s",
			 jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(s)) {
		snprintf(err, errlen, "strategy must be a JSON object");
		json_decref(s);
		return -EINVAL;
	}
	ret = bfs_datastore_check_strategy(inst->ds, s, err, errlen);
	if (ret) {
		json_decref(s);
		return ret;
	}
	*out = s;
	return 0;
}

static json_t *snap_record_new(struct bfs_job *job)
{
	char ts[BFS_TIMESTAMP_LEN + 1];

	bfs_timestamp_format(job->started, ts);
	return json_pack("{sssssssOsnsnsnso}", "label", job->label, "state",
			 "running", "started", ts, "strategy", job->strategy,
			 "backup", "error", "finished", "progress",
			 progress_json(job, PROGRESS_RUNNING));
}

/* Register and launch a job.  Instance lock held. */
static int snap_launch(struct bfs_instance *inst, struct bfs_job *job)
{
	json_t *rec;
	int ret;

	rec = snap_record_new(job);
	if (!rec)
		return -ENOMEM;
	ret = journal_write(inst, "snapshot", job->label);
	if (!ret)
		ret = record_save(inst, job->label, rec);
	if (ret) {
		json_decref(rec);
		return ret;
	}
	json_object_set_new(inst->records, job->label, rec);
	inst->job = job;
	inst->job_threads++;
	ret = pthread_create(&job->thread, NULL, snap_thread, job);
	if (ret) {
		inst->job = NULL;
		inst->job_threads--;
		json_object_del(inst->records, job->label);
		journal_clear(inst);
		return -ret;
	}
	pthread_detach(job->thread);
	return 0;
}

/*
 * Refuse a backup the repository has no room for, before it starts.  A
 * first backup can deduplicate little, so it needs room for the whole
 * estimate (uncompressed: an upper bound); later ones share most chunks
 * with their parent and only need the reserve.
 */
static int snap_check_space(struct bfs_instance *inst, uint64_t estimate,
			    char *err, size_t errlen)
{
	char latest[BFS_TIMESTAMP_LEN + 1];
	uint64_t avail, need = SPOOL_RESERVE_BYTES;

	if (bfs_backend_space(bfs_repo_backend(inst->e->repo), &avail))
		return 0; /* the backend cannot tell: its put will */
	if (bfs_instance_latest(inst, latest))
		need += estimate;
	if (avail >= need)
		return 0;
	snprintf(err, errlen,
		 "not enough space in the repository: %llu MiB "
		 "free, %llu MiB needed",
		 (unsigned long long)(avail >> 20),
		 (unsigned long long)(need >> 20));
	return -ENOSPC;
}

/*
 * A snapshot refused for what it asked (a bad strategy, no room) is the
 * last backup result: status says why, not only the log.  Busy and
 * taken labels are not results: the job they met is.
 */
static void snap_record_refusal(struct bfs_instance *inst, const char *label,
				int ret, const char *err)
{
	char now[BFS_TIMESTAMP_LEN + 1];
	json_t *rec;

	if (ret == -EBUSY || ret == -EEXIST || ret == -ENOMEM)
		return;
	bfs_timestamp_format(time(NULL), now);
	rec = json_pack("{sssssssssn}", "label", label, "state", "refused",
			"finished", now, "error",
			err && *err ? err : strerror(-ret), "backup");
	if (!rec)
		return;
	pthread_mutex_lock(&inst->lock);
	jobs_set_last(inst, "backup", rec);
	pthread_mutex_unlock(&inst->lock);
	json_decref(rec);
}

int bfs_instance_snapshot_start(struct bfs_instance *inst, const char *label,
				const char *strategy, size_t len, char *err,
				size_t errlen)
{
	return jobs_snapshot_start(inst, label, NULL, strategy, len, err,
				   errlen);
}

int jobs_snapshot_start(struct bfs_instance *inst, const char *label,
			const char *schedule, const char *strategy, size_t len,
			char *err, size_t errlen)
{
	struct bfs_job *job;
	uint64_t total = 0;
	int ret;

	if (!inst->ds) {
		snprintf(err, errlen, "instance '%s' is not configured here",
			 inst->id);
		return -EOPNOTSUPP;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->inst = inst;
	job->kind = JOB_SNAPSHOT;
	snprintf(job->label, sizeof(job->label), "%s", label);
	snprintf(job->schedule, sizeof(job->schedule), "%s", schedule ?: "");
	job->started = time(NULL);
	job->t0 = engine_now();
	job->phase_t0 = job->t0;
	ret = snap_parse_strategy(inst, strategy, len, &job->strategy, err,
				  errlen);
	if (ret)
		goto out_free;
	/* A busy instance says so before the database is asked anything
	 * (the estimate runs its tools); checked again below. */
	pthread_mutex_lock(&inst->lock);
	if (inst->job || inst->restore) {
		snprintf(err, errlen, "instance '%s' is busy", inst->id);
		ret = -EBUSY;
	}
	pthread_mutex_unlock(&inst->lock);
	if (ret)
		goto out_free;
	if (!bfs_datastore_estimate(inst->ds, job->strategy, &total))
		atomic_store(&job->progress.total, total);
	ret = snap_check_space(inst, total, err, errlen);
	if (ret)
		goto out_free;

	pthread_mutex_lock(&inst->lock);
	if (inst->job || inst->restore) {
		snprintf(err, errlen, "instance '%s' is busy", inst->id);
		ret = -EBUSY;
	} else if (json_object_get(inst->records, label)) {
		snprintf(err, errlen, "snapshot '%s' exists", label);
		ret = -EEXIST;
	} else {
		ret = snap_launch(inst, job);
	}
	pthread_mutex_unlock(&inst->lock);
	if (!ret)
		return 0;
out_free:
	snap_record_refusal(inst, label, ret, err);
	job_free(job);
	return ret;
}

/* The record with live progress filled in: new reference, lock held. */
static json_t *snap_record_now(struct bfs_instance *inst, const char *label)
{
	json_t *rec = json_object_get(inst->records, label);
	struct bfs_job *job = inst->job;

	if (!rec)
		return NULL;
	rec = json_deep_copy(rec);
	if (rec && job && job->kind == JOB_SNAPSHOT &&
	    !strcmp(job->label, label))
		json_object_set_new(rec, "progress",
				    progress_json(job, PROGRESS_RUNNING));
	return rec;
}

int bfs_instance_snapshot_show(struct bfs_instance *inst, const char *label,
			       char **json, size_t *len)
{
	json_t *rec;

	pthread_mutex_lock(&inst->lock);
	rec = snap_record_now(inst, label);
	pthread_mutex_unlock(&inst->lock);
	if (!rec)
		return -ENOENT;
	*json = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(rec);
	if (!*json)
		return -ENOMEM;
	*len = strlen(*json);
	return 0;
}

int bfs_instance_list_snapshots(struct bfs_instance *inst, bfs_name_cb cb,
				void *arg)
{
	const char *label;
	json_t *names, *v;
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&inst->lock);
	names = json_array();
	json_object_foreach(inst->records, label, v)
		json_array_append_new(names, json_string(label));
	pthread_mutex_unlock(&inst->lock);
	if (!names)
		return -ENOMEM;
	json_array_foreach(names, i, v)
	{
		ret = cb(json_string_value(v), arg);
		if (ret)
			break;
	}
	json_decref(names);
	return ret;
}

int bfs_instance_snapshot_forget(struct bfs_instance *inst, const char *label)
{
	char path[4096];
	int ret = 0;

	pthread_mutex_lock(&inst->lock);
	if (!json_object_get(inst->records, label))
		ret = -ENOENT;
	else if (inst->job && !strcmp(inst->job->label, label))
		ret = -EBUSY;
	if (!ret) {
		job_path(inst, "snapshots", label, path, sizeof(path));
		if (unlink(path) && errno != ENOENT)
			ret = -errno;
		else
			json_object_del(inst->records, label);
	}
	pthread_mutex_unlock(&inst->lock);
	return ret;
}

void jobs_wait_all(struct bfs_instance *inst)
{
	pthread_mutex_lock(&inst->lock);
	/* The job ends (its record is final) before its thread does: wait
	 * for both, or the thread would use a freed instance. */
	while (inst->job || inst->job_threads)
		pthread_cond_wait(&inst->job_done, &inst->lock);
	pthread_mutex_unlock(&inst->lock);
}

/* ---- restores ---- */

/* Free what a restore owns but its spool and its slot. */
static void restore_release(struct bfs_restore *r)
{
	bfs_sha256_free(r->hash);
	pthread_mutex_destroy(&r->hash_lock);
	free(r->spool_path);
	free(r);
}

int bfs_instance_restore_begin(struct bfs_instance *inst, const char *name,
			       struct bfs_restore **out)
{
	struct bfs_restore *r;
	char path[4096];
	int ret = 0;

	if (!inst->ds)
		return -EOPNOTSUPP;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->inst = inst;
	r->fd = -1;
	pthread_mutex_init(&r->hash_lock, NULL);
	r->hash = bfs_sha256_new(); /* NULL: computed from the spool later */
	snprintf(r->name, sizeof(r->name), "%s", name);
	job_path(inst, "spool", name, path, sizeof(path));
	r->spool_path = strdup(path);
	if (!r->spool_path) {
		restore_release(r);
		return -ENOMEM;
	}
	pthread_mutex_lock(&inst->lock);
	if (inst->job || inst->restore)
		ret = -EBUSY;
	if (!ret) {
		r->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0600);
		if (r->fd < 0)
			ret = -errno;
		else
			inst->restore = r;
	}
	pthread_mutex_unlock(&inst->lock);
	if (ret) {
		restore_release(r);
		return ret;
	}
	*out = r;
	return 0;
}

static int spool_has_room(int fd, size_t size)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv))
		return -errno;
	if ((uint64_t)sv.f_bavail * sv.f_frsize < size + SPOOL_RESERVE_BYTES)
		return -ENOSPC;
	return 0;
}

/* Keep the running hash while writes come front to back. */
static void restore_hash(struct bfs_restore *r, const void *buf, size_t n,
			 uint64_t off)
{
	pthread_mutex_lock(&r->hash_lock);
	if (r->hash && off == r->hashed) {
		bfs_sha256_update(r->hash, buf, n);
		r->hashed += n;
	} else if (r->hash) {
		bfs_sha256_free(r->hash);
		r->hash = NULL;
	}
	pthread_mutex_unlock(&r->hash_lock);
}

ssize_t bfs_restore_write(struct bfs_restore *r, const void *buf, size_t size,
			  uint64_t off)
{
	ssize_t n;
	int ret;

	ret = spool_has_room(r->fd, size);
	if (!ret) {
		n = pwrite(r->fd, buf, size, (off_t)off);
		ret = n < 0 ? -errno : 0;
	}
	if (ret) {
		if (!atomic_exchange(&r->write_err, ret))
			bfs_err("cannot spool the restore of '%s' in '%s': %s",
				r->inst->id, r->spool_path, strerror(-ret));
		return ret;
	}
	if (off + (uint64_t)n > atomic_load(&r->size))
		atomic_store(&r->size, off + (uint64_t)n);
	restore_hash(r, buf, (size_t)n, off);
	return n;
}

static void restore_free(struct bfs_restore *r)
{
	struct bfs_instance *inst = r->inst;

	if (r->fd >= 0)
		close(r->fd);
	unlink(r->spool_path);
	pthread_mutex_lock(&inst->lock);
	if (inst->restore == r)
		inst->restore = NULL;
	pthread_mutex_unlock(&inst->lock);
	restore_release(r);
}

void bfs_restore_abort(struct bfs_restore *r)
{
	if (r)
		restore_free(r);
}

/*
 * A file that is a stored backup of another datastore (a PostgreSQL base
 * backup is a fine tar for a "files" instance) is refused, naming it.
 * Files of unknown origin are left to the datastore's own checks.
 */
static int restore_check_origin(struct bfs_restore *r, char *err, size_t errlen)
{
	struct bfs_instance *inst = r->inst;
	const char *ds = bfs_instance_datastore(inst);
	struct engine_origin o;

	uint8_t sha[32];
	int have_sha = 0;

	pthread_mutex_lock(&r->hash_lock);
	if (r->hash && r->hashed == atomic_load(&r->size)) {
		bfs_sha256_final(r->hash, sha);
		have_sha = 1;
	} else {
		bfs_sha256_free(r->hash);
	}
	r->hash = NULL;
	pthread_mutex_unlock(&r->hash_lock);
	if (engine_restore_origin(inst->e, r->fd, atomic_load(&r->size),
				  have_sha ? sha : NULL, &o) ||
	    !o.found)
		return 0;
	snprintf(r->origin_instance, sizeof(r->origin_instance), "%s",
		 o.instance);
	snprintf(r->origin_ts, sizeof(r->origin_ts), "%s", o.ts);
	if (!strcmp(o.datastore, ds))
		return 0;
	snprintf(err, errlen,
		 "the file is backup %s of instance '%s', a %s backup: "
		 "instance '%s' is %s",
		 o.ts, o.instance, o.datastore, inst->id, ds);
	return -EINVAL;
}

/* Verify, then apply; sets the job's phase for status. */
static int restore_apply(struct bfs_restore *r, struct bfs_job *job, char *err,
			 size_t errlen)
{
	struct bfs_instance *inst = r->inst;
	int ret;

	/* A spool that missed a write is not the file the user wrote. */
	ret = atomic_load(&r->write_err);
	if (ret) {
		snprintf(err, errlen, "spooling failed: %s", strerror(-ret));
		return ret;
	}
	if (fsync(r->fd))
		return -errno;
	atomic_store(&job->progress.total, atomic_load(&r->size));
	ret = restore_check_origin(r, err, errlen);
	if (ret)
		return ret;
	ret = bfs_datastore_verify(inst->ds, r->spool_path, &job->progress, err,
				   errlen);
	if (ret) {
		/* Not a backup of this datastore: nothing was changed. */
		return -EINVAL;
	}
	pthread_mutex_lock(&inst->lock);
	job->applying = 1;
	job->phase_t0 = engine_now();
	atomic_store(&job->progress.done, 0);
	pthread_mutex_unlock(&inst->lock);
	return bfs_datastore_restore(inst->ds, r->spool_path, &job->progress,
				     err, errlen);
}

static void restore_record(struct bfs_instance *inst, struct bfs_restore *r,
			   time_t started, int ret, const char *err)
{
	char now[BFS_TIMESTAMP_LEN + 1], ts[BFS_TIMESTAMP_LEN + 1];
	json_t *rec;

	bfs_timestamp_format(time(NULL), now);
	bfs_timestamp_format(started, ts);
	rec = json_pack("{sssssssssIso}", "name", r->name, "state",
			ret ? "failed" : "completed", "started", ts, "finished",
			now, "bytes", (json_int_t)atomic_load(&r->size),
			"error", ret ? json_string(err) : json_null());
	pthread_mutex_lock(&inst->lock);
	if (rec)
		jobs_set_last(inst, "restore", rec);
	json_decref(rec);
	pthread_mutex_unlock(&inst->lock);
}

/* What every restore end/error event carries; backup (and
 * source_instance) when the file is a known stored backup. */
static void restore_fields(struct bfs_restore *r, json_t *fields, double secs)
{
	if (!fields)
		return;
	json_object_set_new(fields, "file", json_string(r->name));
	json_object_set_new(fields, "label", json_string(r->name));
	json_object_set_new(fields, "bytes",
			    json_integer((json_int_t)atomic_load(&r->size)));
	json_object_set_new(fields, "duration", json_real(secs));
	if (*r->origin_ts) {
		json_object_set_new(fields, "backup",
				    json_string(r->origin_ts));
		json_object_set_new(fields, "source_instance",
				    json_string(r->origin_instance));
	}
}

int bfs_restore_commit(struct bfs_restore *r)
{
	struct bfs_instance *inst = r->inst;
	struct bfs_job job = {.inst = inst, .kind = JOB_RESTORE};
	char err[1024] = "";
	json_t *fields;
	int ret;

	snprintf(job.label, sizeof(job.label), "%s", r->name);
	job.started = time(NULL);
	job.t0 = engine_now();
	job.phase_t0 = job.t0;
	pthread_mutex_lock(&inst->lock);
	inst->job = &job;
	pthread_mutex_unlock(&inst->lock);

	events_emit(inst, "backup.restore.start",
		    json_pack("{sssssI}", "file", r->name, "label", r->name,
			      "bytes", (json_int_t)atomic_load(&r->size)));
	ret = journal_write(inst, "restore", r->name);
	if (!ret)
		ret = restore_apply(r, &job, err, sizeof(err));
	if (ret && !*err)
		snprintf(err, sizeof(err), "%s", strerror(-ret));
	restore_record(inst, r, job.started, ret, err);
	if (ret) {
		bfs_err("restore of instance '%s' from '%s' failed: %s",
			inst->id, r->name, err);
		fields = json_pack("{ss}", "error", err);
		restore_fields(r, fields, engine_now() - job.t0);
		events_emit(inst, "backup.restore.error", fields);
	} else {
		fields = json_object();
		restore_fields(r, fields, engine_now() - job.t0);
		events_emit(inst, "backup.restore.end", fields);
	}
	pthread_mutex_lock(&inst->lock);
	journal_clear(inst);
	job_end(inst);
	pthread_mutex_unlock(&inst->lock);
	restore_free(r);
	return ret;
}

int bfs_instance_restore_pending(struct bfs_instance *inst, char *name,
				 uint64_t *size)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&inst->lock);
	if (inst->restore) {
		memcpy(name, inst->restore->name, sizeof(inst->restore->name));
		*size = atomic_load(&inst->restore->size);
		ret = 0;
	}
	pthread_mutex_unlock(&inst->lock);
	return ret;
}

/* ---- status ---- */

static const char *jobs_state(struct bfs_instance *inst)
{
	if (inst->error)
		return "ERROR";
	if (inst->job && inst->job->kind == JOB_RESTORE)
		return inst->job->applying ? "MAINTENANCE" : "RESTORE";
	if (inst->job)
		return "BACKUP";
	if (inst->restore)
		return "RESTORE";
	return "ACTIVE";
}

static json_t *jobs_running(struct bfs_instance *inst)
{
	struct bfs_job *job = inst->job;
	char ts[BFS_TIMESTAMP_LEN + 1];

	if (!job)
		return json_null();
	bfs_timestamp_format(job->started, ts);
	return json_pack("{ssssssso}", "kind",
			 job->kind == JOB_SNAPSHOT ? "snapshot" : "restore",
			 "label", job->label, "started", ts, "progress",
			 progress_json(job, PROGRESS_RUNNING));
}

json_t *jobs_status(struct bfs_instance *inst)
{
	const char *ds = bfs_instance_datastore(inst);

	return json_pack("{sssosssoso}", "instance", inst->id, "datastore",
			 ds ? json_string(ds) : json_null(), "state",
			 jobs_state(inst), "job", jobs_running(inst), "last",
			 json_deep_copy(inst->last));
}
