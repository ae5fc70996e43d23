// SPDX-License-Identifier: Apache-2.0
/*
 * The Trove reader: pread() over a legacy object fetched in ranges.
 *
 * Cursors: each is a decoder with its own position and input buffer.  A
 * read takes the cursor nearest at or before its offset, or restarts
 * one at the nearest checkpoint; cursors decode outside the reader's
 * lock, so readers on different cursors run in parallel.
 *
 * History: each cursor keeps the last HIST_CAP bytes of plaintext it
 * produced in a ring.  The kernel's readahead and libfuse's worker
 * threads deliver a sequential stream slightly out of order (n + 128K
 * before n); a read just behind a cursor is then a copy from its ring,
 * and a read that a busy cursor will have in its ring once its running
 * read is over waits for that cursor rather than restarting another
 * one at the previous checkpoint (which refetched and redecoded up to
 * an interval, and cost a spare cursor).
 *
 * Fetch sizes: after a (re)start a cursor fetches a quarter of
 * fetch_size (at least MIN_FETCH), then doubles up to fetch_size, so a
 * random read costs a small fetch and a stream soon makes large ones.
 *
 * Prefetch: once a cursor has made PF_AFTER fetches since its (re)start
 * it is taken to stream, and after each fetch it queues the next range
 * in its one prefetch slot; a helper thread of its own (started on the
 * first prefetch, at most one per cursor) fetches it while the cursor
 * decodes.  The slot is under the cursor's pf_lock, never under
 * r->lock, and nobody waits for I/O holding r->lock: the cursor's owner
 * waits for a running prefetch only when it is the very range it needs
 * next.  A restart bumps the cursor's generation, so a prefetch queued
 * before it is dropped (or, still running, ignored and overwritten
 * later) and never fed to the new decoder; while a stale one runs the
 * cursor just fetches synchronously.  Memory per cursor is bounded: the
 * input buffer, the slot's buffer (fetch_size each), the ring and the
 * scratch buffer.  bfs_trove_reader_free() stops the helpers, waiting
 * for a fetch in flight.
 *
 * Checkpoints: a cursor that decodes past the last checkpoint plus the
 * interval records a new one at the next deflate block boundary.  Every
 * cursor starts at 0 or at a checkpoint and decodes without gaps, so the
 * list always covers [0, frontier] densely; the first cursor that reaches
 * the verified end of the stream thus completes it, and then the exact
 * size is known and the index file is written.
 */
#include "crypto.h"
#include "log.h"
#include "trove.h"
#include "trove_int.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define DEF_INTERVAL   (4ull << 20)
#define MIN_INTERVAL   (64ull << 10)
#define DEF_MAX_POINTS 4096
#define MIN_MAX_POINTS 16
#define DEF_CURSORS    4
#define MAX_CURSORS    16
#define DEF_FETCH      (4u << 20)
#define MIN_FETCH      (64u << 10)
/* Plaintext history per cursor (see above). */
#define HIST_CAP (4u << 20)
/* Fetches since a (re)start after which a cursor prefetches. */
#define PF_AFTER  3
#define MAX_FETCH (64u << 20)
/* Where output goes that is decoded only to be skipped. */
#define SCRATCH (128 * 1024)
/* An offset no read reaches: verify decodes "towards" it to the end. */
#define FAR_OFF (UINT64_MAX / 2)
#define WHY_LEN 256

struct trove_cursor {
	struct bfs_trove_dec *dec; /* NULL: not started */
	int busy;
	int from_zero;	   /* started at byte 0: its MD5 is the object's */
	int eof;	   /* the decoder reached the verified end */
	uint64_t pos;	   /* plaintext offset of the decoder's next byte */
	uint64_t until;	   /* while busy: where the running read leaves pos */
	uint64_t obj_next; /* next object offset to fetch */
	struct bfs_buf in;
	size_t in_pos;
	uint8_t *scratch;
	uint64_t used;	  /* LRU tick */
	size_t fetch_cur; /* the next fetch's size (ramping up) */
	unsigned nfetch;  /* fetches since the (re)start */

	/* The last hist_len bytes decoded, a ring of HIST_CAP ending at
	 * pos; hist_head is where the byte at pos goes.  Owner only. */
	uint8_t *hist;
	size_t hist_len, hist_head;
	uint64_t lo; /* while busy: pos - hist_len at the claim */

	/* The prefetch slot, under pf_lock (never taken with it held:
	 * r->lock).  The helper owns pf_buf while PF_RUNNING, the cursor's
	 * owner otherwise. */
	pthread_mutex_t pf_lock;
	pthread_cond_t pf_cond;
	pthread_t pf_thread;
	int pf_started, pf_quit;
	int pf_state;	 /* enum pf_state */
	uint64_t gen;	 /* bumped by every restart */
	uint64_t pf_gen; /* the generation that queued the slot's range */
	uint64_t pf_off;
	size_t pf_len;
	int pf_ret;
	struct bfs_buf pf_buf;
	struct bfs_trove_reader *r;
};

enum pf_state {
	PF_IDLE = 0, /* empty */
	PF_QUEUED,   /* a range for the helper */
	PF_RUNNING,  /* being fetched */
	PF_DONE,     /* fetched: pf_ret, pf_buf */
};

struct bfs_trove_reader {
	pthread_mutex_t lock; /* everything below but the atomics */
	pthread_cond_t idle;  /* a cursor was released */
	char *name, *etag, *index_path;
	uint64_t obj_size;
	int encrypted;
	int kdf; /* asked for: a recorded one or BFS_TROVE_KDF_AUTO */
	struct trove_keys keys;
	bfs_trove_fetch_fn fetch;
	void *fetch_arg;
	size_t fetch_size;
	uint64_t interval;
	unsigned max_points;
	int have_expect;
	uint8_t expect[16];

	struct trove_point *pts;
	size_t npts, cap;
	int complete;
	uint64_t size;
	int md5_known;
	uint8_t md5[16];
	int index_loaded;
	int saving, saved_complete, saved_md5;

	struct trove_cursor cur[MAX_CURSORS];
	unsigned ncur;
	uint64_t tick;

	int broken;
	char why[WHY_LEN];

	_Atomic uint64_t inflated, fetched, fetches, restarts;
};

/*
 * Checkpoints.
 */

static void points_free(struct trove_point *pts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(pts[i].zwin);
	free(pts);
}

