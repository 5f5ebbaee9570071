"""Who is looking: the read token a visitor entered, kept in an HttpOnly, SameSite=Strict cookie.

The cookie holds the token itself (the registry keeps only digests, so there is nothing else to
look it up by); HttpOnly keeps it from page scripts (the CSP allows none anyway), SameSite=Strict
keeps other sites from sending it. A bearer token in ``Authorization`` works too, so API clients
can fetch pages.
"""
import re
from typing import Callable, Optional
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["COOKIE", "safe_next", "visitor_permission", "read_form", "set_token_cookie", "clear_token_cookie"]

COOKIE = "se_zoo_token"
MAX_FORM_BYTES = 8192
_LOCAL_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]*")


def visitor_permission(request: Request, token_permission: Callable[[str], Optional[str]]) -> Optional[str]:
    """The permission of the visitor's token (cookie, else bearer header), or ``None``.

    An unknown token counts as no token: pages then look exactly as they do to anonymous visitors.

    Args:
        request: The page request.
        token_permission: Maps a token to ``"read"``/``"write"``, or ``None`` when unknown.

    Returns:
        ``"read"``, ``"write"`` or ``None``.
    """
    token = request.cookies.get(COOKIE)
    if token and (permission := token_permission(token)) is not None:
        return permission
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        return token_permission(bearer.strip())
    return None


def safe_next(value: Optional[str]) -> str:
    """``value`` when it is a path on this site (``/...``, not ``//host`` nor the form itself), else ``/``."""
    return value if value and _LOCAL_PATH.fullmatch(value) and not value.startswith("/login") else "/"


async def read_form(request: Request) -> dict:
    """The fields of a small ``application/x-www-form-urlencoded`` body (last value wins).

    Raises:
        ValueError: if the body is larger than 8 KiB.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ValueError(f"The form is larger than {MAX_FORM_BYTES} bytes.")
    return dict(parse_qsl(body.decode("utf-8", "replace")))


def set_token_cookie(response: Response, request: Request, token: str) -> None:
    """Store ``token`` in the visitor's cookie (session cookie, HttpOnly, SameSite=Strict)."""
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_token_cookie(response: Response, request: Request) -> None:
    """Remove the token cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
