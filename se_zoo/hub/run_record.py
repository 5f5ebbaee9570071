"""The record of a training run that a model card's "Training" section is written from.

``se-zoo train`` builds it after every epoch (:func:`run_record`), keeps it in
``train_state/state.json`` under ``"run"`` and hands it to the model card;
``push_to_hub`` of a run folder reads it back (:func:`read_run_record`).
Plain JSON values only, so it needs neither torch nor the state's tensors.
"""
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

__all__ = ["run_record", "read_run_record"]


def run_record(
        config: Any,
        *,
        dataset_name: str,
        classes: Optional[Sequence[str]],
        train_count: int,
        val_count: int,
        devices: str,
        precision: str,
        wall_time_s: float,
        epochs_done: int,
        best_epoch: int,
) -> Dict[str, Any]:
    """What a run did, for its model card.

    Args:
        config: The run's ``se_zoo.TrainConfig``.
        dataset_name: The dataset (folder name or timm dataset name).
        classes: Class names, in label order (None when the dataset names none).
        train_count: Training images.
        val_count: Validation images.
        devices: e.g. ``"1 × cpu"``, ``"4 × cuda (NVIDIA H100)"``.
        precision: e.g. ``"float32"``, ``"bfloat16 autocast"``.
        wall_time_s: Seconds of training so far, all resumed parts together.
        epochs_done: Epochs finished.
        best_epoch: Epoch of the saved (best) weights.

    Returns:
        A JSON-serialisable dict.
    """
    return {
        "start": config.model, "pretrained": bool(config.pretrained),
        "dataset": dataset_name, "train_split": config.train_split, "val_split": config.val_split,
        "train_count": int(train_count), "val_count": int(val_count),
        "classes": list(classes) if classes is not None else None,
        "epochs": config.epochs, "epochs_done": epochs_done, "best_epoch": best_epoch,
        "optimizer": config.opt, "lr": config.lr, "weight_decay": config.weight_decay, "sched": config.sched,
        "warmup_epochs": config.warmup_epochs, "batch_size": config.batch_size,
        "augmentation": {"no_aug": config.no_aug, "scale": list(config.scale), "ratio": list(config.ratio),
                         "hflip": config.hflip, "mixup": config.mixup, "cutmix": config.cutmix,
                         "smoothing": config.smoothing},
        "model_ema": bool(config.model_ema), "precision": precision, "devices": devices,
        "wall_time_s": round(float(wall_time_s), 1),
    }


def read_run_record(directory: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """The run record kept in a training output folder, or None when it has none.

    Args:
        directory: A ``se-zoo train`` output folder.

    Returns:
        The dict :func:`run_record` built, or None (no ``train_state/state.json``,
        or a state written before runs were recorded).
    """
    path = Path(directory) / "train_state" / "state.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text()).get("state", {}).get("run")
    return record if isinstance(record, dict) else None
