// SPDX-License-Identifier: Apache-2.0
/*
 * The native repository (docs/FORMAT.md): config, sealed chunks, sealed
 * manifests and records, locks and garbage collection over a backend.
 *
 * A repository handle is immutable after bfs_repo_open(): keys, chunker
 * and id are read-only and the backend is thread-safe, so FUSE threads
 * share it without a mutex.  A lock handle belongs to the job holding it.
 *
 * What comes back from the backend is never trusted: every object is
 * bounded before it is read, authenticated before it is parsed, and bound
 * to its name (chunks by their id, the rest by their object name) so that
 * nobody with write access to the backend can move data around unseen.
 */
#include "repo.h"

#include "codec.h"
#include "log.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPO_CONFIG	  "config"
#define REPO_CONFIG_MAX	  (64u << 10)
#define REPO_ID_LEN	  16 /* random bytes of the repository id */
#define REPO_CHECK_PREFIX "backupfs repository "

#define CHUNK_MAGIC   "BFSC"
#define CHUNK_VERSION 1
#define CHUNK_AAD_HDR 12 /* header bytes covered by the AAD */
/* "chunks/" 2 "/" 64 and the NUL */
#define CHUNK_NAME_LEN (7 + 2 + 1 + 2 * BFS_ID_LEN + 1)

#define SEALED_MANIFEST "BFSM"
#define SEALED_RECORD	"BFSR"
#define SEALED_VERSION	1
#define SEALED_AAD_HDR	8
#define SEALED_HDR_LEN	(SEALED_AAD_HDR + BFS_NONCE_LEN)
#define REPO_RECORD_MAX (16u << 20)

/* "records/" kind "/" name and the NUL, both names <= BFS_NAME_MAX */
#define REPO_NAME_LEN (16 + 2 * BFS_NAME_MAX + 1)

#define LOCK_MAX	   4096
#define LOCK_WRITER	   "writer"
#define LOCK_GC		   "gc"
#define LOCK_WRITER_PREFIX "locks/" LOCK_WRITER "-"
#define LOCK_GC_PREFIX	   "locks/" LOCK_GC "-"

struct bfs_repo {
	struct bfs_backend *be; /* borrowed */
	struct bfs_keys keys;
	struct bfs_chunker *chunker;
	char id[2 * REPO_ID_LEN + 1];
	char host[256]; /* written into locks */
};

struct bfs_repo_lock {
	struct bfs_repo *repo;
	char name[64]; /* "locks/<kind>-<32 hex>" */
};

/* Accessors. */

struct bfs_backend *bfs_repo_backend(struct bfs_repo *repo)
{
	return repo->be;
}

const struct bfs_keys *bfs_repo_keys(const struct bfs_repo *repo)
{
	return &repo->keys;
}

const struct bfs_chunker *bfs_repo_chunker(const struct bfs_repo *repo)
{
	return repo->chunker;
}

const char *bfs_repo_id(const struct bfs_repo *repo)
{
	return repo->id;
}

/* Small helpers. */

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Exactly n hex digits, then the end of the string. */
static int repo_unhex(const char *s, uint8_t *out, size_t n)
{
	if (!s || strnlen(s, 2 * n + 1) != 2 * n)
		return -EINVAL;
	return bfs_unhex(s, out, n);
}

static void repo_chunk_name(const uint8_t id[BFS_ID_LEN],
			    char name[CHUNK_NAME_LEN])
{
	char hex[2 * BFS_ID_LEN + 1];

	bfs_hex(id, BFS_ID_LEN, hex);
	snprintf(name, CHUNK_NAME_LEN, "chunks/%.2s/%s", hex, hex);
}

/* "<dir>/<a>/<b>" for names that passed their checks. */
static int repo_name(char out[REPO_NAME_LEN], const char *dir, const char *a,
		     const char *b)
{
	int n = snprintf(out, REPO_NAME_LEN, "%s/%s/%s", dir, a, b);

	return n > 0 && n < REPO_NAME_LEN ? 0 : -ENAMETOOLONG;
}

/* Config: the one plaintext object. */

static void repo_check_mac(const struct bfs_keys *keys, const char *id,
			   uint8_t mac[32])
{
	char msg[sizeof(REPO_CHECK_PREFIX) + 2 * REPO_ID_LEN];
	int n = snprintf(msg, sizeof(msg), "%s%s", REPO_CHECK_PREFIX, id);

	bfs_hmac_sha256(keys->check, msg, (size_t)n, mac);
}

static char *repo_config_text(const struct bfs_keys *keys, const char *id,
			      const struct bfs_chunker_params *p)
{
	char check[2 * 32 + 1];
	uint8_t mac[32];
	json_t *conf;
	char *text;

	repo_check_mac(keys, id, mac);
	bfs_hex(mac, sizeof(mac), check);
	/* the layout of docs/FORMAT.md */
	/* clang-format off */
	conf = json_pack("{s:i,s:s,s:{s:I,s:I,s:I},s:s}",
			 "backupfs_repository", BFS_REPO_FORMAT,
			 "id", id,
			 "chunker",
			 "min", (json_int_t)p->min,
			 "avg", (json_int_t)p->avg,
			 "max", (json_int_t)p->max,
			 "check", check);
	/* clang-format on */
	if (!conf)
		return NULL;
	text = json_dumps(conf, JSON_COMPACT);
	json_decref(conf);
	return text;
}

int bfs_repo_init(struct bfs_backend *be, const uint8_t master[BFS_KEY_LEN])
{
	const struct bfs_chunker_params dflt = {BFS_CHUNK_MIN, BFS_CHUNK_AVG,
						BFS_CHUNK_MAX};

	return bfs_repo_init_chunked(be, master, &dflt);
}

int bfs_repo_init_chunked(struct bfs_backend *be,
			  const uint8_t master[BFS_KEY_LEN],
			  const struct bfs_chunker_params *params)
{
	uint8_t rid[REPO_ID_LEN];
	char id[2 * REPO_ID_LEN + 1];
	struct bfs_keys keys;
	char *text;
	int ret;

	ret = bfs_keys_derive(master, &keys);
	if (ret)
		return ret;
	ret = bfs_random(rid, sizeof(rid));
	if (ret)
		goto out_keys;
	bfs_hex(rid, sizeof(rid), id);
	text = repo_config_text(&keys, id, params);
	if (!text) {
		ret = -ENOMEM;
		goto out_keys;
	}
	/* exclusive: two hosts initializing at once cannot both win */
	ret = bfs_backend_put(be, REPO_CONFIG, text, strlen(text),
			      BFS_PUT_EXCL);
	if (ret == -EEXIST)
		bfs_err("backend already holds a repository (\"%s\" exists)",
			REPO_CONFIG);
	else if (!ret)
		bfs_info("initialized repository \"%s\"", id);
	free(text);
out_keys:
	explicit_bzero(&keys, sizeof(keys));
	return ret;
}

