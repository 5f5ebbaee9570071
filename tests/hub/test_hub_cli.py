"""``se-zoo push`` / ``se-zoo pull`` against the local Hub registry."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
from helpers.weights import randomize_
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from se_zoo.cli import main
from se_zoo.hub import save_pretrained


@pytest.fixture
def saved(tmp_path):
    """A directory written by save_pretrained, and its model."""
    model = randomize_(timm.create_model("se_zoo_resnet18", num_classes=3, layers=(1, 1, 1, 1))).eval()
    save_pretrained(model, tmp_path / "saved")
    return tmp_path / "saved", model


def _one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"se-zoo {command}: error: ") and "Traceback" not in err
    return lines[0]


def test_push_name_and_directory_then_pull(hub_server, saved, capfd):
    directory, model = saved
    repo_id = f"{hub_server.namespace}/cli"
    assert main(["push", str(directory), repo_id, "--message", "from a directory"]) == 0
    out = capfd.readouterr().out
    commit = HfApi().list_repo_commits(repo_id)[0]
    assert commit.title == "from a directory" and f"commit: {commit.commit_id}" in out

    assert main(["pull", repo_id]) == 0
    out = capfd.readouterr().out
    sha256 = HfApi().get_paths_info(repo_id, ["model.safetensors"])[0].lfs.sha256
    assert f"revision: {commit.commit_id}" in out and f"sha256: {sha256}" in out
    assert "architecture: se_zoo_resnet18" in out
    assert f"params: {sum(p.numel() for p in model.parameters()):,}" in out

    assert main(["push", "se_zoo_resnet18", f"{hub_server.namespace}/by-name", "--revision", "v1", "--private"]) == 0
    assert "revision: v1" in capfd.readouterr().out
    assert HfApi().model_info(f"{hub_server.namespace}/by-name", revision="v1").private


def test_missing_repo_is_one_line_in_a_fresh_process(hub_server):
    done = subprocess.run([sys.executable, "-m", "se_zoo.cli", "pull", f"{hub_server.namespace}/missing"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 1
    line = _one_error_line(done.stderr, "pull")
    assert f"no repository {hub_server.namespace}/missing at {hub_server.endpoint}" in line


def test_error_paths_print_one_line(hub_server, saved, capfd, monkeypatch, tmp_path):
    directory, _ = saved
    repo_id = f"{hub_server.namespace}/errors"
    assert main(["push", str(directory), repo_id]) == 0
    assert main(["pull", repo_id]) == 0
    capfd.readouterr()

    monkeypatch.delenv("HF_TOKEN")
    assert main(["push", str(directory), repo_id]) == 1
    line = _one_error_line(capfd.readouterr().err, "push")
    assert "(401)" in line and "HF_TOKEN" in line
    monkeypatch.setenv("HF_TOKEN", hub_server.read_token)
    assert main(["push", str(directory), repo_id]) == 1
    assert "(403)" in _one_error_line(capfd.readouterr().err, "push")
    monkeypatch.setenv("HF_TOKEN", hub_server.token)

    cases = {
        ("pull", repo_id, "--revision", "nope"): "has no revision 'nope'",
        ("push", "no_such_model", repo_id): "Unknown model (no_such_model)",
        ("push", str(directory), repo_id, "--pretrained"): "--pretrained applies to model names",
    }
    for argv, expected in cases.items():
        assert main(list(argv)) == 1, argv
        assert expected in _one_error_line(capfd.readouterr().err, argv[0])

    blob = Path(os.path.realpath(hf_hub_download(repo_id, "model.safetensors")))
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x01")
    assert main(["pull", repo_id]) == 1
    assert "model.safetensors: sha256 mismatch" in _one_error_line(capfd.readouterr().err, "pull")

    bad = f"{hub_server.namespace}/bad-arch"
    config = json.loads((directory / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "architecture": "no_such_arch"}))
    api = HfApi()
    api.create_repo(bad)
    api.create_commit(bad, [CommitOperationAdd("config.json", str(tmp_path / "config.json")),
                            CommitOperationAdd("model.safetensors", str(directory / "model.safetensors"))],
                      commit_message="unknown architecture")
    capfd.readouterr()
    assert main(["pull", bad]) == 1
    assert "Unknown model (no_such_arch)" in _one_error_line(capfd.readouterr().err, "pull")

    pickled = f"{hub_server.namespace}/pickled"
    api.create_repo(pickled)
    api.create_commit(pickled, [CommitOperationAdd("config.json", str(directory / "config.json")),
                                CommitOperationAdd("pytorch_model.bin", b"PK\x03\x04 not loaded")],
                      commit_message="pickle only")
    capfd.readouterr()
    assert main(["pull", pickled]) == 1
    assert "--allow-pickle" in _one_error_line(capfd.readouterr().err, "pull")
