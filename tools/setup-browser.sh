#!/usr/bin/env bash
# Install headless Chromium (Debian packages chromium, chromium-driver) for the browser tests, if missing.
# Without root or apt-get it only says so: the browser tests then skip with that reason.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "setup: could not install chromium; browser tests will be skipped"
else
  echo "setup: chromium not found and cannot install it (needs root + apt-get); browser tests will be skipped"
fi
exit 0
