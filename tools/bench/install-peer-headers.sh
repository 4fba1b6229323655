#!/usr/bin/env bash
# Debian's libjpeg, zlib and lcms2 headers, so `make bench-peers` can build Pillow-SIMD on a fresh machine.
# Bench-only (never a runtime dependency). Installs nothing when the headers are there; without root or apt
# it says so and exits 0: the bench then lists Pillow-SIMD as skipped, with the reason.
set -uo pipefail
missing=0
for header in jpeglib.h zlib.h lcms2.h; do
    [[ -e /usr/include/$header || -n "$(find /usr/include -maxdepth 2 -name "$header" -print -quit 2>/dev/null)" ]] \
        || missing=1
done
if [[ $missing == 0 ]]; then
    exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "bench-peers: libjpeg/zlib/lcms2 headers missing and no root apt-get; Pillow-SIMD will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
timeout 300 apt-get update -qq \
    && timeout 600 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
        libjpeg-dev zlib1g-dev liblcms2-dev >/dev/null \
    || echo "bench-peers: installing the headers failed; Pillow-SIMD will be skipped" >&2
exit 0
