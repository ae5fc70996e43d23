// SPDX-License-Identifier: Apache-2.0
/*
 * Legacy Trove objects: key derivation, object names and the streaming
 * decoder.
 *
 * The decoder is two stages.  The object stage turns object bytes into
 * the gzip stream (AES-256-CBC with padding handled here, so that a bad
 * pad has its own message and a decoder can start at any cipher block).
 * The gzip stage runs raw inflate and parses member headers and
 * trailers itself: zlib's own gzip wrapper could not be restarted at a
 * checkpoint mid-member, and we want every member's CRC32 and ISIZE
 * checked even by a decoder that started at one.
 */
#include "trove.h"

#include "crypto.h"
#include "log.h"
#include "trove_int.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Decrypted gzip bytes held between the stages. */
#define GZBUF	    (256 * 1024)
#define PBKDF2_ITER 10000
/* Longer pass phrases are refused: OpenSSL takes an int length. */
#define PASS_MAX  4096
#define AES_BLOCK 16

static const uint8_t salted_magic[8] = {'S', 'a', 'l', 't', 'e', 'd', '_', '_'};

/*
 * Key derivation.
 */

static const char *const kdf_names[] = {
	[BFS_TROVE_KDF_NONE] = "none",
	[BFS_TROVE_KDF_PBKDF2_SHA512] = "pbkdf2-sha512",
	[BFS_TROVE_KDF_BTK_SHA256] = "bytestokey-sha256",
	[BFS_TROVE_KDF_BTK_MD5] = "bytestokey-md5",
};
#define NKDF ((int)(sizeof(kdf_names) / sizeof(kdf_names[0])))

/* The order of the trial (docs/FORMAT.md): newest images first. */
static const int kdf_order[] = {BFS_TROVE_KDF_PBKDF2_SHA512,
				BFS_TROVE_KDF_BTK_SHA256,
				BFS_TROVE_KDF_BTK_MD5};

const char *bfs_trove_kdf_name(int kdf)
{
	if (kdf < 0 || kdf >= NKDF)
		return NULL;
	return kdf_names[kdf];
}

int bfs_trove_kdf_from_name(const char *name)
{
	int i;

	if (!strcmp(name, "auto"))
		return BFS_TROVE_KDF_AUTO;
	for (i = 0; i < NKDF; i++)
		if (!strcmp(name, kdf_names[i]))
			return i;
	return -EINVAL;
}

int bfs_trove_kdf_derive(int kdf, const char *pass,
			 const uint8_t salt[BFS_TROVE_SALT_LEN],
			 uint8_t key[BFS_TROVE_KEY_LEN],
			 uint8_t iv[BFS_TROVE_IV_LEN])
{
	uint8_t both[BFS_TROVE_KEY_LEN + BFS_TROVE_IV_LEN];
	size_t len = strlen(pass);
	const EVP_MD *md;

	if (len > PASS_MAX)
		return -EINVAL;
	switch (kdf) {
	case BFS_TROVE_KDF_PBKDF2_SHA512:
		if (PKCS5_PBKDF2_HMAC(pass, (int)len, salt, BFS_TROVE_SALT_LEN,
				      PBKDF2_ITER, EVP_sha512(), sizeof(both),
				      both) != 1) {
			bfs_ossl_log("pbkdf2");
			return -EIO;
		}
		memcpy(key, both, BFS_TROVE_KEY_LEN);
		memcpy(iv, both + BFS_TROVE_KEY_LEN, BFS_TROVE_IV_LEN);
		OPENSSL_cleanse(both, sizeof(both));
		return 0;
	case BFS_TROVE_KDF_BTK_SHA256:
		md = EVP_sha256();
		break;
	case BFS_TROVE_KDF_BTK_MD5:
		md = EVP_md5();
		break;
	default:
		return -EINVAL;
	}
	/* What `openssl enc` did before -pbkdf2: one iteration, no count. */
	if (EVP_BytesToKey(EVP_aes_256_cbc(), md, salt,
			   (const unsigned char *)pass, (int)len, 1, key,
			   iv) != BFS_TROVE_KEY_LEN) {
		bfs_ossl_log("EVP_BytesToKey");
		return -EIO;
	}
	return 0;
}

