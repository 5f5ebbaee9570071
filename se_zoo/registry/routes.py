"""The registry's one route table: method and path shape -> handler, for every request it answers.

``route_table`` lists the Hub JSON API, LFS, downloads, the mirror's endpoints, the Xet CAS API and
the web pages, read top to bottom: the first route whose method and path match answers. No other
module looks at a request's path.

Path shapes are matched on the raw path split at ``/``, each segment then percent-decoded, so an
encoded ``%2F`` stays inside its segment (``/resolve/refs%2Fpr%2F1/...`` names the revision
``refs/pr/1``). In a shape:

- ``name`` matches itself;
- ``{x}`` matches one segment (passed to the handler as ``x``);
- ``{x}.git`` matches one segment ending in ``.git`` (``x`` without it);
- ``{x:a|b}`` matches one segment among ``a`` and ``b``;
- ``{x:path}`` matches one or more segments, ``{x:path?}`` zero or more (joined with ``/``).

HEAD matches as GET. A handler is called as ``handler(request, **params)``: coroutine functions on the
event loop, plain functions (they read the disk, their work grows with the input) in a worker
thread. A route's ``before`` hooks (the mirror's) run first with the same arguments; one that
returns a response answers instead of the handler. Errors become the Hub's JSON answers here.
"""
import inspect
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import unquote

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from . import limits
from .api import CommitApi, Downloads, LfsApi, RepoApi
from .errors import BadRequest, HubError
from .http import error_response, no_route
from .limits import LimitError
from .mirror.pullthrough import MirrorHook
from .web import WebPages
from .xet.service import XetService

__all__ = ["Route", "Router", "route_table", "OTHER_REPO_TYPES"]

logger = logging.getLogger(__name__)
ANY = ("GET", "POST", "PUT", "DELETE")
OTHER_REPO_TYPES = "datasets|spaces|kernels"
Hook = Callable[..., Awaitable[Optional[Response]]]


@dataclass(frozen=True)
class Route:
    """One row of the table.

    Args:
        methods: ``"GET"``, ``"GET|POST"``, ... or ``ANY``.
        shape: The path shape (see the module docstring).
        handler: Called with the request and the shape's parameters.
        before: Hooks run first with the same arguments; a response from one answers instead.
    """

    methods: Union[str, Tuple[str, ...]]
    shape: str
    handler: Callable[..., Any]
    before: Sequence[Hook] = field(default=())

    def __post_init__(self) -> None:
        if not self.shape.startswith("/"):
            raise ValueError(f"shape must start with '/', got {self.shape!r}.")
        methods = self.methods.split("|") if isinstance(self.methods, str) else self.methods
        object.__setattr__(self, "_methods", frozenset(methods))
        object.__setattr__(self, "_parts", self.shape.split("/")[1:])

    def match(self, method: str, segments: List[str]) -> Optional[Dict[str, str]]:
        """The parameters when ``method`` and ``segments`` fit this route, else ``None``."""
        if method not in self._methods:
            return None
        return _match_shape(self._parts, segments)


def _match_shape(parts: List[str], segments: List[str]) -> Optional[Dict[str, str]]:
    params: Dict[str, str] = {}
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith((":path}", ":path?}")):
            rest = segments[index:]
            if index != len(parts) - 1 or (not rest and part.endswith(":path}")):
                return None
            params[part[1:].split(":")[0]] = "/".join(rest)
            return params
        if index >= len(segments):
            return None
        segment = segments[index]
        if not part.startswith("{"):
            if segment != part:
                return None
        elif part.endswith("}.git"):
            if not segment.endswith(".git"):
                return None
            params[part[1:-len("}.git")]] = segment[: -len(".git")]
        elif ":" in part:
            name, choices = part[1:-1].split(":")
            if segment not in choices.split("|"):
                return None
            params[name] = segment
        else:
            params[part[1:-1]] = segment
    return params if len(parts) == len(segments) else None


