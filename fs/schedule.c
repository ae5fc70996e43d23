// SPDX-License-Identifier: Apache-2.0
/*
 * Schedules and executions as sealed repository records (schedule.h).
 */
#include "schedule.h"

#include "log.h"
#include "manifest.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHED_KIND "sched."
#define EXEC_KIND  "exec."

int bfs_schedule_name_ok(const char *name)
{
	return bfs_name_ok(name) && strnlen(name, BFS_SCHEDULE_NAME_MAX + 1) <=
					    BFS_SCHEDULE_NAME_MAX;
}

static int sched_kind(char out[BFS_NAME_MAX + 1], const char *prefix,
		      const char *instance)
{
	int n = snprintf(out, BFS_NAME_MAX + 1, "%s%s", prefix, instance);

	if (n < 0 || n > BFS_NAME_MAX)
		return -ENAMETOOLONG;
	return bfs_name_ok(out) ? 0 : -EINVAL;
}

/* No control bytes but tabs; bounded. */
static int sched_text_ok(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i >= max || ((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

static int sched_check_pattern(const char *text, json_t *out, char *err,
			       size_t errlen)
{
	char why[256];
	struct bfs_cron c;

	if (bfs_cron_parse(&c, text, why, sizeof(why))) {
		bfs_errf(err, errlen, "bad cron pattern '%s': %s", text, why);
		return -EINVAL;
	}
	json_object_set_new(out, "pattern", json_string(bfs_cron_text(&c)));
	return 0;
}

static int sched_parse_json(const char *text, size_t len, json_t *out,
			    char *err, size_t errlen)
{
	json_error_t jerr;
	const char *key;
	json_t *j, *v;
	int ret = 0;

	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		bfs_errf(err, errlen,
			 "schedule is not JSON: line %d, column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		bfs_errf(err, errlen, "schedule must be a JSON object");
		ret = -EINVAL;
		goto out_json;
	}
	json_object_foreach(j, key, v)
	{
		if (!strcmp(key, "pattern")) {
			if (!json_is_string(v)) {
				bfs_errf(err, errlen,
					 "\"pattern\" must be a string");
				ret = -EINVAL;
			} else {
				ret = sched_check_pattern(json_string_value(v),
							  out, err, errlen);
			}
		} else if (!strcmp(key, "strategy")) {
			if (!json_is_object(v)) {
				bfs_errf(err, errlen,
					 "\"strategy\" must be an object");
				ret = -EINVAL;
			} else {
				json_object_set(out, "strategy", v);
			}
		} else if (!strcmp(key, "keep")) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > BFS_SCHEDULE_KEEP_MAX) {
				bfs_errf(err, errlen,
					 "\"keep\" must be an integer 0..%d "
					 "(0: keep all)",
					 BFS_SCHEDULE_KEEP_MAX);
				ret = -EINVAL;
			} else {
				json_object_set(out, "keep", v);
			}
		} else if (!strcmp(key, "description")) {
			if (!json_is_string(v) ||
			    !sched_text_ok(json_string_value(v),
					   BFS_SCHEDULE_DESC_MAX)) {
				bfs_errf(err, errlen,
					 "\"description\" must be a string of "
					 "at most %d bytes without control "
					 "characters",
					 BFS_SCHEDULE_DESC_MAX);
				ret = -EINVAL;
			} else {
				json_object_set(out, "description", v);
			}
		} else {
			bfs_errf(err, errlen,
				 "unknown key \"%s\" (pattern, strategy, keep, "
				 "description)",
				 key);
			ret = -EINVAL;
		}
		if (ret)
			break;
	}
	if (!ret && !json_object_get(j, "pattern")) {
		bfs_errf(err, errlen, "missing \"pattern\"");
		ret = -EINVAL;
	}
out_json:
	json_decref(j);
	return ret;
}

int bfs_schedule_parse(const char *text, size_t len, json_t **out, char *err,
		       size_t errlen)
{
	char line[BFS_CRON_TEXT_MAX];
	size_t a = 0, b = len;
	json_t *s;
	int ret;

	*out = NULL;
	if (len > BFS_SCHEDULE_TEXT_MAX) {
		bfs_errf(err, errlen, "schedule over %u bytes",
			 BFS_SCHEDULE_TEXT_MAX);
		return -EINVAL;
	}
	while (a < b && strchr(" \t\r\n", text[a]))
		a++;
	while (b > a && strchr(" \t\r\n", text[b - 1]))
		b--;
	if (a == b) {
		bfs_errf(err, errlen,
			 "empty schedule: write a cron pattern "
			 "or JSON with \"pattern\"");
		return -EINVAL;
	}
	s = json_pack("{sss{}sIss}", "pattern", "", "strategy", "keep",
		      (json_int_t)0, "description", "");
	if (!s)
		return -ENOMEM;
	if (text[a] == '{') {
		ret = sched_parse_json(text + a, b - a, s, err, errlen);
	} else if (memchr(text + a, '\n', b - a) ||
		   memchr(text + a, 0, b - a) || b - a >= sizeof(line)) {
		bfs_errf(err, errlen,
			 "a cron pattern is one line of at most "
			 "%d bytes",
			 BFS_CRON_TEXT_MAX - 1);
		ret = -EINVAL;
	} else {
		memcpy(line, text + a, b - a);
		line[b - a] = 0;
		ret = sched_check_pattern(line, s, err, errlen);
	}
	if (ret) {
		json_decref(s);
		return ret;
	}
	*out = s;
	return 0;
}

int bfs_schedule_put(struct bfs_repo *repo, const char *instance,
		     const char *name, json_t *sched, time_t now)
{
	char kind[BFS_NAME_MAX + 1], ts[BFS_TIMESTAMP_LEN + 1];
	json_t *rec, *old = NULL;
	const char *created;
	int ret;

	if (!bfs_schedule_name_ok(name))
		return -EINVAL;
	ret = sched_kind(kind, SCHED_KIND, instance);
	if (ret)
		return ret;
	ret = bfs_schedule_get(repo, instance, name, &old);
	if (ret && ret != -ENOENT)
		return ret;
	rec = json_deep_copy(sched);
	if (!rec) {
		json_decref(old);
		return -ENOMEM;
	}
	bfs_timestamp_format(now, ts);
	created = json_string_value(json_object_get(old, "created_at"));
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "instance", json_string(instance));
	json_object_set_new(rec, "created_at", json_string(created ?: ts));
	json_object_set_new(rec, "updated_at", json_string(ts));
	ret = bfs_repo_record_put(repo, kind, name, rec, 0);
	json_decref(rec);
	json_decref(old);
	return ret;
}

