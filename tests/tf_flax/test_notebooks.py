"""The TensorFlow/Flax notebooks execute without error in the legacy environment."""

from __future__ import annotations

import pytest

from tests.helpers import require_legacy

require_legacy("tensorflow", "tf_keras", "jax", "flax", "nbclient", "ipykernel")

from tests.helpers import notebooks_of, run_notebook  # noqa: E402


@pytest.mark.parametrize("path", notebooks_of("legacy"), ids=lambda p: p.name)
def test_legacy_notebook_executes(path):
    run_notebook(path)
