// SPDX-License-Identifier: Apache-2.0
#include "check.h"
#include "codec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define GUARD	   64
#define GUARD_BYTE 0x5a

static const int all_codecs[] = {BFS_CODEC_NONE, BFS_CODEC_ZLIB,
				 BFS_CODEC_ZSTD};
#define NCODECS (sizeof(all_codecs) / sizeof(all_codecs[0]))

/* Text-like input (compresses well) or xorshift noise (does not). */
static uint8_t *make_input(size_t len, int text)
{
	static const char *words[] = {"INSERT", "INTO", "orders", "VALUES",
				      "(",	")",	",",	  "'shipped'",
				      "NULL",	"\n"};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint8_t *p = malloc(len ? len : 1);
	size_t i = 0, n;
	char word[32];

	while (i < len) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (text) {
			n = (size_t)snprintf(word, sizeof(word), "%s %u ",
					     words[x % 10],
					     (unsigned)(x >> 40) % 1000);
			n = n < len - i ? n : len - i;
			memcpy(p + i, word, n);
			i += n;
		} else {
			p[i++] = (uint8_t)(x >> 32);
		}
	}
	return p;
}

struct packed {
	uint8_t *data;
	size_t len;
};

/* Compress with the default level; aborts the test on failure. */
static int pack(int codec, const uint8_t *in, size_t len, struct packed *pk)
{
	size_t cap = bfs_codec_bound(codec, len);
	ssize_t n;

	pk->data = malloc(cap + 1); /* + 1: room to append garbage */
	n = bfs_codec_compress(codec, bfs_codec_default_level(codec), in, len,
			       pk->data, cap);
	if (n < 0) {
		free(pk->data);
		return (int)n;
	}
	pk->len = (size_t)n;
	return 0;
}

/* Decompress into a buffer with a guard zone after outlen: the codec
 * must never touch it, whatever the input. */
static int unpack_guarded(int codec, const uint8_t *in, size_t inlen,
			  size_t outlen, uint8_t **outp)
{
	uint8_t *out = malloc(outlen + GUARD);
	size_t i;
	int ret;

	memset(out + outlen, GUARD_BYTE, GUARD);
	ret = bfs_codec_decompress(codec, in, inlen, out, outlen);
	for (i = 0; i < GUARD; i++)
		if (out[outlen + i] != GUARD_BYTE) {
			fprintf(stderr, "codec %d wrote past outlen\n", codec);
			ret = -9999;
			break;
		}
	if (outp)
		*outp = out;
	else
		free(out);
	return ret;
}

static void test_names(void)
{
	CHECK(strcmp(bfs_codec_name(BFS_CODEC_NONE), "none") == 0);
	CHECK(strcmp(bfs_codec_name(BFS_CODEC_ZLIB), "zlib") == 0);
	CHECK(strcmp(bfs_codec_name(BFS_CODEC_ZSTD), "zstd") == 0);
	CHECK(bfs_codec_name(3) == NULL);
	CHECK(bfs_codec_name(-1) == NULL);
	CHECK_EQ(bfs_codec_from_name("none"), BFS_CODEC_NONE);
	CHECK_EQ(bfs_codec_from_name("zlib"), BFS_CODEC_ZLIB);
	CHECK_EQ(bfs_codec_from_name("zstd"), BFS_CODEC_ZSTD);
	CHECK_EQ(bfs_codec_from_name("gzip"), -EINVAL);
	CHECK_EQ(bfs_codec_from_name("ZSTD"), -EINVAL);
	CHECK_EQ(bfs_codec_from_name(""), -EINVAL);
	CHECK_EQ(bfs_codec_default_level(BFS_CODEC_ZSTD), 3);
	CHECK_EQ(bfs_codec_default_level(BFS_CODEC_ZLIB), 6);
	CHECK_EQ(bfs_codec_default_level(BFS_CODEC_NONE), 0);
	CHECK_EQ(bfs_codec_bound(BFS_CODEC_NONE, 100), 100);
	CHECK(bfs_codec_bound(BFS_CODEC_ZLIB, 100) > 100);
	CHECK(bfs_codec_bound(BFS_CODEC_ZSTD, 100) > 100);
	CHECK_EQ(bfs_codec_bound(7, 100), 0);
}

