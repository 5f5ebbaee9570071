"""A blob whose bytes no longer match its sha256 never reaches a client as a complete 200 answer."""
import hashlib
import http.client
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from helpers.hub import upload_through_lfs

from se_zoo.registry.store.fsck import fsck
from se_zoo.registry.store.integrity import BlobIntegrity, quarantine_records

MiB = 1024 * 1024


def _get(endpoint: str, path: str, headers: dict = None) -> tuple:
    """``(status, body bytes received, whether the body was complete)`` of one raw GET."""
    url = urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        try:
            return response.status, response.read(), True
        except http.client.IncompleteRead as err:
            return response.status, err.partial, False
        except ConnectionError:
            return response.status, b"", False
    finally:
        conn.close()


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def _upload_through_lfs(hub_server, name: str, filename: str, data: bytes) -> tuple:
    repo_id = f"{hub_server.namespace}/{name}"
    HfApi().create_repo(repo_id)
    commit = upload_through_lfs(hub_server.endpoint, hub_server.token, repo_id, filename, data)
    return repo_id, f"/{repo_id}/resolve/{commit}/{filename}"


def _upload(hub_server, name: str, filename: str, data: bytes) -> tuple:
    repo_id = f"{hub_server.namespace}/{name}"
    api = HfApi()
    api.create_repo(repo_id)
    commit = api.upload_file(path_or_fileobj=data, path_in_repo=filename, repo_id=repo_id).oid
    return repo_id, f"/{repo_id}/resolve/{commit}/{filename}"


KINDS = {
    "text": ("config.json", b'{"a":1}\n'),  # 8 bytes, stored as a regular (git) file
    "lfs": ("w.bin", b"\0" + os.urandom(3 * MiB)),  # several chunks: the first ones are sent before the check
    "xet": ("model.safetensors", b"\0" + os.urandom(3 * MiB)),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_flipped_byte_is_never_served_as_a_complete_200(hub_server, monkeypatch, tmp_path, kind):
    filename, data = KINDS[kind]
    before = hub_server.registry.xet.received_bytes
    upload = _upload_through_lfs if kind == "lfs" else _upload  # the client's default upload is the "xet" case
    repo_id, path = upload(hub_server, f"flip-{kind}", filename, data)
    assert (hub_server.registry.xet.received_bytes > before) == (kind == "xet")
    sha = hashlib.sha256(data).hexdigest()
    blob = hub_server.root / "blobs" / sha[:2] / sha
    assert Path(hf_hub_download(repo_id, filename, cache_dir=tmp_path / "ok")).read_bytes() == data

    _flip_byte(blob, len(data) // 2)
    with pytest.raises((OSError, HfHubHTTPError)):  # a short body (size check) or the 500 of a quarantined blob
        hf_hub_download(repo_id, filename, cache_dir=tmp_path / "flipped")
    cached = [p for p in (tmp_path / "flipped").rglob("*") if p.is_file() and p.stat().st_size == len(data)]
    assert cached == []
    status, body, complete = _get(hub_server.endpoint, path)
    assert not (status == 200 and complete and len(body) == len(data))
    assert _get(hub_server.endpoint, path, {"Range": "bytes=0-3"})[0] == 500
    assert sha in quarantine_records(hub_server.root)
    assert any(f"{sha} quarantined by the server" in p for p in fsck(hub_server.root).problems)

    _flip_byte(blob, len(data) // 2)  # restored (the file changed again): verified and served again
    assert _get(hub_server.endpoint, path, {"Range": "bytes=1-3"})[:2] == (206, data[1:4])
    assert _get(hub_server.endpoint, path) == (200, data, True)
    report = fsck(hub_server.root)
    assert not any(sha in p for p in report.problems) and f"quarantine/{sha}.json" in report.garbage
    assert f"quarantine/{sha}.json" in fsck(hub_server.root, gc=True).removed
    assert sha not in quarantine_records(hub_server.root)


def test_a_first_full_download_that_is_damaged_breaks_before_its_last_byte(hub_server):
    data = b"\0" + os.urandom(3 * MiB)
    _, path = _upload(hub_server, "never-verified", "w.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    _flip_byte(hub_server.root / "blobs" / sha[:2] / sha, 10)  # before any download: no record yet
    status, body, complete = _get(hub_server.endpoint, path)
    assert status == 200 and not complete and len(body) < len(data)  # the client's size check fails
    assert _get(hub_server.endpoint, path)[0] == 500  # quarantined from then on
    _flip_byte(hub_server.root / "blobs" / sha[:2] / sha, 10)
    assert _get(hub_server.endpoint, path) == (200, data, True)


def test_an_intact_blob_is_hashed_once_per_change_of_its_file(tmp_path):
    data = b"intact bytes"
    sha = hashlib.sha256(data).hexdigest()
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    integrity = BlobIntegrity(tmp_path)
    assert integrity.status(sha, blob)[1] is None
    integrity.verify(sha, blob)
    assert integrity.status(sha, blob)[1] is True  # downloads now stream without hashing
    os.utime(blob)  # any change of the file (a touch included) asks for a new verification
    assert integrity.status(sha, blob)[1] is None
    blob.write_bytes(b"intact byteZ")
    with pytest.raises(Exception, match="do not match its sha256"):
        integrity.verify(sha, blob)
    assert integrity.status(sha, blob)[1] is False and sha in quarantine_records(tmp_path)
