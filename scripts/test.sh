#!/usr/bin/env bash
# Sets up .venv (first time only), lints, and runs every test, the real embedded-LLM ones
# included. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# The report's screenshot test renders report.html in Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "[setup] installing Debian's chromium (for the report screenshot test)"
    { $SUDO apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } ||
      echo "[setup] apt-get could not install chromium: the report screenshot test will be skipped (it fails under CI=true)"
  else
    echo "[setup] chromium is missing and apt-get cannot install it here: the report screenshot test will be skipped (it fails under CI=true)"
  fi
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
