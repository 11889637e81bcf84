#!/usr/bin/env bash
#! Installs Debian's chromium (once) where apt is usable, for the test that opens a sweep's HTML
#! report in a real browser; prints the browser's path. Without root or apt it says what to do
#! and exits 1 (the test then fails, naming this script, rather than passing silently).
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then command -v "$b"; exit 0; fi
done
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian's chromium (once, for the report's browser test)" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq chromium >/dev/null 2>&1) \
    || (apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null)
  command -v chromium
  exit 0
fi
echo "setup: chromium is not installed and apt-get is not usable here (needs root): sudo apt-get install chromium" >&2
exit 1
