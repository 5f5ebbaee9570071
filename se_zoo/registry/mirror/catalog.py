"""Hub repositories behind se-zoo's pretrained tags, read straight from the ``weights/`` catalogue.

The registry imports nothing of the model side, so this reads the catalogue's JSON files itself:
``se_zoo/_weights`` inside an installed se-zoo, else the ``weights/`` three levels above this package
(``se_zoo/registry``): a source checkout's, or the one se-zoo-registry installs beside its copy of
the package (``_se_zoo_registry/weights``).
"""
import fnmatch
import json
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from ..errors import CommandError

__all__ = ["catalog_dir", "repos_for_tags"]


def catalog_dir() -> Path:
    """The directory holding the catalogue's ``*.json`` files.

    Returns:
        ``se_zoo/_weights`` of an installed se-zoo, else the ``weights/`` beside this copy of
        ``se_zoo``: a source checkout's, or se-zoo-registry's ``_se_zoo_registry/weights``.
    """
    packaged = resources.files("se_zoo") / "_weights"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "weights"


def repos_for_tags(patterns: Iterable[str], directory: Optional[Path] = None) -> List[Tuple[str, str, List[str]]]:
    """The Hub repositories and revisions that the tags matching ``patterns`` load.

    Args:
        patterns: Shell-style patterns over ``arch.tag`` names, e.g. ``"se_zoo_resnet50.*"``.
        directory: The catalogue directory; defaults to :func:`catalog_dir`.

    Returns:
        ``(repo_id, revision, tags)`` per distinct repository and revision, in catalogue order;
        revision is ``"main"`` unless the record pins one (``hf_hub_id: "org/name@rev"``).

    Raises:
        ValueError: if a pattern matches no tag, or a matching tag loads from a URL only (no Hub
            repository to mirror); the message lists what is available.
        FileNotFoundError: if the catalogue directory has no JSON file.
    """
    directory = Path(directory) if directory is not None else catalog_dir()
    files = sorted(directory.glob("*.json"))
    if not files:
        raise CommandError(f"No catalogue (*.json) in {directory}.")
    records = [r for f in files for r in json.loads(f.read_text(encoding="utf-8"))["records"]]
    found: Dict[Tuple[str, str], List[str]] = {}
    for pattern in patterns:
        matched = [r for r in records if fnmatch.fnmatchcase(r["tag"], pattern)]
        if not matched:
            raise CommandError(f"--tags: pattern {pattern!r} matches no catalogue tag; tags look like "
                             f"{records[0]['tag']!r} (see {directory}).")
        for record in matched:
            if not record.get("hf_hub_id"):
                raise CommandError(f"--tags: {record['tag']} loads from {record.get('url')!r}, not from a Hub "
                                 "repository; it cannot be mirrored.")
            repo_id, _, revision = record["hf_hub_id"].partition("@")
            found.setdefault((repo_id, revision or "main"), []).append(record["tag"])
    return [(repo_id, revision, tags) for (repo_id, revision), tags in found.items()]
