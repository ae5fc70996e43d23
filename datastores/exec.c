// SPDX-License-Identifier: Apache-2.0
/*
 * Running a database's own tools: through the instance's exec prefix,
 * as its OS user, stdout streamed into a sink (or kept), stderr kept
 * for the reason, the exit status mapped to errno in one place.
 *
 * Children are started with posix_spawn (safe in a multi-threaded
 * daemon), in their own process group so a timeout or a failing sink
 * stops the tool and whatever it started (ssh, a pipeline), with the
 * default signal dispositions and an empty signal mask.
 */
#include "crypto.h"
#include "ds_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define EXEC_OUT_BLOCK (256 * 1024)
#define EXEC_ERR_KEEP  4096 /* the last bytes of stderr we keep */
#define EXEC_KILL_WAIT 5    /* seconds between SIGTERM and SIGKILL */
#define EXEC_ARGS_MAX  256

/* ---- the prefix ------------------------------------------------------ */

void ds_argv_free(char **argv)
{
	char **p;

	for (p = argv; p && *p; p++)
		free(*p);
	free(argv);
}

int ds_conf_str(json_t *conf, const char *key, const char *dflt, char **out)
{
	json_t *v = json_object_get(conf, key);

	*out = NULL;
	if (v && (!json_is_string(v) || !json_string_length(v) ||
		  strlen(json_string_value(v)) != json_string_length(v)))
		return -EINVAL;
	if (!v && !dflt)
		return 0;
	*out = strdup(v ? json_string_value(v) : dflt);
	return *out ? 0 : -ENOMEM;
}

int ds_conf_port(json_t *conf, char out[8])
{
	json_t *v = json_object_get(conf, "port");

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 65535)
		return -EINVAL;
	snprintf(out, 8, "%d", (int)json_integer_value(v));
	return 0;
}

int ds_argv_from_json(json_t *arr, char ***out)
{
	char **argv;
	json_t *v;
	size_t i;

	*out = NULL;
	if (!json_is_array(arr) || json_array_size(arr) > EXEC_ARGS_MAX)
		return -EINVAL;
	argv = calloc(json_array_size(arr) + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			ds_argv_free(argv);
			return -EINVAL;
		}
		argv[i] = strdup(json_string_value(v));
		if (!argv[i]) {
			ds_argv_free(argv);
			return -ENOMEM;
		}
	}
	*out = argv;
	return 0;
}

int ds_exec_parse(json_t *conf, struct ds_exec *x, char *err, size_t errlen)
{
	json_t *p = json_object_get(conf, "exec_prefix");
	const char *base;
	int rc;

	memset(x, 0, sizeof(*x));
	if (!p)
		p = json_array();
	else
		json_incref(p);
	rc = ds_argv_from_json(p, &x->prefix);
	json_decref(p);
	if (rc == -EINVAL)
		snprintf(err, errlen,
			 "\"exec_prefix\" must be an array of strings");
	if (rc)
		return rc;
	if (x->prefix[0]) {
		base = strrchr(x->prefix[0], '/');
		base = base ? base + 1 : x->prefix[0];
		/* ssh hands its arguments to the remote shell as one line. */
		x->remote_shell = !strcmp(base, "ssh");
	}
	return 0;
}

void ds_exec_release(struct ds_exec *x)
{
	ds_argv_free(x->prefix);
	x->prefix = NULL;
}

