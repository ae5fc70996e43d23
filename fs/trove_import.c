// SPDX-License-Identifier: Apache-2.0
/*
 * Importing legacy Trove backups (trove_import.h; the manifests written
 * are specified in docs/FORMAT.md, "Imported Trove backups").
 *
 * Per entry of the list, oldest first:
 *
 *   1. only COMPLETED backups, with a UUID, an instance and a time;
 *   2. already in the repository (a manifest with its backup id)?  Then
 *      nothing is read again;
 *   3. its object: locationRef's last component, else the one name of the
 *      container that bfs_trove_name_parse() takes for the id;
 *   4. HEAD: size, ETag and layout; Trove's checksum must be the ETag;
 *   5. for .enc, the key: the one given, then those stored already;
 *   6. one pass over the whole object (every CRC, the padding and, for a
 *      single object, its MD5 against the ETag) for the exact size and
 *      the SHA-256, leaving the reader's index in the state directory;
 *   7. under a writer lock: the key record, then the manifest.
 *
 * Nothing is written for an entry that fails any step; the others go on.
 */
#include "trove_import.h"

#include "crypto.h"
#include "log.h"
#include "trove.h"
#include "trove_backup.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Object bytes per ranged GET of the verification pass. */
#define TI_FETCH      (4u << 20)
#define TI_REASON     768
#define TI_UUID_LEN   36
#define TI_OBJECT_MAX 1024

/* A backup of the repository (found by a scan, or imported now). */
struct ti_known {
	char *instance;
	char ts[BFS_TIMESTAMP_LEN + 1];
	char backup_id[33]; /* "" when its manifest is unreadable */
};

/* A pass phrase and the name of its key record. */
struct ti_key {
	char name[BFS_TROVE_KEY_NAME_LEN + 1];
	char *pass;
};

struct ti_run {
	const struct bfs_trove_import *imp;
	struct ti_known *known;
	size_t nknown, capknown;
	char **scanned; /* instances whose manifests are in known */
	size_t nscanned, capscanned;
	struct ti_key given; /* pass NULL when none was given */
	int given_stored;    /* its record exists */
	struct ti_key *stored;
	size_t nstored;
	int stored_loaded;
	char index_dir[PATH_MAX]; /* "" when it cannot be made */
};

/* One entry being imported. */
struct ti_job {
	struct ti_run *run;
	const struct bfs_trove_entry *e;
	char id[40];	    /* the id, or "(entry N)" */
	char backup_id[33]; /* the id without its dashes */
	char object[TI_OBJECT_MAX + 1];
	struct bfs_trove_name tn;
	struct bfs_object_info info;
	int headed;		  /* info is known */
	const struct ti_key *key; /* NULL for a plain object */
	int key_given;		  /* key is run->given */
	int kdf;
	uint64_t size;
	uint8_t sha256[32];
	const char *parent; /* timestamp, or NULL */
	char mismatch[256]; /* Trove's checksum is not the ETag */
	char reason[TI_REASON];
};

const char *bfs_trove_result_name(int result)
{
	static const char *const names[BFS_TROVE_NRESULTS] = {
		"imported", "already imported", "skipped", "missing", "failed",
	};

	return result >= 0 && result < BFS_TROVE_NRESULTS ? names[result] : "?";
}

void bfs_trove_key_name(const struct bfs_keys *keys, const char *pass,
			char out[BFS_TROVE_KEY_NAME_LEN + 1])
{
	uint8_t mac[32];

	bfs_hmac_sha256(keys->id, pass, strlen(pass), mac);
	memcpy(out, "trove-", 6);
	bfs_hex(mac, 8, out + 6);
}

/* A failure with its reason; returns the result for the caller. */
__attribute__((format(printf, 3, 4))) static int
ti_fail(struct ti_job *j, int result, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->reason, sizeof(j->reason), fmt, ap);
	va_end(ap);
	return result;
}

/* ------------------------------------------------------------------ */
/* What the repository holds */

