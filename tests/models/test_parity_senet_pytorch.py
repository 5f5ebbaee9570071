"""Parity with senet.pytorch's ``SELayer`` (layout ``"senet_pytorch"``)."""
import pytest
from torch import nn

from _se_parity import SHAPE_IDS, SHAPES, check_parity


class SELayer(nn.Module):
    # senet.pytorch's published ``SELayer``: pooled features through a
    # Sequential of bias-free Linears.
    def __init__(self, channel, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_senet_pytorch_parity(shape):
    n, c, r, h, w = shape
    check_parity(lambda: SELayer(c, r), "senet_pytorch", {"fc1.weight": "fc.0.weight", "fc2.weight": "fc.2.weight"},
                 (n, c, h, w), bias=False)