def route_table(api: RepoApi, commits: CommitApi, lfs: LfsApi, files: Downloads, mirror: MirrorHook,
                xet: XetService, web: WebPages) -> List[Route]:
    """Every route of the registry, in the order they are tried.

    Args:
        api: Accounts, repositories, refs, trees and history.
        commits: Preupload and commit.
        lfs: The LFS batch, upload and verify endpoints.
        files: File downloads.
        mirror: The mirror's endpoints and its hooks: pull-through before reads, read-only mirrors.
        xet: Xet tokens and the CAS API.
        web: The pages for people.

    Returns:
        The routes; ``Router`` tries them top to bottom.
    """
    repo = "/api/models/{namespace}/{name}"
    pull, guard = (mirror.pull,), (mirror.guard_write,)
    return [
        # the mirror fills a running registry (write token)
        Route("POST", f"{repo}/mirror", mirror.import_commit),
        Route("GET", f"{repo}/mirror/blobs/{{sha256}}", mirror.has_blob),
        Route("PUT", f"{repo}/mirror/blobs/{{sha256}}/{{size}}", mirror.put_blob),
        # accounts and repositories
        Route("GET", "/api/whoami-v2", api.whoami),
        Route("POST", "/api/validate-yaml", api.validate_yaml),
        Route("POST", "/api/repos/create", api.create_repo),  # refused in mirrored namespaces
        Route("DELETE", "/api/repos/delete", api.delete_repo),
        Route("GET", "/api/models", api.list_models),
        Route(ANY, f"/api/{{kind:{OTHER_REPO_TYPES}}}/{{rest:path?}}", api.other_repo_type),
        Route(ANY, "/api/models/{repo}", api.repo_without_namespace),
        # one repository
        Route("GET", repo, api.repo_info, before=pull),
        Route("GET", f"{repo}/revision/{{revision}}", api.repo_info, before=pull),
        Route("GET", f"{repo}/tree/{{revision}}/{{path:path?}}", api.tree, before=pull),
        Route("POST", f"{repo}/paths-info/{{revision}}", api.paths_info, before=pull),
        Route("GET", f"{repo}/refs", api.refs, before=pull),
        Route("GET", f"{repo}/commits/{{revision}}", api.commits, before=pull),
        Route("POST", f"{repo}/branch/{{branch}}", api.create_branch, before=guard),
        Route("DELETE", f"{repo}/branch/{{branch}}", api.delete_branch, before=guard),
        Route("POST", f"{repo}/tag/{{revision}}", api.create_tag, before=guard),
        Route("DELETE", f"{repo}/tag/{{tag}}", api.delete_tag, before=guard),
        Route("POST", f"{repo}/preupload/{{revision}}", commits.preupload, before=guard),
        Route("POST", f"{repo}/commit/{{revision}}", commits.commit, before=guard),
        Route("PUT", f"{repo}/settings", api.settings, before=guard),
        Route("GET", f"{repo}/xet-write-token/{{revision}}", xet.write_token),
        Route("GET", f"{repo}/xet-read-token/{{revision}}", xet.read_token),
        Route(ANY, "/api/{rest:path?}", no_route),
        Route(ANY, f"/{{kind:{OTHER_REPO_TYPES}}}/{{rest:path?}}", api.other_repo_type),
        # LFS uploads (the commit path's other half)
        Route("POST", "/{namespace}/{name}.git/info/lfs/objects/batch", lfs.batch),
        Route("POST", "/{namespace}/{name}.git/info/lfs/objects/verify", lfs.verify),
        Route("PUT", "/{namespace}/{name}.git/info/lfs/objects/{oid}/{size}", lfs.upload),
        Route(ANY, "/{namespace}/{name}.git/info/lfs/objects/{rest:path?}", no_route),
        # downloads
        Route("GET", "/{namespace}/{name}/resolve/{revision}/{path:path}", files.resolve, before=(mirror.resolve,)),
        # Xet CAS (v1; the client falls back to it from v2)
        Route("POST", "/v1/telemetry", xet.telemetry),
        Route("GET", "/v1/chunks/{prefix}/{chunk}", xet.dedup),
        Route("POST", "/v1/xorbs/{prefix}/{xorb}", xet.upload_xorb),
        Route("POST", "/v1/shards", xet.upload_shard),
        Route("GET", "/v1/reconstructions/{file_hex}", xet.reconstruction),
        Route("GET", "/v1/fetch/{xorb}", xet.fetch),
        Route(ANY, "/{version:v1|v2}/{rest:path?}", xet.not_served),
        # pages for people
        Route("GET", "/", web.model_list),
        Route("GET", "/-/style.css", web.stylesheet),
        Route("GET", "/favicon.ico", web.favicon),
        Route("GET", "/-/copy.js", web.script),
        Route("GET|POST", "/login", web.login),
        Route("POST", "/logout", web.logout),
        Route("GET", "/{namespace}/{name}", web.model),
        Route("GET", "/{namespace}/{name}/tree/{revision}/{path:path?}", web.tree),
        Route("GET", "/{namespace}/{name}/blob/{revision}/{path:path}", web.blob),
        Route("GET", "/{namespace}/{name}/commits/{revision}", web.commits),
        Route("GET", "/{namespace}/{name}/commit/{revision}", web.commit),
        Route("GET", "/{namespace}/{name}/raw/{revision}/{path:path}", web.raw),
        Route("GET", "/{rest:path?}", web.not_found),  # every other page path: the styled 404
    ]


class Router:
    """Answers requests from a route table, turning errors into the Hub's JSON answers.

    Args:
        routes: The table (see ``route_table``).
    """

    def __init__(self, routes: List[Route]):
        self.routes = routes

    async def handle(self, request: Request) -> Response:
        """Answer one request: the first matching route's handler, or a 404."""
        try:
            too_many = limits.check_headers(request.scope["headers"])
            if too_many:
                return error_response(431, too_many)
            return await self._dispatch(request)
        except LimitError as exc:
            return error_response(exc.status, str(exc))
        except ClientDisconnect:
            logger.info("Client disconnected during %s %s", request.method, request.url.path)
            return Response(status_code=400)
        except HubError as exc:
            headers = {"X-Repo-Commit": exc.commit} if getattr(exc, "commit", None) else None
            return error_response(exc.status, str(exc), exc.code, headers)
        except Exception:
            logger.exception("Internal error on %s %s", request.method, request.url.path)
            return error_response(500, "Internal server error.")

    async def asgi(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        """The ASGI application: every HTTP request goes through ``handle``."""
        if scope["type"] == "http":
            response = await self.handle(Request(scope, receive))
            await response(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        segments = _segments(request)
        for route in self.routes:
            params = route.match(method, segments)
            if params is None:
                continue
            for hook in route.before:
                if (answer := await hook(request, **params)) is not None:
                    return answer
            if inspect.iscoroutinefunction(route.handler):
                return await route.handler(request, **params)
            return await anyio.to_thread.run_sync(partial(route.handler, request, **params))
        return no_route(request)


def _segments(request: Request) -> List[str]:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    try:
        return [unquote(part, errors="strict") for part in raw.decode("ascii").split("/")[1:]]
    except UnicodeDecodeError:
        raise BadRequest("The request path is not valid percent-encoded UTF-8.") from None
