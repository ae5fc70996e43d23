#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Keystone v3 on 127.0.0.1:5000 and a second Swift proxy on 127.0.0.1:8081
# that authenticates with it (authtoken + keystoneauth), for the test suite
# (facts: reference/test-servers.md section 3).  The proxy shares memcached,
# the rings and the storage servers of the tempauth Swift all-in-one, which
# `start` starts first with tools/swift-server.sh (a no-op when it runs).
#
#   tools/keystone-server.sh start    start both (nothing to do when they run
#                                     and answer already); ready when a v3
#                                     token for tester can HEAD its account
#                                     on 8081
#   tools/keystone-server.sh stop     stop Keystone and the 8081 proxy (the
#                                     tempauth Swift keeps running:
#                                     tools/swift-server.sh stop)
#   tools/keystone-server.sh status   what runs; exit 0 only when it answers
#   tools/keystone-server.sh env      OS_* lines for tester, the paths of the
#                                     application credential files and the
#                                     token lifetime:
#                                     export $(tools/keystone-server.sh env)
#
# Keystone: sqlite, fernet tokens, a templated catalog (object-store at
# http://127.0.0.1:8081/v1/AUTH_<project id>), initialised offline with
# keystone-manage, served by its single-threaded development server.  Users,
# all in domain Default: admin/admin (project admin, from bootstrap),
# swift/swiftpass (project service, role admin: the proxy's service user),
# tester/testing (project test, role member), and an application credential
# of tester whose id and secret are in files (mode 0600) in the state
# directory.  Tokens live BACKUPFS_KEYSTONE_TOKEN_EXPIRATION seconds
# (default 60) so that tests can watch one expire.
#
# State in $BACKUPFS_KEYSTONE_DIR, default /var/tmp/backupfs-keystone.  Runs
# as root on a machine without systemd: both servers are plain background
# processes leading their own process groups, recorded in run/.
# Needs: keystone python3-keystonemiddleware python3-keystoneclient, and
# what tools/swift-server.sh needs.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
state=${BACKUPFS_KEYSTONE_DIR:-/var/tmp/backupfs-keystone}
swift_state=${BACKUPFS_SWIFT_DIR:-/var/tmp/backupfs-swift}
ttl=${BACKUPFS_KEYSTONE_TOKEN_EXPIRATION:-60}
etc=$state/etc
run=$state/run
log=$state/log

ks_conf=$etc/keystone.conf
proxy_conf=$etc/proxy-server.conf
swift_proxy_conf=$swift_state/etc/proxy-server.conf
appcred_id_file=$state/appcred.id
appcred_secret_file=$state/appcred.secret
project_id_file=$state/test-project.id

ks_url=http://127.0.0.1:5000
proxy_url=http://127.0.0.1:8081

servers=(keystone proxy)

READY_TIMEOUT=60 # seconds for each server to answer
STOP_TIMEOUT=10  # seconds for the groups to exit after SIGTERM

say()
{
	echo "keystone-server: $*"
}

die()
{
	echo "keystone-server: $*" >&2
	exit 1
}

usage()
{
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
}

case "$ttl" in
'' | *[!0-9]*) die "BACKUPFS_KEYSTONE_TOKEN_EXPIRATION='$ttl': not a number of seconds" ;;
esac
[ "$ttl" -ge 1 ] || die "BACKUPFS_KEYSTONE_TOKEN_EXPIRATION must be >= 1"

# --------------------------------------------------------------------------
# Processes.  Zombies are reaped late on this machine (no real init): a
# zombie counts as gone.  A recorded PID counts as ours only while its
# command line still names our config file (PID reuse).

alive()
{
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st:0:1}" != Z ]
}

conf_of()
{
	case "$1" in
	keystone) echo "$ks_conf" ;;
	proxy) echo "$proxy_conf" ;;
	esac
}

ours()
{
	alive "$1" &&
		tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null |
		grep -qxF -- "$(conf_of "$2")"
}

# Any live member of process group $1 (Swift's workers outlive their leader
# by about a second and still hold the port).
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

# The recorded process group of server $1 while it is still ours.  A leader
# that has exited cannot have had its number reused while its group lives.
group_of()
{
	local pid
	pid=$(pid_of "$1") || return 1
	if alive "$pid"; then
		ours "$pid" "$1" || return 1
	fi
	group_alive "$pid" || return 1
	echo "$pid"
}

