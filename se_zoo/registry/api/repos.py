"""Accounts, repositories, refs, trees and history: the Hub API's metadata endpoints."""
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import limits
from ..auth import Auth
from ..errors import BadRequest, Conflict, EntryNotFound, RepoNotFound
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
            client = request.client.host if request.client else ""
            errors = await self.offload.run_for(client, validate_yaml_request, body)
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

    def repo_info(self, request: Request, namespace: str, name: str, revision: Optional[str] = None) -> Response:
        """``GET /api/models/{id}[/revision/{rev}]`` (``blobs=1`` adds sizes, blob ids and LFS sha256;
        ``securityStatus=1`` the pickle scan as ``securityRepoStatus``)."""
        meta = self.auth.readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision or DEFAULT_BRANCH)
        commit = self.store.commit_info(namespace, name, commit_id)
        blobs = flag(request.query_params.get("blobs"))
        namespace, name = self.store.canonical_id(namespace, name)
        summary = model_summary(self.store, namespace, name, meta, commit, siblings=True, blobs=blobs)
        if flag(request.query_params.get("securityStatus")):
            summary["securityRepoStatus"] = security_status(self.store, commit["files"])
        return JSONResponse(summary)

    # files, refs and history
    def tree(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        """``GET .../tree/{rev}[/{path}]`` (``recursive``)."""
        self.auth.readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        index = tree_index(self.store.commit_info(namespace, name, commit_id))
        if path:
            validate_path(path)
        try:
            entries = index.listing(path, flag(request.query_params.get("recursive")))
        except KeyError:
            raise EntryNotFound(f"Folder {path!r} not found at {commit_id}.", commit_id) from None
        return JSONResponse(entries)

    async def paths_info(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``POST .../paths-info/{rev}``: the asked paths the revision holds (JSON or form body)."""
        self.auth.readable(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        body = await read_body(request)
        is_json = "application/json" in request.headers.get("content-type", "")
        commit = self.store.commit_info(namespace, name, commit_id)
        return JSONResponse(await anyio.to_thread.run_sync(_paths_info_entries, commit, body, is_json))

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
