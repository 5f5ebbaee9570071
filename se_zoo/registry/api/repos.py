"""Accounts, repositories, refs, trees and history: the Hub API's metadata endpoints."""
import base64
import re
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, quote, urlencode

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import limits
from ..auth import Auth
from ..errors import BadRequest, Conflict, EntryNotFound, RepoNotFound, RevisionNotFound
from ..http import base_url, flag, json_object, read_body
from ..limits import check_count
from ..offload import ProcessOffload
from ..store.cards import validate_yaml_request
from ..store.names import validate_path, validate_ref_name, validate_repo_part
from ..store.scans import security_status
from ..store.storage import DEFAULT_BRANCH, Store
from ..store.tree_index import tree_index
from .listing import list_models, model_summary

__all__ = ["RepoApi"]

_CURSOR = re.compile(r"([0-9a-f]{40}):([01]):([0-9]{1,19})")


class RepoApi:
    """The metadata handlers over one store.

    Args:
        store: The registry's store.
        auth: Who may read and write.
        offload: The helper process for CPU-heavy work (YAML parsing).
        check_namespace: Called (in a worker thread) with a new repository's namespace before it is
            created; raises to refuse it (the mirror's read-only namespaces).
    """

    def __init__(self, store: Store, auth: Auth, offload: ProcessOffload,
                 check_namespace: Optional[Callable[[str], None]] = None):
        self.store, self.auth, self.offload = store, auth, offload
        self.check_namespace = check_namespace

    # accounts
    def whoami(self, request: Request) -> Response:
        """``GET /api/whoami-v2``: the token's role (401 without a token)."""
        token_info = {"displayName": "local", "role": self.auth.require_token(request)}
        return JSONResponse({"type": "user", "name": "local", "fullname": "local", "orgs": [],
                             "auth": {"type": "access_token", "accessToken": token_info}})

    async def validate_yaml(self, request: Request) -> Response:
        """``POST /api/validate-yaml``: a README's metadata checked.

        A small body (up to ``FAST_YAML_BODY``, tens of milliseconds of parsing at most) is parsed in a
        worker thread at once; a larger one in the helper process (libyaml holds the GIL), one request
        per client at a time, so a small request never waits behind large ones.
        """
        body = await read_body(request, limits.MAX_YAML_BODY)
        if len(body) <= limits.FAST_YAML_BODY:
            errors = await anyio.to_thread.run_sync(validate_yaml_request, body)
        else:
            errors = await self.offload.run_for(_client(request), validate_yaml_request, body)
        if errors:
            return JSONResponse({"errors": [{"message": e} for e in errors], "warnings": []}, status_code=400,
                                headers={"X-Error-Message": "Invalid metadata in README.md"})
        return JSONResponse({"errors": [], "warnings": []})

    @staticmethod
    def other_repo_type(request: Request, kind: str, **_: str) -> Response:
        """Any ``datasets``/``spaces``/``kernels`` URL: a 400, only model repositories are served."""
        raise BadRequest(f"Only model repositories are served here, not {kind}.")

    @staticmethod
    def repo_without_namespace(request: Request, repo: str) -> Response:
        """``/api/models/{name}``: a 404, repo ids here are ``namespace/name``."""
        raise RepoNotFound(f"Repository {repo!r} not found: repo ids are 'namespace/name'.")

    # repositories
    async def create_repo(self, request: Request) -> Response:
        """``POST /api/repos/create``; a 409 names the existing repository, as the Hub's does."""
        self.auth.require_write(request)
        data = await json_object(request)
        namespace, name = _repo_id_from_body(data)
        if self.check_namespace is not None:
            await anyio.to_thread.run_sync(self.check_namespace, namespace)
        private = _private_from(data, default=False)
        repo = {"url": f"{base_url(request)}/{namespace}/{name}", "name": f"{namespace}/{name}",
                "id": f"{namespace}/{name}"}
        try:
            await anyio.to_thread.run_sync(self.store.create_repo, namespace, name, private)
        except Conflict as exc:
            # create_repo(exist_ok=True) reads the existing repo's "url" from the 409
            return JSONResponse({"error": str(exc), **repo}, status_code=409, headers={"X-Error-Message": str(exc)})
        return JSONResponse(repo)

    async def delete_repo(self, request: Request) -> Response:
        """``DELETE /api/repos/delete``."""
        self.auth.require_write(request)
        namespace, name = _repo_id_from_body(await json_object(request))
        await anyio.to_thread.run_sync(self.store.delete_repo, namespace, name)
        return JSONResponse({})

    async def settings(self, request: Request, namespace: str, name: str) -> Response:
        """``PUT .../settings``: ``private`` or ``visibility``."""
        self.auth.require_write(request)
        data = await json_object(request)
        unknown = set(data) - {"private", "visibility"}
        if unknown:
            raise BadRequest(f"Unsupported settings {sorted(unknown)}: only 'private' and 'visibility' are served.")
        self.store.repo_meta(namespace, name)
        if data:
            await anyio.to_thread.run_sync(self.store.set_private, namespace, name, _private_from(data, False))
        return JSONResponse({})

    def list_models(self, request: Request) -> Response:
        """``GET /api/models`` (see ``se_zoo.registry.api.listing``); private repos for token holders."""
        readable_private = self.auth.reader(request) is not None
        return JSONResponse(list_models(self.store, request.query_params, readable_private))

    async def repo_info(self, request: Request, namespace: str, name: str, revision: Optional[str] = None) -> Response:
        """``GET /api/models/{id}[/revision/{rev}]`` (``blobs=1`` adds sizes, blob ids and LFS sha256;
        ``securityStatus=1`` the pickle scan as ``securityRepoStatus``).

        Made in a worker thread. The answer lists every file, as the Hub's does, so for a repository of
        more than ``MAX_TREE_PAGE`` files it is made in its client's turn (``ProcessOffload.turn``).
        """
        meta, commit = await anyio.to_thread.run_sync(self._readable_commit, request, namespace, name, revision)
        work = partial(self._repo_info, request, namespace, name, meta, commit)
        if len(commit["files"]) <= limits.MAX_TREE_PAGE:
            return await anyio.to_thread.run_sync(work)
        async with self.offload.turn(_client(request)):
            return await anyio.to_thread.run_sync(work)

    def _readable_commit(self, request: Request, namespace: str, name: str,
                     revision: Optional[str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        meta = self.auth.readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision or DEFAULT_BRANCH)
        return meta, self.store.commit_info(namespace, name, commit_id)

    def _repo_info(self, request: Request, namespace: str, name: str, meta: Dict[str, Any],
                   commit: Dict[str, Any]) -> Response:
        blobs = flag(request.query_params.get("blobs"))
        namespace, name = self.store.canonical_id(namespace, name)
        summary = model_summary(self.store, namespace, name, meta, commit, siblings=True, blobs=blobs)
        if flag(request.query_params.get("securityStatus")):
            summary["securityRepoStatus"] = security_status(self.store, commit["files"])
        return JSONResponse(summary)

    # files, refs and history
    async def tree(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        """``GET .../tree/{rev}[/{path}]`` (``recursive``, ``expand``, ``limit``, ``cursor``): one page.

        The page is made in a worker thread. A first page (so any listing that fits on one) is answered
        at once; the later pages of a long listing wait for their client's earlier large requests
        (``ProcessOffload.turn``), so a client paging through many listings at once waits behind its own
        and a small request never waits behind them.
        """
        work = partial(self._tree_page, request, namespace, name, revision, path)
        if "cursor" not in request.query_params:
            return await anyio.to_thread.run_sync(work)
        async with self.offload.turn(_client(request)):
            return await anyio.to_thread.run_sync(work)

    def _tree_page(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        """One page of a tree listing (blocking; see ``tree``).

        A page holds at most ``MAX_TREE_PAGE`` entries (``MAX_TREE_EXPAND_PAGE`` with ``expand``), or
        ``limit`` if fewer. When more follow, a ``Link: <...>; rel="next"`` header gives the next page's
        URL with a ``cursor`` naming the listed commit and the position, so every page of one listing
        reads the same commit even if the branch moves meanwhile.

        Raises:
            BadRequest: for an invalid ``cursor`` (named) or a ``limit`` below 1.
        """
        self.auth.readable(request, namespace, name)
        params = request.query_params
        recursive = flag(params.get("recursive"))
        size = limits.MAX_TREE_EXPAND_PAGE if flag(params.get("expand")) else limits.MAX_TREE_PAGE
        limit = limits.int_param(params, "limit")
        if limit is not None:
            if limit < 1:
                raise BadRequest(f"Invalid limit {limit}: expected at least 1 entry per page.")
            size = min(size, limit)
        cursor = params.get("cursor")
        if path:
            validate_path(path)
        if cursor is None:
            commit_id, offset = self.store.resolve(namespace, name, revision), 0
        else:
            commit_id, offset = self._read_cursor(namespace, name, cursor, recursive)
        index = tree_index(self.store.commit_info(namespace, name, commit_id))
        try:
            total = index.count(path, recursive)
        except KeyError:
            raise EntryNotFound(f"Folder {path!r} not found at {commit_id}.", commit_id) from None
        if cursor is not None and offset >= total:
            raise BadRequest(f"Invalid cursor {cursor!r}: it points past the end of the listing of {path!r}.")
        headers = {}
        if offset + size < total:
            following = _cursor(commit_id, recursive, offset + size)
            headers["Link"] = f'<{_next_page_url(request, namespace, name, revision, path, following)}>; rel="next"'
        return JSONResponse(index.page(path, recursive, offset, size), headers=headers)

    def _read_cursor(self, namespace: str, name: str, cursor: str, recursive: bool) -> Tuple[str, int]:
        """The commit and offset a ``_cursor`` names; ``BadRequest`` naming the cursor if it is invalid."""
        text = ""
        if len(cursor) <= 128:
            try:
                text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
            except (ValueError, UnicodeDecodeError):
                pass
        match = _CURSOR.fullmatch(text)
        if match is None:
            raise BadRequest(f"Invalid cursor {cursor[:80]!r}: pass the cursor of a tree page's 'Link' header "
                             "unchanged.")
        commit_id, listed_recursive, offset = match.group(1), match.group(2) == "1", int(match.group(3))
        if listed_recursive != recursive:
            raise BadRequest(f"Invalid cursor {cursor!r}: it continues a listing with recursive={listed_recursive}, "
                             f"asked with recursive={recursive}.")
        try:
            found = self.store.resolve(namespace, name, commit_id) == commit_id  # not a branch named like one
        except RevisionNotFound:
            found = False
        if not found:
            raise BadRequest(f"Invalid cursor {cursor!r}: its commit is not in {namespace}/{name}.")
        return commit_id, offset

    async def paths_info(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``POST .../paths-info/{rev}``: the asked paths the revision holds (JSON or form body).

        The work runs in a worker thread; a body over ``FAST_PATHS_INFO_BODY`` (hundreds of paths) waits
        for its client's earlier large requests first (``ProcessOffload.turn``), so a small request
        never waits behind large ones.
        """
        self.auth.readable(request, namespace, name)
        body = await read_body(request)
        is_json = "application/json" in request.headers.get("content-type", "")
        work = partial(self._paths_info, namespace, name, revision, body, is_json)
        if len(body) <= limits.FAST_PATHS_INFO_BODY:
            return await anyio.to_thread.run_sync(work)
        async with self.offload.turn(_client(request)):
            return await anyio.to_thread.run_sync(work)

    def _paths_info(self, namespace: str, name: str, revision: str, body: bytes, is_json: bool) -> Response:
        commit = self.store.commit_info(namespace, name, self.store.resolve(namespace, name, revision))
        return JSONResponse(_paths_info_entries(commit, body, is_json))

    def refs(self, request: Request, namespace: str, name: str) -> Response:
        """``GET .../refs`` (``include_prs`` adds an empty list)."""
        self.auth.readable(request, namespace, name)
        refs = self.store.refs(namespace, name)
        payload: Dict[str, Any] = {
            kind: [{"name": ref, "ref": f"refs/{prefix}/{ref}", "targetCommit": commit}
                   for ref, commit in sorted(refs[kind].items())]
            for kind, prefix in (("branches", "heads"), ("tags", "tags"))
        }
        payload["converts"] = []
        if flag(request.query_params.get("include_prs")):
            payload["pullRequests"] = []
        return JSONResponse(payload)

    def commits(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``GET .../commits/{rev}``: the history, newest first."""
        self.auth.readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        history = [
            {"id": c["id"], "title": c["title"], "message": c["message"], "date": c["date"], "authors": [],
             "parents": c["parents"]}
            for c in self.store.history(namespace, name, commit_id)
        ]
        return JSONResponse(history)

    async def create_branch(self, request: Request, namespace: str, name: str, branch: str) -> Response:
        """``POST .../branch/{b}`` (``startingPoint``, else main)."""
        self.auth.require_write(request)
        validate_ref_name(branch, "branch")
        self.store.repo_meta(namespace, name)
        starting_point = (await json_object(request)).get("startingPoint") or DEFAULT_BRANCH
        if not isinstance(starting_point, str):
            raise BadRequest("'startingPoint' must be a revision string.")
        target = self.store.resolve(namespace, name, starting_point)
        await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "branches", branch, target, False)
        return JSONResponse({})

    async def delete_branch(self, request: Request, namespace: str, name: str, branch: str) -> Response:
        """``DELETE .../branch/{b}``."""
        self.auth.require_write(request)
        validate_ref_name(branch, "branch")
        self.store.repo_meta(namespace, name)
        await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "branches", branch, None, True)
        return JSONResponse({})

    async def create_tag(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``POST .../tag/{rev}`` (body ``{"tag"}``)."""
        self.auth.require_write(request)
        tag = (await json_object(request)).get("tag")
        validate_ref_name(tag, "tag")
        target = self.store.resolve(namespace, name, revision)
        await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "tags", tag, target, False)
        return JSONResponse({})

    async def delete_tag(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        """``DELETE .../tag/{t}``."""
        self.auth.require_write(request)
        validate_ref_name(tag, "tag")
        self.store.repo_meta(namespace, name)
        await anyio.to_thread.run_sync(self.store.set_ref, namespace, name, "tags", tag, None, True)
        return JSONResponse({})


def _repo_id_from_body(data: Dict[str, Any]) -> Tuple[str, str]:
    if data.get("type") not in (None, "model"):
        raise BadRequest(f"Only model repositories are served here, not repo type {data.get('type')!r}.")
    namespace, name = data.get("organization"), data.get("name")
    if namespace is None:
        raise BadRequest("Repo ids need a namespace: use 'namespace/name'.")
    return validate_repo_part(namespace, "namespace"), validate_repo_part(name, "name")


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


def _client(request: Request) -> str:
    """Who sends ``request``, for the per-client queues: its address."""
    return request.client.host if request.client else ""


def _cursor(commit_id: str, recursive: bool, offset: int) -> str:
    """The opaque cursor of a tree page: the listed commit, the listing's kind and the page's first entry."""
    return base64.urlsafe_b64encode(f"{commit_id}:{int(recursive)}:{offset}".encode()).decode().rstrip("=")


def _next_page_url(request: Request, namespace: str, name: str, revision: str, path: str, cursor: str) -> str:
    """The URL of the tree page ``cursor`` names, with the request's other query parameters."""
    where = "/".join(quote(part, safe="") for part in (namespace, name, "tree", revision))
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"] + [("cursor", cursor)]
    return f"{base_url(request)}/api/models/{where}{'/' + quote(path) if path else ''}?{urlencode(query)}"


def _paths_info_entries(commit: Dict[str, Any], body: bytes, is_json: bool) -> List[Dict[str, Any]]:
    """paths-info's answer: one entry per asked path (in a JSON or form body) that ``commit`` holds."""
    if is_json:
        try:
            paths = limits.load_json(body).get("paths", [])
        except limits.LimitError:
            raise
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
