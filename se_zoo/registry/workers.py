"""``se-zoo hub serve --workers N``: N server processes sharing one listening socket and one root.

The parent binds the socket, forks the workers and waits. Each worker opens the store itself
(its own temporary folder and lock, see ``se_zoo.registry.store.locking``); what they share on disk is
serialized by file locks, and the key that signs upload URLs is stored in the root, so an upload
URL given by one worker is accepted by every other. SIGINT/SIGTERM to the parent stop every
worker. If a worker dies, the parent stops the others and exits with status 1, so the service
manager running it (systemd, a container runtime) restarts the whole set.
"""
import logging
import os
import signal
import threading
import time
from typing import Callable, Dict, Optional

logger = logging.getLogger(__name__)


def run_workers(count: int, serve: Callable[[], None], on_ready: Optional[Callable[[], None]] = None) -> int:
    """Fork ``count`` processes that each call ``serve()``, and wait for them (POSIX only).

    Args:
        count: How many worker processes (>= 1).
        serve: Runs one worker's server until it is told to stop.
        on_ready: Called in the parent once every worker is forked.

    Returns:
        0 if the workers stopped because the parent was asked to stop, else 1.

    Raises:
        ValueError: if ``count`` is not a positive int.
        OSError: if ``fork`` is not available (Windows) or fails.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"workers must be an int >= 1, got {count!r}.")
    if not hasattr(os, "fork"):
        raise OSError("--workers needs fork(); on this platform run several servers on one root instead.")
    children: Dict[int, int] = {}
    parent = os.getpid()
    for number in range(count):
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
                serve()
                status = 0
            except BaseException:
                logger.exception("Worker %d failed", number)
            finally:
                os._exit(status)
        children[pid] = number
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in list(children):
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if on_ready is not None:
        on_ready()
    while children:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            break
        children.pop(pid, None)
        if not stopping:
            logger.error("Worker process %d exited; stopping the others.", pid)
            stop(signal.SIGTERM, None)
            stopping = None  # remember that it was not asked for
    return 0 if stopping else 1


def _exit_with_parent(parent: int) -> None:
    """Stop this worker (as SIGTERM would) once its parent is gone, e.g. killed with SIGKILL."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
