// SPDX-License-Identifier: Apache-2.0
/*
 * Native CouchDB backups: the data directory's .couch files, copied while
 * CouchDB runs, as a pax tar.
 *
 * A .couch file only grows (compaction writes a new file and renames it
 * over the old one).  A copy takes the file's size L when it starts, and
 * the newest valid header at or before L (couchdb_header.c); the member
 * holds the bytes up to that header's end: exactly what CouchDB would
 * open after a crash at that moment.  An open descriptor keeps the inode
 * a compaction may replace meanwhile.  A file with no header yet (a
 * database being created) holds nothing and is left out.
 *
 * The listing is a `find` through the exec prefix; with no prefix the
 * files are read directly, with one each copy is spooled (`head -c L`)
 * into the state directory first, then cut the same way.
 *
 * Verify reads the tar whole: only directories and .couch files with safe
 * names, each file ending exactly on a valid header.  Restore extracts
 * beside data_dir, chowns to os_user, and swaps (swap.c).
 */
#include "couchdb_int.h"
#include "files_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NATIVE_LIST_MAX	 ((size_t)64 << 20) /* bytes of `find` output */
#define NATIVE_COPY_BUF	 (256 * 1024)
#define NATIVE_SUFFIX	 ".couch"
#define NATIVE_LIST_TIME 600 /* seconds */

/* One line of the listing. */
struct native_ent {
	char type; /* 'd' or 'f' */
	unsigned mode;
	int64_t mtime;
	long mtime_ns;
	uint64_t size;
	const char *rel; /* "" for the root; into the listing buffer */
};

struct native_list {
	char *buf;
	size_t n, cap;
	struct native_ent *ents;
	size_t count;
};

static int list_sink(void *arg, const void *data, size_t len)
{
	struct native_list *l = arg;
	size_t cap;
	char *grown;

	if (l->n + len + 1 > NATIVE_LIST_MAX)
		return -EFBIG;
	if (l->n + len + 1 > l->cap) {
		cap = l->cap ? l->cap : 65536;
		while (cap < l->n + len + 1)
			cap *= 2;
		grown = realloc(l->buf, cap);
		if (!grown)
			return -ENOMEM;
		l->buf = grown;
		l->cap = cap;
	}
	memcpy(l->buf + l->n, data, len);
	l->n += len;
	l->buf[l->n] = '\0';
	return 0;
}

static void list_free(struct native_list *l)
{
	free(l->buf);
	free(l->ents);
	memset(l, 0, sizeof(*l));
}

/* Hidden components (view indexes, .shards, .delete) are not backed up. */
static int native_hidden(const char *rel)
{
	const char *p = rel;

	while (*p) {
		if (*p == '.')
			return 1;
		p += strcspn(p, "/");
		while (*p == '/')
			p++;
	}
	return 0;
}

static int native_is_couch(const char *rel)
{
	size_t n = strlen(rel), s = strlen(NATIVE_SUFFIX);

	return n > s && !strcmp(rel + n - s, NATIVE_SUFFIX);
}

/* "d 755 1700000000.123456789 4096 shards/x" */
static int list_parse_one(char *rec, struct native_ent *e)
{
	char *p = rec, *end;

	if ((p[0] != 'd' && p[0] != 'f') || p[1] != ' ')
		return -EBADMSG;
	e->type = p[0];
	p += 2;
	e->mode = (unsigned)strtoul(p, &end, 8);
	if (end == p || *end != ' ')
		return -EBADMSG;
	p = end + 1;
	e->mtime = strtoll(p, &end, 10);
	e->mtime_ns = 0;
	if (*end == '.') {
		char ns[10] = "000000000";
		size_t k = strspn(end + 1, "0123456789");

		memcpy(ns, end + 1, k < 9 ? k : 9);
		e->mtime_ns = strtol(ns, NULL, 10);
		end += 1 + k;
	}
	if (*end != ' ')
		return -EBADMSG;
	p = end + 1;
	e->size = strtoull(p, &end, 10);
	if (end == p || *end != ' ')
		return -EBADMSG;
	e->rel = end + 1;
	return 0;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct native_ent *)a)->rel,
		      ((const struct native_ent *)b)->rel);
}

/* The directories and .couch files under data_dir, sorted, hidden ones
 * left out. */
