"""Registration of the architecture table with timm: entrypoints and pretrained cfgs.

Each family module (``se_resnet``, ``se_mobilenet``) calls :func:`register_families`
at its end: the entrypoints and ``default_cfgs`` are generated from the rows of
``se_zoo.architectures`` and the ``weights/`` catalogue.
"""
import importlib
import sys
from typing import Any, Callable, Dict, Mapping, Tuple

from torch import nn

from timm.models import generate_default_cfgs, get_pretrained_cfg, register_model

from ..architectures import ARCHITECTURES, Architecture, by_family
from ..integrity import download_failures_explained
from ..provenance import record_build_origin
from ._catalog import pretrained_cfgs

__all__ = ["WEIGHTS_LOCATION_FIELDS", "untrained_cfg", "register_families"]

#: Pretrained-cfg fields that say where weights are, not how the model is fed.
WEIGHTS_LOCATION_FIELDS = ("url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "custom_load")

def untrained_cfg(arch: Architecture) -> Dict[str, Any]:
    """The pretrained cfg of an architecture without weights: its timm twin's, less the weights location.

    Args:
        arch: A row of the architecture table.

    Returns:
        The twin's default pretrained cfg as a dict, without
        :data:`WEIGHTS_LOCATION_FIELDS`, ``architecture`` and ``tag``.
    """
    cfg = get_pretrained_cfg(arch.timm_twin, allow_unregistered=False).to_dict()
    for key in (*WEIGHTS_LOCATION_FIELDS, "architecture", "tag"):
        cfg.pop(key, None)
    return cfg


def _builder(arch: Architecture) -> Callable[..., nn.Module]:
    module, function = arch.builder.rsplit(".", 1)
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


def _entrypoint(arch: Architecture, module: str) -> Callable[..., nn.Module]:
    build = _builder(arch)

    def entrypoint(pretrained: bool = False, **kwargs) -> nn.Module:
        kwargs = {**arch.args, **kwargs}
        with download_failures_explained(arch.name, pretrained, kwargs):
            model = build(arch.name, pretrained, **kwargs)
        record_build_origin(model, arch.name, pretrained, kwargs)
        model.pretrained_cfg.pop("state_dict", None)  # a cfg must not keep a second copy of the weights alive
        return model

    entrypoint.__name__ = entrypoint.__qualname__ = arch.name
    entrypoint.__module__ = module
    entrypoint.__doc__ = arch.summary
    return entrypoint


def register_families(module: str, catalog: str,
                      make_cfgs: Mapping[str, Callable[..., Dict[str, Any]]]) -> Tuple[Architecture, ...]:
    """Register every architecture of the given families with timm, from ``module``.

    Sets ``module``'s ``default_cfgs`` (tags from ``weights/<catalog>.json``,
    :func:`untrained_cfg` for architectures without weights) and one entrypoint
    attribute per architecture, then registers each entrypoint.

    Args:
        module: The registering module's ``__name__``.
        catalog: The ``weights/`` family file of these architectures.
        make_cfgs: Family (a key of ``se_zoo.architectures.FAMILIES``) -> its
            cfg constructor for catalogue records.

    Returns:
        The registered rows.
    """
    rows = by_family(*make_cfgs)
    target = sys.modules[module]
    known = [a.name for a in ARCHITECTURES]
    records: Dict[str, Dict[str, Any]] = {}
    for family, make_cfg in make_cfgs.items():
        mine = {a.name: a for a in rows if a.family == family}
        records.update(pretrained_cfgs(
            catalog, make_cfg, mine, untrained_cfg=lambda name, mine=mine: untrained_cfg(mine[name]), known=known))
    target.default_cfgs = generate_default_cfgs(records)
    for arch in rows:
        setattr(target, arch.name, register_model(_entrypoint(arch, module)))
    return rows

