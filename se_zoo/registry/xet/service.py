"""The registry's Xet endpoints: token exchange and the CAS API (v1) the ``hf_xet`` client speaks.

- ``GET /api/models/{id}/xet-write-token/{rev}`` (write token needed) and ``.../xet-read-token/{rev}``
  (readable repo) answer ``{"accessToken", "exp", "casUrl"}`` and the ``X-Xet-*`` headers; ``casUrl``
  is the registry itself.
- ``GET /v1/chunks/default/{chunk}``: the dedup query; a shard listing the xorb that holds the chunk,
  or 404.
- ``POST /v1/xorbs/default/{xorb}``: a xorb, verified and stored (``{"was_inserted": bool}``).
- ``POST /v1/shards``: a shard, verified against the stored xorbs; registers its files (``{"result": 1}``).
- ``GET /v1/reconstructions/{file}`` (``Range`` allowed) and ``GET /v1/fetch/{xorb}`` (signed URL,
  ``Range``): the download path, used when ``announce_downloads`` makes resolve send ``X-Xet-Hash``.
- 404 for ``/v1/xorb-grants/...``, ``/v2/shards`` and ``/v2/reconstructions/...`` (the client falls
  back to v1); ``POST /v1/telemetry`` is accepted and dropped.
"""
import hashlib
import hmac
import re
import time
import uuid
from typing import Any, Dict, List, Optional

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..auth import Auth
from ..errors import BadRequest, EntryNotFound, Forbidden, HubError, PayloadTooLarge
from ..http import base_url, read_body, write_body
from ..limits import MAX_INT_DIGITS, MAX_SHARD_SIZE, MAX_XORB_SIZE, int_param
from ..store.quota import UploadCaps
from .shard import build_dedup_shard, parse_shard
from .store import XetStore
from .tokens import XetGrant, XetTokens

__all__ = ["XetService", "FETCH_URL_TTL"]

FETCH_URL_TTL = 3600
_HEX = frozenset("0123456789abcdef")


def _hex_hash(value: str, what: str) -> str:
    if len(value) != 64 or not set(value) <= _HEX:
        raise BadRequest(f"Invalid {what} hash {value!r}: expected 64 lowercase hex digits.")
    return value


