"""Checkpoints into state dicts: verified bytes deserialised, training wrappers unwrapped.

:func:`load_weights` deserialises the bytes ``se_zoo.pretrained.integrity``
checked (Hub pulls, catalogue pins); :func:`unwrap_checkpoint` is shared by the
families' ``checkpoint_filter_fn``.
"""
import io
from typing import Any, Dict

import torch

from timm.models import clean_state_dict

__all__ = ["load_weights", "unwrap_checkpoint"]


def load_weights(data: bytes, filename: str, *, allow_pickle: bool = False) -> Dict[str, Any]:
    """Deserialise checked checkpoint bytes.

    Args:
        data: The bytes returned by :func:`read_verified`.
        filename: The checkpoint's name; ``.safetensors`` files load with
            safetensors, anything else is a pickle.
        allow_pickle: Load a pickle checkpoint (``.bin``, ``.pth``) with
            ``torch.load(weights_only=True)``; refused when False.

    Returns:
        The state dict, on the CPU.

    Raises:
        ValueError: if ``filename`` is a pickle and ``allow_pickle`` is False.
    """
    if filename.endswith(".safetensors"):
        import safetensors.torch
        return safetensors.torch.load(data)
    if not allow_pickle:
        raise ValueError(
            f"{filename} is a pickle checkpoint; pass allow_pickle=True to load it with torch.load(weights_only=True)")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def unwrap_checkpoint(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """The model weights of a checkpoint, however a training script saved them.

    Args:
        state_dict: A state dict, or a training checkpoint holding one under
            ``state_dict`` or ``model``; keys may carry DistributedDataParallel's
            ``module.`` or ``torch.compile``'s ``_orig_mod.`` prefix.

    Returns:
        The bare state dict (timm's ``clean_state_dict`` strips the prefixes).
    """
    for wrapper in ("state_dict", "model"):
        if wrapper in state_dict and isinstance(state_dict[wrapper], dict):
            state_dict = state_dict[wrapper]
    return clean_state_dict(state_dict)
