// SPDX-License-Identifier: Apache-2.0
/*
 * Legacy Trove objects, made at test time by the very commands Trove ran:
 * `gzip` and `openssl enc -aes-256-cbc -salt -pass pass:KEY` with each of
 * the three key derivations.
 *
 * With BFS_TROVE_BENCH_MIB=N set, runs a benchmark on N MiB instead.
 */
#include "check.h"
#include "trove.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define KEY	 "default_aes_cbc_key"
#define SRC_LEN	 (6u << 20)
#define PART_A	 (2u << 20)
#define SLACK	 (512u << 10) /* a checkpoint's distance past the interval */
#define INTERVAL (256u << 10)

struct blob {
	uint8_t *data;
	size_t len;
};

static char dir[256];
static struct blob src;	   /* the plaintext */
static struct blob gz;	   /* gzip < src */
static struct blob enc[4]; /* indexed by enum bfs_trove_kdf */
static struct blob multi;  /* gzip A (with a name), empty member, gzip -1 B */
static struct blob multi_src;
static struct blob many; /* 64 small members, encrypted (pbkdf2) */
static struct blob many_src;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Alternating text-like and random stretches: many deflate blocks of
 * both kinds. */
static void make_data(uint8_t *p, size_t len)
{
	static const char *words[] = {
		"INSERT", "INTO",      "orders", "VALUES", "(",
		"),",	  "'shipped'", "NULL",	 "\n",	   "customer"};
	size_t i = 0, n, stretch;
	char word[32];

	while (i < len) {
		stretch = i + (rnd() % (192u << 10)) + 4096;
		if (stretch > len)
			stretch = len;
		if (rnd() % 4 == 0) {
			while (i < stretch)
				p[i++] = (uint8_t)(rnd() >> 29);
			continue;
		}
		while (i < stretch) {
			uint64_t x = rnd();

			n = (size_t)snprintf(word, sizeof(word), "%s %u ",
					     words[x % 10],
					     (unsigned)(x >> 40) % 1000);
			n = n < stretch - i ? n : stretch - i;
			memcpy(p + i, word, n);
			i += n;
		}
	}
}

static char *path_of(const char *name)
{
	static char paths[8][512];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int read_file(const char *path, struct blob *b)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	int ok;

	if (!f || fstat(fileno(f), &st))
		return -1;
	b->len = (size_t)st.st_size;
	b->data = malloc(b->len ? b->len : 1);
	ok = fread(b->data, 1, b->len, f) == b->len;
	fclose(f);
	return ok ? 0 : -1;
}

/* Run argv with stdin from in and stdout to out (stderr discarded:
 * openssl warns about the old key derivations). */
static int run(char *const argv[], const char *in, const char *out)
{
	posix_spawn_file_actions_t fa;
	int status = -1;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out,
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0)
		waitpid(pid, &status, 0);
	posix_spawn_file_actions_destroy(&fa);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "command failed: %s\n", argv[0]);
		return -1;
	}
	return 0;
}

static int gzip_file(const char *in, const char *out, const char *level)
{
	char *argv[] = {"gzip", "-c", (char *)level, NULL};

	if (!level)
		argv[2] = NULL;
	return run(argv, in, out);
}

/* `openssl enc -aes-256-cbc -salt -pass pass:KEY` with a derivation. */
static int openssl_enc(int kdf, const char *key, const char *in,
		       const char *out, int nopad)
{
	char pass[128];
	char *argv[16] = {"openssl", "enc",   "-aes-256-cbc",
			  "-salt",   "-pass", pass};
	int n = 6;

	snprintf(pass, sizeof(pass), "pass:%s", key);
	argv[n++] = "-md";
	if (kdf == BFS_TROVE_KDF_PBKDF2_SHA512) {
		argv[n++] = "sha512";
		argv[n++] = "-pbkdf2";
		argv[n++] = "-iter";
		argv[n++] = "10000";
	} else {
		argv[n++] = kdf == BFS_TROVE_KDF_BTK_MD5 ? "md5" : "sha256";
	}
	if (nopad)
		argv[n++] = "-nopad";
	argv[n] = NULL;
	return run(argv, in, out);
}

/* Encrypt a blob with the openssl command. */
static int enc_blob(int kdf, const struct blob *in, struct blob *out, int nopad)
{
	char *pin = path_of("enc.in"), *pout = path_of("enc.out");

	if (write_file(pin, in->data, in->len) ||
	    openssl_enc(kdf, KEY, pin, pout, nopad))
		return -1;
	return read_file(pout, out);
}

