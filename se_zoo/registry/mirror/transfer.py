"""Copying repositories between Hub endpoints, registry roots and bundles: the core of ``se-zoo hub mirror``.

A copy reads a commit's description from the source, keeps its commit id, and moves each file
the target lacks, checked on the way (sha256 for LFS files, git blob id for regular files). A
target that holds the commit already costs one metadata call and no bytes, so running a copy
twice transfers nothing the second time, and a copy cut short resumes where it stopped: every
blob that arrived complete and verified stays, and is skipped next time.

Targets (``Sink``): a registry root on disk (:class:`StoreSink`), a running registry
(:class:`RegistrySink`, through its write-token ``/api/models/{id}/mirror`` endpoints) or a bundle
file (``se_zoo.registry.mirror.bundle.BundleWriter``).
"""
import contextlib
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterable, Iterator, List, Optional, Tuple

import httpx2
from tqdm.auto import tqdm

from .adopt import FileCheck, known_files, mirror_meta, record_from_repo_info
from ..errors import CommandError, RemoteRefused
from ..store.storage import RepoNotFound, RevisionNotFound, Store, validate_repo_part
from .upstream import Upstream

__all__ = ["Stats", "StoreSink", "RegistrySink", "copy_file", "mirror_repos", "split_repo_id"]


@dataclass
class Stats:
    """What a copy did: bytes and files written to the target, and files it already held."""

    bytes: int = 0
    files: int = 0
    present: int = 0
    commits: int = 0

    def summary(self) -> str:
        """One line for the user, e.g. ``transferred 12345 bytes in 2 files (3 already present)``."""
        return (f"transferred {self.bytes} bytes in {self.files} files ({self.present} files already present, "
                f"{self.commits} commits)")


def split_repo_id(repo_id: str) -> Tuple[str, str]:
    """``("namespace", "name")`` of ``"namespace/name"``; ``ValueError`` naming the bad id otherwise."""
    namespace, sep, name = repo_id.partition("/")
    try:
        if not sep:
            raise ValueError
        return validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name")
    except Exception:  # noqa: BLE001 - BadRequest or the missing separator: one message for both
        raise CommandError(f"repo id: expected 'namespace/name', got {repo_id!r}.") from None


class StoreSink:
    """A registry root on disk (no server may be running on it: opening the store empties its tmp/).

    Args:
        root: The registry directory; created if missing.
    """

    def __init__(self, root: Path):
        self.store = Store(root)

    def has_commit(self, repo_id: str, commit: str) -> bool:
        """Whether the repository holds ``commit``."""
        try:
            self.store.resolve(*split_repo_id(repo_id), commit)
            return True
        except (RepoNotFound, RevisionNotFound):
            return False

    def has_blob(self, sha256: str, size: int) -> bool:
        """Whether the blob is stored."""
        return self.store.has_blob(sha256, size)

    def known_files(self, repo_id: str) -> Dict[str, Tuple[str, int]]:
        """Git blob id -> (sha256, size) of the files the repository holds already."""
        return known_files(self.store, *split_repo_id(repo_id))

    def put_blob(self, sha256: str, size: int, chunks: Iterable[bytes]) -> None:
        """Store a blob from checked chunks; nothing is kept unless its sha256 and size match."""
        with self.store.blob_writer(max_size=size) as writer:
            for chunk in chunks:
                writer.write(chunk)
            writer.commit(sha256, size)

    def adopt(self, repo_id: str, record: Optional[Dict[str, Any]], commit: str, refs: Dict[str, Dict[str, str]],
              private: bool, origin: str) -> None:
        """Store ``record`` (None: the stored ``commit``) and point ``refs`` at it."""
        namespace, name = split_repo_id(repo_id)
        if record is None:
            record = self.store.commit_info(namespace, name, commit)
            meta = self.store.repo_meta(namespace, name)
            private, origin = meta["private"], meta.get("mirror", origin)
        self.store.adopt_commit(namespace, name, record, refs, mirror_meta(origin, private))

    def close(self) -> None:
        """Nothing to flush: every write was atomic."""


class RegistrySink:
    """A running se-zoo registry, written through its mirror endpoints with a write token.

    Args:
        endpoint: The registry's URL.
        token: A write token of that registry.
    """

    def __init__(self, endpoint: str, token: Optional[str]):
        self.endpoint = endpoint.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx2.Client(headers=headers, timeout=httpx2.Timeout(300.0))

    def _check(self, response: httpx2.Response, what: str) -> httpx2.Response:
        if response.status_code >= 400:
            message = response.headers.get("X-Error-Message") or response.text[:200]
            raise RemoteRefused(f"{self.endpoint} refused {what}: HTTP {response.status_code}: {message}")
        return response

    def has_commit(self, repo_id: str, commit: str) -> bool:
        """Whether the registry serves ``commit`` of the repository."""
        response = self._client.get(f"{self.endpoint}/api/models/{repo_id}/revision/{commit}")
        return response.status_code == 200

    def has_blob(self, sha256: str, size: int) -> bool:
        """Whether the registry holds the blob."""
        response = self._client.head(f"{self.endpoint}/api/models/_/_/mirror/blobs/{sha256}", params={"size": size})
        if response.status_code not in (200, 404):
            self._check(response, f"a blob query for {sha256}")
        return response.status_code == 200

    def known_files(self, repo_id: str) -> Dict[str, Tuple[str, int]]:
        """Nothing: the API names regular files by git blob id only, so they are fetched again (small)."""
        return {}

    def put_blob(self, sha256: str, size: int, chunks: Iterable[bytes]) -> None:
        """Upload a blob; the registry checks its sha256 and size before keeping it."""
        self._check(self._client.put(f"{self.endpoint}/api/models/_/_/mirror/blobs/{sha256}/{size}",
                                     content=iter(chunks)), f"blob {sha256}")

    def adopt(self, repo_id: str, record: Optional[Dict[str, Any]], commit: str, refs: Dict[str, Dict[str, str]],
              private: bool, origin: str) -> None:
        """Have the registry adopt ``record`` (None: its stored ``commit``) and point ``refs`` at it."""
        body = {"commit": record if record is not None else commit, "refs": refs, "private": private,
                "origin": origin}
        self._check(self._client.post(f"{self.endpoint}/api/models/{repo_id}/mirror", json=body),
                    f"commit {commit} of {repo_id}")

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _progress(path: str, size: int) -> Any:
    return tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=path[-40:], leave=False,
                file=sys.stderr, disable=None)


