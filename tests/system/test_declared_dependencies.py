"""Every third-party package se_zoo imports is declared in pyproject.toml (a dependency or an extra)."""
import importlib.metadata
import re
from pathlib import Path

import pytest
from helpers.imports import third_party_imports

ROOT = Path(__file__).resolve().parents[2]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_import_is_declared():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = [*project["dependencies"], *(r for extra in extras for r in extra)]
    declared = {_normalized(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}
    providers = importlib.metadata.packages_distributions()
    undeclared = {top: files for top, files in third_party_imports(ROOT / "se_zoo", ROOT).items()
                  if not {_normalized(d) for d in providers.get(top, [])} & declared}
    assert "torch" not in undeclared and providers.get("torch")  # the scan and the lookup both work
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
