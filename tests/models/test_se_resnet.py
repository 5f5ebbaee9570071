"""SE-ResNet / SE-ResNeXt / SENet-154: timm API, fidelity to timm, parity with source weights.

Parity and fidelity references are timm's own models (``TIMM_EQUIVALENTS``) or
values written out by hand, never se-zoo itself. Run with ``-m slow`` for the
deep architectures' full set.
"""
import math

import pytest
import torch
from torch import nn

import timm
from timm.data import create_transform, resolve_data_config
from timm.layers import DropPath
from timm.models import group_parameters
from timm.models._hub import save_for_hf

import se_zoo.models
from helpers.weights import randomize_
from se_zoo.models.se_resnet import TIMM_EQUIVALENTS, checkpoint_filter_fn

ARCHS = list(TIMM_EQUIVALENTS)
# Deeper copies of the 50-layer models (same blocks and widths): everything but their
# state-dict check runs with -m slow. SENet-154 (unique stem and blocks) keeps its
# create / forward / backward test in the default run; its features and parity are slow.
DEEP = {"se_zoo_resnet101", "se_zoo_resnet152", "se_zoo_resnext101_32x4d", "se_zoo_legacy_seresnet101",
        "se_zoo_legacy_seresnet152", "se_zoo_legacy_seresnext101_32x4d"}
HEAVY = DEEP | {"se_zoo_senet154"}
BASIC = {"se_zoo_resnet18", "se_zoo_resnet34", "se_zoo_legacy_seresnet18", "se_zoo_legacy_seresnet34"}
# One architecture of each implementation: timm's ResNet and timm's legacy SENet.
PAIR = ["se_zoo_resnet18", "se_zoo_legacy_seresnet18"]
SIZE = 64


def _expected_channels(arch):
    if arch in BASIC:
        return [64, 64, 128, 256, 512]
    return [128 if arch == "se_zoo_senet154" else 64, 256, 512, 1024, 2048]


def _x(batch=2, chans=3, size=SIZE, seed=1):
    return torch.randn(batch, chans, size, size, generator=torch.Generator().manual_seed(seed))


def _random_source(timm_arch, **kwargs):
    """timm's model with random weights and BN stats, in eval mode.

    ``randomize_`` draws conv weights with std 0.2 whatever their fan-in, which
    overflows float32 after ~50 blocks; rescaling them to std 1/sqrt(fan_in)
    keeps every depth finite. The classifier is then scaled so the logits of
    ``_x()`` peak at 10 for every depth, which makes the 1e-4 parity tolerance
    the same relative accuracy (1e-5) for SE-ResNet-18 and SENet-154 alike.
    """
    model = randomize_(timm.create_model(timm_arch, **kwargs)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(1.0 / (0.2 * math.sqrt(module.weight[0].numel())))
        head = model.get_classifier()
        scale = 10.0 / model(_x()).abs().max()
        head.weight.mul_(scale)
        head.bias.mul_(scale)
    return model


def _pretrained_name(arch):
    """The catalogue's first tag for ``arch`` (exercises its generated cfg), else the bare name."""
    tags = timm.list_pretrained(f"{arch}.*")
    return tags[0] if tags else arch


def _saved_source(arch, tmp_path):
    """A random timm counterpart of ``arch``, saved the way the Hub serves it."""
    source = _random_source(TIMM_EQUIVALENTS[arch])
    save_for_hf(source, tmp_path, safe_serialization=True)
    return source, tmp_path / "model.safetensors"


def _load(arch, file, **kwargs):
    return timm.create_model(
        _pretrained_name(arch), pretrained=True, pretrained_cfg_overlay=dict(file=str(file)), **kwargs).eval()


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-5)


def test_registry_lists_every_architecture():
    assert sorted(timm.list_models(module="se_resnet")) == sorted(ARCHS)
    assert set(ARCHS) <= set(timm.list_models("se_zoo_*"))
    assert se_zoo.models.TIMM_EQUIVALENTS.items() >= TIMM_EQUIVALENTS.items()
    for arch, ref in TIMM_EQUIVALENTS.items():
        assert timm.is_model(ref), f"{arch} -> {ref}: not a timm architecture"


