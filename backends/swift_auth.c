// SPDX-License-Identifier: Apache-2.0
/*
 * Authentication for the swift backend: tempauth v1 (GET auth_url with
 * X-Auth-User/X-Auth-Key) and Keystone v3 (POST auth_url/auth/tokens,
 * password with names and domains or ids, or an application credential;
 * the object-store endpoint from the catalog by region and interface).
 *
 * The token and storage URL live under a mutex; each request takes a
 * copy.  A token is refreshed before it expires (when less than a tenth
 * of its lifetime or 60 s remain, whichever is less) and re-acquired once
 * when the server refuses it.  One thread authenticates at a time; the
 * others waiting meanwhile take its result instead of asking again.
 */
#include "log.h"
#include "swift_int.h"
#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SWIFT_REFRESH_MARGIN_MS 60000

int swift_auth_init(struct swift_backend *sb)
{
	struct swift_token *t = &sb->tok;
	const struct swift_conf *c = &sb->conf;

	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->auth_lock, NULL);
	/* OS_AUTH_TOKEN: used until refused (expiry unknown). */
	if (c->preset_token && c->preset_url) {
		t->token = strdup(c->preset_token);
		t->url = strdup(c->preset_url);
		if (!t->token || !t->url) {
			swift_auth_release(sb);
			return -ENOMEM;
		}
		t->generation = 1;
	}
	return 0;
}

void swift_auth_release(struct swift_backend *sb)
{
	struct swift_token *t = &sb->tok;

	swift_free_secret(t->token);
	free(t->url);
	t->token = t->url = NULL;
	pthread_mutex_destroy(&t->auth_lock);
	pthread_mutex_destroy(&t->lock);
}

void swift_cred_clear(struct swift_cred *cred)
{
	swift_free_secret(cred->token);
	free(cred->url);
	cred->token = cred->url = NULL;
}

/* Under t->lock. */
static int swift_cred_copy(const struct swift_token *t, struct swift_cred *cred)
{
	cred->token = strdup(t->token);
	cred->url = strdup(t->url);
	cred->generation = t->generation;
	if (cred->token && cred->url)
		return 0;
	swift_cred_clear(cred);
	return -ENOMEM;
}

/* Install a new token (token and url are stolen). */
static void swift_token_install(struct swift_backend *sb, char *token,
				char *url, int64_t lifetime_ms)
{
	struct swift_token *t = &sb->tok;
	uint64_t now = swift_now_ms(), margin;

	pthread_mutex_lock(&t->lock);
	swift_free_secret(t->token);
	free(t->url);
	t->token = token;
	t->url = url;
	t->expires_ms = t->refresh_ms = 0;
	if (lifetime_ms > 0) {
		margin = (uint64_t)lifetime_ms / 10;
		if (margin > SWIFT_REFRESH_MARGIN_MS)
			margin = SWIFT_REFRESH_MARGIN_MS;
		t->expires_ms = now + (uint64_t)lifetime_ms;
		t->refresh_ms = t->expires_ms - margin;
	}
	t->generation++;
	t->auth_count++;
	/* Under the lock: once it is released, another thread may replace
	 * (and free) url. */
	bfs_debug("swift: new token for \"%s\", valid for %lld s", url,
		  (long long)(lifetime_ms / 1000));
	pthread_mutex_unlock(&t->lock);
}

/* A storage URL from the server or the catalog: http(s), bounded, no
 * trailing '/'.  Steals url. */
static int swift_url_ok(char **url, const char *where, char *err, size_t errlen)
{
	char *u = *url;
	size_t n = strlen(u);

	if ((strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) ||
	    n > SWIFT_URL_MAX) {
		bfs_errf(err, errlen,
			 "swift: %s gave a storage URL that is "
			 "not http(s): \"%.64s\"",
			 where, u);
		if (!err)
			bfs_err("swift: %s gave a storage URL that is not "
				"http(s): \"%.64s\"",
				where, u);
		free(u);
		*url = NULL;
		return -EIO;
	}
	while (n > 0 && u[n - 1] == '/')
		u[--n] = 0;
	return 0;
}

/* OS_STORAGE_URL wins over what authentication says. */
static int swift_storage_url(const struct swift_conf *c, char **url)
{
	if (!c->preset_url)
		return 0;
	free(*url);
	*url = strdup(c->preset_url);
	return *url ? 0 : -ENOMEM;
}

static void swift_auth_fail(char *err, size_t errlen, const char *fmt,
			    const char *a, const char *b)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, a, b);
	if (err)
		bfs_errf(err, errlen, "%s", msg);
	else
		bfs_err("%s", msg);
}

/* ------------------------------------------------------------------ */
/* tempauth v1 */

static char *swift_hdr_line(const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 3;
	char *s = malloc(len);

	if (s)
		snprintf(s, len, "%s: %s", name, value);
	return s;
}

