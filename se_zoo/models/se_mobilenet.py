"""SE-MobileNet V1 and V2 on timm's EfficientNet builder.

Papers:

* "Squeeze-and-Excitation Networks", Hu et al., 2018 — https://arxiv.org/abs/1709.01507
* "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
  Howard et al., 2017 — https://arxiv.org/abs/1704.04861
* "MobileNetV2: Inverted Residuals and Linear Bottlenecks", Sandler et al., 2018 —
  https://arxiv.org/abs/1801.04381

Both families are timm's ``EfficientNet`` (or ``EfficientNetFeatures``) built from
timm's MobileNet block definitions, with se-zoo's
:class:`~se_zoo.layers.SqueezeExcite` in every block. Without the SE blocks,
modules and state-dict keys equal timm's ``mobilenetv1_*`` / ``mobilenetv2_*``.
Every SE block follows eq. 3 of the paper: FC to ``C / 16`` (rounded to the
nearest integer), ReLU, FC back to ``C``, sigmoid — ReLU rather than the blocks'
ReLU6, as timm's MobileNet-V3 also keeps a plain ReLU in its SE blocks.

**MobileNet-V1: SE on the block output.** The paper applies SE to the output of
a transformation ``F_tr`` and, for a module without identity branch (its
SE-Inception), to the whole module's output; a depthwise-separable block is
such a module, so the SE block sits after the pointwise conv, its BN and
ReLU6, with ``C`` the block's output width. This reproduces the paper's
Table 3 (4.7M params, 572 MFLOPs, counted as multiply-adds): 4.72M params and
569.2M conv/FC MACs + 2.7M SE scale multiplies = 571.9M. Placing the SE block
between the depthwise and pointwise convs (timm's slot) would give 4.59M.

**MobileNet-V2: SE after the depthwise conv** (and its BN and ReLU6) of every
inverted residual, before the linear projection — timm's slot. ``C`` is the
expanded width the SE block recalibrates, since eq. 3 defines ``r`` on the
channels the block sees. (timm's EfficientNet convention instead takes the
ratio of the block *input* width; with r = 16 on the input that is a ``C / 96``
bottleneck in the 6x-expanded blocks, too narrow to model channel
dependencies.)

=========================  ==========  =====  ========  ====================
Architecture               Params (M)  MMACs  SE scale  Base params / MMACs
=========================  ==========  =====  ========  ====================
se_zoo_mobilenetv1_050     1.455       149.6  1.35M     1.332 / 149.5
se_zoo_mobilenetv1_075     2.860       325.7  2.03M     2.586 / 325.4
se_zoo_mobilenetv1_100     4.718       569.2  2.71M     4.232 / 568.7
se_zoo_mobilenetv2_050     2.115       97.3   1.24M     1.969 / 97.1
se_zoo_mobilenetv2_075     2.962       209.4  1.94M     2.636 / 209.1
se_zoo_mobilenetv2_100     4.076       301.3  2.30M     3.505 / 300.8
se_zoo_mobilenetv2_140     7.229       583.3  3.29M     6.109 / 582.2
=========================  ==========  =====  ========  ====================

224x224 input, 1000 classes. MMACs: convolutions and FC layers
(``FlopCounterMode`` FLOPs / 2); "SE scale": the channel-wise multiplies of
the SE blocks, not included. "Base": timm's non-SE network of the same width
(``TIMM_EQUIVALENTS``). timm has no MobileNet-V1 at widths 0.75 and 0.5: those
are timm's V1 definition with the width multiplier applied.

**Exact warm start from non-SE checkpoints.** Tags named ``seinit_*`` load
timm's public MobileNet checkpoints, and :func:`checkpoint_filter_fn` does the
same for any non-SE MobileNet-V1/V2 state dict. Each SE block gets ``fc2``
weight and bias zero, so its gate is exactly ``sigmoid(0) = 0.5`` for every
input, and the weight of the linear op that consumes the SE output is doubled:
timm's ``conv_pwl`` (V2) / ``conv_pw`` (V2's first block), and for V1 the next
block's depthwise conv, or the classifier after the last block (global pooling
is positively homogeneous). Each product ``(2w)(0.5x)`` equals ``wx``
bit-for-bit (powers of two scale exactly in floating point), so the consumer
— and the BN after it, in eval *and* in training mode — sees exactly what it
saw in the base network: the model computes the base network's function.
``fc1`` keeps its fresh initialisation; ``fc2`` receives gradient from the
first step (``sigmoid'(0) = 1/4``), ``fc1`` from the second, so the SE blocks
train from the start. In V1, block outputs (hence ``forward_features`` and
``features_only`` maps) are the base network's halved until training moves the
gates; the logits are exact.

Warm-start your own non-SE checkpoint::

    model = timm.create_model("se_zoo_mobilenetv2_100", pretrained=True,
                              pretrained_cfg_overlay=dict(file="mobilenetv2.safetensors"))
    # or
    model = timm.create_model("se_zoo_mobilenetv2_100")
    model.load_state_dict(checkpoint_filter_fn(state_dict, model))
"""
from functools import partial
from typing import Any, Dict, Optional