static void append(struct blob *b, const void *data, size_t len)
{
	b->data = realloc(b->data, b->len + len + 1);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static int make_multi(void)
{
	char *pa = path_of("part-a"), *pb = path_of("part-b");
	char *out = path_of("part.gz");
	char *argv[] = {"gzip", "-c", pa, NULL};
	struct blob part;

	multi_src.len = src.len;
	multi_src.data = src.data;
	/* Named file: the header carries FNAME. */
	if (write_file(pa, src.data, PART_A) ||
	    write_file(pb, src.data + PART_A, src.len - PART_A) ||
	    run(argv, "/dev/null", out) || read_file(out, &part))
		return -1;
	append(&multi, part.data, part.len);
	free(part.data);
	if (gzip_file("/dev/null", out, NULL) || read_file(out, &part))
		return -1;
	append(&multi, part.data, part.len);
	free(part.data);
	if (gzip_file(pb, out, "-1") || read_file(out, &part))
		return -1;
	append(&multi, part.data, part.len);
	free(part.data);
	return 0;
}

/* 64 members of 48 KiB: checkpoints fall on member starts. */
static int make_many(void)
{
	char *pin = path_of("member"), *out = path_of("member.gz");
	struct blob part, plain = {0};
	int i;

	many_src.len = 64 * (48u << 10);
	many_src.data = src.data;
	for (i = 0; i < 64; i++) {
		if (write_file(pin, src.data + i * (48u << 10), 48u << 10) ||
		    gzip_file(pin, out, NULL) || read_file(out, &part))
			return -1;
		append(&plain, part.data, part.len);
		free(part.data);
	}
	i = enc_blob(BFS_TROVE_KDF_PBKDF2_SHA512, &plain, &many, 0);
	free(plain.data);
	return i;
}

static int make_fixtures(void)
{
	int kdf;

	snprintf(dir, sizeof(dir), "%s/bfs-trove-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	src.len = SRC_LEN;
	src.data = malloc(src.len);
	make_data(src.data, src.len);
	if (write_file(path_of("src"), src.data, src.len) ||
	    gzip_file(path_of("src"), path_of("src.gz"), NULL) ||
	    read_file(path_of("src.gz"), &gz))
		return -1;
	for (kdf = 1; kdf <= 3; kdf++)
		if (openssl_enc(kdf, KEY, path_of("src.gz"),
				path_of("src.gz.enc"), 0) ||
		    read_file(path_of("src.gz.enc"), &enc[kdf]))
			return -1;
	if (make_multi() || make_many())
		return -1;
	return 0;
}

static void remove_fixtures(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void md5_of(const struct blob *b, uint8_t out[16])
{
	EVP_Digest(b->data, b->len, out, NULL, EVP_md5(), NULL);
}

static void md5_hex(const struct blob *b, char out[33])
{
	uint8_t md[16];
	int i;

	md5_of(b, md);
	for (i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/*
 * The streaming decoder, fed in random pieces with random output room.
 * Returns the result of the last step; the output goes to *out.
 */
static int dec_all(const struct blob *obj, const char *pass, int kdf,
		   struct blob *out, int *kdf_out, uint8_t md5[16], char *err)
{
	struct bfs_trove_dec *d;
	const uint8_t *in;
	size_t off = 0, n, room, got, inlen;
	int ret;

	out->data = malloc(SRC_LEN + (1u << 20));
	out->len = 0;
	ret = bfs_trove_dec_new(pass, kdf, &d);
	if (ret)
		return ret;
	for (;;) {
		n = rnd() % 4 == 0 ? rnd() % 40 : rnd() % (200u << 10);
		if (n > obj->len - off)
			n = obj->len - off;
		in = obj->data + off;
		inlen = n;
		do {
			room = rnd() % 3 == 0 ? rnd() % 100 + 1
					      : rnd() % (300u << 10) + 1;
			if (room > SRC_LEN + (1u << 20) - out->len)
				room = SRC_LEN + (1u << 20) - out->len;
			ret = bfs_trove_dec_step(
				d, &in, &inlen, off + n == obj->len,
				out->data + out->len, room, &got, err, 256);
			out->len += got;
		} while (ret == 0 && (inlen || got == room));
		off += n;
		if (ret != 0)
			break;
		if (off == obj->len && !inlen) {
			/* Final input consumed: one more call must end. */
			ret = bfs_trove_dec_step(d, &in, &inlen, 1,
						 out->data + out->len, 1, &got,
						 err, 256);
			out->len += got;
			if (ret == 0 && !got)
				ret = -9999;
			if (ret != 0)
				break;
		}
	}
	if (kdf_out)
		*kdf_out = bfs_trove_dec_kdf(d);
	if (md5 && ret == BFS_TROVE_END)
		bfs_trove_dec_md5(d, md5);
	bfs_trove_dec_free(d);
	return ret;
}

/*
 * The reader over an in-memory object.
 */

struct mem_obj {
	const struct blob *b;
	_Atomic int fetches;
	_Atomic int small;   /* fetches under 64 KiB not at the end */
	pthread_t main;	     /* the thread that opened the reader */
	_Atomic int other;   /* fetches from other threads (prefetches) */
	_Atomic int blocked; /* of them, held at the gate now */
	int gated;	     /* under gate_lock: hold other threads' fetches */
};

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;

/* A fetch from another thread waits while the gate is closed (10 s at
 * most, so that a broken reader fails a test rather than hangs it). */
static void gate_pass(struct mem_obj *o)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&gate_lock);
	o->blocked++;
	while (o->gated &&
	       pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0)
		;
	o->blocked--;
	pthread_mutex_unlock(&gate_lock);
}

static void gate_set(struct mem_obj *o, int gated)
{
	pthread_mutex_lock(&gate_lock);
	o->gated = gated;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static int mem_fetch(void *arg, uint64_t off, size_t len, struct bfs_buf *out)
{
	struct mem_obj *o = arg;

	o->fetches++;
	if (!pthread_equal(pthread_self(), o->main)) {
		o->other++;
		gate_pass(o);
	}
	if (off > o->b->len || len > o->b->len - off)
		return -EIO;
	if (len < (64u << 10) && off + len != o->b->len &&
	    !(off == 0 && len == BFS_TROVE_HEAD_LEN))
		o->small++;
	return bfs_buf_append(out, o->b->data + off, len);
}

static int open_reader(struct mem_obj *o, const struct blob *b,
		       const char *pass, struct bfs_trove_params *extra,
		       struct bfs_trove_reader **r, char *err)
{
	struct bfs_trove_params p = {0};

	if (extra)
		p = *extra;
	o->b = b;
	o->fetches = 0;
	o->small = 0;
	o->main = pthread_self();
	o->other = 0;
	o->blocked = 0;
	o->gated = 0;
	p.name = p.name ? p.name : "3f2504e0-4f89-11d3-9a0c-0305e82c3301.gz";
	p.size = b->len;
	p.etag = p.etag ? p.etag : "etag-1";
	p.pass = pass;
	if (!p.interval)
		p.interval = INTERVAL;
	p.fetch = mem_fetch;
	p.fetch_arg = o;
	*r = NULL; /* a failed open crashes the test rather than hang it */
	return bfs_trove_reader_open(&p, r, err, 256);
}

/* Read everything in pieces of chunk bytes; the total or -errno. */
static ssize_t read_all(struct bfs_trove_reader *r, struct blob *out,
			size_t chunk, char *err)
{
	ssize_t n;

	out->data = malloc(SRC_LEN + chunk);
	out->len = 0;
	for (;;) {
		n = bfs_trove_read(r, out->len, chunk, out->data + out->len,
				   err, 256);
		if (n <= 0)
			return n < 0 ? n : (ssize_t)out->len;
		out->len += (size_t)n;
		if (out->len > SRC_LEN)
			return -9999;
	}
}

static int same(const struct blob *a, const struct blob *b)
{
	return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

/*
 * Tests.
 */

static void test_name_parse(void)
{
	struct bfs_trove_name n;

	CHECK_EQ(bfs_trove_name_parse("abc.xbstream.gz.enc", &n), 0);
	CHECK_EQ(n.id_len, 3);
	CHECK_EQ(n.encrypted, 1);
	CHECK_EQ(n.payload, BFS_TROVE_PAYLOAD_XBSTREAM);
	CHECK_EQ(bfs_trove_name_parse("abc.gz.enc", &n), 0);
	CHECK_EQ(n.payload, BFS_TROVE_PAYLOAD_RAW);
	CHECK_EQ(bfs_trove_name_parse("abc.tar.gz", &n), 0);
	CHECK_EQ(n.encrypted, 0);
	CHECK_EQ(n.payload, BFS_TROVE_PAYLOAD_TAR);
	CHECK_EQ(bfs_trove_name_parse("abc.xbstream.gz", &n), 0);
	CHECK_EQ(n.payload, BFS_TROVE_PAYLOAD_XBSTREAM);
	CHECK_EQ(bfs_trove_name_parse("abc.gz", &n), 0);
	CHECK_EQ(n.id_len, 3);
	CHECK_EQ(bfs_trove_name_parse("abc_00000001", &n), -EINVAL);
	CHECK_EQ(bfs_trove_name_parse(".gz", &n), -EINVAL);
	CHECK_EQ(bfs_trove_name_parse("a/b.gz", &n), -EINVAL);
	CHECK_EQ(bfs_trove_kdf_from_name("pbkdf2-sha512"), 1);
	CHECK_EQ(bfs_trove_kdf_from_name("auto"), BFS_TROVE_KDF_AUTO);
	CHECK(!strcmp(bfs_trove_kdf_name(3), "bytestokey-md5"));
}

/* Each derivation detected, bytes exact, MD5 of the object. */
static void test_kdf_stream(void)
{
	uint8_t md5[16], want[16];
	struct blob out;
	char err[256];
	int kdf, got;

	for (kdf = 1; kdf <= 3; kdf++) {
		CHECK_EQ(dec_all(&enc[kdf], KEY, BFS_TROVE_KDF_AUTO, &out, &got,
				 md5, err),
			 BFS_TROVE_END);
		CHECK_EQ(got, kdf);
		CHECK(same(&out, &src));
		md5_of(&enc[kdf], want);
		CHECK(!memcmp(md5, want, 16));
		free(out.data);
		/* A recorded derivation works alone. */
		CHECK_EQ(dec_all(&enc[kdf], KEY, kdf, &out, &got, NULL, err),
			 BFS_TROVE_END);
		free(out.data);
	}
}

static void test_kdf_reader(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct mem_obj o;
	struct blob out;
	char err[256];
	int kdf;

	for (kdf = 1; kdf <= 3; kdf++) {
		CHECK_EQ(open_reader(&o, &enc[kdf], KEY, NULL, &r, err), 0);
		CHECK_EQ(bfs_trove_reader_kdf(r), kdf);
		CHECK_EQ(read_all(r, &out, 128u << 10, err), (ssize_t)src.len);
		CHECK(same(&out, &src));
		CHECK_EQ(o.small, 0);
		free(out.data);
		bfs_trove_reader_free(r);
		/* The wrong recorded derivation is a wrong key. */
		p.kdf = kdf == 1 ? 2 : 1;
		CHECK_EQ(open_reader(&o, &enc[kdf], KEY, &p, &r, err),
			 -EKEYREJECTED);
	}
}

static void test_wrong_key(void)
{
	struct bfs_trove_reader *r;
	struct mem_obj o;
	struct blob out;
	char err[256] = "";
	int kdf;

	for (kdf = 1; kdf <= 3; kdf++) {
		CHECK_EQ(dec_all(&enc[kdf], "not-the-key", BFS_TROVE_KDF_AUTO,
				 &out, NULL, NULL, err),
			 -EKEYREJECTED);
		CHECK(strstr(err, "wrong key"));
		free(out.data);
		CHECK_EQ(open_reader(&o, &enc[kdf], "not-the-key", NULL, &r,
				     err),
			 -EKEYREJECTED);
	}
}

static void test_plain(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	uint8_t md5[16], want[16];
	char err[256], hex[33];
	struct mem_obj o;
	struct blob out;
	uint64_t size;
	int kdf;

	CHECK_EQ(dec_all(&gz, NULL, 0, &out, &kdf, md5, err), BFS_TROVE_END);
	CHECK_EQ(kdf, BFS_TROVE_KDF_NONE);
	CHECK(same(&out, &src));
	free(out.data);
	md5_of(&gz, want);
	CHECK(!memcmp(md5, want, 16));

	md5_hex(&gz, hex);
	p.expect_md5 = hex;
	CHECK_EQ(open_reader(&o, &gz, NULL, &p, &r, err), 0);
	CHECK_EQ(bfs_trove_reader_size(r, &size), 0);
	CHECK_EQ(bfs_trove_reader_md5(r, md5), -ENODATA);
	CHECK_EQ(read_all(r, &out, 100000, err), (ssize_t)src.len);
	CHECK(same(&out, &src));
	CHECK_EQ(bfs_trove_reader_size(r, &size), 1);
	CHECK_EQ(size, src.len);
	CHECK_EQ(bfs_trove_reader_md5(r, md5), 0);
	CHECK(!memcmp(md5, want, 16));
	CHECK_EQ(bfs_trove_reader_kdf(r), BFS_TROVE_KDF_NONE);
	free(out.data);
	bfs_trove_reader_free(r);

	/* A different ETag: the full pass fails. */
	p.expect_md5 = "00112233445566778899aabbccddeeff";
	CHECK_EQ(open_reader(&o, &gz, NULL, &p, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 1u << 20, err), -EIO);
	CHECK(strstr(err, "md5"));
	free(out.data);
	bfs_trove_reader_free(r);
}

static void test_multi_member(void)
{
	struct bfs_trove_reader *r;
	struct mem_obj o;
	struct blob out;
	char err[256];
	uint32_t isize;
	size_t off, len;
	int i;

	CHECK_EQ(dec_all(&multi, NULL, 0, &out, NULL, NULL, err),
		 BFS_TROVE_END);
	CHECK(same(&out, &multi_src));
	free(out.data);

	CHECK_EQ(open_reader(&o, &multi, NULL, NULL, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 65536, err), (ssize_t)multi_src.len);
	CHECK(same(&out, &multi_src));
	for (i = 0; i < 200; i++) {
		off = rnd() % multi_src.len;
		len = rnd() % 70000 + 1;
		if (len > multi_src.len - off)
			len = multi_src.len - off;
		CHECK_EQ(bfs_trove_read(r, off, len, out.data, err, 256),
			 (ssize_t)len);
		CHECK(!memcmp(out.data, multi_src.data + off, len));
	}
	CHECK_EQ(bfs_trove_reader_isize_hint(r, &isize, err, 256), 0);
	CHECK_EQ(isize, src.len - PART_A);
	free(out.data);
	bfs_trove_reader_free(r);
}

/* Expect -EIO from both the decoder and the reader, never a clean end. */
static void check_bad(const struct blob *obj, const char *pass,
		      const char *want_msg)
{
	struct bfs_trove_reader *r;
	char err[256] = "";
	struct mem_obj o;
	struct blob out;
	ssize_t n;
	int ret;

	ret = dec_all(obj, pass, BFS_TROVE_KDF_AUTO, &out, NULL, NULL, err);
	CHECK_EQ(ret, -EIO);
	if (want_msg && !strstr(err, want_msg)) {
		fprintf(stderr, "message '%s' lacks '%s'\n", err, want_msg);
		CHECK(0);
	}
	free(out.data);
	ret = open_reader(&o, obj, pass, NULL, &r, err);
	if (ret) {
		CHECK_EQ(ret, -EIO);
		return;
	}
	n = read_all(r, &out, 128u << 10, err);
	CHECK_EQ(n, -EIO);
	free(out.data);
	/* It sticks, even for bytes that decoded fine before. */
	CHECK_EQ(bfs_trove_read(r, 0, 16, err, err, 256), -EIO);
	CHECK_EQ(bfs_trove_reader_verify(r, err, 256), -EIO);
	bfs_trove_reader_free(r);
}

static void test_truncated(void)
{
	const size_t cut_gz[] = {1, 3, 4, 7, 8, 9, 1000, SRC_LEN / 5};
	const size_t cut_enc[] = {1, 5, 15, 16, 17, 32, 1000, SRC_LEN / 5};
	struct blob b;
	size_t i;

	for (i = 0; i < sizeof(cut_gz) / sizeof(cut_gz[0]); i++) {
		b.data = gz.data;
		b.len = gz.len - cut_gz[i];
		check_bad(&b, NULL, "truncated");
	}
	b.len = 10;
	check_bad(&b, NULL, "truncated");
	for (i = 0; i < sizeof(cut_enc) / sizeof(cut_enc[0]); i++) {
		b.data = enc[1].data;
		b.len = enc[1].len - cut_enc[i];
		check_bad(&b, KEY, NULL);
	}
	b.len = 40;
	check_bad(&b, KEY, "truncated");
}

static void flip(const struct blob *in, size_t at, struct blob *out)
{
	out->len = in->len;
	out->data = malloc(in->len);
	memcpy(out->data, in->data, in->len);
	out->data[at] ^= 0x04;
}

static void test_flipped(void)
{
	const double where[] = {0.1, 0.37, 0.5, 0.77, 0.999};
	struct blob b;
	size_t i;

	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		flip(&gz, (size_t)(gz.len * where[i]), &b);
		check_bad(&b, NULL, NULL);
		free(b.data);
		flip(&enc[2], (size_t)(enc[2].len * where[i]), &b);
		check_bad(&b, KEY, NULL);
		free(b.data);
	}
	/* In the trailer: the CRC and the length. */
	flip(&gz, gz.len - 6, &b);
	check_bad(&b, NULL, "crc32 mismatch");
	free(b.data);
	flip(&gz, gz.len - 2, &b);
	check_bad(&b, NULL, "length mismatch");
	free(b.data);
}

/* gz plus padding bytes of our choosing, encrypted with -nopad. */
static void padded(int kind, struct blob *out)
{
	size_t padlen = 16 - gz.len % 16, i;
	struct blob in = {0};
	uint8_t pad[32];

	if (kind && padlen < 2)
		padlen += 16;
	for (i = 0; i < padlen; i++)
		pad[i] = (uint8_t)(padlen > 16 ? 16 : padlen);
	if (kind == 1)
		memset(pad, 0, padlen);
	if (kind == 2)
		memset(pad, 17, padlen);
	if (kind == 3)
		pad[padlen - pad[padlen - 1]] ^= 1;
	append(&in, gz.data, gz.len);
	append(&in, pad, padlen);
	CHECK_EQ(enc_blob(BFS_TROVE_KDF_BTK_SHA256, &in, out, 1), 0);
	free(in.data);
}

static void test_bad_padding(void)
{
	struct blob b, out;
	char err[256];
	int kind;

	/* The control: proper padding made the same way decodes. */
	padded(0, &b);
	CHECK_EQ(dec_all(&b, KEY, BFS_TROVE_KDF_AUTO, &out, NULL, NULL, err),
		 BFS_TROVE_END);
	CHECK(same(&out, &src));
	free(out.data);
	free(b.data);
	for (kind = 1; kind <= 3; kind++) {
		padded(kind, &b);
		check_bad(&b, KEY, "padding");
		free(b.data);
	}
}

static void test_trailing_garbage(void)
{
	struct blob b = {0}, e;

	append(&b, gz.data, gz.len);
	append(&b, "garbage!", 8);
	check_bad(&b, NULL, "trailing garbage");
	b.len = gz.len;
	append(&b, "\0\0\0\0", 4);
	check_bad(&b, NULL, "trailing garbage");
	/* A second header cut short. */
	b.len = gz.len;
	append(&b, gz.data, 5);
	check_bad(&b, NULL, "truncated");
	b.len = gz.len;
	append(&b, "junk", 4);
	CHECK_EQ(enc_blob(BFS_TROVE_KDF_PBKDF2_SHA512, &b, &e, 0), 0);
	check_bad(&e, KEY, "trailing garbage");
	free(e.data);
	free(b.data);
}

/* Random preads after a full pass: each decodes at most one interval. */
static void test_random_reads(void)
{
	struct bfs_trove_stats st0, st1;
	struct bfs_trove_reader *r;
	uint64_t size, worst = 0;
	struct mem_obj o;
	struct blob out;
	char err[256];
	size_t off, len;
	uint8_t *buf = malloc(1u << 17);
	int i;

	CHECK_EQ(open_reader(&o, &enc[1], KEY, NULL, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 128u << 10, err), (ssize_t)src.len);
	CHECK_EQ(bfs_trove_reader_size(r, &size), 1);
	CHECK_EQ(size, src.len);
	bfs_trove_reader_stats(r, &st0);
	/* A checkpoint waits for the end of a deflate block. */
	CHECK(st0.points >= SRC_LEN / (INTERVAL + SLACK));
	fprintf(stderr, "     %llu checkpoints\n",
		(unsigned long long)st0.points);
	for (i = 0; i < 400; i++) {
		off = rnd() % (src.len + 1000);
		len = rnd() % (1u << 17) + 1;
		bfs_trove_reader_stats(r, &st0);
		ssize_t n = bfs_trove_read(r, off, len, buf, err, 256);
		bfs_trove_reader_stats(r, &st1);
		if (off >= src.len) {
			CHECK_EQ(n, 0);
			continue;
		}
		if (len > src.len - off)
			len = src.len - off;
		CHECK_EQ(n, (ssize_t)len);
		CHECK(!memcmp(buf, src.data + off, len));
		CHECK(st1.inflated - st0.inflated <= INTERVAL + len + SLACK);
		if (st1.inflated - st0.inflated - len > worst)
			worst = st1.inflated - st0.inflated - len;
	}
	fprintf(stderr, "     worst extra decode %llu bytes (interval %u)\n",
		(unsigned long long)worst, INTERVAL);
	CHECK_EQ(o.small, 0);
	free(out.data);
	free(buf);
	bfs_trove_reader_free(r);
}

/* Before any index: a forward seek decodes forward, not from 0. */
static void test_forward_seek(void)
{
	struct bfs_trove_stats st;
	struct bfs_trove_reader *r;
	uint8_t buf[4096];
	struct mem_obj o;
	char err[256];

	CHECK_EQ(open_reader(&o, &enc[3], KEY, NULL, &r, err), 0);
	CHECK_EQ(bfs_trove_read(r, 0, 4096, buf, err, 256), 4096);
	CHECK(!memcmp(buf, src.data, 4096));
	CHECK_EQ(bfs_trove_read(r, 3u << 20, 4096, buf, err, 256), 4096);
	CHECK(!memcmp(buf, src.data + (3u << 20), 4096));
	bfs_trove_reader_stats(r, &st);
	CHECK(st.inflated <= (3u << 20) + 4096);
	CHECK_EQ(bfs_trove_read(r, 5u << 20, 4096, buf, err, 256), 4096);
	CHECK(!memcmp(buf, src.data + (5u << 20), 4096));
	bfs_trove_reader_stats(r, &st);
	CHECK(st.inflated <= (5u << 20) + 4096);
	CHECK_EQ(st.restarts, 1);
	/* Backwards: from the checkpoints the forward pass recorded. */
	CHECK_EQ(bfs_trove_read(r, 1u << 20, 4096, buf, err, 256), 4096);
	CHECK(!memcmp(buf, src.data + (1u << 20), 4096));
	bfs_trove_reader_stats(r, &st);
	CHECK(st.inflated <= (5u << 20) + 4096 + INTERVAL + SLACK + 4096);
	CHECK_EQ(st.restarts, 2);
	/* Size unknown until the end was verified. */
	uint64_t size;
	CHECK_EQ(bfs_trove_reader_size(r, &size), 0);
	bfs_trove_reader_free(r);
}

static void test_index(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	char *idx = path_of("backup.idx"), err[256];
	uint8_t md5[16], want[16], buf[200];
	struct blob out, file;
	struct mem_obj o;
	uint64_t size;
	int i;

	unlink(idx);
	p.index_path = idx;
	CHECK_EQ(open_reader(&o, &enc[2], KEY, &p, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 128u << 10, err), (ssize_t)src.len);
	free(out.data);
	bfs_trove_reader_free(r);
	CHECK(access(idx, F_OK) == 0);
	CHECK_EQ(bfs_trove_index_size(idx,
				      "3f2504e0-4f89-11d3-9a0c-"
				      "0305e82c3301.gz",
				      enc[2].len, "etag-1", &size),
		 0);
	CHECK_EQ(size, src.len);

	/* Loaded: size, MD5 and checkpoints known without a pass. */
	CHECK_EQ(open_reader(&o, &enc[2], KEY, &p, &r, err), 0);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.index_loaded, 1);
	CHECK(st.points > 0);
	CHECK_EQ(bfs_trove_reader_size(r, &size), 1);
	CHECK_EQ(size, src.len);
	CHECK_EQ(bfs_trove_reader_md5(r, md5), 0);
	md5_of(&enc[2], want);
	CHECK(!memcmp(md5, want, 16));
	CHECK_EQ(bfs_trove_read(r, src.len - 100, 200, buf, err, 256), 100);
	CHECK(!memcmp(buf, src.data + src.len - 100, 100));
	bfs_trove_reader_stats(r, &st);
	CHECK(st.inflated <= INTERVAL + SLACK);
	for (i = 0; i < 50; i++) {
		size_t off = rnd() % (src.len - 200);

		CHECK_EQ(bfs_trove_read(r, off, 200, buf, err, 256), 200);
		CHECK(!memcmp(buf, src.data + off, 200));
	}
	bfs_trove_reader_free(r);

	/* Another ETag or size: stale, ignored. */
	p.etag = "etag-2";
	CHECK_EQ(open_reader(&o, &enc[2], KEY, &p, &r, err), 0);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.index_loaded, 0);
	CHECK_EQ(bfs_trove_reader_size(r, &size), 0);
	bfs_trove_reader_free(r);
	CHECK_EQ(bfs_trove_index_size(idx,
				      "3f2504e0-4f89-11d3-9a0c-"
				      "0305e82c3301.gz",
				      enc[2].len + 1, "etag-1", &size),
		 -ENOENT);
	p.etag = NULL;

	/* The same object encrypted again (another salt): dropped. */
	CHECK_EQ(open_reader(&o, &enc[2], KEY, &p, &r, err), 0);
	bfs_trove_reader_free(r);

	/* Corrupt: ignored, reads still right, then rebuilt. */
	CHECK_EQ(read_file(idx, &file), 0);
	file.data[file.len / 2] ^= 0x20;
	CHECK_EQ(write_file(idx, file.data, file.len), 0);
	CHECK_EQ(open_reader(&o, &enc[2], KEY, &p, &r, err), 0);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.index_loaded, 0);
	CHECK_EQ(bfs_trove_reader_size(r, &size), 0);
	CHECK_EQ(read_all(r, &out, 128u << 10, err), (ssize_t)src.len);
	CHECK(same(&out, &src));
	free(out.data);
	bfs_trove_reader_free(r);
	CHECK_EQ(open_reader(&o, &enc[2], KEY, &p, &r, err), 0);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.index_loaded, 1);
	bfs_trove_reader_free(r);

	/* Truncated: ignored too. */
	CHECK_EQ(write_file(idx, file.data, file.len - 1), 0);
	CHECK_EQ(open_reader(&o, &enc[2], KEY, &p, &r, err), 0);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.index_loaded, 0);
	bfs_trove_reader_free(r);
	free(file.data);
}

