"""Signed pushes (``sign_key``) and verification on load (``SE_ZOO_TRUSTED_KEYS``) through the local registry."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from helpers.signing import write_key_pair, write_policy
from helpers.weights import randomize_
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download

from se_zoo.hub import from_pretrained, pull, push_to_hub
from se_zoo.registry.signing import SIGNATURE_NAME, SignatureError

pytest.importorskip("model_signing")


def _r18(seed: int = 0):
    return randomize_(timm.create_model("se_zoo_resnet18", layers=(1, 1, 1, 1)), seed=seed).eval()


class _Spy:
    """Stands in for a function that must not run."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        raise AssertionError("weights loaded although the repo was refused")


@pytest.fixture
def keys(tmp_path):
    return {"trusted": write_key_pair(tmp_path / "trusted"), "other": write_key_pair(tmp_path / "other")}


@pytest.fixture
def signed_repo(hub_server, keys):
    """A repo pushed with the trusted key: (repo_id, model, push result)."""
    model = _r18()
    result = push_to_hub(model, f"{hub_server.namespace}/signed", sign_key=keys["trusted"][0])
    return result.repo_id, model, result


@pytest.fixture
def policy(tmp_path, keys, monkeypatch, hub_server):
    path = write_policy(tmp_path / "policy", {hub_server.namespace: [keys["trusted"][1]]})
    monkeypatch.setenv("SE_ZOO_TRUSTED_KEYS", str(path))
    return path


@pytest.fixture
def no_load(monkeypatch):
    """Fail if any safetensors deserialisation happens."""
    spy = _Spy()
    monkeypatch.setattr(safetensors.torch, "load", spy)
    monkeypatch.setattr(safetensors.torch, "load_file", spy)
    return spy


def _same(a, b):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b(x))


def test_signed_round_trip_pull_and_timm(signed_repo, policy):
    repo_id, model, result = signed_repo
    files = HfApi().list_repo_files(repo_id)
    assert SIGNATURE_NAME in files and "model.safetensors" in files  # pushed in the same commit
    pulled = pull(repo_id)
    assert pulled.revision == result.commit_sha
    _same(pulled.model, model)
    _same(from_pretrained(repo_id), model)
    _same(timm.create_model(f"hf-hub:{repo_id}", pretrained=True), model)  # through se-zoo's hook


def test_policy_from_a_folder(signed_repo, tmp_path, keys, hub_server, monkeypatch):
    repo_id, model, _ = signed_repo
    folder = tmp_path / "trusted-folder" / hub_server.namespace
    folder.mkdir(parents=True)
    (folder / "team.pub").write_bytes(Path(keys["other"][1]).read_bytes())  # only another key is trusted
    monkeypatch.setenv("SE_ZOO_TRUSTED_KEYS", str(folder.parent))
    spy = _Spy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(safetensors.torch, "load", spy)
        with pytest.raises(SignatureError, match="not trusted"):
            pull(repo_id)
    assert spy.calls == 0
    (folder / "team.pub").write_bytes(Path(keys["trusted"][1]).read_bytes())
    _same(pull(repo_id).model, model)


