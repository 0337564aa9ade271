#!/usr/bin/env bash
# Create .bench-venv-discovery: a separate venv holding causal-learn (the peer library for bench/discovery_bench.py).
# It is kept apart from .venv so that nothing it pulls in can disturb CausalNex's pins.
# Python is looked up like tools/setup-env.sh does: $PYTHON, python3.10/3.11 on PATH, pyenv's 3.10/3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BENCH_VENV:-.bench-venv-discovery}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import causallearn" 2>/dev/null; then
  exit 0
fi
source tools/find-python.sh
py=$(find_python 3.10 3.11) || { echo "error: peers venv needs Python 3.10 or 3.11 (set PYTHON=...)" >&2; exit 1; }
echo "peers: creating $VENV from $py"
"$py" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "causal-learn==0.1.4.*" pandas 2>&1 | grep -v "^WARNING" || true
"$VENV/bin/python" -c "import causallearn, numpy; print('peers: causal-learn ready, numpy', numpy.__version__)"
