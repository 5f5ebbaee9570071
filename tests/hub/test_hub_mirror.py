"""timm-shaped weights through the registry's mirror: pull-through loads, catalogue pins, mirror and bundle.

The "upstream" registry is seeded with repos shaped like timm's (``timm/seresnet50.*`` holding
``model.safetensors`` + ``config.json`` written by timm's ``save_for_hf``, random weights); nothing
here reaches the internet. The mirror's torch-free mechanics are tested in
``tests/registry/test_registry_mirror.py``.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from timm.models import save_for_hf

from helpers.hub import WRITE_TOKEN, point_client_at
from helpers.mirror import described, run_cli, serve

from se_zoo.pretrained import catalog as _catalog
from se_zoo.pretrained.integrity import IntegrityError
from se_zoo.registry.store.fsck import fsck

TAGS = {"se_zoo_resnet50.a1_in1k": "timm/seresnet50.a1_in1k", "se_zoo_resnet50.a2_in1k": "timm/seresnet50.a2_in1k",
        "se_zoo_resnet50.a3_in1k": "timm/seresnet50.a3_in1k", "se_zoo_resnet50.ra2_in1k": "timm/seresnet50.ra2_in1k"}


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def timm_root(tmp_path_factory):
    """An upstream registry root holding the four ``timm/seresnet50.*`` repos of ``se_zoo_resnet50.*``.

    a1 and a3 have weights of their own; a2 and ra2 reuse a1's file (one blob) with their own config.
    Weights are stored in bfloat16 to keep the files small; timm loads them into float32 exactly.
    """
    root = tmp_path_factory.mktemp("timm_upstream")
    work = tmp_path_factory.mktemp("timm_seed")
    server = serve(root)
    with pytest.MonkeyPatch.context() as patch:
        point_client_at(patch, server.endpoint, WRITE_TOKEN, work / "hf_home")
        api = HfApi()
        for seed, (tag, repo_id) in enumerate(TAGS.items()):
            folder = work / repo_id.replace("/", "--")
            torch.manual_seed(seed if seed in (0, 2) else 0)
            model = timm.create_model("seresnet50").to(torch.bfloat16)
            save_for_hf(model, str(folder), model_config={"architecture": "seresnet50", "tag": tag},
                        safe_serialization=True)
            api.create_repo(repo_id)
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=f"weights of {tag}")
    server.stop()
    return root


def _weights(root: Path, repo_id: str) -> dict:
    """The state dict the upstream holds for ``repo_id`` (read from its store), in float32."""
    from se_zoo.registry.store.storage import Store

    store = Store(root)
    namespace, name = repo_id.split("/")
    entry = store.commit_info(namespace, name, store.resolve(namespace, name, "main"))["files"]["model.safetensors"]
    tensors = safetensors.torch.load(store.blob_path(entry["sha256"]).read_bytes())
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def _assert_loads(tag: str, root: Path) -> None:
    model = timm.create_model(tag, pretrained=True)
    expected = _weights(root, TAGS[tag])
    state = model.state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], v) for k, v in expected.items()), f"{tag} did not load the upstream's weights"


def test_pull_through_loads_upstream_weights_and_keeps_working_offline(timm_root, tmp_path, monkeypatch):
    spy = {}
    upstream = serve(timm_root, spy=spy)
    down_root = tmp_path / "down"
    downstream = serve(down_root, upstream=upstream.endpoint)
    point_client_at(monkeypatch, downstream.endpoint, None, tmp_path / "hf_home")
    _assert_loads("se_zoo_resnet50.a1_in1k", timm_root)
    cached = next((tmp_path / "hf_home").rglob("model.safetensors"))
    up_sha = json.loads(httpx2.get(f"{upstream.endpoint}/api/models/timm/seresnet50.a1_in1k?blobs=1").text)
    lfs = next(s["lfs"]["sha256"] for s in up_sha["siblings"] if s["rfilename"] == "model.safetensors")
    assert _sha256(cached) == lfs
    # stored under the upstream's commit id, and read-only here
    api = HfApi(endpoint=downstream.endpoint, token=WRITE_TOKEN)
    assert api.model_info("timm/seresnet50.a1_in1k").sha == up_sha["sha"]
    with pytest.raises(HfHubHTTPError, match="read-only mirror"):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="timm/seresnet50.a1_in1k")
    with pytest.raises(HfHubHTTPError, match="read-only"):
        api.create_repo("timm/another")
    transfers = [p for p in spy["transfers"] if p.endswith("/model.safetensors")]
    upstream.stop()
    downstream.stop()
    assert fsck(down_root).problems == []  # mirrored commits keep upstream ids and fetch blobs lazily

    # the upstream is gone and the registry restarts: a fresh process with a fresh cache still loads
    downstream = serve(down_root, upstream=upstream.endpoint, ttl=0)
    code = ("import timm, torch, sys; m = timm.create_model('se_zoo_resnet50.a1_in1k', pretrained=True); "
            "torch.save(m.state_dict(), sys.argv[1])")
    env = {**os.environ, "HF_ENDPOINT": downstream.endpoint, "HF_HOME": str(tmp_path / "fresh_home"),
           "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    env.pop("HF_TOKEN", None)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "sd.pt")], env=env, capture_output=True,
                          text=True, timeout=600)
    downstream.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "sd.pt")
    assert all(torch.equal(state[k], v) for k, v in _weights(timm_root, TAGS["se_zoo_resnet50.a1_in1k"]).items())
    assert len(transfers) == 1


def test_catalogue_pins_are_checked_through_the_mirror(timm_root, tmp_path, monkeypatch):
    """An unpinned tag loads (above); a pinned one loads when the pin matches and is refused otherwise."""
    tag = "se_zoo_resnet50.a3_in1k"
    with serve(timm_root) as upstream, serve(tmp_path / "down", upstream=upstream.endpoint) as downstream:
        point_client_at(monkeypatch, downstream.endpoint, None, tmp_path / "hf_home")
        info = httpx2.get(f"{downstream.endpoint}/api/models/{TAGS[tag]}?blobs=1").json()
        lfs = next(s["lfs"]["sha256"] for s in info["siblings"] if s["rfilename"] == "model.safetensors")
        record = dict(_catalog.find_record(tag))
        monkeypatch.setattr(_catalog, "find_record", lambda n: {**record, "sha256": "e" * 64} if n == tag else None)
        with pytest.raises(IntegrityError, match=f"catalogue pin of {tag}"):
            timm.create_model(tag, pretrained=True)
        monkeypatch.setattr(_catalog, "find_record", lambda n: {**record, "sha256": lfs} if n == tag else None)
        _assert_loads(tag, timm_root)


@pytest.mark.slow  # four repos mirrored, bundled, imported and loaded: ~10 s and more; the registry's mirror
# and bundle tests run by default in tests/registry/test_registry_mirror.py
@pytest.mark.parametrize("loaded", [("se_zoo_resnet50.a1_in1k", "se_zoo_resnet50.a3_in1k"), tuple(TAGS)],
                         ids=["distinct", "all"])
def test_mirror_and_bundle_give_the_same_loads(timm_root, tmp_path, monkeypatch, loaded):
    token_file = tmp_path / "token"
    token_file.write_text(WRITE_TOKEN)
    bundle = tmp_path / "carry" / "timm.bundle"
    with serve(timm_root) as upstream, serve(tmp_path / "isolated") as isolated:
        # 1. into a running registry, by catalogue pattern; a second run transfers nothing
        args = ["mirror", "--tags", "se_zoo_resnet50.*", "--from", upstream.endpoint,
                "--to", isolated.endpoint, "--to-token-file", str(token_file)]
        assert re.search(r"transferred [1-9]\d+ bytes", run_cli(*args))
        assert "transferred 0 bytes in 0 files" in run_cli(*args)
        # 2. into a bundle (idempotent too: the second run leaves the file untouched)
        args = ["mirror", "--tags", "se_zoo_resnet50.*", "--from", upstream.endpoint, "--bundle", str(bundle)]
        assert re.search(r"transferred [1-9]\d+ bytes", run_cli(*args))
        mtime = bundle.stat().st_mtime_ns
        assert "transferred 0 bytes in 0 files" in run_cli(*args)
        assert bundle.stat().st_mtime_ns == mtime
        published = {repo_id: described(upstream.endpoint, repo_id) for repo_id in TAGS.values()}
        assert {repo_id: described(isolated.endpoint, repo_id) for repo_id in TAGS.values()} == published
    # 3. bundle -> a fresh registry root, by disk
    imported = tmp_path / "imported"
    assert re.search(r"transferred [1-9]\d+ bytes", run_cli("import", str(bundle), "--to-root", str(imported)))
    assert "transferred 0 bytes in 0 files" in run_cli("import", str(bundle), "--to-root", str(imported))

    with serve(tmp_path / "isolated") as isolated, serve(imported) as from_bundle:
        for endpoint in (isolated.endpoint, from_bundle.endpoint):
            assert {repo_id: described(endpoint, repo_id) for repo_id in TAGS.values()} == published
            point_client_at(monkeypatch, endpoint, None, tmp_path / f"home{endpoint.rsplit(':', 1)[1]}")
            for tag in loaded:
                _assert_loads(tag, timm_root)
