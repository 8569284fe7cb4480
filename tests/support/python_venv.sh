# shellcheck shell=bash
# Sourced by the test scripts that run Python tools (schemathesis, webhooks, cloudevents, the
# example agents): one venv per tool, made once and reused while its requirements file and the
# Python version stay the same; concurrent runs (the SQLite and PostgreSQL twins) wait on a lock.
#   ensure_python_venv LABEL VENV REQUIREMENTS [PYTHON_CHECK]
# PYTHON (default python3) makes the venv; PYTHON_CHECK, when given, is Python code that must run
# in the new venv (an import that proves the install) before it is marked ready.
ensure_python_venv() {
  local label="$1" venv="$2" req="$3" check="${4:-}" python="${PYTHON:-python3}" want
  want="$(sha256sum "$req" | cut -d' ' -f1) $("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  mkdir -p "$(dirname "$venv")"
  (
    flock 9
    if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements.done" 2>/dev/null)" != "$want" ]]; then
      echo "$label: creating $venv ($("$python" --version 2>&1))"
      rm -rf "$venv"
      "$python" -m venv "$venv"
      timeout 600 "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
      if [[ -n "$check" ]]; then "$venv/bin/python" -c "$check"; fi
      printf '%s\n' "$want" >"$venv/.requirements.done"
    fi
  ) 9>"$venv.lock"
}
