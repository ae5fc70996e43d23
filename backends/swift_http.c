// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP for the swift backend: a pool of libcurl easy handles (reused, so
 * connections stay alive), one request with bounded retries under a
 * deadline, and swift_errno(), the one place where HTTP statuses and curl
 * codes become errno values and get their message.
 *
 * A response is checked before it is trusted: its body must be exactly
 * as long as Content-Length and the requested range say, a whole plain
 * object must match its ETag (MD5), and a PUT's ETag must be the MD5 we
 * sent.  Any mismatch is a failed attempt, retried, then -EIO: never a
 * short read.
 */
#include "bfs_version.h"
#include "log.h"
#include "swift_int.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SWIFT_BACKOFF_BASE_MS	 100
#define SWIFT_BACKOFF_CAP_MS	 5000
#define SWIFT_CONNECT_TIMEOUT_MS 10000L
#define SWIFT_USER_AGENT	 "backupfs/" BFS_VERSION

uint64_t swift_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Shared DNS cache and TLS sessions, and the handle pool. */

static void swift_share_lock(CURL *h, curl_lock_data d, curl_lock_access a,
			     void *arg)
{
	struct swift_backend *sb = arg;

	if ((unsigned)d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&sb->share_locks[d]);
}

static void swift_share_unlock(CURL *h, curl_lock_data d, void *arg)
{
	struct swift_backend *sb = arg;

	if ((unsigned)d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&sb->share_locks[d]);
}

