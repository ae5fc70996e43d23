// SPDX-License-Identifier: Apache-2.0
/*
 * Requests and answers of the swift backend, below the retry loop
 * (swift_http.c): percent-encoding, the libcurl callbacks that parse
 * response headers and collect bodies into bounded buffers, and the checks
 * a 2xx answer must pass before it is believed (length, range, MD5).
 */
#include "swift_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Names and digests. */

static int swift_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

char *swift_encode(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	unsigned char c;
	char *out, *p;

	out = malloc(3 * n + 1);
	if (!out)
		return NULL;
	for (p = out; *s; s++) {
		c = (unsigned char)*s;
		if (swift_unreserved(c) || (keep_slash && c == '/')) {
			*p++ = (char)c;
			continue;
		}
		*p++ = '%';
		*p++ = hex[c >> 4];
		*p++ = hex[c & 15];
	}
	*p = 0;
	return out;
}

int swift_md5_hex(const void *data, size_t len, char hex[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
		return -EIO;
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Response headers and bodies. */

static void swift_resp_headers_reset(struct swift_req *r)
{
	r->clen = -1;
	r->etag[0] = 0;
	r->claim[0] = 0;
	r->cr_first = r->cr_last = r->cr_total = -1;
	r->retry_after = -1;
	r->manifest = 0;
	r->layout = BFS_LAYOUT_SINGLE;
	r->meta_ds[0] = r->meta_dsv[0] = 0;
	swift_free_secret(r->hdr_token);
	free(r->hdr_url);
	r->hdr_token = r->hdr_url = NULL;
	r->hdr_expires = -1;
}

void swift_resp_reset(struct swift_req *r)
{
	swift_resp_headers_reset(r);
	r->status = 0;
	r->got = 0;
	r->cb_err = 0;
	r->fault = NULL;
	r->native_len = 0;
	r->native[0] = 0;
	r->upload_pos = 0;
	r->msg[0] = 0;
	if (r->out)
		r->out->len = r->out_start;
}

void swift_req_release(struct swift_req *r)
{
	swift_resp_headers_reset(r);
}

/* Decimal digits only, no sign, no overflow: 0, or -1. */
static int swift_parse_u64(const char **pp, const char *end, int64_t *out)
{
	const char *p = *pp;
	int64_t v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*pp = p;
	*out = v;
	return 0;
}

static int64_t swift_header_num(const char *v, size_t len)
{
	const char *end = v + len;
	int64_t n;

	if (swift_parse_u64(&v, end, &n) || v != end)
		return -1;
	return n;
}

/* "bytes a-b/total" */
static void swift_content_range(struct swift_req *r, const char *v, size_t len)
{
	const char *p = v, *end = v + len;
	int64_t a, b, t;

	if (len < 6 || strncasecmp(p, "bytes ", 6))
		return;
	p += 6;
	if (swift_parse_u64(&p, end, &a) || p >= end || *p++ != '-' ||
	    swift_parse_u64(&p, end, &b) || p >= end || *p++ != '/' ||
	    swift_parse_u64(&p, end, &t) || p != end)
		return;
	r->cr_first = a;
	r->cr_last = b;
	r->cr_total = t;
}

static char *swift_dup_bounded(const char *v, size_t len, size_t max)
{
	char *s;

	if (len == 0 || len > max)
		return NULL;
	s = malloc(len + 1);
	if (s) {
		memcpy(s, v, len);
		s[len] = 0;
	}
	return s;
}

static int swift_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && !strncasecmp(name, want, nlen);
}

/* The headers of an auth answer; -errno aborts the transfer. */
static int swift_auth_header(struct swift_req *r, const char *name, size_t nlen,
			     const char *v, size_t vlen)
{
	char **dst = NULL;
	size_t max = SWIFT_TOKEN_MAX;

	if (swift_is(name, nlen, "x-auth-token") ||
	    swift_is(name, nlen, "x-subject-token") ||
	    (swift_is(name, nlen, "x-storage-token") && !r->hdr_token)) {
		dst = &r->hdr_token;
	} else if (swift_is(name, nlen, "x-storage-url")) {
		dst = &r->hdr_url;
		max = SWIFT_URL_MAX;
	} else if (swift_is(name, nlen, "x-auth-token-expires")) {
		r->hdr_expires = (long)swift_header_num(v, vlen);
		return 0;
	}
	if (!dst)
		return 0;
	if (dst == &r->hdr_token)
		swift_free_secret(*dst);
	else
		free(*dst);
	*dst = swift_dup_bounded(v, vlen, max);
	return *dst ? 0 : -EFBIG;
}

/* A header value kept whole when it fits and is printable, else "". */
static void swift_copy_value(char *dst, size_t cap, const char *v, size_t vlen)
{
	size_t i;

	dst[0] = 0;
	if (vlen >= cap)
		return;
	for (i = 0; i < vlen; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return;
	memcpy(dst, v, vlen);
	dst[vlen] = 0;
}

/* Which kind of large object a manifest is, and Trove's metadata. */
static void swift_object_header(struct swift_req *r, const char *name,
				size_t nlen, const char *v, size_t vlen)
{
	if (swift_is(name, nlen, "x-object-manifest")) {
		r->manifest = 1;
		r->layout = BFS_LAYOUT_DLO;
	} else if (swift_is(name, nlen, "x-static-large-object")) {
		if (vlen == 4 && !strncasecmp(v, "true", 4)) {
			r->manifest = 1;
			r->layout = BFS_LAYOUT_SLO;
		}
	} else if (swift_is(name, nlen, "x-object-meta-datastore")) {
		swift_copy_value(r->meta_ds, sizeof(r->meta_ds), v, vlen);
	} else if (swift_is(name, nlen, "x-object-meta-datastore-version")) {
		swift_copy_value(r->meta_dsv, sizeof(r->meta_dsv), v, vlen);
	}
}

static int swift_header(struct swift_req *r, const char *name, size_t nlen,
			const char *v, size_t vlen)
{
	if (swift_is(name, nlen, "content-length")) {
		r->clen = swift_header_num(v, vlen);
	} else if (swift_is(name, nlen, "etag")) {
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
			v++;
			vlen -= 2;
		}
		if (vlen < sizeof(r->etag)) {
			memcpy(r->etag, v, vlen);
			r->etag[vlen] = 0;
		}
	} else if (swift_is(name, nlen, "x-object-meta-bfs-claim")) {
		if (vlen < sizeof(r->claim)) {
			memcpy(r->claim, v, vlen);
			r->claim[vlen] = 0;
		}
	} else if (swift_is(name, nlen, "content-range")) {
		swift_content_range(r, v, vlen);
	} else if (swift_is(name, nlen, "retry-after")) {
		r->retry_after = (long)swift_header_num(v, vlen);
	} else if ((nlen > 9 && !strncasecmp(name, "x-object-", 9)) ||
		   swift_is(name, nlen, "x-static-large-object")) {
		swift_object_header(r, name, nlen, v, vlen);
	} else if (r->auth_hdrs) {
		return swift_auth_header(r, name, nlen, v, vlen);
	}
	return 0;
}

/* "HTTP/1.1 206 Partial Content" -> 206; 0 if malformed. */
static long swift_status_line(const char *buf, size_t len)
{
	const char *p = memchr(buf, ' ', len), *end = buf + len;
	int64_t code;

	if (!p)
		return 0;
	for (; p < end && *p == ' '; p++)
		;
	if (swift_parse_u64(&p, end, &code) || code < 100 || code > 999)
		return 0;
	return (long)code;
}

size_t swift_header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct swift_req *r = arg;
	size_t len = size * n, nlen;
	const char *colon, *v, *end = buf + len;
	int ret;

	/* A new status line (after "100 Continue"): forget the old block.
	 * The body callback needs the status before curl_easy_getinfo()
	 * could tell it. */
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		swift_resp_headers_reset(r);
		r->status = swift_status_line(buf, len);
		return len;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	nlen = (size_t)(colon - buf);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	ret = swift_header(r, buf, nlen, v, (size_t)(end - v));
	if (ret) {
		r->cb_err = ret;
		return 0;
	}
	return len;
}