static int ti_known_add(struct ti_run *run, const char *instance,
			const char *ts, const char *backup_id)
{
	struct ti_known *k;

	if (run->nknown == run->capknown) {
		size_t cap = run->capknown ? 2 * run->capknown : 64;

		k = realloc(run->known, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		run->known = k;
		run->capknown = cap;
	}
	k = &run->known[run->nknown];
	k->instance = strdup(instance);
	if (!k->instance)
		return -ENOMEM;
	snprintf(k->ts, sizeof(k->ts), "%s", ts);
	snprintf(k->backup_id, sizeof(k->backup_id), "%s", backup_id);
	run->nknown++;
	return 0;
}

/* The backup of instance with this timestamp (ts) or id (backup_id). */
static const struct ti_known *ti_known_find(const struct ti_run *run,
					    const char *instance,
					    const char *ts,
					    const char *backup_id)
{
	size_t i;

	for (i = 0; i < run->nknown; i++) {
		const struct ti_known *k = &run->known[i];

		if (strcmp(k->instance, instance))
			continue;
		if ((ts && !strcmp(k->ts, ts)) ||
		    (backup_id && !strcmp(k->backup_id, backup_id)))
			return k;
	}
	return NULL;
}

struct ti_scan {
	struct ti_run *run;
	const char *instance;
};

/* An unreadable manifest still takes its timestamp: noted with no id. */
static int ti_scan_cb(const char *ts, uint64_t size, void *arg)
{
	struct ti_scan *s = arg;
	struct bfs_manifest *m = NULL;
	int ret;

	ret = bfs_repo_manifest_get(s->run->imp->repo, s->instance, ts, size,
				    &m);
	if (ret == -ENOENT)
		return 0; /* deleted since the listing */
	ret = ti_known_add(s->run, s->instance, ts, m ? m->backup_id : "");
	bfs_manifest_free(m);
	return ret;
}

/* The backups of an instance, once per run: every manifest is read, so
 * a backup imported earlier under another time is still recognized. */
static int ti_scan(struct ti_run *run, const char *instance)
{
	struct ti_scan s = {run, instance};
	char **v;
	size_t i;
	int ret;

	for (i = 0; i < run->nscanned; i++)
		if (!strcmp(run->scanned[i], instance))
			return 0;
	ret = bfs_repo_list_backups(run->imp->repo, instance, ti_scan_cb, &s);
	if (ret)
		return ret;
	if (run->nscanned == run->capscanned) {
		size_t cap = run->capscanned ? 2 * run->capscanned : 16;

		v = realloc(run->scanned, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		run->scanned = v;
		run->capscanned = cap;
	}
	run->scanned[run->nscanned] = strdup(instance);
	if (!run->scanned[run->nscanned])
		return -ENOMEM;
	run->nscanned++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Step 1: the entry itself */

/* 8-4-4-4-12 hex digits; backup_id gets them in lower case, no dashes. */
static int ti_uuid(const char *id, char backup_id[33])
{
	size_t i, n = 0;

	if (strlen(id) != TI_UUID_LEN)
		return -EINVAL;
	for (i = 0; i < TI_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (id[i] != '-')
				return -EINVAL;
			continue;
		}
		if (!isxdigit((unsigned char)id[i]))
			return -EINVAL;
		backup_id[n++] = (char)tolower((unsigned char)id[i]);
	}
	backup_id[n] = 0;
	return 0;
}

static int ti_check_entry(struct ti_job *j)
{
	const struct bfs_trove_entry *e = j->e;

	if (!e->status && e->bad[0])
		return ti_fail(j, BFS_TROVE_FAILED, "%s", e->bad);
	if (!e->status)
		return ti_fail(j, BFS_TROVE_SKIPPED, "no status in the list");
	if (strcasecmp(e->status, "COMPLETED"))
		return ti_fail(j, BFS_TROVE_SKIPPED, "status %s", e->status);
	if (e->bad[0])
		return ti_fail(j, BFS_TROVE_FAILED, "%s", e->bad);
	if (!e->id || ti_uuid(e->id, j->backup_id))
		return ti_fail(j, BFS_TROVE_FAILED,
			       "not a Trove backup id (a UUID)");
	if (!e->instance_id)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "no instance id in the list");
	if (!bfs_name_ok(e->instance_id))
		return ti_fail(j, BFS_TROVE_FAILED,
			       "instance id \"%.64s\" cannot be a name here",
			       e->instance_id);
	return BFS_TROVE_IMPORTED;
}

/* Step 2: imported already, or its place taken by another backup. */
static int ti_check_known(struct ti_job *j, const char **ts)
{
	const struct bfs_trove_entry *e = j->e;
	const struct ti_known *k;
	int ret;

	ret = ti_scan(j->run, e->instance_id);
	if (ret)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "cannot list the backups of instance %s: %s",
			       e->instance_id, strerror(-ret));
	k = ti_known_find(j->run, e->instance_id, NULL, j->backup_id);
	if (k) {
		*ts = k->ts;
		return BFS_TROVE_ALREADY;
	}
	k = ti_known_find(j->run, e->instance_id, e->timestamp, NULL);
	if (k)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "instances/%s/backups/%s is another backup "
			       "(%s)",
			       e->instance_id, e->timestamp,
			       k->backup_id[0] ? k->backup_id
					       : "an unreadable manifest");
	if (e->parent_id) {
		char pid[33];

		k = ti_uuid(e->parent_id, pid)
			    ? NULL
			    : ti_known_find(j->run, e->instance_id, NULL, pid);
		j->parent = k ? k->ts : NULL;
	}
	return BFS_TROVE_IMPORTED;
}

