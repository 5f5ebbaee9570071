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


def pytest_collection_modifyitems(config, items):
    """Skip the registry's tests with a huggingface_hub before 1.0 (the floors run of se-zoo).

    They drive the registry through the client's httpx session (``get_session().request(content=...)``),
    which older clients, built on requests, do not have; .ci/run runs them with the newest client in the
    registry's own venv. se-zoo's own use of an older client against the registry is tested in tests/hub.
    """
    import huggingface_hub

    if int(huggingface_hub.__version__.split(".")[0]) >= 1:
        return
    skip = pytest.mark.skip(reason=f"huggingface_hub {huggingface_hub.__version__}: the registry's tests use the "
                                   "httpx session of huggingface_hub >= 1.0 (run in the registry's venv)")
    for item in items:
        if "tests/registry/" in item.nodeid:
            item.add_marker(skip)