import torch
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import LayerType
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._builder import pretrained_cfg_for_features
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual
from timm.models._efficientnet_builder import (
    decode_arch_def, efficientnet_init_weights, resolve_act_layer, resolve_bn_args, round_channels)
from timm.models.efficientnet import EfficientNet, EfficientNetFeatures, _create_effnet

from ..architectures import architecture, by_family
from ..layers import SqueezeExcite
from ._checkpoint import unwrap_checkpoint
from ._pretrained import checked_build, family_cfgs

__all__ = [
    "SEDepthwiseSeparableConv", "SEMobileNetV1", "SEMobileNetV1Features", "mobilenet_se_layer",
    "checkpoint_filter_fn", "create_mobilenet_v1", "create_mobilenet_v2", "mobilenet_cfg", "TIMM_EQUIVALENTS",
]

REDUCTION = 16


def mobilenet_se_layer(
        channels: int,
        rd_ratio: float = 1 / REDUCTION,
        act_layer: Optional[LayerType] = None,
        device=None,
        dtype=None,
) -> SqueezeExcite:
    """se-zoo's SE layer, called the way timm's MobileNet blocks call their ``se_layer``.

    Args:
        channels: Channels the SE block recalibrates.
        rd_ratio: Bottleneck width as a fraction of ``channels`` (> 0); the
            bottleneck is ``round(channels * rd_ratio)``, at least 1.
        act_layer: The block's activation, which timm's blocks pass; unused,
            the bottleneck keeps the paper's ReLU.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Returns:
        A :class:`~se_zoo.layers.SqueezeExcite` with ReLU and sigmoid.

    Raises:
        ValueError: if ``channels`` or ``rd_ratio`` is out of range.
    """
    if isinstance(rd_ratio, bool) or not isinstance(rd_ratio, (int, float)) or not rd_ratio > 0:
        raise ValueError(f"rd_ratio must be a number > 0, got {rd_ratio!r}")
    return SqueezeExcite(channels, reduction=1 / rd_ratio, rd_divisor=1, device=device, dtype=dtype)


class SEDepthwiseSeparableConv(DepthwiseSeparableConv):
    """timm's ``DepthwiseSeparableConv`` with the SE block on its output.

    timm's block applies ``se`` between the depthwise and pointwise convs; this
    one after the pointwise conv, its BN and activation (MobileNet-V1 placement).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.conv_s2d is not None:
            x = self.bn_s2d(self.conv_s2d(x))
        x = self.aa(self.bn1(self.conv_dw(x)))
        x = self.se(self.bn2(self.conv_pw(x)))
        if self.has_skip:
            x = self.drop_path(x) + shortcut
        return x


def _se_on_block_outputs(blocks: nn.Module) -> None:
    # timm's builder instantiates its own block classes, so each built block is
    # given its SE layer and the forward that applies it on the block output.
    for stage in blocks:
        for block in stage:
            del block.se  # re-registered last, where forward applies it
            block.se = mobilenet_se_layer(
                block.conv_pw.out_channels, device=block.conv_pw.weight.device, dtype=block.conv_pw.weight.dtype)
            efficientnet_init_weights(block.se)
            block.__class__ = SEDepthwiseSeparableConv


class SEMobileNetV1(EfficientNet):
    """timm's ``EfficientNet`` with MobileNet-V1 blocks carrying an SE block on their output."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        _se_on_block_outputs(self.blocks)


