"""Damaged blobs found and restored: ``se-zoo hub fsck --repair`` and the server's periodic scrub.

A text file, an LFS file sent by the plain LFS protocol and a file the client's default upload sends
through Xet, each corrupted by one flipped byte; downloads go through the official client.
"""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from helpers.hub import WRITE_TOKEN, point_client_at, spawn_hub_server, upload_through_lfs
from helpers.mirror import serve

from se_zoo.registry.store import integrity, scrub
from se_zoo.registry.store.integrity import quarantine_records

MiB = 1024 * 1024
REPO = "org/m"
FILES = {
    "config.json": b'{"a":1}\n',  # a regular (git) file
    "w.bin": b"\0" + os.urandom(MiB),  # LFS, by the plain LFS protocol
    "model.safetensors": b"\0" + os.urandom(MiB),  # the client's default upload: Xet
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob(root: Path, name: str) -> Path:
    sha = _sha(FILES[name])
    return root / "blobs" / sha[:2] / sha


def _flip_byte(path: Path) -> None:
    """Flip the middle byte of ``path``, keeping its size and access and modification times."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _hub(*args: str) -> subprocess.CompletedProcess:
    """``se-zoo-hub ARGS`` (the same CLI module as ``se-zoo hub``), without the upstream token of the caller."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("SE_ZOO_UPSTREAM_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "se_zoo.registry", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def _seed(root: Path, tmp_path: Path) -> None:
    """A registry at ``root`` whose ``org/m`` holds ``FILES``, each sent the way its comment says."""
    with serve(root) as server, pytest.MonkeyPatch.context() as patch:
        point_client_at(patch, server.endpoint, WRITE_TOKEN, tmp_path / "seed_home")
        api = HfApi()
        api.create_repo(REPO)
        api.upload_file(path_or_fileobj=FILES["config.json"], path_in_repo="config.json", repo_id=REPO)
        upload_through_lfs(server.endpoint, WRITE_TOKEN, REPO, "w.bin", FILES["w.bin"])
        before = server.registry.xet.received_bytes
        api.upload_file(path_or_fileobj=FILES["model.safetensors"], path_in_repo="model.safetensors", repo_id=REPO)
        assert server.registry.xet.received_bytes > before


def _downloads_match(cache: Path) -> None:
    for name, data in FILES.items():
        assert _sha(Path(hf_hub_download(REPO, name, cache_dir=cache)).read_bytes()) == _sha(data)


def test_fsck_repair_restores_a_mirror_s_damaged_blobs_from_its_upstream(tmp_path, monkeypatch):
    _seed(tmp_path / "up", tmp_path)
    down = tmp_path / "down"
    with serve(tmp_path / "up") as upstream, serve(down, upstream=upstream.endpoint) as mirror:
        point_client_at(monkeypatch, mirror.endpoint, None, tmp_path / "hf_home")
        _downloads_match(tmp_path / "first")  # the mirror now holds all three blobs
        for name in FILES:
            _flip_byte(_blob(down, name))
        with pytest.raises((OSError, HfHubHTTPError)):  # found by a download: cut short, quarantined
            hf_hub_download(REPO, "w.bin", cache_dir=tmp_path / "damaged")
        assert _sha(FILES["w.bin"]) in quarantine_records(down)

        checked = _hub("fsck", "--root", str(down))
        assert checked.returncode == 1
        for name in FILES:
            assert f"problem: blob blobs/{_sha(FILES[name])[:2]}/{_sha(FILES[name])} has sha256" in checked.stdout

        repaired = _hub("fsck", "--root", str(down), "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        for name in FILES:
            sha = _sha(FILES[name])
            assert f"repaired: blobs/{sha[:2]}/{sha} restored from {upstream.endpoint} ({REPO}@" in repaired.stdout
        assert "\n0 problems" in repaired.stdout and quarantine_records(down) == {}
        _downloads_match(tmp_path / "after")  # the same server, still running, serves them again
    assert _hub("fsck", "--root", str(down)).returncode == 0


def test_fsck_repair_of_a_private_repository_sends_the_upstream_token(tmp_path, monkeypatch):
    _seed(tmp_path / "up", tmp_path)
    down = tmp_path / "down"
    with serve(tmp_path / "up") as upstream:
        HfApi(endpoint=upstream.endpoint, token=WRITE_TOKEN).update_repo_settings(REPO, private=True)
        with serve(down, upstream=upstream.endpoint) as mirror:  # it holds the upstream's token
            point_client_at(monkeypatch, mirror.endpoint, WRITE_TOKEN, tmp_path / "hf_home")
            assert Path(hf_hub_download(REPO, "w.bin")).read_bytes() == FILES["w.bin"]
        _flip_byte(_blob(down, "w.bin"))
        anonymous = _hub("fsck", "--root", str(down), "--repair")
        assert anonymous.returncode == 1 and "unrepairable: " in anonymous.stdout and "HTTP 404" in anonymous.stdout
        token_file = tmp_path / "upstream.token"
        token_file.write_text(WRITE_TOKEN + "\n")
        done = _hub("fsck", "--root", str(down), "--repair", "--upstream-token-file", str(token_file))
        assert done.returncode == 0, done.stdout + done.stderr
        assert _blob(down, "w.bin").read_bytes() == FILES["w.bin"]


def test_fsck_repair_without_an_upstream_says_so_and_fails(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    _seed(root, tmp_path)
    for name in FILES:
        _flip_byte(_blob(root, name))
    done = _hub("fsck", "--root", str(root), "--repair")
    assert done.returncode == 1
    # the Xet upload's data is intact: that blob is rebuilt from it, no upstream needed
    sha = _sha(FILES["model.safetensors"])
    assert f"repaired: blobs/{sha[:2]}/{sha} restored from this root's Xet data" in done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith("unrepairable:")]
    assert "2 damaged blob(s)" in line and "has no upstream" in line and "no --upstream URL was given" in line
    problems = [line for line in done.stdout.splitlines() if line.startswith("problem:")]
    assert problems and not any(sha in p for p in problems)  # the commits naming it are whole again
    assert all(_sha(FILES["w.bin"]) in p or _sha(FILES["config.json"]) in p for p in problems)

    refused = _hub("fsck", "--root", str(root), "--upstream", "http://127.0.0.1:9")
    assert refused.returncode == 1 and "--upstream and --upstream-token-file need --repair" in refused.stderr
    unreachable = _hub("fsck", "--root", str(root), "--repair", "--upstream", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "unreachable" in unreachable.stdout
    with serve(root) as server:
        point_client_at(monkeypatch, server.endpoint, None, tmp_path / "hf_home")
        data = FILES["model.safetensors"]
        assert _sha(Path(hf_hub_download(REPO, "model.safetensors")).read_bytes()) == _sha(data)
        with pytest.raises((OSError, HfHubHTTPError)):
            hf_hub_download(REPO, "w.bin")


def test_the_scrub_quarantines_bit_rot_no_request_would_notice(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    _seed(root, tmp_path)

    def key_without_ctime(path):  # bit rot changes no metadata at all, the inode's ctime included
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns, 0, st.st_ino, st.st_dev

    monkeypatch.setattr(integrity, "file_key", key_without_ctime)
    monkeypatch.setattr(scrub, "file_key", key_without_ctime)
    with serve(root, scrub_interval=0.2) as server:
        point_client_at(monkeypatch, server.endpoint, None, tmp_path / "hf_home")
        _downloads_match(tmp_path / "first")
        passes = server.scrubber.passes
        _flip_byte(_blob(root, "w.bin"))
        deadline = time.monotonic() + 30
        while _sha(FILES["w.bin"]) not in quarantine_records(root):  # no request is made meanwhile
            assert time.monotonic() < deadline, f"not quarantined after {server.scrubber.passes - passes} passes"
            time.sleep(0.05)
        with pytest.raises(HfHubHTTPError, match="quarantined"):
            hf_hub_download(REPO, "w.bin", cache_dir=tmp_path / "after")
        assert set(quarantine_records(root)) == {_sha(FILES["w.bin"])}  # the intact blobs stay served
        assert hf_hub_download(REPO, "config.json", cache_dir=tmp_path / "after")


def test_a_quarantine_record_stops_every_process_on_the_root_serving_that_file(tmp_path, monkeypatch):
    data = b"intact bytes"
    sha = _sha(data)
    blob = tmp_path / "blobs" / sha[:2] / sha
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    monkeypatch.setattr(integrity, "file_key", lambda path: (path.stat().st_size, path.stat().st_mtime_ns))  # bit rot
    serving, scrubbing = integrity.BlobIntegrity(tmp_path), integrity.BlobIntegrity(tmp_path)  # two processes
    serving.verify(sha, blob)
    assert serving.status(sha, blob)[1] is True
    _flip_byte(blob)
    key = integrity.file_key(blob)
    assert serving.status(sha, blob)[1] is True  # what the serving process knows of this file
    assert scrubbing.record(sha, blob, key, hashlib.sha256(blob.read_bytes()).hexdigest()) is False
    assert serving.status(sha, blob)[1] is False  # the other process's record says this file is damaged
    blob.write_bytes(data)  # restored: a new file, verified again
    os.utime(blob, ns=(1, 1))
    assert serving.status(sha, blob)[1] is None
    serving.verify(sha, blob)
    assert serving.status(sha, blob)[1] is True


def test_with_workers_the_parent_scrubs_and_the_workers_refuse(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    _seed(root, tmp_path)
    server = spawn_hub_server(root, ["--workers", "2", "--scrub-interval", "0.2", "--scrub-rate", "1MiB"])
    try:
        _flip_byte(_blob(root, "model.safetensors"))
        deadline = time.monotonic() + 60
        while _sha(FILES["model.safetensors"]) not in quarantine_records(root):  # no request is made meanwhile
            assert time.monotonic() < deadline and server.process.poll() is None
            time.sleep(0.05)
        point_client_at(monkeypatch, server.endpoint, None, tmp_path / "hf_home")
        for _ in range(2):  # whichever worker answers
            with pytest.raises(HfHubHTTPError, match="quarantined"):
                hf_hub_download(REPO, "model.safetensors", cache_dir=tmp_path / "after")
        assert _sha(Path(hf_hub_download(REPO, "w.bin", cache_dir=tmp_path / "after")).read_bytes()) == \
            _sha(FILES["w.bin"])
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
