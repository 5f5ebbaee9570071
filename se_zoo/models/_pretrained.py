"""The pretrained side of the family modules: cfgs generated from ``weights/``, and the checked build.

Each family module builds its ``default_cfgs`` with :func:`family_cfgs` (one
cfg per ``weights/`` record, the twin's cfg for an architecture without weights)
and wraps its builders in :func:`checked_build`, which applies the catalogue's
sha256 pins and explains a failed weights download.
"""
from functools import wraps
from typing import Any, Callable, Dict, Mapping

from torch import nn

from timm.models import get_pretrained_cfg

from ..architectures import ARCHITECTURES, Architecture, by_family
from ..integrity import download_failures_explained, verify_pinned
from ._catalog import pretrained_cfgs

__all__ = ["WEIGHTS_LOCATION_FIELDS", "untrained_cfg", "family_cfgs", "checked_build"]

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


def family_cfgs(catalog: str, make_cfgs: Mapping[str, Callable[..., Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """The pretrained cfgs of some families, for timm's ``generate_default_cfgs``.

    Args:
        catalog: The ``weights/`` file of these families (e.g. ``"se_resnet"``).
        make_cfgs: Family (a key of ``se_zoo.architectures.FAMILIES``) -> its
            cfg constructor for catalogue records.

    Returns:
        ``{"arch.tag": cfg}``: one per catalogue record, and an ``untrained``
        cfg (:func:`untrained_cfg`) for each architecture without weights.
    """
    known = [a.name for a in ARCHITECTURES]
    cfgs: Dict[str, Dict[str, Any]] = {}
    for family, make_cfg in make_cfgs.items():
        rows = {a.name: a for a in by_family(family)}
        cfgs.update(pretrained_cfgs(
            catalog, make_cfg, rows, untrained_cfg=lambda name, rows=rows: untrained_cfg(rows[name]), known=known))
    return cfgs


def checked_build(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Wrap a family builder ``build(variant, pretrained, **kwargs)`` with the steps every build shares.

    The wrapped builder checks the ``weights/`` sha256 pin of a pretrained tag
    before timm loads it, turns a failed weights download into one explained
    error, and drops the verified state dict from the model's pretrained cfg
    (which must not keep a second copy of the weights alive).

    Args:
        build: The builder.

    Returns:
        The wrapped builder, same signature.
    """

    @wraps(build)
    def checked(variant: str, pretrained: bool = False, **kwargs) -> nn.Module:
        with download_failures_explained(variant, pretrained, kwargs):
            model = build(variant, pretrained, **verify_pinned(variant, pretrained, kwargs))
        model.pretrained_cfg.pop("state_dict", None)
        return model

    return checked
