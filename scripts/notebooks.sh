#!/usr/bin/env bash
# Re-execute every notebook in its environment and save the outputs into notebooks/*.ipynb.
#   bash scripts/notebooks.sh [notebooks/x.ipynb ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
for env in main legacy; do
  py="$(bash scripts/setup_env.sh "$env" | tail -n 1)"
  "$py" scripts/execute_notebooks.py --env "$env" --write "$@"
done
