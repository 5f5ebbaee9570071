"""Locks that hold across processes sharing one registry root, and per-process temporary folders.

Several ``se-zoo hub serve`` processes (``--workers N``, or servers on other machines mounting the
same root) may write one store. Everything that reads-then-writes shared state takes a file lock
from the ``filelock`` package under ``<root>/locks/``:

- ``repo_lock``: one per repository (keyed by its lower-cased id, since ids are unique
  case-insensitively); held while refs, settings or the repository directory change.
- ``blob_lock``: one for the whole store; held while a commit checks and marks the blobs it
  references, and while garbage collection decides which blobs to remove, so the two never race.

Each process writes its temporary files (uploads in progress, deleted repositories awaiting
removal) under ``<root>/tmp/<token>/`` and holds ``<root>/tmp/<token>.lock`` for its lifetime.
A starting process removes only the folders whose lock it can take, i.e. whose owner is gone.
"""
import os
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import ContextManager, Dict, Iterator, List

from filelock import FileLock, Timeout

STALE_AFTER = 3600.0  # seconds; unowned leftovers older than this are garbage

_thread_locks: Dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold the file lock at ``path`` (and a thread lock for it), blocking until it is free.

    The thread lock lets threads of one process queue without polling the file lock.
    """
    key = str(path)
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(key, threading.Lock())
    with thread_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path, poll_interval=0.01):
            yield


def repo_lock(root: Path, namespace: str, name: str) -> ContextManager[None]:
    """The lock of one repository, the same for every spelling of its id (see the module doc)."""
    return file_lock(root / "locks" / "repos" / namespace.lower() / f"{name.lower()}.lock")


def blob_lock(root: Path) -> ContextManager[None]:
    """The store-wide lock between commits marking blobs and garbage collection."""
    return file_lock(root / "locks" / "blobs.lock")


class ProcessTmp:
    """This process's own temporary folder ``<root>/tmp/<token>/``, locked while the process lives.

    Args:
        tmp_root: The store's ``tmp`` directory.
    """

    def __init__(self, tmp_root: Path):
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # locked under a name cleaners leave alone, then renamed (the lock stays with the file):
        # no other process can ever find <token>.lock unlocked while this one lives
        staged = tmp_root / f".{self.token}.lock.new"
        self._lock = FileLock(staged, timeout=0)
        self._lock.acquire()
        self.lock_path = tmp_root / f"{self.token}.lock"
        os.replace(staged, self.lock_path)
        self.path = tmp_root / self.token
        self.path.mkdir()

    def release(self) -> None:
        """Remove the folder and release the lock (at shutdown; the next start would do it too)."""
        if not self._lock.is_locked:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self.lock_path.unlink(missing_ok=True)
        self._lock.release()


def remove_dead_temporaries(tmp_root: Path, dry_run: bool = False) -> List[Path]:
    """Remove the temporary folders of processes that are gone, and old unowned leftovers.

    A folder ``<token>`` is removed only if ``<token>.lock`` can be locked, i.e. no live process
    holds it. Anything else in ``tmp_root`` (files of older layouts) is removed once older than
    ``STALE_AFTER`` seconds.

    Args:
        tmp_root: The store's ``tmp`` directory.
        dry_run: Only report what would be removed.

    Returns:
        The paths removed (or that would be).
    """
    removed = []
    now = time.time()
    for entry in sorted(tmp_root.iterdir()):
        if entry.suffix == ".lock":
            owned = entry.with_suffix("")
            if not owned.exists() and _is_dead(entry, dry_run):
                removed.append(entry)  # a lock whose folder is already gone
            continue
        lock = entry.with_name(entry.name + ".lock")
        if lock.exists():
            if not _is_dead(lock, dry_run, then_remove=entry):
                continue
        else:
            try:
                if now - entry.lstat().st_mtime < STALE_AFTER:
                    continue
            except FileNotFoundError:
                continue
            if not dry_run:
                _remove(entry)
        removed.append(entry)
    return removed


def _is_dead(lock_path: Path, dry_run: bool, then_remove: Path = None) -> bool:
    """Whether nobody holds ``lock_path``; if so (and not ``dry_run``) remove ``then_remove`` and it."""
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return False
    try:
        if not dry_run:
            if then_remove is not None:
                _remove(then_remove)
            lock_path.unlink(missing_ok=True)
    finally:
        lock.release()
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
