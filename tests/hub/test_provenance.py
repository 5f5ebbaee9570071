"""Weights provenance: every origin (random init, catalogue tag, checkpoint file, Hub repo, training run,
unknown) is recorded on the model, survives what users do to models, and drives the card's "Weights" line,
its "untrained" warning and config.json's tag, through the library and through the CLI (local registry)."""
import copy
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi, hf_hub_download

from se_zoo.cli import main
from se_zoo.hub import CardOptions, WeightsOrigin, pull, push_to_hub, save_pretrained, weights_origin

TAG = "se_zoo_mobilenetv2_050.seinit_lamb_in1k"  # a catalogue tag whose source is a timm twin's checkpoint
UNTRAINED = "**untrained (random initialization)**"
SMALL = {"num_classes": 3, "layers": (1, 1, 1, 1)}


def _r18(**kwargs) -> torch.nn.Module:
    return timm.create_model("se_zoo_resnet18", **SMALL, **kwargs)


def _saved(directory: Path) -> tuple:
    """The config.json and README.md text save_pretrained wrote in ``directory``."""
    return json.loads((directory / "config.json").read_text()), (directory / "README.md").read_text()


def _published(repo_id: str) -> tuple:
    """The config.json and README.md text of a Hub repo."""
    config = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
    return config, Path(hf_hub_download(repo_id, "README.md")).read_text()


def _weights_line(card: str) -> str:
    return next(line for line in card.splitlines() if line.startswith("- **Weights:** "))


@pytest.fixture
def catalogue(hub_server, tmp_path, monkeypatch):
    """The tag's source repo on the local registry, holding a twin checkpoint, and the catalogue pinning it.

    Returns the pinned sha256."""
    from se_zoo.pretrained import catalog as _catalog

    record = _catalog.find_record(TAG)
    torch.manual_seed(0)
    data = safetensors.torch.save(timm.create_model("mobilenetv2_050").state_dict())
    HfApi().create_repo(record["hf_hub_id"], exist_ok=True)
    HfApi().upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id=record["hf_hub_id"])
    sha256 = hashlib.sha256(data).hexdigest()

    weights = tmp_path / "weights"
    shutil.copytree(_catalog.catalog_dir(), weights)
    family = json.loads((weights / "se_mobilenet.json").read_text())
    for entry in family["records"]:
        if entry["tag"] == TAG:
            entry["sha256"] = sha256
    (weights / "se_mobilenet.json").write_text(json.dumps(family))
    monkeypatch.setattr(_catalog, "catalog_dir", lambda: weights)
    _catalog.load_records.cache_clear()
    yield sha256
    _catalog.load_records.cache_clear()


