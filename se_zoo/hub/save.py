"""``save_pretrained``: the directory layout timm's ``hf-hub:`` and ``local-dir:`` loaders read.

Construction arguments: timm's ``create_model`` records the keyword arguments a
model was built with, and timm's ``save_config_for_hf`` writes them (with the
model's current ``num_classes``, ``in_chans`` and ``global_pool``) as
``model_args``. timm leaves drop rates out; se-zoo adds the recorded ones back
so a re-created model trains like the saved one. A model built without
``create_model`` (an entrypoint called directly) has no record: pass what it
was built with as ``model_args``. Before anything is written, the architecture
is re-created from the config on the meta device and its state-dict shapes are
compared with the model's, so a config that would not rebuild the model is
refused rather than published.

Provenance: ``config.json`` records the model's
:class:`se_zoo.provenance.WeightsOrigin` under ``weights_origin``, and its
``pretrained_cfg`` names a ``tag`` only when the weights are that catalogue
tag's; for weights that owe nothing to published ones (a random
initialization, or trained from one) it also names no license or origin.
"""
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch
from huggingface_hub.constants import CONFIG_NAME
from huggingface_hub.constants import REPOCARD_NAME as README_NAME
from torch import nn

from ..pretrained.integrity import SAFE_WEIGHTS_NAME
from ..provenance import CONFIG_KEY, WeightsOrigin, weights_origin
from .card import CardOptions, model_card

__all__ = ["CONFIG_NAME", "METRICS_NAME", "README_NAME", "save_pretrained", "sha256_file"]

METRICS_NAME = "metrics.jsonl"  # the per-epoch log `se-zoo train` writes next to the model
_DROP_RATES = ("drop_rate", "drop_path_rate", "drop_block_rate")
_PROVENANCE = ("tag", "license", "origin_url", "paper_ids", "paper_name", "notes", "description")


def sha256_file(path: Union[str, Path]) -> str:
    """The sha256 hex digest of a file, read in chunks (huggingface_hub's ``sha_fileobj``)."""
    from huggingface_hub.utils.sha import sha_fileobj

    with open(path, "rb") as f:
        return sha_fileobj(f).hex()


def _tensors_for_save(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """CPU, contiguous, unshared copies where needed; dtypes unchanged."""
    tensors, storages = {}, set()
    for name, tensor in state_dict.items():
        tensor = tensor.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if tensor.numel() and storage in storages:
            tensor = tensor.clone()  # safetensors stores no aliases; timm's strict load wants every key
        storages.add(tensor.untyped_storage().data_ptr())
        tensors[name] = tensor
    return tensors


def _export_args(model: nn.Module, model_args: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    import timm.models

    recorded = getattr(model, "_model_args", {})  # the create_model record of the build kwargs
    if hasattr(timm.models, "get_model_args"):  # timm >= 1.0.31 exports the others itself
        args = {k: v for k, v in recorded.items() if k in _DROP_RATES or k.endswith("_drop_rate")}
    else:  # older timm writes only what it is given: the class count and channels read off the model, and
        # the arguments se-zoo's builders recorded (se_zoo.models._pretrained)
        from ..models.stats import get_model_input_config

        args = {"num_classes": model.num_classes, "in_chans": get_model_input_config(model)["input_size"][0],
                **recorded}
    args.update(model_args or {})
    return args


def _record_origin(config_path: Path, origin: WeightsOrigin) -> None:
    """Write ``origin`` into a config, and let its pretrained cfg name only what the weights are."""
    config = json.loads(config_path.read_text())
    pretrained_cfg = config.setdefault("pretrained_cfg", {})
    if origin.from_random_init:
        for key in _PROVENANCE:
            pretrained_cfg.pop(key, None)
    tag = origin.catalogue_tag
    if tag:
        pretrained_cfg["tag"] = tag.split(".", 1)[1]
    else:
        pretrained_cfg.pop("tag", None)
    config[CONFIG_KEY] = origin.to_dict()
    config_path.write_text(json.dumps(config, indent=2))


def _check_recreates(config: Dict[str, Any], model: nn.Module) -> None:
    """Raise unless ``config`` re-creates the state-dict layout of ``model``."""
    import timm

    with torch.device("meta"):
        rebuilt = timm.create_model(config["architecture"], **config.get("model_args", {}))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))
        raise ValueError(
            f"config.json would not re-create this {config['architecture']} (model_args="
            f"{config.get('model_args', {})}): {len(diff)} state-dict entries differ, first {diff[0]}; pass the "
            "constructor arguments the model was built with as model_args")


