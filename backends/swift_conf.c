// SPDX-License-Identifier: Apache-2.0
/*
 * The swift backend's configuration: the "backend" object of the config
 * file, or, when it leaves authentication out entirely, the environment
 * the swift and openstack CLIs read (ST_* for v1, OS_* for Keystone v3).
 *
 * Secrets come only from files that only their owner may read, or from
 * the environment; never inline, never logged.  Every value that ends up
 * in an HTTP header is checked for control bytes here, once.
 */
#include "log.h"
#include "swift_int.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SWIFT_TIMEOUT_DEF     30
#define SWIFT_DEADLINE_DEF    60
#define SWIFT_CONNECTIONS_DEF 8
#define SWIFT_CONNECTIONS_MAX 256
#define SWIFT_SECONDS_MAX     86400
#define SWIFT_DOMAIN_DEF      "Default"

#define SC_AUTH 0x1 /* an auth setting: then auth comes from the config */
#define SC_V3	0x2 /* Keystone v3 only */

struct swift_str_key {
	const char *name;
	size_t off; /* of a char * in struct swift_conf */
	unsigned flags;
};

#define SC_OFF(f) offsetof(struct swift_conf, f)

static const struct swift_str_key swift_str_keys[] = {
	{"auth_url", SC_OFF(auth_url), SC_AUTH},
	{"user", SC_OFF(user), SC_AUTH},
	{"user_id", SC_OFF(user_id), SC_AUTH | SC_V3},
	{"user_domain", SC_OFF(user_domain), SC_AUTH | SC_V3},
	{"user_domain_id", SC_OFF(user_domain_id), SC_AUTH | SC_V3},
	{"project", SC_OFF(project), SC_AUTH | SC_V3},
	{"project_id", SC_OFF(project_id), SC_AUTH | SC_V3},
	{"project_domain", SC_OFF(project_domain), SC_AUTH | SC_V3},
	{"project_domain_id", SC_OFF(project_domain_id), SC_AUTH | SC_V3},
	{"application_credential_id", SC_OFF(appcred_id), SC_AUTH | SC_V3},
	{"region", SC_OFF(region), 0},
	{"interface", SC_OFF(interface), 0},
	{"container", SC_OFF(container), 0},
	{"cacert", SC_OFF(cacert), 0},
};

/* Files holding the secret; at most one may be given. */
static const char *const swift_secret_keys[] = {
	"key_file",
	"password_file",
	"application_credential_secret_file",
};

/* Inline secrets get a message saying where the secret goes instead. */
static const char *const swift_inline_secrets[] = {
	"key",
	"password",
	"application_credential_secret",
	"token",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char **swift_field(struct swift_conf *c, size_t off)
{
	return (char **)((char *)c + off);
}

void swift_free_secret(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void swift_conf_release(struct swift_conf *c)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(swift_str_keys); i++)
		free(*swift_field(c, swift_str_keys[i].off));
	swift_free_secret(c->secret);
	swift_free_secret(c->preset_token);
	free(c->preset_url);
	memset(c, 0, sizeof(*c));
}