static int swift_share_init(struct swift_backend *sb)
{
	CURLSHcode sc = CURLSHE_OK;

	sb->share = curl_share_init();
	if (!sb->share)
		return -ENOMEM;
	sc |= curl_share_setopt(sb->share, CURLSHOPT_LOCKFUNC,
				swift_share_lock);
	sc |= curl_share_setopt(sb->share, CURLSHOPT_UNLOCKFUNC,
				swift_share_unlock);
	sc |= curl_share_setopt(sb->share, CURLSHOPT_USERDATA, sb);
	sc |= curl_share_setopt(sb->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	sc |= curl_share_setopt(sb->share, CURLSHOPT_SHARE,
				CURL_LOCK_DATA_SSL_SESSION);
	return sc == CURLSHE_OK ? 0 : -ENOMEM;
}

int swift_http_init(struct swift_backend *sb)
{
	struct swift_pool *p = &sb->pool;
	int i, ret = -ENOMEM;

	/* Reference-counted by libcurl; thread-safe since 7.84. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&sb->share_locks[i], NULL);
	p->max = sb->conf.connections;
	p->idle = calloc((size_t)p->max, sizeof(*p->idle));
	if (p->idle)
		ret = swift_share_init(sb);
	if (ret)
		swift_http_release(sb);
	return ret;
}

/* Called once no request runs any more. */
void swift_http_release(struct swift_backend *sb)
{
	struct swift_pool *p = &sb->pool;
	int i;

	/* Handles first: a share still in use cannot be freed. */
	for (i = 0; i < p->nidle; i++)
		curl_easy_cleanup(p->idle[i]);
	free(p->idle);
	p->idle = NULL;
	p->nidle = 0;
	if (sb->share)
		curl_share_cleanup(sb->share);
	sb->share = NULL;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&sb->share_locks[i]);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	curl_global_cleanup();
}

/* A handle for one operation; waits while all "connections" are busy. */
static CURL *swift_pool_get(struct swift_pool *p)
{
	CURL *curl;

	pthread_mutex_lock(&p->lock);
	while (!p->nidle && p->in_use >= p->max)
		pthread_cond_wait(&p->cond, &p->lock);
	curl = p->nidle ? p->idle[--p->nidle] : curl_easy_init();
	if (curl)
		p->in_use++;
	pthread_mutex_unlock(&p->lock);
	return curl;
}

static void swift_pool_put(struct swift_pool *p, CURL *curl)
{
	pthread_mutex_lock(&p->lock);
	p->in_use--;
	/* in_use + nidle never exceeds max: there is room */
	p->idle[p->nidle++] = curl;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------------ */
/* errno mapping: the one place. */

struct swift_status_map {
	long status;
	int err;
	unsigned char retry; /* worth another attempt */
	unsigned char quiet; /* an expected answer: debug log only */
};

static const struct swift_status_map swift_statuses[] = {
	{400, EINVAL, 0, 0},
	{401, EACCES, 0, 0},
	{403, EACCES, 0, 0},
	{404, ENOENT, 0, 1},
	{405, EOPNOTSUPP, 0, 0},
	{408, EIO, 1, 0},
	{409, EBUSY, 0, 0},
	{411, EINVAL, 0, 0},
	{412, EEXIST, 0, 1},
	{413, ENOSPC, 0, 0},
	{414, ENAMETOOLONG, 0, 0},
	{416, ERANGE, 0, 1},
	/* 422: the body arrived damaged (ETag mismatch): send again */
	{422, EIO, 1, 0},
	{429, EIO, 1, 0},
	{431, EINVAL, 0, 0},
	{501, EOPNOTSUPP, 0, 0},
	{507, ENOSPC, 0, 0},
};

struct swift_curl_map {
	CURLcode code;
	int err;
	unsigned char retry;
	unsigned char acted; /* the server may have acted on the request */
};

static const struct swift_curl_map swift_curl_codes[] = {
	{CURLE_COULDNT_RESOLVE_HOST, EIO, 1, 0},
	{CURLE_COULDNT_RESOLVE_PROXY, EIO, 1, 0},
	{CURLE_COULDNT_CONNECT, EIO, 1, 0},
	{CURLE_OPERATION_TIMEDOUT, EIO, 1, 1},
	{CURLE_SEND_ERROR, EIO, 1, 1},
	{CURLE_RECV_ERROR, EIO, 1, 1},
	{CURLE_PARTIAL_FILE, EIO, 1, 1},
	{CURLE_GOT_NOTHING, EIO, 1, 1},
	{CURLE_SSL_CONNECT_ERROR, EIO, 1, 0},
	{CURLE_HTTP2, EIO, 1, 1},
	{CURLE_HTTP2_STREAM, EIO, 1, 1},
	{CURLE_OUT_OF_MEMORY, ENOMEM, 0, 0},
	{CURLE_URL_MALFORMAT, EINVAL, 0, 0},
	{CURLE_UNSUPPORTED_PROTOCOL, EINVAL, 0, 0},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int swift_curl_errno(struct swift_req *r, CURLcode cc,
			    const char *detail, int *retry)
{
	size_t i;

	snprintf(r->msg, sizeof(r->msg), "%s", curl_easy_strerror(cc));
	if (detail && *detail)
		snprintf(r->msg, sizeof(r->msg), "%s", detail);
	for (i = 0; i < ARRAY_LEN(swift_curl_codes); i++) {
		if (swift_curl_codes[i].code != cc)
			continue;
		*retry = swift_curl_codes[i].retry;
		r->ambiguous |= swift_curl_codes[i].acted;
		return -swift_curl_codes[i].err;
	}
	r->ambiguous = 1;
	return -EIO;
}

static int swift_http_errno(struct swift_req *r, int *retry)
{
	size_t i;

	snprintf(r->msg, sizeof(r->msg), "%ld%s%s", r->status,
		 r->native_len ? " " : "", r->native);
	if (r->status >= 500 || r->status == 408)
		r->ambiguous = 1;
	if (r->status == 412 && !r->excl)
		return -EINVAL;
	for (i = 0; i < ARRAY_LEN(swift_statuses); i++) {
		if (swift_statuses[i].status != r->status)
			continue;
		*retry = swift_statuses[i].retry;
		return -swift_statuses[i].err;
	}
	*retry = r->status >= 500;
	return -EIO;
}

/*
 * Map the outcome of one attempt to 0 or -errno, say in r->msg why, and
 * whether another attempt may help.  Callback errors (an answer over the
 * caller's buffer maximum) keep their errno; faults found in a body are
 * transfer errors like a cut connection.
 */
static int swift_errno(struct swift_req *r, CURLcode cc, const char *detail,
		       int *retry)
{
	*retry = 0;
	if (r->cb_err) {
		snprintf(r->msg, sizeof(r->msg), "%s (answer of %lld bytes)",
			 strerror(-r->cb_err), (long long)r->clen);
		return r->cb_err;
	}
	if (r->fault) {
		snprintf(r->msg, sizeof(r->msg), "%ld with %s", r->status,
			 r->fault);
		r->ambiguous = 1;
		*retry = 1;
		return -EIO;
	}
	if (cc != CURLE_OK)
		return swift_curl_errno(r, cc, detail, retry);
	if (r->status >= 200 && r->status <= 299)
		return 0;
	return swift_http_errno(r, retry);
}

static int swift_quiet(const struct swift_req *r, int ret)
{
	return ret == -ENOENT || ret == -ERANGE || (ret == -EEXIST && r->excl);
}

/* The final failure of a request, logged once (or handed to err). */
static void swift_report(const struct swift_req *r, int ret)
{
	char prefix[SWIFT_URL_MAX + 64];

	if (r->label)
		snprintf(prefix, sizeof(prefix), "%s", r->label);
	else
		snprintf(prefix, sizeof(prefix), "swift %s \"%s\"", r->method,
			 r->what);
	if (swift_quiet(r, ret) || r->err) {
		bfs_errf(r->err, r->errlen, "%s: %s", prefix, r->msg);
		bfs_debug("%s: %s", prefix, r->msg);
		return;
	}
	if (r->attempts > 1)
		bfs_err("%s: %s (after %d attempts)", prefix, r->msg,
			r->attempts);
	else
		bfs_err("%s: %s", prefix, r->msg);
}

/* ------------------------------------------------------------------ */
/* One attempt. */

struct swift_hdrs {
	struct curl_slist node[SWIFT_MAX_HDRS + 2];
	int n;
	char *auth; /* "X-Auth-Token: ..." (a secret) */
};

static void swift_hdr_add(struct swift_hdrs *h, const char *line)
{
	/* curl only reads the lines; the list lives on our stack. */
	h->node[h->n].data = (char *)line;
	h->node[h->n].next = NULL;
	if (h->n)
		h->node[h->n - 1].next = &h->node[h->n];
	h->n++;
}

static int swift_hdrs_build(struct swift_hdrs *h, const struct swift_req *r,
			    const struct swift_cred *cred)
{
	static const char name[] = "X-Auth-Token: ";
	size_t len;
	int i;

	h->n = 0;
	h->auth = NULL;
	if (r->authed) {
		len = sizeof(name) + strlen(cred->token);
		h->auth = malloc(len);
		if (!h->auth)
			return -ENOMEM;
		snprintf(h->auth, len, "%s%s", name, cred->token);
		swift_hdr_add(h, h->auth);
	}
	for (i = 0; i < SWIFT_MAX_HDRS && r->hdrs[i]; i++)
		swift_hdr_add(h, r->hdrs[i]);
	return 0;
}

static char *swift_url(const struct swift_backend *sb,
		       const struct swift_req *r, const struct swift_cred *cred)
{
	size_t len;
	char *url;

	if (r->url)
		return strdup(r->url);
	len = strlen(cred->url) + strlen(sb->container_enc) + 3 +
	      (r->path ? strlen(r->path) : 0) +
	      (r->query ? strlen(r->query) : 0);
	url = malloc(len);
	if (url)
		snprintf(url, len, "%s/%s%s%s%s%s", cred->url,
			 sb->container_enc, r->path ? "/" : "",
			 r->path ? r->path : "", r->query ? "?" : "",
			 r->query ? r->query : "");
	return url;
}

static CURLcode swift_setup_method(CURL *curl, struct swift_req *r)
{
	CURLcode cc = CURLE_OK;

	if (!strcmp(r->method, "HEAD"))
		return curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	if (!strcmp(r->method, "DELETE"))
		return curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
	if (!strcmp(r->method, "POST")) {
		cc |= curl_easy_setopt(curl, CURLOPT_POST, 1L);
		/* Not copied: the body (a password) stays ours to wipe. */
		cc |= curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r->body);
		cc |= curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				       (curl_off_t)r->body_len);
		return cc;
	}
	if (!strcmp(r->method, "PUT")) {
		cc |= curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		cc |= curl_easy_setopt(curl, CURLOPT_READFUNCTION,
				       swift_read_cb);
		cc |= curl_easy_setopt(curl, CURLOPT_READDATA, r);
		cc |= curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION,
				       swift_seek_cb);
		cc |= curl_easy_setopt(curl, CURLOPT_SEEKDATA, r);
		cc |= curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
				       (curl_off_t)r->body_len);
	}
	return cc;
}

