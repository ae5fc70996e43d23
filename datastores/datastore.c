// SPDX-License-Identifier: Apache-2.0
/*
 * The datastore registry and the bfs_datastore_*() wrappers.
 *
 * Checks every driver would otherwise repeat live here, once: arguments
 * are present, the instance config only has keys the driver knows, a
 * strategy is a JSON object the driver accepted, an error always comes
 * with a reason.  Drivers may therefore rely on non-NULL arguments, a
 * non-NULL progress and a strategy object in every op but check_strategy's
 * own validation.
 */
#include "datastore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct bfs_datastore_ops *const ds_drivers[] = {
	&bfs_files_ops,
	&bfs_postgresql_ops,
	&bfs_couchdb_ops,
	&bfs_mariadb_ops,
	&bfs_db2_ops,
};

const struct bfs_datastore_ops *bfs_datastore_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(ds_drivers) / sizeof(ds_drivers[0]); i++)
		if (!strcmp(ds_drivers[i]->name, name))
			return ds_drivers[i];
	return NULL;
}

/*
 * Instance names end up in file names (temporary snapshots, state
 * directories): same rules as every name from a user (DESIGN.md 6).
 */
static int ds_check_instance(const char *instance)
{
	const unsigned char *p;

	if (!instance || !*instance || !strcmp(instance, ".") ||
	    !strcmp(instance, "..") || strlen(instance) > 128)
		return -EINVAL;
	for (p = (const unsigned char *)instance; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return 0;
}

static int ds_key_known(const struct bfs_datastore_ops *ops, const char *key)
{
	const char *const *k;

	if (!strcmp(key, "datastore"))
		return 1;
	for (k = ops->config_keys; k && *k; k++)
		if (!strcmp(*k, key))
			return 1;
	return 0;
}

static int ds_check_keys(const struct bfs_datastore_ops *ops,
			 const char *instance, json_t *conf, char *err,
			 size_t errlen)
{
	const char *key;
	json_t *val;

	json_object_foreach(conf, key, val)
	{
		(void)val;
		if (!ds_key_known(ops, key)) {
			snprintf(err, errlen,
				 "unknown key '%s' in instance '%s'", key,
				 instance);
			return -EINVAL;
		}
	}
	return 0;
}

/* Make sure a failing op leaves a reason, however terse. */
static int ds_reason(int rc, char *err, size_t errlen)
{
	if (rc < 0 && errlen && !err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
	return rc;
}

#define DS_ERRBUF(err, errlen)                                                 \
	do {                                                                   \
		if (!(err))                                                    \
			(errlen) = 0;                                          \
		else if (errlen)                                               \
			(err)[0] = '\0';                                       \
	} while (0)

int bfs_datastore_open(const char *instance, json_t *conf,
		       const char *state_dir, struct bfs_datastore **out,
		       char *err, size_t errlen)
{
	const struct bfs_datastore_ops *ops;
	struct bfs_datastore *ds;
	const char *name;
	int rc;

	DS_ERRBUF(err, errlen);
	if (!out || !state_dir || !*state_dir)
		return -EINVAL;
	*out = NULL;
	if (ds_check_instance(instance)) {
		snprintf(err, errlen, "invalid instance name '%s'",
			 instance ? instance : "");
		return -EINVAL;
	}
	if (!json_is_object(conf)) {
		snprintf(err, errlen, "instance '%s' is not a JSON object",
			 instance);
		return -EINVAL;
	}
	name = json_string_value(json_object_get(conf, "datastore"));
	if (!name) {
		snprintf(err, errlen, "instance '%s' has no \"datastore\"",
			 instance);
		return -EINVAL;
	}
	ops = bfs_datastore_find(name);
	if (!ops) {
		snprintf(err, errlen, "unknown datastore '%s' in instance '%s'",
			 name, instance);
		return -EINVAL;
	}
	rc = ds_check_keys(ops, instance, conf, err, errlen);
	if (rc)
		return rc;
	rc = ops->open(instance, conf, state_dir, &ds, err, errlen);
	if (rc)
		return ds_reason(rc, err, errlen);
	ds->ops = ops;
	ds->instance = strdup(instance);
	if (!ds->instance) {
		ops->close(ds);
		return ds_reason(-ENOMEM, err, errlen);
	}
	*out = ds;
	return 0;
}

void bfs_datastore_close(struct bfs_datastore *ds)
{
	char *instance;

	if (!ds)
		return;
	/* The driver frees its struct, which holds the base. */
	instance = ds->instance;
	ds->ops->close(ds);
	free(instance);
}

/*
 * Run the driver's check on strategy, or on an empty object when the
 * caller has none, and hand back the object to use (a new reference).
 */
static int ds_strategy(struct bfs_datastore *ds, json_t *strategy, json_t **out,
		       char *err, size_t errlen)
{
	int rc;

	*out = NULL;
	if (!strategy)
		strategy = json_object();
	else if (json_is_object(strategy))
		json_incref(strategy);
	else {
		snprintf(err, errlen, "strategy is not a JSON object");
		return -EINVAL;
	}
	if (!strategy)
		return -ENOMEM;
	rc = ds->ops->check_strategy(ds, strategy, err, errlen);
	if (rc) {
		json_decref(strategy);
		return ds_reason(rc, err, errlen);
	}
	*out = strategy;
	return 0;
}

int bfs_datastore_check_strategy(struct bfs_datastore *ds, json_t *strategy,
				 char *err, size_t errlen)
{
	json_t *s;
	int rc;

	DS_ERRBUF(err, errlen);
	if (!ds)
		return -EINVAL;
	rc = ds_strategy(ds, strategy, &s, err, errlen);
	json_decref(s);
	return rc;
}

int bfs_datastore_estimate(struct bfs_datastore *ds, json_t *strategy,
			   uint64_t *bytes)
{
	json_t *s;
	int rc;

	if (!ds || !bytes)
		return -EINVAL;
	*bytes = 0;
	rc = ds_strategy(ds, strategy, &s, NULL, 0);
	if (rc)
		return rc;
	rc = ds->ops->estimate(ds, s, bytes);
	json_decref(s);
	return rc;
}

int bfs_datastore_backup(struct bfs_datastore *ds, json_t *strategy,
			 bfs_sink_fn sink, void *sink_arg,
			 struct bfs_progress *progress, json_t *meta, char *err,
			 size_t errlen)
{
	struct bfs_progress local = {0};
	json_t *s;
	int rc;

	DS_ERRBUF(err, errlen);
	if (!ds || !sink || !json_is_object(meta))
		return -EINVAL;
	rc = ds_strategy(ds, strategy, &s, err, errlen);
	if (rc)
		return rc;
	rc = ds->ops->backup(ds, s, sink, sink_arg,
			     progress ? progress : &local, meta, err, errlen);
	json_decref(s);
	return ds_reason(rc, err, errlen);
}

int bfs_datastore_verify(struct bfs_datastore *ds, const char *path,
			 struct bfs_progress *progress, char *err,
			 size_t errlen)
{
	struct bfs_progress local = {0};

	DS_ERRBUF(err, errlen);
	if (!ds || !path || !*path)
		return -EINVAL;
	return ds_reason(ds->ops->verify(ds, path, progress ? progress : &local,
					 err, errlen),
			 err, errlen);
}

int bfs_datastore_restore(struct bfs_datastore *ds, const char *path,
			  struct bfs_progress *progress, char *err,
			  size_t errlen)
{
	struct bfs_progress local = {0};

	DS_ERRBUF(err, errlen);
	if (!ds || !path || !*path)
		return -EINVAL;
	return ds_reason(ds->ops->restore(ds, path,
					  progress ? progress : &local, err,
					  errlen),
			 err, errlen);
}

int bfs_datastore_recover(struct bfs_datastore *ds)
{
	if (!ds)
		return -EINVAL;
	return ds->ops->recover(ds);
}

int bfs_datastore_tables(struct bfs_datastore *ds, json_t **out, char *err,
			 size_t errlen)
{
	DS_ERRBUF(err, errlen);
	if (!ds || !out)
		return -EINVAL;
	*out = NULL;
	if (!ds->ops->tables) {
		snprintf(err, errlen, "datastore '%s' has no tables",
			 ds->ops->name);
		return -EOPNOTSUPP;
	}
	return ds_reason(ds->ops->tables(ds, out, err, errlen), err, errlen);
}