/* The start of an error body, tags and control bytes dropped: the
 * server's own words for the log. */
static void swift_native(struct swift_req *r, const char *buf, size_t len)
{
	size_t i;
	int in_tag = 0;
	char c;

	for (i = 0; i < len && r->native_len < SWIFT_NATIVE_MAX; i++) {
		c = buf[i];
		if (c == '<' || c == '>') {
			in_tag = c == '<';
			c = ' ';
		} else if (in_tag) {
			continue;
		}
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' &&
		    (!r->native_len || r->native[r->native_len - 1] == ' '))
			continue;
		r->native[r->native_len++] = c;
	}
	r->native[r->native_len] = 0;
}

/* The part of a 200 answer to a Range request that the range asked for
 * (a server may ignore Range and send the whole object). */
static int swift_window(struct swift_req *r, const char *buf, size_t len)
{
	uint64_t pos = r->got - len, a = r->range_off, b = UINT64_MAX;

	if (r->range_len)
		b = r->range_off + r->range_len;
	if (pos > a)
		a = pos;
	if (pos + len < b)
		b = pos + len;
	if (a >= b)
		return 0;
	return bfs_buf_append(r->out, buf + (a - pos), (size_t)(b - a));
}

size_t swift_write_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct swift_req *r = arg;
	size_t len = size * n;
	int ret = 0;

	if (r->status < 200 || r->status > 299) {
		swift_native(r, buf, len);
		return len;
	}
	r->got += len;
	if (!r->out)
		return len;
	if (r->clen >= 0 && r->got > (uint64_t)r->clen) {
		r->fault = "a body longer than its Content-Length";
		return 0;
	}
	if (r->ranged && r->status == 200) {
		ret = swift_window(r, buf, len);
	} else {
		/* Room for the whole announced body at once: an oversized
		 * answer fails before it is downloaded. */
		if (r->got == len && r->clen > 0)
			ret = bfs_buf_reserve(r->out, (size_t)r->clen);
		if (!ret)
			ret = bfs_buf_append(r->out, buf, len);
	}
	if (ret) {
		r->cb_err = ret;
		return 0;
	}
	return len;
}

