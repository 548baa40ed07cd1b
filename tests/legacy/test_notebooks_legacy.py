"""The TensorFlow/Flax notebooks execute without error in the legacy environment."""

from __future__ import annotations

import pytest

from legacy_support import require

require("tensorflow", "tf_keras", "jax", "flax", "nbclient", "ipykernel")

from notebook_support import notebooks_of, run  # noqa: E402


@pytest.mark.parametrize("path", notebooks_of("legacy"), ids=lambda p: p.name)
def test_legacy_notebook_executes(path):
    run(path)
