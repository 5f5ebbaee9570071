"""The local Hub registry, exercised through the official huggingface_hub client."""
import base64
import hashlib
import http.client
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from helpers.hub import drop_next_download, spawn_hub_server

MiB = 1024 * 1024


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _new_repo(hub, name: str, **kwargs) -> str:
    repo_id = f"{hub.namespace}/{name}"
    HfApi().create_repo(repo_id, **kwargs)
    return repo_id


def _raw(hub, method: str, path: str, token: str = None, **kwargs):
    """A request through the client's own HTTP session, for payloads the high-level API refuses to build."""
    headers = {**build_hf_headers(token=token or hub.token), **kwargs.pop("headers", {})}
    return get_session().request(method, hub.endpoint + path, headers=headers, **kwargs)


def _files_under(path: Path):
    return sorted(p for p in path.rglob("*") if p.is_file())


def _temporaries(root: Path):
    """Files under the store's tmp/, without the lock files live processes hold there."""
    return [p for p in _files_under(root / "tmp") if p.suffix != ".lock"]


def test_round_trip_regular_and_lfs(hub_server):
    api = HfApi()
    repo_id = _new_repo(hub_server, "round-trip")
    text = b"plain config text\n"
    large = b"0123456789abcdef" * (11 * MiB // 16)  # no NUL byte: LFS because of its size
    api.upload_file(path_or_fileobj=text, path_in_repo="config.txt", repo_id=repo_id)
    commit = api.upload_file(path_or_fileobj=large, path_in_repo="weights/large.bin", repo_id=repo_id)

    info = api.model_info(repo_id, files_metadata=True)
    assert info.sha == commit.oid and not info.private
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {"config.txt", "weights/large.bin"}
    assert siblings["config.txt"].lfs is None
    assert siblings["config.txt"].blob_id == _git_oid(text) and siblings["config.txt"].size == len(text)
    assert siblings["weights/large.bin"].lfs.sha256 == hashlib.sha256(large).hexdigest()
    assert siblings["weights/large.bin"].lfs.size == siblings["weights/large.bin"].size == len(large)

    meta = get_hf_file_metadata(hf_hub_url(repo_id, "weights/large.bin"))
    assert (meta.commit_hash, meta.etag, meta.size) == (commit.oid, hashlib.sha256(large).hexdigest(), len(large))
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "config.txt"))
    assert (meta.etag, meta.size) == (_git_oid(text), len(text))

    assert Path(hf_hub_download(repo_id, "config.txt")).read_bytes() == text
    assert Path(hf_hub_download(repo_id, "weights/large.bin")).read_bytes() == large
    assert sorted(api.list_repo_files(repo_id)) == ["config.txt", "weights/large.bin"]

    url = f"/{repo_id}/resolve/{commit.oid}/weights/large.bin"
    partial = _raw(hub_server, "GET", url, headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206 and partial.content == large[100:200]
    assert partial.headers["Content-Range"] == f"bytes 100-199/{len(large)}"
    assert _raw(hub_server, "GET", url, headers={"Range": "bytes=-5"}).content == large[-5:]
    assert _raw(hub_server, "GET", url, headers={"Range": f"bytes={len(large)}-"}).status_code == 416
    etag = partial.headers["ETag"]  # If-Range: the range of this version, else the whole current file
    assert _raw(hub_server, "GET", url, headers={"Range": "bytes=100-199", "If-Range": etag}).content == large[100:200]
    stale = _raw(hub_server, "GET", url, headers={"Range": "bytes=100-199", "If-Range": '"an-older-version"'})
    assert stale.status_code == 200 and stale.content == large and "Content-Range" not in stale.headers


def test_snapshot_download_and_listings(hub_server, tmp_path):
    api = HfApi()
    repo_id = _new_repo(hub_server, "snapshot")
    folder = tmp_path / "folder"
    files = {"README.md": b"---\nlicense: mit\n---\n# card\n", "config.json": b'{"a": 1}',
             "sub/deeper/weights.bin": bytes(range(256)) * 4096, "sub/notes.txt": b"notes"}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    api.upload_folder(folder_path=folder, repo_id=repo_id)

    snapshot = Path(snapshot_download(repo_id))
    assert {str(p.relative_to(snapshot)): p.read_bytes() for p in _files_under(snapshot)} == files

    top = {e.path: type(e).__name__ for e in api.list_repo_tree(repo_id)}
    assert top == {"README.md": "RepoFile", "config.json": "RepoFile", "sub": "RepoFolder"}
    deep = {e.path for e in api.list_repo_tree(repo_id, recursive=True)}
    assert deep == set(files) | {"sub", "sub/deeper"}
    assert {e.path for e in api.list_repo_tree(repo_id, path_in_repo="sub")} == {"sub/deeper", "sub/notes.txt"}
    infos = api.get_paths_info(repo_id, ["config.json", "sub", "missing.txt"])
    assert [(i.path, type(i).__name__) for i in infos] == [("config.json", "RepoFile"), ("sub", "RepoFolder")]
    api.create_commit(repo_id, commit_message="copy and delete", operations=[
        CommitOperationCopy(src_path_in_repo="sub/deeper/weights.bin", path_in_repo="copy.bin"),
        CommitOperationDelete(path_in_repo="sub/deeper/"),
        CommitOperationDelete(path_in_repo="config.json"),
    ])
    assert sorted(api.list_repo_files(repo_id)) == ["README.md", "copy.bin", "sub/notes.txt"]
    assert Path(hf_hub_download(repo_id, "copy.bin")).read_bytes() == files["sub/deeper/weights.bin"]
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\nlicense: [unclosed\n---\n", path_in_repo="README.md", repo_id=repo_id)

    other = _new_repo(hub_server, "other-model")
    found = {m.id for m in api.list_models(author=hub_server.namespace)}
    assert found == {repo_id, other}
    assert [m.id for m in api.list_models(author=hub_server.namespace, search="snap")] == [repo_id]


def test_revisions_branches_and_tags(hub_server):
    api = HfApi()
    repo_id = _new_repo(hub_server, "revisions")
    first = api.upload_file(path_or_fileobj=b"version one", path_in_repo="f.txt", repo_id=repo_id).oid
    second = api.upload_file(path_or_fileobj=b"version two!", path_in_repo="f.txt", repo_id=repo_id).oid

    assert Path(hf_hub_download(repo_id, "f.txt", revision=first)).read_bytes() == b"version one"
    assert Path(hf_hub_download(repo_id, "f.txt")).read_bytes() == b"version two!"
    assert [c.commit_id for c in api.list_repo_commits(repo_id)][:2] == [second, first]

    api.create_tag(repo_id, tag="v1.0", revision=first)
    api.create_branch(repo_id, branch="feature/x", revision="v1.0")
    third = api.upload_file(path_or_fileobj=b"on a branch", path_in_repo="f.txt", repo_id=repo_id,
                            revision="feature/x").oid
    refs = api.list_repo_refs(repo_id)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": second, "feature/x": third}
    assert {t.name: t.target_commit for t in refs.tags} == {"v1.0": first}
    assert Path(hf_hub_download(repo_id, "f.txt", revision="v1.0")).read_bytes() == b"version one"
    assert Path(hf_hub_download(repo_id, "f.txt", revision="feature/x")).read_bytes() == b"on a branch"
    assert Path(hf_hub_download(repo_id, "f.txt", revision="main")).read_bytes() == b"version two!"
    assert api.model_info(repo_id, revision="v1.0").sha == first

    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_branch(repo_id, branch="v1.0")
    assert conflict.value.response.status_code == 409
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "f.txt", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt")
    api.delete_tag(repo_id, tag="v1.0")
    api.delete_branch(repo_id, branch="feature/x")
    refs = api.list_repo_refs(repo_id)
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []
    with pytest.raises(HfHubHTTPError) as forbidden:
        api.delete_branch(repo_id, branch="main")
    assert forbidden.value.response.status_code == 403


def test_private_repos_and_token_rules(hub_server, monkeypatch):
    api = HfApi()
    repo_id = _new_repo(hub_server, "private", private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo_id)
    anonymous, reader = HfApi(token=False), HfApi(token=hub_server.read_token)

    assert api.model_info(repo_id).private
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "s.txt", token=False)
    assert repo_id not in {m.id for m in anonymous.list_models(author=hub_server.namespace)}
    assert repo_id in {m.id for m in reader.list_models(author=hub_server.namespace)}
    assert Path(hf_hub_download(repo_id, "s.txt", token=hub_server.read_token)).read_bytes() == b"secret"

    with pytest.raises(HfHubHTTPError) as read_only:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert read_only.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as no_token:
        anonymous.create_repo(f"{hub_server.namespace}/anonymous")
    assert no_token.value.response.status_code == 401
    bad_token = "hf_not_a_known_token_123"
    with pytest.raises(HfHubHTTPError) as invalid:
        HfApi(token=bad_token).model_info(repo_id)
    assert invalid.value.response.status_code == 401
    assert bad_token not in invalid.value.response.text and bad_token not in str(invalid.value.response.headers)

    api.update_repo_settings(repo_id, private=False)
    assert not anonymous.model_info(repo_id).private
    api.delete_repo(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo_id)


def test_path_traversal_and_malformed_requests_rejected(hub_server, monkeypatch):
    api = HfApi()
    repo_id = _new_repo(hub_server, "validation")
    api.upload_file(path_or_fileobj=b"keep", path_in_repo="keep.txt", repo_id=repo_id)
    head = api.model_info(repo_id).sha

    def commit(*lines: bytes):
        return _raw(hub_server, "POST", f"/api/models/{repo_id}/commit/main", content=b"\n".join(lines),
                    headers={"Content-Type": "application/x-ndjson"})

    header = json.dumps({"key": "header", "value": {"summary": "evil"}}).encode()
    content = base64.b64encode(b"pwned").decode()
    for path in ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a//b.txt", "a\\b.txt", "./a.txt",
                 ".git/config", ""]:
        line = json.dumps({"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}})
        response = commit(header, line.encode())
        assert response.status_code == 400, path
        assert "path" in response.json()["error"].lower() and response.headers["X-Error-Message"]
    malformed = [
        [b"{not json"],
        [json.dumps({"key": "file", "value": {"path": "a.txt", "content": content}}).encode()],  # no header first
        [header, json.dumps({"key": "rename", "value": {"path": "a.txt"}}).encode()],
        [header, json.dumps({"key": "file", "value": {"path": "a.txt", "content": "***"}}).encode()],
        [header, json.dumps({"key": "lfsFile", "value": {"path": "a.bin", "oid": "0" * 64, "size": 3}}).encode()],
        [header, json.dumps({"key": "deletedFile", "value": {"path": "missing.txt"}}).encode()],
        [json.dumps({"key": "header", "value": {"summary": ""}}).encode()],
        [b"[1, 2, 3]"],
    ]
    for lines in malformed:
        response = commit(*lines)
        assert 400 <= response.status_code < 500, lines
        assert response.json()["error"] and "Traceback" not in response.text
    with pytest.raises(BadRequestError):
        hf_raise_for_status(commit(b"{not json"))

    for method, path, kwargs in [
        ("GET", f"/{repo_id}/resolve/main/%2E%2E/%2E%2E/etc/passwd", {}),
        ("GET", f"/{repo_id}/resolve/main/a%5Cb", {}),
        ("GET", f"/api/models/{hub_server.namespace}/..%2F..", {}),
        ("POST", "/api/repos/create", {"content": b"not json"}),
        ("POST", "/api/repos/create", {"json": {"name": "..", "organization": hub_server.namespace}}),
        ("POST", "/api/repos/create", {"json": {"name": "x", "organization": "../../tmp"}}),
        ("POST", "/api/repos/create", {"json": {"name": "x", "organization": "ns", "type": "dataset"}}),
        ("POST", f"/api/models/{repo_id}/preupload/main", {"json": {"files": [{"path": "../x", "size": 1}]}}),
        ("POST", f"/api/models/{repo_id}/preupload/main", {"json": {"files": "nope"}}),
        ("POST", f"/{repo_id}.git/info/lfs/objects/batch",
         {"json": {"operation": "upload", "objects": [{"oid": "x", "size": 1}]}}),
        ("PUT", f"/{repo_id}.git/info/lfs/objects/{'0' * 64}/5?expires=9999999999&signature=forged",
         {"content": b"12345"}),
        ("GET", f"/api/models/{repo_id}/tree/main/%2E%2E", {}),
        ("GET", "/api/datasets/some/dataset", {}),
    ]:
        response = _raw(hub_server, method, path, **kwargs)
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        assert response.json()["error"]
    assert api.model_info(repo_id).sha == head
    assert not any(p.name == "escape.txt" or p.name == "pwned" for p in hub_server.root.parent.rglob("*"))

    def fail(*args, **kwargs):
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(hub_server.registry.store, "refs", fail)
    response = _raw(hub_server, "GET", f"/api/models/{repo_id}/refs")
    assert response.status_code == 500 and response.json() == {"error": "Internal server error."}
    with pytest.raises(ValueError):  # the client refuses to build such a path on its own
        CommitOperationAdd(path_in_repo="../x", path_or_fileobj=b"x")


def test_logs_hold_no_tokens_or_upload_signatures(hub_server, caplog, monkeypatch, tmp_path):
    repo_id = _new_repo(hub_server, "logs")
    access = logging.getLogger("uvicorn.access")  # does not propagate to the root logger
    access.addHandler(caplog.handler)
    hub_server.registry.xet.announce_downloads = True  # Xet downloads fetch xorbs through signed URLs
    try:
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            HfApi().upload_file(path_or_fileobj=b"\0xet" * 100, path_in_repo="x.bin", repo_id=repo_id)
            hf_hub_download(repo_id, "x.bin", cache_dir=tmp_path / "cache")
            monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # HF_HUB_DISABLE_XET=1 plain LFS
            HfApi().upload_file(path_or_fileobj=b"\0binary" * 100, path_in_repo="w.bin", repo_id=repo_id)
            with pytest.raises(HfHubHTTPError):
                HfApi(token="hf_wrong_token_in_header").model_info(repo_id)
    finally:
        access.removeHandler(caplog.handler)
        hub_server.registry.xet.announce_downloads = False
    assert f"PUT /{repo_id}.git/info/lfs/objects/" in caplog.text  # the signed upload was logged...
    assert "GET /v1/fetch/" in caplog.text  # ...and so were the signed xorb fetches...
    assert "signature" not in caplog.text and "expires" not in caplog.text  # ...without their query strings
    assert hub_server.token not in caplog.text and "hf_wrong_token_in_header" not in caplog.text


def test_lfs_upload_with_wrong_sha256_is_rejected(hub_server, tmp_path):
    api = HfApi()
    repo_id = _new_repo(hub_server, "bad-sha")
    head = api.model_info(repo_id).sha
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0announced content" * 1000)
    operation = CommitOperationAdd(path_in_repo="weights.bin", path_or_fileobj=str(path))
    announced = operation.upload_info.sha256.hex()  # hashed now, before the bytes change
    path.write_bytes(b"\0tampered! content" * 1000)  # same size, other bytes
    actual = hashlib.sha256(path.read_bytes()).hexdigest()

    with pytest.raises((HfHubHTTPError, RuntimeError)) as excinfo:
        api.create_commit(repo_id, operations=[operation], commit_message="tampered upload")
    cause = excinfo.value if isinstance(excinfo.value, HfHubHTTPError) else excinfo.value.__cause__
    assert cause.response.status_code == 400 and "sha256" in cause.response.json()["error"]
    assert api.model_info(repo_id).sha == head and api.list_repo_files(repo_id) == []
    store = hub_server.registry.store
    assert not store.has_blob(announced) and not store.has_blob(actual)
    assert _temporaries(store.root) == []


def test_download_cut_mid_file_is_resumed(hub_server, caplog, monkeypatch):
    api = HfApi()
    repo_id = _new_repo(hub_server, "resume")
    data = os.urandom(3 * MiB)
    api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id=repo_id)
    drop_next_download(monkeypatch, after_bytes=MiB + 123)

    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        path = Path(hf_hub_download(repo_id, "model.safetensors"))
    assert "resume" in caplog.text.lower()  # the connection really was cut and the client resumed it
    assert path.read_bytes() == data
    cache = Path(os.environ["HF_HUB_CACHE"])
    assert not [p for p in cache.rglob("*") if p.name.endswith(".incomplete")]
    blobs = [p for p in cache.rglob("blobs/*")]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in blobs] == [hashlib.sha256(data).hexdigest()]


