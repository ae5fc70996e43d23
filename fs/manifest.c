// SPDX-License-Identifier: Apache-2.0
/*
 * Manifests as JSON, timestamps and user-visible names.
 *
 * Encode and decode share one field check (mf_check_fields()), so we
 * never write a manifest we would refuse to read back.  Decoding trusts
 * nothing: even a manifest that passed authentication is bounded before
 * its numbers are used, since a bug in an older writer must not become an
 * out-of-bounds read here.
 */
#include "manifest.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MF_CHUNKS_MIN_CAP 16
/* 9999-12-31T23:59:59Z: the last second a 4-digit year can show */
#define MF_TIME_MAX 253402300799LL

/*
 * The chunk array has no capacity field: its capacity is a function of
 * nchunks (16, then the next power of two), so add_chunk() grows it when
 * nchunks reaches a power of two and decode allocates the same.
 */
static size_t mf_chunks_cap(size_t n)
{
	size_t cap = MF_CHUNKS_MIN_CAP;

	while (cap < n)
		cap *= 2;
	return cap;
}

struct bfs_manifest *bfs_manifest_new(void)
{
	struct bfs_manifest *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->strategy = json_object();
	m->extra = json_object();
	if (!m->strategy || !m->extra) {
		bfs_manifest_free(m);
		return NULL;
	}
	return m;
}

void bfs_manifest_free(struct bfs_manifest *m)
{
	if (!m)
		return;
	free(m->backup_id);
	free(m->instance);
	free(m->timestamp);
	free(m->datastore);
	free(m->datastore_version);
	free(m->format);
	free(m->codec);
	free(m->label);
	free(m->parent);
	json_decref(m->strategy);
	json_decref(m->extra);
	free(m->chunks);
	free(m);
}

int bfs_manifest_add_chunk(struct bfs_manifest *m, const uint8_t id[BFS_ID_LEN],
			   uint32_t size)
{
	struct bfs_chunk_ref *p;
	size_t n = m->nchunks;

	if (!size || size > BFS_MANIFEST_MAX_CHUNK_SIZE)
		return -EINVAL;
	if (n >= BFS_MANIFEST_MAX_CHUNKS ||
	    m->size > (uint64_t)INT64_MAX - size)
		return -EFBIG;
	if (n == 0 || (n >= MF_CHUNKS_MIN_CAP && !(n & (n - 1)))) {
		p = realloc(m->chunks, mf_chunks_cap(n + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		m->chunks = p;
	}
	p = &m->chunks[n];
	memcpy(p->id, id, BFS_ID_LEN);
	p->offset = m->size;
	p->size = size;
	m->size += size;
	m->nchunks = n + 1;
	return 0;
}

ssize_t bfs_manifest_find(const struct bfs_manifest *m, uint64_t off)
{
	size_t lo = 0, hi = m->nchunks, mid;

	if (off >= m->size || !m->nchunks)
		return -1;
	/* the last chunk whose offset is <= off */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (m->chunks[mid].offset <= off)
			lo = mid;
		else
			hi = mid;
	}
	return (ssize_t)lo;
}

/* Names. */

int bfs_name_ok(const char *name)
{
	size_t i;

	/* ".." anywhere, not just as the whole name: such names are never
	 * needed and refusing them keeps every later path join obviously
	 * safe. */
	if (!name || !name[0] || name[0] == '.' || strstr(name, ".."))
		return 0;
	for (i = 0; name[i]; i++) {
		if (i >= BFS_NAME_MAX)
			return 0;
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f ||
		    name[i] == '/')
			return 0;
	}
	return 1;
}

/* Free-form text (label-like, may be empty): bounded, no control bytes. */
static int mf_text_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i >= BFS_NAME_MAX || (unsigned char)s[i] < 0x20 ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

/* Exactly n lower-case hex digits: the only form we write. */
static int mf_hex_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == 0;
}

/* Timestamps. */

void bfs_timestamp_format(int64_t t, char *out)
{
	struct tm tm;
	time_t tt;

	/* clamp to what the fixed-width form can show */
	if (t < 0)
		t = 0;
	if (t > MF_TIME_MAX)
		t = MF_TIME_MAX;
	tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, BFS_TIMESTAMP_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int mf_days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return days[month - 1] + (month == 2 && leap);
}

/* n decimal digits at s; -1 if any is not a digit. */
static int mf_digits(const char *s, int n)
{
	int v = 0;

	while (n--) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	return v;
}

