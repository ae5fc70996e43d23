#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# MariaDB 10.11 on 127.0.0.1:3307, for the test suite (facts:
# reference/test-servers.md section 5).
#
#   tools/mariadb-server.sh start    mariadb-install-db when there is no data
#                                    directory yet, then mariadbd in the
#                                    background; returns once it answers
#                                    (nothing to do when it runs and answers
#                                    already)
#   tools/mariadb-server.sh stop     SIGTERM, and wait until it has exited
#   tools/mariadb-server.sh status   exit 0 only when it runs and answers
#   tools/mariadb-server.sh env      KEY=VALUE lines: where it is and the
#                                    exact argv that starts and stops it
#                                    (JSON arrays: this script's start and
#                                    stop with its state directory and port)
#
# State in $BACKUPFS_MARIADB_DIR, default /var/tmp/backupfs-mariadb: data/,
# run/ (socket, PID files), log/.  The port is $BACKUPFS_MARIADB_PORT, else
# the one of the last start, else 3307.  root@localhost has an empty
# password (--auth-root-authentication-method=normal), over the socket and
# TCP.  Every MariaDB tool runs with --no-defaults first: otherwise it reads
# /etc/mysql (socket /run/mysqld/mysqld.sock, a datadir for mariabackup).
#
# start works on a data directory that a restore has just replaced: files
# that do not belong to mysql are given to it (mariadbd runs as mysql).
# Runs as root, without systemd: mariadbd is a plain background process
# leading its own process group, its PID in run/server.pid.
# Needs: mariadb-server mariadb-client (mariadb-backup for backups).
set -euo pipefail

PATH=${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
state=${BACKUPFS_MARIADB_DIR:-/var/tmp/backupfs-mariadb}
os_user=mysql
db_user=root
data=$state/data
run=$state/run
log=$state/log
sock=$run/mariadb.sock
pid_file=$run/server.pid
err_log=$log/mariadbd.err
mariadbd=/usr/sbin/mariadbd

READY_TIMEOUT=60 # seconds for the server to answer a ping
STOP_TIMEOUT=60  # seconds to exit after SIGTERM (InnoDB shutdown)

say()
{
	echo "mariadb-server: $*"
}

die()
{
	echo "mariadb-server: $*" >&2
	exit 1
}

usage()
{
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
}

case "$state" in
/*) ;;
*) die "BACKUPFS_MARIADB_DIR must be an absolute path: '$state'" ;;
esac

port=${BACKUPFS_MARIADB_PORT:-$(cat "$state/port" 2>/dev/null || echo 3307)}
case "$port" in
'' | *[!0-9]*) die "bad port '$port'" ;;
esac

# What start and stop are for a caller (the mariadb driver's service
# overrides): this script, told its state directory and port.
start_argv=(/usr/bin/env "BACKUPFS_MARIADB_DIR=$state"
	"BACKUPFS_MARIADB_PORT=$port" "$self" start)
stop_argv=(/usr/bin/env "BACKUPFS_MARIADB_DIR=$state"
	"BACKUPFS_MARIADB_PORT=$port" "$self" stop)

json_argv()
{
	local a out='[' sep=''
	for a in "$@"; do
		a=${a//\\/\\\\}
		a=${a//\"/\\\"}
		out+="$sep\"$a\""
		sep=','
	done
	printf '%s]' "$out"
}

# --------------------------------------------------------------------------
# Processes.  Zombies are reaped late on this machine (no real init): a
# zombie counts as gone.  A recorded PID counts as ours only while its
# command line names our data directory (PID reuse).

alive()
{
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st:0:1}" != Z ]
}

server_pid()
{
	local pid
	pid=$(cat "$pid_file" 2>/dev/null) || return 1
	case "$pid" in
	'' | *[!0-9]*) return 1 ;;
	esac
	alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
		grep -qF -- "--datadir=$data " || return 1
	echo "$pid"
}

answers()
{
	mariadb-admin --no-defaults -S "$sock" -u"$db_user" \
		--connect-timeout=2 ping >/dev/null 2>&1
}

port_busy()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_tools()
{
	local t
	[ -x "$mariadbd" ] ||
		die "'$mariadbd' is missing (tools/install-deps.sh --test)"
	for t in mariadb-install-db mariadb-admin; do
		command -v "$t" >/dev/null ||
			die "'$t' is missing (tools/install-deps.sh --test)"
	done
	id -u "$os_user" >/dev/null 2>&1 || die "no OS user '$os_user'"
}

# The caller may have been started with open descriptors (a FUSE daemon's
# /dev/fuse, a pipe it reads to the end): the server must not keep them.
close_fds()
{
	local f n
	for f in /proc/"$BASHPID"/fd/*; do
		n=${f##*/}
		if [ "$n" -gt 2 ] 2>/dev/null; then
			eval "exec $n>&-"
		fi
	done
}

