"""conftest for timm's own ``tests/test_models.py``, run on se-zoo's architectures only.

Copied next to the unedited test file by ``tests/models/test_timm_suite.py``. It wraps
``timm.list_models`` / ``timm.list_pretrained`` (before the test file imports
them) so every model-parametrised test sees only the architectures matching
``SE_ZOO_TIMM_SUITE_MODELS`` (comma-separated patterns, default ``se_zoo_*``),
and deselects the tests hard-wired to timm's own models.

timm records the module an architecture is registered from; tests such as
``test_model_forward_intermediates`` select models by it (``FEAT_INTER_FILTERS``:
``resnet``, ``senet``, ``efficientnet``, ...). se-zoo's architectures live in
se-zoo's modules, so a ``module=`` filter selects one when it selects its timm
twin (``se_zoo.TIMM_EQUIVALENTS``): each is tested as its twin is.
"""
import fnmatch
import functools
import os

import timm
import timm.models

import se_zoo

PATTERNS = [p for p in os.environ.get("SE_ZOO_TIMM_SUITE_MODELS", "se_zoo_*").split(",") if p]


def _ours(name: str) -> bool:
    return any(fnmatch.fnmatch(name.split(".", 1)[0], p) for p in PATTERNS)


def _restricted(list_fn):
    @functools.wraps(list_fn)
    def wrapper(*args, **kwargs):
        names = [name for name in list_fn(*args, **kwargs) if _ours(name)]
        if not kwargs.get("module"):
            return names
        # twins in the asked modules -> ours of the same other filters
        twins = set(list_fn(module=kwargs["module"]))
        unfiltered = {**kwargs, "module": ""}
        extra = [n for n in list_fn(*args, **unfiltered)
                 if _ours(n) and se_zoo.TIMM_EQUIVALENTS.get(n.split(".", 1)[0]) in twins]
        return sorted(set(names) | set(extra), key=(names + extra).index)
    return wrapper


for _module in (timm, timm.models):
    _module.list_models = _restricted(timm.models.list_models)
    _module.list_pretrained = _restricted(timm.models.list_pretrained)


def pytest_collection_modifyitems(config, items):
    """Keep the tests parametrised by one of our models; deselect the rest."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        name = params.params.get("model_name") if params else None
        (keep if isinstance(name, str) and _ours(name) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