static int repo_config_params(json_t *ch, struct bfs_chunker_params *p)
{
	json_int_t v[3];
	const char *keys[3] = {"min", "avg", "max"};
	int i;

	for (i = 0; i < 3; i++) {
		json_t *x = json_object_get(ch, keys[i]);

		if (!json_is_integer(x))
			return -EBADMSG;
		v[i] = json_integer_value(x);
		if (v[i] < 1 || v[i] > UINT32_MAX)
			return -EBADMSG;
	}
	p->min = (uint32_t)v[0];
	p->avg = (uint32_t)v[1];
	p->max = (uint32_t)v[2];
	return 0;
}

/* Parse the config object; the key check is left to the caller. */
static int repo_config_parse(struct bfs_repo *repo, const struct bfs_buf *b,
			     struct bfs_chunker_params *params,
			     uint8_t check[32], char *err, size_t errlen)
{
	json_t *root, *v;
	const char *id;
	uint8_t raw[REPO_ID_LEN];
	int ret = -EBADMSG;

	root = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES,
			  NULL);
	v = json_object_get(root, "backupfs_repository");
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "\"%s\" is not a repository config",
			 REPO_CONFIG);
		goto out_root;
	}
	if (json_integer_value(v) != BFS_REPO_FORMAT) {
		snprintf(err, errlen, "unsupported repository format %lld",
			 (long long)json_integer_value(v));
		goto out_root;
	}
	id = json_string_value(json_object_get(root, "id"));
	if (repo_unhex(id, raw, sizeof(raw)) ||
	    repo_unhex(json_string_value(json_object_get(root, "check")), check,
		       32) ||
	    repo_config_params(json_object_get(root, "chunker"), params)) {
		snprintf(err, errlen, "malformed repository config");
		goto out_root;
	}
	memcpy(repo->id, id, sizeof(repo->id));
	ret = 0;
out_root:
	json_decref(root);
	return ret;
}

static int repo_config_load(struct bfs_repo *repo,
			    struct bfs_chunker_params *params,
			    uint8_t check[32], char *err, size_t errlen)
{
	struct bfs_buf b;
	char ebuf[128];
	int ret;

	bfs_buf_init(&b, REPO_CONFIG_MAX);
	ret = bfs_backend_get(repo->be, REPO_CONFIG, 0, 0, &b);
	if (ret == -ENOENT)
		snprintf(err, errlen, "no repository here (no \"%s\" object)",
			 REPO_CONFIG);
	else if (ret == -EFBIG)
		snprintf(err, errlen, "\"%s\" is too large", REPO_CONFIG);
	else if (ret)
		snprintf(err, errlen, "cannot read \"%s\": %s", REPO_CONFIG,
			 strerror_r(-ret, ebuf, sizeof(ebuf)));
	if (ret == -EFBIG)
		ret = -EBADMSG;
	if (!ret)
		ret = repo_config_parse(repo, &b, params, check, err, errlen);
	bfs_buf_release(&b);
	return ret;
}

int bfs_repo_open(struct bfs_backend *be, const uint8_t master[BFS_KEY_LEN],
		  struct bfs_repo **out, char *err, size_t errlen)
{
	struct bfs_chunker_params params;
	struct bfs_repo *repo;
	uint8_t check[32], mac[32];
	int ret;

	*out = NULL;
	repo = calloc(1, sizeof(*repo));
	if (!repo) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	repo->be = be;
	ret = repo_config_load(repo, &params, check, err, errlen);
	if (ret)
		goto out_free;
	ret = bfs_keys_derive(master, &repo->keys);
	if (ret) {
		snprintf(err, errlen, "cannot derive keys");
		goto out_free;
	}
	repo_check_mac(&repo->keys, repo->id, mac);
	if (bfs_memcmp_ct(mac, check, sizeof(mac))) {
		snprintf(err, errlen, "wrong key for repository \"%s\"",
			 repo->id);
		ret = -EKEYREJECTED;
		goto out_free;
	}
	if (bfs_chunker_new(repo->keys.gear, &params, &repo->chunker)) {
		snprintf(err, errlen, "bad chunker parameters in \"%s\"",
			 REPO_CONFIG);
		ret = -EBADMSG;
		goto out_free;
	}
	if (gethostname(repo->host, sizeof(repo->host) - 1))
		snprintf(repo->host, sizeof(repo->host), "unknown");
	*out = repo;
	return 0;

out_free:
	explicit_bzero(&repo->keys, sizeof(repo->keys));
	free(repo);
	return ret;
}

void bfs_repo_close(struct bfs_repo *repo)
{
	if (!repo)
		return;
	bfs_chunker_free(repo->chunker);
	explicit_bzero(&repo->keys, sizeof(repo->keys));
	free(repo);
}

/* Chunks. */

/* Log why a chunk is refused, once, and turn it into -EIO. */
static int repo_chunk_bad(const uint8_t id[BFS_ID_LEN], const char *why)
{
	char hex[2 * BFS_ID_LEN + 1];

	bfs_hex(id, BFS_ID_LEN, hex);
	bfs_err("chunk \"%s\": %s", hex, why);
	return -EIO;
}

/* The chunk AAD: header bytes 0..11, then the id the chunk claims. */
static void repo_chunk_aad(const uint8_t *hdr, const uint8_t id[BFS_ID_LEN],
			   uint8_t aad[CHUNK_AAD_HDR + BFS_ID_LEN])
{
	memcpy(aad, hdr, CHUNK_AAD_HDR);
	memcpy(aad + CHUNK_AAD_HDR, id, BFS_ID_LEN);
}

/* Compress (when it pays) into obj's payload; returns the codec used. */
static ssize_t repo_chunk_pack(const void *data, size_t len, int codec,
			       int level, uint8_t *payload, size_t cap,
			       int *used)
{
	ssize_t n = -1;

	if (codec != BFS_CODEC_NONE) {
		n = bfs_codec_compress(codec, level, data, len, payload, cap);
		if (n < 0)
			return n;
	}
	*used = codec;
	/* store it raw when compression does not pay */
	if (codec == BFS_CODEC_NONE || (size_t)n >= len) {
		memcpy(payload, data, len);
		*used = BFS_CODEC_NONE;
		n = (ssize_t)len;
	}
	return n;
}