/* An index of one encryption run does not serve another. */
static void test_index_other_salt(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	char *idx = path_of("salt.idx"), err[256];
	struct blob out, again;
	struct mem_obj o;

	unlink(idx);
	p.index_path = idx;
	p.name = "x.gz.enc";
	p.etag = "same";
	CHECK_EQ(open_reader(&o, &enc[1], KEY, &p, &r, err), 0);
	CHECK_EQ(bfs_trove_reader_verify(r, err, 256), 0);
	bfs_trove_reader_free(r);
	CHECK_EQ(enc_blob(BFS_TROVE_KDF_PBKDF2_SHA512, &gz, &again, 0), 0);
	CHECK_EQ(again.len, enc[1].len);
	CHECK_EQ(open_reader(&o, &again, KEY, &p, &r, err), 0);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.index_loaded, 0);
	CHECK_EQ(read_all(r, &out, 1u << 20, err), (ssize_t)src.len);
	CHECK(same(&out, &src));
	free(out.data);
	free(again.data);
	bfs_trove_reader_free(r);
}

/* Bit rot under an unchanged ETag: the index still serves nothing
 * wrong to a read that reaches the damage, and is removed. */
static void test_index_rot(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	char *idx = path_of("rot.idx"), err[256];
	struct blob out, rot;
	struct mem_obj o;

	unlink(idx);
	p.index_path = idx;
	CHECK_EQ(open_reader(&o, &gz, NULL, &p, &r, err), 0);
	CHECK_EQ(bfs_trove_reader_verify(r, err, 256), 0);
	bfs_trove_reader_free(r);
	flip(&gz, gz.len / 2, &rot);
	CHECK_EQ(open_reader(&o, &rot, NULL, &p, &r, err), 0);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.index_loaded, 1);
	CHECK_EQ(read_all(r, &out, 128u << 10, err), -EIO);
	CHECK(access(idx, F_OK) < 0);
	free(out.data);
	free(rot.data);
	bfs_trove_reader_free(r);
}

