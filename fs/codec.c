// SPDX-License-Identifier: Apache-2.0
/*
 * Chunk compression codecs.
 *
 * Decompression is strict: the input must be exactly one complete stream
 * that decodes to exactly outlen bytes.  The chunk was authenticated
 * before it gets here, so a failure means a bug or a key compromise, but
 * the codecs still never write past outlen and never accept a near miss.
 *
 * Compression into less than bfs_codec_bound() bytes is allowed and
 * fails with -ENOSPC when the result does not fit: callers compress into
 * a buffer of the input's size and store uncompressed on -ENOSPC.
 */
#include "codec.h"

#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

struct codec {
	int id;
	const char *name;
	int default_level;
	int min_level, max_level;
	size_t (*bound)(size_t len);
	ssize_t (*compress)(int level, const void *in, size_t inlen, void *out,
			    size_t outcap);
	int (*decompress)(const void *in, size_t inlen, void *out,
			  size_t outlen);
};

/*
 * none: the bytes as they are.
 */

static size_t none_bound(size_t len)
{
	return len;
}

static ssize_t none_compress(int level, const void *in, size_t inlen, void *out,
			     size_t outcap)
{
	if (inlen > outcap)
		return -ENOSPC;
	if (inlen > SSIZE_MAX)
		return -EINVAL;
	if (inlen)
		memmove(out, in, inlen);
	return (ssize_t)inlen;
}

static int none_decompress(const void *in, size_t inlen, void *out,
			   size_t outlen)
{
	if (inlen != outlen)
		return -EBADMSG;
	if (inlen)
		memmove(out, in, inlen);
	return 0;
}

/*
 * zlib: a zlib (RFC 1950) stream, so the adler32 trailer checks content.
 * zlib counts in uInt: buffers are fed in pieces of at most UINT_MAX.
 */

/* zlib refuses a NULL next_out even when avail_out is 0. */
static uint8_t *zlib_nonnull(void *p, uint8_t *dummy)
{
	return p ? p : dummy;
}

static uInt zlib_piece(size_t left)
{
	return left > UINT_MAX ? UINT_MAX : (uInt)left;
}

static size_t zlib_bound(size_t len)
{
	if (len > ULONG_MAX / 2)
		return 0;
	return compressBound((uLong)len);
}

static ssize_t zlib_compress(int level, const void *in, size_t inlen, void *out,
			     size_t outcap)
{
	size_t in_left = inlen, out_left = outcap;
	z_stream zs = {0};
	uint8_t dummy;
	int zr;

	zr = deflateInit(&zs, level);
	if (zr == Z_MEM_ERROR)
		return -ENOMEM;
	if (zr != Z_OK)
		return -EIO;
	zs.next_in = (Bytef *)in;
	zs.next_out = zlib_nonnull(out, &dummy);
	do {
		in_left += zs.avail_in;
		out_left += zs.avail_out;
		zs.avail_in = zlib_piece(in_left);
		zs.avail_out = zlib_piece(out_left);
		in_left -= zs.avail_in;
		out_left -= zs.avail_out;
		zr = deflate(&zs, in_left ? Z_NO_FLUSH : Z_FINISH);
	} while (zr == Z_OK && (zs.avail_out || out_left));
	deflateEnd(&zs);
	if (zr == Z_STREAM_END)
		return (ssize_t)zs.total_out;
	/* Z_OK with no room left, or Z_BUF_ERROR: the output is full. */
	if (zr == Z_OK || zr == Z_BUF_ERROR)
		return -ENOSPC;
	bfs_err("zlib deflate failed: %s", zs.msg ? zs.msg : "no reason given");
	return -EIO;
}

static int zlib_decompress(const void *in, size_t inlen, void *out,
			   size_t outlen)
{
	size_t in_left = inlen, out_left = outlen;
	z_stream zs = {0};
	uint8_t dummy;
	int zr;

	zr = inflateInit(&zs);
	if (zr == Z_MEM_ERROR)
		return -ENOMEM;
	if (zr != Z_OK)
		return -EIO;
	zs.next_in = (Bytef *)in;
	zs.next_out = zlib_nonnull(out, &dummy);
	/*
	 * Z_NO_FLUSH and loop until inflate stops making progress: it then
	 * says Z_BUF_ERROR, for truncated input or output that would be
	 * longer than outlen (zlib never writes past avail_out).
	 */
	do {
		in_left += zs.avail_in;
		out_left += zs.avail_out;
		zs.avail_in = zlib_piece(in_left);
		zs.avail_out = zlib_piece(out_left);
		in_left -= zs.avail_in;
		out_left -= zs.avail_out;
		zr = inflate(&zs, Z_NO_FLUSH);
	} while (zr == Z_OK);
	inflateEnd(&zs);
	if (zr == Z_MEM_ERROR)
		return -ENOMEM;
	/* Complete stream, all output, and no trailing bytes. */
	if (zr != Z_STREAM_END || zs.total_out != outlen ||
	    zs.total_in != inlen)
		return -EBADMSG;
	return 0;
}

