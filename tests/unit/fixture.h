/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the unit tests that need files or a repository share: a fresh
 * directory under /tmp and its removal, a local backend in it, a
 * repository initialized there under a fixed master key, and
 * deterministic incompressible bytes.  Header-only like check.h (whose
 * CHECK it uses: include check.h first); one test file, one tmpdir.
 */
#ifndef BFS_TEST_FIXTURE_H
#define BFS_TEST_FIXTURE_H

#include "repo.h"

#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char tmpdir[64];
static const uint8_t master[BFS_KEY_LEN] = {
	1,  2,	3,  4,	5,  6,	7,  8,	9,  10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

static inline int fx_rm_one(const char *path, const struct stat *st, int flag,
			    struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static inline void fx_rmtree(const char *path)
{
	nftw(path, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir becomes a new /tmp/bfs-test-TAG-XXXXXX. */
static inline void fx_make_tmpdir(const char *tag)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bfs-test-%s-XXXXXX", tag);
	CHECK(mkdtemp(tmpdir) != NULL);
}

static inline void fx_rm_tmpdir(void)
{
	fx_rmtree(tmpdir);
}

/* A local backend in a new tmpdir; its config goes to *conf when asked
 * for (the caller then frees it). */
static inline struct bfs_backend *fx_backend(const char *tag, json_t **conf)
{
	struct bfs_backend *be = NULL;
	char err[256];
	json_t *c;

	fx_make_tmpdir(tag);
	c = json_pack("{s:s,s:s}", "type", "local", "path", tmpdir);
	CHECK_EQ(bfs_backend_open(c, &be, err, sizeof(err)), 0);
	if (conf)
		*conf = c;
	else
		json_decref(c);
	return be;
}

/* A repository initialized on be under master, opened. */
static inline struct bfs_repo *fx_repo(struct bfs_backend *be)
{
	struct bfs_repo *repo = NULL;
	char err[256];

	CHECK_EQ(bfs_repo_init(be, master), 0);
	CHECK_EQ(bfs_repo_open(be, master, &repo, err, sizeof(err)), 0);
	return repo;
}

/* Deterministic "random" bytes: incompressible for the codecs. */
static inline void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 32);
	}
}

#endif
