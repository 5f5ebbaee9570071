"""Commit records that move between registries: validation, verification of their files, reuse.

A *record* is a commit as ``se_zoo.registry.store.storage`` stores it: ``{"id", "parents", "title",
"message", "date", "files"}`` with ``files`` mapping each path to ``{"sha256", "size", "oid", "lfs"}``.
A mirror keeps the commit id of the registry it copies from, so a revision pinned by commit id
means the same files on both sides. Every file is checked on arrival: an LFS file against its
sha256 and size, a regular file against its git blob id (the only hash the Hub publishes for it).
"""
import hashlib
import re
from typing import Any, Dict, Mapping, Optional, Tuple

from ..store.storage import (
    CHUNK_SIZE,
    BadRequest,
    RepoNotFound,
    Store,
    git_blob_oid,
    lfs_pointer,
    now_iso,
    validate_path,
    validate_sha256,
)

__all__ = ["IntegrityMismatch", "FileCheck", "validate_record", "record_from_repo_info", "known_files",
           "mirror_meta"]

_COMMIT_ID = re.compile(r"[0-9a-f]{40}")


class IntegrityMismatch(ValueError):
    """Bytes that do not match the hash or size they were published with; nothing was kept."""


def _size(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"Invalid {what} {value!r}: expected an integer >= 0.")
    return value


def validate_commit_id(value: Any) -> str:
    """Check a 40-digit lowercase hex commit id and return it; ``BadRequest`` otherwise."""
    if not isinstance(value, str) or not _COMMIT_ID.fullmatch(value):
        raise BadRequest(f"Invalid commit id {value!r}: expected 40 lowercase hex digits.")
    return value


def validate_record(record: Any) -> Dict[str, Any]:
    """Check a commit record received from outside and return a clean copy.

    Args:
        record: ``{"id", "files", ...}`` as sent by a mirror or read from a bundle.

    Returns:
        The record with exactly the stored keys.

    Raises:
        BadRequest: naming the first field that is missing or malformed.
    """
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        raise BadRequest("A commit record must be an object with 'id' and 'files'.")
    files = {}
    for path, entry in record["files"].items():
        validate_path(path)
        if not isinstance(entry, dict) or not isinstance(entry.get("lfs"), bool):
            raise BadRequest(f"File {path!r}: expected {{sha256, size, oid, lfs}}.")
        sha, size = validate_sha256(entry.get("sha256")), _size(entry.get("size"), f"size of {path!r}")
        oid = entry.get("oid")
        if not isinstance(oid, str) or not re.fullmatch(r"[0-9a-f]{40}", oid):
            raise BadRequest(f"File {path!r}: invalid git blob id {oid!r}.")
        files[path] = {"sha256": sha, "size": size, "oid": oid, "lfs": entry["lfs"]}
    text = {key: record.get(key) if isinstance(record.get(key), str) else default
            for key, default in (("title", "mirrored commit"), ("message", ""), ("date", now_iso()))}
    return {"id": validate_commit_id(record.get("id")), "parents": [], "files": files, **text}


def check_against_store(store: Store, record: Dict[str, Any]) -> None:
    """Check that every file of ``record`` is stored and matches its git blob id.

    Raises:
        BadRequest: naming the first file whose blob is missing or whose content differs.
    """
    for path, entry in record["files"].items():
        if not store.has_blob(entry["sha256"], entry["size"]):
            raise BadRequest(f"File {path!r}: blob {entry['sha256']} ({entry['size']} bytes) was not uploaded.")
        if entry["lfs"]:
            expected = git_blob_oid(lfs_pointer(entry["sha256"], entry["size"]))
        else:
            digest = hashlib.sha1(b"blob %d\0" % entry["size"])
            with open(store.blob_path(entry["sha256"]), "rb") as f:
                while chunk := f.read(CHUNK_SIZE):
                    digest.update(chunk)
            expected = digest.hexdigest()
        if expected != entry["oid"]:
            raise BadRequest(f"File {path!r}: git blob id {entry['oid']} does not match its content ({expected}).")


def mirror_meta(origin: str, private: bool) -> Dict[str, Any]:
    """``repo.json`` of a mirrored repository."""
    return {"private": bool(private), "createdAt": now_iso(), "mirror": origin}


