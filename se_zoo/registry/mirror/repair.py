"""``se-zoo hub fsck --repair``: restore the damaged and quarantined blobs ``fsck`` found, from where they came.

For each such blob, in this order:

1. a file uploaded here through Xet whose Xet data (xorbs and file reconstruction, under ``xet/``) is
   intact is rebuilt from it, locally;
2. otherwise it is fetched from an upstream by the repository, commit and path of a file that
   references it: the upstream given as ``--upstream URL``, else the origin each mirrored repository
   records in its ``repo.json`` (``"mirror"``: the ``--upstream`` of the pull-through registry that
   adopted it, or the source of ``se-zoo hub mirror``). The bytes are those of the upstream's
   ``/resolve`` URL, i.e. the file's content, which is what the store keeps (a file the upstream
   holds through Xet arrives through its HTTP bridge, and a mirror never stored anything else).

The new bytes go to a temporary file, hashed as they are written, and replace the damaged blob in
one atomic rename only if their sha256 and size match; the blob's quarantine record is then
removed. A server running on the root serves the blob again as soon as it verified it (the blob's
file changed, so its old verdict no longer applies). Safe on a live root.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set

from ..errors import HubError
from ..store.fsck import FsckReport
from ..store.integrity import QUARANTINE_DIR
from ..store.names import COMMIT_ID
from ..store.storage import Store
from ..xet.store import XetStore
from .upstream import Upstream, UpstreamUnavailable

__all__ = ["Reference", "references", "repair"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """A file of a stored commit whose content is one blob; ``origin`` is the repository's upstream, if any."""

    repo_id: str
    commit: str
    path: str
    size: int
    origin: Optional[str]


def references(store: Store, shas: Set[str]) -> Dict[str, List[Reference]]:
    """The files of every stored commit of every repository whose blob is one of ``shas``.

    Args:
        store: The registry's store.
        shas: The blobs asked about.

    Returns:
        sha256 -> its references, mirrored repositories first (unreadable commits are skipped:
        ``fsck`` reports them).
    """
    found: Dict[str, List[Reference]] = {sha: [] for sha in shas}
    for namespace, name, meta in store.list_repos():
        origin = meta.get("mirror") if isinstance(meta, dict) else None
        for path in sorted((store.root / "repos" / namespace / name / "commits").glob("*.json")):
            if not COMMIT_ID.fullmatch(path.stem):
                continue
            try:
                files = store.commit_info(namespace, name, path.stem)["files"]
                for file_path, entry in files.items():
                    if entry["sha256"] in found:
                        found[entry["sha256"]].append(Reference(f"{namespace}/{name}", path.stem, file_path,
                                                                int(entry["size"]), origin or None))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
    for refs in found.values():
        refs.sort(key=lambda r: r.origin is None)
    return found


class _Repairer:
    """One ``repair`` run: the store, its Xet data and one client per upstream endpoint.

    The token goes to one endpoint only (``token_endpoint``), never to every origin a root records.
    """

    def __init__(self, store: Store, upstream: Optional[str], token: Optional[str], token_endpoint: Optional[str]):
        self.store, self.upstream, self.token = store, upstream, token
        self.token_endpoint = (token_endpoint or "").rstrip("/")
        self.xet = XetStore(store.root, store)
        self.clients: Dict[str, Upstream] = {}
        self.unreachable: Dict[str, str] = {}  # endpoint -> why: not asked again in this run

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def from_xet(self, sha: str, size: Optional[int]) -> Optional[str]:
        """Rebuild the blob from its Xet upload; returns where it came from, or None (reasons logged)."""
        if self.xet.file_for_sha256(sha) is None:
            return None
        try:
            if self.xet.materialize(sha, size, replace=True):
                return "this root's Xet data"
        except Exception as exc:  # noqa: BLE001 - damaged xorbs may fail in any way; the upstream is next
            logger.warning("Rebuilding blob %s from its Xet upload failed: %s", sha, exc)
        return None

    def from_upstream(self, sha: str, ref: Reference, reasons: List[str]) -> Optional[str]:
        """Fetch the blob as ``ref`` upstream; returns where it came from, or None (the reason appended)."""
        endpoint = (self.upstream or ref.origin or "").rstrip("/")
        where = f"{endpoint} ({ref.repo_id}@{ref.commit[:12]} {ref.path})"
        if endpoint in self.unreachable:
            reasons.append(self.unreachable[endpoint])
            return None
        try:
            token = self.token if endpoint == self.token_endpoint else None
            client = self.clients.get(endpoint) or self.clients.setdefault(endpoint, Upstream(endpoint, token))
            with client.open_file(ref.repo_id, ref.commit, ref.path) as chunks, \
                    self.store.blob_writer(max_size=ref.size) as writer:
                for chunk in chunks:
                    writer.write(chunk)
                writer.commit(sha, ref.size, replace=True)
            return where
        except UpstreamUnavailable as exc:
            self.unreachable[endpoint] = str(exc)
            reasons.append(str(exc))
        except (HubError, ValueError) as exc:  # not found, refused, or bytes that do not verify
            reasons.append(f"{where}: {exc}")
        return None


