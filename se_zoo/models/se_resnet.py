"""SE-ResNet, SE-ResNeXt and SENet-154 on timm's ResNet and SENet.

Papers:

* "Squeeze-and-Excitation Networks", Hu et al., 2018 — https://arxiv.org/abs/1709.01507
* "Deep Residual Learning for Image Recognition", He et al., 2015 — https://arxiv.org/abs/1512.03385
* "Aggregated Residual Transformations for Deep Neural Networks" (ResNeXt), Xie et al., 2016 —
  https://arxiv.org/abs/1611.05431

Two block styles:

* ``se_zoo_resnet*`` / ``se_zoo_resnext*``: timm's ``ResNet`` (stride in the 3×3
  conv, "ResNet v1.5"); parameters and state dicts equal timm's ``seresnet*`` /
  ``seresnext*``.
* ``se_zoo_legacy_*`` and ``se_zoo_senet154``: the Caffe layout of the paper's
  released weights (stride in the first 1×1 conv, SE width ``C // 16``), as ported
  by Cadene's pretrainedmodels; state dicts equal timm's ``legacy_*``.

Both use se-zoo's :class:`~se_zoo.layers.SqueezeExcite`, whose scale is fused with
the residual add and the final ReLU.
"""
from typing import Any, Dict, Optional, Union

import torch
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath
from timm.models import build_model_with_cfg, checkpoint_seq, generate_default_cfgs, register_model
from timm.models import resnet as timm_resnet
from timm.models import senet as timm_senet
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from ..architectures import architecture, by_family
from ..layers import SqueezeExcite
from ._checkpoint import unwrap_checkpoint
from ._pretrained import checked_build, family_cfgs

__all__ = [
    "SEBasicBlock", "SEBottleneck", "LegacySENet", "LegacySEBottleneck", "LegacySEResNetBottleneck",
    "LegacySEResNeXtBottleneck", "LegacySEResNetBlock", "checkpoint_filter_fn", "create_resnet",
    "create_legacy_senet", "resnet_cfg", "legacy_senet_cfg", "TIMM_EQUIVALENTS",
]


def _commutes_with_mean(conv: nn.Module, bn: nn.Module) -> bool:
    """Whether the SE squeeze of ``bn(conv(x))`` may be taken on ``x`` in inference.

    A 1x1 convolution and a BatchNorm using its running statistics are both
    per-pixel affine maps, so they commute with the mean over H×W:
    ``mean(bn(conv(x))) == bn(conv(mean(x)))`` (up to float rounding). Taking the
    mean on ``x`` reads the bottleneck's narrow feature map, a quarter of the
    block output, which is most of an SE block's remaining cost in inference.
    """
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding == (0, 0) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats)


