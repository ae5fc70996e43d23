// SPDX-License-Identifier: Apache-2.0
/*
 * Checking a base backup tar against the backup_manifest pg_basebackup
 * puts at its end (PostgreSQL 13 and later): what pg_verifybackup does
 * for a plain backup, which it cannot do for a tar.
 *
 * The manifest is JSON: a version, "Files" (Path, Size,
 * Checksum-Algorithm, Checksum), "WAL-Ranges", and last a
 * "Manifest-Checksum", the SHA-256 of every byte before that line.  Every
 * file it names must be in the tar with that size and checksum, and the
 * tar may hold nothing else but the WAL and the few files
 * pg_verifybackup also ignores.  WAL is not in the manifest: PostgreSQL
 * checks each record's CRC when it replays it at start, and a failed
 * start rolls the restore back.
 *
 * Checksums are computed while the tar is walked once.  CRC-32C, the
 * default, is computed for every file; a manifest made with
 * --manifest-checksums=SHA* needs a second walk for those files.
 */
#include "files_int.h"
#include "pg_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PG_MANIFEST_MAX (256u << 20)

/* ---- CRC-32C (Castagnoli), reflected, as PostgreSQL computes it ---- */

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
	uint32_t c;
	int i, j, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			crc32c_table[k][i] =
				(crc32c_table[k - 1][i] >> 8) ^
				crc32c_table[0][crc32c_table[k - 1][i] & 0xff];
}

uint32_t pg_crc32c_update(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	pthread_once(&crc32c_once, crc32c_init);
	crc = ~crc;
	/* eight bytes a step (slice-by-8) */
	while (len >= 8) {
		uint32_t lo =
			crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);

		crc = crc32c_table[7][lo & 0xff] ^
		      crc32c_table[6][(lo >> 8) & 0xff] ^
		      crc32c_table[5][(lo >> 16) & 0xff] ^
		      crc32c_table[4][lo >> 24] ^ crc32c_table[3][p[4]] ^
		      crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^
		      crc32c_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

/* ---- the files seen in the tar ---- */

/* What a walk of the tar found. */
struct pg_seen {
	json_t *files;	/* path -> [size, crc32c] of regular files */
	char *manifest; /* backup_manifest's content, or NULL */
	size_t manifest_len;
	char version[16]; /* PG_VERSION's first line */
	int control;	  /* global/pg_control is there */
	uint64_t entries;
};

static void pg_seen_release(struct pg_seen *s)
{
	json_decref(s->files);
	free(s->manifest);
	memset(s, 0, sizeof(*s));
}

static int pg_seen_file(struct pg_seen *s, const char *name, uint64_t size,
			uint32_t crc)
{
	json_t *v = json_pack("[I, I]", (json_int_t)size, (json_int_t)crc);

	if (!v || !s->files || json_object_set_new(s->files, name, v))
		return -ENOMEM;
	return 0;
}

static int pg_seen_manifest(struct pg_seen *s, const void *data, size_t len)
{
	char *grown;

	if (s->manifest_len + len > PG_MANIFEST_MAX)
		return -EFBIG;
	grown = realloc(s->manifest, s->manifest_len + len + 1);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + s->manifest_len, data, len);
	s->manifest = grown;
	s->manifest_len += len;
	s->manifest[s->manifest_len] = '\0';
	return 0;
}

/* ---- the manifest ---- */

