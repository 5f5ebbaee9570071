"""A local registry that speaks the Hugging Face Hub HTTP API, for offline and air-gapped use.

The official ``huggingface_hub`` client, and therefore timm's ``hf-hub:`` loading, works against it
unchanged::

    SE_ZOO_HUB_TOKEN="$WRITE_TOKEN" se-zoo hub serve --root /srv/hub   # prints http://127.0.0.1:PORT
    export HF_ENDPOINT=http://127.0.0.1:PORT HF_TOKEN="$WRITE_TOKEN"
    hf upload my-org/my-model ./checkpoint_dir
    python -c "import timm; timm.create_model('hf-hub:my-org/my-model', pretrained=True)"

With ``hf_xet`` installed the client uploads through Xet storage without asking the server; the
registry serves that protocol too (token exchange and CAS v1, see ``se_zoo.registry.xet.service``) and
turns each Xet-uploaded file into a normal blob at commit. Downloads use HTTP unless
``registry.xet.announce_downloads`` is set.

API subset (model repositories; ``repo_type`` dataset/space/kernel gets a 400):

- ``POST /api/repos/create``, ``DELETE /api/repos/delete``, ``PUT /api/models/{id}/settings``
  (``private``/``visibility``), ``GET /api/whoami-v2``, ``POST /api/validate-yaml``
- ``GET /api/models`` (``author``, ``search``, ``filter``, ``sort``, ``direction``, ``limit``, ``full``;
  see ``se_zoo.registry.api.listing``)
- ``GET /api/models/{id}[/revision/{rev}]`` (``blobs=1`` adds sizes, blob ids and LFS sha256)
- ``GET /api/models/{id}/tree/{rev}[/{path}]`` (``recursive``), ``POST .../paths-info/{rev}``
- ``GET .../refs``, ``GET .../commits/{rev}``, ``POST|DELETE .../branch/{b}``,
  ``POST .../tag/{rev}`` and ``DELETE .../tag/{t}``
- ``GET .../xet-write-token/{rev}``, ``GET .../xet-read-token/{rev}`` and the Xet CAS API under ``/v1/``
- the commit path: ``POST .../preupload/{rev}`` -> Xet upload, or ``POST /{id}.git/info/lfs/objects/batch``
  (``basic`` transfer) -> ``PUT`` to the signed URL it returns (sha256 and size verified while
  receiving) -> ``POST /{id}.git/info/lfs/objects/verify`` -> ``POST .../commit/{branch}`` (NDJSON)
- ``HEAD|GET /{id}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (git blob id, or sha256 for
  LFS files, also in ``X-Linked-Etag``/``X-Linked-Size``), ``Content-Length``, single ``Range``
  requests (206/416). A branch or tag answers 302 to the same file at its commit, so the download
  gets the exact version the metadata described even if the branch moves in between.

Web pages for people (model list, cards, curves, files, history) share the port: see
``se_zoo.registry.web``.

Revisions are branch names, tags or full 40-digit commit ids. Not served: pull requests, gated
repos, ``.gitignore`` filtering at preupload, ``expand`` details (last commit, security scans),
multipart LFS uploads, pagination (a listing is one page).

Storage and atomicity are described in ``se_zoo.registry.store.storage``: blobs content-addressed by sha256,
immutable commit files, refs replaced atomically, one file lock per repository shared by every
process on the root (``se_zoo.registry.store.locking``). Uploads and downloads stream in fixed-size
chunks, so memory does not grow with file size. Every input is bounded (``se_zoo.registry.limits``)
and work that grows with it runs in worker threads, off the event loop.

Security: tokens come from ``SE_ZOO_HUB_TOKEN`` (write) or a tokens file (see
``se_zoo.registry.cli``) and compared through their sha256, never stored, logged or echoed.
Anyone may read public repositories; any valid token may read private ones, and a private
repository is a 404 to everyone else; writes need a write token (401 without one, 403 with a read
token). With no token configured the registry is read-only. LFS uploads go to URLs signed for one
object with a key kept in the root (shared by its processes) that expire after an hour; the access
log drops query strings so signatures never reach it. Repository ids, branch/tag names and file paths are validated (no
``..``, absolute paths, backslashes or empty segments), and every path on disk is built from
validated names or hex digests, so nothing is written outside the root. Malformed requests get a
4xx JSON ``{"error": ...}`` with ``X-Error-Code``/``X-Error-Message`` headers as the Hub sends; an
unexpected failure is logged and answered with a generic 500, never a traceback.

Longer than the project's other modules on purpose: it is one cohesive thing, the Hub API's
handlers (one method per endpoint) behind the single dispatch ``Registry._route``; validation,
limits, bodies, listing, Xet, the mirror and the pages live in their own modules.
"""
import hashlib
import hmac
import json
import logging
import os
import re
import socket
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, quote, unquote

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import limits
from .http import (
    RangeNotSatisfiable,
    json_object,
    ndjson_lines,
    parse_range,
    read_body,
)
from .store.cards import validate_yaml_request
from .errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    Forbidden,
    HubError,
    RepoNotFound,
    Unauthorized,
)
from .limits import (
    MAX_BATCH_OBJECTS,
    LimitError,
    ascii_int,
    check_count,
)
from .api.listing import list_models, model_summary
from .store.names import validate_path, validate_ref_name, validate_repo_part, validate_sha256
from .offload import ProcessOffload
from .store.quota import check_upload
from .store.storage import (
    CHUNK_SIZE,
    DEFAULT_BRANCH,
    WEIGHT_SUFFIXES,
    Store,
    decode_base64,
    upload_mode,
)
from .mirror.pullthrough import MirrorHook
from .store.tree_index import tree_index
from .mirror.upstream import Upstream
from .web import WebPages
from .xet.service import CAS_ROOTS, TOKEN_KINDS, XetService

