"""``from pse_processors import *`` (and the same from ``proxy_structuring_engine``) imports every
name of ``__all__``, so ``__all__`` holds only the names whose framework is installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

# A package set to None in sys.modules is absent: importing it raises ImportError, find_spec says None.
BLOCK = textwrap.dedent(
    """
    import sys

    for name in sys.argv[1].split(","):
        if name:
            sys.modules[name] = None
    """
)
STAR = BLOCK + textwrap.dedent(
    """
    namespace = {}
    exec("from pse_processors import *", namespace)
    exec("from proxy_structuring_engine import *", namespace)
    import pse_processors, proxy_structuring_engine
    assert set(pse_processors.__all__) <= set(namespace) and set(proxy_structuring_engine.__all__) <= set(namespace)
    print(",".join(sorted(set(pse_processors._PUBLIC_NAMES) - set(pse_processors.__all__))))
    """
)
FRAMEWORKS = {"torch", "transformers", "tensorflow", "tf_keras", "jax", "jaxlib", "flax", "mlx", "mlx_lm", "ray"}


def star_import(blocked: set) -> list[str]:
    """The public names that ``import *`` leaves out with ``blocked`` packages unimportable."""
    result = subprocess.run(
        [sys.executable, "-c", STAR, ",".join(sorted(blocked))], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [name for name in result.stdout.strip().split(",") if name]


def installed(*packages: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in packages)


def test_star_import_in_this_environment():
    missing = set(star_import(set()))
    expected = set()
    if not installed("torch", "transformers"):
        expected.add("PSELogitsProcessor")
    import transformers

    transformers_4 = int(transformers.__version__.split(".")[0]) < 5
    if not (installed("tensorflow", "tf_keras") and transformers_4):
        expected.add("TFPSELogitsProcessor")
    if not (installed("jax", "flax") and transformers_4):
        expected.add("FlaxPSELogitsProcessor")
    if not installed("mlx", "mlx_lm"):
        expected.add("MLXPSELogitsProcessor")
    assert missing == expected
    if not transformers_4:  # the main environment: no TensorFlow, no Flax
        assert missing == {"TFPSELogitsProcessor", "FlaxPSELogitsProcessor"}


@pytest.mark.parametrize("blocked, left_out", [
    (FRAMEWORKS, ["FlaxPSELogitsProcessor", "MLXPSELogitsProcessor", "PSELogitsProcessor", "TFPSELogitsProcessor"]),
    ({"mlx"}, ["FlaxPSELogitsProcessor", "MLXPSELogitsProcessor", "TFPSELogitsProcessor"]),
])
def test_star_import_leaves_out_what_is_missing(blocked, left_out):
    if "transformers" not in blocked and int(__import__("transformers").__version__.split(".")[0]) < 5:
        pytest.skip("the main environment's case (transformers 5)")
    assert star_import(blocked) == left_out


def test_a_missing_framework_name_still_says_what_to_install():
    import proxy_structuring_engine

    import pse_processors

    if "TFPSELogitsProcessor" in pse_processors.__all__:
        pytest.skip("TensorFlow is installed here")
    for module in (pse_processors, proxy_structuring_engine):
        with pytest.raises(ImportError, match=r"pip install 'pse-processors\[tf\]'"):
            module.TFPSELogitsProcessor
