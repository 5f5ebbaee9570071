"""Reading request bodies within their limits: raw bytes, JSON objects, NDJSON lines, byte ranges."""
import json
import re
from typing import Any, AsyncIterator, Dict, Optional, Tuple

from starlette.requests import Request

from .errors import BadRequest, PayloadTooLarge
from .limits import MAX_INT_DIGITS, MAX_JSON_BODY, MAX_NDJSON_LINE

_RANGE = re.compile(rf"bytes=([0-9]{{0,{MAX_INT_DIGITS}}})-([0-9]{{0,{MAX_INT_DIGITS}}})")


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """The whole request body; raises ``PayloadTooLarge`` (413) past ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    return bytes(body)


async def json_object(request: Request, limit: int = MAX_JSON_BODY) -> Dict[str, Any]:
    """The request body as a JSON object (``{}`` when empty); ``BadRequest`` if it is not one."""
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
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
        item = json.loads(line)
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
