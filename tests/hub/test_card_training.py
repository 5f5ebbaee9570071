"""Model cards a person can trust: rounded metrics, the run's training details, untrained pushes
that say so, one title whatever is pushed, and tags to pull by; validated by huggingface_hub."""
import json

import huggingface_hub
import pytest
import timm
import yaml
from helpers.digits import tiny_tree
from huggingface_hub import HfApi, ModelCard, hf_hub_download

from se_zoo.cli import main
from se_zoo.training.data import export_digits
from se_zoo.hub import CardOptions, from_pretrained, push_to_hub, save_pretrained
from se_zoo import TrainConfig, train

SMALL = {"layers": [1, 1, 1, 1]}


def _card(repo_id: str) -> ModelCard:
    card = ModelCard.load(hf_hub_download(repo_id, "README.md"))
    if not huggingface_hub.__version__.startswith("0."):  # before 1.0 it posts to the public Hub, whatever the endpoint
        card.validate()  # POST /api/validate-yaml of the endpoint (the local registry here)
    return card


def _title(card: ModelCard) -> str:
    return next(line for line in card.text.splitlines() if line.startswith("# "))


def test_metrics_are_rounded_to_two_decimals(tmp_path):
    model = timm.create_model("se_zoo_resnet18", num_classes=3, **SMALL)
    save_pretrained(model, tmp_path, card=CardOptions(metrics={"top1": 99.16666666666667, "top5": 100.0},
                                                      eval_dataset="digits"))
    text = (tmp_path / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n", 2)[1])
    assert {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]} == \
        {"top1": 99.17, "top5": 100.0}
    assert "| digits | top1 | 99.17 |" in text and "99.1666" not in text


def test_untrained_push_says_so_and_tag_pulls_it(hub_server, capsys):
    repo_id = f"{hub_server.namespace}/r18"
    assert main(["push", "se_zoo_mobilenetv2_050", repo_id, "--tag", "v1.0"]) == 0
    assert "tag: v1.0" in capsys.readouterr().out
    card = _card(repo_id)
    assert "**untrained (random initialization)**" in card.text
    assert "outputs are meaningless until it is trained" in card.text
    config = json.loads(open(hf_hub_download(repo_id, "config.json")).read())
    assert "tag" not in config["pretrained_cfg"] and "license" not in config["pretrained_cfg"]
    assert card.data.license is None

    model = from_pretrained(repo_id, revision="v1.0")
    assert model.pretrained_cfg["architecture"] == "se_zoo_mobilenetv2_050"
    commits = len(HfApi().list_repo_commits(repo_id))
    with pytest.raises(ValueError, match="tag must be new"):
        push_to_hub(model, repo_id, tag="v1.0")
    assert len(HfApi().list_repo_commits(repo_id)) == commits  # refused before committing


def test_trained_run_card_has_the_training_section_and_the_same_title(hub_server, tmp_path):
    export_digits(tmp_path / "full")
    data = tiny_tree(tmp_path / "full", tmp_path / "tiny", classes=("3", "7"), n_train=16, n_val=4)
    result = train(TrainConfig(model="se_zoo_resnet18", model_kwargs=SMALL, data=str(data), img_size=32, epochs=2,
                               batch_size=16, workers=0, output=str(tmp_path / "run"), progress=False))
    local = (result.output / "README.md").read_text()
    assert "## Training" in local

    repo_id = f"{hub_server.namespace}/digits"
    push_to_hub(result.output, repo_id)
    card = _card(repo_id)
    text = card.text
    for line in ("- **Started from:** `se_zoo_resnet18`, random initialization",
                 "- **Data:** `tiny`, 32 training images (`train`), 8 validation images (`val`)",
                 "- **Classes:** `3`, `7`",
                 f"- **Epochs:** 2 of a 2-epoch schedule; these weights are epoch {result.best_epoch}'s",
                 "- **Optimizer:** adamw, peak learning rate 0.002, weight decay 0.05, cosine schedule",
                 "- **Batch size:** 16 (global)",
                 "- **Augmentation:** random-resized crop (area 0.5–1, aspect 0.75–1.33), horizontal flip p=0, "
                 "label smoothing 0.1",
                 "- **Precision:** float32", "- **Devices:** 1 × cpu", "- **Wall time:** ",
                 "Training curves: `metrics.jsonl`", "## Intended use and limitations", "pip install se-zoo",
                 f'timm.create_model("hf-hub:{repo_id}", pretrained=True)'):
        assert line in text, line
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics["top1"] == round(result.best_top1, 2)

    model = timm.create_model(f"local-dir:{result.output}", pretrained=True)
    push_to_hub(model, f"{hub_server.namespace}/digits", commit_message="the same weights, as a model")
    assert _title(_card(repo_id)) == _title(card) == "# Model card for digits"
