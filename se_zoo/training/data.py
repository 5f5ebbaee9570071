"""Datasets for training and validation, and a small real dataset exported offline (``se-zoo data``).

Training data is anything timm's :func:`timm.data.create_dataset` reads; the
default is an ImageFolder tree ``DIR/train/<class>/*`` and ``DIR/val/<class>/*``.
``se-zoo data digits DIR`` writes such a tree from scikit-learn's bundled
handwritten digits (1,797 8×8 grayscale images, 10 classes; no download), with
a fixed stratified train/val split.
"""
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ..errors import InputNotFound, InvalidArgument, OutputExists

__all__ = ["export_digits", "create_split", "class_names", "shard"]


def export_digits(directory: Union[str, os.PathLike], val_fraction: float = 0.2, seed: int = 0) -> Dict[str, int]:
    """Write scikit-learn's digits as ``directory/{train,val}/<digit>/<index>.png``.

    Images are saved as they are: 8×8, 8-bit grayscale (the 0-16 intensities
    scaled to 0-255). ``<index>`` is the sample's index in
    :func:`sklearn.datasets.load_digits`. The split is stratified by class and
    fixed by ``seed``; the defaults give 1,437 training and 360 validation images.

    Args:
        directory: Root of the tree to write.
        val_fraction: Share of each class put in ``val/``, in (0, 1).
        seed: Seed of the split.

    Returns:
        Image counts: ``{"train": n_train, "val": n_val}``.

    Raises:
        ValueError: if ``val_fraction`` is not in (0, 1).
        ModuleNotFoundError: if scikit-learn is not installed (``se-zoo[data]``).
        FileExistsError: if ``directory/train`` or ``directory/val`` already holds files.
    """
    if not 0.0 < val_fraction < 1.0:
        raise InvalidArgument(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    import numpy as np
    from PIL import Image

    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise ModuleNotFoundError("the digits come with scikit-learn: pip install 'se-zoo[data]'",
                                  name="sklearn") from exc

    directory = Path(directory)
    for split in ("train", "val"):
        if (directory / split).is_dir() and any((directory / split).iterdir()):
            raise OutputExists(f"{directory / split} already holds files; choose an empty directory")
    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    indices = np.arange(len(digits.target))
    train_idx, val_idx = train_test_split(
        indices, test_size=val_fraction, stratify=digits.target, random_state=seed)
    for split, split_idx in (("train", train_idx), ("val", val_idx)):
        for i in sorted(split_idx):
            folder = directory / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i], mode="L").save(folder / f"{i:04d}.png")
    return {"train": len(train_idx), "val": len(val_idx)}


def create_split(
        data: Union[str, os.PathLike],
        split: str,
        dataset: str = "",
        classes: Optional[Sequence[str]] = None,
):
    """One split of a dataset, through :func:`timm.data.create_dataset`.

    Args:
        data: Dataset root. For folder datasets (``dataset=""``) it must hold a
            ``split`` sub-folder with one folder per class.
        split: Split name (``"train"``, ``"val"``, ...).
        dataset: timm dataset name (``""`` for folders, ``"torch/cifar10"``,
            ``"hfds/..."``, ...).
        classes: Class folder names to keep, in label order (folder datasets
            only); ``None`` keeps every class, labelled in sorted order.

    Returns:
        The dataset (its ``transform`` is unset).

    Raises:
        FileNotFoundError: if a folder dataset lacks ``data/split``.
        ValueError: if ``classes`` is empty, repeats a name, names a folder that
            does not exist, or is given for a non-folder dataset.
    """
    from timm.data import create_dataset

    root = Path(data)
    class_map = None
    if not dataset:
        if not (root / split).is_dir():
            raise InputNotFound(
                f"data must be a folder with a {split!r} sub-folder (DIR/{split}/<class>/<image>), "
                f"got {str(root)!r}")
        if classes is not None:
            classes = [str(c) for c in classes]
            present = {p.name for p in (root / split).iterdir() if p.is_dir()}
            missing = [c for c in classes if c not in present]
            if not classes or len(set(classes)) != len(classes) or missing:
                raise InvalidArgument(f"classes must be distinct folder names of {root / split} "
                                 f"({', '.join(sorted(present))}), got {classes!r}")
            class_map = {name: i for i, name in enumerate(classes)}
    elif classes is not None:
        raise InvalidArgument(f"classes works with folder datasets only, got dataset={dataset!r}")
    return create_dataset(dataset, root=str(root), split=split, class_map=class_map,
                          is_training=split == "train")


def class_names(dataset) -> Optional[List[str]]:
    """The class names of ``dataset`` in label order, or None when it does not say."""
    reader = getattr(dataset, "reader", None)
    class_to_idx = getattr(reader, "class_to_idx", None) or getattr(dataset, "class_to_idx", None)
    if class_to_idx:
        return [name for name, _ in sorted(class_to_idx.items(), key=lambda kv: kv[1])]
    classes = getattr(dataset, "classes", None)
    return [str(c) for c in classes] if classes else None


def shard(dataset, rank: int, world_size: int):
    """Every ``world_size``-th sample from ``rank`` on: disjoint shards, no padding.

    Unlike ``DistributedSampler`` this never repeats a sample to even out the
    shards, so sums over all shards count every sample exactly once.
    """
    from torch.utils.data import Subset

    if world_size == 1:
        return dataset
    return Subset(dataset, range(rank, len(dataset), world_size))