static void hex_of(const unsigned char *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The SHA-256 of everything before the "Manifest-Checksum" line. */
static int manifest_self_check(const struct pg_seen *s, json_t *m, char *err,
			       size_t errlen)
{
	const char *want =
		json_string_value(json_object_get(m, "Manifest-Checksum"));
	const char *line = NULL, *p = s->manifest;
	unsigned char md[32];
	char got[65];
	unsigned int mdlen;

	while ((p = strstr(p, "\n\"Manifest-Checksum\"")))
		line = ++p;
	if (!want || !line) {
		snprintf(err, errlen, "backup_manifest has no checksum");
		return -EBADMSG;
	}
	if (!EVP_Digest(s->manifest, (size_t)(line - s->manifest), md, &mdlen,
			EVP_sha256(), NULL))
		return -EIO;
	hex_of(md, 32, got);
	if (strcasecmp(got, want)) {
		snprintf(err, errlen,
			 "backup_manifest does not match its "
			 "checksum");
		return -EBADMSG;
	}
	return 0;
}

/* Names the tar may hold beyond the manifest (pg_verifybackup's list). */
static int manifest_may_lack(const char *name)
{
	return !strcmp(name, "backup_manifest") ||
	       !strncmp(name, "pg_wal/", 7) || !strcmp(name, "pg_wal") ||
	       !strcmp(name, "postgresql.auto.conf") ||
	       !strcmp(name, "recovery.signal") ||
	       !strcmp(name, "standby.signal");
}

static const EVP_MD *pg_manifest_md(const char *algorithm)
{
	if (!strcasecmp(algorithm, "SHA224"))
		return EVP_sha224();
	if (!strcasecmp(algorithm, "SHA256"))
		return EVP_sha256();
	if (!strcasecmp(algorithm, "SHA384"))
		return EVP_sha384();
	if (!strcasecmp(algorithm, "SHA512"))
		return EVP_sha512();
	return NULL;
}

/*
 * One manifest entry against what the tar held.  A SHA checksum is put
 * into *sha (a new object path -> [algorithm, hex]) for the second walk.
 */
static int manifest_entry(const struct pg_seen *s, json_t *f, json_t *sha,
			  char *err, size_t errlen)
{
	const char *path = json_string_value(json_object_get(f, "Path"));
	const char *alg =
		json_string_value(json_object_get(f, "Checksum-Algorithm"));
	const char *sum = json_string_value(json_object_get(f, "Checksum"));
	json_t *size = json_object_get(f, "Size");
	json_t *got;
	char crc[9];
	uint32_t c;

	if (!path || !json_is_integer(size)) {
		snprintf(err, errlen, "backup_manifest has a bad file entry");
		return -EBADMSG;
	}
	got = json_object_get(s->files, path);
	if (!got) {
		snprintf(err, errlen, "'%s' is in the manifest, not in the tar",
			 path);
		return -EBADMSG;
	}
	if (json_integer_value(json_array_get(got, 0)) !=
	    json_integer_value(size)) {
		snprintf(err, errlen, "'%s' has the wrong size", path);
		return -EBADMSG;
	}
	if (!alg || !strcasecmp(alg, "NONE"))
		return 0;
	if (!sum) {
		snprintf(err, errlen, "'%s' has no checksum", path);
		return -EBADMSG;
	}
	if (!strcasecmp(alg, "CRC32C")) {
		/* PostgreSQL prints the CRC's bytes in memory order
		 * (pg_checksum_final copies the uint32): little-endian
		 * for a manifest written on x86 or ARM */
		c = (uint32_t)json_integer_value(json_array_get(got, 1));
		snprintf(crc, sizeof(crc), "%02x%02x%02x%02x", c & 0xff,
			 (c >> 8) & 0xff, (c >> 16) & 0xff, c >> 24);
		if (strcasecmp(crc, sum)) {
			snprintf(err, errlen,
				 "'%s' does not match its "
				 "checksum",
				 path);
			return -EBADMSG;
		}
		return 0;
	}
	if (!pg_manifest_md(alg)) {
		snprintf(err, errlen, "'%s': unknown checksum algorithm '%s'",
			 path, alg);
		return -EBADMSG;
	}
	return json_object_set_new(sha, path, json_pack("[s, s]", alg, sum))
		       ? -ENOMEM
		       : 0;
}

static int manifest_check(const struct pg_seen *s, json_t **sha_out, char *err,
			  size_t errlen)
{
	json_t *m, *files, *f, *sha, *listed, *v;
	json_error_t jerr;
	const char *name;
	size_t i;
	int rc;

	*sha_out = NULL;
	m = json_loadb(s->manifest, s->manifest_len, 0, &jerr);
	if (!m) {
		snprintf(err, errlen, "backup_manifest is not JSON: %s",
			 jerr.text);
		return -EBADMSG;
	}
	rc = manifest_self_check(s, m, err, errlen);
	files = json_object_get(m, "Files");
	if (!rc && !json_is_array(files)) {
		snprintf(err, errlen, "backup_manifest lists no files");
		rc = -EBADMSG;
	}
	sha = json_object();
	listed = json_object();
	if (!rc && (!sha || !listed))
		rc = -ENOMEM;
	json_array_foreach(files, i, f)
	{
		if (rc)
			break;
		rc = manifest_entry(s, f, sha, err, errlen);
		if (!rc && json_object_set(listed,
					   json_string_value(
						   json_object_get(f, "Path")),
					   json_true()))
			rc = -ENOMEM;
	}
	/* and nothing in the tar the manifest does not know */
	json_object_foreach(s->files, name, v)
	{
		if (rc)
			break;
		if (manifest_may_lack(name) || json_object_get(listed, name))
			continue;
		snprintf(err, errlen, "'%s' is in the tar, not in the manifest",
			 name);
		rc = -EBADMSG;
	}
	json_decref(listed);
	json_decref(m);
	if (!rc && json_object_size(sha))
		*sha_out = sha;
	else
		json_decref(sha);
	return rc;
}

/* ---- the walk ---- */

static const char *tar_name(struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);

	while (name[0] == '.' && name[1] == '/')
		name += 2;
	return name;
}

/* One file's checksum of the second walk, or NULL if not asked for. */
struct tar_digest {
	EVP_MD_CTX *ctx;
	const char *want; /* hex */
};

static int digest_begin(json_t *sha, const char *name, struct tar_digest *d)
{
	json_t *v = sha ? json_object_get(sha, name) : NULL;

	d->ctx = NULL;
	if (!v)
		return 0;
	d->want = json_string_value(json_array_get(v, 1));
	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx || !EVP_DigestInit_ex(d->ctx,
					  pg_manifest_md(json_string_value(
						  json_array_get(v, 0))),
					  NULL))
		return -ENOMEM;
	return 0;
}

