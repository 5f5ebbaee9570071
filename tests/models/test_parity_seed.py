"""Parity with the seed document's ``SE`` class (layout ``"seed"``)."""
import pytest
from torch import nn

from _se_parity import SHAPE_IDS, SHAPES, check_parity


class SE(nn.Module):
    # The seed document's class, statement for statement; its debugging
    # ``print(x.size())`` and its comments are left out.
    def __init__(self, c1, c2, r=16):
        super(SE, self).__init__()  # noqa: UP008  (the seed document's spelling)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.l1 = nn.Linear(c1, c1 // r, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.l2 = nn.Linear(c1 // r, c1, bias=False)
        self.sig = nn.Sigmoid()

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avgpool(x).view(b, c)
        y = self.l1(y)
        y = self.relu(y)
        y = self.l2(y)
        y = self.sig(y)
        y = y.view(b, c, 1, 1)
        return x * y.expand_as(x)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_seed_parity(shape):
    n, c, r, h, w = shape
    check_parity(lambda: SE(c, c, r), "seed", {"fc1.weight": "l1.weight", "fc2.weight": "l2.weight"},
                 (n, c, h, w), bias=False)
