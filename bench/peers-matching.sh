#!/usr/bin/env bash
# Create (or reuse) the peers' environment for the matching benchmarks: DoWhy and causalml need newer
# numpy/pandas than CausalNex allows, so they live in their own venv (.bench-venv-matching, gitignored),
# never in .venv. Python is looked up like tools/setup-env.sh does: $PYTHON, python3.10/3.11 on PATH, pyenv.
# Usage: bash bench/peers-matching.sh      (prints the venv's python path on the last line)
#        bash bench/peers-matching.sh sensitivity   (a second venv, .bench-venv-matching-sens: PySensemakr, which ships
#        Cinelli & Hazlett's Darfur data and needs pandas < 3, and statspai, which ships the NSW-PSID file of its Stata
#        parity tests and has Rosenbaum bounds;
#        read by bench/matching_published_se.py)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/find-python.sh
peer_venv() {  # VENV IMPORT_CHECK PKG...: reuse the venv when the check passes, else create it and install the packages
  local venv=$1 check=$2; shift 2
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then return 0; fi
  local py; py=$(find_python 3.11 3.10) || { echo "error: the peers need Python 3.10 or 3.11 (set PYTHON=...)" >&2; exit 1; }
  echo "peers: creating $venv from $py (pip may take several minutes)" >&2
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip wheel 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$venv/bin/python" -m pip install -q "$@" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$venv/bin/python" -c "$check" >&2
}
versions() {  # VENV PKG...: print the installed versions on stderr
  local venv=$1; shift
  "$venv/bin/python" -c 'import sys, importlib.metadata as m; print("peers:", *[f"{p} {m.version(p)}" for p in sys.argv[1:]])' "$@" >&2
}

if [ "${1:-}" = "sensitivity" ]; then
  VENV=${PEERS_VENV:-.bench-venv-matching-sens}
  peer_venv "$VENV" 'import sensemakr, statspai, pandas; assert int(pandas.__version__.split(".")[0]) < 3' PySensemakr statspai 'pandas>=2.2,<3'
  versions "$VENV" PySensemakr statspai numpy pandas
else
  VENV=${PEERS_VENV:-.bench-venv-matching}
  peer_venv "$VENV" 'import dowhy, causalml, sklearn' dowhy causalml scikit-learn numpy pandas scipy pyarrow
  versions "$VENV" dowhy causalml scikit-learn numpy pandas
fi
echo "$VENV/bin/python"
