"""``--require-signed``/``--trusted-keys`` and pickle scans (``securityRepoStatus``, ``--refuse-unsafe-pickles``).

Through the official client on loopback, against a registry started with a commit policy. Files
are signed here with se_zoo.registry.signing (model-signing); nothing of the model side is needed.
"""
import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
from helpers.hub import READ_TOKEN, WRITE_TOKEN, point_client_at
from helpers.signing import write_key_pair, write_policy
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from se_zoo.registry.signing import SIGNATURE_NAME, sign_directory

pytest.importorskip("model_signing")


class _Evil:
    """Pickling it records a call of os.system; nothing runs until someone unpickles the bytes."""

    def __reduce__(self):
        return os.system, ("echo owned",)


EVIL_PICKLE = pickle.dumps(_Evil())  # built without executing anything
SAFE_PICKLE = pickle.dumps({"weights": [0.5, 1.5]})


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    return {"trusted": write_key_pair(base / "trusted"), "other": write_key_pair(base / "other")}


@pytest.fixture(scope="module")
def server(tmp_path_factory, keys):
    from se_zoo.registry.app import HubServer
    from se_zoo.registry.signing import TrustPolicy
    from se_zoo.registry.store.policy import CommitPolicy

    policy_file = write_policy(tmp_path_factory.mktemp("policy") / "trusted-keys", {"secure": [keys["trusted"][1]]})
    policy = CommitPolicy(("secure",), TrustPolicy.load(policy_file), refuse_unsafe_pickles=True)
    hub = HubServer(tmp_path_factory.mktemp("root"), {WRITE_TOKEN: "write", READ_TOKEN: "read"},
                    commit_policy=policy).start()
    yield hub
    hub.stop()


@pytest.fixture
def api(server, monkeypatch, tmp_path):
    point_client_at(monkeypatch, server.endpoint, WRITE_TOKEN, tmp_path / "hf_home")
    return HfApi()


def _model_dir(folder: Path, key: Path = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"architecture": "se_zoo_resnet18"}\n')
    (folder / "model.safetensors").write_bytes(b"\0" + os.urandom(200_000))  # NUL first: an LFS/Xet file
    (folder / "README.md").write_text("# model\n")
    if key is not None:
        sign_directory(folder, key)
    return folder


def _head(api, repo_id):
    return api.list_repo_refs(repo_id).branches[0].target_commit


def _refused(call, *words):
    with pytest.raises(HfHubHTTPError) as info:
        call()
    assert info.value.response.status_code == 403, info.value
    for word in words:
        assert word in str(info.value), info.value


@pytest.fixture
def signed(api, keys, tmp_path):
    """A signed repo under the namespace that requires signatures: (repo_id, its folder)."""
    repo_id = f"secure/m{next(_count)}"
    api.create_repo(repo_id)
    folder = _model_dir(tmp_path / "model", keys["trusted"][0])
    api.upload_folder(folder_path=folder, repo_id=repo_id)  # Xet for the weights, regular files for the rest
    return repo_id, folder


_count = iter(range(10**6))


def test_a_signed_commit_is_accepted_and_keeps_its_signature(api, server, signed, keys, tmp_path):
    repo_id, folder = signed
    files = set(api.list_repo_files(repo_id))
    assert {SIGNATURE_NAME, "model.safetensors", "config.json", "README.md"} <= files
    key_id = hashlib.sha256(keys["trusted"][1].read_bytes()).hexdigest()[:16]
    page = get_session().get(f"{server.endpoint}/{repo_id}").text
    assert f"signed by {key_id}, verified" in page
    api.create_repo("open/plain")
    api.upload_folder(folder_path=_model_dir(tmp_path / "plain"), repo_id="open/plain")
    assert 'id="signature">unsigned<' in get_session().get(f"{server.endpoint}/open/plain").text


def test_an_unsigned_commit_is_refused_and_nothing_is_stored(api, tmp_path):
    repo_id = "secure/unsigned"
    api.create_repo(repo_id)
    before = _head(api, repo_id)
    _refused(lambda: api.upload_folder(folder_path=_model_dir(tmp_path / "m"), repo_id=repo_id), "unsigned")
    assert _head(api, repo_id) == before and "model.safetensors" not in api.list_repo_files(repo_id)


def test_an_untrusted_key_is_refused(api, keys, tmp_path):
    repo_id = "secure/untrusted"
    api.create_repo(repo_id)
    before = _head(api, repo_id)
    folder = _model_dir(tmp_path / "m", keys["other"][0])
    other_id = hashlib.sha256(keys["other"][1].read_bytes()).hexdigest()[:16]
    _refused(lambda: api.upload_folder(folder_path=folder, repo_id=repo_id), other_id, "not trusted")
    assert _head(api, repo_id) == before


