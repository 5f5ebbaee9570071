"""se-zoo: Squeeze-and-Excitation networks for timm.

Importing ``se_zoo`` registers its architectures with timm's model registry, so
``timm.create_model("se_zoo_resnet50", pretrained=True)`` works.
"""
from .layers import SqueezeExcite
from .models import TIMM_EQUIVALENTS

__version__ = "0.1.0"
__all__ = ["SqueezeExcite", "TIMM_EQUIVALENTS", "__version__"]