class _SEResidual:
    """The SE steps every se-zoo residual block shares (a mixin of the block classes).

    A block has ``drop_path`` (None or timm's ``DropPath``) and, when it is a
    bottleneck, ``conv3`` / ``bn3`` and ``squeeze_after_bn`` (set by
    :meth:`_init_squeeze`).
    """

    def _init_squeeze(self) -> None:
        self.squeeze_after_bn = not (hasattr(self, "conv3") and _commutes_with_mean(self.conv3, self.bn3))

    def _squeeze_before_conv3(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The channel means of ``bn3(conv3(x))`` taken on the narrow ``x`` (see
        :func:`_commutes_with_mean`), or None where they must come from the block output."""
        if self.squeeze_after_bn or self.bn3.training:
            return None
        return self.bn3(self.conv3(x.mean((2, 3), keepdim=True))).flatten(1)

    def _drop_prob(self) -> Optional[float]:
        """The stochastic-depth rate of the block, None without ``DropPath``."""
        if self.drop_path is None:
            return None
        return self.drop_path.drop_prob


class SEBasicBlock(_SEResidual, BasicBlock):
    """timm's ``BasicBlock`` with se-zoo's SE layer fused into the residual add."""

    def __init__(self, *args, **kwargs):
        kwargs["attn_layer"] = SqueezeExcite
        super().__init__(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One statement per conv and the shortcut last, as in timm's blocks: each
        # conv's input is released as soon as the conv is done, which keeps the
        # peak memory of the block at timm's.
        shortcut = x
        x = self.conv1(x)
        x = self.aa(self.act1(self.drop_block(self.bn1(x))))
        x = self.conv2(x)
        x = self.bn2(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act2(self.se.residual(x, shortcut, None, self._drop_prob()))


class SEBottleneck(_SEResidual, Bottleneck):
    """timm's ``Bottleneck`` with se-zoo's SE layer fused into the residual add."""

    def __init__(self, *args, **kwargs):
        kwargs["attn_layer"] = SqueezeExcite
        super().__init__(*args, **kwargs)
        self._init_squeeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x  # released statement by statement, as in SEBasicBlock.forward
        x = self.conv1(x)
        x = self.act1(self.bn1(x))
        x = self.conv2(x)
        x = self.aa(self.act2(self.drop_block(self.bn2(x))))
        z = self._squeeze_before_conv3(x)
        x = self.conv3(x)
        x = self.bn3(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act3(self.se.residual(x, shortcut, z, self._drop_prob()))


class _LegacySE(_SEResidual):
    """A timm legacy SENet block (the next base class) with se-zoo's fused SE layer."""

    def __init__(self, inplanes, planes, groups, reduction, stride=1, downsample=None, device=None, dtype=None):
        super().__init__(inplanes, planes, groups, reduction, stride, downsample, device=device, dtype=dtype)
        channels = self.se_module.fc1.in_channels
        self.se_module = SqueezeExcite(channels, rd_channels=channels // reduction, device=device, dtype=dtype)
        self.drop_path = None  # set by LegacySENet when drop_path_rate > 0
        self._init_squeeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # statement by statement, shortcut last: see SEBasicBlock.forward
        out = self.conv1(x)
        out = self.relu(self.bn1(out))
        out = self.conv2(out)
        # timm's legacy blocks apply ReLU after bn2 in both block kinds
        out = self.relu(self.bn2(out))
        z: Optional[torch.Tensor] = None
        if hasattr(self, "conv3"):
            z = self._squeeze_before_conv3(out)
            out = self.conv3(out)
            out = self.bn3(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.se_module.residual(out, shortcut, z, self._drop_prob()))


class LegacySEBottleneck(_LegacySE, timm_senet.SEBottleneck):
    """timm's legacy ``SEBottleneck`` (SENet-154) with se-zoo's fused SE layer."""


class LegacySEResNetBottleneck(_LegacySE, timm_senet.SEResNetBottleneck):
    """timm's legacy ``SEResNetBottleneck`` with se-zoo's fused SE layer."""


class LegacySEResNeXtBottleneck(_LegacySE, timm_senet.SEResNeXtBottleneck):
    """timm's legacy ``SEResNeXtBottleneck`` with se-zoo's fused SE layer."""


class LegacySEResNetBlock(_LegacySE, timm_senet.SEResNetBlock):
    """timm's legacy ``SEResNetBlock`` (SE-ResNet-18/34) with se-zoo's fused SE layer."""


class LegacySENet(timm_senet.SENet):
    """timm's legacy ``SENet`` with stochastic depth and gradient checkpointing.

    timm's class accepts neither; parameters and state dict are unchanged.

    Args:
        *args: Positional arguments of timm's ``SENet``.
        drop_path_rate: Stochastic depth rate of the last block; it rises
            linearly from 0 over the blocks, as in timm's ``ResNet``.
        **kwargs: Keyword arguments of timm's ``SENet``.
    """

    def __init__(self, *args, drop_path_rate: float = 0., **kwargs):
        super().__init__(*args, **kwargs)
        blocks = [block for name in ("layer1", "layer2", "layer3", "layer4") for block in getattr(self, name)]
        for idx, block in enumerate(blocks):
            rate = drop_path_rate * idx / max(len(blocks) - 1, 1)
            block.drop_path = DropPath(rate) if rate > 0. else None
        self.grad_checkpointing = False

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them.

        Args:
            enable: Whether to checkpoint.
        """
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool0(self.layer0(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq([self.layer1, self.layer2, self.layer3, self.layer4], x, flatten=True)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


# se-zoo architecture -> the timm architecture whose checkpoints it loads with strict=True.
TIMM_EQUIVALENTS: Dict[str, str] = {a.name: a.timm_twin for a in by_family("resnet", "senet")}

# Older timm releases named the SE convs of some models conv_reduce / conv_expand.
_RENAMES = ((".se.conv_reduce.", ".se.fc1."), (".se.conv_expand.", ".se.fc2."),
            (".se_module.conv_reduce.", ".se_module.fc1."), (".se_module.conv_expand.", ".se_module.fc2."))


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: nn.Module) -> Dict[str, torch.Tensor]:
    """Map a published SE-ResNet checkpoint into se-zoo's layout.

    Accepts timm checkpoints (``seresnet*``, ``legacy_*``: the same keys as se-zoo),
    training checkpoints wrapping the weights in ``state_dict`` / ``model``, and
    ``module.``-prefixed DistributedDataParallel state dicts.

    Args:
        state_dict: The checkpoint as loaded.
        model: The se-zoo model being loaded (unused; timm's filter signature).

    Returns:
        A state dict with se-zoo's keys.
    """
    out = {}
    for key, value in unwrap_checkpoint(state_dict).items():
        for old, new in _RENAMES:
            key = key.replace(old, new)
        out[key] = value
    return out


def resnet_cfg(**kwargs) -> Dict[str, Any]:
    """Pretrained cfg of an se-zoo ResNet: the fields ``weights/`` records override.

    Args:
        **kwargs: Fields that differ from the defaults.

    Returns:
        The cfg dict.
    """
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "conv1", "classifier": "fc", "license": "apache-2.0",
        **kwargs,
    }


def legacy_senet_cfg(**kwargs) -> Dict[str, Any]:
    """Pretrained cfg of an se-zoo Caffe-layout SENet (see :func:`resnet_cfg`)."""
    return resnet_cfg(**{"first_conv": "layer0.conv1", "classifier": "last_linear", **kwargs})


# One cfg per weights/se_resnet.json record; the timm twin's cfg (`untrained`) for architectures without one.
default_cfgs = generate_default_cfgs(family_cfgs("se_resnet", {"resnet": resnet_cfg, "senet": legacy_senet_cfg}))


_RESNET_BLOCKS = {"basic": SEBasicBlock, "bottleneck": SEBottleneck}
_LEGACY_BLOCKS = {
    "resnet_block": LegacySEResNetBlock, "resnet_bottleneck": LegacySEResNetBottleneck,
    "resnext_bottleneck": LegacySEResNeXtBottleneck, "senet_bottleneck": LegacySEBottleneck,
}


def _block(blocks: Dict[str, type], block: Union[str, type]) -> type:
    if isinstance(block, str):
        if block not in blocks:
            raise ValueError(f"block must be one of {sorted(blocks)} or a block class, got {block!r}")
        return blocks[block]
    return block


@checked_build
def create_resnet(variant: str, pretrained: bool = False, *, block: Union[str, type], **kwargs) -> ResNet:
    """Build an SE-ResNet with timm's ResNet creator, after the catalogue's sha256 pin check.

    Args:
        variant: The architecture name.
        pretrained: Load the pretrained weights of its (default or given) tag.
        block: ``"basic"``, ``"bottleneck"`` or a block class.
        **kwargs: timm's ``ResNet`` / ``build_model_with_cfg`` arguments.

    Returns:
        The model.

    Raises:
        IntegrityError: if pinned weights do not match their pin.
        HubUnreachableError: if the weights can be neither downloaded nor found in the cache.
    """
    return timm_resnet._create_resnet(
        variant, pretrained, block=_block(_RESNET_BLOCKS, block), pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


@checked_build
def create_legacy_senet(variant: str, pretrained: bool = False, *, block: Union[str, type], **kwargs) -> LegacySENet:
    """Build a Caffe-layout SENet with timm's builder, after the catalogue's sha256 pin check.

    timm's ``_create_senet`` builds its own ``SENet`` class; se-zoo's
    :class:`LegacySENet` adds stochastic depth and gradient checkpointing.

    Args:
        variant: The architecture name.
        pretrained: Load the pretrained weights of its (default or given) tag.
        block: A key of the legacy blocks (``"resnet_bottleneck"``, ...) or a block class.
        **kwargs: :class:`LegacySENet` / ``build_model_with_cfg`` arguments.

    Returns:
        The model.

    Raises:
        IntegrityError: if pinned weights do not match their pin.
        HubUnreachableError: if the weights can be neither downloaded nor found in the cache.
    """
    return build_model_with_cfg(
        LegacySENet, variant, pretrained, block=_block(_LEGACY_BLOCKS, block),
        pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


@register_model
def se_zoo_resnet18(pretrained: bool = False, **kwargs) -> ResNet:
    """SE-ResNet-18 (timm ``seresnet18`` layout)."""
    model_args = architecture("se_zoo_resnet18").args
    return create_resnet("se_zoo_resnet18", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_resnet34(pretrained: bool = False, **kwargs) -> ResNet:
    """SE-ResNet-34 (timm ``seresnet34`` layout)."""
    model_args = architecture("se_zoo_resnet34").args
    return create_resnet("se_zoo_resnet34", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_resnet50(pretrained: bool = False, **kwargs) -> ResNet:
    """SE-ResNet-50 (timm ``seresnet50`` layout)."""
    model_args = architecture("se_zoo_resnet50").args
    return create_resnet("se_zoo_resnet50", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_resnet101(pretrained: bool = False, **kwargs) -> ResNet:
    """SE-ResNet-101 (timm ``seresnet101`` layout)."""
    model_args = architecture("se_zoo_resnet101").args
    return create_resnet("se_zoo_resnet101", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_resnet152(pretrained: bool = False, **kwargs) -> ResNet:
    """SE-ResNet-152 (timm ``seresnet152`` layout)."""
    model_args = architecture("se_zoo_resnet152").args
    return create_resnet("se_zoo_resnet152", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_resnext50_32x4d(pretrained: bool = False, **kwargs) -> ResNet:
    """SE-ResNeXt-50 32x4d (timm ``seresnext50_32x4d`` layout)."""
    model_args = architecture("se_zoo_resnext50_32x4d").args
    return create_resnet("se_zoo_resnext50_32x4d", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_resnext101_32x4d(pretrained: bool = False, **kwargs) -> ResNet:
    """SE-ResNeXt-101 32x4d (timm ``seresnext101_32x4d`` layout)."""
    model_args = architecture("se_zoo_resnext101_32x4d").args
    return create_resnet("se_zoo_resnext101_32x4d", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnet18(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNet-18, Caffe layout (timm ``legacy_seresnet18``)."""
    model_args = architecture("se_zoo_legacy_seresnet18").args
    return create_legacy_senet("se_zoo_legacy_seresnet18", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnet34(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNet-34, Caffe layout (timm ``legacy_seresnet34``)."""
    model_args = architecture("se_zoo_legacy_seresnet34").args
    return create_legacy_senet("se_zoo_legacy_seresnet34", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnet50(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNet-50, Caffe layout of the paper's weights (timm ``legacy_seresnet50``)."""
    model_args = architecture("se_zoo_legacy_seresnet50").args
    return create_legacy_senet("se_zoo_legacy_seresnet50", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnet101(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNet-101, Caffe layout of the paper's weights (timm ``legacy_seresnet101``)."""
    model_args = architecture("se_zoo_legacy_seresnet101").args
    return create_legacy_senet("se_zoo_legacy_seresnet101", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnet152(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNet-152, Caffe layout of the paper's weights (timm ``legacy_seresnet152``)."""
    model_args = architecture("se_zoo_legacy_seresnet152").args
    return create_legacy_senet("se_zoo_legacy_seresnet152", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnext26_32x4d(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNeXt-26 32x4d, Caffe layout (timm ``legacy_seresnext26_32x4d``)."""
    model_args = architecture("se_zoo_legacy_seresnext26_32x4d").args
    return create_legacy_senet("se_zoo_legacy_seresnext26_32x4d", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnext50_32x4d(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNeXt-50 32x4d, Caffe layout of the paper's weights (timm ``legacy_seresnext50_32x4d``)."""
    model_args = architecture("se_zoo_legacy_seresnext50_32x4d").args
    return create_legacy_senet("se_zoo_legacy_seresnext50_32x4d", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_legacy_seresnext101_32x4d(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SE-ResNeXt-101 32x4d, Caffe layout of the paper's weights (timm ``legacy_seresnext101_32x4d``)."""
    model_args = architecture("se_zoo_legacy_seresnext101_32x4d").args
    return create_legacy_senet("se_zoo_legacy_seresnext101_32x4d", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_senet154(pretrained: bool = False, **kwargs) -> LegacySENet:
    """SENet-154, the paper's ILSVRC 2017 winning model (timm ``legacy_senet154``)."""
    model_args = architecture("se_zoo_senet154").args
    return create_legacy_senet("se_zoo_senet154", pretrained, **dict(model_args, **kwargs))
