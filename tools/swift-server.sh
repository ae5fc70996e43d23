#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An OpenStack Swift all-in-one with tempauth on 127.0.0.1:8080, for the
# test suite (facts: reference/test-servers.md section 2).
#
#   tools/swift-server.sh start    start it (nothing to do when it runs and
#                                  answers already); ready when a real token
#                                  can HEAD the account
#   tools/swift-server.sh stop     stop every server, then unmount the device
#   tools/swift-server.sh status   what runs; exit 0 only when it answers
#   tools/swift-server.sh env      ST_AUTH, ST_USER and ST_KEY lines:
#                                  export $(tools/swift-server.sh env)
#
# State (configs, rings, PID files, logs, the device) lives in
# $BACKUPFS_SWIFT_DIR, default /var/tmp/backupfs-swift.  Runs as root
# (loop mount) on a machine without systemd: every server is a plain
# background process leading its own process group, recorded in run/.
# Needs: swift swift-proxy swift-account swift-container swift-object
# python3-swiftclient memcached xfsprogs curl.
set -euo pipefail

state=${BACKUPFS_SWIFT_DIR:-/var/tmp/backupfs-swift}
etc=$state/etc
run=$state/run
log=$state/log
dev=$state/srv/d1

auth_url=http://127.0.0.1:8080/auth/v1.0
st_user=test:tester
st_key=testing

# In start order: memcached first (tempauth needs it), the proxy last.
servers=(memcached account container object proxy)

READY_TIMEOUT=60 # seconds for the proxy to hand out a working token
STOP_TIMEOUT=10  # seconds for the groups to exit after SIGTERM

say()
{
	echo "swift-server: $*"
}

die()
{
	echo "swift-server: $*" >&2
	exit 1
}

usage()
{
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
}

# --------------------------------------------------------------------------
# Processes.  Zombies are reaped late on this machine (no real init), so a
# zombie counts as gone; a recorded PID counts as ours only while its
# command line still names our state directory (PID reuse).

alive()
{
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st:0:1}" != Z ]
}

ours()
{
	alive "$1" &&
		tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null |
		grep -qF -- "$state/"
}

# Any live (non-zombie) member of process group $1: Swift's workers outlive
# their leader by about a second and still hold the port.
group_alive()
{
	ps -e -o pgid=,stat= |
		awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

pid_of()
{
	local f=$run/$1.pid
	[ -s "$f" ] && cat "$f"
}

# The recorded group of server $1 if it is still ours, else nothing.  A
# leader that has exited cannot have had its number reused while members
# of its group live, so a group without its leader is still ours.
group_of()
{
	local pid
	pid=$(pid_of "$1") || return 1
	if alive "$pid"; then
		ours "$pid" || return 1
	fi
	group_alive "$pid" || return 1
	echo "$pid"
}

conf_of()
{
	case "$1" in
	proxy) echo "$etc/proxy-server.conf" ;;
	*) echo "$etc/$1-server.conf" ;;
	esac
}

spawn()
{
	local name=$1
	shift
	# Without job control the child is no group leader, so setsid does
	# not fork: $! is the server itself and leads its own group.
	setsid "$@" </dev/null >>"$log/$name.log" 2>&1 &
	echo $! >"$run/$name.pid"
}

start_server()
{
	case "$1" in
	memcached)
		spawn memcached memcached -u root -l 127.0.0.1 -p 11211 -U 0 \
			-m 64 -P "$run/memcached.self.pid"
		;;
	proxy) spawn proxy swift-proxy-server "$(conf_of proxy)" -v ;;
	*) spawn "$1" "swift-$1-server" "$(conf_of "$1")" -v ;;
	esac
}

# --------------------------------------------------------------------------
# Health: a real token, then a HEAD of the account with it.  Headers go to
# curl on stdin (-H @-) so no credential shows in a process listing.

header_value()
{
	tr -d '\r' | awk -v h="$1" -F': ' 'tolower($1) == h { print $2 }'
}

healthy()
{
	local hdrs token url code
	hdrs=$(printf 'X-Auth-User: %s\nX-Auth-Key: %s\n' "$st_user" "$st_key" |
		curl -sS -m 5 -o /dev/null -D - -H @- "$auth_url" 2>/dev/null) ||
		return 1
	token=$(printf '%s\n' "$hdrs" | header_value x-auth-token)
	url=$(printf '%s\n' "$hdrs" | header_value x-storage-url)
	[ -n "$token" ] && [ -n "$url" ] || return 1
	code=$(printf 'X-Auth-Token: %s\n' "$token" |
		curl -sS -m 5 -o /dev/null -w '%{http_code}' -I -H @- "$url" \
			2>/dev/null) || return 1
	[ "${code:0:1}" = 2 ]
}

all_running()
{
	local s
	for s in "${servers[@]}"; do
		group_of "$s" >/dev/null || return 1
	done
}

port_busy()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --------------------------------------------------------------------------
# Set-up: storage, configs, rings.

