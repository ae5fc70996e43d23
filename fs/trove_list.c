// SPDX-License-Identifier: Apache-2.0
/*
 * The inputs of `backupctl import-trove` (trove_import.h): Trove's backup
 * lists in their three shapes, Trove's times, and the file holding
 * Trove's backup_aes_cbc_key.
 *
 * The three shapes name the same fields differently ("Instance ID" in
 * the openstack CLI's table, "instance_id" in the API), so fields are
 * looked up by a normalized name: lower case, without ' ', '_' or '-'.
 */
#include "crypto.h"
#include "trove_import.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Fields */

/* "Instance ID", "instance_id" and "instance-id" are "instanceid". */
static int tl_key_is(const char *key, const char *norm)
{
	for (; *key; key++) {
		if (*key == ' ' || *key == '_' || *key == '-')
			continue;
		if (tolower((unsigned char)*key) != *norm)
			return 0;
		norm++;
	}
	return !*norm;
}

/* Borrowed; NULL when absent. */
static json_t *tl_field(json_t *obj, const char *norm)
{
	const char *key;
	json_t *v;

	/* json_object_foreach() is a loop: keep its brace where it is */
	/* clang-format off */
	json_object_foreach(obj, key, v) {
		if (tl_key_is(key, norm))
			return v;
	}
	/* clang-format on */
	return NULL;
}

static int tl_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * A string field into *out (new; NULL when absent, null or ""). Anything
 * else is noted in e->bad: such text would reach the terminal.
 */
