"""Small ImageFolder trees cut from ``se-zoo data digits`` for the training tests."""
import shutil
from pathlib import Path

from se_zoo.training.data import export_digits


def digits_tree(root: Path) -> Path:
    """The full digits tree (1,437 train / 360 val images) under ``root/digits``."""
    export_digits(root / "digits")
    return root / "digits"


def tiny_tree(full: Path, root: Path, classes=("0", "1", "2", "3"), n_train: int = 32, n_val: int = 10) -> Path:
    """The first ``n_train`` / ``n_val`` images of each of ``classes`` of ``full``, copied under ``root``."""
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for src in sorted((full / split / c).glob("*.png"))[:n]:
                shutil.copy(src, root / split / c / src.name)
    return root
