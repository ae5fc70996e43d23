// SPDX-License-Identifier: Apache-2.0
/*
 * The "swift" backend: objects in one OpenStack Swift container.
 *
 *   {"type": "swift", "auth_url": "http://127.0.0.1:8080/auth/v1.0",
 *    "user": "test:tester", "key_file": "/etc/backupfs/swift.key",
 *    "container": "backupfs"}
 *
 * (all settings, Keystone v3 and the environment: swift_conf.c and
 * docs).  The container is created at open when missing, unless
 * "create_container" is false (a legacy container to read).  Reads are
 * ranged GETs (Swift joins SLO and DLO segments server-side, so large
 * objects read like any other); puts send the body's MD5 as ETag, so
 * Swift refuses a damaged upload, and create-if-absent is If-None-Match.
 * Listings page with marker, one GET per page, never a HEAD per object.
 * Object names are percent-encoded byte by byte.
 */
#include "log.h"
#include "swift_int.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

/* A listing page: names of up to 1024 bytes, \uXXXX-escaped at worst. */
#define SWIFT_PAGE_MAX (64u << 20)

static const struct bfs_backend_ops swift_ops;

static struct swift_backend *swift_of(struct bfs_backend *be)
{
	/* Only our own ops table may reach us: a checked downcast. */
	if (be->ops != &swift_ops)
		abort();
	return (struct swift_backend *)be;
}

/* Strict UTF-8: Swift refuses anything else (412 "Invalid UTF8"). */
static int swift_utf8_ok(const unsigned char *s)
{
	uint32_t cp;
	int n, i;

	while (*s) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		n = (*s & 0xe0) == 0xc0	  ? 1
		    : (*s & 0xf0) == 0xe0 ? 2
		    : (*s & 0xf8) == 0xf0 ? 3
					  : -1;
		if (n < 0)
			return 0;
		cp = *s & (0x3f >> n);
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* For the log: a name that is not UTF-8, with '?' for every byte that is
 * not ASCII. */
static void swift_ascii(const char *name, char *out, size_t len)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < len; i++)
		out[i] = (unsigned char)name[i] < 0x80 ? name[i] : '?';
	out[i] = 0;
}