static int tl_str(struct bfs_trove_entry *e, json_t *v, const char *what,
		  char **out)
{
	const char *s = json_string_value(v);

	*out = NULL;
	if (!v || json_is_null(v) || (s && !*s))
		return 0;
	if (!s || !tl_printable(s)) {
		if (!e->bad[0])
			snprintf(e->bad, sizeof(e->bad),
				 "\"%s\" is not a string of printable "
				 "characters",
				 what);
		return 0;
	}
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

struct tl_str_field {
	const char *norm, *what;
	size_t off;
};

#define TL_OFF(f) offsetof(struct bfs_trove_entry, f)

static const struct tl_str_field tl_fields[] = {
	{"id", "id", TL_OFF(id)},
	{"name", "name", TL_OFF(name)},
	{"instanceid", "instance_id", TL_OFF(instance_id)},
	{"status", "status", TL_OFF(status)},
	{"parentid", "parent_id", TL_OFF(parent_id)},
	{"locationref", "locationRef", TL_OFF(location)},
	{"checksum", "checksum", TL_OFF(checksum)},
	{"datastoreversion", "datastore_version", TL_OFF(datastore_version)},
};

#define TL_NFIELDS (sizeof(tl_fields) / sizeof(tl_fields[0]))

static char **tl_slot(struct bfs_trove_entry *e, size_t off)
{
	return (char **)((char *)e + off);
}

/* The API's {"type", "version"} object, or the CLI's plain string. */
static int tl_datastore(struct bfs_trove_entry *e, json_t *o)
{
	json_t *ds = tl_field(o, "datastore");
	int ret;

	if (!json_is_object(ds))
		return tl_str(e, ds, "datastore", &e->datastore);
	ret = tl_str(e, tl_field(ds, "type"), "datastore.type", &e->datastore);
	if (!ret && !e->datastore_version)
		ret = tl_str(e, tl_field(ds, "version"), "datastore.version",
			     &e->datastore_version);
	return ret;
}

/* created, else updated (the CLI's list has only "Updated"). */
static void tl_time(struct bfs_trove_entry *e, json_t *o)
{
	const char *what = "created";
	json_t *v = tl_field(o, "created");
	const char *s;

	if (!v || json_is_null(v)) {
		what = "updated";
		v = tl_field(o, "updated");
	}
	s = json_string_value(v);
	if (!v || json_is_null(v)) {
		snprintf(e->bad, sizeof(e->bad),
			 "no \"created\" or \"updated\" time");
		return;
	}
	if (!s || bfs_trove_time_normalize(s, e->timestamp))
		snprintf(e->bad, sizeof(e->bad), "\"%s\" is not a time", what);
}

static int tl_entry(json_t *o, size_t index, struct bfs_trove_entry *e)
{
	size_t i;
	int ret;

	e->index = index;
	if (!json_is_object(o)) {
		snprintf(e->bad, sizeof(e->bad), "not a JSON object");
		return 0;
	}
	for (i = 0; i < TL_NFIELDS; i++) {
		ret = tl_str(e, tl_field(o, tl_fields[i].norm),
			     tl_fields[i].what, tl_slot(e, tl_fields[i].off));
		if (ret)
			return ret;
	}
	ret = tl_datastore(e, o);
	if (!ret && !e->bad[0])
		tl_time(e, o);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Lists */

static void tl_entry_release(struct bfs_trove_entry *e)
{
	size_t i;

	for (i = 0; i < TL_NFIELDS; i++)
		free(*tl_slot(e, tl_fields[i].off));
	free(e->datastore);
}

void bfs_trove_list_release(struct bfs_trove_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		tl_entry_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The backups of root, whichever of the shapes it is: an array, or a
 * one-element array of the lone backup (borrowed or new: *owned). */
static json_t *tl_backups(json_t *root, char *err, size_t errlen)
{
	json_t *v;

	if (json_is_array(root))
		return json_incref(root);
	if (json_is_object(root)) {
		v = json_object_get(root, "backups");
		if (json_is_array(v))
			return json_incref(v);
		v = json_object_get(root, "backup");
		if (json_is_object(v))
			return json_pack("[O]", v);
		if (tl_field(root, "id"))
			return json_pack("[O]", root);
	}
	bfs_errf(err, errlen,
		 "not a Trove backup list: expected {\"backups\": [...]} "
		 "(the API), a JSON list of backups (openstack database "
		 "backup list -f json) or one backup (... backup show -f "
		 "json)");
	return NULL;
}

int bfs_trove_list_parse(const char *text, size_t len,
			 struct bfs_trove_list *out, char *err, size_t errlen)
{
	json_t *root, *arr;
	json_error_t jerr;
	size_t i, n;
	int ret = 0;

	out->v = NULL;
	out->n = 0;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		bfs_errf(err, errlen, "line %d, column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		return -EINVAL;
	}
	arr = tl_backups(root, err, errlen);
	json_decref(root);
	if (!arr)
		return -EINVAL;
	n = json_array_size(arr);
	if (n > BFS_TROVE_LIST_MAX_ENTRIES) {
		bfs_errf(err, errlen, "over %u backups in one list",
			 BFS_TROVE_LIST_MAX_ENTRIES);
		ret = -EINVAL;
		goto out_arr;
	}
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (!out->v) {
		ret = -ENOMEM;
		goto out_arr;
	}
	for (i = 0; !ret && i < n; i++, out->n++)
		ret = tl_entry(json_array_get(arr, i), i, &out->v[i]);
	if (ret) {
		bfs_errf(err, errlen, "out of memory");
		bfs_trove_list_release(out);
	}
out_arr:
	json_decref(arr);
	return ret;
}

int bfs_trove_list_load(const char *path, struct bfs_trove_list *out, char *err,
			size_t errlen)
{
	char why[512] = "";
	struct stat st;
	ssize_t len;
	char *text;
	int fd, ret;

	out->v = NULL;
	out->n = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		ret = -errno;
		bfs_errf(err, errlen, "cannot read '%s': %s", path,
			 strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (st.st_size > BFS_TROVE_LIST_MAX_BYTES) {
		close(fd);
		bfs_errf(err, errlen, "'%s' is over %u bytes", path,
			 BFS_TROVE_LIST_MAX_BYTES);
		return -EFBIG;
	}
	text = malloc(BFS_TROVE_LIST_MAX_BYTES + 1);
	len = text ? bfs_read_all(fd, text, BFS_TROVE_LIST_MAX_BYTES + 1)
		   : -ENOMEM;
	close(fd);
	if (len > BFS_TROVE_LIST_MAX_BYTES)
		len = -EFBIG;
	ret = len < 0 ? (int)len
		      : bfs_trove_list_parse(text, (size_t)len, out, why,
					     sizeof(why));
	if (len < 0)
		bfs_errf(err, errlen, "cannot read '%s': %s", path,
			 strerror(-ret));
	else if (ret)
		bfs_errf(err, errlen, "'%s': %s", path, why);
	free(text);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Times */

/* n decimal digits at *p: their value, or -1. */
static int tl_digits(const char **p, int n)
{
	int v = 0;

	for (; n > 0; n--, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

/* "", "Z", "+HH:MM", "-HHMM", "+HH": seconds east of UTC, or -1. */
static int tl_zone(const char *p, long *east)
{
	int sign, h, m = 0;

	*east = 0;
	if (!*p || ((*p == 'Z' || *p == 'z') && !p[1]))
		return 0;
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	h = tl_digits(&p, 2);
	if (*p == ':')
		p++;
	if (*p)
		m = tl_digits(&p, 2);
	if (h < 0 || h > 23 || m < 0 || m > 59 || *p)
		return -1;
	*east = sign * (h * 3600L + m * 60L);
	return 0;
}

int bfs_trove_time_normalize(const char *in, char out[BFS_TIMESTAMP_LEN + 1])
{
	char utc[BFS_TIMESTAMP_LEN + 1];
	const char *p = in;
	int v[6], i;
	int64_t t;
	long east;

	/* YYYY-MM-DD[T ]HH:MM:SS, then the separators are checked */
	static const int width[6] = {4, 2, 2, 2, 2, 2};
	static const char sep[6] = {'-', '-', 'T', ':', ':', 0};

	for (i = 0; i < 6; i++) {
		v[i] = tl_digits(&p, width[i]);
		if (v[i] < 0)
			return -EINVAL;
		if (!sep[i])
			break;
		if (*p != sep[i] && !(sep[i] == 'T' && *p == ' '))
			return -EINVAL;
		p++;
	}
	/* fractions of a second: dropped */
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	if (tl_zone(p, &east))
		return -EINVAL;
	snprintf(utc, sizeof(utc), "%04d-%02d-%02dT%02d:%02d:%02dZ", v[0], v[1],
		 v[2], v[3], v[4], v[5]);
	if (bfs_timestamp_parse(utc, &t) || t - east < 0)
		return -EINVAL;
	bfs_timestamp_format(t - east, out);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The key file */

void bfs_trove_pass_free(char *pass)
{
	if (!pass)
		return;
	OPENSSL_cleanse(pass, strlen(pass));
	free(pass);
}

/* The pass phrase is the first line without its line end. */
static int tl_key_text(char *text, size_t len, const char *path, char *err,
		       size_t errlen)
{
	if (len && text[len - 1] == '\n')
		len--;
	if (len && text[len - 1] == '\r')
		len--;
	text[len] = 0;
	if (!len) {
		bfs_errf(err, errlen, "key file '%s' is empty", path);
		return -EINVAL;
	}
	if (len > BFS_TROVE_PASS_MAX) {
		bfs_errf(err, errlen, "key file '%s' holds over %d bytes", path,
			 BFS_TROVE_PASS_MAX);
		return -EINVAL;
	}
	if (strlen(text) != len || !tl_printable(text)) {
		bfs_errf(err, errlen,
			 "key file '%s' must hold the key on one line", path);
		return -EINVAL;
	}
	return 0;
}

int bfs_trove_key_file_read(const char *path, char **pass, char *err,
			    size_t errlen)
{
	/* Two bytes over the longest key (and its newline) tell a longer
	 * file. */
	char text[BFS_TROVE_PASS_MAX + 3];
	ssize_t len;
	int fd, ret;

	*pass = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		bfs_errf(err, errlen, "cannot open key file '%s': %s", path,
			 strerror(-ret));
		return ret;
	}
	/* as for the repository key: regular, owner only */
	ret = bfs_key_file_check_mode(fd, path, err, errlen);
	len = ret ? 0 : bfs_read_all(fd, text, sizeof(text) - 1);
	close(fd);
	if (!ret && len < 0) {
		ret = (int)len;
		bfs_errf(err, errlen, "cannot read key file '%s': %s", path,
			 strerror(-ret));
	}
	/* bfs_read_all() never returns more than asked; saying so lets the
	 * compiler see text[len] stays inside text */
	if (!ret && (size_t)len >= sizeof(text))
		ret = -EIO;
	if (!ret)
		ret = tl_key_text(text, (size_t)len, path, err, errlen);
	if (!ret) {
		*pass = strdup(text);
		if (!*pass)
			ret = -ENOMEM;
	}
	OPENSSL_cleanse(text, sizeof(text));
	return ret;
}
