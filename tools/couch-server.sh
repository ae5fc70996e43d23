#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pouchdb-server 4.2.0 (the CouchDB HTTP API over LevelDB) on
# 127.0.0.1:5984, for the test suite (facts: reference/test-servers.md
# section 6).  Debian has no CouchDB; tools/install-deps.sh --test installs
# pouchdb-server with npm into $BACKUPFS_COUCH_NPM_DIR, default
# /var/cache/backupfs/pouchdb-server.
#
#   tools/couch-server.sh start    start it; returns once GET / answers
#                                  (nothing to do when it runs and answers
#                                  already)
#   tools/couch-server.sh stop     SIGTERM, and wait until it has exited
#   tools/couch-server.sh status   exit 0 only when it runs and answers
#   tools/couch-server.sh env      KEY=VALUE lines: its URL, its data
#                                  directory and the exact argv that starts
#                                  and stops it (JSON arrays)
#
# State in $BACKUPFS_COUCH_DIR, default /var/tmp/backupfs-couch: data/ (one
# LevelDB directory per database), config.json, run/, log/.  The port is
# $BACKUPFS_COUCH_PORT, else the one of the last start, else 5984.
#
# Admin party: no admin, no password.  Every start removes the admins from
# config.json (the rest, such as the server's uuid, stays) because an admin,
# once created, stays there, and then an anonymous PUT /newdb crashes the
# whole server (express-pouchdb 4.2.0).
# Runs as root, without systemd: node is a plain background process leading
# its own process group, its PID in run/server.pid.  Needs: nodejs, npm,
# curl.
set -euo pipefail

PATH=${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
state=${BACKUPFS_COUCH_DIR:-/var/tmp/backupfs-couch}
npm_dir=${BACKUPFS_COUCH_NPM_DIR:-/var/cache/backupfs/pouchdb-server}
server_js=$npm_dir/node_modules/pouchdb-server/bin/pouchdb-server
data=$state/data
run=$state/run
log=$state/log
config=$state/config.json
pid_file=$run/server.pid

READY_TIMEOUT=60 # seconds for GET / to answer
STOP_TIMEOUT=15  # seconds to exit after SIGTERM

say()
{
	echo "couch-server: $*"
}

die()
{
	echo "couch-server: $*" >&2
	exit 1
}

usage()
{
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
}

case "$state" in
/*) ;;
*) die "BACKUPFS_COUCH_DIR must be an absolute path: '$state'" ;;
esac

port=${BACKUPFS_COUCH_PORT:-$(cat "$state/port" 2>/dev/null || echo 5984)}
case "$port" in
'' | *[!0-9]*) die "bad port '$port'" ;;
esac
url=http://127.0.0.1:$port

# What start and stop are for a caller (the couchdb driver's service
# overrides): this script, told its state, npm directory and port.
script_argv=(/usr/bin/env "BACKUPFS_COUCH_DIR=$state"
	"BACKUPFS_COUCH_NPM_DIR=$npm_dir" "BACKUPFS_COUCH_PORT=$port" "$self")

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

group_alive()
{
	ps -e -o pgid=,stat= |
		awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
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
		grep -qF -- "--dir $data " || return 1
	echo "$pid"
}

# GET / of pouchdb-server names express-pouchdb (CouchDB's says
# "couchdb": "Welcome"); either will do.
answers()
{
	curl -sS -m 5 "$url/" 2>/dev/null |
		grep -qE '"(express-pouchdb|couchdb)" *: *"Welcome'
}

port_busy()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_tools()
{
	command -v node >/dev/null || die "'node' is missing (apt-get install nodejs)"
	command -v curl >/dev/null || die "'curl' is missing"
	[ -f "$server_js" ] ||
		die "no pouchdb-server in $npm_dir (tools/install-deps.sh --test)"
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
# Commands

spawn()
{
	local node
	node=$(command -v node)
	# Without job control the child is no group leader, so setsid does
	# not fork: $! is node itself and leads its own group.  The request
	# log goes where config.json says, the console output to server.out.
	(
		close_fds
		cd "$state"
		exec setsid "$node" "$server_js" --host 127.0.0.1 \
			--port "$port" --dir "$data" --config "$config" \
			--no-stdout-logs --no-color
	) </dev/null >>"$log/server.out" 2>&1 &
	echo $! >"$pid_file"
}

wait_ready()
{
	local tries=$((READY_TIMEOUT * 10)) pid=$1
	while [ "$tries" -gt 0 ]; do
		answers && return 0
		if ! alive "$pid"; then
			say "pouchdb-server exited during start-up; its output ends:"
			tail -n 20 "$log/server.out" >&2 || true
			rm -f "$pid_file"
			exit 1
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	say "no answer at $url/ after ${READY_TIMEOUT} s; its output ends:"
	tail -n 20 "$log/server.out" >&2 || true
	stop_server
	exit 1
}

# config.json without admins, the request log in log/.
write_config()
{
	node -e '
		const fs = require("fs");
		const [file, logFile] = process.argv.slice(1);
		let c = {};
		if (fs.existsSync(file))
			c = JSON.parse(fs.readFileSync(file, "utf8"));
		delete c.admins;
		c.log = Object.assign(c.log || {}, { file: logFile });
		fs.writeFileSync(file, JSON.stringify(c, null, 2) + "\n");
	' "$config" "$log/pouchdb.log" || die "cannot write '$config'"
}

cmd_start()
{
	local pid
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	check_tools
	if pid=$(server_pid); then
		wait_ready "$pid"
		say "already running ($data, $url)"
		return 0
	fi
	if port_busy "$port"; then
		die "port $port on 127.0.0.1 is taken by another process"
	fi
	mkdir -p "$data" "$run" "$log"
	echo "$port" >"$state/port"
	write_config
	spawn
	wait_ready "$(cat "$pid_file")"
	say "running ($data, $url)"
}

# SIGTERM to the group, wait until it has gone, SIGKILL after STOP_TIMEOUT.
stop_server()
{
	local pid tries
	pid=$(server_pid) || {
		rm -f "$pid_file"
		return 0
	}
	kill -TERM -- "-$pid" 2>/dev/null || true
	tries=$((STOP_TIMEOUT * 10))
	while group_alive "$pid" && [ "$tries" -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	if group_alive "$pid"; then
		say "group $pid ignored SIGTERM for ${STOP_TIMEOUT} s: SIGKILL"
		kill -KILL -- "-$pid" 2>/dev/null || true
		while group_alive "$pid"; do
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
		say "pouchdb-server: running (pid $pid, $data)"
	else
		say "pouchdb-server: stopped ($data)"
		rc=1
	fi
	if answers; then
		say "health: GET $url/ answers"
	else
		say "health: no answer at $url/"
		rc=1
	fi
	return "$rc"
}

cmd_env()
{
	printf '%s\n' \
		"BACKUPFS_COUCH_URL=$url" \
		"BACKUPFS_COUCH_DATA=$data" \
		"BACKUPFS_COUCH_START=$(json_argv "${script_argv[@]}" start)" \
		"BACKUPFS_COUCH_STOP=$(json_argv "${script_argv[@]}" stop)"
}

[ $# -eq 1 ] || usage
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