class XetService:
    """Xet token and CAS handlers over one registry store.

    Args:
        auth: Who may read and write; its signing key (shared by the root's processes) keys the tokens.
        caps: The file size and namespace quota caps (its store is the registry's).

    Attributes:
        store: The ``XetStore`` under ``<root>/xet``.
        tokens: Issues and checks the scoped Xet tokens.
        received_bytes: Bytes of xorb and shard bodies received so far (what uploads cost on the wire).
        announce_downloads: Whether resolve announces Xet hashes so clients download through Xet
            (off by default: plain HTTP downloads serve the same bytes).
    """

    def __init__(self, auth: Auth, caps: UploadCaps):
        self.auth, self.caps, self.repos = auth, caps, caps.store
        self.store = XetStore(self.repos.root, self.repos)
        # the root's key is shared by every process serving it, so any worker accepts a token
        self.tokens = XetTokens(hmac.new(auth.signing_key, b"xet tokens", hashlib.sha256).digest())
        self.received_bytes = 0
        self.announce_downloads = False

    def uploaded_size(self, sha256: str, size: Optional[int]) -> Optional[int]:
        """The size of the file with this sha256 uploaded through Xet (``None`` if none, or of another size)."""
        file_hex = self.store.file_for_sha256(sha256)
        entry = self.store.file_entry(file_hex) if file_hex else None
        if entry is None or (size is not None and entry["size"] != size):
            return None
        return entry["size"]

    async def materialize(self, namespace: str, operations: List[Dict[str, Any]]) -> None:
        """Rebuild as blobs the commit's files that came through Xet (those marked ``"xet"``).

        The namespace's file size and quota limits apply as for LFS uploads. The marks are removed.

        Raises:
            PayloadTooLarge: if a file breaks the registry's maximum file size or the namespace quota.
            BadRequest: if rebuilt bytes do not hash to the sha256 the commit names (nothing stored).
        """
        pending = [op for op in operations if op.pop("xet", False)]
        if not pending:
            return
        await anyio.to_thread.run_sync(self.caps.check, namespace, [op["size"] for op in pending])
        for op in pending:
            if not await anyio.to_thread.run_sync(self.store.materialize, op["sha256"], op["size"]):
                raise BadRequest(f"File {op['path']!r}: its Xet upload is no longer registered; upload it again.")

    # token exchange
    def write_token(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``GET .../xet-write-token/{rev}``: a Xet token to upload to the repository.

        Raises:
            Unauthorized, Forbidden: without a write token.
            RepoNotFound: the repository does not exist.
        """
        self.auth.require_write(request)
        self.repos.repo_meta(namespace, name)
        return self._token_answer(request, self.tokens.issue(f"{namespace}/{name}", "write"))

    def read_token(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``GET .../xet-read-token/{rev}``: a Xet token to download the files of that revision.

        Raises:
            RepoNotFound: the repository does not exist or is private to the caller.
            RevisionNotFound: the revision is unknown.
        """
        self.auth.readable(request, namespace, name)
        commit = self.repos.resolve(namespace, name, revision)
        return self._token_answer(request, self.tokens.issue(f"{namespace}/{name}", "read", commit=commit))

    def _token_answer(self, request: Request, grant: XetGrant) -> Response:
        token, cas_url = self.tokens.encode(grant), base_url(request)
        headers = {"X-Xet-Cas-Url": cas_url, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": str(grant.expires)}
        return JSONResponse({"accessToken": token, "exp": grant.expires, "casUrl": cas_url}, headers=headers)

    def download_headers(self, request: Request, namespace: str, name: str, commit: str,
                         entry: Dict[str, Any]) -> Dict[str, str]:
        """``X-Xet-Hash`` and the ``xet-auth`` link for an LFS file uploaded through Xet, when announced."""
        if not (self.announce_downloads and entry["lfs"]):
            return {}
        file_hex = self.store.file_for_sha256(entry["sha256"])
        if file_hex is None:
            return {}
        refresh = f"{base_url(request)}/api/models/{namespace}/{name}/xet-read-token/{commit}"
        return {"X-Xet-Hash": file_hex, "Link": f'<{refresh}>; rel="xet-auth"'}

    # CAS
    @staticmethod
    async def telemetry(request: Request) -> Response:
        """``POST /v1/telemetry``: accepted and dropped."""
        async for _ in request.stream():
            pass
        return JSONResponse({})

    @staticmethod
    def not_served(request: Request, **_: str) -> Response:
        """Any other ``/v1/...`` or ``/v2/...`` URL: a 404 that sends the client to the v1 API."""
        return JSONResponse({"error": f"{request.url.path} is not served here; use the v1 API."}, status_code=404)

    async def dedup(self, request: Request, prefix: str, chunk: str) -> Response:
        """``GET /v1/chunks/default/{chunk}``: a shard naming the xorb that holds the chunk, or 404."""
        self.tokens.check(request.headers.get("authorization"), need_write=False)
        return await self._dedup(_prefix(prefix), _hex_hash(chunk, "chunk"))

    async def upload_xorb(self, request: Request, prefix: str, xorb: str) -> Response:
        """``POST /v1/xorbs/default/{xorb}``: a xorb, verified and stored."""
        self.tokens.check(request.headers.get("authorization"), need_write=True)
        return await self._upload_xorb(request, _prefix(prefix), _hex_hash(xorb, "xorb"))

    async def upload_shard(self, request: Request) -> Response:
        """``POST /v1/shards``: a shard, verified against the stored xorbs; registers its files."""
        self.tokens.check(request.headers.get("authorization"), need_write=True)
        body = await read_body(request, MAX_SHARD_SIZE)
        self.received_bytes += len(body)
        await anyio.to_thread.run_sync(self.store.add_shard, parse_shard(body))
        return JSONResponse({"result": 1})

    def reconstruction(self, request: Request, file_hex: str) -> Response:
        """``GET /v1/reconstructions/{file}`` (``Range`` allowed): the terms and signed fetch URLs."""
        grant = self.tokens.check(request.headers.get("authorization"), need_write=False)
        return self._reconstruction(request, grant, _hex_hash(file_hex, "file"))

    def fetch(self, request: Request, xorb: str) -> Response:
        """``GET /v1/fetch/{xorb}?expires&signature`` (``Range``): xorb bytes."""
        return self._fetch(request, _hex_hash(xorb, "xorb"))

    async def _dedup(self, prefix: str, chunk: str) -> Response:
        info = await anyio.to_thread.run_sync(self.store.dedup_xorb, chunk)
        if info is None:
            return JSONResponse({"error": f"Chunk {chunk} is not known."}, status_code=404)
        return Response(build_dedup_shard([info]), media_type="application/octet-stream")

    async def _upload_xorb(self, request: Request, prefix: str, xorb: str) -> Response:
        spool = self.repos.tmp.path / f"xorb-{uuid.uuid4().hex}"  # removed with a dead process's tmp
        try:
            with open(spool, "wb") as body:
                spooled = 0

                def spool_piece(piece: bytes) -> None:  # in a worker thread, off the event loop
                    nonlocal spooled
                    self.received_bytes += len(piece)
                    spooled += len(piece)
                    if spooled > MAX_XORB_SIZE:
                        raise PayloadTooLarge(f"Xorb body is larger than {MAX_XORB_SIZE} bytes.")
                    body.write(piece)

                await write_body(request, spool_piece)
            inserted = await anyio.to_thread.run_sync(self.store.add_xorb, xorb, spool)
        finally:
            spool.unlink(missing_ok=True)
        return JSONResponse({"was_inserted": inserted})

    # downloads
    def _reconstruction(self, request: Request, grant: XetGrant, file_hex: str) -> Response:
        entry = self.store.file_entry(file_hex)
        namespace, name = grant.repo.split("/", 1)
        files = self.repos.commit_info(namespace, name, grant.commit)["files"] if grant.commit else {}
        if entry is None or not any(f["lfs"] and f["sha256"] == entry["sha256"] for f in files.values()):
            raise EntryNotFound(f"File {file_hex} is not part of {grant.repo} at the token's commit.")
        first, last = _byte_range(request.headers.get("range"), entry["size"])
        terms, fetch_info, offset_into_first, position = [], {}, 0, 0
        base, expires = base_url(request), int(time.time()) + FETCH_URL_TTL
        for xorb_hex, start, end, _ in entry["terms"]:
            records = self.store.xorb_index(xorb_hex)
            for index in range(start, end):
                size = records[index].size
                if position + size > first and position <= last:
                    if not terms:
                        offset_into_first = first - position
                    _add_chunk(terms, xorb_hex, index, size)
                position += size
        for term in terms:
            records = self.store.xorb_index(term["hash"])
            begin, stop = records[term["range"]["start"]], records[term["range"]["end"] - 1]
            url = f"{base}/v1/fetch/{term['hash']}?expires={expires}&signature={self._sign(term['hash'], expires)}"
            fetch = {"range": dict(term["range"]), "url": url,
                     "url_range": {"start": begin.offset, "end": stop.offset + stop.record_size - 1}}
            if fetch not in fetch_info.setdefault(term["hash"], []):
                fetch_info[term["hash"]].append(fetch)
        return JSONResponse({"offset_into_first_range": offset_into_first, "terms": terms, "fetch_info": fetch_info})

    def _sign(self, xorb_hex: str, expires: int) -> str:
        return self.tokens.sign(f"fetch\n{xorb_hex}\n{expires}")

    def _fetch(self, request: Request, xorb_hex: str) -> Response:
        expires = int_param(request.query_params, "expires", 0)
        signature = request.query_params.get("signature", "")
        if expires < time.time() or not hmac.compare_digest(
                signature.encode("utf-8", "replace"), self._sign(xorb_hex, expires).encode()):
            raise Forbidden("Invalid or expired xorb fetch URL; ask /v1/reconstructions for a new one.")
        path = self.store.xorb_path(xorb_hex)
        if not self.store.has_xorb(xorb_hex):
            raise EntryNotFound(f"Xorb {xorb_hex} not found.")
        size = path.stat().st_size
        first, last = _byte_range(request.headers.get("range"), size)
        headers = {"Content-Length": str(last - first + 1), "Content-Range": f"bytes {first}-{last}/{size}"}
        return StreamingResponse(_read_span(path, first, last - first + 1), status_code=206, headers=headers,
                                 media_type="application/octet-stream")


def _add_chunk(terms: List[Dict[str, Any]], xorb_hex: str, index: int, size: int) -> None:
    last = terms[-1] if terms else None
    if last is not None and last["hash"] == xorb_hex and last["range"]["end"] == index:
        last["range"]["end"] += 1
        last["unpacked_length"] += size
    else:
        terms.append({"hash": xorb_hex, "unpacked_length": size, "range": {"start": index, "end": index + 1}})


_DIGITS = re.compile(f"[0-9]{{1,{MAX_INT_DIGITS}}}")  # ASCII only: str.isdigit accepts '²'


def _byte_range(header: Optional[str], size: int) -> tuple:
    """``(first, last)`` inclusive for ``bytes=a-b`` (or the whole object); 416 if outside."""
    if not header:
        return 0, size - 1
    spec = header.strip().removeprefix("bytes=")
    first_text, _, last_text = spec.partition("-")
    if not _DIGITS.fullmatch(first_text) or (last_text and not _DIGITS.fullmatch(last_text)):
        raise BadRequest(f"Unsupported Range {header!r}: expected bytes=FIRST-LAST.")
    first, last = int(first_text), min(int(last_text) if last_text else size - 1, size - 1)
    if first > last:
        raise _RangeNotSatisfiable(f"Range {header!r} is outside the {size} bytes.")
    return first, last


class _RangeNotSatisfiable(HubError):
    status = 416


async def _read_span(path, start: int, length: int):
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            block = await anyio.to_thread.run_sync(f.read, min(1 << 20, length))
            if not block:
                return
            length -= len(block)
            yield block


def _prefix(prefix: str) -> str:
    if prefix != "default":
        raise BadRequest(f"Unknown CAS prefix {prefix!r}: only 'default' is served.")
    return prefix
