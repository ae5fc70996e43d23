/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the database drivers (postgresql, mariadb, couchdb, db2) share:
 *
 *   journal.c   small JSON journals replaced atomically (also "files")
 *   exec.c      running the database's own tools through the instance's
 *               exec prefix, stdout into a sink, stderr kept for the
 *               reason and logged once, exit status mapped to errno
 *   strategy.c  the strategy object of a snapshot (MagnetoDB's format,
 *               tables, mode, type)
 *   service.c   stop/start/health of the database service, per-datastore
 *               defaults overridden by the instance's "service"
 *   swap.c      the atomic data-directory restore: stage beside the live
 *               directory, stop, swap, start, health-check, then drop the
 *               old one -- or put it back; journalled so a crash at any
 *               point is finished or undone at the next open
 *
 * Every file operation on the database host (mkdir, mv, rm, tar) is a
 * command run through the exec prefix too, so a database on another host
 * ("exec_prefix": ["ssh", "db1"]) is backed up and restored the same way.
 * Functions return 0 or -errno; those taking err/errlen leave a one-line
 * reason there.
 */
#ifndef BFS_DS_INT_H
#define BFS_DS_INT_H

#include "datastore.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- journal.c ---- */

/*
 * Journals: small JSON files in dir, replaced atomically (write a
 * temporary, fsync, rename, fsync dir) so a crash leaves the old or the
 * new one whole.  read() returns a new reference or -ENOENT.
 */
int ds_journal_write(const char *dir, const char *name, json_t *j);
int ds_journal_read(const char *dir, const char *name, json_t **out);
int ds_journal_remove(const char *dir, const char *name);
/* 16 random hex digits and a NUL into out[17]. */
int ds_random_hex(char out[17]);

/* ---- exec.c ---- */

/* How commands reach the database host.  Read-only after ds_exec_parse(). */
struct ds_exec {
	char **prefix;	  /* NULL-terminated; empty: run locally */
	int remote_shell; /* the prefix is ssh: the command is one quoted
			   * string for the remote shell */
};

/* Parse "exec_prefix" (absent, or an array of strings) from conf. */
int ds_exec_parse(json_t *conf, struct ds_exec *x, char *err, size_t errlen);
void ds_exec_release(struct ds_exec *x);

/* One command.  Zero-initialize, then set what applies. */
struct ds_cmd {
	const char *const *argv; /* NULL-terminated, argv[0] the tool */
	const char *user;	 /* run as this OS user (runuser), or NULL */
	const char *const *env;	 /* "K=V" strings set for the tool, or NULL;
				  * never logged */
	int in_fd;		 /* stdin, or -1 for /dev/null */
	bfs_sink_fn out;	 /* stdout into this sink, or NULL */
	void *out_arg;
	char *capture; /* else stdout kept here (NUL-terminated, cut
			* at capture_cap - 1), or NULL: discarded */
	size_t capture_cap;
	struct bfs_progress *progress; /* stdout bytes add to ->done */
	int timeout;		       /* seconds, 0: none */
	int quiet;		       /* a failure is expected: log at debug */
	char *err_tail; /* stderr's last bytes kept here (NUL-terminated,
			 * at most err_tail_cap - 1), or NULL */
	size_t err_tail_cap;
	/* out: */
	int status; /* exit status, or 128 + signal */
};

/*
 * Run cmd and wait for it.  0 when it exits 0; else -errno mapped from
 * its stderr (ENOSPC, EACCES, ECONNREFUSED, ENOENT ...), -EIO by
 * default, the sink's error if the sink failed (the tool is killed), and
 * -ETIMEDOUT past the timeout.  The reason in err names the tool and
 * ends with the last line of its stderr, which is logged once in full
 * (up to a few KiB).
 */
int ds_run(const struct ds_exec *x, struct ds_cmd *cmd, char *err,
	   size_t errlen);
/* ds_run() of argv with nothing else set. */
int ds_run_argv(const struct ds_exec *x, const char *user,
		const char *const *argv, char *err, size_t errlen);
/*
 * The first line of a secret file (a password) into out[cap]: the file
 * must be a regular file only its owner may read or write.
 */
int ds_secret_file(const char *path, char *out, size_t cap, char *err,
		   size_t errlen);
/* A shell-quoted copy of s (new string). */
char *ds_shell_quote(const char *s);

/* ---- strategy.c ---- */

enum ds_format { DS_FORMAT_NATIVE, DS_FORMAT_AGNOSTIC };
enum ds_mode { DS_MODE_ONLINE, DS_MODE_OFFLINE };
enum ds_type { DS_TYPE_FULL, DS_TYPE_INCREMENTAL };

struct ds_strategy {
	enum ds_format format;
	enum ds_mode mode;
	enum ds_type type;
	json_t *tables; /* borrowed array of checked names, or NULL: all */
};

/*
 * Read the common keys of a strategy object (defaults: native, online,
 * full, everything); extra_keys (NULL-terminated, may be NULL) are the
 * driver's own, left for it to read.  -EINVAL with a reason for an
 * unknown key, a wrong value or an unsafe table name.
 */
int ds_strategy_parse(json_t *strategy, const char *datastore,
		      const char *const *extra_keys, struct ds_strategy *out,
		      char *err, size_t errlen);
