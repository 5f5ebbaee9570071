"""Parity with timm's ``timm.layers.SEModule`` (layout ``"timm"``)."""
import pytest
from torch import nn
from timm.layers import SEModule

from _se_parity import SHAPE_IDS, SHAPES, check_parity

WEIGHTS = ["fc1.weight", "fc2.weight"]
BIASES = ["fc1.bias", "fc2.bias"]

# (id, SEModule kwargs for reduction r, SqueezeExcite kwargs beyond rd_channels)
VARIANTS = [
    ("default", lambda r: {"rd_ratio": 1.0 / r}, {}),
    ("divisor1-nobias", lambda r: {"rd_ratio": 1.0 / r, "rd_divisor": 1, "bias": False}, {"bias": False}),
    ("rd_channels5", lambda r: {"rd_channels": 5}, {}),
    ("silu-hardsigmoid", lambda r: {"rd_ratio": 1.0 / r, "act_layer": nn.SiLU, "gate_layer": "hard_sigmoid"},
     {"act_layer": nn.SiLU, "gate_layer": "hard_sigmoid"}),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_timm_parity(variant, shape):
    _, timm_kwargs, se_kwargs = variant
    n, c, r, h, w = shape
    names = WEIGHTS + (BIASES if se_kwargs.get("bias", True) else [])
    check_parity(lambda: SEModule(c, **timm_kwargs(r)), "timm", {k: k for k in names}, (n, c, h, w), **se_kwargs)
