// SPDX-License-Identifier: Apache-2.0
/*
 * The atomic data-directory restore of the database drivers.
 *
 * The new data is built in a staging directory beside the live one
 * ("<parent>/.<name>.backupfs-restore-<random>", same filesystem, so
 * every move is a rename), while the database still runs.  Then:
 * stop, live -> "<parent>/.<name>.backupfs-old-<random>", staging ->
 * live, start, health check.  Passed: the old directory is dropped.
 * Failed: stop, the new data goes back to the staging name, the old one
 * to its place, start; the new data is dropped.
 *
 * "swap.journal" in the state directory is written before each step
 * that changes the host, with the phase:
 *   staging    only the staging directory may exist: remove it
 *   swapping   stopped or moved, not yet healthy: undo as above (the
 *              old directory, if it was moved, goes back), start
 *   committed  healthy on the new data: remove the old directory
 * so a crash anywhere is finished or undone by ds_swap_recover().
 *
 * File operations are commands (mkdir, mv, rm, btrfs) run through the
 * exec prefix: the database may be on another host.  Nothing is removed
 * unless its name has ".backupfs-" in it (a corrupt journal must never
 * make us delete an operator's data).
 */
#include "ds_int.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWAP_JOURNAL "swap.journal"
#define SWAP_TAG     ".backupfs-"

static int swap_quiet(const struct ds_exec *x, const char *const *argv)
{
	struct ds_cmd cmd = {.argv = argv, .in_fd = -1, .quiet = 1};
	char err[256];

	return ds_run(x, &cmd, err, sizeof(err));
}

static int swap_exists(const struct ds_exec *x, const char *path)
{
	const char *argv[] = {"test", "-e", path, NULL};

	return !swap_quiet(x, argv);
}

static int swap_is_subvol(const struct ds_exec *x, const char *path)
{
	const char *argv[] = {"btrfs", "subvolume", "show", path, NULL};

	return !swap_quiet(x, argv);
}

static int swap_move(const struct ds_exec *x, const char *from, const char *to,
		     char *err, size_t errlen)
{
	const char *argv[] = {"mv", "-T", "--", from, to, NULL};

	return ds_run_argv(x, NULL, argv, err, errlen);
}

/* Remove a tree we made; a subvolume goes as one. */
static int swap_remove(const struct ds_exec *x, const char *path, int subvol)
{
	const char *rm[] = {"rm", "-rf", "--one-file-system", "--", path, NULL};
	const char *del[] = {"btrfs", "subvolume", "delete", path, NULL};
	char err[512];
	int rc;

	if (!strstr(path, SWAP_TAG) || path[0] != '/')
		return -EPERM;
	if (!swap_exists(x, path))
		return 0;
	rc = ds_run_argv(x, NULL, subvol ? del : rm, err, sizeof(err));
	if (rc)
		bfs_warn("cannot remove '%s': %s", path, err);
	return rc;
}

static int swap_journal(const struct ds_swap *s, const char *phase)
{
	json_t *j;
	int rc;

	j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "phase", phase, "data",
		      s->data, "staging", s->staging, "old", s->old, "subvol",
		      s->subvol, "created", s->created);
	if (!j)
		return -ENOMEM;
	rc = ds_journal_write(s->state_dir, SWAP_JOURNAL, j);
	json_decref(j);
	return rc;
}

static void swap_free(struct ds_swap *s)
{
	free(s->data);
	free(s->staging);
	free(s->old);
	s->data = s->staging = s->old = NULL;
}

/* data's staging and old names beside it. */
static int swap_names(struct ds_swap *s, const char *data)
{
	const char *slash = strrchr(data, '/');
	char rnd[17];
	int rc;

	if (data[0] != '/' || !slash || !slash[1])
		return -EINVAL;
	rc = ds_random_hex(rnd);
	if (rc)
		return rc;
	s->data = strdup(data);
	if (!s->data ||
	    asprintf(&s->staging, "%.*s/.%s%srestore-%s", (int)(slash - data),
		     data, slash + 1, SWAP_TAG, rnd) < 0 ||
	    asprintf(&s->old, "%.*s/.%s%sold-%s", (int)(slash - data), data,
		     slash + 1, SWAP_TAG, rnd) < 0)
		return -ENOMEM;
	return 0;
}

static int swap_make_staging(struct ds_swap *s, char *err, size_t errlen)
{
	const char *mk[] = {"mkdir", "-m", "0700", "--", s->staging, NULL};
	const char *sv[] = {"btrfs", "subvolume", "create", s->staging, NULL};
	const char *mode[] = {"chmod", "0700", "--", s->staging, NULL};
	char *owner = NULL;
	int rc;

	rc = ds_run_argv(s->x, NULL, s->subvol ? sv : mk, err, errlen);
	if (!rc && s->subvol)
		rc = ds_run_argv(s->x, NULL, mode, err, errlen);
	if (!rc && s->owner) {
		if (asprintf(&owner, "%s:", s->owner) < 0)
			return -ENOMEM;
		const char *own[] = {"chown", "--", owner, s->staging, NULL};

		rc = ds_run_argv(s->x, NULL, own, err, errlen);
		free(owner);
	}
	return rc;
}