# Swift keeps metadata in xattrs: ext4 allows about 3.5 KB per inode, XFS
# much more, hence a loop-mounted XFS image; a plain directory if this
# machine cannot loop-mount (mount_check is off for that case).
setup_storage()
{
	mkdir -p "$dev"
	if mountpoint -q "$dev"; then
		return 0
	fi
	if [ ! -f "$state/xfs.img" ]; then
		if ! { truncate -s 4G "$state/xfs.img" &&
			mkfs.xfs -q "$state/xfs.img"; } 2>>"$log/storage.log"; then
			rm -f "$state/xfs.img"
		fi
	fi
	if [ -f "$state/xfs.img" ] &&
		mount -o loop,noatime "$state/xfs.img" "$dev" \
			2>>"$log/storage.log"; then
		echo xfs >"$run/storage"
	else
		say "cannot loop-mount XFS; storage is a plain directory" \
			"(objects with over ~3.5 KB of metadata will fail)"
		echo dir >"$run/storage"
	fi
}

# Read from /etc/swift/swift.conf whatever swift_dir says: keep the
# packaged one, write a minimal one only where there is none.
ensure_swift_conf()
{
	[ -f /etc/swift/swift.conf ] && return 0
	mkdir -p /etc/swift
	cat >/etc/swift/swift.conf <<-'EOF'
		[swift-hash]
		swift_hash_path_prefix = saio-prefix
		swift_hash_path_suffix = saio-suffix

		[storage-policy:0]
		name = Policy-0
		default = yes

		[swift-constraints]
	EOF
}

common_conf()
{
	cat <<-EOF
		[DEFAULT]
		bind_ip = 127.0.0.1
		bind_port = $1
		workers = 1
		user = root
		log_level = INFO
		swift_dir = $etc
		devices = $state/srv
		mount_check = false
		disable_fallocate = true
		recon_cache_path = $run

		[pipeline:main]
		pipeline = healthcheck $2-server

		[filter:healthcheck]
		use = egg:swift#healthcheck

		[app:$2-server]
		use = egg:swift#$2
	EOF
}

write_storage_confs()
{
	common_conf 6012 account >"$(conf_of account)"
	{
		common_conf 6011 container
		printf '\n[container-updater]\nconcurrency = 1\n'
	} >"$(conf_of container)"
	# Keep objects in the page cache (by default those over 5 MiB are
	# dropped) and do 1 MiB I/O.
	{
		common_conf 6010 object
		cat <<-'EOF'
			keep_cache_size = 4294967296
			keep_cache_private = true
			network_chunk_size = 1048576
			disk_chunk_size = 1048576
		EOF
	} >"$(conf_of object)"
}

# error_suppression_interval 0: with one node, one 507 or timeout would
# otherwise give 60 s of 503.  recheck_*_existence 0: no 60 s caching of
# existence.  SLO/DLO rate limits off: GETs would slow to 1 segment/s.
write_proxy_conf()
{
	cat >"$(conf_of proxy)" <<-EOF
		[DEFAULT]
		bind_ip = 127.0.0.1
		bind_port = 8080
		workers = 1
		user = root
		log_level = INFO
		swift_dir = $etc

		[pipeline:main]
		pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

		[app:proxy-server]
		use = egg:swift#proxy
		error_suppression_interval = 0
		recheck_account_existence = 0
		recheck_container_existence = 0
		object_chunk_size = 1048576
		client_chunk_size = 1048576
		allow_account_management = true
		account_autocreate = true

		[filter:catch_errors]
		use = egg:swift#catch_errors

		[filter:gatekeeper]
		use = egg:swift#gatekeeper

		[filter:healthcheck]
		use = egg:swift#healthcheck

		[filter:proxy-logging]
		use = egg:swift#proxy_logging

		[filter:cache]
		use = egg:swift#memcache
		memcache_servers = 127.0.0.1:11211

		[filter:listing_formats]
		use = egg:swift#listing_formats

		[filter:bulk]
		use = egg:swift#bulk

		[filter:tempurl]
		use = egg:swift#tempurl

		[filter:tempauth]
		use = egg:swift#tempauth
		user_test_tester = testing .admin
		user_test2_tester2 = testing2 .admin
		user_test_tester3 = testing3
		user_admin_admin = admin .admin .reseller_admin

		[filter:copy]
		use = egg:swift#copy

		[filter:slo]
		use = egg:swift#slo
		rate_limit_after_segment = 1000000
		rate_limit_segments_per_sec = 0

		[filter:dlo]
		use = egg:swift#dlo
		rate_limit_after_segment = 1000000
		rate_limit_segments_per_sec = 0

		[filter:versioned_writes]
		use = egg:swift#versioned_writes
		allow_versioned_writes = true

		[filter:symlink]
		use = egg:swift#symlink
	EOF
}

