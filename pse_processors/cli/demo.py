"""``pse-processors demo``: a real extraction with the embedded SmolLM2 model."""

from __future__ import annotations

import argparse
from typing import Any

from .generate import add_model_arguments, generate_one

#: Enough for the demo's two short fields.
DEMO_MAX_NEW_TOKENS = 128

DEMO_TEXT = "Extract a name from this text: John Smith is a developer."
DEMO_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 64},
        "occupation": {"type": "string", "maxLength": 64},
    },
    "required": ["name", "occupation"],
}


def add_parser(commands: Any, parents: list) -> None:
    parser = commands.add_parser("demo", parents=parents, help=f"extract from {DEMO_TEXT!r} with the embedded model")
    add_model_arguments(parser, max_new_tokens=DEMO_MAX_NEW_TOKENS)
    parser.set_defaults(run=run)  # no compiler options: compile_options() gives the defaults


def run(args: argparse.Namespace) -> int:
    return generate_one(args, DEMO_TEXT, DEMO_SCHEMA)
