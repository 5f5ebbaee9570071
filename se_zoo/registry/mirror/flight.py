"""Single-flight blob downloads that several responses read while the bytes arrive.

The first request for a missing blob starts one download in a thread of its own (it outlives the
request that started it); every concurrent request for that blob joins the same flight and streams
the part already written, then the rest as it arrives. The last byte is held back until the whole
file was verified, so no client ever receives a complete copy of bytes that failed the check: on a
mismatch every reader's connection is cut short, nothing is kept, and the failure is remembered
for a short while so that the clients' retries get the error itself.
"""
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Callable, Dict, Optional, Tuple

import anyio

from ..store.storage import CHUNK_SIZE, HubError, Store
from .upstream import UpstreamError

__all__ = ["Flight", "Flights", "as_hub_error", "read_flight"]

logger = logging.getLogger(__name__)
FAILURE_MEMORY_S = 30.0


class Flight:
    """One download in progress: its part file, how much of it is written, and how it ended."""

    def __init__(self, part: Path, final: Path, size: int):
        self.part, self.final, self.size = part, final, size
        self.written = 0
        self.done = False
        self.error: Optional[BaseException] = None
        self._cond = threading.Condition()

    def advance(self, written: int) -> None:
        """Publish that ``written`` bytes are in the part file."""
        with self._cond:
            self.written = written
            self._cond.notify_all()

    def finish(self, error: Optional[BaseException]) -> None:
        """End the flight: move the verified part into place, or drop it and record ``error``."""
        with self._cond:
            try:
                if error is None:
                    self.final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(self.part, self.final)
            except OSError as exc:
                logger.error("Could not store mirrored blob %s: %s", self.final.name, exc)
                error = exc
            if error is not None:
                self.part.unlink(missing_ok=True)
                self.error = error
            self.done = True
            self._cond.notify_all()

    def open(self):
        """Open the file for reading: the part while in flight, the stored blob once done."""
        with self._cond:
            return open(self.final if self.done and self.error is None else self.part, "rb")

    def wait(self, beyond: int, timeout: float = 1.0) -> Tuple[int, bool, Optional[BaseException]]:
        """Wait until more than ``beyond`` bytes are written or the flight ended.

        Returns:
            ``(written, done, error)``.
        """
        with self._cond:
            if self.written <= beyond and not self.done:
                self._cond.wait(timeout)
            return self.written, self.done, self.error


class Flights:
    """The downloads in progress in one store, keyed by sha256.

    Args:
        store: Where verified blobs go (``blobs/``) and parts are written (``tmp/``).
    """

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._flights: Dict[str, Flight] = {}
        self._failures: Dict[str, Tuple[float, HubError]] = {}
        self.started = 0  # downloads started, for tests and logs

    def recent_failure(self, sha256: str) -> Optional[HubError]:
        """The error of a download of this blob that failed in the last 30 seconds, if any."""
        with self._lock:
            failed = self._failures.get(sha256)
        return failed[1] if failed and time.monotonic() - failed[0] < FAILURE_MEMORY_S else None

    def join(self, sha256: str, size: int, download: Callable[[Flight], None]) -> Flight:
        """The flight for ``sha256``, starting ``download(flight)`` in a new thread if none is running.

        ``download`` writes the part file, calls ``flight.advance`` as bytes arrive, verifies them and
        raises on any failure; ``finish`` is called for it.
        """
        with self._lock:
            flight = self._flights.get(sha256)
            if flight is not None:
                return flight
            part = self.store.root / "tmp" / f"mirror-{uuid.uuid4().hex}.part"
            part.touch()
            flight = self._flights[sha256] = Flight(part, self.store.blob_path(sha256), size)
            self.started += 1
        threading.Thread(target=self._run, args=(sha256, flight, download), daemon=True,
                         name=f"se-zoo-mirror-{sha256[:12]}").start()
        return flight

    def _run(self, sha256: str, flight: Flight, download: Callable[[Flight], None]) -> None:
        error: Optional[BaseException] = None
        try:
            download(flight)
        except BaseException as exc:  # noqa: BLE001 - every failure must end the flight for its readers
            error = exc
            logger.warning("Mirror download of blob %s failed: %s", sha256, exc)
        flight.finish(error)
        with self._lock:
            del self._flights[sha256]
            if flight.error is not None:
                self._failures[sha256] = (time.monotonic(), as_hub_error(flight.error))
            else:
                self._failures.pop(sha256, None)


def as_hub_error(error: BaseException) -> HubError:
    """A failed download's error as clients are answered: a ``HubError`` as it is (an unreachable
    upstream is ``UpstreamUnavailable``, 504), anything else as ``UpstreamError`` (502)."""
    return error if isinstance(error, HubError) else UpstreamError(str(error))


async def read_flight(flight: Flight) -> AsyncIterator[bytes]:
    """The bytes of ``flight`` as they arrive; the last one only after the whole file was verified.

    Raises:
        The flight's error (cutting the response short) if the download failed.
    """
    sent = 0
    handle = await anyio.to_thread.run_sync(flight.open)
    try:
        while flight.size == 0 and not flight.done:  # nothing to hold back: wait for the verdict
            await anyio.to_thread.run_sync(flight.wait, 0)
        if flight.error is not None:
            raise flight.error
        while sent < flight.size:
            written, done, error = await anyio.to_thread.run_sync(flight.wait, sent)
            if error is not None:
                raise error
            limit = flight.size if done else min(written, flight.size - 1)
            while sent < limit:
                chunk = await anyio.to_thread.run_sync(handle.read, min(CHUNK_SIZE, limit - sent))
                if not chunk:
                    raise RuntimeError(f"Blob part {flight.part.name} is shorter than announced.")
                sent += len(chunk)
                yield chunk
    finally:
        handle.close()
