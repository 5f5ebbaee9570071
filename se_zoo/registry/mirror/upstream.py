"""Reading another Hub endpoint (the public Hub or an se-zoo registry) over plain HTTP.

Only the documented JSON API and ``/resolve`` downloads are used. File bytes are fetched with a
plain ``GET`` that follows redirects, so a Xet-backed file of the public Hub arrives through its
HTTP bridge like any other; no Xet field or header the upstream sends is ever kept or passed on.

The token for the upstream comes from a file or the ``SE_ZOO_UPSTREAM_TOKEN`` environment
variable, never from the command line (where other users of the machine could read it).

``httpx2`` is imported when an ``Upstream`` is made, not with this module: a registry without an
upstream (and its start-up) never needs it.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx2

from ..store.storage import HubError
from ..errors import CommandError

__all__ = ["TOKEN_ENV", "UpstreamError", "UpstreamUnavailable", "UpstreamNotFound", "Upstream", "read_token"]

TOKEN_ENV = "SE_ZOO_UPSTREAM_TOKEN"
DOWNLOAD_CHUNK = 1024 * 1024


class UpstreamError(HubError):
    """The upstream answered something a mirror cannot use (or sent bytes that failed verification)."""

    status, code = 502, "UpstreamError"


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached, timed out or answered with a server error."""

    status, code = 504, "UpstreamUnavailable"


class UpstreamNotFound(HubError):
    """The upstream has no such repository, revision or file (or hides it from our token)."""

    status, code = 404, "RepoNotFound"

    def __init__(self, message: str, code: Optional[str] = None):
        super().__init__(message)
        self.code = code or "RepoNotFound"


def read_token(token_file: Optional[Path] = None) -> Optional[str]:
    """The upstream token: the first line of ``token_file``, else ``$SE_ZOO_UPSTREAM_TOKEN``, else None.

    Args:
        token_file: A file holding the token.

    Returns:
        The token, or None for anonymous access.

    Raises:
        ValueError: if the file is empty or the token has whitespace inside.
        FileNotFoundError: if ``token_file`` does not exist.
    """
    token = Path(token_file).read_text().strip() if token_file is not None else os.environ.get(TOKEN_ENV, "").strip()
    if token_file is not None and not token:
        raise CommandError(f"upstream token file {token_file} is empty: expected one token on its first line.")
    if token and any(ch.isspace() for ch in token):
        raise CommandError("upstream token: expected one token without whitespace, got text with spaces or lines.")
    return token or None


class Upstream:
    """A read-only client of one Hub endpoint.

    Args:
        endpoint: Base URL, e.g. ``https://huggingface.co`` or ``http://gateway:8080``.
        token: Bearer token sent to the endpoint (never to a host it redirects to), or None.
        timeout: Seconds to wait to connect and between two reads.
        ttl: Seconds a pull-through registry trusts a branch or tag name it resolved here.

    Raises:
        ValueError: if ``endpoint`` is not an http(s) URL.
    """

    def __init__(self, endpoint: str, token: Optional[str] = None, timeout: float = 30.0, ttl: float = 60.0):
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise CommandError(f"upstream endpoint: expected an http:// or https:// URL, got {endpoint!r}.")
        if not ttl >= 0:
            raise CommandError(f"upstream ttl: expected seconds >= 0, got {ttl!r}.")
        self.endpoint, self.ttl = endpoint.rstrip("/"), ttl
        import httpx2

        headers = {"User-Agent": "se-zoo-mirror"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # httpx drops the Authorization header when a redirect leaves the endpoint's origin
        self._client = httpx2.Client(headers=headers, follow_redirects=True,
                                    timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _get_json(self, path: str, what: str) -> Any:
        import httpx2

        try:
            response = self._client.get(self.endpoint + path)
        except httpx2.TransportError as exc:
            raise UpstreamUnavailable(f"Upstream {self.endpoint} is unreachable ({type(exc).__name__}) "
                                      f"while reading {what}.") from None
        _raise_for_status(response, self.endpoint, what)
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(f"Upstream {self.endpoint} answered {what} with something that is not JSON.") from None

    def refs(self, repo_id: str) -> Dict[str, Dict[str, str]]:
        """``{"branches": {name: commit}, "tags": {name: commit}}`` of a repository upstream.

        Raises:
            UpstreamNotFound: if the upstream has no such repository (for our token).
            UpstreamUnavailable: if it cannot be reached.
            UpstreamError: if the answer is malformed.
        """
        data = self._get_json(f"/api/models/{repo_id}/refs", f"the refs of {repo_id}")
        try:
            return {kind: {ref["name"]: ref["targetCommit"] for ref in data.get(kind) or []}
                    for kind in ("branches", "tags")}
        except (AttributeError, KeyError, TypeError):
            raise UpstreamError(f"Upstream {self.endpoint} sent malformed refs for {repo_id}.") from None

    def repo_info(self, repo_id: str, revision: str) -> Dict[str, Any]:
        """The repository at ``revision`` with file sizes, blob ids and LFS sha256 (``?blobs=1``).

        Raises:
            UpstreamNotFound, UpstreamUnavailable, UpstreamError: as for ``refs``.
        """
        data = self._get_json(f"/api/models/{repo_id}/revision/{quote(revision, safe='')}?blobs=true",
                              f"{repo_id} at {revision}")
        if not isinstance(data, dict):
            raise UpstreamError(f"Upstream {self.endpoint} sent a malformed description of {repo_id}.")
        return data

    @contextlib.contextmanager
    def open_file(self, repo_id: str, commit: str, path: str) -> Iterator[Iterator[bytes]]:
        """Stream one file at one commit by a plain GET that follows redirects.

        Yields:
            An iterator of byte chunks.

        Raises:
            UpstreamNotFound, UpstreamUnavailable, UpstreamError: as for ``refs``.
        """
        import httpx2

        url = f"{self.endpoint}/{repo_id}/resolve/{commit}/{quote(path)}"
        what = f"{path} of {repo_id} at {commit}"
        try:
            with self._client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
                _raise_for_status(response, self.endpoint, what)
                yield _chunks(response, self.endpoint, what)
        except httpx2.TransportError as exc:
            raise UpstreamUnavailable(f"Upstream {self.endpoint} is unreachable ({type(exc).__name__}) "
                                      f"while sending {what}.") from None


def _chunks(response: httpx2.Response, endpoint: str, what: str) -> Iterator[bytes]:
    import httpx2

    try:
        yield from response.iter_raw(DOWNLOAD_CHUNK)
    except httpx2.TransportError as exc:
        raise UpstreamUnavailable(f"Upstream {endpoint} broke off while sending {what} "
                                  f"({type(exc).__name__}).") from None


def _raise_for_status(response: httpx2.Response, endpoint: str, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status in (401, 403, 404):
        code = response.headers.get("X-Error-Code")
        code = code if code in ("RepoNotFound", "RevisionNotFound", "EntryNotFound") else "RepoNotFound"
        raise UpstreamNotFound(f"Upstream {endpoint} has no {what} (HTTP {status}).", code)
    if status >= 500 or status in (408, 429):
        raise UpstreamUnavailable(f"Upstream {endpoint} answered HTTP {status} for {what}.")
    raise UpstreamError(f"Upstream {endpoint} answered HTTP {status} for {what}.")
