// SPDX-License-Identifier: Apache-2.0
/*
 * Keys and ciphers of the native repository, on OpenSSL 3's EVP layer.
 *
 * OpenSSL failures are logged here, once, with OpenSSL's own text, and
 * mapped to -EIO (or -EBADMSG when a GCM tag does not verify).
 */
#include "crypto.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* EVP update functions take an int length: feed big buffers in pieces. */
#define CRYPTO_STEP (1 << 30)

void bfs_ossl_log(const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[256];

	if (e)
		ERR_error_string_n(e, msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "no reason given");
	bfs_err("%s failed: %s", what, msg);
	ERR_clear_error();
}

/* HKDF-SHA256 with no salt: OKM = HKDF(master, info), 32 bytes. */
static int hkdf_derive(EVP_KDF *kdf, const uint8_t master[BFS_KEY_LEN],
		       const char *info, uint8_t out[BFS_KEY_LEN])
{
	OSSL_PARAM params[4];
	EVP_KDF_CTX *ctx;
	int ret = 0;

	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx) {
		bfs_ossl_log("EVP_KDF_CTX_new");
		return -EIO;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_KEY, (void *)master, BFS_KEY_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, BFS_KEY_LEN, params) != 1) {
		bfs_ossl_log("hkdf");
		ret = -EIO;
	}
	EVP_KDF_CTX_free(ctx);
	return ret;
}

int bfs_keys_derive(const uint8_t master[BFS_KEY_LEN], struct bfs_keys *out)
{
	/* The info strings are part of the format: never change them. */
	const struct {
		const char *info;
		uint8_t *key;
	} purposes[] = {
		{"backupfs id v1", out->id},
		{"backupfs chunk v1", out->chunk},
		{"backupfs manifest v1", out->manifest},
		{"backupfs check v1", out->check},
		{"backupfs gear v1", out->gear},
		{"backupfs meta v1", out->meta},
	};
	EVP_KDF *kdf;
	size_t i;
	int ret = 0;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf) {
		bfs_ossl_log("EVP_KDF_fetch HKDF");
		return -EIO;
	}
	for (i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
		ret = hkdf_derive(kdf, master, purposes[i].info,
				  purposes[i].key);
		if (ret)
			break;
	}
	EVP_KDF_free(kdf);
	if (ret)
		OPENSSL_cleanse(out, sizeof(*out));
	return ret;
}