static CURLcode swift_setup_tls(CURL *curl, const struct swift_conf *c)
{
	CURLcode cc = CURLE_OK;

	if (c->cacert)
		cc |= curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	if (c->insecure) {
		cc |= curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		cc |= curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return cc;
}

static CURLcode swift_setup(struct swift_backend *sb, CURL *curl,
			    struct swift_req *r, const char *url,
			    struct curl_slist *hdrs, long timeout_ms,
			    char *errbuf)
{
	CURLcode cc = CURLE_OK;

	/* Options back to defaults; connections and caches stay. */
	curl_easy_reset(curl);
	cc |= curl_easy_setopt(curl, CURLOPT_URL, url);
	cc |= curl_easy_setopt(curl, CURLOPT_SHARE, sb->share);
	/* Threads: no signals (alarm-based DNS timeouts) at all. */
	cc |= curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	cc |= curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	cc |= curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	cc |= curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
			       timeout_ms < SWIFT_CONNECT_TIMEOUT_MS
				       ? timeout_ms
				       : SWIFT_CONNECT_TIMEOUT_MS);
	cc |= curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	cc |= curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	cc |= curl_easy_setopt(curl, CURLOPT_USERAGENT, SWIFT_USER_AGENT);
	cc |= curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	cc |= curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, swift_header_cb);
	cc |= curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	cc |= curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, swift_write_cb);
	cc |= curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	cc |= swift_setup_tls(curl, &sb->conf);
	cc |= swift_setup_method(curl, r);
	return cc;
}

