"""Integrity of pretrained weights: sha256 checks before anything is deserialised.

A checkpoint is read into memory once, hashed, compared with every expected
hash, and only then deserialised from those same bytes, so the bytes checked
are the bytes loaded. Used by the Hub client (``se_zoo.hub``) and by the model
families: :func:`verify_pinned` is the step before timm's builder that applies
the ``weights/`` catalogue's ``sha256`` pins to registry tags
(``timm.create_model("arch.tag", pretrained=True)``). It is the only place a
model build touches the network before timm does.
"""
import hashlib
import io
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple, Union

import torch

__all__ = ["IntegrityError", "SAFE_WEIGHTS_NAME", "read_verified", "load_weights", "catalog_pins", "verify_pinned",
           "download_failures_explained"]

SAFE_WEIGHTS_NAME = "model.safetensors"


class IntegrityError(ValueError):
    """A weights file's sha256 differs from the hash it is published or pinned with."""


def read_verified(path: Union[str, Path], expected: Mapping[str, str], filename: Optional[str] = None) -> bytes:
    """Read a file and check its sha256 against every expected hash.

    Args:
        path: The file to read.
        expected: ``{where the hash comes from: sha256 hex}``, e.g.
            ``{"the Hub's LFS record": "ab12..."}``; must not be empty.
        filename: Name to report in errors; defaults to ``path``'s name.

    Returns:
        The file's bytes, to be deserialised as they are.

    Raises:
        ValueError: if ``expected`` is empty.
        IntegrityError: naming the file, the source, the expected and the actual
            hash, at the first mismatch.
    """
    if not expected:
        raise ValueError("expected must name at least one sha256 to check against, got none")
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    for source, sha256 in expected.items():
        if actual != sha256.lower():
            raise IntegrityError(
                f"{filename or Path(path).name}: sha256 mismatch with {source}: "
                f"expected {sha256.lower()}, got {actual}; refusing to load it")
    return data


def load_weights(data: bytes, filename: str, *, allow_pickle: bool = False) -> Dict[str, Any]:
    """Deserialise checked checkpoint bytes.

    Args:
        data: The bytes returned by :func:`read_verified`.
        filename: The checkpoint's name; ``.safetensors`` files load with
            safetensors, anything else is a pickle.
        allow_pickle: Load a pickle checkpoint (``.bin``, ``.pth``) with
            ``torch.load(weights_only=True)``; refused when False.

    Returns:
        The state dict, on the CPU.

    Raises:
        ValueError: if ``filename`` is a pickle and ``allow_pickle`` is False.
    """
    if filename.endswith(".safetensors"):
        import safetensors.torch
        return safetensors.torch.load(data)
    if not allow_pickle:
        raise ValueError(
            f"{filename} is a pickle checkpoint; pass allow_pickle=True to load it with torch.load(weights_only=True)")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def catalog_pins(hf_hub_id: str, filename: str, revisions: Tuple[Optional[str], ...] = (None,)) -> Dict[str, str]:
    """The catalogue's sha256 pins of one Hub file.

    A record pins ``filename`` of ``hf_hub_id`` when its ``hf_hub_filename``
    (``model.safetensors`` when unset) equals it and the record names no revision
    or one of ``revisions``.

    Args:
        hf_hub_id: A Hub repo id, without ``@revision``.
        filename: The file in the repo.
        revisions: The revision asked for and the commit it resolved to.

    Returns:
        ``{"the weights/ catalogue pin of <tag>": sha256}`` for every pinning record.
    """
    from .models import _catalog

    pins = {}
    for family in _catalog.families():
        for record in _catalog.load_records(family):
            repo, _, revision = (record.get("hf_hub_id") or "").partition("@")
            if (record.get("sha256") and repo == hf_hub_id
                    and (record.get("hf_hub_filename") or SAFE_WEIGHTS_NAME) == filename
                    and (not revision or revision in revisions)):
                pins[f"the weights/ catalogue pin of {record['tag']}"] = record["sha256"]
    return pins


def _pinned_state_dict(variant: str, cfg: Any, cache_dir: Optional[Union[str, Path]]) -> Optional[Dict[str, Any]]:
    """The verified state dict of a registry tag with a catalogue pin, None when unpinned."""
    from .models import _catalog

    record = _catalog.find_record(f"{variant}.{cfg.tag}") if cfg.tag else None
    if not record or not record.get("sha256"):
        return None
    if cfg.state_dict is not None or cfg.file or cfg.source in ("hf-hub", "local-dir"):
        return None  # weights come from the caller or a Hub repo (checked by se_zoo.hub), not from this record
    expected = {f"the weights/ catalogue pin of {record['tag']}": record["sha256"]}
    if record.get("hf_hub_id") and cfg.hf_hub_id == record["hf_hub_id"]:
        from huggingface_hub import hf_hub_download

        repo_id, _, revision = record["hf_hub_id"].partition("@")
        filename = record.get("hf_hub_filename") or SAFE_WEIGHTS_NAME
        path = hf_hub_download(repo_id, filename, revision=revision or None, cache_dir=cache_dir)
    elif record.get("url") and not cfg.hf_hub_id and cfg.url == record["url"]:
        from timm.models._hub import download_cached_file

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
    from timm.models import resolve_pretrained_cfg

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
        se_zoo.download_errors.HubUnreachableError: if the weights' Hub cannot be reached (or the client
            is offline) and they are not cached.
    """
    from timm.models import resolve_pretrained_cfg

    from .download_errors import pretrained_cfg_failures

    cfg = resolve_pretrained_cfg(variant, kwargs.get("pretrained_cfg"), kwargs.get("pretrained_cfg_overlay")) \
        if pretrained else None
    with pretrained_cfg_failures(cfg, kwargs.get("cache_dir")):
        yield
