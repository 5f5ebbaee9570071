"""Model cards as web content: front matter turned into header facts, Markdown into sanitised HTML.

A card is untrusted user content. Its Markdown is rendered by markdown-it-py (CommonMark plus
tables with their alignment, strikethrough, task lists and footnotes; raw HTML allowed so cards
written for the Hub keep their layout; fenced code highlighted on the server by Pygments) and the
resulting HTML is cleaned by nh3 (an allow-list: no ``<script>``/``<style>``/``<iframe>``, no
``on*`` attributes, no ``javascript:`` or ``data:`` URLs, ids prefixed so a card cannot take the
page's). Front-matter values only ever reach the page through Jinja2's autoescaping.

Relative links and images resolve to the repository's files at the revision shown, as on the Hub
(``assets/arch.png`` -> ``/{repo}/resolve/{revision}/assets/arch.png`` for an image,
``/{repo}/blob/{revision}/...`` for a link). Pathological input is cut before rendering (lines
longer than ``MAX_CARD_LINE_CHARS``, tables beyond ``MAX_CARD_TABLE_ROWS`` rows or
``MAX_CARD_TABLE_COLUMNS`` columns) and the page says so; images from other sites stay blocked by
the pages' Content-Security-Policy and the page says that too.
"""
import math
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

import nh3
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

from ..limits import (MAX_CARD_BYTES, MAX_CARD_LINE_CHARS, MAX_CARD_TABLE_COLUMNS, MAX_CARD_TABLE_ROWS,
                      MAX_HIGHLIGHT_CHARS)