def known_files(store: Store, namespace: str, name: str) -> Dict[str, Tuple[str, int]]:
    """Git blob id -> (sha256, size) of every file in the stored commits of one repository.

    Lets a mirror skip re-fetching a regular file whose git blob id it has seen (the Hub publishes
    no sha256 for regular files, so the id is the only way to recognise one before downloading).
    """
    found: Dict[str, Tuple[str, int]] = {}
    try:
        refs = store.refs(namespace, name)
    except RepoNotFound:
        return found
    commits = {c for kind in refs.values() for c in kind.values()}
    for commit in commits:
        try:
            files = store.commit_info(namespace, name, commit)["files"]
        except OSError:
            continue
        for entry in files.values():
            if store.has_blob(entry["sha256"], entry["size"]):
                found[entry["oid"]] = (entry["sha256"], entry["size"])
    return found


class FileCheck:
    """Hashes a file while it streams in and checks it against what its origin published.

    Args:
        path: The file's path in its repository (for messages).
        size: The published size.
        sha256: The published sha256 (LFS files), or None.
        oid: The published git blob id (regular files), or None.

    Raises:
        ValueError: if neither ``sha256`` nor ``oid`` is given.
    """

    def __init__(self, path: str, size: int, sha256: Optional[str] = None, oid: Optional[str] = None):
        if sha256 is None and oid is None:
            raise ValueError(f"{path}: a file is checked against a sha256 or a git blob id; got neither.")
        self.path, self.size, self.expected_sha256, self.expected_oid = path, size, sha256, oid
        self._sha256 = hashlib.sha256()
        self._git = hashlib.sha1(b"blob %d\0" % size) if oid is not None else None
        self.received = 0

    def update(self, chunk: bytes) -> None:
        """Account for ``chunk``; raises ``IntegrityMismatch`` once more bytes than published arrive."""
        self.received += len(chunk)
        if self.received > self.size:
            raise IntegrityMismatch(f"{self.path}: more than the published {self.size} bytes arrived; refused.")
        self._sha256.update(chunk)
        if self._git is not None:
            self._git.update(chunk)

    def finish(self) -> str:
        """Check size and hash once everything arrived.

        Returns:
            The sha256 of the content.

        Raises:
            IntegrityMismatch: naming the file, the expected and the actual size or hash.
        """
        if self.received != self.size:
            raise IntegrityMismatch(f"{self.path}: {self.received} bytes arrived, {self.size} were published; refused.")
        sha = self._sha256.hexdigest()
        if self.expected_sha256 is not None and sha != self.expected_sha256:
            raise IntegrityMismatch(f"{self.path}: sha256 mismatch: expected {self.expected_sha256}, got {sha}; "
                                    "the bytes were refused and nothing was kept.")
        if self._git is not None and self._git.hexdigest() != self.expected_oid:
            raise IntegrityMismatch(f"{self.path}: git blob id mismatch: expected {self.expected_oid}, got "
                                    f"{self._git.hexdigest()}; the bytes were refused and nothing was kept.")
        return sha


def record_from_repo_info(info: Mapping[str, Any], regular_sha256) -> Dict[str, Any]:
    """A commit record from the Hub's ``/api/models/{id}/revision/{sha}?blobs=1`` answer.

    Args:
        info: The JSON answer (``sha``, ``lastModified``, ``siblings`` with ``size``, ``blobId``,
            ``lfs``).
        regular_sha256: ``callable(path, size, oid) -> sha256`` that fetches, checks and stores a
            regular file (or finds it stored already).

    Returns:
        The record; LFS files are described by their published sha256 and not fetched.

    Raises:
        BadRequest: if the answer lacks the sizes or blob ids a mirror needs.
    """
    files = {}
    for sibling in info.get("siblings") or []:
        path = validate_path(sibling.get("rfilename"))
        lfs = sibling.get("lfs")
        if isinstance(lfs, dict):
            sha, size = validate_sha256(lfs.get("sha256")), _size(lfs.get("size"), f"LFS size of {path!r}")
            files[path] = {"sha256": sha, "size": size, "oid": git_blob_oid(lfs_pointer(sha, size)), "lfs": True}
            continue
        size, oid = _size(sibling.get("size"), f"size of {path!r}"), sibling.get("blobId")
        if not isinstance(oid, str) or not re.fullmatch(r"[0-9a-f]{40}", oid):
            raise BadRequest(f"The upstream sent no git blob id for {path!r}; it must answer ?blobs=1.")
        files[path] = {"sha256": regular_sha256(path, size, oid), "size": size, "oid": oid, "lfs": False}
    commit = validate_commit_id(info.get("sha"))
    date = info.get("lastModified") if isinstance(info.get("lastModified"), str) else now_iso()
    return {"id": commit, "parents": [], "title": f"mirror of upstream commit {commit}", "message": "",
            "date": date, "files": files}
