#!/usr/bin/env bash
# Regenerate requirements.lock: every package of every extra in pyproject.toml, pinned with its
# sha256 hashes (uv pip compile --generate-hashes), preferring the versions installed in .venv,
# i.e. the ones the tests ran on. Run after changing pyproject.toml (or merging new extras):
#   make lock            (or: scripts/lock.sh)
# torch==2.13.0 resolves to the CPU wheel (2.13.0+cpu) when pip's find-links folder holds it
# (/opt/wheels here; PIP_FIND_LINKS or pip.conf's find-links elsewhere); the wheel's own hash is
# recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
UV=${UV:-$(dirname "$PY")/uv}
[ -x "$UV" ] || UV=$(command -v uv) || { echo "uv is missing: $PY -m pip install uv" >&2; exit 1; }
links=()
for d in ${PIP_FIND_LINKS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true); do
  [ -d "$d" ] && links+=(--find-links "$d")
done
prefs=$(mktemp)
trap 'rm -f "$prefs"' EXIT
"$PY" -m pip freeze --exclude-editable 2>/dev/null | grep -v -i -e '^skinscreen' -e ' @ ' -e '^-e' >"$prefs" || true
"$UV" pip compile pyproject.toml --all-extras --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 "${links[@]}" --constraint "$prefs" \
  --no-emit-package skinscreen --no-annotate --custom-compile-command "make lock" -o requirements.lock "$@"
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) pins)" >&2