int bfs_schedule_times(json_t *sched, struct bfs_cron *cron, time_t *updated)
{
	const char *p = json_string_value(json_object_get(sched, "pattern"));
	const char *u = json_string_value(json_object_get(sched, "updated_at"));
	int64_t t;

	if (!p || !u || bfs_cron_parse(cron, p, NULL, 0) ||
	    bfs_timestamp_parse(u, &t))
		return -EIO;
	*updated = (time_t)t;
	return 0;
}

/* A stored schedule must describe itself: its name and instance. */
static int sched_check(json_t *s, const char *instance, const char *name)
{
	struct bfs_cron c;
	int64_t t;
	time_t u;
	json_t *keep = json_object_get(s, "keep");

	if (!json_is_object(s) ||
	    strcmp(json_string_value(json_object_get(s, "name")) ?: "", name) ||
	    strcmp(json_string_value(json_object_get(s, "instance")) ?: "",
		   instance) ||
	    bfs_schedule_times(s, &c, &u) ||
	    bfs_timestamp_parse(
		    json_string_value(json_object_get(s, "created_at")) ?: "",
		    &t) ||
	    !json_is_object(json_object_get(s, "strategy")) ||
	    !json_is_integer(keep) || json_integer_value(keep) < 0 ||
	    !json_is_string(json_object_get(s, "description")))
		return -EIO;
	return 0;
}

int bfs_schedule_get(struct bfs_repo *repo, const char *instance,
		     const char *name, json_t **out)
{
	char kind[BFS_NAME_MAX + 1];
	json_t *s;
	int ret;

	*out = NULL;
	if (!bfs_schedule_name_ok(name))
		return -ENOENT;
	ret = sched_kind(kind, SCHED_KIND, instance);
	if (ret)
		return ret;
	ret = bfs_repo_record_get(repo, kind, name, &s);
	if (ret)
		return ret;
	if (sched_check(s, instance, name)) {
		bfs_err("schedule '%s' of instance '%s' is malformed", name,
			instance);
		json_decref(s);
		return -EIO;
	}
	*out = s;
	return 0;
}

