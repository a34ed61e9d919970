"""Dataset files known without torch: the names are torchvision's, and a failed download leaves no folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from torchvision.datasets import CIFAR10, CIFAR100, FashionMNIST

from mila_bench.data.files import FILES, HOSTS, removed_if_failed


def test_the_folders_files_and_hosts_are_torchvisions() -> None:
    for name, cls in (("cifar10", CIFAR10), ("cifar100", CIFAR100)):
        folder, files = FILES[name]
        assert folder == cls.base_folder
        assert list(files) == [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        assert HOSTS[name] in cls.url
    folder, files = FILES["fashion_mnist"]
    assert folder == "FashionMNIST/raw" and sorted(files) == sorted(r[0].removesuffix(".gz") for r in FashionMNIST.resources)
    assert any(HOSTS["fashion_mnist"] in mirror for mirror in FashionMNIST.mirrors)


def test_a_failed_block_removes_the_folders_it_created_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "file").write_text("mine")
    root = tmp_path / "kept" / "new" / "deeper"
    with pytest.raises(OSError), removed_if_failed(root):
        (root / "FashionMNIST").mkdir(parents=True)
        (root / "FashionMNIST" / "partial.gz").write_bytes(b"half")
        raise OSError("the download failed")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["file"]


def test_a_block_that_succeeds_keeps_what_it_made(tmp_path: Path) -> None:
    root = tmp_path / "new"
    with removed_if_failed(root):
        root.mkdir()
        (root / "data").write_text("x")
    assert (root / "data").read_text() == "x"
