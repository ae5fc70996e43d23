// SPDX-License-Identifier: Apache-2.0
/*
 * A small client of CouchDB's HTTP API for the couchdb datastore: one
 * curl easy handle per backup or restore (never shared between threads),
 * JSON in and out, basic auth from the instance's password file (given to
 * curl, never put in a URL or a log), every answer bounded.
 *
 * HTTP statuses and curl errors become -errno here, in one place, with
 * CouchDB's own "error" and "reason" in the one-line reason.
 */
#include "couchdb_int.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_ANSWER_MAX	     ((size_t)1 << 30) /* bytes of one answer */
#define HTTP_CONNECT_TIMEOUT 10L	       /* seconds */
#define HTTP_LOW_SPEED_TIME  120L /* seconds under 1 byte/s: give up */
#define HTTP_URL_MAX	     8192
#define HTTP_USER_AGENT	     "backupfs-couchdb"

struct couch_http {
	CURL *curl;
	const struct couch_ds *cd;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
};

struct http_answer {
	char *p;
	size_t n, cap;
	int toobig;
};

int couch_http_open(const struct couch_ds *cd, struct couch_http **out,
		    char *err, size_t errlen)
{
	struct couch_http *h;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->cd = cd;
	/* Reference-counted by libcurl; thread-safe since 7.84. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(h);
		return -ENOMEM;
	}
	h->curl = curl_easy_init();
	h->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (h->hdrs)
		h->hdrs = curl_slist_append(h->hdrs,
					    "Content-Type: application/json");
	if (!h->curl || !h->hdrs) {
		couch_http_close(h);
		snprintf(err, errlen, "cannot set up an HTTP client");
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void couch_http_close(struct couch_http *h)
{
	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->hdrs);
	free(h);
	curl_global_cleanup();
}

char *couch_http_escape(struct couch_http *h, const char *s)
{
	char *e = curl_easy_escape(h->curl, s, 0), *copy;

	if (!e)
		return NULL;
	copy = strdup(e);
	curl_free(e);
	return copy;
}

static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_answer *a = arg;
	size_t n = size * nmemb, cap;
	char *grown;

	if (a->n + n + 1 > HTTP_ANSWER_MAX) {
		a->toobig = 1;
		return 0; /* aborts the transfer */
	}
	if (a->n + n + 1 > a->cap) {
		cap = a->cap ? a->cap : 16384;
		while (cap < a->n + n + 1)
			cap *= 2;
		grown = realloc(a->p, cap);
		if (!grown)
			return 0;
		a->p = grown;
		a->cap = cap;
	}
	memcpy(a->p + a->n, data, n);
	a->n += n;
	a->p[a->n] = '\0';
	return n;
}

static int http_setup(struct couch_http *h, const char *method, const char *url,
		      const char *body, size_t body_len, struct http_answer *a)
{
	CURL *c = h->curl;
	CURLcode cc = CURLE_OK;

	curl_easy_reset(c);
	h->errbuf[0] = '\0';
	cc |= curl_easy_setopt(c, CURLOPT_URL, url);
	cc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	cc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_TIMEOUT);
	cc |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	cc |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, HTTP_LOW_SPEED_TIME);
	cc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cc |= curl_easy_setopt(c, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	cc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
	cc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb);
	cc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	if (h->cd->user) {
		cc |= curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		cc |= curl_easy_setopt(c, CURLOPT_USERNAME, h->cd->user);
		cc |= curl_easy_setopt(c, CURLOPT_PASSWORD, h->cd->password);
	}
	if (body) {
		cc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		cc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				       (curl_off_t)body_len);
	}
	if (strcmp(method, body ? "POST" : "GET"))
		cc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	return cc == CURLE_OK ? 0 : -EINVAL;
}

