"""The settings of a training run (:class:`TrainConfig`), and which of them a resumed run must keep."""
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

from ..errors import InvalidArgument

__all__ = ["TrainConfig", "KEPT", "FREE", "resume_fields", "check_config"]


# Every TrainConfig field says whether a resumed run must keep it (tests/training/test_train.py checks each does).
KEPT = {"resume": True}  # a resumed run must give the value the run started with
FREE = {"resume": False}  # may change on resume: paths, worker counts, stop_after, ...


@dataclass
class TrainConfig:
    """Everything one training run needs; the ``se-zoo train`` flags map one to one.

    Each field's metadata says whether a resumed run must give it the value the
    run started with (``KEPT``, ``{"resume": True}``; see :func:`resume_fields`)
    or may change it (``FREE``).

    Attributes:
        model: ``name``, ``name.tag``, ``hf-hub:ID`` or ``local-dir:DIR``.
        data: Dataset root; for folder datasets it holds ``train_split`` and
            ``val_split`` sub-folders with one folder per class.
        output: Folder for the best model, ``metrics.jsonl`` and ``train_state/``.
        dataset: timm dataset name (``""`` for folders, ``"torch/cifar10"``, ...).
        train_split: Split to train on.
        val_split: Split to validate on after each epoch.
        classes: Class folders to use, in label order (``None``: all).
        num_classes: Classifier outputs (``None``: the number of classes in the data).
        pretrained: Start from the model's pretrained weights (a classifier of
            another size is replaced by a new one).
        model_kwargs: Extra ``timm.create_model`` arguments.
        img_size: Input size (``None``: the model's pretrained config).
        crop_pct: Validation center-crop fraction (``None``: the model's).
        epochs: Length of the schedule, in epochs.
        batch_size: Global batch size (split over the processes).
        opt: timm optimizer name.
        lr: Peak learning rate.
        weight_decay: Weight decay (not applied to biases and norm weights).
        sched: timm scheduler name (``"cosine"``, ``"step"``, ``"none"``, ...).
        warmup_epochs: Linear warm-up length, in epochs.
        min_lr: Final learning rate of decaying schedules.
        smoothing: Label smoothing.
        mixup: Mixup alpha (0: off).
        cutmix: CutMix alpha (0: off).
        scale: Random-resized-crop area range.
        ratio: Random-resized-crop aspect-ratio range.
        hflip: Horizontal-flip probability.
        no_aug: Train on the validation transform (no random augmentation).
        model_ema: Keep an EMA of the weights; it is validated, selected and saved.
        model_ema_decay: EMA decay (with timm's warm-up).
        sync_bn: Use SyncBatchNorm under torchrun (CUDA only).
        channels_last: Keep the model and batches in channels-last memory format.
        amp: Autocast on CUDA (bfloat16 where supported, else float16 with loss scaling).
        seed: Seed of initialisation, augmentation and data order (process ``r`` uses ``seed + r``).
        workers: Data-loading worker processes per training process.
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when available).
        resume: A training output folder (or its ``train_state/``) to continue.
        stop_after: End this run after this many epochs in total (the schedule
            still spans ``epochs``); continue later with ``resume``.
        push_to_hub: Hub repository to push the best model to when training ends.
        sign_key: PEM private key that signs that push (``model.sig``); needs ``push_to_hub``.
        progress: Show a progress bar per epoch (rank 0).
    """

    model: str = field(metadata=KEPT)
    data: str = field(metadata=FREE)
    output: Optional[str] = field(default=None, metadata=FREE)
    dataset: str = field(default="", metadata=KEPT)
    train_split: str = field(default="train", metadata=FREE)
    val_split: str = field(default="val", metadata=FREE)
    classes: Optional[List[str]] = field(default=None, metadata=KEPT)
    num_classes: Optional[int] = field(default=None, metadata=KEPT)
    pretrained: bool = field(default=False, metadata=FREE)
    model_kwargs: Dict[str, Any] = field(default_factory=dict, metadata=KEPT)
    img_size: Optional[int] = field(default=None, metadata=KEPT)
    crop_pct: Optional[float] = field(default=None, metadata=KEPT)
    epochs: int = field(default=8, metadata=KEPT)
    batch_size: int = field(default=64, metadata=KEPT)
    opt: str = field(default="adamw", metadata=KEPT)
    lr: float = field(default=2e-3, metadata=KEPT)
    weight_decay: float = field(default=0.05, metadata=KEPT)
    sched: str = field(default="cosine", metadata=KEPT)
    warmup_epochs: int = field(default=1, metadata=KEPT)
    min_lr: float = field(default=1e-5, metadata=KEPT)
    smoothing: float = field(default=0.1, metadata=KEPT)
    mixup: float = field(default=0.0, metadata=KEPT)
    cutmix: float = field(default=0.0, metadata=KEPT)
    scale: Tuple[float, float] = field(default=(0.5, 1.0), metadata=KEPT)
    ratio: Tuple[float, float] = field(default=(0.75, 4.0 / 3.0), metadata=KEPT)
    hflip: float = field(default=0.0, metadata=KEPT)
    no_aug: bool = field(default=False, metadata=KEPT)
    model_ema: bool = field(default=False, metadata=KEPT)
    model_ema_decay: float = field(default=0.998, metadata=KEPT)
    sync_bn: bool = field(default=False, metadata=KEPT)
    channels_last: bool = field(default=False, metadata=KEPT)
    amp: bool = field(default=True, metadata=KEPT)
    seed: int = field(default=42, metadata=KEPT)
    workers: int = field(default=2, metadata=FREE)
    device: Optional[str] = field(default=None, metadata=FREE)
    resume: Optional[str] = field(default=None, metadata=FREE)
    stop_after: Optional[int] = field(default=None, metadata=FREE)
    push_to_hub: Optional[str] = field(default=None, metadata=FREE)
    sign_key: Optional[str] = field(default=None, metadata=FREE)
    progress: bool = field(default=True, metadata=FREE)


def resume_fields() -> Tuple[str, ...]:
    """Names of the :class:`TrainConfig` fields a resumed run must share with the run it continues.

    Returns:
        The fields whose metadata has ``"resume": True``, in declaration order.
    """
    return tuple(f.name for f in fields(TrainConfig) if f.metadata.get("resume"))


def check_config(config: TrainConfig) -> None:
    """Check every setting that can be checked without the data.

    Args:
        config: The settings.

    Raises:
        ValueError: naming the first setting out of range, its expected and its given value.
    """
    def bad(name: str, expected: str) -> InvalidArgument:
        return InvalidArgument(f"{name} must be {expected}, got {getattr(config, name)!r}")

    for name in ("epochs", "batch_size"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise bad(name, "a positive integer")
    for name in ("lr", "weight_decay", "min_lr", "mixup", "cutmix"):
        if getattr(config, name) < 0:
            raise bad(name, ">= 0")
    for name in ("smoothing", "hflip"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise bad(name, "in [0, 1)")
    if not 0.0 < config.model_ema_decay < 1.0:
        raise bad("model_ema_decay", "in (0, 1)")
    if config.num_classes is not None and config.num_classes < 1:
        raise bad("num_classes", ">= 1 or None")
    if config.stop_after is not None and not 1 <= config.stop_after <= config.epochs:
        raise bad("stop_after", f"in [1, epochs={config.epochs}]")
    if config.workers < 0:
        raise bad("workers", ">= 0")
    if config.sign_key is not None and not config.push_to_hub:
        raise bad("sign_key", "None without push_to_hub (it signs that push)")
    if config.output is None and config.resume is None:
        raise InvalidArgument("output must name a folder (or resume a run), got None")
