"""``se-zoo hub fsck``: check a registry root and, with ``--gc``, remove its garbage.

Checked: every blob's sha256 against its name (and the blobs the server quarantined on a read,
``se_zoo.registry.store.integrity``: reported while damaged, their record is garbage once the blob
verifies again), every commit file (parses, its id is the sha1 of
its content, its parents and blobs exist) and every ref (points to a stored commit).
Garbage: blobs no commit of any repository references (left by uploads that never became a
commit, or by killed processes) and temporary files of processes that are gone.

Safe on a live root: a blob is removed only if it is older than the grace period (default one
hour, the lifetime of an upload URL) and under the store's blob lock, which commits hold while
they check and touch the blobs they reference; temporary folders are removed only when their
owner's lock can be taken (``se_zoo.registry.store.locking``).

``--repair`` (``se_zoo.registry.mirror.repair``) restores the damaged blobs this check lists in
``FsckReport.damaged``: from the root's Xet data, else from an upstream.

Top-level directories owned by other parts of the registry are listed in ``IGNORED_DIRS``; fsck
neither checks nor removes anything under them (add a directory there when a new subsystem keeps
its own data under the root).
"""
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Set

from .integrity import QUARANTINE_DIR, quarantine_records
from .scans import SCANS_DIR
from .locking import STALE_AFTER, blob_lock, remove_dead_temporaries
from .names import COMMIT_ID, REPO_PART, SHA256
from .storage import CHUNK_SIZE, dump_json, blobs_referenced_by
from ..xet.gc import check_xet

IGNORED_DIRS = ("xet",)  # Xet CAS data (<root>/xet/): checked by se_zoo.registry.xet.gc, called below
# what se_zoo.registry.store.storage (and .integrity) keep
STORE_ENTRIES = ("blobs", "tmp", "repos", "locks", "signing.key", QUARANTINE_DIR, SCANS_DIR)


@dataclass
class FsckReport:
    """What ``fsck`` found (``problems``) and what it removed or would remove (``garbage``).

    ``damaged`` maps the sha256 of each damaged or quarantined blob to its lines in ``problems``;
    ``se_zoo.registry.mirror.repair`` fills ``repaired`` and ``unrepairable`` (one line per blob) and
    drops the problems of the blobs it restored.
    """

    blobs: int = 0
    commits: int = 0
    problems: List[str] = field(default_factory=list)
    garbage: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    damaged: Dict[str, List[str]] = field(default_factory=dict)
    repaired: List[str] = field(default_factory=list)
    unrepairable: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        """A human-readable report, one finding per line."""
        out = [f"checked {self.blobs} blobs and {self.commits} commits"]
        out += [f"problem: {p}" for p in self.problems]
        out += [f"removed: {g}" for g in self.removed]
        out += [f"garbage: {g}" for g in self.garbage if g not in self.removed]
        out += [f"note: {n}" for n in self.notes]
        out += [f"repaired: {r}" for r in self.repaired]
        out += [f"unrepairable: {u}" for u in self.unrepairable]
        out.append(f"{len(self.problems)} problems, {len(self.garbage)} garbage entries, {len(self.removed)} removed")
        return out


def fsck(root: Path, gc: bool = False, grace: float = STALE_AFTER) -> FsckReport:
    """Check the store at ``root``; with ``gc`` also remove its garbage.

    Args:
        root: The registry root (as given to ``se-zoo hub serve --root``).
        gc: Remove unreferenced blobs and dead temporary files older than ``grace``.
        grace: Seconds an unreferenced blob or unowned leftover must be old before it is garbage.

    Returns:
        The report.

    Raises:
        FileNotFoundError: if ``root`` holds no registry (no ``blobs`` or ``repos`` directory).
    """
    root = Path(root).resolve()
    for sub in ("blobs", "repos"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"--root {root} is not a registry root: {sub}/ is missing.")
    report = FsckReport()
    stored = _check_blobs(root, report)
    referenced = _check_repos(root, stored, report)
    _collect_blobs(root, stored - referenced, gc, grace, report)
    _check_quarantine(root, stored, gc, report)
    for path in remove_dead_temporaries(root / "tmp", dry_run=not gc) if (root / "tmp").is_dir() else []:
        report.garbage.append(str(path))
        if gc:
            report.removed.append(str(path))
    _collect_staging(root, gc, grace, report)
    if (root / "xet").is_dir():
        _check_xet(root, referenced, gc, grace, report)
    for sha in report.damaged:  # with the commits that reference it, missing from what fsck trusts
        report.damaged[sha] = [p for p in report.problems if sha in p]
    report.notes += [f"{p.name} at the root is neither the store's nor in IGNORED_DIRS; left alone"
                     for p in sorted(root.iterdir()) if p.name not in STORE_ENTRIES + IGNORED_DIRS]
    return report


def _check_blobs(root: Path, report: FsckReport) -> Set[str]:
    stored = set()
    for path in sorted((root / "blobs").glob("*/*")):
        report.blobs += 1
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        if digest.hexdigest() != path.name or path.parent.name != path.name[:2]:
            problem = f"blob {path.relative_to(root)} has sha256 {digest.hexdigest()}"
            report.problems.append(problem)
            if SHA256.fullmatch(path.name) and path.parent.name == path.name[:2]:
                report.damaged.setdefault(path.name, []).append(problem)
        else:
            stored.add(path.name)
    return stored