class SEMobileNetV1Features(EfficientNetFeatures):
    """Feature extractor of :class:`SEMobileNetV1` (``features_only=True``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        _se_on_block_outputs(self.blocks)


# se-zoo architecture -> the timm architecture whose non-SE checkpoints its `seinit` tags load.
TIMM_EQUIVALENTS: Dict[str, str] = {a.name: a.timm_twin for a in by_family("mobilenetv1", "mobilenetv2")}


def _head_weight(model: nn.Module) -> Optional[str]:
    """Key of the first linear op after the last block, or None for a feature extractor."""
    if isinstance(getattr(model, "conv_head", None), nn.Conv2d):
        return "conv_head.weight"
    if isinstance(getattr(model, "classifier", None), nn.Linear):
        return "classifier.weight"
    return None


def _se_consumers(model: nn.Module) -> Dict[str, Optional[str]]:
    """Each SE block of ``model`` -> state-dict key of the weight its output feeds linearly."""
    blocks = [(f"blocks.{i}.{j}", block) for i, stage in enumerate(model.blocks) for j, block in enumerate(stage)]
    consumers = {}
    for k, (name, block) in enumerate(blocks):
        if isinstance(block, SEDepthwiseSeparableConv):  # SE output feeds the next block or the head
            last = k + 1 == len(blocks)
            consumers[f"{name}.se"] = _head_weight(model) if last else f"{blocks[k + 1][0]}.conv_dw.weight"
        elif isinstance(block, InvertedResidual) and isinstance(block.se, SqueezeExcite):
            consumers[f"{name}.se"] = f"{name}.conv_pwl.weight"
        elif isinstance(block, DepthwiseSeparableConv) and isinstance(block.se, SqueezeExcite):
            consumers[f"{name}.se"] = f"{name}.conv_pw.weight"
    return consumers


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: nn.Module) -> Dict[str, torch.Tensor]:
    """Map a MobileNet checkpoint into an SE-MobileNet, warm-starting from non-SE weights.

    A checkpoint with SE weights (any ``.se.`` key) is returned unchanged. One
    without — any timm ``mobilenetv1_*`` / ``mobilenetv2_*`` state dict of the
    model's width — gets the exact warm start of the module docstring: SE
    ``fc2`` zero (gate 0.5), ``fc1`` from ``model``, and the weight consuming
    each SE output doubled, so the SE model computes the checkpoint's function.
    Training-checkpoint wrappers (``state_dict`` / ``model``) and ``module.``
    prefixes are removed first.

    Args:
        state_dict: The checkpoint as loaded.
        model: The se-zoo SE-MobileNet being loaded (supplies the SE layout and
            the fresh ``fc1`` weights).

    Returns:
        A state dict for ``model.load_state_dict``.

    Raises:
        ValueError: if a non-SE checkpoint lacks a weight that must be doubled.
    """
    state_dict = unwrap_checkpoint(state_dict)
    if any(".se." in key for key in state_dict):
        return state_dict
    for name, consumer in _se_consumers(model).items():
        se = model.get_submodule(name)
        state_dict[f"{name}.fc1.weight"] = se.fc1.weight.detach().clone()
        state_dict[f"{name}.fc1.bias"] = se.fc1.bias.detach().clone()
        state_dict[f"{name}.fc2.weight"] = torch.zeros_like(se.fc2.weight)
        state_dict[f"{name}.fc2.bias"] = torch.zeros_like(se.fc2.bias)
        if consumer is None:
            continue
        if consumer not in state_dict:
            raise ValueError(
                f"state_dict must contain {consumer!r} to warm-start {name} (it consumes the SE output), "
                f"got a non-SE checkpoint without it")
        state_dict[consumer] = state_dict[consumer] * 2
    return state_dict


def mobilenet_cfg(**kwargs) -> Dict[str, Any]:
    """Pretrained cfg of an se-zoo MobileNet: the fields ``weights/`` records override.

    Args:
        **kwargs: Fields that differ from the defaults.

    Returns:
        The cfg dict.
    """
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "conv_stem", "classifier": "classifier", "license": "apache-2.0",
        **kwargs,
    }


# One cfg per weights/se_mobilenet.json record; the timm twin's cfg (`untrained`) for architectures without one.
default_cfgs = generate_default_cfgs(
    family_cfgs("se_mobilenet", {"mobilenetv1": mobilenet_cfg, "mobilenetv2": mobilenet_cfg}))


def _model_kwargs(arch_def, channel_multiplier: float, head_features: int, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """timm's MobileNet generator arguments (``_gen_mobilenet_v1`` / ``_v2``); ``head_features=0``: no head conv."""
    round_chs_fn = partial(round_channels, multiplier=channel_multiplier)
    return dict(
        block_args=decode_arch_def(arch_def),
        num_features=max(head_features, round_chs_fn(head_features)) if head_features else 0,
        stem_size=32,
        round_chs_fn=round_chs_fn,
        norm_layer=kwargs.pop("norm_layer", None) or partial(nn.BatchNorm2d, **resolve_bn_args(kwargs)),
        act_layer=resolve_act_layer(kwargs, "relu6"),
        pretrained_filter_fn=checkpoint_filter_fn,
        **kwargs,
    )