int bfs_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t n;

	while (len) {
		n = len < CRYPTO_STEP ? len : CRYPTO_STEP;
		if (RAND_bytes(p, (int)n) != 1) {
			bfs_ossl_log("RAND_bytes");
			return -EIO;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Reading and writing key files.
 */

/* 64 hex digits, then nothing or exactly one newline. */
static int key_parse(const char *text, size_t len, uint8_t master[BFS_KEY_LEN])
{
	if (len != 2 * BFS_KEY_LEN &&
	    !(len == 2 * BFS_KEY_LEN + 1 && text[2 * BFS_KEY_LEN] == '\n'))
		return -EINVAL;
	return bfs_unhex(text, master, BFS_KEY_LEN);
}

int bfs_key_file_check_mode(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		bfs_errf(err, errlen, "cannot stat key file '%s': %s", path,
			strerror(-ret));
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		bfs_errf(err, errlen, "key file '%s' is not a regular file",
			path);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		bfs_errf(err, errlen,
			"key file '%s' has mode %04o: group and others must "
			"have no access (chmod 600)",
			path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int bfs_key_file_read(const char *path, uint8_t master[BFS_KEY_LEN], char *err,
		      size_t errlen)
{
	/* One byte more than the longest valid content detects extra data. */
	char text[2 * BFS_KEY_LEN + 2];
	ssize_t len;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		bfs_errf(err, errlen, "cannot open key file '%s': %s", path,
			strerror(-ret));
		return ret;
	}
	ret = bfs_key_file_check_mode(fd, path, err, errlen);
	if (ret)
		goto out_close;
	len = bfs_read_all(fd, text, sizeof(text));
	if (len < 0) {
		ret = (int)len;
		bfs_errf(err, errlen, "cannot read key file '%s': %s", path,
			strerror(-ret));
		goto out_close;
	}
	ret = key_parse(text, (size_t)len, master);
	if (ret) {
		OPENSSL_cleanse(master, BFS_KEY_LEN);
		bfs_errf(err, errlen,
			"key file '%s' does not hold 64 hex digits", path);
	}
out_close:
	OPENSSL_cleanse(text, sizeof(text));
	close(fd);
	return ret;
}

/* Make the new directory entry durable: fsync the parent directory. */
static int fsync_parent(const char *path)
{
	char *copy;
	int fd, ret = 0;

	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
out_free:
	free(copy);
	return ret;
}

int bfs_key_file_create(const char *path, uint8_t master[BFS_KEY_LEN],
			char *err, size_t errlen)
{
	char text[2 * BFS_KEY_LEN + 2];
	int fd, ret;

	ret = bfs_random(master, BFS_KEY_LEN);
	if (ret) {
		bfs_errf(err, errlen, "cannot generate a random key");
		return ret;
	}
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY,
		  0600);
	if (fd < 0) {
		ret = -errno;
		bfs_errf(err, errlen, "cannot create key file '%s': %s", path,
			strerror(-ret));
		goto out_wipe;
	}
	bfs_hex(master, BFS_KEY_LEN, text);
	text[2 * BFS_KEY_LEN] = '\n';
	ret = bfs_write_all(fd, text, 2 * BFS_KEY_LEN + 1);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret)
		ret = fsync_parent(path);
	if (ret) {
		bfs_errf(err, errlen, "cannot write key file '%s': %s", path,
			strerror(-ret));
		/* Never leave a key file behind that we did not finish. */
		unlink(path);
	}
out_wipe:
	OPENSSL_cleanse(text, sizeof(text));
	if (ret)
		OPENSSL_cleanse(master, BFS_KEY_LEN);
	return ret;
}

/*
 * MACs and hashes.
 */

void bfs_hmac_sha256(const uint8_t key[BFS_KEY_LEN], const void *data,
		     size_t len, uint8_t out[32])
{
	unsigned int outlen = 32;
	static const uint8_t empty;

	/*
	 * HMAC() only fails when OpenSSL cannot allocate.  An id computed
	 * wrongly would silently mix up data, so stop instead.
	 */
	if (!HMAC(EVP_sha256(), key, BFS_KEY_LEN, len ? data : &empty, len, out,
		  &outlen) ||
	    outlen != 32) {
		bfs_ossl_log("HMAC-SHA256");
		abort();
	}
}

void bfs_chunk_id(const struct bfs_keys *keys, const void *data, size_t len,
		  uint8_t id[BFS_ID_LEN])
{
	bfs_hmac_sha256(keys->id, data, len, id);
}

struct bfs_sha256 {
	EVP_MD_CTX *ctx;
	int failed; /* a failed update poisons the result */
};

struct bfs_sha256 *bfs_sha256_new(void)
{
	struct bfs_sha256 *s;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx)
		goto out_free;
	if (EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
		bfs_ossl_log("SHA-256 init");
		goto out_ctx;
	}
	return s;
out_ctx:
	EVP_MD_CTX_free(s->ctx);
out_free:
	free(s);
	return NULL;
}

void bfs_sha256_update(struct bfs_sha256 *s, const void *data, size_t len)
{
	if (!len || s->failed)
		return;
	if (EVP_DigestUpdate(s->ctx, data, len) != 1) {
		bfs_ossl_log("SHA-256 update");
		s->failed = 1;
	}
}

void bfs_sha256_final(struct bfs_sha256 *s, uint8_t out[32])
{
	unsigned int outlen = 32;

	if (s->failed || EVP_DigestFinal_ex(s->ctx, out, &outlen) != 1) {
		if (!s->failed)
			bfs_ossl_log("SHA-256 final");
		/* Never a plausible digest: all-ones will not match anything
		 * a caller compares it with. */
		memset(out, 0xff, 32);
	}
	bfs_sha256_free(s);
}

void bfs_sha256_free(struct bfs_sha256 *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->ctx);
	free(s);
}

/*
 * AES-256-GCM.
 */

