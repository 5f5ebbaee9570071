"""What a commit page shows: the files a commit changed, with a unified diff or a tensor-level diff.

Text files are diffed with ``difflib`` on their first ``MAX_DIFF_TEXT_BYTES`` (a note says when a
side was cut) and at most ``MAX_DIFF_LINES`` lines of diff are shown. ``.safetensors`` files are
compared tensor by tensor (``se_zoo.registry.web.tensors``) within one byte budget per page,
``MAX_TENSOR_DIFF_BYTES``; other binary files show their sizes. Results are cached by the blobs'
sha256: blobs never change, so a commit page costs its comparisons once per process.
"""
import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..limits import MAX_DIFF_FILES, MAX_DIFF_LINES, MAX_DIFF_TEXT_BYTES, MAX_TENSOR_DIFF_BYTES
from ..store.storage import Store
from .tensors import SafetensorsError, TensorDiff, compare

__all__ = ["FileChange", "file_changes"]

SAFETENSORS = ".safetensors"


@dataclass
class FileChange:
    """One file a commit added, modified or deleted, and how it differs.

    Attributes:
        path: The file's path.
        change: ``added``, ``modified`` or ``deleted``.
        old: The file's entry in the parent commit (``None`` when added).
        new: Its entry in the commit (``None`` when deleted).
        kind: ``text`` (``lines`` hold the diff), ``tensors`` (``tensors`` holds it), ``binary`` or
            ``skipped`` (past ``MAX_DIFF_FILES``).
        lines: ``(css class, line)`` of the unified diff: ``hunk``, ``add``, ``del`` or ``ctx``.
        notes: What was cut or could not be read.
        tensors: The tensor-level difference of a ``.safetensors`` file.
    """

    path: str
    change: str
    old: Optional[Dict[str, Any]]
    new: Optional[Dict[str, Any]]
    kind: str = "binary"
    lines: List[Tuple[str, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    tensors: Optional[TensorDiff] = None

    @property
    def added_lines(self) -> int:
        """Lines added in the shown diff."""
        return sum(1 for css, _ in self.lines if css == "add")

    @property
    def removed_lines(self) -> int:
        """Lines removed in the shown diff."""
        return sum(1 for css, _ in self.lines if css == "del")


def file_changes(store: Store, parent: Dict[str, Dict[str, Any]], files: Dict[str, Dict[str, Any]]) -> List[FileChange]:
    """The files that differ between a parent commit's files and a commit's, with their diffs.

    Args:
        store: The registry's store (blobs are read from it).
        parent: The parent commit's ``files`` (empty for a first commit).
        files: The commit's ``files``.

    Returns:
        The changes sorted by path; past ``MAX_DIFF_FILES`` they carry no diff.
    """
    paths = sorted(p for p in set(parent) | set(files) if parent.get(p) != files.get(p))
    changes, budget = [], MAX_TENSOR_DIFF_BYTES
    for index, path in enumerate(paths):
        old, new = parent.get(path), files.get(path)
        change = FileChange(path, "added" if old is None else "deleted" if new is None else "modified", old, new)
        changes.append(change)
        if index >= MAX_DIFF_FILES:
            change.kind = "skipped"
            continue
        blob = {side: store.blob_path(entry["sha256"]) if entry else None for side, entry in (("old", old),
                                                                                               ("new", new))}
        if any(b is not None and not b.exists() for b in blob.values()):
            change.notes.append("The content is not stored here yet (a mirror fetches it on first download).")
            continue
        if path.endswith(SAFETENSORS):
            try:
                change.tensors = _tensor_diff(blob["old"], blob["new"], budget)
                change.kind = "tensors"
                budget = max(0, budget - change.tensors.bytes_read)
                if change.tensors.cut:
                    change.notes.append("Values of some tensors were not compared: the page reads at most "
                                        f"{MAX_TENSOR_DIFF_BYTES // 2**20} MiB of tensors.")
            except SafetensorsError as exc:
                change.notes.append(f"Not a readable safetensors file: {exc}")
            continue
        text = _text_diff(path, blob["old"], blob["new"])
        if text is not None:
            change.kind, change.lines, notes = "text", text[0], text[1]
            change.notes.extend(notes)
    return changes


@lru_cache(maxsize=64)
def _tensor_diff(old: Optional[Path], new: Optional[Path], budget: int) -> TensorDiff:
    return compare(old, new, budget)


def _text(blob: Optional[Path]) -> Any:
    """``(text, cut)`` of a blob's first ``MAX_DIFF_TEXT_BYTES``; ``None`` without a blob; ``False`` if binary."""
    if blob is None:
        return None
    with open(blob, "rb") as f:
        head = f.read(MAX_DIFF_TEXT_BYTES + 1)
    cut = len(head) > MAX_DIFF_TEXT_BYTES
    if b"\0" in head[:8192]:
        return False
    if cut:
        head = head[:MAX_DIFF_TEXT_BYTES].rpartition(b"\n")[0]  # whole lines only
    try:
        return head.decode("utf-8"), cut
    except UnicodeDecodeError:
        return False


@lru_cache(maxsize=128)
def _text_diff(path: str, old: Optional[Path], new: Optional[Path]) -> Optional[Tuple[List[Tuple[str, str]],
                                                                                   List[str]]]:
    """``(lines, notes)`` of the unified diff of two text blobs; ``None`` when either side is binary."""
    texts = [_text(old), _text(new)]
    if any(t is False for t in texts):
        return None
    notes = [f"Only the first {MAX_DIFF_TEXT_BYTES // 1024} KiB of each side are compared."] \
        if any(t and t[1] for t in texts) else []
    sides = [t[0].splitlines() if t else [] for t in texts]
    lines: List[Tuple[str, str]] = []
    diff = difflib.unified_diff(sides[0], sides[1], f"a/{path}", f"b/{path}", lineterm="", n=3)
    for index, line in enumerate(diff):
        if index < 2:
            continue  # the "---"/"+++" file names: the page shows the path
        if len(lines) >= MAX_DIFF_LINES:
            notes.append(f"The diff is cut after {MAX_DIFF_LINES} lines.")
            break
        css = "hunk" if line.startswith("@@") else {"+": "add", "-": "del"}.get(line[:1], "ctx")
        lines.append((css, line))
    return lines, notes
