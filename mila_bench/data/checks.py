"""The ``dataset`` config group checked without torch (the loaders in ``data.load`` read it as composed)."""

from __future__ import annotations

from collections.abc import Mapping

from mila_bench.checks import flag, integer
from mila_bench.errors import unknown_name

#: The loaders of :data:`mila_bench.data.load.LOADERS`, by name.
DATASETS = ("fashion_mnist", "cifar10", "cifar100")
#: Augmented datasets: random shifts of up to ``shift`` pixels and flips (see ``augment.ShiftFlip``).
AUGMENTED = ("cifar10", "cifar100")
#: Each dataset's training images, image shape (C, H, W) and classes: what a run's cost is planned
#: from before any data is loaded (``training.estimate``); the loaders read them from the files.
SIZES: dict[str, tuple[int, tuple[int, int, int], int]] = {
    "fashion_mnist": (60_000, (1, 28, 28), 10),
    "cifar10": (50_000, (3, 32, 32), 10),
    "cifar100": (50_000, (3, 32, 32), 100),
}


def check(cfg: Mapping) -> None:
    """Name, ``train_subset`` null or >= 1, ``download`` (and CIFAR's ``verify``, ``flip``) true/false, ``shift`` >= 0."""
    name = cfg["name"]
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    if cfg["train_subset"] is not None:
        integer("dataset.train_subset", cfg["train_subset"], 1)
    flag("dataset.download", cfg["download"])
    if name in AUGMENTED:
        flag("dataset.verify", cfg["verify"])
        flag("dataset.flip", cfg["flip"])
        integer("dataset.shift", cfg["shift"], 0)
