"""se-zoo: Squeeze-and-Excitation networks for timm.

Importing ``se_zoo`` registers its architectures with timm's model registry, so
``timm.create_model("se_zoo_resnet50", pretrained=True)`` works. The package is
torch-free until used: the models are registered the moment timm is imported
(immediately, if it already is), and the public names below load on first use,
so the registry server (``se_zoo.registry``) and the CLI's help never import torch.
"""
import importlib

from ._timm_hook import after_timm_import

__version__ = "0.1.0"
_LAZY = {
    "SqueezeExcite": "se_zoo.layers",
    "TIMM_EQUIVALENTS": "se_zoo.models",
    **{name: "se_zoo.hub" for name in ("save_pretrained", "push_to_hub", "from_pretrained", "IntegrityError",
                                        "CardOptions")},
    **{name: "se_zoo.training" for name in ("TrainConfig", "TrainResult", "train", "validate")},
    **{name: "se_zoo.provenance" for name in ("WeightsOrigin", "weights_origin")},
}
__all__ = ["__version__", *_LAZY]


def _register_models() -> None:
    importlib.import_module("se_zoo.models")  # its @register_model entrypoints run on import
    importlib.import_module("se_zoo._timm_trust").install()  # hf-hub: verifies signed repos under a trust policy


after_timm_import(_register_models)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'se_zoo' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
