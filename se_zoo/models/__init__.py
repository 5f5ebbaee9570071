"""se-zoo model families, registered with timm's model registry on import."""
from typing import Dict

from . import se_mobilenet, se_resnet

__all__ = ["TIMM_EQUIVALENTS"]

#: Every se-zoo architecture -> the timm architecture whose checkpoints it loads.
TIMM_EQUIVALENTS: Dict[str, str] = {
    **se_resnet.TIMM_EQUIVALENTS,
    **se_mobilenet.TIMM_EQUIVALENTS,
}
