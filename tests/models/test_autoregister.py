"""The installed ``.pth`` hook registers se-zoo with timm in interpreters that never import se_zoo.

Each test runs a fresh interpreter whose working directory is a tmp dir outside
the repository, so ``se_zoo`` and the hook can only come from the installation.
"""
import os
import subprocess
import sys

import pytest
import torch

import timm
from timm.models._hub import save_for_hf


def _run(code, cwd, **env):
    """Run ``python -c code`` in ``cwd``; returns the finished process."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SE_ZOO_AUTOREGISTER")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=300)


def _ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def saved_se_zoo_model(tmp_path):
    """A dir written by timm's ``save_for_hf`` whose config.json names ``se_zoo_resnet18``, plus its I/O."""
    model = timm.create_model("se_zoo_resnet18").eval()
    save_for_hf(model, tmp_path / "repo", safe_serialization=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.save({"x": x, "y": model(x)}, tmp_path / "io.pt")
    return tmp_path


def test_plain_timm_pipeline_uses_se_zoo_models(saved_se_zoo_model):
    # Only `import timm`: a registry name, then a local-dir (same path as hf-hub:) config naming se_zoo_resnet18.
    code = ("import torch, timm\n"
            "m = timm.create_model('se_zoo_resnet50')\n"
            "print(type(m).__name__, sum(p.numel() for p in m.parameters()))\n"
            "m = timm.create_model('local-dir:repo', pretrained=True).eval()\n"
            "io = torch.load('io.pt', weights_only=True)\n"
            "with torch.no_grad():\n"
            "    torch.testing.assert_close(m(io['x']), io['y'], rtol=0, atol=0)\n"
            "print(m.pretrained_cfg['architecture'])")
    assert _ok(_run(code, saved_se_zoo_model)).splitlines() == ["ResNet 28088024", "se_zoo_resnet18"]


def test_switched_off_by_env_until_se_zoo_is_imported(tmp_path):
    code = ("import sys, timm\n"
            "try:\n"
            "    timm.create_model('se_zoo_resnet18')\n"
            "except RuntimeError as e:\n"
            "    print(e)\n"
            "print('se_zoo' in sys.modules)\n"
            "import se_zoo\n"
            "print(type(timm.create_model('se_zoo_resnet18')).__name__)")
    out = _ok(_run(code, tmp_path, SE_ZOO_AUTOREGISTER="0"))
    assert out.splitlines() == ["Unknown model (se_zoo_resnet18)", "False", "ResNet"]


def test_interpreter_start_imports_neither_torch_nor_timm(tmp_path):
    out = _ok(_run("import sys; print('torch' in sys.modules, 'timm' in sys.modules, "
                   "'se_zoo' in sys.modules, '_se_zoo_autoregister' in sys.modules)", tmp_path))
    # the hook module itself is loaded (so the check is meaningful), nothing heavy is
    assert out == "False False False True", "se-zoo must be installed (pip install -e .) for its .pth hook"


def test_importing_se_zoo_first_still_works(tmp_path):
    code = ("import se_zoo, timm\n"
            "timm.create_model('se_zoo_legacy_seresnet18')\n"
            "print(set(se_zoo.TIMM_EQUIVALENTS) <= set(timm.list_models('se_zoo_*')))")
    assert _ok(_run(code, tmp_path)) == "True"


@pytest.mark.slow
def test_broken_se_zoo_never_breaks_timm(tmp_path):
    shadow = tmp_path / "shadow" / "se_zoo"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('broken on purpose')\n")
    proc = _run("import timm; print(timm.is_model('resnet18'))", tmp_path, PYTHONPATH=str(shadow.parent))
    assert _ok(proc) == "True"
    assert "se-zoo auto-registration failed" in proc.stderr and "broken on purpose" in proc.stderr


@pytest.mark.parametrize("first_import", [  # each a fresh interpreter (~8 s): one in the default run
    "from se_zoo.layers import SqueezeExcite",  # se_zoo.layers imports timm while it initializes
    pytest.param("import se_zoo.layers.squeeze_excite", marks=pytest.mark.slow),
    pytest.param("from se_zoo import SqueezeExcite", marks=pytest.mark.slow),
])
def test_any_first_import_registers_the_models(tmp_path, first_import):
    code = f"{first_import}\nimport timm\nprint(timm.is_model('se_zoo_resnet18'))"
    assert _ok(_run(code, tmp_path, SE_ZOO_AUTOREGISTER="0")) == "True"
