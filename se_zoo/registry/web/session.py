"""Who is looking: the read token a visitor entered, kept in an HttpOnly, SameSite=Strict cookie.

The cookie holds the token itself (the registry keeps only digests, so there is nothing else to
look it up by); HttpOnly keeps it from page scripts (the CSP allows none anyway), SameSite=Strict
keeps other sites from sending it. A bearer token in ``Authorization`` works too, so API clients
can fetch pages.
"""
import re
from typing import Optional
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from ..auth import COOKIE
from ..http import read_body
from ..limits import MAX_FORM_BYTES

__all__ = ["COOKIE", "safe_next", "read_form", "set_token_cookie", "clear_token_cookie"]
_LOCAL_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]*")


def safe_next(value: Optional[str]) -> str:
    """``value`` when it is a path on this site (``/...``, not ``//host`` nor the form itself), else ``/``."""
    return value if value and _LOCAL_PATH.fullmatch(value) and not value.startswith("/login") else "/"


async def read_form(request: Request) -> dict:
    """The fields of a small ``application/x-www-form-urlencoded`` body (last value wins).

    Raises:
        PayloadTooLarge: if the body is larger than ``MAX_FORM_BYTES``.
    """
    body = await read_body(request, MAX_FORM_BYTES)
    return dict(parse_qsl(body.decode("utf-8", "replace")))


def set_token_cookie(response: Response, request: Request, token: str) -> None:
    """Store ``token`` in the visitor's cookie (session cookie, HttpOnly, SameSite=Strict)."""
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_token_cookie(response: Response, request: Request) -> None:
    """Remove the token cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