# --------------------------------------------------------------------------
# Set-up

setup()
{
	mkdir -p "$state"
	install -d -o "$os_user" -g "$os_user" -m 0755 "$run" "$log"
	echo "$port" >"$state/port"
	rm -f "$sock" "$sock.lock"
	if [ -d "$data/mysql" ]; then
		# A restore may have left files of root's behind.
		if [ -n "$(find "$data" ! -user "$os_user" -print -quit)" ]; then
			say "giving $data to $os_user"
			chown -R "$os_user:$os_user" "$data"
		fi
		return 0
	fi
	install -d -o "$os_user" -g "$os_user" -m 0750 "$data"
	say "mariadb-install-db $data"
	mariadb-install-db --no-defaults --user="$os_user" --datadir="$data" \
		--auth-root-authentication-method=normal --skip-test-db \
		--skip-name-resolve --innodb-log-file-size=16M \
		>"$log/install-db.log" 2>&1 || {
		tail -n 20 "$log/install-db.log" >&2
		die "mariadb-install-db failed"
	}
	# It leaves mysql_upgrade_info to root.
	chown -R "$os_user:$os_user" "$data"
}

spawn()
{
	# Without job control the child is no group leader, so setsid does
	# not fork: $! is mariadbd itself and leads its own group.
	(
		close_fds
		exec setsid "$mariadbd" --no-defaults --user="$os_user" \
			--datadir="$data" --socket="$sock" --port="$port" \
			--bind-address=127.0.0.1 --pid-file="$run/mariadbd.pid" \
			--log-error="$err_log" --innodb-log-file-size=16M \
			--innodb-buffer-pool-size=64M --skip-name-resolve
	) </dev/null >>"$log/mariadbd.out" 2>&1 &
	echo $! >"$pid_file"
}

wait_ready()
{
	local tries=$((READY_TIMEOUT * 10)) pid=$1
	while [ "$tries" -gt 0 ]; do
		answers && return 0
		if ! alive "$pid"; then
			say "mariadbd exited during start-up; its log ends:"
			tail -n 20 "$err_log" >&2 || true
			rm -f "$pid_file"
			exit 1
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	say "no answer after ${READY_TIMEOUT} s; the log ends:"
	tail -n 20 "$err_log" >&2 || true
	stop_server
	exit 1
}

# --------------------------------------------------------------------------
# Commands

cmd_start()
{
	local pid
	[ "$(id -u)" -eq 0 ] || die "must run as root (mariadbd --user=mysql)"
	check_tools
	if pid=$(server_pid); then
		wait_ready "$pid"
		say "already running ($data, port $port)"
		return 0
	fi
	if port_busy "$port"; then
		die "port $port on 127.0.0.1 is taken by another process"
	fi
	setup
	spawn
	wait_ready "$(cat "$pid_file")"
	say "running ($data, port $port)"
}

# SIGTERM (a clean InnoDB shutdown, about 2 s), wait until it has exited,
# SIGKILL after STOP_TIMEOUT.
stop_server()
{
	local pid tries
	pid=$(server_pid) || {
		rm -f "$pid_file"
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	tries=$((STOP_TIMEOUT * 10))
	while alive "$pid" && [ "$tries" -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	if alive "$pid"; then
		say "mariadbd $pid ignored SIGTERM for ${STOP_TIMEOUT} s: SIGKILL"
		kill -KILL -- "-$pid" 2>/dev/null || true
		while alive "$pid"; do
			sleep 0.1
		done
	fi
	rm -f "$pid_file"
}

cmd_stop()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	stop_server
	say "stopped"
}

cmd_status()
{
	local pid rc=0
	if pid=$(server_pid); then
		say "mariadbd: running (pid $pid, $data)"
	else
		say "mariadbd: stopped ($data)"
		rc=1
	fi
	if answers; then
		say "health: ping answers on $sock (port $port)"
	else
		say "health: no answer on $sock"
		rc=1
	fi
	return "$rc"
}

cmd_env()
{
	printf '%s\n' \
		"BACKUPFS_MARIADB_DATA=$data" \
		"BACKUPFS_MARIADB_SOCKET=$sock" \
		"BACKUPFS_MARIADB_PORT=$port" \
		"BACKUPFS_MARIADB_USER=$db_user" \
		"BACKUPFS_MARIADB_OS_USER=$os_user" \
		"BACKUPFS_MARIADB_LOG=$err_log" \
		"BACKUPFS_MARIADB_START=$(json_argv "${start_argv[@]}")" \
		"BACKUPFS_MARIADB_STOP=$(json_argv "${stop_argv[@]}")"
}

[ $# -eq 1 ] || usage
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
