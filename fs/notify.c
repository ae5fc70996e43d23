// SPDX-License-Identifier: Apache-2.0
/*
 * Webhook notifications: a bounded queue and one delivery thread (see
 * notify.h).  The bearer token is kept in memory only for the request
 * header and is never logged.
 */
#include "notify.h"

#include "bfs_version.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NOTIFY_TOKEN_MAX 4096
/* First retry after this, doubling up to NOTIFY_BACKOFF_MAX_MS. */
#define NOTIFY_BACKOFF_MS     500
#define NOTIFY_BACKOFF_MAX_MS 30000

struct bfs_notify {
	const struct bfs_webhook_conf *conf;
	char *auth_header; /* "Authorization: Bearer ...", or NULL */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC: new event, or stopping */
	char *queue[NOTIFY_QUEUE_MAX]; /* ring of JSON texts, owned */
	size_t head, count;
	int overflow;	   /* warned about the current overflow episode */
	int stopping;	   /* bfs_notify_free() runs: drain, then exit */
	_Atomic int abort; /* past the drain deadline: give up at once */
	int started;
	pthread_t thread;
};

static int notify_token(struct bfs_notify *n, const char *path, char *err,
			size_t errlen)
{
	char text[NOTIFY_TOKEN_MAX + 2];
	struct stat st;
	ssize_t len;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		bfs_errf(err, errlen, "cannot open webhook token file '%s': %s",
			 path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		bfs_errf(err, errlen, "cannot stat webhook token file '%s': %s",
			 path, strerror(-ret));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		bfs_errf(err, errlen,
			 "webhook token file '%s' must be a regular file of "
			 "mode 0600 (it has %04o)",
			 path, (unsigned)(st.st_mode & 07777));
		ret = -EPERM;
		goto out_close;
	}
	len = bfs_read_all(fd, text, NOTIFY_TOKEN_MAX + 1);
	if (len < 0) {
		ret = (int)len;
		bfs_errf(err, errlen, "cannot read webhook token file '%s': %s",
			 path, strerror(-ret));
		goto out_close;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	text[len] = 0;
	if (!len || len > NOTIFY_TOKEN_MAX || strlen(text) != (size_t)len ||
	    strpbrk(text, "\r\n")) {
		bfs_errf(err, errlen,
			 "webhook token file '%s' must hold the token on one "
			 "line",
			 path);
		ret = -EINVAL;
		goto out_close;
	}
	if (asprintf(&n->auth_header, "Authorization: Bearer %s", text) < 0) {
		n->auth_header = NULL;
		ret = -ENOMEM;
	}
out_close:
	explicit_bzero(text, sizeof(text));
	close(fd);
	return ret;
}

int bfs_notify_new(const struct bfs_webhook_conf *conf, struct bfs_notify **out,
		   char *err, size_t errlen)
{
	pthread_condattr_t attr;
	struct bfs_notify *n;
	int ret;

	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->conf = conf;
	if (conf->token_file) {
		ret = notify_token(n, conf->token_file, err, errlen);
		if (ret) {
			free(n);
			return ret;
		}
	}
	/* Reference-counted by libcurl; thread-safe since 7.84. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(n->auth_header);
		free(n);
		return -ENOMEM;
	}
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &attr);
	pthread_condattr_destroy(&attr);
	*out = n;
	return 0;
}

static size_t notify_discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}

static int notify_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	struct bfs_notify *n = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&n->abort); /* non-zero aborts the transfer */
}

/*
 * One POST: 0 delivered, -EAGAIN worth retrying (no connection, timeout,
 * 5xx, 429), another -errno when final.  Logs the reason once.
 */
static int notify_post_once(struct bfs_notify *n, const char *json)
{
	const struct bfs_webhook_conf *c = n->conf;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL, *h;
	long status = 0;
	CURLcode cc = CURLE_OK;
	CURL *curl;
	int ret;

	curl = curl_easy_init();
	if (!curl)
		return -EAGAIN;
	h = curl_slist_append(hdrs, "Content-Type: application/json");
	if (h)
		hdrs = h;
	if (h && n->auth_header) {
		h = curl_slist_append(hdrs, n->auth_header);
		if (h)
			hdrs = h;
	}
	if (!h) {
		ret = -EAGAIN;
		goto out_cleanup;
	}
	cc |= curl_easy_setopt(curl, CURLOPT_URL, c->url);
	cc |= curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	cc |= curl_easy_setopt(curl, CURLOPT_POST, 1L);
	cc |= curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
	cc |= curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
			       (curl_off_t)strlen(json));
	cc |= curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	cc |= curl_easy_setopt(curl, CURLOPT_USERAGENT,
			       "backupfs/" BFS_VERSION);
	cc |= curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	cc |= curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)c->timeout);
	cc |= curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
			       (long)(c->timeout < 10 ? c->timeout : 10));
	cc |= curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	cc |= curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, notify_discard);
	cc |= curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	cc |= curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, notify_progress);
	cc |= curl_easy_setopt(curl, CURLOPT_XFERINFODATA, n);
	/* TLS stays verified; cacert only names the CA bundle. */
	if (c->cacert)
		cc |= curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	if (cc != CURLE_OK) {
		bfs_warn("webhook '%s': cannot set up the request", c->url);
		ret = -EINVAL;
		goto out_cleanup;
	}
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		bfs_warn("webhook '%s': %s", c->url,
			 *errbuf ? errbuf : curl_easy_strerror(cc));
		ret = -EAGAIN;
		goto out_cleanup;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300) {
		ret = 0;
	} else if (status >= 500 || status == 429) {
		bfs_warn("webhook '%s': HTTP status %ld", c->url, status);
		ret = -EAGAIN;
	} else {
		bfs_warn("webhook '%s': HTTP status %ld, not retried", c->url,
			 status);
		ret = -EPROTO;
	}
