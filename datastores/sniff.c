// SPDX-License-Identifier: Apache-2.0
/*
 * What a backup stream is, from its first bytes: so that restoring a
 * backup of one datastore into an instance of another fails with a
 * reason that says what the file is, before anything is touched.
 */
#include "ds_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define SNIFF_BYTES 512

static const struct {
	const char *magic;
	size_t off;
	enum ds_kind kind;
} sniff_magics[] = {
	{"PGDMP", 0, DS_KIND_PG_DUMP},
	{"XBSTCK01", 0, DS_KIND_XBSTREAM},
	{"-- MariaDB dump", 0, DS_KIND_SQL_DUMP},
	/* mariadb-dump since 10.11.8 starts with this line, which tells
	 * the mariadb client to refuse its shell and file commands */
	{"/*M!999999\\- enable the sandbox mode */", 0, DS_KIND_SQL_DUMP},
	{"-- MySQL dump", 0, DS_KIND_SQL_DUMP},
	{"{\"backupfs_couchdb\"", 0, DS_KIND_COUCH_JSON},
	{"ustar", 257, DS_KIND_TAR},
};

static const char *const sniff_names[] = {
	[DS_KIND_UNKNOWN] = "not a backup backupfs knows",
	[DS_KIND_PG_DUMP] = "a PostgreSQL pg_dump archive",
	[DS_KIND_XBSTREAM] = "a MariaDB mariabackup stream",
	[DS_KIND_SQL_DUMP] = "a MariaDB SQL dump",
	[DS_KIND_COUCH_JSON] = "a CouchDB JSON backup",
	[DS_KIND_TAR] = "a tar archive",
};

const char *ds_kind_name(enum ds_kind kind)
{
	return sniff_names[kind];
}

int ds_sniff(const char *path, enum ds_kind *kind)
{
	char buf[SNIFF_BYTES];
	ssize_t n;
	size_t i, len;
	int fd;

	*kind = DS_KIND_UNKNOWN;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return -errno;
	for (i = 0; i < sizeof(sniff_magics) / sizeof(sniff_magics[0]); i++) {
		len = strlen(sniff_magics[i].magic);
		if ((size_t)n >= sniff_magics[i].off + len &&
		    !memcmp(buf + sniff_magics[i].off, sniff_magics[i].magic,
			    len)) {
			*kind = sniff_magics[i].kind;
			break;
		}
	}
	return 0;
}
