"""Registries for the mirror tests: an upstream with a transfer spy, the registry CLI, and what a registry shows.

Torch-free (the registry's tests use it, as do the model-side loads through a mirror).
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from helpers.hub import READ_TOKEN, WRITE_TOKEN

from se_zoo.registry.app import HubServer
from se_zoo.registry.mirror.upstream import Upstream

_RESOLVE_AT_COMMIT = re.compile(r"/resolve/[0-9a-f]{40}/")


class UpstreamSpy:
    """ASGI middleware on the upstream: counts file transfers, can delay them and can announce Xet."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        transfer = scope["method"] == "GET" and _RESOLVE_AT_COMMIT.search(path)
        if transfer:
            self.state["transfers"].append(path)
            time.sleep(0)  # keep the event loop fair
            if self.state.get("delay"):
                import anyio
                await anyio.sleep(self.state["delay"])
        if not self.state.get("xet"):
            return await self.app(scope, receive, send)
        return await self.app(scope, receive, _XetAnnouncer(send, path, scope).send)


class _XetAnnouncer:
    """Adds what the client reacts to for Xet: ``X-Xet-Hash`` + refresh route headers, ``xetHash`` fields."""

    def __init__(self, send, path, scope):
        self._send, self._path = send, path
        self._json = path.startswith("/api/models/")
        self._body = b""
        self._start = None
        host = dict(scope["headers"]).get(b"host", b"").decode()
        self._refresh = f"http://{host}/api/models/x/y/xet-read-token/main"

    async def send(self, message):
        if message["type"] == "http.response.start":
            headers = list(message["headers"])
            if "/resolve/" in self._path:
                headers += [(b"x-xet-hash", b"a" * 64), (b"x-xet-refresh-route", self._refresh.encode()),
                            (b"link", f'<{self._refresh}>; rel="xet-auth"'.encode())]
            message = {**message, "headers": headers}
            if self._json:
                self._start = message
                return
            return await self._send(message)
        if not self._json:
            return await self._send(message)
        self._body += message.get("body", b"")
        if message.get("more_body"):
            return
        body = self._body
        try:
            data = json.loads(body)
            for entry in data if isinstance(data, list) else data.get("siblings", []):
                if isinstance(entry, dict) and ("lfs" in entry or entry.get("type") == "file"):
                    entry["xetHash"] = "b" * 64
            body = json.dumps(data).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in self._start["headers"] if k.lower() != b"content-length"]
        await self._send({**self._start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await self._send({"type": "http.response.body", "body": body})


def serve(root: Path, upstream: str = None, spy: dict = None, **kwargs) -> HubServer:
    up = Upstream(upstream, WRITE_TOKEN, ttl=kwargs.pop("ttl", 60.0)) if upstream else None
    server = HubServer(root, {WRITE_TOKEN: "write", READ_TOKEN: "read"}, upstream=up, **kwargs)
    if spy is not None:
        spy.setdefault("transfers", [])
        server.app.add_middleware(UpstreamSpy, state=spy)
    return server.start()


def run_cli(*args, env=None) -> str:
    # `python -m se_zoo.registry` is `se-zoo hub` without the model side's start-up time
    done = subprocess.run([sys.executable, "-m", "se_zoo.registry", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def tree_of(root: Path) -> dict:
    """Every file under a registry root, without the lock files of the processes that used it."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".lock"}


def described(endpoint: str, repo_id: str) -> dict:
    """What a registry publishes of a repo's main branch: commit id, and each file's size and hashes."""
    info = httpx2.get(f"{endpoint}/api/models/{repo_id}?blobs=1").json()
    return {"sha": info["sha"], "files": sorted((s["rfilename"], s["size"], s["blobId"], s.get("lfs", {}).get("sha256"))
                                               for s in info["siblings"])}
