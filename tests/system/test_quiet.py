"""Commands print their own output only: no third-party log lines or warnings by default.

``se-zoo train`` on an ``hf-hub:`` model, ``se-zoo push`` and ``se-zoo pull``
run in fresh processes against the local registry; every line they print must
be one of theirs (a progress bar, a per-epoch metrics line, the result lines).
``-v`` must bring the third-party INFO lines back, which shows the check can see them.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import timm
from helpers.digits import tiny_tree

from se_zoo.training.data import export_digits
from se_zoo.hub import push_to_hub

# a tqdm bar: "desc:  40%|████      | 2/5 [..]" (a bar finished or not)
_BAR = re.compile(r"^[^|]*\d+%\|.*\|")
_EPOCH = re.compile(r"^epoch \d+/\d+: train_loss ")
_RESULT = re.compile(r"^ *(repo|revision|architecture|params|file|sha256|commit|url|weights): ")


def _lines(text: str):
    return [line for line in re.split(r"[\r\n]+", text) if line.strip()]


def _env(hub, tmp_path: Path):
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": hub.token, "HF_HOME": str(tmp_path / "hf_home"),
           "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for key in ("HF_HUB_CACHE", "HF_HUB_DISABLE_PROGRESS_BARS", "PYTHONWARNINGS"):
        env.pop(key, None)
    return env


def _cli(args, hub, tmp_path: Path):
    env = _env(hub, tmp_path)
    done = subprocess.run([sys.executable, "-m", "se_zoo.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def _foreign(lines, *allowed):
    return [line for line in lines if not any(p.search(line) for p in allowed)]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("quiet")
    export_digits(root / "full")
    return tiny_tree(root / "full", root / "tiny", classes=("0", "1"), n_train=16, n_val=4)


@pytest.mark.slow  # trains, pushes and pulls in fresh processes: ~27 s
def test_train_push_pull_print_only_their_own_lines(hub_server, digits, tmp_path):
    repo = f"{hub_server.namespace}/quiet"
    push_to_hub(timm.create_model("se_zoo_resnet18", num_classes=2, layers=(1, 1, 1, 1)), repo)

    train = _cli(["train", "--model", f"hf-hub:{repo}", "--pretrained", "--data", str(digits), "--img-size", "32",
                  "--epochs", "1", "--batch-size", "16", "--workers", "0", "--output", str(tmp_path / "run")],
                 hub_server, tmp_path)
    assert _foreign(_lines(train.stderr), _BAR, _EPOCH) == []
    assert any(_EPOCH.search(line) for line in _lines(train.stderr))
    assert _lines(train.stdout) == [f"best top-1 {line.split('best top-1 ')[1]}" for line in _lines(train.stdout)]

    push = _cli(["push", str(tmp_path / "run"), f"{repo}-run"], hub_server, tmp_path)
    pull = _cli(["pull", f"{repo}-run"], hub_server, tmp_path)
    for done in (push, pull):
        assert _foreign(_lines(done.stderr), _BAR) == []
        assert _foreign(_lines(done.stdout), _RESULT) == []


def _in_terminal(args, hub, tmp_path: Path) -> str:
    """Run ``se-zoo ARGS`` on a pseudo-terminal 100 columns wide; returns all it printed."""
    import fcntl
    import pty
    import struct
    import termios

    env = _env(hub, tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: only exec
        os.execve(sys.executable, [sys.executable, "-m", "se_zoo.cli", *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


@pytest.mark.slow  # a pseudo-terminal and two pulls: ~25 s
def test_pull_shows_download_progress_in_a_terminal_and_not_with_quiet(hub_server, tmp_path):
    repo = f"{hub_server.namespace}/bars"
    push_to_hub(timm.create_model("se_zoo_resnet18", num_classes=2, layers=(1, 1, 1, 1)), repo)
    shown = _in_terminal(["pull", repo], hub_server, tmp_path / "a")
    assert re.search(r"model\.safetensors: +100%\|", shown), shown
    quiet = _in_terminal(["-q", "pull", repo], hub_server, tmp_path / "b")
    assert "%|" not in quiet and "sha256: " in quiet


@pytest.mark.skipif(huggingface_hub.__version__.startswith("0."), reason=f"huggingface_hub "
                    f"{huggingface_hub.__version__} sends by requests, which logs no INFO line per request (httpx's "
                    "'HTTP Request:' lines come with huggingface_hub >= 1.0)")
def test_verbose_shows_third_party_info(hub_server, tmp_path):
    repo = f"{hub_server.namespace}/loud"
    push_to_hub(timm.create_model("se_zoo_resnet18", num_classes=2, layers=(1, 1, 1, 1)), repo)
    loud = _cli(["-v", "pull", repo], hub_server, tmp_path)
    assert any("HTTP Request:" in line for line in _lines(loud.stderr))
