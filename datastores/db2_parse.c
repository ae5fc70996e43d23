// SPDX-License-Identifier: Apache-2.0
/*
 * What the Db2 tools print, parsed: pure functions over their output,
 * so that the driver's decisions (archive logging on? enough space? the
 * image verified?) are unit-tested without a Db2.
 */
#include "db2_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DB2_DIR_MAX 200

/* ---- names ----------------------------------------------------------- */

static int db2_alias_char(int c)
{
	return isascii(c) && (isalnum(c) || c == '@' || c == '#' || c == '$');
}

int db2_check_dbname(const char *name)
{
	size_t n = name ? strlen(name) : 0, i;

	if (!n || n > DB2_DBNAME_MAX || isdigit((unsigned char)name[0]))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!db2_alias_char((unsigned char)name[i]))
			return -EINVAL;
	return 0;
}

void db2_upper(char *s)
{
	for (; *s; s++)
		*s = (char)toupper((unsigned char)*s);
}

int db2_check_user(const char *user)
{
	size_t n = user ? strlen(user) : 0, i;

	if (!n || n > 32 || user[0] == '-' || isdigit((unsigned char)user[0]))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)user[i];

		if (!isascii(c) ||
		    !(isalnum(c) || c == '_' || c == '-' || c == '.'))
			return -EINVAL;
	}
	return 0;
}

int db2_check_dir(const char *path)
{
	const char *p;
	size_t n;

	if (!path || path[0] != '/' || strlen(path) > DB2_DIR_MAX ||
	    !strcmp(path, "/"))
		return -EINVAL;
	for (p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (!isascii(c) || !(isalnum(c) || strchr("/._-+@", c)))
			return -EINVAL;
	}
	for (p = path; *p;) {
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		p += n;
	}
	return 0;
}

/* n decimal digits at s, then the end or '.' */
static int db2_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return s[n] == '.' || s[n] == '\0';
}

/* The next '.'-separated field of *p, its length; *p moves past it. */
static size_t db2_field(const char **p, const char **start)
{
	size_t n = strcspn(*p, ".");

	*start = *p;
	*p += n;
	if (**p == '.')
		(*p)++;
	return n;
}

int db2_image_parse(const char *name, char alias[DB2_DBNAME_MAX + 1],
		    char ts[DB2_TS_LEN + 1])
{
	const char *p = name, *f, *a, *t;
	char al[DB2_DBNAME_MAX + 1];
	size_t n, an, i;

	if (!name || strlen(name) > DB2_IMAGE_MAX)
		return -EINVAL;
	an = db2_field(&p, &a);
	if (!an || an > DB2_DBNAME_MAX)
		return -EINVAL;
	memcpy(al, a, an);
	al[an] = '\0';
	if (db2_check_dbname(al))
		return -EINVAL;
	/* backup type: 0 (database) */
	n = db2_field(&p, &f);
	if (n != 1 || f[0] != '0')
		return -EINVAL;
	/* instance */
	n = db2_field(&p, &f);
	if (!n || n > 32)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!isascii((unsigned char)f[i]) ||
		    !(isalnum((unsigned char)f[i]) || f[i] == '_' ||
		      f[i] == '-'))
			return -EINVAL;
	/* DBPARTnnn, or NODEnnnn.CATNnnnn */
	n = db2_field(&p, &f);
	if (n == 9 && !strncmp(f, "DBPART", 6) && db2_digits(f + 6, 3)) {
		/* Db2 9.7 and later */
	} else if (n == 8 && !strncmp(f, "NODE", 4) && db2_digits(f + 4, 4)) {
		n = db2_field(&p, &f);
		if (n != 8 || strncmp(f, "CATN", 4) || !db2_digits(f + 4, 4))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	n = db2_field(&p, &t);
	if (n != DB2_TS_LEN || !db2_digits(t, DB2_TS_LEN))
		return -EINVAL;
	/* sequence: the last field */
	n = db2_field(&p, &f);
	if (n != 3 || !db2_digits(f, 3) || *p || f[n] != '\0')
		return -EINVAL;
	if (alias)
		memcpy(alias, al, an + 1);
	if (ts) {
		memcpy(ts, t, DB2_TS_LEN);
		ts[DB2_TS_LEN] = '\0';
	}
	return 0;
}

int db2_image_of(const char *name, const char *db, const char *ts)
{
	char alias[DB2_DBNAME_MAX + 1], t[DB2_TS_LEN + 1];

	if (db2_image_parse(name, alias, t))
		return 0;
	return !strcasecmp(alias, db) && !strcmp(t, ts);
}

/* ---- tool output ----------------------------------------------------- */

/* The next line of *p into line[cap] (cut), or 0 at the end. */
static int db2_line(const char **p, char *line, size_t cap)
{
	size_t n;

	if (!**p)
		return 0;
	n = strcspn(*p, "\n");
	snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), *p);
	*p += n;
	if (**p == '\n')
		(*p)++;
	n = strlen(line);
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' ||
		     line[n - 1] == '\t'))
		line[--n] = '\0';
	return 1;
}