spawn()
{
	local name=$1
	shift
	# Without job control the child leads no group, so setsid does not
	# fork: $! is the server itself, leading its own group.
	setsid "$@" </dev/null >>"$log/$name.log" 2>&1 &
	echo $! >"$run/$name.pid"
}

start_keystone()
{
	# The config file is named on the command line (after "--", for the
	# application's oslo.config) so that the process can be recognised.
	(cd "$state" &&
		OS_KEYSTONE_CONFIG_DIR=$etc OS_KEYSTONE_CONFIG_FILES=keystone.conf \
			spawn keystone keystone-wsgi-public --host 127.0.0.1 \
			--port 5000 -- --config-file "$ks_conf")
}

start_proxy()
{
	spawn proxy swift-proxy-server "$proxy_conf" -v
}

port_busy()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

log_tail()
{
	local f=$log/$1.log
	say "the log of '$1' ($f) ends:" >&2
	tail -n 25 "$f" >&2 2>/dev/null || true
	if [ "$1" = keystone ] && [ -f "$log/keystone-app.log" ]; then
		say "keystone's own log ($log/keystone-app.log) ends:" >&2
		tail -n 15 "$log/keystone-app.log" >&2 || true
	fi
}

# --------------------------------------------------------------------------
# REST calls, readiness and set-up, in Debian's python3 (standard library
# only; passwords never appear on a command line).

