// SPDX-License-Identifier: Apache-2.0
/*
 * Notifications (MagnetoDB's spec): every job start, end and error is a
 * JSON line appended to the instance's events file, a syslog message
 * (always, ident backupfs, LOG_INFO; a log line on stderr too in the
 * foreground) and, when "webhook" is configured, an HTTP POST from the
 * notifier's thread (notify.c), which never blocks the caller.
 */
#include "engine_int.h"
#include "log.h"
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The events file is read whole; older lines are dropped past this. */
#define EVENTS_MAX_BYTES (8u << 20)

static void events_path(struct bfs_instance *inst, char *path, size_t len)
{
	snprintf(path, len, "%s/events.jsonl", inst->dir);
}

void events_emit(struct bfs_instance *inst, const char *event,
		 json_t *fields)
{
	char path[4096], ts[BFS_TIMESTAMP_LEN + 1];
	char *line;
	int fd;

	if (!fields)
		fields = json_object();
	if (!fields)
		return;
	bfs_timestamp_format(time(NULL), ts);
	json_object_set_new(fields, "time", json_string(ts));
	json_object_set_new(fields, "event", json_string(event));
	json_object_set_new(fields, "instance", json_string(inst->id));
	line = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(fields);
	if (!line)
		return;
	bfs_log_event(line);
	if (inst->e->notify)
		bfs_notify_post(inst->e->notify, line);
	events_path(inst, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		bfs_err("cannot open events file '%s': %s", path,
			strerror(errno));
		free(line);
		return;
	}
	/* One write per line: O_APPEND keeps concurrent lines whole. */
	{
		size_t n = strlen(line);

		line[n] = '\n';
		if (write(fd, line, n + 1) != (ssize_t)(n + 1))
			bfs_err("cannot append to events file '%s'", path);
	}
	close(fd);
	free(line);
}

int events_read(struct bfs_instance *inst, char **text, size_t *len)
{
	char path[4096];
	struct stat st;
	off_t start = 0;
	ssize_t n;
	char *buf;
	int fd;

	events_path(inst, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		*text = strdup("");
		*len = 0;
		return *text ? 0 : -ENOMEM;
	}
	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	if (st.st_size > EVENTS_MAX_BYTES)
		start = st.st_size - EVENTS_MAX_BYTES;
	buf = malloc((size_t)(st.st_size - start) + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, buf, (size_t)(st.st_size - start), start);
	close(fd);
	if (n < 0) {
		free(buf);
		return -EIO;
	}
	buf[n] = 0;
	*text = buf;
	*len = (size_t)n;
	/* Start at a whole line when the front was cut. */
	if (start) {
		char *nl = memchr(buf, '\n', (size_t)n);

		if (nl) {
			*len = (size_t)n - (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, *len + 1);
		}
	}
	return 0;
}
