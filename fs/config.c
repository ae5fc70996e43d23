// SPDX-License-Identifier: Apache-2.0
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bfs_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k':
		shift = 10;
		end++;
		break;
	case 'M': case 'm':
		shift = 20;
		end++;
		break;
	case 'G': case 'g':
		shift = 30;
		end++;
		break;
	}
	if (*end == 'i' || *end == 'B')
		end += (end[0] == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || v > (ULLONG_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static const char *const config_keys[] = {
	"backend",   "key_file",  "state_dir", "cache_size",	  "readahead",
	"log_level", "instances", "webhook",   "executions_keep", NULL,
};

static int config_key_known(const char *key)
{
	for (const char *const *k = config_keys; *k; k++)
		if (!strcmp(*k, key))
			return 1;
	return 0;
}

static int config_fail(char *err, size_t errlen, const char *path,
		       const char *what, const char *key)
{
	snprintf(err, errlen, "config '%s': %s '%s'", path, what, key);
	return -EINVAL;
}

/* A required or optional absolute path string. */
static int config_path(struct bfs_config *c, const char *key, char **out,
		       char *err, size_t errlen)
{
	json_t *v = json_object_get(c->root, key);

	if (!v)
		return config_fail(err, errlen, c->path, "missing required key",
				   key);
	if (!json_is_string(v) || json_string_value(v)[0] != '/')
		return config_fail(err, errlen, c->path,
				   "expected an absolute path string for", key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static int config_cache_size(struct bfs_config *c, char *err, size_t errlen)
{
	json_t *v = json_object_get(c->root, "cache_size");

	c->cache_bytes = BFS_DEFAULT_CACHE_BYTES;
	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		c->cache_bytes = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) &&
	    !bfs_parse_size(json_string_value(v), &c->cache_bytes) &&
	    c->cache_bytes)
		return 0;
	return config_fail(err, errlen, c->path,
			   "expected a size such as \"256M\" for", "cache_size");
}

static int config_readahead(struct bfs_config *c, char *err, size_t errlen)
{
	json_t *v = json_object_get(c->root, "readahead");

	c->readahead = BFS_DEFAULT_READAHEAD;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 64)
		return config_fail(err, errlen, c->path,
				   "expected an integer 0..64 for", "readahead");
	c->readahead = (unsigned)json_integer_value(v);
	return 0;
}

static int config_executions_keep(struct bfs_config *c, char *err,
				  size_t errlen)
{
	json_t *v = json_object_get(c->root, "executions_keep");

	c->executions_keep = BFS_DEFAULT_EXECUTIONS_KEEP;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > BFS_MAX_EXECUTIONS_KEEP)
		return config_fail(err, errlen, c->path,
				   "expected an integer 1..100000 for",
				   "executions_keep");
	c->executions_keep = (unsigned)json_integer_value(v);
	return 0;
}

static int config_log_level(struct bfs_config *c, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum bfs_log_level level;
	} levels[] = {
		{"error", BFS_LOG_ERR},
		{"warning", BFS_LOG_WARN},
		{"info", BFS_LOG_INFO},
		{"debug", BFS_LOG_DEBUG},
	};
	json_t *v = json_object_get(c->root, "log_level");

	c->log_level = BFS_LOG_INFO;
	if (!v)
		return 0;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (json_is_string(v) &&
		    !strcmp(json_string_value(v), levels[i].name)) {
			c->log_level = levels[i].level;
			return 0;
		}
	}
	return config_fail(err, errlen, c->path,
			   "expected error|warning|info|debug for",
			   "log_level");
}

/* An optional absolute path of the webhook object. */
static int config_webhook_path(struct bfs_config *c, json_t *v, const char *key,
			       char **out, char *err, size_t errlen)
{
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_value(v)[0] != '/')
		return config_fail(err, errlen, c->path,
				   "expected an absolute path string for", key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static int config_webhook_uint(struct bfs_config *c, json_t *v, const char *key,
			       json_int_t min, json_int_t max, unsigned *out,
			       char *err, size_t errlen)
{
	char what[64];

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		snprintf(what, sizeof(what),
			 "expected an integer %lld..%lld for", (long long)min,
			 (long long)max);
		return config_fail(err, errlen, c->path, what, key);
	}
	*out = (unsigned)json_integer_value(v);
	return 0;
}

