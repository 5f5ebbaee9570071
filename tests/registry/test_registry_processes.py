"""Several processes on one root: no acknowledged commit lost, no live upload removed, torch-free."""
import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.hub import point_client_at, spawn_hub_server
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError
from test_hub_server import _partial_put, _upload_href

MiB = 1024 * 1024


@pytest.fixture
def two_servers(tmp_path):
    root = tmp_path / "root"
    servers = [spawn_hub_server(root, name="a"), spawn_hub_server(root, name="b")]
    yield servers
    for server in servers:
        server.process.kill()
        server.process.wait()


def _commit(endpoint, token, repo_id, i, conditional):
    api = HfApi(endpoint=endpoint, token=token)
    parent = api.model_info(repo_id).sha if conditional else None
    try:
        info = api.create_commit(repo_id, [CommitOperationAdd(f"f{i:02d}.txt", f"commit {i}".encode())],
                                 commit_message=f"commit {i}", parent_commit=parent)
    except HfHubHTTPError as exc:
        assert exc.response.status_code == 412, exc  # the branch moved: refused, not lost
        return None
    return i, info.oid


@pytest.mark.parametrize("conditional", [True, False], ids=["parent_commit", "unconditional"])
def test_two_processes_lose_no_acknowledged_commit(two_servers, monkeypatch, tmp_path, conditional):
    a, b = two_servers
    point_client_at(monkeypatch, a.endpoint, a.token, tmp_path / "hf_home")
    repo_id = "org/shared"
    HfApi().create_repo(repo_id)
    jobs = [(server.endpoint, i) for i in range(15) for server in (a, b)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda job: _commit(job[0], a.token, repo_id, jobs.index(job), conditional), jobs))
    acknowledged = [r for r in results if r is not None]
    if not conditional:
        assert len(acknowledged) == len(jobs)
    assert acknowledged
    for server in (a, b):  # both processes see the same, complete history
        api = HfApi(endpoint=server.endpoint, token=a.token)
        history = {c.commit_id for c in api.list_repo_commits(repo_id)}
        assert {oid for _, oid in acknowledged} <= history
        assert {f"f{i:02d}.txt" for i, _ in acknowledged} == set(api.list_repo_files(repo_id))


def test_start_up_keeps_a_live_process_uploads(tmp_path, monkeypatch):
    root = tmp_path / "root"
    a = spawn_hub_server(root, name="a")
    b = None
    try:
        point_client_at(monkeypatch, a.endpoint, a.token, tmp_path / "hf_home")
        repo_id = "org/upload"
        HfApi().create_repo(repo_id)
        data = os.urandom(4 * MiB)
        conn = _partial_put(a.endpoint, _upload_href(a, repo_id, data), len(data), data[:MiB])
        deadline = time.monotonic() + 30
        while not list((root / "tmp").glob("*/*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        b = spawn_hub_server(root, name="b")  # starts while a's upload is in flight
        conn.send(data[MiB:])
        assert conn.getresponse().status == 200
        conn.close()
        point_client_at(monkeypatch, b.endpoint, b.token, tmp_path / "hf_home_b")
        assert HfApi().file_exists(repo_id, "w.bin") is False
        HfApi().upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)  # blob already there
        assert Path(hf_hub_download(repo_id, "w.bin")).read_bytes() == data
        sha = hashlib.sha256(data).hexdigest()
        assert (root / "blobs" / sha[:2] / sha).exists()
    finally:
        for server in (a, b):
            if server is not None:
                server.process.kill()
                server.process.wait()


def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc").exists(), reason="workers fork; reads /proc")
def test_workers_share_uploads_and_stay_torch_free(tmp_path, monkeypatch):
    hub = spawn_hub_server(tmp_path / "root", ["--workers", "2"])
    try:
        point_client_at(monkeypatch, hub.endpoint, hub.token, tmp_path / "hf_home")
        repo_id = "org/workers"
        HfApi().create_repo(repo_id)
        for i in range(6):  # batch and PUT land on either worker: the signing key is shared
            data = b"\0" + os.urandom(100_000)
            HfApi().upload_file(path_or_fileobj=data, path_in_repo=f"w{i}.bin", repo_id=repo_id)
            assert Path(hf_hub_download(repo_id, f"w{i}.bin")).read_bytes() == data
        workers = _children(hub.process.pid)
        assert len(workers) == 2
        for pid in [hub.process.pid, *workers]:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "libtorch" not in maps and "torch/_C" not in maps
    finally:
        hub.process.terminate()
        hub.process.wait(timeout=30)
    deadline = time.monotonic() + 30  # the workers stop with their parent
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def _alive(pid):
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except FileNotFoundError:
        return False


def test_serving_process_imports_neither_torch_nor_timm(tmp_path):
    code = f"""
import sys, urllib.request
from se_zoo.cli import build_parser
from se_zoo.registry.cli import tokens_from
from se_zoo.registry.app import HubServer
args = build_parser().parse_args(["hub", "serve", "--root", {str(tmp_path / "root")!r}])
with HubServer(args.root, tokens_from(args, {{}})).start() as server:
    assert urllib.request.urlopen(server.endpoint + "/api/models").status == 200
print(sorted(m for m in ("torch", "timm", "se_zoo.models", "se_zoo.hub") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