@pytest.mark.slow
def test_cli_pull_refuses_in_one_line(signed_repo, tmp_path, keys, hub_server):
    repo_id, _, _ = signed_repo
    policy = write_policy(tmp_path / "untrusted", {hub_server.namespace: [keys["other"][1]]})
    done = subprocess.run([sys.executable, "-m", "se_zoo.cli", "pull", repo_id], capture_output=True, text=True,
                          env={**__import__("os").environ, "SE_ZOO_TRUSTED_KEYS": str(policy)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "not trusted" in done.stderr, done.stderr


def _tamper(repo_id, operations):
    HfApi().create_commit(repo_id, operations, commit_message="tamper")


def _bad_weights(path: str) -> bytes:
    data = bytearray(Path(path).read_bytes())
    data[-1] ^= 1  # one byte of a tensor
    return bytes(data)


@pytest.mark.parametrize("tamper", ["weights_byte", "config_swapped", "file_added", "file_removed", "unsigned"])
def test_tampered_repo_is_refused_and_nothing_loads(signed_repo, policy, no_load, tamper, tmp_path):
    repo_id, _, _ = signed_repo
    if tamper == "weights_byte":  # its LFS pointer (sha256) is updated with it, so only the signature can tell
        ops = [CommitOperationAdd("model.safetensors", _bad_weights(hf_hub_download(repo_id, "model.safetensors")))]
        named = "model.safetensors differs"
    elif tamper == "config_swapped":
        config = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
        config["num_classes"] = 10
        ops, named = [CommitOperationAdd("config.json", json.dumps(config).encode())], "config.json differs"
    elif tamper == "file_added":
        ops, named = [CommitOperationAdd("extra.py", b"print('hi')\n")], "extra.py is not covered"
    elif tamper == "file_removed":
        ops, named = [CommitOperationDelete("README.md")], "README.md is signed but missing"
    else:
        ops, named = [CommitOperationDelete(SIGNATURE_NAME)], f"no {SIGNATURE_NAME}"
    _tamper(repo_id, ops)
    for load in (lambda: pull(repo_id), lambda: from_pretrained(repo_id),
                 lambda: timm.create_model(f"hf-hub:{repo_id}", pretrained=True)):
        with pytest.raises(SignatureError, match=named):
            load()
    assert no_load.calls == 0


def test_untrusted_key_is_refused(hub_server, keys, policy, no_load):
    repo_id = push_to_hub(_r18(), f"{hub_server.namespace}/other", sign_key=keys["other"][0]).repo_id
    other_id = hashlib.sha256(Path(keys["other"][1]).read_bytes()).hexdigest()[:16]
    with pytest.raises(SignatureError, match=f"signed by key {other_id}, which is not trusted"):
        pull(repo_id)
    with pytest.raises(SignatureError, match="not trusted"):
        timm.create_model(f"hf-hub:{repo_id}", pretrained=True)
    assert no_load.calls == 0


def test_without_a_policy_nothing_changes(hub_server, monkeypatch):
    monkeypatch.delenv("SE_ZOO_TRUSTED_KEYS", raising=False)
    model = _r18(1)
    repo_id = push_to_hub(model, f"{hub_server.namespace}/plain").repo_id  # unsigned
    assert SIGNATURE_NAME not in HfApi().list_repo_files(repo_id)
    _same(pull(repo_id).model, model)


def test_policy_for_another_namespace_does_not_apply(hub_server, tmp_path, keys, monkeypatch):
    monkeypatch.setenv("SE_ZOO_TRUSTED_KEYS", str(write_policy(tmp_path / "p", {"elsewhere/*": [keys["trusted"][1]]})))
    repo_id = push_to_hub(_r18(2), f"{hub_server.namespace}/plain").repo_id
    assert pull(repo_id).model is not None


def test_signed_push_drops_files_it_does_not_sign(hub_server, keys, policy):
    repo_id = f"{hub_server.namespace}/stale"
    HfApi().create_repo(repo_id)
    HfApi().upload_file(path_or_fileobj=b"old", path_in_repo="notes.txt", repo_id=repo_id)
    push_to_hub(_r18(3), repo_id, sign_key=keys["trusted"][0])
    assert "notes.txt" not in HfApi().list_repo_files(repo_id)
    assert pull(repo_id).model is not None


def test_bad_sign_key_pushes_nothing(hub_server, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    repo_id = f"{hub_server.namespace}/bad"
    with pytest.raises(SignatureError, match="sign_key"):
        push_to_hub(_r18(), repo_id, sign_key=bad)
    assert "model.safetensors" not in HfApi().list_repo_files(repo_id)


@pytest.mark.slow
def test_cli_push_signs(hub_server, keys, policy, tmp_path):
    from se_zoo.hub import save_pretrained

    save_pretrained(_r18(4), tmp_path / "dir")
    repo_id = f"{hub_server.namespace}/cli"
    done = subprocess.run([sys.executable, "-m", "se_zoo.cli", "push", str(tmp_path / "dir"), repo_id,
                           "--sign-key", str(keys["trusted"][0])], capture_output=True, text=True,
                          env={**__import__("os").environ})
    assert done.returncode == 0, done.stderr
    assert pull(repo_id).model is not None


@pytest.mark.slow
def test_signed_round_trip_through_a_mirror_and_a_bundle(tmp_path, keys, monkeypatch):
    """The mirror keeps model.sig; a pull-through mirror and an imported bundle load verified; the import
    itself verifies the bundle's signed repos first, and refuses a bundle signed by an untrusted key."""
    from helpers.hub import WRITE_TOKEN, point_client_at
    from helpers.mirror import run_cli, serve

    model = _r18(5)
    monkeypatch.setenv("SE_ZOO_TRUSTED_KEYS", str(write_policy(tmp_path / "policy", {"team": [keys["trusted"][1]]})))
    with serve(tmp_path / "up") as upstream:
        point_client_at(monkeypatch, upstream.endpoint, WRITE_TOKEN, tmp_path / "hf_up")
        repo_id = push_to_hub(model, "team/signed", sign_key=keys["trusted"][0]).repo_id
        with serve(tmp_path / "down", upstream=upstream.endpoint) as mirror:  # pull-through
            point_client_at(monkeypatch, mirror.endpoint, None, tmp_path / "hf_mirror")
            _same(pull(repo_id).model, model)
        run_cli("mirror", repo_id, "--from", upstream.endpoint, "--bundle", str(tmp_path / "b.bundle"))
    untrusted = write_policy(tmp_path / "untrusted", {"team": [keys["other"][1]]})
    done = subprocess.run([sys.executable, "-m", "se_zoo.registry", "import", str(tmp_path / "b.bundle"),
                           "--to-root", str(tmp_path / "refused"), "--trusted-keys", str(untrusted)],
                          capture_output=True, text=True, env={**__import__("os").environ})
    assert done.returncode == 1 and "not trusted" in done.stderr, done.stderr
    assert not list((tmp_path / "refused" / "repos").glob("*/*"))  # nothing written
    run_cli("import", str(tmp_path / "b.bundle"), "--to-root", str(tmp_path / "gapped"),
            "--trusted-keys", str(tmp_path / "policy"))
    with serve(tmp_path / "gapped") as gapped:
        point_client_at(monkeypatch, gapped.endpoint, None, tmp_path / "hf_gapped")
        _same(pull(repo_id).model, model)
        _same(timm.create_model(f"hf-hub:{repo_id}", pretrained=True), model)


class _Evil:
    def __reduce__(self):
        return __import__("os").system, ("echo owned",)


def test_a_pickle_the_scan_flags_unsafe_is_never_unpickled(hub_server, monkeypatch):
    import pickle

    from se_zoo.hub import IntegrityError

    repo_id = f"{hub_server.namespace}/evil"
    api = HfApi()
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=pickle.dumps(_Evil()), path_in_repo="pytorch_model.bin", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b'{"architecture": "se_zoo_resnet18"}', path_in_repo="config.json",
                    repo_id=repo_id)
    status = api.model_info(repo_id, securityStatus=True).security_repo_status
    assert [f["path"] for f in status["filesWithIssues"]] == ["pytorch_model.bin"]
    spy = _Spy()
    monkeypatch.setattr(torch, "load", spy)
    monkeypatch.setattr(pickle, "loads", spy)
    with pytest.raises(IntegrityError, match="flags it unsafe.*system"):
        pull(repo_id, allow_pickle=True)
    assert spy.calls == 0


def _image_folder(root: Path) -> Path:
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 8), ("val", 4)):
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8, generator=generator)
                Image.fromarray(pixels.numpy()).save(root / split / label / f"{i}.png")
    return root


