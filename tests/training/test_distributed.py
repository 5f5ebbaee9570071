"""``se-zoo train`` under ``torchrun`` with two CPU processes (Gloo, loopback) against one process.

Why the comparison can be tight: ``batch_size`` is the global batch and the
``DistributedSampler`` (seed + epoch) deals the same global batches to one or
two processes, so with augmentation off the only thing that could differ is
what depends on how a batch is split. BatchNorm does (each process normalises
its half batch with its own statistics, and torch's SyncBatchNorm runs on GPUs
only), so this test builds se_zoo_resnet18 with GroupNorm, whose output is per
sample. What remains is floating-point summation order: DDP averages two
half-batch gradient means where one process takes one full-batch mean, a
relative difference of order 1e-7 per step. After the 6 AdamW steps here the
losses were measured to agree to about 1e-7 (relative) and the weights to
about 6e-7 (absolute); the test allows 1e-4 for both, a hundredfold margin
for other CPUs and thread counts, while any difference in the data dealt to
the processes or in the reductions moves the losses by 1e-3 or more. The
accuracies, counts of whole images, must be equal.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch

from helpers.digits import digits_tree, tiny_tree
from se_zoo import TrainConfig, train

SETTINGS = dict(model="se_zoo_resnet18", img_size=8, batch_size=32, epochs=2, classes=["0", "1", "2"],
                model_kwargs={"norm_layer": "groupnorm"}, no_aug=True, workers=0, seed=3)


def _cli_args(data: Path, output: Path):
    return ["train", "--model", SETTINGS["model"], "--data", str(data), "--output", str(output),
            "--img-size", "8", "--batch-size", "32", "--epochs", "2", "--classes", "0,1,2",
            "--model-kwargs", "norm_layer=groupnorm", "--no-aug", "--workers", "0", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    return tiny_tree(digits_tree(root), root / "tiny", n_train=32, n_val=11)


def test_torchrun_two_processes_match_one(tiny, tmp_path):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    out2 = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "se_zoo.cli", *_cli_args(tiny, out2)]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # one writer: one output folder, nothing else written, one log line per epoch, one line per epoch in the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "two"] and not any(workdir.iterdir())
    assert {p.name for p in out2.iterdir()} == {"model.safetensors", "config.json", "README.md", "metrics.jsonl",
                                                "train_state"}
    assert proc.stderr.count("epoch 1/2: train_loss") == 1 and proc.stdout.count("best top-1") == 1
    two = [json.loads(line) for line in (out2 / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in two] == [1, 2]
    for record in two:  # reduced over both processes, the odd-sized val set counted once per image
        assert record["val_count"] == 33 and record["train_count"] == 96

    one = train(TrainConfig(data=str(tiny), output=str(tmp_path / "one"), progress=False, **SETTINGS)).history
    for a, b in zip(one, two):
        for key in ("train_loss", "val_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), (key, a, b)
        for key in ("top1", "top5", "val_count", "train_count", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-12), (key, a, b)
    w1 = safetensors.torch.load_file(tmp_path / "one" / "model.safetensors")
    w2 = safetensors.torch.load_file(out2 / "model.safetensors")
    assert w1.keys() == w2.keys()
    worst = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert worst < 1e-4, worst
    state = json.loads((out2 / "train_state" / "state.json").read_text())["state"]
    assert state["rng"]["world_size"] == 2  # both processes' RNG states are saved for an exact resume
