"""Training curves from ``metrics.jsonl`` laid out as SVG geometry, rendered on the server.

``se-zoo train`` writes one JSON object per epoch (``epoch``, ``train_loss``, ``val_loss``,
``top1``, ``top5``, ...). This module turns such a file into two panels — loss and accuracy per
epoch — as coordinates, tick labels and polyline points; the ``_chart.html`` template draws them as
inline SVG, so the chart needs no JavaScript. The file is untrusted: lines that are not JSON
objects, and values that are not finite numbers, are skipped.
"""
import json
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple
from ..limits import MAX_MARKERS, MAX_METRICS_BYTES

__all__ = ["Panel", "Series", "curves", "parse_metrics"]

WIDTH, HEIGHT = 400, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 34  # plot margins inside the SVG
PANELS = (
    ("Loss", (("train", "train_loss"), ("val", "val_loss"))),
    ("Accuracy (%)", (("top-1", "top1"), ("top-5", "top5"), ("EMA top-1", "ema_top1"))),
)


@dataclass(frozen=True)
class Series:
    """One curve: its legend label, polyline points and hover markers ``(x, y, text)``."""

    label: str
    points: str
    markers: Tuple[Tuple[float, float, str], ...]


@dataclass(frozen=True)
class Panel:
    """One chart: title, axis ticks ``(position, label)`` and its series."""

    title: str
    x_ticks: Tuple[Tuple[float, str], ...]
    y_ticks: Tuple[Tuple[float, str], ...]
    series: Tuple[Series, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def _number(value: object) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def parse_metrics(data: bytes) -> Dict[float, Dict[str, float]]:
    """The per-epoch numbers of a ``metrics.jsonl`` file.

    Args:
        data: The file's bytes (only the first 4 MiB are read).

    Returns:
        ``{epoch: {key: value}}`` with finite numbers only; a record without ``epoch`` counts as
        the line's position (1-based); a repeated epoch keeps its last record.
    """
    records: Dict[float, Dict[str, float]] = {}
    for position, line in enumerate(data[:MAX_METRICS_BYTES].splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        epoch = _number(record.get("epoch", position))
        if epoch is not None:
            records[epoch] = {k: v for k, v in ((k, _number(v)) for k, v in record.items()) if v is not None}
    return records


def _nice_ticks(low: float, high: float, count: int = 5) -> List[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering ``[low, high]``."""
    if high <= low:
        low, high = low - 1.0, high + 1.0
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def _panel(title: str, keys: Sequence[Tuple[str, str]], epochs: List[float],
           records: Dict[float, Dict[str, float]]) -> Optional[Panel]:
    present = [(label, key) for label, key in keys if any(key in records[e] for e in epochs)]
    if not present:
        return None
    values = [records[e][key] for _, key in present for e in epochs if key in records[e]]
    y_ticks = _nice_ticks(min(values), max(values))
    x_low, x_high = epochs[0], max(epochs[-1], epochs[0] + 1)
    geometry = Panel(title, (), (), ())

    def x_of(epoch: float) -> float:
        return geometry.left + (epoch - x_low) / (x_high - x_low) * (geometry.right - geometry.left)

    def y_of(value: float) -> float:
        span = y_ticks[-1] - y_ticks[0]
        return geometry.bottom - (value - y_ticks[0]) / span * (geometry.bottom - geometry.top)

    series = []
    for label, key in present:
        xy = [(e, records[e][key]) for e in epochs if key in records[e]]
        points = " ".join(f"{x_of(e):.1f},{y_of(v):.1f}" for e, v in xy)
        markers = tuple((round(x_of(e), 1), round(y_of(v), 1), f"{label}, epoch {e:g}: {_label(v)}")
                        for e, v in xy) if len(xy) <= MAX_MARKERS else ()
        series.append(Series(label, points, markers))
    x_values = _nice_ticks(x_low, x_high, count=min(8, max(1, int(x_high - x_low))))
    x_ticks = tuple((round(x_of(e), 1), f"{e:g}") for e in x_values if x_low <= e <= x_high)
    return Panel(title, x_ticks, tuple((round(y_of(v), 1), _label(v)) for v in y_ticks), tuple(series))


def curves(data: bytes) -> List[Panel]:
    """The loss and accuracy panels of a ``metrics.jsonl`` file.

    Args:
        data: The file's bytes.

    Returns:
        The panels that have data (none for a file without usable records).
    """
    records = parse_metrics(data)
    epochs = sorted(records)
    panels = [_panel(title, keys, epochs, records) for title, keys in PANELS] if epochs else []
    return [p for p in panels if p is not None]
