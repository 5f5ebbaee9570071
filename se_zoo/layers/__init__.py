"""Layers of se-zoo: the Squeeze-and-Excitation block."""
from .._timm_hook import run_pending as _run_pending
from .squeeze_excite import SqueezeExcite, reduced_channels

__all__ = ["SqueezeExcite", "reduced_channels"]

_run_pending()  # the models' registration, if it waited for this package (see se_zoo._timm_hook)
