"""Blob integrity on the read path: a blob whose bytes no longer hash to its name is never served whole.

A blob is verified (its whole content hashed) once per change of its file: the result is kept in
memory, keyed by the file's size, mtime, ctime, inode and device, and a download whose record is
current costs no hashing. A full download of a blob without a current record hashes while it
streams and holds back its last chunk until the digest is known; a range request of such a blob
first verifies the whole blob (a part cannot be checked on its own).

A blob found damaged is quarantined: ``quarantine/<sha256>.json`` under the root records when and
what was found, and the key of the file found damaged (the blob itself is left in place for
``se-zoo hub fsck`` and its owner). Every later request for it is refused until the file changes (is
repaired, e.g. by ``se-zoo hub fsck --repair``) and verifies again: by this process from its memory,
by every other process on the root from the record (read when its own memory says "intact").
Bit rot that leaves the file's metadata alone is found by ``fsck``, which hashes every blob, and by
the server's periodic scrub (``se_zoo.registry.store.scrub``).
"""
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

from .storage import CHUNK_SIZE, atomic_write, now_iso

__all__ = ["BlobDamaged", "BlobIntegrity", "QUARANTINE_DIR"]

QUARANTINE_DIR = "quarantine"
logger = logging.getLogger(__name__)

FileKey = Tuple[int, int, int, int, int]


class BlobDamaged(Exception):
    """A blob's bytes do not hash to its sha256 (it is quarantined)."""


def file_key(path: Path) -> FileKey:
    """What changes whenever the file at ``path`` is written, replaced or touched.

    Raises:
        FileNotFoundError: if there is no such file.
    """
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


class BlobIntegrity:
    """Verification records of one process's blobs (see the module docstring).

    Args:
        root: The registry root (holds ``blobs/`` and ``quarantine/``).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._records: Dict[str, Tuple[FileKey, bool]] = {}
        self._lock = threading.Lock()

    def status(self, sha256: str, path: Path) -> Tuple[FileKey, Optional[bool]]:
        """The blob file's current key and what is known of it: True (verified), False (damaged), None.

        Raises:
            FileNotFoundError: if the blob is missing.
        """
        key = file_key(path)
        with self._lock:
            record = self._records.get(sha256)
        known = record[1] if record is not None and record[0] == key else None
        if known is not False and self._quarantined_as(sha256, key):  # found damaged by another process
            known = False
        return key, known

    def record(self, sha256: str, path: Path, key: FileKey, digest: str) -> bool:
        """Record the outcome of hashing the blob file whose key was ``key`` when the hashing began.

        Quarantines the blob when ``digest`` is not ``sha256``; records nothing when the file
        changed while it was read (a repair in progress: the next request verifies again).

        Returns:
            Whether the blob is intact.
        """
        intact = digest == sha256
        if not intact:
            self._quarantine(sha256, digest, key)
        try:
            unchanged = file_key(path) == key
        except FileNotFoundError:
            unchanged = False
        if unchanged:
            with self._lock:
                self._records[sha256] = (key, intact)
        return intact

    def verify(self, sha256: str, path: Path) -> None:
        """Hash the whole blob unless a current record says it is intact (blocking: run in a thread).

        Raises:
            BlobDamaged: if the blob's bytes do not hash to ``sha256``.
            FileNotFoundError: if the blob is missing.
        """
        key, known = self.status(sha256, path)
        if known is None:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_SIZE):
                    digest.update(chunk)
            known = self.record(sha256, path, key, digest.hexdigest())
        if not known:
            raise BlobDamaged(damaged_message(sha256))

    def _quarantined_as(self, sha256: str, key: FileKey) -> bool:
        """Whether a quarantine record names the blob file with this very key (one failed open otherwise)."""
        try:
            with open(self.root / QUARANTINE_DIR / f"{sha256}.json", "rb") as f:
                return json.loads(f.read()).get("key") == list(key)
        except (OSError, ValueError, AttributeError):
            return False

    def _quarantine(self, sha256: str, digest: str, key: FileKey) -> None:
        logger.error("Blob %s hashes to %s: quarantined, not served; run `se-zoo hub fsck --repair`.",
                     sha256, digest)
        record = {"sha256": sha256, "found_sha256": digest, "size": key[0], "key": list(key), "date": now_iso()}
        folder = self.root / QUARANTINE_DIR
        folder.mkdir(exist_ok=True)
        atomic_write(folder / f"{sha256}.json", json.dumps(record, indent=1).encode())


def damaged_message(sha256: str) -> str:
    """What a client is told about a damaged blob."""
    return (f"The stored bytes of blob {sha256} do not match its sha256; it is quarantined and not served "
            f"(the operator's `se-zoo hub fsck` reports it).")


def quarantine_records(root: Path) -> Dict[str, dict]:
    """The quarantine records under ``root``, by sha256 (unreadable ones map to ``{}``)."""
    records = {}
    for path in sorted((Path(root) / QUARANTINE_DIR).glob("*.json")):
        try:
            records[path.stem] = json.loads(path.read_bytes())
        except (OSError, ValueError):
            records[path.stem] = {}
    return records
