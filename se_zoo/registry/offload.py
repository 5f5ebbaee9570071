"""CPU-heavy request work in a separate process, so it holds neither the event loop nor the GIL.

Worker threads keep blocking I/O off the event loop, but a long call into C code that holds the
GIL (libyaml parsing a large document, ``json.loads`` of megabytes) still stalls every other
request. Such work goes to one helper process, started on first use with the ``spawn`` method
(it imports only the torch-free registry modules) and reused after. If the helper dies, the
request gets a 503 and the next one starts a new helper.
"""
import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Optional

from .errors import HubError


class Busy(HubError):
    """The helper process failed; the client may retry."""

    status = 503


class ProcessOffload:
    """A lazily started one-process pool (see the module docstring)."""

    def __init__(self) -> None:
        self._pool: Optional[ProcessPoolExecutor] = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the helper process (``fn`` and its arguments must be picklable).

        Raises:
            Busy: (503) if the helper process died while working.
            Exception: whatever ``fn`` raised, re-raised here.
        """
        pool = self._executor()
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            raise Busy("The server's helper process stopped; retry the request.") from None

    def close(self) -> None:
        """Stop the helper process, if one was started."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
