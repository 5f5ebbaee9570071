"""The registry's web pages, server-rendered with Jinja2 (autoescaped) and no JavaScript.

URL shapes are the Hub's, so links carry over (the routes are in ``se_zoo.registry.routes``):

- ``/`` — the models: ``search``, ``sort`` (``modified``, ``downloads``, ``alphabetical``),
  ``library`` and ``tag`` filters, ``p`` (0-based page of 30)
- ``/{namespace}/{name}`` — model card, metrics, training curves, "use this model" snippets
- ``/{namespace}/{name}/tree/{revision}[/{path}]`` — files with size, LFS sha256, last commit
- ``/{namespace}/{name}/blob/{revision}/{path}`` — one file, escaped (Markdown rendered, sanitised)
- ``/{namespace}/{name}/commits/{revision}`` — history with the files each commit changed
- ``/login`` (form, POST) and ``/logout`` (POST) — the read token cookie (see ``session``)
- ``/-/style.css`` — the one style sheet (``-`` is never a namespace)

Private repositories are shown only to a visitor with a valid token (``Auth.visible``); to anyone
else they are a 404 page identical to that of a missing repository. Every response carries a Content-Security-Policy
that allows no script at all and styles only from this site.
"""
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import quote, urlencode

import anyio
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..auth import Auth
from ..errors import PayloadTooLarge
from ..signing import TrustPolicy
from ..store.storage import DEFAULT_BRANCH, BadRequest, EntryNotFound, HubError, RepoNotFound, Store, validate_path
from . import repo_view, session
from .badges import file_scan, pickle_issues, signature_badge
from .cards import parse_card, render_markdown
from .chart import curves
from ..limits import MAX_METRICS_BYTES, MAX_TEXT_BYTES, int_param

__all__ = ["WebPages", "CSP"]

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
PAGE_SIZE = 30
COMMITS_PAGE_SIZE = 50
METRICS = "metrics.jsonl"
SORTS = {"modified": ("updated", True), "downloads": ("downloads", True), "alphabetical": ("id", False)}
_HERE = Path(__file__).parent


@lru_cache(maxsize=512)
def _rendered(blob: Path) -> Markup:
    with open(blob, "rb") as f:
        return render_markdown(parse_card(f.read(MAX_TEXT_BYTES).decode("utf-8", "replace")).body)


@dataclass
class _Repo:
    """A readable repository at one revision, as the repo pages need it."""

    namespace: str
    name: str
    meta: Dict[str, Any]
    revision: str
    commit: Dict[str, Any]
    refs: Dict[str, Dict[str, str]]

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


