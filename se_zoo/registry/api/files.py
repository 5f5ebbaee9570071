"""File downloads: ``HEAD|GET /{id}/resolve/{rev}/{path}``.

``X-Repo-Commit``, ``ETag`` (git blob id, or sha256 for LFS files, also in ``X-Linked-Etag``/
``X-Linked-Size``), ``Content-Length``, single ``Range`` requests (206/416) honouring ``If-Range``
(a range only when it names the current ETag). A branch or tag answers 302 to the same file at its
commit, so the download gets the exact version the metadata described even if the branch moves in
between. A verified blob is sent with ``sendfile`` when the ASGI server offers the zero-copy send
extension (the registry's own server does, ``se_zoo.registry.app``), else read in chunks in worker
threads. With ``accel_redirect`` a GET of a verified blob answers ``X-Accel-Redirect`` and no body:
the web server in front (nginx) sends the bytes and handles ``Range``; HEAD is answered here.

Damaged blobs are never served whole (``se_zoo.registry.store.integrity``): a blob not verified since
its file last changed is hashed while it streams, and the connection is broken before the last byte
if the digest is wrong (so the client's size check fails); a range of it is served only after the
whole blob verified. A blob known to be damaged answers 500.
"""
import hashlib
import re
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Optional
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..auth import Auth
from ..errors import EntryNotFound
from ..http import RangeNotSatisfiable, error_response, file_headers, parse_range
from ..store.integrity import BlobDamaged, BlobIntegrity, FileKey, damaged_message
from ..store.names import validate_path
from ..store.storage import CHUNK_SIZE, WEIGHT_SUFFIXES, Store
from ..xet.service import XetService

__all__ = ["BlobResponse", "Downloads", "blob_chunks", "check_accel_redirect", "zero_copy_offered"]

_ACCEL_PREFIX = re.compile(r"/(?:(?!\.\.?/)[A-Za-z0-9._~-]+/)*")  # no "." or ".." segment


async def blob_chunks(path: Path, start: int, length: int, digest: Optional[Any] = None) -> AsyncIterator[bytes]:
    """``length`` bytes of the blob at ``path`` from ``start``, read in worker threads chunk by chunk.

    Args:
        path: The blob file.
        start: The first byte.
        length: How many bytes.
        digest: A ``hashlib`` object each chunk updates, in the worker thread that read it.

    Raises:
        RuntimeError: if the blob is shorter than that.
    """
    def read(size: int) -> bytes:
        data = f.read(size)
        if digest is not None:
            digest.update(data)
        return data

    sent = 0
    with open(path, "rb") as f:
        f.seek(start)
        while sent < length:
            chunk = await anyio.to_thread.run_sync(read, min(CHUNK_SIZE, length - sent))
            if not chunk:
                raise RuntimeError(f"Blob {path.name} is shorter than its recorded size.")
            sent += len(chunk)
            yield chunk


ZERO_COPY = "http.response.zerocopysend"


def check_accel_redirect(prefix: Optional[str]) -> Optional[str]:
    """``prefix`` if it is a valid ``accel_redirect`` URL prefix (or ``None``).

    Raises:
        ValueError: if it is not a path that starts and ends with ``/`` made of letters, digits and
            ``-._~`` with no ``.`` or ``..`` segment.
    """
    if prefix is not None and not _ACCEL_PREFIX.fullmatch(prefix):
        raise ValueError(f"accel_redirect must be a URL path starting and ending with '/' made of letters, "
                         f"digits and -._~ (no . or .. segment), got {prefix!r}.")
    return prefix


def zero_copy_offered(scope: Dict[str, Any]) -> bool:
    """Whether the ASGI server offers the zero-copy send extension (the registry's own server does)."""
    return ZERO_COPY in scope.get("extensions", {})


