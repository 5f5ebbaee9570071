"""The registry's tests need no torch: nothing here imports it, and a test that does fails.

Model-side tests that go through the registry (timm or se-zoo weights pushed, mirrored, loaded, or a
training output's pages) are in ``tests/hub``; the browser test, which pushes a trained model, is in
``tests/system``.
"""
import sys

import pytest


@pytest.fixture(autouse=True)
def _stays_torch_free():
    """Fail a registry test that loads torch or timm (checked when they were not loaded before it)."""
    before = {name for name in ("torch", "timm") if name in sys.modules}
    yield
    loaded = {name for name in ("torch", "timm") if name in sys.modules} - before
    assert not loaded, f"a registry test imported {sorted(loaded)}; model-side tests belong in tests/hub"