def save_pretrained(
        model: nn.Module,
        directory: Union[str, Path],
        *,
        model_args: Optional[Mapping[str, Any]] = None,
        repo_id: Optional[str] = None,
        card: Optional[CardOptions] = None,
) -> str:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` for a timm model.

    ``model.safetensors`` holds the state dict as it is (dtypes kept, tensors made
    contiguous, shared tensors stored once per key, no pickle); ``config.json`` is
    timm's format (``architecture``, ``num_classes``, ``num_features``,
    ``global_pool``, ``model_args``, ``pretrained_cfg``) plus the weights'
    origin (``weights_origin``); ``README.md`` is the model card of
    :func:`se_zoo.hub.card.model_card`. The card's "Weights" line, its
    "untrained" warning and the config's ``tag`` follow the model's
    :func:`se_zoo.provenance.weights_origin`. The directory then loads with
    ``timm.create_model("local-dir:<directory>", pretrained=True)`` and, once
    pushed, with ``hf-hub:<repo_id>``.

    Args:
        model: A timm model (it has a ``pretrained_cfg``).
        directory: Output directory, created if missing; the three files are
            overwritten.
        model_args: Constructor arguments to record in addition to those timm's
            ``create_model`` recorded (see the module docstring); JSON values only.
        repo_id: Hub repo the directory will be pushed to, for the card's usage
            snippet; without it the snippet loads ``local-dir:<directory>``.
        card: Title, license, datasets and metrics for the card (:class:`CardOptions`).

    Returns:
        The sha256 of the written ``model.safetensors``.

    Raises:
        TypeError: if ``model`` is not a timm model or ``card`` not a :class:`CardOptions`.
        ValueError: if a model argument is not JSON-serialisable, the config
            would not re-create the model's state-dict layout, or metrics name
            no dataset.

    Example:
        >>> model = timm.create_model("se_zoo_resnet18", num_classes=10)
        >>> sha256 = save_pretrained(model, "out/r18", card=CardOptions(metrics={"top1": 91.0}, datasets="cifar10"))
    """
    import safetensors.torch
    from timm.models._hub import save_config_for_hf

    if not isinstance(model, nn.Module) or not getattr(model, "pretrained_cfg", None):
        raise TypeError(f"model must be a timm model (an nn.Module with a pretrained_cfg), got {type(model).__name__}")
    origin = weights_origin(model)
    weights = safetensors.torch.save(_tensors_for_save(model.state_dict()), metadata={"format": "pt"})
    weights_sha256 = hashlib.sha256(weights).hexdigest()
    directory = Path(directory)
    readme = model_card(
        model, weights_sha256=weights_sha256, repo_id=repo_id, location=directory, options=card, origin=origin,
        metrics_file=METRICS_NAME if (directory / METRICS_NAME).is_file() else None)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / CONFIG_NAME
    save_config_for_hf(model, config_path, model_args=_export_args(model, model_args))
    _record_origin(config_path, origin)
    try:
        _check_recreates(json.loads(config_path.read_text()), model)
    except ValueError:
        config_path.unlink()
        raise
    (directory / SAFE_WEIGHTS_NAME).write_bytes(weights)
    readme.save(directory / README_NAME)
    return weights_sha256
