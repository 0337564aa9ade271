#!/usr/bin/env bash
# Create (or reuse) the peers' environment for the matching benchmarks: DoWhy and causalml need newer
# numpy/pandas than CausalNex allows, so they live in their own venv (.bench-venv-matching, gitignored),
# never in .venv. Python is looked up like tools/setup-env.sh does: $PYTHON, python3.10/3.11 on PATH, pyenv.
# Usage: bash bench/peers-matching.sh      (prints the venv's python path on the last line)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PEERS_VENV:-.bench-venv-matching}
want="dowhy causalml scikit-learn numpy pandas scipy pyarrow"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import dowhy, causalml, sklearn' 2>/dev/null; then
  echo "$VENV/bin/python"; exit 0
fi
source tools/find-python.sh
py=$(find_python 3.11 3.10) || { echo "error: the peers need Python 3.10 or 3.11 (set PYTHON=...)" >&2; exit 1; }
echo "peers: creating $VENV from $py (pip may take several minutes)" >&2
"$py" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$VENV/bin/python" -m pip install -q $want 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$VENV/bin/python" -c "import dowhy, causalml" >&2
"$VENV/bin/python" -c 'import importlib.metadata as m; print("peers:", *[f"{p} {m.version(p)}" for p in ("dowhy","causalml","scikit-learn","numpy","pandas")])' >&2
echo "$VENV/bin/python"
