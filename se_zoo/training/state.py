"""Resumable training state stored as safetensors + JSON, never pickle, and the RNG states it carries.

A training state is a nested structure of dicts, lists, tuples, scalars and
tensors (model / optimizer / scheduler / EMA state dicts, RNG states, counters).
:func:`save_train_state` splits it into

* ``state.safetensors``: every tensor, under a string key naming its place in
  the structure (``optimizer/state/3/exp_avg``);
* ``state.json``: the structure itself, with each tensor replaced by
  ``{"__tensor__": key}``, tuples by ``{"__tuple__": [...]}`` and dicts whose
  keys are not all strings (``torch.optim`` state is keyed by parameter index) by
  ``{"__items__": [[key, value], ...]}``.

:func:`load_train_state` inverts that exactly, so ``load_state_dict`` of
optimizers and schedulers receives the same keys and types it produced.
"""
import json
import logging
import os
import random
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import torch

from .distributed import all_gather_stack
from ..errors import InputNotFound, InvalidArgument

__all__ = [
    "STATE_DIRNAME", "save_train_state", "load_train_state", "find_train_state", "capture_rng", "restore_rng",
]

_logger = logging.getLogger(__name__)

STATE_DIRNAME = "train_state"
_JSON_NAME = "state.json"
_TENSORS_NAME = "state.safetensors"
_FORMAT = "se-zoo-train-state"
_VERSION = 1
_MARKERS = ("__tensor__", "__tuple__", "__items__")


def _encode(obj: Any, path: str, tensors: Dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        if path in tensors:
            raise ValueError(f"state keys must give distinct tensor paths, {path!r} appears twice")
        # copy: safetensors refuses tensors that share storage
        tensors[path] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[_encode(k, f"{path}/key{i}", tensors), _encode(v, f"{path}/{k}", tensors)]
                              for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"state at {path or '/'} must hold tensors, dicts, lists, tuples or scalars, "
                    f"got {type(obj).__name__}")


def _decode(obj: Any, tensors: Dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def save_train_state(state: Dict[str, Any], directory: Union[str, os.PathLike]) -> Path:
    """Write ``state`` to ``directory/state.safetensors`` and ``directory/state.json``.

    Both files are written under temporary names and renamed into place, JSON
    last, so an interrupted save leaves the previous state readable.

    Args:
        state: Nested dicts / lists / tuples of tensors, ``None``, bools, ints,
            floats and strings.
        directory: Folder to write (created if missing).

    Returns:
        The directory written.

    Raises:
        TypeError: if ``state`` holds any other type (the message names where).
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: Dict[str, torch.Tensor] = {}
    tree = {k: _encode(v, k, tensors) for k, v in state.items()}
    document = {"format": _FORMAT, "version": _VERSION, "state": tree}
    save_file(tensors, directory / (_TENSORS_NAME + ".tmp"), metadata={"format": _FORMAT})
    (directory / (_JSON_NAME + ".tmp")).write_text(json.dumps(document, indent=1))
    os.replace(directory / (_TENSORS_NAME + ".tmp"), directory / _TENSORS_NAME)
    os.replace(directory / (_JSON_NAME + ".tmp"), directory / _JSON_NAME)
    return directory


def find_train_state(path: Union[str, os.PathLike]) -> Path:
    """The training-state folder that ``path`` names.

    Args:
        path: A training output folder (holding ``train_state/``), the
            ``train_state`` folder itself, or one of its two files.

    Returns:
        The folder holding ``state.json`` and ``state.safetensors``.

    Raises:
        FileNotFoundError: if no training state is found there.
    """
    path = Path(path)
    for candidate in (path / STATE_DIRNAME, path, path.parent):
        if (candidate / _JSON_NAME).is_file() and (candidate / _TENSORS_NAME).is_file():
            return candidate
    raise InputNotFound(
        f"resume must name a training output folder or its {STATE_DIRNAME}/ folder "
        f"(holding {_JSON_NAME} and {_TENSORS_NAME}), got {str(path)!r}")


def load_train_state(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Read a state written by :func:`save_train_state`.

    Args:
        path: Anything :func:`find_train_state` accepts.
        device: Where to place the tensors.

    Returns:
        The state, with the same nesting, key types and tuple/list kinds as saved.

    Raises:
        FileNotFoundError: if no training state is found at ``path``.
        ValueError: if the files are not an se-zoo training state, or the JSON
            names a tensor the safetensors file lacks.
    """
    from safetensors.torch import load_file

    directory = find_train_state(path)
    document = json.loads((directory / _JSON_NAME).read_text())
    if document.get("format") != _FORMAT or document.get("version") != _VERSION:
        raise InvalidArgument(f"{directory / _JSON_NAME} must be a {_FORMAT} v{_VERSION} file, got format "
                         f"{document.get('format')!r} v{document.get('version')!r}")
    tensors = load_file(directory / _TENSORS_NAME, device=str(device))
    try:
        return _decode(document["state"], tensors)
    except KeyError as exc:
        raise InvalidArgument(f"{directory / _JSON_NAME} names tensor {exc.args[0]!r}, "
                         f"missing from {_TENSORS_NAME}") from None


def capture_rng(env) -> Dict[str, Any]:
    """Every process's torch / numpy / Python (and CUDA) RNG state, stacked in rank order.

    A collective: every process of the group must call it.

    Args:
        env: The process's :class:`~se_zoo.training.distributed.DistEnv`.

    Returns:
        ``world_size`` and one tensor per generator, indexed by rank; a part of
        a training state for :func:`save_train_state`.
    """
    _, np_key, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    _, py_internal, py_gauss = random.getstate()
    local = {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(np_key.astype(np.int64)),
        "numpy_extra": torch.tensor([np_pos, np_has_gauss, np_gauss], dtype=torch.float64),
        "python": torch.tensor(py_internal, dtype=torch.int64),
        "python_gauss": torch.tensor([py_gauss is not None, py_gauss or 0.0], dtype=torch.float64),
    }
    if env.device.type == "cuda":
        local["cuda"] = torch.cuda.get_rng_state(env.device)
    return {"world_size": env.world_size, **{k: all_gather_stack(v, env) for k, v in local.items()}}


def restore_rng(state: Dict[str, Any], env) -> None:
    """Set this process's generators to its row of a :func:`capture_rng` state.

    With another process count the streams are left as seeded (a warning says
    the run will not repeat the original exactly).

    Args:
        state: What :func:`capture_rng` returned (possibly saved and loaded).
        env: The process's :class:`~se_zoo.training.distributed.DistEnv`.
    """
    if state["world_size"] != env.world_size:
        _logger.warning("resuming with %d processes instead of %d: the RNG streams restart from the seed, so "
                        "the run will not repeat the original exactly", env.world_size, state["world_size"])
        return
    r = env.rank
    torch.set_rng_state(state["torch"][r].to(torch.uint8))
    pos, has_gauss, gauss = state["numpy_extra"][r].tolist()
    np.random.set_state(("MT19937", state["numpy_key"][r].numpy().astype(np.uint32),
                         int(pos), int(has_gauss), gauss))
    has_py_gauss, py_gauss = state["python_gauss"][r].tolist()
    random.setstate((3, tuple(state["python"][r].tolist()), py_gauss if has_py_gauss else None))
    if env.device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"][r].to(torch.uint8), env.device)