static int native_list(struct couch_ds *cd, struct native_list *l, char *err,
		       size_t errlen)
{
	const char *argv[] = {"find",
			      cd->data_dir,
			      "(",
			      "-type",
			      "d",
			      "-o",
			      "-type",
			      "f",
			      "-name",
			      "*" NATIVE_SUFFIX,
			      ")",
			      "-printf",
			      "%y %m %T@ %s %P\\0",
			      NULL};
	struct ds_cmd cmd = {.argv = argv,
			     .in_fd = -1,
			     .out = list_sink,
			     .out_arg = l,
			     .timeout = NATIVE_LIST_TIME};
	size_t i, k, cap = 0;
	struct native_ent e;
	char *rec;
	int rc;

	memset(l, 0, sizeof(*l));
	rc = ds_run(&cd->x, &cmd, err, errlen);
	if (rc)
		return rc;
	for (i = 0; i < l->n; i += k + 1) {
		rec = l->buf + i;
		k = strnlen(rec, l->n - i);
		if (i + k >= l->n)
			break; /* no NUL: cut */
		if (list_parse_one(rec, &e)) {
			snprintf(err, errlen, "cannot read the listing of '%s'",
				 cd->data_dir);
			return -EIO;
		}
		if (native_hidden(e.rel))
			continue;
		if (l->count == cap) {
			struct native_ent *grown;

			cap = cap ? 2 * cap : 64;
			grown = realloc(l->ents, cap * sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			l->ents = grown;
		}
		l->ents[l->count++] = e;
	}
	qsort(l->ents, l->count, sizeof(*l->ents), ent_cmp);
	if (!l->count || l->ents[0].rel[0]) {
		snprintf(err, errlen, "'%s' is not a directory", cd->data_dir);
		return -ENOTDIR;
	}
	return 0;
}

int couch_native_estimate(struct couch_ds *cd, uint64_t *bytes)
{
	struct native_list l;
	char err[512];
	size_t i;
	int rc;

	*bytes = 0;
	rc = native_list(cd, &l, err, sizeof(err));
	for (i = 0; !rc && i < l.count; i++)
		*bytes += l.ents[i].type == 'f' ? l.ents[i].size + 1536 : 1024;
	list_free(&l);
	return rc;
}

/* ---- backup ------------------------------------------------------------ */

struct native_tar {
	struct couch_ds *cd;
	struct archive *aw;
	bfs_sink_fn sink;
	void *sink_arg;
	int sink_rc;
	struct bfs_progress *progress;
	json_t *databases;
	char *buf;
	char *err;
	size_t errlen;
};

static la_ssize_t native_sink(struct archive *a, void *arg, const void *data,
			      size_t len)
{
	struct native_tar *t = arg;
	int rc;

	rc = t->sink(t->sink_arg, data, len);
	if (rc) {
		t->sink_rc = rc < 0 ? rc : -EIO;
		archive_set_error(a, -t->sink_rc, "backup sink failed");
		return -1;
	}
	t->progress->done += len;
	return (la_ssize_t)len;
}

static int native_werr(struct native_tar *t, const char *what)
{
	int rc = t->sink_rc ? t->sink_rc : files_ar_errno(t->aw, -EIO);

	snprintf(t->err, t->errlen, "cannot write '%s' to the backup: %s", what,
		 t->sink_rc ? strerror(-rc) : files_ar_msg(t->aw));
	return rc;
}

static ssize_t fd_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	do
		n = pread(*(int *)arg, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* NAME of NAME.couch (1.x) or of shards/<range>/NAME.<n>.couch (2.x). */
static int native_db_name(const struct native_ent *e, json_t *databases)
{
	const char *base = strrchr(e->rel, '/');
	char name[256];
	size_t n, i;
	char *dot;
	json_t *v;

	base = base ? base + 1 : e->rel;
	n = strlen(base) - strlen(NATIVE_SUFFIX);
	if (n >= sizeof(name))
		return 0;
	memcpy(name, base, n);
	name[n] = '\0';
	if (!strncmp(e->rel, "shards/", 7) && (dot = strrchr(name, '.')) &&
	    dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1))
		*dot = '\0';
	json_array_foreach(databases, i, v)
	{
		if (!strcmp(json_string_value(v), name))
			return 0;
	}
	return json_array_append_new(databases, json_string(name)) ? -ENOMEM
								   : 0;
}

struct spool_out {
	int fd;
	uint64_t n;
};

static int spool_sink(void *arg, const void *data, size_t len)
{
	struct spool_out *s = arg;
	int rc = bfs_write_all(s->fd, data, len);

	if (!rc)
		s->n += len;
	return rc;
}

/* A copy of the first size bytes of path on the database host, in an
 * unlinked file of the state directory: its descriptor, and *got. */
static int native_spool(struct native_tar *t, const char *path, uint64_t size,
			int *fd, uint64_t *got)
{
	char tmpl[4096], count[32], e[512];
	const char *argv[] = {"head", "-c", count, "--", path, NULL};
	struct spool_out s = {-1, 0};
	struct ds_cmd cmd = {
		.argv = argv, .in_fd = -1, .out = spool_sink, .out_arg = &s};
	int rc;

	snprintf(count, sizeof(count), "%llu", (unsigned long long)size);
	if ((size_t)snprintf(tmpl, sizeof(tmpl), "%s/couch-spool-XXXXXX",
			     t->cd->state_dir) >= sizeof(tmpl))
		return -ENAMETOOLONG;
	s.fd = mkostemp(tmpl, O_CLOEXEC);
	if (s.fd < 0)
		return -errno;
	unlink(tmpl);
	rc = ds_run(&t->cd->x, &cmd, e, sizeof(e));
	if (rc) {
		close(s.fd);
		return rc;
	}
	*fd = s.fd;
	*got = s.n;
	return 0;
}

/* Copy [0, end) of fd into the current entry. */
static int native_copy(struct native_tar *t, int fd, uint64_t end,
		       const char *rel)
{
	uint64_t off = 0;
	la_ssize_t w;
	ssize_t n;

	while (off < end) {
		n = fd_pread(&fd, t->buf,
			     end - off < NATIVE_COPY_BUF ? (size_t)(end - off)
							 : NATIVE_COPY_BUF,
			     off);
		if (n <= 0) {
			snprintf(t->err, t->errlen, "cannot read '%s/%s': %s",
				 t->cd->data_dir, rel,
				 n ? strerror((int)-n) : "file shrank");
			return n ? (int)n : -EIO;
		}
		w = archive_write_data(t->aw, t->buf, (size_t)n);
		if (w != n)
			return native_werr(t, rel);
		off += (uint64_t)n;
	}
	return 0;
}

static int native_header(struct native_tar *t, const struct native_ent *e,
			 uint64_t size)
{
	struct archive_entry *ae = archive_entry_new();
	int r;

	if (!ae)
		return -ENOMEM;
	archive_entry_set_pathname(ae, e->rel[0] ? e->rel : ".");
	archive_entry_set_filetype(ae, e->type == 'd' ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(ae, (mode_t)(e->mode & 07777));
	archive_entry_set_mtime(ae, (time_t)e->mtime, e->mtime_ns);
	if (e->type == 'f')
		archive_entry_set_size(ae, (la_int64_t)size);
	r = archive_write_header(t->aw, ae);
	archive_entry_free(ae);
	return r < ARCHIVE_WARN ? native_werr(t, e->rel[0] ? e->rel : ".") : 0;
}

/* Open the live file (or a spooled copy of it): fd and its size now. */
static int native_open(struct native_tar *t, const struct native_ent *e,
		       int *fd, uint64_t *size)
{
	char path[4096];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", t->cd->data_dir,
			     e->rel) >= sizeof(path))
		return -ENAMETOOLONG;
	if (t->cd->x.prefix[0])
		return native_spool(t, path, e->size, fd, size);
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) || !S_ISREG(st.st_mode)) {
		close(*fd);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int native_file(struct native_tar *t, const struct native_ent *e)
{
	uint64_t size, off, end;
	int fd, rc;

	rc = native_open(t, e, &fd, &size);
	if (rc == -ENOENT) {
		bfs_debug("'%s/%s' went away during the backup",
			  t->cd->data_dir, e->rel);
		return 0;
	}
	if (rc) {
		snprintf(t->err, t->errlen, "cannot read '%s/%s': %s",
			 t->cd->data_dir, e->rel, strerror(-rc));
		return rc;
	}
	rc = bfs_couch_find_header(fd_pread, &fd, size, &off, &end);
	if (rc == -ENOENT) {
		bfs_warn("'%s/%s' has no valid header yet: left out",
			 t->cd->data_dir, e->rel);
		rc = 0;
		goto out_close;
	}
	if (rc) {
		snprintf(t->err, t->errlen, "cannot read '%s/%s': %s",
			 t->cd->data_dir, e->rel, strerror(-rc));
		goto out_close;
	}
	rc = native_header(t, e, end);
	if (!rc)
		rc = native_copy(t, fd, end, e->rel);
	if (!rc && archive_write_finish_entry(t->aw) < ARCHIVE_WARN)
		rc = native_werr(t, e->rel);
	if (!rc)
		rc = native_db_name(e, t->databases);
out_close:
	close(fd);
	return rc;
}

static int native_tar_open(struct native_tar *t)
{
	t->aw = archive_write_new();
	t->buf = malloc(NATIVE_COPY_BUF);
	if (!t->aw || !t->buf)
		return -ENOMEM;
	if (archive_write_set_format_pax(t->aw) ||
	    archive_write_set_bytes_per_block(t->aw, FILES_BLOCK) ||
	    archive_write_set_bytes_in_last_block(t->aw, 1))
		return native_werr(t, "the archive settings");
	if (archive_write_open(t->aw, t, NULL, native_sink, NULL))
		return native_werr(t, "the archive start");
	return 0;
}

int couch_native_backup(struct couch_ds *cd, bfs_sink_fn sink, void *arg,
			struct bfs_progress *progress, json_t *databases,
			char *err, size_t errlen)
{
	struct native_tar t = {
		.cd = cd,
		.sink = sink,
		.sink_arg = arg,
		.progress = progress,
		.databases = databases,
		.err = err,
		.errlen = errlen,
	};
	struct files_locale loc;
	struct native_list l;
	size_t i;
	int rc;

	rc = native_list(cd, &l, err, errlen);
	if (rc)
		goto out_list;
	progress->total = 0;
	for (i = 0; i < l.count; i++)
		progress->total += l.ents[i].size;
	files_locale_enter(&loc);
	rc = native_tar_open(&t);
	for (i = 0; !rc && i < l.count; i++) {
		if (l.ents[i].type == 'd')
			rc = native_header(&t, &l.ents[i], 0);
		else if (native_is_couch(l.ents[i].rel))
			rc = native_file(&t, &l.ents[i]);
	}
	if (!rc && archive_write_close(t.aw) != ARCHIVE_OK)
		rc = native_werr(&t, "the end of the archive");
	if (t.aw)
		archive_write_free(t.aw);
	free(t.buf);
	files_locale_leave(&loc);
out_list:
	list_free(&l);
	return rc;
}

/* ---- verify ------------------------------------------------------------ */

/* The entry's name without "./" in front; "" for the root. */
static const char *native_entry_name(struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);

	while (name[0] == '.' && name[1] == '/')
		name += 2;
	if (!strcmp(name, "."))
		return "";
	return name;
}

