"""Unwrapping of training checkpoints, shared by the families' ``checkpoint_filter_fn``."""
from typing import Any, Dict

from timm.models import clean_state_dict


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
