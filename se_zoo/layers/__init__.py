"""Layers of se-zoo: the Squeeze-and-Excitation block."""
from .squeeze_excite import SqueezeExcite, reduced_channels

__all__ = ["SqueezeExcite", "reduced_channels"]