def test_concurrent_downloads_get_identical_bytes(hub_server, tmp_path):
    repo_id = _new_repo(hub_server, "concurrent")
    data = os.urandom(2 * MiB)
    HfApi().upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)

    def fetch(i: int) -> bytes:
        return Path(hf_hub_download(repo_id, "w.bin", cache_dir=tmp_path / f"cache{i}")).read_bytes()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, range(8)))
    assert all(r == data for r in results)


def _partial_put(endpoint: str, upload_href: str, announced_size: int, send: bytes) -> http.client.HTTPConnection:
    """Start a PUT of ``announced_size`` bytes and send only ``send`` of them; returns the open connection."""
    url = urlsplit(upload_href)
    conn = http.client.HTTPConnection(urlsplit(endpoint).hostname, urlsplit(endpoint).port, timeout=30)
    conn.putrequest("PUT", f"{url.path}?{url.query}")
    conn.putheader("Content-Length", str(announced_size))
    conn.endheaders()
    conn.send(send)
    return conn


def _upload_href(hub, repo_id: str, data: bytes) -> str:
    actions, errors, _ = post_lfs_batch_info([UploadInfo.from_bytes(data)], token=hub.token, repo_type="model",
                                             repo_id=repo_id, endpoint=hub.endpoint)
    assert not errors
    return actions[0]["actions"]["upload"]["href"]