__all__ = ["Card", "Links", "Metric", "parse_card", "render_markdown"]

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.M)
_PARAMS = re.compile(r"Params \(M\):\**[ \t]*([0-9]+(?:\.[0-9]+)?)")
_TOP1 = {"top1", "top1acc", "top1accuracy", "acc1", "accuracy"}
_SCHEMES = {"http", "https", "mailto"}
_ID_PREFIX = "user-content-"
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_ALIGN = re.compile(r"text-align:(left|center|right)")
_TASK = re.compile(r'^<input class="task-list-item-checkbox"( checked="checked")? disabled="disabled" type="checkbox">')
_FORMATTER = HtmlFormatter(nowrap=True)
_TOKEN_CLASSES = {c for c in STANDARD_TYPES.values() if c}
_ALLOWED_CLASSES = {
    "span": _TOKEN_CLASSES | {"task", "done"}, "ul": {"contains-task-list"},
    "li": {"task-list-item", "footnote-item"}, "ol": {"footnotes-list"}, "sup": {"footnote-ref"},
    "a": {"footnote-backref"}, "hr": {"footnotes-sep"}, "section": {"footnotes"},
}
_TAGS = nh3.ALLOWED_TAGS | {"section"}
_ATTRIBUTES = {**{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
               "*": {"lang", "title"}, "a": {"href", "hreflang", "id"}, "li": {"id"}, "sup": {"id"},
               "span": {"role", "aria-label"}}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Metric:
    """One ``model-index`` result: what was measured, on which dataset, and the value."""

    task: str
    dataset: str
    name: str
    value: str


@dataclass(frozen=True)
class Card:
    """What the pages show of a model card.

    Attributes:
        title: The first ``# heading`` of the body, else ``model_name``/``model-index`` name.
        license: ``license`` from the front matter.
        library: ``library_name``.
        pipeline_tag: ``pipeline_tag``.
        tags: ``tags``.
        datasets: ``datasets``.
        metrics: The ``model-index`` results.
        params_m: Millions of parameters, from a ``Params (M): N`` line of the body (the form
            se-zoo's and timm's cards use).
        top1: The first top-1 accuracy among ``metrics``.
        body: The Markdown after the front matter.
    """

    title: Optional[str] = None
    license: Optional[str] = None
    library: Optional[str] = None
    pipeline_tag: Optional[str] = None
    tags: Tuple[str, ...] = ()
    datasets: Tuple[str, ...] = ()
    metrics: Tuple[Metric, ...] = ()
    params_m: Optional[float] = None
    top1: Optional[float] = None
    body: str = ""


def _text(value: Any) -> Optional[str]:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    return None


def _texts(value: Any) -> Tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(t for t in (_text(v) for v in items) if t)


def _metrics(model_index: Any) -> Tuple[List[Metric], Optional[str]]:
    """The results of a ``model-index`` block, skipping whatever is not shaped like one."""
    found: List[Metric] = []
    name = None
    for model in model_index if isinstance(model_index, list) else []:
        if not isinstance(model, dict):
            continue
        name = name or _text(model.get("name"))
        for result in model.get("results") or []:
            if not isinstance(result, dict):
                continue
            task, dataset = result.get("task"), result.get("dataset")
            task_name = _text(task.get("name") or task.get("type")) if isinstance(task, dict) else None
            data_name = _text(dataset.get("name") or dataset.get("type")) if isinstance(dataset, dict) else None
            for metric in result.get("metrics") or []:
                if isinstance(metric, dict) and _text(metric.get("value")) is not None:
                    label = _text(metric.get("name") or metric.get("type")) or "?"
                    found.append(Metric(task_name or "", data_name or "", label, _text(metric["value"])))
    return found, name


def _top1(metrics: List[Metric]) -> Optional[float]:
    for metric in metrics:
        if re.sub(r"[\s_@-]", "", metric.name.lower()) in _TOP1:
            try:
                value = float(metric.value)
            except ValueError:
                continue
            if math.isfinite(value):
                return value
    return None


def parse_card(text: str) -> Card:
    """Split a README into front-matter facts and body.

    A front matter that is not valid YAML, or not a mapping, is ignored (the page shows the body);
    values of the wrong type are skipped.

    Args:
        text: The README.md content.

    Returns:
        A :class:`Card`.
    """
    text = text[:MAX_CARD_BYTES]
    match = _FRONT_MATTER.match(text)
    meta: Any = {}
    if match:
        try:
            meta = yaml.load(match.group(1), Loader=_Loader)
        except yaml.YAMLError:
            meta = {}
        text = text[match.end():]
    meta = meta if isinstance(meta, dict) else {}
    metrics, index_name = _metrics(meta.get("model-index"))
    heading = _TITLE.search(text)
    params = _PARAMS.search(text)
    return Card(
        title=(heading.group(1).strip() if heading else None) or _text(meta.get("model_name")) or index_name,
        license=_text(meta.get("license")),
        library=_text(meta.get("library_name")),
        pipeline_tag=_text(meta.get("pipeline_tag")),
        tags=_texts(meta.get("tags")),
        datasets=_texts(meta.get("datasets")),
        metrics=tuple(metrics),
        params_m=float(params.group(1)) if params else None,
        top1=_top1(metrics),
        body=text,
    )


@dataclass(frozen=True)
class Links:
    """Where a card's relative links and images point: a file of a repository at one revision.

    Attributes:
        repo_id: ``namespace/name``.
        revision: The revision the page shows (a branch, tag or commit id).
        folder: The folder of the Markdown file within the repository ("" for the README).
    """

    repo_id: str
    revision: str
    folder: str = ""

    def resolve(self, url: str, image: bool) -> str:
        """``url`` as the page should use it: a relative one under this repository, others unchanged.

        Args:
            url: The link or image address as the card wrote it.
            image: Whether it is an image (served by ``resolve``) or a link (a file page; a folder's
                page when it ends with ``/``).

        Returns:
            The address to put in the page.
        """
        if not url or url.startswith(("/", "#", "?")) or _SCHEME.match(url):
            return url
        cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
        path, rest = url[:cut], url[cut:]
        path = posixpath.normpath(posixpath.join(self.folder, path))
        while path.startswith("../"):
            path = path[3:]
        path = "" if path in (".", "..") else path
        kind = "resolve" if image else "tree" if url[:cut].endswith("/") or not path else "blob"
        return f"/{self.repo_id}/{kind}/{quote(self.revision, safe='')}/{path}{rest}"


def _highlight(code: str, lang: str, attrs: Any, budget: List[int]) -> str:
    """Pygments' spans for a fenced block in a known language, within the card's character budget."""
    if not lang or len(code) > budget[0]:
        return ""
    try:
        lexer = get_lexer_by_name(lang.split()[0].lower())
    except ClassNotFound:
        return ""
    budget[0] -= len(code)
    return highlight(code, lexer, _FORMATTER)


def _bounded(text: str, notes: List[str]) -> str:
    """``text`` with pathological lines and tables cut before parsing (a note for each kind of cut).

    Table rows are cut in the text, not in the parsed tokens: parsing is what a huge table costs.
    A row is a line holding a ``|``; consecutive ones beyond the header, delimiter and
    ``MAX_CARD_TABLE_ROWS`` rows are dropped, and a line keeps at most ``MAX_CARD_TABLE_COLUMNS`` cells.
    """
    kept: List[str] = []
    run = 0
    cut = {"long": 0, "rows": 0, "columns": 0}
    for line in text.split("\n"):
        run = run + 1 if "|" in line else 0
        if run > MAX_CARD_TABLE_ROWS + 2:
            cut["rows"] += 1
            continue
        if len(line) > MAX_CARD_LINE_CHARS:
            line, cut["long"] = line[:MAX_CARD_LINE_CHARS] + "…", cut["long"] + 1
        if line.count("|") > MAX_CARD_TABLE_COLUMNS + 1:
            end = [i for i, c in enumerate(line) if c == "|"][MAX_CARD_TABLE_COLUMNS]
            line, cut["columns"] = line[:end + 1], cut["columns"] + 1
        kept.append(line)
    if cut["long"]:
        notes.append(f"{cut['long']} line(s) longer than {MAX_CARD_LINE_CHARS:,} characters were cut.")
    if cut["rows"]:
        notes.append(f"A table was cut to {MAX_CARD_TABLE_ROWS:,} rows ({cut['rows']:,} not shown).")
    if cut["columns"]:
        notes.append(f"A table was cut to {MAX_CARD_TABLE_COLUMNS} columns.")
    return "\n".join(kept) if any(cut.values()) else text


def _table_cells(tokens: List[Token]) -> None:
    """Column alignment as ``align`` (the pages' CSP allows no inline style) and ``scope`` on headers."""
    for token in tokens:
        if token.type in ("th_open", "td_open"):
            style = token.attrs.pop("style", None)
            align = _ALIGN.search(style) if isinstance(style, str) else None
            if align:
                token.attrSet("align", align.group(1))
            if token.type == "th_open":
                token.attrSet("scope", "col")


def _task_boxes(tokens: List[Token]) -> None:
    """Task list checkboxes as marks (a form control has no place in a card)."""
    for token in tokens:
        for child in token.children or ():
            match = _TASK.match(child.content) if child.type == "html_inline" else None
            if match:
                done = bool(match.group(1))
                child.content = (f'<span class="task{" done" if done else ""}" role="img" '
                                 f'aria-label="{"done" if done else "to do"}">{"☑" if done else "☐"}</span>')


def render_markdown(text: str, links: Optional[Links] = None) -> Markup:
    """Markdown to HTML that is safe to put in a page.

    Args:
        text: Untrusted Markdown (raw HTML in it is allowed, then sanitised).
        links: Where relative links and images point; ``None`` leaves them as written.

    Returns:
        The sanitised HTML, marked safe for Jinja2, after a note for each thing cut or blocked.
    """
    notes: List[str] = []
    budget = [MAX_HIGHLIGHT_CHARS]
    markdown = MarkdownIt("commonmark", {"html": True, "highlight": lambda code, lang, attrs: _highlight(
        code, lang, attrs, budget)}).enable("table").enable("strikethrough")
    markdown.use(tasklists_plugin).use(footnote_plugin)
    env: Dict[str, Any] = {}
    tokens = markdown.parse(_bounded(text[:MAX_CARD_BYTES], notes), env)
    _task_boxes(tokens)
    _table_cells(tokens)
    html = markdown.renderer.render(tokens, markdown.options, env)
    external: List[str] = []

    def attribute(element: str, attribute: str, value: str) -> Optional[str]:
        if attribute == "href" and value.startswith("#"):
            return "#" + _ID_PREFIX + value[1:]
        if attribute in ("href", "src"):
            if element == "img" and value.lower().startswith(("http:", "https:", "//")):
                external.append(value)
            return links.resolve(value, element == "img") if links else value
        return value

    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, allowed_classes=_ALLOWED_CLASSES,
                      url_schemes=_SCHEMES, link_rel="noopener noreferrer nofollow", attribute_filter=attribute,
                      id_prefix=_ID_PREFIX)
    if external:
        notes.append(f"{len(external)} image(s) from other sites not shown: these pages load images only from "
                     "this registry.")
    head = "".join(f'<p class="card-note" role="note">{escape(note)}</p>' for note in notes)
    return Markup(head + clean)