/* ------------------------------------------------------------------ */
/* Step 3: the object */

/* name is an object of this backup: "<id>" and one of Trove's suffixes. */
static int ti_is_object(const struct ti_job *j, const char *name,
			struct bfs_trove_name *tn)
{
	size_t n = strlen(j->e->id);

	return !bfs_trove_name_parse(name, tn) && tn->id_len == n &&
	       !strncmp(name, j->e->id, n);
}

/* ".../<container>/<object>" of locationRef (Trove's _explodeLocation). */
static int ti_from_location(struct ti_job *j)
{
	const char *loc = j->e->location, *obj = strrchr(loc, '/'), *cont;
	const char *want = j->run->imp->container;
	int clen;

	if (!strncasecmp(loc, "cinder:", 7))
		return ti_fail(j, BFS_TROVE_FAILED,
			       "stored in Cinder (locationRef %.200s), not "
			       "in Swift",
			       loc);
	if (obj) {
		for (cont = obj; cont > loc && cont[-1] != '/'; cont--)
			;
		clen = (int)(obj - cont < 256 ? obj - cont : 256);
		if (strlen(want) != (size_t)(obj - cont) ||
		    strncmp(cont, want, (size_t)(obj - cont)))
			return ti_fail(j, BFS_TROVE_FAILED,
				       "its locationRef is in container "
				       "\"%.*s\", not \"%s\" (import it with "
				       "--container %.*s)",
				       clen, cont, want, clen, cont);
		obj++;
	} else {
		obj = loc;
	}
	if (strlen(obj) > TI_OBJECT_MAX || !ti_is_object(j, obj, &j->tn))
		return ti_fail(j, BFS_TROVE_FAILED,
			       "locationRef \"%.200s\" does not name an object "
			       "of this backup",
			       loc);
	snprintf(j->object, sizeof(j->object), "%s", obj);
	return BFS_TROVE_IMPORTED;
}

struct ti_match {
	struct ti_job *j;
	int n;
	char other[TI_OBJECT_MAX + 1];
};