static int config_webhook(struct bfs_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = {"url",    "timeout",	   "retries",
					   "cacert", "token_file", NULL};
	struct bfs_webhook_conf *w = &c->webhook;
	json_t *o = json_object_get(c->root, "webhook"), *v;
	const char *key, *url;
	int ret;

	w->timeout = BFS_WEBHOOK_TIMEOUT;
	w->retries = BFS_WEBHOOK_RETRIES;
	if (!o)
		return 0;
	if (!json_is_object(o))
		return config_fail(err, errlen, c->path,
				   "expected an object for", "webhook");
	json_object_foreach(o, key, v)
	{
		const char *const *k;

		for (k = keys; *k && strcmp(*k, key); k++)
			;
		if (!*k)
			return config_fail(err, errlen, c->path,
					   "unknown key in webhook", key);
	}
	url = json_string_value(json_object_get(o, "url"));
	if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
		return config_fail(err, errlen, c->path,
				   "expected an http:// or https:// URL for",
				   "webhook.url");
	w->url = strdup(url);
	if (!w->url)
		return -ENOMEM;
	ret = config_webhook_uint(c, json_object_get(o, "timeout"),
				  "webhook.timeout", 1, 300, &w->timeout, err,
				  errlen);
	if (!ret)
		ret = config_webhook_uint(c, json_object_get(o, "retries"),
					  "webhook.retries", 0, 20, &w->retries,
					  err, errlen);
	if (!ret)
		ret = config_webhook_path(c, json_object_get(o, "cacert"),
					  "webhook.cacert", &w->cacert, err,
					  errlen);
	if (!ret)
		ret = config_webhook_path(c, json_object_get(o, "token_file"),
					  "webhook.token_file", &w->token_file,
					  err, errlen);
	return ret;
}

static int config_check(struct bfs_config *c, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	int ret;

	if (!json_is_object(c->root)) {
		snprintf(err, errlen, "config '%s': expected a JSON object",
			 c->path);
		return -EINVAL;
	}
	json_object_foreach(c->root, key, v)
		if (!config_key_known(key))
			return config_fail(err, errlen, c->path, "unknown key",
					   key);
	c->backend = json_object_get(c->root, "backend");
	if (!c->backend)
		return config_fail(err, errlen, c->path, "missing required key",
				   "backend");
	if (!json_is_object(c->backend))
		return config_fail(err, errlen, c->path,
				   "expected an object for", "backend");
	ret = config_path(c, "key_file", &c->key_file, err, errlen);
	if (!ret)
		ret = config_path(c, "state_dir", &c->state_dir, err, errlen);
	if (!ret)
		ret = config_cache_size(c, err, errlen);
	if (!ret)
		ret = config_readahead(c, err, errlen);
	if (!ret)
		ret = config_log_level(c, err, errlen);
	if (!ret)
		ret = config_executions_keep(c, err, errlen);
	if (!ret)
		ret = config_webhook(c, err, errlen);
	if (ret)
		return ret;
	c->instances = json_object_get(c->root, "instances");
	if (!c->instances) {
		c->instances = json_object();
		if (!c->instances)
			return -ENOMEM;
		json_object_set_new(c->root, "instances", c->instances);
	}
	if (!json_is_object(c->instances))
		return config_fail(err, errlen, c->path,
				   "expected an object for", "instances");
	json_object_foreach(c->instances, key, v)
		if (!json_is_object(v))
			return config_fail(err, errlen, c->path,
					   "expected an object for instance",
					   key);
	return 0;
}

int bfs_config_load(const char *path, struct bfs_config **out, char *err,
		    size_t errlen)
{
	struct bfs_config *c;
	json_error_t jerr;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->path = strdup(path);
	if (!c->path) {
		ret = -ENOMEM;
		goto out_free;
	}
	c->root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!c->root) {
		if (json_error_code(&jerr) == json_error_cannot_open_file)
			snprintf(err, errlen, "config '%s': %s", path,
				 jerr.text);
		else
			snprintf(err, errlen,
				 "config '%s': line %d, column %d: %s", path,
				 jerr.line, jerr.column, jerr.text);
		ret = -EINVAL;
		goto out_free;
	}
	ret = config_check(c, err, errlen);
	if (ret)
		goto out_free;
	*out = c;
	return 0;

out_free:
	bfs_config_free(c);
	return ret;
}

void bfs_config_free(struct bfs_config *conf)
{
	if (!conf)
		return;
	json_decref(conf->root);
	free(conf->key_file);
	free(conf->state_dir);
	free(conf->webhook.url);
	free(conf->webhook.cacert);
	free(conf->webhook.token_file);
	free(conf->path);
	free(conf);
}
