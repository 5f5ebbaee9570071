"""``se-zoo train``: fine-tune or train a timm model, in one process or many under ``torchrun``.

Assembled from timm's own parts: :func:`timm.data.create_dataset` /
``create_transform``, :func:`timm.optim.create_optimizer_v2`,
:func:`timm.scheduler.create_scheduler_v2` (stepped per update), label smoothing,
Mixup / CutMix and :class:`timm.utils.ModelEmaV3`; autocast on CUDA.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` (NCCL on
CUDA, Gloo on CPU); ``batch_size`` is the *global* batch, split evenly over the
processes, and a ``DistributedSampler`` seeded by ``seed`` and the epoch deals
the same global batches as a single process would. Metrics are summed over
all processes; only rank 0 logs, writes files and pushes.

The output folder holds

* the best model so far (by validation top-1) as a ``save_pretrained`` folder:
  ``model.safetensors``, ``config.json``, ``README.md``;
* ``metrics.jsonl``: one JSON line per epoch;
* ``train_state/``: the state after the last finished epoch (model, optimizer,
  scheduler, EMA, AMP scaler, epoch, best score, history and every process's
  RNG states) as safetensors + JSON, which ``resume`` continues exactly.
"""
import argparse
import ast
import json
import logging
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["TrainConfig", "TrainResult", "train", "main"]

_logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"

# Fields a resumed run must share with the run it continues (paths, worker
# counts and the like may change).
_RUN_FIELDS = (
    "model", "dataset", "classes", "num_classes", "model_kwargs", "img_size", "crop_pct", "epochs",
    "batch_size", "opt", "lr", "weight_decay", "sched", "warmup_epochs", "min_lr", "smoothing", "mixup",
    "cutmix", "scale", "ratio", "hflip", "no_aug", "model_ema", "model_ema_decay", "sync_bn", "channels_last",
    "amp", "seed",
)


@dataclass
class TrainConfig:
    """Everything one training run needs; the ``se-zoo train`` flags map one to one.

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
        progress: Show a progress bar per epoch (rank 0).
    """

    model: str
    data: str
    output: Optional[str] = None
    dataset: str = ""
    train_split: str = "train"
    val_split: str = "val"
    classes: Optional[List[str]] = None
    num_classes: Optional[int] = None
    pretrained: bool = False
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    img_size: Optional[int] = None
    crop_pct: Optional[float] = None
    epochs: int = 8
    batch_size: int = 64
    opt: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.05
    sched: str = "cosine"
    warmup_epochs: int = 1
    min_lr: float = 1e-5
    smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    scale: Tuple[float, float] = (0.5, 1.0)
    ratio: Tuple[float, float] = (0.75, 4.0 / 3.0)
    hflip: float = 0.0
    no_aug: bool = False
    model_ema: bool = False
    model_ema_decay: float = 0.998
    sync_bn: bool = False
    channels_last: bool = False
    amp: bool = True
    seed: int = 42
    workers: int = 2
    device: Optional[str] = None
    resume: Optional[str] = None
    stop_after: Optional[int] = None
    push_to_hub: Optional[str] = None
    progress: bool = True


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        output: The output folder.
        best_top1: Best validation top-1 (percent) over all epochs so far.
        best_epoch: Epoch (1-based) of ``best_top1``.
        epochs_done: Epochs finished, including those before a resume.
        history: The per-epoch records of ``metrics.jsonl``.
        push: The Hub push result (rank 0, with ``push_to_hub``), else None.
    """

    output: Path
    best_top1: float
    best_epoch: int
    epochs_done: int
    history: List[Dict[str, Any]]
    push: Any = None


def _check_config(config: TrainConfig) -> None:
    for name in ("epochs", "batch_size"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(config, name)!r}")
    for name in ("lr", "weight_decay", "min_lr", "mixup", "cutmix"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)!r}")
    for name in ("smoothing", "hflip"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(config, name)!r}")
    if not 0.0 < config.model_ema_decay < 1.0:
        raise ValueError(f"model_ema_decay must be in (0, 1), got {config.model_ema_decay!r}")
    if config.num_classes is not None and config.num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 or None, got {config.num_classes!r}")
    if config.stop_after is not None and not 1 <= config.stop_after <= config.epochs:
        raise ValueError(f"stop_after must be in [1, epochs={config.epochs}], got {config.stop_after!r}")
    if config.workers < 0:
        raise ValueError(f"workers must be >= 0, got {config.workers!r}")
    if config.output is None and config.resume is None:
        raise ValueError("output must name a folder (or resume a run), got None")


def _seed_all(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state(env) -> Dict[str, Any]:
    """Every process's torch / numpy / Python RNG state, stacked in rank order."""
    import numpy as np
    import torch

    from .distributed import all_gather_stack

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


