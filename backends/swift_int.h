/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the "swift" backend, shared by its source files:
 *
 *   swift.c       the backend ops and open/destroy
 *   swift_conf.c  the config object and the environment (ST_*, OS_*)
 *   swift_http.c  the connection pool and one request with its retries,
 *                 and the one place HTTP statuses and curl codes become
 *                 errno values
 *   swift_resp.c  the libcurl callbacks (headers, bodies), the checks of
 *                 an answer, percent-encoding
 *   swift_auth.c  tempauth v1 and Keystone v3, the token under a mutex
 *
 * After open, everything but the token state and the pool is read-only,
 * so every op may run in many threads at once.
 */
#ifndef BFS_SWIFT_INT_H
#define BFS_SWIFT_INT_H

#include "backend.h"
#include "buf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Swift's own limits (swift.common.constraints defaults). */
#define SWIFT_CONTAINER_MAX 256
#define SWIFT_OBJECT_MAX    1024
#define SWIFT_LISTING_MAX   10000
/* Bounds on what the network may hand us. */
#define SWIFT_TOKEN_MAX	    8192
#define SWIFT_URL_MAX	    2048
#define SWIFT_SECRET_MAX    4096
#define SWIFT_AUTH_BODY_MAX (4u << 20)
#define SWIFT_NATIVE_MAX    200 /* bytes of an error body we log */
#define SWIFT_MAX_HDRS	    8

enum swift_auth_kind {
	SWIFT_AUTH_V1,	       /* tempauth (or anything speaking v1.0) */
	SWIFT_AUTH_V3,	       /* Keystone v3: password */
	SWIFT_AUTH_V3_APPCRED, /* Keystone v3: application credential */
	SWIFT_AUTH_TOKEN,      /* a preset token and storage URL only */
};

/* The parsed configuration; every string is owned (secrets cleansed). */
struct swift_conf {
	enum swift_auth_kind kind;
	char *auth_url; /* v1: as given; v3: ends in "/v3" */
	char *user, *user_id, *user_domain, *user_domain_id;
	char *project, *project_id, *project_domain, *project_domain_id;
	char *region;
	char *interface; /* public, internal or admin */
	char *secret;	 /* key, password or application credential secret */
	char *appcred_id;
	char *container;
	char *cacert;
	int insecure;
	long timeout_ms;  /* one request */
	long deadline_ms; /* one operation, retries included */
	int connections;
	int list_limit;
	int create_container; /* at open, when missing (default 1) */
	/* From OS_STORAGE_URL / OS_AUTH_TOKEN: used instead of the
	 * catalog's URL, and as the first token. */
	char *preset_url;
	char *preset_token;
};

int swift_conf_parse(json_t *conf, struct swift_conf *c, char *err,
		     size_t errlen);
void swift_conf_release(struct swift_conf *c);

/* The token and storage URL: fields under lock, replaced as a whole. */
struct swift_token {
	pthread_mutex_t lock;
	/* Held while (re)authenticating, so one thread does it and the
	 * others then take its result. */
	pthread_mutex_t auth_lock;
	char *token;
	char *url;	     /* account URL, no trailing '/' */
	uint64_t expires_ms; /* monotonic; 0 = unknown, never refreshed early */
	uint64_t refresh_ms; /* monotonic: refresh from then on */
	unsigned generation; /* bumped by every new token */
	unsigned auth_count; /* authentications so far (tests) */
};

/* A copy of the token for one operation (cleansed by swift_cred_clear). */
struct swift_cred {
	char *token;
	char *url;
	unsigned generation;
};

/* Easy handles, reused for keep-alive; at most conf.connections in use. */
struct swift_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	CURL **idle;
	int nidle;
	int in_use;
	int max;
};

struct swift_backend {
	struct bfs_backend base;
	struct swift_conf conf;
	struct swift_token tok;
	struct swift_pool pool;
	/* DNS and TLS sessions are shared between the handles.  Not the
	 * connection cache: libcurl does not support sharing it between
	 * concurrent threads (KNOWN_BUGS "A shared connection cache is not
	 * thread-safe"); each pooled handle keeps its own connections. */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	char *container_enc; /* URL-encoded container name */
	int http_ready;	     /* swift_http_init() succeeded */
	int auth_ready;	     /* swift_auth_init() succeeded */
};

/*
 * One HTTP exchange.  The caller fills the request half and calls
 * swift_run(); the response half is reset before every attempt.
 */
