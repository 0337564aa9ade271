# Source this file, then `find_python 3.10 [3.11 ...]` prints the first interpreter of one of those versions:
# $PYTHON, then pythonX.Y on PATH, then pyenv's X.Y.* (in the order the versions are given). Returns 1 if none.
find_python() {
  local c v root
  root=$( (pyenv root 2>/dev/null || echo "$HOME/.pyenv") )
  local cands=("${PYTHON:-}")
  for v in "$@"; do cands+=("$(command -v "python$v" || true)"); done
  for v in "$@"; do cands+=("$root"/versions/"$v".*/bin/python); done
  for c in "${cands[@]}"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    local have; have=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    for v in "$@"; do [ "$have" = "$v" ] && { echo "$c"; return 0; }; done
  done
  return 1
}
