// SPDX-License-Identifier: Apache-2.0
/*
 * import-trove's engine (trove_import.h): the list shapes, Trove's times,
 * the key file, and whole runs with local backends standing in for the
 * repository and the legacy container (Swift's layouts and the real
 * pipeline: tests/integration/test_trove_import.py).
 */
#include "check.h"
#include "fixture.h"
#include "repo.h"
#include "trove.h"
#include "trove_import.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char *path_of(const char *name)
{
	static char paths[4][256];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, 256, "%s/%s", tmpdir, name);
	return p;
}

/* ------------------------------------------------------------------ */
/* Times */

static void check_time(const char *in, const char *want)
{
	char out[BFS_TIMESTAMP_LEN + 1] = "";

	CHECK_EQ(bfs_trove_time_normalize(in, out), 0);
	if (strcmp(out, want))
		fprintf(stderr, "  \"%s\" gave \"%s\"\n", in, out);
	CHECK(!strcmp(out, want));
}

static void test_time_normalize(void)
{
	static const struct {
		const char *in, *want;
	} good[] = {
		{"2014-10-30T12:30:00", "2014-10-30T12:30:00Z"},
		{"2014-10-30T12:30:00Z", "2014-10-30T12:30:00Z"},
		{"2014-10-30 12:30:00", "2014-10-30T12:30:00Z"},
		{"2014-10-30T12:30:00.999999", "2014-10-30T12:30:00Z"},
		{"2014-10-30T12:30:00+02:00", "2014-10-30T10:30:00Z"},
		{"2014-10-30T23:30:00-0130", "2014-10-31T01:00:00Z"},
		{"2014-12-31T23:59:59-01", "2015-01-01T00:59:59Z"},
		{"2016-02-29T00:00:00.5+00:00", "2016-02-29T00:00:00Z"},
	};
	static const char *const bad[] = {
		"",
		"yesterday",
		"2014-10-30",
		"2014-10-30T12:30",
		"2014-10-30T12:30:00 ",
		"2014-10-30T12:30:00+2",
		"2014-10-30T12:30:00+24:00",
		"2014-02-30T12:30:00",
		"2014-10-30T25:30:00",
		"2014/10/30T12:30:00",
		" 2014-10-30T12:30:00",
		"2014-10-30T12:30:00ZZ",
		"+014-10-30T12:30:00",
	};
	char out[BFS_TIMESTAMP_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		check_time(good[i].in, good[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bfs_trove_time_normalize(bad[i], out) != -EINVAL)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
		CHECK_EQ(bfs_trove_time_normalize(bad[i], out), -EINVAL);
	}
}

/* ------------------------------------------------------------------ */
/* Lists */

static int parse(const char *text, struct bfs_trove_list *l)
{
	char err[512] = "";
	int ret;

	ret = bfs_trove_list_parse(text, strlen(text), l, err, sizeof(err));
	if (ret)
		fprintf(stderr, "  (parse: %s)\n", err);
	return ret;
}

static int str_is(const char *s, const char *want)
{
	return want ? s && !strcmp(s, want) : !s;
}

static void test_list_api(void)
{
	struct bfs_trove_list l;
	const struct bfs_trove_entry *e;

	CHECK_EQ(parse("{\"backups\": [{\"id\": "
		       "\"3f0c1a7e-8d2b-4b1e-9c1e-1a2b3c4d5e6f\", "
		       "\"name\": \"nightly\", \"locationRef\": "
		       "\"http://s/v1/AUTH_t/database_backups/x.gz\", "
		       "\"instance_id\": \"i1\", \"created\": "
		       "\"2014-10-30T12:30:00\", \"updated\": "
		       "\"2014-10-30T12:40:00\", \"size\": 0.2, \"status\": "
		       "\"COMPLETED\", \"parent_id\": null, \"checksum\": "
		       "\"abc\", \"datastore\": {\"type\": \"mysql\", "
		       "\"version\": \"5.7\", \"version_id\": \"v\"}}, "
		       "{\"id\": \"x\", \"status\": \"FAILED\", "
		       "\"updated\": \"2014-10-31T00:00:00Z\"}]}",
		       &l),
		 0);
	CHECK_EQ(l.n, 2);
	if (l.n != 2)
		return;
	e = &l.v[0];
	CHECK(str_is(e->id, "3f0c1a7e-8d2b-4b1e-9c1e-1a2b3c4d5e6f"));
	CHECK(str_is(e->name, "nightly"));
	CHECK(str_is(e->location, "http://s/v1/AUTH_t/database_backups/x.gz"));
	CHECK(str_is(e->instance_id, "i1"));
	CHECK(str_is(e->status, "COMPLETED"));
	CHECK(str_is(e->parent_id, NULL));
	CHECK(str_is(e->checksum, "abc"));
	CHECK(str_is(e->datastore, "mysql"));
	CHECK(str_is(e->datastore_version, "5.7"));
	CHECK(!strcmp(e->timestamp, "2014-10-30T12:30:00Z"));
	CHECK(!e->bad[0] && e->index == 0);
	/* no created: updated */
	CHECK(!strcmp(l.v[1].timestamp, "2014-10-31T00:00:00Z"));
	CHECK(str_is(l.v[1].instance_id, NULL) && l.v[1].index == 1);
	bfs_trove_list_release(&l);
	CHECK(l.v == NULL && l.n == 0);
}

static void test_list_cli(void)
{
	struct bfs_trove_list l;
	const struct bfs_trove_entry *e;

	/* openstack database backup list -f json */
	CHECK_EQ(parse("[{\"ID\": \"a\", \"Instance ID\": \"i2\", \"Name\": "
		       "\"n\", \"Status\": \"COMPLETED\", \"Parent ID\": "
		       "\"p\", \"Updated\": \"2015-01-01T00:00:00\"}, "
		       "{\"ID\": \"b\", \"Instance ID\": \"i2\", \"Name\": "
		       "null, \"Status\": \"NEW\", \"Parent ID\": \"\", "
		       "\"Updated\": \"2015-01-02T00:00:00\"}]",
		       &l),
		 0);
	CHECK_EQ(l.n, 2);
	if (l.n == 2) {
		e = &l.v[0];
		CHECK(str_is(e->id, "a") && str_is(e->instance_id, "i2"));
		CHECK(str_is(e->parent_id, "p") && str_is(e->name, "n"));
		CHECK(!strcmp(e->timestamp, "2015-01-01T00:00:00Z"));
		CHECK(str_is(e->location, NULL) && str_is(e->datastore, NULL));
		CHECK(str_is(l.v[1].parent_id, NULL));
		CHECK(str_is(l.v[1].name, NULL));
	}
	bfs_trove_list_release(&l);
	/* openstack database backup show -f json: datastore a string */
	CHECK_EQ(parse("{\"created\": \"2015-02-01T00:00:00\", \"datastore\": "
		       "\"mariadb\", \"datastore_version\": \"10.4\", \"id\": "
		       "\"c\", \"instance_id\": \"i3\", \"status\": "
		       "\"COMPLETED\"}",
		       &l),
		 0);
	CHECK_EQ(l.n, 1);
	if (l.n == 1) {
		CHECK(str_is(l.v[0].datastore, "mariadb"));
		CHECK(str_is(l.v[0].datastore_version, "10.4"));
		CHECK(str_is(l.v[0].instance_id, "i3"));
	}
	bfs_trove_list_release(&l);
	/* the API's single backup */
	CHECK_EQ(parse("{\"backup\": {\"id\": \"d\", \"created\": "
		       "\"2015-02-01T00:00:00\"}}",
		       &l),
		 0);
	CHECK(l.n == 1 && str_is(l.v[0].id, "d"));
	bfs_trove_list_release(&l);
	CHECK_EQ(parse("[]", &l), 0);
	CHECK_EQ(l.n, 0);
	bfs_trove_list_release(&l);
}

static void test_list_bad(void)
{
	struct bfs_trove_list l;
	char err[512];

	CHECK_EQ(bfs_trove_list_parse("{\"backups\": [", 13, &l, err,
				      sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "line 1") != NULL);
	CHECK_EQ(bfs_trove_list_parse("{\"items\": []}", 13, &l, err,
				      sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "not a Trove backup list") != NULL);
	CHECK_EQ(bfs_trove_list_parse("42", 2, &l, err, sizeof(err)), -EINVAL);
	CHECK_EQ(bfs_trove_list_parse("{\"id\": 1, \"id\": 2}", 18, &l, err,
				      sizeof(err)),
		 -EINVAL);
	/* entries that cannot be used are kept, with a reason */
	CHECK_EQ(parse("[7, {\"id\": 5, \"created\": \"2015-01-01T00:00:00\"},"
		       " {\"id\": \"a\"}, {\"id\": \"b\", \"created\": "
		       "\"soon\"}, {\"id\": \"c\", \"name\": \"x\\u001b[2J\", "
		       "\"created\": \"2015-01-01T00:00:00\"}, {\"id\": \"d\", "
		       "\"created\": null, \"updated\": "
		       "\"2015-01-01T00:00:00\"}]",
		       &l),
		 0);
	CHECK_EQ(l.n, 6);
	if (l.n == 6) {
		CHECK(strstr(l.v[0].bad, "not a JSON object") != NULL);
		CHECK(strstr(l.v[1].bad, "\"id\"") != NULL);
		CHECK(strstr(l.v[2].bad, "no \"created\"") != NULL);
		CHECK(strstr(l.v[3].bad, "\"created\" is not a time") != NULL);
		CHECK(strstr(l.v[4].bad, "\"name\"") != NULL);
		CHECK(!l.v[5].bad[0]);
	}
	bfs_trove_list_release(&l);
}

static void test_list_load(void)
{
	struct bfs_trove_list l;
	char err[512];
	FILE *f;

	fx_make_tmpdir("import");
	CHECK_EQ(
		bfs_trove_list_load(path_of("none.json"), &l, err, sizeof(err)),
		-ENOENT);
	CHECK(strstr(err, "none.json") != NULL);
	f = fopen(path_of("l.json"), "w");
	fputs("{\"backups\": [{\"id\": \"x\"}]}\n", f);
	fclose(f);
	CHECK_EQ(bfs_trove_list_load(path_of("l.json"), &l, err, sizeof(err)),
		 0);
	CHECK_EQ(l.n, 1);
	bfs_trove_list_release(&l);
	f = fopen(path_of("bad.json"), "w");
	fputs("{\"backups\": 1}\n", f);
	fclose(f);
	CHECK_EQ(bfs_trove_list_load(path_of("bad.json"), &l, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "bad.json") != NULL);
	fx_rm_tmpdir();
}

/* ------------------------------------------------------------------ */
/* The key file */

static void write_key(const char *path, const char *text, size_t len,
		      mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, len), (ssize_t)len);
	close(fd);
	CHECK_EQ(chmod(path, mode), 0);
}

