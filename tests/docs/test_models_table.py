"""The models table in README.md and docs/models.md is generated and must be current."""
import importlib.util
from pathlib import Path

import pytest
import timm
from timm.models import register_model

import se_zoo
from se_zoo.models.se_resnet import se_zoo_resnet18

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "models_table.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("models_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


@pytest.mark.slow  # builds and counts all 23 architectures: ~25 s
def test_readme_and_docs_tables_are_current():
    stale = script.stale_files(script.render())
    assert not stale, f"run `python scripts/models_table.py`; stale: {[str(p) for p in stale]}"


def test_table_goes_stale_when_a_model_is_added(monkeypatch):

    def se_zoo_tabletest_tiny(pretrained=False, **kwargs):
        return se_zoo_resnet18(pretrained, **kwargs)

    register_model(se_zoo_tabletest_tiny)
    try:
        monkeypatch.setitem(se_zoo.TIMM_EQUIVALENTS, "se_zoo_tabletest_tiny", "resnet10t")
        table = script.render()
        assert "`se_zoo_tabletest_tiny`" in table
        assert script.stale_files(table) == list(script.TARGETS)
    finally:
        from timm.models import _registry
        for registry in (_registry._model_entrypoints, _registry._model_to_module,
                         _registry._model_default_cfgs, _registry._model_pretrained_cfgs,
                         _registry._model_with_tags):
            for key in [k for k in registry if str(k).startswith("se_zoo_tabletest_tiny")]:
                registry.pop(key)
        for names in _registry._module_to_models.values():
            names.discard("se_zoo_tabletest_tiny")
    assert "se_zoo_tabletest_tiny" not in timm.list_models("se_zoo_*")
