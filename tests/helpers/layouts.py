"""State-dict layout conversions for a single SE layer (pure functions), for the parity tests.

The parity tests give a reference SE module random weights, map them into
se-zoo's layer with :func:`from_layout` and back with :func:`to_layout`.

se-zoo's :class:`~se_zoo.layers.SqueezeExcite` stores its two FCs as 1×1
convolutions ``fc1`` / ``fc2`` (weights ``(R, C, 1, 1)`` and ``(C, R, 1, 1)``
with ``R = C / r``, optional biases ``(R,)`` and ``(C,)``). The layouts other
implementations use:

================= ============================ =========================================
layout            keys                         weights
================= ============================ =========================================
``seed``          ``l1.weight``, ``l2.weight`` ``nn.Linear``, no bias (the seed document)
``timm``          ``fc1.*``, ``fc2.*``         1×1 conv, bias optional (``SEModule``)
``torchvision``   ``fc1.*``, ``fc2.*``         1×1 conv with bias
                                               (``ops.SqueezeExcitation``)
``caffe``         ``fc1.*``, ``fc2.*``         1×1 conv with bias: the Caffe
                                               ``*_1x1_down`` / ``*_1x1_up`` blobs as
                                               renamed by Cadene's pretrainedmodels and
                                               timm's legacy ``senet``
``senet_pytorch`` ``fc.0.weight``,             ``nn.Linear``, no bias
                  ``fc.2.weight``
================= ============================ =========================================

Keys are those of the SE module itself; pass ``prefix=`` to convert a module
nested in a larger state dict (other keys pass through unchanged, in order).
Conversions are exact: data a target layout cannot hold (a non-zero bias into a
bias-free layout) raises :class:`LayoutError`; a bias-free module written to a
layout whose biases are mandatory gets exact zero biases.
"""
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

__all__ = ["LAYOUTS", "LayoutError", "from_layout", "to_layout"]


class LayoutError(ValueError):
    """A state dict cannot be represented in, or read from, the requested layout."""


class _Layout(NamedTuple):
    fc1: str  # module names of the reducing and expanding FCs
    fc2: str
    linear: bool  # nn.Linear (2-D) weights instead of 1×1 conv (4-D) weights
    bias: str  # "none", "optional" or "required"


_SPECS: Dict[str, _Layout] = {
    "seed": _Layout("l1", "l2", linear=True, bias="none"),
    "timm": _Layout("fc1", "fc2", linear=False, bias="optional"),
    "torchvision": _Layout("fc1", "fc2", linear=False, bias="required"),
    "caffe": _Layout("fc1", "fc2", linear=False, bias="required"),
    "senet_pytorch": _Layout("fc.0", "fc.2", linear=True, bias="none"),
}
LAYOUTS: Tuple[str, ...] = tuple(_SPECS)
_NATIVE = _Layout("fc1", "fc2", linear=False, bias="optional")

_Tensors = Tuple[torch.Tensor, torch.Tensor]


def _spec(layout: str) -> _Layout:
    if not isinstance(layout, str) or layout not in _SPECS:
        raise LayoutError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    return _SPECS[layout]


def _take(state_dict: Mapping[str, torch.Tensor], key: str, layout: str) -> torch.Tensor:
    if key not in state_dict:
        raise LayoutError(f"state_dict has no key {key!r} required by layout {layout!r}; "
                          f"keys present: {sorted(state_dict)}")
    return state_dict[key]


def _read(state_dict: Mapping[str, torch.Tensor], spec: _Layout, layout: str, prefix: str
          ) -> Tuple[Tuple[str, str], _Tensors, Optional[Tuple[str, str]], Optional[_Tensors]]:
    """Fetch and validate an SE module's weights (and biases, if any) in ``spec``'s layout."""
    w_keys = (f"{prefix}{spec.fc1}.weight", f"{prefix}{spec.fc2}.weight")
    weights = tuple(_take(state_dict, key, layout) for key in w_keys)
    for key, w in zip(w_keys, weights):
        if spec.linear and w.dim() != 2:
            raise LayoutError(f"{key!r} in layout {layout!r} must be a 2-D Linear weight, got shape {list(w.shape)}")
        if not spec.linear and (w.dim() != 4 or w.shape[2:] != (1, 1)):
            raise LayoutError(f"{key!r} in layout {layout!r} must be a 1x1 conv weight (out, in, 1, 1), "
                              f"got shape {list(w.shape)}")
    rd, channels = weights[0].shape[:2]
    if tuple(weights[1].shape[:2]) != (channels, rd):
        raise LayoutError(f"{w_keys[1]!r} must have shape [{channels}, {rd}, ...] to undo {w_keys[0]!r} "
                          f"of shape {list(weights[0].shape)}, got {list(weights[1].shape)}")

    b_keys = (f"{prefix}{spec.fc1}.bias", f"{prefix}{spec.fc2}.bias")
    if spec.bias == "none" or (spec.bias == "optional" and not any(k in state_dict for k in b_keys)):
        return w_keys, weights, None, None
    biases = tuple(_take(state_dict, key, layout) for key in b_keys)
    for key, b, size in zip(b_keys, biases, (rd, channels)):
        if tuple(b.shape) != (size,):
            raise LayoutError(f"{key!r} in layout {layout!r} must have shape [{size}], got {list(b.shape)}")
    return w_keys, weights, b_keys, biases


