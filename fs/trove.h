/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Legacy OpenStack Trove backups (docs/FORMAT.md, "Legacy Trove objects").
 *
 * Trove stored a backup as the gzip CLI's output, optionally piped through
 * `openssl enc -aes-256-cbc -salt -pass pass:KEY`:
 *
 *   <id>.gz.enc, <id>.xbstream.gz.enc   "Salted__", salt, AES-256-CBC
 *   <id>.gz, <id>.xbstream.gz, <id>.tar.gz   plain gzip
 *
 * Three layers, each usable alone:
 *
 * - key derivation: the three ways OpenSSL turned the pass phrase into
 *   key and IV, and the trial that finds the one a given object used;
 * - a streaming decoder: object bytes in (any split), plaintext out,
 *   every gzip member's CRC32 and ISIZE and the PKCS#7 padding checked;
 *   any mismatch is -EIO, never a clean end of stream;
 * - a reader: pread() over an object fetched in ranges through a
 *   callback, with inflate checkpoints (zlib's zran technique) recorded
 *   while decoding and saved in an index file once a full pass has
 *   verified the whole stream, so a seek does not restart from 0.
 *
 * Nothing here knows about Swift or FUSE.
 */
#ifndef BFS_TROVE_H
#define BFS_TROVE_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Key derivations, in the order they are tried.  The ids are recorded by
 * callers (and in the index file): never renumber.
 */
enum bfs_trove_kdf {
	BFS_TROVE_KDF_AUTO = -1,	 /* try all three */
	BFS_TROVE_KDF_NONE = 0,		 /* not encrypted */
	BFS_TROVE_KDF_PBKDF2_SHA512 = 1, /* PBKDF2-HMAC-SHA512, 10000 iter. */
	BFS_TROVE_KDF_BTK_SHA256 = 2,	 /* EVP_BytesToKey SHA-256, 1 iter. */
	BFS_TROVE_KDF_BTK_MD5 = 3,	 /* EVP_BytesToKey MD5, 1 iter. */
};

#define BFS_TROVE_SALT_LEN 8
#define BFS_TROVE_KEY_LEN  32
#define BFS_TROVE_IV_LEN   16
/* "Salted__", the salt and the first cipher block: what the trial needs. */
#define BFS_TROVE_HEAD_LEN 32

/* "none", "pbkdf2-sha512", "bytestokey-sha256", "bytestokey-md5", or
 * NULL for an unknown id. */
const char *bfs_trove_kdf_name(int kdf);
/* The id of a name above (or "auto"), or -EINVAL. */
int bfs_trove_kdf_from_name(const char *name);

/* Derive key and IV from a pass phrase and salt: 0, -EINVAL (unknown
 * kdf) or -EIO (OpenSSL failed). */
int bfs_trove_kdf_derive(int kdf, const char *pass,
			 const uint8_t salt[BFS_TROVE_SALT_LEN],
			 uint8_t key[BFS_TROVE_KEY_LEN],
			 uint8_t iv[BFS_TROVE_IV_LEN]);

/*
 * Find the derivation an object used from its first BFS_TROVE_HEAD_LEN
 * bytes: the one (of kdf, or of all three in order for
 * BFS_TROVE_KDF_AUTO) whose first decrypted block starts with the gzip
 * magic 1f 8b 08.  Fills *kdf_out, key and iv.  -EIO when head is not
 * "Salted__" + salt, -EKEYREJECTED when no derivation fits (a wrong key).
 */
int bfs_trove_kdf_detect(const char *pass, int kdf,
			 const uint8_t head[BFS_TROVE_HEAD_LEN], int *kdf_out,
			 uint8_t key[BFS_TROVE_KEY_LEN],
			 uint8_t iv[BFS_TROVE_IV_LEN], char *err,
			 size_t errlen);

/* What an object name says about its content. */
enum bfs_trove_payload {
	BFS_TROVE_PAYLOAD_RAW = 0, /* mysqldump SQL, a tar, ...: whatever */
	BFS_TROVE_PAYLOAD_XBSTREAM = 1,
	BFS_TROVE_PAYLOAD_TAR = 2,
};

struct bfs_trove_name {
	size_t id_len; /* the backup id is name[0, id_len) */
	int encrypted; /* ends in .enc */
	int payload;   /* enum bfs_trove_payload */
};

/* Parse "<id>.gz.enc", "<id>.xbstream.gz.enc", "<id>.gz",
 * "<id>.xbstream.gz" or "<id>.tar.gz": 0, or -EINVAL for anything else
 * (segments "<id>_00000000" included). */
int bfs_trove_name_parse(const char *name, struct bfs_trove_name *out);

/*
 * The streaming decoder.  One decoder belongs to one thread at a time.
 */
struct bfs_trove_dec;

/* pass NULL: a plain gzip object; else the pass phrase of an encrypted
 * one (copied, wiped once the key is derived) and the derivation to use
 * (0 or BFS_TROVE_KDF_AUTO to try all).  0 or -ENOMEM / -EINVAL / -EIO. */
int bfs_trove_dec_new(const char *pass, int kdf, struct bfs_trove_dec **out);
void bfs_trove_dec_free(struct bfs_trove_dec *d);

/* bfs_trove_dec_step() returns this once the stream ended, verified. */
#define BFS_TROVE_END 1

/*
 * Feed object bytes and take plaintext.  Consumes from *in (advancing
 * *in and *inlen) and writes up to outcap bytes to out (*outlen of them).
 * final: the bytes in *in are the last of the object.  Returns
 * - 0: call again, with more output room if *outlen == outcap, else with
 *   more input (all of *in has been consumed);
 * - BFS_TROVE_END: the stream ended and every check passed;
 * - -EKEYREJECTED: no key derivation fits (a wrong pass phrase);
 * - -EIO: corrupt, truncated or over-long object, bad padding, CRC or
 *   ISIZE mismatch; the error sticks (later calls return it again).
 * err (errlen bytes) gets a one-line reason on error.
 */
int bfs_trove_dec_step(struct bfs_trove_dec *d, const uint8_t **in,
		       size_t *inlen, int final, uint8_t *out, size_t outcap,
		       size_t *outlen, char *err, size_t errlen);

/* The derivation found (BFS_TROVE_KDF_NONE for a plain object; AUTO
 * before the first cipher block was seen). */
int bfs_trove_dec_kdf(const struct bfs_trove_dec *d);
/* MD5 of all object bytes fed: 0, or -EAGAIN before BFS_TROVE_END. */
int bfs_trove_dec_md5(const struct bfs_trove_dec *d, uint8_t md5[16]);
/* Plaintext bytes produced so far. */
uint64_t bfs_trove_dec_total(const struct bfs_trove_dec *d);

/*
 * The reader.
 *
 * Ranged reads of the object: append exactly len bytes at off to out
 * (which the reader empties first; its maximum is at least len).
 * Returns 0 or -errno; appending fewer bytes is taken as -EIO.  Called
 * without any reader lock held, possibly from several threads at once
 * (each with its own out).
 */
typedef int (*bfs_trove_fetch_fn)(void *arg, uint64_t off, size_t len,
				  struct bfs_buf *out);

struct bfs_trove_params {
	const char *name;	/* object name: identity, and in messages */
	uint64_t size;		/* object size in bytes */
	const char *etag;	/* ETag or checksum string: identity */
	const char *pass;	/* pass phrase; NULL for a plain object */
	int kdf;		/* a recorded derivation, or 0 or
				   BFS_TROVE_KDF_AUTO to try all */
	const char *expect_md5; /* NULL, or 32 hex digits the object's MD5
				   must match (a single object's ETag) */
	const char *index_path; /* NULL: no index file */
	uint64_t interval;	/* plaintext between checkpoints; 0: 4 MiB */
	unsigned max_points;	/* 0: 4096; past it the interval doubles */
	unsigned cursors;	/* decode cursors, 1..16; 0: 4 */
	size_t fetch_size;	/* bytes per fetch at most; 0: 4 MiB.  A
				   cursor (re)started fetches a quarter
				   (>= 64 KiB) first, doubling after */
	bfs_trove_fetch_fn fetch;
	void *fetch_arg; /* borrowed; must outlive the reader */
};

struct bfs_trove_stats {
	uint64_t inflated; /* plaintext decoded, served or skipped over */
	uint64_t fetched;  /* object bytes fetched */
	uint64_t fetches;  /* fetch calls */
	uint64_t restarts; /* cursors (re)started at a checkpoint or 0 */
	uint64_t points;   /* checkpoints held */
	int index_loaded;  /* the index file was valid and used */
};

struct bfs_trove_reader;

/*
 * Open a reader.  All strings in p are copied.  Loads p->index_path if it
 * is a valid index of this very object (same name, size and etag; a
 * stale, corrupt or unknown-version index is ignored and rebuilt).  For
 * an encrypted object fetches its first 32 bytes and finds the key
 * derivation: -EKEYREJECTED for a wrong pass phrase, -EIO for an object
 * that is not openssl's salted format.
 */
int bfs_trove_reader_open(const struct bfs_trove_params *p,
			  struct bfs_trove_reader **out, char *err,
			  size_t errlen);
/* No read may be running. */
void bfs_trove_reader_free(struct bfs_trove_reader *r);

/*
 * Read up to len plaintext bytes at off into out.  Returns the byte
 * count (short only at the end of the stream, 0 past it) or -errno: -EIO
 * for any integrity failure (it sticks: every later read fails too) and
 * whatever fetch returned.  A read that reaches the end of the stream
 * returns only after the last member's CRC, ISIZE and the padding were
 * checked.  Bytes served before a failure further on were not yet
 * verified by the CRC of their member.
 *
 * Safe to call from several threads at once.  The reader holds up to
 * p->cursors independent decode positions; a read takes the cursor
 * nearest at or before off (waiting for a busy one that will be nearer
 * than any checkpoint), else restarts the least recently used cursor at
 * the nearest checkpoint at or before off, or at 0.  Sequential readers
 * (up to the cursor count) thus each stream; a forward seek decodes
 * forward from the cursor; a backward seek costs at most one interval
 * once checkpoints cover the offset.  Cursors decode in parallel; the
 * checkpoint list is shared under the reader's lock.  Each cursor keeps
 * its last 4 MiB of plaintext, so a read slightly behind it (reads of a
 * stream delivered out of order) is a copy, and a cursor that streams
 * fetches its next range on a helper thread of its own while it
 * decodes: fetch may be called with no read running, until
 * bfs_trove_reader_free() returns.
 */
ssize_t bfs_trove_read(struct bfs_trove_reader *r, uint64_t off, size_t len,
		       void *out, char *err, size_t errlen);

/*
 * Decode the whole object from byte 0 (all CRCs, the padding, and
 * p->expect_md5 if given): 0 or -errno.  Afterwards the exact size, the
 * MD5 and a complete index are known (and saved).
 */
int bfs_trove_reader_verify(struct bfs_trove_reader *r, char *err,
			    size_t errlen);

/* 1 and *size = the exact plaintext size once a pass has reached the
 * verified end (or a valid index said so); 0 while it is unknown. */
int bfs_trove_reader_size(struct bfs_trove_reader *r, uint64_t *size);
/*
 * A hint only: the ISIZE of the last gzip member (plaintext size modulo
 * 2^32 of that member), fetched from the object's tail.  Exact for a
 * single-member stream under 4 GiB, wrong otherwise.  0 or -errno.
 */
int bfs_trove_reader_isize_hint(struct bfs_trove_reader *r, uint32_t *isize,
				char *err, size_t errlen);
/* The key derivation in use (BFS_TROVE_KDF_NONE for plain objects). */
int bfs_trove_reader_kdf(struct bfs_trove_reader *r);
/* The MD5 of the object: 0 once a pass from byte 0 reached the verified
 * end (or the index recorded it), else -ENODATA. */
int bfs_trove_reader_md5(struct bfs_trove_reader *r, uint8_t md5[16]);
void bfs_trove_reader_stats(struct bfs_trove_reader *r,
			    struct bfs_trove_stats *st);

/*
 * The plaintext size recorded in a valid index of this object (name,
 * object size and etag as in bfs_trove_params), without opening a
 * reader or fetching anything: 0, or -ENOENT when there is no valid
 * index.
 */
int bfs_trove_index_size(const char *index_path, const char *name,
			 uint64_t obj_size, const char *etag, uint64_t *size);

#endif
