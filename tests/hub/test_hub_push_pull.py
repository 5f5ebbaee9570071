"""Push to and pull from the local Hub registry, with the integrity checks."""
import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from helpers.weights import randomize_
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from se_zoo.hub import CardOptions, IntegrityError, from_pretrained, pull, push_to_hub, save_pretrained
from se_zoo.pretrained import catalog as _catalog


def _r18(seed: int = 0, **kwargs):
    """A small SE-ResNet: one block per stage keeps uploads small."""
    return randomize_(timm.create_model("se_zoo_resnet18", layers=(1, 1, 1, 1), **kwargs), seed=seed).eval()


def _assert_same_model(pulled, reference, in_chans: int = 3):
    x = torch.randn(2, in_chans, 64, 64)
    with torch.no_grad():
        assert torch.equal(pulled.eval()(x), reference(x))
    pulled_sd, reference_sd = pulled.state_dict(), reference.state_dict()
    assert pulled_sd.keys() == reference_sd.keys()
    assert all(torch.equal(pulled_sd[k], v) for k, v in reference_sd.items())


class _Spy:
    """Stands in for a function that must not run: counts the call and fails."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        raise AssertionError("called although the weights were refused")


def _hf_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _pin(monkeypatch, record):
    """Add ``record`` to the catalogue of the se_resnet family."""
    load = _catalog.load_records
    monkeypatch.setattr(_catalog, "load_records",
                        lambda family: load(family) + ([record] if family == "se_resnet" else []))


@pytest.mark.parametrize("name", ["se_zoo_resnet18", "se_zoo_mobilenetv2_050"])
def test_push_pull_round_trip_is_bit_identical(hub_server, name):
    if name not in timm.list_models("se_zoo_*"):
        pytest.skip(f"{name} is not registered")
    kwargs = {"layers": (1, 1, 1, 1)} if "resnet" in name else {}
    model = randomize_(timm.create_model(name, num_classes=7, **kwargs)).eval()
    repo_id = f"{hub_server.namespace}/{name}"

    pushed = push_to_hub(model, repo_id, card=CardOptions(metrics={"top1": 12.5}, datasets="imagenet-1k"))
    assert pushed.repo_id == repo_id and pushed.revision == "main" and len(pushed.commit_sha) == 40
    assert pushed.commit_url.startswith(hub_server.endpoint) and pushed.commit_sha in pushed.commit_url
    files = {s.rfilename: s for s in HfApi().model_info(repo_id, files_metadata=True).siblings}
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    assert files["model.safetensors"].lfs.sha256 == pushed.weights_sha256
    local = hf_hub_download(repo_id, "model.safetensors")
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == pushed.weights_sha256

    pulled = pull(repo_id)
    assert (pulled.revision, pulled.weights_sha256) == (pushed.commit_sha, pushed.weights_sha256)
    assert pulled.model.pretrained_cfg["architecture"] == name
    assert "state_dict" not in pulled.model.pretrained_cfg
    _assert_same_model(pulled.model, model)


def test_history_and_branches(hub_server):
    repo_id = f"{hub_server.namespace}/r18"
    old, new, dev = (_r18(seed=seed, num_classes=3) for seed in (1, 2, 3))
    first = push_to_hub(old, repo_id)
    second = push_to_hub(new, repo_id, commit_message="retrained")
    on_dev = push_to_hub(dev, repo_id, revision="dev")
    assert first.commit_sha != second.commit_sha and first.weights_sha256 != second.weights_sha256
    assert HfApi().list_repo_commits(repo_id)[0].title == "retrained"
    assert on_dev.revision == "dev"
    _assert_same_model(from_pretrained(repo_id), new)
    _assert_same_model(from_pretrained(repo_id, revision=first.commit_sha), old)
    _assert_same_model(from_pretrained(repo_id, revision="dev"), dev)


def test_config_recreates_non_default_arguments(hub_server):
    repo_id = f"{hub_server.namespace}/gray"
    model = _r18(num_classes=5, in_chans=1, drop_rate=0.25, drop_path_rate=0.1)
    push_to_hub(model, repo_id)
    config = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
    assert set(config) >= {"architecture", "num_classes", "num_features", "model_args", "pretrained_cfg"}
    _, arch, model_args = timm.models.load_model_config_from_hf(repo_id)  # timm's own reader
    assert arch == "se_zoo_resnet18"
    expected = {"num_classes": 5, "in_chans": 1, "drop_rate": 0.25, "drop_path_rate": 0.1, "layers": [1, 1, 1, 1]}
    if hasattr(timm.models, "get_model_args"):  # timm's own export: exactly the non-default arguments
        assert model_args == {**expected, "global_pool": "avg"}
    else:  # older timm: the arguments se-zoo's builder recorded, the architecture's own among them
        assert {k: model_args.get(k) for k in expected} == expected
    pulled = from_pretrained(repo_id)
    assert pulled.num_classes == 5 and pulled.conv1.in_channels == 1
    assert pulled.drop_rate == 0.25 and pulled.layer4[0].drop_path.drop_prob == pytest.approx(0.1)
    _assert_same_model(pulled, model, in_chans=1)


def test_push_a_saved_directory_keeps_its_bytes_and_metrics(hub_server, tmp_path):
    repo_id = f"{hub_server.namespace}/from-dir"
    model = _r18(num_classes=4)
    sha256 = save_pretrained(model, tmp_path / "out", card=CardOptions(metrics={"top1": 70.0}, datasets="cifar10"))
    pushed = push_to_hub(tmp_path / "out", repo_id)
    assert pushed.weights_sha256 == sha256
    readme = Path(hf_hub_download(repo_id, "README.md")).read_text()
    assert f'"hf-hub:{repo_id}"' in readme and "local-dir:" not in readme
    assert "- type: top1\n      value: 70.0" in readme
    _assert_same_model(from_pretrained(repo_id), model)


def test_corrupted_cached_blob_is_refused_before_loading(hub_server, monkeypatch):
    repo_id = f"{hub_server.namespace}/corrupt"
    pushed = push_to_hub(_r18(num_classes=2), repo_id)
    from_pretrained(repo_id)  # caches the weights
    blob = Path(os.path.realpath(hf_hub_download(repo_id, "model.safetensors", revision=pushed.commit_sha)))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the last tensor: the file still parses
    blob.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()

    spies = {"load": _Spy(), "create": _Spy()}
    monkeypatch.setattr(safetensors.torch, "load", spies["load"])
    monkeypatch.setattr(timm, "create_model", spies["create"])
    with pytest.raises(IntegrityError) as info:
        from_pretrained(repo_id)
    message = str(info.value)
    assert "model.safetensors" in message and pushed.weights_sha256 in message and actual in message
    assert "LFS record" in message
    assert spies["load"].calls == spies["create"].calls == 0


def test_catalogue_pin_of_a_hub_file_is_enforced(hub_server, monkeypatch):
    repo_id = f"{hub_server.namespace}/pinned"
    model = _r18(num_classes=2)
    pushed = push_to_hub(model, repo_id)
    record = {"tag": "se_zoo_resnet18.pin_test", "hf_hub_id": repo_id, "license": "apache-2.0",
              "origin_url": "https://example.org", "sha256": "0" * 64}
    _pin(monkeypatch, record)
    with pytest.raises(IntegrityError, match="catalogue pin of se_zoo_resnet18.pin_test") as info:
        from_pretrained(repo_id)
    assert "0" * 64 in str(info.value) and pushed.weights_sha256 in str(info.value)

    record["sha256"] = pushed.weights_sha256
    _assert_same_model(from_pretrained(repo_id), model)


def test_registry_tag_with_catalogue_pin_is_checked(hub_server, monkeypatch):
    """``timm.create_model("arch.tag", pretrained=True)`` downloads the record's file and checks its pin."""
    from se_zoo.models import se_resnet  # its legacy builder calls timm's builder after the pin check

    tag = "se_zoo_legacy_seresnet18.in1k"
    cfg = timm.models.get_pretrained_cfg(tag)
    # the catalogue names the public checkpoint; the local registry serves one under the same id
    reference = randomize_(timm.create_model("se_zoo_legacy_seresnet18")).eval()
    weights = safetensors.torch.save({k: v.half() for k, v in reference.state_dict().items()})  # half: a smaller upload
    api = HfApi()
    api.create_repo(cfg.hf_hub_id, exist_ok=True)
    api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=cfg.hf_hub_id)
    sha256 = hashlib.sha256(weights).hexdigest()
    record = dict(_catalog.find_record(tag))
    monkeypatch.setattr(_catalog, "find_record", lambda name: {**record, "sha256": "f" * 64} if name == tag else None)

    build = _Spy()
    with monkeypatch.context() as patch:
        patch.setattr(se_resnet, "build_model_with_cfg", build)
        with pytest.raises(IntegrityError, match=f"catalogue pin of {tag}") as info:
            timm.create_model(tag, pretrained=True)
    assert "f" * 64 in str(info.value) and sha256 in str(info.value)
    assert build.calls == 0

    monkeypatch.setattr(_catalog, "find_record", lambda name: {**record, "sha256": sha256} if name == tag else None)
    model = timm.create_model(tag, pretrained=True)
    assert "state_dict" not in model.pretrained_cfg
    expected = {k: v.half().to(v.dtype) for k, v in reference.state_dict().items()}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())