int ds_swap_begin(struct ds_swap *s, const struct ds_exec *x,
		  const struct ds_service *svc, const char *state_dir,
		  const char *data, const char *owner, char *err, size_t errlen)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->x = x;
	s->svc = svc;
	s->state_dir = state_dir;
	s->owner = owner;
	rc = swap_names(s, data);
	if (rc) {
		snprintf(err, errlen, "cannot restore into '%s': %s", data,
			 rc == -EINVAL ? "not an absolute path"
				       : strerror(-rc));
		swap_free(s);
		return rc;
	}
	/* A leftover of an earlier restore goes first: one journal. */
	rc = ds_swap_recover(x, svc, state_dir);
	if (rc) {
		snprintf(err, errlen, "cannot clean up an earlier restore: %s",
			 strerror(-rc));
		swap_free(s);
		return rc;
	}
	s->created = !swap_exists(x, data);
	s->subvol = !s->created && swap_is_subvol(x, data);
	rc = swap_journal(s, "staging");
	if (!rc)
		rc = swap_make_staging(s, err, errlen);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "cannot journal the restore: %s",
				 strerror(-rc));
		ds_swap_abort(s);
	}
	return rc;
}

void ds_swap_abort(struct ds_swap *s)
{
	if (!s->staging)
		return;
	if (!swap_remove(s->x, s->staging, s->subvol))
		ds_journal_remove(s->state_dir, SWAP_JOURNAL);
	swap_free(s);
}

/*
 * Put the old data back after a failed start or health check: the new
 * data goes to the staging name, to be removed.  Restarts the service.
 */
static int swap_undo(struct ds_swap *s, int moved, char *err, size_t errlen)
{
	char e[512] = "";
	int rc = 0;

	/* Stop and start may fail for a service that is down or up
	 * already (pg_ctl does): the health check is the verdict. */
	if (moved)
		ds_service_stop(s->x, s->svc, e, sizeof(e));
	if (moved && swap_exists(s->x, s->data))
		rc = swap_move(s->x, s->data, s->staging, e, sizeof(e));
	if (!rc && moved && !s->created)
		rc = swap_move(s->x, s->old, s->data, e, sizeof(e));
	if (!rc && !s->created) {
		ds_service_start(s->x, s->svc, e, sizeof(e));
		rc = ds_service_health(s->x, s->svc, e, sizeof(e));
	}
	if (rc) {
		size_t n = strlen(err);

		bfs_err("cannot put '%s' back: %s", s->data, e);
		snprintf(err + n, errlen - n, "; rollback failed: %s", e);
		return rc;
	}
	swap_remove(s->x, s->staging, s->subvol);
	return 0;
}

int ds_swap_commit(struct ds_swap *s, char *err, size_t errlen)
{
	int moved = 0, rc;

	rc = swap_journal(s, "swapping");
	if (rc) {
		snprintf(err, errlen, "cannot journal the restore: %s",
			 strerror(-rc));
		ds_swap_abort(s);
		return rc;
	}
	rc = ds_service_stop(s->x, s->svc, err, errlen);
	if (rc && s->created) /* nothing ran there yet */
		rc = 0;
	if (!rc && !s->created)
		rc = swap_move(s->x, s->data, s->old, err, errlen);
	if (!rc) {
		moved = 1;
		rc = swap_move(s->x, s->staging, s->data, err, errlen);
	}
	if (!rc)
		rc = ds_service_start(s->x, s->svc, err, errlen);
	if (!rc)
		rc = ds_service_health(s->x, s->svc, err, errlen);
	if (rc) {
		int undo = swap_undo(s, moved, err, errlen);

		/* Rolled back: done; else the journal stays for recover. */
		if (!undo)
			ds_journal_remove(s->state_dir, SWAP_JOURNAL);
		swap_free(s);
		return rc;
	}
	if (swap_journal(s, "committed"))
		bfs_warn("cannot journal the restore of '%s'", s->data);
	if (s->created || !swap_remove(s->x, s->old, s->subvol))
		ds_journal_remove(s->state_dir, SWAP_JOURNAL);
	swap_free(s);
	return 0;
}

static int swap_from_journal(struct ds_swap *s, json_t *j)
{
	const char *data = json_string_value(json_object_get(j, "data"));
	const char *staging = json_string_value(json_object_get(j, "staging"));
	const char *old = json_string_value(json_object_get(j, "old"));

	if (!data || !staging || !old || !strstr(staging, SWAP_TAG) ||
	    !strstr(old, SWAP_TAG))
		return -EBADMSG;
	s->data = strdup(data);
	s->staging = strdup(staging);
	s->old = strdup(old);
	s->subvol = json_is_true(json_object_get(j, "subvol"));
	s->created = json_is_true(json_object_get(j, "created"));
	return s->data && s->staging && s->old ? 0 : -ENOMEM;
}