/* Decrypt one block with key and iv. */
static int cbc_block(const uint8_t key[BFS_TROVE_KEY_LEN],
		     const uint8_t iv[BFS_TROVE_IV_LEN], const uint8_t *in,
		     uint8_t out[AES_BLOCK])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ret = 0;

	if (!c)
		return -ENOMEM;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    EVP_DecryptUpdate(c, out, &n, in, AES_BLOCK) != 1 ||
	    n != AES_BLOCK) {
		bfs_ossl_log("aes-256-cbc");
		ret = -EIO;
	}
	EVP_CIPHER_CTX_free(c);
	return ret;
}

/* The gzip magic, deflate, and no reserved flag: a wrong key passes this
 * by chance once in 2^27 tries, and then fails in inflate. */
static int looks_like_gzip(const uint8_t p[AES_BLOCK])
{
	return p[0] == 0x1f && p[1] == 0x8b && p[2] == 8 && !(p[3] & 0xe0);
}

int bfs_trove_kdf_detect(const char *pass, int kdf,
			 const uint8_t head[BFS_TROVE_HEAD_LEN], int *kdf_out,
			 uint8_t key[BFS_TROVE_KEY_LEN],
			 uint8_t iv[BFS_TROVE_IV_LEN], char *err, size_t errlen)
{
	uint8_t block[AES_BLOCK];
	size_t i;
	int ret = 0;

	if (kdf != BFS_TROVE_KDF_AUTO && (kdf <= 0 || kdf >= NKDF))
		return -EINVAL;
	if (memcmp(head, salted_magic, sizeof(salted_magic))) {
		bfs_errf(err, errlen,
			 "not an openssl salted object (no \"Salted__\")");
		return -EIO;
	}
	for (i = 0; i < sizeof(kdf_order) / sizeof(kdf_order[0]); i++) {
		if (kdf != BFS_TROVE_KDF_AUTO && kdf != kdf_order[i])
			continue;
		ret = bfs_trove_kdf_derive(kdf_order[i], pass, head + 8, key,
					   iv);
		if (!ret)
			ret = cbc_block(key, iv, head + 16, block);
		if (ret) {
			bfs_errf(err, errlen, "key derivation failed");
			break;
		}
		if (looks_like_gzip(block)) {
			*kdf_out = kdf_order[i];
			OPENSSL_cleanse(block, sizeof(block));
			return 0;
		}
		ret = -EKEYREJECTED;
	}
	if (ret == -EKEYREJECTED)
		bfs_errf(err, errlen,
			 "wrong key: no key derivation gives a gzip stream");
	OPENSSL_cleanse(block, sizeof(block));
	OPENSSL_cleanse(key, BFS_TROVE_KEY_LEN);
	OPENSSL_cleanse(iv, BFS_TROVE_IV_LEN);
	return ret;
}

/*
 * Object names.
 */

static const struct {
	const char *suffix;
	int encrypted;
	int payload;
} trove_suffixes[] = {
	/* Longest first: ".gz" ends every name. */
	{".xbstream.gz.enc", 1, BFS_TROVE_PAYLOAD_XBSTREAM},
	{".tar.gz.enc", 1, BFS_TROVE_PAYLOAD_TAR},
	{".gz.enc", 1, BFS_TROVE_PAYLOAD_RAW},
	{".xbstream.gz", 0, BFS_TROVE_PAYLOAD_XBSTREAM},
	{".tar.gz", 0, BFS_TROVE_PAYLOAD_TAR},
	{".gz", 0, BFS_TROVE_PAYLOAD_RAW},
};

int bfs_trove_name_parse(const char *name, struct bfs_trove_name *out)
{
	size_t len = strlen(name), slen, i;

	for (i = 0; i < sizeof(trove_suffixes) / sizeof(trove_suffixes[0]);
	     i++) {
		slen = strlen(trove_suffixes[i].suffix);
		if (len <= slen ||
		    strcmp(name + len - slen, trove_suffixes[i].suffix))
			continue;
		if (memchr(name, '/', len - slen))
			return -EINVAL;
		out->id_len = len - slen;
		out->encrypted = trove_suffixes[i].encrypted;
		out->payload = trove_suffixes[i].payload;
		return 0;
	}
	return -EINVAL;
}

/*
 * The decoder.
 */

enum gz_state { GZ_HEADER, GZ_BODY, GZ_TRAILER, GZ_NEXT, GZ_END };

/* Header fields in stream order (RFC 1952 2.3). */
enum hdr_state {
	H_ID1,
	H_ID2,
	H_CM,
	H_FLG,
	H_FIXED, /* MTIME, XFL, OS */
	H_XLEN,
	H_EXTRA,
	H_NAME,
	H_COMMENT,
	H_HCRC,
};

