"""HTTP pieces every part of the registry shares: capped bodies, byte ranges, errors, file headers.

``read_body`` is the one reader of a request body: every handler that reads one goes through it,
so no body is held past its cap.
"""
import re
from typing import Any, AsyncIterator, Callable, Dict, Optional, Tuple

import anyio

from starlette.requests import Request
from starlette.responses import JSONResponse

from .errors import BadRequest, PayloadTooLarge
from .limits import MAX_INT_DIGITS, MAX_JSON_BODY, MAX_NDJSON_LINE, LimitError, load_json
from .store.storage import CHUNK_SIZE

_RANGE = re.compile(rf"bytes=([0-9]{{0,{MAX_INT_DIGITS}}})-([0-9]{{0,{MAX_INT_DIGITS}}})")


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """The whole request body; raises ``PayloadTooLarge`` (413) past ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    return bytes(body)


async def write_body(request: Request, write: Callable[[bytes], Any]) -> None:
    """Pass the request body to ``write`` in pieces of about ``CHUNK_SIZE`` bytes, each in a worker thread.

    For bodies too large to hold (blob uploads): hashing and writing never run on the event loop.

    Args:
        request: The request whose body to read.
        write: Called with each piece (e.g. a ``BlobWriter``'s ``write``, which enforces its size cap).
    """
    pending = bytearray()
    async for chunk in request.stream():
        pending += chunk
        if len(pending) >= CHUNK_SIZE:
            await anyio.to_thread.run_sync(write, bytes(pending))
            pending.clear()
    await anyio.to_thread.run_sync(write, bytes(pending))


async def json_object(request: Request, limit: int = MAX_JSON_BODY) -> Dict[str, Any]:
    """The request body as a JSON object (``{}`` when empty); ``BadRequest`` if it is not one.

    Raises:
        BadRequest: if the body is not a JSON object.
        LimitError: if it nests deeper than ``MAX_JSON_DEPTH`` (400).
        PayloadTooLarge: if it is larger than ``limit`` bytes.
    """
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    try:
        data = load_json(body)
    except LimitError:
        raise
    except ValueError:
        raise BadRequest("Request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.")
    return data


async def ndjson_lines(request: Request) -> AsyncIterator[Dict[str, Any]]:
    """The JSON objects of an NDJSON body, parsed line by line as the body arrives."""
    buffer = bytearray()
    async for chunk in request.stream():
        scan_from = len(buffer)
        buffer += chunk
        while (end := buffer.find(b"\n", scan_from)) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            scan_from = 0
            if line.strip():
                yield _parse_ndjson_line(line)
        if len(buffer) > MAX_NDJSON_LINE:
            raise PayloadTooLarge(f"NDJSON line is longer than the limit of {MAX_NDJSON_LINE} bytes.")
    if buffer.strip():
        yield _parse_ndjson_line(bytes(buffer))


def _parse_ndjson_line(line: bytes) -> Dict[str, Any]:
    try:
        item = load_json(line, "A commit payload line")
    except LimitError:
        raise
    except ValueError:
        raise BadRequest("Commit payload has a line that is not valid JSON.") from None
    if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not isinstance(item.get("value"), dict):
        raise BadRequest('Each commit payload line must be {"key": str, "value": object}.')
    return item


def parse_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """``(start, end)`` inclusive for a single satisfiable byte range, ``None`` to send the whole file.

    Raises ``RangeNotSatisfiable`` for a well-formed range outside the file. Malformed or multiple
    ranges, and positions of more than ``MAX_INT_DIGITS`` digits, are ignored, as RFC 9110 allows.
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
        if int(last) == 0:
            raise RangeNotSatisfiable()
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    if start >= size:
        raise RangeNotSatisfiable()
    return start, end


class RangeNotSatisfiable(Exception):
    """A well-formed byte range that lies outside the file (answered with 416)."""


def error_response(status: int, message: str, code: Optional[str] = None,
                   headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    """The Hub's error answer: ``{"error": message}`` with ``X-Error-Message`` (and ``X-Error-Code``).

    Args:
        status: The HTTP status.
        message: The message; user input in it is escaped for the header (``\\n``, ``\\xe9``).
        code: The Hub's error code (``RepoNotFound``, ...), or ``None``.
        headers: More headers to send.
    """
    safe = message.encode("unicode_escape").decode("ascii")  # header values must be printable ASCII
    extra = {"X-Error-Message": safe, **(headers or {})}
    if code:
        extra["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=extra)


def no_route(request: Request, **_: str) -> JSONResponse:
    """The 404 for a method and path no route answers (route parameters are ignored)."""
    return error_response(404, f"No route for {request.method} {request.url.path}.")


def file_headers(commit_id: str, entry: Dict[str, Any]) -> Dict[str, str]:
    """``X-Repo-Commit``, ``ETag`` and, for LFS files, ``X-Linked-Etag``/``X-Linked-Size`` of a file download.

    Args:
        commit_id: The commit the file is served at.
        entry: The file's entry in that commit (``lfs``, ``sha256``, ``oid``, ``size``).

    Returns:
        The headers; the ETag is the git blob id, or the sha256 for LFS files, as the Hub sends.
    """
    etag = entry["sha256"] if entry["lfs"] else entry["oid"]
    headers = {"X-Repo-Commit": commit_id, "ETag": f'"{etag}"'}
    if entry["lfs"]:
        headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(entry["size"])})
    return headers


def flag(value: Optional[str]) -> bool:
    """Whether a query parameter is set to a true value (``1``, ``true``, ``yes``)."""
    return value is not None and value.lower() in ("1", "true", "yes")


def base_url(request: Request) -> str:
    """The registry's own URL as the client reached it, without a trailing slash."""
    return str(request.base_url).rstrip("/")