def _image_folder(root: Path) -> Path:
    """Two classes of random 32 × 32 images, 8 training and 4 validation each."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 8), ("val", 4)):
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8, generator=generator)
                Image.fromarray(pixels.numpy()).save(root / split / label / f"{i}.png")
    return root


# random initialization

def test_random_init_survives_copies_and_is_published_untrained_without_a_tag(tmp_path):
    model = timm.create_model("se_zoo_mobilenetv2_050")  # the architecture has a catalogue tag, not loaded
    assert weights_origin(model) == WeightsOrigin("random_init")
    assert model.pretrained_cfg["tag"] == "seinit_lamb_in1k"
    for copied in (copy.deepcopy(model), model.to(torch.float16), pickle.loads(pickle.dumps(model))):
        assert weights_origin(copied) == WeightsOrigin("random_init")

    save_pretrained(model, tmp_path)
    config, card = _saved(tmp_path)
    assert config["weights_origin"] == {"kind": "random_init"}
    assert "tag" not in config["pretrained_cfg"] and "license" not in config["pretrained_cfg"]
    assert UNTRAINED in _weights_line(card) and "outputs are meaningless until it is trained" in card


def test_cli_push_of_a_name_is_random_init(hub_server):
    repo_id = f"{hub_server.namespace}/random"
    assert main(["push", "se_zoo_mobilenetv2_050", repo_id]) == 0
    config, card = _published(repo_id)
    assert config["weights_origin"] == {"kind": "random_init"} and "tag" not in config["pretrained_cfg"]
    assert UNTRAINED in _weights_line(card)


# catalogue tag

def test_catalogue_tag_records_the_checked_pin_and_keeps_its_tag(catalogue, tmp_path):
    model = timm.create_model(TAG, pretrained=True)
    assert weights_origin(model) == WeightsOrigin("catalogue", tag=TAG, sha256=catalogue)

    save_pretrained(model, tmp_path)
    config, card = _saved(tmp_path)
    assert config["pretrained_cfg"]["tag"] == "seinit_lamb_in1k"
    assert config["weights_origin"] == {"kind": "catalogue", "tag": TAG, "sha256": catalogue}
    assert f"`{TAG}`, sha256 `{catalogue}` checked" in _weights_line(card) and "untrained" not in card


def test_catalogue_tag_without_a_pin_says_so(catalogue, monkeypatch):
    from se_zoo.pretrained import catalog as _catalog

    monkeypatch.setattr(_catalog, "catalog_dir", lambda: Path(__file__).resolve().parents[2] / "weights")
    _catalog.load_records.cache_clear()
    model = timm.create_model(TAG, pretrained=True)
    assert weights_origin(model) == WeightsOrigin("catalogue", tag=TAG)
    assert "pins no sha256" in weights_origin(model).describe()


def test_cli_push_pretrained_tag_publishes_the_tag_and_pin(catalogue, hub_server):
    repo_id = f"{hub_server.namespace}/tagged"
    assert main(["push", TAG, repo_id, "--pretrained"]) == 0
    config, card = _published(repo_id)
    assert config["pretrained_cfg"]["tag"] == "seinit_lamb_in1k"
    assert config["weights_origin"] == {"kind": "catalogue", "tag": TAG, "sha256": catalogue}
    assert f"`{TAG}`" in _weights_line(card) and UNTRAINED not in card


# checkpoint file

def test_checkpoint_file_by_overlay_checkpoint_path_and_local_dir(tmp_path):
    source = _r18()
    torch.nn.init.normal_(source.fc.weight)
    checkpoint = tmp_path / "weights.pth"
    torch.save(source.state_dict(), checkpoint)
    expected = WeightsOrigin("checkpoint", path=str(checkpoint))

    overlay = _r18(pretrained=True, pretrained_cfg_overlay={"file": str(checkpoint), "num_classes": 3})
    by_path = _r18(checkpoint_path=str(checkpoint))
    for model in (overlay, by_path):
        assert weights_origin(model) == expected
        assert torch.equal(model.fc.weight, source.fc.weight)

    save_pretrained(overlay, tmp_path / "saved")
    config, card = _saved(tmp_path / "saved")
    # published files name the checkpoint, never the folders of the machine that saved it
    assert config["weights_origin"] == {"kind": "checkpoint", "path": "weights.pth"}
    assert str(tmp_path) not in json.dumps(config) and str(tmp_path) not in _weights_line(card)
    assert "tag" not in config["pretrained_cfg"] and UNTRAINED not in card
    assert "loaded from the checkpoint `weights.pth`" in _weights_line(card)

    reloaded = timm.create_model(f"local-dir:{tmp_path / 'saved'}", pretrained=True)
    assert weights_origin(reloaded) == WeightsOrigin(
        "checkpoint", path=str(tmp_path / "saved" / "model.safetensors"),
        previous=WeightsOrigin("checkpoint", path="weights.pth"))


def test_cli_push_of_a_checkpoint_directory_and_local_dir(hub_server, tmp_path):
    checkpoint = tmp_path / "weights.pth"
    torch.save(_r18().state_dict(), checkpoint)
    save_pretrained(_r18(pretrained=True, pretrained_cfg_overlay={"file": str(checkpoint), "num_classes": 3}),
                    tmp_path / "saved")

    repo_id = f"{hub_server.namespace}/from-checkpoint"
    assert main(["push", str(tmp_path / "saved"), repo_id]) == 0
    config, card = _published(repo_id)
    assert config["weights_origin"] == {"kind": "checkpoint", "path": "weights.pth"}
    assert "loaded from the checkpoint `weights.pth`" in _weights_line(card)

    assert main(["push", f"local-dir:{tmp_path / 'saved'}", repo_id, "--pretrained"]) == 0
    config, card = _published(repo_id)
    assert config["weights_origin"] == {"kind": "checkpoint", "path": "model.safetensors",
                                        "previous": {"kind": "checkpoint", "path": "weights.pth"}}
    assert str(tmp_path) not in json.dumps(config) and str(tmp_path) not in card


# Hub repo

def test_hub_repo_records_the_commit_and_what_the_repo_recorded(hub_server, tmp_path):
    repo_id = f"{hub_server.namespace}/hub"
    pushed = push_to_hub(_r18(), repo_id)

    pulled = pull(repo_id).model
    assert weights_origin(pulled) == WeightsOrigin("hub", repo_id=repo_id, commit=pushed.commit_sha,
                                                   sha256=pushed.weights_sha256,
                                                   previous=WeightsOrigin("random_init"))
    by_timm = timm.create_model(f"hf-hub:{repo_id}", pretrained=True)
    assert weights_origin(by_timm) == WeightsOrigin("hub", repo_id=repo_id, commit=pushed.commit_sha,
                                                    previous=WeightsOrigin("random_init"))

    save_pretrained(pulled, tmp_path)  # a re-published random initialization stays marked untrained
    config, card = _saved(tmp_path)
    assert config["weights_origin"]["commit"] == pushed.commit_sha and "tag" not in config["pretrained_cfg"]
    line = _weights_line(card)
    assert f"the Hub repo `{repo_id}` at commit `{pushed.commit_sha}`" in line and UNTRAINED in line
    assert "outputs are meaningless until it is trained" in card and "license" not in config["pretrained_cfg"]


def test_hub_repo_of_a_catalogue_tag_keeps_the_tag(catalogue, hub_server, tmp_path):
    repo_id = f"{hub_server.namespace}/hub-tag"
    push_to_hub(timm.create_model(TAG, pretrained=True), repo_id)
    pulled = pull(repo_id).model
    assert weights_origin(pulled).catalogue_tag == TAG
    save_pretrained(pulled, tmp_path)
    assert _saved(tmp_path)[0]["pretrained_cfg"]["tag"] == "seinit_lamb_in1k"


def test_cli_pull_prints_and_push_publishes_the_commit(hub_server, capsys):
    source = f"{hub_server.namespace}/hub-source"
    pushed = push_to_hub(_r18(), source)
    assert main(["pull", source]) == 0
    assert f"weights: loaded from the Hub repo `{source}` at commit `{pushed.commit_sha}`" in capsys.readouterr().out

    repo_id = f"{hub_server.namespace}/hub-copy"
    assert main(["push", f"hf-hub:{source}", repo_id, "--pretrained"]) == 0
    config, card = _published(repo_id)
    assert config["weights_origin"]["kind"] == "hub" and config["weights_origin"]["commit"] == pushed.commit_sha
    assert UNTRAINED in _weights_line(card) and "outputs are meaningless until it is trained" in card


# training run

def test_training_run_is_cited_not_untrained_and_names_no_tag(tmp_path):
    from se_zoo import TrainConfig, train

    data = _image_folder(tmp_path / "data")
    result = train(TrainConfig(model="se_zoo_mobilenetv2_050", data=str(data), img_size=32, epochs=1, batch_size=8,
                               workers=0, output=str(tmp_path / "run"), progress=False))
    config, card = _saved(result.output)
    assert config["weights_origin"]["kind"] == "training"
    assert config["weights_origin"]["run"]["start"] == "se_zoo_mobilenetv2_050"
    assert "tag" not in config["pretrained_cfg"]  # the architecture's catalogue tag was never loaded
    assert "trained with `se-zoo train`" in _weights_line(card) and "## Training" in card
    assert "untrained" not in card


def test_cli_train_push_to_hub_publishes_the_run(hub_server, tmp_path, capsys):
    data = _image_folder(tmp_path / "data")
    repo_id = f"{hub_server.namespace}/trained"
    assert main(["train", "--model", "se_zoo_resnet18", "--model-kwargs", "layers=(1,1,1,1)", "--data", str(data),
                 "--img-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "0",
                 "--output", str(tmp_path / "run"), "--push-to-hub", repo_id, "--no-progress"]) == 0
    config, card = _published(repo_id)
    assert config["weights_origin"]["kind"] == "training" and "tag" not in config["pretrained_cfg"]
    assert "trained with `se-zoo train`" in _weights_line(card) and "untrained" not in card
    capsys.readouterr()
    assert main(["pull", repo_id]) == 0
    assert "recorded there as: trained with `se-zoo train`" in capsys.readouterr().out


# what se-zoo did not see

def test_load_state_dict_and_in_memory_weights_are_unknown(tmp_path):
    model = _r18()
    model.load_state_dict(_r18().state_dict())
    assert weights_origin(model).kind == "unknown" and "load_state_dict" in weights_origin(model).note
    overlaid = _r18(pretrained=True, pretrained_cfg_overlay={"state_dict": model.state_dict(), "num_classes": 3})
    assert weights_origin(overlaid).kind == "unknown"
    assert weights_origin(torch.nn.Linear(2, 2)).kind == "unknown"

    save_pretrained(model, tmp_path, card=CardOptions(license="mit"))
    config, card = _saved(tmp_path)
    assert config["weights_origin"]["kind"] == "unknown" and "tag" not in config["pretrained_cfg"]
    assert "origin not recorded" in _weights_line(card) and UNTRAINED not in card


def test_origin_and_card_options_refuse_bad_values(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        WeightsOrigin("downloaded")
    with pytest.raises(ValueError, match="needs repo_id"):
        WeightsOrigin("hub")
    with pytest.raises(ValueError, match="previous applies to"):
        WeightsOrigin("random_init", previous=WeightsOrigin("random_init"))
    with pytest.raises(TypeError, match="datasets"):
        CardOptions(datasets=[1])
    with pytest.raises(TypeError, match="options must be a CardOptions"):
        save_pretrained(_r18(), tmp_path, card={"license": "mit"})
    assert not any(tmp_path.iterdir())
    origin = WeightsOrigin("hub", repo_id="a/b", commit="c" * 40, previous=WeightsOrigin("catalogue", tag=TAG))
    assert WeightsOrigin.from_dict(json.loads(json.dumps(origin.to_dict()))) == origin
