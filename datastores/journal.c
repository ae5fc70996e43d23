// SPDX-License-Identifier: Apache-2.0
/*
 * Journals of the datastore drivers: small JSON files that a crash
 * leaves whole, old or new, never half written.
 */
#include "ds_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DS_JOURNAL_MAX 65536

static int fsync_dir(const char *dir)
{
	int fd, rc = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

int ds_journal_write(const char *dir, const char *name, json_t *j)
{
	char *path = NULL, *tmp = NULL, *text;
	int fd, rc;

	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	rc = -ENOMEM;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		goto out_text;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		goto out_path;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out_tmp;
	}
	rc = bfs_write_all(fd, text, strlen(text));
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	else
		rc = fsync_dir(dir);
	if (rc)
		bfs_err("cannot write journal '%s': %s", path, strerror(-rc));
out_tmp:
	free(tmp);
out_path:
	free(path);
out_text:
	free(text);
	return rc;
}

int ds_journal_read(const char *dir, const char *name, json_t **out)
{
	json_error_t jerr;
	char *path;
	char *text;
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out_path;
	}
	text = malloc(DS_JOURNAL_MAX);
	if (!text) {
		rc = -ENOMEM;
		goto out_fd;
	}
	n = read(fd, text, DS_JOURNAL_MAX);
	if (n < 0)
		rc = -errno;
	else if (!(*out = json_loadb(text, (size_t)n, 0, &jerr)) ||
		 !json_is_object(*out)) {
		bfs_err("journal '%s' is corrupt: %s", path, jerr.text);
		json_decref(*out);
		*out = NULL;
		rc = -EBADMSG;
	}
	free(text);
out_fd:
	close(fd);
out_path:
	free(path);
	return rc;
}

int ds_journal_remove(const char *dir, const char *name)
{
	char *path;
	int rc = 0;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (unlink(path) && errno != ENOENT)
		rc = -errno;
	free(path);
	return rc ? rc : fsync_dir(dir);
}

int ds_random_hex(char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[8];
	size_t i;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	for (i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[16] = '\0';
	return 0;
}