int bfs_schedule_delete(struct bfs_repo *repo, const char *instance,
			const char *name)
{
	char kind[BFS_NAME_MAX + 1];
	int ret;

	if (!bfs_schedule_name_ok(name))
		return -ENOENT;
	ret = sched_kind(kind, SCHED_KIND, instance);
	if (ret)
		return ret;
	return bfs_repo_record_delete(repo, kind, name);
}

struct sched_list {
	bfs_name_cb cb;
	void *arg;
};

static int sched_list_cb(const char *name, void *arg)
{
	struct sched_list *l = arg;

	return bfs_schedule_name_ok(name) ? l->cb(name, l->arg) : 0;
}

int bfs_schedule_list(struct bfs_repo *repo, const char *instance,
		      bfs_name_cb cb, void *arg)
{
	struct sched_list l = {cb, arg};
	char kind[BFS_NAME_MAX + 1];
	int ret;

	ret = sched_kind(kind, SCHED_KIND, instance);
	if (ret)
		return ret;
	return bfs_repo_record_list(repo, kind, sched_list_cb, &l);
}

char *bfs_schedule_render(json_t *sched, time_t now)
{
	char ts[BFS_TIMESTAMP_LEN + 1];
	struct bfs_cron c;
	time_t next, u;
	json_t *v;
	char *text;

	v = json_deep_copy(sched);
	if (!v)
		return NULL;
	if (!bfs_schedule_times(sched, &c, &u) &&
	    !bfs_cron_next(&c, now, &next)) {
		bfs_timestamp_format(next, ts);
		json_object_set_new(v, "next_execution_time", json_string(ts));
	} else {
		json_object_set_new(v, "next_execution_time", json_null());
	}
	text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(v);
	return text;
}

/* ---- executions ---- */

int bfs_execution_id(const char *schedule, time_t slot, char *out,
		     size_t outlen)
{
	struct tm tm;
	char s[32];
	int n;

	if (!gmtime_r(&slot, &tm) || strftime(s, sizeof(s), "%Y%m%dT%H%MZ",
					      &tm) != BFS_EXEC_SUFFIX_LEN - 1)
		return -EOVERFLOW;
	n = snprintf(out, outlen, "%s-%s", schedule, s);
	return n > 0 && (size_t)n < outlen ? 0 : -ENAMETOOLONG;
}

int bfs_execution_id_parse(const char *id, char *schedule, time_t *slot)
{
	size_t n = strnlen(id, BFS_NAME_MAX + 1);
	const char *s;
	struct tm tm;
	char *end;

	if (n <= BFS_EXEC_SUFFIX_LEN || n > BFS_NAME_MAX)
		return -EINVAL;
	s = id + n - BFS_EXEC_SUFFIX_LEN;
	if (s[0] != '-')
		return -EINVAL;
	for (int i = 1; i < BFS_EXEC_SUFFIX_LEN - 1; i++)
		if (i != 9 && (s[i] < '0' || s[i] > '9'))
			return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s + 1, "%Y%m%dT%H%MZ", &tm);
	if (!end || *end)
		return -EINVAL;
	memcpy(schedule, id, n - BFS_EXEC_SUFFIX_LEN);
	schedule[n - BFS_EXEC_SUFFIX_LEN] = 0;
	if (!bfs_schedule_name_ok(schedule))
		return -EINVAL;
	*slot = timegm(&tm);
	return 0;
}

struct exec_list {
	const char *schedule;
	json_t *ids;
};

static int exec_list_cb(const char *id, void *arg)
{
	struct exec_list *l = arg;
	char sched[BFS_NAME_MAX + 1];
	time_t slot;

	if (bfs_execution_id_parse(id, sched, &slot))
		return 0;
	if (l->schedule && strcmp(l->schedule, sched))
		return 0;
	return json_array_append_new(l->ids, json_string(id)) ? -ENOMEM : 0;
}

