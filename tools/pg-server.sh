#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A PostgreSQL 15 cluster on 127.0.0.1:5433, for the test suite (facts:
# reference/test-servers.md sections 4 and 8).
#
#   tools/pg-server.sh start    initdb when there is no cluster yet, then
#                               pg_ctl -w start (nothing to do when it runs
#                               and answers already)
#   tools/pg-server.sh stop     pg_ctl -w stop -m fast; unmounts the btrfs
#                               image when there is one
#   tools/pg-server.sh status   exit 0 only when it runs and answers
#   tools/pg-server.sh env      KEY=VALUE lines: where it is and the exact
#                               argv that starts and stops it (JSON arrays)
#
# State in $BACKUPFS_PG_DIR, default /var/tmp/backupfs-pg: the data
# directory, the socket directory sock/, the server log log/postgresql.log.
# The port is $BACKUPFS_PG_PORT, else the one of the last start, else 5433:
# a second cluster beside the first needs only both variables set.  With
# BACKUPFS_PG_BTRFS=1 at the first start the data directory (pg_wal
# included) is a btrfs subvolume on a loop-mounted image in the state
# directory, so that one snapshot of it is crash-consistent; the choice is
# kept in the state directory from then on.
#
# initdb -A trust (no passwords, user postgres), fsync on (crash and
# snapshot tests).  The servers run as the OS user postgres (runuser):
# PostgreSQL refuses to run as root.  Runs as root, without systemd.
# Needs: postgresql-15 postgresql-client-15, and btrfs-progs for the btrfs
# variant.
set -euo pipefail

PATH=${PATH:+$PATH:}/usr/sbin:/usr/bin:/sbin:/bin

state=${BACKUPFS_PG_DIR:-/var/tmp/backupfs-pg}
bin=/usr/lib/postgresql/15/bin
os_user=postgres
db_user=postgres
sock=$state/sock
log=$state/log
server_log=$log/postgresql.log
img=$state/btrfs.img
mnt=$state/btrfs
runuser=$(command -v runuser || echo /usr/sbin/runuser)

BTRFS_SIZE=2G   # sparse image; a test cluster uses about 50 MB
READY_TIMEOUT=60 # seconds: pg_ctl -w, and waiting for an answer
STOP_TIMEOUT=30  # seconds for the postmaster's group to exit

say()
{
	echo "pg-server: $*"
}

die()
{
	echo "pg-server: $*" >&2
	exit 1
}

usage()
{
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
}

