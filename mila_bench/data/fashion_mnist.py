"""Fashion-MNIST (the demo's dataset) as uint8 tensors, from the first place that has it."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from mila_bench.data.cache import CACHE_NAME, cached_tensors
from mila_bench.data.files import FASHION_MNIST_FILES, data_root, has_files, missing, removed_if_failed
from mila_bench.errors import UsageError
from mila_bench.atomic import atomic_write
from mila_bench.data.splits import Dataset, Split

def load_fashion_mnist(cfg: Mapping) -> Dataset:
    """Fashion-MNIST via torchvision, from the first place that has it.

    Order: the root (configured, else the default) if the files are there; else the
    Debian ``dataset-fashion-mnist`` copy decompressed into that root; else torchvision's
    download (if allowed). Nothing found → one line naming the three ways to provide it.
    """
    root = data_root(cfg)
    raw = root / "FashionMNIST" / "raw"
    source = "root"
    if not has_files(raw, FASHION_MNIST_FILES):
        system_dir = Path(str(cfg["system_dir"] or ""))
        if cfg["system_dir"] and has_files(system_dir, FASHION_MNIST_FILES, suffix=".gz"):
            _decompress_into(system_dir, raw)
            source = f"system copy ({system_dir})"
        elif cfg["download"]:
            _download_fashion_mnist(root)
            source = "download"
        else:
            raise missing("fashion_mnist", root, "download is disabled (dataset.download=false)")

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
        with removed_if_failed(root):
            FashionMNIST(str(root), train=True, download=True)
            FashionMNIST(str(root), train=False, download=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise missing("fashion_mnist", root, f"the download failed ({first})") from err
