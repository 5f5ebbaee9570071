"""A model's summary (``se-zoo info``): architecture, parameters, MACs, SE blocks, output shape."""
from typing import Any, Dict


def model_summary(name: str, img_size: int = 224, **kwargs: Any) -> Dict[str, Any]:
    """Create ``name`` with timm and summarise it.

    Args:
        name: A registered model name, ``name.tag``, ``hf-hub:ID`` or ``local-dir:DIR``.
        img_size: Square input size for the MAC count and the output-shape check.
        **kwargs: Passed to ``timm.create_model`` (``pretrained``, ``num_classes``, ...).

    Returns:
        A dict with ``name``, ``architecture``, ``params``, ``gmacs`` (in eval
        mode, see :func:`se_zoo.models.stats.model_stats`), ``se_blocks``,
        ``input_size`` and ``output_shape``.

    Raises:
        RuntimeError: if timm does not know the model.
    """
    import timm
    import torch

    from .layers import SqueezeExcite
    from .models.stats import model_stats

    model = timm.create_model(name, **kwargs).eval()
    input_size = (model.pretrained_cfg.get("input_size", (3,))[0], img_size, img_size)
    stats = model_stats(model, input_size)
    with torch.no_grad():
        out = model(torch.randn(1, *input_size))
    return {
        "name": name,
        "architecture": model.pretrained_cfg.get("architecture", name),
        "params": stats["params"],
        "gmacs": round(stats["gmacs"], 3),
        "se_blocks": sum(isinstance(m, SqueezeExcite) for m in model.modules()),
        "input_size": input_size,
        "output_shape": tuple(out.shape),
    }