static void test_verify(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	uint8_t md5[16], want[16];
	char err[256], hex[33];
	struct mem_obj o;
	uint64_t size;

	md5_hex(&enc[3], hex);
	p.expect_md5 = hex;
	CHECK_EQ(open_reader(&o, &enc[3], KEY, &p, &r, err), 0);
	CHECK_EQ(bfs_trove_reader_verify(r, err, 256), 0);
	CHECK_EQ(bfs_trove_reader_size(r, &size), 1);
	CHECK_EQ(size, src.len);
	CHECK_EQ(bfs_trove_reader_md5(r, md5), 0);
	md5_of(&enc[3], want);
	CHECK(!memcmp(md5, want, 16));
	bfs_trove_reader_free(r);
	p.expect_md5 = "0123456789abcdef0123456789abcdef";
	CHECK_EQ(open_reader(&o, &enc[3], KEY, &p, &r, err), 0);
	CHECK_EQ(bfs_trove_reader_verify(r, err, 256), -EIO);
	bfs_trove_reader_free(r);
}

/* Member starts as checkpoints, restarting CBC there. */
static void test_member_points(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	uint8_t buf[70000];
	struct mem_obj o;
	struct blob out;
	char err[256];
	size_t off, len;
	int i;

	p.interval = 64u << 10;
	CHECK_EQ(open_reader(&o, &many, KEY, &p, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 100000, err), (ssize_t)many_src.len);
	CHECK(out.len == many_src.len &&
	      !memcmp(out.data, many_src.data, out.len));
	bfs_trove_reader_stats(r, &st);
	CHECK(st.points >= 30);
	for (i = 0; i < 300; i++) {
		off = rnd() % many_src.len;
		len = rnd() % sizeof(buf) + 1;
		if (len > many_src.len - off)
			len = many_src.len - off;
		CHECK_EQ(bfs_trove_read(r, off, len, buf, err, 256),
			 (ssize_t)len);
		CHECK(!memcmp(buf, many_src.data + off, len));
	}
	free(out.data);
	bfs_trove_reader_free(r);
}