def _replace(state_dict: Mapping[str, torch.Tensor], new: Dict[str, List[Tuple[str, torch.Tensor]]]
             ) -> Dict[str, torch.Tensor]:
    """Copy ``state_dict`` with each key of ``new`` replaced, in place, by its list of items."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        out.update(new[key] if key in new else [(key, value)])
    return out


def from_layout(state_dict: Mapping[str, torch.Tensor], layout: str, prefix: str = "") -> Dict[str, torch.Tensor]:
    """Map an SE layer's weights from ``layout`` into se-zoo's layout.

    Args:
        state_dict: A state dict holding the SE module's tensors under ``prefix``.
        layout: One of :data:`LAYOUTS`.
        prefix: Key prefix of the SE module (e.g. ``"layer1.0.se."``).

    Returns:
        A new state dict with the SE tensors renamed/reshaped for
        :class:`~se_zoo.layers.SqueezeExcite` (``bias=False`` when the source has
        no biases); other keys are copied as they are.

    Raises:
        LayoutError: for an unknown layout, a missing key, or a tensor whose
            shape does not fit the layout.

    Example:
        >>> sd = from_layout(seed_module.state_dict(), "seed")
        >>> SqueezeExcite(64, rd_channels=4, bias=False).load_state_dict(sd)
    """
    spec = _spec(layout)
    w_keys, weights, b_keys, biases = _read(state_dict, spec, layout, prefix)
    native = (f"{prefix}{_NATIVE.fc1}", f"{prefix}{_NATIVE.fc2}")
    new = {key: [(f"{name}.weight", w[:, :, None, None] if spec.linear else w)]
           for key, name, w in zip(w_keys, native, weights)}
    if b_keys is not None:
        new.update({key: [(f"{name}.bias", b)] for key, name, b in zip(b_keys, native, biases)})
    return _replace(state_dict, new)


def to_layout(state_dict: Mapping[str, torch.Tensor], layout: str, prefix: str = "") -> Dict[str, torch.Tensor]:
    """Map se-zoo SE weights to ``layout`` (the inverse of :func:`from_layout`).

    Args:
        state_dict: A state dict holding a :class:`~se_zoo.layers.SqueezeExcite`'s
            tensors under ``prefix``.
        layout: One of :data:`LAYOUTS`.
        prefix: Key prefix of the SE module.

    Returns:
        A new state dict in ``layout``; other keys are copied as they are. A
        bias-free module gets zero biases in layouts whose biases are mandatory
        (``torchvision``, ``caffe``); zero biases are dropped for bias-free
        layouts (``seed``, ``senet_pytorch``).

    Raises:
        LayoutError: for an unknown layout, a missing key, a tensor whose shape
            is not that of an SE layer, or data the target cannot hold: a
            non-zero bias into a bias-free layout.
    """
    spec = _spec(layout)
    w_keys, weights, b_keys, biases = _read(state_dict, _NATIVE, "se_zoo", prefix)
    names = (f"{prefix}{spec.fc1}", f"{prefix}{spec.fc2}")
    new = {key: [(f"{name}.weight", w.flatten(1) if spec.linear else w)]
           for key, name, w in zip(w_keys, names, weights)}
    if b_keys is None:
        if spec.bias == "required":
            for key, name, w in zip(w_keys, names, weights):
                new[key].append((f"{name}.bias", w.new_zeros(w.shape[0])))
    elif spec.bias == "none":
        for key, b in zip(b_keys, biases):
            if torch.count_nonzero(b):
                raise LayoutError(
                    f"layout {layout!r} has no bias, but {key!r} is non-zero (max |b| = "
                    f"{b.abs().max().item():.3g}); converting would change the layer's output")
            new[key] = []
    else:
        new.update({key: [(f"{name}.bias", b)] for key, name, b in zip(b_keys, names, biases)})
    return _replace(state_dict, new)
