"""The periodic scrub: every blob re-hashed in the background, so damage is found without a request.

Bit rot that leaves a blob file's size, mtime and inode alone goes unnoticed by the read path, which
trusts a verification until the file changes (``se_zoo.registry.store.integrity``). ``se-zoo hub
serve --scrub-interval SECONDS`` starts a pass over every blob of the root once the server listens,
and a new one every SECONDS after the previous one started (right after it ends, if it took longer).

One thread hashes one blob at a time and reads at most ``rate`` bytes per second (``--scrub-rate``,
64 MiB/s by default), sleeping between reads, so requests keep the rest of the disk and the CPUs
(hashing and reading release the GIL; requests are never waited on). A blob that no longer hashes
to its name is quarantined through the server's ``BlobIntegrity``: every process on the root
refuses it from then on, ``se-zoo hub fsck`` reports it and ``fsck --repair`` restores it. An intact
blob's verdict is refreshed, so its next download streams without hashing.
"""
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Optional, Tuple

from .integrity import BlobIntegrity, file_key
from .names import SHA256
from .storage import CHUNK_SIZE

__all__ = ["DEFAULT_SCRUB_RATE", "Scrubber"]

logger = logging.getLogger(__name__)
DEFAULT_SCRUB_RATE = 64 * 1024 * 1024  # bytes per second


class Scrubber:
    """Re-hashes every blob of a root in a background thread, pass after pass (see the module docstring).

    Args:
        integrity: The server's verification records; its root holds the blobs.
        interval: Seconds from the start of one pass to the start of the next (> 0).
        rate: The most bytes read per second (> 0).

    Raises:
        ValueError: if ``interval`` or ``rate`` is not a positive number.
    """

    def __init__(self, integrity: BlobIntegrity, interval: float, rate: int = DEFAULT_SCRUB_RATE):
        for value, what in ((interval, "scrub interval (seconds)"), (rate, "scrub rate (bytes per second)")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{what} must be a number above 0, got {value!r}.")
        self.integrity, self.interval, self.rate = integrity, float(interval), rate
        self.passes = 0  # passes completed, for tests and logs
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._budget_start, self._budget_bytes = time.monotonic(), 0

    def start(self) -> "Scrubber":
        """Start the background thread (a daemon: it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._run, name="se-zoo-scrub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the read in progress and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                checked, damaged = self.scrub_pass()
                logger.info("Scrub pass: %d blobs checked, %d damaged.", checked, damaged)
            except Exception:  # noqa: BLE001 - a failed pass (e.g. the disk went away) is retried next time
                logger.exception("Scrub pass failed")
            self.passes += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def scrub_pass(self) -> Tuple[int, int]:
        """Hash every blob once, at the bounded rate, quarantining the damaged ones.

        Returns:
            ``(blobs checked, blobs found damaged)``; blobs removed meanwhile are skipped.
        """
        checked = damaged = 0
        for path in sorted((self.integrity.root / "blobs").glob("*/*")):
            if self._stop.is_set():
                break
            if not (SHA256.fullmatch(path.name) and path.parent.name == path.name[:2]):
                continue  # not a blob the store wrote: fsck reports it
            try:
                intact = self._scrub(path)
            except FileNotFoundError:
                continue  # collected as garbage meanwhile
            if intact is None:
                break
            checked += 1
            damaged += not intact
        return checked, damaged

    def _scrub(self, path: Path) -> Optional[bool]:
        """Whether the blob at ``path`` is intact; None if the scrub was stopped while reading it."""
        key = file_key(path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
                if not self._throttle(len(chunk)):
                    return None
        return self.integrity.record(path.name, path, key, digest.hexdigest())

    def _throttle(self, read: int) -> bool:
        """Sleep as long as keeps the reads at ``rate``; False once the scrub is stopped."""
        now = time.monotonic()
        if now - self._budget_start > 1.0:  # a new window: idle time between passes earns no burst
            self._budget_start, self._budget_bytes = now, 0
        self._budget_bytes += read
        ahead = self._budget_bytes / self.rate - (now - self._budget_start)
        return not self._stop.wait(ahead) if ahead > 0 else not self._stop.is_set()