static int digest_end(struct tar_digest *d, const char *name, char *err,
		      size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int n;
	int rc = 0;

	if (!d->ctx)
		return 0;
	if (!EVP_DigestFinal_ex(d->ctx, md, &n))
		rc = -EIO;
	else {
		hex_of(md, n, hex);
		if (strcasecmp(hex, d->want)) {
			snprintf(err, errlen,
				 "'%s' does not match its checksum", name);
			rc = -EBADMSG;
		}
	}
	EVP_MD_CTX_free(d->ctx);
	d->ctx = NULL;
	return rc;
}

/* Read a regular file's data: checksums, and what we keep of it. */
static int tar_data(struct archive *rd, const char *name, struct pg_seen *s,
		    json_t *sha, char *err, size_t errlen)
{
	int is_manifest = !strcmp(name, "backup_manifest");
	int is_version = !strcmp(name, "PG_VERSION");
	struct tar_digest d;
	uint64_t size = 0;
	uint32_t crc = 0;
	char buf[65536];
	la_ssize_t n;
	int rc;

	rc = digest_begin(sha, name, &d);
	while (!rc && (n = archive_read_data(rd, buf, sizeof(buf))) > 0) {
		if (is_version && !size) {
			const char *nl = memchr(buf, '\n', (size_t)n);
			size_t len = nl ? (size_t)(nl - buf) : (size_t)n;

			snprintf(s->version, sizeof(s->version), "%.*s",
				 (int)len, buf);
		}
		if (sha) {
			if (d.ctx && !EVP_DigestUpdate(d.ctx, buf, (size_t)n))
				rc = -EIO;
		} else {
			crc = pg_crc32c_update(crc, buf, (size_t)n);
			if (is_manifest)
				rc = pg_seen_manifest(s, buf, (size_t)n);
		}
		size += (uint64_t)n;
	}
	if (!rc && n < 0) {
		snprintf(err, errlen, "corrupt at '%s': %s", name,
			 files_ar_msg(rd));
		rc = -EBADMSG;
	}
	if (!rc)
		rc = sha ? digest_end(&d, name, err, errlen)
			 : pg_seen_file(s, name, size, crc);
	if (d.ctx)
		EVP_MD_CTX_free(d.ctx);
	return rc;
}

/* Walk the tar once: the first walk records (sha NULL), the second
 * checks the SHA checksums named in sha. */
static int tar_walk(const char *path, struct pg_seen *s, json_t *sha,
		    struct bfs_progress *progress, char *err, size_t errlen)
{
	struct archive_entry *e;
	struct archive *rd;
	la_int64_t before = 0;
	const char *name;
	int r, rc = 0;

	rd = files_reader(path, err, errlen);
	if (!rd)
		return -EINVAL;
	while ((r = archive_read_next_header(rd, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			snprintf(err, errlen, "%s: %s",
				 s->entries ? "corrupt tar" : "not a tar",
				 files_ar_msg(rd));
			rc = s->entries ? -EBADMSG : -EINVAL;
			break;
		}
		rc = files_check_entry(e, err, errlen);
		if (rc)
			break;
		name = tar_name(e);
		if (!strcmp(name, "global/pg_control"))
			s->control = 1;
		if (archive_entry_filetype(e) == AE_IFREG)
			rc = tar_data(rd, name, s, sha, err, errlen);
		if (rc)
			break;
		s->entries++;
		before = archive_filter_bytes(rd, -1);
		progress->done = (uint64_t)before;
	}
	/* A cut stream ends right after an entry, without the two zero
	 * blocks every tar writer puts last. */
	if (!rc && archive_filter_bytes(rd, -1) - before < 1024) {
		snprintf(err, errlen, "truncated: no end of archive");
		rc = -EBADMSG;
	}
	archive_read_free(rd);
	return rc;
}

int pg_tar_verify(const char *path, struct bfs_progress *progress,
		  char *version, size_t vlen, int *has_manifest, char *err,
		  size_t errlen)
{
	struct pg_seen s = {0};
	struct files_locale loc;
	json_t *sha = NULL;
	int rc;

	*has_manifest = 0;
	s.files = json_object();
	if (!s.files)
		return -ENOMEM;
	files_locale_enter(&loc);
	rc = tar_walk(path, &s, NULL, progress, err, errlen);
	if (!rc && (!s.version[0] || !s.control)) {
		snprintf(err, errlen,
			 "a tar, but not of a PostgreSQL data directory (no "
			 "%s)",
			 s.version[0] ? "global/pg_control" : "PG_VERSION");
		rc = -EINVAL;
	}
	if (!rc && s.manifest) {
		*has_manifest = 1;
		rc = manifest_check(&s, &sha, err, errlen);
	}
	if (!rc && sha) {
		s.entries = 0;
		rc = tar_walk(path, &s, sha, progress, err, errlen);
	}
	files_locale_leave(&loc);
	json_decref(sha);
	snprintf(version, vlen, "%s", s.version);
	pg_seen_release(&s);
	return rc;
}
