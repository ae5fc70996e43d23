#!/usr/bin/env bash
# Install what building backupfs needs (and, with --test, what its test
# suite and benchmarks need) with apt.  Does nothing, quickly, when every
# package is installed already.
#
#   tools/install-deps.sh [--test]
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
	keystone python3-keystonemiddleware python3-keystoneclient)

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
fi

# A package counts as present only when dpkg says "install ok installed".
missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#pkgs[@]} packages installed already"
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)

echo "install-deps: missing: ${missing[*]}"
echo "install-deps: apt-get update"
apt-get -q -o DPkg::Lock::Timeout=600 update
echo "install-deps: apt-get install ${missing[*]}"
if ! apt-get install "${apt_opts[@]}" "${missing[@]}"; then
	echo "install-deps: install failed; apt-get update and retry once" >&2
	apt-get -q -o DPkg::Lock::Timeout=600 update
	apt-get install "${apt_opts[@]}" "${missing[@]}"
fi
echo "install-deps: done"