static const char *db2_skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* The value after " = " of a configuration line, trimmed. */
static const char *db2_cfg_value(const char *line)
{
	const char *eq = strrchr(line, '=');

	return eq ? db2_skip_space(eq + 1) : NULL;
}

static int db2_yes(const char *v)
{
	return v && !strncasecmp(v, "YES", 3);
}

int db2_parse_cfg(const char *out, struct db2_cfg *cfg)
{
	const char *p = out, *v, *s;
	char line[512];
	int found = 0;

	memset(cfg, 0, sizeof(*cfg));
	while (db2_line(&p, line, sizeof(line))) {
		s = db2_skip_space(line);
		v = db2_cfg_value(line);
		if (!v)
			continue;
		if (strstr(line, "(LOGARCHMETH1)")) {
			snprintf(cfg->logarchmeth1, sizeof(cfg->logarchmeth1),
				 "%s", v);
			found = 1;
		} else if (strstr(line, "(LOGARCHMETH2)")) {
			snprintf(cfg->logarchmeth2, sizeof(cfg->logarchmeth2),
				 "%s", v);
		} else if (!strncmp(s, "Backup pending", 14)) {
			cfg->backup_pending = db2_yes(v);
		} else if (!strncmp(s, "Rollforward pending", 19)) {
			/* "DATABASE", "TABLESPACE" or "NO" */
			cfg->rollfwd_pending = strncasecmp(v, "NO", 2) != 0;
		} else if (!strncmp(s, "Restore pending", 15)) {
			cfg->restore_pending = db2_yes(v);
		}
	}
	return found ? 0 : -EBADMSG;
}

static int db2_method_on(const char *v)
{
	return v[0] && strcasecmp(v, "OFF") != 0;
}

int db2_cfg_recoverable(const struct db2_cfg *cfg)
{
	return db2_method_on(cfg->logarchmeth1) ||
	       db2_method_on(cfg->logarchmeth2);
}

/* A whole unsigned decimal number at s (then only spaces). */
static int db2_number(const char *s, uint64_t *n)
{
	char *end;
	unsigned long long v;

	s = db2_skip_space(s);
	if (!isdigit((unsigned char)*s))
		return -EBADMSG;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *db2_skip_space(end))
		return -EBADMSG;
	*n = v;
	return 0;
}

int db2_parse_dbsize(const char *out, uint64_t *bytes)
{
	const char *p = out, *s;
	char line[512];
	int in = 0;

	while (db2_line(&p, line, sizeof(line))) {
		s = db2_skip_space(line);
		if (!strncmp(s, "Parameter Name", 14)) {
			in = strstr(s, "DATABASESIZE") != NULL;
		} else if (in && !strncmp(s, "Parameter Value", 15)) {
			s = strchr(s, ':');
			return s ? db2_number(s + 1, bytes) : -EBADMSG;
		}
	}
	return -EBADMSG;
}

int db2_parse_value(const char *out, uint64_t *value)
{
	const char *p = out, *s;
	char line[512];
	int dashes = 0;

	while (db2_line(&p, line, sizeof(line))) {
		s = db2_skip_space(line);
		if (!dashes) {
			dashes = s[0] == '-' && s[strspn(s, "-")] == '\0';
			continue;
		}
		if (!strcmp(s, "-")) { /* NULL */
			*value = 0;
			return 0;
		}
		return db2_number(s, value);
	}
	return -EBADMSG;
}

int db2_parse_backup_ts(const char *out, char ts[DB2_TS_LEN + 1])
{
	static const char key[] = "timestamp for this backup image is";
	const char *s = strstr(out, key);

	if (!s)
		return -EBADMSG;
	s = db2_skip_space(s + sizeof(key) - 1);
	if (*s != ':')
		return -EBADMSG;
	s = db2_skip_space(s + 1);
	if (strspn(s, "0123456789") != DB2_TS_LEN)
		return -EBADMSG;
	memcpy(ts, s, DB2_TS_LEN);
	ts[DB2_TS_LEN] = '\0';
	return 0;
}

int db2_parse_level(const char *out, char *version, size_t cap)
{
	const char *s = strstr(out, "\"DB2 v");
	size_t n;

	if (!s)
		return -EBADMSG;
	s += 6;
	n = strspn(s, "0123456789.");
	if (!n || s[n] != '"' || n >= cap)
		return -EBADMSG;
	memcpy(version, s, n);
	version[n] = '\0';
	return 0;
}

int db2_parse_ckbkp(const char *out)
{
	return strstr(out, "Image Verification Complete - successful.")
		       ? 0
		       : -EBADMSG;
}

int db2_parse_df(const char *out, uint64_t *bytes)
{
	const char *p = out;
	char line[1024];
	unsigned long long total, used, avail;
	int n = 0;

	while (db2_line(&p, line, sizeof(line))) {
		/* Filesystem 1024-blocks Used Available Capacity Mounted on:
		 * the first field may hold spaces, the numbers follow it */
		const char *s = line;

		if (n++ == 0)
			continue;
		while (*s) {
			s += strcspn(s, " ");
			s = db2_skip_space(s);
			if (sscanf(s, "%llu %llu %llu", &total, &used,
				   &avail) == 3) {
				if (avail > UINT64_MAX / 1024)
					return -EBADMSG;
				*bytes = (uint64_t)avail * 1024;
				return 0;
			}
		}
	}
	return -EBADMSG;
}

