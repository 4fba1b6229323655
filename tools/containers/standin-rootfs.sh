#!/usr/bin/env bash
# The root filesystem of the STAND-IN for python:3.11.14-slim-bookworm, for machines that reach no container
# registry: Debian bookworm (minbase) from debootstrap with Debian's Python 3.11, venv and CA certificates,
# plus this machine's CA bundle (pip must trust this machine's TLS-inspecting egress; the image sets
# PIP_CERT to it). `python` points at python3, as in the official image. Users build on the real image.
# Cached as a tarball outside the repo (key: packages + CA bundle); prints its path.
# Needs root and Debian's debootstrap (apt-get install debootstrap).
set -euo pipefail
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=python3,python3-venv,ca-certificates
ca=/etc/ssl/certs/ca-certificates.crt
cache="${THUMBX_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/thumbx/containers}"
key="$(printf '%s %s %s\n' "$suite" "$packages" "$(sha256sum "$ca" | cut -c1-16)" | sha256sum | cut -c1-16)"
tarball="$cache/python-standin-$suite-$key.tar"
if [[ -s "$tarball" ]]; then
    echo "$tarball"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap not found: apt-get install debootstrap" >&2; exit 3; }
mkdir -p "$cache"
work="$(mktemp -d "$cache/rootfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
timeout 900 debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
install -m 0644 "$ca" "$work/rootfs/usr/local/share/thumbx-standin-ca.crt"
ln -sf /usr/bin/python3 "$work/rootfs/usr/local/bin/python"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$tarball"
echo "$tarball"
