#!/usr/bin/env bash
# Fail when the exported library is out of step with the notebooks, or notebooks are not clean.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
before=$(git status --porcelain -- causal_llmrec nbs README.md)
"$BIN/nbdev_export"
"$BIN/nbdev_clean"
after=$(git status --porcelain -- causal_llmrec nbs README.md)
if [ "$before" != "$after" ]; then
  echo "error: nbdev_export / nbdev_clean changed files; the library is out of sync with nbs/:" >&2
  git status --porcelain -- causal_llmrec nbs >&2
  git --no-pager diff --stat -- causal_llmrec nbs >&2
  exit 1
fi
echo "sync: library and notebooks in step, notebooks clean"