int db2_sql_message(const char *out, char *line, size_t cap, int *code,
		    char *severity)
{
	const char *p = out, *s;
	char buf[1024];
	size_t d;

	while (db2_line(&p, buf, sizeof(buf))) {
		s = db2_skip_space(buf);
		if (strncmp(s, "SQL", 3))
			continue;
		d = strspn(s + 3, "0123456789");
		if (d < 4 || d > 5 || !strchr("NCW", s[3 + d]) ||
		    (s[4 + d] && s[4 + d] != ' '))
			continue;
		snprintf(line, cap, "%s", s);
		*code = atoi(s + 3);
		*severity = s[3 + d];
		return 1;
	}
	return 0;
}

static const struct {
	int code;
	int err;
} db2_sql_errs[] = {
	{1013, ENOENT},	      /* database alias not found */
	{1035, EBUSY},	      /* the database is in use */
	{1032, ECONNREFUSED}, /* no START DATABASE MANAGER issued */
	{1092, EACCES},	      /* not authorized */
	{1390, EINVAL},	      /* DB2INSTANCE not defined */
	{968, ENOSPC},	      /* file system full */
	{2419, ENOSPC},	      /* the target disk is full */
	{2036, ENOENT},	      /* path for the file or device not valid */
	{2542, ENOENT},	      /* no backup image matches */
	{2413, EINVAL},	      /* online backup of a non-recoverable db */
	{1117, EIO},	      /* rollforward pending */
};

int db2_sql_errno(int code)
{
	size_t i;

	for (i = 0; i < sizeof(db2_sql_errs) / sizeof(db2_sql_errs[0]); i++)
		if (db2_sql_errs[i].code == code)
			return db2_sql_errs[i].err;
	return EIO;
}

/* ---- the manifest ---------------------------------------------------- */

static int db2_manifest_db(json_t *db, size_t i, json_t *seen, char *err,
			   size_t errlen)
{
	const char *name = json_string_value(json_object_get(db, "name"));
	const char *ts = json_string_value(json_object_get(db, "timestamp"));
	json_t *images = json_object_get(db, "images"), *im;
	size_t k;

	if (!name || db2_check_dbname(name) || !ts ||
	    strlen(ts) != DB2_TS_LEN || !db2_digits(ts, DB2_TS_LEN) ||
	    !json_is_boolean(json_object_get(db, "online")) ||
	    !json_is_array(images) || !json_array_size(images) ||
	    json_array_size(images) > 999) {
		snprintf(err, errlen, "database %zu of the manifest is invalid",
			 i);
		return -EINVAL;
	}
	if (json_object_get(seen, name)) {
		snprintf(err, errlen, "database '%s' is in the manifest twice",
			 name);
		return -EINVAL;
	}
	json_object_set_new(seen, name, json_true());
	json_array_foreach(images, k, im)
	{
		const char *f = json_string_value(im);

		if (!f || !db2_image_of(f, name, ts)) {
			snprintf(err, errlen,
				 "image %zu of database '%s' is not an image "
				 "of it taken at %s",
				 k, name, ts);
			return -EINVAL;
		}
		if (json_object_get(seen, f)) {
			snprintf(err, errlen, "image '%s' is listed twice", f);
			return -EINVAL;
		}
		json_object_set_new(seen, f, json_true());
	}
	return 0;
}

int db2_manifest_check(json_t *m, char *err, size_t errlen)
{
	json_t *dbs = json_object_get(m, "databases"), *db, *seen;
	const char *format = json_string_value(json_object_get(m, "format"));
	size_t i;
	int rc = 0;

	if (!json_is_object(m) || !format || strcmp(format, DB2_FORMAT)) {
		snprintf(err, errlen, "the manifest is not of format \"%s\"",
			 DB2_FORMAT);
		return -EINVAL;
	}
	if (json_integer_value(json_object_get(m, "version")) != 1) {
		snprintf(err, errlen,
			 "the manifest has version %lld; this backupfs reads "
			 "version 1",
			 (long long)json_integer_value(
				 json_object_get(m, "version")));
		return -EINVAL;
	}
	if (!json_is_array(dbs) || !json_array_size(dbs) ||
	    json_array_size(dbs) > DB2_DBS_MAX) {
		snprintf(err, errlen,
			 "the manifest lists no databases (or over %d)",
			 DB2_DBS_MAX);
		return -EINVAL;
	}
	seen = json_object();
	if (!seen)
		return -ENOMEM;
	json_array_foreach(dbs, i, db)
	{
		rc = db2_manifest_db(db, i, seen, err, errlen);
		if (rc)
			break;
	}
	json_decref(seen);
	return rc;
}