class BlobResponse(Response):
    """``length`` bytes of a verified blob from ``start``: by ``sendfile`` when the server offers it.

    Without ASGI's zero-copy send extension the bytes are read in worker threads (``blob_chunks``).

    Args:
        path: The blob file.
        start: The first byte.
        length: How many bytes (the ``Content-Length`` in ``headers``).
        status: 200 or 206.
        headers: The response headers.
    """

    def __init__(self, path: Path, start: int, length: int, status: int, headers: Dict[str, str]):
        super().__init__(status_code=status, headers=headers, media_type="application/octet-stream")
        self.path, self.start, self.length = path, start, length

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if zero_copy_offered(scope):
            with open(self.path, "rb") as f:
                await send({"type": ZERO_COPY, "file": f, "offset": self.start, "count": self.length,
                            "more_body": False})
            return
        async for chunk in blob_chunks(self.path, self.start, self.length):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Downloads:
    """The resolve handler over one store.

    Args:
        store: The registry's store.
        auth: Who may read.
        xet: Announces Xet hashes for files uploaded through Xet, when enabled.
        accel_redirect: A URL prefix (``/_blobs/``) under which a web server in front serves the
            ``blobs/`` folder; a GET of a verified blob then answers ``X-Accel-Redirect`` to it with
            no body (see ``se_zoo.registry.app``), or ``None`` to send the bytes from here.

    Raises:
        ValueError: if ``accel_redirect`` is not a path that starts and ends with ``/``.
    """

    def __init__(self, store: Store, auth: Auth, xet: XetService, accel_redirect: Optional[str] = None):
        self.store, self.auth, self.xet = store, auth, xet
        self.accel_redirect = check_accel_redirect(accel_redirect)
        self.integrity = BlobIntegrity(store.root)

    async def resolve(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        """``HEAD|GET /{id}/resolve/{rev}/{path}`` (see the module docstring)."""
        self.auth.readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        validate_path(path)
        entry = self.store.commit_info(namespace, name, commit_id)["files"].get(path)
        if entry is None:
            raise EntryNotFound(f"File {path!r} not found at {commit_id}.", commit_id)
        headers = {**file_headers(commit_id, entry), "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            headers.update(self.xet.download_headers(request, namespace, name, commit_id, entry))
        if revision != commit_id:
            location = f"/{namespace}/{name}/resolve/{commit_id}/{quote(path)}"
            return Response(status_code=302, headers={**headers, "Location": location})
        size = entry["size"]
        if_range = request.headers.get("if-range")
        try:  # If-Range: the range only if the client's copy is this version (RFC 9110 13.1.5)
            byte_range = parse_range(request.headers.get("range") if if_range in (None, headers["ETag"]) else None,
                                     size)
        except RangeNotSatisfiable:
            return error_response(416, f"Range not satisfiable for a file of {size} bytes.",
                                  headers={"Content-Range": f"bytes */{size}"})
        start, end = byte_range or (0, size - 1)
        if request.method == "HEAD" or self.accel_redirect is None:
            headers["Content-Length"] = str(end - start + 1)
            if byte_range is not None:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        status = 206 if byte_range is not None else 200
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type="application/octet-stream")
        if start == 0 and path.endswith(WEIGHT_SUFFIXES):  # a download from the start, not a resumption
            await anyio.to_thread.run_sync(self.store.count_download, namespace, name)
        sha256, blob = entry["sha256"], self.store.blob_path(entry["sha256"])
        key, intact = await anyio.to_thread.run_sync(self.integrity.status, sha256, blob)
        if intact is None and (self.accel_redirect is not None or (start, end) != (0, size - 1)):
            try:  # a part cannot be checked on its own, nor what another server sends: verify the whole blob
                await anyio.to_thread.run_sync(self.integrity.verify, sha256, blob)
                intact = True
            except BlobDamaged:
                intact = False
        if intact is False:
            return error_response(500, damaged_message(sha256))
        if self.accel_redirect is not None:  # the web server in front sends the bytes (and handles Range)
            headers["X-Accel-Redirect"] = f"{self.accel_redirect}{sha256[:2]}/{sha256}"
            return Response(status_code=200, headers=headers, media_type="application/octet-stream")
        if intact:
            return BlobResponse(blob, start, end - start + 1, status, headers)
        return StreamingResponse(self._verified_chunks(sha256, blob, key, size), status_code=status, headers=headers,
                                 media_type="application/octet-stream")

    async def _verified_chunks(self, sha256: str, blob: Path, key: FileKey, size: int) -> AsyncIterator[bytes]:
        """The whole blob, hashed as it streams; its last chunk is sent only if the digest is right.

        Raises:
            BlobDamaged: before the last chunk, if the bytes do not hash to ``sha256`` (the server then
                breaks the connection, short of the announced ``Content-Length``).
        """
        digest, held = hashlib.sha256(), None
        async for chunk in blob_chunks(blob, 0, size, digest):
            if held is not None:
                yield held
            held = chunk
        if not await anyio.to_thread.run_sync(self.integrity.record, sha256, blob, key, digest.hexdigest()):
            raise BlobDamaged(damaged_message(sha256))
        if held is not None:
            yield held