/* Segments "<id>_00000000" and anything else fail the name parse. */
static int ti_match_cb(const char *name, uint64_t size, int is_prefix,
		       void *arg)
{
	struct ti_match *m = arg;
	struct bfs_trove_name tn;

	(void)size;
	if (is_prefix || strlen(name) > TI_OBJECT_MAX ||
	    !ti_is_object(m->j, name, &tn))
		return 0;
	if (m->n++) {
		snprintf(m->other, sizeof(m->other), "%s", name);
		return 0;
	}
	snprintf(m->j->object, sizeof(m->j->object), "%s", name);
	m->j->tn = tn;
	return 0;
}

static int ti_from_listing(struct ti_job *j)
{
	struct ti_match m = {.j = j};
	const char *cont = j->run->imp->container;
	int ret;

	ret = bfs_backend_list(j->run->imp->legacy, j->e->id, 0, ti_match_cb,
			       &m);
	if (ret)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "cannot list container %s: %s", cont,
			       strerror(-ret));
	if (!m.n) {
		j->object[0] = 0;
		return ti_fail(j, BFS_TROVE_MISSING,
			       "no object %s.* in container %s", j->e->id,
			       cont);
	}
	if (m.n > 1)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "ambiguous: %d objects of it in container %s "
			       "(%s, %s%s)",
			       m.n, cont, j->object, m.other,
			       m.n > 2 ? ", ..." : "");
	return BFS_TROVE_IMPORTED;
}

/* Step 4: HEAD, and Trove's checksum against Swift's ETag. */
static int ti_head(struct ti_job *j)
{
	const char *cont = j->run->imp->container, *sum = j->e->checksum;
	size_t n;
	int ret;

	ret = bfs_backend_info(j->run->imp->legacy, j->object, &j->info);
	if (ret == -ENOENT)
		return ti_fail(j, BFS_TROVE_MISSING,
			       "no object %s in container %s", j->object, cont);
	if (ret)
		return ti_fail(j, BFS_TROVE_FAILED, "cannot HEAD %s: %s",
			       j->object, strerror(-ret));
	j->headed = 1;
	if (!sum)
		return BFS_TROVE_IMPORTED;
	/* Trove stored it without quotes; tolerate them anyway */
	n = strlen(sum);
	if (n >= 2 && sum[0] == '"' && sum[n - 1] == '"') {
		sum++;
		n -= 2;
	}
	if (n != strlen(j->info.etag) || strncasecmp(sum, j->info.etag, n))
		snprintf(j->mismatch, sizeof(j->mismatch),
			 "Swift's ETag %s is not Trove's checksum %.*s",
			 j->info.etag[0] ? j->info.etag : "(none)",
			 (int)(n < 64 ? n : 64), sum);
	return BFS_TROVE_IMPORTED;
}

/* ------------------------------------------------------------------ */
/* Step 5: the key */

static int ti_keys_cb(const char *name, void *arg)
{
	struct ti_run *run = arg;
	struct ti_key *k;
	json_t *rec = NULL;
	const char *type, *pass;
	int ret;

	if (strncmp(name, "trove-", 6) ||
	    strlen(name) != BFS_TROVE_KEY_NAME_LEN)
		return 0;
	ret = bfs_repo_record_get(run->imp->repo, "keys", name, &rec);
	type = json_string_value(json_object_get(rec, "type"));
	pass = json_string_value(json_object_get(rec, "pass"));
	if (ret || !type || strcmp(type, "trove-aes-cbc") || !pass) {
		bfs_warn("key record \"%s\" is %s: not tried", name,
			 ret ? "unreadable" : "not a Trove key");
		json_decref(rec);
		return 0;
	}
	k = realloc(run->stored, (run->nstored + 1) * sizeof(*k));
	if (k)
		run->stored = k;
	if (k) {
		k = &run->stored[run->nstored];
		snprintf(k->name, sizeof(k->name), "%s", name);
		k->pass = strdup(pass);
	}
	json_decref(rec);
	if (!k || !k->pass)
		return -ENOMEM;
	run->nstored++;
	return 0;
}

/* The keys imported before, read once per run when first needed. */
static int ti_keys_load(struct ti_run *run)
{
	int ret;

	if (run->stored_loaded)
		return 0;
	ret = bfs_repo_record_list(run->imp->repo, "keys", ti_keys_cb, run);
	if (ret == -ENOENT)
		ret = 0;
	run->stored_loaded = !ret;
	return ret;
}