/* Past max_points the interval doubles: memory stays bounded. */
static void test_thinning(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	uint8_t buf[5000];
	struct mem_obj o;
	struct blob out;
	char err[256];
	size_t off;
	int i;

	p.interval = 64u << 10;
	p.max_points = 16;
	CHECK_EQ(open_reader(&o, &gz, NULL, &p, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 1u << 20, err), (ssize_t)src.len);
	bfs_trove_reader_stats(r, &st);
	CHECK(st.points <= 16 && st.points >= 6);
	for (i = 0; i < 100; i++) {
		off = rnd() % (src.len - sizeof(buf));
		CHECK_EQ(bfs_trove_read(r, off, sizeof(buf), buf, err, 256),
			 (ssize_t)sizeof(buf));
		CHECK(!memcmp(buf, src.data + off, sizeof(buf)));
	}
	free(out.data);
	bfs_trove_reader_free(r);
}

static void test_isize_hint(void)
{
	struct bfs_trove_reader *r;
	struct mem_obj o;
	char err[256];
	uint32_t isize;
	int kdf;

	CHECK_EQ(open_reader(&o, &gz, NULL, NULL, &r, err), 0);
	CHECK_EQ(bfs_trove_reader_isize_hint(r, &isize, err, 256), 0);
	CHECK_EQ(isize, src.len);
	bfs_trove_reader_free(r);
	for (kdf = 1; kdf <= 3; kdf++) {
		CHECK_EQ(open_reader(&o, &enc[kdf], KEY, NULL, &r, err), 0);
		CHECK_EQ(bfs_trove_reader_isize_hint(r, &isize, err, 256), 0);
		CHECK_EQ(isize, src.len);
		bfs_trove_reader_free(r);
	}
}