@pytest.mark.parametrize("tamper", ["weights_byte", "config_swapped", "file_added", "file_removed", "sig_removed"])
def test_a_commit_that_breaks_the_signature_is_refused(api, signed, tamper):
    repo_id, folder = signed
    before = _head(api, repo_id)
    if tamper == "weights_byte":  # new bytes, new LFS pointer: only the signature can tell
        data = bytearray((folder / "model.safetensors").read_bytes())
        data[-1] ^= 1
        ops, named = [CommitOperationAdd("model.safetensors", bytes(data))], "model.safetensors differs"
    elif tamper == "config_swapped":
        ops, named = [CommitOperationAdd("config.json", b'{"architecture": "other"}\n')], "config.json differs"
    elif tamper == "file_added":
        ops, named = [CommitOperationAdd("extra.py", b"print(1)\n")], "extra.py is not covered"
    elif tamper == "file_removed":
        ops, named = [CommitOperationDelete("README.md")], "README.md is signed but missing"
    else:
        ops, named = [CommitOperationDelete(SIGNATURE_NAME)], "unsigned"
    _refused(lambda: api.create_commit(repo_id, ops, commit_message="tamper"), named)
    assert _head(api, repo_id) == before  # atomically refused: the branch did not move


def test_a_tampered_weights_file_sent_through_plain_lfs_is_refused(api, server, signed):
    repo_id, folder = signed
    before = _head(api, repo_id)
    data = b"\0" + os.urandom(1000)
    actions, errors, _ = post_lfs_batch_info([UploadInfo.from_bytes(data)], token=WRITE_TOKEN, repo_type="model",
                                             repo_id=repo_id, endpoint=server.endpoint)
    assert not errors
    upload = actions[0]["actions"]["upload"]
    hf_raise_for_status(get_session().put(upload["href"], content=data, headers=upload.get("header") or {}))
    lines = [{"key": "header", "value": {"summary": "swap weights"}},
             {"key": "lfsFile", "value": {"path": "model.safetensors", "algo": "sha256",
                                          "oid": hashlib.sha256(data).hexdigest(), "size": len(data)}}]
    response = get_session().post(
        f"{server.endpoint}/api/models/{repo_id}/commit/main", content="\n".join(map(json.dumps, lines)),
        headers={**build_hf_headers(token=WRITE_TOKEN), "Content-Type": "application/x-ndjson"})
    assert response.status_code == 403 and "model.safetensors differs" in response.text
    assert _head(api, repo_id) == before


def test_a_resigned_update_is_accepted(api, signed, keys):
    repo_id, folder = signed
    (folder / "config.json").write_text('{"architecture": "se_zoo_resnet18", "num_classes": 10}\n')
    sign_directory(folder, keys["trusted"][0])
    api.create_commit(repo_id, [CommitOperationAdd("config.json", str(folder / "config.json")),
                                CommitOperationAdd(SIGNATURE_NAME, str(folder / SIGNATURE_NAME))],
                      commit_message="update")
    assert b"num_classes" in Path(api.hf_hub_download(repo_id, "config.json")).read_bytes()


def test_other_namespaces_need_no_signature(api, tmp_path):
    repo_id = "open/m"
    api.create_repo(repo_id)
    api.upload_folder(folder_path=_model_dir(tmp_path / "m"), repo_id=repo_id)
    assert "model.safetensors" in api.list_repo_files(repo_id)


def test_an_unsafe_pickle_is_refused_with_the_option(api):
    repo_id = "open/pickles"
    api.create_repo(repo_id)
    before = _head(api, repo_id)
    _refused(lambda: api.upload_file(path_or_fileobj=EVIL_PICKLE, path_in_repo="pytorch_model.bin",
                                     repo_id=repo_id), "pytorch_model.bin", "system", "unsafe pickle")
    assert _head(api, repo_id) == before
    api.upload_file(path_or_fileobj=SAFE_PICKLE, path_in_repo="pytorch_model.bin", repo_id=repo_id)  # safe: kept
    status = api.model_info(repo_id, securityStatus=True).security_repo_status
    assert status == {"scansDone": True, "filesWithIssues": []}


