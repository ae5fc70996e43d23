// SPDX-License-Identifier: Apache-2.0
/*
 * Headers of CouchDB's append-only .couch files, found and checked the
 * way couch_file.erl reads them (load_header/find_header): a block whose
 * prefix byte is 1, a 4-byte big-endian length, that many bytes with the
 * block prefixes they cross stripped, an MD5 of the term, the term.
 *
 * Two readers share one candidate parser: a backward search from a size
 * (the backup: where to cut a copy of a live file) and a forward,
 * streaming scan (verify: does a tar member end on a valid header).
 * A continuation block of a header always has prefix 0 (CouchDB writes
 * it so); a 1 there starts another header, so both readers drop the
 * candidate: they agree on every input.
 */
#include "couchdb_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define HDR_SIG	     16
#define HDR_MIN	     (HDR_SIG + 2) /* MD5 and the term's first two bytes */
#define FIND_WINDOW  (256 * BFS_COUCH_BLOCK)
#define CHECK_CHUNK  (64 * 1024)
#define TERM_VERSION 0x83 /* term_to_binary's version byte */
#define TERM_SMALL   0x68 /* SMALL_TUPLE_EXT */
#define TERM_LARGE   0x69 /* LARGE_TUPLE_EXT */

/* A header being read, its bytes fed in file order. */
struct couch_cand {
	uint64_t off; /* its block */
	uint64_t pos; /* file position of the next byte fed */
	uint32_t len; /* MD5 + term */
	uint32_t got; /* of len */
	unsigned nlen;
	uint8_t lenb[4];
	uint8_t sig[HDR_SIG];
	uint8_t term[2];
	EVP_MD_CTX *md5;
};

enum { CAND_MORE = 0, CAND_VALID = 1 };

static void cand_free(struct couch_cand *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->md5);
	free(c);
}

static struct couch_cand *cand_new(void)
{
	struct couch_cand *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->md5 = EVP_MD_CTX_new();
	if (!c->md5) {
		free(c);
		return NULL;
	}
	return c;
}

/* The prefix byte 1 at off (a block start) has been seen. */
static int cand_start(struct couch_cand *c, uint64_t off)
{
	c->off = off;
	c->pos = off + 1;
	c->len = c->got = 0;
	c->nlen = 0;
	return EVP_DigestInit_ex(c->md5, EVP_md5(), NULL) == 1 ? 0 : -ENOMEM;
}

static int cand_finish(struct couch_cand *c)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(c->md5, md, &n) != 1 || n != HDR_SIG)
		return -ENOMEM;
	if (memcmp(md, c->sig, HDR_SIG))
		return -EBADMSG;
	if (c->term[0] != TERM_VERSION ||
	    (c->term[1] != TERM_SMALL && c->term[1] != TERM_LARGE))
		return -EBADMSG;
	return CAND_VALID;
}

/* The payload bytes p[0..n) (no block prefix among them). */
static int cand_take(struct couch_cand *c, const uint8_t *p, size_t n)
{
	size_t s;

	if (c->got < HDR_SIG) {
		s = HDR_SIG - c->got < n ? HDR_SIG - c->got : n;
		memcpy(c->sig + c->got, p, s);
		c->got += (uint32_t)s;
		p += s;
		n -= s;
	}
	if (!n)
		return 0;
	/* the term's first bytes */
	for (s = 0; s < n && c->got - HDR_SIG + s < 2; s++)
		c->term[c->got - HDR_SIG + s] = p[s];
	c->got += (uint32_t)n;
	return EVP_DigestUpdate(c->md5, p, n) == 1 ? 0 : -ENOMEM;
}

/*
 * Feed bytes from file position c->pos: CAND_VALID when the header is
 * whole and checks, CAND_MORE when it needs more, -EBADMSG when it is not
 * a header.  *used: bytes consumed (a prefix 1 that ends the candidate is
 * left for the caller).
 */
static int cand_feed(struct couch_cand *c, const uint8_t *p, size_t n,
		     size_t *used)
{
	size_t i = 0, run, take;
	int rc;

	while (i < n) {
		if (c->pos % BFS_COUCH_BLOCK == 0) {
			if (p[i] != 0) {
				*used = i;
				return -EBADMSG;
			}
			i++;
			c->pos++;
			continue;
		}
		run = BFS_COUCH_BLOCK - c->pos % BFS_COUCH_BLOCK;
		if (run > n - i)
			run = n - i;
		if (c->nlen < 4) {
			take = 4 - c->nlen < run ? 4 - c->nlen : run;
			memcpy(c->lenb + c->nlen, p + i, take);
			c->nlen += (unsigned)take;
			if (c->nlen == 4) {
				c->len = (uint32_t)c->lenb[0] << 24 |
					 (uint32_t)c->lenb[1] << 16 |
					 (uint32_t)c->lenb[2] << 8 |
					 (uint32_t)c->lenb[3];
				if (c->len < HDR_MIN ||
				    c->len > BFS_COUCH_HEADER_MAX) {
					*used = i + take;
					return -EBADMSG;
				}
			}
		} else {
			take = c->len - c->got < run ? c->len - c->got : run;
			rc = cand_take(c, p + i, take);
			if (rc) {
				*used = i + take;
				return rc;
			}
		}
		i += take;
		c->pos += take;
		if (c->nlen == 4 && c->got == c->len) {
			*used = i;
			return cand_finish(c);
		}
	}
	*used = n;
	return CAND_MORE;
}