int ds_swap_recover(const struct ds_exec *x, const struct ds_service *svc,
		    const char *state_dir)
{
	struct ds_swap s = {.x = x, .svc = svc, .state_dir = state_dir};
	char err[1024] = "";
	const char *phase;
	json_t *j;
	int rc;

	rc = ds_journal_read(state_dir, SWAP_JOURNAL, &j);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	phase = json_string_value(json_object_get(j, "phase"));
	rc = phase ? swap_from_journal(&s, j) : -EBADMSG;
	if (rc)
		goto out_json;
	if (!strcmp(phase, "committed")) {
		rc = swap_remove(x, s.old, s.subvol);
		bfs_info("completed the restore of '%s' a crash interrupted",
			 s.data);
	} else if (!strcmp(phase, "swapping")) {
		/* Moved only if the old data left its place. */
		rc = swap_undo(&s, swap_exists(x, s.old) || s.created, err,
			       sizeof(err));
		bfs_info("rolled back the restore of '%s' a crash interrupted",
			 s.data);
	} else {
		rc = swap_remove(x, s.staging, s.subvol);
	}
	if (!rc)
		rc = ds_journal_remove(state_dir, SWAP_JOURNAL);
out_json:
	json_decref(j);
	swap_free(&s);
	if (rc)
		bfs_err("cannot recover the restore in '%s/%s': %s%s%s",
			state_dir, SWAP_JOURNAL, strerror(-rc),
			err[0] ? ": " : "", err);
	return rc;
}

/* ---- temporary snapshots ---------------------------------------------- */

#define TMPSNAP_PREFIX "tmpsnap-"
#define TMPSNAP_SUFFIX ".journal"

int ds_tmpsnap_take(const struct ds_exec *x, const char *state_dir,
		    const char *src, struct ds_tmpsnap *t, char *err,
		    size_t errlen)
{
	const char *slash = strrchr(src, '/');
	char rnd[17];
	json_t *j;
	int rc;

	memset(t, 0, sizeof(*t));
	if (src[0] != '/' || !slash || !slash[1])
		return -EINVAL;
	rc = ds_random_hex(rnd);
	if (rc)
		return rc;
	if (asprintf(&t->path, "%.*s/.%s%ssnap-%s", (int)(slash - src), src,
		     slash + 1, SWAP_TAG, rnd) < 0 ||
	    asprintf(&t->journal, TMPSNAP_PREFIX "%s" TMPSNAP_SUFFIX, rnd) <
		    0) {
		ds_tmpsnap_drop(x, state_dir, t);
		return -ENOMEM;
	}
	j = json_pack("{s:s}", "snapshot", t->path);
	rc = j ? ds_journal_write(state_dir, t->journal, j) : -ENOMEM;
	json_decref(j);
	if (!rc) {
		const char *argv[] = {"btrfs", "subvolume", "snapshot", "-r",
				      src,     t->path,	    NULL};

		rc = ds_run_argv(x, NULL, argv, err, errlen);
	} else {
		snprintf(err, errlen, "cannot journal the snapshot: %s",
			 strerror(-rc));
	}
	if (rc)
		ds_tmpsnap_drop(x, state_dir, t);
	return rc;
}

int ds_tmpsnap_drop(const struct ds_exec *x, const char *state_dir,
		    struct ds_tmpsnap *t)
{
	int rc = 0;

	if (t->path)
		rc = swap_remove(x, t->path, 1);
	if (!rc && t->journal)
		rc = ds_journal_remove(state_dir, t->journal);
	free(t->path);
	free(t->journal);
	t->path = t->journal = NULL;
	return rc;
}

static int tmpsnap_is_journal(const char *name)
{
	size_t n = strlen(name), p = strlen(TMPSNAP_PREFIX),
	       s = strlen(TMPSNAP_SUFFIX);

	return n > p + s && !strncmp(name, TMPSNAP_PREFIX, p) &&
	       !strcmp(name + n - s, TMPSNAP_SUFFIX);
}

int ds_tmpsnap_recover(const struct ds_exec *x, const char *state_dir)
{
	struct ds_tmpsnap t;
	struct dirent *de;
	const char *path;
	json_t *j;
	DIR *d;
	int rc = 0, r;

	d = opendir(state_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!tmpsnap_is_journal(de->d_name))
			continue;
		r = ds_journal_read(state_dir, de->d_name, &j);
		path = r ? NULL
			 : json_string_value(json_object_get(j, "snapshot"));
		t.path = path ? strdup(path) : NULL;
		t.journal = strdup(de->d_name);
		json_decref(j);
		if (!r && !path)
			r = -EBADMSG;
		if (!r) {
			bfs_info("removing the temporary snapshot '%s' a "
				 "crash left",
				 t.path);
			r = ds_tmpsnap_drop(x, state_dir, &t);
		} else {
			free(t.path);
			free(t.journal);
		}
		if (r && !rc)
			rc = r;
	}
	closedir(d);
	return rc;
}
