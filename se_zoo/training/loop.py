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
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import InvalidArgument, OutputExists
from ..hub.save import METRICS_NAME
from .config import TrainConfig, check_config, resume_fields

__all__ = ["TrainConfig", "TrainResult", "train"]

_logger = logging.getLogger(__name__)


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


def _check_processes(config: TrainConfig, env) -> None:
    if config.batch_size % env.world_size:
        raise InvalidArgument(f"batch_size (global) must be divisible by the {env.world_size} processes, "
                              f"got {config.batch_size}")
    if config.sync_bn and env.distributed and env.device.type != "cuda":
        raise InvalidArgument("sync_bn needs CUDA (torch's SyncBatchNorm runs on GPUs only), got device cpu")


def _load_state(config: TrainConfig, state_dir: Optional[Path]) -> Optional[Dict[str, Any]]:
    """The saved training state to resume (None for a new run), checked against ``config``."""
    from .state import load_train_state

    if state_dir is None:
        return None
    state = load_train_state(state_dir)
    saved, given = state["config"], asdict(config)
    differing = [k for k in resume_fields() if saved.get(k) != given[k]]
    if differing:
        raise InvalidArgument("a resumed run must keep its settings; these differ from the saved run: " + ", ".join(
            f"{k} (saved {saved.get(k)!r}, given {given[k]!r})" for k in differing))
    return state


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


@dataclass
class _Run:
    """The parts of a training run that its steps share."""

    model: Any  # the model itself (never wrapped)
    net: Any  # what the training step calls: ``model``, or its DistributedDataParallel wrapper
    optimizer: Any
    scheduler: Any
    ema: Any
    scaler: Any
    amp_dtype: Any
    mixup_fn: Any
    loss_fn: Any
    sampler: Any
    train_loader: Any
    val_loader: Any
    dataset_name: str
    names: Optional[List[str]] = None  # class names, when the dataset has them
    started: float = 0.0  # time.perf_counter() at the start of this process's run
    wall_before: float = 0.0  # training wall time of the runs this one resumes
    start_epoch: int = 0
    best_top1: float = -math.inf
    best_epoch: int = 0
    history: List[Dict[str, Any]] = field(default_factory=list)
    num_updates: int = 0


def _datasets(config: TrainConfig):
    """The training and validation splits, their class names (or None) and the number of classes."""
    from .data import class_names, create_split

    train_ds = create_split(config.data, config.train_split, config.dataset, config.classes)
    val_ds = create_split(config.data, config.val_split, config.dataset, config.classes)
    names = class_names(train_ds)
    if names is not None and class_names(val_ds) != names:
        raise InvalidArgument(f"the {config.val_split!r} split must have the classes of {config.train_split!r} "
                              f"({names}), got {class_names(val_ds)}; pass classes to pick common ones")
    num_classes = config.num_classes or (len(names) if names else None)
    if num_classes is None:
        raise InvalidArgument(f"num_classes must be given: dataset {config.dataset!r} does not name its classes")
    return train_ds, val_ds, names, num_classes


def _model_and_transforms(config: TrainConfig, train_ds, val_ds, names, num_classes: int, resuming: bool):
    """Create the model (pretrained weights only for a new run) and set both splits' transforms."""
    import timm
    from timm.data import create_transform, resolve_data_config

    from ..pretrained.download_errors import model_download_failures

    with model_download_failures(config.model, config.pretrained and not resuming):
        model = timm.create_model(config.model, pretrained=config.pretrained and not resuming,
                                  num_classes=num_classes, **config.model_kwargs)
    data_config = resolve_data_config({"img_size": config.img_size, "crop_pct": config.crop_pct}, model=model)
    _describe(model, data_config, names)
    train_ds.transform = create_transform(
        data_config["input_size"], is_training=True, no_aug=config.no_aug, scale=config.scale,
        ratio=config.ratio, hflip=config.hflip, color_jitter=None,
        interpolation=data_config["interpolation"], mean=data_config["mean"], std=data_config["std"],
        crop_pct=data_config["crop_pct"])
    val_ds.transform = create_transform(**data_config)
    return model


def _build(config: TrainConfig, env, resuming: bool) -> _Run:
    """Step 1: data, model, loaders, optimizer, scheduler, EMA, AMP and loss, in that order (it fixes the RNG use)."""
    import torch
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2
    from timm.utils import ModelEmaV3

    train_ds, val_ds, names, num_classes = _datasets(config)
    model = _model_and_transforms(config, train_ds, val_ds, names, num_classes, resuming)
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
    return _Run(model=model, net=model, optimizer=optimizer, scheduler=scheduler, ema=ema, scaler=scaler,
                amp_dtype=amp_dtype, mixup_fn=mixup_fn, loss_fn=loss_fn, sampler=sampler,
                train_loader=train_loader, val_loader=val_loader,
                dataset_name=config.dataset or Path(config.data).resolve().name, names=names)