out_cleanup:
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	return ret;
}

static void notify_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Deliver one event with retries; gives up early once aborted. */
static void notify_deliver(struct bfs_notify *n, const char *json)
{
	long backoff = NOTIFY_BACKOFF_MS;
	unsigned attempt, tries = 0;
	int ret = -EAGAIN;

	for (attempt = 0; attempt <= n->conf->retries; attempt++) {
		struct timespec until;

		if (atomic_load(&n->abort))
			break;
		ret = notify_post_once(n, json);
		tries++;
		if (ret != -EAGAIN || attempt == n->conf->retries)
			break;
		notify_deadline(&until, backoff);
		pthread_mutex_lock(&n->lock);
		while (!atomic_load(&n->abort) &&
		       pthread_cond_timedwait(&n->cond, &n->lock, &until) !=
			       ETIMEDOUT)
			;
		pthread_mutex_unlock(&n->lock);
		backoff = backoff * 2 > NOTIFY_BACKOFF_MAX_MS
				  ? NOTIFY_BACKOFF_MAX_MS
				  : backoff * 2;
	}
	if (ret)
		bfs_warn("webhook '%s': event dropped after %u attempt%s",
			 n->conf->url, tries, tries == 1 ? "" : "s");
}

static void *notify_thread(void *arg)
{
	struct bfs_notify *n = arg;
	char *json;

	pthread_mutex_lock(&n->lock);
	for (;;) {
		while (!n->count && !n->stopping)
			pthread_cond_wait(&n->cond, &n->lock);
		if (!n->count || atomic_load(&n->abort))
			break;
		json = n->queue[n->head];
		n->queue[n->head] = NULL;
		n->head = (n->head + 1) % NOTIFY_QUEUE_MAX;
		n->count--;
		if (!n->count)
			n->overflow = 0;
		pthread_mutex_unlock(&n->lock);
		notify_deliver(n, json);
		free(json);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int bfs_notify_start(struct bfs_notify *n)
{
	int ret = pthread_create(&n->thread, NULL, notify_thread, n);

	if (ret)
		return -ret;
	n->started = 1;
	return 0;
}

void bfs_notify_post(struct bfs_notify *n, const char *json)
{
	char *copy = strdup(json);
	int warn = 0;

	if (!copy)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->count == NOTIFY_QUEUE_MAX) {
		free(n->queue[n->head]);
		n->queue[n->head] = NULL;
		n->head = (n->head + 1) % NOTIFY_QUEUE_MAX;
		n->count--;
		warn = !n->overflow;
		n->overflow = 1;
	}
	n->queue[(n->head + n->count) % NOTIFY_QUEUE_MAX] = copy;
	n->count++;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	if (warn)
		bfs_warn("webhook '%s': queue full (%d events), dropping the "
			 "oldest",
			 n->conf->url, NOTIFY_QUEUE_MAX);
}

/* Wait for the thread to drain the queue, at most NOTIFY_DRAIN_SECS. */
static void notify_stop(struct bfs_notify *n)
{
	struct timespec until;

	notify_deadline(&until, NOTIFY_DRAIN_SECS * 1000L);
	pthread_mutex_lock(&n->lock);
	n->stopping = 1;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	/* The thread exits once the queue is empty; give it until the
	 * deadline, then abort the request in flight and the backoff. */
	if (pthread_clockjoin_np(n->thread, NULL, CLOCK_MONOTONIC, &until)) {
		pthread_mutex_lock(&n->lock);
		atomic_store(&n->abort, 1);
		pthread_cond_broadcast(&n->cond);
		pthread_mutex_unlock(&n->lock);
		pthread_join(n->thread, NULL);
	}
}

void bfs_notify_free(struct bfs_notify *n)
{
	size_t lost;

	if (!n)
		return;
	if (n->started)
		notify_stop(n);
	lost = n->count;
	for (size_t i = 0; i < n->count; i++)
		free(n->queue[(n->head + i) % NOTIFY_QUEUE_MAX]);
	if (lost)
		bfs_warn("webhook '%s': %zu event%s not delivered at exit",
			 n->conf->url, lost, lost == 1 ? "" : "s");
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	free(n->auth_header);
	free(n);
	curl_global_cleanup();
}
