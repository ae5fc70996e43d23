/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schedules and their executions, as sealed records of the repository
 * (docs/FORMAT.md), so that every host mounting the backend sees them and
 * nobody without the key can forge or move one:
 *
 *   records/sched.<instance>/<name>   a schedule
 *   records/exec.<instance>/<id>      an execution; created exclusively,
 *                                     so the record is also the claim of
 *                                     its slot
 *
 * An execution id is "<schedule>-<YYYYMMDDTHHMMZ>" (the slot, UTC), which
 * is also the label of the snapshot it takes.
 *
 * Functions return 0 or -errno; they are thread-safe (the repository is).
 * Returned json_t are new references.
 */
#ifndef BFS_SCHEDULE_H
#define BFS_SCHEDULE_H

#include "cron.h"
#include "repo.h"

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* Longest schedule name: the execution id suffix must still fit. */
#define BFS_SCHEDULE_NAME_MAX 200
/* "-YYYYMMDDTHHMMZ" */
#define BFS_EXEC_SUFFIX_LEN   15
#define BFS_SCHEDULE_KEEP_MAX 100000
#define BFS_SCHEDULE_DESC_MAX 1024
/* Largest text written into schedules/<name>. */
#define BFS_SCHEDULE_TEXT_MAX (64u << 10)

/* 1 if name may name a schedule (bfs_name_ok and short enough). */
int bfs_schedule_name_ok(const char *name);

/*
 * What an operator writes: a cron pattern (one line) or a JSON object
 * {"pattern": P, "strategy": {...}, "keep": N, "description": T}, only
 * "pattern" required.  *out gets {pattern (canonical), strategy, keep,
 * description}.  -EINVAL with the reason in err.
 */
int bfs_schedule_parse(const char *text, size_t len, json_t **out, char *err,
		       size_t errlen);

/*
 * Create or replace: sched (borrowed, from bfs_schedule_parse) is stored
 * with name, instance, created_at (kept from the schedule it replaces)
 * and updated_at = now.
 */
int bfs_schedule_put(struct bfs_repo *repo, const char *instance,
		     const char *name, json_t *sched, time_t now);
/* The stored schedule, checked (-EIO if it does not describe itself). */
int bfs_schedule_get(struct bfs_repo *repo, const char *instance,
		     const char *name, json_t **out);
int bfs_schedule_delete(struct bfs_repo *repo, const char *instance,
			const char *name);
/* Names, in byte order. */
int bfs_schedule_list(struct bfs_repo *repo, const char *instance,
		      bfs_name_cb cb, void *arg);
/* The parsed pattern and the times of a checked schedule. */
int bfs_schedule_times(json_t *sched, struct bfs_cron *cron, time_t *updated);
/* A schedule as shown to users: with next_execution_time (after now). */
char *bfs_schedule_render(json_t *sched, time_t now);

/* Execution ids. */
int bfs_execution_id(const char *schedule, time_t slot, char *out,
		     size_t outlen);
/* Split an id: schedule (BFS_NAME_MAX + 1 bytes) and slot. */
int bfs_execution_id_parse(const char *id, char *schedule, time_t *slot);

/*
 * Ids of an instance's executions (only schedule's if not NULL), newest
 * slot first: *out is a new array of strings.
 */
int bfs_execution_list(struct bfs_repo *repo, const char *instance,
		       const char *schedule, json_t **out);
int bfs_execution_get(struct bfs_repo *repo, const char *instance,
		      const char *id, json_t **out);
/* Create the record of rec's "id" only if absent (-EEXIST): the claim. */
int bfs_execution_claim(struct bfs_repo *repo, const char *instance,
			json_t *rec);
/* Overwrite the record of rec's "id". */
int bfs_execution_update(struct bfs_repo *repo, const char *instance,
			 json_t *rec);
int bfs_execution_delete(struct bfs_repo *repo, const char *instance,
			 const char *id);
/* Delete schedule's oldest executions beyond keep; returns how many. */
int bfs_execution_trim(struct bfs_repo *repo, const char *instance,
		       const char *schedule, unsigned keep);

#endif
