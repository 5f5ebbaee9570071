"""``se-zoo quickstart``: per-epoch validation top-1 on screen, and Ctrl-C ends it with one line."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

_BAR = re.compile(r"^[^|]*\d+%\|.*\|")
_EPOCH = re.compile(r"^epoch (\d+)/(\d+): train_loss \S+  val_loss \S+  top-1 (\d+\.\d\d)%")


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for key in ("HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE"):
        env.pop(key, None)
    # a session of its own: Ctrl-C in a terminal signals the whole foreground process group
    return subprocess.Popen([sys.executable, "-m", "se_zoo.cli", "quickstart", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _lines(text: str):
    return [line for line in re.split(r"[\r\n]+", text) if line.strip()]


def test_ctrl_c_during_training_exits_130_with_one_line():
    proc = _start("--epochs", "3", "--finetune-epochs", "1")
    try:
        for line in proc.stdout:  # wait until the child process is training
            if line.startswith("== publisher"):
                break
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    other = [line for line in _lines(err) if not _BAR.search(line) and not _EPOCH.search(line)]
    assert other == ["se-zoo: interrupted"], err
    assert "Traceback" not in out + err


@pytest.mark.slow
def test_quickstart_prints_validation_top1_every_epoch():
    proc = _start("--epochs", "2", "--finetune-epochs", "2")
    out, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err
    epochs = [_EPOCH.search(line).groups() for line in _lines(err) if _EPOCH.search(line)]
    assert [(e, n) for e, n, _ in epochs] == [("1", "2"), ("2", "2"), ("1", "2"), ("2", "2")]
    assert "outputs bit-identical to the published model: yes" in out
