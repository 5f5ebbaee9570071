"""Integrity of pretrained weights: sha256 checks before anything is deserialised.

A checkpoint is read into memory once, hashed, compared with every expected
hash, and only then deserialised (by the caller) from those same bytes, so the
bytes checked are the bytes loaded. Used by the Hub client (``se_zoo.hub``) and
by the model families, whose pin check before timm's builder applies the
``weights/`` catalogue's ``sha256`` pins to registry tags
(``timm.create_model("arch.tag", pretrained=True)``); :func:`download_record`
is the only place a model build touches the Hub before timm does.
"""
import hashlib
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from . import catalog

__all__ = ["IntegrityError", "SAFE_WEIGHTS_NAME", "read_verified", "catalog_pins", "download_record"]

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
    pins = {}
    for family in catalog.families():
        for record in catalog.load_records(family):
            repo, _, revision = (record.get("hf_hub_id") or "").partition("@")
            if (record.get("sha256") and repo == hf_hub_id
                    and (record.get("hf_hub_filename") or SAFE_WEIGHTS_NAME) == filename
                    and (not revision or revision in revisions)):
                pins[f"the weights/ catalogue pin of {record['tag']}"] = record["sha256"]
    return pins


def download_record(record: Mapping[str, Any], cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """Download the Hub file of a catalogue record into huggingface_hub's cache (or find it there).

    Args:
        record: A ``weights/`` record with ``hf_hub_id`` (``repo`` or ``repo@revision``)
            and optionally ``hf_hub_filename`` (``model.safetensors`` when unset).
        cache_dir: The Hub cache to use; huggingface_hub's default when None.

    Returns:
        The local path of the file, not yet checked.

    Raises:
        ValueError: if ``record`` has no ``hf_hub_id``.
    """
    if not record.get("hf_hub_id"):
        raise ValueError(f"record must name an 'hf_hub_id', got {record.get('tag')!r} without one")
    from huggingface_hub import hf_hub_download

    repo_id, _, revision = record["hf_hub_id"].partition("@")
    filename = record.get("hf_hub_filename") or SAFE_WEIGHTS_NAME
    return Path(hf_hub_download(repo_id, filename, revision=revision or None, cache_dir=cache_dir))
