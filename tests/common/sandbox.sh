#!/bin/sh
# The conditions of Nix's build sandbox, for a check that NixOS runs while it builds a system.
# tests/common/sandbox.rs runs this under `unshare --net --mount --uts --ipc --pid --fork`
# (the namespaces of `options.cloneFlags` in nix's linux-derivation-builder.cc:
# CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS, and CLONE_NEWNET for every
# derivation that is not fixed-output).
#
#   sandbox.sh BUILD_TOP USER -- COMMAND...
#
# BUILD_TOP is the build directory (nix: /build, the working directory, $NIX_BUILD_TOP and
# $TMPDIR); USER is `nixbld` (uid 1000, gid 100: the builder's ids in nix's user namespace) or
# `root` (for nft, which nixpkgs runs against an LKL kernel of its own, see sandbox.rs).
# $SANDBOX_ETC names files of the system's /etc to keep (what a check's libredirect maps).
#
# What nix does (NixOS/nix@03db345dfe6c, src/libstore/unix/build/linux-derivation-builder.cc
# and chroot-derivation-builder.cc@0a2ae2d8fa4f), and what this does instead:
# - brings up `lo` only (SIOCSIFFLAGS IFF_UP|IFF_LOOPBACK|IFF_RUNNING): `ip link set lo up`;
# - host name `localhost`, domain name `(none)`;
# - a chroot holding the inputs' closure, /tmp (1777), /dev (null, zero, full, random,
#   urandom, tty, fd, shm, pts), /proc and an /etc with only passwd, group and hosts: there is
#   no chroot here (Debian's daemons live in /usr), so tmpfs hides /etc, /var, /run and /tmp,
#   and /etc gets nix's three files. /etc/ld.so.cache and /etc/alternatives are bound back in:
#   they are how Debian's binaries find their libraries and names, which a Nix-built binary
#   carries in its RUNPATH and store path instead.
# - the environment cleared (the derivation's attributes, then NIX_BUILD_TOP, TMPDIR, TEMPDIR,
#   TMP, TEMP, PATH, HOME=/homeless-shelter, NIX_STORE and one variable per output).
set -eu

top=$1
user=$2
shift 3

ip link set lo up
hostname localhost
mount --make-rprivate /

# The new /etc is built beside the build directory, with Debian's loader cache and
# alternatives bound into it while the real /etc is still visible, then moved over /etc.
etc="$top/../sandbox-etc"
mkdir -p "$etc/alternatives"
: > "$etc/ld.so.cache"
mount -n --bind /etc/alternatives "$etc/alternatives"
mount -n --bind /etc/ld.so.cache "$etc/ld.so.cache"
# Files of the system's /etc a check redirects to (nixpkgs: libredirect's NIX_REDIRECTS).
for file in ${SANDBOX_ETC:-}; do
  if [ -d "/etc/$file" ]; then mkdir -p "$etc/$file"; else : > "$etc/$file"; fi
  mount -n --bind "/etc/$file" "$etc/$file"
done
# The sandbox's own directory may lie below one of the trees hidden next (a target directory
# under /tmp): hold it open, and bind it back at its path inside the new tmpfs.
root=$(cd "$top/.." && pwd -P)
exec 3<"$root"
for d in /var /run /tmp; do
  mount -n -t tmpfs -o mode=0755 nixstack-sandbox "$d"
done
case "$root" in
  /var/* | /run/* | /tmp/*)
    mkdir -p "$root"
    # -c: mount would otherwise resolve the fd link to the path it is now hiding
    mount -n -c --rbind /proc/self/fd/3 "$root"
    ;;
esac
exec 3<&-
chmod 1777 /tmp
cat > "$etc/passwd" <<'EOF'
root:x:0:0:Nix build user:/build:/noshell
nixbld:x:1000:100:Nix build user:/build:/noshell
nobody:x:65534:65534:Nobody:/:/noshell
EOF
cat > "$etc/group" <<'EOF'
root:x:0:
nixbld:!:100:
nogroup:x:65534:
EOF
cat > "$etc/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost
EOF
chmod 0555 "$etc"
mount -n --rbind "$etc" /etc

cd "$top"
set -- env -i \
  PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/homeless-shelter \
  NIX_BUILD_TOP="$top" TMPDIR="$top" TEMPDIR="$top" TMP="$top" TEMP="$top" \
  NIX_STORE=/nix/store \
  out="$top/out" \
  "$@"
if [ "$user" = root ]; then
  exec "$@"
fi
exec setpriv --reuid=1000 --regid=100 --clear-groups --inh-caps=-all --bounding-set=-all "$@"