struct worker {
	struct bfs_trove_reader *r;
	int id;
	int bad;
};

/* Two sequential streams and two random readers at once. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t x = 0x1234567ull * (uint64_t)(w->id + 1);
	size_t off = w->id * (src.len / 4), len, i;
	uint8_t *buf = malloc(1u << 17);
	char err[256];
	ssize_t n;

	for (i = 0; i < 60; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (w->id >= 2)
			off = x % src.len;
		len = (x >> 20) % (1u << 17) + 1;
		n = bfs_trove_read(w->r, off, len, buf, err, 256);
		if (len > src.len - off)
			len = src.len - off;
		if (n != (ssize_t)len || memcmp(buf, src.data + off, len))
			w->bad++;
		off = (off + len) % src.len;
	}
	free(buf);
	return NULL;
}

static void test_threads(void)
{
	struct bfs_trove_params p = {0};
	struct worker w[4];
	pthread_t t[4];
	struct mem_obj o;
	char err[256];
	unsigned cursors;
	int i;

	for (cursors = 1; cursors <= 4; cursors += 3) {
		p.cursors = cursors;
		CHECK_EQ(open_reader(&o, &enc[1], KEY, &p, &w[0].r, err), 0);
		for (i = 0; i < 4; i++) {
			w[i].r = w[0].r;
			w[i].id = i;
			w[i].bad = 0;
			pthread_create(&t[i], NULL, worker_run, &w[i]);
		}
		for (i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			CHECK_EQ(w[i].bad, 0);
		}
		bfs_trove_reader_free(w[0].r);
	}
}

/* Reads of a stream delivered slightly out of order, as the kernel's
 * readahead and libfuse's threads do: n + 128K before n.  The cursor's
 * history serves the read behind it; nothing restarts or is fetched
 * twice. */
