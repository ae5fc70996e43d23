// SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static enum bfs_log_level log_level = BFS_LOG_INFO;
static int log_syslog;
static pthread_once_t log_openlog_once = PTHREAD_ONCE_INIT;

static void log_openlog(void)
{
	openlog("backupfs", LOG_PID, LOG_DAEMON);
}

void bfs_log_set_level(enum bfs_log_level level)
{
	log_level = level;
}

void bfs_log_use_syslog(int on)
{
	log_syslog = on;
	if (on)
		pthread_once(&log_openlog_once, log_openlog);
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

void bfs_log_event(const char *json)
{
	pthread_once(&log_openlog_once, log_openlog);
	syslog(LOG_INFO, "event %s", json);
	if (!log_syslog && log_level >= BFS_LOG_INFO)
		fprintf(stderr, "backupfs: info: event %s\n", json);
}
