"""Model card (README.md) metadata: the bounded YAML loading behind ``validate-yaml`` and listings.

YAML is parsed with PyYAML's safe loader (the C one when available), only after the size and
alias caps of ``se_zoo.registry.limits`` were checked, and callers run it in a worker thread: a
crafted document can neither build Python objects nor hold the event loop.
"""
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..limits import (
    MAX_YAML_ALIASES,
    MAX_YAML_CONTENT,
    MAX_YAML_METADATA,
    LimitError,
    check_size,
    load_json,
)

_ALIAS = re.compile(r"(?:^|[\s\[\{,:-])\*[^\s\[\]\{\},]+")


def _loader() -> Any:
    import yaml  # PyYAML: a dependency of timm, and of the server extra

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def metadata_block(content: str) -> Optional[str]:
    """The YAML between the leading ``---`` lines of a README, or ``None`` if it has none.

    Raises:
        LimitError: if the README is over ``MAX_YAML_CONTENT`` characters or the block over
            ``MAX_YAML_METADATA``; or (400) if the block opened by ``---`` is never closed.
    """
    check_size(len(content.encode("utf-8", "surrogatepass")), MAX_YAML_CONTENT, "The README content")
    lines = content.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    closing = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if closing is None:
        raise LimitError("The metadata block opened by '---' is never closed.")
    block = "\n".join(lines[1:closing])
    check_size(len(block.encode("utf-8", "surrogatepass")), MAX_YAML_METADATA, "The README metadata block")
    return block


def parse_metadata(block: str) -> Dict[str, Any]:
    """Parse a metadata block into a mapping.

    Raises:
        LimitError: if it uses more than ``MAX_YAML_ALIASES`` aliases, is not valid YAML or not a
            mapping (the message says which).
    """
    import yaml

    aliases = len(_ALIAS.findall(block))
    if aliases > MAX_YAML_ALIASES:
        raise LimitError(f"The metadata block uses {aliases} YAML aliases, the limit is {MAX_YAML_ALIASES}.")
    try:
        metadata = yaml.load(block, Loader=_loader())  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, RecursionError) as exc:
        raise LimitError(f"The metadata block is not valid YAML: {exc}") from None
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise LimitError("The metadata block must be a YAML mapping.")
    return metadata


def readme_errors(content: str) -> List[str]:
    """The problems ``POST /api/validate-yaml`` reports for a README (empty when it is valid).

    Raises:
        LimitError: (413) if the README or its metadata block is over its size cap.
    """
    try:
        block = metadata_block(content)
        if block is not None:
            parse_metadata(block)
    except LimitError as exc:
        if exc.status == 413:
            raise
        return [str(exc)]
    return []


def validate_yaml_request(body: bytes) -> List[str]:
    """``POST /api/validate-yaml`` from its raw body: JSON decoding included (run in a helper process).

    Raises:
        LimitError: if the body is not a JSON object with a string ``content`` or nests deeper than
            ``MAX_JSON_DEPTH`` (400), or the README
            or its metadata block is over its size cap (413).
    """
    try:
        data = load_json(body) if body.strip() else {}
    except LimitError:
        raise
    except ValueError:
        raise LimitError("Request body is not valid JSON.") from None
    content = data.get("content") if isinstance(data, dict) else None
    if not isinstance(content, str):
        raise LimitError("'content' must be the README text.")
    return readme_errors(content)


@lru_cache(maxsize=4096)
def card_tags(blob: Path) -> Tuple[Tuple[str, ...], Optional[str]]:
    """``(tags, library_name)`` of the README stored at ``blob`` (cached: blobs never change).

    A README without metadata, or with metadata over the caps or invalid, has no tags. The
    library name is also the first tag, as on the Hub.
    """
    try:
        block = metadata_block(blob.read_text("utf-8", errors="replace")[: MAX_YAML_CONTENT])
        metadata = parse_metadata(block) if block is not None else {}
    except (LimitError, OSError):
        return (), None
    library = metadata.get("library_name")
    library = library if isinstance(library, str) else None
    tags = metadata.get("tags")
    tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    if library is not None and library not in tags:
        tags.insert(0, library)
    return tuple(tags), library