def _set_rng_state(state: Dict[str, Any], env) -> None:
    import numpy as np
    import torch

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


def _describe(model, data_config: Dict[str, Any], label_names: Optional[List[str]]) -> None:
    """Make ``model.pretrained_cfg`` describe the weights being trained (input, preprocessing, labels)."""
    dropped = ("label_names", "label_descriptions", "label_offset", "test_input_size", "test_crop_pct",
               "test_pool_size")
    cfg = {k: v for k, v in model.pretrained_cfg.items() if k not in dropped}
    if tuple(cfg.get("input_size") or ()) != tuple(data_config["input_size"]):
        cfg["pool_size"] = None  # the source's feature-map size no longer applies
    cfg.update({k: data_config[k] for k in ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")})
    cfg["num_classes"] = model.num_classes
    if label_names and len(label_names) == model.num_classes:
        cfg["label_names"] = list(label_names)
    model.pretrained_cfg = cfg


def _devices(env) -> str:
    """``"N × cpu"`` or ``"N × cuda (GPU name)"``: the processes and what they ran on."""
    import torch

    name = f" ({torch.cuda.get_device_name(env.device)})" if env.device.type == "cuda" else ""
    return f"{env.world_size} × {env.device.type}{name}"


def _precision(amp_dtype, scaler) -> str:
    if amp_dtype is None:
        return "float32"
    return f"{str(amp_dtype).replace('torch.', '')} autocast" + (" with loss scaling" if scaler is not None else "")


def _train_epoch(model, loader, optimizer, scheduler, loss_fn, mixup_fn, ema, scaler, amp_dtype,
                 env, num_updates: int, bar_desc: str, progress: bool) -> Tuple[Dict[str, float], int]:
    import torch
    from tqdm import tqdm

    from .distributed import all_reduce_sum

    model.train()
    unwrapped = getattr(model, "module", model)
    sums = torch.zeros(2, dtype=torch.float64, device=env.device)  # loss * n, n
    start = time.perf_counter()
    with tqdm(loader, desc=bar_desc, unit="batch", disable=not (progress and env.is_primary),
              dynamic_ncols=True) as bar:
        for images, targets in bar:
            images = images.to(env.device, non_blocking=True)
            targets = targets.to(env.device, non_blocking=True)
            if mixup_fn is not None:
                images, targets = mixup_fn(images, targets)
            with torch.autocast(env.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            num_updates += 1
            if scheduler is not None:
                scheduler.step_update(num_updates=num_updates)
            if ema is not None:
                ema.update(unwrapped, step=num_updates)
            sums += torch.stack([loss.detach().double() * len(images),
                                 torch.tensor(len(images), dtype=torch.float64, device=env.device)])
            if not bar.disable:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    loss_sum, count = all_reduce_sum(sums, env).tolist()
    elapsed = time.perf_counter() - start
    return {"train_loss": loss_sum / count, "lr": optimizer.param_groups[0]["lr"],
            "images_per_s": count / elapsed, "train_count": int(count)}, num_updates


def _output_folder(config: TrainConfig) -> Tuple[Path, Optional[Path]]:
    """The run's output folder, and its training state when resuming."""
    from .train_state import STATE_DIRNAME, find_train_state

    if config.resume is not None:
        state_dir = find_train_state(config.resume)
        output = state_dir.parent
        if config.output is not None and Path(config.output).resolve() != output.resolve():
            raise ValueError(f"output must be the resumed run's folder {str(output)!r} (or None), "
                             f"got {config.output!r}")
        return output, state_dir
    output = Path(config.output)
    if (output / STATE_DIRNAME).exists() or (output / METRICS_NAME).exists():
        raise FileExistsError(f"{output} already holds a training run; resume it with resume={str(output)!r} "
                              "or choose another output folder")
    return output, None


def _loaders(config: TrainConfig, env, train_ds, val_ds):
    """The training sampler and loader (global batch split over processes) and the sharded validation loader."""
    from torch.utils.data import DataLoader, DistributedSampler

    from .data import shard

    per_rank = config.batch_size // env.world_size
    # the same global permutation on every process count: process r takes positions r, r + N, ...
    sampler = DistributedSampler(train_ds, num_replicas=env.world_size, rank=env.rank, shuffle=True,
                                 seed=config.seed, drop_last=True)
    pin = env.device.type == "cuda"
    train_loader = DataLoader(train_ds, batch_size=per_rank, sampler=sampler, num_workers=config.workers,
                              drop_last=True, pin_memory=pin)
    val_loader = DataLoader(shard(val_ds, env.rank, env.world_size), batch_size=per_rank,
                            num_workers=config.workers, pin_memory=pin)
    if len(train_loader) == 0:
        raise ValueError(f"batch_size must not exceed the {len(train_ds)} training images, got {config.batch_size}")
    return sampler, train_loader, val_loader


def _loss(config: TrainConfig, num_classes: int):
    """The batch mixing function (or None) and the training loss."""
    import torch
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    if config.mixup > 0 or config.cutmix > 0:
        mixup_fn = Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix,
                         label_smoothing=config.smoothing, num_classes=num_classes)
        return mixup_fn, SoftTargetCrossEntropy()
    return None, LabelSmoothingCrossEntropy(config.smoothing) if config.smoothing else torch.nn.CrossEntropyLoss()


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.model`` on ``config.data``; see :class:`TrainConfig` for every option.

    Run it in one process, or in each process started by ``torchrun`` (the
    process group is joined from torchrun's environment variables).

    Args:
        config: The run's settings.

    Returns:
        A :class:`TrainResult` (on every process; ``push`` on rank 0 only).

    Raises:
        ValueError: if a setting is out of range, the data and settings disagree
            (class counts, batch size vs. data size or process count), or a
            resumed run's settings differ from the saved ones.
        FileExistsError: if ``output`` already holds a run and ``resume`` is not set.
        FileNotFoundError: if the data splits or the resumed state are missing.
    """
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2
    from timm.utils import ModelEmaV3

    from . import distributed
    from .data import class_names, create_split
    from .hub import save_pretrained
    from .hub.errors import model_download_failures
    from .run_record import run_record
    from .train_state import STATE_DIRNAME, load_train_state, save_train_state
    from .validate import evaluate

    started = time.perf_counter()
    _check_config(config)
    config = replace(config, scale=tuple(config.scale), ratio=tuple(config.ratio),
                     classes=None if config.classes is None else [str(c) for c in config.classes])
    output, state_dir = _output_folder(config)
    env = distributed.setup(config.device)
    try:
        if config.batch_size % env.world_size:
            raise ValueError(f"batch_size (global) must be divisible by the {env.world_size} processes, "
                             f"got {config.batch_size}")
        if config.sync_bn and env.distributed and env.device.type != "cuda":
            raise ValueError("sync_bn needs CUDA (torch's SyncBatchNorm runs on GPUs only), got device cpu")
        state = None
        if state_dir is not None:
            state = load_train_state(state_dir)
            saved = state["config"]
            differing = [k for k in _RUN_FIELDS if saved.get(k) != asdict(config)[k]]
            if differing:
                raise ValueError("a resumed run must keep its settings; these differ from the saved run: " + ", ".join(
                    f"{k} (saved {saved.get(k)!r}, given {asdict(config)[k]!r})" for k in differing))
        _seed_all(config.seed + env.rank)

        train_ds = create_split(config.data, config.train_split, config.dataset, config.classes)
        val_ds = create_split(config.data, config.val_split, config.dataset, config.classes)
        names = class_names(train_ds)
        if names is not None and class_names(val_ds) != names:
            raise ValueError(f"the {config.val_split!r} split must have the classes of {config.train_split!r} "
                             f"({names}), got {class_names(val_ds)}; pass classes to pick common ones")
        num_classes = config.num_classes or (len(names) if names else None)
        if num_classes is None:
            raise ValueError(f"num_classes must be given: dataset {config.dataset!r} does not name its classes")

        with model_download_failures(config.model, config.pretrained and state is None):
            model = timm.create_model(config.model, pretrained=config.pretrained and state is None,
                                      num_classes=num_classes, **config.model_kwargs)
        data_config = resolve_data_config({"img_size": config.img_size, "crop_pct": config.crop_pct}, model=model)
        _describe(model, data_config, names)
        dataset_name = config.dataset or Path(config.data).resolve().name
        train_ds.transform = create_transform(
            data_config["input_size"], is_training=True, no_aug=config.no_aug, scale=config.scale,
            ratio=config.ratio, hflip=config.hflip, color_jitter=None,
            interpolation=data_config["interpolation"], mean=data_config["mean"], std=data_config["std"],
            crop_pct=data_config["crop_pct"])
        val_ds.transform = create_transform(**data_config)

        sampler, train_loader, val_loader = _loaders(config, env, train_ds, val_ds)

        model.to(env.device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)  # convolutions then return channels-last outputs
        if config.sync_bn and env.distributed:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        optimizer = create_optimizer_v2(model, opt=config.opt, lr=config.lr, weight_decay=config.weight_decay)
        scheduler, _ = create_scheduler_v2(
            optimizer, sched=config.sched, num_epochs=config.epochs, warmup_epochs=config.warmup_epochs,
            min_lr=config.min_lr, step_on_epochs=False, updates_per_epoch=len(train_loader))
        ema = ModelEmaV3(model, decay=config.model_ema_decay, use_warmup=True) if config.model_ema else None
        amp_dtype, scaler = None, None
        if config.amp and env.device.type == "cuda":
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        mixup_fn, loss_fn = _loss(config, num_classes)

        start_epoch, best_top1, best_epoch, history, wall_before = 0, -math.inf, 0, [], 0.0
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            for part, name in ((scheduler, "scheduler"), (ema and ema.module, "ema"), (scaler, "scaler")):
                if part is not None and state[name] is not None:
                    part.load_state_dict(state[name])
            start_epoch, best_top1, best_epoch = state["epoch"], state["best_top1"], state["best_epoch"]
            history = list(state["history"])
            wall_before = (state.get("run") or {}).get("wall_time_s", 0.0)
            _set_rng_state(state["rng"], env)  # last: nothing may draw random numbers after this
        if env.is_primary:
            output.mkdir(parents=True, exist_ok=True)
            (output / METRICS_NAME).write_text("".join(json.dumps(r) + "\n" for r in history))

        unwrapped = model
        if env.distributed:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
        end_epoch = config.stop_after or config.epochs
        num_updates = start_epoch * len(train_loader)
        for epoch in range(start_epoch, end_epoch):
            sampler.set_epoch(epoch)
            record: Dict[str, Any] = {"epoch": epoch + 1}
            train_metrics, num_updates = _train_epoch(
                model, train_loader, optimizer, scheduler, loss_fn, mixup_fn, ema, scaler, amp_dtype, env,
                num_updates, f"epoch {epoch + 1}/{config.epochs}", config.progress)
            val = evaluate(unwrapped, val_loader, env, amp_dtype)
            record.update(train_metrics, val_loss=val["loss"], top1=val["top1"], top5=val["top5"],
                          val_count=val["count"])
            selected = unwrapped
            if ema is not None:
                ema_val = evaluate(ema.module, val_loader, env, amp_dtype)
                record.update(ema_val_loss=ema_val["loss"], ema_top1=ema_val["top1"], ema_top5=ema_val["top5"])
                selected = ema.module
            history.append(record)
            score = record["ema_top1" if ema is not None else "top1"]
            improved = score > best_top1
            if improved:
                best_top1, best_epoch = score, epoch + 1
            rng = _rng_state(env)  # every process takes part in the gather
            if env.is_primary:
                with open(output / METRICS_NAME, "a") as f:
                    f.write(json.dumps(record) + "\n")
                run = run_record(
                    config, dataset_name=dataset_name, classes=names, train_count=record["train_count"],
                    val_count=record["val_count"], devices=_devices(env), precision=_precision(amp_dtype, scaler),
                    wall_time_s=wall_before + time.perf_counter() - started, epochs_done=epoch + 1,
                    best_epoch=best_epoch)
                if improved:
                    save_pretrained(selected, output, metrics={"top1": score, "top5": record[
                        "ema_top5" if ema is not None else "top5"]}, eval_dataset=dataset_name, training=run)
                save_train_state({
                    "config": asdict(config), "run": run, "epoch": epoch + 1, "best_top1": best_top1,
                    "best_epoch": best_epoch,
                    "history": history, "model": unwrapped.state_dict(), "optimizer": optimizer.state_dict(),
                    **{name: part.state_dict() if part is not None else None
                       for part, name in ((scheduler, "scheduler"), (ema and ema.module, "ema"), (scaler, "scaler"))},
                    "rng": rng,
                }, output / STATE_DIRNAME)
                _logger.info("epoch %d/%d: train_loss %.4f  val_loss %.4f  top-1 %.2f%%  top-5 %.2f%%  "
                             "lr %.2e  %.0f img/s%s", epoch + 1, config.epochs, record["train_loss"],
                             record["val_loss"], record["top1"], record["top5"], record["lr"],
                             record["images_per_s"], f"  ema top-1 {record['ema_top1']:.2f}%" if ema else "")
            distributed.barrier(env)

        push = None
        if config.push_to_hub and env.is_primary and end_epoch == config.epochs:
            from .hub import push_to_hub

            push = push_to_hub(str(output), config.push_to_hub)
        distributed.barrier(env)
        return TrainResult(output=output, best_top1=best_top1, best_epoch=best_epoch,
                           epochs_done=end_epoch, history=history, push=push)
    finally:
        distributed.teardown(env)


def _kwarg(text: str) -> Tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``se-zoo train`` arguments to ``parser`` (defaults come from :class:`TrainConfig`)."""
    from dataclasses import MISSING, fields

    add = parser.add_argument
    add("--model", required=True, help="model name, name.tag, hf-hub:ID or local-dir:DIR")
    add("--data", required=True, help="dataset root: DIR/train/<class>/<image> and DIR/val/<class>/<image>")
    add("--output", help="output folder: best model, metrics.jsonl, train_state/ (required unless --resume)")
    add("--dataset", help="timm dataset name, e.g. torch/cifar10 (default: ImageFolder tree)")
    add("--train-split", help="training split (default: %(default)s)")
    add("--val-split", help="validation split (default: %(default)s)")
    add("--classes", type=lambda s: s.split(","), help="comma-separated class folders to use, in label order")
    add("--num-classes", type=int, help="classifier outputs (default: the number of classes in the data)")
    add("--pretrained", action="store_true", help="start from the model's pretrained weights")
    add("--model-kwargs", nargs="*", type=_kwarg, metavar="KEY=VALUE",
        help="extra timm.create_model arguments, e.g. drop_path_rate=0.1")
    add("--img-size", type=int, help="input size (default: the model's)")
    add("--crop-pct", type=float, help="validation center-crop fraction (default: the model's)")
    add("--epochs", type=int, help="schedule length in epochs (default: %(default)s)")
    add("--batch-size", type=int, help="GLOBAL batch size, split over torchrun processes (default: %(default)s)")
    add("--opt", help="timm optimizer (default: %(default)s)")
    add("--lr", type=float, help="peak learning rate (default: %(default)s)")
    add("--weight-decay", type=float, help="weight decay (default: %(default)s)")
    add("--sched", help="timm LR scheduler, stepped per update (default: %(default)s)")
    add("--warmup-epochs", type=int, help="linear warm-up epochs (default: %(default)s)")
    add("--min-lr", type=float, help="final learning rate (default: %(default)s)")
    add("--smoothing", type=float, help="label smoothing (default: %(default)s)")
    add("--mixup", type=float, help="mixup alpha, 0 = off (default: %(default)s)")
    add("--cutmix", type=float, help="cutmix alpha, 0 = off (default: %(default)s)")
    add("--scale", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="random-resized-crop area range (default: %(default)s)")
    add("--ratio", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="random-resized-crop aspect range (default: %(default)s)")
    add("--hflip", type=float, help="horizontal-flip probability (default: %(default)s)")
    add("--no-aug", action="store_true", help="no random augmentation")
    add("--model-ema", action="store_true", help="keep, validate and save an EMA of the weights")
    add("--model-ema-decay", type=float, help="EMA decay (default: %(default)s)")
    add("--sync-bn", action="store_true", help="SyncBatchNorm under torchrun (CUDA only)")
    add("--channels-last", action="store_true", help="channels-last memory format")
    add("--no-amp", dest="amp", action="store_false", help="no autocast on CUDA")
    add("--seed", type=int, help="random seed (default: %(default)s)")
    add("--workers", type=int, help="data-loading workers per process (default: %(default)s)")
    add("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    add("--resume", metavar="DIR", help="continue the run in this output folder (same settings)")
    add("--stop-after", type=int, metavar="EPOCHS", help="end after this many epochs; continue with --resume")
    add("--push-to-hub", metavar="REPO", help="push the best model to this Hub repository when training ends")
    add("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.set_defaults(**{f.name: (f.default if f.default is not MISSING else f.default_factory())
                           for f in fields(TrainConfig)
                           if f.default is not MISSING or f.default_factory is not MISSING})


def run(args: argparse.Namespace) -> int:
    """Train with the parsed ``args``; returns the exit status."""
    import os
    from dataclasses import fields

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    values["model_kwargs"] = dict(values["model_kwargs"] or {})
    values["scale"], values["ratio"] = tuple(values["scale"]), tuple(values["ratio"])
    values["progress"] = values["progress"] and not getattr(args, "quiet_logs", False)  # se-zoo -q
    primary = int(os.environ.get("RANK", "0") or 0) == 0
    result = train(TrainConfig(**values))
    if primary:
        print(f"best top-1 {result.best_top1:.2f}% at epoch {result.best_epoch}; model in {result.output}")
        if result.push is not None:
            print(f"pushed to {getattr(result.push, 'commit_url', args.push_to_hub)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``se-zoo train`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from .cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
