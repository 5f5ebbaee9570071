"""Training and evaluation: ``se-zoo train`` and ``se-zoo validate`` as Python functions.

* :mod:`~se_zoo.training.config`: :class:`TrainConfig`, every option of a run.
* :mod:`~se_zoo.training.loop`: :func:`train`, the training loop (one process or ``torchrun``).
* :mod:`~se_zoo.training.evaluation`: :func:`validate`, loss and accuracy of a model on a split.
* :mod:`~se_zoo.training.state`: the resumable state of a run (safetensors + JSON).
* :mod:`~se_zoo.training.data`: image-folder splits, sharding, the digits data set.
* :mod:`~se_zoo.training.distributed`: the process group under ``torchrun``.

The names below load on first use, so ``se-zoo train --help`` reads
:class:`TrainConfig` without importing torch.
"""
import importlib

_LAZY = {
    "TrainConfig": "se_zoo.training.config",
    "TrainResult": "se_zoo.training.loop",
    "train": "se_zoo.training.loop",
    "validate": "se_zoo.training.evaluation",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'se_zoo.training' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
