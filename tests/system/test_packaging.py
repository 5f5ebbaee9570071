"""The package as users get it: public names, version, and the built wheel in a fresh venv."""
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import se_zoo

ROOT = Path(__file__).resolve().parents[2]


def test_public_api_and_version():
    from se_zoo.layers import SqueezeExcite

    assert se_zoo.SqueezeExcite is SqueezeExcite
    assert {"SqueezeExcite", "__version__"} <= set(se_zoo.__all__)
    assert se_zoo.__version__ == importlib.metadata.version("se-zoo")


# Runs inside the temporary venv, from a directory outside the source tree.
_PROBE = """
import importlib.metadata, json, sys
import timm
registered_by_hook = "se_zoo" in sys.modules
import se_zoo, torch
from se_zoo.pretrained.catalog import catalog_dir
model = timm.create_model("se_zoo_resnet18", num_classes=3).eval()
out = model(torch.randn(1, 3, 64, 64))
print(json.dumps({
    "file": se_zoo.__file__,
    "version": se_zoo.__version__,
    "dist_version": importlib.metadata.version("se-zoo"),
    "registered_by_hook": registered_by_hook,
    "pretrained": timm.list_pretrained("se_zoo_*"),
    "catalog_dir": str(catalog_dir()),
    "out_shape": list(out.shape),
    "sys_path": sys.path,
}))
"""


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv(tmp_path):
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp_path / "dist", ROOT],
         cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("se_zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "se_zoo/__init__.py" in names and "se_zoo/layers/squeeze_excite.py" in names
    assert "se_zoo/registry/web/templates/model.html" in names and "se_zoo/registry/web/style.css" in names
    assert "se_zoo/_weights/se_resnet.json" in names
    assert {"se_zoo_autoregister.pth", "_se_zoo_autoregister.py"} <= set(names)  # at the wheel root
    assert not any(n.startswith(("tests/", "weights/", "packaging/")) for n in names)

    # A venv without se-zoo. Its dependencies (torch, timm, ...) come from this
    # interpreter's site-packages through a .pth *path* line: directories added
    # that way are not scanned for .pth files, so the editable install of the
    # source tree in that site-packages stays invisible.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    (site,) = venv.glob("lib/python*/site-packages")
    deps = {str(Path(importlib.import_module(name).__file__).resolve().parents[1])
            for name in ("torch", "timm", "safetensors", "huggingface_hub")}
    (site / "_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SE_ZOO", "VIRTUAL_ENV"))}
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], env=env)

    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = json.loads(_run([python, "-I", "-c", _PROBE], cwd=work, env=env).stdout.splitlines()[-1])
    assert Path(probe["file"]).resolve().is_relative_to(site.resolve())
    assert not any(Path(p).resolve() == ROOT for p in probe["sys_path"] if p)
    assert probe["version"] == probe["dist_version"] == se_zoo.__version__
    assert probe["registered_by_hook"]
    assert probe["pretrained"] and all(name.startswith("se_zoo_") for name in probe["pretrained"])
    assert Path(probe["catalog_dir"]).resolve() == (site / "se_zoo" / "_weights").resolve()
    assert probe["out_shape"] == [1, 3]

    help_text = _run([venv / "bin" / "se-zoo", "--help"], cwd=work, env=env).stdout
    assert "usage: se-zoo" in help_text
