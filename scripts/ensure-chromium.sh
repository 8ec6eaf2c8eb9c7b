#!/usr/bin/env bash
# Debian's chromium for the end-to-end browser test. Installs it when we are root
# (CI, a fresh machine); otherwise says how, and the browser test skips outside CI.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium for the browser test..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "chromium is missing: run 'sudo apt-get install chromium' to enable the browser test"
fi
