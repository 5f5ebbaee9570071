"""se-zoo model families, registered with timm's model registry on import.

The architectures and their facts are the table in ``se_zoo.architectures``;
``se_resnet`` and ``se_mobilenet`` register their rows (see ``_register``).
"""
from ..architectures import TIMM_EQUIVALENTS
from . import se_mobilenet, se_resnet  # noqa: F401  (registration)

__all__ = ["TIMM_EQUIVALENTS"]
