/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine internals shared by engine.c, jobs.c and events.c only.
 *
 * Locking: engine->lock protects the instance array; inst->lock protects
 * everything in an instance below it.  Never take engine->lock while
 * holding an instance lock.  No lock is held across backend or datastore
 * I/O except where noted.
 */
#ifndef BFS_ENGINE_INT_H
#define BFS_ENGINE_INT_H

#include <pthread.h>
#include <time.h>

#include "datastore.h"
#include "engine.h"
#include "engine_trove.h"
#include "pool.h"

/* Listings of other hosts' changes are trusted this long. */
#define ENGINE_LISTING_TTL 5

struct bfs_engine {
	struct bfs_config *conf;
	struct bfs_backend *be;
	struct bfs_repo *repo;
	struct bfs_pool *read_pool;
	struct bfs_pool *write_pool;
	struct bfs_cache *cache;
	struct bfs_trove_containers *trove; /* legacy containers (Trove) */
	struct bfs_notify *notify;	    /* webhook, or NULL */
	int state_lock_fd;

	pthread_mutex_t lock;
	struct bfs_instance **instances; /* sorted by id */
	size_t ninstances;
	time_t discovered; /* last listing of the repository's instances */
	struct engine_sched *sched; /* scheduler thread, or NULL */
};

struct backup_slot {
	char ts[BFS_TIMESTAMP_LEN + 1];
	uint64_t size;        /* from the listing (the manifest's name) */
	struct bfs_backup *b; /* loaded on first use, or NULL */
};

enum job_kind { JOB_SNAPSHOT, JOB_RESTORE };

struct bfs_job {
	struct bfs_instance *inst;
	enum job_kind kind;
	char label[BFS_NAME_MAX + 1];
	char schedule[BFS_NAME_MAX + 1]; /* "" unless a schedule started it */
	json_t *strategy;
	struct bfs_progress progress;
	time_t started;
	double t0; /* monotonic start, for durations */
	double phase_t0; /* monotonic start of the phase progress counts */
	int applying; /* restore: past verification, instance locked */
	pthread_t thread;
};

struct bfs_restore {
	struct bfs_instance *inst;
	char name[BFS_NAME_MAX + 1];
	char *spool_path;
	int fd;
	_Atomic uint64_t size;
	_Atomic int write_err; /* a failed write spoils the spool */
	/* SHA-256 of the spool while it is written front to back (cp
	 * does), so finding where it came from needs no second read. */
	pthread_mutex_t hash_lock;
	struct bfs_sha256 *hash; /* NULL once a write came out of order */
	uint64_t hashed;	 /* bytes in hash */
	/* The stored backup the file is, when found (for the events). */
	char origin_instance[BFS_NAME_MAX + 1];
	char origin_ts[BFS_TIMESTAMP_LEN + 1];
};

struct bfs_instance {
	struct bfs_engine *e;
	char *id;
	char *dir;               /* <state_dir>/instances/<id> */
	struct bfs_datastore *ds; /* NULL: known only from the repository */

	pthread_mutex_t lock;
	pthread_cond_t job_done;
	struct backup_slot *backups; /* sorted, oldest first */
	size_t nbackups;
	time_t listed;    /* when backups was listed; 0 = stale */
	struct bfs_job *job;         /* running job, or NULL */
	int job_threads;             /* job threads not yet returned */
	struct bfs_restore *restore; /* restore being spooled, or NULL */
	json_t *records;  /* label -> snapshot job record */
	json_t *last;     /* {"backup": ..., "restore": ...} */
	char *error;      /* set: the instance is in ERROR */
};

/* engine.c */
int engine_instance_new(struct bfs_engine *e, const char *id, json_t *conf,
			struct bfs_instance **out, char *err, size_t errlen);
void engine_instance_free(struct bfs_instance *inst);
/* Forget the cached listing so the next one sees our own change. */
void engine_invalidate_backups(struct bfs_instance *inst);
/* Write JSON to path atomically (temp + fsync + rename). */
int engine_write_json(const char *path, json_t *value);
/* Monotonic seconds, for durations. */
double engine_now(void);

/* origin.c: the stored backup a restore file is, by size and SHA-256
 * (sha256 NULL: read fd to compute it). */
struct engine_origin {
	int found;
	char instance[BFS_NAME_MAX + 1];
	char ts[BFS_TIMESTAMP_LEN + 1];
	char datastore[64];
};
int engine_restore_origin(struct bfs_engine *e, int fd, uint64_t size,
			  const uint8_t *sha256, struct engine_origin *out);

/* jobs.c */
int jobs_load(struct bfs_instance *inst);
/* Record the last result of a kind ("backup", "restore"): lock held. */
void jobs_set_last(struct bfs_instance *inst, const char *kind, json_t *rec);
void jobs_recover(struct bfs_instance *inst);
void jobs_wait_all(struct bfs_instance *inst);
json_t *jobs_status(struct bfs_instance *inst); /* new, lock held */
/* bfs_instance_snapshot_start for a schedule: the manifest records its
 * name (extra.schedule) so that retention can tell its backups. */
int jobs_snapshot_start(struct bfs_instance *inst, const char *label,
			const char *schedule, const char *strategy, size_t len,
			char *err, size_t errlen);

/* scheduler.c: started by bfs_engine_start_scheduler, stopped (waiting
 * for the executions it started) by bfs_engine_close. */
void sched_stop(struct engine_sched *s);

/* events.c: fields is stolen; adds time, event and instance. */
void events_emit(struct bfs_instance *inst, const char *event,
		 json_t *fields);
int events_read(struct bfs_instance *inst, char **text, size_t *len);

#endif
