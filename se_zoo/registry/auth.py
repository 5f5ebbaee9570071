"""Who may do what: the one place that decides read, write and "private looks missing".

A request carries a token in ``Authorization: Bearer <token>`` (API clients) or in the web login
cookie (people, see ``se_zoo.registry.web.session``). Tokens come from ``SE_ZOO_HUB_TOKEN`` or a
tokens file, each ``"read"`` or ``"write"``; only their sha256 is kept, never the token itself.

- Reading: anyone reads public repositories; a private repository is readable with any valid token
  (bearer or cookie) and to everyone else a 404 identical to that of a missing repository. On the
  API an unknown bearer token is a 401, even on public repositories; on the pages an unknown token
  counts as none, so they look as they do to anonymous visitors.
- Writing: a write token in the ``Authorization`` header (401 without one, 403 with a read token).
  The cookie never writes: a page form cannot be made to change anything.

With no token configured the registry is read-only.
"""
import hashlib
import hmac
from typing import Any, Dict, Mapping, Optional

from starlette.requests import Request

from .errors import Forbidden, RepoNotFound, Unauthorized
from .store.storage import Store

__all__ = ["Auth", "COOKIE", "PERMISSIONS"]

PERMISSIONS = ("read", "write")
COOKIE = "se_zoo_token"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    """Tokens, the page cookie and repository visibility of one registry.

    Args:
        store: The registry's store (repository visibility, the signing key shared by its processes).
        tokens: Maps each accepted token to ``"read"`` or ``"write"``; empty or ``None`` makes the
            registry read-only.

    Raises:
        ValueError: if a token is empty or has whitespace, or a permission is not read/write.
    """

    def __init__(self, store: Store, tokens: Optional[Mapping[str, str]] = None):
        self.store = store
        self._digests: Dict[str, str] = {}
        for token, permission in (tokens or {}).items():
            if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
                raise ValueError("tokens: every token must be a non-empty string without whitespace.")
            if permission not in PERMISSIONS:
                raise ValueError(f"tokens: permission must be one of {PERMISSIONS}, got {permission!r}.")
            self._digests[_digest(token)] = permission
        self.signing_key = store.signing_key()  # shared by every process serving this root

    def sign(self, message: str) -> str:
        """The hex HMAC-SHA256 of ``message`` under the root's signing key (signed upload URLs)."""
        return hmac.new(self.signing_key, message.encode(), hashlib.sha256).hexdigest()

    def token_permission(self, token: str) -> Optional[str]:
        """``"read"`` or ``"write"`` for a known token, ``None`` for any other."""
        return self._digests.get(_digest(token))

    def bearer(self, request: Request) -> Optional[str]:
        """The permission of the request's ``Authorization`` header, ``None`` without one.

        Raises:
            Unauthorized: if the header holds anything but a known bearer token.
        """
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        permission = self.token_permission(token.strip()) if scheme.lower() == "bearer" else None
        if permission is None:
            raise Unauthorized("Invalid credentials in Authorization header")
        return permission

    def cookie(self, request: Request) -> Optional[str]:
        """The permission of the token in the web login cookie, ``None`` without a valid one."""
        token = request.cookies.get(COOKIE)
        return self.token_permission(token) if token else None

    def reader(self, request: Request) -> Optional[str]:
        """An API request's read permission: its bearer token, else its login cookie, else ``None``.

        Raises:
            Unauthorized: if the request sends an unknown bearer token.
        """
        return self.bearer(request) or self.cookie(request)

    def visitor(self, request: Request) -> Optional[str]:
        """A page visitor's permission: the login cookie, else a bearer token; unknown ones count as none."""
        if (permission := self.cookie(request)) is not None:
            return permission
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self.token_permission(token.strip())
        return None

    def require_token(self, request: Request) -> str:
        """The bearer token's permission.

        Raises:
            Unauthorized: without a token, or with an unknown one.
        """
        permission = self.bearer(request)
        if permission is None:
            raise Unauthorized("No token given: send 'Authorization: Bearer <token>'.")
        return permission

    def require_write(self, request: Request, action: str = "writing") -> None:
        """Refuse a request that may not write.

        Args:
            request: The request.
            action: What it does, for the 403's message (``"This token is read-only; {action} needs ..."``).

        Raises:
            Unauthorized: without a bearer token, or with an unknown one.
            Forbidden: with a read token.
        """
        permission = self.bearer(request)
        if permission is None:
            raise Unauthorized("A write token is required: send 'Authorization: Bearer <token>'.")
        if permission != "write":
            raise Forbidden(f"This token is read-only; {action} needs a write token.")

    @staticmethod
    def reveal(private: bool, may_read_private: bool, repo_id: str) -> None:
        """Raise the missing repository's 404 for a private repository the caller may not read.

        Args:
            private: Whether the repository is private.
            may_read_private: Whether the caller holds a valid token (``reader``/``visitor`` not ``None``).
            repo_id: ``namespace/name``, for the message.

        Raises:
            RepoNotFound: exactly as for a repository that does not exist.
        """
        if private and not may_read_private:
            raise RepoNotFound(f"Repository {repo_id} not found.")

    def readable(self, request: Request, namespace: str, name: str) -> Dict[str, Any]:
        """The repository's metadata, for an API request that may read it.

        Raises:
            RepoNotFound: the repository does not exist or is private to the caller.
            Unauthorized: the request sends an unknown bearer token.
        """
        meta = self.store.repo_meta(namespace, name)
        self.reveal(meta["private"], self.reader(request) is not None, f"{namespace}/{name}")
        return meta

    def visible(self, request: Request, namespace: str, name: str) -> Dict[str, Any]:
        """The repository's metadata, for a page visitor who may see it.

        Raises:
            RepoNotFound: the repository does not exist or is private to the visitor.
        """
        meta = self.store.repo_meta(namespace, name)
        self.reveal(meta["private"], self.visitor(request) is not None, f"{namespace}/{name}")
        return meta
