"""SE-MobileNet V1/V2: architecture vs timm, paper figures, exact warm start from non-SE weights."""
import pytest
import safetensors.torch
import timm
import torch
from timm.models import save_for_hf
from timm.models.efficientnet import _gen_mobilenet_v1, _gen_mobilenet_v2
from torch.utils.flop_counter import FlopCounterMode

from helpers.weights import randomize_
from se_zoo import TIMM_EQUIVALENTS
from se_zoo.layers import SqueezeExcite
from se_zoo.pretrained.catalog import load_records
from se_zoo.models.se_mobilenet import checkpoint_filter_fn

# se-zoo architecture -> (timm generator, width): the non-SE reference network.
BASES = {
    "se_zoo_mobilenetv1_050": (_gen_mobilenet_v1, 0.5),
    "se_zoo_mobilenetv1_075": (_gen_mobilenet_v1, 0.75),
    "se_zoo_mobilenetv1_100": (_gen_mobilenet_v1, 1.0),
    "se_zoo_mobilenetv2_050": (_gen_mobilenet_v2, 0.5),
    "se_zoo_mobilenetv2_075": (_gen_mobilenet_v2, 0.75),
    "se_zoo_mobilenetv2_100": (_gen_mobilenet_v2, 1.0),
    "se_zoo_mobilenetv2_140": (_gen_mobilenet_v2, 1.4),
}
SEINIT = {
    "se_zoo_mobilenetv1_100.seinit_ra4_e3600_r224_in1k": "mobilenetv1_100",
    "se_zoo_mobilenetv2_100.seinit_ra_in1k": "mobilenetv2_100",
}


def _base(arch: str):
    gen, width = BASES[arch]
    return gen(TIMM_EQUIVALENTS[arch], width)


def _se_modules(model):
    return {name: m for name, m in model.named_modules() if isinstance(m, SqueezeExcite)}


def test_timm_equivalents_cover_every_architecture():
    assert {a for a in TIMM_EQUIVALENTS if "mobilenet" in a} == set(BASES)
    assert set(timm.list_models("se_zoo_mobilenet*")) == set(BASES)
    for arch in BASES:
        assert timm.is_model(TIMM_EQUIVALENTS[arch])


@pytest.mark.parametrize("arch", sorted(BASES))
def test_create_forward_backward_features(arch):
    model = timm.create_model(arch, num_classes=10)
    x = torch.randn(2, 3, 64, 64)
    model.set_grad_checkpointing(True)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, model.num_features)

    features = timm.create_model(arch, features_only=True)
    maps = features(x)
    assert [m.shape[1] for m in maps] == features.feature_info.channels()
    assert [64 // m.shape[-1] for m in maps] == features.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert len(_se_modules(features)) == len(_se_modules(model)) > 0


@pytest.mark.parametrize("arch", sorted(BASES))
def test_architecture_equals_timm_apart_from_se(arch):
    model, base = timm.create_model(arch), _base(arch)
    se_names = tuple(f"{name}." for name in _se_modules(model))
    shapes = {k: v.shape for k, v in model.state_dict().items() if not k.startswith(se_names)}
    assert shapes == {k: v.shape for k, v in base.state_dict().items()}
    # one SE block in every block, right after the depthwise conv (V2) or on the block output (V1)
    blocks = [b for stage in model.blocks for b in stage]
    assert len(se_names) == len(blocks)
    for block in blocks:
        expected = block.conv_pw.out_channels if "v1" in arch else block.conv_dw.out_channels
        assert block.se.fc1.in_channels == expected
        assert block.se.fc1.out_channels == max(1, int(expected / 16 + 0.5))


def _macs(model) -> float:
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 224, 224, device="meta"))
    return counter.get_total_flops() / 2


def test_se_mobilenetv1_matches_paper_table3():
    model = timm.create_model("se_zoo_mobilenetv1_100", device="meta")
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / 4.7e6 - 1) < 0.05
    assert abs(_macs(model) / 572e6 - 1) < 0.05

    # MobileNet-V1 block output widths (Howard et al., Table 1); SE: C -> C/16 -> C, with biases.
    widths = [64, 128, 128, 256, 256] + [512] * 6 + [1024, 1024]
    se_params = sum(2 * c * (c // 16) + c // 16 + c for c in widths)
    base = timm.create_model("mobilenetv1_100", device="meta")
    assert params - sum(p.numel() for p in base.parameters()) == se_params


@pytest.fixture(scope="module")
def base_checkpoints(tmp_path_factory):
    """Random timm MobileNets (BN stats included), saved as the Hub serves them."""
    out = {}
    for tag, timm_arch in SEINIT.items():
        base = randomize_(timm.create_model(timm_arch)).eval()
        directory = tmp_path_factory.mktemp(timm_arch)
        save_for_hf(base, directory, safe_serialization=True)
        out[tag] = (base, directory / "model.safetensors")
    return out


def _load_seinit(tag, path):
    return timm.create_model(tag, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))


@pytest.mark.parametrize("tag", sorted(SEINIT))
def test_seinit_computes_the_base_network(tag, base_checkpoints):
    base, path = base_checkpoints[tag]
    model = _load_seinit(tag, path).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), base(x), rtol=0, atol=1e-5)
        # exact in training mode too: BN sees the base network's batch statistics
        torch.testing.assert_close(model.train()(x), base.train()(x), rtol=0, atol=1e-5)
    for se in _se_modules(model).values():
        assert torch.all(se.excite(torch.rand(1, se.channels, 3, 3)) == 0.5)


@pytest.mark.parametrize("tag", sorted(SEINIT))
def test_seinit_se_blocks_train(tag, base_checkpoints):
    model = _load_seinit(tag, base_checkpoints[tag][1]).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if ".se." in k}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 64, 64), torch.randint(0, 1000, (4,))
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    after = model.state_dict()
    frozen = [k for k, v in before.items() if k.endswith("weight") and torch.equal(v, after[k])]
    assert frozen == []


def test_se_checkpoint_loads_unchanged(tmp_path):
    trained = randomize_(timm.create_model("se_zoo_mobilenetv2_100"))
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(trained.state_dict(), path)
    model = _load_seinit("se_zoo_mobilenetv2_100.seinit_ra_in1k", path)
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("arch", ["se_zoo_mobilenetv1_075", "se_zoo_mobilenetv2_050"])
def test_filter_warm_starts_user_state_dicts(arch):
    base = randomize_(_base(arch)).eval()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in base.state_dict().items()}}
    model = timm.create_model(arch)
    model.load_state_dict(checkpoint_filter_fn(wrapped, model))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), base(x), rtol=0, atol=1e-5)


def test_filter_names_a_missing_consumer():
    model = timm.create_model("se_zoo_mobilenetv1_050")
    state_dict = {k: v for k, v in _base("se_zoo_mobilenetv1_050").state_dict().items() if k != "classifier.weight"}
    with pytest.raises(ValueError, match="classifier.weight"):
        checkpoint_filter_fn(state_dict, model)


def test_catalogue_sources_are_timm_checkpoints():
    records = load_records("se_mobilenet")
    assert {r["tag"] for r in records} == set(timm.list_pretrained("se_zoo_mobilenet*"))
    for record in records:
        assert "seinit" in record["tag"]
        source = record["hf_hub_id"].removeprefix("timm/")
        assert source in timm.list_pretrained(source.split(".")[0] + ".*")
        assert source.split(".")[0] == TIMM_EQUIVALENTS[record["tag"].split(".")[0]]
        assert record["license"] and 0 < record["top1"] < 100