def _slow_if(names):
    return [pytest.param(a, marks=pytest.mark.slow) if a in names else a for a in ARCHS]


@pytest.mark.parametrize("arch", _slow_if(DEEP))
def test_create_forward_backward(arch):
    model = timm.create_model(arch)
    out = model(_x(size=32))  # 1x1 at the last stage: the smallest input every layer accepts
    assert out.shape == (2, 1000)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.get_classifier().weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", _slow_if(HEAVY))
def test_features_only(arch):
    out_indices = (0, 2, 4)
    model = timm.create_model(arch, features_only=True, out_indices=out_indices)
    channels = [_expected_channels(arch)[i] for i in out_indices]
    reductions = [2 ** (i + 1) for i in out_indices]
    assert model.feature_info.channels() == channels
    assert model.feature_info.reduction() == reductions
    feats = model(_x())
    assert [tuple(f.shape) for f in feats] == [(2, c, SIZE // r, SIZE // r) for c, r in zip(channels, reductions)]


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_and_params_equal_timm(arch):
    with torch.device("meta"):
        ours, ref = timm.create_model(arch), timm.create_model(TIMM_EQUIVALENTS[arch])
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in ref_sd.items()}
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_se_zoo_resnet50_param_count():
    with torch.device("meta"):
        model = timm.create_model("se_zoo_resnet50")
    assert sum(p.numel() for p in model.parameters()) == 28_088_024


@pytest.mark.parametrize("arch", _slow_if(HEAVY))
def test_parity_with_source_weights(arch, tmp_path):
    source, file = _saved_source(arch, tmp_path)
    model = _load(arch, file)
    x = _x()
    with torch.no_grad():
        expected = source(x)
        assert expected.abs().max() > 1.0  # the random weights reach the logits
        _close(model(x), expected)  # in-place fused SE path
    out = model(x)
    assert out.requires_grad  # autograd SE path
    _close(out.detach(), expected)
    model = model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        _close(model(x.to(memory_format=torch.channels_last)), expected)


@pytest.mark.parametrize("arch", PAIR)
def test_checkpoint_filter_unwraps_training_checkpoints(arch, tmp_path):
    source = _random_source(TIMM_EQUIVALENTS[arch])
    x = _x()
    with torch.no_grad():
        expected = source(x)
    sd = source.state_dict()
    # DistributedDataParallel prefix, a training-checkpoint wrapper, and older timm SE names
    renamed = {"module." + k.replace(".fc1.", ".conv_reduce.").replace(".fc2.", ".conv_expand."): v
               for k, v in sd.items()}
    assert checkpoint_filter_fn({"state_dict": renamed}, None) == sd
    for wrapped in ({"state_dict": renamed, "epoch": 3}, {"model": renamed}):
        model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(state_dict=wrapped)).eval()
        with torch.no_grad():
            _close(model(x), expected)


@pytest.mark.parametrize("arch, conv, head", [
    ("se_zoo_resnet50", "conv1", "fc"),
    ("se_zoo_legacy_seresnet18", "layer0.conv1", "last_linear"),
])
def test_pretrained_in_chans_1_num_classes_10(arch, conv, head, tmp_path):
    source, file = _saved_source(arch, tmp_path)
    model = _load(arch, file, in_chans=1, num_classes=10)
    src_sd, sd = source.state_dict(), model.state_dict()
    torch.testing.assert_close(sd[conv + ".weight"], src_sd[conv + ".weight"].sum(dim=1, keepdim=True))
    assert sd[head + ".weight"].shape == (10, src_sd[head + ".weight"].shape[1])
    assert not torch.equal(sd[head + ".weight"], src_sd[head + ".weight"][:10])
    for key, value in sd.items():
        if not key.startswith((conv + ".", head + ".")):
            assert torch.equal(value, src_sd[key]), key
    assert model(_x(chans=1)).shape == (2, 10)