/* Run EVP_{En,De}cryptUpdate over len bytes, in int-sized pieces. */
static int gcm_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len,
		      uint8_t *out)
{
	size_t n;
	int outl;

	while (len) {
		n = len < CRYPTO_STEP ? len : CRYPTO_STEP;
		if (EVP_CipherUpdate(ctx, out, &outl, in, (int)n) != 1 ||
		    (size_t)outl != n)
			return -EIO;
		in += n;
		out += n;
		len -= n;
	}
	return 0;
}

/* Feed the associated data (an update with a NULL output buffer). */
static int gcm_aad(EVP_CIPHER_CTX *ctx, const uint8_t *aad, size_t aadlen)
{
	size_t n;
	int outl;

	while (aadlen) {
		n = aadlen < CRYPTO_STEP ? aadlen : CRYPTO_STEP;
		if (EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)n) != 1)
			return -EIO;
		aad += n;
		aadlen -= n;
	}
	return 0;
}

static EVP_CIPHER_CTX *gcm_start(const uint8_t key[BFS_KEY_LEN],
				 const uint8_t nonce[BFS_NONCE_LEN], int enc)
{
	EVP_CIPHER_CTX *ctx;

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return NULL;
	/* 12 bytes is GCM's default IV length, so no EVP_CTRL_GCM_SET_IVLEN */
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) !=
	    1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int bfs_gcm_seal(const uint8_t key[BFS_KEY_LEN], const void *aad, size_t aadlen,
		 const void *in, size_t len, void *out,
		 uint8_t nonce[BFS_NONCE_LEN], uint8_t tag[BFS_TAG_LEN])
{
	EVP_CIPHER_CTX *ctx;
	int outl, ret;

	/* A random 96-bit nonce per message: keys never see 2^32 messages
	 * in practice, so collisions stay negligible. */
	ret = bfs_random(nonce, BFS_NONCE_LEN);
	if (ret)
		return ret;
	ctx = gcm_start(key, nonce, 1);
	if (!ctx)
		goto out_ossl;
	if (gcm_aad(ctx, aad, aadlen) || gcm_update(ctx, in, len, out) ||
	    EVP_EncryptFinal_ex(ctx, NULL, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, BFS_TAG_LEN, tag) !=
		    1)
		goto out_ctx;
	EVP_CIPHER_CTX_free(ctx);
	return 0;
out_ctx:
	EVP_CIPHER_CTX_free(ctx);
out_ossl:
	bfs_ossl_log("AES-256-GCM seal");
	return -EIO;
}

int bfs_gcm_open(const uint8_t key[BFS_KEY_LEN],
		 const uint8_t nonce[BFS_NONCE_LEN], const void *aad,
		 size_t aadlen, const void *in, size_t len, void *out,
		 const uint8_t tag[BFS_TAG_LEN])
{
	EVP_CIPHER_CTX *ctx;
	uint8_t dummy;
	int outl, ret = -EIO;

	ctx = gcm_start(key, nonce, 0);
	if (!ctx) {
		bfs_ossl_log("AES-256-GCM open");
		goto out_zero;
	}
	if (gcm_aad(ctx, aad, aadlen) || gcm_update(ctx, in, len, out) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, BFS_TAG_LEN,
				(void *)tag) != 1) {
		bfs_ossl_log("AES-256-GCM open");
		goto out_ctx;
	}
	/* Final is where the tag is checked: a mismatch is not an error of
	 * OpenSSL's but bad input, and expected under attack or bit rot. */
	if (EVP_DecryptFinal_ex(ctx, &dummy, &outl) != 1) {
		ERR_clear_error();
		ret = -EBADMSG;
		goto out_ctx;
	}
	ret = 0;
out_ctx:
	EVP_CIPHER_CTX_free(ctx);
out_zero:
	/* Never hand out plaintext that did not authenticate. */
	if (ret && len)
		OPENSSL_cleanse(out, len);
	return ret;
}

/*
 * Hex and comparison.
 */

void bfs_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reads exactly 2n characters, stopping at the first that is not a hex
 * digit (a NUL included), so it never reads past a short string.  What
 * follows the 2n digits is the caller's business.
 */
int bfs_unhex(const char *in, uint8_t *out, size_t n)
{
	int hi, lo;
	size_t i;

	for (i = 0; i < n; i++) {
		hi = hex_digit(in[2 * i]);
		if (hi < 0)
			return -EINVAL;
		lo = hex_digit(in[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int bfs_memcmp_ct(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) ? 1 : 0;
}