/* 0 if k decrypts head (then j->kdf is the derivation), -EKEYREJECTED if
 * not, -EIO if head is not openssl's salted format. */
static int ti_key_try(struct ti_job *j, const struct ti_key *k,
		      const uint8_t head[BFS_TROVE_HEAD_LEN])
{
	uint8_t key[BFS_TROVE_KEY_LEN], iv[BFS_TROVE_IV_LEN];
	char why[256];
	int ret;

	ret = bfs_trove_kdf_detect(k->pass, BFS_TROVE_KDF_AUTO, head, &j->kdf,
				   key, iv, why, sizeof(why));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	if (!ret)
		j->key = k;
	return ret;
}

/* The given key first, then every stored one. */
static int ti_key_find(struct ti_job *j, const uint8_t *head)
{
	struct ti_run *run = j->run;
	size_t i;
	int ret = -EKEYREJECTED;

	if (run->given.pass) {
		ret = ti_key_try(j, &run->given, head);
		j->key_given = !ret;
	}
	if (ret == -EKEYREJECTED && ti_keys_load(run))
		return ti_fail(j, BFS_TROVE_FAILED,
			       "cannot read the stored keys");
	for (i = 0; ret == -EKEYREJECTED && i < run->nstored; i++)
		if (!run->given.pass ||
		    strcmp(run->stored[i].name, run->given.name))
			ret = ti_key_try(j, &run->stored[i], head);
	if (ret == -EIO)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "%s is not openssl's salted format", j->object);
	if (ret && !run->given.pass && !run->nstored)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "%s is encrypted and no key is known: give "
			       "Trove's backup_aes_cbc_key with --key-file",
			       j->object);
	if (ret)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "wrong key (no key derivation decrypts %s)",
			       j->object);
	return BFS_TROVE_IMPORTED;
}

static int ti_key(struct ti_job *j)
{
	struct bfs_buf head;
	int ret;

	j->kdf = BFS_TROVE_KDF_NONE;
	if (!j->tn.encrypted)
		return BFS_TROVE_IMPORTED;
	if (j->info.size < BFS_TROVE_HEAD_LEN)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "%s is truncated: %llu bytes", j->object,
			       (unsigned long long)j->info.size);
	bfs_buf_init(&head, BFS_TROVE_HEAD_LEN);
	ret = bfs_backend_get(j->run->imp->legacy, j->object, 0,
			      BFS_TROVE_HEAD_LEN, &head);
	if (!ret && head.len != BFS_TROVE_HEAD_LEN)
		ret = -EIO;
	ret = ret ? ti_fail(j, BFS_TROVE_FAILED, "cannot read %s: %s",
			    j->object, strerror(-ret))
		  : ti_key_find(j, head.data);
	bfs_buf_release(&head);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Step 6: the verification pass */

static int ti_fetch(void *arg, uint64_t off, size_t len, struct bfs_buf *out)
{
	struct ti_job *j = arg;

	return bfs_backend_get(j->run->imp->legacy, j->object, off, len, out);
}