/* Text that may go into an HTTP header: no control bytes at all. */
static int swift_text_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int swift_set(char **field, const char *val, const char *what, char *err,
		     size_t errlen)
{
	if (!*val || !swift_text_ok(val)) {
		bfs_errf(err, errlen,
			 "swift backend: \"%s\" is empty or holds "
			 "control characters",
			 what);
		return -EINVAL;
	}
	/* Cleansed: the field may hold a secret. */
	swift_free_secret(*field);
	*field = strdup(val);
	if (!*field) {
		bfs_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Like the repository key file: a regular file only its owner can read. */
static int swift_secret_mode(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st)) {
		bfs_errf(err, errlen, "cannot stat secret file \"%s\": %s",
			 path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		bfs_errf(err, errlen,
			 "secret file \"%s\" is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		bfs_errf(err, errlen,
			 "secret file \"%s\" has mode %04o: group "
			 "and others must have no access (chmod 600)",
			 path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* The secret on one line; the trailing newline (or CR LF) is not part. */
static int swift_secret_parse(char *text, size_t len, const char *path,
			      char *err, size_t errlen)
{
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len > 0 && text[len - 1] == '\r')
		len--;
	text[len] = 0;
	if (!len) {
		bfs_errf(err, errlen, "secret file \"%s\" is empty", path);
		return -EINVAL;
	}
	if (strlen(text) != len || !swift_text_ok(text)) {
		bfs_errf(err, errlen,
			 "secret file \"%s\" must hold the secret "
			 "on one line",
			 path);
		return -EINVAL;
	}
	return 0;
}

static int swift_secret_file(const char *path, char **out, char *err,
			     size_t errlen)
{
	/* One byte more than the longest secret detects a longer file. */
	char text[SWIFT_SECRET_MAX + 2];
	ssize_t len;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		bfs_errf(err, errlen, "cannot open secret file \"%s\": %s",
			 path, strerror(errno));
		return -errno;
	}
	ret = swift_secret_mode(fd, path, err, errlen);
	if (ret)
		goto out_close;
	len = bfs_read_all(fd, text, SWIFT_SECRET_MAX + 1);
	if (len < 0) {
		ret = (int)len;
		bfs_errf(err, errlen, "cannot read secret file \"%s\": %s",
			 path, strerror(-ret));
		goto out_close;
	}
	if (len > SWIFT_SECRET_MAX) {
		bfs_errf(err, errlen, "secret file \"%s\" is over %d bytes",
			 path, SWIFT_SECRET_MAX);
		ret = -EINVAL;
		goto out_close;
	}
	ret = swift_secret_parse(text, (size_t)len, path, err, errlen);
	if (!ret) {
		*out = strdup(text);
		if (!*out)
			ret = -ENOMEM;
	}
out_close:
	OPENSSL_cleanse(text, sizeof(text));
	close(fd);
	return ret;
}

/* A number of seconds in (0, SWIFT_SECONDS_MAX], as milliseconds. */
static int swift_seconds(json_t *v, const char *key, long *ms, char *err,
			 size_t errlen)
{
	double s = json_number_value(v);

	if (!json_is_number(v) || !(s > 0) || s > SWIFT_SECONDS_MAX) {
		bfs_errf(err, errlen,
			 "swift backend: \"%s\" must be a number "
			 "of seconds in (0, %d]",
			 key, SWIFT_SECONDS_MAX);
		return -EINVAL;
	}
	*ms = (long)(s * 1000);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

static int swift_int(json_t *v, const char *key, int min, int max, int *out,
		     char *err, size_t errlen)
{
	json_int_t n = json_integer_value(v);

	if (!json_is_integer(v) || n < min || n > max) {
		bfs_errf(err, errlen,
			 "swift backend: \"%s\" must be an "
			 "integer in [%d, %d]",
			 key, min, max);
		return -EINVAL;
	}
	*out = (int)n;
	return 0;
}

static int swift_bool(json_t *v, const char *key, int *out, char *err,
		      size_t errlen)
{
	if (!json_is_boolean(v)) {
		bfs_errf(err, errlen,
			 "swift backend: \"%s\" must be true or false", key);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

/* Settings that are not strings; 1 if key is not one of them. */
static int swift_conf_other(struct swift_conf *c, const char *key, json_t *v,
			    char *err, size_t errlen)
{
	if (!strcmp(key, "timeout"))
		return swift_seconds(v, key, &c->timeout_ms, err, errlen);
	if (!strcmp(key, "deadline"))
		return swift_seconds(v, key, &c->deadline_ms, err, errlen);
	if (!strcmp(key, "connections"))
		return swift_int(v, key, 1, SWIFT_CONNECTIONS_MAX,
				 &c->connections, err, errlen);
	/* Page size of listings: for tests and tuning. */
	if (!strcmp(key, "list_limit"))
		return swift_int(v, key, 1, SWIFT_LISTING_MAX, &c->list_limit,
				 err, errlen);
	if (!strcmp(key, "insecure"))
		return swift_bool(v, key, &c->insecure, err, errlen);
	if (!strcmp(key, "create_container"))
		return swift_bool(v, key, &c->create_container, err, errlen);
	return 1;
}

static const struct swift_str_key *swift_str_key(const char *key)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(swift_str_keys); i++)
		if (!strcmp(key, swift_str_keys[i].name))
			return &swift_str_keys[i];
	return NULL;
}

static int swift_is_secret_key(const char *key)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(swift_secret_keys); i++)
		if (!strcmp(key, swift_secret_keys[i]))
			return 1;
	return 0;
}

static int swift_unknown_key(const char *key, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(swift_inline_secrets); i++) {
		if (strcmp(key, swift_inline_secrets[i]))
			continue;
		bfs_errf(err, errlen,
			 "swift backend: secrets are not accepted "
			 "inline (\"%s\"): put it in a file readable only by "
			 "its owner and name the file (\"key_file\", "
			 "\"password_file\" or "
			 "\"application_credential_secret_file\")",
			 key);
		return -EINVAL;
	}
	bfs_errf(err, errlen, "unknown key \"%.64s\" in swift backend config",
		 key);
	return -EINVAL;
}

