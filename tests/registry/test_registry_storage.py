"""Storage hygiene: fsck and garbage collection, delete_repo freeing blobs, size caps and quotas."""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.hub import point_client_at
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import build_hf_headers, get_session
from test_hub_server import _partial_put, _upload_href

from se_zoo.registry.store.fsck import IGNORED_DIRS, fsck
from se_zoo.registry.app import HubServer

TOKEN = "hf_storage_write"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with HubServer(tmp_path / "root", {TOKEN: "write"}, max_file_size=2_000_000, quota=3_000_000).start() as server:
        point_client_at(monkeypatch, server.endpoint, TOKEN, tmp_path / "hf_home")
        yield server


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _blob(root, data):
    sha = _sha(data)
    return root / "blobs" / sha[:2] / sha


def _age(path, seconds=7200):
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_fsck_reports_and_gc_removes_only_garbage(hub, tmp_path):
    api, root = HfApi(), hub.registry.store.root
    api.create_repo("org/kept")
    kept = b"\0kept" * 1000
    api.upload_file(path_or_fileobj=kept, path_in_repo="k.bin", repo_id="org/kept")
    orphans = []
    for i in range(3):  # uploads whose commit never came (a killed client or process)
        data = b"\0orphan %d" % i * 1000
        conn = _partial_put(hub.endpoint, _upload_href(_Hub(hub), "org/kept", data), len(data), data)
        assert conn.getresponse().status == 200
        orphans.append(data)
    (root / "xet").mkdir(exist_ok=True)  # the Xet upload above may have made it
    (root / "xet" / "chunk").write_bytes(b"xet data")
    (root / "unknown.txt").write_text("someone else's")
    report = fsck(root)
    assert report.problems == [] and any("unknown.txt" in n for n in report.notes)
    assert not any("xet" in n for n in report.notes)
    assert {f"blobs/{_sha(d)[:2]}/{_sha(d)}" for d in orphans} <= set(report.garbage)
    assert fsck(root, gc=True).removed == []  # fresh orphans are spared: a commit may still come
    for data in orphans[:2]:
        _age(_blob(root, data))
    removed = fsck(root, gc=True).removed
    assert sorted(removed) == sorted(f"blobs/{_sha(d)[:2]}/{_sha(d)}" for d in orphans[:2])
    assert _blob(root, orphans[2]).exists() and _blob(root, kept).exists()
    assert (root / "xet" / "chunk").read_bytes() == b"xet data" and "xet" in IGNORED_DIRS
    assert (root / "unknown.txt").exists()
    assert any(p.suffix == ".lock" for p in (root / "tmp").iterdir())  # the live server's lock stays
    assert Path(api.hf_hub_download("org/kept", "k.bin")).read_bytes() == kept


class _Hub:
    def __init__(self, server):
        self.endpoint, self.token = server.endpoint, TOKEN


def test_fsck_finds_corruption_and_the_command_line_runs(hub, tmp_path):
    api, root = HfApi(), hub.registry.store.root
    api.create_repo("org/corrupt")
    data = b"\0will be corrupted" * 100
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id="org/corrupt")
    _blob(root, data).write_bytes(b"bit rot")
    commit_dir = next(root.glob("repos/org/corrupt/commits"))
    (commit_dir / ("f" * 40 + ".json")).write_text("{not json")
    problems = fsck(root).problems
    assert any("has sha256" in p for p in problems) and any("unreadable" in p for p in problems)
    cmd = [sys.executable, "-m", "se_zoo.registry", "fsck", "--root", str(root)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 1 and "problem: blob" in result.stdout
    with pytest.raises(FileNotFoundError, match="not a registry root"):
        fsck(tmp_path / "nothing")


def test_delete_repo_frees_blobs_no_other_repo_uses(hub):
    api, root = HfApi(), hub.registry.store.root
    shared, own = b"\0shared" * 1000, b"\0own" * 1000
    for repo in ("org/a", "org/b"):
        api.create_repo(repo)
        api.upload_file(path_or_fileobj=shared, path_in_repo="s.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=own, path_in_repo="o.bin", repo_id="org/a")
    api.upload_file(path_or_fileobj=b"history", path_in_repo="h.txt", repo_id="org/a")
    api.delete_file("h.txt", repo_id="org/a")  # only in the history of org/a
    api.delete_repo("org/a")
    assert not _blob(root, own).exists() and not _blob(root, b"history").exists()
    assert _blob(root, shared).exists()
    assert Path(api.hf_hub_download("org/b", "s.bin")).read_bytes() == shared
    assert fsck(root).problems == []


def test_file_size_cap_and_namespace_quota(hub):
    api = HfApi()
    api.create_repo("org/q")
    session, headers = get_session(), build_hf_headers(token=TOKEN)
    batch = f"{hub.endpoint}/org/q.git/info/lfs/objects/batch"
    r = session.post(batch, headers=headers, json={"operation": "upload", "objects": [{"oid": "a" * 64,
                                                                                        "size": 10**18}]})
    assert r.status_code == 413 and "2000000" in r.json()["error"] and "--max-file-size" in r.json()["error"]
    api.upload_file(path_or_fileobj=b"\0" + os.urandom(1_500_000), path_in_repo="one.bin", repo_id="org/q")
    api.create_repo("org/other")
    with pytest.raises(HfHubHTTPError) as excinfo:  # the quota is per namespace, across its repos
        api.upload_file(path_or_fileobj=b"\0" + os.urandom(1_600_000), path_in_repo="two.bin", repo_id="org/other")
    assert excinfo.value.response.status_code == 413 and "quota of 3000000" in excinfo.value.response.json()["error"]
    api.create_repo("else/r")
    api.upload_file(path_or_fileobj=b"\0" + os.urandom(1_600_000), path_in_repo="two.bin", repo_id="else/r")
    # the bytes actually received are checked too: a signed URL from before the quota filled up
    data = b"\0" + os.urandom(1_000_000)
    href = _upload_href(_Hub(hub), "org/q", data)
    api.upload_file(path_or_fileobj=b"\0" + os.urandom(900_000), path_in_repo="three.bin", repo_id="org/q")
    conn = _partial_put(hub.endpoint, href, len(data), data)
    assert conn.getresponse().status == 413
    assert not hub.registry.store.has_blob(_sha(data))