/* Build the sealed object of a chunk: *obj is new. */
static int repo_chunk_seal(const struct bfs_repo *repo,
			   const uint8_t id[BFS_ID_LEN], const void *data,
			   size_t len, int codec, int level, uint8_t **objp,
			   size_t *objlen)
{
	uint8_t aad[CHUNK_AAD_HDR + BFS_ID_LEN];
	size_t cap = bfs_codec_bound(codec, len);
	uint8_t *obj, *payload;
	ssize_t n;
	int used, ret;

	if (!bfs_codec_name(codec) || !cap) {
		bfs_err("unknown codec %d", codec);
		return -EINVAL;
	}
	if (cap < len)
		cap = len;
	obj = malloc(BFS_CHUNK_HDR_LEN + cap + BFS_TAG_LEN);
	if (!obj)
		return -ENOMEM;
	payload = obj + BFS_CHUNK_HDR_LEN;
	n = repo_chunk_pack(data, len, codec, level, payload, cap, &used);
	if (n < 0) {
		ret = (int)n;
		goto out_free;
	}
	memcpy(obj, CHUNK_MAGIC, 4);
	obj[4] = CHUNK_VERSION;
	obj[5] = (uint8_t)used;
	obj[6] = obj[7] = 0;
	put_le32(obj + 8, (uint32_t)len);
	repo_chunk_aad(obj, id, aad);
	ret = bfs_gcm_seal(repo->keys.chunk, aad, sizeof(aad), payload,
			   (size_t)n, payload, obj + CHUNK_AAD_HDR,
			   payload + n);
	if (ret)
		goto out_free;
	*objp = obj;
	*objlen = BFS_CHUNK_HDR_LEN + (size_t)n + BFS_TAG_LEN;
	return 0;

out_free:
	free(obj);
	return ret;
}

int bfs_repo_chunk_put(struct bfs_repo *repo, const void *data, size_t len,
		       int codec, int level, uint8_t id[BFS_ID_LEN],
		       uint64_t *stored)
{
	char name[CHUNK_NAME_LEN];
	uint8_t *obj = NULL;
	size_t objlen = 0;
	uint64_t size;
	int ret;

	*stored = 0;
	if (!len || len > BFS_MANIFEST_MAX_CHUNK_SIZE || !bfs_codec_name(codec))
		return -EINVAL;
	bfs_chunk_id(&repo->keys, data, len, id);
	repo_chunk_name(id, name);
	ret = bfs_backend_stat(repo->be, name, &size);
	if (ret != -ENOENT)
		return ret; /* 0: deduplicated, the chunk is there */
	ret = repo_chunk_seal(repo, id, data, len, codec, level, &obj, &objlen);
	if (ret)
		return ret;
	/*
	 * A plain put: chunks are content-addressed, so a writer racing us
	 * stores the same plaintext under the same id and either copy is
	 * right.  Create-if-absent would buy nothing here and is costly
	 * where the backend must verify it (Swift).
	 */
	ret = bfs_backend_put(repo->be, name, obj, objlen, 0);
	if (!ret)
		*stored = objlen;
	free(obj);
	return ret;
}

/* -EIO with *why set: a chunk that is not what it should be. */
static int repo_chunk_why(const char **why, const char *what)
{
	*why = what;
	return -EIO;
}

/* Authenticate and decode a chunk object into out (size bytes); on -EIO
 * *why says what is wrong with it. */
static int repo_chunk_open(const struct bfs_repo *repo,
			   const uint8_t id[BFS_ID_LEN], uint32_t size,
			   const uint8_t *obj, size_t len, struct bfs_buf *out,
			   const char **why)
{
	uint8_t aad[CHUNK_AAD_HDR + BFS_ID_LEN];
	const uint8_t *payload = obj + BFS_CHUNK_HDR_LEN;
	uint8_t *plain;
	size_t plen;
	int codec, ret;

	if (len < BFS_CHUNK_HDR_LEN + BFS_TAG_LEN)
		return repo_chunk_why(why, "truncated");
	codec = obj[5];
	if (memcmp(obj, CHUNK_MAGIC, 4) || obj[4] != CHUNK_VERSION || obj[6] ||
	    obj[7] || !bfs_codec_name(codec))
		return repo_chunk_why(why, "bad header");
	if (get_le32(obj + 8) != size)
		return repo_chunk_why(why, "size differs from the manifest's");
	plen = len - BFS_CHUNK_HDR_LEN - BFS_TAG_LEN;
	/* the writer stores raw whenever compression does not pay */
	if (codec == BFS_CODEC_NONE ? plen != size : plen >= size)
		return repo_chunk_why(why, "bad payload length");
	ret = bfs_buf_reserve(out, size);
	if (ret)
		return ret;
	/* raw chunks decrypt straight into out, others via a scratch copy */
	plain = codec == BFS_CODEC_NONE ? out->data + out->len
					: malloc(plen ? plen : 1);
	if (!plain)
		return -ENOMEM;
	repo_chunk_aad(obj, id, aad);
	ret = bfs_gcm_open(repo->keys.chunk, obj + CHUNK_AAD_HDR, aad,
			   sizeof(aad), payload, plen, plain, payload + plen);
	if (ret)
		ret = repo_chunk_why(why, "failed authentication");
	else if (codec != BFS_CODEC_NONE &&
		 bfs_codec_decompress(codec, plain, plen, out->data + out->len,
				      size))
		ret = repo_chunk_why(why, "corrupt compressed data");
	if (codec != BFS_CODEC_NONE)
		free(plain);
	if (!ret)
		out->len += size;
	return ret;
}

/* One fetch of a chunk object, authenticated and decoded into out. */
static int repo_chunk_fetch(struct bfs_repo *repo, const uint8_t id[BFS_ID_LEN],
			    const char *name, uint32_t size,
			    struct bfs_buf *out, const char **why)
{
	struct bfs_buf obj;
	int ret;

