"""``se-zoo data digits``: the exported tree against scikit-learn's arrays; dataset helpers."""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from se_zoo.cli import main as cli_main
from se_zoo.training.data import class_names, create_split, export_digits, shard


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    assert cli_main(["data", "digits", str(root)]) == 0
    return root


def _files(root: Path, split: str):
    return sorted((root / split).glob("*/*.png"))


def test_digits_tree_matches_sklearn(digits_dir):
    from sklearn.datasets import load_digits

    digits = load_digits()
    train, val = _files(digits_dir, "train"), _files(digits_dir, "val")
    assert (len(train), len(val)) == (1437, 360)
    seen = [int(p.stem) for p in train + val]
    assert sorted(seen) == list(range(len(digits.target)))  # every sample exactly once
    for path in train[::97] + val[::31]:
        i = int(path.stem)
        assert int(path.parent.name) == digits.target[i]
        img = Image.open(path)
        assert (img.mode, img.size) == ("L", (8, 8))
        np.testing.assert_allclose(np.asarray(img, dtype=np.float64), digits.images[i] * 255 / 16, atol=0.5)


def test_digits_split_is_stratified_and_fixed(digits_dir, tmp_path):
    val_counts = Counter(p.parent.name for p in _files(digits_dir, "val"))
    all_counts = Counter(p.parent.name for p in _files(digits_dir, "train") + _files(digits_dir, "val"))
    for label, n in all_counts.items():
        assert abs(val_counts[label] - 0.2 * n) <= 1, label
    assert export_digits(tmp_path / "again") == {"train": 1437, "val": 360}
    assert [p.relative_to(tmp_path / "again") for p in _files(tmp_path / "again", "val")] == \
        [p.relative_to(digits_dir) for p in _files(digits_dir, "val")]


def test_digits_refuses_non_empty_target_and_bad_fraction(digits_dir, tmp_path):
    with pytest.raises(FileExistsError, match="already holds files"):
        export_digits(digits_dir)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        export_digits(tmp_path / "x", val_fraction=1.0)


def test_create_split_classes_and_errors(digits_dir):
    full = create_split(digits_dir, "val")
    assert class_names(full) == [str(d) for d in range(10)]
    subset = create_split(digits_dir, "val", classes=["7", "3"])
    assert class_names(subset) == ["7", "3"]  # label order is the order given
    labels = Counter(target for _, target in subset.reader.samples)
    assert set(labels) == {0, 1} and len(subset) == sum(1 for p in _files(digits_dir, "val")
                                                        if p.parent.name in ("3", "7"))
    with pytest.raises(FileNotFoundError, match="'test' sub-folder"):
        create_split(digits_dir, "test")
    with pytest.raises(ValueError, match="classes must be distinct folder names"):
        create_split(digits_dir, "val", classes=["3", "eleven"])
    with pytest.raises(ValueError, match="classes must be distinct folder names"):
        create_split(digits_dir, "val", classes=["3", "3"])


def test_shard_is_disjoint_and_unpadded():
    data = list(range(11))
    shards = [list(shard(data, r, 3)) for r in range(3)]
    assert sorted(sum(shards, [])) == data
    assert [len(s) for s in shards] == [4, 4, 3]
    assert shard(data, 0, 1) is data
