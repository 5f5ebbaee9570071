"""The pretrained side of the family modules: cfgs generated from ``weights/``, and the checked build.

Each family module builds its ``default_cfgs`` with :func:`family_cfgs` (one
cfg per ``weights/`` record, the twin's cfg for an architecture without weights)
and wraps its builders in :func:`checked_build`: :func:`verify_pinned` applies
the catalogue's sha256 pins before timm's builder, and
:func:`download_failures_explained` turns a failed weights download into one
error that says where it looked and the ways out.
"""
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Union

from torch import nn

from timm import models as timm_models
from timm.models import get_pretrained_cfg, resolve_pretrained_cfg
from timm.models._hub import download_cached_file

from ..architectures import ARCHITECTURES, Architecture, by_family
from ..pretrained import catalog
from ..pretrained.download_errors import pretrained_cfg_failures
from ..pretrained.integrity import download_record, read_verified
from ..provenance import record_build_origin
from ._checkpoint import load_weights

__all__ = ["WEIGHTS_LOCATION_FIELDS", "untrained_cfg", "family_cfgs", "checked_build", "verify_pinned",
           "download_failures_explained"]

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


def family_cfgs(family_file: str, make_cfgs: Mapping[str, Callable[..., Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """The pretrained cfgs of some families, for timm's ``generate_default_cfgs``.

    Args:
        family_file: The ``weights/`` file of these families (e.g. ``"se_resnet"``).
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
        cfgs.update(catalog.pretrained_cfgs(
            family_file, make_cfg, rows, untrained_cfg=lambda name, rows=rows: untrained_cfg(rows[name]), known=known))
    return cfgs


def checked_build(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Wrap a family builder ``build(variant, pretrained, **kwargs)`` with the steps every build shares.

    The wrapped builder checks the ``weights/`` sha256 pin of a pretrained tag
    before timm loads it, turns a failed weights download into one explained
    error, records where the weights came from (:mod:`se_zoo.provenance`),
    and drops the verified state dict from the model's pretrained cfg (which
    must not keep a second copy of the weights alive).

    Args:
        build: The builder.

    Returns:
        The wrapped builder, same signature.
    """

    @wraps(build)
    def checked(variant: str, pretrained: bool = False, **kwargs) -> nn.Module:
        with download_failures_explained(variant, pretrained, kwargs):
            model = build(variant, pretrained, **verify_pinned(variant, pretrained, kwargs))
        # The caller's kwargs, not the verified ones: a pinned tag's state dict overlay is still that tag.
        record_build_origin(model, variant, pretrained, kwargs)
        if not _TIMM_RECORDS_ARGS:  # timm < 1.0.31 keeps no record of the build arguments: keep one
            model._model_args = {k: v for k, v in kwargs.items() if k not in _NOT_MODEL_ARGS and _plain(v)}
        model.pretrained_cfg.pop("state_dict", None)
        return model

    return checked


_TIMM_RECORDS_ARGS = hasattr(timm_models, "get_model_args")  # timm >= 1.0.31: create_model keeps model._model_args
_NOT_MODEL_ARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "device", "dtype")


def _plain(value: Any) -> bool:
    """Whether ``value`` is a JSON value (a build argument config.json can carry)."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _pinned_state_dict(variant: str, cfg: Any, cache_dir: Optional[Union[str, Path]]) -> Optional[Dict[str, Any]]:
    """The verified state dict of a registry tag with a catalogue pin, None when unpinned."""
    record = catalog.find_record(f"{variant}.{cfg.tag}") if cfg.tag else None
    if not record or not record.get("sha256"):
        return None
    if cfg.state_dict is not None or cfg.file or cfg.source in ("hf-hub", "local-dir"):
        return None  # weights come from the caller or a Hub repo (checked by se_zoo.hub), not from this record
    expected = {f"the weights/ catalogue pin of {record['tag']}": record["sha256"]}
    if record.get("hf_hub_id") and cfg.hf_hub_id == record["hf_hub_id"]:
        path = download_record(record, cache_dir)
        filename = path.name
    elif record.get("url") and not cfg.hf_hub_id and cfg.url == record["url"]:
        filename = record["url"].rsplit("/", 1)[-1]
        path = download_cached_file(record["url"], check_hash=False, cache_dir=cache_dir)
    else:
        return None  # the cfg was pointed at another source than the record's
    # A pinned catalogue record is the explicit opt-in for its own pickle, as timm loads tag weights.
    return load_weights(read_verified(path, expected, filename), filename, allow_pickle=True)


def verify_pinned(variant: str, pretrained: bool, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Enforce the catalogue's sha256 pin; run right before timm's builder.

    When ``pretrained`` resolves to a catalogue record with a ``sha256``, the
    record's file is downloaded (into the usual cache), checked, and handed to
    timm's builder as an in-memory state dict through ``pretrained_cfg_overlay``;
    a mismatch raises before any model is built. Otherwise ``kwargs`` are
    returned unchanged.

    Args:
        variant: The architecture name.
        pretrained: Whether pretrained weights are asked for.
        kwargs: The builder's keyword arguments (``pretrained_cfg``,
            ``pretrained_cfg_overlay``, ``cache_dir``, model arguments, ...).

    Returns:
        The keyword arguments for timm's builder.

    Raises:
        IntegrityError: if the pinned file's sha256 differs from the pin.
    """
    if not pretrained:
        return kwargs
    overlay = kwargs.get("pretrained_cfg_overlay")
    cfg = resolve_pretrained_cfg(variant, kwargs.get("pretrained_cfg"), overlay)
    state_dict = _pinned_state_dict(variant, cfg, kwargs.get("cache_dir"))
    if state_dict is None:
        return kwargs
    return {**kwargs, "pretrained_cfg_overlay": {**(overlay or {}), "state_dict": state_dict}}


@contextmanager
def download_failures_explained(variant: str, pretrained: bool, kwargs: Dict[str, Any]) -> Iterator[None]:
    """Around a family's builder: a failed weights download says where it looked and the ways out.

    Args:
        variant: The architecture name.
        pretrained: Whether pretrained weights are asked for.
        kwargs: The builder's keyword arguments (``pretrained_cfg``, ``pretrained_cfg_overlay``, ``cache_dir``).

    Raises:
        se_zoo.pretrained.download_errors.HubUnreachableError: if the weights' Hub cannot be reached (or the client
            is offline) and they are not cached.
    """
    cfg = resolve_pretrained_cfg(variant, kwargs.get("pretrained_cfg"), kwargs.get("pretrained_cfg_overlay")) \
        if pretrained else None
    with pretrained_cfg_failures(cfg, kwargs.get("cache_dir")):
        yield
