"""Datasets as tensors in memory: resolve where the files are, decode once, cache, batch.

torchvision does the parsing; we keep its decoded uint8 tensors (cached next to the data,
so later runs skip decoding) and train from them directly, instead of running a PIL
``ToTensor`` transform per sample through a ``DataLoader`` as the original demo did. The
images stay uint8 in memory (a quarter of float32's bytes: 47 MB instead of 188 MB for
Fashion-MNIST's training split) and each batch is scaled (and mean-subtracted) as it is
drawn, on the device the split lives on, giving exactly the numbers ``ToTensor`` gives.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from mila_bench.errors import UsageError, unknown_name
from mila_bench.files import atomic_write

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CACHE_NAME = "mila_bench_tensors.pt"


@dataclass
class Split:
    """Images in their native dtype (uint8 [N, C, H, W]) and labels (int64).

    Batches come out as float32: uint8 pixels scaled to [0, 1] exactly as ``ToTensor`` does
    (``float() / 255``), then ``mean`` (float32 [1, C, H, W], in [0, 1] units; CIFAR's
    per-pixel training mean) subtracted when set. Float images pass through unscaled.
    """

    images: Tensor
    labels: Tensor
    mean: Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> Split:
        mean = self.mean.to(device) if self.mean is not None else None
        return Split(self.images.to(device), self.labels.to(device), mean)

    def head(self, n: int) -> Split:
        """The first ``n`` samples, normalised the same way (the mean stays the full split's)."""
        return replace(self, images=self.images[:n], labels=self.labels[:n])

    def normalise(self, images: Tensor) -> Tensor:
        """uint8 images (a batch, or all of them) → float32 as the model sees them."""
        if images.dtype == torch.uint8:  # a fresh float tensor: scale and centre it in place
            images = images.float().div_(255)
            return images.sub_(self.mean) if self.mean is not None else images
        return images - self.mean if self.mean is not None else images

    def float_images(self) -> Tensor:
        """The whole split as the model sees it (a float copy: for small splits, e.g. noise studies)."""
        return self.normalise(self.images)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Normalised mini-batches in order, or shuffled by ``generator`` (a seeded permutation per call)."""
        n = len(self)
        if generator is None:
            for start in range(0, n, batch_size):
                images = self.images[start : start + batch_size]
                yield self.normalise(images), self.labels[start : start + batch_size]
            return
        order = torch.randperm(n, generator=generator).to(self.labels.device)
        for idx in order.split(batch_size):
            yield self.normalise(self.images[idx]), self.labels[idx]


@dataclass
class Dataset:
    """A train and a test split plus what a model needs to know about their shape."""

    name: str
    train: Split
    test: Split
    num_classes: int
    info: dict[str, object] = field(default_factory=dict)
    # Applied by engine.fit to training batches only: (images, generator on their device) → images.
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])


def load_dataset(cfg: Mapping) -> Dataset:
    """Load the dataset named by ``cfg['name']`` and apply ``train_subset``."""
    from mila_bench.cifar import load_cifar  # imports this module: loaded on first use

    loaders: dict[str, Callable[[Mapping], Dataset]] = {
        "fashion_mnist": load_fashion_mnist,
        "cifar10": load_cifar,
        "cifar100": load_cifar,
    }
    name = cfg["name"]
    if name not in loaders:
        raise unknown_name("dataset", name, loaders)
    dataset = loaders[name](cfg)
    subset = cfg.get("train_subset")
    if subset is not None:
        if subset > len(dataset.train):
            raise UsageError(
                f"dataset.train_subset={subset} is larger than the {len(dataset.train)} training images; "
                f"allowed: 1..{len(dataset.train)} or null"
            )
        dataset.train = dataset.train.head(subset)
        dataset.info["train_subset"] = subset
    return dataset


def data_root(cfg: Mapping) -> Path:
    """The configured ``root``, else the default root."""
    return Path(os.path.expanduser(str(cfg.get("root") or cfg["default_root"])))


def load_fashion_mnist(cfg: Mapping) -> Dataset:
    """Fashion-MNIST via torchvision, from the first place that has it.

    Order: the root (configured, else the default) if the files are there; else the
    Debian ``dataset-fashion-mnist`` copy decompressed into that root; else torchvision's
    download (if allowed). Nothing found → one line naming the three ways to provide it.
    """
    root = data_root(cfg)
    raw = root / "FashionMNIST" / "raw"
    source = "root"
    if not _has_files(raw):
        system_dir = Path(str(cfg.get("system_dir") or ""))
        if cfg.get("system_dir") and _has_files(system_dir, suffix=".gz"):
            _decompress_into(system_dir, raw)
            source = f"system copy ({system_dir})"
        elif cfg.get("download", True):
            _download_fashion_mnist(root)
            source = "download"
        else:
            raise _missing_fashion_mnist(root, "download is disabled (dataset.download=false)")

    def decode() -> dict[str, Tensor]:
        from torchvision.datasets import FashionMNIST

        try:
            train = FashionMNIST(str(root), train=True, download=False)
            test = FashionMNIST(str(root), train=False, download=False)
        except Exception as err:  # torchvision reports bad files with asserts and RuntimeErrors
            raise UsageError(f"could not read the Fashion-MNIST files in {raw}: {err or type(err).__name__}") from err
        return {"train_x": train.data, "train_y": train.targets, "test_x": test.data, "test_y": test.targets}

    tensors = cached_tensors(root / "FashionMNIST" / CACHE_NAME, decode, [raw / f for f in FASHION_MNIST_FILES])
    return Dataset(
        name="fashion_mnist",
        train=Split(tensors["train_x"].unsqueeze(1), tensors["train_y"].long()),  # [N, 1, 28, 28] uint8 views
        test=Split(tensors["test_x"].unsqueeze(1), tensors["test_y"].long()),
        num_classes=10,
        info={"root": str(root), "source": source},
    )


def cached_tensors(path: Path, decode: Callable[[], dict[str, Tensor]], inputs: list[Path]) -> dict[str, Tensor]:
    """``decode()``'s tensors, cached in ``path`` and reused while it is newer than ``inputs``.

    Loaded with ``weights_only=True``; an unreadable cache is simply rebuilt.
    """
    newest_input = max((p.stat().st_mtime for p in inputs if p.exists()), default=0.0)
    if path.exists() and path.stat().st_mtime >= newest_input:
        try:
            return torch.load(path, weights_only=True)
        except Exception:
            pass
    tensors = decode()
    try:
        atomic_write(path, lambda f: torch.save(tensors, f))
    except OSError:
        pass  # a read-only data folder still works, only without the cache
    return tensors


def _has_files(folder: Path, suffix: str = "") -> bool:
    return all((folder / (name + suffix)).is_file() for name in FASHION_MNIST_FILES)


def _decompress_into(source: Path, raw: Path) -> None:
    """Make the Debian ``.gz`` files readable by torchvision (it looks for the unpacked files)."""
    raw.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:
        gz = source / f"{name}.gz"
        try:
            with gzip.open(gz, "rb") as src:
                atomic_write(raw / name, lambda dst: shutil.copyfileobj(src, dst))
        except (OSError, EOFError) as err:
            raise UsageError(f"could not decompress {gz}: {err}; reinstall dataset-fashion-mnist") from err


def _download_fashion_mnist(root: Path) -> None:
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _missing_fashion_mnist(root, f"the download failed ({first})") from err


def _missing_fashion_mnist(root: Path, reason: str) -> UsageError:
    return UsageError(
        f"Fashion-MNIST not found in {root} and {reason}. Provide it one of three ways: "
        "dataset.root=DIR with the files in DIR/FashionMNIST/raw; "
        "'apt-get install dataset-fashion-mnist' (reads /usr/share/datasets/fashion-mnist); "
        "or network access so torchvision can download it"
    )