static void test_out_of_order(void)
{
	const size_t piece = 128u << 10;
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	struct mem_obj o;
	struct blob out;
	char err[256];
	size_t k, off, len;
	ssize_t n;

	CHECK_EQ(open_reader(&o, &enc[1], KEY, NULL, &r, err), 0);
	out.data = calloc(1, src.len);
	for (k = 0; k * piece < src.len; k++) {
		off = (k ^ 1) * piece;
		if (off >= src.len)
			off = k * piece;
		len = piece < src.len - off ? piece : src.len - off;
		n = bfs_trove_read(r, off, len, out.data + off, err, 256);
		CHECK_EQ(n, (ssize_t)len);
	}
	CHECK(!memcmp(out.data, src.data, src.len));
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.restarts, 1);
	CHECK_EQ(st.fetched, enc[1].len);
	free(out.data);
	bfs_trove_reader_free(r);
}

struct ooo {
	struct bfs_trove_reader *r;
	pthread_barrier_t *round;
	uint8_t *out;
	int id, bad;
};

/* Four threads: each round they read the next four pieces, delivered
 * as [n + 128K, n, n + 384K, n + 256K] at once. */
static void *ooo_run(void *arg)
{
	static const int order[4] = {1, 0, 3, 2};
	const size_t piece = 128u << 10;
	struct ooo *w = arg;
	size_t base, off, len;
	char err[256];
	ssize_t n;

	for (base = 0; base < src.len; base += 4 * piece) {
		off = base + order[w->id] * piece;
		if (off < src.len) {
			len = piece < src.len - off ? piece : src.len - off;
			n = bfs_trove_read(w->r, off, len, w->out + off, err,
					   256);
			if (n != (ssize_t)len)
				w->bad++;
		}
		pthread_barrier_wait(w->round);
	}
	return NULL;
}

static void test_out_of_order_threads(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_stats st;
	pthread_barrier_t round;
	struct ooo w[4];
	pthread_t t[4];
	struct mem_obj o;
	uint8_t *out = calloc(1, src.len);
	char err[256];
	int i;

	/* Small fetches: a stream soon prefetches. */
	p.fetch_size = 256u << 10;
	CHECK_EQ(open_reader(&o, &gz, NULL, &p, &w[0].r, err), 0);
	pthread_barrier_init(&round, NULL, 4);
	for (i = 0; i < 4; i++) {
		w[i] = (struct ooo){w[0].r, &round, out, i, 0};
		pthread_create(&t[i], NULL, ooo_run, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].bad, 0);
	}
	CHECK(!memcmp(out, src.data, src.len));
	bfs_trove_reader_stats(w[0].r, &st);
	CHECK_EQ(st.restarts, 1);
	CHECK_EQ(st.fetched, gz.len);
	bfs_trove_reader_free(w[0].r);
	pthread_barrier_destroy(&round);
	free(out);
}

/* A full sequential pass fetches the object once; with small fetches,
 * most of it by prefetching. */
static void test_seq_fetched(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	struct mem_obj o;
	struct blob out;
	char err[256];

	CHECK_EQ(open_reader(&o, &enc[2], KEY, NULL, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 128u << 10, err), (ssize_t)src.len);
	CHECK(same(&out, &src));
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.restarts, 1);
	CHECK_EQ(st.fetched, enc[2].len);
	CHECK_EQ(o.small, 0);
	free(out.data);
	bfs_trove_reader_free(r);

	p.fetch_size = 64u << 10;
	CHECK_EQ(open_reader(&o, &gz, NULL, &p, &r, err), 0);
	CHECK_EQ(read_all(r, &out, 128u << 10, err), (ssize_t)src.len);
	CHECK(same(&out, &src));
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.restarts, 1);
	CHECK_EQ(st.fetched, gz.len);
	CHECK_EQ(st.fetches, (gz.len + (64u << 10) - 1) / (64u << 10));
	CHECK(o.other >= (int)st.fetches - 4);
	free(out.data);
	bfs_trove_reader_free(r);
}

/* Read on in 4 KiB pieces from *off until a prefetch is held at the
 * gate: 1, or 0 at the end of the stream. */
static int read_until_blocked(struct bfs_trove_reader *r, struct mem_obj *o,
			      size_t *off)
{
	uint8_t buf[4096];
	char err[256];
	ssize_t n;

	while (!o->blocked) {
		n = bfs_trove_read(r, *off, sizeof(buf), buf, err, 256);
		if (n <= 0 || memcmp(buf, src.data + *off, (size_t)n))
			return 0;
		*off += (size_t)n;
	}
	return 1;
}

/* A backward seek restarts the cursor while its prefetch is still being
 * fetched: the read does not wait for it, and the stale range is never
 * decoded. */
static void test_prefetch_backward_seek(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	uint8_t buf[65536];
	struct mem_obj o;
	struct blob out;
	char err[256];
	size_t off;

	p.cursors = 1;
	p.fetch_size = 64u << 10;
	CHECK_EQ(open_reader(&o, &gz, NULL, &p, &r, err), 0);
	/* Past the 4 MiB of history, then hold the next prefetch. */
	for (off = 0; off < (4u << 20) + (256u << 10); off += sizeof(buf))
		CHECK_EQ(bfs_trove_read(r, off, sizeof(buf), buf, err, 256),
			 (ssize_t)sizeof(buf));
	gate_set(&o, 1);
	CHECK_EQ(read_until_blocked(r, &o, &off), 1);
	CHECK(off < src.len);
	/* Back to 0 while the prefetch hangs. */
	CHECK_EQ(bfs_trove_read(r, 0, sizeof(buf), buf, err, 256),
		 (ssize_t)sizeof(buf));
	CHECK(!memcmp(buf, src.data, sizeof(buf)));
	CHECK_EQ(o.blocked, 1);
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.restarts, 2);
	gate_set(&o, 0);
	/* And on, through the stale range, to the verified end. */
	CHECK_EQ(read_all(r, &out, 100000, err), (ssize_t)src.len);
	CHECK(same(&out, &src));
	bfs_trove_reader_stats(r, &st);
	CHECK_EQ(st.restarts, 2);
	free(out.data);
	bfs_trove_reader_free(r);
}

