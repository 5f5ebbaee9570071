"""State-dict layout conversions for a single SE layer (pure functions).

se-zoo's :class:`~se_zoo.layers.SqueezeExcite` stores its two FCs as 1×1
convolutions ``fc1`` / ``fc2`` (weights ``(C/r, C, 1, 1)`` and ``(C, C/r, 1, 1)``,
optional biases). The layouts other implementations use:

============== ======================================= ==========================
layout         keys                                    weights
============== ======================================= ==========================
``seed``       ``l1.weight``, ``l2.weight``            ``nn.Linear``, no bias
``timm``       ``fc1.{weight,bias}``, ``fc2.*``        1×1 conv (``SEModule``)
``torchvision``  ``fc1.{weight,bias}``, ``fc2.*``      1×1 conv (``ops.SqueezeExcitation``)
``caffe``      ``fc1.{weight,bias}``, ``fc2.*``        1×1 conv with bias, the Caffe
                                                       ``*_1x1_down`` / ``*_1x1_up`` blobs as
                                                       renamed by Cadene's pretrainedmodels
                                                       and timm's ``legacy_senet``
``senet_pytorch`` ``fc.0.weight``, ``fc.2.weight``     ``nn.Linear``, no bias
============== ======================================= ==========================

Keys are those of the SE module itself; pass ``prefix=`` to convert a module
nested in a larger state dict (other keys pass through unchanged).
"""
from typing import Dict, Mapping, Tuple

import torch

__all__ = ["LAYOUTS", "LayoutError", "from_layout", "to_layout"]


class LayoutError(ValueError):
    """A state dict cannot be represented in, or read from, the requested layout."""


# layout -> ((fc1 weight key, fc1 bias key or None), (fc2 ...), weights are Linear (2-D))
_SPECS: Dict[str, Tuple[Tuple[str, str], Tuple[str, str], bool]] = {
    "seed": (("l1.weight", ""), ("l2.weight", ""), True),
    "timm": (("fc1.weight", "fc1.bias"), ("fc2.weight", "fc2.bias"), False),
    "torchvision": (("fc1.weight", "fc1.bias"), ("fc2.weight", "fc2.bias"), False),
    "caffe": (("fc1.weight", "fc1.bias"), ("fc2.weight", "fc2.bias"), False),
    "senet_pytorch": (("fc.0.weight", ""), ("fc.2.weight", ""), True),
}
LAYOUTS = tuple(_SPECS)
_NATIVE = (("fc1.weight", "fc1.bias"), ("fc2.weight", "fc2.bias"))


def _spec(layout: str):
    if layout not in _SPECS:
        raise LayoutError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    return _SPECS[layout]


def _take(state_dict: Mapping[str, torch.Tensor], key: str, layout: str) -> torch.Tensor:
    if key not in state_dict:
        raise LayoutError(f"state_dict has no key {key!r} required by layout {layout!r}; "
                          f"keys present: {sorted(state_dict)}")
    return state_dict[key]


def _expect_dim(tensor: torch.Tensor, dim: int, key: str, layout: str) -> None:
    if tensor.dim() != dim:
        raise LayoutError(f"{key!r} in layout {layout!r} must be {dim}-D, got shape {list(tensor.shape)}")


def from_layout(state_dict: Mapping[str, torch.Tensor], layout: str, prefix: str = "") -> Dict[str, torch.Tensor]:
    """Map an SE layer's weights from ``layout`` into se-zoo's layout.

    Args:
        state_dict: A state dict holding the SE module's tensors under ``prefix``.
        layout: One of :data:`LAYOUTS`.
        prefix: Key prefix of the SE module (e.g. ``"layer1.0.se."``).

    Returns:
        A new state dict with the SE tensors renamed/reshaped for
        :class:`~se_zoo.layers.SqueezeExcite`; other keys are copied as they are.

    Raises:
        LayoutError: for an unknown layout, a missing key or a wrongly shaped tensor.

    Example:
        >>> sd = from_layout(seed_module.state_dict(), "seed")
        >>> SqueezeExcite(64, rd_channels=4, bias=False).load_state_dict(sd)
    """
    spec = _spec(layout)
    is_linear = spec[2]
    out = dict(state_dict)
    for (w_key, b_key), (native_w, native_b) in zip(spec[:2], _NATIVE):
        weight = _take(state_dict, prefix + w_key, layout)
        _expect_dim(weight, 2 if is_linear else 4, prefix + w_key, layout)
        del out[prefix + w_key]
        out[prefix + native_w] = weight[:, :, None, None] if is_linear else weight
        if b_key and prefix + b_key in state_dict:
            out[prefix + native_b] = out.pop(prefix + b_key)
    return out


def to_layout(state_dict: Mapping[str, torch.Tensor], layout: str, prefix: str = "") -> Dict[str, torch.Tensor]:
    """Map se-zoo SE weights to ``layout`` (the inverse of :func:`from_layout`).

    Args:
        state_dict: A state dict holding a :class:`~se_zoo.layers.SqueezeExcite`'s
            tensors under ``prefix``.
        layout: One of :data:`LAYOUTS`.
        prefix: Key prefix of the SE module.

    Returns:
        A new state dict in ``layout``; other keys are copied as they are.

    Raises:
        LayoutError: for an unknown layout, a missing key, or data the target
            cannot hold — a non-zero bias into a bias-free layout, or a
            1×1 weight with a spatial extent other than 1×1.
    """
    spec = _spec(layout)
    is_linear = spec[2]
    out = dict(state_dict)
    for (w_key, b_key), (native_w, native_b) in zip(spec[:2], _NATIVE):
        weight = _take(state_dict, prefix + native_w, "se_zoo")
        _expect_dim(weight, 4, prefix + native_w, "se_zoo")
        if weight.shape[2:] != (1, 1):
            raise LayoutError(f"{prefix + native_w!r} must be a 1x1 conv weight, got shape {list(weight.shape)}")
        del out[prefix + native_w]
        out[prefix + w_key] = weight.flatten(1) if is_linear else weight
        bias = out.pop(prefix + native_b, None)
        if bias is None:
            continue
        if b_key:
            out[prefix + b_key] = bias
        elif torch.count_nonzero(bias):
            raise LayoutError(
                f"layout {layout!r} has no bias, but {prefix + native_b!r} is non-zero "
                f"(max |b| = {bias.abs().max().item():.3g}); converting would change the layer's output")
    return out
