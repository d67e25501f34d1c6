#!/usr/bin/env bash
# Sets up .venv (first time only) and runs the main job: the loop on the bundled Lending Club
# example with the embedded LLM, offline. Extra arguments go to 'synthloop run'.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/synthloop run examples/lending_club.yaml "$@"