int bfs_timestamp_parse(const char *s, int64_t *t)
{
	int year, mon, day, hour, min, sec;
	struct tm tm;

	if (!s || strnlen(s, BFS_TIMESTAMP_LEN + 1) != BFS_TIMESTAMP_LEN ||
	    s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return -EINVAL;
	year = mf_digits(s, 4);
	mon = mf_digits(s + 5, 2);
	day = mf_digits(s + 8, 2);
	hour = mf_digits(s + 11, 2);
	min = mf_digits(s + 14, 2);
	sec = mf_digits(s + 17, 2);
	/* no dates before the epoch, no leap seconds */
	if (year < 1970 || mon < 1 || mon > 12 || day < 1 ||
	    day > mf_days_in_month(year, mon) || hour < 0 || hour > 23 ||
	    min < 0 || min > 59 || sec < 0 || sec > 59)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	if (t)
		*t = (int64_t)timegm(&tm);
	return 0;
}

/*
 * The checks shared by encode and decode: everything but the chunk list.
 */
static int mf_check_fields(const struct bfs_manifest *m, char *err,
			   size_t errlen)
{
	int64_t t;

	if (!m->backup_id || !mf_hex_ok(m->backup_id, 32))
		return bfs_errf(err, errlen, "bad \"backup_id\""), -EBADMSG;
	if (!bfs_name_ok(m->instance))
		return bfs_errf(err, errlen, "bad \"instance\""), -EBADMSG;
	if (bfs_timestamp_parse(m->timestamp, &t))
		return bfs_errf(err, errlen, "bad \"timestamp\""), -EBADMSG;
	if (m->created < 0)
		return bfs_errf(err, errlen, "bad \"created\""), -EBADMSG;
	if (!bfs_name_ok(m->datastore))
		return bfs_errf(err, errlen, "bad \"datastore\""), -EBADMSG;
	/* NULL label and datastore_version are written as "" */
	if (m->datastore_version && !mf_text_ok(m->datastore_version))
		return bfs_errf(err, errlen, "bad \"datastore_version\""),
		       -EBADMSG;
	if (!bfs_name_ok(m->format))
		return bfs_errf(err, errlen, "bad \"format\""), -EBADMSG;
	if (!bfs_name_ok(m->codec))
		return bfs_errf(err, errlen, "bad \"codec\""), -EBADMSG;
	if (m->label && m->label[0] && !bfs_name_ok(m->label))
		return bfs_errf(err, errlen, "bad \"label\""), -EBADMSG;
	if (m->parent && bfs_timestamp_parse(m->parent, &t))
		return bfs_errf(err, errlen, "bad \"parent\""), -EBADMSG;
	if (!json_is_object(m->strategy) || !json_is_object(m->extra))
		return bfs_errf(err, errlen, "bad \"strategy\" or \"extra\""),
		       -EBADMSG;
	if (m->size > INT64_MAX || m->stored_bytes > INT64_MAX)
		return bfs_errf(err, errlen, "bad \"size\""), -EBADMSG;
	return 0;
}

/* Encoding. */

static json_t *mf_chunks_json(const struct bfs_manifest *m)
{
	char hex[2 * BFS_ID_LEN + 1];
	json_t *arr, *c;
	size_t i;

	arr = json_array();
	for (i = 0; arr && i < m->nchunks; i++) {
		bfs_hex(m->chunks[i].id, BFS_ID_LEN, hex);
		c = json_pack("[s,I]", hex, (json_int_t)m->chunks[i].size);
		if (json_array_append_new(arr, c)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The layout of docs/FORMAT.md, keys in this order. */
static json_t *mf_to_json(const struct bfs_manifest *m)
{
	char sha[2 * 32 + 1];
	json_t *chunks;

	chunks = mf_chunks_json(m);
	if (!chunks)
		return NULL;
	bfs_hex(m->sha256, sizeof(m->sha256), sha);
	/*
	 * One key per line, in the order of docs/FORMAT.md.  "o" steals
	 * chunks, "O" takes new references to strategy and extra.
	 */
	/* clang-format off */
	return json_pack("{s:i,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s?,"
			 "s:O,s:O,s:I,s:s,s:I,s:o}",
			 "version", BFS_MANIFEST_VERSION,
			 "backup_id", m->backup_id,
			 "instance", m->instance,
			 "timestamp", m->timestamp,
			 "created", (json_int_t)m->created,
			 "datastore", m->datastore,
			 "datastore_version",
			 m->datastore_version ? m->datastore_version : "",
			 "format", m->format,
			 "codec", m->codec,
			 "label", m->label ? m->label : "",
			 "parent", m->parent,
			 "strategy", m->strategy,
			 "extra", m->extra,
			 "size", (json_int_t)m->size,
			 "sha256", sha,
			 "stored_bytes", (json_int_t)m->stored_bytes,
			 "chunks", chunks);
	/* clang-format on */
}

int bfs_manifest_encode(const struct bfs_manifest *m, char **out, size_t *len)
{
	char reason[128];
	json_t *root;
	char *s;

	*out = NULL;
	*len = 0;
	if (mf_check_fields(m, reason, sizeof(reason))) {
		bfs_err("cannot encode manifest: %s", reason);
		return -EINVAL;
	}
	root = mf_to_json(m);
	if (!root)
		return -ENOMEM; /* or a string that is not UTF-8 */
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		return -ENOMEM;
	*len = strlen(s);
	/* never write what decode would refuse */
	if (*len > BFS_MANIFEST_MAX_BYTES) {
		free(s);
		*len = 0;
		return -EFBIG;
	}
	*out = s;
	return 0;
}

/* Decoding. */

/* A new copy of the string member key, or NULL with a reason. */
static int mf_get_str(json_t *root, const char *key, int nullable, char **out,
		      char *err, size_t errlen)
{
	json_t *v = json_object_get(root, key);

	*out = NULL;
	if (nullable && json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		bfs_errf(err, errlen, "\"%s\" is not a string", key);
		return -EBADMSG;
	}
	/* jansson refuses "\u0000" by default: no NUL inside */
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static int mf_get_int(json_t *root, const char *key, int64_t *out, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		bfs_errf(err, errlen, "\"%s\" is not an integer >= 0", key);
		return -EBADMSG;
	}
	*out = json_integer_value(v);
	return 0;
}

static int mf_get_obj(json_t *root, const char *key, json_t **out, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_object(v)) {
		bfs_errf(err, errlen, "\"%s\" is not an object", key);
		return -EBADMSG;
	}
	json_decref(*out);
	*out = json_incref(v);
	return 0;
}

static int mf_from_json_strings(json_t *root, struct bfs_manifest *m, char *err,
				size_t errlen)
{
	int ret;

	if ((ret = mf_get_str(root, "backup_id", 0, &m->backup_id, err,
			      errlen)) ||
	    (ret = mf_get_str(root, "instance", 0, &m->instance, err,
			      errlen)) ||
	    (ret = mf_get_str(root, "timestamp", 0, &m->timestamp, err,
			      errlen)) ||
	    (ret = mf_get_str(root, "datastore", 0, &m->datastore, err,
			      errlen)) ||
	    (ret = mf_get_str(root, "datastore_version", 0,
			      &m->datastore_version, err, errlen)) ||
	    (ret = mf_get_str(root, "format", 0, &m->format, err, errlen)) ||
	    (ret = mf_get_str(root, "codec", 0, &m->codec, err, errlen)) ||
	    (ret = mf_get_str(root, "label", 0, &m->label, err, errlen)) ||
	    (ret = mf_get_str(root, "parent", 1, &m->parent, err, errlen)))
		return ret;
	return 0;
}

static int mf_from_json_numbers(json_t *root, struct bfs_manifest *m, char *err,
				size_t errlen)
{
	json_t *v = json_object_get(root, "version");
	int64_t size, stored;
	const char *sha;
	int ret;

	if (!json_is_integer(v) ||
	    json_integer_value(v) != BFS_MANIFEST_VERSION) {
		bfs_errf(err, errlen, "unsupported manifest \"version\"");
		return -EBADMSG;
	}
	if ((ret = mf_get_int(root, "created", &m->created, err, errlen)) ||
	    (ret = mf_get_int(root, "size", &size, err, errlen)) ||
	    (ret = mf_get_int(root, "stored_bytes", &stored, err, errlen)))
		return ret;
	m->size = (uint64_t)size;
	m->stored_bytes = (uint64_t)stored;
	sha = json_string_value(json_object_get(root, "sha256"));
	if (!sha || !mf_hex_ok(sha, 64) ||
	    bfs_unhex(sha, m->sha256, sizeof(m->sha256))) {
		bfs_errf(err, errlen, "bad \"sha256\"");
		return -EBADMSG;
	}
	return 0;
}

/* One ["<64 hex>", size] element into m->chunks[i]. */
static int mf_chunk_from_json(json_t *c, size_t i, struct bfs_chunk_ref *ref,
			      char *err, size_t errlen)
{
	const char *hex = json_string_value(json_array_get(c, 0));
	json_t *sz = json_array_get(c, 1);
	json_int_t size;

	if (!json_is_array(c) || json_array_size(c) != 2 || !hex ||
	    !mf_hex_ok(hex, 2 * BFS_ID_LEN) || !json_is_integer(sz) ||
	    bfs_unhex(hex, ref->id, BFS_ID_LEN)) {
		bfs_errf(err, errlen, "bad chunk %zu", i);
		return -EBADMSG;
	}
	size = json_integer_value(sz);
	if (size < 1 || size > BFS_MANIFEST_MAX_CHUNK_SIZE) {
		bfs_errf(err, errlen, "bad size of chunk %zu", i);
		return -EBADMSG;
	}
	ref->size = (uint32_t)size;
	return 0;
}

int bfs_manifest_is_trove(const struct bfs_manifest *m)
{
	return m->format && !strcmp(m->format, BFS_FORMAT_TROVE);
}

/* An imported Trove backup has no chunks: its bytes are a legacy object
 * that extra.trove describes (docs/FORMAT.md). */
static int mf_check_trove(const struct bfs_manifest *m, size_t nchunks,
			  char *err, size_t errlen)
{
	if (nchunks) {
		bfs_errf(err, errlen, "a Trove backup with chunks");
		return -EBADMSG;
	}
	if (!json_is_object(json_object_get(m->extra, "trove"))) {
		bfs_errf(err, errlen, "a Trove backup without \"extra.trove\"");
		return -EBADMSG;
	}
	return 0;
}

static int mf_from_json_chunks(json_t *root, struct bfs_manifest *m, char *err,
			       size_t errlen)
{
	json_t *arr = json_object_get(root, "chunks");
	uint64_t off = 0;
	size_t n, i;
	int ret;

	if (!json_is_array(arr)) {
		bfs_errf(err, errlen, "\"chunks\" is not an array");
		return -EBADMSG;
	}
	n = json_array_size(arr);
	if (n > BFS_MANIFEST_MAX_CHUNKS) {
		bfs_errf(err, errlen, "too many chunks (%zu)", n);
		return -EBADMSG;
	}
	m->chunks = malloc(mf_chunks_cap(n) * sizeof(*m->chunks));
	if (!m->chunks)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		ret = mf_chunk_from_json(json_array_get(arr, i), i,
					 &m->chunks[i], err, errlen);
		if (ret)
			return ret;
		/* cannot wrap: at most 2^24 chunks of at most 2^26 bytes */
		m->chunks[i].offset = off;
		off += m->chunks[i].size;
		m->nchunks = i + 1;
	}
	if (bfs_manifest_is_trove(m))
		return mf_check_trove(m, n, err, errlen);
	if (off != m->size) {
		bfs_errf(err, errlen, "chunk sizes add up to %llu, not %llu",
			  (unsigned long long)off, (unsigned long long)m->size);
		return -EBADMSG;
	}
	return 0;
}

static int mf_from_json(json_t *root, struct bfs_manifest *m, char *err,
			size_t errlen)
{
	int ret;

	if (!json_is_object(root)) {
		bfs_errf(err, errlen, "manifest is not a JSON object");
		return -EBADMSG;
	}
	if ((ret = mf_from_json_numbers(root, m, err, errlen)) ||
	    (ret = mf_from_json_strings(root, m, err, errlen)) ||
	    (ret = mf_get_obj(root, "strategy", &m->strategy, err, errlen)) ||
	    (ret = mf_get_obj(root, "extra", &m->extra, err, errlen)) ||
	    (ret = mf_check_fields(m, err, errlen)))
		return ret;
	return mf_from_json_chunks(root, m, err, errlen);
}

int bfs_manifest_decode(const char *data, size_t len, struct bfs_manifest **out,
			char *err, size_t errlen)
{
	struct bfs_manifest *m;
	json_error_t jerr;
	json_t *root;
	int ret;

	*out = NULL;
	if (len > BFS_MANIFEST_MAX_BYTES) {
		bfs_errf(err, errlen, "manifest too large (%zu bytes)", len);
		return -EBADMSG;
	}
	/* duplicate keys would make two readers disagree: refuse them */
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		bfs_errf(err, errlen, "bad JSON at byte %d: %s", jerr.position,
			  jerr.text);
		return -EBADMSG;
	}
	m = bfs_manifest_new();
	if (!m) {
		ret = -ENOMEM;
		goto out_root;
	}
	ret = mf_from_json(root, m, err, errlen);
	if (ret) {
		bfs_manifest_free(m);
		goto out_root;
	}
	*out = m;
out_root:
	json_decref(root);
	return ret;
}