static void test_bad_args(void)
{
	uint8_t in[10] = {0}, out[100];

	CHECK_EQ(bfs_codec_compress(7, 0, in, 10, out, 100), -EINVAL);
	CHECK_EQ(bfs_codec_decompress(7, in, 10, out, 10), -EINVAL);
	CHECK_EQ(bfs_codec_compress(BFS_CODEC_ZLIB, 10, in, 10, out, 100),
		 -EINVAL);
	CHECK_EQ(bfs_codec_compress(BFS_CODEC_ZLIB, -1, in, 10, out, 100),
		 -EINVAL);
	CHECK_EQ(bfs_codec_compress(BFS_CODEC_ZSTD, 0, in, 10, out, 100),
		 -EINVAL);
	CHECK_EQ(bfs_codec_compress(BFS_CODEC_ZSTD, 23, in, 10, out, 100),
		 -EINVAL);
	CHECK_EQ(bfs_codec_compress(BFS_CODEC_NONE, 1, in, 10, out, 100),
		 -EINVAL);
}

static void roundtrip(int codec, int level, size_t len, int text)
{
	uint8_t *in = make_input(len, text), *out, *packed;
	size_t cap = bfs_codec_bound(codec, len);
	ssize_t n;

	packed = malloc(cap ? cap : 1);
	n = bfs_codec_compress(codec, level, in, len, packed, cap);
	CHECK(n >= 0);
	if (n >= 0) {
		if (text && len > 1000 && level > 0)
			CHECK((size_t)n < len / 2);
		CHECK_EQ(unpack_guarded(codec, packed, (size_t)n, len, &out),
			 0);
		CHECK(len == 0 || memcmp(out, in, len) == 0);
		free(out);
	}
	free(packed);
	free(in);
}

static void test_roundtrip(void)
{
	static const size_t sizes[] = {0, 1, 2, 100, 65536, 1 << 20};
	size_t i, s;

	for (i = 0; i < NCODECS; i++) {
		for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			roundtrip(all_codecs[i],
				  bfs_codec_default_level(all_codecs[i]),
				  sizes[s], 1);
			roundtrip(all_codecs[i],
				  bfs_codec_default_level(all_codecs[i]),
				  sizes[s], 0);
		}
	}
	roundtrip(BFS_CODEC_ZLIB, 0, 5000, 1);
	roundtrip(BFS_CODEC_ZLIB, 1, 5000, 1);
	roundtrip(BFS_CODEC_ZLIB, 9, 5000, 1);
	roundtrip(BFS_CODEC_ZSTD, 1, 5000, 1);
	roundtrip(BFS_CODEC_ZSTD, 19, 5000, 1);
}

/* Output that does not fit the caller's buffer: -ENOSPC, no overflow. */
static void test_compress_no_room(void)
{
	uint8_t *in = make_input(10000, 0), *out = malloc(10000 + GUARD);
	size_t i, k;

	for (i = 0; i < NCODECS; i++) {
		memset(out, 0, 10000 + GUARD);
		memset(out + 9000, GUARD_BYTE, 1000 + GUARD);
		CHECK_EQ(bfs_codec_compress(
				 all_codecs[i],
				 bfs_codec_default_level(all_codecs[i]), in,
				 10000, out, 9000),
			 -ENOSPC);
		for (k = 9000; k < 10000 + GUARD; k++)
			if (out[k] != GUARD_BYTE)
				break;
		CHECK_EQ(k, 10000 + GUARD);
	}
	free(out);
	free(in);
}

/* Every proper prefix of a compressed stream is rejected. */
static void test_truncated(void)
{
	uint8_t *in = make_input(20000, 1);
	struct packed pk;
	size_t i, cut;

	for (i = 0; i < NCODECS; i++) {
		CHECK_EQ(pack(all_codecs[i], in, 20000, &pk), 0);
		for (cut = 0; cut < pk.len; cut++)
			CHECK_EQ(unpack_guarded(all_codecs[i], pk.data, cut,
						20000, NULL),
				 -EBADMSG);
		free(pk.data);
	}
	free(in);
}

