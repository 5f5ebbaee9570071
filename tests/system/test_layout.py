"""The project's layout holds: the import contracts and the lint in pyproject.toml, and a torch-free CLI help."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def test_import_contracts_hold():
    done = _run(_tool("lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_ruff_is_clean():
    done = _run(_tool("ruff"), "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def _imported_modules(*args: str) -> set:
    done = _run(sys.executable, "-X", "importtime", "-m", "se_zoo.cli", *args)
    assert done.returncode == 0, done.stderr
    assert "usage: se-zoo" in done.stdout
    return {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["hub", "serve", "--help"], ["train", "--help"]])
def test_cli_help_imports_no_torch(args):
    modules = _imported_modules(*args)
    assert "se_zoo.cli" in modules  # the measurement sees our own imports
    heavy = sorted(m for m in modules if m.split(".")[0] in ("torch", "timm", "numpy", "starlette", "uvicorn"))
    assert not heavy, heavy