def repair(root: Path, report: FsckReport, upstream: Optional[str] = None, token: Optional[str] = None) -> None:
    """Restore the blobs of ``report.damaged`` (see the module docstring); one line per blob in the report.

    A restored blob's problems leave ``report.problems`` and a ``repaired`` line says where its bytes
    came from; a blob that could not be restored keeps its problems and gets an ``unrepairable`` line
    with the reasons. When the root knows no upstream at all (no ``upstream`` given, no mirrored
    repository referencing a damaged blob), one ``unrepairable`` line says so for all of them.
    ``token`` is sent to ``upstream``, or without one to the origin the mirrored repositories record
    if they all record the same one; with several origins every request is anonymous.

    Args:
        root: The registry root ``report`` is about.
        report: What ``fsck`` found; updated in place.
        upstream: The endpoint to fetch from, overriding the origins mirrored repositories record.
        token: The token sent to the upstream(s), or None.

    Raises:
        CommandError: if ``upstream`` is not an http(s) URL.
    """
    if not report.damaged:
        return
    if upstream is not None:
        Upstream(upstream).close()  # checks the URL before anything is read
    store = Store(root)  # as a server opens it: temporaries of processes that are gone are removed
    try:
        refs = references(store, set(report.damaged))
        origins = {r.origin.rstrip("/") for found in refs.values() for r in found if r.origin}
        repairer = _Repairer(store, upstream, token, upstream or (origins.pop() if len(origins) == 1 else None))
        try:
            _repair_all(store, report, refs, repairer)
        finally:
            repairer.close()
    finally:
        store.close()


def _repair_all(store: Store, report: FsckReport, refs: Dict[str, List[Reference]], repairer: _Repairer) -> None:
    """The loop of ``repair``: one line per damaged blob in ``report``."""
    upstream = repairer.upstream
    no_upstream = []
    for sha in sorted(report.damaged):
        blob = f"blobs/{sha[:2]}/{sha}"
        sizes = {r.size for r in refs[sha]}
        source = repairer.from_xet(sha, sizes.pop() if len(sizes) == 1 else None)
        reasons: List[str] = []
        for ref in refs[sha] if upstream else [r for r in refs[sha] if r.origin]:
            if source is not None:
                break
            source = repairer.from_upstream(sha, ref, reasons)
        if source is not None:
            (store.root / QUARANTINE_DIR / f"{sha}.json").unlink(missing_ok=True)
            report.problems = [p for p in report.problems if p not in report.damaged[sha]]
            report.repaired.append(f"{blob} restored from {source}")
        elif not refs[sha]:
            report.unrepairable.append(f"{blob}: no commit references it, so no upstream can be asked for "
                                       "it; remove the file (nothing needs it)")
        elif not upstream and not any(r.origin for r in refs[sha]):
            no_upstream.append(sha)
        else:
            report.unrepairable.append(f"{blob}: " + "; ".join(dict.fromkeys(reasons)))
    if no_upstream:
        report.unrepairable.append(
            f"{len(no_upstream)} damaged blob(s) ({', '.join(s[:12] for s in no_upstream)}) cannot be repaired: "
            f"{store.root} has no upstream for them (they are referenced only by repositories pushed here, "
            "not mirrored, and no --upstream URL was given); restore them from a backup")
