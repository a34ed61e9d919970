"""Shared fixtures: one real Fashion-MNIST root per test session, resolved the way users get it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root filled by mila-bench's own resolution (Debian copy, else download)."""
    from mila_bench.config import compose
    from mila_bench.data.load import load_dataset

    root = tmp_path_factory.mktemp("fashion_root")
    load_dataset(compose([f"dataset.root={root}"]).dataset)
    return root


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``mila-bench`` (or ``demo.py`` when args[0] ends in .py) in a subprocess."""
    if args and args[0].endswith(".py"):
        cmd = [sys.executable, str(ROOT / args[0]), *args[1:]]
    else:
        cmd = [sys.executable, "-m", "mila_bench", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR",)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny CIFAR-10 and CIFAR-100 in their real on-disk formats (see cifar_files.py); load with dataset.verify=false."""
    from cifar_files import write_cifar10, write_cifar100

    root = tmp_path_factory.mktemp("cifar_root")
    write_cifar10(root)
    write_cifar100(root)
    return root
