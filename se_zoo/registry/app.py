"""A local registry that speaks the Hugging Face Hub HTTP API, for offline and air-gapped use.

The official ``huggingface_hub`` client, and therefore timm's ``hf-hub:`` loading, works against it
unchanged::

    SE_ZOO_HUB_TOKEN="$WRITE_TOKEN" se-zoo hub serve --root /srv/hub   # prints http://127.0.0.1:PORT
    export HF_ENDPOINT=http://127.0.0.1:PORT HF_TOKEN="$WRITE_TOKEN"
    hf upload my-org/my-model ./checkpoint_dir
    python -c "import timm; timm.create_model('hf-hub:my-org/my-model', pretrained=True)"

With ``hf_xet`` installed the client uploads through Xet storage without asking the server; the
registry serves that protocol too (token exchange and CAS v1, see ``se_zoo.registry.xet.service``) and
turns each Xet-uploaded file into a normal blob at commit. Downloads use HTTP unless
``registry.xet.announce_downloads`` is set.

API subset (model repositories; ``repo_type`` dataset/space/kernel gets a 400):

- ``POST /api/repos/create``, ``DELETE /api/repos/delete``, ``PUT /api/models/{id}/settings``
  (``private``/``visibility``), ``GET /api/whoami-v2``, ``POST /api/validate-yaml``
- ``GET /api/models`` (``author``, ``search``, ``filter``, ``sort``, ``direction``, ``limit``, ``full``;
  see ``se_zoo.registry.api.listing``)
- ``GET /api/models/{id}[/revision/{rev}]`` (``blobs=1`` adds sizes, blob ids and LFS sha256)
- ``GET /api/models/{id}/tree/{rev}[/{path}]`` (``recursive``, ``expand``, ``limit``), paged like the Hub's:
  at most 1,000 entries (50 with ``expand``) and a ``Link: <...?cursor=...>; rel="next"`` header;
  ``POST .../paths-info/{rev}``
- ``GET .../refs``, ``GET .../commits/{rev}``, ``POST|DELETE .../branch/{b}``,
  ``POST .../tag/{rev}`` and ``DELETE .../tag/{t}``
- ``GET .../xet-write-token/{rev}``, ``GET .../xet-read-token/{rev}`` and the Xet CAS API under ``/v1/``
- the commit path: ``POST .../preupload/{rev}`` -> Xet upload, or ``POST /{id}.git/info/lfs/objects/batch``
  (``basic`` transfer) -> ``PUT`` to the signed URL it returns (sha256 and size verified while
  receiving) -> ``POST /{id}.git/info/lfs/objects/verify`` -> ``POST .../commit/{branch}`` (NDJSON)
- ``HEAD|GET /{id}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (git blob id, or sha256 for
  LFS files, also in ``X-Linked-Etag``/``X-Linked-Size``), ``Content-Length``, single ``Range``
  requests (206/416, ``If-Range`` honoured); verified blobs go out by ``sendfile``, or through
  nginx with ``accel_redirect`` (``X-Accel-Redirect``, see ``se_zoo.registry.api.files``). A branch
  or tag answers 302 to the same file at its commit, so the download gets the exact version the
  metadata described even if the branch moves in between.

Web pages for people (model list, cards, curves, files, history) share the port: see
``se_zoo.registry.web``.

Revisions are branch names, tags or full 40-digit commit ids. Not served: pull requests, gated
repos, ``.gitignore`` filtering at preupload, ``expand`` details (last commit, security scans),
multipart LFS uploads, pagination of ``GET /api/models`` (one page, cut to ``limit``).

Storage and atomicity are described in ``se_zoo.registry.store.storage``: blobs content-addressed by sha256,
immutable commit files, refs replaced atomically, one file lock per repository shared by every
process on the root (``se_zoo.registry.store.locking``). Uploads and downloads stream in fixed-size
chunks, so memory does not grow with file size. Every input is bounded (``se_zoo.registry.limits``)
and work that grows with it runs in worker threads, off the event loop.

Security: tokens come from ``SE_ZOO_HUB_TOKEN`` (write) or a tokens file (see
``se_zoo.registry.cli``) and compared through their sha256, never stored, logged or echoed. Anyone
may read public repositories; any valid token may read private ones, and a private repository is a
404 to everyone else; writes need a write token (401 without one, 403 with a read token);
``se_zoo.registry.auth`` decides all of it. With no token configured the registry is read-only. LFS
uploads go to URLs signed for one object with a key kept in the root (shared by its processes) that
expire after an hour; the access log drops query strings so signatures never reach it. Repository
ids, branch/tag names and file paths are validated (no ``..``, absolute paths, backslashes or empty
segments), and every path on disk is built from validated names or hex digests, so nothing is
written outside the root. Malformed requests get a 4xx JSON ``{"error": ...}`` with
``X-Error-Code``/``X-Error-Message`` headers as the Hub sends; an unexpected failure is logged and
answered with a generic 500, never a traceback.

This module builds the parts and serves them: ``Registry`` wires the store, ``Auth``, the API
handlers (``se_zoo.registry.api``), the mirror, Xet and the pages into the route table
(``se_zoo.registry.routes``); ``create_app`` makes it an ASGI app and ``HubServer`` runs it with
uvicorn (httptools parser, asyncio loop, a protocol that caps request heads and offers zero-copy
send), in one process or several (``se_zoo.registry.workers``).
"""
import asyncio
import contextlib
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, List, Mapping, Optional

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from . import limits
from .api import CommitApi, Downloads, LfsApi, RepoApi
from .api.files import check_accel_redirect
from .api.listing import model_summary
from .auth import Auth
from .mirror.pullthrough import MirrorHook
from .mirror.upstream import Upstream
from .offload import ProcessOffload
from .routes import Router, route_table
from .store.policy import CommitPolicy
from .store.quota import UploadCaps
from .store.scrub import DEFAULT_SCRUB_RATE, Scrubber
from .store.storage import Store
from .web import WebPages
from .xet.service import XetService