def copy_file(sink: Any, path: str, entry: Dict[str, Any], opener: Callable[[], ContextManager[Iterator[bytes]]],
              stats: Stats) -> None:
    """Copy one file to ``sink`` unless it holds it, checking it against ``entry`` on the way.

    Args:
        sink: The target.
        path: The file's path (messages and progress bar).
        entry: ``{"sha256", "size", "oid", "lfs"}``.
        opener: Opens the file at the source as an iterator of chunks.
        stats: Updated with what was written.

    Raises:
        IntegrityMismatch: if the bytes differ from ``entry``; the target keeps nothing of them.
    """
    if sink.has_blob(entry["sha256"], entry["size"]):
        stats.present += 1
        return
    check = FileCheck(path, entry["size"], sha256=entry["sha256"], oid=None if entry["lfs"] else entry["oid"])
    with opener() as chunks, _progress(path, entry["size"]) as bar:
        def checked() -> Iterator[bytes]:
            for chunk in chunks:
                check.update(chunk)
                bar.update(len(chunk))
                yield chunk
            check.finish()
        sink.put_blob(entry["sha256"], entry["size"], checked())
    stats.bytes += entry["size"]
    stats.files += 1


def _regular_sha256(source: Upstream, sink: Any, repo_id: str, commit: str, known: Dict[str, Tuple[str, int]],
                    stats: Stats, path: str, size: int, oid: str) -> str:
    """Fetch a regular file (the Hub publishes only its git blob id), check it and copy it to the sink."""
    if oid in known:
        stats.present += 1
        return known[oid][0]
    data = bytearray()
    check = FileCheck(path, size, oid=oid)
    with source.open_file(repo_id, commit, path) as chunks:
        for chunk in chunks:
            check.update(chunk)
            data += chunk
    sha = check.finish()
    copy_file(sink, path, {"sha256": sha, "size": size, "oid": oid, "lfs": False},
              lambda: contextlib.nullcontext(iter([bytes(data)])), stats)
    return sha


def _resolve(source: Upstream, repo_id: str, revision: str) -> Tuple[str, str]:
    """``(kind, commit)``: kind is ``"branches"``/``"tags"``, or ``""`` for a commit id."""
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return "", revision
    refs = source.refs(repo_id)
    for kind in ("branches", "tags"):
        if revision in refs[kind]:
            return kind, refs[kind][revision]
    raise CommandError(f"revision {revision!r} not found in {repo_id} at {source.endpoint} "
                     f"(branches: {sorted(refs['branches'])}, tags: {sorted(refs['tags'])}).")


def mirror_repos(source: Upstream, sink: Any, wanted: List[Tuple[str, str]], stats: Optional[Stats] = None,
                 log: Callable[[str], None] = print) -> Stats:
    """Copy each ``(repo_id, revision)`` from ``source`` to ``sink``, keeping commit ids.

    Each repository's ``main`` branch is copied too (registry listings read it).

    Args:
        source: The endpoint to read.
        sink: The target (``StoreSink``, ``RegistrySink`` or ``BundleWriter``).
        wanted: Repositories and revisions (branch, tag or commit id).
        stats: Accumulates what was written; a new one when None.
        log: Where to report each repository.

    Returns:
        The stats.

    Raises:
        ValueError: for an unknown repo id or revision.
        IntegrityMismatch: if a file's bytes differ from what the source published.
        UpstreamError, UpstreamUnavailable, UpstreamNotFound: from the source.
    """
    stats = stats or Stats()
    # main first: a repository new to the target is never listed without it
    queue = dict.fromkeys(pair for repo_id, revision in wanted for pair in ((repo_id, "main"), (repo_id, revision)))
    for repo_id, revision in queue:
        split_repo_id(repo_id)
        kind, commit = _resolve(source, repo_id, revision)
        refs = {kind: {revision: commit}} if kind else {}
        if sink.has_commit(repo_id, commit):
            sink.adopt(repo_id, None, commit, refs, False, source.endpoint)
            log(f"{repo_id}@{revision}: commit {commit} present")
            continue
        info = source.repo_info(repo_id, commit)
        known = sink.known_files(repo_id)
        record = record_from_repo_info(info, partial(_regular_sha256, source, sink, repo_id, commit, known, stats))
        for path, entry in sorted(record["files"].items()):
            if entry["lfs"]:
                copy_file(sink, path, entry, partial(source.open_file, repo_id, commit, path), stats)
        sink.adopt(repo_id, record, commit, refs, bool(info.get("private")), source.endpoint)
        stats.commits += 1
        log(f"{repo_id}@{revision}: commit {commit} copied ({len(record['files'])} files)")
    return stats
