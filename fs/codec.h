/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Chunk compression codecs, looked up from a const table by id or name.
 *
 * The ids are written in every chunk (docs/FORMAT.md): never renumber.
 * All functions are safe to call from several threads at once (each call
 * uses its own codec context).
 */
#ifndef BFS_CODEC_H
#define BFS_CODEC_H

#include <stddef.h>
#include <sys/types.h>

enum bfs_codec_id {
	BFS_CODEC_NONE = 0,
	BFS_CODEC_ZLIB = 1,
	BFS_CODEC_ZSTD = 2,
};

#define BFS_CODEC_DEFAULT BFS_CODEC_ZSTD

/* Name ("none", "zlib", "zstd") of an id, or NULL if unknown. */
const char *bfs_codec_name(int codec);
/* Id of a name, or -EINVAL. */
int bfs_codec_from_name(const char *name);
/* Default level of a codec (zstd 3, zlib 6, none 0). */
int bfs_codec_default_level(int codec);
/* Largest output compress() may need for len input bytes; 0 if unknown. */
size_t bfs_codec_bound(int codec, size_t len);

/*
 * Compress inlen bytes into out (outcap bytes, at least
 * bfs_codec_bound()).  Returns the compressed size or -errno (-EINVAL for
 * an unknown codec or level, -EIO on library failure).
 */
ssize_t bfs_codec_compress(int codec, int level, const void *in,
			   size_t inlen, void *out, size_t outcap);
/*
 * Decompress inlen bytes into out, which must come out exactly outlen
 * bytes long.  Anything else -- truncated, corrupt, longer or shorter
 * output, trailing garbage -- is -EBADMSG.  -EINVAL for an unknown codec.
 */
int bfs_codec_decompress(int codec, const void *in, size_t inlen, void *out,
			 size_t outlen);

#endif
