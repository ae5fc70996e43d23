// SPDX-License-Identifier: Apache-2.0
/*
 * The database service: stop, start, and a health check that passes once
 * the database answers queries.  Each driver has defaults (its own
 * tools, run as the database's OS user); an instance overrides any of
 * them with "service": {"start": [...], "stop": [...], "health": [...],
 * "health_timeout": seconds} -- systemctl, pg_ctlcluster, a container
 * runtime -- run as given, through the exec prefix like everything else.
 */
#include "ds_int.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SVC_HEALTH_TIMEOUT 120 /* seconds, by default */
#define SVC_HEALTH_MAX	   3600
#define SVC_CMD_TIMEOUT	   600 /* start and stop */
#define SVC_PROBE_TIMEOUT  30  /* one health probe */

static const char *const svc_keys[] = {"start", "stop", "health",
				       "health_timeout", NULL};

static int svc_copy(const char *const *def, char ***out)
{
	size_t n = 0, i;

	while (def && def[n])
		n++;
	*out = calloc(n + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		(*out)[i] = strdup(def[i]);
		if (!(*out)[i])
			return -ENOMEM;
	}
	return 0;
}

static int svc_check_keys(json_t *s, char *err, size_t errlen)
{
	const char *key;
	const char *const *k;
	json_t *v;

	if (!json_is_object(s)) {
		snprintf(err, errlen, "\"service\" must be an object");
		return -EINVAL;
	}
	json_object_foreach(s, key, v)
	{
		for (k = svc_keys; *k && strcmp(*k, key); k++)
			;
		if (!*k) {
			snprintf(err, errlen,
				 "unknown key '%s' in \"service\" (start, "
				 "stop, health, health_timeout)",
				 key);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * One command: the override from s[key] if there is one (run as given),
 * else the default (run as user).
 */
static int svc_one(json_t *s, const char *key, const char *const *def,
		   const char *user, struct ds_svc_cmd *out, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(s, key);
	int rc;

	if (!v) {
		out->user = user;
		return svc_copy(def, &out->argv);
	}
	out->user = NULL;
	rc = ds_argv_from_json(v, &out->argv);
	if (!rc && !out->argv[0])
		rc = -EINVAL;
	if (rc == -EINVAL)
		snprintf(err, errlen,
			 "\"service\".\"%s\" must be a non-empty array of "
			 "strings",
			 key);
	return rc;
}

int ds_service_parse(json_t *conf, const char *const *def_start,
		     const char *const *def_stop, const char *const *def_health,
		     const char *user, struct ds_service *svc, char *err,
		     size_t errlen)
{
	json_t *s = json_object_get(conf, "service");
	json_t *t;
	int rc;

	memset(svc, 0, sizeof(*svc));
	svc->health_timeout = SVC_HEALTH_TIMEOUT;
	if (s) {
		rc = svc_check_keys(s, err, errlen);
		if (rc)
			return rc;
		t = json_object_get(s, "health_timeout");
		if (t && (!json_is_integer(t) || json_integer_value(t) < 1 ||
			  json_integer_value(t) > SVC_HEALTH_MAX)) {
			snprintf(err, errlen,
				 "\"service\".\"health_timeout\" must be "
				 "seconds, 1 to %d",
				 SVC_HEALTH_MAX);
			return -EINVAL;
		}
		if (t)
			svc->health_timeout = (int)json_integer_value(t);
	}
	rc = svc_one(s, "start", def_start, user, &svc->start, err, errlen);
	if (!rc)
		rc = svc_one(s, "stop", def_stop, user, &svc->stop, err,
			     errlen);
	if (!rc)
		rc = svc_one(s, "health", def_health, user, &svc->health, err,
			     errlen);
	if (rc)
		ds_service_release(svc);
	return rc;
}

void ds_service_release(struct ds_service *svc)
{
	ds_argv_free(svc->start.argv);
	ds_argv_free(svc->stop.argv);
	ds_argv_free(svc->health.argv);
	memset(svc, 0, sizeof(*svc));
}

static int svc_run(const struct ds_exec *x, const struct ds_svc_cmd *c,
		   int timeout, int quiet, char *err, size_t errlen)
{
	struct ds_cmd cmd = {
		.argv = (const char *const *)c->argv,
		.user = c->user,
		.in_fd = -1,
		.timeout = timeout,
		.quiet = quiet,
	};

	return ds_run(x, &cmd, err, errlen);
}

int ds_service_stop(const struct ds_exec *x, const struct ds_service *svc,
		    char *err, size_t errlen)
{
	return svc_run(x, &svc->stop, SVC_CMD_TIMEOUT, 0, err, errlen);
}

int ds_service_start(const struct ds_exec *x, const struct ds_service *svc,
		     char *err, size_t errlen)
{
	return svc_run(x, &svc->start, SVC_CMD_TIMEOUT, 0, err, errlen);
}

int ds_service_health(const struct ds_exec *x, const struct ds_service *svc,
		      char *err, size_t errlen)
{
	time_t end = time(NULL) + svc->health_timeout;
	unsigned int wait_ms = 100;
	int rc;

	for (;;) {
		rc = svc_run(x, &svc->health, SVC_PROBE_TIMEOUT, 1, err,
			     errlen);
		if (!rc || time(NULL) >= end)
			break;
		usleep(wait_ms * 1000);
		if (wait_ms < 2000)
			wait_ms *= 2;
	}
	if (rc) {
		size_t n = strlen(err);

		bfs_err("health check failed for %d s: %s", svc->health_timeout,
			err);
		if (n < errlen)
			snprintf(err + n, errlen - n,
				 " (health check, for %d s)",
				 svc->health_timeout);
	}
	return rc;
}