# timm's mobilenetv1 blocks (no head conv); the SE layers are added on the block outputs.
_V1_ARCH = [["dsa_r1_k3_s1_c64"], ["dsa_r2_k3_s2_c128"], ["dsa_r2_k3_s2_c256"], ["dsa_r6_k3_s2_c512"],
            ["dsa_r2_k3_s2_c1024"]]
# timm's mobilenetv2 blocks with SE. timm's `se` option is a fraction of the block
# *input* width; 6 / 16 on the 6x-expanded blocks is 1 / 16 of the expanded width the SE block sees.
_V2_ARCH = [["ds_r1_k3_s1_c16_se0.0625"], ["ir_r2_k3_s2_e6_c24_se0.375"], ["ir_r3_k3_s2_e6_c32_se0.375"],
            ["ir_r4_k3_s2_e6_c64_se0.375"], ["ir_r3_k3_s1_e6_c96_se0.375"], ["ir_r3_k3_s2_e6_c160_se0.375"],
            ["ir_r1_k3_s1_e6_c320_se0.375"]]


@checked_build
def create_mobilenet_v1(variant: str, pretrained: bool = False, *, channel_multiplier: float = 1.0, **kwargs):
    """Build an SE-MobileNet-V1 (SE on every block output), after the catalogue's sha256 pin check.

    timm's ``_create_effnet`` builds its own ``EfficientNet`` classes, so this
    calls timm's ``build_model_with_cfg`` with :class:`SEMobileNetV1` /
    :class:`SEMobileNetV1Features`, the feature classes chosen as timm does.

    Args:
        variant: The architecture name.
        pretrained: Load the pretrained weights of its (default or given) tag.
        channel_multiplier: Width multiplier.
        **kwargs: timm's ``EfficientNet`` / ``build_model_with_cfg`` arguments.

    Returns:
        The model.

    Raises:
        IntegrityError: if pinned weights do not match their pin.
        HubUnreachableError: if the weights can be neither downloaded nor found in the cache.
    """
    kwargs = _model_kwargs(_V1_ARCH, channel_multiplier, 0, kwargs)
    model_cls, features_cls_mode = SEMobileNetV1, False
    if kwargs.pop("features_only", False):
        if "feature_cfg" in kwargs or "feature_cls" in kwargs:
            kwargs["features_only"] = True
        else:
            model_cls, features_cls_mode = SEMobileNetV1Features, True
            kwargs.update(
                kwargs_filter=("num_classes", "num_features", "head_conv", "global_pool"), pretrained_strict=False)
    model = build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
    if features_cls_mode:
        model.pretrained_cfg = model.default_cfg = pretrained_cfg_for_features(model.pretrained_cfg)
    return model


