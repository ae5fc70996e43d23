// SPDX-License-Identifier: Apache-2.0
/*
 * FastCDC (Xia et al., USENIX ATC 2016; IEEE TPDS 2020) with normalized
 * chunking at level 2.
 *
 * The gear hash h = (h << 1) + gear[byte] forgets a byte after 64 steps,
 * so bit k of h depends on the last k + 1 bytes only: a cut depends on a
 * window of at most 64 bytes and on the distance from the previous cut,
 * which is what lets boundaries re-synchronise shortly after an edit.
 * The masks use the high bits of h, the ones with the widest window,
 * except bit 63 (see chunker_scan()).
 *
 * Normalized chunking: between min and avg a mask with two bits more than
 * log2(avg) makes a cut 4x less likely, after avg a mask with two bits
 * fewer makes it 4x more likely, which squeezes the sizes towards avg.
 */
#include "chunker.h"

#include "crypto.h"

#include <errno.h>
#include <stdlib.h>

#define CHUNKER_MIN_MIN 64u
#define CHUNKER_MAX_MAX (64u << 20)
/* mask bits added before avg and removed after it (level 2) */
#define CHUNKER_NC_LEVEL 2

struct bfs_chunker {
	struct bfs_chunker_params params;
	uint64_t mask_s; /* before avg: harder to match */
	uint64_t mask_l; /* after avg: easier to match */
	uint64_t gear[256];
	uint64_t gear_ls[256]; /* gear[] << 1, for two bytes per step */
};

static unsigned log2_exact(uint32_t v)
{
	unsigned b = 0;

	while (v > 1) {
		v >>= 1;
		b++;
	}
	return b;
}

/* bits consecutive bits ending at bit 62 (bit 63 stays clear). */
static uint64_t high_bits(unsigned bits)
{
	return (~(uint64_t)0 << (64 - bits)) >> 1;
}

/*
 * gear[4 i + j] = little-endian bytes 8 j .. 8 j + 7 of
 * HMAC-SHA256(gear_key, big-endian 32-bit i), for i = 0 .. 63.
 * Part of the repository format: changing it moves every boundary.
 */
static void gear_derive(const uint8_t key[32], uint64_t gear[256])
{
	uint8_t ctr[4] = {0}, mac[32];
	unsigned i, j, k;

	for (i = 0; i < 64; i++) {
		ctr[3] = (uint8_t)i;
		bfs_hmac_sha256(key, ctr, sizeof(ctr), mac);
		for (j = 0; j < 4; j++) {
			uint64_t v = 0;

			for (k = 0; k < 8; k++)
				v |= (uint64_t)mac[8 * j + k] << (8 * k);
			gear[4 * i + j] = v;
		}
	}
}

static int params_ok(const struct bfs_chunker_params *p)
{
	return p->min >= CHUNKER_MIN_MIN && p->min < p->avg &&
	       p->avg < p->max && p->max <= CHUNKER_MAX_MAX &&
	       (p->avg & (p->avg - 1)) == 0;
}

int bfs_chunker_params_for(uint64_t avg, struct bfs_chunker_params *out)
{
	if (avg < BFS_CHUNK_AVG_LOWEST || avg > BFS_CHUNK_AVG_HIGHEST ||
	    (avg & (avg - 1)))
		return -EINVAL;
	out->min = (uint32_t)(avg / 4);
	out->avg = (uint32_t)avg;
	out->max = (uint32_t)(avg * 4);
	return 0;
}

int bfs_chunker_new(const uint8_t gear_key[32],
		    const struct bfs_chunker_params *params,
		    struct bfs_chunker **out)
{
	struct bfs_chunker *c;
	unsigned bits, i;

	if (!params_ok(params))
		return -EINVAL;
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->params = *params;
	/* avg > min >= 64, so bits >= 7 and both masks are non-empty */
	bits = log2_exact(params->avg);
	c->mask_s = high_bits(bits + CHUNKER_NC_LEVEL);
	c->mask_l = high_bits(bits - CHUNKER_NC_LEVEL);
	gear_derive(gear_key, c->gear);
	for (i = 0; i < 256; i++)
		c->gear_ls[i] = c->gear[i] << 1;
	*out = c;
	return 0;
}

void bfs_chunker_free(struct bfs_chunker *c)
{
	free(c);
}

const struct bfs_chunker_params *bfs_chunker_params(const struct bfs_chunker *c)
{
	return &c->params;
}

/*
 * The hot loop, FastCDC 2020's "rolling two bytes": per byte it is
 * exactly h = (h << 1) + gear[byte] and a cut where (h & mask) == 0, but
 * the even byte's step is folded into the odd one's.  After the even byte
 * the loop holds 2h instead of h (gear_ls is gear << 1), and tests it
 * against mask << 1; that equals (h & mask) == 0 because the masks leave
 * bit 63 clear.  Adding the odd byte's gear then gives the true h.  One
 * shift fewer and half the loop overhead: about 15% faster.
 *
 * Returns the length of the chunk whose last byte matched, or 0 (and
 * the hash so far in *hp) when no byte in [i, end) matched.
 */
static size_t chunker_scan(const struct bfs_chunker *c, const uint8_t *data,
			   size_t i, size_t end, uint64_t mask, uint64_t *hp)
{
	const uint64_t *gear = c->gear, *gear_ls = c->gear_ls;
	const uint64_t mask_ls = mask << 1;
	uint64_t h = *hp;

	for (; i + 2 <= end; i += 2) {
		h = (h << 2) + gear_ls[data[i]];
		if (!(h & mask_ls))
			return i + 1;
		h += gear[data[i + 1]];
		if (!(h & mask))
			return i + 2;
	}
	if (i < end) {
		h = (h << 1) + gear[data[i]];
		if (!(h & mask))
			return i + 1;
	}
	*hp = h;
	return 0;
}

/*
 * The hash starts at min (bytes before can never be a cut, as in the
 * paper), and the byte that matches ends its chunk.
 */
size_t bfs_chunker_cut(const struct bfs_chunker *c, const uint8_t *data,
		       size_t len)
{
	size_t normal, end, n;
	uint64_t h = 0;

	if (len <= c->params.min)
		return len;
	end = len < c->params.max ? len : c->params.max;
	normal = end < c->params.avg ? end : c->params.avg;
	n = chunker_scan(c, data, c->params.min, normal, c->mask_s, &h);
	if (!n)
		n = chunker_scan(c, data, normal, end, c->mask_l, &h);
	return n ? n : end;
}
