// SPDX-License-Identifier: Apache-2.0
/*
 * Checking base backup tars (datastores/pg_tar.c): CRC-32C against its
 * published check value, and tars made here with a backup_manifest as
 * pg_basebackup writes it -- whole, with a changed file, a wrong size, a
 * missing or an extra file, a manifest that does not match its own
 * checksum, a SHA-256 manifest, no manifest at all, and no data
 * directory at all.
 */
#include "check.h"
#include "pg_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char base[] = "/tmp/bfs-pgtar-XXXXXX";

struct file {
	const char *name;
	const char *data;
};

static const struct file cluster[] = {
	{"backup_label", "START WAL LOCATION: 0/2000028\n"},
	{"PG_VERSION", "15\n"},
	{"global/pg_control", "pretend control file"},
	{"base/1/1259", "pretend relation"},
	{"pg_wal/000000010000000000000002", "pretend WAL"},
};
#define NFILES (sizeof(cluster) / sizeof(cluster[0]))

static void hex(const unsigned char *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* The checksum text pg_basebackup writes for data. */
static void checksum(const char *alg, const char *data, char *out)
{
	unsigned char md[64];
	unsigned int n;

	if (!strcmp(alg, "CRC32C")) {
		uint32_t c = pg_crc32c_update(0, data, strlen(data));

		sprintf(out, "%02x%02x%02x%02x", c & 0xff, (c >> 8) & 0xff,
			(c >> 16) & 0xff, c >> 24);
		return;
	}
	EVP_Digest(data, strlen(data), md, &n, EVP_sha256(), NULL);
	hex(md, n, out);
}

/*
 * A manifest for the files but WAL; change says how to spoil it:
 * "size" (one size off), "sum" (one checksum off), "self" (the manifest
 * checksum off), "lack" (a file left out).
 */
static char *manifest(const char *alg, const char *change)
{
	char *m = malloc(8192), sum[129], self[65];
	unsigned char md[32];
	unsigned int n;
	size_t len = 0, i;

	len += sprintf(m + len, "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
				"\"Files\": [\n");
	for (i = 0; i < NFILES; i++) {
		size_t size = strlen(cluster[i].data);

		if (!strncmp(cluster[i].name, "pg_wal/", 7))
			continue;
		if (!strcmp(change, "lack") && i == 3)
			continue;
		checksum(alg, cluster[i].data, sum);
		if (!strcmp(change, "sum") && i == 2)
			sum[0] = sum[0] == '0' ? '1' : '0';
		if (!strcmp(change, "size") && i == 3)
			size++;
		len += sprintf(
			m + len,
			"%s{ \"Path\": \"%s\", \"Size\": %zu, "
			"\"Last-Modified\": \"2026-11-22 00:00:00 GMT\", "
			"\"Checksum-Algorithm\": \"%s\", "
			"\"Checksum\": \"%s\" }\n",
			len > 60 ? "," : "", cluster[i].name, size, alg, sum);
	}
	len += sprintf(m + len, "],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, "
				"\"Start-LSN\": \"0/2000028\", \"End-LSN\": "
				"\"0/2000100\" }\n],\n");
	EVP_Digest(m, len, md, &n, EVP_sha256(), NULL);
	hex(md, 32, self);
	if (!strcmp(change, "self"))
		self[5] = self[5] == 'a' ? 'b' : 'a';
	sprintf(m + len, "\"Manifest-Checksum\": \"%s\"}\n", self);
	return m;
}

static void add(struct archive *a, const char *name, const char *data)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)strlen(data));
	archive_write_header(a, e);
	archive_write_data(a, data, strlen(data));
	archive_entry_free(e);
}

/* A tar of the cluster (+ extra file, - skip) and the manifest text. */
static void make_tar(const char *path, const char *man, const char *extra,
		     const char *skip, const char *changed)
{
	struct archive *a = archive_write_new();
	size_t i;

	archive_write_set_format_pax_restricted(a);
	archive_write_open_filename(a, path);
	for (i = 0; i < NFILES; i++) {
		if (skip && !strcmp(skip, cluster[i].name))
			continue;
		add(a, cluster[i].name,
		    changed && !strcmp(changed, cluster[i].name)
			    ? "pretend relatioN"
			    : cluster[i].data);
	}
	if (extra)
		add(a, extra, "stray");
	if (man)
		add(a, "backup_manifest", man);
	archive_write_close(a);
	archive_write_free(a);
}