size_t swift_read_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct swift_req *r = arg;
	size_t len = size * n, left = r->body_len - r->upload_pos;

	if (len > left)
		len = left;
	if (!len)
		return 0;
	memcpy(buf, (const char *)r->body + r->upload_pos, len);
	r->upload_pos += len;
	return len;
}

int swift_seek_cb(void *arg, curl_off_t off, int origin)
{
	struct swift_req *r = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->upload_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ------------------------------------------------------------------ */
/* Checks of a 2xx answer before it is believed. */

static const char *swift_check_range(const struct swift_req *r)
{
	uint64_t last;

	if (r->status != 206)
		return NULL;
	if (r->cr_first < 0 || r->cr_last < r->cr_first ||
	    r->cr_total <= r->cr_last)
		return "a 206 answer without a valid Content-Range";
	last = (uint64_t)r->cr_total - 1;
	if (r->range_len && r->range_off + r->range_len - 1 < last)
		last = r->range_off + r->range_len - 1;
	if ((uint64_t)r->cr_first != r->range_off ||
	    (uint64_t)r->cr_last != last)
		return "a Content-Range other than the range asked for";
	if (r->got != last - r->range_off + 1)
		return "a body shorter than its Content-Range";
	return NULL;
}

/* A 32-hex-digit ETag is the MD5 of a plain object's content. */
static const char *swift_check_md5(const struct swift_req *r)
{
	char md5[33];

	if (r->status != 200 || r->manifest || strlen(r->etag) != 32)
		return NULL;
	if (swift_md5_hex(r->out->data + r->out_start,
			  r->out->len - r->out_start, md5))
		return "a body whose MD5 cannot be computed";
	if (strcasecmp(md5, r->etag))
		return "a body whose MD5 is not its ETag";
	return NULL;
}

const char *swift_check_body(const struct swift_req *r)
{
	const char *fault;

	if (r->put_md5 && r->etag[0] && strcasecmp(r->etag, r->put_md5))
		return "an ETag that is not the MD5 of the data sent";
	if (!strcmp(r->method, "HEAD") || !r->out)
		return NULL;
	if (r->clen >= 0 && r->got != (uint64_t)r->clen)
		return "a body shorter than its Content-Length";
	if (r->ranged) {
		fault = swift_check_range(r);
		if (fault)
			return fault;
	}
	return r->verify_md5 ? swift_check_md5(r) : NULL;
}