static const struct {
	long status;
	int err;
} http_statuses[] = {
	{400, EINVAL},	   {401, EACCES}, {403, EACCES}, {404, ENOENT},
	{405, EOPNOTSUPP}, {409, EEXIST}, {412, EEXIST}, {413, EFBIG},
	{415, EINVAL},	   {507, ENOSPC},
};

static int http_status_errno(long status)
{
	size_t i;

	for (i = 0; i < sizeof(http_statuses) / sizeof(http_statuses[0]); i++)
		if (http_statuses[i].status == status)
			return -http_statuses[i].err;
	return -EIO;
}

static int http_curl_errno(CURLcode cc, const struct http_answer *a)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	case CURLE_WRITE_ERROR:
		return a->toobig ? -EFBIG : -ENOMEM;
	default:
		return -EIO;
	}
}

/* "404 not_found: missing" from an error answer. */
static void http_native(const struct http_answer *a, long status, char *out,
			size_t cap)
{
	const char *e = NULL, *r = NULL;
	json_t *j = NULL;

	if (a->p)
		j = json_loadb(a->p, a->n, 0, NULL);
	if (json_is_object(j)) {
		e = json_string_value(json_object_get(j, "error"));
		r = json_string_value(json_object_get(j, "reason"));
	}
	snprintf(out, cap, "%ld%s%s%s%s", status, e ? " " : "", e ? e : "",
		 r ? ": " : "", r ? r : "");
	json_decref(j);
}

int couch_http_req(struct couch_http *h, const char *method, const char *path,
		   const char *body, size_t body_len, json_t **out, char *err,
		   size_t errlen)
{
	struct http_answer a = {0};
	char url[HTTP_URL_MAX], native[512];
	json_error_t jerr;
	CURLcode cc;
	long status = 0;
	int rc;

	if (out)
		*out = NULL;
	/* Content-Length: 0 rather than none */
	if (!body && (!strcmp(method, "PUT") || !strcmp(method, "POST")))
		body = "";
	if ((size_t)snprintf(url, sizeof(url), "%s%s", h->cd->url, path) >=
	    sizeof(url)) {
		snprintf(err, errlen, "couchdb %s: URL too long", method);
		return -ENAMETOOLONG;
	}
	rc = http_setup(h, method, url, body, body_len, &a);
	if (rc) {
		snprintf(err, errlen, "couchdb %s %.200s: cannot set up curl",
			 method, path);
		goto out_free;
	}
	cc = curl_easy_perform(h->curl);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		rc = http_curl_errno(cc, &a);
		snprintf(err, errlen, "couchdb %s %.200s: %s", method, path,
			 a.toobig	? "answer too large"
			 : h->errbuf[0] ? h->errbuf
					: curl_easy_strerror(cc));
		goto out_free;
	}
	if (status < 200 || status > 299) {
		rc = http_status_errno(status);
		http_native(&a, status, native, sizeof(native));
		snprintf(err, errlen, "couchdb %s %.200s: %s", method, path,
			 native);
		bfs_debug("%s", err);
		goto out_free;
	}
	if (out) {
		*out = json_loadb(a.p ? a.p : "", a.n,
				  JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
		if (!*out) {
			snprintf(err, errlen,
				 "couchdb %s %.200s: the answer is not JSON: "
				 "%s",
				 method, path, jerr.text);
			rc = -EBADMSG;
		}
	}
out_free:
	free(a.p);
	return rc;
}

int couch_http_version(struct couch_http *h, char *out, size_t cap, char *err,
		       size_t errlen)
{
	const char *v;
	json_t *j;
	int rc;

	rc = couch_http_req(h, "GET", "/", NULL, 0, &j, err, errlen);
	if (rc)
		return rc;
	v = json_string_value(json_object_get(j, "version"));
	if (!v) {
		snprintf(err, errlen, "couchdb GET /: no \"version\"");
		rc = -EBADMSG;
	} else {
		snprintf(out, cap, "%s", v);
	}
	json_decref(j);
	return rc;
}
