#!/usr/bin/env bash
# Install LocalStack's core (4.13.1, the last line that runs on Python 3.11) into its OWN virtualenv,
# pinned by LocalStack's own lock set (constraints-4.13.1.txt beside this script): unpinned installs pick
# newer cbor2/pyOpenSSL releases that break its start-up. The venv lives outside the repo by default, in a
# cache folder that survives fresh clones (CI clones anew each run); a stamp records what it was built from.
# Prints the venv's python on stdout. Usage: tools/localstack/venv.sh [VENV_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=4.13.1
constraints="$here/constraints-$version.txt"
venv="${1:-${THUMBX_LOCALSTACK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/thumbx/localstack-$version-py311}}"
python="${PYTHON:-python3}"
want="localstack-core[runtime]==$version $(sha256sum "$constraints" | cut -c1-16) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ -x "$venv/bin/python" && -f "$venv/.thumbx-stamp" && "$(cat "$venv/.thumbx-stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "localstack-core 4.13.1 wants Python 3.11"'
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet "localstack-core[runtime]==$version" -c "$constraints" >&2
"$venv/bin/python" -c 'import localstack.runtime.main' >&2
echo "$want" > "$venv/.thumbx-stamp"
echo "$venv/bin/python"