static int ti_hex32(const char *s)
{
	size_t i;

	for (i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return !s[32];
}

static void ti_params(struct ti_job *j, struct bfs_trove_params *p, char *index,
		      size_t len)
{
	memset(p, 0, sizeof(*p));
	p->name = j->object;
	p->size = j->info.size;
	p->etag = j->info.etag;
	p->pass = j->key ? j->key->pass : NULL;
	p->kdf = j->kdf;
	/* a single object's ETag is its MD5; a manifest's is not */
	if (j->info.layout == BFS_LAYOUT_SINGLE && ti_hex32(j->info.etag))
		p->expect_md5 = j->info.etag;
	/* the path the read path uses: it finds the index ready */
	if (j->run->index_dir[0] &&
	    (size_t)snprintf(index, len, "%s/%s.idx", j->run->index_dir,
			     j->e->id) < len)
		p->index_path = index;
	p->cursors = 1;
	p->fetch_size = TI_FETCH;
	p->fetch = ti_fetch;
	p->fetch_arg = j;
}

static int ti_verify(struct ti_job *j)
{
	char index[PATH_MAX], err[512] = "";
	struct bfs_trove_reader *r = NULL;
	struct bfs_trove_params p;
	int ret;

	ti_params(j, &p, index, sizeof(index));
	ret = bfs_trove_reader_open(&p, &r, err, sizeof(err));
	if (!ret)
		ret = bfs_trove_hash_all(r, j->sha256, &j->size, NULL, NULL,
					 err, sizeof(err));
	bfs_trove_reader_free(r);
	if (ret && j->mismatch[0])
		return ti_fail(j, BFS_TROVE_FAILED, "%s; and %s", j->mismatch,
			       err[0] ? err : strerror(-ret));
	if (ret)
		return ti_fail(j, BFS_TROVE_FAILED, "%s",
			       err[0] ? err : strerror(-ret));
	if (j->mismatch[0])
		return ti_fail(j, BFS_TROVE_FAILED, "%s", j->mismatch);
	return BFS_TROVE_IMPORTED;
}

/* ------------------------------------------------------------------ */
/* Step 7: the manifest */

static const char *ti_payload(int payload)
{
	switch (payload) {
	case BFS_TROVE_PAYLOAD_XBSTREAM:
		return "xbstream";
	case BFS_TROVE_PAYLOAD_TAR:
		return "tar";
	}
	return "raw";
}

/* A datastore version the manifest takes: printable, at most 255. */
static const char *ti_version(const char *a, const char *b)
{
	const char *v[2] = {a, b};
	size_t i, k;

	for (i = 0; i < 2; i++) {
		if (!v[i] || !*v[i] || strlen(v[i]) > BFS_NAME_MAX)
			continue;
		for (k = 0; v[i][k]; k++)
			if ((unsigned char)v[i][k] < 0x20 || v[i][k] == 0x7f)
				break;
		if (!v[i][k])
			return v[i];
	}
	return "";
}

static json_t *ti_extra(const struct ti_job *j)
{
	const struct bfs_trove_entry *e = j->e;

	/* the layout of docs/FORMAT.md, keys in its order */
	/* clang-format off */
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:b,s:s,"
			 "s:s?,s:s?,s:s}",
			 "id", e->id,
			 "name", e->name ? e->name : "",
			 "container", j->run->imp->container,
			 "object", j->object,
			 "object_size", (json_int_t)j->info.size,
			 "etag", j->info.etag,
			 "checksum", e->checksum ? e->checksum : j->info.etag,
			 "layout", bfs_object_layout_name(j->info.layout),
			 "payload", ti_payload(j->tn.payload),
			 "encrypted", j->tn.encrypted,
			 "kdf", bfs_trove_kdf_name(j->kdf),
			 "key", j->key ? j->key->name : NULL,
			 "parent_id", e->parent_id,
			 "status", e->status);
	/* clang-format on */
}

static int ti_manifest_strings(const struct ti_job *j, struct bfs_manifest *m)
{
	const struct bfs_trove_entry *e = j->e;
	const char *ds = "unknown";

	if (e->datastore && bfs_name_ok(e->datastore))
		ds = e->datastore;
	else if (j->info.datastore[0] && bfs_name_ok(j->info.datastore))
		ds = j->info.datastore;
	m->backup_id = strdup(j->backup_id);
	m->instance = strdup(e->instance_id);
	m->timestamp = strdup(e->timestamp);
	m->datastore = strdup(ds);
	m->datastore_version = strdup(
		ti_version(e->datastore_version, j->info.datastore_version));
	m->format = strdup(BFS_FORMAT_TROVE);
	/* what the legacy bytes are: gzip, maybe inside openssl */
	m->codec = strdup("gzip");
	m->label = strdup(e->name && bfs_name_ok(e->name) ? e->name : "");
	m->parent = j->parent ? strdup(j->parent) : NULL;
	if (!m->backup_id || !m->instance || !m->timestamp || !m->datastore ||
	    !m->datastore_version || !m->format || !m->codec || !m->label ||
	    (j->parent && !m->parent))
		return -ENOMEM;
	return 0;
}

