"""`import pse_processors` and the whole core work with no ML framework importable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        BLOCKED = {"torch", "transformers", "tensorflow", "tf_keras", "jax", "jaxlib", "flax", "mlx", "mlx_lm", "ray"}
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"blocked: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import pse_processors as pse
    vocab = pse.Vocabulary([b'{"a":', b"1", b"}", b" ", None], eos_token_ids=[4])
    grammar = pse.compile({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, vocab, backend="dfa")
    assert grammar.accepts([0, 1, 2, 4])
    assert grammar.bitmask(grammar.initial_state).dtype.name == "int32"
    try:
        pse.PSELogitsProcessor
    except ImportError as exc:
        assert "pip install 'pse-processors[torch]'" in str(exc), exc
    else:
        raise AssertionError("PSELogitsProcessor imported without torch")
    for name, extra in (("TFPSELogitsProcessor", "tf"), ("FlaxPSELogitsProcessor", "flax"), ("MLXPSELogitsProcessor", "mlx")):
        try:
            getattr(pse, name)
        except ImportError as exc:
            assert f"pip install 'pse-processors[{extra}]'" in str(exc), exc
        else:
            raise AssertionError(f"{name} imported without its framework")
    try:
        import pse_processors.ray
    except ImportError as exc:
        assert "pip install 'pse-processors[ray]'" in str(exc), exc
    else:
        raise AssertionError("pse_processors.ray imported without Ray")
    from proxy_structuring_engine import Schema, StructuringEngine
    from proxy_structuring_engine.adapters import PyTorchAdapter, MLXAdapter, TensorFlowAdapter, JAXAdapter, FrameworkAdapter
    assert Schema({"type": "object"}).json_schema == {"type": "object"}
    for cls, extra in ((PyTorchAdapter, "torch"), (TensorFlowAdapter, "tf"), (JAXAdapter, "flax"), (MLXAdapter, "mlx")):
        try:
            cls()
        except ImportError as exc:
            assert f"pip install 'pse-processors[{extra}]'" in str(exc), exc
        else:
            raise AssertionError(f"{cls.__name__} constructed without its framework")
    from pse_processors.runtime.device_tables import device_tables
    tables = device_tables(grammar, width=8)
    assert tables.allowed_mask(tables.walk([0, 1, 2])).tolist() == [False] * 4 + [True] + [False] * 3
    loaded = [m for m in sys.modules if m.split(".")[0] in Block.BLOCKED]
    assert not loaded, loaded
    print("ok")
    """
)


def test_core_imports_without_any_framework(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env={"PSE_PROCESSORS_CACHE_DIR": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
