"""``device=cuda`` on a machine that cannot have CUDA, answered without importing torch.

torch knows CUDA is unavailable only once imported (seconds). A Linux machine with none of the
device nodes a GPU driver creates (NVIDIA's, WSL's, ROCm's) has no CUDA for torch either, so
there the answer is immediate; anywhere else ``engine.select_device`` asks torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mila_bench.errors import UsageError

#: What a GPU driver creates: NVIDIA's control device and /proc entry, WSL's GPU, ROCm's kernel driver.
GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")


def no_cuda(name: str) -> UsageError:
    return UsageError(f"device={name!r} but CUDA is not available on this machine; allowed here: auto, cpu")


def check_cuda_possible(name: str) -> None:
    """Refuse ``cuda``/``cuda:N`` where no GPU driver is present at all; otherwise leave it to torch."""
    if name.startswith("cuda") and sys.platform == "linux" and not any(Path(node).exists() for node in GPU_NODES):
        raise no_cuda(name)
