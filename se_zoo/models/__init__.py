"""se-zoo model families, registered with timm's model registry on import.

The architectures and their facts are the table in ``se_zoo.architectures``;
``se_resnet`` and ``se_mobilenet`` hold one ``@register_model`` entrypoint per
row, and their ``default_cfgs`` are generated from ``weights/`` (see ``_pretrained``).
"""
from ..architectures import TIMM_EQUIVALENTS
from . import _timm_compat, se_mobilenet, se_resnet  # noqa: F401  (registration)

_timm_compat.install()

__all__ = ["TIMM_EQUIVALENTS"]
