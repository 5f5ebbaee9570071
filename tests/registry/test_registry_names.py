"""One name, one meaning: file/folder conflicts, Unicode spellings and repo id case."""
import base64
import json
import unicodedata
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import build_hf_headers, get_session

from se_zoo.registry.store.names import find_path_conflict


def _commit_raw(hub, repo_id, paths):
    lines = [json.dumps({"key": "header", "value": {"summary": "raw"}})]
    for path in paths:
        lines.append(json.dumps({"key": "file", "value": {"path": path, "encoding": "base64",
                                                          "content": base64.b64encode(path.encode()).decode()}}))
    return get_session().post(f"{hub.endpoint}/api/models/{repo_id}/commit/main", content="\n".join(lines).encode(),
                              headers={**build_hf_headers(token=hub.token), "Content-Type": "application/x-ndjson"})


def test_a_path_cannot_be_both_a_file_and_a_folder(hub_server, tmp_path):
    api = HfApi()
    repo_id = f"{hub_server.namespace}/conflict"
    api.create_repo(repo_id)
    head = api.model_info(repo_id).sha
    with pytest.raises(HfHubHTTPError) as excinfo:  # both in one commit, as the bug report did
        api.create_commit(repo_id, [CommitOperationAdd("dirx", b"file"), CommitOperationAdd("dirx/a", b"nested")],
                          commit_message="both")
    response = excinfo.value.response
    assert response.status_code == 409
    assert "'dirx'" in response.json()["error"] and "'dirx/a'" in response.json()["error"]
    assert api.model_info(repo_id).sha == head
    api.upload_file(path_or_fileobj=b"nested", path_in_repo="dirx/a", repo_id=repo_id)
    for path in ["dirx", "dirx/a/deeper"]:  # against what the branch already holds, both ways
        response = _commit_raw(hub_server, repo_id, [path])
        assert response.status_code == 409, path
    snapshot = Path(snapshot_download(repo_id, cache_dir=tmp_path / "c"))
    assert (snapshot / "dirx" / "a").read_bytes() == b"nested"
    # replacing the folder by a file in one commit is fine: the folder is deleted first
    lines = [json.dumps({"key": "header", "value": {"summary": "swap"}}),
             json.dumps({"key": "deletedFolder", "value": {"path": "dirx/"}}),
             json.dumps({"key": "file", "value": {"path": "dirx", "content": base64.b64encode(b"f").decode()}})]
    r = get_session().post(f"{hub_server.endpoint}/api/models/{repo_id}/commit/main", content="\n".join(lines).encode(),
                           headers={**build_hf_headers(token=hub_server.token), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and api.list_repo_files(repo_id) == ["dirx"]


def test_find_path_conflict():
    assert find_path_conflict(["a", "b/c"], ["a"]) is None
    assert find_path_conflict(["a", "a/b"], ["a"]) == ("a", "a/b")
    assert find_path_conflict(["a", "a/b/c"], ["a/b/c"]) == ("a", "a/b/c")
    assert find_path_conflict(["ab", "a/b"], ["ab", "a/b"]) is None


def test_non_nfc_bidi_and_control_characters_are_refused(hub_server):
    api = HfApi()
    repo_id = f"{hub_server.namespace}/unicode"
    api.create_repo(repo_id)
    nfc = unicodedata.normalize("NFC", "caf\u00e9.txt")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    response = _commit_raw(hub_server, repo_id, [nfd])
    assert response.status_code == 400 and "NFC" in response.json()["error"]
    for evil in ["safe\u202etxt.exe", "a\u2066b.txt", "x\u0085y.txt", "tab\there.txt"]:
        response = _commit_raw(hub_server, repo_id, [evil])
        assert response.status_code == 400, evil
        assert "U+" in response.json()["error"]
    api.upload_file(path_or_fileobj=b"ok", path_in_repo=nfc, repo_id=repo_id)
    assert api.list_repo_files(repo_id) == [nfc]
    assert Path(hf_hub_download(repo_id, nfc)).read_bytes() == b"ok"


def test_repo_ids_are_unique_and_resolve_case_insensitively(hub_server):
    api = HfApi()
    ns = hub_server.namespace
    api.create_repo(f"{ns.upper()}/pub")
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo(f"{ns}/PUB")
    assert excinfo.value.response.status_code == 409
    api.create_repo(f"{ns}/PUB", exist_ok=True)  # the client reads the existing repo's url
    api.upload_file(path_or_fileobj=b"w", path_in_repo="a.txt", repo_id=f"{ns}/Pub")
    info = api.model_info(f"{ns}/pUb")
    assert info.id == f"{ns.upper()}/pub" and [s.rfilename for s in info.siblings] == ["a.txt"]
    assert Path(hf_hub_download(f"{ns.lower()}/PUB", "a.txt")).read_bytes() == b"w"
    assert [m.id for m in api.list_models(author=ns)] == [f"{ns.upper()}/pub"]
    api.create_repo(f"{ns}/second")  # the namespace keeps its first spelling
    assert sorted(m.id for m in api.list_models(author=ns)) == [f"{ns.upper()}/pub", f"{ns.upper()}/second"]
    api.delete_repo(f"{ns}/PUB")
    assert [m.id for m in api.list_models(author=ns)] == [f"{ns.upper()}/second"]
