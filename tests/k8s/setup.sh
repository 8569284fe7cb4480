#!/usr/bin/env bash
# Creates the validator's virtualenv, <repo>/.cache/k8s/venv, with tests/k8s/requirements.txt
# installed from PyPI. Cached: when the venv was made from the same requirements.txt and the same
# Python, it does nothing (no network). Prints the venv's python on stdout.
#
#   tests/k8s/setup.sh            # then: .cache/k8s/venv/bin/python tests/k8s/validate.py ...
#
# Environment: PYTHON (default python3) the interpreter to make the venv with (3.9 or newer).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.cache/k8s/venv"
req="$here/requirements.txt"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1) $("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
if [[ -x "$venv/bin/python" && -f "$venv/.requirements.done" && "$(cat "$venv/.requirements.done")" == "$want" ]]; then
    printf '%s\n' "$venv/bin/python"
    exit 0
fi

echo "k8s/setup: creating $venv ($("$python" --version 2>&1))" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
"$venv/bin/python" -c 'import yaml, jsonschema, kubernetes_validate, celpy' >&2
printf '%s\n' "$want" >"$venv/.requirements.done"
echo "k8s/setup: installed $(grep -cE '^[A-Za-z]' "$req") pinned packages" >&2
printf '%s\n' "$venv/bin/python"