/* A .couch member, read to its end: it must end on a valid header. */
static int native_check_member(struct archive *rd, const char *name,
			       int64_t size, char *err, size_t errlen)
{
	struct bfs_couch_scan s;
	const void *buf;
	size_t len;
	la_int64_t off;
	int r, rc;

	rc = bfs_couch_scan_init(&s);
	if (rc)
		return rc;
	while ((r = archive_read_data_block(rd, &buf, &len, &off)) ==
	       ARCHIVE_OK) {
		if ((uint64_t)off != s.pos) {
			rc = -EBADMSG; /* a hole: we never write sparse */
			break;
		}
		rc = bfs_couch_scan_feed(&s, buf, len);
		if (rc)
			break;
	}
	if (!rc && r != ARCHIVE_EOF) {
		snprintf(err, errlen, "corrupt at '%s': %s", name,
			 files_ar_msg(rd));
		rc = -EBADMSG;
	} else if (!rc && (s.pos != (uint64_t)size || !s.last_end ||
			   s.last_end != s.pos)) {
		snprintf(err, errlen,
			 "'%s' does not end on a valid CouchDB header (%llu "
			 "bytes, valid up to %llu)",
			 name, (unsigned long long)s.pos,
			 (unsigned long long)s.last_end);
		rc = -EBADMSG;
	} else if (rc == -EBADMSG && !err[0]) {
		snprintf(err, errlen, "corrupt at '%s'", name);
	}
	bfs_couch_scan_release(&s);
	return rc;
}

