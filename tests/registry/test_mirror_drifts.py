"""The pull-through mirror asks ``Auth`` like every handler: the login cookie reads, uploads stay off the loop.

Two loopback registries: an upstream holding a private repository, and a pull-through registry
(``serve --upstream``) in front of it. Nothing here reaches the internet.
"""
import hashlib
import os
import threading
import time
from pathlib import Path

import httpx2
import pytest

from se_zoo.registry.app import HubServer
from se_zoo.registry.mirror.upstream import Upstream
from se_zoo.registry.store import storage

WRITE, READ = "drift-write-token", "drift-read-token"
TOKENS = {WRITE: "write", READ: "read"}
MiB = 1024 * 1024


@pytest.fixture
def upstream_with_private_repo(tmp_path):
    """An upstream registry holding the private ``org/secret`` with one file; yields (server, bytes)."""
    data = os.urandom(64 * 1024) + b"\0"  # a NUL in the sample: an LFS file
    with HubServer(tmp_path / "up", TOKENS).start() as upstream:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=upstream.endpoint, token=WRITE)
        api.create_repo("org/secret", private=True)
        api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id="org/secret")
        yield upstream, data


def _error(response: httpx2.Response, repo_id: str) -> tuple:
    """What a 404 tells a client, with the repository id blanked out."""
    message = response.headers.get("x-error-message", "")
    return (response.status_code, response.headers.get("x-error-code"), response.text.replace(repo_id, "<repo>"),
            message.replace(repo_id, "<repo>"))


def test_private_mirrored_repo_is_visible_with_the_login_cookie_and_missing_without(upstream_with_private_repo,
                                                                                      tmp_path):
    upstream, data = upstream_with_private_repo
    with HubServer(tmp_path / "pt", TOKENS, upstream=Upstream(upstream.endpoint, WRITE)).start() as mirror:
        with httpx2.Client(base_url=mirror.endpoint) as anonymous:
            hidden = [anonymous.get("/api/models/org/secret"),
                      anonymous.get("/org/secret/resolve/main/w.bin", follow_redirects=True)]
            missing = [anonymous.get("/api/models/org/nothing"),
                       anonymous.get("/org/nothing/resolve/main/w.bin", follow_redirects=True)]
            assert [_error(r, "org/secret") for r in hidden] == [_error(r, "org/nothing") for r in missing]
            assert hidden[0].status_code == 404 and not (tmp_path / "pt" / "repos" / "org").exists()

        with httpx2.Client(base_url=mirror.endpoint) as browser:
            login = browser.post("/login", data={"token": READ, "next": "/org/secret"})
            assert login.status_code == 303 and "se_zoo_token" in browser.cookies
            assert "authorization" not in {k.lower() for k in browser.headers}  # only the cookie says who it is
            info = browser.get("/api/models/org/secret")
            assert info.status_code == 200 and info.json()["private"] is True
            download = browser.get("/org/secret/resolve/main/w.bin", follow_redirects=True)
            assert download.status_code == 200 and download.content == data
            page = browser.get("/org/secret")
            assert page.status_code == 200 and "org/secret" in page.text

        with httpx2.Client(base_url=mirror.endpoint) as anonymous:  # now mirrored here: still a 404 to others
            after = anonymous.get("/api/models/org/secret")
            assert _error(after, "org/secret") == _error(anonymous.get("/api/models/org/nothing"), "org/nothing")
            assert anonymous.get("/org/secret").status_code == 404


def test_mirror_blob_upload_does_not_block_other_requests(tmp_path, monkeypatch):
    slow_write = 0.4  # seconds per write: a slow disk; written on the event loop it would stall every request
    original_write = storage.BlobWriter.write

    def write_slowly(self, chunk):
        time.sleep(slow_write)
        original_write(self, chunk)

    monkeypatch.setattr(storage.BlobWriter, "write", write_slowly)
    data = os.urandom(3 * MiB)
    sha256 = hashlib.sha256(data).hexdigest()
    with HubServer(tmp_path / "hub", TOKENS).start() as hub:
        answers = {}

        def upload():
            answers["put"] = httpx2.put(f"{hub.endpoint}/api/models/org/m/mirror/blobs/{sha256}/{len(data)}",
                                        content=_trickle(data), headers={"Authorization": f"Bearer {WRITE}"},
                                        timeout=120)

        uploader = threading.Thread(target=upload)
        uploader.start()
        deadline = time.monotonic() + 30
        while not list(Path(tmp_path / "hub" / "tmp").rglob("*.part")) and time.monotonic() < deadline:
            time.sleep(0.02)  # the upload is streaming into a temporary blob
        latencies = []
        with httpx2.Client(base_url=hub.endpoint) as client:
            while uploader.is_alive() and len(latencies) < 20:
                start = time.monotonic()
                assert client.get("/-/style.css").status_code == 200
                latencies.append(time.monotonic() - start)
        uploader.join(120)
        assert answers["put"].status_code == 200 and hub.registry.store.has_blob(sha256, len(data))
    assert len(latencies) >= 3, "the upload finished before the other requests could be timed"
    assert sorted(latencies)[len(latencies) // 2] < slow_write / 2, latencies


def _trickle(data: bytes, piece: int = 64 * 1024):
    """The body in small pieces with pauses, so the upload is still streaming while others are timed."""
    for offset in range(0, len(data), piece):
        time.sleep(0.01)
        yield data[offset:offset + piece]