# Paths go into pg_ctl's -o string, which a shell splits.
case "$state" in
*[[:space:]\"\'\\]*)
	die "BACKUPFS_PG_DIR must not hold blanks, quotes or backslashes:" \
		"'$state'"
	;;
/*) ;;
*) die "BACKUPFS_PG_DIR must be an absolute path: '$state'" ;;
esac

port=${BACKUPFS_PG_PORT:-$(cat "$state/port" 2>/dev/null || echo 5433)}
case "$port" in
'' | *[!0-9]*) die "bad port '$port'" ;;
esac

# Storage: what the first start chose (recorded), else what is asked for.
requested=plain
if [ "${BACKUPFS_PG_BTRFS:-0}" = 1 ]; then
	requested=btrfs
fi
storage=$(cat "$state/storage" 2>/dev/null || echo "$requested")
case "$storage" in
btrfs) data=$mnt/data ;;
plain) data=$state/data ;;
*) die "unknown storage '$storage' in $state/storage" ;;
esac

# The exact argv that start and stop the cluster; BACKUPFS_PG_START and
# BACKUPFS_PG_STOP print them, and start and stop run them.
start_argv=("$runuser" -u "$os_user" -- "$bin/pg_ctl" -D "$data"
	-l "$server_log" -w -t "$READY_TIMEOUT"
	-o "-k $sock -p $port -c listen_addresses=127.0.0.1" start)
stop_argv=("$runuser" -u "$os_user" -- "$bin/pg_ctl" -D "$data" -w
	-t "$STOP_TIMEOUT" -m fast stop)

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
# zombie counts as gone.

alive()
{
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# Any of the PIDs $@ still there (not a zombie).
any_alive()
{
	local p
	for p in "$@"; do
		alive "$p" && return 0
	done
	return 1
}

# The postmaster's PID while it runs on our data directory, else nothing.
postmaster_pid()
{
	local pid
	pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || return 1
	case "$pid" in
	'' | *[!0-9]*) return 1 ;;
	esac
	alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$data" ||
		return 1
	echo "$pid"
}

answers()
{
	[ "$("$bin/psql" -X -h "$sock" -p "$port" -U "$db_user" -d postgres \
		-Atc 'select 1' 2>/dev/null)" = 1 ]
}

port_busy()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_tools()
{
	local t
	for t in pg_ctl initdb psql; do
		[ -x "$bin/$t" ] ||
			die "'$bin/$t' is missing (tools/install-deps.sh --test)"
	done
	[ -x "$runuser" ] || die "runuser is missing"
	id -u "$os_user" >/dev/null 2>&1 || die "no OS user '$os_user'"
	if [ "$storage" = btrfs ]; then
		for t in mkfs.btrfs btrfs; do
			command -v "$t" >/dev/null ||
				die "'$t' is missing (tools/install-deps.sh --test)"
		done
	fi
}

# --------------------------------------------------------------------------
# Set-up

# The loop-mounted btrfs image and the subvolume that is the data
# directory (data and pg_wal in one subvolume: one snapshot is atomic).
setup_btrfs()
{
	mkdir -p "$mnt"
	if ! mountpoint -q "$mnt"; then
		if [ ! -f "$img" ]; then
			truncate -s "$BTRFS_SIZE" "$img"
			mkfs.btrfs -q "$img" >/dev/null ||
				{
					rm -f "$img"
					die "mkfs.btrfs '$img' failed"
				}
		fi
		mount -o loop "$img" "$mnt" || die "cannot loop-mount '$img'"
	fi
	if [ ! -d "$data" ]; then
		btrfs -q subvolume create "$data" >/dev/null ||
			die "cannot create the subvolume '$data'"
	fi
}

setup()
{
	mkdir -p "$state"
	install -d -o "$os_user" -g "$os_user" -m 0755 "$sock" "$log"
	if [ "$storage" = btrfs ]; then
		setup_btrfs
	else
		mkdir -p "$data"
	fi
	echo "$storage" >"$state/storage"
	echo "$port" >"$state/port"
	if [ -f "$data/PG_VERSION" ]; then
		return 0
	fi
	if [ -n "$(ls -A "$data")" ]; then
		die "'$data' is not empty but holds no cluster"
	fi
	chown "$os_user:$os_user" "$data"
	chmod 0700 "$data"
	say "initdb $data"
	"$runuser" -u "$os_user" -- "$bin/initdb" -D "$data" -A trust \
		-U "$db_user" -E UTF8 --locale=C >"$log/initdb.log" 2>&1 || {
		tail -n 20 "$log/initdb.log" >&2
		die "initdb failed"
	}
}

wait_answer()
{
	local tries=$((READY_TIMEOUT * 10))
	while [ "$tries" -gt 0 ]; do
		answers && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

# --------------------------------------------------------------------------
# Commands

cmd_start()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root (runuser, mount)"
	check_tools
	if [ -f "$state/storage" ] && [ -n "${BACKUPFS_PG_BTRFS:-}" ] &&
		[ "$storage" != "$requested" ]; then
		die "$state holds a cluster on $storage storage but" \
			"BACKUPFS_PG_BTRFS=$BACKUPFS_PG_BTRFS asks for $requested:" \
			"stop it and remove $state first"
	fi
	if postmaster_pid >/dev/null; then
		if wait_answer; then
			say "already running ($data, port $port)"
			return 0
		fi
		die "a postmaster runs on '$data' but does not answer on" \
			"port $port, socket dir $sock"
	fi
	if port_busy "$port"; then
		die "port $port on 127.0.0.1 is taken by another process"
	fi
	setup
	if ! "${start_argv[@]}" >"$log/pg_ctl.log" 2>&1; then
		cat "$log/pg_ctl.log" >&2
		say "pg_ctl start failed; the server log ends:"
		tail -n 20 "$server_log" >&2 || true
		exit 1
	fi
	wait_answer || die "started, but no answer on port $port"
	say "running ($data on $storage, port $port)"
}

# Each child of the postmaster runs in a session of its own: wait for the
# postmaster and the children it had, not for a process group.
stop_server()
{
	local pid procs p tries
	pid=$(postmaster_pid) || return 0
	mapfile -t procs < <(ps -o pid= --ppid "$pid" | tr -d ' ')
	procs+=("$pid")
	if ! "${stop_argv[@]}" >"$log/pg_ctl.log" 2>&1; then
		cat "$log/pg_ctl.log" >&2
		say "pg_ctl stop failed: SIGQUIT (immediate shutdown)"
		kill -QUIT "$pid" 2>/dev/null || true
	fi
	tries=$((STOP_TIMEOUT * 10))
	while any_alive "${procs[@]}" && [ "$tries" -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	for p in "${procs[@]}"; do
		if alive "$p"; then
			say "pid $p still there after ${STOP_TIMEOUT} s: SIGKILL"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
}

cmd_stop()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	stop_server
	if [ "$storage" = btrfs ] && mountpoint -q "$mnt" 2>/dev/null; then
		umount "$mnt" || die "cannot unmount '$mnt'"
	fi
	say "stopped"
}

cmd_status()
{
	local pid rc=0
	if pid=$(postmaster_pid); then
		say "postmaster: running (pid $pid, $data on $storage)"
	else
		say "postmaster: stopped ($data)"
		rc=1
	fi
	if answers; then
		say "health: select 1 answers on port $port, socket dir $sock"
	else
		say "health: no answer on port $port, socket dir $sock"
		rc=1
	fi
	return "$rc"
}

cmd_env()
{
	local m=''
	[ "$storage" = btrfs ] && m=$mnt
	printf '%s\n' \
		"BACKUPFS_PG_BIN_DIR=$bin" \
		"BACKUPFS_PG_DATA=$data" \
		"BACKUPFS_PG_HOST=$sock" \
		"BACKUPFS_PG_PORT=$port" \
		"BACKUPFS_PG_USER=$db_user" \
		"BACKUPFS_PG_OS_USER=$os_user" \
		"BACKUPFS_PG_LOG=$server_log" \
		"BACKUPFS_PG_BTRFS_MOUNT=$m" \
		"BACKUPFS_PG_START=$(json_argv "${start_argv[@]}")" \
		"BACKUPFS_PG_STOP=$(json_argv "${stop_argv[@]}")"
}

[ $# -eq 1 ] || usage
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
