"""What decides a CPU run's last digits beyond its config and torch's version: the kernels torch
dispatches to (its CPU capability), the libraries it was built with (BLAS, LAPACK, oneDNN,
OpenMP), its thread pools, and the environment variables those read. Each run records them in
``environment``, so a number that moves between machines or runs can be traced to what changed.
"""

from __future__ import annotations

import os
import re

import torch

#: Environment variables read by torch's CPU kernels and the libraries under them: OpenMP (GNU,
#: Intel's KMP), MKL (e.g. MKL_CBWR, which pins its code path), OpenBLAS, oneDNN, and torch's own
#: ATEN_CPU_CAPABILITY (which caps the dispatch level).
ENV_PREFIXES = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "DNNL_", "ONEDNN_")
ENV_NAMES = ("ATEN_CPU_CAPABILITY",)
#: Lines of ``torch.__config__.show()`` about the compiler, not the libraries: left out.
COMPILER_LINES = ("GCC", "C++ Version", "clang", "Clang", "MSVC", "Build settings", "CPU capability usage")
#: Build settings that name the BLAS and LAPACK torch calls.
BUILD_KEYS = ("BLAS_INFO", "LAPACK_INFO")


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels dispatch to (DEFAULT, AVX2, AVX512, ...): two
    machines, or ATEN_CPU_CAPABILITY, can make the same code take different vectorised paths."""
    return torch.backends.cpu.get_cpu_capability()


def interop_threads() -> int:
    """torch's inter-op thread pool size (the intra-op one is ``environment.torch_threads``)."""
    return torch.get_num_interop_threads()


def kernel_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables of :data:`ENV_PREFIXES` and :data:`ENV_NAMES` that are set, by name."""
    environ = dict(os.environ) if environ is None else environ
    return {k: v for k, v in sorted(environ.items()) if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def torch_build(shown: str | None = None, parallel: str | None = None) -> list[str]:
    """``torch.__config__.show()`` condensed to the libraries: its lines naming MKL, oneDNN,
    OpenMP, LAPACK, CUDA ... (compiler lines and flags left out), ``BLAS_INFO``/``LAPACK_INFO`` of
    its build settings, and the ATen parallel backend of ``torch.__config__.parallel_info()``."""
    shown = torch.__config__.show() if shown is None else shown
    parallel = torch.__config__.parallel_info() if parallel is None else parallel
    lines = []
    for line in shown.splitlines():
        text = line.strip()
        if text.startswith("- ") and not text[2:].startswith(COMPILER_LINES):
            lines.append(text[2:])
    settings = dict(re.findall(r"\b([A-Z_]+)=([^,\s]*)", shown.split("Build settings:", 1)[-1]))
    lines += [f"{key}={settings[key]}" for key in BUILD_KEYS if key in settings]
    backend = re.search(r"^ATen parallel backend: (.+)$", parallel, re.M)
    if backend:
        lines.append(f"ATen parallel backend: {backend.group(1).strip()}")
    return lines