const char *ds_format_name(enum ds_format f);
const char *ds_mode_name(enum ds_mode m);
const char *ds_type_name(enum ds_type t);
/* Record the strategy as it ran into meta ("format", "mode", "type",
 * "tables"). */
int ds_strategy_meta(const struct ds_strategy *s, json_t *meta);

/* ---- service.c ---- */

/* One service command and the user it runs as (NULL: as given). */
struct ds_svc_cmd {
	char **argv;	  /* NULL-terminated */
	const char *user; /* borrowed */
};

struct ds_service {
	struct ds_svc_cmd start;
	struct ds_svc_cmd stop;
	struct ds_svc_cmd health; /* succeeds once the database answers */
	int health_timeout; /* seconds the health check may take to pass */
};

/*
 * The instance's service: "service": {"start": [...], "stop": [...],
 * "health": [...], "health_timeout": N} in conf overrides the driver's
 * defaults (argv arrays, NULL-terminated, copied).  Overrides run as
 * given (no os_user); defaults run as user.
 */
int ds_service_parse(json_t *conf, const char *const *def_start,
		     const char *const *def_stop, const char *const *def_health,
		     const char *user, struct ds_service *svc, char *err,
		     size_t errlen);
void ds_service_release(struct ds_service *svc);
int ds_service_stop(const struct ds_exec *x, const struct ds_service *svc,
		    char *err, size_t errlen);
int ds_service_start(const struct ds_exec *x, const struct ds_service *svc,
		     char *err, size_t errlen);
/* Run the health check until it passes or health_timeout expires. */
int ds_service_health(const struct ds_exec *x, const struct ds_service *svc,
		      char *err, size_t errlen);

/*
 * conf[key] as a new string in *out: dflt (copied) when absent, NULL when
 * absent without a default; -EINVAL for a non-string, an empty string or
 * one with a NUL inside.
 */
int ds_conf_str(json_t *conf, const char *key, const char *dflt, char **out);

/* conf["port"] (1..65535) as the decimal string the tools take in out
 * (8 bytes), left as it is when absent; -EINVAL for anything else. */
int ds_conf_port(json_t *conf, char out[8]);

/* Copy a JSON array of strings into a NULL-terminated argv (new). */
int ds_argv_from_json(json_t *arr, char ***out);
void ds_argv_free(char **argv);

/* ---- sniff.c ---- */

/* What a stream is, by its first bytes (a tar may hold anything). */
enum ds_kind {
	DS_KIND_UNKNOWN,
	DS_KIND_PG_DUMP,
	DS_KIND_XBSTREAM,
	DS_KIND_SQL_DUMP,
	DS_KIND_COUCH_JSON,
	DS_KIND_TAR,
};

int ds_sniff(const char *path, enum ds_kind *kind);
/* "a PostgreSQL pg_dump archive", ... (static). */
const char *ds_kind_name(enum ds_kind kind);

/* ---- swap.c ---- */

/*
 * One data-directory restore.  The driver fills the staging directory
 * (ds_swap_begin() made it, empty, owned by owner, mode 0700, a btrfs
 * subvolume when the live one is), then calls ds_swap_commit(), which
 * stops the service, moves the live directory to "old", the staging one
 * into its place, starts, health-checks, and drops "old" -- or on any
 * failure puts the old directory back and starts it again.
 */
struct ds_swap {
	const struct ds_exec *x;      /* borrowed */
	const struct ds_service *svc; /* borrowed */
	const char *state_dir;	      /* borrowed: where the journal is */
	char *data;		      /* the live directory */
	char *staging;		      /* new data, built beside it */
	char *old;		      /* the live data while swapped */
	const char *owner;	      /* borrowed, or NULL */
	int subvol;		      /* the live directory is a subvolume */
	int created;		      /* there was no live directory */
};

/*
 * Journal, then create the staging directory beside data (absolute).
 * On error nothing is left behind.
 */
int ds_swap_begin(struct ds_swap *s, const struct ds_exec *x,
		  const struct ds_service *svc, const char *state_dir,
		  const char *data, const char *owner, char *err,
		  size_t errlen);
/* Swap in the staging directory; see above.  Frees s's members. */
int ds_swap_commit(struct ds_swap *s, char *err, size_t errlen);
/* Give up before the commit: remove staging.  Frees s's members. */
void ds_swap_abort(struct ds_swap *s);
/*
 * After a crash: finish or undo what the journal in state_dir says
 * (none: 0).  A swap that had not passed its health check is undone:
 * the old directory goes back and the service is started.
 */
int ds_swap_recover(const struct ds_exec *x, const struct ds_service *svc,
		    const char *state_dir);

/*
 * A read-only btrfs snapshot of the subvolume src, beside it, for a
 * backup to read from; journalled in state_dir first, so
 * ds_tmpsnap_recover() removes what a crash left.
 */
struct ds_tmpsnap {
	char *path;    /* the snapshot */
	char *journal; /* its journal's name in state_dir */
};

int ds_tmpsnap_take(const struct ds_exec *x, const char *state_dir,
		    const char *src, struct ds_tmpsnap *t, char *err,
		    size_t errlen);
/* Remove it, then its journal; frees t's members (safe on zeroed t). */
int ds_tmpsnap_drop(const struct ds_exec *x, const char *state_dir,
		    struct ds_tmpsnap *t);
int ds_tmpsnap_recover(const struct ds_exec *x, const char *state_dir);

#endif
