"""The registry's web pages, server-rendered with Jinja2 (autoescaped); one small script adds copy buttons.

URL shapes are the Hub's, so links carry over (the routes are in ``se_zoo.registry.routes``):

- ``/`` — the models: ``search`` (every word in the id, architecture, tags or card title), ``sort``
  (``modified``, ``downloads``, ``alphabetical``, ``top1``), ``library`` and ``tag`` filters (each
  one's counts follow the other filters), ``p`` (0-based page of 30)
- ``/{namespace}/{name}`` — model card, metrics, training curves, "use this model" snippets
- ``/{namespace}/{name}/tree/{revision}[/{path}]`` — files with size, LFS sha256, last commit
- ``/{namespace}/{name}/blob/{revision}/{path}`` — one file, escaped (Markdown rendered, sanitised), text
  with line numbers, a safetensors file as its header's tensors
- ``/{namespace}/{name}/raw/{revision}/{path}`` — one file as ``text/plain`` (not a download)
- ``/{namespace}/{name}/commits/{revision}`` — history with the files each commit changed
- ``/{namespace}/{name}/commit/{revision}`` — one commit: message, parent, diffs (tensor-level for safetensors)
- ``/login`` (form, POST) and ``/logout`` (POST) — the read token cookie (see ``session``)
- ``/-/style.css`` — the one style sheet, ``/-/copy.js`` the one script (copy buttons); ``-`` is never a
  namespace; ``/favicon.ico`` — the icon
- any other ``GET`` path — the 404 page

Pages and the style sheet go out gzip-compressed to clients that accept it (downloads never: their
``Content-Length`` and ``ETag`` are the file's).

Private repositories are shown only to a visitor with a valid token (``Auth.visible``); to anyone
else they are a 404 page identical to that of a missing repository. Every response carries a Content-Security-Policy
that allows scripts and styles only from this site's own files (no inline script, no ``eval``).
"""
import gzip
import posixpath
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import quote, urlencode

import anyio
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ..auth import Auth
from ..errors import PayloadTooLarge
from ..signing import TrustPolicy
from ..store.storage import DEFAULT_BRANCH, BadRequest, EntryNotFound, HubError, RepoNotFound, Store, validate_path
from . import repo_view, session, tensors
from .badges import file_scan, pickle_issues, signature_badge
from .cards import Links, parse_card, render_markdown
from .chart import curves
from .commit_view import file_changes
from ..limits import MAX_METRICS_BYTES, MAX_TENSOR_ROWS, MAX_TEXT_BYTES, MAX_TEXT_PREVIEW, int_param

