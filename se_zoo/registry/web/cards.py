"""Model cards as web content: front matter turned into header facts, Markdown into sanitised HTML.

A card is untrusted user content. Its Markdown is rendered by markdown-it-py (CommonMark plus
tables, raw HTML allowed so cards written for the Hub keep their layout) and the resulting HTML is
cleaned by nh3 (an allow-list: no ``<script>``/``<style>``/``<iframe>``, no ``on*`` attributes, no
``javascript:`` or ``data:`` URLs). Front-matter values only ever reach the page through Jinja2's
autoescaping.
"""
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, List, Optional, Tuple

from markupsafe import Markup
from ..limits import MAX_CARD_BYTES

__all__ = ["Card", "Metric", "parse_card", "render_markdown"]

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.M)
_PARAMS = re.compile(r"Params \(M\):\**[ \t]*([0-9]+(?:\.[0-9]+)?)")
_TOP1 = {"top1", "top1acc", "top1accuracy", "acc1", "accuracy"}
_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _markdown() -> Any:
    """The Markdown renderer, built on first use: markdown_it, yaml and nh3 are imported only when a
    card is read, which keeps them out of the server's start-up (about a tenth of it)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


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
        import yaml

        try:
            meta = yaml.load(match.group(1), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
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


def render_markdown(text: str) -> Markup:
    """Markdown to HTML that is safe to put in a page.

    Args:
        text: Untrusted Markdown (raw HTML in it is allowed, then sanitised).

    Returns:
        The sanitised HTML, marked safe for Jinja2.
    """
    import nh3

    html = _markdown().render(text[:MAX_CARD_BYTES])
    return Markup(nh3.clean(html, url_schemes=_SCHEMES, link_rel="noopener noreferrer nofollow"))
