"""CPU-heavy request work in a separate process, so it holds neither the event loop nor the GIL.

Worker threads keep blocking I/O off the event loop, but a long call into C code that holds the
GIL (libyaml parsing a large document, ``json.loads`` of megabytes) still stalls every other
request. Such work goes to one helper process, started on first use with the ``spawn`` method
(it imports only the torch-free registry modules) and reused after. If the helper dies, the
request gets a 503 and the next one starts a new helper.

The helper works through its queue in order, so ``run_for`` lets each client have one call queued
or running at a time: a client sending many large requests waits behind its own, and anyone else's
request waits behind at most one call per other client. ``turn`` is that per-client queue on its own,
for large work done in a worker thread (paths-info). Callers run small inputs in a worker thread at
once instead (see ``se_zoo.registry.limits.FAST_YAML_BODY`` and ``FAST_PATHS_INFO_BODY``), so those
never queue at all.
"""
import asyncio
import contextlib
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, AsyncIterator, Callable, Dict, List, Optional

from .errors import HubError


class Busy(HubError):
    """The helper process failed; the client may retry."""

    status = 503


class ProcessOffload:
    """A lazily started one-process pool (see the module docstring)."""

    def __init__(self) -> None:
        self._pool: Optional[ProcessPoolExecutor] = None
        self._lock = threading.Lock()
        self._clients: Dict[str, List[Any]] = {}  # client -> [asyncio.Lock, calls waiting or running]

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

    @contextlib.asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[None]:
        """Wait until ``client``'s earlier large calls (``run_for`` or other ``turn``) are done, then hold its turn.

        Args:
            client: Who asks (the client's address).
        """
        entry = self._clients.setdefault(client, [asyncio.Lock(), 0])  # only the event loop's thread runs this
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._clients[client]

    async def run_for(self, client: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``run(fn, *args)`` in ``client``'s turn (one call per client in the helper).

        Args:
            client: Who asks (the client's address).
            fn: As for ``run``.
            args: As for ``run``.

        Raises:
            Busy, Exception: as for ``run``.
        """
        async with self.turn(client):
            return await self.run(fn, *args)

    def close(self) -> None:
        """Stop the helper process, if one was started."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
