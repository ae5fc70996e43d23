/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging.  The sink (stderr or syslog) and the level are the only mutable
 * globals of the project; set them once at start-up, before threads start.
 *
 * Messages: lower-case, no final period, the failing thing in quotes,
 * never a secret.  Expected conditions log at debug level only.
 */
#ifndef BFS_LOG_H
#define BFS_LOG_H

enum bfs_log_level {
	BFS_LOG_ERR = 3,
	BFS_LOG_WARN = 4,
	BFS_LOG_INFO = 6,
	BFS_LOG_DEBUG = 7,
};

void bfs_log_set_level(enum bfs_log_level level);
/* Send messages to syslog (ident "backupfs") instead of stderr. */
void bfs_log_use_syslog(int on);
/*
 * One notification (a JSON line): an info line on the sink, and always a
 * LOG_INFO message to syslog (ident "backupfs"), even in the foreground,
 * so a log collector sees every job whatever the daemon's mode.
 */
void bfs_log_event(const char *json);
void bfs_log(enum bfs_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define bfs_err(...) bfs_log(BFS_LOG_ERR, __VA_ARGS__)
#define bfs_warn(...) bfs_log(BFS_LOG_WARN, __VA_ARGS__)
#define bfs_info(...) bfs_log(BFS_LOG_INFO, __VA_ARGS__)
#define bfs_debug(...) bfs_log(BFS_LOG_DEBUG, __VA_ARGS__)

#endif
