"""What the pages show of a repository, read from the ``Store``: rows, file listings, history.

Parsed cards and configs are cached by blob sha256: blobs never change, so the list page of a
registry with a thousand repositories parses each README once, not on every request.
"""
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..store.storage import DEFAULT_BRANCH, Store
from .cards import Card, parse_card
from ..limits import MAX_CARD_BYTES, MAX_HISTORY_SCAN

__all__ = ["FileRow", "RepoRow", "changed_files", "file_rows", "last_commits", "read_blob", "repo_row", "untrained"]

README = "README.md"
CONFIG = "config.json"


@dataclass(frozen=True)
class RepoRow:
    """One repository as the list page shows it."""

    id: str
    private: bool
    updated: str
    downloads: int
    architecture: Optional[str]
    card: Card


@dataclass(frozen=True)
class FileRow:
    """One entry of a folder listing; ``commit`` is the last commit that changed it (files only)."""

    path: str
    name: str
    is_dir: bool
    size: int = 0
    lfs_sha256: Optional[str] = None
    commit: Optional[Dict[str, Any]] = None


def read_blob(store: Store, entry: Dict[str, Any], limit: int) -> bytes:
    """The first ``limit`` bytes of a stored file.

    Args:
        store: The registry's store.
        entry: The file's entry in a commit (``sha256``, ``size``, ...).
        limit: How many bytes to read at most.

    Returns:
        The bytes read.
    """
    with open(store.blob_path(entry["sha256"]), "rb") as f:
        return f.read(limit)


@lru_cache(maxsize=4096)
def _card(blob: Path) -> Card:
    with open(blob, "rb") as f:
        return parse_card(f.read(MAX_CARD_BYTES).decode("utf-8", "replace"))


@lru_cache(maxsize=4096)
def _architecture(blob: Path) -> Optional[str]:
    try:
        with open(blob, "rb") as f:
            config = json.loads(f.read(MAX_CARD_BYTES))
    except ValueError:
        return None
    arch = config.get("architecture") if isinstance(config, dict) else None
    return arch if isinstance(arch, str) else None


@lru_cache(maxsize=4096)
def _untrained(blob: Path) -> bool:
    try:
        with open(blob, "rb") as f:
            origin = json.loads(f.read(MAX_CARD_BYTES)).get("weights_origin")
    except (ValueError, AttributeError, OSError):
        return False
    for _ in range(100):  # the origins the files recorded, newest first (se_zoo.provenance.WeightsOrigin)
        if not isinstance(origin, dict):
            return False
        if origin.get("kind") == "random_init":
            return True
        origin = origin.get("previous")
    return False


def untrained(store: Store, files: Dict[str, Dict[str, Any]]) -> bool:
    """Whether a commit's config.json records its weights as a random initialization (se-zoo's ``weights_origin``)."""
    entry = files.get(CONFIG)
    return _untrained(store.blob_path(entry["sha256"])) if entry else False


def card_at(store: Store, files: Dict[str, Dict[str, Any]]) -> Card:
    """The parsed README of a commit's files (an empty card when there is none)."""
    entry = files.get(README)
    return _card(store.blob_path(entry["sha256"])) if entry else Card()


def repo_row(store: Store, repo_id: str, summary: Dict[str, Any]) -> RepoRow:
    """The list-page row of a repository.

    Args:
        store: The registry's store.
        repo_id: ``namespace/name``.
        summary: The repository as ``GET /api/models`` describes it (``sha``, ``lastModified``,
            ``private``, ``downloads``).

    Returns:
        A :class:`RepoRow` with the architecture from ``config.json`` and the card's facts.
    """
    namespace, name = repo_id.split("/")
    files = _commit(store, namespace, name, summary["sha"])["files"]
    config = files.get(CONFIG)
    return RepoRow(
        id=repo_id, private=bool(summary.get("private")), updated=summary["lastModified"],
        downloads=int(summary.get("downloads") or 0),
        architecture=_architecture(store.blob_path(config["sha256"])) if config else None,
        card=card_at(store, files))


def head_of(store: Store, namespace: str, name: str) -> Dict[str, Any]:
    """The commit the default branch points to (commits never change, so they are cached by id)."""
    return _commit(store, namespace, name, store.resolve(namespace, name, DEFAULT_BRANCH))


@lru_cache(maxsize=4096)  # the store's own cache holds fewer commits than a list page reads
def _commit(store: Store, namespace: str, name: str, commit: str) -> Dict[str, Any]:
    return store.commit_info(namespace, name, commit)


def file_rows(files: Dict[str, Dict[str, Any]], folder: str) -> List[FileRow]:
    """The folders and files directly inside ``folder`` ("" for the root), folders first.

    Args:
        files: A commit's ``files``.
        folder: The folder's path.

    Returns:
        The rows, or an empty list when nothing is under ``folder``.
    """
    prefix = f"{folder}/" if folder else ""
    folders, rows = set(), []
    for path, entry in sorted(files.items()):
        if not path.startswith(prefix):
            continue
        head, sep, _ = path[len(prefix):].partition("/")
        if sep:
            folders.add(head)
        else:
            rows.append(FileRow(path, head, False, entry["size"], entry["sha256"] if entry["lfs"] else None))
    dirs = [FileRow(prefix + d, d, True) for d in sorted(folders)]
    return dirs + rows


def _history(store: Store, namespace: str, name: str, commit: str) -> Iterator[Tuple[Dict[str, Any], Dict]]:
    """``(commit, parent_files)`` pairs from ``commit`` back along first parents."""
    for info in store.history(namespace, name, commit):
        parent = store.commit_info(namespace, name, info["parents"][0])["files"] if info["parents"] else {}
        yield info, parent


def last_commits(store: Store, namespace: str, name: str, commit: str, paths: List[str]) -> Dict[str, Dict]:
    """The last commit that added or changed each of ``paths`` (walks at most 1000 commits).

    Args:
        store: The registry's store.
        namespace: Repository namespace.
        name: Repository name.
        commit: The commit the listing shows.
        paths: File paths present at ``commit``.

    Returns:
        ``{path: commit_info}`` for the paths found within the walk.
    """
    wanted, found = set(paths), {}
    for count, (info, parent) in enumerate(_history(store, namespace, name, commit)):
        if not wanted or count >= MAX_HISTORY_SCAN:
            break
        for path in [p for p in wanted if info["files"].get(p) != parent.get(p)]:
            found[path] = info
            wanted.discard(path)
    return found


def changed_files(store: Store, namespace: str, name: str, info: Dict[str, Any]) -> List[Tuple[str, str]]:
    """``(change, path)`` for each file a commit added, modified or deleted, sorted by path."""
    parent = store.commit_info(namespace, name, info["parents"][0])["files"] if info["parents"] else {}
    files = info["files"]
    changes = [("added" if p not in parent else "modified", p) for p in files if files[p] != parent.get(p)]
    changes += [("deleted", p) for p in parent if p not in files]
    return sorted(changes, key=lambda c: c[1])
