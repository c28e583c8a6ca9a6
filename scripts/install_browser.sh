#!/usr/bin/env bash
# Install the headless browser the web UI's end-to-end tests drive (tests/integration/test_webui.py):
# Debian's `chromium` and its matching `chromium-driver` (Selenium talks to it). Idempotent: does
# nothing when both are on PATH; without apt-get or root it says so and leaves the tests to skip.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install_browser: not root and no sudo: install chromium and chromium-driver" \
         "yourself (the web UI browser tests will skip)" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "install_browser: no apt-get: install chromium and chromedriver yourself" \
       "(the web UI browser tests will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core
