// SPDX-License-Identifier: Apache-2.0
#include "check.h"
#include "chunker.h"
#include "crypto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define BIG (32u << 20)

static const struct bfs_chunker_params defaults = {
	.min = BFS_CHUNK_MIN,
	.avg = BFS_CHUNK_AVG,
	.max = BFS_CHUNK_MAX,
};

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

static uint8_t *random_buf(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	fill_random(p, len, seed);
	return p;
}

static struct bfs_chunker *chunker(uint8_t keybyte,
				   const struct bfs_chunker_params *p)
{
	uint8_t key[32];
	struct bfs_chunker *c = NULL;

	memset(key, keybyte, sizeof(key));
	CHECK_EQ(bfs_chunker_new(key, p, &c), 0);
	return c;
}

/* Cut a whole buffer into chunks: returns the count, lengths in *lens. */
static size_t cut_all(const struct bfs_chunker *c, const uint8_t *data,
		      size_t len, size_t **lens)
{
	size_t off = 0, n = 0, cap = 16, l;

	*lens = malloc(cap * sizeof(**lens));
	while (off < len) {
		l = bfs_chunker_cut(c, data + off, len - off);
		if (!l)
			break;
		if (n == cap)
			*lens = realloc(*lens, (cap *= 2) * sizeof(**lens));
		(*lens)[n++] = l;
		off += l;
	}
	return n;
}

/* init --chunk-size: avg/4 and avg*4 around a power of two. */
static void test_params_for(void)
{
	static const uint64_t bad[] = {0, 128u << 10, 3u << 20, (1u << 20) + 1,
				       32u << 20};
	struct bfs_chunker_params p;
	struct bfs_chunker *c;
	uint8_t key[32] = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(bfs_chunker_params_for(bad[i], &p), -EINVAL);
	CHECK_EQ(bfs_chunker_params_for(1u << 20, &p), 0);
	CHECK(p.min == BFS_CHUNK_MIN && p.avg == BFS_CHUNK_AVG &&
	      p.max == BFS_CHUNK_MAX);
	for (uint64_t avg = BFS_CHUNK_AVG_LOWEST; avg <= BFS_CHUNK_AVG_HIGHEST;
	     avg <<= 1) {
		CHECK_EQ(bfs_chunker_params_for(avg, &p), 0);
		CHECK(p.min == avg / 4 && p.avg == avg && p.max == avg * 4);
		c = NULL;
		CHECK_EQ(bfs_chunker_new(key, &p, &c), 0);
		bfs_chunker_free(c);
	}
}

static void test_params(void)
{
	static const struct bfs_chunker_params bad[] = {
		{63, 128, 256},			 /* min too small */
		{128, 128, 256},		 /* min == avg */
		{64, 100, 256},			 /* avg not a power of two */
		{64, 256, 256},			 /* avg == max */
		{1024, 512, 4096},		 /* min > avg */
		{64, 1u << 20, (64u << 20) + 1}, /* max too big */
	};
	static const struct bfs_chunker_params good[] = {
		{64, 128, 129},
		{BFS_CHUNK_MIN, BFS_CHUNK_AVG, BFS_CHUNK_MAX},
		{1u << 20, 1u << 25, 64u << 20},
	};
	struct bfs_chunker *c;
	uint8_t key[32] = {0};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(bfs_chunker_new(key, &bad[i], &c), -EINVAL);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		c = NULL;
		CHECK_EQ(bfs_chunker_new(key, &good[i], &c), 0);
		CHECK(c && bfs_chunker_params(c)->max == good[i].max);
		bfs_chunker_free(c);
	}
}