/* What the config object holds, key by key. */
struct swift_seen {
	unsigned flags;		/* SC_* of the string keys given */
	const char *secret_key; /* which secret file key, if any */
	const char *secret_path;
	const char *v3_key; /* a v3-only key, for the message */
};

static int swift_conf_key(struct swift_conf *c, struct swift_seen *seen,
			  const char *key, json_t *v, char *err, size_t errlen)
{
	const struct swift_str_key *sk;
	int ret;

	if (!strcmp(key, "type"))
		return 0;
	ret = swift_conf_other(c, key, v, err, errlen);
	if (ret <= 0)
		return ret;
	sk = swift_str_key(key);
	if (!sk && !swift_is_secret_key(key))
		return swift_unknown_key(key, err, errlen);
	if (!json_is_string(v)) {
		bfs_errf(err, errlen, "swift backend: \"%s\" must be a string",
			 key);
		return -EINVAL;
	}
	if (!sk) {
		if (seen->secret_key) {
			bfs_errf(err, errlen,
				 "swift backend: \"%s\" and "
				 "\"%s\" both given",
				 seen->secret_key, key);
			return -EINVAL;
		}
		seen->secret_key = key;
		seen->secret_path = json_string_value(v);
		seen->flags |= SC_AUTH;
		return 0;
	}
	seen->flags |= sk->flags;
	if (sk->flags & SC_V3)
		seen->v3_key = sk->name;
	return swift_set(swift_field(c, sk->off), json_string_value(v), key,
			 err, errlen);
}

/* "http://h:5000/v3/" -> v3 (the slash dropped); anything else -> v1. */
static int swift_is_v3_url(char *url)
{
	size_t n = strlen(url);

	while (n > 1 && url[n - 1] == '/')
		url[--n] = 0;
	return n >= 3 && !strcmp(url + n - 3, "/v3");
}

static int swift_need(const char *val, const char *what, const char *why,
		      char *err, size_t errlen)
{
	if (val)
		return 0;
	bfs_errf(err, errlen, "swift backend: %s needs %s", why, what);
	return -EINVAL;
}

/* Names without a domain: the user's is "Default", the project's the
 * user's (the usual single-domain cloud). */
static int swift_domains(struct swift_conf *c, char *err, size_t errlen)
{
	int ret = 0;

	if (c->user && !c->user_domain && !c->user_domain_id)
		ret = swift_set(&c->user_domain, SWIFT_DOMAIN_DEF, "domain",
				err, errlen);
	if (!ret && c->project && !c->project_domain && !c->project_domain_id) {
		if (c->user_domain_id)
			ret = swift_set(&c->project_domain_id,
					c->user_domain_id, "domain", err,
					errlen);
		else
			ret = swift_set(&c->project_domain,
					c->user_domain ? c->user_domain
						       : SWIFT_DOMAIN_DEF,
					"domain", err, errlen);
	}
	return ret;
}

static int swift_both(const char *a, const char *b, const char *an,
		      const char *bn, char *err, size_t errlen)
{
	if (!a || !b)
		return 0;
	bfs_errf(err, errlen, "swift backend: give \"%s\" or \"%s\", not both",
		 an, bn);
	return -EINVAL;
}

