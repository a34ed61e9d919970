"""The cache of a dataset's decoded tensors, next to its files.

torchvision parses the files; its decoded uint8 tensors are cached next to the data so later
runs skip decoding. Shared by every loader (``fashion_mnist``, ``cifar``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from mila_bench.atomic import atomic_write

CACHE_NAME = "mila_bench_tensors.pt"


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