class _Payload:
    """A pickle that creates a file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickle_repo(repo_id: str, tmp_path: Path, state_dict) -> None:
    """A repo with config.json and pytorch_model.bin only."""
    save_pretrained(_r18(num_classes=2), tmp_path)
    torch.save(state_dict, tmp_path / "pytorch_model.bin")
    api = HfApi()
    api.create_repo(repo_id)
    api.create_commit(repo_id, [CommitOperationAdd(name, str(tmp_path / name))
                                for name in ("config.json", "pytorch_model.bin")], commit_message="pickle")


def test_pickle_only_repo_needs_opt_in(hub_server, tmp_path):
    repo_id = f"{hub_server.namespace}/pickled"
    model = _r18(seed=5, num_classes=2)
    _pickle_repo(repo_id, tmp_path, model.state_dict())
    with pytest.raises(ValueError, match="allow_pickle=True"):
        from_pretrained(repo_id)
    assert not list(Path(_hf_cache()).rglob("pytorch_model.bin"))  # refused before downloading
    _assert_same_model(from_pretrained(repo_id, allow_pickle=True), model)


def test_pickle_opt_in_still_loads_weights_only(hub_server, tmp_path, monkeypatch):
    repo_id = f"{hub_server.namespace}/payload"
    marker = tmp_path / "payload-ran"
    _pickle_repo(repo_id, tmp_path, {"conv1.weight": _Payload(marker)})
    with pytest.raises(IntegrityError, match="pickle scan .* flags it unsafe"):  # the registry's scan, first
        from_pretrained(repo_id, allow_pickle=True)
    monkeypatch.setattr(sys.modules["se_zoo.hub.pull"], "_refuse_flagged_pickle", lambda *args: None)  # no scans
    with pytest.raises(pickle.UnpicklingError):
        from_pretrained(repo_id, allow_pickle=True)
    assert not marker.exists()


def test_unmodified_timm_loads_a_pushed_repo(hub_server, tmp_path):
    repo_id = f"{hub_server.namespace}/plain-timm"
    model = _r18(num_classes=6)
    push_to_hub(model, repo_id)
    x = torch.randn(2, 3, 64, 64)
    safetensors.torch.save_file({"x": x}, tmp_path / "x.safetensors")
    script = (
        "import sys, safetensors.torch, timm, torch\n"
        f"model = timm.create_model('hf-hub:{repo_id}', pretrained=True).eval()\n"
        f"x = safetensors.torch.load_file({str(tmp_path / 'x.safetensors')!r})['x']\n"
        "with torch.no_grad():\n"
        f"    safetensors.torch.save_file({{'y': model(x)}}, {str(tmp_path / 'y.safetensors')!r})\n"
        "print(type(model).__module__, 'se_zoo' in sys.modules)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SE_ZOO_AUTOREGISTER", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # timm imported se_zoo through the autoregister hook, never the script
    assert done.stdout.split() == ["timm.models.resnet", "True"]
    y = safetensors.torch.load_file(tmp_path / "y.safetensors")["y"]
    with torch.no_grad():
        assert torch.equal(y, model(x))


def test_offline_pull_uses_the_cache_and_still_checks(hub_server, monkeypatch):
    from huggingface_hub import constants

    repo_id = f"{hub_server.namespace}/offline"
    model = _r18(num_classes=2)
    pushed = push_to_hub(model, repo_id)
    from_pretrained(repo_id)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    pulled = pull(repo_id)
    assert (pulled.revision, pulled.weights_sha256) == (pushed.commit_sha, pushed.weights_sha256)
    _assert_same_model(pulled.model, model)

    blob = Path(os.path.realpath(hf_hub_download(repo_id, "model.safetensors", revision=pushed.commit_sha)))
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match=pushed.weights_sha256):
        pull(repo_id)