/* Input that decodes to more or fewer bytes than expected. */
static void test_wrong_length(void)
{
	static const size_t sizes[] = {0, 1, 4000};
	struct packed pk;
	size_t i, s, len;
	uint8_t *in;

	for (s = 0; s < 3; s++) {
		len = sizes[s];
		in = make_input(len, 1);
		for (i = 0; i < NCODECS; i++) {
			CHECK_EQ(pack(all_codecs[i], in, len, &pk), 0);
			CHECK_EQ(unpack_guarded(all_codecs[i], pk.data, pk.len,
						len + 1, NULL),
				 -EBADMSG);
			CHECK_EQ(unpack_guarded(all_codecs[i], pk.data, pk.len,
						len + 1000, NULL),
				 -EBADMSG);
			if (len)
				CHECK_EQ(unpack_guarded(all_codecs[i], pk.data,
							pk.len, len - 1, NULL),
					 -EBADMSG);
			if (len > 100)
				CHECK_EQ(unpack_guarded(all_codecs[i], pk.data,
							pk.len, len / 2, NULL),
					 -EBADMSG);
			free(pk.data);
		}
		free(in);
	}
}

/* Oversized input: anything after the stream is rejected. */
static void test_trailing_garbage(void)
{
	uint8_t *in = make_input(4000, 1), *two;
	struct packed pk;
	size_t i;

	for (i = 0; i < NCODECS; i++) {
		CHECK_EQ(pack(all_codecs[i], in, 4000, &pk), 0);
		pk.data[pk.len] = 0;
		CHECK_EQ(unpack_guarded(all_codecs[i], pk.data, pk.len + 1,
					4000, NULL),
			 -EBADMSG);
		/* Two streams back to back, each valid on its own. */
		two = malloc(2 * pk.len);
		memcpy(two, pk.data, pk.len);
		memcpy(two + pk.len, pk.data, pk.len);
		CHECK_EQ(unpack_guarded(all_codecs[i], two, 2 * pk.len, 4000,
					NULL),
			 -EBADMSG);
		/* (For "none" that is simply 8000 bytes of plaintext.) */
		if (all_codecs[i] != BFS_CODEC_NONE)
			CHECK_EQ(unpack_guarded(all_codecs[i], two, 2 * pk.len,
						8000, NULL),
				 -EBADMSG);
		free(two);
		free(pk.data);
	}
	free(in);
}

/*
 * Flip every bit of a compressed stream.  zlib (adler32) and zstd (frame
 * checksum) must reject it, or -- where a bit carries no information,
 * like deflate's padding bits after the final block -- decode to exactly
 * the original.  Never different data with success.  "none" has no
 * redundancy to check: the GCM tag above it catches flips.
 */
static void bitflips(int codec, int text)
{
	uint8_t *in = make_input(3000, text), *out;
	size_t bit, undetected = 0, nbits;
	struct packed pk;
	int ret;

	CHECK_EQ(pack(codec, in, 3000, &pk), 0);
	nbits = 8 * pk.len;
	for (bit = 0; bit < nbits; bit++) {
		pk.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ret = unpack_guarded(codec, pk.data, pk.len, 3000, &out);
		pk.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (ret == 0) {
			CHECK(memcmp(out, in, 3000) == 0);
			undetected++;
		} else {
			CHECK_EQ(ret, -EBADMSG);
		}
		free(out);
	}
	/* Only a few don't-care bits (zstd's "unused" header bit, slack
	 * in entropy table headers, deflate padding): well under 1%. */
	CHECK(undetected * 100 <= nbits);
	if (undetected)
		fprintf(stderr, "  %s: %zu of %zu bit flips decode unchanged\n",
			bfs_codec_name(codec), undetected, nbits);
	free(pk.data);
	free(in);
}

static void test_bitflips(void)
{
	bitflips(BFS_CODEC_ZLIB, 1);
	bitflips(BFS_CODEC_ZLIB, 0);
	bitflips(BFS_CODEC_ZSTD, 1);
	bitflips(BFS_CODEC_ZSTD, 0);
}

/* Random garbage is never accepted as a stream. */
static void test_garbage(void)
{
	uint8_t *junk = make_input(5000, 0);
	size_t i, len;

	for (i = 1; i < NCODECS; i++)
		for (len = 0; len < 5000; len += 97)
			CHECK_EQ(unpack_guarded(all_codecs[i], junk, len, 5000,
						NULL),
				 -EBADMSG);
	free(junk);
}

int main(void)
{
	RUN(test_names);
	RUN(test_bad_args);
	RUN(test_roundtrip);
	RUN(test_compress_no_room);
	RUN(test_truncated);
	RUN(test_wrong_length);
	RUN(test_trailing_garbage);
	RUN(test_bitflips);
	RUN(test_garbage);
	return check_summary();
}