static int key_read(const char *text, size_t len, mode_t mode, char **pass,
		    char *err, size_t errlen)
{
	char *p = path_of("trove.key");

	write_key(p, text, len, mode);
	return bfs_trove_key_file_read(p, pass, err, errlen);
}

static void test_key_file(void)
{
	char err[512], *pass = NULL, big[BFS_TROVE_PASS_MAX + 2];

	fx_make_tmpdir("import");
	CHECK_EQ(key_read("default_aes_cbc_key\n", 20, 0600, &pass, err,
			  sizeof(err)),
		 0);
	CHECK(str_is(pass, "default_aes_cbc_key"));
	bfs_trove_pass_free(pass);
	CHECK_EQ(key_read("with spaces\r\n", 13, 0400, &pass, err, sizeof(err)),
		 0);
	CHECK(str_is(pass, "with spaces"));
	bfs_trove_pass_free(pass);
	CHECK_EQ(key_read("sekrit\n", 7, 0644, &pass, err, sizeof(err)),
		 -EPERM);
	CHECK(strstr(err, "0644") && strstr(err, "chmod 600") &&
	      !strstr(err, "sekrit") && !pass);
	CHECK_EQ(key_read("\n", 1, 0600, &pass, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "empty") != NULL);
	CHECK_EQ(key_read("two\nlines\n", 10, 0600, &pass, err, sizeof(err)),
		 -EINVAL);
	CHECK(!strstr(err, "two"));
	CHECK_EQ(key_read("nul\0x\n", 6, 0600, &pass, err, sizeof(err)),
		 -EINVAL);
	memset(big, 'k', sizeof(big));
	CHECK_EQ(key_read(big, BFS_TROVE_PASS_MAX, 0600, &pass, err,
			  sizeof(err)),
		 0);
	CHECK(pass && strlen(pass) == BFS_TROVE_PASS_MAX);
	bfs_trove_pass_free(pass);
	CHECK_EQ(key_read(big, BFS_TROVE_PASS_MAX + 1, 0600, &pass, err,
			  sizeof(err)),
		 -EINVAL);
	CHECK_EQ(key_read(big, sizeof(big), 0600, &pass, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(bfs_trove_key_file_read(path_of("none"), &pass, err,
					 sizeof(err)),
		 -ENOENT);
	CHECK_EQ(bfs_trove_key_file_read(tmpdir, &pass, err, sizeof(err)),
		 -EINVAL);
	bfs_trove_pass_free(NULL);
	fx_rm_tmpdir();
}

static void test_key_name(void)
{
	static const uint8_t m1[BFS_KEY_LEN] = {1}, m2[BFS_KEY_LEN] = {2};
	char a[BFS_TROVE_KEY_NAME_LEN + 1], b[BFS_TROVE_KEY_NAME_LEN + 1];
	struct bfs_keys k1, k2;
	size_t i;

	CHECK_EQ(bfs_keys_derive(m1, &k1), 0);
	CHECK_EQ(bfs_keys_derive(m2, &k2), 0);
	bfs_trove_key_name(&k1, "default_aes_cbc_key", a);
	CHECK_EQ(strlen(a), BFS_TROVE_KEY_NAME_LEN);
	CHECK(!strncmp(a, "trove-", 6));
	for (i = 6; i < BFS_TROVE_KEY_NAME_LEN; i++)
		CHECK(strchr("0123456789abcdef", a[i]) != NULL);
	bfs_trove_key_name(&k1, "default_aes_cbc_key", b);
	CHECK(!strcmp(a, b));
	bfs_trove_key_name(&k1, "another", b);
	CHECK(strcmp(a, b));
	/* another repository, another name: names do not link repositories */
	bfs_trove_key_name(&k2, "default_aes_cbc_key", b);
	CHECK(strcmp(a, b));
	CHECK(!strcmp(bfs_trove_result_name(BFS_TROVE_ALREADY),
		      "already imported"));
	CHECK(!strcmp(bfs_trove_result_name(99), "?"));
}

/* ------------------------------------------------------------------ */
/* Whole runs on local backends */

#define PASS  "sekrit pass"
#define ID_A  "0a000000-0000-4000-8000-000000000001"
#define ID_B  "0b000000-0000-4000-8000-000000000002"
#define ID_C  "0c000000-0000-4000-8000-000000000003"
#define ID_D  "0d000000-0000-4000-8000-000000000004"
#define ID_E  "0e000000-0000-4000-8000-000000000005"
#define INST  "inst-1"
#define TS_A  "2015-01-01T00:00:00Z"
#define TS_B  "2015-01-02T00:00:00Z"
#define PLAIN (300 * 1024)

struct run_fx {
	struct bfs_backend *repo_be, *legacy;
	struct bfs_repo *repo;
	uint8_t *plain;
	/* the outcomes reported, by id */
	int result[5];
	char reason[5][256];
	uint64_t size[5];
	char kdf[5][32];
	unsigned counts[BFS_TROVE_NRESULTS];
};

static struct bfs_backend *open_dir(const char *name)
{
	struct bfs_backend *be = NULL;
	char err[256];
	json_t *conf;

	conf = json_pack("{s:s,s:s}", "type", "local", "path", path_of(name));
	CHECK_EQ(bfs_backend_open(conf, &be, err, sizeof(err)), 0);
	json_decref(conf);
	return be;
}

/* gzip, as the gzip CLI writes it (zlib's gzip wrapper). */
static size_t gzip_mem(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z = {0};
	size_t n;

	CHECK_EQ(
		deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY),
		Z_OK);
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	CHECK_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
	n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

/* openssl enc -aes-256-cbc -salt -md sha256 -pass pass:PASS */
static size_t enc_mem(const uint8_t *in, size_t len, uint8_t *out)
{
	static const uint8_t salt[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t key[BFS_TROVE_KEY_LEN], iv[BFS_TROVE_IV_LEN];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;

	CHECK_EQ(bfs_trove_kdf_derive(BFS_TROVE_KDF_BTK_SHA256, PASS, salt, key,
				      iv),
		 0);
	memcpy(out, "Salted__", 8);
	memcpy(out + 8, salt, 8);
	EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv);
	EVP_EncryptUpdate(c, out + 16, &n1, in, (int)len);
	EVP_EncryptFinal_ex(c, out + 16 + n1, &n2);
	EVP_CIPHER_CTX_free(c);
	return 16 + (size_t)n1 + (size_t)n2;
}

static void put_legacy(struct run_fx *f)
{
	size_t cap = 2 * PLAIN + 4096, n;
	uint8_t *gz = malloc(cap), *enc = malloc(cap);
	size_t i;

	f->plain = malloc(PLAIN);
	for (i = 0; i < PLAIN; i++)
		f->plain[i] = (uint8_t)(i * 7 + (i >> 9));
	n = gzip_mem(f->plain, PLAIN, gz, cap);
	CHECK_EQ(bfs_backend_put(f->legacy, ID_A ".gz", gz, n, 0), 0);
	CHECK_EQ(bfs_backend_put(f->legacy, ID_A "_00000000", "seg", 3, 0), 0);
	CHECK_EQ(bfs_backend_put(f->legacy, ID_B ".xbstream.gz.enc", enc,
				 enc_mem(gz, n, enc), 0),
		 0);
	gz[n - 6] ^= 1; /* in the CRC32 of the trailer */
	CHECK_EQ(bfs_backend_put(f->legacy, ID_C ".tar.gz", gz, n, 0), 0);
	free(gz);
	free(enc);
}

/* C with a bad CRC, D without an object, E not COMPLETED; B (encrypted)
 * is A's child, listed first.  The CLI's list shape: no locationRef. */
static const char run_list[] =
	"[{\"ID\": \"" ID_B "\", \"Instance ID\": \"" INST "\", \"Name\": "
	"\"inc\", \"Status\": \"COMPLETED\", \"Parent ID\": \"" ID_A "\", "
	"\"Updated\": \"2015-01-02T00:00:00\"},"
	"{\"ID\": \"" ID_A "\", \"Instance ID\": \"" INST "\", \"Name\": "
	"\"full\", \"Status\": \"COMPLETED\", \"Parent ID\": null, "
	"\"Updated\": \"2015-01-01T00:00:00\"},"
	"{\"ID\": \"" ID_C "\", \"Instance ID\": \"" INST "\", \"Status\": "
	"\"COMPLETED\", \"Updated\": \"2015-01-03T00:00:00\"},"
	"{\"ID\": \"" ID_D "\", \"Instance ID\": \"" INST "\", \"Status\": "
	"\"COMPLETED\", \"Updated\": \"2015-01-04T00:00:00\"},"
	"{\"ID\": \"" ID_E "\", \"Instance ID\": \"" INST "\", \"Status\": "
	"\"FAILED\", \"Updated\": \"2015-01-05T00:00:00\"}]";

static void report(const struct bfs_trove_outcome *o, void *arg)
{
	struct run_fx *f = arg;
	int i = o->id[1] - 'a';

	if (i < 0 || i >= 5)
		return;
	f->result[i] = o->result;
	snprintf(f->reason[i], sizeof(f->reason[i]), "%s", o->reason);
	f->size[i] = o->size;
	snprintf(f->kdf[i], sizeof(f->kdf[i]), "%s", o->kdf ? o->kdf : "");
}

static void import(struct run_fx *f, const char *pass)
{
	struct bfs_trove_import imp = {
		.repo = f->repo,
		.legacy = f->legacy,
		.container = "database_backups",
		.state_dir = path_of("state"),
		.pass = pass,
		.report = report,
		.arg = f,
	};
	struct bfs_trove_list l;

	memset(f->result, 0xff, sizeof(f->result));
	CHECK_EQ(parse(run_list, &l), 0);
	CHECK_EQ(bfs_trove_import_run(&imp, &l, f->counts), 0);
	bfs_trove_list_release(&l);
}

static void check_imported(struct run_fx *f)
{
	char name[BFS_TROVE_KEY_NAME_LEN + 1];
	struct bfs_manifest *m = NULL;
	uint8_t sha[32];
	json_t *tr, *rec = NULL;

	CHECK_EQ(bfs_repo_manifest_get(f->repo, INST, TS_B, BFS_SIZE_UNKNOWN,
				       &m),
		 0);
	if (!m)
		return;
	tr = json_object_get(m->extra, "trove");
	CHECK(bfs_manifest_is_trove(m) && m->nchunks == 0);
	CHECK(!strcmp(m->backup_id, "0b000000000040008000000000000002"));
	CHECK_EQ(m->size, PLAIN);
	EVP_Digest(f->plain, PLAIN, sha, NULL, EVP_sha256(), NULL);
	CHECK(!memcmp(m->sha256, sha, 32));
	CHECK(m->parent && !strcmp(m->parent, TS_A));
	CHECK(!strcmp(m->label, "inc") && !strcmp(m->datastore, "unknown"));
	CHECK(!strcmp(json_string_value(json_object_get(tr, "object")),
		      ID_B ".xbstream.gz.enc"));
	CHECK(!strcmp(json_string_value(json_object_get(tr, "payload")),
		      "xbstream"));
	CHECK(!strcmp(json_string_value(json_object_get(tr, "parent_id")),
		      ID_A));
	bfs_trove_key_name(bfs_repo_keys(f->repo), PASS, name);
	CHECK(!strcmp(json_string_value(json_object_get(tr, "key")), name));
	CHECK_EQ(bfs_repo_record_get(f->repo, "keys", name, &rec), 0);
	CHECK(!strcmp(json_string_value(json_object_get(rec, "pass")), PASS));
	json_decref(rec);
	bfs_manifest_free(m);
}

static void test_run(void)
{
	struct run_fx f = {0};
	char err[256];
	struct stat st;

	fx_make_tmpdir("import");
	f.repo_be = open_dir("repo");
	f.legacy = open_dir("legacy");
	CHECK_EQ(bfs_repo_init(f.repo_be, master), 0);
	CHECK_EQ(bfs_repo_open(f.repo_be, master, &f.repo, err, sizeof(err)),
		 0);
	put_legacy(&f);
	import(&f, PASS);
	CHECK_EQ(f.result[0], BFS_TROVE_IMPORTED);
	CHECK_EQ(f.result[1], BFS_TROVE_IMPORTED);
	CHECK(!strcmp(f.kdf[1], "bytestokey-sha256"));
	CHECK(f.size[0] == PLAIN && f.size[1] == PLAIN);
	CHECK_EQ(f.result[2], BFS_TROVE_FAILED);
	CHECK(strstr(f.reason[2], "crc32") != NULL);
	CHECK_EQ(f.result[3], BFS_TROVE_MISSING);
	CHECK_EQ(f.result[4], BFS_TROVE_SKIPPED);
	CHECK(!strcmp(f.reason[4], "status FAILED"));
	CHECK(f.counts[BFS_TROVE_IMPORTED] == 2 &&
	      f.counts[BFS_TROVE_FAILED] == 1);
	check_imported(&f);
	CHECK_EQ(stat(path_of("state/trove/" ID_B ".idx"), &st), 0);
	/* again, with the stored key only: nothing new */
	import(&f, NULL);
	CHECK_EQ(f.result[0], BFS_TROVE_ALREADY);
	CHECK_EQ(f.result[1], BFS_TROVE_ALREADY);
	CHECK_EQ(f.result[2], BFS_TROVE_FAILED);
	CHECK_EQ(f.counts[BFS_TROVE_ALREADY], 2);
	bfs_repo_close(f.repo);
	bfs_backend_close(f.repo_be);
	bfs_backend_close(f.legacy);
	free(f.plain);
	fx_rm_tmpdir();
}

/* Without the key, a fresh repository cannot import the .enc one. */
static void test_run_no_key(void)
{
	struct run_fx f = {0};
	char err[256];

	fx_make_tmpdir("import");
	f.repo_be = open_dir("repo");
	f.legacy = open_dir("legacy");
	CHECK_EQ(bfs_repo_init(f.repo_be, master), 0);
	CHECK_EQ(bfs_repo_open(f.repo_be, master, &f.repo, err, sizeof(err)),
		 0);
	put_legacy(&f);
	import(&f, NULL);
	CHECK_EQ(f.result[0], BFS_TROVE_IMPORTED);
	CHECK_EQ(f.result[1], BFS_TROVE_FAILED);
	CHECK(strstr(f.reason[1], "--key-file") != NULL);
	import(&f, "wrong");
	CHECK_EQ(f.result[1], BFS_TROVE_FAILED);
	CHECK(strstr(f.reason[1], "wrong key (no key derivation decrypts " ID_B
				  ".xbstream.gz.enc)") != NULL);
	bfs_repo_close(f.repo);
	bfs_backend_close(f.repo_be);
	bfs_backend_close(f.legacy);
	free(f.plain);
	fx_rm_tmpdir();
}

int main(void)
{
	RUN(test_time_normalize);
	RUN(test_list_api);
	RUN(test_list_cli);
	RUN(test_list_bad);
	RUN(test_list_load);
	RUN(test_key_file);
	RUN(test_key_name);
	RUN(test_run);
	RUN(test_run_no_key);
	return check_summary();
}
