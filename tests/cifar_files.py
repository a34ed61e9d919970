"""Tiny CIFAR-10/100 datasets in the real on-disk format (pickled batches + meta), for torchvision to read.

Each class gets its own colour plus noise, so a model can learn something from a few images.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

TRAIN, TEST = 64, 32


def images_and_labels(n: int, num_classes: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """uint8 rows of 3072 values (R, G, B planes of 32×32, CIFAR's layout) and their labels."""
    rng = np.random.default_rng(seed)
    labels = [i % num_classes for i in range(n)]
    colours = np.random.default_rng(1234).integers(40, 216, size=(num_classes, 3, 1, 1))
    pixels = colours[labels] + rng.normal(0, 25, size=(n, 3, 32, 32))
    return np.clip(pixels, 0, 255).astype(np.uint8).reshape(n, 3072), labels


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar10(root: Path, train: int = TRAIN, test: int = TEST) -> Path:
    """``root/cifar-10-batches-py/`` with data_batch_1..5, test_batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    data, labels = images_and_labels(train, 10, seed=0)
    for i, part in enumerate(np.array_split(np.arange(train), 5), 1):
        _dump(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of 5", "labels": [labels[j] for j in part], "data": data[part],
            "filenames": [f"train_{j}.png" for j in part],
        })  # fmt: skip
    data, labels = images_and_labels(test, 10, seed=1)
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": labels, "data": data,
                                  "filenames": [f"test_{j}.png" for j in range(test)]})  # fmt: skip
    _dump(folder / "batches.meta", {"label_names": [f"class{c}" for c in range(10)], "num_cases_per_batch": train // 5,
                                    "num_vis": 3072})  # fmt: skip
    return root


def write_cifar100(root: Path, train: int = TRAIN, test: int = TEST) -> Path:
    """``root/cifar-100-python/`` with train, test and meta (fine and coarse labels)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", train, 2), ("test", test, 3)):
        data, labels = images_and_labels(n, 100, seed)
        _dump(folder / name, {"batch_label": name, "fine_labels": labels, "coarse_labels": [l // 5 for l in labels],
                              "data": data, "filenames": [f"{name}_{j}.png" for j in range(n)]})  # fmt: skip
    _dump(folder / "meta", {"fine_label_names": [f"fine{c}" for c in range(100)],
                            "coarse_label_names": [f"coarse{c}" for c in range(20)]})  # fmt: skip
    return root