def test_unsafe_pickles_are_flagged_in_security_repo_status(monkeypatch, tmp_path):
    """Without --refuse-unsafe-pickles the commit is stored, and model_info reports the finding."""
    from se_zoo.registry.app import HubServer

    hub = HubServer(tmp_path / "root", {WRITE_TOKEN: "write"}).start()
    try:
        point_client_at(monkeypatch, hub.endpoint, WRITE_TOKEN, tmp_path / "hf_home")
        api = HfApi()
        api.create_repo("ns/pickles")
        api.upload_file(path_or_fileobj=EVIL_PICKLE, path_in_repo="pytorch_model.bin", repo_id="ns/pickles")
        api.upload_file(path_or_fileobj=SAFE_PICKLE, path_in_repo="optimizer.pt", repo_id="ns/pickles")
        api.upload_file(path_or_fileobj=b"PK\x03\x04 no zip", path_in_repo="broken.pt", repo_id="ns/pickles")
        status = api.model_info("ns/pickles", securityStatus=True).security_repo_status
        assert status["scansDone"] is True
        assert [(f["path"], f["level"]) for f in status["filesWithIssues"]] == [
            ("broken.pt", "suspicious"), ("pytorch_model.bin", "unsafe")]  # unparseable: reported, not "safe"
        assert {"module": "posix" if os.name == "posix" else "nt", "name": "system",
                "safety": "dangerous"} in status["filesWithIssues"][1]["pickleImports"]
        assert api.model_info("ns/pickles").security_repo_status is None  # only when asked for
        page = get_session().get(f"{hub.endpoint}/ns/pickles/blob/main/pytorch_model.bin").text
        assert "pickle scan: unsafe (posix.system)" in page or "pickle scan: unsafe (nt.system)" in page
        assert "pickle scan: safe" in get_session().get(f"{hub.endpoint}/ns/pickles/blob/main/optimizer.pt").text
        assert "pytorch_model.bin unsafe" in get_session().get(f"{hub.endpoint}/ns/pickles").text
    finally:
        hub.stop()


def test_require_signed_needs_trusted_keys(tmp_path):
    import argparse

    from se_zoo.registry import cli
    from se_zoo.registry.errors import CommandError

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["serve", "--root", str(tmp_path), "--require-signed", "secure"])
    with pytest.raises(CommandError, match="needs --trusted-keys"):
        cli.commit_policy_from(args)
    args = parser.parse_args(["serve", "--root", str(tmp_path), "--trusted-keys", str(tmp_path / "missing")])
    with pytest.raises(CommandError, match="does not exist"):
        cli.commit_policy_from(args)


def test_mirroring_an_unsigned_commit_into_a_signed_namespace_is_refused(server, tmp_path, monkeypatch):
    from helpers.mirror import serve

    from se_zoo.registry.errors import RemoteRefused
    from se_zoo.registry.mirror.transfer import RegistrySink, mirror_repos
    from se_zoo.registry.mirror.upstream import Upstream

    with serve(tmp_path / "source") as source:
        point_client_at(monkeypatch, source.endpoint, WRITE_TOKEN, tmp_path / "hf_home")
        HfApi().create_repo("secure/copied")
        HfApi().upload_folder(folder_path=_model_dir(tmp_path / "m"), repo_id="secure/copied")
        sink = RegistrySink(server.endpoint, WRITE_TOKEN)
        try:
            with pytest.raises(RemoteRefused, match="unsigned"):
                mirror_repos(Upstream(source.endpoint), sink, [("secure/copied", "main")], log=lambda _: None)
        finally:
            sink.close()
    assert not HfApi(endpoint=server.endpoint, token=WRITE_TOKEN).repo_exists("secure/copied")


def test_certificate_mode_verifies_against_the_trusted_ca(tmp_path):
    from helpers.signing import write_ca_and_signer

    from se_zoo.registry.signing import SignatureError, TrustedKey, directory_digests, verify_directory

    ca, certificate, key = write_ca_and_signer(tmp_path / "ca1")
    other_ca, _, _ = write_ca_and_signer(tmp_path / "ca2")
    folder = _model_dir(tmp_path / "m")
    sign_directory(folder, key, certificate=certificate)
    signed = verify_directory(folder, "secure/cert", [TrustedKey.from_file(ca)])
    assert TrustedKey.from_file(ca).kind == "certificate" and signed.key_id == TrustedKey.from_file(ca).key_id
    assert set(signed.digests) == set(directory_digests(folder)) - {SIGNATURE_NAME}
    with pytest.raises(SignatureError, match="not trusted"):
        verify_directory(folder, "secure/cert", [TrustedKey.from_file(other_ca)])
    (folder / "README.md").write_text("# changed\n")
    with pytest.raises(SignatureError, match="README.md differs"):
        verify_directory(folder, "secure/cert", [TrustedKey.from_file(ca)])


def test_without_model_signing_the_error_names_the_extra(monkeypatch, tmp_path):
    import argparse
    import sys

    from se_zoo.registry import cli
    from se_zoo.registry.errors import CommandError

    monkeypatch.setitem(sys.modules, "model_signing", None)  # as if not installed
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["serve", "--root", str(tmp_path), "--trusted-keys", str(tmp_path)])
    with pytest.raises(CommandError, match=r"pip install 'se-zoo\[signing\]'"):
        cli.commit_policy_from(args)
    with pytest.raises(ModuleNotFoundError, match=r"se-zoo\[signing\]"):
        sign_directory(tmp_path, tmp_path / "key.pem")