def test_interrupted_upload_leaves_no_blob(hub_server):
    api = HfApi()
    repo_id = _new_repo(hub_server, "interrupted")
    data = os.urandom(4 * MiB)
    conn = _partial_put(hub_server.endpoint, _upload_href(hub_server, repo_id, data), len(data), data[: MiB])
    store, sha = hub_server.registry.store, hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + 10
    while not _temporaries(store.root) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server is receiving: its temporary blob exists
    conn.close()  # the client goes away mid-body
    while _temporaries(store.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _temporaries(store.root) == [] and not store.has_blob(sha)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)  # a retry goes through
    assert Path(hf_hub_download(repo_id, "w.bin")).read_bytes() == data


def test_cli_arguments_and_tokens_file(tmp_path):
    from se_zoo.cli import build_parser
    from se_zoo.registry.cli import read_tokens_file

    args = build_parser().parse_args(["hub", "serve", "--root", str(tmp_path), "--port", "0", "--token", "t"])
    assert (args.root, args.port, args.token, args.host) == (tmp_path, 0, "t", "127.0.0.1")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["hub", "serve", "--root", "r", "--token", "t", "--tokens-file", "f"])
    good = tmp_path / "tokens"
    good.write_text("# comment\nabc:write\n\nd:e:f:read\n")
    assert read_tokens_file(good) == {"abc": "write", "d:e:f": "read"}
    bad = tmp_path / "bad"
    bad.write_text("supersecret:admin\n")
    with pytest.raises(ValueError, match="line 1") as excinfo:
        read_tokens_file(bad)
    assert "supersecret" not in str(excinfo.value)