/* The last checkpoint at or before off, or NULL. */
static const struct trove_point *point_at(const struct bfs_trove_reader *r,
					  uint64_t off)
{
	size_t lo = 0, hi = r->npts, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r->pts[mid].out <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &r->pts[lo - 1] : NULL;
}

static uint64_t frontier(const struct bfs_trove_reader *r)
{
	return r->npts ? r->pts[r->npts - 1].out : 0;
}

/* Keep memory bounded on huge objects: drop every other checkpoint and
 * double the interval, which keeps the spacing even. */
static void points_thin(struct bfs_trove_reader *r)
{
	size_t i, j = 0;

	for (i = 0; i < r->npts; i++) {
		if (i % 2)
			r->pts[j++] = r->pts[i];
		else
			free(r->pts[i].zwin);
	}
	r->npts = j;
	r->interval *= 2;
}

/* Steals pt->zwin on success. */
static int points_add(struct bfs_trove_reader *r, struct trove_point *pt)
{
	struct trove_point *p;
	size_t cap;

	if (r->npts >= r->max_points)
		points_thin(r);
	if (r->npts == r->cap) {
		cap = r->cap ? 2 * r->cap : 64;
		p = realloc(r->pts, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->pts = p;
		r->cap = cap;
	}
	r->pts[r->npts++] = *pt;
	return 0;
}

/* The decoder's hook, from a cursor's thread (lock not held). */
static void reader_on_point(void *arg, struct bfs_trove_dec *d, int kind)
{
	struct bfs_trove_reader *r = arg;
	struct trove_point pt;
	uint64_t out = bfs_trove_dec_total(d);

	pthread_mutex_lock(&r->lock);
	/* Only the cursor at the frontier adds: others decode what the
	 * list already covers. */
	if (!r->complete && out >= frontier(r) + r->interval &&
	    !trove_dec_point(d, kind, &pt) && points_add(r, &pt))
		free(pt.zwin);
	trove_dec_set_next(d, r->complete ? UINT64_MAX
					  : frontier(r) + r->interval);
	pthread_mutex_unlock(&r->lock);
}

/*
 * History: the cursor's owner only.
 */

/* Append n decoded bytes (those just before the new pos). */
static void hist_put(struct trove_cursor *c, const uint8_t *p, size_t n)
{
	size_t k;

	if (!c->hist || !n)
		return;
	if (n >= HIST_CAP) {
		memcpy(c->hist, p + n - HIST_CAP, HIST_CAP);
		c->hist_head = 0;
		c->hist_len = HIST_CAP;
		return;
	}
	k = HIST_CAP - c->hist_head < n ? HIST_CAP - c->hist_head : n;
	memcpy(c->hist + c->hist_head, p, k);
	memcpy(c->hist, p + k, n - k);
	c->hist_head = (c->hist_head + n) % HIST_CAP;
	c->hist_len = c->hist_len + n < HIST_CAP ? c->hist_len + n : HIST_CAP;
}

/* Copy [off, off + n), which lies in [pos - hist_len, pos). */
static void hist_get(const struct trove_cursor *c, uint64_t off, uint8_t *out,
		     size_t n)
{
	size_t back = (size_t)(c->pos - off), i, k;

	i = (c->hist_head + HIST_CAP - back) % HIST_CAP;
	k = HIST_CAP - i < n ? HIST_CAP - i : n;
	memcpy(out, c->hist + i, k);
	memcpy(out + k, c->hist, n - k);
}

/*
 * Prefetch: a cursor's slot and helper thread.
 */

static void *pf_main(void *arg)
{
	struct trove_cursor *c = arg;
	struct bfs_trove_reader *r = c->r;
	uint64_t off;
	size_t len;
	int ret;

	pthread_mutex_lock(&c->pf_lock);
	for (;;) {
		while (!c->pf_quit && c->pf_state != PF_QUEUED)
			pthread_cond_wait(&c->pf_cond, &c->pf_lock);
		if (c->pf_quit)
			break;
		c->pf_state = PF_RUNNING;
		off = c->pf_off;
		len = c->pf_len;
		pthread_mutex_unlock(&c->pf_lock);
		bfs_buf_reset(&c->pf_buf);
		ret = r->fetch(r->fetch_arg, off, len, &c->pf_buf);
		atomic_fetch_add(&r->fetches, 1);
		atomic_fetch_add(&r->fetched, c->pf_buf.len);
		pthread_mutex_lock(&c->pf_lock);
		c->pf_ret = ret;
		c->pf_state = PF_DONE;
		pthread_cond_broadcast(&c->pf_cond);
	}
	pthread_mutex_unlock(&c->pf_lock);
	return NULL;
}

/* Owner: queue the range after the one just fetched, unless the slot is
 * still busy (a stale prefetch running: then the next fetch is
 * synchronous). */
static void pf_start(struct bfs_trove_reader *r, struct trove_cursor *c)
{
	uint64_t left = r->obj_size - c->obj_next;

	if (c->nfetch < PF_AFTER || c->obj_next >= r->obj_size)
		return;
	pthread_mutex_lock(&c->pf_lock);
	if (c->pf_state == PF_RUNNING || c->pf_state == PF_QUEUED)
		goto out_unlock;
	if (!c->pf_started) {
		c->r = r;
		if (pthread_create(&c->pf_thread, NULL, pf_main, c))
			goto out_unlock; /* no prefetch: still correct */
		c->pf_started = 1;
	}
	c->pf_gen = c->gen;
	c->pf_off = c->obj_next;
	c->pf_len = (size_t)(left < c->fetch_cur ? left : c->fetch_cur);
	c->pf_state = PF_QUEUED;
	pthread_cond_broadcast(&c->pf_cond);
out_unlock:
	pthread_mutex_unlock(&c->pf_lock);
}

/* Owner: 1 with [obj_next, obj_next + n) in c->in if the slot holds (or
 * is fetching) exactly that for this generation; else 0, and the caller
 * fetches it itself (a failed prefetch is retried that way too). */
static int pf_take(struct trove_cursor *c, size_t n)
{
	struct bfs_buf t;
	int took = 0;

	pthread_mutex_lock(&c->pf_lock);
	if (c->pf_state == PF_IDLE || c->pf_gen != c->gen ||
	    c->pf_off != c->obj_next || c->pf_len != n)
		goto out_unlock;
	while (c->pf_state != PF_DONE)
		pthread_cond_wait(&c->pf_cond, &c->pf_lock);
	if (!c->pf_ret && c->pf_buf.len == n) {
		t = c->in;
		c->in = c->pf_buf;
		c->pf_buf = t;
		took = 1;
	}
	c->pf_state = PF_IDLE;
out_unlock:
	pthread_mutex_unlock(&c->pf_lock);
	return took;
}

/* Under r->lock, c idle: a new generation; a prefetch for the old one
 * is dropped, or ignored once it finishes.  Never waits for it. */
static void pf_drop(struct trove_cursor *c)
{
	pthread_mutex_lock(&c->pf_lock);
	c->gen++;
	if (c->pf_state == PF_QUEUED || c->pf_state == PF_DONE)
		c->pf_state = PF_IDLE;
	pthread_mutex_unlock(&c->pf_lock);
}

/* Stop c's helper, after the fetch it may be running. */
static void pf_stop(struct trove_cursor *c)
{
	if (!c->pf_started)
		return;
	pthread_mutex_lock(&c->pf_lock);
	c->pf_quit = 1;
	pthread_cond_broadcast(&c->pf_cond);
	pthread_mutex_unlock(&c->pf_lock);
	pthread_join(c->pf_thread, NULL);
	c->pf_started = 0;
}

/*
 * Cursors.
 */

/* The first fetch after a (re)start. */
static size_t fetch_first(const struct bfs_trove_reader *r)
{
	return r->fetch_size / 4 > MIN_FETCH ? r->fetch_size / 4 : MIN_FETCH;
}

/* Under r->lock: start c again at pt (NULL: at byte 0). */
static int cursor_restart(struct bfs_trove_reader *r, struct trove_cursor *c,
			  const struct trove_point *pt)
{
	uLongf wlen = TROVE_WINDOW;
	uint8_t *win = NULL;
	int ret;

	pf_drop(c);
	c->nfetch = 0;
	c->fetch_cur = fetch_first(r);
	bfs_trove_dec_free(c->dec);
	c->dec = NULL;
	c->eof = 0;
	c->hist_len = c->hist_head = 0;
	if (!c->scratch)
		c->scratch = malloc(SCRATCH);
	if (!c->hist)
		c->hist = malloc(HIST_CAP);
	if (!c->scratch || !c->hist)
		return -ENOMEM;
	if (pt && pt->win_len) {
		win = malloc(TROVE_WINDOW);
		if (!win)
			return -ENOMEM;
		if (uncompress(win, &wlen, pt->zwin, pt->zwin_len) != Z_OK ||
		    wlen != pt->win_len) {
			free(win);
			return -EIO;
		}
	}
	ret = trove_dec_new_at(r->encrypted ? &r->keys : NULL, pt, win, &c->dec,
			       &c->obj_next);
	free(win);
	if (ret)
		return ret;
	trove_dec_set_hook(c->dec, reader_on_point, r,
			   r->complete ? UINT64_MAX
				       : frontier(r) + r->interval);
	c->pos = pt ? pt->out : 0;
	c->from_zero = !pt;
	bfs_buf_reset(&c->in);
	c->in_pos = 0;
	r->restarts++;
	return 0;
}

/* Idle cursors to restart, best first: never started, at the end, then
 * least recently used. */
static int spare_better(const struct trove_cursor *a,
			const struct trove_cursor *b)
{
	int ra = a->dec ? (a->eof ? 1 : 2) : 0;
	int rb = b->dec ? (b->eof ? 1 : 2) : 0;

	if (ra != rb)
		return ra < rb;
	return a->used < b->used;
}

/*
 * Under r->lock: the cursor for a read at off, or NULL to wait.  An idle
 * cursor with off in its history serves it from there; a busy one that
 * will have off in its history is waited for.  Else a cursor at or
 * before off but not before the nearest checkpoint decodes forward (if
 * it is busy, waiting for it beats decoding the same bytes twice); else
 * the best spare restarts at that checkpoint (*restart set).
 */
static struct trove_cursor *cursor_pick(struct bfs_trove_reader *r,
					uint64_t off,
					const struct trove_point **pt,
					int *restart)
{
	const struct trove_point *p = point_at(r, off);
	uint64_t base = p ? p->out : 0, at, best_at = 0, lo;
	struct trove_cursor *best = NULL, *spare = NULL, *c;
	unsigned i;

	for (i = 0; i < r->ncur; i++) {
		c = &r->cur[i];
		/* The owner of a busy cursor changes pos, eof and its
		 * history unlocked: only lo and until say where they go. */
		if (c->busy) {
			at = c->until;
			lo = at - c->lo > HIST_CAP ? at - HIST_CAP : c->lo;
			if (off < at && off >= lo) {
				*restart = 0;
				return NULL;
			}
		} else {
			at = c->pos;
			if (!spare || spare_better(c, spare))
				spare = c;
			if (!c->dec)
				continue;
			if (off < at && off >= at - c->hist_len) {
				*restart = 0;
				return c;
			}
			if (c->eof)
				continue;
		}
		if (at <= off && at >= base && (!best || at > best_at)) {
			best = c;
			best_at = at;
		}
	}
	if (best) {
		*restart = 0;
		return best->busy ? NULL : best;
	}
	*restart = 1;
	*pt = p;
	return spare;
}

/* Owner: the next range into c->in once it is used up, from the
 * prefetch slot or fetched now; then the next prefetch. */
static int cursor_input(struct bfs_trove_reader *r, struct trove_cursor *c,
			char *why)
{
	size_t n;
	int ret;

	if (c->in_pos < c->in.len || c->obj_next >= r->obj_size)
		return 0;
	n = (size_t)(r->obj_size - c->obj_next < c->fetch_cur
			     ? r->obj_size - c->obj_next
			     : c->fetch_cur);
	c->in_pos = 0;
	if (!pf_take(c, n)) {
		bfs_buf_reset(&c->in);
		ret = r->fetch(r->fetch_arg, c->obj_next, n, &c->in);
		atomic_fetch_add(&r->fetches, 1);
		atomic_fetch_add(&r->fetched, c->in.len);
		if (!ret && c->in.len != n)
			ret = -EIO;
		if (ret) {
			snprintf(why, WHY_LEN,
				 "cannot read '%s' at offset %llu: %s", r->name,
				 (unsigned long long)c->obj_next,
				 c->in.len != n ? "wrong length"
						: strerror(-ret));
			bfs_buf_reset(&c->in);
			return ret;
		}
	}
	c->obj_next += n;
	c->nfetch++;
	c->fetch_cur = 2 * c->fetch_cur < r->fetch_size ? 2 * c->fetch_cur
							: r->fetch_size;
	pf_start(r, c);
	return 0;
}

/* A cursor reached the verified end: now the size (and, from byte 0, the
 * MD5) is known.  Anything contradicting what we knew breaks the
 * reader. */
static int reader_ended(struct bfs_trove_reader *r, struct trove_cursor *c,
			char *why)
{
	uint8_t md5[16];
	int have_md5;

	c->eof = 1;
	have_md5 = c->from_zero && !bfs_trove_dec_md5(c->dec, md5);
	pthread_mutex_lock(&r->lock);
	if (r->complete && r->size != c->pos)
		snprintf(why, WHY_LEN, "'%s' ends at %llu, not at %llu",
			 r->name, (unsigned long long)c->pos,
			 (unsigned long long)r->size);
	else if (have_md5 && r->have_expect && memcmp(md5, r->expect, 16))
		snprintf(why, WHY_LEN, "md5 of '%s' does not match its etag",
			 r->name);
	else if (have_md5 && r->md5_known && memcmp(md5, r->md5, 16))
		snprintf(why, WHY_LEN, "md5 of '%s' differs from its index",
			 r->name);
	else
		why[0] = 0;
	if (!why[0]) {
		r->complete = 1;
		r->size = c->pos;
		if (have_md5) {
			memcpy(r->md5, md5, 16);
			r->md5_known = 1;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return why[0] ? -EIO : 0;
}

/* Say which object a decoder's message is about. */
static void name_why(const struct bfs_trove_reader *r, char *why)
{
	char msg[WHY_LEN];

	memcpy(msg, why, WHY_LEN);
	msg[WHY_LEN - 1] = 0;
	/* Bounded: a message is one line, the name may be long. */
	snprintf(why, WHY_LEN, "'%.80s': %.160s", r->name, msg);
}

/*
 * Decode with c (busy: no lock held) until [off, off + len) is in out;
 * with to_end, on to the verified end.  *integrity is set when an error
 * says the object is bad (not that fetching it failed).
 */
static ssize_t cursor_read(struct bfs_trove_reader *r, struct trove_cursor *c,
			   uint64_t off, size_t len, int to_end, uint8_t *out,
			   char *why, int *integrity)
{
	uint64_t end = off + len;
	const uint8_t *in;
	size_t cap, got, inlen;
	uint8_t *dst;
	int ret, stalls = 0;

	while ((c->pos < end || to_end) && !c->eof) {
		ret = cursor_input(r, c, why);
		if (ret)
			return ret;
		if (c->pos >= off && c->pos < end) {
			dst = out + (c->pos - off);
			cap = (size_t)(end - c->pos);
		} else {
			dst = c->scratch;
			cap = c->pos < off && off - c->pos < SCRATCH
				      ? (size_t)(off - c->pos)
				      : SCRATCH;
		}
		in = c->in.data + c->in_pos;
		inlen = c->in.len - c->in_pos;
		ret = bfs_trove_dec_step(c->dec, &in, &inlen,
					 c->obj_next == r->obj_size, dst, cap,
					 &got, why, WHY_LEN);
		stalls = got || inlen != c->in.len - c->in_pos ? 0 : stalls + 1;
		c->in_pos = c->in.len - inlen;
		c->pos += got;
		hist_put(c, dst, got);
		atomic_fetch_add(&r->inflated, got);
		if (ret < 0)
			name_why(r, why);
		if (ret == BFS_TROVE_END)
			ret = reader_ended(r, c, why);
		if (!ret && stalls > 2) {
			snprintf(why, WHY_LEN, "'%s': decoder stalled",
				 r->name);
			ret = -EIO;
		}
		if (ret < 0) {
			*integrity = ret == -EIO;
			return ret;
		}
	}
	if (c->pos <= off)
		return 0;
	return (ssize_t)((c->pos < end ? c->pos : end) - off);
}

/* Under r->lock: the read on c is over. */
static void cursor_release(struct bfs_trove_reader *r, struct trove_cursor *c,
			   ssize_t n, int integrity, const char *why)
{
	c->busy = 0;
	c->used = ++r->tick;
	if (n < 0) {
		/* A failed decoder is never resumed. */
		bfs_trove_dec_free(c->dec);
		c->dec = NULL;
		c->hist_len = 0;
	}
	if (n < 0 && integrity && !r->broken) {
		r->broken = 1;
		snprintf(r->why, sizeof(r->why), "%s", why);
		bfs_err("%s", why);
		/* Whatever the index said, it is not to be trusted now. */
		if (r->index_path && unlink(r->index_path) && errno != ENOENT)
			bfs_warn("cannot remove trove index '%s': %s",
				 r->index_path, strerror(errno));
	}
	pthread_cond_broadcast(&r->idle);
}

static int index_save(struct bfs_trove_reader *r);

/* Write the index once it is complete, and again when the MD5 becomes
 * known; one writer at a time, outside the lock. */
static void reader_maybe_save(struct bfs_trove_reader *r)
{
	int complete, md5_known;

	pthread_mutex_lock(&r->lock);
	complete = r->complete;
	md5_known = r->md5_known;
	if (!r->index_path || r->broken || r->saving || !complete ||
	    (r->saved_complete && r->saved_md5 >= md5_known)) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	r->saving = 1;
	pthread_mutex_unlock(&r->lock);
	/* The checkpoint list no longer changes once complete. */
	if (index_save(r))
		complete = md5_known = 1; /* do not retry on every read */
	pthread_mutex_lock(&r->lock);
	r->saving = 0;
	r->saved_complete = complete;
	r->saved_md5 = md5_known;
	pthread_mutex_unlock(&r->lock);
}

/* Under r->lock: claim a cursor for [off, off + *len), waiting for one
 * if need be.  *len is clipped to the size.  NULL with *ret set (0: past
 * the end). */
static struct trove_cursor *reader_claim(struct bfs_trove_reader *r,
					 uint64_t off, size_t *len, int *ret,
					 char *why)
{
	const struct trove_point *pt = NULL;
	struct trove_cursor *c;
	int restart = 0;

	for (;;) {
		*ret = 0;
		if (r->broken) {
			snprintf(why, WHY_LEN, "%s", r->why);
			*ret = -EIO;
			return NULL;
		}
		if (r->complete && off >= r->size)
			return NULL;
		if (r->complete && *len > r->size - off)
			*len = (size_t)(r->size - off);
		c = off < FAR_OFF ? cursor_pick(r, off, &pt, &restart) : NULL;
		if (c)
			break;
		pthread_cond_wait(&r->idle, &r->lock);
	}
	if (restart) {
		*ret = cursor_restart(r, c, pt);
		if (*ret) {
			snprintf(why, WHY_LEN, "cannot start decoding '%s': %s",
				 r->name, strerror(-*ret));
			return NULL;
		}
	}
	c->busy = 1;
	c->lo = c->pos - c->hist_len;
	c->until = off + *len > c->pos ? off + *len : c->pos;
	return c;
}

ssize_t bfs_trove_read(struct bfs_trove_reader *r, uint64_t off, size_t len,
		       void *out, char *err, size_t errlen)
{
	char why[WHY_LEN] = "";
	struct trove_cursor *c;
	int ret, integrity = 0, to_end;
	ssize_t n;

	if (off >= FAR_OFF)
		return -EINVAL;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (len > FAR_OFF - off)
		len = (size_t)(FAR_OFF - off);
	if (!len)
		return 0;
	pthread_mutex_lock(&r->lock);
	c = reader_claim(r, off, &len, &ret, why);
	/* A read that reaches the end checks the last trailer too. */
	to_end = r->complete && off + len >= r->size;
	pthread_mutex_unlock(&r->lock);
	if (!c) {
		if (ret)
			bfs_errf(err, errlen, "%s", why);
		return ret;
	}
	/* Just behind the cursor: from its history (cursor_pick made sure
	 * it covers off), the rest decoded on. */
	if (c->pos > off)
		hist_get(c, off, out,
			 (size_t)((c->pos < off + len ? c->pos : off + len) -
				  off));
	n = cursor_read(r, c, off, len, to_end, out, why, &integrity);
	pthread_mutex_lock(&r->lock);
	cursor_release(r, c, n, integrity, why);
	pthread_mutex_unlock(&r->lock);
	if (n < 0)
		bfs_errf(err, errlen, "%s", why);
	else
		reader_maybe_save(r);
	return n;
}

int bfs_trove_reader_verify(struct bfs_trove_reader *r, char *err,
			    size_t errlen)
{
	char why[WHY_LEN] = "";
	struct trove_cursor *c = NULL;
	int ret = 0, integrity = 0;
	ssize_t n;
	unsigned i;

	pthread_mutex_lock(&r->lock);
	while (!r->broken && !c) {
		for (i = 0; i < r->ncur; i++)
			if (!r->cur[i].busy &&
			    (!c || spare_better(&r->cur[i], c)))
				c = &r->cur[i];
		if (!c)
			pthread_cond_wait(&r->idle, &r->lock);
	}
	if (r->broken) {
		snprintf(why, WHY_LEN, "%s", r->why);
		ret = -EIO;
	} else {
		ret = cursor_restart(r, c, NULL);
		if (ret)
			snprintf(why, WHY_LEN, "cannot start decoding '%s'",
				 r->name);
	}
	if (!ret) {
		c->busy = 1;
		c->lo = c->pos;
		c->until = FAR_OFF;
	}
	pthread_mutex_unlock(&r->lock);
	if (ret) {
		bfs_errf(err, errlen, "%s", why);
		return ret;
	}
	n = cursor_read(r, c, FAR_OFF, 0, 1, NULL, why, &integrity);
	pthread_mutex_lock(&r->lock);
	cursor_release(r, c, n, integrity, why);
	pthread_mutex_unlock(&r->lock);
	if (n < 0) {
		bfs_errf(err, errlen, "%s", why);
		return (int)n;
	}
	reader_maybe_save(r);
	return 0;
}

/*
 * The index file (docs/FORMAT.md, "Trove index files").
 */

static const uint8_t index_magic[8] = {'B', 'F', 'S', 'T', 'R', 'O', 'V', 'E'};
#define INDEX_VERSION  1
#define INDEX_HEAD     88
#define INDEX_POINT    40
#define INDEX_STR_MAX  4096
#define INDEX_MAX      (1ull << 30)
#define INDEX_FLAG_MD5 1

struct index_ident {
	const char *name, *etag;
	uint64_t obj_size;
};

struct index_data {
	uint64_t size, interval;
	int kdf;
	uint8_t salt[BFS_TROVE_SALT_LEN];
	int md5_known;
	uint8_t md5[16];
	struct trove_point *pts;
	size_t npts;
};

static void put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int index_put_point(struct bfs_buf *b, const struct trove_point *pt)
{
	uint8_t rec[INDEX_POINT] = {0};

	put_le(rec, pt->out, 8);
	put_le(rec + 8, pt->in, 8);
	put_le(rec + 16, pt->member_out, 8);
	put_le(rec + 24, pt->crc, 4);
	rec[28] = pt->bits;
	rec[29] = pt->kind;
	put_le(rec + 32, pt->win_len, 4);
	put_le(rec + 36, pt->zwin_len, 4);
	if (bfs_buf_append(b, rec, sizeof(rec)))
		return -ENOMEM;
	return bfs_buf_append(b, pt->zwin, pt->zwin_len);
}

/* Serialize r (complete: the list no longer changes). */
static int index_build(struct bfs_trove_reader *r, struct bfs_buf *b)
{
	uint8_t head[INDEX_HEAD] = {0}, sum[32];
	size_t nlen = strlen(r->name), elen = strlen(r->etag), i;
	int ret;

	memcpy(head, index_magic, 8);
	put_le(head + 8, INDEX_VERSION, 4);
	pthread_mutex_lock(&r->lock);
	put_le(head + 12, r->md5_known ? INDEX_FLAG_MD5 : 0, 4);
	if (r->md5_known)
		memcpy(head + 64, r->md5, 16);
	pthread_mutex_unlock(&r->lock);
	put_le(head + 16, r->obj_size, 8);
	put_le(head + 24, r->size, 8);
	put_le(head + 32, r->interval, 8);
	put_le(head + 40, nlen, 4);
	put_le(head + 44, elen, 4);
	head[48] = (uint8_t)(r->encrypted ? r->keys.kdf : BFS_TROVE_KDF_NONE);
	if (r->encrypted)
		memcpy(head + 56, r->keys.salt, BFS_TROVE_SALT_LEN);
	put_le(head + 80, r->npts, 8);
	ret = bfs_buf_append(b, head, sizeof(head));
	if (!ret)
		ret = bfs_buf_append(b, r->name, nlen);
	if (!ret)
		ret = bfs_buf_append(b, r->etag, elen);
	for (i = 0; !ret && i < r->npts; i++)
		ret = index_put_point(b, &r->pts[i]);
	if (ret)
		return ret;
	if (!EVP_Digest(b->data, b->len, sum, NULL, EVP_sha256(), NULL))
		return -EIO;
	return bfs_buf_append(b, sum, sizeof(sum));
}

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, ret = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

/* Write data to path atomically: a temporary beside it, fsync, rename. */
static int write_atomic(const char *path, const void *data, size_t len)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 16);
	int fd, ret;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	ret = bfs_write_all(fd, data, len);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	else
		ret = fsync_dir_of(path);
out_free:
	free(tmp);
	return ret;
}

static int index_save(struct bfs_trove_reader *r)
{
	struct bfs_buf b;
	int ret;

	bfs_buf_init(&b, INDEX_MAX);
	ret = index_build(r, &b);
	if (!ret)
		ret = write_atomic(r->index_path, b.data, b.len);
	if (ret)
		bfs_warn("cannot write trove index '%s': %s", r->index_path,
			 strerror(-ret));
	else
		bfs_debug("wrote trove index '%s' (%zu checkpoints)",
			  r->index_path, r->npts);
	bfs_buf_release(&b);
	return ret;
}

/* One checkpoint record, checked against the previous one. */
static int index_get_point(const uint8_t *p, size_t len, size_t *off,
			   const struct trove_point *prev, uint64_t size,
			   uint64_t obj_size, struct trove_point *pt)
{
	const uint8_t *rec = p + *off;

	if (len - *off < INDEX_POINT)
		return -EINVAL;
	memset(pt, 0, sizeof(*pt));
	pt->out = get_le(rec, 8);
	pt->in = get_le(rec + 8, 8);
	pt->member_out = get_le(rec + 16, 8);
	pt->crc = (uint32_t)get_le(rec + 24, 4);
	pt->bits = rec[28];
	pt->kind = rec[29];
	pt->win_len = (uint32_t)get_le(rec + 32, 4);
	pt->zwin_len = (uint32_t)get_le(rec + 36, 4);
	*off += INDEX_POINT;
	if (pt->out == 0 || pt->out >= size || pt->in >= obj_size ||
	    (prev && (pt->out <= prev->out || pt->in <= prev->in)) ||
	    pt->bits > 7 || pt->kind > TROVE_POINT_MEMBER ||
	    pt->member_out > pt->out ||
	    pt->win_len != (pt->member_out < TROVE_WINDOW ? pt->member_out
							  : TROVE_WINDOW) ||
	    pt->zwin_len > compressBound(TROVE_WINDOW) ||
	    len - *off < pt->zwin_len)
		return -EINVAL;
	if (pt->kind == TROVE_POINT_MEMBER &&
	    (pt->bits || pt->member_out || pt->crc || pt->zwin_len))
		return -EINVAL;
	if (pt->kind == TROVE_POINT_BLOCK && !pt->zwin_len != !pt->win_len)
		return -EINVAL;
	if (pt->zwin_len) {
		pt->zwin = malloc(pt->zwin_len);
		if (!pt->zwin)
			return -ENOMEM;
		memcpy(pt->zwin, p + *off, pt->zwin_len);
	}
	*off += pt->zwin_len;
	return 0;
}

static int index_get_points(const uint8_t *p, size_t len, size_t off,
			    uint64_t obj_size, struct index_data *d)
{
	uint64_t n = get_le(p + 80, 8), i;
	struct trove_point *pts;
	int ret = 0;

	if (n > (len - off) / INDEX_POINT)
		return -EINVAL;
	pts = calloc(n ? n : 1, sizeof(*pts));
	if (!pts)
		return -ENOMEM;
	for (i = 0; !ret && i < n; i++)
		ret = index_get_point(p, len, &off, i ? &pts[i - 1] : NULL,
				      d->size, obj_size, &pts[i]);
	if (!ret && off != len)
		ret = -EINVAL;
	if (ret) {
		points_free(pts, n);
		return ret;
	}
	d->pts = pts;
	d->npts = n;
	return 0;
}

/* Parse an index whose checksum was verified; -ESTALE if it describes
 * another object, -EINVAL if it is malformed. */
static int index_parse(const uint8_t *p, size_t len,
		       const struct index_ident *id, int want_points,
		       struct index_data *d)
{
	uint64_t nlen, elen;

	if (len < INDEX_HEAD || memcmp(p, index_magic, 8))
		return -EINVAL;
	if (get_le(p + 8, 4) != INDEX_VERSION)
		return -EPROTO;
	nlen = get_le(p + 40, 4);
	elen = get_le(p + 44, 4);
	if (nlen > INDEX_STR_MAX || elen > INDEX_STR_MAX ||
	    len - INDEX_HEAD < nlen + elen)
		return -EINVAL;
	if (nlen != strlen(id->name) || elen != strlen(id->etag) ||
	    memcmp(p + INDEX_HEAD, id->name, nlen) ||
	    memcmp(p + INDEX_HEAD + nlen, id->etag, elen) ||
	    get_le(p + 16, 8) != id->obj_size)
		return -ESTALE;
	memset(d, 0, sizeof(*d));
	d->size = get_le(p + 24, 8);
	d->interval = get_le(p + 32, 8);
	d->md5_known = get_le(p + 12, 4) & INDEX_FLAG_MD5;
	memcpy(d->md5, p + 64, 16);
	d->kdf = p[48];
	memcpy(d->salt, p + 56, BFS_TROVE_SALT_LEN);
	if (d->kdf > BFS_TROVE_KDF_BTK_MD5)
		return -EINVAL;
	if (!want_points)
		return 0;
	return index_get_points(p, len, INDEX_HEAD + nlen + elen, id->obj_size,
				d);
}

static int read_file(const char *path, struct bfs_buf *b)
{
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < 0 ||
	    (uint64_t)st.st_size > INDEX_MAX) {
		close(fd);
		return -EINVAL;
	}
	ret = bfs_buf_reserve(b, (size_t)st.st_size);
	while (!ret && b->len < (size_t)st.st_size) {
		n = read(fd, b->data + b->len, (size_t)st.st_size - b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = n < 0 ? -errno : -EINVAL;
		else
			b->len += (size_t)n;
	}
	close(fd);
	return ret;
}

/* Read and check an index: 0, or -errno (never trusted when not 0). */
static int index_read(const char *path, const struct index_ident *id,
		      int want_points, struct index_data *d)
{
	uint8_t sum[32];
	struct bfs_buf b;
	int ret;

	bfs_buf_init(&b, INDEX_MAX);
	ret = read_file(path, &b);
	if (ret)
		goto out;
	if (b.len < INDEX_HEAD + sizeof(sum) ||
	    !EVP_Digest(b.data, b.len - sizeof(sum), sum, NULL, EVP_sha256(),
			NULL) ||
	    memcmp(sum, b.data + b.len - sizeof(sum), sizeof(sum))) {
		ret = -EBADMSG;
		goto out;
	}
	ret = index_parse(b.data, b.len - sizeof(sum), id, want_points, d);
out:
	if (ret == -EBADMSG || ret == -EINVAL)
		bfs_warn("trove index '%s' is corrupt: ignored, rebuilding",
			 path);
	else if (ret && ret != -ENOENT)
		bfs_debug("trove index '%s' not used: %s", path,
			  strerror(-ret));
	bfs_buf_release(&b);
	return ret;
}

int bfs_trove_index_size(const char *index_path, const char *name,
			 uint64_t obj_size, const char *etag, uint64_t *size)
{
	struct index_ident id = {name, etag ? etag : "", obj_size};
	struct index_data d;

	if (index_read(index_path, &id, 0, &d))
		return -ENOENT;
	*size = d.size;
	return 0;
}

static void reader_load_index(struct bfs_trove_reader *r, int *kdf,
			      uint8_t salt[BFS_TROVE_SALT_LEN])
{
	struct index_ident id = {r->name, r->etag, r->obj_size};
	struct index_data d;

	*kdf = BFS_TROVE_KDF_AUTO;
	if (index_read(r->index_path, &id, 1, &d))
		return;
	if ((d.kdf != BFS_TROVE_KDF_NONE) != r->encrypted) {
		points_free(d.pts, d.npts);
		return;
	}
	r->pts = d.pts;
	r->npts = r->cap = d.npts;
	r->complete = 1;
	r->size = d.size;
	r->md5_known = d.md5_known;
	memcpy(r->md5, d.md5, 16);
	if (d.interval > r->interval)
		r->interval = d.interval;
	r->index_loaded = r->saved_complete = 1;
	r->saved_md5 = d.md5_known;
	*kdf = d.kdf;
	memcpy(salt, d.salt, BFS_TROVE_SALT_LEN);
}

/* Forget a loaded index (it belongs to another encryption run). */
static void reader_drop_index(struct bfs_trove_reader *r)
{
	points_free(r->pts, r->npts);
	r->pts = NULL;
	r->npts = r->cap = 0;
	r->complete = r->md5_known = 0;
	r->index_loaded = r->saved_complete = r->saved_md5 = 0;
}

/*
 * Opening.
 */

static int fetch_exact(struct bfs_trove_reader *r, uint64_t off, size_t len,
		       struct bfs_buf *b)
{
	int ret;

	bfs_buf_init(b, len);
	ret = r->fetch(r->fetch_arg, off, len, b);
	if (!ret && b->len != len)
		ret = -EIO;
	if (ret)
		bfs_buf_release(b);
	return ret;
}

/* Fetch the head of an encrypted object and find its key derivation. */
static int reader_keys(struct bfs_trove_reader *r, const char *pass, int kdf,
		       int index_kdf,
		       const uint8_t index_salt[BFS_TROVE_SALT_LEN], char *err,
		       size_t errlen)
{
	struct bfs_buf head;
	int ret, try = kdf;

	if (r->obj_size < BFS_TROVE_HEAD_LEN) {
		bfs_errf(err, errlen, "'%s' is truncated: %llu bytes", r->name,
			 (unsigned long long)r->obj_size);
		return -EIO;
	}
	ret = fetch_exact(r, 0, BFS_TROVE_HEAD_LEN, &head);
	if (ret) {
		bfs_errf(err, errlen, "cannot read '%s': %s", r->name,
			 strerror(-ret));
		return ret;
	}
	/* A recorded derivation skips the trial. */
	if (try == BFS_TROVE_KDF_AUTO && index_kdf > 0)
		try = index_kdf;
	ret = bfs_trove_kdf_detect(pass, try, head.data, &r->keys.kdf,
				   r->keys.key, r->keys.iv, err, errlen);
	if (ret == -EKEYREJECTED && try != kdf)
		ret = bfs_trove_kdf_detect(pass, kdf, head.data, &r->keys.kdf,
					   r->keys.key, r->keys.iv, err,
					   errlen);
	if (!ret)
		memcpy(r->keys.salt, head.data + 8, BFS_TROVE_SALT_LEN);
	if (!ret && r->index_loaded &&
	    (r->keys.kdf != index_kdf ||
	     memcmp(r->keys.salt, index_salt, BFS_TROVE_SALT_LEN)))
		reader_drop_index(r);
	bfs_buf_release(&head);
	return ret;
}

static int reader_params(struct bfs_trove_reader *r,
			 const struct bfs_trove_params *p)
{
	unsigned i;

	if (!p->name || !p->fetch || !*p->name ||
	    (p->interval && p->interval < MIN_INTERVAL) ||
	    p->cursors > MAX_CURSORS ||
	    (p->max_points && p->max_points < MIN_MAX_POINTS) ||
	    (p->fetch_size &&
	     (p->fetch_size < MIN_FETCH || p->fetch_size > MAX_FETCH)) ||
	    (p->kdf != BFS_TROVE_KDF_AUTO && !bfs_trove_kdf_name(p->kdf)))
		return -EINVAL;
	if (p->expect_md5 && (strlen(p->expect_md5) != 32 ||
			      bfs_unhex(p->expect_md5, r->expect, 16)))
		return -EINVAL;
	r->have_expect = !!p->expect_md5;
	r->name = strdup(p->name);
	r->etag = strdup(p->etag ? p->etag : "");
	r->index_path = p->index_path ? strdup(p->index_path) : NULL;
	if (!r->name || !r->etag || (p->index_path && !r->index_path))
		return -ENOMEM;
	if (strlen(r->name) > INDEX_STR_MAX || strlen(r->etag) > INDEX_STR_MAX)
		return -EINVAL;
	r->obj_size = p->size;
	r->encrypted = !!p->pass;
	r->kdf = p->kdf ? p->kdf : BFS_TROVE_KDF_AUTO;
	r->keys.kdf = BFS_TROVE_KDF_NONE;
	r->fetch = p->fetch;
	r->fetch_arg = p->fetch_arg;
	r->fetch_size = p->fetch_size ? p->fetch_size : DEF_FETCH;
	r->interval = p->interval ? p->interval : DEF_INTERVAL;
	r->max_points = p->max_points ? p->max_points : DEF_MAX_POINTS;
	r->ncur = p->cursors ? p->cursors : DEF_CURSORS;
	for (i = 0; i < r->ncur; i++) {
		bfs_buf_init(&r->cur[i].in, r->fetch_size);
		bfs_buf_init(&r->cur[i].pf_buf, r->fetch_size);
	}
	return 0;
}

int bfs_trove_reader_open(const struct bfs_trove_params *p,
			  struct bfs_trove_reader **out, char *err,
			  size_t errlen)
{
	uint8_t salt[BFS_TROVE_SALT_LEN] = {0};
	struct bfs_trove_reader *r;
	int ret, index_kdf = BFS_TROVE_KDF_AUTO;
	unsigned i;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->idle, NULL);
	for (i = 0; i < MAX_CURSORS; i++) {
		pthread_mutex_init(&r->cur[i].pf_lock, NULL);
		pthread_cond_init(&r->cur[i].pf_cond, NULL);
	}
	ret = reader_params(r, p);
	if (ret) {
		bfs_errf(err, errlen, "bad parameters for trove object '%s'",
			 p->name ? p->name : "");
		goto out_free;
	}
	if (r->index_path)
		reader_load_index(r, &index_kdf, salt);
	if (r->encrypted) {
		ret = reader_keys(r, p->pass, r->kdf, index_kdf, salt, err,
				  errlen);
		if (ret)
			goto out_free;
	}
	*out = r;
	return 0;
out_free:
	bfs_trove_reader_free(r);
	return ret;
}

