/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration file (one JSON object; see README "Configuration").
 *
 *   backend     object, required: {"type": "local", "path": ...}
 *   key_file    string, required: the repository key (mode 0600)
 *   state_dir   string, required: journals, spools, job records, events
 *   cache_size  string or integer, optional: decoded-chunk cache ("256M")
 *   readahead   integer, optional: chunks decoded ahead of a reader (8)
 *   log_level   string, optional: "error", "warning", "info", "debug"
 *   instances   object, optional: id -> instance config (datastore keys)
 *   executions_keep  integer, optional: execution records kept per
 *               schedule (100)
 *   webhook     object, optional: where notifications are POSTed
 *               {"url", "timeout", "retries", "cacert", "token_file"}
 *
 * Instance objects are checked by their datastore driver when the engine
 * opens them; everything else is checked here.  A config is immutable
 * after loading.
 */
#ifndef BFS_CONFIG_H
#define BFS_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "log.h"

/* The "webhook" key; url NULL when it is absent. */
struct bfs_webhook_conf {
	char *url;	  /* http:// or https:// */
	unsigned timeout; /* seconds per attempt */
	unsigned retries; /* further attempts after a failed one */
	char *cacert;	  /* CA bundle for https, or NULL: the system's */
	char *token_file; /* bearer token (mode 0600), or NULL */
};

#define BFS_WEBHOOK_TIMEOUT 10
#define BFS_WEBHOOK_RETRIES 3

struct bfs_config {
	char *path;
	json_t *root;      /* owned */
	json_t *backend;   /* borrowed from root */
	json_t *instances; /* borrowed from root; an object, maybe empty */
	char *key_file;
	char *state_dir;
	uint64_t cache_bytes;
	unsigned readahead;
	enum bfs_log_level log_level;
	unsigned executions_keep;
	struct bfs_webhook_conf webhook;
};

#define BFS_DEFAULT_CACHE_BYTES (256ull << 20)
#define BFS_DEFAULT_READAHEAD 8
#define BFS_DEFAULT_EXECUTIONS_KEEP 100
#define BFS_MAX_EXECUTIONS_KEEP	    100000

/*
 * Load and check a config file: *out is new.  On error (-errno), err gets
 * one line naming the file and what is wrong (line and column for syntax
 * errors, the key otherwise).
 */
int bfs_config_load(const char *path, struct bfs_config **out, char *err,
		    size_t errlen);
void bfs_config_free(struct bfs_config *conf);

/* "123", "64K", "256M", "2G" (powers of 1024) -> bytes; 0 or -EINVAL. */
int bfs_parse_size(const char *s, uint64_t *out);

#endif
