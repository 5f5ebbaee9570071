"""Model weights for comparisons (imports torch: model-side tests only)."""
import torch
from torch import nn


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter and BatchNorm running stat random values, in place.

    timm zero-initialises the last BN of each residual branch, which would hide
    the SE path entirely; random values make every layer count in a comparison.

    Args:
        model: the module whose floating-point state is overwritten.
        seed: seed of the generator, so two models of one layout get the same values.

    Returns:
        ``model`` itself.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.endswith(("weight", "bias", "running_mean")):
                scale = 0.2 if tensor.dim() > 1 else 0.5
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * scale
                             + (1.0 if name.endswith("weight") and tensor.dim() == 1 else 0.0))
    return model
