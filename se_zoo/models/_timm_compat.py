"""A fix from newer timm for the oldest timm se-zoo supports, installed when the models register.

timm before 1.0.26 reads the checkpoint of a ``local-dir:DIR`` model with
``torch.load`` whatever its format, so ``model.safetensors`` — the file
``se_zoo.hub.save_pretrained`` and timm's own ``save_for_hf`` write — fails to
load ("invalid load key"), and its fallback search lets a later extension
override an earlier one. On those releases :func:`install` puts timm 1.0.26's
loader in place of the one timm's builder calls; newer timm is left alone.
"""
import re
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import timm
from timm.models import _builder, _hub
from timm.models._helpers import load_state_dict

__all__ = ["install"]


def _timm_version() -> Tuple[int, ...]:
    """timm's release as numbers: ``"1.0.26.dev0"`` -> ``(1, 0, 26)``."""
    return tuple(int(re.match(r"\d*", part).group() or 0) for part in timm.__version__.split(".")[:3])


def load_state_dict_from_path(path: Union[str, Path], weights_only: bool = True) -> Dict[str, Any]:
    """The state dict of a ``local-dir:`` model directory, as timm >= 1.0.26 reads it.

    Args:
        path: The directory.
        weights_only: Passed to ``torch.load`` for a pickle checkpoint.

    Returns:
        The state dict: the first of timm's preferred file names present, else the
        first file of the highest-priority extension, read by timm's ``load_state_dict``
        (safetensors for ``.safetensors``).

    Raises:
        RuntimeError: if the directory holds no checkpoint.
    """
    path = Path(path)
    found = next((path / name for name in _hub._PREFERRED_FILES if (path / name).exists()), None)
    for ext in _hub._EXT_PRIORITY if found is None else ():
        files = sorted(path.glob(f"*{ext}"))
        if files:
            found = files[0]
            break
    if found is None:
        raise RuntimeError(f"No suitable checkpoints found in {path}.")
    return load_state_dict(str(found), weights_only=weights_only)


def install() -> None:
    """Put :func:`load_state_dict_from_path` into timm's builder on timm < 1.0.26 (no-op on newer timm)."""
    if _timm_version() < (1, 0, 26):
        _builder.load_state_dict_from_path = load_state_dict_from_path
        _hub.load_state_dict_from_path = load_state_dict_from_path