@checked_build
def create_mobilenet_v2(variant: str, pretrained: bool = False, *, channel_multiplier: float = 1.0, **kwargs):
    """Build an SE-MobileNet-V2 with timm's ``_create_effnet``, after the catalogue's sha256 pin check.

    Args:
        variant: The architecture name.
        pretrained: Load the pretrained weights of its (default or given) tag.
        channel_multiplier: Width multiplier.
        **kwargs: timm's ``EfficientNet`` / ``build_model_with_cfg`` arguments.

    Returns:
        The model.

    Raises:
        IntegrityError: if pinned weights do not match their pin.
        HubUnreachableError: if the weights can be neither downloaded nor found in the cache.
    """
    model_kwargs = _model_kwargs(_V2_ARCH, channel_multiplier, 1280, kwargs)
    return _create_effnet(variant, pretrained, se_layer=mobilenet_se_layer, **model_kwargs)


@register_model
def se_zoo_mobilenetv1_050(pretrained: bool = False, **kwargs) -> SEMobileNetV1:
    """SE-MobileNet-V1, width 0.5."""
    model_args = architecture("se_zoo_mobilenetv1_050").args
    return create_mobilenet_v1("se_zoo_mobilenetv1_050", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_mobilenetv1_075(pretrained: bool = False, **kwargs) -> SEMobileNetV1:
    """SE-MobileNet-V1, width 0.75."""
    model_args = architecture("se_zoo_mobilenetv1_075").args
    return create_mobilenet_v1("se_zoo_mobilenetv1_075", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_mobilenetv1_100(pretrained: bool = False, **kwargs) -> SEMobileNetV1:
    """SE-MobileNet-V1, width 1 (timm ``mobilenetv1_100`` + SE)."""
    model_args = architecture("se_zoo_mobilenetv1_100").args
    return create_mobilenet_v1("se_zoo_mobilenetv1_100", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_mobilenetv2_050(pretrained: bool = False, **kwargs) -> EfficientNet:
    """SE-MobileNet-V2, width 0.5 (timm ``mobilenetv2_050`` + SE)."""
    model_args = architecture("se_zoo_mobilenetv2_050").args
    return create_mobilenet_v2("se_zoo_mobilenetv2_050", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_mobilenetv2_075(pretrained: bool = False, **kwargs) -> EfficientNet:
    """SE-MobileNet-V2, width 0.75 (timm ``mobilenetv2_075`` + SE)."""
    model_args = architecture("se_zoo_mobilenetv2_075").args
    return create_mobilenet_v2("se_zoo_mobilenetv2_075", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_mobilenetv2_100(pretrained: bool = False, **kwargs) -> EfficientNet:
    """SE-MobileNet-V2, width 1 (timm ``mobilenetv2_100`` + SE)."""
    model_args = architecture("se_zoo_mobilenetv2_100").args
    return create_mobilenet_v2("se_zoo_mobilenetv2_100", pretrained, **dict(model_args, **kwargs))


@register_model
def se_zoo_mobilenetv2_140(pretrained: bool = False, **kwargs) -> EfficientNet:
    """SE-MobileNet-V2, width 1.4 (timm ``mobilenetv2_140`` + SE)."""
    model_args = architecture("se_zoo_mobilenetv2_140").args
    return create_mobilenet_v2("se_zoo_mobilenetv2_140", pretrained, **dict(model_args, **kwargs))
