"""The per-file size cap and the optional per-namespace quota, checked before bytes are accepted.

A namespace's usage is the total size of the distinct blobs its repositories' commits reference
(history included: those bytes stay stored). An upload is refused (413, naming the cap) when a
file is over ``max_file_size`` or when usage plus the new bytes would exceed ``quota``; the check
runs when the LFS batch announces objects, again when their bytes are sent, and when a commit
carries regular files.
"""
from dataclasses import dataclass
from typing import Iterable, Optional

from ..errors import PayloadTooLarge
from .storage import Store, blobs_referenced_by


def namespace_usage(store: Store, namespace: str) -> int:
    """Bytes of the distinct blobs referenced by every commit of every repository of ``namespace``."""
    commits = [c for d in store.repo_dirs() if d.parent.name.lower() == namespace.lower()
               for c in (d / "commits").glob("*.json")]
    total = 0
    for sha in blobs_referenced_by(commits):
        try:
            total += store.blob_path(sha).stat().st_size
        except FileNotFoundError:
            continue
    return total


def check_upload(store: Store, namespace: str, sizes: Iterable[int], max_file_size: int,
                 quota: Optional[int]) -> None:
    """Refuse new content of the given sizes for ``namespace`` if it breaks a cap (blocking: disk scan).

    Args:
        store: The store.
        namespace: The namespace the content goes to.
        sizes: The sizes of the new files (already stored blobs excluded).
        max_file_size: The largest file accepted, in bytes.
        quota: The most bytes one namespace may hold, or ``None`` for no quota.

    Raises:
        PayloadTooLarge: naming the cap that would be exceeded.
    """
    sizes = list(sizes)
    for size in sizes:
        if size > max_file_size:
            raise PayloadTooLarge(f"A file of {size} bytes is over this registry's maximum file size of "
                                  f"{max_file_size} bytes (--max-file-size).")
    if quota is not None and sizes:
        used = namespace_usage(store, namespace)
        if used + sum(sizes) > quota:
            raise PayloadTooLarge(f"Namespace {namespace!r} uses {used} bytes; {sum(sizes)} more would exceed "
                                  f"its quota of {quota} bytes (--quota).")


@dataclass(frozen=True)
class UploadCaps:
    """The caps every upload path (LFS, commits, Xet, the mirror) checks new content against.

    Attributes:
        store: The store the content goes to.
        max_file_size: The largest file accepted, in bytes.
        quota: The most bytes one namespace may hold, or ``None`` for no quota.
    """

    store: Store
    max_file_size: int
    quota: Optional[int]

    def check(self, namespace: str, sizes: Iterable[int]) -> None:
        """``check_upload`` with these caps (blocking: it may scan the disk).

        Raises:
            PayloadTooLarge: naming the cap that would be exceeded.
        """
        check_upload(self.store, namespace, sizes, self.max_file_size, self.quota)
