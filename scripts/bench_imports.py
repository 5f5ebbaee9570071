"""Time ``import timm`` and ``import se_zoo``, each in a fresh interpreter.

Usage::

    python scripts/bench_imports.py [--repeats 10] [--json] [--plot FILE.png]

Rounds interleave a bare interpreter (``python -c pass``), ``import timm`` and
``import se_zoo``, after one untimed round that warms the file cache. The cost of
an import is its wall time minus the bare interpreter's in the same round.
se-zoo's auto-registration hook is switched off (``SE_ZOO_AUTOREGISTER=0``),
else ``import timm`` would import se-zoo too.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List

from se_zoo.bench import BenchConfig, format_table, save_plot
from se_zoo.bench.config import check_int
from se_zoo.bench.timing import _machine, _paired_ratio

_IMPORTS = (("python", "pass"), ("timm", "import timm"), ("se_zoo", "import se_zoo"))


def bench_imports(repeats: int = 10, log: Callable[[str], None] = lambda msg: None) -> Dict[str, Any]:
    """Time the imports of :data:`_IMPORTS`, each in a fresh interpreter.

    Args:
        repeats: Timed rounds (>= 1).
        log: Receives progress messages.

    Returns:
        A JSON-ready dict: ``mode`` (``"imports"``), ``config``, ``machine`` and per
        module its median ``wall_ms``, ``import_ms`` (bare interpreter subtracted)
        and ``ratio`` to timm's import cost (median of per-round ratios).

    Raises:
        ValueError: if ``repeats`` is not an integer >= 1.
        RuntimeError: if an import fails.
    """
    check_int("repeats", repeats, 1)
    machine = _machine(BenchConfig())
    env = dict(os.environ, SE_ZOO_AUTOREGISTER="0")
    samples: Dict[str, List[float]] = {label: [] for label, _ in _IMPORTS}
    for r in range(repeats + 1):
        for label, code in _IMPORTS:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"`{code}` failed: {proc.stderr.strip()[-2000:]}")
            if r:
                samples[label].append(elapsed)
        log(f"round {r}/{repeats}" + (" (warm-up)" if not r else ""))
    bare = samples["python"]
    cost = {label: [t - b for t, b in zip(samples[label], bare)] for label, _ in _IMPORTS}
    result: Dict[str, Any] = {
        "mode": "imports", "config": {"repeats": repeats}, "machine": machine, "candidates": [{
            "label": label, "code": code,
            "wall_ms": statistics.median(samples[label]) * 1e3,
            "import_ms": statistics.median(cost[label]) * 1e3,
            "ratio": None if label == "python" else _paired_ratio(cost[label], cost["timm"]),
            "samples_ms": [t * 1e3 for t in samples[label]],
        } for label, code in _IMPORTS]}
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    return result


def main() -> int:
    """Parse the command line, run the rounds and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (default: 10)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--plot", metavar="FILE.png", help="also save a bar chart (needs matplotlib)")
    args = parser.parse_args()
    result = bench_imports(args.repeats, lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    if args.plot:
        save_plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