@pytest.mark.slow
def test_import_se_zoo_stays_free_of_the_server():
    code = ("import sys, se_zoo, se_zoo.cli; se_zoo.cli.build_parser(); "
            "print([m for m in ('starlette', 'uvicorn', 'se_zoo.registry.app') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_server_killed_mid_upload_leaves_consistent_store(tmp_path, monkeypatch):
    from helpers.hub import point_client_at
    from se_zoo.registry.app import HubServer

    hub = spawn_hub_server(tmp_path / "root")
    try:
        point_client_at(monkeypatch, hub.endpoint, hub.token, tmp_path / "hf_home")
        repo_id = "org/killed"
        HfApi().create_repo(repo_id)
        head = HfApi().upload_file(path_or_fileobj=b"before", path_in_repo="a.txt", repo_id=repo_id).oid
        data = os.urandom(8 * MiB)
        conn = _partial_put(hub.endpoint, _upload_href(hub, repo_id, data), len(data), data[: 3 * MiB])
        deadline = time.monotonic() + 30
        while not _temporaries(hub.root) and time.monotonic() < deadline:
            time.sleep(0.05)
        hub.process.kill()
        hub.process.wait()
        conn.close()
    finally:
        hub.process.kill()
    sha = hashlib.sha256(data).hexdigest()
    assert not (hub.root / "blobs" / sha[:2] / sha).exists()

    with HubServer(hub.root, {hub.token: "write"}).start() as restarted:  # same root, new process state
        assert _temporaries(hub.root) == []
        point_client_at(monkeypatch, restarted.endpoint, hub.token, tmp_path / "hf_home2")
        assert HfApi().model_info(repo_id).sha == head
        HfApi().upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
        assert Path(hf_hub_download(repo_id, "w.bin")).read_bytes() == data


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory use from /proc")
def test_200mb_round_trip_keeps_server_memory_flat(tmp_path, monkeypatch):
    from helpers.hub import point_client_at

    hub = spawn_hub_server(tmp_path / "root")
    try:
        point_client_at(monkeypatch, hub.endpoint, hub.token, tmp_path / "hf_home")
        repo_id = "org/big"
        HfApi().create_repo(repo_id)
        baseline = _rss_kib(hub.process.pid, "VmRSS")
        big = tmp_path / "big.bin"
        digest = hashlib.sha256()
        with open(big, "wb") as f:
            for _ in range(200):
                chunk = os.urandom(MiB)
                digest.update(chunk)
                f.write(chunk)
        HfApi().upload_file(path_or_fileobj=str(big), path_in_repo="big.bin", repo_id=repo_id)
        downloaded = Path(hf_hub_download(repo_id, "big.bin"))
        peak = _rss_kib(hub.process.pid, "VmHWM")
    finally:
        hub.process.kill()
        hub.process.wait()
    with open(downloaded, "rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest.hexdigest()
    assert (peak - baseline) * 1024 < 64 * MiB, f"server RSS grew by {(peak - baseline) / 1024:.0f} MiB"


def _stalled_get(endpoint: str, path: str, headers: str = ""):
    """A raw socket that sent ``GET path`` and reads nothing more (a tiny receive buffer: the server stalls)."""
    import socket

    url = urlsplit(endpoint)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: hub\r\n{headers}\r\n".encode())
    assert sock.recv(12) == b"HTTP/1.1 200"
    return sock


def test_zero_copy_downloads_end_quietly_when_clients_go_or_the_server_stops(tmp_path, caplog):
    """Verified blobs go out by sendfile from a thread per transfer: a range is exact, a client that resets
    mid-transfer and clients still downloading when the server stops leave no traceback and no descriptor."""
    import socket
    import struct

    from se_zoo.registry.app import HubServer

    server = HubServer(tmp_path / "root").start()
    store, data = server.registry.store, os.urandom(12 * MiB)
    with store.blob_writer() as writer:
        writer.write(data)
        sha256 = writer.commit()
    store.create_repo("ns", "big", private=False)
    store.commit("ns", "big", "main", [{"op": "add", "path": "w.bin", "sha256": sha256, "size": len(data),
                                        "lfs": True}], title="big")
    path = f"/ns/big/resolve/{store.resolve('ns', 'big', 'main')}/w.bin"
    uvicorn_logger = logging.getLogger("uvicorn")  # does not propagate to the root logger
    uvicorn_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING):
            session = get_session()
            assert session.get(server.endpoint + path).content == data  # hashed while streaming: now verified
            part = session.get(server.endpoint + path, headers={"Range": f"bytes={MiB + 7}-{5 * MiB}"})
            assert part.status_code == 206 and part.content == data[MiB + 7: 5 * MiB + 1]
            fds = len(os.listdir("/proc/self/fd"))
            reset = _stalled_get(server.endpoint, path)
            reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            reset.close()  # an RST mid-transfer
            stalled = [_stalled_get(server.endpoint, path) for _ in range(2)]
            time.sleep(0.5)
            server.stop()  # waits for the stalled transfers, then ends them
            for sock in stalled:
                sock.close()
    finally:
        uvicorn_logger.removeHandler(caplog.handler)
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert not [r for r in caplog.records if "Exception in ASGI" in r.getMessage()], caplog.text
    deadline = time.monotonic() + 10
    while len(os.listdir("/proc/self/fd")) > fds and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) <= fds
