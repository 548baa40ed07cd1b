#!/usr/bin/env bash
# The one test command: sets up every environment, fetches the assets, runs all tests.
#   bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1

py="$(bash scripts/setup_env.sh main | tail -n 1)"
"$py" scripts/fetch_assets.py

status=0
"$py" -m pytest tests pse_processors --doctest-modules -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests in the main environment: failing" >&2
  exit 1
fi
exit "$status"
