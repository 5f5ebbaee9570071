"""Model cards and config.json written by ``se_zoo.hub.save_pretrained``."""
import hashlib
import json

import pytest
import timm
import torch
import yaml

from se_zoo.hub import CardOptions, save_pretrained
from se_zoo.hub.card import model_stats


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_card_front_matter_and_body(tmp_path):
    from huggingface_hub import ModelCard

    model = timm.create_model("se_zoo_resnet18", num_classes=10, layers=(1, 1, 1, 1))
    sha256 = save_pretrained(model, tmp_path, repo_id="org/r18-cifar", card=CardOptions(
        license="mit", datasets=["cifar10"], metrics={"top1": 91.25, "top5": 99.5}))
    text = (tmp_path / "README.md").read_text()

    meta = _front_matter(text)  # parsed by plain YAML, independently of huggingface_hub
    assert meta["library_name"] == "timm"
    assert meta["tags"] == ["image-classification", "timm", "se-zoo"]
    assert meta["license"] == "mit" and meta["datasets"] == ["cifar10"]
    (index,) = meta["model-index"]
    (result,) = index["results"]
    assert result["task"]["type"] == "image-classification"
    assert result["dataset"]["type"] == "cifar10"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"top1": 91.25, "top5": 99.5}

    card = ModelCard.load(tmp_path / "README.md")  # and by the Hub client, into EvalResults
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == {"top1": 91.25, "top5": 99.5}

    assert sha256 == hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
    assert f"sha256 `{sha256}`" in text
    assert f"**Params (M):** {sum(p.numel() for p in model.parameters()) / 1e6:.2f}" in text
    assert "**Input size:** 3 × 224 × 224" in text
    assert 'timm.create_model("hf-hub:org/r18-cifar", pretrained=True)' in text
    assert "Squeeze-and-Excitation Networks" in text and "1709.01507" in text
    assert "Hu, Jie and Shen, Li and Albanie, Samuel and Sun, Gang and Wu, Enhua" in text


@pytest.mark.parametrize("name, published_gmacs, tol", [
    ("se_zoo_resnet18", 1.8, 0.05),  # ResNet-18: 1.8e9 multiply-adds (He et al. 2015, Table 1); SE adds < 0.1 %
    ("se_zoo_mobilenetv2_050", 0.097, 0.002),  # MobileNetV2 0.5 at 224: 97M MAdds (Sandler et al. 2018, Table 6)
])
def test_gmacs_match_published_figures(name, published_gmacs, tol):
    if name not in timm.list_models("se_zoo_*"):
        pytest.skip(f"{name} is not registered")
    model = timm.create_model(name).train()
    stats = model_stats(model)
    assert abs(stats["gmacs"] - published_gmacs) < tol
    assert stats["input_size"] == (3, 224, 224)
    assert model.training  # the measurement ran in eval mode and restored the caller's mode


def test_card_argument_errors(tmp_path):
    model = timm.create_model("se_zoo_resnet18", num_classes=3, layers=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="eval_dataset"):
        save_pretrained(model, tmp_path, card=CardOptions(metrics={"top1": 50.0}))
    with pytest.raises(TypeError, match=r"metrics\['top1'\]"):
        save_pretrained(model, tmp_path, card=CardOptions(metrics={"top1": "high"}, datasets="cifar10"))
    with pytest.raises(TypeError, match="timm model"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing is written when the arguments are refused


@pytest.mark.skipif(not hasattr(timm.models, "get_model_args"), reason=f"timm {timm.__version__} records no "
                    "constructor arguments in create_model (timm 1.0.31 does): config.json gets num_classes and "
                    "in_chans only, and save_pretrained asks for the others as model_args")
def test_config_records_non_default_arguments(tmp_path):
    model = timm.create_model("se_zoo_resnet18", num_classes=5, in_chans=1, drop_rate=0.2, drop_path_rate=0.1,
                              global_pool="max", layers=(1, 1, 1, 1))
    save_pretrained(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"] == "se_zoo_resnet18"
    assert config["num_classes"] == 5 and config["num_features"] == 512
    assert config["model_args"] == {"num_classes": 5, "in_chans": 1, "drop_rate": 0.2, "drop_path_rate": 0.1,
                                    "global_pool": "max", "layers": [1, 1, 1, 1]}
    assert config["pretrained_cfg"]["input_size"] == [1, 224, 224]

    rebuilt = timm.create_model(f"local-dir:{tmp_path}", pretrained=True)
    assert rebuilt.fc.out_features == 5 and rebuilt.conv1.in_channels == 1
    assert rebuilt.drop_rate == 0.2 and rebuilt.global_pool.pool_type == "max"
    assert rebuilt.layer4[0].drop_path.drop_prob == pytest.approx(0.1)
    assert [len(stage) for stage in (rebuilt.layer1, rebuilt.layer2, rebuilt.layer3, rebuilt.layer4)] == [1, 1, 1, 1]


@pytest.mark.skipif(not hasattr(timm.models, "get_model_args"), reason=f"timm {timm.__version__}: se-zoo's "
                    "builders record their arguments themselves, also outside create_model, so nothing is refused")
def test_config_that_would_not_recreate_the_model_is_refused(tmp_path):
    from se_zoo.models.se_resnet import se_zoo_resnet18

    model = se_zoo_resnet18(layers=(1, 1, 1, 1))  # built without create_model: no record of `layers`
    with pytest.raises(ValueError, match="would not re-create"):
        save_pretrained(model, tmp_path / "refused")
    assert not (tmp_path / "refused" / "config.json").exists()
    save_pretrained(model, tmp_path / "ok", model_args={"layers": [1, 1, 1, 1]})
    rebuilt = timm.create_model(f"local-dir:{tmp_path / 'ok'}", pretrained=True)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


def test_weights_keep_dtype(tmp_path):
    import safetensors.torch

    model = timm.create_model("se_zoo_resnet18", num_classes=4, layers=(1, 1, 1, 1)).to(torch.bfloat16)
    model = model.to(memory_format=torch.channels_last)  # 4-d weights become non-contiguous
    save_pretrained(model, tmp_path)
    loaded = safetensors.torch.load_file(tmp_path / "model.safetensors")
    expected = model.state_dict()
    assert loaded.keys() == expected.keys()
    for key, tensor in expected.items():
        assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor), key


def test_shared_tensors_are_stored_under_every_key():
    import safetensors.torch

    from se_zoo.hub.save import _tensors_for_save

    weight = torch.randn(4, 3)
    state_dict = {"head.weight": weight, "embed.weight": weight, "half": weight[:2]}
    with pytest.raises(RuntimeError):  # what safetensors does with aliases left in place
        safetensors.torch.save(state_dict)
    loaded = safetensors.torch.load(safetensors.torch.save(_tensors_for_save(state_dict)))
    assert loaded.keys() == state_dict.keys()
    assert all(torch.equal(loaded[k], v) for k, v in state_dict.items())