static struct bfs_manifest *ti_manifest(const struct ti_job *j)
{
	struct bfs_manifest *m = bfs_manifest_new();
	json_t *extra;

	if (!m || ti_manifest_strings(j, m))
		goto out_free;
	bfs_timestamp_parse(m->timestamp, &m->created);
	m->size = j->size;
	memcpy(m->sha256, j->sha256, sizeof(m->sha256));
	extra = ti_extra(j);
	if (!extra || json_object_set_new(m->extra, "trove", extra))
		goto out_free;
	return m;
out_free:
	bfs_manifest_free(m);
	return NULL;
}

/* The given key's record, before the first manifest that names it; an
 * existing record of that name holds the same key (the name is its
 * HMAC). */
static int ti_store_key(struct ti_job *j)
{
	struct ti_run *run = j->run;
	json_t *rec;
	int ret;

	if (!j->key_given || run->given_stored)
		return 0;
	rec = json_pack("{s:s,s:s}", "type", "trove-aes-cbc", "pass",
			run->given.pass);
	if (!rec)
		return -ENOMEM;
	ret = bfs_repo_record_put(run->imp->repo, "keys", run->given.name, rec,
				  BFS_PUT_EXCL);
	json_decref(rec);
	if (ret == -EEXIST)
		ret = 0;
	run->given_stored = !ret;
	return ret;
}

static int ti_write(struct ti_job *j)
{
	struct bfs_repo *repo = j->run->imp->repo;
	const struct bfs_trove_entry *e = j->e;
	struct bfs_repo_lock *lock;
	struct bfs_manifest *m;
	int ret;

	m = ti_manifest(j);
	if (!m)
		return ti_fail(j, BFS_TROVE_FAILED, "out of memory");
	ret = bfs_repo_lock_writer(repo, &lock);
	if (ret) {
		bfs_manifest_free(m);
		return ti_fail(j, BFS_TROVE_FAILED,
			       "cannot take the writer lock: %s",
			       ret == -EBUSY ? "a gc is running, try later"
					     : strerror(-ret));
	}
	ret = ti_store_key(j);
	if (ret)
		ti_fail(j, BFS_TROVE_FAILED, "cannot store its key: %s",
			strerror(-ret));
	else
		ret = bfs_repo_manifest_put(repo, m);
	bfs_repo_unlock(lock);
	bfs_manifest_free(m);
	if (ret == -EEXIST)
		return ti_fail(j, BFS_TROVE_FAILED,
			       "instances/%s/backups/%s was taken meanwhile",
			       e->instance_id, e->timestamp);
	if (ret && !j->reason[0])
		ti_fail(j, BFS_TROVE_FAILED, "cannot write its manifest: %s",
			strerror(-ret));
	if (ret)
		return BFS_TROVE_FAILED;
	ret = ti_known_add(j->run, e->instance_id, e->timestamp, j->backup_id);
	return ret ? ti_fail(j, BFS_TROVE_FAILED, "out of memory")
		   : BFS_TROVE_IMPORTED;
}

/* ------------------------------------------------------------------ */
/* One entry, and the run */

static int ti_steps(struct ti_job *j, const char **ts)
{
	int res;

	res = ti_check_entry(j);
	if (res == BFS_TROVE_IMPORTED)
		res = ti_check_known(j, ts);
	if (res == BFS_TROVE_IMPORTED)
		res = j->e->location ? ti_from_location(j) : ti_from_listing(j);
	if (res == BFS_TROVE_IMPORTED)
		res = ti_head(j);
	if (res == BFS_TROVE_IMPORTED)
		res = ti_key(j);
	if (res == BFS_TROVE_IMPORTED)
		res = ti_verify(j);
	if (res == BFS_TROVE_IMPORTED)
		res = ti_write(j);
	return res;
}

