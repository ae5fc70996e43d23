/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Importing legacy Trove backups (docs/FORMAT.md, "Imported Trove
 * backups"): `backupctl import-trove` turns the backups a Trove list
 * names into manifests of format "trove" that point at the legacy
 * objects, after decoding each object once (every CRC, the padding, the
 * ETag) for its exact size and SHA-256.  No byte of a legacy object is
 * copied, and the legacy container is only read.
 *
 * A list is one of the three shapes operators have at hand:
 *
 *   {"backups": [{...}, ...]}        the Trove API (GET /backups)
 *   [{"ID": ..., "Instance ID": ...}] `openstack database backup list -f json`
 *   {"id": ..., "instance_id": ...}   `openstack database backup show -f json`
 *
 * Field names are matched ignoring case, spaces, '_' and '-', so
 * "Instance ID" and "instance_id" are one field.
 *
 * Not thread-safe: one import runs in one thread.
 */
#ifndef BFS_TROVE_IMPORT_H
#define BFS_TROVE_IMPORT_H

#include "backend.h"
#include "manifest.h"
#include "repo.h"

#include <stddef.h>
#include <stdint.h>

/* Bounds on what a list file may hold. */
#define BFS_TROVE_LIST_MAX_BYTES   (64u << 20)
#define BFS_TROVE_LIST_MAX_ENTRIES 1000000u
/* The longest pass phrase a key file may hold (OpenSSL's bound too). */
#define BFS_TROVE_PASS_MAX 4096

/* One backup of the list.  Strings are owned; NULL when absent. */
struct bfs_trove_entry {
	size_t index; /* position in the list, from 0 */
	char *id;     /* Trove's backup id, a UUID */
	char *name;
	char *instance_id;
	char *status;
	char *parent_id;
	char *location;	 /* locationRef */
	char *checksum;	 /* Trove's checksum, where the list has one */
	char *datastore; /* datastore type */
	char *datastore_version;
	/* created (else updated) as "YYYY-MM-DDTHH:MM:SSZ", or "" when
	 * neither is there or parses (then bad says why) */
	char timestamp[BFS_TIMESTAMP_LEN + 1];
	char bad[160]; /* why the entry is unusable, or "" */
};

struct bfs_trove_list {
	struct bfs_trove_entry *v;
	size_t n;
};

/*
 * Parse a list of one of the three shapes: 0, or -EINVAL with a reason
 * in err when it is none of them.  An entry with a bad field is kept
 * with ->bad said, so the import can report it.
 */
int bfs_trove_list_parse(const char *text, size_t len,
			 struct bfs_trove_list *out, char *err, size_t errlen);
/* The same from a file (at most BFS_TROVE_LIST_MAX_BYTES). */
int bfs_trove_list_load(const char *path, struct bfs_trove_list *out, char *err,
			size_t errlen);
void bfs_trove_list_release(struct bfs_trove_list *l);

/*
 * A Trove time ("2014-10-30T12:30:00", optionally with fractions, "Z" or
 * an offset such as "+02:00"; a space for the "T" too; no zone means
 * UTC) as a UTC timestamp "YYYY-MM-DDTHH:MM:SSZ" (fractions dropped):
 * 0, or -EINVAL.
 */
int bfs_trove_time_normalize(const char *in, char out[BFS_TIMESTAMP_LEN + 1]);

/*
 * Read Trove's backup_aes_cbc_key from a file: a regular file that only
 * its owner may access (mode 0600, as every secret file), the pass
 * phrase on one line (a final newline is not part of it).  *pass is new
 * (free with bfs_trove_pass_free()).  -EPERM, -EINVAL, -errno with a
 * reason in err that never holds the key.
 */
int bfs_trove_key_file_read(const char *path, char **pass, char *err,
			    size_t errlen);
/* Wipe and free a pass phrase. */
void bfs_trove_pass_free(char *pass);

/*
 * The name of the key record of a pass phrase: "trove-" and the first 8
 * bytes of HMAC-SHA256(id key, pass) in hex.
 */
#define BFS_TROVE_KEY_NAME_LEN 22
void bfs_trove_key_name(const struct bfs_keys *keys, const char *pass,
			char out[BFS_TROVE_KEY_NAME_LEN + 1]);

enum bfs_trove_result {
	BFS_TROVE_IMPORTED = 0,
	BFS_TROVE_ALREADY, /* a manifest of this backup exists */
	BFS_TROVE_SKIPPED, /* not COMPLETED */
	BFS_TROVE_MISSING, /* no object for it in the container */
	BFS_TROVE_FAILED,  /* anything else: reason says what */
};
#define BFS_TROVE_NRESULTS 5

/* "imported", "already imported", "skipped", "missing", "failed" */
const char *bfs_trove_result_name(int result);

/* What became of one entry.  Valid during the report callback only. */
struct bfs_trove_outcome {
	int result; /* enum bfs_trove_result */
	const struct bfs_trove_entry *entry;
	const char *id;	       /* entry->id, or "(entry N)" */
	const char *instance;  /* NULL when not known */
	const char *timestamp; /* NULL when not known */
	const char *object;    /* NULL when not found */
	uint64_t size;	       /* plaintext bytes (imported) */
	const char *layout;    /* "single", "dlo", "slo" or NULL */
	const char *kdf;       /* "none", "pbkdf2-sha512", ... */
	const char *reason;    /* "" when imported */
};

typedef void (*bfs_trove_report_fn)(const struct bfs_trove_outcome *o,
				    void *arg);

struct bfs_trove_import {
	struct bfs_repo *repo;	    /* borrowed */
	struct bfs_backend *legacy; /* borrowed: the legacy container */
	const char *container;	    /* its name */
	const char *state_dir;	    /* index files go to <it>/trove/ */
	const char *pass;	    /* a pass phrase given now, or NULL */
	bfs_trove_report_fn report;
	void *arg;
};

/*
 * Import every entry of list, oldest first (so parents come before
 * their incremental children), reporting each outcome as it is known;
 * counts[result] gets how many of each.  An entry that fails is reported
 * and the others still imported.  Returns 0, or -errno when the run
 * itself could not go on (out of memory).
 */
int bfs_trove_import_run(const struct bfs_trove_import *imp,
			 const struct bfs_trove_list *list,
			 unsigned counts[BFS_TROVE_NRESULTS]);

#endif