__all__ = ["HubServer", "create_app", "Registry"]

logger = logging.getLogger(__name__)


class _QueryStringFilter(logging.Filter):
    """Strips query strings (they may carry upload signatures) from uvicorn's access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = args[2].split("?", 1)[0]
            record.args = tuple(args)
        return True


class Registry:
    """One registry: its store, ``Auth``, handlers and route table.

    Args:
        root: Directory of the store; created if missing.
        tokens: Maps each accepted token to ``"read"`` or ``"write"``; empty or ``None`` makes the
            registry read-only.
        upstream: An ``se_zoo.registry.mirror.upstream.Upstream`` to pull missing repos through from, or None.
        max_file_size: The largest file accepted, in bytes (the Hub's 50 GB by default).
        quota: The most bytes one namespace may hold, or ``None`` for no quota.
        commit_policy: Signed commits required and pickle scans refused
            (``se_zoo.registry.store.policy.CommitPolicy``); none by default.
        accel_redirect: The URL prefix under which a web server in front (nginx) serves the root's
            ``blobs/`` folder: blob downloads are then answered with ``X-Accel-Redirect`` and no body,
            after auth, headers and the blob's integrity are checked (see docs/hub.md); ``None``
            sends the bytes from here.

    Attributes:
        store, auth, xet, mirror, web: The parts (``xet.announce_downloads`` switches Xet downloads on).
        integrity: The downloads' blob verification records (``se_zoo.registry.store.integrity``).
        router: Answers every request from the route table.

    Raises:
        ValueError: if a token is empty or has whitespace, a permission is not read/write, a
            size limit is not a positive int, or ``accel_redirect`` is not a path ending in ``/``.
    """

    def __init__(self, root: os.PathLike, tokens: Optional[Mapping[str, str]] = None,
                 upstream: Optional[Upstream] = None,
                 max_file_size: int = limits.DEFAULT_MAX_FILE_SIZE, quota: Optional[int] = None,
                 commit_policy: Optional[CommitPolicy] = None, accel_redirect: Optional[str] = None):
        for value, what in ((max_file_size, "max_file_size"), (quota, "quota")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{what} must be a positive number of bytes, got {value!r}.")
        check_accel_redirect(accel_redirect)  # before anything is created that would need closing
        self.store = Store(root)
        self.auth = Auth(self.store, tokens)
        self._offload = ProcessOffload()
        caps = UploadCaps(self.store, max_file_size, quota)
        self.xet = XetService(self.auth, caps)
        self.mirror = MirrorHook(self.store, self.auth, upstream, commit_policy)
        self.web = WebPages(self.store, self.auth, partial(model_summary, self.store, siblings=False),
                            commit_policy.trusted if commit_policy is not None else None)
        downloads = Downloads(self.store, self.auth, self.xet, accel_redirect)
        self.integrity = downloads.integrity
        self.router = Router(route_table(
            RepoApi(self.store, self.auth, self._offload, check_namespace=self.mirror.check_namespace),
            CommitApi(self.store, self.auth, caps, self.xet, commit_policy), LfsApi(self.store, self.auth, caps),
            downloads, self.mirror, self.xet, self.web))

    def close(self) -> None:
        """Release the store's temporary folder and stop the helper process."""
        self._offload.close()
        self.store.close()


def create_app(root: os.PathLike, tokens: Optional[Mapping[str, str]] = None, **options: Any) -> Starlette:
    """The registry as an ASGI application.

    Args:
        root: Directory of the store; created if missing.
        tokens: Maps each accepted token to ``"read"`` or ``"write"``; ``None`` makes it read-only.
        **options: ``upstream``, ``max_file_size``, ``quota``, ``commit_policy`` and ``accel_redirect``,
            passed to ``Registry``.

    Returns:
        A Starlette app; its ``state.registry`` is the ``Registry`` serving it.

    Raises:
        ValueError: if a token or permission is invalid.
    """
    registry = Registry(root, tokens, **options)
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", registry.router.handle, methods=methods)])
    app.router.default = registry.router.asgi  # paths the route's pattern cannot match (e.g. a newline)
    app.state.registry = registry
    return app


def _sendfile_in_thread(out: socket.socket, in_fd: int, offset: int, count: int) -> int:
    """Send ``count`` bytes of the file ``in_fd`` from ``offset`` to ``out``, blocking; runs in a worker thread.

    ``out`` is a duplicate of the connection's socket, switched to blocking mode for the transfer (the
    event loop neither reads nor writes the connection meanwhile), so one ``sendfile`` call waits for
    room in the kernel until all is sent, without the GIL or the event loop, as a C server's worker
    does. Shutting the socket down from another thread ends it early. Closes ``out`` and ``in_fd``.

    Returns:
        The bytes sent (fewer when the file ended early).

    Raises:
        OSError: if the connection broke (``BrokenPipeError``, ``ConnectionResetError``...).
    """
    sent = 0
    with out:
        try:
            out.setblocking(True)
            while sent < count:
                n = os.sendfile(out.fileno(), in_fd, offset + sent, count - sent)
                if n == 0:  # the file ended early
                    break
                sent += n
        finally:
            out.setblocking(False)  # the file status flags are shared with the transport's socket
            os.close(in_fd)
    return sent


_THREADED_SENDFILE_MIN = 1024 * 1024  # smaller sends go out from the event loop in one or two calls
_SENDFILE_THREADS = 64  # transfers sent from threads at once, per process; more use the event loop
_sendfile_pool = ThreadPoolExecutor(_SENDFILE_THREADS, thread_name_prefix="se-zoo-sendfile")
_sendfile_slots = threading.BoundedSemaphore(_SENDFILE_THREADS)


class _ZeroCopyCycle(RequestResponseCycle):
    """uvicorn's request/response cycle plus ASGI's zero-copy send extension (``http.response.zerocopysend``).

    The file's bytes go from the page cache to the socket with ``sendfile``. A large send runs in a
    worker thread of its own (``_sendfile_in_thread``) on a duplicate of the socket while the
    transport's reading is paused, so each transfer waits for room in the kernel, like nginx's
    workers, instead of one event-loop round trip per socket buffer; a small one, or one while all
    ``_SENDFILE_THREADS`` are busy, uses ``loop.sendfile``. Bookkeeping (Content-Length, keep-alive,
    completion) stays uvicorn's, through an empty body message. A client that goes away ends the
    transfer quietly; a cancelled task (server shutdown) shuts the socket down so the thread ends.
    """

    async def send(self, message: Any) -> None:
        if message["type"] != "http.response.zerocopysend":
            return await super().send(message)
        count = message["count"]
        if not self.response_started or self.response_complete or self.chunked_encoding or \
                self.scope["method"] == "HEAD" or count > self.expected_content_length:
            raise RuntimeError("http.response.zerocopysend needs a started GET response with a Content-Length "
                               f"of at least {count} bytes left.")
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected or self.transport.is_closing():
            return
        try:
            if count >= _THREADED_SENDFILE_MIN and self.transport.get_write_buffer_size() == 0 and \
                    _sendfile_slots.acquire(blocking=False):
                try:
                    sent = await self._send_from_thread(message["file"], message["offset"], count)
                finally:
                    _sendfile_slots.release()
            else:
                sent = await asyncio.get_running_loop().sendfile(self.transport, message["file"], message["offset"],
                                                                 count)
        except (ConnectionError, asyncio.CancelledError):  # the client went away, or the server stops
            self.disconnected = True  # no response to complete, nothing to log
            self.transport.abort()
            return
        except OSError:
            if self.disconnected or self.transport.is_closing():
                return  # the client went away: nothing to report
            raise
        if self.disconnected:
            return
        if sent != count:
            raise RuntimeError(f"The file sent {sent} bytes, {count} were announced.")
        self.expected_content_length -= count
        await super().send({"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)})

    async def _send_from_thread(self, file: Any, offset: int, count: int) -> int:
        transport = self.transport
        reading = transport.is_reading()
        transport.pause_reading()
        # the thread gets its own descriptors (and closes them): the connection and the file stay open
        # for it even if the transport or the response closes theirs first
        out, in_fd = transport.get_extra_info("socket").dup(), None
        try:
            in_fd = os.dup(file.fileno())
            future = asyncio.get_running_loop().run_in_executor(_sendfile_pool, _sendfile_in_thread, out, in_fd,
                                                                offset, count)
        except BaseException:
            out.close()
            if in_fd is not None:
                os.close(in_fd)
            raise
        future.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved, always
        try:
            sent = await asyncio.shield(future)
            if reading and not transport.is_closing():
                transport.resume_reading()
            return sent
        except asyncio.CancelledError:  # the server stops and gave up waiting: end the transfer, quietly
            with contextlib.suppress(OSError):  # wakes the thread, which then ends
                out.shutdown(socket.SHUT_RDWR)
        except ConnectionError:  # the client went away
            pass
        self.disconnected = True  # no response to complete, nothing to log
        transport.abort()
        return 0


class _BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bytes of a request head still arriving capped, and zero-copy send.

    httptools buffers a header line until it ends, with no limit of its own: once more than
    ``limits.HEADER_BYTES`` arrived without the head being complete, the connection gets a 431 and
    is closed. A head that arrives whole is checked by the router (``limits.check_headers``). Each
    request's cycle offers ``http.response.zerocopysend`` (``_ZeroCopyCycle``); an app that finds
    the extension missing sends its bytes as body messages.
    """

    _in_head = True
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > limits.HEADER_BYTES and not self.transport.is_closing():
            message = f"Request headers are over the limit of {limits.HEADER_BYTES} bytes.".encode()
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
                                 b"charset=utf-8\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(message), message))
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.__class__ = _ZeroCopyCycle
        cycle.scope.setdefault("extensions", {})["http.response.zerocopysend"] = {}
        HttpToolsProtocol._start_asgi_task(self, cycle, app)  # uvicorn's, which starts the cycle's task


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Optional[Callable[[], None]]):
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
        await super().startup(sockets=sockets)
        if self._on_ready is not None and self.started:
            self._on_ready()


class HubServer:
    """The registry served by uvicorn on a loopback (or given) address.

    The socket is bound when the object is created, so ``endpoint`` is known before serving, also
    with ``port=0`` (a free port).

    Args:
        root: Directory of the store; created if missing.
        tokens: Maps each accepted token to ``"read"`` or ``"write"``; ``None`` makes it read-only.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        log_level: uvicorn's log level (``"info"`` logs each request, without query strings).
        workers: Server processes sharing the socket and the root (``run`` only; see
            ``se_zoo.registry.workers``).
        scrub_interval: Seconds between the starts of two passes of the background scrub that
            re-hashes every blob (``se_zoo.registry.store.scrub``), or None for no scrub (default). With
            several workers the parent process scrubs; the workers read its quarantine records.
        scrub_rate: The most bytes per second the scrub reads.
        **options: ``upstream``, ``max_file_size``, ``quota``, ``commit_policy`` and ``accel_redirect``
            (see ``Registry``).

    Raises:
        ValueError: if a token, permission, limit or worker count is invalid.
        OSError: if the address cannot be bound.

    Example::

        with HubServer("/tmp/hub", {"secret": "write"}).start() as server:
            print(server.endpoint)
    """

    def __init__(self, root: os.PathLike, tokens: Optional[Mapping[str, str]] = None, host: str = "127.0.0.1",
                 port: int = 0, log_level: str = "warning", workers: int = 1,
                 scrub_interval: Optional[float] = None, scrub_rate: int = DEFAULT_SCRUB_RATE, **options: Any):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}.")
        self._workers = workers
        self._make_app = partial(create_app, root, tokens, **options)
        self.app = self._make_app()  # also checks tokens and options before any worker starts
        self.registry: Registry = self.app.state.registry
        self.scrubber = Scrubber(self.registry.integrity, scrub_interval, scrub_rate) if scrub_interval else None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections; without it a
        # kept-alive client waits ~40 ms per request (Nagle's algorithm against delayed ACKs)
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        bound_port = self._socket.getsockname()[1]
        self.endpoint = f"http://[{host}]:{bound_port}" if family == socket.AF_INET6 else f"http://{host}:{bound_port}"
        self._log_level = log_level
        self._config = self._uvicorn_config(self.app)
        access_logger = logging.getLogger("uvicorn.access")
        if not any(isinstance(f, _QueryStringFilter) for f in access_logger.filters):
            access_logger.addFilter(_QueryStringFilter())
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    def _uvicorn_config(self, app: Starlette) -> uvicorn.Config:
        # httptools (C parser) with a cap on the request head; asyncio's loop, whose sendfile is zero-copy
        return uvicorn.Config(app, log_level=self._log_level, lifespan="off", timeout_graceful_shutdown=5,
                              http=_BoundedHttpToolsProtocol, loop="asyncio")

    def run(self, on_ready: Optional[Callable[[], None]] = None) -> int:
        """Serve in the foreground until interrupted (SIGINT/SIGTERM) or ``stop()``.

        Args:
            on_ready: Called once the server accepts connections.

        Returns:
            The exit status: 0, or 1 if a worker process died.
        """
        def ready() -> None:  # with workers, called in the parent once they are forked: no thread is forked
            if self.scrubber is not None:
                self.scrubber.start()
            if on_ready is not None:
                on_ready()

        try:
            if self._workers > 1:
                from .workers import run_workers

                self._socket.listen(2048)  # before forking: connections queue until a worker accepts
                return run_workers(self._workers, self._serve_worker, ready)
            self._server = _Server(self._config, ready)
            self._server.run(sockets=[self._socket])
            return 0
        finally:
            if self.scrubber is not None:
                self.scrubber.stop()

    def _serve_worker(self) -> None:
        app = self._make_app()  # its own store: own temporary folder, own lock
        try:
            _Server(self._uvicorn_config(app), None).run(sockets=[self._socket])
        finally:
            app.state.registry.close()

    def start(self, timeout: float = 30.0) -> "HubServer":
        """Serve from a background thread; returns once the server accepts connections.

        Raises:
            RuntimeError: if the server did not start within ``timeout`` seconds.
        """
        ready = threading.Event()
        self._thread = threading.Thread(target=self.run, args=(ready.set,), name="se-zoo-hub", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"The Hub server did not start within {timeout} s.")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the background thread, if any."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._socket.close()
        self.registry.close()

    def __enter__(self) -> "HubServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
