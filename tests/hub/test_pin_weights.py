"""``scripts/pin_weights.py`` fills the catalogue's sha256 pins from the files the tags load (local registry)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from huggingface_hub import HfApi

ROOT = Path(__file__).resolve().parents[2]
TAG = "se_zoo_resnet50.a1_in1k"


def _run(hub, catalog: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": hub.token, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "pin_weights.py"), "--catalog", str(catalog),
                           *args], env=env, capture_output=True, text=True, timeout=300)


def test_pin_fills_only_the_named_record_and_check_verifies(hub_server, tmp_path):
    payload = os.urandom(4096)  # the pin is the hash of whatever file the record names
    repo = json.loads((ROOT / "weights" / "se_resnet.json").read_text())["records"][0]
    assert repo["tag"] == TAG and repo["sha256"] is None
    HfApi().create_repo(repo["hf_hub_id"], exist_ok=True)
    HfApi().upload_file(path_or_fileobj=payload, path_in_repo="model.safetensors", repo_id=repo["hf_hub_id"])

    catalog = tmp_path / "weights"
    shutil.copytree(ROOT / "weights", catalog)
    before = (catalog / "se_resnet.json").read_text()
    done = _run(hub_server, catalog, "--tag", TAG)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pinned", TAG]

    after = (catalog / "se_resnet.json").read_text()
    sha256 = hashlib.sha256(payload).hexdigest()
    assert after == before.replace('"sha256": null', f'"sha256": "{sha256}"', 1)  # only that value changed
    assert (catalog / "se_mobilenet.json").read_text() == (ROOT / "weights" / "se_mobilenet.json").read_text()

    assert _run(hub_server, catalog, "--tag", TAG, "--check").stdout.split() == ["ok", TAG]
    (catalog / "se_resnet.json").write_text(after.replace(sha256, "0" * 64))
    mismatch = _run(hub_server, catalog, "--tag", TAG, "--check")
    assert mismatch.returncode == 1 and mismatch.stdout.split() == ["mismatch", TAG]
    unknown = _run(hub_server, catalog, "--tag", "nope.tag")
    assert unknown.returncode == 1 and "unknown ['nope.tag']" in unknown.stderr
