"""Short-lived Xet access tokens: scoped to one repository, one mode (read/write) and an expiry.

A token is ``<payload>.<signature>``: the payload is base64url JSON ``{"repo", "mode", "exp"[, "commit"]}``
and the signature its HMAC-SHA256 under the registry's key, so tokens need no storage.
"""
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Optional

from ..store.storage import Forbidden, HubError

TOKEN_TTL = 3600
MODES = ("read", "write")


class InvalidXetToken(HubError):
    """A CAS request without a valid, unexpired Xet token."""

    status = 401


@dataclass(frozen=True)
class XetGrant:
    """What a valid token allows."""

    repo: str
    mode: str
    expires: int
    commit: Optional[str] = None  # read tokens: the commit the token was issued for


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class XetTokens:
    """Issues and checks Xet tokens.

    Args:
        key: The signing key; a random one (valid for this object only) if omitted.
    """

    def __init__(self, key: Optional[bytes] = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def sign(self, payload: str) -> str:
        """The hex HMAC-SHA256 of ``payload`` under this object's key (tokens, signed fetch URLs)."""
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, repo: str, mode: str, ttl: int = TOKEN_TTL, commit: Optional[str] = None) -> XetGrant:
        """A new grant; its token is ``encode(grant)``.

        Args:
            repo: ``namespace/name`` the token is for.
            mode: ``"read"`` or ``"write"``.
            ttl: Seconds until it expires (negative values give an expired token, for tests).
            commit: For read tokens, the commit id the token may download files of.

        Raises:
            ValueError: if ``mode`` is not read or write.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return XetGrant(repo, mode, int(time.time()) + ttl, commit)

    def encode(self, grant: XetGrant) -> str:
        """The bearer token for ``grant``."""
        body = {"repo": grant.repo, "mode": grant.mode, "exp": grant.expires}
        if grant.commit:
            body["commit"] = grant.commit
        payload = _b64(json.dumps(body, sort_keys=True).encode())
        return f"{payload}.{self.sign(payload)}"

    def check(self, authorization: Optional[str], need_write: bool) -> XetGrant:
        """The grant of an ``Authorization: Bearer <token>`` header.

        Args:
            authorization: The header value, or ``None``.
            need_write: Whether the request writes (a read token is then refused).

        Returns:
            The grant.

        Raises:
            InvalidXetToken: (401) no token, a malformed, foreign or expired one.
            Forbidden: (403) a read token on a write request.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidXetToken("A Xet access token is required: send 'Authorization: Bearer <token>' "
                                  "from the xet-write-token or xet-read-token endpoint.")
        payload, _, signature = token.strip().partition(".")
        if not hmac.compare_digest(signature.encode("utf-8", "replace"), self.sign(payload).encode()):
            raise InvalidXetToken("Invalid Xet access token: it was not issued by this registry (or by "
                                  "an earlier run of it).")
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        grant = XetGrant(body["repo"], body["mode"], int(body["exp"]), body.get("commit"))
        if grant.expires < time.time():
            raise InvalidXetToken(f"The Xet access token expired at {grant.expires} (unix time); ask the token "
                                  "endpoint for a new one.")
        if need_write and grant.mode != "write":
            raise Forbidden("This Xet access token is read-only; uploads need one from xet-write-token.")
        return grant