/* The generic checks are done (backend.c); these are Swift's own. */
static int swift_name_check(const char *what, const char *name)
{
	char safe[128];

	if (strlen(name) > SWIFT_OBJECT_MAX) {
		bfs_err("swift: object %s \"%.64s...\" is over %d bytes", what,
			name, SWIFT_OBJECT_MAX);
		return -ENAMETOOLONG;
	}
	if (!swift_utf8_ok((const unsigned char *)name)) {
		swift_ascii(name, safe, sizeof(safe));
		bfs_err("swift: object %s \"%s\" is not valid UTF-8", what,
			safe);
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* get, stat, put, remove */

static int swift_range(struct swift_req *r, uint64_t off, uint64_t len,
		       char *hdr, size_t hlen)
{
	if (!off && !len)
		return 0;
	if (len && off > INT64_MAX - len)
		return -EINVAL;
	r->ranged = 1;
	r->range_off = off;
	r->range_len = len;
	if (len)
		snprintf(hdr, hlen, "Range: bytes=%" PRIu64 "-%" PRIu64, off,
			 off + len - 1);
	else
		snprintf(hdr, hlen, "Range: bytes=%" PRIu64 "-", off);
	r->hdrs[0] = hdr;
	return 0;
}

static int swift_get(struct bfs_backend *be, const char *name, uint64_t off,
		     uint64_t len, unsigned flags, struct bfs_buf *out)
{
	struct swift_backend *sb = swift_of(be);
	struct swift_req r = {0};
	char range[64];
	int ret;

	ret = swift_name_check("name", name);
	if (ret)
		return ret;
	r.method = "GET";
	r.what = name;
	r.path = swift_encode(name, 1);
	if (!r.path)
		return -ENOMEM;
	r.authed = 1;
	r.out = out;
	ret = swift_range(&r, off, len, range, sizeof(range));
	/* Only a whole object can be checked against its MD5, and a sealed
	 * one needs no MD5: its AEAD tag is checked by the caller, and MD5
	 * costs more CPU than decrypting it. */
	r.verify_md5 = !r.ranged && !(flags & BFS_GET_SEALED);
	if (!ret)
		ret = swift_run(sb, &r);
	/* 416: the range starts at or past the end: nothing to read. */
	if (ret == -ERANGE)
		ret = 0;
	swift_req_release(&r);
	free((char *)r.path);
	return ret;
}

/* HEAD of name: 0 with the response headers in r, or -errno. */
static int swift_head(struct swift_backend *sb, const char *name,
		      struct swift_req *r)
{
	int ret;

	r->method = "HEAD";
	r->what = name;
	r->path = swift_encode(name, 1);
	if (!r->path)
		return -ENOMEM;
	r->authed = 1;
	ret = swift_run(sb, r);
	free((char *)r->path);
	r->path = NULL;
	return ret;
}

/* One HEAD: what Swift says of the object (of an SLO or DLO manifest, the
 * size of the whole), its large-object kind and Trove's metadata. */
static int swift_info(struct bfs_backend *be, const char *name,
		      struct bfs_object_info *out)
{
	struct swift_backend *sb = swift_of(be);
	struct swift_req r = {0};
	int ret;

	ret = swift_name_check("name", name);
	if (!ret)
		ret = swift_head(sb, name, &r);
	if (!ret && r.clen < 0) {
		bfs_err("swift HEAD \"%s\": no Content-Length in the answer",
			name);
		ret = -EIO;
	}
	if (!ret) {
		out->size = (uint64_t)r.clen;
		out->layout = r.layout;
		/* all three fit: the request's buffers are no larger */
		snprintf(out->etag, sizeof(out->etag), "%s", r.etag);
		snprintf(out->datastore, sizeof(out->datastore), "%s",
			 r.meta_ds);
		snprintf(out->datastore_version, sizeof(out->datastore_version),
			 "%s", r.meta_dsv);
	}
	swift_req_release(&r);
	return ret;
}

static int swift_stat(struct bfs_backend *be, const char *name, uint64_t *size)
{
	struct bfs_object_info info;
	int ret;

	ret = swift_info(be, name, &info);
	if (!ret)
		*size = info.size;
	return ret;
}

/*
 * Create-if-absent.  Swift checks If-None-Match: * when a PUT starts, not
 * atomically with its end: of several PUTs that overlap, all may succeed
 * (measured: up to 15 of 16), the newest replacing the others.  So each
 * exclusive PUT carries a random claim, and its writer, once the PUT is
 * done, waits as long as the PUT took (a competitor that passed the check
 * before our object landed finishes within about that), then reads the
 * newest claim back: only the writer whose claim is there has created the
 * object; the others get -EEXIST, as if they had come later.
 */
#define SWIFT_SETTLE_EXTRA_MS 50
#define SWIFT_SETTLE_MAX_MS   5000

/* 1 if the newest copy of name carries our claim, 0 if another, -errno. */
static int swift_claim_check(struct swift_backend *sb, const char *name,
			     const char *claim)
{
	struct swift_req r = {0};
	int ret;

	/* The newest of all replicas, not the first to answer. */
	r.hdrs[0] = "X-Newest: true";
	ret = swift_head(sb, name, &r);
	if (!ret)
		ret = !strcmp(r.claim, claim);
	else if (ret == -ENOENT)
		bfs_err("swift PUT \"%s\": the object vanished right after "
			"it was created",
			name);
	swift_req_release(&r);
	if (ret < 0)
		return ret == -ENOENT ? -EIO : ret;
	if (!ret)
		bfs_debug("swift PUT \"%s\": another writer created it at the "
			  "same time",
			  name);
	return ret;
}

static int swift_claim_settle(struct swift_backend *sb, const char *name,
			      const char *claim, uint64_t took_ms)
{
	uint64_t wait = took_ms + SWIFT_SETTLE_EXTRA_MS;
	int ret;

	if (wait > SWIFT_SETTLE_MAX_MS)
		wait = SWIFT_SETTLE_MAX_MS;
	usleep((useconds_t)(wait * 1000));
	ret = swift_claim_check(sb, name, claim);
	return ret < 0 ? ret : ret ? 0 : -EEXIST;
}

static int swift_claim_new(char claim[33], char *hdr, size_t hlen)
{
	uint8_t rnd[16];
	int i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	for (i = 0; i < 16; i++)
		snprintf(claim + 2 * i, 3, "%02x", rnd[i]);
	snprintf(hdr, hlen, "X-Object-Meta-Bfs-Claim: %s", claim);
	return 0;
}

static int swift_put(struct bfs_backend *be, const char *name, const void *data,
		     size_t len, unsigned flags)
{
	struct swift_backend *sb = swift_of(be);
	char md5[33], etag[48], claim[33], claim_hdr[64];
	struct swift_req r = {0};
	uint64_t t0;
	int ret;

	ret = swift_name_check("name", name);
	if (!ret)
		ret = swift_md5_hex(data ? data : "", len, md5);
	if (!ret && (flags & BFS_PUT_EXCL))
		ret = swift_claim_new(claim, claim_hdr, sizeof(claim_hdr));
	if (ret)
		return ret;
	snprintf(etag, sizeof(etag), "ETag: %s", md5);
	r.method = "PUT";
	r.what = name;
	r.path = swift_encode(name, 1);
	if (!r.path)
		return -ENOMEM;
	r.authed = 1;
	r.body = data;
	r.body_len = len;
	r.put_md5 = md5;
	r.hdrs[0] = etag;
	r.hdrs[1] = "Content-Type: application/octet-stream";
	if (flags & BFS_PUT_EXCL) {
		r.hdrs[2] = "If-None-Match: *";
		r.hdrs[3] = claim_hdr;
		r.excl = 1;
	}
	t0 = swift_now_ms();
	ret = swift_run(sb, &r);
	if (!ret && r.excl)
		ret = swift_claim_settle(sb, name, claim, swift_now_ms() - t0);
	/* 412 on a retry: perhaps our own earlier attempt created it. */
	else if (ret == -EEXIST && r.ambiguous &&
		 swift_claim_check(sb, name, claim) == 1)
		ret = 0;
	swift_req_release(&r);
	free((char *)r.path);
	return ret;
}

static int swift_remove(struct bfs_backend *be, const char *name)
{
	struct swift_backend *sb = swift_of(be);
	struct swift_req r = {0};
	int ret;

	ret = swift_name_check("name", name);
	if (ret)
		return ret;
	r.method = "DELETE";
	r.what = name;
	r.path = swift_encode(name, 1);
	if (!r.path)
		return -ENOMEM;
	r.authed = 1;
	ret = swift_run(sb, &r);
	/* An earlier attempt may have deleted it already. */
	if (ret == -ENOENT && r.ambiguous)
		ret = 0;
	swift_req_release(&r);
	free((char *)r.path);
	return ret;
}

/* ------------------------------------------------------------------ */
/* list */

struct swift_lister {
	struct swift_backend *sb;
	const char *prefix;
	size_t plen;
	char delimiter;
	bfs_list_cb cb;
	void *arg;
	char *marker; /* the last name seen (new string) */
	struct bfs_buf page;
};

/* Names we could not hand out (or that are not ours to list) are left
 * out, as the local backend leaves out what it cannot name. */
static int swift_list_name_ok(const struct swift_lister *l, const char *name,
			      int is_prefix)
{
	char tmp[SWIFT_OBJECT_MAX + 2];
	size_t n = strlen(name);

	if (strncmp(name, l->prefix, l->plen) || n > SWIFT_OBJECT_MAX)
		return 0;
	if (!is_prefix)
		return bfs_backend_name_ok(name);
	if (n < 2 || name[n - 1] != '/')
		return 0;
	memcpy(tmp, name, n - 1);
	tmp[n - 1] = 0;
	return bfs_backend_name_ok(tmp);
}

static int swift_list_entry(struct swift_lister *l, json_t *e)
{
	json_t *v = json_object_get(e, "subdir");
	int is_prefix = v != NULL;
	json_int_t bytes = 0;
	const char *name;
	char *m;

	if (!is_prefix) {
		v = json_object_get(e, "name");
		bytes = json_integer_value(json_object_get(e, "bytes"));
	}
	name = json_string_value(v);
	if (!name || bytes < 0)
		return -EIO;
	/* Pages continue after the marker: a server repeating itself must
	 * not make us report a name twice or loop. */
	if (strcmp(name, l->marker) <= 0)
		return 0;
	m = strdup(name);
	if (!m)
		return -ENOMEM;
	free(l->marker);
	l->marker = m;
	if (!swift_list_name_ok(l, name, is_prefix)) {
		bfs_debug("swift: listing skips \"%.64s\"", name);
		return 0;
	}
	return l->cb(name, (uint64_t)bytes, is_prefix, l->arg);
}

static char *swift_list_query(const struct swift_lister *l)
{
	char *prefix, *marker, *q = NULL;
	size_t len;

	prefix = swift_encode(l->prefix, 0);
	marker = swift_encode(l->marker, 0);
	len = (prefix ? strlen(prefix) : 0) + (marker ? strlen(marker) : 0) +
	      96;
	if (prefix && marker)
		q = malloc(len);
	if (q)
		snprintf(q, len, "format=json&limit=%d&prefix=%s%s&marker=%s",
			 l->sb->conf.list_limit, prefix,
			 l->delimiter ? "&delimiter=%2F" : "", marker);
	free(prefix);
	free(marker);
	return q;
}

/* One page: 0 and *n entries, or -errno / the callback's value. */
static int swift_list_page(struct swift_lister *l, size_t *n)
{
	struct swift_req r = {0};
	json_t *arr;
	size_t i;
	int ret;

	r.method = "GET";
	r.what = l->sb->conf.container;
	r.query = swift_list_query(l);
	if (!r.query)
		return -ENOMEM;
	r.authed = 1;
	bfs_buf_reset(&l->page);
	r.out = &l->page;
	ret = swift_run(l->sb, &r);
	free((char *)r.query);
	swift_req_release(&r);
	if (ret == -ENOENT) {
		bfs_err("swift: container \"%s\" has vanished",
			l->sb->conf.container);
		return -EIO;
	}
	if (ret)
		return ret;
	/* 204 (older servers): an empty listing */
	arr = l->page.len ? json_loadb((const char *)l->page.data, l->page.len,
				       0, NULL)
			  : json_array();
	if (!json_is_array(arr)) {
		bfs_err("swift: listing of \"%s\" is not a JSON array",
			l->sb->conf.container);
		json_decref(arr);
		return -EIO;
	}
	*n = json_array_size(arr);
	for (i = 0; !ret && i < *n; i++)
		ret = swift_list_entry(l, json_array_get(arr, i));
	json_decref(arr);
	if (ret == -EIO)
		bfs_err("swift: malformed entry in the listing of \"%s\"",
			l->sb->conf.container);
	return ret;
}

static int swift_list(struct bfs_backend *be, const char *prefix,
		      char delimiter, bfs_list_cb cb, void *arg)
{
	struct swift_lister l = {
		.sb = swift_of(be),
		.prefix = prefix,
		.plen = strlen(prefix),
		.delimiter = delimiter,
		.cb = cb,
		.arg = arg,
	};
	size_t n;
	char *before;
	int ret;

	if (*prefix && swift_name_check("prefix", prefix))
		return -EINVAL;
	l.marker = strdup("");
	if (!l.marker)
		return -ENOMEM;
	bfs_buf_init(&l.page, SWIFT_PAGE_MAX);
	/* Until a short page; a full page that did not move the marker
	 * would repeat forever. */
	do {
		before = strdup(l.marker);
		ret = before ? swift_list_page(&l, &n) : -ENOMEM;
		if (!ret && n && !strcmp(before, l.marker)) {
			bfs_err("swift: listing of \"%s\" does not advance",
				l.sb->conf.container);
			ret = -EIO;
		}
		free(before);
	} while (!ret && n >= (size_t)l.sb->conf.list_limit);
	bfs_buf_release(&l.page);
	free(l.marker);
	return ret;
}

/* ------------------------------------------------------------------ */
/* open, destroy */

/* HEAD the container; PUT it when it is missing (and we may). */
static int swift_open_container(struct swift_backend *sb, char *err,
				size_t errlen)
{
	struct swift_req r = {0};
	int ret;

	r.method = "HEAD";
	r.what = sb->conf.container;
	r.authed = 1;
	r.err = err;
	r.errlen = errlen;
	ret = swift_run(sb, &r);
	swift_req_release(&r);
	if (ret != -ENOENT)
		return ret;
	if (!sb->conf.create_container) {
		bfs_errf(err, errlen,
			 "swift container \"%s\" does not exist "
			 "(\"create_container\" is false)",
			 sb->conf.container);
		return -ENOENT;
	}
	memset(&r, 0, sizeof(r));
	r.method = "PUT";
	r.what = sb->conf.container;
	r.authed = 1;
	r.err = err;
	r.errlen = errlen;
	ret = swift_run(sb, &r);
	swift_req_release(&r);
	if (!ret)
		bfs_info("swift: created container \"%s\"", sb->conf.container);
	return ret;
}

static int swift_open_checks(struct swift_backend *sb, char *err, size_t errlen)
{
	const struct swift_conf *c = &sb->conf;

	if (c->cacert && access(c->cacert, R_OK)) {
		bfs_errf(err, errlen,
			 "swift: cannot read the CA bundle "
			 "\"%s\": %s",
			 c->cacert, strerror(errno));
		return -errno;
	}
	if (c->insecure)
		bfs_warn("swift: TLS certificates are not verified "
			 "(\"insecure\": true)");
	sb->container_enc = swift_encode(c->container, 0);
	if (!sb->container_enc) {
		bfs_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void swift_free(struct swift_backend *sb)
{
	if (sb->http_ready)
		swift_http_release(sb);
	if (sb->auth_ready)
		swift_auth_release(sb);
	swift_conf_release(&sb->conf);
	free(sb->container_enc);
	free(sb);
}

int bfs_swift_open(json_t *conf, struct bfs_backend **out, char *err,
		   size_t errlen)
{
	struct swift_backend *sb;
	int ret;

	*out = NULL;
	sb = calloc(1, sizeof(*sb));
	if (!sb) {
		bfs_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = swift_conf_parse(conf, &sb->conf, err, errlen);
	if (ret) {
		free(sb);
		return ret;
	}
	sb->base.ops = &swift_ops;
	ret = swift_open_checks(sb, err, errlen);
	if (!ret) {
		ret = swift_http_init(sb);
		sb->http_ready = !ret;
	}
	if (!ret) {
		ret = swift_auth_init(sb);
		sb->auth_ready = !ret;
	}
	if (ret == -ENOMEM)
		bfs_errf(err, errlen,
			 "swift: out of memory setting up libcurl");
	/* Authenticates too: bad credentials fail here, before a mount. */
	if (!ret)
		ret = swift_open_container(sb, err, errlen);
	if (ret) {
		swift_free(sb);
		return ret;
	}
	*out = &sb->base;
	return 0;
}

static void swift_destroy(struct bfs_backend *be)
{
	swift_free(swift_of(be));
}

/* ------------------------------------------------------------------ */
/* Test hooks (swift_int.h). */

void bfs_swift_test_set_token(struct bfs_backend *be, const char *token,
			      long expires_in_s)
{
	struct swift_backend *sb = swift_of(be);
	struct swift_token *t = &sb->tok;
	uint64_t now = swift_now_ms(), life = (uint64_t)expires_in_s * 1000;
	char *copy = token ? strdup(token) : NULL;

	pthread_mutex_lock(&t->lock);
	if (copy) {
		swift_free_secret(t->token);
		t->token = copy;
	}
	if (expires_in_s > 0) {
		t->expires_ms = now + life;
		t->refresh_ms =
			t->expires_ms - (life / 10 < 60000 ? life / 10 : 60000);
	}
	t->generation++;
	pthread_mutex_unlock(&t->lock);
}

unsigned bfs_swift_test_auth_count(struct bfs_backend *be)
{
	struct swift_backend *sb = swift_of(be);
	unsigned n;

	pthread_mutex_lock(&sb->tok.lock);
	n = sb->tok.auth_count;
	pthread_mutex_unlock(&sb->tok.lock);
	return n;
}

static const struct bfs_backend_ops swift_ops = {
	.name = "swift",
	.get = swift_get,
	.put = swift_put,
	.remove = swift_remove,
	.stat = swift_stat,
	.info = swift_info,
	.list = swift_list,
	/* no .space: Swift has no free-space figure worth trusting */
	.destroy = swift_destroy,
};