/* Newest slot first, then by id. */
static int exec_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t nx = strlen(x), ny = strlen(y);
	int c = strcmp(y + ny - BFS_EXEC_SUFFIX_LEN,
		       x + nx - BFS_EXEC_SUFFIX_LEN);

	return c ? c : strcmp(x, y);
}

int bfs_execution_list(struct bfs_repo *repo, const char *instance,
		       const char *schedule, json_t **out)
{
	struct exec_list l = {schedule, json_array()};
	char kind[BFS_NAME_MAX + 1];
	const char **v;
	size_t i, n;
	json_t *s;
	int ret;

	*out = NULL;
	if (!l.ids)
		return -ENOMEM;
	ret = sched_kind(kind, EXEC_KIND, instance);
	if (!ret)
		ret = bfs_repo_record_list(repo, kind, exec_list_cb, &l);
	if (ret)
		goto out_ids;
	n = json_array_size(l.ids);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		ret = -ENOMEM;
		goto out_ids;
	}
	json_array_foreach(l.ids, i, s) v[i] = json_string_value(s);
	qsort(v, n, sizeof(*v), exec_cmp);
	*out = json_array();
	for (i = 0; *out && i < n; i++)
		json_array_append_new(*out, json_string(v[i]));
	free(v);
	ret = *out ? 0 : -ENOMEM;
out_ids:
	json_decref(l.ids);
	return ret;
}

int bfs_execution_get(struct bfs_repo *repo, const char *instance,
		      const char *id, json_t **out)
{
	char kind[BFS_NAME_MAX + 1], sched[BFS_NAME_MAX + 1];
	time_t slot;
	json_t *r;
	int ret;

	*out = NULL;
	if (bfs_execution_id_parse(id, sched, &slot))
		return -ENOENT;
	ret = sched_kind(kind, EXEC_KIND, instance);
	if (!ret)
		ret = bfs_repo_record_get(repo, kind, id, &r);
	if (ret)
		return ret;
	if (!json_is_object(r) ||
	    strcmp(json_string_value(json_object_get(r, "id")) ?: "", id) ||
	    strcmp(json_string_value(json_object_get(r, "schedule")) ?: "",
		   sched) ||
	    !json_is_string(json_object_get(r, "state"))) {
		bfs_err("execution '%s' of instance '%s' is malformed", id,
			instance);
		json_decref(r);
		return -EIO;
	}
	*out = r;
	return 0;
}

static int exec_put(struct bfs_repo *repo, const char *instance, json_t *rec,
		    unsigned flags)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	char kind[BFS_NAME_MAX + 1], sched[BFS_NAME_MAX + 1];
	time_t slot;
	int ret;

	if (!id || bfs_execution_id_parse(id, sched, &slot))
		return -EINVAL;
	ret = sched_kind(kind, EXEC_KIND, instance);
	return ret ? ret : bfs_repo_record_put(repo, kind, id, rec, flags);
}

int bfs_execution_claim(struct bfs_repo *repo, const char *instance,
			json_t *rec)
{
	return exec_put(repo, instance, rec, BFS_PUT_EXCL);
}

int bfs_execution_update(struct bfs_repo *repo, const char *instance,
			 json_t *rec)
{
	return exec_put(repo, instance, rec, 0);
}

int bfs_execution_delete(struct bfs_repo *repo, const char *instance,
			 const char *id)
{
	char kind[BFS_NAME_MAX + 1], sched[BFS_NAME_MAX + 1];
	time_t slot;
	int ret;

	if (bfs_execution_id_parse(id, sched, &slot))
		return -ENOENT;
	ret = sched_kind(kind, EXEC_KIND, instance);
	return ret ? ret : bfs_repo_record_delete(repo, kind, id);
}

int bfs_execution_trim(struct bfs_repo *repo, const char *instance,
		       const char *schedule, unsigned keep)
{
	json_t *ids;
	size_t i;
	int ret, n = 0;

	ret = bfs_execution_list(repo, instance, schedule, &ids);
	if (ret)
		return ret;
	for (i = keep; i < json_array_size(ids); i++) {
		ret = bfs_execution_delete(
			repo, instance,
			json_string_value(json_array_get(ids, i)));
		if (ret && ret != -ENOENT)
			break;
		ret = 0;
		n++;
	}
	json_decref(ids);
	return ret ? ret : n;
}
