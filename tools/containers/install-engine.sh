#!/usr/bin/env bash
# Debian's docker.io (dockerd, containerd, runc) and debootstrap, for `make test-containers`. Root only;
# installs nothing when both are present. No service is enabled or started: tests start their own dockerd.
set -euo pipefail
if command -v dockerd >/dev/null && command -v debootstrap >/dev/null; then
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "make test-containers needs root (dockerd, debootstrap)" >&2
    exit 3
fi
export DEBIAN_FRONTEND=noninteractive
timeout 300 apt-get update -qq
timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
