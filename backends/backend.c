// SPDX-License-Identifier: Apache-2.0
/*
 * Backend dispatch and the generic checks every driver relies on: callers
 * go through bfs_backend_*(), which validate names once, here, so a driver
 * never sees "..", an absolute name or a control byte.
 */
#include "backend.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define BE_COMPONENT_MAX 255
#define BE_LOG_NAME_MAX	 128

struct be_driver {
	const char *type;
	int (*open)(json_t *conf, struct bfs_backend **out, char *err,
		    size_t errlen);
};

static const struct be_driver be_drivers[] = {
	{.type = "local", .open = bfs_local_open},
	{.type = "swift", .open = bfs_swift_open},
};

#define BE_NDRIVERS (sizeof(be_drivers) / sizeof(be_drivers[0]))

/* "local, swift": for the message naming the known types. */
static void be_known_types(char *out, size_t len)
{
	size_t i, used = 0;
	int n;

	out[0] = 0;
	for (i = 0; i < BE_NDRIVERS && used < len; i++) {
		n = snprintf(out + used, len - used, "%s%s", i ? ", " : "",
			     be_drivers[i].type);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int bfs_backend_open(json_t *conf, struct bfs_backend **out, char *err,
		     size_t errlen)
{
	const char *type;
	char known[128];
	size_t i;

	*out = NULL;
	if (errlen)
		err[0] = 0;
	if (!json_is_object(conf)) {
		snprintf(err, errlen, "backend config is not an object");
		return -EINVAL;
	}
	type = json_string_value(json_object_get(conf, "type"));
	if (!type) {
		snprintf(err, errlen, "backend config has no \"type\" string");
		return -EINVAL;
	}
	for (i = 0; i < BE_NDRIVERS; i++)
		if (!strcmp(type, be_drivers[i].type))
			return be_drivers[i].open(conf, out, err, errlen);
	be_known_types(known, sizeof(known));
	snprintf(err, errlen, "unknown backend type \"%.64s\" (known: %s)",
		 type, known);
	return -EINVAL;
}

int bfs_backend_open_container(json_t *conf, const char *container,
			       struct bfs_backend **out, char *err,
			       size_t errlen)
{
	const char *type = json_string_value(json_object_get(conf, "type"));
	json_t *copy;
	int ret;

	*out = NULL;
	if (!type || strcmp(type, "swift")) {
		snprintf(err, errlen,
			 "the %s backend has no containers: container "
			 "\"%.64s\" needs a swift backend",
			 type ? type : "(untyped)", container);
		return -EOPNOTSUPP;
	}
	copy = json_deep_copy(conf);
	if (!copy ||
	    json_object_set_new(copy, "container", json_string(container)) ||
	    json_object_set_new(copy, "create_container", json_false())) {
		json_decref(copy);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = bfs_backend_open(copy, out, err, errlen);
	json_decref(copy);
	return ret;
}

void bfs_backend_close(struct bfs_backend *be)
{
	if (be)
		be->ops->destroy(be);
}

static int be_byte_ok(unsigned char c)
{
	return c >= 0x20 && c != 0x7f;
}

int bfs_backend_name_ok(const char *name)
{
	const char *p, *start;
	size_t n;

	if (!name || !*name)
		return 0;
	for (start = p = name;; p++) {
		if (*p && *p != '/') {
			if (!be_byte_ok((unsigned char)*p))
				return 0;
			continue;
		}
		/* end of a component: start..p */
		n = (size_t)(p - start);
		if (n == 0 || n > BE_COMPONENT_MAX)
			return 0;
		if (start[0] == '.' && (n == 1 || (n == 2 && start[1] == '.')))
			return 0;
		if (!*p)
			return 1;
		start = p + 1;
	}
}

/*
 * A listing prefix is "" or a valid name, optionally ending in '/' (a
 * "directory"); it may stop in the middle of a component.
 */
static int be_prefix_ok(const char *prefix)
{
	char tmp[4096];
	size_t n;

	if (!prefix)
		return 0;
	n = strlen(prefix);
	if (n == 0)
		return 1;
	if (n >= sizeof(tmp))
		return 0;
	memcpy(tmp, prefix, n + 1);
	if (tmp[n - 1] == '/')
		tmp[n - 1] = 0;
	return bfs_backend_name_ok(tmp);
}

/* A refused name may hold control bytes: never log it raw. */
static void be_refuse(const char *what, const char *name)
{
	char safe[BE_LOG_NAME_MAX + 1];
	size_t i;

	for (i = 0; name && name[i] && i < BE_LOG_NAME_MAX; i++)
		safe[i] = be_byte_ok((unsigned char)name[i]) ? name[i] : '?';
	safe[i] = 0;
	bfs_err("refusing invalid object %s \"%s\"", what, safe);
}

static int be_get(struct bfs_backend *be, const char *name, uint64_t off,
		  uint64_t len, unsigned flags, struct bfs_buf *out)
{
	if (!bfs_backend_name_ok(name)) {
		be_refuse("name", name);
		return -EINVAL;
	}
	return be->ops->get(be, name, off, len, flags, out);
}

int bfs_backend_get(struct bfs_backend *be, const char *name, uint64_t off,
		    uint64_t len, struct bfs_buf *out)
{
	return be_get(be, name, off, len, 0, out);
}

int bfs_backend_get_sealed(struct bfs_backend *be, const char *name,
			   struct bfs_buf *out)
{
	return be_get(be, name, 0, 0, BFS_GET_SEALED, out);
}

int bfs_backend_put(struct bfs_backend *be, const char *name, const void *data,
		    size_t len, unsigned flags)
{
	if (!bfs_backend_name_ok(name)) {
		be_refuse("name", name);
		return -EINVAL;
	}
	if ((flags & ~BFS_PUT_EXCL) || (!data && len))
		return -EINVAL;
	return be->ops->put(be, name, data, len, flags);
}

int bfs_backend_remove(struct bfs_backend *be, const char *name)
{
	if (!bfs_backend_name_ok(name)) {
		be_refuse("name", name);
		return -EINVAL;
	}
	return be->ops->remove(be, name);
}

int bfs_backend_stat(struct bfs_backend *be, const char *name, uint64_t *size)
{
	if (!bfs_backend_name_ok(name)) {
		be_refuse("name", name);
		return -EINVAL;
	}
	return be->ops->stat(be, name, size);
}

int bfs_backend_list(struct bfs_backend *be, const char *prefix, char delimiter,
		     bfs_list_cb cb, void *arg)
{
	if (!be_prefix_ok(prefix)) {
		be_refuse("prefix", prefix);
		return -EINVAL;
	}
	if (delimiter != 0 && delimiter != '/')
		return -EINVAL;
	return be->ops->list(be, prefix, delimiter, cb, arg);
}

int bfs_backend_space(struct bfs_backend *be, uint64_t *avail)
{
	if (!be->ops->space)
		return -EOPNOTSUPP;
	return be->ops->space(be, avail);
}

int bfs_backend_info(struct bfs_backend *be, const char *name,
		     struct bfs_object_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!bfs_backend_name_ok(name)) {
		be_refuse("name", name);
		return -EINVAL;
	}
	if (!be->ops->info)
		return -EOPNOTSUPP;
	return be->ops->info(be, name, out);
}

const char *bfs_object_layout_name(int layout)
{
	switch (layout) {
	case BFS_LAYOUT_SINGLE:
		return "single";
	case BFS_LAYOUT_DLO:
		return "dlo";
	case BFS_LAYOUT_SLO:
		return "slo";
	}
	return "?";
}