# All three rings from one python process (about 1 s; nine
# swift-ring-builder calls take about 7 s).  Part power 8, one replica.
build_rings()
{
	[ -f "$etc/account.ring.gz" ] && [ -f "$etc/container.ring.gz" ] &&
		[ -f "$etc/object.ring.gz" ] && return 0
	/usr/bin/python3 - "$etc" <<-'EOF'
		import sys
		from swift.common.ring import RingBuilder

		etc = sys.argv[1]
		for name, port in (("account", 6012), ("container", 6011),
				   ("object", 6010)):
		    b = RingBuilder(8, 1, 1)
		    b.add_dev({"id": 0, "region": 1, "zone": 1,
			       "ip": "127.0.0.1", "port": port,
			       "replication_ip": "127.0.0.1",
			       "replication_port": port,
			       "device": "d1", "weight": 100, "meta": ""})
		    b.rebalance()
		    b.save("%s/%s.builder" % (etc, name))
		    b.get_ring().save("%s/%s.ring.gz" % (etc, name))
	EOF
}

# One old generation of each log: a test run writes about 10 MB per server.
rotate_logs()
{
	local f
	for f in "$log"/*.log; do
		[ -f "$f" ] && mv -f "$f" "$f.1"
	done
	return 0
}

check_tools()
{
	local t
	for t in memcached swift-proxy-server swift-account-server \
		swift-container-server swift-object-server curl mkfs.xfs; do
		command -v "$t" >/dev/null ||
			die "'$t' is missing (tools/install-deps.sh --test)"
	done
	[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import swift' \
		2>/dev/null || die "/usr/bin/python3 cannot import swift"
}

# --------------------------------------------------------------------------
# Commands

wait_ready()
{
	local tries=$((READY_TIMEOUT * 5)) s pid
	while [ "$tries" -gt 0 ]; do
		if healthy; then
			return 0
		fi
		for s in "${servers[@]}"; do
			pid=$(pid_of "$s") || continue
			if ! alive "$pid"; then
				say "'$s' exited during start-up; its log ends:"
				tail -n 20 "$log/$s.log" >&2 || true
				stop_all
				exit 1
			fi
		done
		sleep 0.2
		tries=$((tries - 1))
	done
	say "no working token after ${READY_TIMEOUT} s; the proxy log ends:"
	tail -n 20 "$log/proxy.log" >&2 || true
	stop_all
	exit 1
}

cmd_start()
{
	local s p
	[ "$(id -u)" -eq 0 ] || die "must run as root (loop mount)"
	if all_running && healthy; then
		say "already running ($state)"
		return 0
	fi
	check_tools
	# Leftovers of a broken run go first, whatever state they are in.
	stop_all
	for p in 8080 6010 6011 6012 11211; do
		if port_busy "$p"; then
			die "port $p on 127.0.0.1 is taken by another process"
		fi
	done
	mkdir -p "$etc" "$run" "$log"
	rotate_logs
	ensure_swift_conf
	setup_storage
	write_storage_confs
	write_proxy_conf
	build_rings
	for s in "${servers[@]}"; do
		start_server "$s"
	done
	wait_ready
	say "running ($state; storage: $(cat "$run/storage"))"
}

# SIGTERM every group at once (one after another takes 10 s, all at once
# about 2 s), wait for whole groups, then SIGKILL what is left.
stop_all()
{
	local groups=() s g tries left
	for s in "${servers[@]}"; do
		if g=$(group_of "$s"); then
			groups+=("$g")
		fi
	done
	for g in "${groups[@]}"; do
		kill -TERM -- "-$g" 2>/dev/null || true
	done
	tries=$((STOP_TIMEOUT * 5))
	while [ "${#groups[@]}" -gt 0 ] && [ "$tries" -gt 0 ]; do
		left=()
		for g in "${groups[@]}"; do
			if group_alive "$g"; then
				left+=("$g")
			fi
		done
		groups=("${left[@]+"${left[@]}"}")
		[ "${#groups[@]}" -eq 0 ] && break
		sleep 0.2
		tries=$((tries - 1))
	done
	for g in "${groups[@]+"${groups[@]}"}"; do
		say "group $g ignored SIGTERM for ${STOP_TIMEOUT} s: SIGKILL"
		kill -KILL -- "-$g" 2>/dev/null || true
	done
	for s in "${servers[@]}"; do
		rm -f "$run/$s.pid"
	done
	if mountpoint -q "$dev" 2>/dev/null; then
		umount "$dev" || say "cannot unmount '$dev'"
	fi
}

cmd_stop()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	stop_all
	say "stopped"
}

cmd_status()
{
	local s g rc=0
	for s in "${servers[@]}"; do
		if g=$(group_of "$s"); then
			say "$s: running (process group $g)"
		else
			say "$s: stopped"
			rc=1
		fi
	done
	if healthy; then
		say "health: a token for $st_user can HEAD its account"
	else
		say "health: no working token at $auth_url"
		rc=1
	fi
	return "$rc"
}

cmd_env()
{
	printf 'ST_AUTH=%s\nST_USER=%s\nST_KEY=%s\n' "$auth_url" "$st_user" \
		"$st_key"
}

[ $# -eq 1 ] || usage
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
