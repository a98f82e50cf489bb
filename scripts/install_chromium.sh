#!/usr/bin/env bash
# Install Debian's Chromium for the real-browser check (tests/test_browser.py, `make browser-check`) when it is missing
# and this machine allows it (root and apt-get); otherwise say why and leave the machine as it is (the browser test then
# skips with its reason). Exit status 0 either way: a missing browser never fails the build by itself.
# `make browser-deps` and .ci/run call this.
set -uo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "[browser] found $(command -v "$name"): $("$name" --version 2>/dev/null | head -1)"
    exit 0
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "[browser] Chromium is missing and this is not root: not installed (sudo apt-get install chromium); the browser test will skip"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[browser] Chromium is missing and there is no apt-get here: not installed; the browser test will skip"
  exit 0
fi
echo "[browser] installing Debian's chromium (apt-get update, then install --no-install-recommends)"
start=$SECONDS
if apt-get update -qq >/tmp/chromium-apt.log 2>&1 \
   && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >>/tmp/chromium-apt.log 2>&1; then
  echo "[browser] installed $(command -v chromium): $(chromium --version 2>/dev/null | head -1) in $((SECONDS - start)) s"
else
  echo "[browser] apt-get failed (log: /tmp/chromium-apt.log, last lines below); the browser test will skip"
  tail -5 /tmp/chromium-apt.log
fi
exit 0
