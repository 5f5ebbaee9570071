"""Loss, top-1 and top-5 accuracy of a model on a dataset split.

Preprocessing comes from the model's pretrained config through timm's
``resolve_data_config`` / ``create_transform``, as in timm's own validation
script. Under ``torchrun`` each process evaluates a disjoint shard and the sums
are reduced, so every sample counts exactly once.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

__all__ = ["evaluate", "validate"]


def evaluate(model, loader, env=None, amp_dtype=None) -> Dict[str, float]:
    """Cross-entropy loss and top-1 / top-k accuracy of ``model`` over ``loader``.

    Args:
        model: A classifier (put in eval mode here).
        loader: Yields ``(images, targets)`` batches.
        env: The process's :class:`~se_zoo.training.distributed.DistEnv`; sums are
            reduced over all processes. ``None``: one CPU process.
        amp_dtype: Autocast dtype on CUDA (``None``: full precision).

    Returns:
        ``loss`` (mean cross-entropy), ``top1`` and ``top5`` (percent; ``top5``
        counts the top ``min(5, num_classes)`` predictions) and ``count`` (images
        seen, over all processes).

    Raises:
        ValueError: if ``loader`` yields no images.
    """
    import torch
    import torch.nn.functional as F

    from .distributed import DistEnv, all_reduce_sum

    env = env or DistEnv()
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=env.device)  # loss, top-1, top-k, count
    with torch.no_grad():
        for images, targets in loader:
            images, targets = images.to(env.device), targets.to(env.device)
            with torch.autocast(env.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(images)
            logits = logits.float()
            hits = logits.topk(min(5, logits.shape[1]), dim=1).indices.eq(targets[:, None])
            sums += torch.stack([F.cross_entropy(logits, targets, reduction="sum").double(),
                                 hits[:, 0].sum().double(), hits.any(dim=1).sum().double(),
                                 torch.tensor(len(targets), dtype=torch.float64, device=env.device)])
    loss, top1, topk, count = all_reduce_sum(sums, env).tolist()
    if count == 0:
        raise ValueError("loader must yield at least one image, got none")
    return {"loss": loss / count, "top1": 100.0 * top1 / count, "top5": 100.0 * topk / count, "count": int(count)}


def _label_folders(model, data: str, split: str) -> Optional[List[str]]:
    """The model's ``label_names`` when each names a class folder of ``data/split``, else None."""
    label_names = model.pretrained_cfg.get("label_names")
    if not isinstance(label_names, (list, tuple)) or not label_names:
        return None
    folders = {p.name for p in (Path(data) / split).glob("*") if p.is_dir()}
    return list(label_names) if set(map(str, label_names)) <= folders else None


def validate(
        model: Union[str, Any],
        data: str,
        split: str = "val",
        dataset: str = "",
        classes: Optional[Sequence[str]] = None,
        batch_size: int = 256,
        img_size: Optional[int] = None,
        crop_pct: Optional[float] = None,
        workers: int = 2,
        device: Optional[str] = None,
) -> Dict[str, Any]:
    """Evaluate a model on one split of a dataset.

    Args:
        model: A model name (``name``, ``name.tag``, ``hf-hub:ID``,
            ``local-dir:DIR``; its pretrained weights are loaded) or a model.
        data: Dataset root (see :func:`se_zoo.training.data.create_split`).
        split: Split to evaluate.
        dataset: timm dataset name; ``""`` for an ImageFolder tree.
        classes: Class folders in label order. ``None``: the model's
            ``label_names`` when its config has them and each names a class
            folder of the split (so a model trained on some classes of a tree
            is scored on those), else every class folder.
        batch_size: Images per batch (per process under torchrun).
        img_size: Input size; ``None`` uses the model's pretrained config.
        crop_pct: Center-crop fraction; ``None`` uses the model's pretrained config.
        workers: Data-loading worker processes.
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when available).

    Returns:
        :func:`evaluate`'s metrics plus ``model``, ``split`` and ``input_size``.

    Raises:
        ValueError: if the number of classes in the data differs from the
            model's, or an argument is out of range.
        FileNotFoundError: if the split is missing.
    """
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    from . import distributed
    from .data import class_names, create_split, shard
    from ..errors import InvalidArgument

    if batch_size < 1:
        raise InvalidArgument(f"batch_size must be >= 1, got {batch_size!r}")
    env = distributed.setup(device)
    try:
        name = model if isinstance(model, str) else type(model).__name__
        if isinstance(model, str):
            from ..pretrained.download_errors import model_download_failures

            with model_download_failures(model, True):
                model = timm.create_model(model, pretrained=True)
        model.to(env.device)
        if classes is None and not dataset:
            classes = _label_folders(model, data, split)
        ds = create_split(data, split, dataset=dataset, classes=classes)
        names = class_names(ds)
        if names is not None and len(names) != model.num_classes:
            raise InvalidArgument(f"the model has {model.num_classes} classes but {data} split {split!r} has "
                                  f"{len(names)}; pass classes to pick {model.num_classes} of them")
        data_config = resolve_data_config({"img_size": img_size, "crop_pct": crop_pct}, model=model)
        ds.transform = create_transform(**data_config)
        loader = torch.utils.data.DataLoader(
            shard(ds, env.rank, env.world_size), batch_size=batch_size, shuffle=False,
            num_workers=workers, pin_memory=env.device.type == "cuda")
        amp_dtype = None
        if env.device.type == "cuda":
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        metrics = evaluate(model, loader, env, amp_dtype=amp_dtype)
        return {"model": name, "split": split, "input_size": list(data_config["input_size"]), **metrics}
    finally:
        distributed.teardown(env)

