"""The llguidance range in ``pyproject.toml`` is the range the environments test: its lowest minor
release in the serve environment (the one vLLM's CPU build pins), its highest in main.

Runs in both (no vLLM needed): ``tests/`` in main, ``tests/vllm`` in serve. Each run checks that
its own llguidance is inside the package's range and is the release its environment pins, so a
range widened past what an environment runs, or an environment drifting out of it, fails here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import tomllib

from tests.helpers import ROOT, SERVE_REQUIRED

Version = tuple[int, ...]


def _version(text: str) -> Version:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def _bounds(spec: str) -> tuple[Version, Version]:
    """``(lowest allowed, first excluded)`` of a ``>=A,<B`` or ``==A`` requirement."""
    spec = spec.split("#")[0].strip()
    pinned = re.fullmatch(r"==\s*([\d.]+)", spec)
    if pinned:
        low = _version(pinned.group(1))
        return low, low[:-1] + (low[-1] + 1,)
    low = re.search(r">=\s*([\d.]+)", spec)
    high = re.search(r"<\s*([\d.]+)", spec)
    assert low and high, f"llguidance requirement {spec!r} should be '>=A,<B' or '==A'"
    return _version(low.group(1)), _version(high.group(1))


def _requirement(lines: list[str]) -> str:
    found = [line[len("llguidance"):] for line in lines if re.match(r"llguidance\s*[<>=]", line)]
    assert len(found) == 1, found
    return found[0]


def package_range() -> tuple[Version, Version]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    return _bounds(_requirement(dependencies))


def environment_range(name: str) -> tuple[Version, Version]:
    return _bounds(_requirement((ROOT / "requirements" / f"{name}.txt").read_text().splitlines()))


def test_the_package_range_spans_exactly_the_releases_the_environments_test() -> None:
    low, high = package_range()
    serve_low, serve_high = environment_range("serve")
    main_low, main_high = environment_range("main")
    assert serve_low == low and serve_high == (low[0], low[1] + 1), "serve tests the range's lowest minor release"
    assert main_low < high and (main_low[0], main_low[1] + 1) == high[:2], "main tests the range's highest minor release"
    assert low <= main_low and serve_high <= high


def test_this_environment_runs_an_llguidance_inside_the_range_and_its_own_pin() -> None:
    installed = _version(importlib.metadata.version("llguidance"))
    low, high = package_range()
    assert low <= installed < high, (installed, low, high)
    serve = SERVE_REQUIRED or importlib.util.find_spec("vllm") is not None
    env_low, env_high = environment_range("serve" if serve else "main")
    assert env_low <= installed < env_high, ("serve" if serve else "main", installed)