static void test_small_inputs(void)
{
	struct bfs_chunker *c = chunker(1, &defaults);
	uint8_t *d = random_buf(BFS_CHUNK_MAX + 1, 7);
	size_t l;

	CHECK_EQ(bfs_chunker_cut(c, d, 0), 0);
	CHECK_EQ(bfs_chunker_cut(c, d, 1), 1);
	CHECK_EQ(bfs_chunker_cut(c, d, BFS_CHUNK_MIN - 1), BFS_CHUNK_MIN - 1);
	CHECK_EQ(bfs_chunker_cut(c, d, BFS_CHUNK_MIN), BFS_CHUNK_MIN);
	CHECK_EQ(bfs_chunker_cut(c, d, BFS_CHUNK_MIN + 1), BFS_CHUNK_MIN + 1);
	l = bfs_chunker_cut(c, d, BFS_CHUNK_MAX);
	CHECK(l > BFS_CHUNK_MIN && l <= BFS_CHUNK_MAX);
	CHECK_EQ(bfs_chunker_cut(c, d, BFS_CHUNK_MAX + 1), l);
	/* A run of zeros: the hash settles to a constant after 64 bytes,
	 * which almost surely never matches, and the max bound cuts. */
	memset(d, 0, BFS_CHUNK_MAX + 1);
	l = bfs_chunker_cut(c, d, BFS_CHUNK_MAX + 1);
	CHECK(l > BFS_CHUNK_MIN && l <= BFS_CHUNK_MAX);
	free(d);
	bfs_chunker_free(c);
}

static void test_bounds(void)
{
	struct bfs_chunker *c = chunker(2, &defaults);
	uint8_t *d = random_buf(BIG, 11);
	size_t *lens, n, i, total = 0;

	n = cut_all(c, d, BIG, &lens);
	for (i = 0; i < n; i++) {
		total += lens[i];
		CHECK(lens[i] <= BFS_CHUNK_MAX);
		if (i + 1 < n)
			CHECK(lens[i] > BFS_CHUNK_MIN);
	}
	CHECK_EQ(total, BIG);
	/* Normalized chunking keeps the mean near avg. */
	CHECK(n >= BIG / (2 * BFS_CHUNK_AVG) && n <= BIG / (BFS_CHUNK_AVG / 2));
	fprintf(stderr, "  %zu chunks, mean %zu KiB\n", n, BIG / n >> 10);
	free(lens);
	free(d);
	bfs_chunker_free(c);
}

static void test_deterministic(void)
{
	struct bfs_chunker *a = chunker(3, &defaults),
			   *b = chunker(3, &defaults);
	uint8_t *d = random_buf(BIG / 4, 13);
	size_t *la, *lb, na, nb;

	na = cut_all(a, d, BIG / 4, &la);
	nb = cut_all(b, d, BIG / 4, &lb);
	CHECK_EQ(na, nb);
	CHECK(na == nb && memcmp(la, lb, na * sizeof(*la)) == 0);
	free(la);
	free(lb);
	free(d);
	bfs_chunker_free(a);
	bfs_chunker_free(b);
}

static void test_keys_differ(void)
{
	struct bfs_chunker *a = chunker(4, &defaults),
			   *b = chunker(5, &defaults);
	uint8_t *d = random_buf(BIG / 4, 17);
	size_t *la, *lb, na, nb;

	na = cut_all(a, d, BIG / 4, &la);
	nb = cut_all(b, d, BIG / 4, &lb);
	CHECK(na != nb || memcmp(la, lb, na * sizeof(*la)) != 0);
	/* Not even the first cut in common. */
	CHECK(la[0] != lb[0]);
	free(la);
	free(lb);
	free(d);
	bfs_chunker_free(a);
	bfs_chunker_free(b);
}

/*
 * Chunk ids before and after an edit near the start: all but the first
 * chunk or two must be unchanged, because a boundary depends only on the
 * 64 bytes before it and the distance from the previous boundary.
 */
struct idlist {
	uint8_t (*ids)[32];
	size_t n;
};

static void chunk_ids(const struct bfs_chunker *c, const uint8_t *d, size_t len,
		      struct idlist *out)
{
	uint8_t key[32] = {9};
	size_t *lens, i, off = 0;

	out->n = cut_all(c, d, len, &lens);
	out->ids = malloc(out->n * sizeof(*out->ids));
	for (i = 0; i < out->n; i++) {
		bfs_hmac_sha256(key, d + off, lens[i], out->ids[i]);
		off += lens[i];
	}
	free(lens);
}

static int has_id(const struct idlist *l, const uint8_t id[32])
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!memcmp(l->ids[i], id, 32))
			return 1;
	return 0;
}