struct swift_req {
	/* request */
	const char *method; /* GET, HEAD, PUT, DELETE, POST */
	const char *what;   /* for messages: object or container name */
	const char *label;  /* for messages instead of method and what */
	const char *url;    /* absolute URL (auth), or NULL: */
	const char *path;   /* encoded path below the storage URL */
	const char *query;  /* encoded query without '?', or NULL */
	const char *hdrs[SWIFT_MAX_HDRS]; /* extra header lines, NULL ended */
	const void *body;		  /* PUT / POST body */
	size_t body_len;
	struct bfs_buf *out; /* 2xx body appended here, or NULL */
	int authed;	     /* send the token (storage requests) */
	int auth_hdrs;	     /* collect token headers (auth requests) */
	int excl;	     /* If-None-Match: * sent: 412 means EEXIST */
	int ranged;	     /* Range: bytes=range_off-... sent */
	uint64_t range_off;
	uint64_t range_len;   /* 0: to the end */
	int verify_md5;	      /* whole plain object: body MD5 = ETag */
	const char *put_md5;  /* PUT: the response ETag must be this */
	uint64_t deadline_ms; /* 0: now + conf.deadline_ms */
	char *err;	      /* at open: the reason goes here, not the log */
	size_t errlen;

	/* response */
	long status;
	int64_t clen; /* Content-Length, -1 unknown */
	char etag[72];
	char claim[40];			     /* X-Object-Meta-Bfs-Claim */
	int64_t cr_first, cr_last, cr_total; /* Content-Range, -1 unknown */
	long retry_after;		     /* seconds, -1 none */
	int manifest;			     /* SLO or DLO */
	int layout;			     /* enum bfs_object_layout */
	char meta_ds[BFS_INFO_META_MAX];     /* X-Object-Meta-Datastore */
	char meta_dsv[BFS_INFO_META_MAX];    /* ...-Datastore-Version */
	uint64_t got;			     /* body bytes seen */
	size_t out_start;		     /* out->len before the attempt */
	uint64_t skip, take;		     /* window for an ignored Range */
	int cb_err;			     /* -errno from a callback */
	const char *fault;		     /* a transfer fault found */
	char native[SWIFT_NATIVE_MAX + 1];   /* error body, for messages */
	size_t native_len;
	size_t upload_pos;
	char *hdr_token;  /* auth: X-Auth-Token / X-Subject-Token */
	char *hdr_url;	  /* auth: X-Storage-Url */
	long hdr_expires; /* auth: X-Auth-Token-Expires, -1 none */
	int attempts;
	int ambiguous; /* an attempt failed after the server may have acted */
	char msg[384]; /* why the last attempt failed */
};

/* swift_http.c; init undoes its own partial work when it fails */
int swift_http_init(struct swift_backend *sb);
void swift_http_release(struct swift_backend *sb);
/* Perform r with retries and auth; 0 or -errno (logged once). */
int swift_run(struct swift_backend *sb, struct swift_req *r);
/* The same with a handle the caller holds (auth inside a request). */
int swift_exec(struct swift_backend *sb, CURL *curl, struct swift_req *r);
void swift_req_release(struct swift_req *r);
uint64_t swift_now_ms(void);

/* swift_resp.c */
/* Percent-encode every byte but unreserved ones (and '/' if keep_slash):
 * a new string, or NULL. */
char *swift_encode(const char *s, int keep_slash);
/* MD5 as 32 lower-case hex digits. */
int swift_md5_hex(const void *data, size_t len, char hex[33]);
/* Forget the answer of an earlier attempt (and its part of r->out). */
void swift_resp_reset(struct swift_req *r);
/* libcurl callbacks; their data is the request. */
size_t swift_header_cb(char *buf, size_t size, size_t n, void *arg);
size_t swift_write_cb(char *buf, size_t size, size_t n, void *arg);
size_t swift_read_cb(char *buf, size_t size, size_t n, void *arg);
int swift_seek_cb(void *arg, curl_off_t off, int origin);
/* What is wrong with a 2xx answer, or NULL. */
const char *swift_check_body(const struct swift_req *r);

/* swift_auth.c; init undoes its own partial work when it fails */
int swift_auth_init(struct swift_backend *sb);
void swift_auth_release(struct swift_backend *sb);
/* A copy of a fresh token for one request (authenticates if needed). */
int swift_cred_get(struct swift_backend *sb, CURL *curl, uint64_t deadline,
		   struct swift_cred *cred, char *err, size_t errlen);
/* The server refused cred: authenticate again unless another thread has
 * done so since cred was taken. */
int swift_cred_renew(struct swift_backend *sb, CURL *curl, uint64_t deadline,
		     struct swift_cred *cred, char *err, size_t errlen);
void swift_cred_clear(struct swift_cred *cred);

/* Free a secret string: wiped first. */
void swift_free_secret(char *s);

/*
 * Tests only: replace the current token, as if the server had revoked it
 * (expires_in_s > 0 also sets its remaining lifetime), and count the
 * authentications made so far.  be must be a swift backend.
 */
void bfs_swift_test_set_token(struct bfs_backend *be, const char *token,
			      long expires_in_s);
unsigned bfs_swift_test_auth_count(struct bfs_backend *be);

#endif
