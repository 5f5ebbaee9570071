"""Parity with the Caffe-port SE module (layout ``"caffe"``).

The original paper weights were released for Caffe and ported to PyTorch by
Cadene's pretrainedmodels, whose ``SEModule`` timm keeps in its legacy
``senet``: two biased 1×1 convolutions of width ``C // r``.
"""
import pytest
from torch import nn
from timm.models.senet import SEModule as TimmLegacySEModule

from _se_parity import SHAPE_IDS, SHAPES, check_parity


class CadeneSEModule(nn.Module):
    # pretrainedmodels' published ``SEModule``.
    def __init__(self, channels, reduction):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, padding=0)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        module_input = x
        x = self.avg_pool(x)
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        x = self.sigmoid(x)
        return module_input * x


PARAMS = {name: name for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")}


@pytest.mark.parametrize("reference", [CadeneSEModule, TimmLegacySEModule], ids=["pretrainedmodels", "timm_legacy"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_caffe_parity(reference, shape):
    n, c, r, h, w = shape
    check_parity(lambda: reference(c, r), "caffe", PARAMS, (n, c, h, w), bias=True)
