"""se_zoo.models.stats: the one parameter and MAC count."""
import pytest
import timm
import torch

from se_zoo.models.stats import model_stats


def test_train_mode_count_on_meta_is_the_architectures_own():
    model = timm.create_model("se_zoo_resnet50", device="meta")
    train = model_stats(model, (3, 224, 224), training=True)
    inference = model_stats(model, (3, 224, 224))
    assert model.training  # the mode it had is restored
    assert train["params"] == inference["params"] == sum(p.numel() for p in model.parameters())
    assert train["input_size"] == (3, 224, 224)
    # eval adds conv3 on the squeezed 1x1 map in every bottleneck: a little more, never less
    assert train["gmacs"] < inference["gmacs"] < train["gmacs"] * 1.005
    assert train["gmacs"] == pytest.approx(4.09, abs=0.01)  # seresnet50's published count


def test_default_input_size_and_mode_restored():
    model = timm.create_model("se_zoo_mobilenetv2_050").eval()
    stats = model_stats(model)
    assert stats["input_size"] == tuple(model.pretrained_cfg["input_size"]) and not model.training
    # a quarter of the pixels: about a quarter of the conv MACs (the classifier's stay)
    assert 0.24 < model_stats(model, (3, 112, 112))["gmacs"] / stats["gmacs"] < 0.3


def test_train_mode_on_real_weights_is_refused():
    model = timm.create_model("se_zoo_resnet18", num_classes=10)
    running_mean = model.bn1.running_mean.clone()
    with pytest.raises(ValueError, match="training=True .* meta device, got one on cpu"):
        model_stats(model, (3, 32, 32), training=True)
    assert torch.equal(model.bn1.running_mean, running_mean)