__all__ = ["HubServer", "create_app", "Registry"]

logger = logging.getLogger(__name__)

PERMISSIONS = ("read", "write")
UPLOAD_URL_TTL = 3600
_OTHER_REPO_TYPES = ("datasets", "spaces", "kernels")


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _error_response(status: int, message: str, code: Optional[str] = None,
                    headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    # header values must be printable ASCII here; user input in messages is escaped (\n, \x1f, \xe9)
    safe = message.encode("unicode_escape").decode("ascii")
    extra = {"X-Error-Message": safe, **(headers or {})}
    if code:
        extra["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=extra)


def _flag(value: Optional[str]) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


class _DroppedConnection(Exception):
    """Raised mid-body to make the server close a download connection (see ``drop_next_download``)."""


class _QueryStringFilter(logging.Filter):
    """Strips query strings (they may carry upload signatures) from uvicorn's access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = args[2].split("?", 1)[0]
            record.args = tuple(args)
        return True


class Registry:
    """The request handlers, bound to one ``Store`` and one set of tokens.

    Args:
        root: Directory of the store; created if missing.
        tokens: Maps each accepted token to ``"read"`` or ``"write"``; empty or ``None`` makes the
            registry read-only.
        upstream: An ``se_zoo.registry.mirror.upstream.Upstream`` to pull missing repos through from, or None.
        max_file_size: The largest file accepted, in bytes (the Hub's 50 GB by default).
        quota: The most bytes one namespace may hold, or ``None`` for no quota.

    Raises:
        ValueError: if a token is empty or has whitespace, a permission is not read/write, or a
            size limit is not a positive int.
    """

    def __init__(self, root: os.PathLike, tokens: Optional[Mapping[str, str]] = None,
                 upstream: Optional[Upstream] = None,
                 max_file_size: int = limits.DEFAULT_MAX_FILE_SIZE, quota: Optional[int] = None):
        for value, what in ((max_file_size, "max_file_size"), (quota, "quota")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{what} must be a positive number of bytes, got {value!r}.")
        self.max_file_size, self.quota = max_file_size, quota
        self.store = Store(root)
        self._tokens: Dict[str, str] = {}
        for token, permission in (tokens or {}).items():
            if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
                raise ValueError("tokens: every token must be a non-empty string without whitespace.")
            if permission not in PERMISSIONS:
                raise ValueError(f"tokens: permission must be one of {PERMISSIONS}, got {permission!r}.")
            self._tokens[_token_digest(token)] = permission
        self._secret = self.store.signing_key()  # shared by every process serving this root
        self._offload = ProcessOffload()
        self.web = WebPages(self.store, lambda token: self._tokens.get(_token_digest(token)),
                            partial(model_summary, self.store, siblings=False))
        self._drop_after: Optional[int] = None
        self.mirror = MirrorHook(self.store, upstream, self._permission)
        self.xet = XetService(self)

    def close(self) -> None:
        """Release the store's temporary folder and stop the helper process."""
        self._offload.close()
        self.store.close()

    def drop_next_download(self, after_bytes: int) -> None:
        """Make the next file download close its connection after ``after_bytes`` bytes of body.

        A test hook for the client's resume logic; it fires once.

        Args:
            after_bytes: How many body bytes to send before dropping the connection (>= 0).

        Raises:
            ValueError: if ``after_bytes`` is negative or not an int.
        """
        if not isinstance(after_bytes, int) or after_bytes < 0:
            raise ValueError(f"after_bytes must be an int >= 0, got {after_bytes!r}.")
        self._drop_after = after_bytes

    # authentication
    def _permission(self, request: Request) -> Optional[str]:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        permission = self._tokens.get(_token_digest(token.strip())) if scheme.lower() == "bearer" else None
        if permission is None:
            raise Unauthorized("Invalid credentials in Authorization header")
        return permission

    def _require_write(self, request: Request) -> None:
        permission = self._permission(request)
        if permission is None:
            raise Unauthorized("A write token is required: send 'Authorization: Bearer <token>'.")
        if permission != "write":
            raise Forbidden("This token is read-only; writing needs a write token.")

    def _readable(self, request: Request, namespace: str, name: str) -> Dict[str, Any]:
        # an unknown bearer token is a 401 even on public repos; the web pages' token cookie also reads
        permission = self._permission(request) or self.web.cookie_permission(request)
        meta = self.store.repo_meta(namespace, name)
        if meta["private"] and permission is None:
            raise RepoNotFound(f"Repository {namespace}/{name} not found.")
        return meta

    # dispatch
    async def handle(self, request: Request) -> Response:
        """Answer one request (the single Starlette endpoint; routing is done on the raw path)."""
        try:
            too_many = limits.check_headers(request.scope["headers"])
            if too_many:
                return _error_response(431, too_many)
            return await self._route(request, _segments(request))
        except LimitError as exc:
            return _error_response(exc.status, str(exc))
        except ClientDisconnect:
            logger.info("Client disconnected during %s %s", request.method, request.url.path)
            return Response(status_code=400)
        except HubError as exc:
            headers = {"X-Repo-Commit": exc.commit} if getattr(exc, "commit", None) else None
            return _error_response(exc.status, str(exc), exc.code, headers)
        except Exception:
            logger.exception("Internal error on %s %s", request.method, request.url.path)
            return _error_response(500, "Internal server error.")

    async def asgi_fallback(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        """ASGI endpoint for requests Starlette's router does not match: answered by ``handle`` too."""
        if scope["type"] == "http":
            response = await self.handle(Request(scope, receive))
            await response(scope, receive, send)

    async def _route(self, request: Request, segs: List[str]) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        if (mirrored := await self.mirror.before(request, method, segs)) is not None:
            return mirrored
        match (method, segs):
            case ("GET", ["api", "whoami-v2"]):
                return self._whoami(request)
            case ("POST", ["api", "validate-yaml"]):
                return await self._validate_yaml(request)
            case ("POST", ["api", "repos", "create"]):
                return await self._create_repo(request)
            case ("DELETE", ["api", "repos", "delete"]):
                return await self._delete_repo(request)
            case ("GET", ["api", "models"]):
                return await _off_loop(self._list_models, request)
            case (_, ["api", kind, *_]) if kind in _OTHER_REPO_TYPES:
                raise BadRequest(f"Only model repositories are served here, not {kind}.")
            case (_, ["api", "models", repo]):
                raise RepoNotFound(f"Repository {repo!r} not found: repo ids are 'namespace/name'.")
            case (_, ["api", "models", namespace, name, *rest]):
                return await self._repo_api(request, method, namespace, name, rest)
            case (_, [kind, *_]) if kind in _OTHER_REPO_TYPES:
                raise BadRequest(f"Only model repositories are served here, not {kind}.")
            case (_, [namespace, repo_git, "info", "lfs", "objects", *rest]) if repo_git.endswith(".git"):
                return await self._lfs(request, method, namespace, repo_git[: -len(".git")], rest)
            case ("GET", [namespace, name, "resolve", revision, *path]) if path:
                return await self._resolve(request, namespace, name, revision, "/".join(path))
            case (_, [root, *_]) if root in CAS_ROOTS:
                return await self.xet.cas(request, method, segs)
            case ("GET" | "POST", _) if (page := self.web.page(method, segs)) is not None:
                return await page(request)
        return _error_response(404, f"No route for {request.method} {request.url.path}.")

    async def _repo_api(self, request: Request, method: str, namespace: str, name: str,
                        rest: List[str]) -> Response:
        match (method, rest):
            case ("GET", []):
                return await _off_loop(self._repo_info, request, namespace, name, None)
            case ("GET", ["revision", revision]):
                return await _off_loop(self._repo_info, request, namespace, name, revision)
            case ("GET", ["tree", revision, *path]):
                return await _off_loop(self._tree, request, namespace, name, revision, "/".join(path))
            case ("POST", ["paths-info", revision]):
                return await self._paths_info(request, namespace, name, revision)
            case ("GET", ["refs"]):
                return await _off_loop(self._refs, request, namespace, name)
            case ("GET", ["commits", revision]):
                return await _off_loop(self._commits, request, namespace, name, revision)
            case ("POST" | "DELETE", ["branch", branch]):
                return await self._branch(request, method, namespace, name, branch)
            case ("POST", ["tag", revision]):
                return await self._create_tag(request, namespace, name, revision)
            case ("DELETE", ["tag", tag]):
                return await self._delete_tag(request, namespace, name, tag)
            case ("POST", ["preupload", revision]):
                return await self._preupload(request, namespace, name, revision)
            case ("POST", ["commit", revision]):
                return await self._commit(request, namespace, name, revision)
            case ("PUT", ["settings"]):
                return await self._settings(request, namespace, name)
            case ("GET", [kind, revision]) if kind in TOKEN_KINDS:
                return self.xet.token(request, namespace, name, kind, revision)
        return _error_response(404, f"No route for {request.method} {request.url.path}.")

    # account and repositories
    def _whoami(self, request: Request) -> Response:
        permission = self._permission(request)
        if permission is None:
            raise Unauthorized("No token given: send 'Authorization: Bearer <token>'.")
        token_info = {"displayName": "local", "role": permission}
        return JSONResponse({"type": "user", "name": "local", "fullname": "local", "orgs": [],
                             "auth": {"type": "access_token", "accessToken": token_info}})

    async def _validate_yaml(self, request: Request) -> Response:
        body = await read_body(request, limits.MAX_YAML_BODY)
        errors = await self._offload.run(validate_yaml_request, body)  # libyaml holds the GIL: not here
        if errors:
            return JSONResponse({"errors": [{"message": e} for e in errors], "warnings": []}, status_code=400,
                                headers={"X-Error-Message": "Invalid metadata in README.md"})
        return JSONResponse({"errors": [], "warnings": []})

    @staticmethod
    def _repo_id_from_body(data: Dict[str, Any]) -> Tuple[str, str]:
        if data.get("type") not in (None, "model"):
            raise BadRequest(f"Only model repositories are served here, not repo type {data.get('type')!r}.")
        namespace, name = data.get("organization"), data.get("name")
        if namespace is None:
            raise BadRequest("Repo ids need a namespace: use 'namespace/name'.")
        return validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name")

    async def _create_repo(self, request: Request) -> Response:
        self._require_write(request)
        data = await json_object(request)
        namespace, name = self._repo_id_from_body(data)
        private = _private_from(data, default=False)
        repo = {"url": f"{_base_url(request)}/{namespace}/{name}", "name": f"{namespace}/{name}",
                "id": f"{namespace}/{name}"}
        try:
            await anyio.to_thread.run_sync(self.store.create_repo, namespace, name, private)
        except Conflict as exc:
            # the Hub's 409 names the existing repo; create_repo(exist_ok=True) reads its "url"
            return JSONResponse({"error": str(exc), **repo}, status_code=409,
                                headers={"X-Error-Message": str(exc)})
        return JSONResponse(repo)

    async def _delete_repo(self, request: Request) -> Response:
        self._require_write(request)
        namespace, name = self._repo_id_from_body(await json_object(request))
        await anyio.to_thread.run_sync(self.store.delete_repo, namespace, name)
        return JSONResponse({})

    async def _settings(self, request: Request, namespace: str, name: str) -> Response:
        self._require_write(request)
        data = await json_object(request)
        unknown = set(data) - {"private", "visibility"}
        if unknown:
            raise BadRequest(f"Unsupported settings {sorted(unknown)}: only 'private' and 'visibility' are served.")
        self.store.repo_meta(namespace, name)
        if data:
            await anyio.to_thread.run_sync(self.store.set_private, namespace, name, _private_from(data, False))
        return JSONResponse({})

    def _list_models(self, request: Request) -> Response:
        readable_private = self._permission(request) is not None
        return JSONResponse(list_models(self.store, request.query_params, readable_private))

    def _repo_info(self, request: Request, namespace: str, name: str, revision: Optional[str]) -> Response:
        meta = self._readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision or DEFAULT_BRANCH)
        commit = self.store.commit_info(namespace, name, commit_id)
        blobs = _flag(request.query_params.get("blobs"))
        namespace, name = self.store.canonical_id(namespace, name)
        return JSONResponse(model_summary(self.store, namespace, name, meta, commit, siblings=True, blobs=blobs))

    # files, refs and history
    def _tree(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        self._readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        index = tree_index(self.store.commit_info(namespace, name, commit_id))
        if path:
            validate_path(path)
        try:
            entries = index.listing(path, _flag(request.query_params.get("recursive")))
        except KeyError:
            raise EntryNotFound(f"Folder {path!r} not found at {commit_id}.", commit_id) from None
        return JSONResponse(entries)

    async def _paths_info(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        self._readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        body = await read_body(request)
        is_json = "application/json" in request.headers.get("content-type", "")
        commit = self.store.commit_info(namespace, name, commit_id)
        return JSONResponse(await anyio.to_thread.run_sync(_paths_info_entries, commit, body, is_json))

    def _refs(self, request: Request, namespace: str, name: str) -> Response:
        self._readable(request, namespace, name)
        refs = self.store.refs(namespace, name)
        payload: Dict[str, Any] = {
            kind: [{"name": ref, "ref": f"refs/{prefix}/{ref}", "targetCommit": commit}
                   for ref, commit in sorted(refs[kind].items())]
            for kind, prefix in (("branches", "heads"), ("tags", "tags"))
        }
        payload["converts"] = []
        if _flag(request.query_params.get("include_prs")):
            payload["pullRequests"] = []
        return JSONResponse(payload)

    def _commits(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        self._readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        history = [
            {"id": c["id"], "title": c["title"], "message": c["message"], "date": c["date"], "authors": [],
             "parents": c["parents"]}
            for c in self.store.history(namespace, name, commit_id)
        ]
        return JSONResponse(history)

    async def _branch(self, request: Request, method: str, namespace: str, name: str, branch: str) -> Response:
        self._require_write(request)
        validate_ref_name(branch, "branch")
        self.store.repo_meta(namespace, name)
        if method == "DELETE":
            await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "branches", branch, None, True)
            return JSONResponse({})
        starting_point = (await json_object(request)).get("startingPoint") or DEFAULT_BRANCH
        if not isinstance(starting_point, str):
            raise BadRequest("'startingPoint' must be a revision string.")
        target = self.store.resolve(namespace, name, starting_point)
        await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "branches", branch, target, False)
        return JSONResponse({})

    async def _create_tag(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        self._require_write(request)
        tag = (await json_object(request)).get("tag")
        validate_ref_name(tag, "tag")
        target = self.store.resolve(namespace, name, revision)
        await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "tags", tag, target, False)
        return JSONResponse({})

    async def _delete_tag(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        self._require_write(request)
        validate_ref_name(tag, "tag")
        self.store.repo_meta(namespace, name)
        await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "tags", tag, None, True)
        return JSONResponse({})

    # the commit path
    async def _preupload(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        self._require_write(request)
        _refuse_pull_requests(request)
        commit_id = self.store.resolve(namespace, name, revision)
        files = self.store.commit_info(namespace, name, commit_id)["files"]
        announced = (await json_object(request)).get("files")
        if not isinstance(announced, list):
            raise BadRequest("'files' must be a list of {path, sample, size}.")
        check_count(len(announced), limits.MAX_PREUPLOAD_FILES, "files in preupload")
        result = []
        for item in announced:
            if not isinstance(item, dict):
                raise BadRequest("Each entry of 'files' must be an object {path, sample, size}.")
            path, size = validate_path(item.get("path")), _size(item.get("size"))
            sample = decode_base64(item.get("sample", ""), path)[:512]
            existing = files.get(path)
            remote_oid = None if existing is None else existing["sha256"] if existing["lfs"] else existing["oid"]
            result.append({"path": path, "uploadMode": upload_mode(size, sample), "shouldIgnore": False,
                           "oid": remote_oid})
        return JSONResponse({"files": result, "commitOid": commit_id})

    async def _commit(self, request: Request, namespace: str, name: str, branch: str) -> Response:
        self._require_write(request)
        _refuse_pull_requests(request)
        refs = self.store.refs(namespace, name)
        if branch not in refs["branches"]:
            if branch in refs["tags"] or re.fullmatch(r"[0-9a-f]{40}", branch):
                raise BadRequest(f"Commits go to a branch; {branch!r} is a tag or a commit id.")
            self.store.resolve(namespace, name, branch)  # raises RevisionNotFound
        header: Optional[Dict[str, Any]] = None
        operations: List[Dict[str, Any]] = []
        async for item in ndjson_lines(request):
            key, value = item["key"], item["value"]
            if header is None:
                if key != "header":
                    raise BadRequest("The first line of a commit payload must be its header.")
                header = value
                continue
            check_count(len(operations) + 1, limits.MAX_COMMIT_OPERATIONS, "operations in one commit")
            operations.append(await self._commit_operation(key, value))
        if header is None:
            raise BadRequest("Empty commit payload: expected a header line.")
        regular = [op["size"] for op in operations if op["op"] == "add" and not op["lfs"]]
        await anyio.to_thread.run_sync(check_upload, self.store, namespace, regular, self.max_file_size, self.quota)
        await self.xet.materialize(namespace, operations)  # files sent through Xet become blobs
        summary, parent = header.get("summary"), header.get("parentCommit")
        description = header.get("description") or ""
        if not isinstance(summary, str) or not summary.strip():
            raise BadRequest("The commit header needs a non-empty 'summary'.")
        if not isinstance(description, str) or (parent is not None and not isinstance(parent, str)):
            raise BadRequest("'description' and 'parentCommit' must be strings.")
        commit_id = await anyio.to_thread.run_sync(
            partial(self.store.commit, namespace, name, branch, operations, summary, description, parent))
        return JSONResponse({"success": True, "commitOid": commit_id, "pullRequestUrl": None, "hookOutput": "",
                             "commitUrl": f"{_base_url(request)}/{namespace}/{name}/commit/{commit_id}"})

    async def _commit_operation(self, key: str, value: Dict[str, Any]) -> Dict[str, Any]:
        path = value.get("path")
        if key == "deletedFolder" and isinstance(path, str):
            path = path.rstrip("/")  # folders are sent as "name/"
        path = validate_path(path)
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise BadRequest(f"File {path!r}: only base64 encoding is supported.")
            data = decode_base64(value.get("content"), path)
            sha = await anyio.to_thread.run_sync(self.store.put_bytes, data)
            return {"op": "add", "path": path, "sha256": sha, "size": len(data), "lfs": False}
        if key == "lfsFile":
            if value.get("algo", "sha256") != "sha256":
                raise BadRequest(f"File {path!r}: only sha256 LFS objects are supported.")
            oid = validate_sha256(value.get("oid"))
            size = _size(value["size"]) if "size" in value else None
            if not await anyio.to_thread.run_sync(self.store.has_blob, oid, size):
                if (xet_size := self.xet.uploaded_size(oid, size)) is not None:  # rebuilt in _commit
                    return {"op": "add", "path": path, "sha256": oid, "size": xet_size, "lfs": True, "xet": True}
                raise BadRequest(f"File {path!r}: LFS object {oid} was not uploaded (or has another size).")
            if size is None:
                size = self.store.blob_path(oid).stat().st_size
            return {"op": "add", "path": path, "sha256": oid, "size": size, "lfs": True}
        if key == "deletedFile":
            return {"op": "delete", "path": path}
        if key == "deletedFolder":
            return {"op": "delete_folder", "path": path}
        raise BadRequest(f"Unknown commit operation {key!r}: expected file, lfsFile, deletedFile or deletedFolder.")

    async def _lfs(self, request: Request, method: str, namespace: str, name: str, rest: List[str]) -> Response:
        match (method, rest):
            case ("POST", ["batch"]):
                return await self._lfs_batch(request, namespace, name)
            case ("POST", ["verify"]):
                self._require_write(request)
                self.store.repo_meta(namespace, name)
                data = await json_object(request)
                oid, size = validate_sha256(data.get("oid")), _size(data.get("size"))
                if not self.store.has_blob(oid, size):
                    return _error_response(404, f"LFS object {oid} with {size} bytes was not uploaded.")
                return JSONResponse({"success": True})
            case ("PUT", [oid, size]):
                return await self._lfs_upload(request, namespace, name, oid, size)
        return _error_response(404, f"No route for {request.method} {request.url.path}.")

    async def _lfs_batch(self, request: Request, namespace: str, name: str) -> Response:
        self._require_write(request)
        self.store.repo_meta(namespace, name)
        data = await json_object(request)
        if data.get("operation") != "upload":
            raise BadRequest("Only the 'upload' operation is served; download files through /resolve.")
        if "basic" not in (data.get("transfers") or ["basic"]):
            raise BadRequest("Only the 'basic' LFS transfer is served.")
        if data.get("hash_algo", "sha256") != "sha256":
            raise BadRequest("Only sha256 LFS objects are served.")
        objects = data.get("objects")
        if not isinstance(objects, list) or len(objects) > MAX_BATCH_OBJECTS:
            raise BadRequest(f"'objects' must be a list of at most {MAX_BATCH_OBJECTS} {{oid, size}}.")
        base, expires = _base_url(request), int(time.time()) + UPLOAD_URL_TTL
        if not all(isinstance(obj, dict) for obj in objects):
            raise BadRequest("Each LFS object must be {oid, size}.")
        wanted = [(validate_sha256(obj.get("oid")), _size(obj.get("size"))) for obj in objects]
        missing = await anyio.to_thread.run_sync(self._missing_blobs, namespace, wanted)
        answer = []
        for oid, size in wanted:
            entry: Dict[str, Any] = {"oid": oid, "size": size}
            if (oid, size) in missing:
                signature = self._sign(namespace, name, oid, size, expires)
                objects_url = f"{base}/{namespace}/{name}.git/info/lfs/objects"
                entry["actions"] = {
                    "upload": {"href": f"{objects_url}/{oid}/{size}?expires={expires}&signature={signature}",
                               "expires_in": UPLOAD_URL_TTL},
                    "verify": {"href": f"{objects_url}/verify"},
                }
            answer.append(entry)
        return JSONResponse({"transfer": "basic", "objects": answer, "hash_algo": "sha256"},
                            media_type="application/vnd.git-lfs+json")

    def _missing_blobs(self, namespace: str, wanted: List[Tuple[str, int]]) -> set:
        """The ``(oid, size)`` pairs to upload, after checking the caps; stored ones are kept fresh."""
        missing = {(oid, size) for oid, size in wanted
                   if not (self.store.has_blob(oid, size) and self.store.mark_fresh(oid))}
        check_upload(self.store, namespace, {oid: size for oid, size in missing}.values(), self.max_file_size,
                     self.quota)
        return missing

    def _sign(self, namespace: str, name: str, oid: str, size: int, expires: int) -> str:
        message = f"{namespace}/{name}\n{oid}\n{size}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def _lfs_upload(self, request: Request, namespace: str, name: str, oid: str, size_text: str) -> Response:
        oid, size = validate_sha256(oid), ascii_int(size_text, "size")
        expires = ascii_int(request.query_params.get("expires"), "expires")
        signature = request.query_params.get("signature", "")
        expected = self._sign(validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name"),
                              oid, size, expires)
        if not hmac.compare_digest(signature, expected) or expires < time.time():
            raise Forbidden("Invalid or expired upload URL; ask the LFS batch endpoint for a new one.")
        self.store.repo_meta(namespace, name)
        if not await anyio.to_thread.run_sync(self.store.has_blob, oid, size):
            await anyio.to_thread.run_sync(check_upload, self.store, namespace, [size], self.max_file_size,
                                           self.quota)
        with self.store.blob_writer(max_size=size) as writer:
            pending = bytearray()  # hashing and writing in MiB pieces in a thread, not on the loop
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= CHUNK_SIZE:
                    await anyio.to_thread.run_sync(writer.write, bytes(pending))
                    pending.clear()
            await anyio.to_thread.run_sync(writer.write, bytes(pending))
            await anyio.to_thread.run_sync(writer.commit, oid, size)
        return Response(status_code=200)

    # downloads
    async def _resolve(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        self._readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        validate_path(path)
        entry = self.store.commit_info(namespace, name, commit_id)["files"].get(path)
        if entry is None:
            raise EntryNotFound(f"File {path!r} not found at {commit_id}.", commit_id)
        etag = entry["sha256"] if entry["lfs"] else entry["oid"]
        headers = {"X-Repo-Commit": commit_id, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(entry["size"])})
            headers.update(self.xet.download_headers(request, namespace, name, commit_id, entry))
        if revision != commit_id:
            location = f"/{namespace}/{name}/resolve/{commit_id}/{quote(path)}"
            return Response(status_code=302, headers={**headers, "Location": location})
        size = entry["size"]
        try:
            byte_range = parse_range(request.headers.get("range"), size)
        except RangeNotSatisfiable:
            return _error_response(416, f"Range not satisfiable for a file of {size} bytes.",
                                   headers={"Content-Range": f"bytes */{size}"})
        start, end = byte_range or (0, size - 1)
        headers["Content-Length"] = str(end - start + 1)
        if byte_range is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        status = 206 if byte_range is not None else 200
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type="application/octet-stream")
        if start == 0 and path.endswith(WEIGHT_SUFFIXES):  # a download from the start, not a resumption
            await anyio.to_thread.run_sync(self.store.count_download, namespace, name)
        body = self._file_chunks(self.store.blob_path(entry["sha256"]), start, end - start + 1)
        return StreamingResponse(body, status_code=status, headers=headers, media_type="application/octet-stream")

    async def _file_chunks(self, path: Path, start: int, length: int) -> AsyncIterator[bytes]:
        drop_after, self._drop_after = self._drop_after, None
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while sent < length:
                chunk = await anyio.to_thread.run_sync(f.read, min(CHUNK_SIZE, length - sent))
                if not chunk:
                    raise RuntimeError(f"Blob {path.name} is shorter than its recorded size.")
                if drop_after is not None and sent + len(chunk) > drop_after:
                    yield chunk[: drop_after - sent]
                    raise _DroppedConnection("connection dropped on purpose by drop_next_download")
                sent += len(chunk)
                yield chunk


def _segments(request: Request) -> List[str]:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        return [unquote(part, errors="strict") for part in raw.decode("ascii").split("/")[1:]]
    except UnicodeDecodeError:
        raise BadRequest("The request path is not valid percent-encoded UTF-8.") from None


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"Invalid size {value!r}: expected an integer >= 0.")
    return value


def _private_from(data: Dict[str, Any], default: bool) -> bool:
    visibility, private = data.get("visibility"), data.get("private")
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise BadRequest(f"Invalid visibility {visibility!r}: expected 'public' or 'private'.")
        return visibility == "private"
    if private is not None:
        if not isinstance(private, bool):
            raise BadRequest(f"Invalid private {private!r}: expected true or false.")
        return private
    return default


def _refuse_pull_requests(request: Request) -> None:
    if _flag(request.query_params.get("create_pr")):
        raise BadRequest("Pull requests are not supported by this registry; commit to a branch instead.")


async def _off_loop(handler: Callable[..., Response], *args: Any) -> Response:
    """Run a blocking handler (disk reads, work that grows with the repository) in a worker thread."""
    return await anyio.to_thread.run_sync(partial(handler, *args))


def _paths_info_entries(commit: Dict[str, Any], body: bytes, is_json: bool) -> List[Dict[str, Any]]:
    """paths-info's answer: one entry per asked path (in a JSON or form body) that ``commit`` holds."""
    if is_json:
        try:
            paths = json.loads(body).get("paths", [])
        except (ValueError, AttributeError):
            raise BadRequest("Request body must be a JSON object with 'paths'.") from None
    else:
        paths = [v for k, v in parse_qsl(body.decode("utf-8", "replace")) if k == "paths"]
    if not isinstance(paths, list):
        raise BadRequest("'paths' must be a list of file paths.")
    check_count(len(paths), limits.MAX_PATHS_INFO, "paths in paths-info")
    index = tree_index(commit)
    result = []
    for path in paths:
        path = validate_path(path.strip("/")) if isinstance(path, str) else validate_path(path)
        if path in index.files or path in index.folders:
            result.append(index.entry(path))
    return result


def create_app(root: os.PathLike, tokens: Optional[Mapping[str, str]] = None, **options: Any) -> Starlette:
    """The registry as an ASGI application.

    Args:
        root: Directory of the store; created if missing.
        tokens: Maps each accepted token to ``"read"`` or ``"write"``; ``None`` makes it read-only.
        **options: ``upstream``, ``max_file_size`` and ``quota``, passed to ``Registry``.

    Returns:
        A Starlette app; its ``state.registry`` is the ``Registry`` serving it.

    Raises:
        ValueError: if a token or permission is invalid.
    """
    registry = Registry(root, tokens, **options)
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", registry.handle, methods=methods)])
    app.router.default = registry.asgi_fallback  # paths the route's pattern cannot match (e.g. a newline)
    app.state.registry = registry
    return app


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Optional[Callable[[], None]]):
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
        await super().startup(sockets=sockets)
        if self._on_ready is not None and self.started:
            self._on_ready()


class HubServer:
    """The registry served by uvicorn on a loopback (or given) address.

    The socket is bound when the object is created, so ``endpoint`` is known before serving, also
    with ``port=0`` (a free port).

    Args:
        root: Directory of the store; created if missing.
        tokens: Maps each accepted token to ``"read"`` or ``"write"``; ``None`` makes it read-only.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        log_level: uvicorn's log level (``"info"`` logs each request, without query strings).
        workers: Server processes sharing the socket and the root (``run`` only; see
            ``se_zoo.registry.workers``).
        **options: ``upstream``, ``max_file_size`` and ``quota`` (see ``Registry``).

    Raises:
        ValueError: if a token, permission, limit or worker count is invalid.
        OSError: if the address cannot be bound.

    Example::

        with HubServer("/tmp/hub", {"secret": "write"}).start() as server:
            print(server.endpoint)
    """

    def __init__(self, root: os.PathLike, tokens: Optional[Mapping[str, str]] = None, host: str = "127.0.0.1",
                 port: int = 0, log_level: str = "warning", workers: int = 1, **options: Any):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}.")
        self._workers = workers
        self._make_app = partial(create_app, root, tokens, **options)
        self.app = self._make_app()  # also checks tokens and options before any worker starts
        self.registry: Registry = self.app.state.registry
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections; without it a
        # kept-alive client waits ~40 ms per request (Nagle's algorithm against delayed ACKs)
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        bound_port = self._socket.getsockname()[1]
        self.endpoint = f"http://[{host}]:{bound_port}" if family == socket.AF_INET6 else f"http://{host}:{bound_port}"
        self._log_level = log_level
        self._config = self._uvicorn_config(self.app)
        access_logger = logging.getLogger("uvicorn.access")
        if not any(isinstance(f, _QueryStringFilter) for f in access_logger.filters):
            access_logger.addFilter(_QueryStringFilter())
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    def _uvicorn_config(self, app: Starlette) -> uvicorn.Config:
        # h11 with a cap on the request head: header bytes are bounded before the app sees them
        return uvicorn.Config(app, log_level=self._log_level, lifespan="off", timeout_graceful_shutdown=5,
                              http="h11", h11_max_incomplete_event_size=limits.HEADER_BYTES)

    def run(self, on_ready: Optional[Callable[[], None]] = None) -> int:
        """Serve in the foreground until interrupted (SIGINT/SIGTERM) or ``stop()``.

        Args:
            on_ready: Called once the server accepts connections.

        Returns:
            The exit status: 0, or 1 if a worker process died.
        """
        if self._workers > 1:
            from .workers import run_workers

            self._socket.listen(2048)  # before forking: connections queue until a worker accepts
            return run_workers(self._workers, self._serve_worker, on_ready)
        self._server = _Server(self._config, on_ready)
        self._server.run(sockets=[self._socket])
        return 0

    def _serve_worker(self) -> None:
        app = self._make_app()  # its own store: own temporary folder, own lock
        try:
            _Server(self._uvicorn_config(app), None).run(sockets=[self._socket])
        finally:
            app.state.registry.close()

    def start(self, timeout: float = 30.0) -> "HubServer":
        """Serve from a background thread; returns once the server accepts connections.

        Raises:
            RuntimeError: if the server did not start within ``timeout`` seconds.
        """
        ready = threading.Event()
        self._thread = threading.Thread(target=self.run, args=(ready.set,), name="se-zoo-hub", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"The Hub server did not start within {timeout} s.")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the background thread, if any."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._socket.close()
        self.registry.close()

    def __enter__(self) -> "HubServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
