"""Pickle scanning: which imports a pickle-based file would run, found without unpickling it.

Files whose name ends in a pickle suffix (``pytorch_model.bin``, ``.pt``, ``.pth``, ``.ckpt``,
``.pkl``, ...) are scanned with picklescan, which reads the pickle opcodes (and the pickles inside
a torch zip) and lists the globals they import; nothing is executed. A result depends only on the
blob, so it is kept by sha256 under ``<root>/scans/`` (a cache: deleting it only costs rescans).

:func:`security_status` is the Hub's ``securityRepoStatus``: ``{"scansDone": true,
"filesWithIssues": [{"path", "level": "unsafe"|"suspicious", "pickleImports": [...]}]}``, as
``HfApi.model_info(repo, securityStatus=True).security_repo_status`` reads it.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from .storage import Store, atomic_write, dump_json

__all__ = ["PICKLE_SUFFIXES", "SCANS_DIR", "is_pickle", "scan_blob", "security_status", "unsafe_files"]

SCANS_DIR = "scans"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dat", ".data")
_LEVELS = {"dangerous": "unsafe", "suspicious": "suspicious"}  # picklescan's safety -> the Hub's level


def is_pickle(path: str) -> bool:
    """Whether a repo path is scanned (its name ends in a pickle-based suffix)."""
    return path.lower().endswith(PICKLE_SUFFIXES)


def scan_blob(store: Store, sha256: str, path: str) -> Dict[str, Any]:
    """Scan a stored blob (or read its cached result).

    Args:
        store: The store holding the blob.
        sha256: The blob.
        path: Its repo path (the suffix tells picklescan the format).

    Returns:
        ``{"level": "safe"|"suspicious"|"unsafe", "pickleImports": [{"module", "name", "safety"}],
        "error": bool}``; a file the scanner fails on is ``suspicious`` with ``error`` set.
    """
    cache = store.root / SCANS_DIR / sha256[:2] / f"{sha256}.json"
    if cache.is_file():
        return json.loads(cache.read_bytes())
    from picklescan.scanner import scan_bytes

    with open(store.blob_path(sha256), "rb") as f:
        try:
            found = scan_bytes(f, path, Path(path).suffix.lower())
        except Exception:  # noqa: BLE001 - a file the scanner cannot parse (a damaged zip, ...)
            found = None
    if found is None:  # unreadable to the scanner: reported, never called safe
        result = {"level": "suspicious", "pickleImports": [], "error": True}
    else:
        imports = [{"module": g.module, "name": g.name, "safety": g.safety.value} for g in found.globals]
        safeties = {i["safety"] for i in imports}
        level = "unsafe" if "dangerous" in safeties else "suspicious" if "suspicious" in safeties else "safe"
        result = {"level": level, "pickleImports": imports, "error": bool(found.scan_err)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, dump_json(result))
    return result


def security_status(store: Store, files: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """The Hub's ``securityRepoStatus`` of a commit's ``files`` (``{path: {"sha256", ...}}``) in ``store``."""
    issues: List[Dict[str, Any]] = []
    for path in sorted(p for p in files if is_pickle(p)):
        result = scan_blob(store, files[path]["sha256"], path)
        if result["level"] != "safe":
            issues.append({"path": path, "level": result["level"],
                           "pickleImports": [i for i in result["pickleImports"] if i["safety"] in _LEVELS]})
    return {"scansDone": True, "filesWithIssues": issues}


def unsafe_files(store: Store, added: Mapping[str, str], level: Optional[str] = "unsafe") -> Dict[str, List[str]]:
    """Added pickle files the scan rates ``level``, with the imports that made it so.

    Args:
        store: The store.
        added: ``{path: sha256}`` of the files a commit adds.
        level: ``"unsafe"`` (dangerous imports only).

    Returns:
        ``{path: ["module.name", ...]}`` of the offending files.
    """
    found = {}
    for path, sha in sorted(added.items()):
        if is_pickle(path):
            result = scan_blob(store, sha, path)
            if result["level"] == level:
                found[path] = [f"{i['module']}.{i['name']}" for i in result["pickleImports"]
                               if i["safety"] == "dangerous"]
    return found