py()
{
	/usr/bin/python3 - "$@" <<-'EOF'
		import json, os, sys, urllib.error, urllib.request

		KS = "http://127.0.0.1:5000/v3"
		PROXY = "http://127.0.0.1:8081"

		def call(method, url, body=None, token=None, timeout=30):
		    data = None if body is None else json.dumps(body).encode()
		    req = urllib.request.Request(url, data=data, method=method)
		    req.add_header("Content-Type", "application/json")
		    if token:
		        req.add_header("X-Auth-Token", token)
		    try:
		        with urllib.request.urlopen(req, timeout=timeout) as r:
		            text = r.read()
		            return r.status, r.headers, (json.loads(text)
		                                         if text.strip() else {})
		    except urllib.error.HTTPError as e:
		        return e.code, e.headers, e.read().decode("utf-8", "replace")

		def ok(what, st, resp, want):
		    if st not in want:
		        sys.exit("%s: HTTP %s: %s" % (what, st, resp))

		def password_token(user, password, project):
		    st, h, resp = call("POST", KS + "/auth/tokens", {"auth": {
		        "identity": {"methods": ["password"], "password": {"user": {
		            "name": user, "domain": {"id": "default"},
		            "password": password}}},
		        "scope": {"project": {"name": project,
		                              "domain": {"id": "default"}}}}})
		    ok("token for %s in project %s" % (user, project), st, resp,
		       (201,))
		    return h["X-Subject-Token"], resp["token"]

		def role_id(tok, name):
		    st, _, resp = call("GET", KS + "/roles?name=" + name, token=tok)
		    ok("role " + name, st, resp, (200,))
		    if not resp["roles"]:
		        sys.exit("role %s missing (keystone-manage bootstrap)" % name)
		    return resp["roles"][0]["id"]

		def setup(state):
		    tok, _ = password_token("admin", "admin", "admin")
		    roles = {n: role_id(tok, n) for n in ("admin", "member")}
		    for project, user, password, role in (
		            ("service", "swift", "swiftpass", "admin"),
		            ("test", "tester", "testing", "member")):
		        st, _, resp = call("POST", KS + "/projects", {"project": {
		            "name": project, "domain_id": "default"}}, tok)
		        ok("create project " + project, st, resp, (201,))
		        pid = resp["project"]["id"]
		        st, _, resp = call("POST", KS + "/users", {"user": {
		            "name": user, "domain_id": "default",
		            "password": password, "default_project_id": pid}}, tok)
		        ok("create user " + user, st, resp, (201,))
		        uid = resp["user"]["id"]
		        st, _, resp = call("PUT", "%s/projects/%s/users/%s/roles/%s"
		                           % (KS, pid, uid, roles[role]), token=tok)
		        ok("role %s for %s" % (role, user), st, resp, (204,))
		    # tester's application credential, made by tester
		    tok, body = password_token("tester", "testing", "test")
		    st, _, resp = call(
		        "POST", "%s/users/%s/application_credentials"
		        % (KS, body["user"]["id"]), {"application_credential": {
		            "name": "backupfs-tests",
		            "description": "tools/keystone-server.sh"}}, tok)
		    ok("application credential for tester", st, resp, (201,))
		    cred = resp["application_credential"]
		    for name, value in (("appcred.id", cred["id"]),
		                        ("appcred.secret", cred["secret"]),
		                        ("test-project.id", body["project"]["id"])):
		        path = os.path.join(state, name)
		        fd = os.open(path + ".tmp",
		                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
		        with os.fdopen(fd, "w") as f:
		            f.write(value + "\n")
		        os.replace(path + ".tmp", path)

		def check():
		    """A token for tester in project test, then a HEAD of its
		    account through the 8081 proxy."""
		    try:
		        tok, body = password_token("tester", "testing", "test")
		        url = "%s/v1/AUTH_%s" % (PROXY, body["project"]["id"])
		        st, _, resp = call("HEAD", url, token=tok, timeout=10)
		    except OSError as e:
		        sys.exit(str(e))
		    ok("HEAD " + url, st, resp, (200, 204))

		def write_proxy_conf(src, dst):
		    """The tempauth proxy's config with tempauth replaced by authtoken
		    and keystoneauth, on port 8081: same tuning, rings, memcached."""
		    import configparser
		    cp = configparser.RawConfigParser(strict=False)
		    cp.optionxform = str
		    if not cp.read(src):
		        sys.exit("cannot read %s" % src)
		    pipe = cp.get("pipeline:main", "pipeline").split()
		    if "tempauth" not in pipe:
		        sys.exit("%s: no tempauth in the pipeline" % src)
		    i = pipe.index("tempauth")
		    pipe[i:i + 1] = ["authtoken", "keystoneauth"]
		    cp.set("pipeline:main", "pipeline", " ".join(pipe))
		    cp.remove_section("filter:tempauth")
		    cp.set("DEFAULT", "bind_ip", "127.0.0.1")
		    cp.set("DEFAULT", "bind_port", "8081")
		    cp.set("DEFAULT", "log_name", "proxy-keystone")
		    cp["filter:authtoken"] = {
		        "paste.filter_factory":
		            "keystonemiddleware.auth_token:filter_factory",
		        "www_authenticate_uri": "http://127.0.0.1:5000",
		        "auth_url": "http://127.0.0.1:5000",
		        "auth_type": "password",
		        "project_domain_name": "Default",
		        "user_domain_name": "Default",
		        "project_name": "service",
		        "username": "swift",
		        "password": "swiftpass",
		        "delay_auth_decision": "True",
		        "service_token_roles_required": "True",
		        "memcached_servers": "127.0.0.1:11211",
		    }
		    cp["filter:keystoneauth"] = {
		        "use": "egg:swift#keystoneauth",
		        "operator_roles": "admin, member",
		    }
		    with open(dst, "w") as f:
		        f.write("# Generated by tools/keystone-server.sh from %s\n"
		                % src)
		        cp.write(f)

		cmd = sys.argv[1]
		if cmd == "setup":
		    setup(sys.argv[2])
		elif cmd == "check":
		    check()
		elif cmd == "proxy-conf":
		    write_proxy_conf(sys.argv[2], sys.argv[3])
		else:
		    sys.exit("unknown helper command " + cmd)
	EOF
}

healthy()
{
	py check >/dev/null 2>&1
}

keystone_answers()
{
	local code
	code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$ks_url/v3" \
		2>/dev/null) || return 1
	[ "$code" = 200 ]
}

all_running()
{
	local s
	for s in "${servers[@]}"; do
		group_of "$s" >/dev/null || return 1
	done
}

# Wait for "$@" (a test command) to succeed while server $1 stays alive.
wait_for()
{
	local name=$1 what=$2 tries=$((READY_TIMEOUT * 5)) pid s
	shift 2
	while [ "$tries" -gt 0 ]; do
		if "$@"; then
			return 0
		fi
		for s in "${servers[@]}"; do
			pid=$(pid_of "$s") || continue
			if ! alive "$pid"; then
				say "'$s' exited during start-up" >&2
				log_tail "$s"
				stop_all
				exit 1
			fi
		done
		sleep 0.2
		tries=$((tries - 1))
	done
	say "$what: nothing after ${READY_TIMEOUT} s" >&2
	log_tail "$name"
	stop_all
	exit 1
}

# --------------------------------------------------------------------------
# Set-up

write_keystone_conf()
{
	cat <<-EOF
		# Generated by tools/keystone-server.sh
		[DEFAULT]
		log_dir = $log
		log_file = keystone-app.log
		use_stderr = false

		[database]
		connection = sqlite:///$state/keystone.db

		[token]
		provider = fernet
		# Short, so that tests can watch a token expire and be replaced.
		expiration = $ttl

		[fernet_tokens]
		key_repository = $state/fernet-keys

		[fernet_receipts]
		key_repository = $state/fernet-keys

		[credential]
		key_repository = $state/credential-keys

		[catalog]
		driver = templated
		template_file = $etc/catalog.templates

		[identity]
		# bcrypt's minimum: each password check takes milliseconds, not
		# a quarter of a second on the serial development server.
		password_hash_rounds = 4
	EOF
}

write_catalog()
{
	# $(tenant_id)s is the templated catalog's, not the shell's.
	cat <<-'EOF'
		catalog.RegionOne.identity.publicURL = http://127.0.0.1:5000/v3
		catalog.RegionOne.identity.internalURL = http://127.0.0.1:5000/v3
		catalog.RegionOne.identity.adminURL = http://127.0.0.1:5000/v3
		catalog.RegionOne.identity.name = Identity Service

		catalog.RegionOne.object-store.publicURL = http://127.0.0.1:8081/v1/AUTH_$(tenant_id)s
		catalog.RegionOne.object-store.internalURL = http://127.0.0.1:8081/v1/AUTH_$(tenant_id)s
		catalog.RegionOne.object-store.adminURL = http://127.0.0.1:8081/
		catalog.RegionOne.object-store.name = Swift Service
	EOF
}

# Install a generated file ($2, a temporary) as $1; true when it changed.
install_conf()
{
	if [ -f "$1" ] && cmp -s "$1" "$2"; then
		rm -f "$2"
		return 1
	fi
	mv -f "$2" "$1"
}

# Write the configs; true when one of them changed (running servers must
# then restart to see it).
write_confs()
{
	local changed=1
	write_keystone_conf >"$ks_conf.new"
	install_conf "$ks_conf" "$ks_conf.new" && changed=0
	write_catalog >"$etc/catalog.templates.new"
	install_conf "$etc/catalog.templates" "$etc/catalog.templates.new" &&
		changed=0
	py proxy-conf "$swift_proxy_conf" "$proxy_conf.new" ||
		die "cannot derive the 8081 proxy's config from $swift_proxy_conf"
	install_conf "$proxy_conf" "$proxy_conf.new" && changed=0
	return "$changed"
}

manage()
{
	keystone-manage --config-file "$ks_conf" "$@" >>"$log/init.log" 2>&1 ||
		{
			say "keystone-manage $1 failed; $log/init.log ends:" >&2
			tail -n 25 "$log/init.log" >&2
			return 1
		}
}

# The offline part of a first start: database, keys, admin and roles.
# db_sync and bootstrap in one line, the two key set-ups in parallel (each
# keystone-manage spends about 2 s importing).  Every keystone-manage run
# prints an eventlet "getcurrent" traceback at exit: noise, exit status 0.
init_offline()
{
	local p1 p2 p3 rc=0
	rm -rf "$state/keystone.db" "$state/fernet-keys" \
		"$state/credential-keys" "$state/initialized" "$appcred_id_file" \
		"$appcred_secret_file" "$project_id_file"
	: >"$log/init.log"
	{ manage db_sync && manage bootstrap --bootstrap-password admin \
		--bootstrap-region-id RegionOne; } &
	p1=$!
	manage fernet_setup --keystone-user root --keystone-group root &
	p2=$!
	manage credential_setup --keystone-user root --keystone-group root &
	p3=$!
	wait "$p1" || rc=1
	wait "$p2" || rc=1
	wait "$p3" || rc=1
	[ "$rc" -eq 0 ] || die "offline initialisation failed"
}

check_tools()
{
	local t
	for t in keystone-manage keystone-wsgi-public swift-proxy-server curl; do
		command -v "$t" >/dev/null ||
			die "'$t' is missing (tools/install-deps.sh --test)"
	done
	# find_spec only looks: importing them takes half a second
	/usr/bin/python3 -c 'import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ("keystonemiddleware", "keystoneclient")))' \
		2>/dev/null ||
		die "/usr/bin/python3 cannot import keystonemiddleware and" \
			"keystoneclient (tools/install-deps.sh --test)"
}

# --------------------------------------------------------------------------
# Commands

cmd_start()
{
	local p s
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	check_tools
	# The storage servers, memcached and the rings of the tempauth Swift
	# (a no-op when it runs); their proxy config is our template.
	"$top/tools/swift-server.sh" start >/dev/null ||
		die "tools/swift-server.sh start failed"
	[ -f "$swift_proxy_conf" ] || die "no $swift_proxy_conf after" \
		"tools/swift-server.sh start (BACKUPFS_SWIFT_DIR?)"
	mkdir -p "$etc" "$run" "$log"
	if write_confs; then
		stop_all # a config changed: running servers must restart
	elif all_running && healthy; then
		say "already running ($state)"
		return 0
	fi
	# Leftovers of a broken run go first, whatever state they are in.
	stop_all
	for p in 5000 8081; do
		if port_busy "$p"; then
			die "port $p on 127.0.0.1 is taken by another process"
		fi
	done
	if [ ! -f "$state/initialized" ]; then
		say "initialising Keystone ($state)"
		init_offline
		start_keystone
		start_proxy # starts while Keystone loads: both take seconds
		wait_for keystone "Keystone at $ks_url/v3" keystone_answers
		py setup "$state" >>"$log/init.log" 2>&1 || {
			say "creating users over REST failed; $log/init.log ends:" >&2
			tail -n 15 "$log/init.log" >&2
			log_tail keystone
			stop_all
			exit 1
		}
		touch "$state/initialized"
	else
		start_keystone
		start_proxy
		wait_for keystone "Keystone at $ks_url/v3" keystone_answers
	fi
	wait_for proxy "a token for tester and HEAD of its account on 8081" \
		healthy
	say "running ($state; tokens live $ttl s)"
}

# SIGTERM both groups at once, wait for whole groups, SIGKILL what is left.
stop_all()
{
	local groups=() s g tries left
	for s in "${servers[@]}"; do
		if g=$(group_of "$s"); then
			groups+=("$g")
		fi
	done
	for g in "${groups[@]+"${groups[@]}"}"; do
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
}

cmd_stop()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	stop_all
	say "stopped (the tempauth Swift is left running)"
}