static void ti_entry(struct ti_run *run, const struct bfs_trove_entry *e,
		     unsigned counts[BFS_TROVE_NRESULTS])
{
	struct ti_job *j = calloc(1, sizeof(*j));
	struct bfs_trove_outcome o = {0};
	const char *ts = e->timestamp;

	o.entry = e;
	if (!j) {
		o.result = BFS_TROVE_FAILED;
		o.id = e->id ? e->id : "?";
		o.reason = "out of memory";
	} else {
		j->run = run;
		j->e = e;
		if (e->id)
			snprintf(j->id, sizeof(j->id), "%.39s", e->id);
		else
			snprintf(j->id, sizeof(j->id), "(entry %zu)",
				 e->index + 1);
		o.result = ti_steps(j, &ts);
		o.id = e->id ? e->id : j->id;
		o.reason = j->reason;
		o.object = j->object[0] ? j->object : NULL;
		o.size = j->size;
		if (j->headed)
			o.layout = bfs_object_layout_name(j->info.layout);
		if (o.result == BFS_TROVE_IMPORTED)
			o.kdf = bfs_trove_kdf_name(j->kdf);
	}
	o.instance = e->instance_id;
	o.timestamp = ts && *ts ? ts : NULL;
	counts[o.result]++;
	run->imp->report(&o, run->imp->arg);
	free(j);
}

/* Oldest first; equal times keep the list's order. */
static int ti_order(const void *a, const void *b)
{
	const struct bfs_trove_entry *x =
		*(const struct bfs_trove_entry *const *)a;
	const struct bfs_trove_entry *y =
		*(const struct bfs_trove_entry *const *)b;
	int c = strcmp(x->timestamp, y->timestamp);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* <state_dir>/trove for the readers' index files; "" if it cannot be. */
static void ti_index_dir(struct ti_run *run)
{
	const char *state = run->imp->state_dir;

	run->index_dir[0] = 0;
	if (!state)
		return;
	if (mkdir(state, 0700) && errno != EEXIST) {
		bfs_warn("cannot create \"%s\": %s (no index files)", state,
			 strerror(errno));
		return;
	}
	snprintf(run->index_dir, sizeof(run->index_dir), "%s/trove", state);
	if (mkdir(run->index_dir, 0700) && errno != EEXIST) {
		bfs_warn("cannot create \"%s\": %s (no index files)",
			 run->index_dir, strerror(errno));
		run->index_dir[0] = 0;
	}
}

static void ti_run_release(struct ti_run *run)
{
	size_t i;

	for (i = 0; i < run->nknown; i++)
		free(run->known[i].instance);
	free(run->known);
	for (i = 0; i < run->nscanned; i++)
		free(run->scanned[i]);
	free(run->scanned);
	for (i = 0; i < run->nstored; i++)
		bfs_trove_pass_free(run->stored[i].pass);
	free(run->stored);
}

int bfs_trove_import_run(const struct bfs_trove_import *imp,
			 const struct bfs_trove_list *list,
			 unsigned counts[BFS_TROVE_NRESULTS])
{
	const struct bfs_trove_entry **order;
	struct ti_run run = {.imp = imp};
	size_t i;

	memset(counts, 0, BFS_TROVE_NRESULTS * sizeof(*counts));
	order = malloc((list->n ? list->n : 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < list->n; i++)
		order[i] = &list->v[i];
	qsort(order, list->n, sizeof(*order), ti_order);
	if (imp->pass) {
		/* borrowed: the caller wipes it */
		run.given.pass = (char *)imp->pass;
		bfs_trove_key_name(bfs_repo_keys(imp->repo), imp->pass,
				   run.given.name);
	}
	ti_index_dir(&run);
	for (i = 0; i < list->n; i++)
		ti_entry(&run, order[i], counts);
	ti_run_release(&run);
	free(order);
	return 0;
}