__all__ = ["WebPages", "CSP"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
PAGE_SIZE = 30
COMMITS_PAGE_SIZE = 50
METRICS = "metrics.jsonl"
SORTS = {"modified": ("updated", True), "downloads": ("downloads", True), "alphabetical": ("id", False),
         "top1": ("top1", True)}
_HERE = Path(__file__).parent


GZIP_MIN_BYTES = 1024  # smaller bodies gain less than the header costs
_COMPRESSED = ("text/html", "text/css")


@lru_cache(maxsize=512)
def _rendered(blob: Path, links: Links) -> Markup:
    with open(blob, "rb") as f:
        return render_markdown(parse_card(f.read(MAX_TEXT_BYTES).decode("utf-8", "replace")).body, links)


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
        self._env.filters.update(date=_date, size=_size, params=_params, change=_change,
                                 urlpath=lambda path: quote(path),
                                 urlpart=lambda part: quote(part, safe=""))  # a revision may hold a "/"
        self._env.globals["with_query"] = _with_query
        self._css = (_HERE / "style.css").read_bytes()
        self._icon = (_HERE / "favicon.svg").read_bytes()
        self._js = (_HERE / "copy.js").read_bytes()

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

    async def commit(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        """``/{namespace}/{name}/commit/{revision}``: one commit and what it changed."""
        return await self._render(request, self._commit, namespace, name, revision)

    async def raw(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        """``/{namespace}/{name}/raw/{revision}/{path}``: one file as plain text in the browser."""
        return await self._render(request, self._raw, namespace, name, revision, path)

    # responses
    def _html(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        signed_in = self.auth.visitor(request) is not None
        body = self._env.get_template(template).render(
            signed_in=signed_in, here=request.url.path, search=request.query_params.get("search", ""), **context)
        return _compressed(request, HTMLResponse(body, status_code=status, headers=_headers()))

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
        return _compressed(request, Response(self._css, media_type="text/css",
                                             headers={**_headers(), "Cache-Control": "max-age=3600"}))

    async def favicon(self, request: Request) -> Response:
        """``/favicon.ico``: the site's icon (SVG, which browsers take under that name too)."""
        return Response(self._icon, media_type="image/svg+xml",
                        headers={**_headers(), "Cache-Control": "max-age=86400"})

    async def not_found(self, request: Request, rest: str = "") -> Response:
        """Any other page path: the 404 page."""
        return self._html(request, "error.html", 404, title="404", message=f"No page at {request.url.path}.",
                          login_hint=False)

    async def script(self, request: Request) -> Response:
        """``/-/copy.js``: the copy buttons of the "Use this model" snippets."""
        return Response(self._js, media_type="text/javascript",
                        headers={**_headers(), "Cache-Control": "max-age=3600"})

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
        words = search.split()
        for namespace, name, meta in self.store.list_repos():
            if meta["private"] and not readable_private:
                continue
            try:
                summary = self._summary(namespace, name, meta, repo_view.head_of(self.store, namespace, name))
            except HubError:  # deleted since it was listed
                continue
            row = repo_view.repo_row(self.store, f"{namespace}/{name}", summary)
            if all(word in _searched_text(row) for word in words):
                rows.append(row)
        return rows

    def _list(self, request: Request) -> Response:
        params = request.query_params
        sort = params.get("sort", "modified")
        if sort not in SORTS:
            raise BadRequest(f"Invalid sort {sort!r}: expected one of {', '.join(SORTS)}.")
        library, tag, page = params.get("library", ""), params.get("tag", ""), int_param(params, "p", 0)
        rows = self._rows(request)
        has_top1 = any(r.card.top1 is not None for r in rows)
        in_library = [r for r in rows if not library or r.card.library == library]
        with_tag = [r for r in rows if not tag or tag in r.card.tags]
        # each filter's counts follow the other one: a count is what clicking that filter would list
        libraries = _counts(r.card.library for r in with_tag if r.card.library)
        tags = _counts(t for r in in_library for t in r.card.tags)
        rows = [r for r in in_library if not tag or tag in r.card.tags]
        key, descending = SORTS[sort]
        if key == "top1":  # models without a top-1 last, by name
            rows.sort(key=lambda r: r.id)
            rows.sort(key=lambda r: (r.card.top1 is not None, r.card.top1 or 0.0), reverse=True)
        else:
            rows.sort(key=lambda r: getattr(r, key), reverse=descending)
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        return self._html(request, "list.html", rows=rows[page * PAGE_SIZE:(page + 1) * PAGE_SIZE], total=len(rows),
                          page=page, pages=pages, sort=sort,
                          sorts=[s for s in SORTS if s != "top1" or has_top1 or sort == "top1"], library=library,
                          tag=tag, libraries=libraries, tags=tags[:30], query=dict(params),
                          page_numbers=_page_numbers(page, pages))

    def _model(self, request: Request, namespace: str, name: str) -> Response:
        repo = self._visible_repo(request, namespace, name, DEFAULT_BRANCH)
        files = repo.commit["files"]
        readme, metrics = files.get(repo_view.README), files.get(METRICS)
        panels = curves(repo_view.read_blob(self.store, metrics, MAX_METRICS_BYTES)) if metrics else []
        return self._html(
            request, "model.html", repo=repo, tab="card", view="tree", card=repo_view.card_at(self.store, files),
            card_html=_rendered(self.store.blob_path(readme["sha256"]), _links(repo)) if readme else None,
            panels=panels, endpoint=str(request.base_url).rstrip("/"), file_count=len(files),
            untrained=repo_view.untrained(self.store, files), weights=self._weights(files),
            downloads=self.store.downloads(namespace, name),
            signature=signature_badge(self.store, repo.id, files, self._trusted),
            pickle_issues=pickle_issues(self.store, files))

    def _weights(self, files: Dict[str, Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        """Parameters, size and dtypes of a commit's safetensors files (their headers only), or ``None``."""
        paths = [p for p in files if p.endswith(".safetensors")]
        headers = []
        for path in paths:
            try:
                headers.append(tensors.read_header(self.store.blob_path(files[path]["sha256"])))
            except (tensors.SafetensorsError, OSError):
                return None  # unreadable or not stored here yet: no figure rather than a wrong one
        if not headers:
            return None
        return {**tensors.summarize(headers), "size": sum(files[p]["size"] for p in paths), "files": len(paths)}

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
        card_html = _rendered(self.store.blob_path(readme["sha256"]), _links(repo)) if readme else None
        return self._html(request, "tree.html", repo=repo, tab="files", path=path, rows=rows, crumbs=_crumbs(path),
                          view="tree", card_html=card_html)

    def _blob(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        repo = self._visible_repo(request, namespace, name, revision)
        entry = repo.commit["files"].get(validate_path(path))
        if entry is None:
            raise EntryNotFound(f"File {path!r} not found at {revision}.")
        head = repo_view.read_blob(self.store, entry, MAX_TEXT_PREVIEW + 1)
        text = None if b"\0" in head[:8192] else head[:MAX_TEXT_PREVIEW].decode("utf-8", "replace")
        cut = text is not None and len(head) > MAX_TEXT_PREVIEW
        if cut:
            text = text.rpartition("\n")[0] or text  # whole lines
        rendered = _rendered(self.store.blob_path(entry["sha256"]), _links(repo, posixpath.dirname(path))) \
            if text is not None and path.endswith(".md") and entry["size"] <= MAX_TEXT_BYTES else None
        header, header_error = None, None
        if path.endswith(".safetensors"):
            try:
                header = tensors.read_header(self.store.blob_path(entry["sha256"]))
            except tensors.SafetensorsError as exc:
                header_error = str(exc)
        last = repo_view.last_commits(self.store, namespace, name, repo.commit["id"], [path]).get(path)
        return self._html(request, "blob.html", repo=repo, tab="files", path=path, entry=entry, text=text,
                          rendered=rendered, last=last, crumbs=_crumbs(path), view="blob", cut=cut,
                          lines=text.splitlines() if text is not None else [], header=header,
                          header_error=header_error, max_rows=MAX_TENSOR_ROWS, preview=MAX_TEXT_PREVIEW,
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

    def _commit(self, request: Request, namespace: str, name: str, revision: str) -> Response:
        repo = self._visible_repo(request, namespace, name, revision)
        info = repo.commit
        parent = self.store.commit_info(namespace, name, info["parents"][0]) if info["parents"] else None
        changes = file_changes(self.store, parent["files"] if parent else {}, info["files"])
        return self._html(request, "commit.html", repo=repo, tab="commits", info=info, parent=parent,
                          changes=changes, view="commits", max_rows=MAX_TENSOR_ROWS)

    def _raw(self, request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        repo = self._visible_repo(request, namespace, name, revision)
        entry = repo.commit["files"].get(validate_path(path))
        if entry is None:
            raise EntryNotFound(f"File {path!r} not found at {revision}.")
        headers = {**_headers(), "Content-Security-Policy": "default-src 'none'; sandbox"}
        return FileResponse(self.store.blob_path(entry["sha256"]), media_type="text/plain; charset=utf-8",
                            headers=headers, content_disposition_type="inline")

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


def _links(repo: _Repo, folder: str = "") -> Links:
    return Links(repo.id, repo.revision, folder)


def _compressed(request: Request, response: Response) -> Response:
    """``response`` gzip-compressed when the client accepts it and it is a large enough page or style sheet."""
    media = response.headers.get("content-type", "").split(";")[0]
    accepted = "gzip" in request.headers.get("accept-encoding", "").lower()
    if media not in _COMPRESSED:
        return response
    response.headers["Vary"] = "Accept-Encoding"
    if not accepted or len(response.body) < GZIP_MIN_BYTES:
        return response
    body = gzip.compress(response.body, compresslevel=5)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(body, response.status_code, {**headers, "Content-Encoding": "gzip"})


def _headers() -> Dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _counts(values: Any) -> List[tuple]:
    counts: Dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _searched_text(row: repo_view.RepoRow) -> str:
    """What the search box looks in: id, architecture, tags and card title, lower-cased."""
    return " ".join((row.id, row.architecture or "", *row.card.tags, row.card.title or "")).lower()


def _page_numbers(page: int, pages: int) -> List[Optional[int]]:
    """The 0-based pages the pager links: first, last and two around ``page``; ``None`` for a gap."""
    shown = sorted({0, pages - 1, *range(max(0, page - 2), min(pages, page + 3))})
    numbers: List[Optional[int]] = []
    for number in shown:
        if numbers and number - numbers[-1] > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


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


def _params(count: int) -> str:
    """A parameter count, e.g. ``11.69 M (11,689,512)``."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit} ({count:,})"
    return f"{count:,}"


def _change(value: float) -> str:
    """The largest absolute change of a tensor, e.g. ``0.0123``, ``NaN`` or ``inf``."""
    return "NaN" if value != value else f"{value:.4g}"


def _with_query(query: Dict[str, str], **changes: Any) -> str:
    """The list page's query string with ``changes`` applied (empty values dropped, page reset)."""
    merged = {**{k: v for k, v in query.items() if k != "p"}, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None)})
