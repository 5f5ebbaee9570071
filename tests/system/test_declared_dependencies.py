"""Every third-party package se_zoo imports is declared in pyproject.toml (a dependency or an extra)."""
import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

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
    undeclared = {}
    for path in sorted((ROOT / "se_zoo").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"se_zoo"}:
                if not {_normalized(d) for d in providers.get(top, [])} & declared:
                    undeclared.setdefault(top, []).append(str(path.relative_to(ROOT)))
    assert "torch" not in undeclared and providers.get("torch")  # the scan and the lookup both work
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
