"""se-zoo: Squeeze-and-Excitation networks for timm.

Importing ``se_zoo`` registers its architectures with timm's model registry, so
``timm.create_model("se_zoo_resnet50", pretrained=True)`` works.
"""
from .layers import SqueezeExcite
from .models import TIMM_EQUIVALENTS

__version__ = "0.1.0"
_HUB_API = ("save_pretrained", "push_to_hub", "from_pretrained", "IntegrityError")
__all__ = ["SqueezeExcite", "TIMM_EQUIVALENTS", "__version__", *_HUB_API]


def __getattr__(name: str):
    # the Hub API is imported on first use, so registering the models never depends on it
    if name in _HUB_API:
        from . import hub
        return getattr(hub, name)
    raise AttributeError(f"module 'se_zoo' has no attribute {name!r}")