/* The settings of one Keystone v3 method are complete and consistent. */
static int swift_check_v3(struct swift_conf *c, char *err, size_t errlen)
{
	const char *why = "keystone v3 password authentication";
	int ret;

	if (c->appcred_id) {
		c->kind = SWIFT_AUTH_V3_APPCRED;
		if (c->user || c->user_id || c->project || c->project_id) {
			bfs_errf(err, errlen,
				 "swift backend: an application "
				 "credential is scoped already: give no user "
				 "or project with it");
			return -EINVAL;
		}
		return swift_need(c->secret, "its secret",
				  "an application credential", err, errlen);
	}
	c->kind = SWIFT_AUTH_V3;
	ret = swift_both(c->user, c->user_id, "user", "user_id", err, errlen);
	if (!ret)
		ret = swift_both(c->project, c->project_id, "project",
				 "project_id", err, errlen);
	if (!ret)
		ret = swift_need(c->user ? c->user : c->user_id,
				 "a user (name or id)", why, err, errlen);
	if (!ret)
		ret = swift_need(c->secret, "a password", why, err, errlen);
	/* An unscoped token has no catalog: there would be no endpoint. */
	if (!ret)
		ret = swift_need(c->project ? c->project : c->project_id,
				 "a project (name or id)", why, err, errlen);
	if (!ret)
		ret = swift_domains(c, err, errlen);
	return ret;
}

static int swift_check_v1(struct swift_conf *c, const char *v3_key, char *err,
			  size_t errlen)
{
	const char *why = "tempauth (v1) authentication";
	int ret;

	if (v3_key) {
		bfs_errf(err, errlen,
			 "swift backend: \"%s\" is a keystone v3 "
			 "setting, but \"auth_url\" does not end in /v3",
			 v3_key);
		return -EINVAL;
	}
	c->kind = SWIFT_AUTH_V1;
	ret = swift_need(c->user, "\"user\"", why, err, errlen);
	if (!ret)
		ret = swift_need(c->secret, "\"key_file\"", why, err, errlen);
	return ret;
}

static int swift_conf_auth(struct swift_conf *c, struct swift_seen *seen,
			   char *err, size_t errlen)
{
	int ret;

	if (!c->auth_url) {
		bfs_errf(err, errlen,
			 "swift backend: authentication settings "
			 "given without \"auth_url\"");
		return -EINVAL;
	}
	if (seen->secret_key) {
		ret = swift_secret_file(seen->secret_path, &c->secret, err,
					errlen);
		if (ret)
			return ret;
	}
	if (swift_is_v3_url(c->auth_url))
		return swift_check_v3(c, err, errlen);
	return swift_check_v1(c, seen->v3_key, err, errlen);
}

/* ------------------------------------------------------------------ */
/* The environment, as the swift and openstack CLIs read it. */

static const char *swift_env(const char *a, const char *b)
{
	const char *v = getenv(a);

	if ((!v || !*v) && b)
		v = getenv(b);
	return v && *v ? v : NULL;
}

struct swift_env_map {
	const char *var, *alt;
	size_t off;
};

static const struct swift_env_map swift_env_password[] = {
	{"OS_USERNAME", NULL, SC_OFF(user)},
	{"OS_USER_ID", NULL, SC_OFF(user_id)},
	{"OS_USER_DOMAIN_NAME", NULL, SC_OFF(user_domain)},
	{"OS_USER_DOMAIN_ID", NULL, SC_OFF(user_domain_id)},
	{"OS_PROJECT_NAME", "OS_TENANT_NAME", SC_OFF(project)},
	{"OS_PROJECT_ID", "OS_TENANT_ID", SC_OFF(project_id)},
	{"OS_PROJECT_DOMAIN_NAME", NULL, SC_OFF(project_domain)},
	{"OS_PROJECT_DOMAIN_ID", NULL, SC_OFF(project_domain_id)},
	{"OS_PASSWORD", NULL, SC_OFF(secret)},
};

static const struct swift_env_map swift_env_appcred[] = {
	{"OS_APPLICATION_CREDENTIAL_ID", NULL, SC_OFF(appcred_id)},
	{"OS_APPLICATION_CREDENTIAL_SECRET", NULL, SC_OFF(secret)},
};

static int swift_env_set(char **field, const char *var, char *err,
			 size_t errlen)
{
	const char *v = getenv(var);

	if (!v || !*v)
		return 0;
	return swift_set(field, v, var, err, errlen);
}

