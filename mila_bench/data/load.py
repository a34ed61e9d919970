"""Datasets as tensors in memory: the one entry point, ``load_dataset``, by configured name.

torchvision does the parsing; each loader (:mod:`fashion_mnist`, :mod:`cifar`) keeps its
decoded uint8 tensors, cached next to the data (:mod:`data_files`), and returns them as a
:class:`~mila_bench.data.splits.Dataset`, which the loop batches directly, instead of running a PIL
``ToTensor`` transform per sample through a ``DataLoader`` as the original demo did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mila_bench.data.cifar import load_cifar
from mila_bench.errors import UsageError, unknown_name
from mila_bench.data.fashion_mnist import load_fashion_mnist
from mila_bench.data.splits import Dataset

LOADERS: dict[str, Callable[[Mapping], Dataset]] = {
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar,
    "cifar100": load_cifar,
}


def load_dataset(cfg: Mapping) -> Dataset:
    """Load the dataset named by ``cfg['name']`` and apply ``train_subset``."""
    name = cfg["name"]
    if name not in LOADERS:
        raise unknown_name("dataset", name, LOADERS)
    dataset = LOADERS[name](cfg)
    subset = cfg["train_subset"]
    if subset is not None:
        if subset > len(dataset.train):
            raise UsageError(
                f"dataset.train_subset={subset} is larger than the {len(dataset.train)} training images; "
                f"allowed: 1..{len(dataset.train)} or null"
            )
        dataset.train = dataset.train.head(subset)
        dataset.info["train_subset"] = subset
    return dataset