def _check_quarantine(root: Path, stored: Set[str], gc: bool, report: FsckReport) -> None:
    """Report the blobs the server refused to serve; a record whose blob verifies now is garbage."""
    for sha, record in quarantine_records(root).items():
        entry = f"{QUARANTINE_DIR}/{sha}.json"
        if sha in stored:
            report.garbage.append(entry)
            if gc:
                (root / entry).unlink(missing_ok=True)
                report.removed.append(entry)
        else:
            when, found = record.get("date", "?"), record.get("found_sha256", "?")
            problem = (f"blob blobs/{sha[:2]}/{sha} quarantined by the server on {when}: its bytes hashed "
                       f"to {found}; restore it from a copy (`fsck --repair` fetches it from an upstream)")
            report.problems.append(problem)
            if SHA256.fullmatch(sha):
                report.damaged.setdefault(sha, []).append(problem)


def _check_repos(root: Path, stored: Set[str], report: FsckReport) -> Set[str]:
    referenced: Set[str] = set()
    for repo_dir in sorted((root / "repos").glob("*/*")):
        if not repo_dir.is_dir() or not (REPO_PART.fullmatch(repo_dir.name)
                                         and REPO_PART.fullmatch(repo_dir.parent.name)):
            continue  # staging folders, see _collect_staging
        repo = f"{repo_dir.parent.name}/{repo_dir.name}"
        commit_files = sorted((repo_dir / "commits").glob("*.json"))
        ids = {p.stem for p in commit_files}
        try:
            mirrored = bool(json.loads((repo_dir / "repo.json").read_bytes()).get("mirror"))
        except (OSError, ValueError, AttributeError):
            mirrored = False  # reported below
        for path in commit_files:
            report.commits += 1
            report.problems += [f"{repo}: commit {path.stem}: {p}"
                                for p in _commit_problems(path, ids, stored, mirrored)]
        referenced |= blobs_referenced_by(commit_files)
        try:
            json.loads((repo_dir / "repo.json").read_bytes())
            refs = json.loads((repo_dir / "refs.json").read_bytes())
            targets = {**refs["branches"], **{f"tag {t}": c for t, c in refs["tags"].items()}}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            report.problems.append(f"{repo}: repo.json or refs.json unreadable ({exc})")
            continue
        report.problems += [f"{repo}: ref {ref} points to missing commit {c}"
                            for ref, c in targets.items() if c not in ids]
    return referenced


def _commit_problems(path: Path, ids: Set[str], stored: Set[str], mirrored: bool) -> List[str]:
    """What is wrong with one commit file. A mirrored commit (see ``se_zoo.registry.mirror.adopt``) keeps its
    upstream id, may lack its parents, and has its LFS blobs fetched (and verified) on first read."""
    try:
        commit = json.loads(path.read_bytes())
        body = {k: commit[k] for k in ("parents", "files", "title", "message", "date")}
        files = commit["files"].items()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"unreadable ({exc})"]
    if mirrored:
        return [] if COMMIT_ID.fullmatch(path.stem) and commit.get("id") == path.stem else ["its id is not its name"]
    problems = []
    if not COMMIT_ID.fullmatch(path.stem) or commit.get("id") != path.stem \
            or hashlib.sha1(dump_json(body)).hexdigest() != path.stem:
        problems.append("its id is not the sha1 of its content")
    problems += [f"parent {p} is missing" for p in commit["parents"] if p not in ids]
    problems += [f"file {f!r} references missing blob {e.get('sha256')}" for f, e in files
                 if e.get("sha256") not in stored]
    return problems


def _collect_blobs(root: Path, unreferenced: Set[str], gc: bool, grace: float, report: FsckReport) -> None:
    for sha in sorted(unreferenced):
        report.garbage.append(f"blobs/{sha[:2]}/{sha}")
    if not gc:
        return
    with blob_lock(root):  # commits touch what they reference under this lock: mtimes are current
        cutoff = time.time() - grace
        for sha in sorted(unreferenced):
            path = root / "blobs" / sha[:2] / sha
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    report.removed.append(f"blobs/{sha[:2]}/{sha}")
            except FileNotFoundError:
                continue


def _collect_staging(root: Path, gc: bool, grace: float, report: FsckReport) -> None:
    """Half-created repositories (``.create-*``) and atomic-write leftovers (``.*.tmp``) of dead writers."""
    cutoff = time.time() - grace
    leftovers = [*(root / "repos").glob("*/.create-*"), *(root / "repos").glob("*/*/.*.tmp"),
                 *(root / "repos").glob("*/*/commits/.*.tmp")]
    for path in sorted(leftovers):
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        report.garbage.append(str(path.relative_to(root)))
        if gc:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            report.removed.append(str(path.relative_to(root)))


def _check_xet(root: Path, referenced: Set[str], gc: bool, grace: float, report: FsckReport) -> None:
    """Fold the Xet data's check (xorbs, shards, file reconstructions) into ``report``."""
    xet = check_xet(root, live_sha256=referenced, grace_seconds=grace, remove=gc)
    report.problems += [f"xet: {p}" for p in xet.problems]
    report.garbage += [str(p) for p in xet.garbage]
    if gc:
        report.removed += [str(p) for p in xet.garbage]