static void *open_gate_later(void *arg)
{
	usleep(100000);
	gate_set(arg, 0);
	return NULL;
}

/* Freeing an idle reader whose prefetch is in flight waits for it;
 * one whose prefetch finished unused just frees it. */
static void test_free_prefetching(void)
{
	struct bfs_trove_params p = {0};
	struct bfs_trove_reader *r;
	struct mem_obj o;
	char err[256];
	pthread_t t;
	size_t off = 0;

	p.fetch_size = 128u << 10;
	CHECK_EQ(open_reader(&o, &enc[1], KEY, &p, &r, err), 0);
	gate_set(&o, 1);
	CHECK_EQ(read_until_blocked(r, &o, &off), 1);
	pthread_create(&t, NULL, open_gate_later, &o);
	bfs_trove_reader_free(r);
	CHECK_EQ(o.blocked, 0);
	pthread_join(t, NULL);

	CHECK_EQ(open_reader(&o, &enc[1], KEY, &p, &r, err), 0);
	off = 0;
	while (o.other < 2 && off < src.len) {
		uint8_t buf[4096];

		CHECK_EQ(bfs_trove_read(r, off, sizeof(buf), buf, err, 256),
			 (ssize_t)sizeof(buf));
		off += sizeof(buf);
	}
	CHECK(o.other >= 2);
	usleep(20000);
	bfs_trove_reader_free(r);
}

/*
 * The benchmark (BFS_TROVE_BENCH_MIB=N).
 */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int bench(size_t mib)
{
	struct bfs_trove_reader *r;
	struct bfs_trove_stats st;
	struct blob obj;
	size_t plen = mib << 20, off, i;
	double t0, t_pipe, t_read, lat[2000];
	uint8_t *buf = malloc(1u << 17);
	struct mem_obj o;
	char cmd[1024], err[256];
	ssize_t n;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/bfs-trove-bench-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	f = fopen(path_of("src"), "wb");
	for (off = 0; off < plen; off += 1u << 20) {
		make_data(buf, 1u << 17);
		for (i = 0; i < 8; i++) {
			buf[0] ^= (uint8_t)i;
			fwrite(buf, 1, 1u << 17, f);
		}
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "gzip < %s/src | openssl enc -aes-256-cbc -salt -pass "
		 "pass:%s -md sha512 -pbkdf2 -iter 10000 > %s/obj",
		 dir, KEY, dir);
	if (system(cmd) || read_file(path_of("obj"), &obj))
		return 1;
	printf("plaintext %zu MiB, object %.1f MiB\n", mib,
	       obj.len / 1048576.0);

	snprintf(cmd, sizeof(cmd),
		 "openssl enc -d -aes-256-cbc -salt -pass pass:%s -md sha512 "
		 "-pbkdf2 -iter 10000 < %s/obj | gzip -dc > /dev/null",
		 KEY, dir);
	t0 = now();
	if (system(cmd))
		return 1;
	t_pipe = now() - t0;

	o.b = &obj;
	const char *kib = getenv("BFS_TROVE_BENCH_INTERVAL_KIB");
	struct bfs_trove_params p = {.name = "b.gz.enc",
				     .size = obj.len,
				     .etag = "e",
				     .pass = KEY,
				     .fetch = mem_fetch,
				     .fetch_arg = &o};

	p.interval = kib ? strtoull(kib, NULL, 10) << 10 : 0;
	t0 = now();
	if (bfs_trove_reader_open(&p, &r, err, sizeof(err)))
		return 1;
	for (off = 0;; off += (size_t)n) {
		n = bfs_trove_read(r, off, 1u << 17, buf, err, 256);
		if (n <= 0)
			break;
	}
	t_read = now() - t0;
	if (n < 0 || off != plen) {
		fprintf(stderr, "bench read failed: %s\n", err);
		return 1;
	}
	printf("sequential: backupfs %.0f MB/s, openssl|gzip -dc %.0f MB/s "
	       "(plaintext MB/s; %.2f s vs %.2f s)\n",
	       plen / 1e6 / t_read, plen / 1e6 / t_pipe, t_read, t_pipe);
	for (i = 0; i < 2000; i++) {
		off = rnd() % (plen - 4096);
		t0 = now();
		n = bfs_trove_read(r, off, 4096, buf, err, 256);
		lat[i] = now() - t0;
		if (n != 4096)
			return 1;
	}
	qsort(lat, 2000, sizeof(lat[0]), cmp_double);
	bfs_trove_reader_stats(r, &st);
	printf("random 4 KiB after the pass (interval %llu KiB, %llu points): "
	       "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms\n",
	       (unsigned long long)(p.interval ? p.interval >> 10 : 4096),
	       (unsigned long long)st.points, lat[1000] * 1e3, lat[1800] * 1e3,
	       lat[1980] * 1e3);
	bfs_trove_reader_free(r);
	free(obj.data);
	free(buf);
	remove_fixtures();
	return 0;
}

int main(void)
{
	const char *b = getenv("BFS_TROVE_BENCH_MIB");
	int ret;

	if (b && strtoul(b, NULL, 10) > 0)
		return bench(strtoul(b, NULL, 10));
	if (make_fixtures()) {
		fprintf(stderr, "cannot make fixtures (gzip, openssl)\n");
		remove_fixtures();
		return 1;
	}
	RUN(test_name_parse);
	RUN(test_kdf_stream);
	RUN(test_kdf_reader);
	RUN(test_wrong_key);
	RUN(test_plain);
	RUN(test_multi_member);
	RUN(test_truncated);
	RUN(test_flipped);
	RUN(test_bad_padding);
	RUN(test_trailing_garbage);
	RUN(test_random_reads);
	RUN(test_forward_seek);
	RUN(test_index);
	RUN(test_index_other_salt);
	RUN(test_index_rot);
	RUN(test_verify);
	RUN(test_member_points);
	RUN(test_thinning);
	RUN(test_isize_hint);
	RUN(test_threads);
	RUN(test_out_of_order);
	RUN(test_out_of_order_threads);
	RUN(test_seq_fetched);
	RUN(test_prefetch_backward_seek);
	RUN(test_free_prefetching);
	ret = check_summary();
	remove_fixtures();
	return ret;
}
