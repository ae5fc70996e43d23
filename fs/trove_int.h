/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Between the Trove decoder (trove.c) and the Trove reader and index
 * (trove_reader.c): checkpoints and starting a decoder mid-stream.
 */
#ifndef BFS_TROVE_INT_H
#define BFS_TROVE_INT_H

#include "trove.h"

#include <stdint.h>

/* Inflate's history: what a checkpoint must restore. */
#define TROVE_WINDOW 32768

enum trove_point_kind {
	TROVE_POINT_BLOCK = 0,	/* at a deflate block boundary in a member */
	TROVE_POINT_MEMBER = 1, /* at the start of a member's gzip header */
};

/*
 * A place the decoder can restart from (zlib's zran technique).  in is
 * the gzip-stream offset (for an encrypted object: of the decrypted
 * stream) of the first byte inflate has not touched; bits of the byte
 * before it are still unused.  crc and member_out are those of the
 * member so far, so a decoder started here still checks the member's
 * CRC32 and ISIZE at its end.
 */
struct trove_point {
	uint64_t out;
	uint64_t in;
	uint64_t member_out;
	uint32_t crc;
	uint8_t bits;
	uint8_t kind;
	uint32_t win_len;  /* history bytes (<= TROVE_WINDOW) */
	uint32_t zwin_len; /* their zlib-compressed size */
	uint8_t *zwin;	   /* owned */
};

/* Key material of an encrypted object, once derived. */
struct trove_keys {
	uint8_t salt[BFS_TROVE_SALT_LEN];
	uint8_t key[BFS_TROVE_KEY_LEN];
	uint8_t iv[BFS_TROVE_IV_LEN];
	int kdf;
};

/*
 * A decoder that starts at pt (NULL: at byte 0) with known keys (NULL:
 * plain object).  win holds pt->win_len bytes of history.  *obj_off is
 * the object offset to feed it from.  The MD5 is only kept when starting
 * at 0.  With keys at 0, the object's salt must match keys->salt.
 */
int trove_dec_new_at(const struct trove_keys *keys,
		     const struct trove_point *pt, const uint8_t *win,
		     struct bfs_trove_dec **out, uint64_t *obj_off);

/*
 * Checkpoint hook: once the output passes next, the decoder stops at the
 * next deflate block boundary (or member start) and calls fn, which may
 * take a point with trove_dec_point() and must set a new next with
 * trove_dec_set_next() (UINT64_MAX: never again).
 */
typedef void (*trove_point_fn)(void *arg, struct bfs_trove_dec *d, int kind);
void trove_dec_set_hook(struct bfs_trove_dec *d, trove_point_fn fn, void *arg,
			uint64_t next);
void trove_dec_set_next(struct bfs_trove_dec *d, uint64_t next);
/* Fill pt for where d stands now (called from the hook): 0 or -ENOMEM /
 * -EIO.  pt->zwin is new. */
int trove_dec_point(struct bfs_trove_dec *d, int kind, struct trove_point *pt);

/* The keys a decoder derived or was given (0), -ENOENT if none yet. */
int trove_dec_keys(const struct bfs_trove_dec *d, struct trove_keys *k);

#endif
