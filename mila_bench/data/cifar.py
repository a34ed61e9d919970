"""CIFAR-10 and CIFAR-100 as tensors in memory, read by torchvision's own classes.

torchvision parses the pickled batches; we cache its decoded uint8 arrays as tensors and keep
them uint8 in memory (like Fashion-MNIST: 154 MB for CIFAR-10's training split instead of
614 MB as float32), keep the per-pixel mean of the training split as a float tensor that each
batch subtracts as it is drawn (the recipe's ``subtract_pixel_mean``), and attach the batch
augmentation that ``engine.fit`` applies to training batches only. ``dataset.verify=false`` skips torchvision's MD5 check of the files
(for test fixtures and locally converted copies, which cannot match the published sums)
and nothing else: the parsing is still torchvision's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from mila_bench.data.augment import ShiftFlip
from mila_bench.data.cache import CACHE_NAME, cached_tensors
from mila_bench.data.files import TITLES, data_root, missing, removed_if_failed
from mila_bench.errors import UsageError
from mila_bench.data.splits import Dataset, Split

UNVERIFIED_CACHE_NAME = "mila_bench_tensors_unverified.pt"  # never read by a verified load


def torchvision_class(name: str, verify: bool = True) -> type:
    """torchvision's CIFAR10/CIFAR100, or a subclass whose file list carries no MD5 sums.

    torchvision's integrity check compares a file's MD5 only when a sum is given and
    otherwise just checks that the file exists, so clearing the sums skips exactly that.
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    base = {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]
    if verify:
        return base
    return type(
        f"Unverified{base.__name__}",
        (base,),
        {
            "train_list": [[file, None] for file, _ in base.train_list],
            "test_list": [[file, None] for file, _ in base.test_list],
            "meta": {**base.meta, "md5": None},
        },
    )


def file_names(name: str) -> list[str]:
    """The files torchvision reads from the dataset's folder (batches and meta)."""
    cls = torchvision_class(name)
    return [file for file, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]


def load_cifar(cfg: Mapping) -> Dataset:
    """CIFAR-10/100 from ``root/<torchvision's folder>``, downloaded there when missing and allowed."""
    name = cfg["name"]
    verify = bool(cfg["verify"])
    root = data_root(cfg)
    cls = torchvision_class(name, verify)
    folder = root / cls.base_folder
    files = [folder / f for f in file_names(name)]
    source = "root"
    if not all(f.is_file() for f in files):
        if not cfg["download"]:
            raise missing(name, root, "download is disabled (dataset.download=false)")
        _download(name, root)
        source = "download"

    def decode() -> dict[str, Tensor]:
        try:
            train, test = cls(str(root), train=True), cls(str(root), train=False)
        except RuntimeError as err:  # torchvision's message for a file that fails its MD5 check
            raise UsageError(
                f"the {TITLES[name]} files in {folder} do not pass torchvision's MD5 check ({err}); "
                "for a locally converted copy or a test fixture use dataset.verify=false"
            ) from err
        except Exception as err:  # a truncated or foreign pickle
            raise UsageError(f"could not read the {TITLES[name]} files in {folder}: {err or type(err).__name__}") from err
        return {
            "train_x": torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous(),
            "train_y": torch.tensor(train.targets),
            "test_x": torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous(),
            "test_y": torch.tensor(test.targets),
            "num_classes": torch.tensor(len(train.classes)),
        }

    tensors = cached_tensors(folder / (CACHE_NAME if verify else UNVERIFIED_CACHE_NAME), decode, files)
    mean = pixel_mean(tensors["train_x"])  # per pixel and channel, over the full training split
    shift, flip = int(cfg["shift"]), bool(cfg["flip"])
    return Dataset(
        name=name,
        train=Split(tensors["train_x"], tensors["train_y"].long(), mean),
        test=Split(tensors["test_x"], tensors["test_y"].long(), mean),
        num_classes=int(tensors["num_classes"]),
        info={
            "root": str(root),
            "source": source,
            "md5_check": "done" if verify else "skipped (dataset.verify=false)",
            "pixel_mean": "per-pixel mean of the full training split subtracted",
            "augment": {"shift_px": shift, "flip": flip},
        },
        augment=ShiftFlip(shift, flip) if (shift or flip) else None,
    )


def pixel_mean(images: Tensor, chunk: int = 4096) -> Tensor:
    """Mean of uint8 ``images`` [N, C, H, W] over N, in [0, 1] units, float32 [1, C, H, W].

    Summed exactly as integers a chunk at a time (no float copy of the whole split), then
    divided once: the float32 mean correctly rounded.
    """
    total = torch.zeros(images.shape[1:], dtype=torch.int64)
    for start in range(0, len(images), chunk):
        total += images[start : start + chunk].sum(dim=0, dtype=torch.int64)
    return (total.double() / (255 * len(images))).float().unsqueeze(0)


def _download(name: str, root: Path) -> None:
    try:
        with removed_if_failed(root):
            torchvision_class(name)(str(root), train=True, download=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise missing(name, root, f"the download failed ({first})") from err
