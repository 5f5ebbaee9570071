"""``GET /api/models`` and the model summaries of ``GET /api/models/{id}``, as the Hub answers them.

Listings sort newest first unless asked otherwise (``sort`` = ``lastModified`` (default),
``createdAt``, ``downloads``, ``likes`` or ``id``; ``direction=1`` ascending, ``-1`` descending,
the default except for ``id``). ``filter`` keeps the repositories whose model card lists every
given value among its ``tags`` or as its ``library_name`` (so ``filter=timm`` lists the
timm-loadable ones). ``downloads`` counts the full downloads of a repository's weights files
since it was created (the Hub counts the last 30 days); ``likes`` are always 0.
"""
from typing import Any, Dict, List, Optional

from ..store.cards import card_tags
from ..errors import BadRequest, HubError
from ..limits import int_param
from ..store.storage import DEFAULT_BRANCH, Store, lfs_pointer

SORT_KEYS = ("lastModified", "createdAt", "downloads", "likes", "id")
LIST_PARAMS = {"author", "search", "sort", "direction", "limit", "full", "expand", "cardData", "config", "filter"}


def _flag(value: Optional[str]) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def blob_fields(entry: Dict[str, Any]) -> Dict[str, Any]:
    """The ``size``/``blobId``/``lfs`` fields of a sibling when ``blobs=1`` is asked."""
    fields: Dict[str, Any] = {"size": entry["size"], "blobId": entry["oid"]}
    if entry["lfs"]:
        pointer_size = len(lfs_pointer(entry["sha256"], entry["size"]))
        fields["lfs"] = {"sha256": entry["sha256"], "size": entry["size"], "pointerSize": pointer_size}
    return fields


def model_summary(store: Store, namespace: str, name: str, meta: Dict[str, Any], commit: Dict[str, Any],
                  siblings: bool, blobs: bool = False) -> Dict[str, Any]:
    """The Hub's JSON description of one model repository at ``commit``.

    Args:
        store: The store holding it.
        namespace: Its namespace, as spelled at creation.
        name: Its name, as spelled at creation.
        meta: Its ``repo.json``.
        commit: The commit described (``Store.commit_info``).
        siblings: Include the list of files.
        blobs: Include sizes, blob ids and LFS details of the files.

    Returns:
        A JSON-able dict.
    """
    readme = commit["files"].get("README.md")
    tags, library = card_tags(store.blob_path(readme["sha256"])) if readme else ((), None)
    summary = {
        "id": f"{namespace}/{name}", "modelId": f"{namespace}/{name}", "author": namespace,
        "sha": commit["id"], "lastModified": commit["date"], "createdAt": meta["createdAt"],
        "private": meta["private"], "disabled": False, "gated": False,
        "downloads": store.downloads(namespace, name), "likes": 0, "tags": list(tags),
    }
    if library is not None:
        summary["library_name"] = library
    if siblings:
        summary["siblings"] = [
            {"rfilename": path, **(blob_fields(entry) if blobs else {})}
            for path, entry in sorted(commit["files"].items())
        ]
    return summary


def list_models(store: Store, params: Any, readable_private: bool) -> List[Dict[str, Any]]:
    """The answer to ``GET /api/models`` (blocking: run it in a worker thread).

    Args:
        store: The store to list.
        params: The query parameters (a Starlette ``QueryParams`` or any mapping with ``getlist``).
        readable_private: Whether the caller may see private repositories.

    Returns:
        The model summaries, sorted and cut to ``limit``.

    Raises:
        BadRequest: for an unknown parameter, sort key or direction, or an invalid ``limit``.
    """
    unsupported = set(params) - LIST_PARAMS
    if unsupported:
        raise BadRequest(f"Unsupported list parameters {sorted(unsupported)}: this registry serves "
                         f"{sorted(LIST_PARAMS)}.")
    sort = params.get("sort", "lastModified")
    if sort not in SORT_KEYS:
        raise BadRequest(f"Unsupported sort {sort!r}: use one of {', '.join(SORT_KEYS)}.")
    direction = params.get("direction", "1" if sort == "id" else "-1")
    if direction not in ("1", "-1"):
        raise BadRequest(f"Invalid direction {direction!r}: expected 1 (ascending) or -1 (descending).")
    limit = int_param(params, "limit")
    wanted = set(params.getlist("filter"))
    full = _flag(params.get("full")) or "siblings" in params.getlist("expand")
    search = params.get("search", "").lower()
    author = params.get("author")
    models = []
    for namespace, name, meta in store.list_repos():
        if (meta["private"] and not readable_private) or (author is not None and author.lower() != namespace.lower()):
            continue
        if search and search not in f"{namespace}/{name}".lower():
            continue
        try:
            commit = store.commit_info(namespace, name, store.resolve(namespace, name, DEFAULT_BRANCH))
        except (FileNotFoundError, HubError):
            continue  # deleted while listing
        summary = model_summary(store, namespace, name, meta, commit, siblings=full)
        if wanted <= set(summary["tags"]):
            models.append(summary)
    models.sort(key=lambda m: m[sort], reverse=direction == "-1")
    return models[:limit] if limit is not None else models