char *ds_shell_quote(const char *s)
{
	size_t n = 2, i;
	char *q, *p;

	for (i = 0; s[i]; i++)
		n += s[i] == '\'' ? 4 : 1;
	q = malloc(n + 1);
	if (!q)
		return NULL;
	p = q;
	*p++ = '\'';
	for (i = 0; s[i]; i++) {
		if (s[i] == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = s[i];
		}
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

/* The words after the prefix: runuser for another user, then argv. */
static int exec_words(const struct ds_cmd *cmd, const char **words, size_t cap)
{
	size_t n = 0, i;

	if (cmd->user) {
		words[n++] = "runuser";
		words[n++] = "-u";
		words[n++] = cmd->user;
		words[n++] = "--";
	}
	for (i = 0; cmd->argv[i]; i++) {
		if (n + 1 >= cap)
			return -E2BIG;
		words[n++] = cmd->argv[i];
	}
	words[n] = NULL;
	return 0;
}

/* One line for a remote shell (new string). */
static char *exec_join_quoted(const char *const *words)
{
	size_t len = 0, n;
	char *line = NULL, *q, *grown;

	for (; *words; words++) {
		q = ds_shell_quote(*words);
		if (!q)
			goto out_fail;
		n = strlen(q);
		grown = realloc(line, len + n + 2);
		if (!grown) {
			free(q);
			goto out_fail;
		}
		line = grown;
		if (len)
			line[len++] = ' ';
		memcpy(line + len, q, n + 1);
		len += n;
		free(q);
	}
	return line ? line : strdup("");
out_fail:
	free(line);
	return NULL;
}

/* The full argv (new array of borrowed strings but *line, new). */
static int exec_full_argv(const struct ds_exec *x, const struct ds_cmd *cmd,
			  const char ***out, char **line)
{
	const char *words[EXEC_ARGS_MAX + 8];
	const char **argv;
	size_t np = 0, nw = 0, i;
	int rc;

	*line = NULL;
	rc = exec_words(cmd, words, EXEC_ARGS_MAX + 8);
	if (rc)
		return rc;
	while (x && x->prefix && x->prefix[np])
		np++;
	while (words[nw])
		nw++;
	argv = calloc(np + nw + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (i = 0; i < np; i++)
		argv[i] = x->prefix[i];
	if (np && x->remote_shell) {
		*line = exec_join_quoted(words);
		if (!*line) {
			free(argv);
			return -ENOMEM;
		}
		argv[np] = *line;
	} else {
		memcpy(argv + np, words, nw * sizeof(*argv));
	}
	*out = argv;
	return 0;
}

/* environ plus extra (new array of borrowed strings). */
static const char **exec_env(const char *const *extra)
{
	size_t n = 0, m = 0, i, k;
	const char **env;

	while (environ[n])
		n++;
	while (extra && extra[m])
		m++;
	env = calloc(n + m + 1, sizeof(*env));
	if (!env)
		return NULL;
	k = 0;
	for (i = 0; i < n; i++) {
		size_t j, klen = strcspn(environ[i], "=");
		int shadowed = 0;

		for (j = 0; j < m; j++)
			if (!strncmp(extra[j], environ[i], klen + 1))
				shadowed = 1;
		if (!shadowed)
			env[k++] = environ[i];
	}
	for (i = 0; i < m; i++)
		env[k++] = extra[i];
	return env;
}

/* ---- the child ------------------------------------------------------- */

struct exec_run {
	struct ds_cmd *cmd;
	const char *tool; /* borrowed: the basename of argv[0] */
	pid_t pid;
	int out_fd; /* stdout's pipe, -1 once closed */
	int err_fd; /* stderr's pipe */
	char *outbuf;
	size_t cap_len; /* bytes in cmd->capture */
	char errtail[EXEC_ERR_KEEP + 1];
	size_t err_len;
	int sink_rc; /* the sink's error */
	int timed_out;
};

static int exec_spawn(struct exec_run *r, const char *const *argv,
		      const char *const *env)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	sigset_t none, deflt;
	int rc;

	if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
		rc = -errno;
		goto out_pipes;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	if (r->cmd->in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, r->cmd->in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
						 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	sigemptyset(&none);
	sigfillset(&deflt);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &deflt);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
					      POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	rc = -posix_spawnp(&r->pid, argv[0], &fa, &at, (char *const *)argv,
			   (char *const *)env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
out_pipes:
	if (outp[1] >= 0)
		close(outp[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	if (rc) {
		if (outp[0] >= 0)
			close(outp[0]);
		if (errp[0] >= 0)
			close(errp[0]);
		return rc;
	}
	r->out_fd = outp[0];
	r->err_fd = errp[0];
	return 0;
}

/* Keep the last EXEC_ERR_KEEP bytes of stderr, NUL-terminated. */
static void exec_keep_err(struct exec_run *r, const char *buf, size_t n)
{
	if (n >= EXEC_ERR_KEEP) {
		memcpy(r->errtail, buf + n - EXEC_ERR_KEEP, EXEC_ERR_KEEP);
		r->err_len = EXEC_ERR_KEEP;
	} else {
		if (r->err_len + n > EXEC_ERR_KEEP) {
			size_t drop = r->err_len + n - EXEC_ERR_KEEP;

			memmove(r->errtail, r->errtail + drop,
				r->err_len - drop);
			r->err_len -= drop;
		}
		memcpy(r->errtail + r->err_len, buf, n);
		r->err_len += n;
	}
	r->errtail[r->err_len] = '\0';
}

/* Hand stdout bytes on; a failing sink stops the tool. */
static void exec_take_out(struct exec_run *r, const char *buf, size_t n)
{
	struct ds_cmd *c = r->cmd;
	size_t room;
	int rc;

	if (c->progress)
		c->progress->done += n;
	if (c->out) {
		if (r->sink_rc)
			return;
		rc = c->out(c->out_arg, buf, n);
		if (rc) {
			r->sink_rc = rc < 0 ? rc : -EIO;
			kill(-r->pid, SIGTERM);
		}
	} else if (c->capture && c->capture_cap) {
		room = c->capture_cap - 1 - r->cap_len;
		if (n > room)
			n = room;
		memcpy(c->capture + r->cap_len, buf, n);
		r->cap_len += n;
		c->capture[r->cap_len] = '\0';
	}
}

/* Read what is there; -1 on EOF of fd. */
static int exec_drain(struct exec_run *r, int fd)
{
	char small[4096];
	char *buf = fd == r->out_fd ? r->outbuf : small;
	size_t cap = fd == r->out_fd ? EXEC_OUT_BLOCK : sizeof(small);
	ssize_t n;

	n = read(fd, buf, cap);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	if (fd == r->out_fd)
		exec_take_out(r, buf, (size_t)n);
	else
		exec_keep_err(r, buf, (size_t)n);
	return 0;
}

static double exec_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Pump both pipes until the tool closes them (or runs out of time). */
static void exec_pump(struct exec_run *r)
{
	double deadline = r->cmd->timeout ? exec_now() + r->cmd->timeout : 0;
	double killed_at = 0;
	struct pollfd p[2];
	int n, ms;

	while (r->out_fd >= 0 || r->err_fd >= 0) {
		n = 0;
		if (r->out_fd >= 0)
			p[n++] = (struct pollfd){.fd = r->out_fd,
						 .events = POLLIN};
		if (r->err_fd >= 0)
			p[n++] = (struct pollfd){.fd = r->err_fd,
						 .events = POLLIN};
		ms = 1000;
		if (poll(p, (nfds_t)n, ms) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (exec_drain(r, p[i].fd) < 0) {
				close(p[i].fd);
				if (p[i].fd == r->out_fd)
					r->out_fd = -1;
				else
					r->err_fd = -1;
			}
		}
		if (deadline && !r->timed_out && exec_now() > deadline) {
			r->timed_out = 1;
			kill(-r->pid, SIGTERM);
		}
		if ((r->timed_out || r->sink_rc) && !killed_at)
			killed_at = exec_now();
		if (killed_at && exec_now() > killed_at + EXEC_KILL_WAIT)
			kill(-r->pid, SIGKILL);
	}
}

static int exec_wait(struct exec_run *r)
{
	int st;

	while (waitpid(r->pid, &st, 0) < 0)
		if (errno != EINTR)
			return 128;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- status to errno: the one place ---------------------------------- */

static const struct {
	const char *text;
	int err;
} exec_errs[] = {
	{"No space left on device", ENOSPC},
	{"Disk quota exceeded", EDQUOT},
	{"Permission denied", EACCES},
	{"Operation not permitted", EPERM},
	{"Connection refused", ECONNREFUSED},
	{"could not connect to server", ECONNREFUSED},
	{"Can't connect to", ECONNREFUSED},
	{"Read-only file system", EROFS},
	{"timed out", ETIMEDOUT},
};

static int exec_errno(const struct exec_run *r, int status)
{
	size_t i;

	if (r->sink_rc)
		return r->sink_rc;
	if (r->timed_out)
		return -ETIMEDOUT;
	if (status == 127)
		return -ENOENT; /* the shell or runuser found no such tool */
	for (i = 0; i < sizeof(exec_errs) / sizeof(exec_errs[0]); i++)
		if (strcasestr(r->errtail, exec_errs[i].text))
			return -exec_errs[i].err;
	return -EIO;
}

/* The last non-empty line of stderr, trimmed, in line[cap]. */
static void exec_last_line(const struct exec_run *r, char *line, size_t cap)
{
	const char *end = r->errtail + r->err_len, *start;

	while (end > r->errtail &&
	       (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	start = end;
	while (start > r->errtail && start[-1] != '\n')
		start--;
	snprintf(line, cap, "%.*s", (int)(end - start), start);
}

/* Log the tool's error output once, a line at a time (syslog keeps
 * lines), at debug level when the failure was expected. */
static void exec_log_err(struct exec_run *r, int status)
{
	enum bfs_log_level lvl = r->cmd->quiet ? BFS_LOG_DEBUG : BFS_LOG_ERR;
	char *line, *save = NULL;

	bfs_log(lvl, "'%s' exited with status %d%s", r->tool, status,
		r->err_len ? "; its error output follows" : "");
	r->errtail[r->err_len] = '\0';
	for (line = strtok_r(r->errtail, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		bfs_log(lvl, "'%s': %s", r->tool, line);
}

static int exec_failed(struct exec_run *r, int status, char *err, size_t errlen)
{
	int rc = exec_errno(r, status);
	char line[512];

	exec_last_line(r, line, sizeof(line));
	if (r->sink_rc)
		snprintf(err, errlen, "%s: cannot store its output: %s",
			 r->tool, strerror(-rc));
	else if (r->timed_out)
		snprintf(err, errlen, "%s did not finish within %d s", r->tool,
			 r->cmd->timeout);
	else if (status == 127 && !line[0])
		snprintf(err, errlen, "%s: command not found", r->tool);
	else if (status > 128)
		snprintf(err, errlen, "%s was killed by signal %d%s%s", r->tool,
			 status - 128, line[0] ? ": " : "", line);
	else
		snprintf(err, errlen, "%s failed (exit status %d)%s%s", r->tool,
			 status, line[0] ? ": " : "", line);
	exec_log_err(r, status);
	return rc;
}

int ds_run(const struct ds_exec *x, struct ds_cmd *cmd, char *err,
	   size_t errlen)
{
	struct exec_run *r;
	const char **argv = NULL, **env = NULL;
	char *line = NULL;
	int rc;

	if (!cmd->argv || !cmd->argv[0])
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cmd = cmd;
	r->out_fd = r->err_fd = -1;
	r->tool = strrchr(cmd->argv[0], '/');
	r->tool = r->tool ? r->tool + 1 : cmd->argv[0];
	if (cmd->capture && cmd->capture_cap)
		cmd->capture[0] = '\0';
	r->outbuf = malloc(EXEC_OUT_BLOCK);
	rc = r->outbuf ? exec_full_argv(x, cmd, &argv, &line) : -ENOMEM;
	if (!rc) {
		env = exec_env(cmd->env);
		rc = env ? 0 : -ENOMEM;
	}
	if (!rc)
		rc = exec_spawn(r, argv, env);
	if (rc) {
		snprintf(err, errlen, "cannot run %s: %s", r->tool,
			 strerror(-rc));
		goto out_free;
	}
	bfs_debug("running '%s' (pid %d)", r->tool, (int)r->pid);
	exec_pump(r);
	cmd->status = exec_wait(r);
	if (cmd->err_tail && cmd->err_tail_cap) {
		size_t n = r->err_len < cmd->err_tail_cap - 1
				   ? r->err_len
				   : cmd->err_tail_cap - 1;

		memcpy(cmd->err_tail, r->errtail + r->err_len - n, n);
		cmd->err_tail[n] = '\0';
	}
	if (cmd->status || r->sink_rc || r->timed_out)
		rc = exec_failed(r, cmd->status, err, errlen);
out_free:
	free(env);
	free(argv);
	free(line);
	free(r->outbuf);
	free(r);
	return rc;
}

int ds_run_argv(const struct ds_exec *x, const char *user,
		const char *const *argv, char *err, size_t errlen)
{
	struct ds_cmd cmd = {.argv = argv, .user = user, .in_fd = -1};

	return ds_run(x, &cmd, err, errlen);
}

/* ---- secrets for the tools ------------------------------------------- */

int ds_secret_file(const char *path, char *out, size_t cap, char *err,
		   size_t errlen)
{
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", path,
			 strerror(-rc));
		return rc;
	}
	rc = bfs_key_file_check_mode(fd, path, err, errlen);
	if (!rc) {
		n = bfs_read_all(fd, out, cap);
		if (n < 0)
			rc = (int)n;
		else if ((size_t)n >= cap)
			rc = -EFBIG;
		else
			out[n] = '\0';
		if (rc)
			snprintf(err, errlen, "cannot read '%s': %s", path,
				 strerror(-rc));
	}
	close(fd);
	if (!rc) {
		out[strcspn(out, "\r\n")] = '\0';
		if (!out[0]) {
			snprintf(err, errlen, "'%s' is empty", path);
			rc = -EINVAL;
		}
	}
	return rc;
}
