"""The registry's mirror side: pull-through reads from an upstream, read-only mirrored repositories.

The route table (``se_zoo.registry.routes``) plugs it in: its handlers answer the mirror's own
endpoints and its hooks run before the API's reads and writes. It

- answers the write-token endpoints ``se-zoo hub mirror``/``import`` use to fill a running
  registry: ``HEAD|PUT /api/models/{id}/mirror/blobs/{sha256}[/{size}]`` (is a blob stored; store
  one, its sha256 and size checked) and ``POST /api/models/{id}/mirror`` (adopt a commit whose blobs
  are stored, under its own id, after checking every file's git blob id);
- refuses writes to mirrored repositories and new repositories in mirrored namespaces (403);
- with an upstream configured, makes sure a read finds what it asks for: a repository the registry
  lacks, a revision it has not seen, or a branch/tag name not checked within the TTL is looked up
  upstream and its commit stored under the upstream's commit id (regular files fetched and checked
  against their git blob id; LFS files described by their sha256 and fetched on first download,
  one download per blob however many clients ask, see ``se_zoo.registry.mirror.flight``). When the
  upstream cannot be reached, names resolve from what is stored, so a cluster keeps working.

Repositories pushed here take precedence: a repository that exists locally and is not a mirror is
never looked up upstream. A private upstream repository is fetched and served only for callers
holding a token of this registry (bearer or web login cookie; ``se_zoo.registry.auth`` decides).
Everything is then answered by the registry's own handlers from its own store, so no Xet field or
header of the upstream can reach a client.
"""
import logging
import os
import re
import threading
import time
from functools import partial
from typing import Any, Dict, Optional, Tuple

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..auth import Auth
from ..http import file_headers, json_object, write_body
from ..limits import MAX_IMPORT_BODY, ascii_int, int_param

from .adopt import (
    FileCheck,
    IntegrityMismatch,
    check_against_store,
    known_files,
    mirror_meta,
    record_from_repo_info,
    validate_commit_id,
    validate_record,
)
from .flight import Flight, Flights, as_hub_error, read_flight
from ..store.policy import CommitPolicy
from ..store.storage import (
    BadRequest,
    Forbidden,
    RepoNotFound,
    RevisionNotFound,
    Store,
    validate_ref_name,
    validate_repo_part,
    validate_sha256,
)
from .upstream import Upstream, UpstreamError, UpstreamNotFound, UpstreamUnavailable

__all__ = ["MirrorHook", "DEFAULT_TTL"]

logger = logging.getLogger(__name__)
DEFAULT_TTL = 60.0
_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
_NOT_REPOS = ("api", "datasets", "spaces", "kernels")  # never looked up upstream
_MIRRORING = "mirroring into this registry"


