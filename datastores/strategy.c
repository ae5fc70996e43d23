// SPDX-License-Identifier: Apache-2.0
/*
 * The strategy of a snapshot, after MagnetoDB's backup spec:
 *
 *   {"format": "native" | "agnostic", "tables": ["t1", ...],
 *    "mode": "online" | "offline", "type": "full" | "incremental"}
 *
 * Every key is optional (native, whole instance, online, full).  Which
 * combinations a datastore can take is the driver's to say; here the
 * shape and the names are checked once for all of them.
 */
#include "ds_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DS_TABLES_MAX	  1024
#define DS_TABLE_NAME_MAX 255

static const char *const ds_formats[] = {"native", "agnostic"};
static const char *const ds_modes[] = {"online", "offline"};
static const char *const ds_types[] = {"full", "incremental"};

const char *ds_format_name(enum ds_format f)
{
	return ds_formats[f];
}

const char *ds_mode_name(enum ds_mode m)
{
	return ds_modes[m];
}

const char *ds_type_name(enum ds_type t)
{
	return ds_types[t];
}

static int ds_in(const char *const *list, const char *key)
{
	for (; list && *list; list++)
		if (!strcmp(*list, key))
			return 1;
	return 0;
}

/* The index of the string val in names[2], or -1. */
static int ds_pick(json_t *val, const char *const names[2])
{
	const char *s = json_string_value(val);

	if (s && !strcmp(s, names[0]))
		return 0;
	if (s && !strcmp(s, names[1]))
		return 1;
	return -1;
}

/*
 * Table names reach the tools' command lines (never a shell, but a
 * leading '-' would be an option) and the manifest: printable, no '/',
 * no leading '-', bounded.
 */
static int ds_check_table(const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t i;

	if (!len || len > DS_TABLE_NAME_MAX || strlen(name) != len ||
	    name[0] == '-')
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/')
			return -EINVAL;
	return 0;
}

static int ds_parse_tables(json_t *val, struct ds_strategy *out, char *err,
			   size_t errlen)
{
	json_t *t;
	size_t i;

	if (!json_is_array(val) || !json_array_size(val) ||
	    json_array_size(val) > DS_TABLES_MAX) {
		snprintf(err, errlen,
			 "strategy \"tables\" must be a non-empty array of "
			 "names (at most %d)",
			 DS_TABLES_MAX);
		return -EINVAL;
	}
	json_array_foreach(val, i, t)
	{
		if (!json_is_string(t) ||
		    ds_check_table(json_string_value(t),
				   json_string_length(t))) {
			snprintf(err, errlen,
				 "strategy \"tables\" entry %zu is not a valid "
				 "name",
				 i);
			return -EINVAL;
		}
	}
	out->tables = val;
	return 0;
}

static int ds_parse_choice(const char *key, json_t *val,
			   const char *const names[2], int *out, char *err,
			   size_t errlen)
{
	int i = ds_pick(val, names);

	if (i < 0) {
		snprintf(err, errlen,
			 "strategy \"%s\" must be \"%s\" or \"%s\"", key,
			 names[0], names[1]);
		return -EINVAL;
	}
	*out = i;
	return 0;
}

/* "unknown strategy key 'k' for datastore 'd' (format, tables, ...)" */
static void ds_unknown_key(const char *key, const char *datastore,
			   const char *const *extra_keys, char *err,
			   size_t errlen)
{
	size_t n;

	n = (size_t)snprintf(err, errlen,
			     "unknown strategy key '%s' for datastore '%s' "
			     "(format, tables, mode, type",
			     key, datastore);
	for (; extra_keys && *extra_keys && n < errlen; extra_keys++)
		n += (size_t)snprintf(err + n, errlen - n, ", %s", *extra_keys);
	if (n < errlen)
		snprintf(err + n, errlen - n, ")");
}

int ds_strategy_parse(json_t *strategy, const char *datastore,
		      const char *const *extra_keys, struct ds_strategy *out,
		      char *err, size_t errlen)
{
	const char *key;
	json_t *val;
	int v, rc = 0;

	memset(out, 0, sizeof(*out));
	json_object_foreach(strategy, key, val)
	{
		v = 0;
		if (!strcmp(key, "format")) {
			rc = ds_parse_choice(key, val, ds_formats, &v, err,
					     errlen);
			out->format = (enum ds_format)v;
		} else if (!strcmp(key, "mode")) {
			rc = ds_parse_choice(key, val, ds_modes, &v, err,
					     errlen);
			out->mode = (enum ds_mode)v;
		} else if (!strcmp(key, "type")) {
			rc = ds_parse_choice(key, val, ds_types, &v, err,
					     errlen);
			out->type = (enum ds_type)v;
		} else if (!strcmp(key, "tables")) {
			rc = ds_parse_tables(val, out, err, errlen);
		} else if (!ds_in(extra_keys, key)) {
			ds_unknown_key(key, datastore, extra_keys, err, errlen);
			rc = -EINVAL;
		}
		if (rc)
			return rc;
	}
	return 0;
}

int ds_strategy_meta(const struct ds_strategy *s, json_t *meta)
{
	if (json_object_set_new(meta, "format",
				json_string(ds_format_name(s->format))) ||
	    json_object_set_new(meta, "mode",
				json_string(ds_mode_name(s->mode))) ||
	    json_object_set_new(meta, "type",
				json_string(ds_type_name(s->type))) ||
	    (s->tables &&
	     json_object_set_new(meta, "tables", json_deep_copy(s->tables))))
		return -ENOMEM;
	return 0;
}
