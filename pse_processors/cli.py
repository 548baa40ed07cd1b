"""Command line: structured extraction with the embedded SmolLM2 model (or a local model folder).

    pse-processors extract "John Smith is a developer." --schema '{"type": "object", ...}'
    pse-processors demo [--framework mlx]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

DEMO_TEXT = "Extract a name from this text: John Smith is a developer."
DEMO_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 64},
        "occupation": {"type": "string", "maxLength": 64},
    },
    "required": ["name", "occupation"],
}


def extract(
    prompt: str, schema: Any, model_dir: Optional[str] = None, max_new_tokens: int = 128, framework: str = "torch"
) -> Any:
    """Run a greedy, schema-constrained generation for ``prompt`` and return the parsed value.

    ``framework="mlx"`` runs the embedded model with mlx-lm (no torch); it takes no ``model_dir``.
    """
    if framework == "mlx":
        return _extract_mlx(prompt, schema, model_dir, max_new_tokens)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .torch import PSELogitsProcessor

    hf_logging.disable_progress_bar()

    if model_dir is None:
        from .embedded import smollm2_dir

        model_dir = str(smollm2_dir())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    processor = PSELogitsProcessor(schema, tokenizer, generation_config=model.generation_config)
    if tokenizer.chat_template:
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    else:
        inputs = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **inputs, logits_processor=[processor], max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
    return processor.parse(out[0], prompt_length=inputs["input_ids"].shape[1])


def _extract_mlx(prompt: str, schema: Any, model_dir: Optional[str], max_new_tokens: int) -> Any:
    if model_dir is not None:
        raise ValueError("--framework mlx runs the embedded model only; drop --model-dir")
    from mlx_lm import generate

    from .embedded import load_smollm2_mlx
    from .mlx import MLXPSELogitsProcessor

    model, tokenizer = load_smollm2_mlx()
    processor = MLXPSELogitsProcessor(schema, tokenizer)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
    text = generate(model, tokenizer, ids, max_tokens=max_new_tokens, logits_processors=[processor])
    return processor.parse(text)


def _schema_arg(value: str) -> Any:
    path = Path(value)
    if path.exists():
        value = path.read_text(encoding="utf-8")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--schema is neither a JSON file nor JSON text: {exc}") from exc


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pse-processors", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("extract", help="extract JSON matching a schema from a prompt")
    run.add_argument("prompt")
    run.add_argument("--schema", type=_schema_arg, required=True, help="JSON Schema text or a file holding it")
    run.add_argument("--model-dir", help="a local transformers model folder (default: the embedded SmolLM2)")
    run.add_argument("--max-new-tokens", type=int, default=128)
    demo = commands.add_parser("demo", help=f"extract from {DEMO_TEXT!r} with the embedded model")
    demo.add_argument("--max-new-tokens", type=int, default=128)
    for command in (run, demo):
        command.add_argument(
            "--framework", choices=("torch", "mlx"), default="torch", help="run with transformers/PyTorch or mlx-lm"
        )
    args = parser.parse_args(argv)
    if args.framework == "mlx" and getattr(args, "model_dir", None):
        parser.error("--framework mlx runs the embedded model only; drop --model-dir")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .errors import PSEError

    try:
        if args.command == "demo":
            result = extract(DEMO_TEXT, DEMO_SCHEMA, max_new_tokens=args.max_new_tokens, framework=args.framework)
        else:
            result = extract(args.prompt, args.schema, args.model_dir, args.max_new_tokens, framework=args.framework)
    except (PSEError, FileNotFoundError) as exc:
        print(f"pse-processors: error: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
