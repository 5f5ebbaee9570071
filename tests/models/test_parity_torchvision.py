"""Parity with ``torchvision.ops.SqueezeExcitation`` (layout ``"torchvision"``)."""
import pytest
from torch import nn
from torchvision.ops import SqueezeExcitation

from _se_parity import SHAPE_IDS, SHAPES, check_parity

PARAMS = {name: name for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")}

# (id, torchvision activation / scale_activation, SqueezeExcite act_layer / gate_layer):
# the paper's, EfficientNet's and MobileNetV3's
VARIANTS = [
    ("relu-sigmoid", {}, {}),
    ("silu-sigmoid", {"activation": nn.SiLU}, {"act_layer": nn.SiLU}),
    ("relu-hardsigmoid", {"scale_activation": nn.Hardsigmoid}, {"gate_layer": nn.Hardsigmoid}),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_torchvision_parity(variant, shape):
    _, tv_kwargs, se_kwargs = variant
    n, c, r, h, w = shape
    check_parity(lambda: SqueezeExcitation(c, c // r, **tv_kwargs), "torchvision", PARAMS, (n, c, h, w),
                 bias=True, **se_kwargs)