static void shifted(const struct bfs_chunker *c, const uint8_t *d,
		    size_t edit_at, size_t inserted)
{
	uint8_t *e = malloc(BIG + inserted);
	struct idlist before, after;
	size_t i, same = 0;

	memcpy(e, d, edit_at);
	fill_random(e + edit_at, inserted, 99);
	memcpy(e + edit_at + inserted, d + edit_at, BIG - edit_at);
	chunk_ids(c, d, BIG, &before);
	chunk_ids(c, e, BIG + inserted, &after);
	for (i = 0; i < after.n; i++)
		same += has_id(&before, after.ids[i]);
	CHECK(same + 2 >= after.n);
	fprintf(stderr, "  +%zu bytes at %zu: %zu of %zu chunks unchanged\n",
		inserted, edit_at, same, after.n);
	free(before.ids);
	free(after.ids);
	free(e);
}

static void test_shift_resistant(void)
{
	struct bfs_chunker *c = chunker(6, &defaults);
	uint8_t *d = random_buf(BIG, 23);

	shifted(c, d, 1000, 1);
	shifted(c, d, 1000, 100);
	shifted(c, d, 300000, 4096);
	free(d);
	bfs_chunker_free(c);
}

/*
 * The format, written out plainly: gear[4 i + j] is little-endian bytes
 * 8 j .. 8 j + 7 of HMAC-SHA256(key, big-endian 32-bit i); one byte at
 * a time h = (h << 1) + gear[byte]; before avg a cut where h has bits
 * 62 .. 62 - (log2(avg) + 2) + 1 all zero, after avg the same with
 * log2(avg) - 2 bits; the matching byte ends the chunk.  The library's
 * two-bytes-at-a-time loop must agree with this exactly.
 */
struct ref_chunker {
	uint64_t gear[256];
	uint64_t mask_s, mask_l;
	struct bfs_chunker_params p;
};

static void ref_init(struct ref_chunker *r, uint8_t keybyte,
		     const struct bfs_chunker_params *p)
{
	uint8_t key[32], ctr[4] = {0}, mac[32];
	unsigned i, j, k, bits = 0;

	memset(key, keybyte, sizeof(key));
	for (i = 0; i < 64; i++) {
		ctr[3] = (uint8_t)i;
		bfs_hmac_sha256(key, ctr, 4, mac);
		for (j = 0; j < 4; j++) {
			r->gear[4 * i + j] = 0;
			for (k = 0; k < 8; k++)
				r->gear[4 * i + j] |= (uint64_t)mac[8 * j + k]
						      << (8 * k);
		}
	}
	while ((1u << bits) < p->avg)
		bits++;
	r->mask_s = (~0ull << (64 - (bits + 2))) >> 1;
	r->mask_l = (~0ull << (64 - (bits - 2))) >> 1;
	r->p = *p;
}

static size_t ref_cut(const struct ref_chunker *r, const uint8_t *d, size_t len)
{
	size_t i, end = len < r->p.max ? len : r->p.max;
	uint64_t h = 0;

	if (len <= r->p.min)
		return len;
	for (i = r->p.min; i < end; i++) {
		h = (h << 1) + r->gear[d[i]];
		if (!(h & (i < r->p.avg ? r->mask_s : r->mask_l)))
			return i + 1;
	}
	return end;
}

static void reference(const struct bfs_chunker_params *p, size_t len,
		      uint64_t seed)
{
	struct bfs_chunker *c = chunker(8, p);
	struct ref_chunker r;
	uint8_t *d = random_buf(len, seed);
	size_t off = 0, l, cuts = 0, bad = 0;

	ref_init(&r, 8, p);
	while (off < len) {
		l = bfs_chunker_cut(c, d + off, len - off);
		bad += l != ref_cut(&r, d + off, len - off);
		off += l ? l : len;
		cuts++;
	}
	CHECK_EQ(bad, 0);
	CHECK(cuts > 1);
	free(d);
	bfs_chunker_free(c);
}

static void test_matches_reference(void)
{
	/* Small sizes: many cuts, both parities of min and avg. */
	static const struct bfs_chunker_params small[] = {
		{64, 128, 1024},
		{65, 256, 300},
		{100, 512, 4096},
		{1000, 4096, 16385},
	};
	size_t i;

	for (i = 0; i < sizeof(small) / sizeof(small[0]); i++)
		reference(&small[i], 1u << 20, i + 1);
	reference(&defaults, BIG / 2, 31);
}

int main(void)
{
	RUN(test_params);
	RUN(test_params_for);
	RUN(test_small_inputs);
	RUN(test_bounds);
	RUN(test_deterministic);
	RUN(test_keys_differ);
	RUN(test_shift_resistant);
	RUN(test_matches_reference);
	return check_summary();
}
