/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys and the ciphers of the native repository format (docs/FORMAT.md).
 *
 * The repository key file holds a 32-byte master key as 64 hex digits and
 * a newline.  Every key actually used is derived from it with
 * HKDF-SHA256 (no salt, a distinct info string per purpose), so a leak of
 * one derived key reveals neither the master nor the others.
 *
 * All functions are safe to call from several threads at once.
 */
#ifndef BFS_CRYPTO_H
#define BFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define BFS_KEY_LEN 32
#define BFS_ID_LEN 32
#define BFS_NONCE_LEN 12
#define BFS_TAG_LEN 16

struct bfs_keys {
	uint8_t id[BFS_KEY_LEN];       /* HMAC key for chunk ids ("backupfs id v1") */
	uint8_t chunk[BFS_KEY_LEN];    /* AES-256-GCM for chunks ("backupfs chunk v1") */
	uint8_t manifest[BFS_KEY_LEN]; /* AES-256-GCM for manifests ("backupfs manifest v1") */
	uint8_t check[BFS_KEY_LEN];    /* HMAC key proving the key is right ("backupfs check v1") */
	uint8_t gear[BFS_KEY_LEN];     /* seeds the chunker's gear table ("backupfs gear v1") */
	uint8_t meta[BFS_KEY_LEN];     /* AES-256-GCM for other records ("backupfs meta v1") */
};

/* Derive all purpose keys from the master key.  0 or -EIO. */
int bfs_keys_derive(const uint8_t master[BFS_KEY_LEN], struct bfs_keys *out);

/* A key file (fd open on path) must be a regular file only its owner may
 * read or write: 0, or -errno with the reason in err. */
int bfs_key_file_check_mode(int fd, const char *path, char *err,
			    size_t errlen);

/*
 * Read a key file.  Refuses (-EPERM) a file that group or others may read
 * or write, and -EINVAL for content that is not 64 hex digits (a trailing
 * newline is allowed).  On error, writes a one-line reason naming the file
 * into err (errlen bytes).
 */
int bfs_key_file_read(const char *path, uint8_t master[BFS_KEY_LEN],
		      char *err, size_t errlen);
/* Create a new key file with fresh random key, mode 0600, O_EXCL:
 * -EEXIST if it exists.  Fills master with the new key. */
int bfs_key_file_create(const char *path, uint8_t master[BFS_KEY_LEN],
			char *err, size_t errlen);

/* Fill buf with cryptographically random bytes.  0 or -EIO. */
int bfs_random(void *buf, size_t len);

/* HMAC-SHA256(key, data). */
void bfs_hmac_sha256(const uint8_t key[BFS_KEY_LEN], const void *data,
		     size_t len, uint8_t out[32]);
/* Chunk id = HMAC-SHA256(keys->id, plaintext). */
void bfs_chunk_id(const struct bfs_keys *keys, const void *data, size_t len,
		  uint8_t id[BFS_ID_LEN]);

/*
 * AES-256-GCM.  Seal encrypts len bytes of in into out (len bytes; in and
 * out may be the same buffer) with a fresh random nonce written to nonce,
 * and writes the tag.  Open checks the tag and decrypts; -EBADMSG when
 * authentication fails (out is then zeroed), -EIO on other failures.
 */
int bfs_gcm_seal(const uint8_t key[BFS_KEY_LEN], const void *aad,
		 size_t aadlen, const void *in, size_t len, void *out,
		 uint8_t nonce[BFS_NONCE_LEN], uint8_t tag[BFS_TAG_LEN]);
int bfs_gcm_open(const uint8_t key[BFS_KEY_LEN],
		 const uint8_t nonce[BFS_NONCE_LEN], const void *aad,
		 size_t aadlen, const void *in, size_t len, void *out,
		 const uint8_t tag[BFS_TAG_LEN]);

/* Incremental SHA-256 over a stream (the whole-backup checksum). */
struct bfs_sha256;
struct bfs_sha256 *bfs_sha256_new(void); /* NULL on ENOMEM */
void bfs_sha256_update(struct bfs_sha256 *s, const void *data, size_t len);
void bfs_sha256_final(struct bfs_sha256 *s, uint8_t out[32]); /* frees s */
void bfs_sha256_free(struct bfs_sha256 *s); /* abandon without output */

/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL). */
void bfs_hex(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2n hex digits: 0 or -EINVAL. */
int bfs_unhex(const char *in, uint8_t *out, size_t n);

/* Constant-time compare: 0 when equal. */
int bfs_memcmp_ct(const void *a, const void *b, size_t n);

/* Log OpenSSL's reason for a failure of what ("bfs: error: what failed:
 * reason"), and empty its error queue. */
void bfs_ossl_log(const char *what);

#endif