	/* a stored chunk is never larger than its plaintext plus overhead */
	bfs_buf_init(&obj, BFS_CHUNK_HDR_LEN + (size_t)size + BFS_TAG_LEN);
	/* sealed: the GCM tag is the check, no transport checksum needed */
	ret = bfs_backend_get_sealed(repo->be, name, &obj);
	if (ret == -EFBIG)
		ret = repo_chunk_why(why, "too large");
	if (!ret)
		ret = repo_chunk_open(repo, id, size, obj.data, obj.len, out,
				      why);
	bfs_buf_release(&obj);
	return ret;
}

int bfs_repo_chunk_check(struct bfs_repo *repo, const uint8_t id[BFS_ID_LEN],
			 uint32_t size, struct bfs_buf *out, const char **why)
{
	char name[CHUNK_NAME_LEN];
	int ret;

	*why = NULL;
	if (!size || size > BFS_MANIFEST_MAX_CHUNK_SIZE)
		return -EINVAL;
	repo_chunk_name(id, name);
	ret = repo_chunk_fetch(repo, id, name, size, out, why);
	/* A body damaged on the way fails its tag like a damaged object:
	 * fetch once more before calling the chunk bad. */
	if (ret == -EIO && *why) {
		bfs_debug("chunk \"%s\": %s; fetching it again", name, *why);
		*why = NULL;
		ret = repo_chunk_fetch(repo, id, name, size, out, why);
	}
	if (ret == -ENOENT)
		*why = "missing";
	return ret;
}

int bfs_repo_chunk_get(struct bfs_repo *repo, const uint8_t id[BFS_ID_LEN],
		       uint32_t size, struct bfs_buf *out)
{
	char name[CHUNK_NAME_LEN];
	const char *why;
	int ret;

	ret = bfs_repo_chunk_check(repo, id, size, out, &why);
	if (ret == -EIO && why) {
		repo_chunk_bad(id, why);
	} else if (ret == -ENOENT) {
		repo_chunk_name(id, name);
		bfs_err("chunk \"%s\" is missing", name);
	}
	return ret;
}

/*
 * Sealed objects (manifests and records): magic, version, 3 zero bytes,
 * nonce, ciphertext, tag.  The AAD is the first 8 bytes and the object's
 * name, so a sealed object cannot be passed off under another name.
 */

static int repo_sealed_aad(const uint8_t *hdr, const char *name,
			   uint8_t aad[SEALED_AAD_HDR + REPO_NAME_LEN],
			   size_t *aadlen)
{
	size_t n = strlen(name);

	if (n >= REPO_NAME_LEN)
		return -ENAMETOOLONG;
	memcpy(aad, hdr, SEALED_AAD_HDR);
	memcpy(aad + SEALED_AAD_HDR, name, n);
	*aadlen = SEALED_AAD_HDR + n;
	return 0;
}

static int repo_put_sealed(struct bfs_repo *repo, const char *magic,
			   const uint8_t key[BFS_KEY_LEN], const char *name,
			   const void *plain, size_t len, unsigned flags)
{
	uint8_t aad[SEALED_AAD_HDR + REPO_NAME_LEN];
	size_t aadlen, total = SEALED_HDR_LEN + len + BFS_TAG_LEN;
	uint8_t *obj;
	int ret;

	obj = malloc(total);
	if (!obj)
		return -ENOMEM;
	memcpy(obj, magic, 4);
	obj[4] = SEALED_VERSION;
	obj[5] = obj[6] = obj[7] = 0;
	ret = repo_sealed_aad(obj, name, aad, &aadlen);
	if (!ret)
		ret = bfs_gcm_seal(key, aad, aadlen, plain, len,
				   obj + SEALED_HDR_LEN, obj + SEALED_AAD_HDR,
				   obj + SEALED_HDR_LEN + len);
	if (!ret)
		ret = bfs_backend_put(repo->be, name, obj, total, flags);
	free(obj);
	return ret;
}

/* Authenticate obj in place: *plain points into it, NUL-terminated. */
static int repo_open_sealed(const char *magic, const uint8_t key[BFS_KEY_LEN],
			    const char *name, struct bfs_buf *b,
			    const char **plain, size_t *plen)
{
	uint8_t aad[SEALED_AAD_HDR + REPO_NAME_LEN];
	uint8_t *obj = b->data;
	size_t aadlen, len;
	uint8_t *text;

	if (b->len < SEALED_HDR_LEN + BFS_TAG_LEN || memcmp(obj, magic, 4) ||
	    obj[4] != SEALED_VERSION || obj[5] || obj[6] || obj[7]) {
		bfs_err("object \"%s\" has a bad header", name);
		return -EIO;
	}
	if (repo_sealed_aad(obj, name, aad, &aadlen))
		return -ENAMETOOLONG;
	len = b->len - SEALED_HDR_LEN - BFS_TAG_LEN;
	text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	if (bfs_gcm_open(key, obj + SEALED_AAD_HDR, aad, aadlen,
			 obj + SEALED_HDR_LEN, len, text,
			 obj + SEALED_HDR_LEN + len)) {
		free(text);
		bfs_err("object \"%s\" failed authentication", name);
		return -EIO;
	}
	/* hand the plaintext over in place of the sealed bytes */
	memcpy(obj, text, len);
	obj[len] = 0;
	free(text);
	*plain = (const char *)obj;
	*plen = len;
	return 0;
}

/* Fetch (bounded) and authenticate; the plaintext lives in b. */
static int repo_get_sealed(struct bfs_repo *repo, const char *magic,
			   const uint8_t key[BFS_KEY_LEN], const char *name,
			   size_t max, struct bfs_buf *b, const char **plain,
			   size_t *plen)
{
	int ret;

	bfs_buf_init(b, SEALED_HDR_LEN + max + BFS_TAG_LEN);
	ret = bfs_backend_get(repo->be, name, 0, 0, b);
	if (ret == -EFBIG) {
		bfs_err("object \"%s\" is too large", name);
		ret = -EIO;
	}
	if (!ret)
		ret = repo_open_sealed(magic, key, name, b, plain, plen);
	if (ret)
		bfs_buf_release(b);
	return ret;
}

/* Manifests. */

/*
 * A manifest's object name carries the backup's plaintext size,
 * "manifests/<instance>/<timestamp>_<size>", so that a listing alone
 * answers stat() for every backup (ls -l costs one request per listing
 * page, not one per backup).  The name is not authenticated: loading the
 * manifest checks it against the sealed content.
 */
