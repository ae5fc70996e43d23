#!/usr/bin/env bash
# Build backupfs, back up a small sample directory into a local repository
# and mount it, all under /var/tmp/backupfs-demo.  Run it again at will:
# it unmounts a previous demo mount first.
#
#   tools/demo.sh            (as root, from anywhere)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

demo=/var/tmp/backupfs-demo
cfg=$demo/backupfs.json
mnt=$demo/mnt
src=$demo/data/vol1
backupfs=$top/build/fs/backupfs
backupctl=$top/build/tools/backupctl

say()
{
	echo "demo: $*"
}

is_mounted()
{
	# Reads the mount table only: a dead FUSE daemon cannot make it hang.
	findmnt -rn -M "$1" >/dev/null 2>&1
}

say "installing dependencies"
bash "$top/tools/install-deps.sh"

if [ ! -f build/build.ninja ]; then
	say "meson setup build"
	meson setup build
fi
say "meson compile -C build"
meson compile -C build

if is_mounted "$mnt"; then
	say "unmounting the previous demo mount at $mnt"
	if ! fusermount3 -u "$mnt"; then
		say "plain unmount failed (busy?); detaching it lazily"
		fusermount3 -z -u "$mnt"
	fi
fi

say "creating $demo"
mkdir -p "$demo/repo" "$demo/state" "$src" "$mnt"

say "writing a sample tree into $src"
mkdir -p "$src/etc" "$src/data/2026"
printf 'hello from backupfs\n' >"$src/README.txt"
printf 'listen_addresses = localhost\nport = 5433\n' >"$src/etc/postgresql.conf"
printf 'id,name\n1,alice\n2,bob\n3,carol\n' >"$src/data/2026/users.csv"
seq 1 20000 >"$src/data/numbers.txt"
printf 'a file name with spaces\n' >"$src/notes for the admin.txt"
ln -sfn etc/postgresql.conf "$src/config-link"
chmod 0600 "$src/etc/postgresql.conf"

say "writing $cfg"
cat >"$cfg" <<EOF
{
	"backend": {"type": "local", "path": "$demo/repo"},
	"key_file": "$demo/repo.key",
	"state_dir": "$demo/state",
	"instances": {
		"vol1": {"datastore": "files", "path": "$src", "snapshot": "auto"}
	}
}
EOF

if [ -e "$demo/repo.key" ]; then
	say "repository exists already (key $demo/repo.key)"
else
	say "backupctl init"
	"$backupctl" --config "$cfg" init
fi

say "backupctl snapshot vol1 --label demo --wait"
"$backupctl" --config "$cfg" snapshot vol1 --label demo --wait

say "mounting at $mnt"
"$backupfs" -o "config=$cfg" "$mnt"
if ! is_mounted "$mnt"; then
	say "backupfs returned but $mnt is not mounted" >&2
	exit 1
fi

inst=$mnt/instances/vol1
cat <<EOF

backupfs is mounted at $mnt.  Things to try:

  ls -l $inst/backups/
  cat $inst/status
  tar -tvf $inst/backups/latest
  getfattr -d $inst/backups/latest
  touch $inst/snapshots/my-first-snapshot      # starts a backup
  cat $inst/snapshots/my-first-snapshot        # its progress (JSON)
  cat $inst/events
  echo 'changed' >> $src/README.txt
  cp $inst/backups/\$(readlink $inst/backups/latest) $inst/restore/   # restore vol1
  cat $src/README.txt

Unmount with:

  fusermount3 -u $mnt
EOF
