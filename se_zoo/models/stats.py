"""Parameter and MAC counts of a model: the one count the card, the models table, ``se-zoo info`` and the tests share.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` for one
image (one MAC is two FLOPs). A model on the ``meta`` device costs neither
memory nor compute to count.
"""
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

try:
    from timm.models import get_model_input_config
except ImportError:  # timm < 1.0.31: the pretrained cfg's input size, with the channels of the model's first conv
    def get_model_input_config(model: nn.Module) -> Dict[str, Any]:
        """``{"input_size": (C, H, W)}`` of ``model``, as newer timm's function of this name gives it."""
        cfg = getattr(model, "pretrained_cfg", {})
        size = tuple(cfg.get("input_size", (3, 224, 224)))
        first_conv = cfg.get("first_conv")
        conv = model.get_submodule(first_conv) if isinstance(first_conv, str) else None
        return {"input_size": (getattr(model, "in_chans", getattr(conv, "in_channels", size[0])), *size[-2:])}

__all__ = ["model_stats"]


def model_stats(model: nn.Module, input_size: Optional[Sequence[int]] = None, *,
                training: bool = False) -> Dict[str, Any]:
    """Parameter count, GMACs and input size of a timm model.

    Args:
        model: A timm model (it has a ``pretrained_cfg``).
        input_size: ``(C, H, W)`` of the image counted; the model's current
            input size when None.
        training: Count in train mode: the architecture's own MACs. Eval mode
            (the default) counts what inference runs, which for the
            bottlenecks includes ``conv3`` on the squeezed 1×1 map, the SE
            squeeze shortcut (about 0.2% more MACs). Train mode updates
            BatchNorm statistics, so it is allowed on a ``meta`` model only.
            The model's mode is restored afterwards either way.

    Returns:
        ``{"params": int, "gmacs": float, "input_size": (C, H, W)}``.

    Raises:
        ValueError: if ``training`` is set for a model that is not on the ``meta`` device.
    """
    param = next(model.parameters())
    if training and param.device.type != "meta":
        raise ValueError(f"training=True counts in train mode, which updates BatchNorm statistics: it needs a model "
                         f"on the meta device, got one on {param.device}")
    input_size = tuple(input_size or get_model_input_config(model)["input_size"])
    was_training = model.training
    model.train(training)
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, *input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "gmacs": counter.get_total_flops() / 2e9,
        "input_size": input_size,
    }