static int swift_auth_v1_answer(struct swift_backend *sb, struct swift_req *r,
				char *err, size_t errlen)
{
	const struct swift_conf *c = &sb->conf;
	int ret;

	if (!r->hdr_token || !r->hdr_url) {
		swift_auth_fail(err, errlen,
				"swift: \"%s\" answered without "
				"X-Auth-Token or X-Storage-Url%s",
				c->auth_url, "");
		return -EIO;
	}
	ret = swift_url_ok(&r->hdr_url, c->auth_url, err, errlen);
	if (!ret)
		ret = swift_storage_url(c, &r->hdr_url);
	if (ret)
		return ret;
	swift_token_install(sb, r->hdr_token, r->hdr_url,
			    r->hdr_expires > 0 ? r->hdr_expires * 1000 : 0);
	r->hdr_token = r->hdr_url = NULL;
	return 0;
}

static int swift_auth_v1(struct swift_backend *sb, CURL *curl,
			 uint64_t deadline, char *err, size_t errlen)
{
	const struct swift_conf *c = &sb->conf;
	struct swift_req r = {0};
	char label[SWIFT_URL_MAX];
	char *user, *key;
	int ret = -ENOMEM;

	user = swift_hdr_line("X-Auth-User", c->user);
	key = swift_hdr_line("X-Auth-Key", c->secret);
	if (!user || !key)
		goto out_free;
	snprintf(label, sizeof(label),
		 "swift: tempauth of user \"%s\" at "
		 "\"%s\"",
		 c->user, c->auth_url);
	r.method = "GET";
	r.what = c->auth_url;
	r.label = label;
	r.url = c->auth_url;
	r.hdrs[0] = user;
	r.hdrs[1] = key;
	r.auth_hdrs = 1;
	r.deadline_ms = deadline;
	r.err = err;
	r.errlen = errlen;
	ret = swift_exec(sb, curl, &r);
	if (!ret)
		ret = swift_auth_v1_answer(sb, &r, err, errlen);
	swift_req_release(&r);
out_free:
	swift_free_secret(key);
	free(user);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Keystone v3 */

/* {"name": n, "domain": {...}} or {"id": id} */
static json_t *swift_v3_named(const char *name, const char *id, const char *dom,
			      const char *dom_id)
{
	if (id)
		return json_pack("{s:s}", "id", id);
	if (dom_id)
		return json_pack("{s:s,s:{s:s}}", "name", name, "domain", "id",
				 dom_id);
	return json_pack("{s:s,s:{s:s}}", "name", name, "domain", "name", dom);
}

/* The request body; *secret is the JSON string holding the secret, to be
 * wiped before the body is freed. */
static json_t *swift_v3_body(const struct swift_conf *c, json_t **secret)
{
	json_t *user, *project;

	*secret = json_string(c->secret);
	if (!*secret)
		return NULL;
	/* "O" and json_object_set() take references of their own. */
	if (c->kind == SWIFT_AUTH_V3_APPCRED)
		return json_pack("{s:{s:[s],s:{s:s,s:O}}}", "identity",
				 "methods", "application_credential",
				 "application_credential", "id", c->appcred_id,
				 "secret", *secret);
	user = swift_v3_named(c->user, c->user_id, c->user_domain,
			      c->user_domain_id);
	project = swift_v3_named(c->project, c->project_id, c->project_domain,
				 c->project_domain_id);
	if (user)
		json_object_set(user, "password", *secret);
	return json_pack("{s:{s:[s],s:{s:o}},s:{s:o}}", "identity", "methods",
			 "password", "password", "user", user, "scope",
			 "project", project);
}

/* "2026-11-22T01:02:03.000000Z" -> seconds since the epoch, or -1. */
static int64_t swift_iso_time(const char *s)
{
	struct tm tm = {0};
	time_t t;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
			 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return t == (time_t)-1 ? -1 : (int64_t)t;
}

/* Lifetime from issued_at to expires_at: the server's clock for both, so
 * a skewed local clock does not matter. */
static int64_t swift_v3_lifetime_ms(json_t *token)
{
	int64_t exp, iss;

	exp = swift_iso_time(
		json_string_value(json_object_get(token, "expires_at")));
	iss = swift_iso_time(
		json_string_value(json_object_get(token, "issued_at")));
	if (exp < 0)
		return 0;
	if (iss < 0)
		iss = (int64_t)time(NULL);
	return exp > iss ? (exp - iss) * 1000 : 0;
}

static int swift_endpoint_match(const struct swift_conf *c, json_t *ep)
{
	const char *itf, *reg, *reg_id;

	itf = json_string_value(json_object_get(ep, "interface"));
	if (!itf || strcmp(itf, c->interface))
		return 0;
	if (!c->region)
		return 1;
	reg = json_string_value(json_object_get(ep, "region"));
	reg_id = json_string_value(json_object_get(ep, "region_id"));
	return (reg && !strcmp(reg, c->region)) ||
	       (reg_id && !strcmp(reg_id, c->region));
}

/* The object-store endpoint for our region and interface (new string). */
static char *swift_catalog_url(const struct swift_conf *c, json_t *catalog)
{
	json_t *svc, *ep, *eps;
	const char *type, *url;
	size_t i, j;

	for (i = 0; i < json_array_size(catalog); i++) {
		svc = json_array_get(catalog, i);
		type = json_string_value(json_object_get(svc, "type"));
		if (!type || strcmp(type, "object-store"))
			continue;
		eps = json_object_get(svc, "endpoints");
		for (j = 0; j < json_array_size(eps); j++) {
			ep = json_array_get(eps, j);
			url = json_string_value(json_object_get(ep, "url"));
			if (url && swift_endpoint_match(c, ep))
				return strdup(url);
		}
	}
	return NULL;
}

static int swift_v3_answer(struct swift_backend *sb, struct swift_req *r,
			   char *err, size_t errlen)
{
	const struct swift_conf *c = &sb->conf;
	json_t *root, *token;
	char *url = NULL;
	int64_t life;
	int ret;

	root = json_loadb((const char *)r->out->data, r->out->len, 0, NULL);
	token = json_object_get(root, "token");
	if (!r->hdr_token || !json_is_object(token)) {
		swift_auth_fail(err, errlen,
				"swift: keystone at \"%s\" "
				"answered without X-Subject-Token or a token "
				"object%s",
				c->auth_url, "");
		ret = -EIO;
		goto out_put;
	}
	life = swift_v3_lifetime_ms(token);
	if (!c->preset_url) {
		url = swift_catalog_url(c, json_object_get(token, "catalog"));
		if (!url) {
			swift_auth_fail(err, errlen,
					"swift: the keystone "
					"catalog has no object-store endpoint "
					"with interface \"%s\"%s",
					c->interface,
					c->region ? " in the region given"
						  : "");
			ret = -ENOENT;
			goto out_put;
		}
	}
	ret = url ? swift_url_ok(&url, "the keystone catalog", err, errlen) : 0;
	if (!ret)
		ret = swift_storage_url(c, &url);
	if (!ret) {
		swift_token_install(sb, r->hdr_token, url, life);
		r->hdr_token = NULL;
		url = NULL;
	}
out_put:
	free(url);
	json_decref(root);
	return ret;
}

static void swift_v3_label(const struct swift_conf *c, char *label, size_t len)
{
	if (c->kind == SWIFT_AUTH_V3_APPCRED)
		snprintf(label, len,
			 "swift: keystone authentication with "
			 "application credential \"%s\" at \"%s\"",
			 c->appcred_id, c->auth_url);
	else
		snprintf(label, len,
			 "swift: keystone authentication of user "
			 "\"%s\" (domain \"%s\") for project \"%s\" at \"%s\"",
			 c->user ? c->user : c->user_id,
			 c->user_id	  ? "-"
			 : c->user_domain ? c->user_domain
					  : c->user_domain_id,
			 c->project ? c->project : c->project_id, c->auth_url);
}

static int swift_auth_v3_post(struct swift_backend *sb, CURL *curl,
			      uint64_t deadline, const char *body, char *err,
			      size_t errlen)
{
	const struct swift_conf *c = &sb->conf;
	char url[SWIFT_URL_MAX + 16], label[2 * SWIFT_URL_MAX];
	struct swift_req r = {0};
	struct bfs_buf out;
	int ret;

	snprintf(url, sizeof(url), "%s/auth/tokens", c->auth_url);
	swift_v3_label(c, label, sizeof(label));
	bfs_buf_init(&out, SWIFT_AUTH_BODY_MAX);
	r.method = "POST";
	r.what = url;
	r.label = label;
	r.url = url;
	r.hdrs[0] = "Content-Type: application/json";
	r.hdrs[1] = "Accept: application/json";
	r.body = body;
	r.body_len = strlen(body);
	r.out = &out;
	r.auth_hdrs = 1;
	r.deadline_ms = deadline;
	r.err = err;
	r.errlen = errlen;
	ret = swift_exec(sb, curl, &r);
	if (!ret)
		ret = swift_v3_answer(sb, &r, err, errlen);
	swift_req_release(&r);
	bfs_buf_release(&out);
	return ret;
}

static int swift_auth_v3(struct swift_backend *sb, CURL *curl,
			 uint64_t deadline, char *err, size_t errlen)
{
	json_t *root, *secret = NULL;
	char *body = NULL;
	int ret = -ENOMEM;

	root = json_pack("{s:o}", "auth", swift_v3_body(&sb->conf, &secret));
	if (root)
		body = json_dumps(root, JSON_COMPACT);
	/* jansson copied the secret: wipe its copy too. */
	if (secret)
		OPENSSL_cleanse((char *)json_string_value(secret),
				json_string_length(secret));
	json_decref(secret);
	json_decref(root);
	if (!body) {
		bfs_errf(err, errlen,
			 "swift: cannot build the keystone request "
			 "(a setting is not valid UTF-8?)");
		return -EINVAL;
	}
	ret = swift_auth_v3_post(sb, curl, deadline, body, err, errlen);
	swift_free_secret(body);
	return ret;
}

/* ------------------------------------------------------------------ */

static int swift_authenticate(struct swift_backend *sb, CURL *curl,
			      uint64_t deadline, char *err, size_t errlen)
{
	switch (sb->conf.kind) {
	case SWIFT_AUTH_V1:
		return swift_auth_v1(sb, curl, deadline, err, errlen);
	case SWIFT_AUTH_V3:
	case SWIFT_AUTH_V3_APPCRED:
		return swift_auth_v3(sb, curl, deadline, err, errlen);
	case SWIFT_AUTH_TOKEN:
		break;
	}
	swift_auth_fail(err, errlen,
			"swift: the token from OS_AUTH_TOKEN "
			"was refused and there are no credentials to get "
			"another%s%s",
			"", "");
	return -EACCES;
}

/* Under t->lock: the token is there and not due for a refresh. */
static int swift_token_fresh(const struct swift_token *t, uint64_t now)
{
	return t->token && (!t->refresh_ms || now < t->refresh_ms);
}

/*
 * Authenticate unless a thread did so since generation stale was
 * current.  Serialised by auth_lock so a burst of 401s or expiries makes
 * one request to the auth service, not one per thread.
 */
static int swift_reauth(struct swift_backend *sb, CURL *curl, uint64_t deadline,
			unsigned stale, char *err, size_t errlen)
{
	struct swift_token *t = &sb->tok;
	int fresh, ret = 0;

	pthread_mutex_lock(&t->auth_lock);
	pthread_mutex_lock(&t->lock);
	fresh = t->generation != stale && swift_token_fresh(t, swift_now_ms());
	pthread_mutex_unlock(&t->lock);
	if (!fresh)
		ret = swift_authenticate(sb, curl, deadline, err, errlen);
	pthread_mutex_unlock(&t->auth_lock);
	return ret;
}

/* Under t->lock, after a failed early refresh: try again later, not
 * before every request while the token still works. */
static void swift_refresh_later(struct swift_token *t, uint64_t now)
{
	uint64_t wait = (t->expires_ms - now) / 2;

	if (wait > SWIFT_REFRESH_MARGIN_MS / 2)
		wait = SWIFT_REFRESH_MARGIN_MS / 2;
	t->refresh_ms = now + wait;
	bfs_warn("swift: cannot renew the token before it expires; using "
		 "the current one meanwhile");
}

int swift_cred_get(struct swift_backend *sb, CURL *curl, uint64_t deadline,
		   struct swift_cred *cred, char *err, size_t errlen)
{
	struct swift_token *t = &sb->tok;
	uint64_t now = swift_now_ms();
	unsigned stale;
	int ret, usable;

	pthread_mutex_lock(&t->lock);
	if (swift_token_fresh(t, now)) {
		ret = swift_cred_copy(t, cred);
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	stale = t->generation;
	/* An early refresh may take half of what the token has left. */
	if (t->token && t->expires_ms > now &&
	    deadline > now + (t->expires_ms - now) / 2)
		deadline = now + (t->expires_ms - now) / 2;
	pthread_mutex_unlock(&t->lock);
	ret = swift_reauth(sb, curl, deadline, stale, err, errlen);
	pthread_mutex_lock(&t->lock);
	now = swift_now_ms();
	usable = t->token && (!t->expires_ms || now < t->expires_ms);
	if (ret && usable)
		swift_refresh_later(t, now);
	ret = usable ? swift_cred_copy(t, cred) : ret ? ret : -EACCES;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int swift_cred_renew(struct swift_backend *sb, CURL *curl, uint64_t deadline,
		     struct swift_cred *cred, char *err, size_t errlen)
{
	struct swift_token *t = &sb->tok;
	unsigned stale = cred->generation;
	int ret;

	swift_cred_clear(cred);
	bfs_debug("swift: token refused; authenticating again");
	ret = swift_reauth(sb, curl, deadline, stale, err, errlen);
	if (ret)
		return ret;
	pthread_mutex_lock(&t->lock);
	ret = t->token ? swift_cred_copy(t, cred) : -EACCES;
	pthread_mutex_unlock(&t->lock);
	return ret;
}