/* ---- backward: where a copy may be cut -------------------------------- */

static int check_at(struct couch_cand *c, bfs_couch_pread_fn rd, void *arg,
		    uint64_t size, uint64_t off, uint64_t *end)
{
	uint8_t buf[CHECK_CHUNK];
	uint64_t at = off;
	size_t used;
	ssize_t n;
	int rc = CAND_MORE, first = 1;

	if (off % BFS_COUCH_BLOCK || off >= size)
		return -EBADMSG;
	while (rc == CAND_MORE && at < size) {
		n = rd(arg, buf,
		       size - at < sizeof(buf) ? (size_t)(size - at)
					       : sizeof(buf),
		       at);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		if (first) {
			if (buf[0] != 1)
				return -EBADMSG;
			rc = cand_start(c, off);
			if (rc)
				return rc;
			rc = cand_feed(c, buf + 1, (size_t)n - 1, &used);
			first = 0;
		} else {
			rc = cand_feed(c, buf, (size_t)n, &used);
		}
		at += (uint64_t)n;
	}
	if (rc == CAND_VALID) {
		*end = c->pos;
		return 0;
	}
	return rc < 0 && rc != -EBADMSG ? rc : -EBADMSG;
}

int bfs_couch_check_header(bfs_couch_pread_fn rd, void *arg, uint64_t size,
			   uint64_t off, uint64_t *end)
{
	struct couch_cand *c = cand_new();
	int rc;

	if (!c)
		return -ENOMEM;
	rc = check_at(c, rd, arg, size, off, end);
	cand_free(c);
	return rc;
}

int bfs_couch_find_header(bfs_couch_pread_fn rd, void *arg, uint64_t size,
			  uint64_t *off, uint64_t *end)
{
	struct couch_cand *c;
	uint64_t b, ws, want, j;
	uint8_t *win;
	ssize_t n;
	int rc = -ENOENT;

	if (!size)
		return -ENOENT;
	c = cand_new();
	win = malloc(FIND_WINDOW);
	if (!c || !win) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* Blocks from the one holding the last byte down to 0, a window
	 * of them at a time; only their prefix bytes matter here. */
	b = (size - 1) / BFS_COUCH_BLOCK;
	for (;;) {
		ws = b >= FIND_WINDOW / BFS_COUCH_BLOCK - 1
			     ? b - (FIND_WINDOW / BFS_COUCH_BLOCK - 1)
			     : 0;
		want = (b + 1) * BFS_COUCH_BLOCK;
		if (want > size)
			want = size;
		want -= ws * BFS_COUCH_BLOCK;
		n = rd(arg, win, (size_t)want, ws * BFS_COUCH_BLOCK);
		if (n < 0) {
			rc = (int)n;
			goto out_free;
		}
		for (j = b + 1; j-- > ws;) {
			if ((j - ws) * BFS_COUCH_BLOCK >= (uint64_t)n ||
			    win[(j - ws) * BFS_COUCH_BLOCK] != 1)
				continue;
			rc = check_at(c, rd, arg, size, j * BFS_COUCH_BLOCK,
				      end);
			if (!rc) {
				*off = j * BFS_COUCH_BLOCK;
				goto out_free;
			}
			if (rc != -EBADMSG)
				goto out_free;
			rc = -ENOENT;
		}
		if (!ws)
			break;
		b = ws - 1;
	}
out_free:
	free(win);
	cand_free(c);
	return rc;
}

/* ---- forward: does a stream end on a header --------------------------- */

int bfs_couch_scan_init(struct bfs_couch_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->cand = cand_new();
	return s->cand ? 0 : -ENOMEM;
}

void bfs_couch_scan_release(struct bfs_couch_scan *s)
{
	cand_free(s->cand);
	s->cand = NULL;
}

int bfs_couch_scan_feed(struct bfs_couch_scan *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	struct couch_cand *c = s->cand;
	size_t i = 0, adv, used;
	int rc;

	while (i < len) {
		if (s->pos % BFS_COUCH_BLOCK == 0 && p[i] == 1) {
			/* a header starts here (and ends any candidate) */
			rc = cand_start(c, s->pos);
			if (rc)
				return rc;
			s->active = 1;
			i++;
			s->pos++;
			continue;
		}
		if (!s->active) {
			adv = BFS_COUCH_BLOCK - s->pos % BFS_COUCH_BLOCK;
			if (adv > len - i)
				adv = len - i;
			i += adv;
			s->pos += adv;
			continue;
		}
		rc = cand_feed(c, p + i, len - i, &used);
		i += used;
		s->pos += used;
		if (rc == CAND_VALID) {
			s->last_off = c->off;
			s->last_end = s->pos;
			s->headers++;
		}
		if (rc != CAND_MORE)
			s->active = 0;
		if (rc < 0 && rc != -EBADMSG)
			return rc;
	}
	return 0;
}