/* OS_AUTH_URL may be unversioned ("http://h:5000"): v3 is appended. */
static int swift_env_v3_url(struct swift_conf *c, const char *url, char *err,
			    size_t errlen)
{
	size_t n;
	int ret;

	ret = swift_set(&c->auth_url, url, "OS_AUTH_URL", err, errlen);
	if (ret || swift_is_v3_url(c->auth_url))
		return ret;
	n = strlen(c->auth_url);
	if (n >= 5 && !strcmp(c->auth_url + n - 5, "/v2.0")) {
		bfs_errf(err, errlen,
			 "swift backend: OS_AUTH_URL names "
			 "keystone v2.0, which is not supported (use /v3)");
		return -EINVAL;
	}
	free(c->auth_url);
	c->auth_url = malloc(n + 4);
	if (!c->auth_url)
		return -ENOMEM;
	memcpy(c->auth_url, url, n);
	memcpy(c->auth_url + n, "/v3", 4);
	return 0;
}

static int swift_env_map(struct swift_conf *c, const struct swift_env_map *m,
			 size_t n, char *err, size_t errlen)
{
	char **field;
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < n; i++) {
		field = swift_field(c, m[i].off);
		ret = swift_env_set(field, m[i].var, err, errlen);
		if (!ret && !*field && m[i].alt)
			ret = swift_env_set(field, m[i].alt, err, errlen);
	}
	return ret;
}

/* OS_AUTH_TYPE picks the method as it does for the openstack CLI; without
 * it an application credential id means that method.  The other method's
 * variables, often left over in a shell, are ignored. */
static int swift_env_v3(struct swift_conf *c, const char *url, char *err,
			size_t errlen)
{
	const char *type = swift_env("OS_AUTH_TYPE", NULL);
	int appcred, ret;

	if (type)
		appcred = !strcmp(type, "v3applicationcredential");
	else
		appcred = !!swift_env("OS_APPLICATION_CREDENTIAL_ID", NULL);
	ret = swift_env_v3_url(c, url, err, errlen);
	if (!ret && appcred)
		ret = swift_env_map(c, swift_env_appcred,
				    ARRAY_LEN(swift_env_appcred), err, errlen);
	else if (!ret)
		ret = swift_env_map(c, swift_env_password,
				    ARRAY_LEN(swift_env_password), err, errlen);
	if (!ret && appcred && !c->appcred_id) {
		bfs_errf(err, errlen,
			 "swift backend: OS_AUTH_TYPE is "
			 "v3applicationcredential but "
			 "OS_APPLICATION_CREDENTIAL_ID is not set");
		ret = -EINVAL;
	}
	return ret ? ret : swift_check_v3(c, err, errlen);
}

static int swift_env_v1(struct swift_conf *c, const char *url, char *err,
			size_t errlen)
{
	int ret;

	ret = swift_set(&c->auth_url, url, "ST_AUTH", err, errlen);
	if (!ret)
		ret = swift_env_set(&c->user, "ST_USER", err, errlen);
	if (!ret)
		ret = swift_env_set(&c->secret, "ST_KEY", err, errlen);
	if (!ret && (!c->user || !c->secret)) {
		bfs_errf(err, errlen,
			 "swift backend: ST_AUTH is set but "
			 "ST_USER or ST_KEY is not");
		ret = -EINVAL;
	}
	c->kind = SWIFT_AUTH_V1;
	return ret;
}

/* ST_AUTH first (the swift CLI's default is v1), then OS_AUTH_URL, then a
 * bare OS_STORAGE_URL + OS_AUTH_TOKEN. */
