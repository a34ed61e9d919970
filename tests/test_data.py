"""Fashion-MNIST resolution, decoding, caching and batching, on the real files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from mila_bench.config import compose
from mila_bench.data.load import load_dataset
from mila_bench.data.cache import CACHE_NAME
from mila_bench.data.fashion_mnist import FASHION_MNIST_FILES
from mila_bench.data.splits import Split
from mila_bench.errors import UsageError


def dataset_cfg(*overrides: str):
    return compose(list(overrides)).dataset


def test_loads_real_fashion_mnist_as_tensors(fashion_root: Path) -> None:
    data = load_dataset(dataset_cfg(f"dataset.root={fashion_root}"))
    assert data.info["source"] == "root"  # the session fixture already put the files there
    assert data.train.images.shape == (60000, 1, 28, 28) and data.test.images.shape == (10000, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8  # native dtype in memory; batches are float
    assert 0 == data.train.images.min() and data.train.images.max() == 255
    images, labels = next(data.train.batches(64, torch.Generator().manual_seed(0)))
    assert images.dtype == torch.float32 and images.shape == (64, 1, 28, 28) and labels.dtype == torch.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert sorted(data.train.labels.unique().tolist()) == list(range(10))
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10  # Fashion-MNIST's balanced test split


def test_batches_equal_torchvision_to_tensor(fashion_root: Path) -> None:
    """The float batches made from our uint8 tensors are exactly what the original's per-sample ToTensor gives."""
    from torchvision import datasets, transforms

    data = load_dataset(dataset_cfg(f"dataset.root={fashion_root}"))
    reference = datasets.FashionMNIST(str(fashion_root), train=True, transform=transforms.ToTensor())
    batches = list(data.train.batches(1000))
    for i in (0, 1, 12345, 59999):
        image, label = reference[i]
        images, labels = batches[i // 1000]
        assert torch.equal(images[i % 1000], image)
        assert labels[i % 1000].item() == label
    shuffled = data.train.head(3000)
    order = torch.randperm(3000, generator=torch.Generator().manual_seed(4))
    [(images, labels)] = list(shuffled.batches(3000, torch.Generator().manual_seed(4)))
    assert torch.equal(images, torch.stack([reference[int(i)][0] for i in order]))
    assert torch.equal(shuffled.float_images(), torch.stack([reference[i][0] for i in range(3000)]))


@pytest.mark.slow
def test_system_copy_is_decompressed_into_an_empty_root(tmp_path: Path, fashion_root: Path) -> None:
    system = tmp_path / "system"
    system.mkdir()
    for name in FASHION_MNIST_FILES:  # a stand-in for /usr/share/datasets/fashion-mnist, from the real files
        with open(fashion_root / "FashionMNIST" / "raw" / name, "rb") as src, gzip.open(system / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    root = tmp_path / "root"
    data = load_dataset(dataset_cfg(f"dataset.root={root}", f"dataset.system_dir={system}", "dataset.download=false"))
    assert data.info["source"].startswith("system copy")
    assert all((root / "FashionMNIST" / "raw" / name).is_file() for name in FASHION_MNIST_FILES)
    assert (root / "FashionMNIST" / CACHE_NAME).is_file()
    again = load_dataset(dataset_cfg(f"dataset.root={root}", "dataset.system_dir=null", "dataset.download=false"))
    assert again.info["source"] == "root"
    assert torch.equal(again.test.images, data.test.images)


def test_debian_package_copy_is_found_by_default(tmp_path: Path) -> None:
    """With the default system_dir, an empty root is filled from Debian's dataset-fashion-mnist."""
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file():
        pytest.fail("Debian's dataset-fashion-mnist is not installed; .ci/run and 'make test' install it")
    data = load_dataset(dataset_cfg(f"dataset.root={tmp_path}", "dataset.download=false"))
    assert data.info["source"] == "system copy (/usr/share/datasets/fashion-mnist)"
    assert len(data.train) == 60000


def test_missing_data_offline_names_the_three_ways(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError) as err:
        load_dataset(dataset_cfg(f"dataset.root={tmp_path / 'root'}", f"dataset.system_dir={empty}", "dataset.download=false"))
    message = str(err.value)
    assert "dataset.root=DIR" in message and "dataset-fashion-mnist" in message and "download" in message
    assert "\n" not in message


def test_truncated_system_file_is_reported(tmp_path: Path) -> None:
    system = tmp_path / "system"
    system.mkdir()
    for name in FASHION_MNIST_FILES:
        shutil.copy(f"/usr/share/datasets/fashion-mnist/{name}.gz", system / f"{name}.gz")
    broken = system / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:5000])
    with pytest.raises(UsageError, match="train-images-idx3-ubyte.gz"):
        load_dataset(dataset_cfg(f"dataset.root={tmp_path / 'root'}", f"dataset.system_dir={system}", "dataset.download=false"))
    assert not (tmp_path / "root" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_train_subset_takes_the_first_images(fashion_root: Path) -> None:
    full = load_dataset(dataset_cfg(f"dataset.root={fashion_root}"))
    part = load_dataset(dataset_cfg(f"dataset.root={fashion_root}", "dataset.train_subset=2000"))
    assert len(part.train) == 2000 and len(part.test) == 10000
    assert torch.equal(part.train.images, full.train.images[:2000])
    with pytest.raises(UsageError, match="60000"):
        load_dataset(dataset_cfg(f"dataset.root={fashion_root}", "dataset.train_subset=60001"))


def test_shuffled_batches_cover_every_sample_once_and_repeat_with_the_seed() -> None:
    split = Split(torch.arange(130).float()[:, None], torch.arange(130))
    first = [y for _, y in split.batches(32, torch.Generator().manual_seed(7))]
    assert [len(y) for y in first] == [32, 32, 32, 32, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(130))
    again = torch.cat([y for _, y in split.batches(32, torch.Generator().manual_seed(7))])
    assert torch.equal(torch.cat(first), again)
    other = torch.cat([y for _, y in split.batches(32, torch.Generator().manual_seed(8))])
    assert not torch.equal(torch.cat(first), other)
    ordered = torch.cat([y for _, y in split.batches(50)])
    assert torch.equal(ordered, torch.arange(130))


def test_planned_sizes_are_what_the_loaders_give(fashion_root: Path, cifar_root: Path) -> None:
    """``SIZES`` (what estimates plan with, no data loaded) against the loaded datasets: Fashion-MNIST's real
    files in full; CIFAR's shape and classes from the test files (which hold fewer images than the real 50,000)."""
    from mila_bench.data.checks import DATASETS, SIZES

    assert set(SIZES) == set(DATASETS)
    fashion = load_dataset(compose([f"dataset.root={fashion_root}"]).dataset)
    assert SIZES["fashion_mnist"] == (len(fashion.train.images), fashion.input_shape, fashion.num_classes)
    for name in ("cifar10", "cifar100"):
        data = load_dataset(compose([f"dataset={name}", f"dataset.root={cifar_root}", "dataset.verify=false"]).dataset)
        assert SIZES[name][1:] == (data.input_shape, data.num_classes)
