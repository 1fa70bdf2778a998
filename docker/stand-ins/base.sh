#!/usr/bin/env bash
# The Debian bookworm base every stand-in image starts from, for a machine that reaches no image
# registry: debootstrap from Debian's archive, this machine's CA certificates trusted (a network that
# re-signs TLS, as corporate proxies do, needs its CA inside every build), imported into Docker.
# Usage: docker/stand-ins/base.sh [IMAGE]   (default local/debian:bookworm; kept if it exists)
set -euo pipefail
image=${1:-local/debian:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm into $rootfs (about 30 s)"
debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1 \
  || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
# The host's extra CAs (update-ca-certificates keeps them when ca-certificates is installed later)
# and its bundle, for the builds' first HTTPS calls. Never committed: made here, per machine.
mkdir -p "$rootfs/usr/local/share/ca-certificates" "$rootfs/etc/ssl/certs"
find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$rootfs/usr/local/share/ca-certificates/" \;
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "made $image"
