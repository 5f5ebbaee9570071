"""Fixtures for the whole suite; imports no torch, so ``tests/registry`` runs without it.

Shared helpers live in ``tests/helpers`` (``from helpers.weights import randomize_``); the registry
server fixtures come from the ``helpers.hub`` plugin below.
"""
import sys

import pytest

import se_zoo  # noqa: F401  (torch-free: registers the models with timm when timm is imported)

pytest_plugins = ["helpers.hub"]


@pytest.fixture(autouse=True)
def _deterministic():
    """Seed torch's global generator before each test, when torch is loaded.

    Every test that uses torch imports it at module level, so torch is in ``sys.modules`` by the time
    its tests run; checking rather than importing keeps the registry's tests torch-free.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
    yield