class MirrorHook:
    """Mirror behaviour of one registry (see the module docstring).

    Args:
        store: The registry's store.
        auth: Who may read and write.
        upstream: The endpoint to pull through from, or None (mirrored repos are then only served).
        policy: The registry's commit rules; a commit imported through ``POST .../mirror`` into a repo
            that requires signatures must verify like any other commit.
    """

    def __init__(self, store: Store, auth: Auth, upstream: Optional[Upstream], policy: Optional[CommitPolicy] = None):
        self.store, self.auth, self.upstream = store, auth, upstream
        self.policy = policy or CommitPolicy()
        self.ttl = upstream.ttl if upstream is not None else DEFAULT_TTL
        self.flights = Flights(store)
        self._checked: Dict[Tuple[str, str, str], float] = {}
        self._locks: Dict[Tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # read-only mirrors
    def _meta(self, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        try:
            return self.store.repo_meta(namespace, name)
        except RepoNotFound:
            return None

    async def guard_write(self, request: Request, namespace: str, name: str, **_: str) -> None:
        """Hook before a write to a repository: a mirrored one is read-only (403)."""
        meta = self._meta(validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name"))
        if meta is not None and meta.get("mirror"):
            raise Forbidden(f"{namespace}/{name} is a read-only mirror of {meta['mirror']}; "
                            "push to a repository of another namespace.")

    def check_namespace(self, namespace: str) -> None:
        """Refuse a new repository in a namespace holding mirrored repositories (403; reads the disk).

        Raises:
            Forbidden: if ``namespace`` holds a mirrored repository.
        """
        if any(ns == namespace and meta.get("mirror") for ns, _, meta in self.store.list_repos()):
            raise Forbidden(f"Namespace {namespace!r} holds mirrored repositories and is read-only here; "
                            "create the repository in another namespace.")

    # the endpoints `se-zoo hub mirror`/`import` fill a running registry through (write token)
    def has_blob(self, request: Request, namespace: str, name: str, sha256: str) -> Response:
        """``HEAD|GET .../mirror/blobs/{sha256}[?size=N]``: 200 if the blob is stored, else 404."""
        self.auth.require_write(request, _MIRRORING)
        found = self.store.has_blob(validate_sha256(sha256), int_param(request.query_params, "size"))
        return Response(status_code=200 if found else 404)

    async def put_blob(self, request: Request, namespace: str, name: str, sha256: str, size: str) -> Response:
        """``PUT .../mirror/blobs/{sha256}/{size}``: the blob stored, its sha256 and size checked off the loop."""
        self.auth.require_write(request, _MIRRORING)
        sha256 = validate_sha256(sha256)
        size_bytes = ascii_int(size, "size")
        if not await anyio.to_thread.run_sync(self.store.has_blob, sha256, size_bytes):
            with self.store.blob_writer(max_size=size_bytes) as writer:
                await write_body(request, writer.write)
                await anyio.to_thread.run_sync(writer.commit, sha256, size_bytes)
        return Response(status_code=200)

    async def import_commit(self, request: Request, namespace: str, name: str) -> Response:
        """``POST .../mirror``: adopt a commit whose blobs are stored, under its own id (see the module docstring)."""
        self.auth.require_write(request, _MIRRORING)
        validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name")
        data = await json_object(request, MAX_IMPORT_BODY)
        if not data:
            raise BadRequest("Request body must be {commit, refs, private, origin}.")
        if isinstance(data.get("commit"), str):  # a commit stored already: only its refs move
            if not self._has_revision(namespace, name, validate_commit_id(data["commit"])):
                raise BadRequest(f"Commit {data['commit']} is not stored in {namespace}/{name}; send its record.")
            record = self.store.commit_info(namespace, name, data["commit"])
        else:
            record = validate_record(data.get("commit"))
        refs = _validate_refs(data.get("refs"), record["id"])
        private, origin = data.get("private", False), data.get("origin")
        if not isinstance(private, bool) or not isinstance(origin, str) or not origin:
            raise BadRequest("'private' must be true or false and 'origin' a non-empty string.")
        await anyio.to_thread.run_sync(check_against_store, self.store, record)
        repo_id = f"{namespace}/{name}"
        await anyio.to_thread.run_sync(self.policy.check_added, self.store, repo_id,
                                       {p: e["sha256"] for p, e in record["files"].items()})
        await anyio.to_thread.run_sync(self.policy.check_files, self.store, repo_id, record["files"])
        await anyio.to_thread.run_sync(self.store.adopt_commit, namespace, name, record, refs,
                                       mirror_meta(origin, private))
        return JSONResponse({"success": True, "commitOid": record["id"]})

    # pull-through
    async def pull(self, request: Request, namespace: str, name: str, revision: str = "main", **_: str) -> None:
        """Hook before a read: with an upstream, fetch the repository or revision if missing or stale."""
        if self.upstream is None or namespace in _NOT_REPOS:
            return
        validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name")
        if not _COMMIT_ID.fullmatch(revision):
            validate_ref_name(revision, "revision")
        may_read_private = self.auth.reader(request) is not None
        await anyio.to_thread.run_sync(self._ensure, namespace, name, revision, may_read_private)

    def _has_revision(self, namespace: str, name: str, revision: str) -> bool:
        try:
            self.store.resolve(namespace, name, revision)
            return True
        except (RepoNotFound, RevisionNotFound):
            return False

    def _up_to_date(self, namespace: str, name: str, revision: str) -> bool:
        if not self._has_revision(namespace, name, revision):
            return False
        checked = self._checked.get((namespace, name, revision))
        return bool(_COMMIT_ID.fullmatch(revision)) or (checked is not None and time.monotonic() - checked < self.ttl)

    def _ensure(self, namespace: str, name: str, revision: str, has_token: bool) -> None:
        meta = self._meta(namespace, name)
        if meta is not None and not meta.get("mirror"):
            return  # pushed here: the local repository wins
        if self._up_to_date(namespace, name, revision):
            return
        with self._locks_guard:
            lock = self._locks.setdefault((namespace, name), threading.Lock())
        with lock:
            if self._up_to_date(namespace, name, revision):
                return
            try:
                self._refresh(namespace, name, revision, has_token, meta is None)
            except UpstreamUnavailable as exc:
                if not self._has_revision(namespace, name, revision):
                    raise
                logger.warning("%s; serving %s/%s@%s from the mirror cache.", exc, namespace, name, revision)
            self._checked[(namespace, name, revision)] = time.monotonic()

    def _refresh(self, namespace: str, name: str, revision: str, has_token: bool, new_repo: bool) -> None:
        repo_id = f"{namespace}/{name}"
        try:
            is_commit = bool(_COMMIT_ID.fullmatch(revision))
            refs = self.upstream.refs(repo_id) if new_repo or not is_commit else {"branches": {}, "tags": {}}
            wanted = []
            if new_repo and revision != "main" and "main" in refs["branches"]:
                wanted.append(("branches", "main", refs["branches"]["main"]))  # first: listings read main
            if is_commit:
                wanted.append(("", revision, revision))
            else:
                kind = next((k for k in ("branches", "tags") if revision in refs[k]), None)
                if kind is None:
                    raise RevisionNotFound(f"Revision {revision!r} not found in {repo_id} (upstream).")
                wanted.append((kind, revision, refs[kind][revision]))
            for kind, ref, commit in wanted:
                self._adopt(namespace, name, kind, ref, commit, has_token)
        except UpstreamNotFound as exc:
            if exc.code == "RevisionNotFound":
                raise RevisionNotFound(f"{repo_id}@{revision} not found here nor upstream.") from None
            self.auth.reveal(True, False, repo_id)  # the same 404 as for a private repository

    def _adopt(self, namespace: str, name: str, kind: str, ref: str, commit: str, has_token: bool) -> None:
        repo_id = f"{namespace}/{name}"
        refs = {kind: {ref: commit}} if kind else {}
        meta = self._meta(namespace, name)
        if self._has_revision(namespace, name, commit):
            record = self.store.commit_info(namespace, name, commit)
            self.store.adopt_commit(namespace, name, record, refs, {"private": meta["private"],
                                                                     "mirror": meta["mirror"]})
            return
        info = self.upstream.repo_info(repo_id, commit)
        private = bool(info.get("private"))
        self.auth.reveal(private, has_token, repo_id)  # fetched only for holders of a token
        known = known_files(self.store, namespace, name)
        record = record_from_repo_info(info, partial(self._fetch_regular, repo_id, commit, known))
        self.store.adopt_commit(namespace, name, record, refs, mirror_meta(self.upstream.endpoint, private))

    def _fetch_regular(self, repo_id: str, commit: str, known: Dict[str, Tuple[str, int]], path: str, size: int,
                       oid: str) -> str:
        if oid in known:
            return known[oid][0]
        check = FileCheck(path, size, oid=oid)
        try:
            with self.upstream.open_file(repo_id, commit, path) as chunks, self.store.blob_writer() as writer:
                for chunk in chunks:
                    check.update(chunk)
                    writer.write(chunk)
                check.finish()
                return writer.commit()
        except IntegrityMismatch as exc:
            raise self._corrupted(repo_id, exc) from None

    def _corrupted(self, repo_id: str, exc: IntegrityMismatch) -> UpstreamError:
        return UpstreamError(f"Upstream {self.upstream.endpoint} sent corrupted bytes for {repo_id}: {exc}")

    # downloads
    async def resolve(self, request: Request, namespace: str, name: str, revision: str, path: str
                      ) -> Optional[Response]:
        """Hook before a download: a mirrored file not cached yet streams from the upstream as it arrives.

        Returns:
            The download, or None to let ``Downloads.resolve`` answer from the store.
        """
        await self.pull(request, namespace, name, revision)
        if not _COMMIT_ID.fullmatch(revision) or request.method == "HEAD":
            return None  # names answer 302 to their commit; HEAD needs no bytes
        meta = self._meta(namespace, name)
        if meta is None or not meta.get("mirror") or not self._has_revision(namespace, name, revision):
            return None
        self.auth.readable(request, namespace, name)
        entry = self.store.commit_info(namespace, name, revision)["files"].get(path)
        if entry is None or self.store.has_blob(entry["sha256"], entry["size"]):
            return None
        if self.upstream is None:
            raise UpstreamUnavailable(f"{path} of {namespace}/{name} at {revision} is not cached here and this "
                                      "registry has no upstream (serve it with --upstream URL).")
        failure = self.flights.recent_failure(entry["sha256"])
        if failure is not None:
            raise failure
        download = partial(self._download, f"{namespace}/{name}", revision, path, entry)
        flight = self.flights.join(entry["sha256"], entry["size"], download)
        # answer an upstream that fails before its first byte with its error, not with a cut-short 200
        written, done, error = 0, False, None
        while not written and not done:
            written, done, error = await anyio.to_thread.run_sync(flight.wait, 0)
        if error is not None:
            raise as_hub_error(error)
        headers = {**file_headers(revision, entry), "Content-Length": str(entry["size"])}
        return StreamingResponse(read_flight(flight), headers=headers, media_type="application/octet-stream")

    def _download(self, repo_id: str, commit: str, path: str, entry: Dict[str, Any], flight: Flight) -> None:
        check = (FileCheck(path, entry["size"], sha256=entry["sha256"]) if entry["lfs"]
                 else FileCheck(path, entry["size"], sha256=entry["sha256"], oid=entry["oid"]))
        with open(flight.part, "wb") as out, self.upstream.open_file(repo_id, commit, path) as chunks:
            for chunk in chunks:
                check.update(chunk)
                out.write(chunk)
                out.flush()
                flight.advance(check.received)
            os.fsync(out.fileno())
        try:
            check.finish()
        except IntegrityMismatch as exc:
            raise self._corrupted(repo_id, exc) from None


def _validate_refs(refs: Any, commit: str) -> Dict[str, Dict[str, str]]:
    if refs is None:
        return {}
    if not isinstance(refs, dict) or set(refs) - {"branches", "tags"}:
        raise BadRequest("'refs' must be {\"branches\": {name: commit}, \"tags\": {name: commit}}.")
    clean: Dict[str, Dict[str, str]] = {}
    for kind, names in refs.items():
        if not isinstance(names, dict):
            raise BadRequest(f"'refs.{kind}' must map names to the commit id.")
        for ref, target in names.items():
            validate_ref_name(ref, kind[:-1] if kind == "tags" else "branch")
            if target != commit:
                raise BadRequest(f"Ref {ref!r} must point at the adopted commit {commit}, not {target!r}.")
        clean[kind] = dict(names)
    return clean
