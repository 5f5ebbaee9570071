"""The ``weights/`` catalogue: one record per pretrained tag, the single source of truth.

Each family has a JSON file ``weights/<family>.json`` with ``records``; a record
names the public checkpoint a tag loads (``hf_hub_id`` [+ ``@revision``],
``hf_hub_filename``, ``url``), its license and origin, the source's reported
ImageNet accuracy (``top1`` / ``top5``, evaluated at ``metrics_img_size``, as
published in ``metrics_source``), params / GMACs at ``input_size``, an
optional ``sha256`` pin, and ``cfg``: the
pretrained-cfg fields (input size, crop, interpolation, ...) that differ from
the family's ``_cfg()``. Families turn records into timm pretrained cfgs with
:func:`pretrained_cfgs`.
"""
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

__all__ = ["CatalogError", "catalog_dir", "load_records", "find_record", "pretrained_cfgs"]

# Record keys copied verbatim into the pretrained cfg.
_CFG_KEYS = ("hf_hub_id", "hf_hub_filename", "url", "license", "origin_url", "paper_ids")
_REQUIRED = ("tag", "license", "origin_url")


class CatalogError(ValueError):
    """A ``weights/`` record is malformed or missing."""


def catalog_dir() -> Path:
    """Directory holding the catalogue.

    Returns:
        ``se_zoo/_weights`` inside an installed wheel, else the source tree's
        ``weights/`` (editable installs and checkouts).
    """
    packaged = resources.files("se_zoo") / "_weights"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "weights"


@lru_cache(maxsize=None)
def load_records(family: str) -> List[Dict[str, Any]]:
    """All catalogue records of one family.

    Args:
        family: File stem under ``weights/`` (e.g. ``"se_resnet"``).

    Returns:
        The family's records, in file order.

    Raises:
        CatalogError: if the file is missing or is not a JSON object with a
            ``records`` list, or a record lacks a required field, repeats a
            tag or has a non-object ``cfg``.
    """
    path = catalog_dir() / f"{family}.json"
    if not path.is_file():
        raise CatalogError(f"family must name a file in {path.parent}, got {family!r} (no {path.name})")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["records"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CatalogError(f"{path.name} must be a JSON object with a 'records' list ({exc!r})") from exc
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise CatalogError(f"{path.name}: 'records' must be a list of objects, got {records!r:.80}")
    seen = set()
    for record in records:
        for key in _REQUIRED:
            if not record.get(key):
                raise CatalogError(f"{path.name}: record {record.get('tag')!r} needs a non-empty {key!r}")
        if "." not in record["tag"]:
            raise CatalogError(f"{path.name}: tag must look like 'arch.tag', got {record['tag']!r}")
        if record["tag"] in seen:
            raise CatalogError(f"{path.name}: tag {record['tag']!r} appears twice")
        if not (record.get("hf_hub_id") or record.get("url")):
            raise CatalogError(f"{path.name}: record {record['tag']!r} needs 'hf_hub_id' or 'url'")
        if not isinstance(record.get("cfg", {}), dict):
            raise CatalogError(f"{path.name}: record {record['tag']!r}: 'cfg' must be an object, got {record['cfg']!r}")
        seen.add(record["tag"])
    return records


def families() -> List[str]:
    """Names of all catalogue families (the JSON files under ``weights/``)."""
    return sorted(p.stem for p in catalog_dir().glob("*.json"))


def find_record(model_name: str) -> Optional[Dict[str, Any]]:
    """The catalogue record for ``arch.tag``, or None when the catalogue has none.

    Args:
        model_name: A full ``arch.tag`` name.

    Returns:
        The record dict, or None.
    """
    for family in families():
        for record in load_records(family):
            if record["tag"] == model_name:
                return record
    return None


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def pretrained_cfgs(
        family: str,
        make_cfg: Callable[..., Dict[str, Any]],
        architectures: Iterable[str],
        untrained_cfg: Optional[Callable[[str], Dict[str, Any]]] = None,
        known: Optional[Iterable[str]] = None,
) -> Dict[str, Dict[str, Any]]:
    """Pretrained cfgs for ``generate_default_cfgs``, generated from the catalogue.

    Args:
        family: Catalogue file stem.
        make_cfg: The family's ``_cfg(**overrides)``.
        architectures: The architectures to generate cfgs for; those without a
            record get an untrained cfg.
        untrained_cfg: ``arch -> cfg`` of an architecture without weights,
            registered under timm's ``untrained`` tag; by default ``make_cfg()``
            under the bare architecture name.
        known: Every architecture a record of ``family`` may name (records of
            the others in it are skipped); by default ``architectures``.

    Returns:
        ``{"arch.tag": cfg}`` for every record of ``architectures``, plus an
        untrained cfg for each of ``architectures`` without weights.

    Raises:
        CatalogError: if a record names an architecture not in ``known``.
    """
    architectures = list(architectures)
    known = set(architectures).union(known or ())
    cfgs: Dict[str, Dict[str, Any]] = {}
    for record in load_records(family):
        arch = record["tag"].split(".", 1)[0]
        if arch not in known:
            raise CatalogError(f"weights/{family}.json: tag {record['tag']!r} names unknown architecture {arch!r}")
        if arch not in architectures:
            continue
        fields = {k: record[k] for k in _CFG_KEYS if record.get(k)}
        fields.update({k: _tupled(v) for k, v in record.get("cfg", {}).items()})
        cfgs[record["tag"]] = make_cfg(**fields)
    with_weights = {tag.split(".", 1)[0] for tag in cfgs}
    for arch in architectures:
        if arch in with_weights:
            continue
        if untrained_cfg is None:
            cfgs[arch] = make_cfg()
        else:
            cfgs[f"{arch}.untrained"] = untrained_cfg(arch)
    return cfgs