def test_cli_train_push_to_hub_signs_the_push(hub_server, keys, policy, tmp_path):
    from se_zoo.cli import main
    from se_zoo.errors import InvalidArgument
    from se_zoo.training import TrainConfig
    from se_zoo.training.config import check_config

    with pytest.raises(InvalidArgument, match="sign_key must be None without push_to_hub"):
        check_config(TrainConfig(model="se_zoo_resnet18", data="d", output="o", sign_key="k.pem"))
    repo_id = f"{hub_server.namespace}/trained"
    assert main(["train", "--model", "se_zoo_resnet18", "--model-kwargs", "layers=(1,1,1,1)", "--data",
                 str(_image_folder(tmp_path / "data")), "--img-size", "32", "--epochs", "1", "--batch-size", "8",
                 "--workers", "0", "--output", str(tmp_path / "run"), "--push-to-hub", repo_id,
                 "--sign-key", str(keys["trusted"][0]), "--no-progress"]) == 0
    assert {SIGNATURE_NAME, "metrics.jsonl"} <= set(HfApi().list_repo_files(repo_id))
    assert pull(repo_id).model is not None  # verified: the signature covers every pushed file


def test_a_key_removed_from_the_policy_is_no_longer_trusted_in_the_same_process(signed_repo, tmp_path, keys,
                                                                                 hub_server, monkeypatch):
    repo_id, _, _ = signed_repo
    monkeypatch.setenv("SE_ZOO_TRUSTED_KEYS", str(write_policy(tmp_path / "a", {"*": [keys["trusted"][1]]})))
    assert pull(repo_id).model is not None
    monkeypatch.setenv("SE_ZOO_TRUSTED_KEYS", str(write_policy(tmp_path / "b", {"*": [keys["other"][1]]})))
    with pytest.raises(SignatureError, match="not trusted"):
        pull(repo_id)
