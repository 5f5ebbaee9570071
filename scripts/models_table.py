"""Generate the models table of README.md and docs/models.md from the registry and ``weights/``.

Usage::

    python scripts/models_table.py          # rewrite both files
    python scripts/models_table.py --check  # exit 1 if either file is stale

Params are counted and MACs traced (``se_zoo.models.stats``, train mode) on the
``meta`` device (no memory, no compute), at each architecture's default input
size, 1000 classes.
"""
import argparse
import sys
from functools import lru_cache
from pathlib import Path
from typing import Dict, List

import timm

import se_zoo
from se_zoo.models.stats import model_stats
from se_zoo.pretrained.catalog import find_record

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- models-table:start -->", "<!-- models-table:end -->"
TARGETS = (ROOT / "README.md", ROOT / "docs" / "models.md")


@lru_cache(maxsize=None)
def architecture_row(arch: str) -> Dict[str, str]:
    """Params, GMACs, tags and reported top-1 of one architecture."""
    stats = model_stats(timm.create_model(arch, device="meta"), training=True)
    tags = timm.list_pretrained(f"{arch}.*")
    top1 = [f"{r['top1']:.2f}" for r in map(find_record, tags) if r and r.get("top1") is not None]
    return {
        "Architecture": f"`{arch}`",
        "Params (M)": f"{stats['params'] / 1e6:.2f}",
        "GMACs": f"{stats['gmacs']:.2f}",
        "Input": f"{stats['input_size'][1]}",
        "Pretrained tags": ", ".join(f"`{t.split('.', 1)[1]}`" for t in tags) or "—",
        "Source top-1": " / ".join(top1) or "—",
        "timm equivalent": f"`{se_zoo.TIMM_EQUIVALENTS[arch]}`",
    }


def render() -> str:
    """The table as Markdown."""
    archs = [a for a in timm.list_models("se_zoo_*") if a in se_zoo.TIMM_EQUIVALENTS]  # natural order
    rows: List[Dict[str, str]] = [architecture_row(a) for a in archs]
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row[h] for h in header) + " |" for row in rows]
    return "\n".join(lines)


def splice(text: str, table: str, path: Path) -> str:
    """Replace the marked section of ``text`` with ``table``."""
    if START not in text or END not in text:
        raise ValueError(f"{path} must contain the markers {START!r} and {END!r}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def stale_files(table: str) -> List[Path]:
    """The target files whose marked section differs from ``table``."""
    return [path for path in TARGETS if splice(path.read_text(), table, path) != path.read_text()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is stale instead of writing it")
    args = parser.parse_args(argv)
    table = render()
    stale = stale_files(table)
    if not args.check:
        for path in stale:
            path.write_text(splice(path.read_text(), table, path))
    elif stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"models table is stale in {names}; run: python scripts/models_table.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
