"""A failed pretrained download says where it looked and the ways out, at once, in one line.

Cases: an endpoint on a closed loopback port (connection refused) and
``HF_HUB_OFFLINE=1`` with an empty cache, for a se-zoo registry tag, an
``hf-hub:`` id through plain timm, ``se_zoo.hub.from_pretrained`` and the
``se-zoo pull`` / ``se-zoo train`` commands.
"""
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm

from helpers.hub import point_client_at
from se_zoo.hub import from_pretrained
from se_zoo.pretrained.download_errors import AIR_GAPPED_DOC, HubUnreachableError, endpoint_refusal

WAYS_OUT = ("HF_ENDPOINT", "se-zoo hub mirror", "HF_HUB_OFFLINE=1", AIR_GAPPED_DOC)


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound, never listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def refused(closed_port, monkeypatch, tmp_path) -> str:
    endpoint = f"http://127.0.0.1:{closed_port}"
    point_client_at(monkeypatch, endpoint, None, tmp_path / "hf_home")
    return endpoint


@pytest.fixture
def offline(monkeypatch, tmp_path) -> None:
    from huggingface_hub import constants

    point_client_at(monkeypatch, "http://127.0.0.1:9", None, tmp_path / "hf_home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _check_message(message: str, repo_id: str, filename: str, endpoint=None) -> None:
    assert "\n" not in message
    assert repo_id in message and filename in message
    for way in WAYS_OUT:
        assert way in message, way
    if endpoint:
        assert endpoint in message and "connection refused" in message
    else:
        assert "HF_HUB_OFFLINE=1, cache only" in message


@pytest.mark.parametrize("load", [
    pytest.param(lambda: timm.create_model("se_zoo_resnet50.a1_in1k", pretrained=True), id="se-zoo-tag"),
    pytest.param(lambda: from_pretrained("org/se-net"), id="from_pretrained"),
])
def test_refused_endpoint_fails_at_once_with_the_ways_out(refused, load, caplog):
    caplog.set_level(logging.INFO)
    start = time.monotonic()
    with pytest.raises(HubUnreachableError) as info:
        load()
    elapsed = time.monotonic() - start
    repo, filename = ("timm/seresnet50.a1_in1k", "model.safetensors")
    if "org/se-net" in str(info.value):
        repo = "org/se-net"
    _check_message(str(info.value), repo, filename, refused)
    assert info.value.endpoint == refused
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert elapsed < 5, f"{elapsed:.1f} s: retried instead of failing at once"


@pytest.mark.parametrize("load, repo", [
    (lambda: timm.create_model("se_zoo_mobilenetv2_100.seinit_ra_in1k", pretrained=True), "timm/mobilenetv2_100"),
    (lambda: from_pretrained("org/se-net"), "org/se-net"),
])
def test_offline_without_cache_names_the_cache_and_the_ways_out(offline, load, repo):
    with pytest.raises(HubUnreachableError) as info:
        load()
    _check_message(str(info.value), repo, "model.safetensors")
    assert info.value.endpoint is None


def test_error_is_not_an_entry_not_found():
    """timm moves on to the next weights file on EntryNotFoundError; this error must stop it."""
    from huggingface_hub.errors import EntryNotFoundError

    assert not issubclass(HubUnreachableError, EntryNotFoundError)
    assert issubclass(HubUnreachableError, ConnectionError)


def test_endpoint_refusal(closed_port, monkeypatch):
    assert endpoint_refusal(f"http://127.0.0.1:{closed_port}") == "connection refused"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert endpoint_refusal(f"http://127.0.0.1:{server.getsockname()[1]}") is None
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert endpoint_refusal(f"http://example.invalid:{closed_port}") is None  # the proxy connects, not us


def _cli(args, endpoint, tmp_path: Path, **env):
    environ = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf_home"),
               "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1", **env}
    environ.pop("HF_HUB_CACHE", None)
    environ.pop("HF_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "se_zoo.cli", *args], env=environ, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("offline_mode", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["refused", "offline"])
def test_cli_pull_prints_one_line(closed_port, tmp_path, offline_mode):
    endpoint = f"http://127.0.0.1:{closed_port}"
    proc = _cli(["pull", "org/se-net"], endpoint, tmp_path, **({"HF_HUB_OFFLINE": "1"} if offline_mode else {}))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("se-zoo pull: error: cannot download model.safetensors of org/se-net")
    _check_message(lines[0], "org/se-net", "model.safetensors", None if offline_mode else endpoint)
    assert proc.stdout == ""


@pytest.mark.slow  # a fresh CLI process, ~10 s; test_cli_pull_prints_one_line[refused] runs by default
def test_cli_train_from_hub_prints_one_line(closed_port, tmp_path):
    data = tmp_path / "data"
    from PIL import Image

    for split in ("train", "val"):
        (data / split / "a").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(data / split / "a" / "0.png")
    proc = _cli(["train", "--model", "hf-hub:org/se-net", "--pretrained", "--data", str(data),
                 "--output", str(tmp_path / "run")], f"http://127.0.0.1:{closed_port}", tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    _check_message(lines[0], "org/se-net", "config.json", f"http://127.0.0.1:{closed_port}")