/* Nothing of the request (the token above all) stays in the handle. */
static void swift_unset(CURL *curl)
{
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
}

static int swift_attempt(struct swift_backend *sb, CURL *curl,
			 struct swift_req *r, const struct swift_cred *cred,
			 int *retry)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	uint64_t now = swift_now_ms();
	struct swift_hdrs h;
	long timeout;
	CURLcode cc;
	char *url;
	int ret;

	swift_resp_reset(r);
	/* Never an attempt past the deadline (and a timeout of 0 would mean
	 * none at all to libcurl). */
	if (now >= r->deadline_ms) {
		snprintf(r->msg, sizeof(r->msg),
			 "no time left before the "
			 "deadline of %ld ms",
			 sb->conf.deadline_ms);
		*retry = 0;
		return -EIO;
	}
	timeout = sb->conf.timeout_ms;
	if (r->deadline_ms - now < (uint64_t)timeout)
		timeout = (long)(r->deadline_ms - now);
	url = swift_url(sb, r, cred);
	ret = url ? swift_hdrs_build(&h, r, cred) : -ENOMEM;
	if (ret)
		goto out_free;
	r->attempts++;
	cc = swift_setup(sb, curl, r, url, h.node, timeout, errbuf);
	if (cc == CURLE_OK)
		cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (cc == CURLE_OK && r->status >= 200 && r->status <= 299)
		r->fault = swift_check_body(r);
	ret = swift_errno(r, cc, errbuf, retry);
	swift_unset(curl);
	swift_free_secret(h.auth);
out_free:
	free(url);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Retries. */

static uint64_t swift_random(void)
{
	uint64_t x;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
		x = swift_now_ms() * 0x9e3779b97f4a7c15ull;
	return x;
}

/*
 * Sleep before another attempt: exponential backoff with full jitter, at
 * least what Retry-After asks.  0 (no sleep) when the deadline would pass
 * first: we never sleep past it.
 */
static int swift_backoff(struct swift_req *r)
{
	uint64_t cap = SWIFT_BACKOFF_BASE_MS, wait, now = swift_now_ms();
	struct timespec ts;
	int i;

	for (i = 1; i < r->attempts && cap < SWIFT_BACKOFF_CAP_MS; i++)
		cap *= 2;
	if (cap > SWIFT_BACKOFF_CAP_MS)
		cap = SWIFT_BACKOFF_CAP_MS;
	wait = swift_random() % (cap + 1);
	if (r->retry_after >= 0 && (uint64_t)r->retry_after * 1000 > wait)
		wait = (uint64_t)r->retry_after * 1000;
	if (now + wait >= r->deadline_ms)
		return 0;
	bfs_debug("swift %s \"%s\": %s; attempt %d in %llu ms", r->method,
		  r->what, r->msg, r->attempts + 1, (unsigned long long)wait);
	ts.tv_sec = (time_t)(wait / 1000);
	ts.tv_nsec = (long)(wait % 1000) * 1000000;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	return 1;
}

int swift_exec(struct swift_backend *sb, CURL *curl, struct swift_req *r)
{
	struct swift_cred cred = {0};
	int ret, retry = 0, renewed = 0;

	if (!r->deadline_ms)
		r->deadline_ms =
			swift_now_ms() + (uint64_t)sb->conf.deadline_ms;
	r->out_start = r->out ? r->out->len : 0;
	r->attempts = 0;
	for (;;) {
		if (r->authed && !cred.token) {
			ret = swift_cred_get(sb, curl, r->deadline_ms, &cred,
					     r->err, r->errlen);
			if (ret)
				break;
		}
		ret = swift_attempt(sb, curl, r, &cred, &retry);
		if (!ret)
			break;
		/* A refused token: a new one, once per operation. */
		if (r->status == 401 && r->authed && !renewed) {
			renewed = 1;
			ret = swift_cred_renew(sb, curl, r->deadline_ms, &cred,
					       r->err, r->errlen);
			if (ret)
				break;
			continue;
		}
		if (!retry || !swift_backoff(r)) {
			swift_report(r, ret);
			break;
		}
	}
	if (ret && r->out)
		r->out->len = r->out_start;
	swift_cred_clear(&cred);
	return ret;
}

int swift_run(struct swift_backend *sb, struct swift_req *r)
{
	CURL *curl;
	int ret;

	curl = swift_pool_get(&sb->pool);
	if (!curl) {
		bfs_err("swift %s \"%s\": out of memory for a handle",
			r->method, r->what);
		return -ENOMEM;
	}
	ret = swift_exec(sb, curl, r);
	swift_pool_put(&sb->pool, curl);
	return ret;
}