/*
 * zstd: one frame with the content size and a content checksum, so a
 * frame decodes on its own terms to exactly what was compressed.
 */

static size_t zstd_bound(size_t len)
{
	size_t b = ZSTD_compressBound(len);

	return ZSTD_isError(b) ? 0 : b;
}

static ssize_t zstd_compress(int level, const void *in, size_t inlen, void *out,
			     size_t outcap)
{
	ZSTD_CCtx *cctx;
	ssize_t ret;
	size_t n;

	/*
	 * A fresh context per call keeps the module free of shared state;
	 * creating one costs little next to compressing a 1 MiB chunk.
	 */
	cctx = ZSTD_createCCtx();
	if (!cctx)
		return -ENOMEM;
	n = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(n))
		n = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(n))
		n = ZSTD_compress2(cctx, out, outcap, in, inlen);
	if (!ZSTD_isError(n) && n <= SSIZE_MAX)
		ret = (ssize_t)n;
	else if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
		ret = -ENOSPC;
	else if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
		ret = -ENOMEM;
	else {
		bfs_err("zstd compress failed: %s", ZSTD_getErrorName(n));
		ret = -EIO;
	}
	ZSTD_freeCCtx(cctx);
	return ret;
}

static int zstd_decompress(const void *in, size_t inlen, void *out,
			   size_t outlen)
{
	unsigned long long csize;
	ZSTD_DCtx *dctx;
	uint8_t dummy;
	size_t n;

	/* Check the frame header first: it cannot allocate or write. */
	csize = ZSTD_getFrameContentSize(in, inlen);
	if (csize == ZSTD_CONTENTSIZE_ERROR)
		return -EBADMSG;
	if (csize != ZSTD_CONTENTSIZE_UNKNOWN && csize != outlen)
		return -EBADMSG;
	/* Exactly one frame: no trailing bytes, no second frame. */
	n = ZSTD_findFrameCompressedSize(in, inlen);
	if (ZSTD_isError(n) || n != inlen)
		return -EBADMSG;
	dctx = ZSTD_createDCtx();
	if (!dctx)
		return -ENOMEM;
	n = ZSTD_decompressDCtx(dctx, out ? out : &dummy, outlen, in, inlen);
	ZSTD_freeDCtx(dctx);
	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
			return -ENOMEM;
		return -EBADMSG;
	}
	return n == outlen ? 0 : -EBADMSG;
}

/* Ids are written in every chunk: add entries, never renumber. */
static const struct codec codecs[] = {
	{
		.id = BFS_CODEC_NONE,
		.name = "none",
		.default_level = 0,
		.min_level = 0,
		.max_level = 0,
		.bound = none_bound,
		.compress = none_compress,
		.decompress = none_decompress,
	},
	{
		.id = BFS_CODEC_ZLIB,
		.name = "zlib",
		.default_level = 6,
		.min_level = 0,
		.max_level = 9,
		.bound = zlib_bound,
		.compress = zlib_compress,
		.decompress = zlib_decompress,
	},
	{
		.id = BFS_CODEC_ZSTD,
		.name = "zstd",
		.default_level = 3,
		/* Not offered: the negative "fast" levels, and the "ultra"
		 * levels above 19, whose windows dwarf a chunk. */
		.min_level = 1,
		.max_level = 19,
		.bound = zstd_bound,
		.compress = zstd_compress,
		.decompress = zstd_decompress,
	},
};

static const struct codec *codec_find(int id)
{
	size_t i;

	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if (codecs[i].id == id)
			return &codecs[i];
	return NULL;
}

const char *bfs_codec_name(int codec)
{
	const struct codec *c = codec_find(codec);

	return c ? c->name : NULL;
}

int bfs_codec_from_name(const char *name)
{
	size_t i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if (!strcmp(codecs[i].name, name))
			return codecs[i].id;
	return -EINVAL;
}

int bfs_codec_default_level(int codec)
{
	const struct codec *c = codec_find(codec);

	return c ? c->default_level : 0;
}

size_t bfs_codec_bound(int codec, size_t len)
{
	const struct codec *c = codec_find(codec);

	return c ? c->bound(len) : 0;
}

ssize_t bfs_codec_compress(int codec, int level, const void *in, size_t inlen,
			   void *out, size_t outcap)
{
	const struct codec *c = codec_find(codec);

	if (!c || level < c->min_level || level > c->max_level)
		return -EINVAL;
	return c->compress(level, in, inlen, out, outcap);
}

int bfs_codec_decompress(int codec, const void *in, size_t inlen, void *out,
			 size_t outlen)
{
	const struct codec *c = codec_find(codec);

	if (!c)
		return -EINVAL;
	return c->decompress(in, inlen, out, outlen);
}
