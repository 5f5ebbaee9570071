"""Usage: take the ``hub_server`` fixture; create repos under ``f"{hub_server.namespace}/NAME"``.
The huggingface_hub client (and timm's ``hf-hub:``) then talks to a local registry with a write token,
a fresh HF cache in tmp_path and the client's defaults (uploads go through Xet);
``hub_server.read_token`` is a read-only token.

One registry serves the whole session from a background thread; each test gets its own namespace.
``spawn_hub_server`` runs one in a subprocess for tests that kill it or measure its memory.
"""
import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

WRITE_TOKEN = "hf_test_write_token"
READ_TOKEN = "hf_test_read_token"
_namespaces = itertools.count()


@dataclass
class HubTarget:
    """What a test needs to reach a registry."""

    endpoint: str
    token: str
    read_token: str
    root: Path
    namespace: str
    registry: Optional[object] = None  # the in-process se_zoo.registry.app.Registry (test hooks)
    process: Optional[subprocess.Popen] = field(default=None, repr=False)


def point_client_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, token: Optional[str], hf_home: Path) -> None:
    """Make huggingface_hub use ``endpoint`` and ``token`` with a private cache under ``hf_home``.

    The client reads most settings into ``huggingface_hub.constants`` at import time, so the
    environment alone is not enough: the constants and the module-level ``HfApi`` are patched too.
    """
    from huggingface_hub import constants, file_download, hf_api
    from huggingface_hub.utils import _cache_manager

    hub_cache = hf_home / "hub"
    env = {
        "HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hub_cache),
        "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    patched = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hub_cache), "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(hf_home / "assets"), "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"), "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_PROGRESS_BARS": True, "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
    }
    for name, value in patched.items():
        if hasattr(constants, name):  # older clients lack some (AGENT_HARNESSES_PATH, ...) and never read them
            monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
    for name in ("HUGGINGFACE_CO_URL_TEMPLATE", "HUGGINGFACE_HUB_CACHE"):  # huggingface_hub < 1.0 copies these
        if hasattr(file_download, name):
            monkeypatch.setattr(file_download, name, patched[name])
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(hub_cache))


@pytest.fixture(scope="session")
def _session_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from se_zoo.registry.app import HubServer

    server = HubServer(tmp_path_factory.mktemp("hub_root"), {WRITE_TOKEN: "write", READ_TOKEN: "read"}).start()
    yield server
    server.stop()


@pytest.fixture
def hub_server(_session_hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubTarget:
    """A local Hub registry the huggingface_hub client is pointed at, with a fresh namespace."""
    point_client_at(monkeypatch, _session_hub.endpoint, WRITE_TOKEN, tmp_path / "hf_home")
    return HubTarget(endpoint=_session_hub.endpoint, token=WRITE_TOKEN, read_token=READ_TOKEN,
                     root=_session_hub.registry.store.root, namespace=f"ns{next(_namespaces)}",
                     registry=_session_hub.registry)


def spawn_hub_server(root: Path, extra_args: List[str] = (), timeout: float = 120.0, name: str = "",
                     env: Optional[dict] = None) -> HubTarget:
    """Start ``se-zoo hub serve`` in a subprocess on a free port; stop it with ``process.kill()``.

    ``name`` tells apart the log and tokens files of several servers on one root; ``env`` adds
    environment variables.

    Raises:
        RuntimeError: if the server does not print its endpoint within ``timeout`` seconds.
    """
    tokens = root.parent / f"{root.name}{name}.tokens"
    tokens.write_text(f"{WRITE_TOKEN}:write\n{READ_TOKEN}:read\n")
    cmd = [sys.executable, "-m", "se_zoo.cli", "hub", "serve", "--root", str(root), "--tokens-file", str(tokens),
           *extra_args]
    log = root.parent / f"{root.name}{name}.log"
    with open(log, "w") as out:  # the access log also goes to stdout: a pipe could fill up and block it
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text().split("\n")[:-1]  # complete lines only
        endpoint = next((line for line in lines if line.startswith("http://")), None)
        if endpoint is not None:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"se-zoo hub serve did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return HubTarget(endpoint=endpoint, token=WRITE_TOKEN, read_token=READ_TOKEN, root=root, namespace="sub",
                     process=process)


def drop_next_download(monkeypatch: pytest.MonkeyPatch, after_bytes: int) -> dict:
    """Make the next file download of an in-process registry close its connection after ``after_bytes``.

    Wraps the blob stream the resolve handler sends (``se_zoo.registry.api.files.blob_chunks``), and
    turns off zero-copy sending (which bypasses that stream) for the test; it fires once. A test hook
    for the client's resume logic.

    Args:
        monkeypatch: The test's monkeypatch (undone after the test).
        after_bytes: How many body bytes to send before dropping the connection (>= 0).

    Returns:
        ``{"armed": bool}``: still ``True`` while no plain HTTP download has started.
    """
    from se_zoo.registry.api import files

    original, state = files.blob_chunks, {"armed": True}

    async def cut_once(path, start, length, digest=None):
        armed, state["armed"] = state["armed"], False
        sent = 0
        async for chunk in original(path, start, length, digest):
            if armed and sent + len(chunk) > after_bytes:
                yield chunk[: after_bytes - sent]
                raise ConnectionAbortedError("connection dropped on purpose by the test")
            sent += len(chunk)
            yield chunk

    monkeypatch.setattr(files, "blob_chunks", cut_once)
    monkeypatch.setattr(files, "zero_copy_offered", lambda scope: False)
    return state


def upload_through_lfs(endpoint: str, token: str, repo_id: str, filename: str, data: bytes) -> str:
    """Commit ``data`` to an existing repository as an LFS file sent by the plain LFS protocol (batch API,
    basic PUT, an ``lfsFile`` commit line) rather than by the client's default Xet upload; returns the commit id."""
    import hashlib
    import json

    from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    actions, errors, _ = post_lfs_batch_info([UploadInfo.from_bytes(data)], token=token, repo_type="model",
                                             repo_id=repo_id, endpoint=endpoint)
    assert not errors
    upload = actions[0]["actions"]["upload"]
    hf_raise_for_status(get_session().put(upload["href"], content=data, headers=upload.get("header") or {}))
    lines = [{"key": "header", "value": {"summary": f"add {filename}"}},
             {"key": "lfsFile", "value": {"path": filename, "algo": "sha256",
                                          "oid": hashlib.sha256(data).hexdigest(), "size": len(data)}}]
    response = get_session().post(
        f"{endpoint}/api/models/{repo_id}/commit/main", content="\n".join(map(json.dumps, lines)),
        headers={**build_hf_headers(token=token), "Content-Type": "application/x-ndjson"})
    hf_raise_for_status(response)
    return response.json()["commitOid"]
