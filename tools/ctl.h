/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the files of backupctl share: the parsed command line, exit
 * codes, opening the repository or a datastore, the helpers for going
 * through a mount, and the progress display.
 */
#ifndef BFS_CTL_H
#define BFS_CTL_H

#include "backend.h"
#include "config.h"
#include "repo.h"

#include <jansson.h>
#include <stdint.h>

struct bfs_datastore;

/* Exit codes (backupctl --help, backupctl(1)). */
#define EXIT_FAILURE_CTL 1
#define EXIT_USAGE	 2
#define EXIT_BUSY	 3 /* the instance runs another job (EBUSY) */

struct ctl {
	const char *config_path;
	const char *mount;
	struct bfs_config *conf;
	int json;
};

/* Open the repository alone (no state directory, no datastores); prints
 * the reason and returns 1 on error. */
int ctl_open_repo(struct ctl *c, struct bfs_backend **be,
		  struct bfs_repo **repo);

/*
 * Progress of one job on stderr: a bar redrawn in place on a terminal,
 * otherwise a plain line per phase and per 10 % step (so a log file gets
 * a few lines, not thousands).  One struct per display, zeroed.
 */
struct ctl_bar {
	int tty;	/* -1: not asked yet */
	int drawn;	/* a bar is on the terminal's line */
	int last_step;	/* plain lines: last 10 % step printed */
	char phase[32]; /* plain lines: last phase printed */
	char cur[32];	/* the phase being shown */
	double t0;	/* when cur began (for a rate the caller lacks) */
};
void ctl_bar_init(struct ctl_bar *b);
/* rate: bytes/s (0: measured here since the phase began); eta: seconds
 * (< 0 unknown: then estimated from the rate). */
void ctl_bar_show(struct ctl_bar *b, const char *phase, uint64_t done,
		  uint64_t total, double rate, double eta);
/* End the bar's line (before other output). */
void ctl_bar_done(struct ctl_bar *b);

/* A listing callback: appends name to the JSON array arg. */
int ctl_name_collect(const char *name, void *arg);
/* Append the names in a directory under the mount (dot entries left
 * out) to the JSON array names, and sort it. */
int ctl_mount_names(const char *dir, json_t *names);

/* Print JSON (indented, keys sorted) on stdout. */
void ctl_print_json(json_t *j);

/* Through a mount (c->mount): out = MOUNT/instances/INST/DIR[/NAME];
 * 0 or -ENAMETOOLONG. */
int ctl_path(char *out, size_t len, struct ctl *c, const char *inst,
	     const char *dir, const char *name);
/* Write text into a file under the mount: close() says whether it took. */
int ctl_mount_write(const char *path, const char *text);
/* A JSON file under the mount (new), or NULL with *err set. */
json_t *ctl_mount_json(const char *path, int *err);
/* Print "backupctl: WHAT A/B: reason"; returns exit code 1. */
int ctl_fail(const char *what, const char *a, const char *b, int ret);

/* Open INSTANCE's datastore as the config describes it, without the
 * engine (no recovery, no repository): -ENOENT when the config has no
 * such instance. */
int ctl_open_datastore(struct ctl *c, const char *instance,
		       struct bfs_datastore **ds, char *err, size_t errlen);

int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_restore(struct ctl *c, int argc, char **argv);
int cmd_schedule(struct ctl *c, int argc, char **argv);
int cmd_execution(struct ctl *c, int argc, char **argv);
extern const char ctl_schedule_help[], ctl_execution_help[];

#endif
