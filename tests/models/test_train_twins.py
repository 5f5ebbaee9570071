"""In training, every se-zoo architecture computes the gradients its timm twin computes from the same weights.

The ResNet and legacy SENet families load their twin's state dict as it is. The MobileNets' timm twin has
no SE blocks, so the reference is timm's own MobileNet generator at the same width, and the se-zoo model's
SE gates are held open (``fc2`` weight 0, bias 40: ``sigmoid(40)`` is 1.0 in float64), which makes it that
network exactly; every twin parameter's gradient is compared.

Precision: in float32 the two implementations differ in the order of equivalent operations (the fused
SE epilogue ``x * s + shortcut``, the squeeze as a mean), and train-mode BatchNorm on a small batch
amplifies those rounding differences: with random weights, batch 4 at 64 px, the largest difference
relative to a gradient tensor's own largest entry reached 0.018 for se_zoo_resnext50_32x4d and 0.076 for
se_zoo_resnet50 (which one is worse depends on the weights). In float64 the same comparison is at
most 3e-13 for both, so the difference is rounding, not a different computation. The test therefore
runs in float64 and bounds each tensor's difference relative to that tensor's norm by 1e-9: about
1e4 times the largest measured float64 difference, while a real difference is large (dropout masks
drawn differently alone gave 1.6 for se_zoo_legacy_seresnet18). See docs/parity.md.
"""
import pytest
import timm
import torch
from timm.models.efficientnet import _gen_mobilenet_v1, _gen_mobilenet_v2

import se_zoo
from helpers.weights import randomize_

TOLERANCE = 1e-9  # float64; see the module docstring
# the default run; float64 depthwise convolutions are slow on CPU, so the MobileNets are in -m slow
DEFAULT = ("se_zoo_resnet18", "se_zoo_legacy_seresnet18")
ARCHS = [pytest.param(a, marks=[] if a in DEFAULT else [pytest.mark.slow]) for a in sorted(se_zoo.TIMM_EQUIVALENTS)]


def _reference(arch: str) -> torch.nn.Module:
    """The timm model whose weights and gradients ``arch`` must reproduce."""
    twin = se_zoo.TIMM_EQUIVALENTS[arch]
    if "mobilenet" not in arch:
        return timm.create_model(twin, num_classes=10)
    generate = _gen_mobilenet_v1 if "mobilenetv1" in arch else _gen_mobilenet_v2
    return generate(twin, int(arch[-3:]) / 100, num_classes=10)


def _gradients(model: torch.nn.Module, x: torch.Tensor) -> dict:
    model = model.double().train()
    torch.manual_seed(0)  # the same dropout masks (the legacy SENets drop before the classifier)
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(x.shape[0]) % 10)
    loss.backward()
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("arch", ARCHS)
def test_training_gradients_match_the_timm_twin(arch):
    reference = randomize_(_reference(arch))
    model = timm.create_model(arch, num_classes=10)
    missing, unexpected = model.load_state_dict(reference.state_dict(), strict=False)
    assert not unexpected and all(".se." in name for name in missing), (missing, unexpected)
    if missing:  # hold the SE gates open: the model is then its plain twin
        with torch.no_grad():
            for name, module in model.named_modules():
                if name.endswith(".se"):
                    module.fc2.weight.zero_()
                    module.fc2.bias.fill_(40.0)
    size = 32 if arch in DEFAULT else 64
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    expected, got = _gradients(reference, x), _gradients(model, x)
    assert expected.keys() <= got.keys()
    worst = max(((got[k] - g).norm() / g.norm().clamp_min(1e-300)).item() for k, g in expected.items())
    assert worst <= TOLERANCE, f"{arch}: largest gradient difference relative to its tensor's norm {worst:.3g}"