#define FHCRC	 0x02
#define FEXTRA	 0x04
#define FNAME	 0x08
#define FCOMMENT 0x10

/* What the object stage collects before it can decrypt. */
enum head_kind {
	HEAD_SALTED, /* "Salted__", salt, first cipher block */
	HEAD_IV,     /* the cipher block before the first one fed */
	HEAD_NONE,   /* nothing: start at block 0 with the derived IV */
};

/* Results of the gzip stage's steps, besides BFS_TROVE_END and -errno. */
enum { GZ_MORE = 0, GZ_FULL = 2, GZ_AGAIN = 3 };

struct bfs_trove_dec {
	/* object stage */
	int encrypted;
	char *pass; /* until the key is derived */
	int kdf;
	int have_keys;
	struct trove_keys keys;
	EVP_CIPHER_CTX *cipher; /* NULL until key and IV are known */
	uint8_t head[BFS_TROVE_HEAD_LEN];
	size_t head_len, head_need;
	enum head_kind head_kind;
	uint8_t part[AES_BLOCK]; /* cipher bytes short of a block */
	size_t part_len;
	int in_done;	 /* the final input was consumed */
	EVP_MD_CTX *md5; /* NULL when not started at byte 0 */
	uint8_t md5_sum[16];
	int md5_done;

	/* the gzip stream between the stages */
	uint8_t *gz;
	size_t gz_pos, gz_len;
	size_t gz_hold;	  /* trailing bytes that may be padding */
	uint64_t gz_skip; /* bytes before the start point to drop */
	int gz_eof;	  /* nothing follows gz_len */
	uint64_t gz_off;  /* stream offset of gz[gz_pos] */

	/* gzip stage */
	enum gz_state state;
	enum hdr_state hstate;
	uint8_t hflags;
	uint32_t hcount, hxlen, hcrc, hcheck;
	z_stream z;
	int z_ready;
	int prime_bits;
	uint32_t crc;
	uint64_t member_out;
	uint8_t trailer[8];
	size_t trailer_len;
	uint64_t members; /* members ended (for messages) */
	uint64_t out;

	/* checkpoints */
	trove_point_fn hook;
	void *hook_arg;
	uint64_t next;

	int err;
	char msg[256];
};