static int repo_manifest_name(char out[REPO_NAME_LEN], const char *instance,
			      const char *timestamp, uint64_t size)
{
	char leaf[BFS_TIMESTAMP_LEN + 24];

	if (!bfs_name_ok(instance) || bfs_timestamp_parse(timestamp, NULL))
		return -EINVAL;
	snprintf(leaf, sizeof(leaf), "%s_%llu", timestamp,
		 (unsigned long long)size);
	return repo_name(out, "manifests", instance, leaf);
}

/* Split a leaf "<timestamp>_<size>": 0 or -EINVAL. */
static int repo_manifest_leaf(const char *leaf, char ts[BFS_TIMESTAMP_LEN + 1],
			      uint64_t *size)
{
	unsigned long long v;
	char *end;

	if (strlen(leaf) < BFS_TIMESTAMP_LEN + 2 ||
	    leaf[BFS_TIMESTAMP_LEN] != '_')
		return -EINVAL;
	memcpy(ts, leaf, BFS_TIMESTAMP_LEN);
	ts[BFS_TIMESTAMP_LEN] = 0;
	if (bfs_timestamp_parse(ts, NULL))
		return -EINVAL;
	/* canonical decimal only: one name per backup */
	leaf += BFS_TIMESTAMP_LEN + 1;
	if (*leaf < '0' || *leaf > '9' || (leaf[0] == '0' && leaf[1]))
		return -EINVAL;
	errno = 0;
	v = strtoull(leaf, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*size = v;
	return 0;
}

struct repo_find {
	size_t skip;
	char name[REPO_NAME_LEN];
	int found;
};

static int repo_find_cb(const char *name, uint64_t size, int is_prefix,
			void *arg)
{
	char ts[BFS_TIMESTAMP_LEN + 1];
	struct repo_find *f = arg;
	uint64_t bytes;

	(void)size;
	if (is_prefix || strlen(name) <= f->skip ||
	    repo_manifest_leaf(name + f->skip, ts, &bytes) ||
	    strlen(name) >= sizeof(f->name))
		return 0;
	if (f->found++) {
		bfs_warn("two manifests for one backup: \"%s\" and \"%s\"",
			 f->name, name);
		return 0;
	}
	memcpy(f->name, name, strlen(name) + 1);
	return 0;
}

/* The object name of a backup known by instance and timestamp. */
static int repo_manifest_find(struct bfs_repo *repo, const char *instance,
			      const char *timestamp, char out[REPO_NAME_LEN])
{
	struct repo_find f = {0};
	char prefix[REPO_NAME_LEN];
	int ret;

	if (!bfs_name_ok(instance) || bfs_timestamp_parse(timestamp, NULL))
		return -EINVAL;
	ret = repo_name(prefix, "manifests", instance, timestamp);
	if (ret)
		return ret;
	f.skip = strlen(prefix) - BFS_TIMESTAMP_LEN;
	/* "<ts>_": fits, REPO_NAME_LEN has room for a whole leaf */
	memcpy(prefix + strlen(prefix), "_", 2);
	ret = bfs_backend_list(repo->be, prefix, '/', repo_find_cb, &f);
	if (ret)
		return ret;
	if (!f.found)
		return -ENOENT;
	memcpy(out, f.name, REPO_NAME_LEN);
	return 0;
}

int bfs_repo_manifest_put(struct bfs_repo *repo, const struct bfs_manifest *m)
{
	char name[REPO_NAME_LEN], other[REPO_NAME_LEN];
	size_t len;
	char *json;
	int ret;

	ret = repo_manifest_name(name, m->instance, m->timestamp, m->size);
	if (ret)
		return ret;
	/* Timestamps are unique per instance, whatever the size: the
	 * create-if-absent put below only guards the exact name. */
	ret = repo_manifest_find(repo, m->instance, m->timestamp, other);
	if (ret != -ENOENT)
		return ret ? ret : -EEXIST;
	ret = bfs_manifest_encode(m, &json, &len);
	if (ret)
		return ret;
	/* a backup exists exactly when this succeeds: never overwrite one */
	ret = repo_put_sealed(repo, SEALED_MANIFEST, repo->keys.manifest, name,
			      json, len, BFS_PUT_EXCL);
	if (ret == -EEXIST)
		bfs_debug("manifest \"%s\" exists already", name);
	free(json);
	return ret;
}

/* The manifest stored under a name must describe that name. */
static int repo_manifest_check(const char *name, const struct bfs_manifest *m,
			       const char *instance, const char *timestamp)
{
	char expect[REPO_NAME_LEN];

	if (!strcmp(m->instance, instance) &&
	    !strcmp(m->timestamp, timestamp) &&
	    !repo_manifest_name(expect, instance, timestamp, m->size) &&
	    !strcmp(expect, name))
		return 0;
	bfs_err("manifest \"%s\" describes another backup", name);
	return -EIO;
}

/* Load the manifest stored under name (known to be instance/ts). */
static int repo_manifest_load(struct bfs_repo *repo, const char *name,
			      const char *instance, const char *timestamp,
			      struct bfs_manifest **out)
{
	struct bfs_manifest *m;
	const char *json;
	char reason[256];
	struct bfs_buf b;
	size_t len;
	int ret;

	ret = repo_get_sealed(repo, SEALED_MANIFEST, repo->keys.manifest, name,
			      BFS_MANIFEST_MAX_BYTES, &b, &json, &len);
	if (ret)
		return ret;
	ret = bfs_manifest_decode(json, len, &m, reason, sizeof(reason));
	bfs_buf_release(&b);
	if (ret == -EBADMSG) {
		bfs_err("manifest \"%s\" is malformed: %s", name, reason);
		return -EIO;
	}
	if (ret)
		return ret;
	ret = repo_manifest_check(name, m, instance, timestamp);
	if (ret) {
		bfs_manifest_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

int bfs_repo_manifest_get(struct bfs_repo *repo, const char *instance,
			  const char *timestamp, uint64_t size,
			  struct bfs_manifest **out)
{
	char name[REPO_NAME_LEN];
	int ret;

	*out = NULL;
	if (size == BFS_SIZE_UNKNOWN)
		ret = repo_manifest_find(repo, instance, timestamp, name);
	else
		ret = repo_manifest_name(name, instance, timestamp, size);
	if (ret)
		return ret;
	return repo_manifest_load(repo, name, instance, timestamp, out);
}

int bfs_repo_manifest_delete(struct bfs_repo *repo, const char *instance,
			     const char *timestamp)
{
	char name[REPO_NAME_LEN];
	int ret;

	ret = repo_manifest_find(repo, instance, timestamp, name);
	if (ret)
		return ret;
	return bfs_backend_remove(repo->be, name);
}

/* Listings. */

/* A growable array of names. */
struct repo_names {
	char **v;
	size_t n, cap;
};

static int repo_names_add(struct repo_names *a, const char *s, size_t len)
{
	char **p;

	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		p = realloc(a->v, a->cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		a->v = p;
	}
	a->v[a->n] = strndup(s, len);
	if (!a->v[a->n])
		return -ENOMEM;
	a->n++;
	return 0;
}

static void repo_names_free(struct repo_names *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

static int repo_names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect every common prefix "manifests/<instance>/" as "<instance>". */
static int repo_instances_cb(const char *name, uint64_t size, int is_prefix,
			     void *arg)
{
	size_t skip = strlen("manifests/"), len = strlen(name);
	char inst[BFS_NAME_MAX + 1];

	if (!is_prefix || len <= skip + 1 || len - skip - 1 > BFS_NAME_MAX)
		return 0;
	memcpy(inst, name + skip, len - skip - 1);
	inst[len - skip - 1] = 0;
	if (!bfs_name_ok(inst))
		return 0;
	return repo_names_add(arg, inst, len - skip - 1);
}

int bfs_repo_list_instances(struct bfs_repo *repo, bfs_name_cb cb, void *arg)
{
	struct repo_names a = {0};
	size_t i;
	int ret;

	ret = bfs_backend_list(repo->be, "manifests/", '/', repo_instances_cb,
			       &a);
	/* "pg1-a/" sorts before "pg1/": sort the ids, not the prefixes */
	if (!ret && a.n)
		qsort(a.v, a.n, sizeof(*a.v), repo_names_cmp);
	for (i = 0; !ret && i < a.n; i++)
		ret = cb(a.v[i], arg);
	repo_names_free(&a);
	return ret;
}

/* The objects directly below a prefix, by their last component. */
struct repo_leaves {
	size_t skip;
	int (*cb)(const char *leaf, void *arg);
	void *arg;
};

static int repo_leaves_cb(const char *name, uint64_t size, int is_prefix,
			  void *arg)
{
	struct repo_leaves *l = arg;

	(void)size;
	if (is_prefix || strlen(name) <= l->skip)
		return 0;
	return l->cb(name + l->skip, l->arg);
}

static int repo_list_leaves(struct bfs_repo *repo, const char *dir,
			    const char *sub, int (*cb)(const char *, void *),
			    void *arg)
{
	char prefix[REPO_NAME_LEN];
	struct repo_leaves l = {.cb = cb, .arg = arg};
	int n;

	if (!bfs_name_ok(sub))
		return -EINVAL;
	n = snprintf(prefix, sizeof(prefix), "%s/%s/", dir, sub);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return -ENAMETOOLONG;
	l.skip = (size_t)n;
	return bfs_backend_list(repo->be, prefix, '/', repo_leaves_cb, &l);
}

struct repo_backups {
	bfs_backup_cb cb;
	void *arg;
};

static int repo_backup_leaf(const char *leaf, void *arg)
{
	struct repo_backups *rb = arg;
	char ts[BFS_TIMESTAMP_LEN + 1];
	uint64_t size;

	if (repo_manifest_leaf(leaf, ts, &size))
		return 0; /* not ours: a backup has no such name */
	return rb->cb(ts, size, rb->arg);
}

int bfs_repo_list_backups(struct bfs_repo *repo, const char *instance,
			  bfs_backup_cb cb, void *arg)
{
	struct repo_backups rb = {cb, arg};

	/* fixed-width timestamps first: byte order is time order */
	return repo_list_leaves(repo, "manifests", instance, repo_backup_leaf,
				&rb);
}

/* Records. */

static int repo_record_name(char out[REPO_NAME_LEN], const char *kind,
			    const char *name)
{
	if (!bfs_name_ok(kind) || !bfs_name_ok(name))
		return -EINVAL;
	return repo_name(out, "records", kind, name);
}

int bfs_repo_record_put(struct bfs_repo *repo, const char *kind,
			const char *name, json_t *value, unsigned flags)
{
	char oname[REPO_NAME_LEN];
	char *text;
	int ret;

	ret = repo_record_name(oname, kind, name);
	if (ret)
		return ret;
	text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return -EINVAL;
	if (strlen(text) > REPO_RECORD_MAX)
		ret = -EFBIG;
	else
		ret = repo_put_sealed(repo, SEALED_RECORD, repo->keys.meta,
				      oname, text, strlen(text), flags);
	/* a record may hold a secret (an imported Trove key) */
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return ret;
}

int bfs_repo_record_get(struct bfs_repo *repo, const char *kind,
			const char *name, json_t **value)
{
	char oname[REPO_NAME_LEN];
	json_error_t jerr;
	const char *text;
	struct bfs_buf b;
	size_t len;
	int ret;

	*value = NULL;
	ret = repo_record_name(oname, kind, name);
	if (ret)
		return ret;
	ret = repo_get_sealed(repo, SEALED_RECORD, repo->keys.meta, oname,
			      REPO_RECORD_MAX, &b, &text, &len);
	if (ret)
		return ret;
	*value = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
			    &jerr);
	OPENSSL_cleanse(b.data, b.len);
	bfs_buf_release(&b);
	if (!*value) {
		bfs_err("record \"%s\" is malformed: %s", oname, jerr.text);
		return -EIO;
	}
	return 0;
}

int bfs_repo_record_delete(struct bfs_repo *repo, const char *kind,
			   const char *name)
{
	char oname[REPO_NAME_LEN];
	int ret;

	ret = repo_record_name(oname, kind, name);
	if (ret)
		return ret;
	return bfs_backend_remove(repo->be, oname);
}

struct repo_records {
	bfs_name_cb cb;
	void *arg;
};

static int repo_record_leaf(const char *leaf, void *arg)
{
	struct repo_records *rr = arg;

	return bfs_name_ok(leaf) ? rr->cb(leaf, rr->arg) : 0;
}

int bfs_repo_record_list(struct bfs_repo *repo, const char *kind,
			 bfs_name_cb cb, void *arg)
{
	struct repo_records rr = {cb, arg};

	return repo_list_leaves(repo, "records", kind, repo_record_leaf, &rr);
}

/*
 * Locks.  Both kinds follow the same protocol: create your own lock
 * first, then look for the other kind, and back off (removing yours) if
 * one is held.  Since each side creates before it looks, of a writer and
 * a gc starting together at least one sees the other: never both run.
 */

static int repo_lock_write(struct bfs_repo_lock *lk, unsigned flags)
{
	json_t *j;
	char *text;
	int ret;

	j = json_pack("{s:s,s:I,s:I}", "host", lk->repo->host, "pid",
		      (json_int_t)getpid(), "time", (json_int_t)time(NULL));
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	ret = bfs_backend_put(lk->repo->be, lk->name, text, strlen(text),
			      flags);
	free(text);
	return ret;
}

static int repo_lock_create(struct bfs_repo *repo, const char *kind,
			    struct bfs_repo_lock **out)
{
	struct bfs_repo_lock *lk;
	char hex[2 * 16 + 1];
	uint8_t rnd[16];
	int ret;

	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return -ENOMEM;
	lk->repo = repo;
	ret = bfs_random(rnd, sizeof(rnd));
	if (ret)
		goto out_free;
	bfs_hex(rnd, sizeof(rnd), hex);
	snprintf(lk->name, sizeof(lk->name), "locks/%s-%s", kind, hex);
	ret = repo_lock_write(lk, BFS_PUT_EXCL);
	if (ret)
		goto out_free;
	*out = lk;
	return 0;

out_free:
	free(lk);
	return ret;
}

/*
 * 1 if the lock object is held, 0 if it is gone or stale (then removed).
 * A lock we cannot read counts as held: better to wait for an operator
 * than to collect chunks under a running backup.
 */
static int repo_lock_live(struct bfs_repo *repo, const char *name, time_t now)
{
	json_int_t t;
	struct bfs_buf b;
	json_t *j;
	int ret;

	bfs_buf_init(&b, LOCK_MAX);
	ret = bfs_backend_get(repo->be, name, 0, 0, &b);
	if (ret == -ENOENT)
		return 0;
	j = ret ? NULL : json_loadb((const char *)b.data, b.len, 0, NULL);
	bfs_buf_release(&b);
	if (!json_is_integer(json_object_get(j, "time"))) {
		bfs_warn("cannot read lock \"%s\": treating it as held", name);
		json_decref(j);
		return 1;
	}
	t = json_integer_value(json_object_get(j, "time"));
	json_decref(j);
	if (now - t <= BFS_LOCK_STALE_SECS)
		return 1;
	bfs_warn("removing stale lock \"%s\" (%lld s old)", name,
		 (long long)(now - t));
	ret = bfs_backend_remove(repo->be, name);
	return ret && ret != -ENOENT ? ret : 0;
}

struct repo_lock_scan {
	const char *own;
	int writers, gcs;
	struct repo_names found;
};

static int repo_lock_scan_cb(const char *name, uint64_t size, int is_prefix,
			     void *arg)
{
	struct repo_lock_scan *s = arg;

	if (is_prefix || !strcmp(name, s->own))
		return 0;
	if ((s->writers &&
	     !strncmp(name, LOCK_WRITER_PREFIX, strlen(LOCK_WRITER_PREFIX))) ||
	    (s->gcs && !strncmp(name, LOCK_GC_PREFIX, strlen(LOCK_GC_PREFIX))))
		return repo_names_add(&s->found, name, strlen(name));
	return 0;
}

/* Is any lock of the given kinds other than own held?  1, 0 or -errno. */
static int repo_lock_others(struct bfs_repo *repo, const char *own, int writers,
			    int gcs)
{
	struct repo_lock_scan s = {.own = own, .writers = writers, .gcs = gcs};
	time_t now = time(NULL);
	size_t i;
	int ret;

	/* list first, then read: no backend calls inside a listing */
	ret = bfs_backend_list(repo->be, "locks/", '/', repo_lock_scan_cb, &s);
	for (i = 0; !ret && i < s.found.n; i++) {
		ret = repo_lock_live(repo, s.found.v[i], now);
		if (ret > 0)
			bfs_info("repository busy: lock \"%s\" is held",
				 s.found.v[i]);
	}
	repo_names_free(&s.found);
	return ret;
}

static int repo_lock(struct bfs_repo *repo, const char *kind, int writers,
		     struct bfs_repo_lock **out)
{
	struct bfs_repo_lock *lk;
	int ret;

	*out = NULL;
	ret = repo_lock_create(repo, kind, &lk);
	if (ret)
		return ret;
	ret = repo_lock_others(repo, lk->name, writers, 1);
	if (ret) {
		bfs_repo_unlock(lk);
		return ret > 0 ? -EBUSY : ret;
	}
	*out = lk;
	return 0;
}

int bfs_repo_lock_writer(struct bfs_repo *repo, struct bfs_repo_lock **out)
{
	/* writers share: only a gc lock stands in the way */
	return repo_lock(repo, LOCK_WRITER, 0, out);
}

int bfs_repo_lock_gc(struct bfs_repo *repo, struct bfs_repo_lock **out)
{
	return repo_lock(repo, LOCK_GC, 1, out);
}

int bfs_repo_lock_refresh(struct bfs_repo_lock *lock)
{
	uint64_t size;
	int ret;

	/*
	 * Gone means another host found it stale and removed it: a gc may
	 * have run since, so the job must not go on as if it were covered.
	 */
	ret = bfs_backend_stat(lock->repo->be, lock->name, &size);
	if (ret == -ENOENT) {
		bfs_err("lock \"%s\" was removed by another host", lock->name);
		return -ESTALE;
	}
	if (ret)
		return ret;
	return repo_lock_write(lock, 0);
}

void bfs_repo_unlock(struct bfs_repo_lock *lock)
{
	char ebuf[128];
	int ret;

	if (!lock)
		return;
	ret = bfs_backend_remove(lock->repo->be, lock->name);
	if (ret && ret != -ENOENT)
		bfs_warn("cannot remove lock \"%s\": %s", lock->name,
			 strerror_r(-ret, ebuf, sizeof(ebuf)));
	free(lock);
}

/* Garbage collection. */

struct repo_ids {
	uint8_t (*v)[BFS_ID_LEN];
	uint64_t *size; /* only for the ids to remove */
	size_t n, cap;
};

static int repo_ids_add(struct repo_ids *a, const uint8_t id[BFS_ID_LEN],
			uint64_t size)
{
	size_t cap = a->cap ? a->cap * 2 : 1024;
	uint64_t *s;
	void *v;

	if (a->n == a->cap) {
		v = realloc(a->v, cap * sizeof(*a->v));
		if (!v)
			return -ENOMEM;
		a->v = v;
		s = realloc(a->size, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		a->size = s;
		a->cap = cap; /* only once both have grown */
	}
	memcpy(a->v[a->n], id, BFS_ID_LEN);
	a->size[a->n] = size;
	a->n++;
	return 0;
}

static void repo_ids_free(struct repo_ids *a)
{
	free(a->v);
	free(a->size);
}

static int repo_id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, BFS_ID_LEN);
}

/* Collect "manifests/<instance>/<timestamp>_<size>"; refuse anything
 * else. */
static int repo_gc_manifests_cb(const char *name, uint64_t size, int is_prefix,
				void *arg)
{
	const char *inst = name + strlen("manifests/"), *leaf;
	char buf[BFS_NAME_MAX + 1], ts[BFS_TIMESTAMP_LEN + 1];
	uint64_t bytes;

	(void)size, (void)is_prefix;
	leaf = strchr(inst, '/');
	if (leaf && (size_t)(leaf - inst) <= BFS_NAME_MAX) {
		memcpy(buf, inst, (size_t)(leaf - inst));
		buf[leaf - inst] = 0;
		if (bfs_name_ok(buf) &&
		    !repo_manifest_leaf(leaf + 1, ts, &bytes))
			return repo_names_add(arg, name, strlen(name));
	}
	/* it may hold references we cannot see: deleting would lose data */
	bfs_err("gc: unexpected object \"%s\", refusing to collect", name);
	return -EBADMSG;
}

/* Keep a long gc from looking stale to other hosts. */
static void repo_gc_keepalive(struct bfs_repo_lock *lk, time_t *last)
{
	time_t now = time(NULL);

	if (now - *last < BFS_LOCK_STALE_SECS / 4)
		return;
	if (!bfs_repo_lock_refresh(lk))
		*last = now;
}

/* Every chunk id referenced by a manifest, sorted. */
static int repo_gc_referenced(struct bfs_repo *repo, struct bfs_repo_lock *lk,
			      struct repo_ids *ids, uint64_t *manifests)
{
	struct repo_names names = {0};
	struct bfs_manifest *m;
	time_t last = time(NULL);
	char inst[BFS_NAME_MAX + 1], ts[BFS_TIMESTAMP_LEN + 1];
	const char *slash;
	uint64_t size;
	size_t i, j;
	int ret;

	ret = bfs_backend_list(repo->be, "manifests/", 0, repo_gc_manifests_cb,
			       &names);
	for (i = 0; !ret && i < names.n; i++) {
		/* the callback checked the shape */
		slash = strchr(names.v[i] + strlen("manifests/"), '/');
		snprintf(inst, sizeof(inst), "%.*s",
			 (int)(slash - names.v[i] - strlen("manifests/")),
			 names.v[i] + strlen("manifests/"));
		repo_manifest_leaf(slash + 1, ts, &size);
		/* one unreadable manifest stops gc: its chunks must stay */
		ret = repo_manifest_load(repo, names.v[i], inst, ts, &m);
		if (ret) {
			bfs_err("gc: cannot load manifest \"%s\", nothing "
				"removed",
				names.v[i]);
			break;
		}
		for (j = 0; !ret && j < m->nchunks; j++)
			ret = repo_ids_add(ids, m->chunks[j].id, 0);
		bfs_manifest_free(m);
		(*manifests)++;
		repo_gc_keepalive(lk, &last);
	}
	repo_names_free(&names);
	if (!ret && ids->n)
		qsort(ids->v, ids->n, BFS_ID_LEN, repo_id_cmp);
	return ret;
}

struct repo_gc_scan {
	const struct repo_ids *keep;
	struct repo_ids drop;
	uint64_t total;
};

/* "chunks/<2 hex>/<64 hex>": note the unreferenced ones. */
static int repo_gc_chunks_cb(const char *name, uint64_t size, int is_prefix,
			     void *arg)
{
	struct repo_gc_scan *s = arg;
	const char *hex = name + strlen("chunks/xx/");
	uint8_t id[BFS_ID_LEN];

	if (strlen(name) != CHUNK_NAME_LEN - 1 || name[9] != '/' ||
	    memcmp(name + 7, hex, 2) || repo_unhex(hex, id, BFS_ID_LEN)) {
		bfs_warn("gc: skipping unexpected object \"%s\"", name);
		return 0;
	}
	s->total++;
	if (s->keep->n &&
	    bsearch(id, s->keep->v, s->keep->n, BFS_ID_LEN, repo_id_cmp))
		return 0;
	return repo_ids_add(&s->drop, id, size);
}

static int repo_gc_remove(struct bfs_repo *repo, struct bfs_repo_lock *lk,
			  const struct repo_ids *drop,
			  struct bfs_gc_stats *stats)
{
	char name[CHUNK_NAME_LEN];
	time_t last = time(NULL);
	int ret, first = 0;
	size_t i;

	for (i = 0; i < drop->n; i++) {
		repo_chunk_name(drop->v[i], name);
		ret = bfs_backend_remove(repo->be, name);
		if (!ret) {
			stats->chunks_removed++;
			stats->bytes_removed += drop->size[i];
		} else if (ret != -ENOENT && !first) {
			first = ret; /* go on: remove what we can */
		}
		repo_gc_keepalive(lk, &last);
	}
	return first;
}

int bfs_repo_gc(struct bfs_repo *repo, struct bfs_gc_stats *stats)
{
	struct repo_ids keep = {0};
	struct repo_gc_scan scan = {.keep = &keep};
	struct bfs_repo_lock *lk;
	int ret;

	memset(stats, 0, sizeof(*stats));
	ret = bfs_repo_lock_gc(repo, &lk);
	if (ret)
		return ret;
	ret = repo_gc_referenced(repo, lk, &keep, &stats->manifests);
	if (!ret)
		ret = bfs_backend_list(repo->be, "chunks/", 0,
				       repo_gc_chunks_cb, &scan);
	stats->chunks_total = scan.total;
	if (!ret)
		ret = repo_gc_remove(repo, lk, &scan.drop, stats);
	if (!ret)
		bfs_info("gc: removed %llu of %llu chunks (%llu bytes)",
			 (unsigned long long)stats->chunks_removed,
			 (unsigned long long)stats->chunks_total,
			 (unsigned long long)stats->bytes_removed);
	repo_ids_free(&scan.drop);
	repo_ids_free(&keep);
	bfs_repo_unlock(lk);
	return ret;
}
