"""Check and garbage-collect the Xet data under ``<root>/xet`` (see ``store.py`` for the layout).

``check_xet(root)`` reports problems (data a reader could trip on) and garbage (data nothing needs);
``check_xet(root, remove=True)`` also deletes the garbage. Garbage is only what is older than
``grace_seconds``, so an upload in progress (xorbs sent, shard not yet) is never collected.
"""
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Set

from .store import XetStore


@dataclass
class XetReport:
    """What ``check_xet`` found.

    Attributes:
        problems: Inconsistencies, one sentence each (a file naming a missing xorb, a xorb body of the
            wrong size...). Not repaired automatically.
        garbage: Paths nothing needs (unreferenced xorbs, dangling index entries, bodies without index).
        removed_bytes: Bytes freed when ``remove=True``.
    """

    problems: List[str] = field(default_factory=list)
    garbage: List[Path] = field(default_factory=list)
    removed_bytes: int = 0

    @property
    def clean(self) -> bool:
        """No problem and no garbage."""
        return not self.problems and not self.garbage


def _old(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def check_xet(root: Path, live_sha256: Optional[Iterable[str]] = None, grace_seconds: float = 3600,
              remove: bool = False) -> XetReport:
    """Check the Xet data of a registry and optionally delete its garbage.

    Safe to run while the registry serves: it never touches ``<root>/tmp`` and leaves alone whatever
    is younger than ``grace_seconds``.

    Args:
        root: The registry root (the directory given to ``se-zoo hub serve --root``).
        live_sha256: The sha256 of every LFS file some commit references; when given, file
            reconstructions of other files are garbage (their bytes live on as blobs if committed).
        grace_seconds: Data younger than this is never garbage (uploads in progress).
        remove: Delete the garbage found.

    Returns:
        The report.
    """
    xet = XetStore(Path(root))
    report, cutoff = XetReport(), time.time() - grace_seconds
    xorbs = set(xet.xorbs())
    referenced = _check_files(xet, report, xorbs, cutoff, None if live_sha256 is None else set(live_sha256))
    _check_xorbs(xet, report, xorbs, referenced, cutoff)
    doomed = {p.name.removesuffix(".json") for p in report.garbage}
    for kind, alive in (("chunks", xorbs - doomed), ("sha256", set(xet.files()) - doomed)):
        for entry in (xet.root / kind).glob("*/*"):
            if entry.read_text() not in alive and _old(entry, cutoff):
                report.garbage.append(entry)  # an index entry naming a xorb or file that is gone
    if remove:
        for path in report.garbage:
            try:
                report.removed_bytes += path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                pass
    return report


def _check_files(xet: XetStore, report: XetReport, xorbs: Set[str], cutoff: float,
                 live: Optional[Set[str]]) -> Set[str]:
    """Check every file reconstruction; returns the xorbs the kept ones use."""
    referenced: Set[str] = set()
    for file_hex in xet.files():
        path = xet.path_of("files", file_hex, ".json")
        entry = json.loads(path.read_bytes())
        if live is not None and entry["sha256"] not in live and _old(path, cutoff):
            report.garbage.append(path)
            continue
        for xorb_hex, _, end, _ in entry["terms"]:
            referenced.add(xorb_hex)
            if xorb_hex not in xorbs:
                report.problems.append(f"file {file_hex} names xorb {xorb_hex}, which is not stored")
            elif end > len(xet.xorb_index(xorb_hex)):
                report.problems.append(f"file {file_hex} names chunks past the end of xorb {xorb_hex}")
    return referenced


def _check_xorbs(xet: XetStore, report: XetReport, xorbs: Set[str], referenced: Set[str], cutoff: float) -> None:
    """Check xorb bodies against their index; unreferenced old xorbs and bodies without index are garbage."""
    for xorb_hex in sorted(xorbs):
        body, index = xet.xorb_path(xorb_hex), xet.path_of("xorbs", xorb_hex, ".json")
        records = xet.xorb_index(xorb_hex)
        expected = records[-1].offset + records[-1].record_size
        size = body.stat().st_size if body.exists() else -1
        if size != expected:
            report.problems.append(f"xorb {xorb_hex} body has {size} bytes, its index describes {expected}")
        elif xorb_hex not in referenced and _old(index, cutoff):
            report.garbage += [index, body]  # the index first: the xorb stops existing before its body goes
    for body in (xet.root / "xorbs").glob("*/*"):
        if body.suffix != ".json" and body.name not in xorbs and _old(body, cutoff):
            report.garbage.append(body)  # a body whose index was never written (crash mid-upload)
