#!/usr/bin/env bash
# Install what building backupfs needs (and, with --test, what its test
# suite and benchmarks need) with apt.  Does nothing, quickly, when every
# package is installed already.
#
#   tools/install-deps.sh [--test]
#
# With --test it also installs pouchdb-server (the CouchDB API server of
# tools/couch-server.sh) with npm into $BACKUPFS_COUCH_NPM_DIR, default
# /var/cache/backupfs/pouchdb-server, unless that version is there already.
set -euo pipefail

build_pkgs=(meson ninja-build pkg-config gcc libfuse3-dev fuse3
	libcurl4-openssl-dev libssl-dev zlib1g-dev libjansson-dev libzstd-dev
	libarchive-dev)
# python3-pytest runs the integration suite, attr gives getfattr (demo),
# btrfs-progs and xfsprogs make loop file systems for snapshot tests,
# restic is the benchmark's point of comparison, rclone (rclone mount of
# a Swift object) that of tools/bench --backend swift; openssl and gzip
# make Trove's legacy backups in the tests exactly as Trove did.
test_pkgs=(python3-pytest attr btrfs-progs xfsprogs restic rclone openssl gzip
	# a real OpenStack Swift all-in-one and Keystone v3 on loopback
	# (tools/swift-server.sh, tools/keystone-server.sh)
	swift swift-proxy swift-account swift-container swift-object
	python3-swiftclient memcached curl
	keystone python3-keystonemiddleware python3-keystoneclient
	# PostgreSQL 15, MariaDB 10.11 with mariabackup and pouchdb-server
	# (npm) on loopback: tools/pg-server.sh, tools/mariadb-server.sh,
	# tools/couch-server.sh
	postgresql-15 postgresql-client-15
	mariadb-server mariadb-backup mariadb-client)

couch_npm_dir=${BACKUPFS_COUCH_NPM_DIR:-/var/cache/backupfs/pouchdb-server}
couch_version=4.2.0

usage()
{
	echo "usage: $0 [--test]" >&2
	exit 2
}

with_test=0
for arg in "$@"; do
	case "$arg" in
	--test) with_test=1 ;;
	-h | --help) usage ;;
	*)
		echo "install-deps: unknown argument '$arg'" >&2
		usage
		;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: must run as root (apt-get install)" >&2
	exit 1
fi

pkgs=("${build_pkgs[@]}")
if [ "$with_test" -eq 1 ]; then
	pkgs+=("${test_pkgs[@]}")
	# Node.js and npm only where there is no npm: a machine may carry a
	# Node.js from elsewhere whose package bundles npm and conflicts with
	# Debian's npm package.
	if ! command -v npm >/dev/null; then
		pkgs+=(nodejs npm)
	fi
fi

# A package counts as present only when dpkg says "install ok installed".
missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

# pouchdb-server 4.2.0 in its own directory.  --ignore-scripts: the only
# install script that matters would compile the optional sqlite3 backend
# (over a minute); leveldown loads its shipped prebuilt binary without one.
install_pouchdb()
{
	local pkg=$couch_npm_dir/node_modules/pouchdb-server/package.json
	if [ -f "$pkg" ] &&
		grep -q "\"version\": *\"$couch_version\"" "$pkg" &&
		[ -x "$couch_npm_dir/node_modules/.bin/pouchdb-server" ]; then
		echo "install-deps: pouchdb-server $couch_version installed already"
		return 0
	fi
	echo "install-deps: npm install pouchdb-server@$couch_version" \
		"into $couch_npm_dir"
	mkdir -p "$couch_npm_dir"
	(
		cd "$couch_npm_dir"
		[ -f package.json ] || npm init -y >/dev/null
		npm install --ignore-scripts --no-audit --no-fund \
			"pouchdb-server@$couch_version"
	)
}

# No package may start its service while installing: without systemd,
# mariadb-server's postinst would otherwise start a server on 3306 through
# its init script.  Where the machine has no policy-rc.d, one that denies
# every start is in place for the install.
policy=/usr/sbin/policy-rc.d
own_policy=0
restore_policy()
{
	if [ "$own_policy" -eq 1 ]; then
		rm -f "$policy"
	fi
}

install_pkgs()
{
	export DEBIAN_FRONTEND=noninteractive
	local apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)

	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
		trap restore_policy EXIT
	fi
	echo "install-deps: missing: ${missing[*]}"
	echo "install-deps: apt-get update"
	apt-get -q -o DPkg::Lock::Timeout=600 update
	echo "install-deps: apt-get install ${missing[*]}"
	if ! apt-get install "${apt_opts[@]}" "${missing[@]}"; then
		echo "install-deps: install failed; apt-get update and retry once" >&2
		apt-get -q -o DPkg::Lock::Timeout=600 update
		apt-get install "${apt_opts[@]}" "${missing[@]}"
	fi
	restore_policy
	own_policy=0
}

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#pkgs[@]} packages installed already"
else
	install_pkgs
fi
if [ "$with_test" -eq 1 ]; then
	install_pouchdb
fi
echo "install-deps: done"