static int dec_fail(struct bfs_trove_dec *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Make the error stick, with its reason. */
static int dec_fail(struct bfs_trove_dec *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	d->err = err;
	return err;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static struct bfs_trove_dec *dec_alloc(void)
{
	struct bfs_trove_dec *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->gz = malloc(GZBUF);
	if (!d->gz || inflateInit2(&d->z, -MAX_WBITS) != Z_OK) {
		free(d->gz);
		free(d);
		return NULL;
	}
	d->z_ready = 1;
	d->kdf = BFS_TROVE_KDF_NONE;
	d->state = GZ_HEADER;
	d->next = UINT64_MAX;
	return d;
}

static int dec_md5_start(struct bfs_trove_dec *d)
{
	d->md5 = EVP_MD_CTX_new();
	if (!d->md5)
		return -ENOMEM;
	if (EVP_DigestInit_ex(d->md5, EVP_md5(), NULL) != 1) {
		bfs_ossl_log("md5");
		return -EIO;
	}
	return 0;
}

void bfs_trove_dec_free(struct bfs_trove_dec *d)
{
	if (!d)
		return;
	if (d->z_ready)
		inflateEnd(&d->z);
	EVP_CIPHER_CTX_free(d->cipher);
	EVP_MD_CTX_free(d->md5);
	if (d->pass) {
		OPENSSL_cleanse(d->pass, strlen(d->pass));
		free(d->pass);
	}
	OPENSSL_cleanse(&d->keys, sizeof(d->keys));
	free(d->gz);
	free(d);
}

int bfs_trove_dec_new(const char *pass, int kdf, struct bfs_trove_dec **out)
{
	struct bfs_trove_dec *d;
	int ret;

	if (!kdf)
		kdf = BFS_TROVE_KDF_AUTO;
	if (kdf != BFS_TROVE_KDF_AUTO && (kdf < 0 || kdf >= NKDF))
		return -EINVAL;
	d = dec_alloc();
	if (!d)
		return -ENOMEM;
	ret = dec_md5_start(d);
	if (!ret && pass) {
		d->encrypted = 1;
		d->kdf = kdf;
		d->head_kind = HEAD_SALTED;
		d->head_need = BFS_TROVE_HEAD_LEN;
		d->pass = strdup(pass);
		if (!d->pass)
			ret = -ENOMEM;
	}
	if (ret) {
		bfs_trove_dec_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int trove_dec_new_at(const struct trove_keys *keys,
		     const struct trove_point *pt, const uint8_t *win,
		     struct bfs_trove_dec **out, uint64_t *obj_off)
{
	struct bfs_trove_dec *d = dec_alloc();
	uint64_t start, block;
	int ret = 0;

	if (!d)
		return -ENOMEM;
	if (keys) {
		d->encrypted = 1;
		d->have_keys = 1;
		d->keys = *keys;
		d->kdf = keys->kdf;
		d->head_kind = HEAD_SALTED;
		d->head_need = BFS_TROVE_HEAD_LEN;
	}
	*obj_off = 0;
	if (!pt) {
		ret = dec_md5_start(d);
		goto out;
	}
	/* With unused bits, the byte before in is fed again to prime. */
	start = pt->in - (pt->bits ? 1 : 0);
	d->gz_off = start;
	d->out = pt->out;
	*obj_off = start;
	if (keys) {
		/* CBC: block n decrypts with block n - 1 as its IV. */
		block = start / AES_BLOCK;
		d->gz_skip = start - block * AES_BLOCK;
		d->head_kind = block ? HEAD_IV : HEAD_NONE;
		d->head_need = block ? AES_BLOCK : 0;
		*obj_off = block ? 16 * block : 16;
	}
	if (pt->kind == TROVE_POINT_MEMBER) {
		d->members = 1;
		goto out;
	}
	d->state = GZ_BODY;
	d->crc = pt->crc;
	d->member_out = pt->member_out;
	d->prime_bits = pt->bits;
	if (pt->win_len &&
	    inflateSetDictionary(&d->z, win, pt->win_len) != Z_OK)
		ret = -EIO;
out:
	if (ret) {
		bfs_trove_dec_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

void trove_dec_set_hook(struct bfs_trove_dec *d, trove_point_fn fn, void *arg,
			uint64_t next)
{
	d->hook = fn;
	d->hook_arg = arg;
	d->next = fn ? next : UINT64_MAX;
}

void trove_dec_set_next(struct bfs_trove_dec *d, uint64_t next)
{
	d->next = next;
}

int trove_dec_point(struct bfs_trove_dec *d, int kind, struct trove_point *pt)
{
	uLongf zlen;
	uInt wlen = 0;
	uint8_t *win;

	memset(pt, 0, sizeof(*pt));
	pt->out = d->out;
	pt->in = d->gz_off;
	pt->kind = (uint8_t)kind;
	if (kind == TROVE_POINT_MEMBER)
		return 0;
	pt->bits = (uint8_t)(d->z.data_type & 7);
	pt->crc = d->crc;
	pt->member_out = d->member_out;
	win = malloc(TROVE_WINDOW);
	if (!win)
		return -ENOMEM;
	if (inflateGetDictionary(&d->z, win, &wlen) != Z_OK ||
	    wlen > TROVE_WINDOW) {
		free(win);
		return -EIO;
	}
	pt->win_len = wlen;
	zlen = compressBound(wlen);
	pt->zwin = malloc(zlen);
	if (!pt->zwin || compress2(pt->zwin, &zlen, win, wlen, 1) != Z_OK) {
		free(pt->zwin);
		free(win);
		pt->zwin = NULL;
		return -ENOMEM;
	}
	free(win);
	pt->zwin_len = (uint32_t)zlen;
	win = realloc(pt->zwin, zlen ? zlen : 1);
	if (win)
		pt->zwin = win;
	return 0;
}

int trove_dec_keys(const struct bfs_trove_dec *d, struct trove_keys *k)
{
	if (!d->have_keys)
		return -ENOENT;
	*k = d->keys;
	return 0;
}

int bfs_trove_dec_kdf(const struct bfs_trove_dec *d)
{
	return d->kdf;
}

int bfs_trove_dec_md5(const struct bfs_trove_dec *d, uint8_t md5[16])
{
	if (!d->md5_done)
		return -EAGAIN;
	memcpy(md5, d->md5_sum, 16);
	return 0;
}

uint64_t bfs_trove_dec_total(const struct bfs_trove_dec *d)
{
	return d->out;
}

/*
 * Object stage: object bytes into d->gz.
 */

static void dec_consume(struct bfs_trove_dec *d, const uint8_t **in,
			size_t *inlen, size_t n)
{
	if (d->md5 && n)
		EVP_DigestUpdate(d->md5, *in, n);
	*in += n;
	*inlen -= n;
}

/* Move what the gzip stage has not read yet to the start of d->gz when
 * free room runs short. */
static void gz_compact(struct bfs_trove_dec *d)
{
	if (!d->gz_pos || GZBUF - d->gz_len >= GZBUF / 4)
		return;
	memmove(d->gz, d->gz + d->gz_pos, d->gz_len - d->gz_pos);
	d->gz_len -= d->gz_pos;
	d->gz_pos = 0;
}

static int fill_plain(struct bfs_trove_dec *d, const uint8_t **in,
		      size_t *inlen)
{
	size_t n;

	gz_compact(d);
	n = min_size(*inlen, GZBUF - d->gz_len);
	memcpy(d->gz + d->gz_len, *in, n);
	d->gz_len += n;
	dec_consume(d, in, inlen, n);
	return 0;
}

static int cbc_decrypt(struct bfs_trove_dec *d, const uint8_t *in, size_t n)
{
	int outl = 0;

	if (EVP_DecryptUpdate(d->cipher, d->gz + d->gz_len, &outl, in,
			      (int)n) != 1 ||
	    (size_t)outl != n) {
		bfs_ossl_log("aes-256-cbc");
		return dec_fail(d, -EIO, "decryption failed");
	}
	d->gz_len += n;
	/* The last block may be padding: the gzip stage sees it only once
	 * another block follows or the object ends. */
	d->gz_hold = AES_BLOCK;
	return 0;
}

/* Derive (or check) the key from the collected head, then start CBC. */
static int start_cipher(struct bfs_trove_dec *d)
{
	const uint8_t *iv = d->keys.iv;
	char why[200];
	int ret;

	if (d->head_kind == HEAD_SALTED && d->have_keys &&
	    (memcmp(d->head, salted_magic, 8) ||
	     memcmp(d->head + 8, d->keys.salt, BFS_TROVE_SALT_LEN)))
		return dec_fail(d, -EIO, "object changed: its salt differs");
	if (d->head_kind == HEAD_SALTED && !d->have_keys) {
		ret = bfs_trove_kdf_detect(d->pass, d->kdf, d->head, &d->kdf,
					   d->keys.key, d->keys.iv, why,
					   sizeof(why));
		OPENSSL_cleanse(d->pass, strlen(d->pass));
		free(d->pass);
		d->pass = NULL;
		if (ret)
			return dec_fail(d, ret, "%s", why);
		memcpy(d->keys.salt, d->head + 8, BFS_TROVE_SALT_LEN);
		d->keys.kdf = d->kdf;
		d->have_keys = 1;
	}
	if (d->head_kind == HEAD_IV)
		iv = d->head;
	d->cipher = EVP_CIPHER_CTX_new();
	if (!d->cipher)
		return dec_fail(d, -ENOMEM, "out of memory");
	if (EVP_DecryptInit_ex(d->cipher, EVP_aes_256_cbc(), NULL, d->keys.key,
			       iv) != 1 ||
	    EVP_CIPHER_CTX_set_padding(d->cipher, 0) != 1) {
		bfs_ossl_log("aes-256-cbc");
		return dec_fail(d, -EIO, "cannot start decryption");
	}
	if (d->head_kind == HEAD_SALTED)
		return cbc_decrypt(d, d->head + 16, AES_BLOCK);
	return 0;
}

static int fill_cipher(struct bfs_trove_dec *d, const uint8_t **in,
		       size_t *inlen)
{
	size_t n;
	int ret;

	if (!d->cipher) {
		n = min_size(*inlen, d->head_need - d->head_len);
		memcpy(d->head + d->head_len, *in, n);
		d->head_len += n;
		dec_consume(d, in, inlen, n);
		if (d->head_len < d->head_need)
			return 0;
		ret = start_cipher(d);
		if (ret)
			return ret;
	}
	gz_compact(d);
	if (d->part_len) {
		n = min_size(*inlen, AES_BLOCK - d->part_len);
		memcpy(d->part + d->part_len, *in, n);
		d->part_len += n;
		dec_consume(d, in, inlen, n);
		if (d->part_len < AES_BLOCK || GZBUF - d->gz_len < AES_BLOCK)
			return 0;
		d->part_len = 0;
		ret = cbc_decrypt(d, d->part, AES_BLOCK);
		if (ret)
			return ret;
	}
	n = min_size(*inlen, GZBUF - d->gz_len) & ~(size_t)(AES_BLOCK - 1);
	if (n) {
		ret = cbc_decrypt(d, *in, n);
		if (ret)
			return ret;
		dec_consume(d, in, inlen, n);
	}
	if (*inlen && *inlen < AES_BLOCK && !d->part_len) {
		memcpy(d->part, *in, *inlen);
		d->part_len = *inlen;
		dec_consume(d, in, inlen, *inlen);
	}
	return 0;
}

/* PKCS#7: the last byte says how many bytes of that value end it. */
static int check_padding(struct bfs_trove_dec *d)
{
	const uint8_t *last = d->gz + d->gz_len - AES_BLOCK;
	uint8_t pad = last[AES_BLOCK - 1];
	int i;

	if (pad < 1 || pad > AES_BLOCK)
		return dec_fail(d, -EIO, "bad padding: last byte %u", pad);
	for (i = AES_BLOCK - pad; i < AES_BLOCK; i++)
		if (last[i] != pad)
			return dec_fail(d, -EIO,
					"bad padding: %u bytes not all %u", pad,
					pad);
	d->gz_len -= pad;
	d->gz_hold = 0;
	return 0;
}

/* The object ended: the last cipher block must be whole and padded. */
static int finish_input(struct bfs_trove_dec *d)
{
	int ret;

	d->in_done = 1;
	if (d->encrypted) {
		if (!d->cipher)
			return dec_fail(d, -EIO,
					"truncated: object ends in its header");
		if (d->part_len)
			return dec_fail(d, -EIO,
					"truncated: object ends inside a "
					"cipher block");
		if (d->gz_hold != AES_BLOCK)
			return dec_fail(d, -EIO,
					"truncated: no cipher block after "
					"the start point");
		ret = check_padding(d);
		if (ret)
			return ret;
	}
	d->gz_eof = 1;
	return 0;
}

static int dec_fill(struct bfs_trove_dec *d, const uint8_t **in, size_t *inlen,
		    int final)
{
	int ret;

	if (d->encrypted)
		ret = fill_cipher(d, in, inlen);
	else
		ret = fill_plain(d, in, inlen);
	if (ret)
		return ret;
	if (final && !*inlen && !d->in_done)
		return finish_input(d);
	return 0;
}

/*
 * Gzip stage: members out of d->gz.
 */

/* Readable bytes, after dropping what precedes a start point. */
static size_t gz_avail(struct bfs_trove_dec *d)
{
	size_t a = d->gz_len - d->gz_hold - d->gz_pos, n;

	if (d->gz_skip) {
		n = (size_t)(d->gz_skip < a ? d->gz_skip : a);
		d->gz_pos += n;
		d->gz_skip -= n;
		a -= n;
	}
	return a;
}

static void gz_take(struct bfs_trove_dec *d, size_t n)
{
	d->gz_pos += n;
	d->gz_off += n;
}

/* Out of bytes: more may come, unless the stream has ended. */
static int gz_need(struct bfs_trove_dec *d, const char *where)
{
	if (!d->gz_eof)
		return GZ_MORE;
	return dec_fail(d, -EIO,
			"truncated: gzip stream ends in a member's %s at "
			"offset %llu",
			where, (unsigned long long)d->gz_off);
}

static int hdr_bad(struct bfs_trove_dec *d, const char *what)
{
	if (!d->members)
		return dec_fail(d, -EIO, "not a gzip stream: %s", what);
	return dec_fail(d, -EIO,
			"trailing garbage after gzip member %llu at offset "
			"%llu: %s",
			(unsigned long long)d->members,
			(unsigned long long)d->gz_off, what);
}

/* The header field after from, or 1 if the header is complete. */
static int hdr_next(struct bfs_trove_dec *d, enum hdr_state from)
{
	static const struct {
		enum hdr_state state;
		uint8_t flag;
	} order[] = {
		{H_XLEN, FEXTRA},
		{H_NAME, FNAME},
		{H_COMMENT, FCOMMENT},
		{H_HCRC, FHCRC},
	};
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i].state <= from || !(d->hflags & order[i].flag))
			continue;
		d->hstate = order[i].state;
		d->hcount = 0;
		return 0;
	}
	return 1;
}

/* One header byte: 0 (more), 1 (header complete) or -EIO. */
static int hdr_byte(struct bfs_trove_dec *d, uint8_t b)
{
	if (d->hstate != H_HCRC)
		d->hcrc = crc32(d->hcrc, &b, 1);
	switch (d->hstate) {
	case H_ID1:
		if (b != 0x1f)
			return hdr_bad(d, "bad magic");
		d->hstate = H_ID2;
		return 0;
	case H_ID2:
		if (b != 0x8b)
			return hdr_bad(d, "bad magic");
		d->hstate = H_CM;
		return 0;
	case H_CM:
		if (b != 8)
			return hdr_bad(d, "compression method is not deflate");
		d->hstate = H_FLG;
		return 0;
	case H_FLG:
		if (b & 0xe0)
			return hdr_bad(d, "reserved header flags set");
		d->hflags = b;
		d->hstate = H_FIXED;
		d->hcount = 0;
		return 0;
	case H_FIXED:
		return ++d->hcount == 6 ? hdr_next(d, H_FIXED) : 0;
	case H_XLEN:
		d->hxlen |= (uint32_t)b << (8 * d->hcount);
		if (++d->hcount < 2)
			return 0;
		d->hstate = H_EXTRA;
		d->hcount = 0;
		return d->hxlen ? 0 : hdr_next(d, H_EXTRA);
	case H_EXTRA:
		return ++d->hcount == d->hxlen ? hdr_next(d, H_EXTRA) : 0;
	case H_NAME:
	case H_COMMENT:
		return b ? 0 : hdr_next(d, d->hstate);
	case H_HCRC:
		d->hcheck |= (uint32_t)b << (8 * d->hcount);
		if (++d->hcount < 2)
			return 0;
		if (d->hcheck != (d->hcrc & 0xffff))
			return hdr_bad(d, "header crc mismatch");
		return 1;
	}
	return hdr_bad(d, "parser state");
}

static int gz_hdr(struct bfs_trove_dec *d)
{
	size_t a = gz_avail(d), i;
	int ret;

	for (i = 0; i < a; i++) {
		ret = hdr_byte(d, d->gz[d->gz_pos + i]);
		if (ret < 0)
			return ret;
		if (ret == 1) {
			gz_take(d, i + 1);
			if (inflateReset(&d->z) != Z_OK)
				return dec_fail(d, -EIO, "inflateReset failed");
			d->crc = crc32(0, NULL, 0);
			d->member_out = 0;
			d->state = GZ_BODY;
			return GZ_AGAIN;
		}
	}
	gz_take(d, a);
	return gz_need(d, "header");
}

/* A decoder started at a checkpoint with unused bits feeds them first. */
static int gz_prime(struct bfs_trove_dec *d, size_t a)
{
	int bits = d->prime_bits;

	if (!a)
		return gz_need(d, "deflate data");
	if (inflatePrime(&d->z, bits, d->gz[d->gz_pos] >> (8 - bits)) != Z_OK)
		return dec_fail(d, -EIO, "inflatePrime failed");
	gz_take(d, 1);
	d->prime_bits = 0;
	return GZ_AGAIN;
}

static int gz_body(struct bfs_trove_dec *d, uint8_t *out, size_t outcap,
		   size_t *outlen)
{
	size_t a = gz_avail(d), room, got, used;
	int flush, ret;

	if (d->prime_bits)
		return gz_prime(d, a);
	if (*outlen == outcap)
		return GZ_FULL;
	/* Inflate may still hold bits or a pending match: always call it. */
	room = min_size(outcap - *outlen, UINT_MAX);
	flush = d->out >= d->next ? Z_BLOCK : Z_NO_FLUSH;
	d->z.next_in = d->gz + d->gz_pos;
	d->z.avail_in = (uInt)a;
	d->z.next_out = out + *outlen;
	d->z.avail_out = (uInt)room;
	ret = inflate(&d->z, flush);
	used = a - d->z.avail_in;
	got = room - d->z.avail_out;
	d->crc = (uint32_t)crc32_z(d->crc, out + *outlen, got);
	d->member_out += got;
	d->out += got;
	*outlen += got;
	gz_take(d, used);
	if (ret == Z_STREAM_END) {
		d->state = GZ_TRAILER;
		d->trailer_len = 0;
		return GZ_AGAIN;
	}
	if (ret == Z_MEM_ERROR)
		return dec_fail(d, -ENOMEM, "inflate: out of memory");
	if (ret != Z_OK && ret != Z_BUF_ERROR)
		return dec_fail(d, -EIO,
				"corrupt deflate data before gzip offset "
				"%llu: %s",
				(unsigned long long)d->gz_off,
				d->z.msg ? d->z.msg : "inflate failed");
	/* zran: bit 7 is a block boundary, bit 6 the last block. */
	if (flush == Z_BLOCK && (d->z.data_type & 128) &&
	    !(d->z.data_type & 64))
		d->hook(d->hook_arg, d, TROVE_POINT_BLOCK);
	if (got || used)
		return GZ_AGAIN;
	if (*outlen == outcap)
		return GZ_FULL;
	return gz_need(d, "deflate data");
}

static int gz_trailer(struct bfs_trove_dec *d)
{
	size_t a = gz_avail(d), n;
	uint32_t crc, isize;

	n = min_size(a, sizeof(d->trailer) - d->trailer_len);
	memcpy(d->trailer + d->trailer_len, d->gz + d->gz_pos, n);
	d->trailer_len += n;
	gz_take(d, n);
	if (d->trailer_len < sizeof(d->trailer))
		return gz_need(d, "trailer");
	crc = le32(d->trailer);
	isize = le32(d->trailer + 4);
	if (crc != d->crc)
		return dec_fail(d, -EIO,
				"crc32 mismatch in the gzip member ending at "
				"offset %llu (plaintext offset %llu)",
				(unsigned long long)d->gz_off,
				(unsigned long long)d->out);
	if (isize != (uint32_t)d->member_out)
		return dec_fail(d, -EIO,
				"length mismatch in the gzip member ending "
				"at offset %llu",
				(unsigned long long)d->gz_off);
	d->members++;
	d->state = GZ_NEXT;
	return GZ_AGAIN;
}

/* After a member: the end, another member (like gzip -dc), or garbage. */
static int gz_next(struct bfs_trove_dec *d)
{
	size_t a = gz_avail(d);

	if (!a) {
		if (!d->gz_eof)
			return GZ_MORE;
		d->state = GZ_END;
		return GZ_AGAIN;
	}
	if (d->gz[d->gz_pos] != 0x1f)
		return hdr_bad(d, "not a gzip header");
	if (d->out >= d->next)
		d->hook(d->hook_arg, d, TROVE_POINT_MEMBER);
	d->hstate = H_ID1;
	d->hcrc = 0;
	d->hxlen = 0;
	d->hcheck = 0;
	d->state = GZ_HEADER;
	return GZ_AGAIN;
}

static int dec_gz(struct bfs_trove_dec *d, uint8_t *out, size_t outcap,
		  size_t *outlen)
{
	int ret;

	for (;;) {
		switch (d->state) {
		case GZ_HEADER:
			ret = gz_hdr(d);
			break;
		case GZ_BODY:
			ret = gz_body(d, out, outcap, outlen);
			break;
		case GZ_TRAILER:
			ret = gz_trailer(d);
			break;
		case GZ_NEXT:
			ret = gz_next(d);
			break;
		default:
			return BFS_TROVE_END;
		}
		if (ret != GZ_AGAIN)
			return ret;
	}
}

static int dec_end(struct bfs_trove_dec *d)
{
	unsigned int n = 0;

	if (d->md5 && !d->md5_done) {
		if (EVP_DigestFinal_ex(d->md5, d->md5_sum, &n) != 1 ||
		    n != 16) {
			bfs_ossl_log("md5");
			return dec_fail(d, -EIO, "md5 failed");
		}
		d->md5_done = 1;
	}
	return BFS_TROVE_END;
}

int bfs_trove_dec_step(struct bfs_trove_dec *d, const uint8_t **in,
		       size_t *inlen, int final, uint8_t *out, size_t outcap,
		       size_t *outlen, char *err, size_t errlen)
{
	int ret;

	*outlen = 0;
	if (d->err)
		goto out_err;
	if (d->state == GZ_END && *inlen)
		dec_fail(d, -EIO, "data after the end of the object");
	for (ret = 0; !d->err;) {
		ret = dec_fill(d, in, inlen, final);
		if (ret < 0)
			break;
		ret = dec_gz(d, out, outcap, outlen);
		if (ret == BFS_TROVE_END)
			ret = dec_end(d);
		if (ret != GZ_MORE)
			break;
		/* The gzip stage drained what was decrypted. */
		if (!*inlen)
			break;
	}
	if (ret == GZ_FULL)
		ret = 0;
	if (!d->err)
		return ret;
out_err:
	bfs_errf(err, errlen, "%s", d->msg);
	return d->err;
}