@pytest.mark.parametrize("arch", PAIR)
def test_drop_rate_and_drop_path_rate(arch):
    plain = timm.create_model(arch, drop_rate=0.0).eval()  # timm's legacy SENet defaults to drop_rate=0.2
    model = timm.create_model(arch, drop_rate=0.2, drop_path_rate=0.1).eval()
    model.load_state_dict(plain.state_dict(), strict=True)
    rates = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    assert rates and max(rates) == pytest.approx(0.1)
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x))  # identity in eval
    model.train()
    plain.train()
    out = model(x)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert not torch.allclose(model(x), out)  # stochastic in training
    torch.testing.assert_close(plain(x), plain(x))


@pytest.mark.parametrize("arch", PAIR)
def test_forward_features_head_and_classifier(arch):
    model = timm.create_model(arch).eval()
    x = _x()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 512, SIZE // 32, SIZE // 32)
        assert model.forward_head(feats, pre_logits=True).shape == (2, 512)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert model.get_classifier().out_features == 1000
        model.reset_classifier(5)
        assert model.get_classifier().out_features == 5
        assert model(x).shape == (2, 5)
        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), nn.Identity)
        assert model(x).shape == (2, 512)


@pytest.mark.parametrize("arch", PAIR)
def test_grad_checkpointing(arch):
    model = timm.create_model(arch, drop_rate=0.0).eval()
    calls = []
    # a pre-hook: checkpoint recomputation may stop early, before a block's end
    model.layer1[0].register_forward_pre_hook(lambda *_: calls.append(1))
    x = _x()

    def run():
        calls.clear()
        model.zero_grad()
        out = model(x)
        out.sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()], len(calls)

    out, grads, n_plain = run()
    model.set_grad_checkpointing(True)
    out_ckpt, grads_ckpt, n_ckpt = run()
    assert (n_plain, n_ckpt) == (1, 2)  # the block really was recomputed in the backward
    torch.testing.assert_close(out_ckpt, out)
    torch.testing.assert_close(grads_ckpt, grads)


@pytest.mark.parametrize("arch", PAIR)
def test_group_matcher_equals_timm(arch):
    model = timm.create_model(arch)
    with torch.device("meta"):
        ref = timm.create_model(TIMM_EQUIVALENTS[arch])
    for coarse in (False, True):
        assert model.group_matcher(coarse) == ref.group_matcher(coarse)
        groups = group_parameters(model, model.group_matcher(coarse))
        assert sorted(n for names in groups.values() for n in names) == sorted(n for n, _ in model.named_parameters())


@pytest.mark.parametrize("tag, source_tag, interpolation, crop_pct", [
    ("se_zoo_resnet50.a1_in1k", "seresnet50.a1_in1k", "bicubic", 0.95),
    ("se_zoo_legacy_seresnet50.in1k", "legacy_seresnet50.in1k", "bilinear", 0.875),
])
def test_data_config_and_transform(tag, source_tag, interpolation, crop_pct):
    with torch.device("meta"):
        model, source = timm.create_model(tag), timm.create_model(source_tag)
    cfg = resolve_data_config({}, model=model)
    assert cfg["input_size"] == (3, 224, 224)
    assert (cfg["interpolation"], cfg["crop_pct"]) == (interpolation, crop_pct)
    for use_test_size in (False, True):
        ours = resolve_data_config({}, model=model, use_test_size=use_test_size)
        theirs = resolve_data_config({}, model=source, use_test_size=use_test_size)
        assert ours == theirs
        assert repr(create_transform(**ours)) == repr(create_transform(**theirs))


# One trace each (tracing dominates the cost): the autograd SE path of timm's ResNet
# in training, the in-place inference path of the legacy SENet.
@pytest.mark.parametrize("arch, grad", [("se_zoo_resnet18", True), ("se_zoo_legacy_seresnet18", False)])
def test_torch_compile_fullgraph(arch, grad):
    model = timm.create_model(arch, drop_rate=0.0).train(grad)
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # raises on any graph break
    x = _x()
    with torch.set_grad_enabled(grad):
        out = compiled(x)
        torch.testing.assert_close(out, model(x))
    if grad:
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