class WebPages:
    """The page handlers over one ``Store``.

    Args:
        store: The registry's store.
        auth: Who the visitor is (login cookie or bearer token) and which repositories they see.
        summary: ``(namespace, name, meta, commit) -> dict`` as ``GET /api/models`` describes a
            repository (the list page takes ``lastModified``, ``private`` and ``downloads`` from it).
        trusted: The trust policy the model page's signature badge is verified against, or None.
    """

    def __init__(self, store: Store, auth: Auth,
                 summary: Callable[[str, str, Dict[str, Any], Dict[str, Any]], Dict[str, Any]],
                 trusted: Optional[TrustPolicy] = None):
        self.store, self.auth, self._trusted = store, auth, trusted
        self._summary = summary
        self._env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(
            default=True, default_for_string=True), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self._env.filters.update(date=_date, size=_size, urlpath=lambda path: quote(path),
                                 urlpart=lambda part: quote(part, safe=""))  # a revision may hold a "/"
        self._env.globals["with_query"] = _with_query
        self._css = (_HERE / "style.css").read_bytes()

    # the pages (GET; see the module docstring)
    async def model_list(self, request: Request) -> Response:
        """``/``: the models, searched, filtered, sorted and paged."""
        return await self._render(request, self._list)

    async def model(self, request: Request, namespace: str, name: str) -> Response:
        """``/{namespace}/{name}``: the model card, metrics and curves."""
        return await self._render(request, self._model, namespace, name)

    async def tree(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        """``/{namespace}/{name}/tree/{revision}[/{path}]``: the files of a folder."""
        return await self._render(request, self._tree, namespace, name, revision, path)

    async def blob(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        """``/{namespace}/{name}/blob/{revision}/{path}``: one file."""
        return await self._render(request, self._blob, namespace, name, revision, path)

    async def commits(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``/{namespace}/{name}/commits/{revision}``: the history."""
        return await self._render(request, self._commits, namespace, name, revision)

    # responses
    def _html(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        signed_in = self.auth.visitor(request) is not None
        body = self._env.get_template(template).render(
            signed_in=signed_in, here=request.url.path, search=request.query_params.get("search", ""), **context)
        return HTMLResponse(body, status_code=status, headers=_headers())

    async def _render(self, request: Request, view: Callable[..., Response], *args: Any) -> Response:
        """``view(request, *args)`` run in a worker thread (it reads the disk), errors as HTML pages."""
        try:
            return await anyio.to_thread.run_sync(partial(view, request, *args))
        except RepoNotFound:
            # the same page whether the repo is missing or private: nothing tells them apart
            return self._html(request, "error.html", 404, title="404",
                              message=f"Repository {args[0]}/{args[1]} not found.", login_hint=True)
        except HubError as exc:
            return self._html(request, "error.html", exc.status, title=str(exc.status), message=str(exc),
                              login_hint=False)

    async def stylesheet(self, request: Request) -> Response:
        """``/-/style.css``: the one style sheet."""
        return Response(self._css, media_type="text/css", headers={**_headers(), "Cache-Control": "max-age=3600"})

    # the pages
    def _visible_repo(self, request: Request, namespace: str, name: str, revision: str) -> _Repo:
        meta = self.auth.visible(request, namespace, name)
        commit_id = self.store.resolve(namespace, name, revision)
        return _Repo(namespace, name, meta, revision, self.store.commit_info(namespace, name, commit_id),
                     self.store.refs(namespace, name))

    def _rows(self, request: Request) -> List[repo_view.RepoRow]:
        readable_private = self.auth.visitor(request) is not None
        search = request.query_params.get("search", "").strip().lower()
        rows = []
        for namespace, name, meta in self.store.list_repos():
            if (meta["private"] and not readable_private) or (search and search not in f"{namespace}/{name}".lower()):
                continue
            try:
                summary = self._summary(namespace, name, meta, repo_view.head_of(self.store, namespace, name))
            except HubError:  # deleted since it was listed
                continue
            rows.append(repo_view.repo_row(self.store, f"{namespace}/{name}", summary))
        return rows

    def _list(self, request: Request) -> Response:
        params = request.query_params
        sort = params.get("sort", "modified")
        if sort not in SORTS:
            raise BadRequest(f"Invalid sort {sort!r}: expected one of {', '.join(SORTS)}.")
        library, tag, page = params.get("library", ""), params.get("tag", ""), int_param(params, "p", 0)
        rows = self._rows(request)
        libraries = _counts(r.card.library for r in rows if r.card.library)
        tags = _counts(t for r in rows for t in r.card.tags)
        rows = [r for r in rows if (not library or r.card.library == library) and (not tag or tag in r.card.tags)]
        key, descending = SORTS[sort]
        rows.sort(key=lambda r: getattr(r, key), reverse=descending)
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        return self._html(request, "list.html", rows=rows[page * PAGE_SIZE:(page + 1) * PAGE_SIZE], total=len(rows),
                          page=page, pages=pages, sort=sort, sorts=list(SORTS), library=library, tag=tag,
                          libraries=libraries, tags=tags[:30], query=dict(params))

    def _model(self, request: Request, namespace: str, name: str) -> Response:
        repo = self._visible_repo(request, namespace, name, DEFAULT_BRANCH)
        files = repo.commit["files"]
        readme, metrics = files.get(repo_view.README), files.get(METRICS)
        panels = curves(repo_view.read_blob(self.store, metrics, MAX_METRICS_BYTES)) if metrics else []
        return self._html(
            request, "model.html", repo=repo, tab="card", view="tree", card=repo_view.card_at(self.store, files),
            card_html=_rendered(self.store.blob_path(readme["sha256"])) if readme else None,
            panels=panels, endpoint=str(request.base_url).rstrip("/"), file_count=len(files),
            signature=signature_badge(self.store, repo.id, files, self._trusted),
            pickle_issues=pickle_issues(self.store, files))

    def _tree(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        repo = self._visible_repo(request, namespace, name, revision)
        files = repo.commit["files"]
        if path:
            validate_path(path)
            if path in files:
                location = f"/{repo.id}/blob/{quote(revision, safe='')}/{quote(path)}"
                return RedirectResponse(location, 302, headers=_headers())
        rows = repo_view.file_rows(files, path)
        if path and not rows:
            raise EntryNotFound(f"Folder {path!r} not found at {revision}.")
        last = repo_view.last_commits(self.store, namespace, name, repo.commit["id"],
                                      [r.path for r in rows if not r.is_dir])
        rows = [repo_view.FileRow(**{**r.__dict__, "commit": last.get(r.path)}) for r in rows]
        readme = None if path else files.get(repo_view.README)  # the card at this revision, under the files
        return self._html(request, "tree.html", repo=repo, tab="files", path=path, rows=rows, crumbs=_crumbs(path),
                          view="tree", card_html=_rendered(self.store.blob_path(readme["sha256"])) if readme else None)

    def _blob(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        repo = self._visible_repo(request, namespace, name, revision)
        entry = repo.commit["files"].get(validate_path(path))
        if entry is None:
            raise EntryNotFound(f"File {path!r} not found at {revision}.")
        head = repo_view.read_blob(self.store, entry, MAX_TEXT_BYTES + 1)
        text = None if b"\0" in head[:8192] or len(head) > MAX_TEXT_BYTES else head.decode("utf-8", "replace")
        rendered = _rendered(self.store.blob_path(entry["sha256"])) if text is not None and path.endswith(".md") \
            else None
        last = repo_view.last_commits(self.store, namespace, name, repo.commit["id"], [path]).get(path)
        return self._html(request, "blob.html", repo=repo, tab="files", path=path, entry=entry, text=text,
                          rendered=rendered, last=last, crumbs=_crumbs(path), view="blob",
                          scan=file_scan(self.store, path, entry))

    def _commits(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        repo = self._visible_repo(request, namespace, name, revision)
        page = int_param(request.query_params, "p", 0)
        history, more = [], False
        for index, info in enumerate(self.store.history(namespace, name, repo.commit["id"])):
            if index >= (page + 1) * COMMITS_PAGE_SIZE:
                more = True
                break
            if index >= page * COMMITS_PAGE_SIZE:
                history.append((info, repo_view.changed_files(self.store, namespace, name, info)))
        return self._html(request, "commits.html", repo=repo, tab="commits", history=history, page=page,
                          more=more, view="commits")

    # the token form
    async def login(self, request: Request) -> Response:
        """``GET|POST /login``: the token form; a valid token is kept in the cookie."""
        if request.method != "POST":
            return self._html(request, "login.html", next=session.safe_next(request.query_params.get("next")),
                              error=None)
        try:
            form = await session.read_form(request)
        except PayloadTooLarge as exc:
            return self._html(request, "login.html", 413, next="/", error=str(exc))
        token, target = form.get("token", "").strip(), session.safe_next(form.get("next"))
        if not token or self.auth.token_permission(token) is None:
            return self._html(request, "login.html", 401, next=target, error="This token is not valid here.")
        response = RedirectResponse(target, 303, headers=_headers())
        session.set_token_cookie(response, request, token)
        return response

    async def logout(self, request: Request) -> Response:
        """``POST /logout``: the cookie removed."""
        response = RedirectResponse("/", 303, headers=_headers())
        session.clear_token_cookie(response, request)
        return response


def _headers() -> Dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _counts(values: Any) -> List[tuple]:
    counts: Dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _crumbs(path: str) -> List[tuple]:
    parts = path.split("/") if path else []
    return [(part, "/".join(parts[:i + 1])) for i, part in enumerate(parts)]


def _date(iso: str) -> str:
    """``2024-01-31T12:00:00.000000Z`` as ``2024-01-31 12:00 UTC``."""
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def _size(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)


def _with_query(query: Dict[str, str], **changes: Any) -> str:
    """The list page's query string with ``changes`` applied (empty values dropped, page reset)."""
    merged = {**{k: v for k, v in query.items() if k != "p"}, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None)})