cmd_status()
{
	local s g rc=0 why
	for s in "${servers[@]}"; do
		if g=$(group_of "$s"); then
			say "$s: running (process group $g)"
		else
			say "$s: stopped"
			rc=1
		fi
	done
	if why=$(py check 2>&1); then
		say "health: a token for tester can HEAD its account on 8081"
	else
		say "health: ${why:-no answer}"
		rc=1
	fi
	return "$rc"
}

cmd_env()
{
	local pid=
	[ -s "$project_id_file" ] && pid=$(cat "$project_id_file")
	cat <<-EOF
		OS_AUTH_URL=$ks_url/v3
		OS_USERNAME=tester
		OS_PASSWORD=testing
		OS_PROJECT_NAME=test
		OS_USER_DOMAIN_NAME=Default
		OS_PROJECT_DOMAIN_NAME=Default
		OS_IDENTITY_API_VERSION=3
		OS_REGION_NAME=RegionOne
		BACKUPFS_KEYSTONE_APPCRED_ID_FILE=$appcred_id_file
		BACKUPFS_KEYSTONE_APPCRED_SECRET_FILE=$appcred_secret_file
		BACKUPFS_KEYSTONE_TOKEN_EXPIRATION=$(sed -n 's/^expiration = //p' "$ks_conf" 2>/dev/null || echo "$ttl")
	EOF
	if [ -n "$pid" ]; then
		echo "BACKUPFS_KEYSTONE_STORAGE_URL=$proxy_url/v1/AUTH_$pid"
	fi
}

[ $# -eq 1 ] || usage
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) usage ;;
esac