static int swift_conf_env(struct swift_conf *c, char *err, size_t errlen)
{
	const char *st = swift_env("ST_AUTH", NULL);
	const char *os = swift_env("OS_AUTH_URL", NULL);
	int ret;

	ret = swift_env_set(&c->preset_url, "OS_STORAGE_URL", err, errlen);
	if (!ret)
		ret = swift_env_set(&c->preset_token, "OS_AUTH_TOKEN", err,
				    errlen);
	if (!ret && !c->region)
		ret = swift_env_set(&c->region, "OS_REGION_NAME", err, errlen);
	if (!ret && !c->interface) {
		ret = swift_env_set(&c->interface, "OS_INTERFACE", err, errlen);
		if (!ret && !c->interface)
			ret = swift_env_set(&c->interface, "OS_ENDPOINT_TYPE",
					    err, errlen);
	}
	if (ret)
		return ret;
	if (st)
		return swift_env_v1(c, st, err, errlen);
	if (os)
		return swift_env_v3(c, os, err, errlen);
	if (c->preset_url && c->preset_token) {
		c->kind = SWIFT_AUTH_TOKEN;
		return 0;
	}
	bfs_errf(err, errlen,
		 "swift backend: no \"auth_url\" in the config, "
		 "and neither ST_AUTH nor OS_AUTH_URL (nor OS_STORAGE_URL with "
		 "OS_AUTH_TOKEN) in the environment");
	return -EINVAL;
}

/* ------------------------------------------------------------------ */

/* Swift's rules for a container name, plus ours for header safety. */
static int swift_check_container(const char *name, char *err, size_t errlen)
{
	if (!name) {
		bfs_errf(err, errlen,
			 "swift backend needs a \"container\" "
			 "string");
		return -EINVAL;
	}
	if (strlen(name) > SWIFT_CONTAINER_MAX || strchr(name, '/')) {
		bfs_errf(err, errlen,
			 "swift container name \"%.64s\" is over "
			 "%d bytes or contains '/'",
			 name, SWIFT_CONTAINER_MAX);
		return -EINVAL;
	}
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		bfs_errf(err, errlen,
			 "swift container name \"%s\" is not "
			 "allowed",
			 name);
		return -EINVAL;
	}
	return 0;
}

/* "publicURL" (OS_ENDPOINT_TYPE's spelling) is "public". */
static int swift_check_interface(struct swift_conf *c, char *err, size_t errlen)
{
	size_t n;

	if (!c->interface)
		return swift_set(&c->interface, "public", "interface", err,
				 errlen);
	n = strlen(c->interface);
	if (n > 3 && !strcmp(c->interface + n - 3, "URL"))
		c->interface[n - 3] = 0;
	if (strcmp(c->interface, "public") &&
	    strcmp(c->interface, "internal") && strcmp(c->interface, "admin")) {
		bfs_errf(err, errlen,
			 "swift backend: \"interface\" must be "
			 "public, internal or admin, not \"%.32s\"",
			 c->interface);
		return -EINVAL;
	}
	return 0;
}

static void swift_conf_defaults(struct swift_conf *c)
{
	c->timeout_ms = SWIFT_TIMEOUT_DEF * 1000L;
	c->deadline_ms = SWIFT_DEADLINE_DEF * 1000L;
	c->connections = SWIFT_CONNECTIONS_DEF;
	c->list_limit = SWIFT_LISTING_MAX;
	c->create_container = 1;
}

int swift_conf_parse(json_t *conf, struct swift_conf *c, char *err,
		     size_t errlen)
{
	struct swift_seen seen = {0};
	const char *key;
	json_t *v;
	int ret = 0;

	memset(c, 0, sizeof(*c));
	swift_conf_defaults(c);
	/* json_object_foreach() is a loop: keep its brace where it is */
	/* clang-format off */
	json_object_foreach(conf, key, v) {
		ret = swift_conf_key(c, &seen, key, v, err, errlen);
		if (ret)
			goto out_release;
	}
	/* clang-format on */
	ret = swift_check_container(c->container, err, errlen);
	if (!ret && (seen.flags & SC_AUTH))
		ret = swift_conf_auth(c, &seen, err, errlen);
	else if (!ret)
		ret = swift_conf_env(c, err, errlen);
	/* Trust is not part of the credentials: as for the swift and
	 * openstack CLIs, OS_CACERT applies whenever no CA is given, also to
	 * an auth_url from the config. */
	if (!ret && !c->cacert)
		ret = swift_env_set(&c->cacert, "OS_CACERT", err, errlen);
	if (!ret)
		ret = swift_check_interface(c, err, errlen);
	if (!ret)
		return 0;
out_release:
	swift_conf_release(c);
	return ret;
}