def _stateful(run: _Run) -> Tuple[Tuple[str, Any], ...]:
    """The optional parts whose ``state_dict`` a training state keeps (None where absent)."""
    return ("scheduler", run.scheduler), ("ema", run.ema and run.ema.module), ("scaler", run.scaler)


def _restore(run: _Run, state: Dict[str, Any], env) -> None:
    """Continue from a saved training state; the RNG streams are set last, after every random draw."""
    from .state import restore_rng

    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    for name, part in _stateful(run):
        if part is not None and state[name] is not None:
            part.load_state_dict(state[name])
    run.start_epoch, run.best_top1, run.best_epoch = state["epoch"], state["best_top1"], state["best_epoch"]
    run.history = list(state["history"])
    run.wall_before = (state.get("run") or {}).get("wall_time_s", 0.0)
    restore_rng(state["rng"], env)


def _loaders(config: TrainConfig, env, train_ds, val_ds):
    """Step 2: the training sampler and loader (global batch split over processes) and the sharded validation loader."""
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
        raise InvalidArgument(f"batch_size must not exceed the {len(train_ds)} training images, "
                              f"got {config.batch_size}")
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


def _train_epoch(run: _Run, env, bar_desc: str, progress: bool) -> Dict[str, float]:
    """Step 3: one pass over the training loader; returns the epoch's training metrics."""
    import torch
    from timm.utils import unwrap_model
    from tqdm import tqdm

    from .distributed import all_reduce_sum

    run.net.train()
    sums = torch.zeros(2, dtype=torch.float64, device=env.device)  # loss * n, n
    start = time.perf_counter()
    with tqdm(run.train_loader, desc=bar_desc, unit="batch", disable=not (progress and env.is_primary),
              dynamic_ncols=True) as bar:
        for images, targets in bar:
            images = images.to(env.device, non_blocking=True)
            targets = targets.to(env.device, non_blocking=True)
            if run.mixup_fn is not None:
                images, targets = run.mixup_fn(images, targets)
            with torch.autocast(env.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
                loss = run.loss_fn(run.net(images), targets)
            run.optimizer.zero_grad(set_to_none=True)
            if run.scaler is not None:
                run.scaler.scale(loss).backward()
                run.scaler.step(run.optimizer)
                run.scaler.update()
            else:
                loss.backward()
                run.optimizer.step()
            run.num_updates += 1
            if run.scheduler is not None:
                run.scheduler.step_update(num_updates=run.num_updates)
            if run.ema is not None:
                run.ema.update(unwrap_model(run.net), step=run.num_updates)
            sums += torch.stack([loss.detach().double() * len(images),
                                 torch.tensor(len(images), dtype=torch.float64, device=env.device)])
            if not bar.disable:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{run.optimizer.param_groups[0]['lr']:.2e}")
    loss_sum, count = all_reduce_sum(sums, env).tolist()
    elapsed = time.perf_counter() - start
    return {"train_loss": loss_sum / count, "lr": run.optimizer.param_groups[0]["lr"],
            "images_per_s": count / elapsed, "train_count": int(count)}


def _one_epoch(run: _Run, config: TrainConfig, env, epoch: int) -> Dict[str, Any]:
    """Train one epoch and validate (the EMA too); returns the epoch's ``metrics.jsonl`` record."""
    from .evaluation import evaluate

    run.sampler.set_epoch(epoch)
    record: Dict[str, Any] = {"epoch": epoch + 1}
    record.update(_train_epoch(run, env, f"epoch {epoch + 1}/{config.epochs}", config.progress))
    val = evaluate(run.model, run.val_loader, env, run.amp_dtype)
    record.update(val_loss=val["loss"], top1=val["top1"], top5=val["top5"], val_count=val["count"])
    if run.ema is not None:
        ema_val = evaluate(run.ema.module, run.val_loader, env, run.amp_dtype)
        record.update(ema_val_loss=ema_val["loss"], ema_top1=ema_val["top1"], ema_top5=ema_val["top5"])
    return record


def _end_of_epoch(run: _Run, config: TrainConfig, env, output: Path, record: Dict[str, Any]) -> None:
    """Step 4: record the epoch, save the model if it is the best so far, save the training state."""
    from . import distributed
    from ..hub import CardOptions, save_pretrained
    from ..hub.run_record import run_record
    from ..provenance import WeightsOrigin, set_weights_origin
    from .state import STATE_DIRNAME, capture_rng, save_train_state

    prefix = "ema_" if run.ema is not None else ""
    run.history.append(record)
    improved = record[prefix + "top1"] > run.best_top1
    if improved:
        run.best_top1, run.best_epoch = record[prefix + "top1"], record["epoch"]
    rng = capture_rng(env)  # every process takes part in the gather
    if env.is_primary:
        with open(output / METRICS_NAME, "a") as f:
            f.write(json.dumps(record) + "\n")
        details = run_record(
            config, dataset_name=run.dataset_name, classes=run.names, train_count=record["train_count"],
            val_count=record["val_count"], devices=_devices(env), precision=_precision(run.amp_dtype, run.scaler),
            wall_time_s=run.wall_before + time.perf_counter() - run.started, epochs_done=record["epoch"],
            best_epoch=run.best_epoch)
        if improved:
            selected = set_weights_origin(run.ema.module if run.ema is not None else run.model,
                                          WeightsOrigin("training", run=details))
            save_pretrained(selected, output, card=CardOptions(
                metrics={"top1": run.best_top1, "top5": record[prefix + "top5"]}, eval_dataset=run.dataset_name))
        save_train_state({
            "config": asdict(config), "run": details, "epoch": record["epoch"], "best_top1": run.best_top1,
            "best_epoch": run.best_epoch, "history": run.history, "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            **{name: part.state_dict() if part is not None else None for name, part in _stateful(run)},
            "rng": rng,
        }, output / STATE_DIRNAME)
        _logger.info("epoch %d/%d: train_loss %.4f  val_loss %.4f  top-1 %.2f%%  top-5 %.2f%%  "
                     "lr %.2e  %.0f img/s%s", record["epoch"], config.epochs, record["train_loss"],
                     record["val_loss"], record["top1"], record["top5"], record["lr"],
                     record["images_per_s"], f"  ema top-1 {record['ema_top1']:.2f}%" if run.ema else "")
    distributed.barrier(env)


def _devices(env) -> str:
    """``"N × cpu"`` or ``"N × cuda (GPU name)"``: the processes and what they ran on."""
    import torch

    name = f" ({torch.cuda.get_device_name(env.device)})" if env.device.type == "cuda" else ""
    return f"{env.world_size} × {env.device.type}{name}"


def _precision(amp_dtype, scaler) -> str:
    """How the run computed: float32, or the autocast dtype (and whether the loss was scaled)."""
    if amp_dtype is None:
        return "float32"
    return f"{str(amp_dtype).replace('torch.', '')} autocast" + (" with loss scaling" if scaler is not None else "")


def _output_folder(config: TrainConfig) -> Tuple[Path, Optional[Path]]:
    """The run's output folder, and its training state when resuming."""
    from .state import STATE_DIRNAME, find_train_state

    if config.resume is not None:
        state_dir = find_train_state(config.resume)
        output = state_dir.parent
        if config.output is not None and Path(config.output).resolve() != output.resolve():
            raise InvalidArgument(f"output must be the resumed run's folder {str(output)!r} (or None), "
                             f"got {config.output!r}")
        return output, state_dir
    output = Path(config.output)
    if (output / STATE_DIRNAME).exists() or (output / METRICS_NAME).exists():
        raise OutputExists(f"{output} already holds a training run; resume it with resume={str(output)!r} "
                              "or choose another output folder")
    return output, None


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.model`` on ``config.data``; see :class:`TrainConfig` for every option.

    Run it in one process, or in each process started by ``torchrun`` (the
    process group is joined from torchrun's environment variables). The steps:
    :func:`_build` (data, model, loaders, optimization), then per epoch
    :func:`_one_epoch` and :func:`_end_of_epoch`, then the push.

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
    import torch
    from timm.utils import random_seed

    from . import distributed

    started = time.perf_counter()
    check_config(config)
    config = replace(config, scale=tuple(config.scale), ratio=tuple(config.ratio),
                     classes=None if config.classes is None else [str(c) for c in config.classes])
    output, state_dir = _output_folder(config)
    env = distributed.setup(config.device)
    try:
        _check_processes(config, env)
        state = _load_state(config, state_dir)
        random_seed(config.seed, env.rank)
        run = _build(config, env, resuming=state is not None)
        run.started = started
        if state is not None:
            _restore(run, state, env)
        if env.is_primary:
            output.mkdir(parents=True, exist_ok=True)
            (output / METRICS_NAME).write_text("".join(json.dumps(r) + "\n" for r in run.history))
        if env.distributed:
            run.net = torch.nn.parallel.DistributedDataParallel(
                run.model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
        end_epoch = config.stop_after or config.epochs
        run.num_updates = run.start_epoch * len(run.train_loader)
        for epoch in range(run.start_epoch, end_epoch):
            _end_of_epoch(run, config, env, output, _one_epoch(run, config, env, epoch))
        push = _push(config, env, output, end_epoch)
        distributed.barrier(env)
        return TrainResult(output=output, best_top1=run.best_top1, best_epoch=run.best_epoch,
                           epochs_done=end_epoch, history=run.history, push=push)
    finally:
        distributed.teardown(env)


def _push(config: TrainConfig, env, output: Path, end_epoch: int):
    """Push the best model (rank 0, once the schedule is complete); the push result or None."""
    if not (config.push_to_hub and env.is_primary and end_epoch == config.epochs):
        return None
    from ..hub import push_to_hub

    return push_to_hub(str(output), config.push_to_hub, sign_key=config.sign_key)
