"""Where each dataset's files are and whether a run can get them, without importing torch.

A run whose data is missing is answered before torch loads (``pipeline.resolve`` calls
:func:`check_obtainable`): the files are not in the root, there is no system copy, and either
downloading is off or torchvision's download host does not resolve (this machine is offline).
A download that fails anyway removes the folders it created (:func:`removed_if_failed`), so a
misspelt ``dataset.root`` leaves nothing behind. The folder and file names are torchvision's
(``tests/test_data.py`` checks them against its dataset classes).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.request import getproxies

from mila_bench.errors import UsageError

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: Dataset → the folder under the root that torchvision reads, and the files it reads there.
FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fashion_mnist": ("FashionMNIST/raw", FASHION_MNIST_FILES),
    "cifar10": ("cifar-10-batches-py", (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}
#: Dataset → the host torchvision downloads it from.
HOSTS = {
    "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "cifar10": "www.cs.toronto.edu",
    "cifar100": "www.cs.toronto.edu",
}
TITLES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def data_root(cfg: Mapping) -> Path:
    """The configured ``root``, else the default root."""
    return Path(os.path.expanduser(str(cfg["root"] or cfg["default_root"])))


def has_files(folder: Path, names: tuple[str, ...], suffix: str = "") -> bool:
    return all((folder / (name + suffix)).is_file() for name in names)


def in_root(name: str, root: Path) -> bool:
    """Whether ``root`` holds every file torchvision reads for dataset ``name``."""
    folder, names = FILES[name]
    return has_files(root / folder, names)


def check_obtainable(cfg: Mapping) -> None:
    """Raise the loader's missing-data error now if the loader could not get the data either."""
    name = cfg["name"]
    root = data_root(cfg)
    if in_root(name, root):
        return
    system_dir = cfg.get("system_dir")
    if system_dir and has_files(Path(str(system_dir)), FASHION_MNIST_FILES, suffix=".gz"):
        return  # the loader decompresses Debian's copy into the root
    if not cfg["download"]:
        raise missing(name, root, "download is disabled (dataset.download=false)")
    unreachable = _unresolvable(HOSTS[name])
    if unreachable:
        raise missing(name, root, f"the download would fail ({HOSTS[name]}: {unreachable})")


def _unresolvable(host: str) -> str | None:
    """Why ``host`` cannot be reached, when its name does not resolve and no proxy would resolve it for us."""
    if getproxies():
        return None
    try:
        socket.getaddrinfo(host, 443)
    except OSError as err:
        return err.strerror or str(err)
    return None


@contextmanager
def removed_if_failed(root: Path) -> Iterator[None]:
    """Remove the folders up to ``root`` that did not exist before the block, if the block fails
    (a download into a misspelt root leaves no empty folder, nor a partial file, behind)."""
    created = None
    folder = root.absolute()
    while not folder.exists():
        created, folder = folder, folder.parent
    try:
        yield
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def missing(name: str, root: Path, reason: str) -> UsageError:
    """The one line for data that is not there: where it was looked for, why not fetched, how to point to it."""
    folder = FILES[name][0]
    where = f"{root} (no such folder)" if not root.exists() else str(root / folder)
    local = f"dataset.root=DIR with torchvision's files in DIR/{folder} (MILA_BENCH_DATA=DIR sets the default root)"
    if name == "fashion_mnist":
        ways = (f"Provide it one of three ways: {local}; 'apt-get install dataset-fashion-mnist' (reads "
                "/usr/share/datasets/fashion-mnist); or network access so torchvision can download it")  # fmt: skip
    else:
        ways = (f"Point to local data: {local}, adding dataset.verify=false for a locally converted copy; "
                "or network access so torchvision can download it")  # fmt: skip
    return UsageError(f"{TITLES[name]} not found in {where} and {reason}. {ways}")
