"""``se-zoo train`` / ``validate``: learning on real data, exact resume, saved state, publishing.

The learning test trains se_zoo_resnet18 on the bundled digits at 16 px for two
short epochs (the full recipe, 32 px and 10 epochs, is the slow test at the end);
the other tests use a 4-class, 128-image cut of the digits and the smallest
se-zoo model so that they take seconds.
"""
import json
import math
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

from helpers.digits import digits_tree, tiny_tree
from helpers.hub import hub_server  # noqa: F401  (fixture)
from se_zoo.cli import main as cli_main
from se_zoo import TrainConfig, train
from se_zoo.training.state import find_train_state, load_train_state, save_train_state
from se_zoo import validate

TINY = dict(model="se_zoo_mobilenetv1_050", img_size=8, batch_size=32, classes=["0", "1", "2"], workers=0,
            progress=False, seed=7)
RECORD_KEYS = {"epoch", "train_loss", "val_loss", "top1", "top5", "lr", "images_per_s", "train_count", "val_count"}


def _deterministic_fields(record):
    return {k: v for k, v in record.items() if k != "images_per_s"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return digits_tree(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def tiny(digits, tmp_path_factory) -> Path:
    return tiny_tree(digits, tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def digits_run(digits, tmp_path_factory):
    """se_zoo_resnet18 from scratch on all ten digits: 2 epochs at 16 px, no warm-up."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    config = TrainConfig(model="se_zoo_resnet18", data=str(digits), output=str(out), img_size=16, epochs=2,
                         batch_size=32, warmup_epochs=0, workers=0, progress=False)
    return train(config)


def test_training_learns_digits(digits_run):
    """Ten classes, chance is 10%: more than 50% val top-1 after two short epochs shows learning."""
    history = digits_run.history
    assert [r["epoch"] for r in history] == [1, 2]
    assert digits_run.best_top1 > 50.0, history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for record in history:
        assert set(record) == RECORD_KEYS
        assert record["val_count"] == 360 and record["train_count"] == 1437 // 32 * 32
        assert record["top5"] >= record["top1"]
    lines = (digits_run.output / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history


def test_output_is_a_timm_local_dir_and_validates_like_training(digits_run, digits, capsys):
    """The saved best model, loaded by timm from disk and evaluated by ``validate``, reproduces the epoch's metrics."""
    out = digits_run.output
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "README.md", "metrics.jsonl",
                                               "train_state"}
    model = timm.create_model(f"local-dir:{out}", pretrained=True)
    assert model.num_classes == 10
    assert tuple(model.pretrained_cfg["input_size"]) == (3, 16, 16)
    assert list(model.pretrained_cfg["label_names"]) == [str(d) for d in range(10)]
    best = digits_run.history[digits_run.best_epoch - 1]
    metrics = validate(f"local-dir:{out}", str(digits), workers=0)
    assert metrics["count"] == 360
    assert metrics["top1"] == pytest.approx(best["top1"], abs=1e-9)
    assert metrics["top5"] == pytest.approx(best["top5"], abs=1e-9)
    assert metrics["loss"] == pytest.approx(best["val_loss"], rel=1e-5)

    assert cli_main(["validate", "--model", f"local-dir:{out}", "--data", str(digits), "--workers", "0",
                     "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["top1"] == pytest.approx(best["top1"], abs=1e-9)


def test_state_files_are_json_and_safetensors(digits_run):
    state_dir = find_train_state(digits_run.output)
    assert sorted(p.name for p in state_dir.iterdir()) == ["state.json", "state.safetensors"]
    document = json.loads((state_dir / "state.json").read_text())
    assert document["format"] == "se-zoo-train-state" and document["state"]["epoch"] == 2
    tensors = safetensors.torch.load_file(state_dir / "state.safetensors")
    assert any(k.startswith("model/") for k in tensors) and any(k.startswith("optimizer/state/") for k in tensors)
    assert tensors["rng/torch"].shape == (1, torch.get_rng_state().numel())  # one row per process


def test_train_state_round_trips_optimizer_and_scheduler():
    """An AdamW state (int-keyed, tuple betas, tensor steps) and a timm scheduler state come back unchanged."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = create_optimizer_v2(model, opt="adamw", lr=0.1, weight_decay=0.05)
    sched, _ = create_scheduler_v2(opt, sched="cosine", num_epochs=3, warmup_epochs=1, step_on_epochs=False,
                                   updates_per_epoch=2)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sched.step_update(1)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": 1, "best": -math.inf,
             "pair": (1, "a"), "none": None}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        save_train_state(state, tmp)
        loaded = load_train_state(tmp)
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert set(loaded["optimizer"]["state"]) == set(state["optimizer"]["state"])  # int keys stay ints
    for key, per_param in state["optimizer"]["state"].items():
        for name, value in per_param.items():
            assert torch.equal(loaded["optimizer"]["state"][key][name], value), (key, name)
    assert loaded["scheduler"] == state["scheduler"]
    assert loaded["pair"] == (1, "a") and loaded["best"] == -math.inf and loaded["none"] is None
    fresh = create_optimizer_v2(model, opt="adamw", lr=0.1, weight_decay=0.05)
    fresh.load_state_dict(loaded["optimizer"])
    assert fresh.param_groups[0]["betas"] == opt.param_groups[0]["betas"]


def test_train_state_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="state at opt/x must hold"):
        save_train_state({"opt": {"x": object()}}, tmp_path)
    with pytest.raises(FileNotFoundError, match="resume must name a training output folder"):
        find_train_state(tmp_path / "nothing")


@pytest.fixture
def deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def test_resume_is_exact(tiny, tmp_path, deterministic):
    """Stopping after epoch 2 and resuming gives epoch 3 exactly as an uninterrupted run: same metrics, weights, EMA."""
    common = dict(TINY, data=str(tiny), epochs=3, model_ema=True)
    full = train(TrainConfig(output=str(tmp_path / "full"), **common))
    part = train(TrainConfig(output=str(tmp_path / "part"), stop_after=2, **common))
    assert part.epochs_done == 2 and len(part.history) == 2
    assert not (tmp_path / "part" / "metrics.jsonl").read_text().count('"epoch": 3')
    resumed = train(TrainConfig(resume=str(tmp_path / "part"), **common))
    assert resumed.epochs_done == 3
    assert [_deterministic_fields(r) for r in resumed.history] == [_deterministic_fields(r) for r in full.history]
    a = load_train_state(tmp_path / "full")
    b = load_train_state(tmp_path / "part")
    assert "ema_top1" in resumed.history[-1]
    for name in ("model", "ema"):
        for key, value in a[name].items():
            assert torch.equal(value, b[name][key]), (name, key)
    for key, per_param in a["optimizer"]["state"].items():
        for name, value in per_param.items():
            assert torch.equal(value, b["optimizer"]["state"][key][name]), (key, name)
    assert len((tmp_path / "part" / "metrics.jsonl").read_text().splitlines()) == 3


def test_resume_refuses_changed_settings_and_occupied_output(tiny, tmp_path):
    common = dict(TINY, data=str(tiny), epochs=2)
    train(TrainConfig(output=str(tmp_path / "run"), stop_after=1, **common))
    with pytest.raises(ValueError, match=r"lr \(saved 0.002, given 0.1\)"):
        train(TrainConfig(resume=str(tmp_path / "run"), **{**common, "lr": 0.1}))
    with pytest.raises(ValueError, match="output must be the resumed run's folder"):
        train(TrainConfig(resume=str(tmp_path / "run"), output=str(tmp_path / "other"), **common))
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(TrainConfig(output=str(tmp_path / "run"), **common))


@pytest.mark.parametrize("change, message", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(stop_after=5), r"stop_after must be in \[1, epochs=2\]"),
    (dict(smoothing=1.0), r"smoothing must be in \[0, 1\)"),
    (dict(output=None), "output must name a folder"),
    (dict(batch_size=4096), "batch_size must not exceed the 96 training images"),
])
def test_bad_settings_are_refused(tiny, tmp_path, change, message):
    settings = dict(TINY, data=str(tiny), epochs=2, output=str(tmp_path / "o"))
    with pytest.raises(ValueError, match=message):
        train(TrainConfig(**{**settings, **change}))


def test_cli_train_reports_errors_as_one_line(tiny, tmp_path, capsys):
    assert cli_main(["train", "--model", "se_zoo_mobilenetv1_050", "--data", str(tiny / "train"),
                     "--output", str(tmp_path / "o")]) == 1
    assert "se-zoo train: error: data must be a folder with a 'train' sub-folder" in capsys.readouterr().err


def test_finetune_new_head_then_push_and_pull(tiny, tmp_path, hub_server):  # noqa: F811
    """Train 3 classes, fine-tune the saved model on 4 with a new head and push it; the Hub copy is the best model."""
    first = train(TrainConfig(data=str(tiny), output=str(tmp_path / "three"), epochs=1, **TINY))
    saved = safetensors.torch.load_file(first.output / "model.safetensors")
    repo = f"{hub_server.namespace}/tiny-digits"
    second = train(TrainConfig(**{**TINY, "model": f"local-dir:{first.output}", "classes": None, "pretrained": True,
                                  "num_classes": None, "epochs": 1, "lr": 0.0, "sched": "none",
                                  "output": str(tmp_path / "four"), "push_to_hub": repo, "data": str(tiny)}))
    tuned = safetensors.torch.load_file(second.output / "model.safetensors")
    assert tuned["classifier.weight"].shape[0] == 4
    # lr 0: the backbone is exactly the first run's (BatchNorm running stats still move), the head is new
    assert torch.equal(tuned["conv_stem.weight"], saved["conv_stem.weight"])
    assert second.push is not None and len(second.push.commit_sha) == 40
    pulled = timm.create_model(f"hf-hub:{repo}", pretrained=True)
    assert pulled.num_classes == 4
    for key, value in pulled.state_dict().items():
        assert torch.equal(value, tuned[key]), key
    from huggingface_hub import ModelCard

    card = ModelCard.load(repo)
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["top1"] == pytest.approx(second.best_top1)


@pytest.mark.slow
def test_digits_recipe_reaches_98_percent(digits, tmp_path):
    """The documented recipe: se_zoo_resnet18 from scratch, 32 px, default settings, >= 98% val top-1."""
    result = train(TrainConfig(model="se_zoo_resnet18", data=str(digits), output=str(tmp_path / "r18"),
                               img_size=32, progress=False))
    assert result.best_top1 >= 98.0, result.history


def test_every_setting_says_whether_a_resumed_run_must_keep_it():
    from dataclasses import fields

    from se_zoo.training.config import resume_fields

    undecided = [f.name for f in fields(TrainConfig) if "resume" not in f.metadata]
    assert not undecided, f"mark these TrainConfig fields metadata=KEPT or FREE: {undecided}"
    assert {"model", "lr", "seed", "scale"} <= set(resume_fields())
    assert not {"data", "output", "workers", "stop_after", "resume"} & set(resume_fields())
