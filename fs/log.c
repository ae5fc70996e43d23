// SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static enum bfs_log_level log_level = BFS_LOG_INFO;
static int log_syslog;

void bfs_log_set_level(enum bfs_log_level level)
{
	log_level = level;
}

void bfs_log_use_syslog(int on)
{
	log_syslog = on;
	if (on)
		openlog("backupfs", LOG_PID, LOG_DAEMON);
}

static const char *level_name(enum bfs_log_level level)
{
	switch (level) {
	case BFS_LOG_ERR:
		return "error";
	case BFS_LOG_WARN:
		return "warning";
	case BFS_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void bfs_log(enum bfs_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog((int)level, "%s", msg);
		return;
	}
	/* One fprintf per line keeps lines from different threads whole. */
	fprintf(stderr, "backupfs: %s: %s\n", level_name(level), msg);
}