void bfs_trove_reader_free(struct bfs_trove_reader *r)
{
	unsigned i;

	if (!r)
		return;
	for (i = 0; i < MAX_CURSORS; i++) {
		/* No read runs, but a prefetch may: stop it first. */
		pf_stop(&r->cur[i]);
		bfs_trove_dec_free(r->cur[i].dec);
		bfs_buf_release(&r->cur[i].in);
		bfs_buf_release(&r->cur[i].pf_buf);
		free(r->cur[i].scratch);
		free(r->cur[i].hist);
		pthread_cond_destroy(&r->cur[i].pf_cond);
		pthread_mutex_destroy(&r->cur[i].pf_lock);
	}
	points_free(r->pts, r->npts);
	OPENSSL_cleanse(&r->keys, sizeof(r->keys));
	free(r->name);
	free(r->etag);
	free(r->index_path);
	pthread_cond_destroy(&r->idle);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/*
 * Information.
 */

int bfs_trove_reader_size(struct bfs_trove_reader *r, uint64_t *size)
{
	int known;

	pthread_mutex_lock(&r->lock);
	known = r->complete && !r->broken;
	if (known)
		*size = r->size;
	pthread_mutex_unlock(&r->lock);
	return known;
}

int bfs_trove_reader_kdf(struct bfs_trove_reader *r)
{
	return r->encrypted ? r->keys.kdf : BFS_TROVE_KDF_NONE;
}

int bfs_trove_reader_md5(struct bfs_trove_reader *r, uint8_t md5[16])
{
	int ret = -ENODATA;

	pthread_mutex_lock(&r->lock);
	if (r->md5_known) {
		memcpy(md5, r->md5, 16);
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void bfs_trove_reader_stats(struct bfs_trove_reader *r,
			    struct bfs_trove_stats *st)
{
	st->inflated = atomic_load(&r->inflated);
	st->fetched = atomic_load(&r->fetched);
	st->fetches = atomic_load(&r->fetches);
	pthread_mutex_lock(&r->lock);
	st->restarts = r->restarts;
	st->points = r->npts;
	st->index_loaded = r->index_loaded;
	pthread_mutex_unlock(&r->lock);
}

/* Decrypt the last blocks (the first of tail is their IV) and strip the
 * padding: the plaintext tail is left in tail, *len bytes. */
static int tail_decrypt(const struct trove_keys *k, const uint8_t *iv,
			uint8_t *tail, size_t *len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t plain[48];
	int n = 0, ret = -EIO;
	uint8_t pad;

	if (!c)
		return -ENOMEM;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, k->key, iv) == 1 &&
	    EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
	    EVP_DecryptUpdate(c, plain, &n, tail, (int)*len) == 1 &&
	    (size_t)n == *len) {
		pad = plain[n - 1];
		if (pad >= 1 && pad <= 16 && (size_t)n >= pad + 4u) {
			*len = (size_t)n - pad;
			memcpy(tail, plain, *len);
			ret = 0;
		}
	}
	OPENSSL_cleanse(plain, sizeof(plain));
	EVP_CIPHER_CTX_free(c);
	return ret;
}

int bfs_trove_reader_isize_hint(struct bfs_trove_reader *r, uint32_t *isize,
				char *err, size_t errlen)
{
	uint64_t ct = r->encrypted ? r->obj_size - 16 : 0, off;
	const uint8_t *iv = r->keys.iv;
	struct bfs_buf b;
	size_t len = 32;
	int ret;

	if (r->encrypted ? r->obj_size < 48 || ct % 16 : r->obj_size < 18) {
		bfs_errf(err, errlen, "'%s' is truncated", r->name);
		return -EIO;
	}
	/* Plain: the last 4 bytes.  Encrypted: two blocks hold at least 16
	 * bytes after any padding; the block before them is their IV. */
	off = !r->encrypted ? r->obj_size - 4 : ct > 32 ? r->obj_size - 48 : 16;
	ret = fetch_exact(r, off, (size_t)(r->obj_size - off), &b);
	if (ret) {
		bfs_errf(err, errlen, "cannot read '%s': %s", r->name,
			 strerror(-ret));
		return ret;
	}
	if (!r->encrypted) {
		*isize = (uint32_t)get_le(b.data, 4);
		goto out;
	}
	if (ct > 32)
		iv = b.data;
	ret = tail_decrypt(&r->keys, iv, b.data + b.len - 32, &len);
	if (ret)
		bfs_errf(err, errlen, "'%s' has bad padding", r->name);
	else
		*isize = (uint32_t)get_le(b.data + b.len - 32 + len - 4, 4);
out:
	bfs_buf_release(&b);
	return ret;
}