static int verify(const char *path, char *version, int *has_manifest, char *err)
{
	struct bfs_progress p = {0};

	err[0] = '\0';
	return pg_tar_verify(path, &p, version, 16, has_manifest, err, 512);
}

static void test_crc32c(void)
{
	/* the CRC-32C check value (RFC 3720 B.4, iSCSI) */
	CHECK_EQ(pg_crc32c_update(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ(pg_crc32c_update(pg_crc32c_update(0, "1234", 4), "56789", 5),
		 0xe3069283u);
	CHECK_EQ(pg_crc32c_update(0, "", 0), 0);
}

static void test_whole_backup(void)
{
	char p[256], v[16], err[512], *m;
	int has;

	snprintf(p, sizeof(p), "%s/good.tar", base);
	m = manifest("CRC32C", "");
	make_tar(p, m, NULL, NULL, NULL);
	CHECK_EQ(verify(p, v, &has, err), 0);
	CHECK(!strcmp(v, "15"));
	CHECK_EQ(has, 1);
	free(m);
	m = manifest("SHA256", "");
	make_tar(p, m, NULL, NULL, NULL);
	CHECK_EQ(verify(p, v, &has, err), 0);
	free(m);
	/* a tar of a data directory without a manifest: structure only */
	make_tar(p, NULL, NULL, NULL, NULL);
	CHECK_EQ(verify(p, v, &has, err), 0);
	CHECK_EQ(has, 0);
}

static void expect_bad(const char *alg, const char *change, const char *extra,
		       const char *skip, const char *changed, const char *why)
{
	char p[256], v[16], err[512], *m;
	int has;

	snprintf(p, sizeof(p), "%s/bad.tar", base);
	m = manifest(alg, change);
	make_tar(p, m, extra, skip, changed);
	CHECK_EQ(verify(p, v, &has, err), -EBADMSG);
	if (!strstr(err, why))
		fprintf(stderr, "unexpected reason: %s (want %s)\n", err, why);
	CHECK(strstr(err, why) != NULL);
	free(m);
}

static void test_damage_found(void)
{
	expect_bad("CRC32C", "", NULL, NULL, "base/1/1259",
		   "does not match its checksum");
	expect_bad("SHA256", "", NULL, NULL, "base/1/1259",
		   "does not match its checksum");
	expect_bad("CRC32C", "sum", NULL, NULL, NULL,
		   "does not match its checksum");
	expect_bad("CRC32C", "size", NULL, NULL, NULL, "wrong size");
	expect_bad("CRC32C", "self", NULL, NULL, NULL,
		   "backup_manifest does not match");
	expect_bad("CRC32C", "", NULL, "base/1/1259", NULL,
		   "in the manifest, not in the tar");
	expect_bad("CRC32C", "lack", NULL, NULL, NULL,
		   "in the tar, not in the manifest");
	expect_bad("CRC32C", "", "base/1/9999", NULL, NULL,
		   "in the tar, not in the manifest");
}

static void test_not_a_cluster(void)
{
	char p[256], v[16], err[512];
	struct archive *a = archive_write_new();
	FILE *f;
	int has;

	snprintf(p, sizeof(p), "%s/other.tar", base);
	archive_write_set_format_pax_restricted(a);
	archive_write_open_filename(a, p);
	add(a, "hello.txt", "hi");
	archive_write_close(a);
	archive_write_free(a);
	CHECK_EQ(verify(p, v, &has, err), -EINVAL);
	CHECK(strstr(err, "not of a PostgreSQL data directory"));
	f = fopen(p, "w");
	fputs("not a tar at all, not at all", f);
	fclose(f);
	CHECK(verify(p, v, &has, err) == -EINVAL);
}

static void test_truncated(void)
{
	char p[256], v[16], err[512], *m;
	long size;
	FILE *f;
	int has;

	snprintf(p, sizeof(p), "%s/cut.tar", base);
	m = manifest("CRC32C", "");
	make_tar(p, m, NULL, NULL, NULL);
	free(m);
	f = fopen(p, "r+");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fclose(f);
	CHECK_EQ(truncate(p, size / 2), 0);
	CHECK_EQ(verify(p, v, &has, err), -EBADMSG);
}

int main(void)
{
	char cmd[64];

	if (!mkdtemp(base))
		return 2;
	RUN(test_crc32c);
	RUN(test_whole_backup);
	RUN(test_damage_found);
	RUN(test_not_a_cluster);
	RUN(test_truncated);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", base);
	return check_summary();
}