static int native_check_entry(struct archive *rd, struct archive_entry *e,
			      uint64_t *files, char *err, size_t errlen)
{
	const char *name;
	int rc;

	rc = files_check_entry(e, err, errlen);
	if (rc)
		return rc;
	name = native_entry_name(e);
	if (native_hidden(name)) {
		snprintf(err, errlen,
			 "a tar, but not of a CouchDB data directory ('%s')",
			 name);
		return -EINVAL;
	}
	if (archive_entry_filetype(e) == AE_IFDIR)
		return archive_read_data_skip(rd) == ARCHIVE_OK ? 0 : -EBADMSG;
	if (archive_entry_filetype(e) != AE_IFREG || !native_is_couch(name) ||
	    archive_entry_hardlink(e)) {
		snprintf(err, errlen,
			 "a tar, but not of CouchDB .couch files ('%s')", name);
		return -EINVAL;
	}
	(*files)++;
	return native_check_member(rd, name, archive_entry_size(e), err,
				   errlen);
}

static int native_walk(const char *path, struct bfs_progress *progress,
		       char *err, size_t errlen)
{
	struct archive_entry *e;
	struct archive *rd;
	la_int64_t before = 0;
	uint64_t n = 0, files = 0;
	int r, rc = 0;

	rd = files_reader(path, err, errlen);
	if (!rd)
		return -EINVAL;
	while ((r = archive_read_next_header(rd, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(err, errlen, "%s: %s",
				 n ? "corrupt tar" : "not a tar stream",
				 files_ar_msg(rd));
			rc = n ? -EBADMSG : -EINVAL;
			break;
		}
		rc = native_check_entry(rd, e, &files, err, errlen);
		if (rc)
			break;
		n++;
		before = archive_filter_bytes(rd, -1);
		progress->done = (uint64_t)before;
	}
	if (!rc && !n) {
		snprintf(err, errlen, "the tar holds nothing");
		rc = -EINVAL;
	}
	/* A cut stream ends right after an entry, without the two zero
	 * blocks every tar writer puts last. */
	if (!rc && archive_filter_bytes(rd, -1) - before < 1024) {
		snprintf(err, errlen, "truncated: no end of archive");
		rc = -EBADMSG;
	}
	if (!rc)
		bfs_debug("'%s': %llu .couch files, each ending on a header",
			  path, (unsigned long long)files);
	archive_read_free(rd);
	return rc;
}

int couch_native_verify(struct couch_ds *cd, const char *path,
			struct bfs_progress *progress, char *err, size_t errlen)
{
	struct files_locale loc;
	struct stat st;
	int rc;

	(void)cd;
	if (stat(path, &st))
		return -errno;
	progress->total = (uint64_t)st.st_size;
	files_locale_enter(&loc);
	rc = native_walk(path, progress, err, errlen);
	files_locale_leave(&loc);
	return rc;
}

/* ---- restore ----------------------------------------------------------- */

static int native_extract(struct couch_ds *cd, const char *path,
			  const char *dir, char *err, size_t errlen)
{
	const char *argv[] = {
		"tar", "-x", "-f", "-", "-C", dir, "--no-same-owner", NULL};
	struct ds_cmd cmd = {.argv = argv};
	char *owner = NULL;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cmd.in_fd = fd;
	rc = ds_run(&cd->x, &cmd, err, errlen);
	close(fd);
	if (rc)
		return rc;
	if (asprintf(&owner, "%s:", cd->os_user) < 0)
		return -ENOMEM;
	{
		const char *own[] = {"chown", "-R", "--", owner, dir, NULL};

		rc = ds_run_argv(&cd->x, NULL, own, err, errlen);
	}
	free(owner);
	return rc;
}

int couch_native_restore(struct couch_ds *cd, const char *path,
			 struct bfs_progress *progress, char *err,
			 size_t errlen)
{
	struct ds_swap swap;
	int rc;

	rc = ds_swap_begin(&swap, &cd->x, &cd->svc, cd->state_dir, cd->data_dir,
			   cd->os_user, err, errlen);
	if (rc)
		return rc;
	rc = native_extract(cd, path, swap.staging, err, errlen);
	if (rc) {
		ds_swap_abort(&swap);
		return rc;
	}
	progress->done = progress->total;
	return ds_swap_commit(&swap, err, errlen);
}
