"""What a run records of its CPU kernels: the environment variables they read, and torch's build
condensed to its libraries (a run writing them: tests/test_pipeline.py)."""

from __future__ import annotations

import torch

from mila_bench.training.cpu_environment import kernel_env, torch_build

OPENBLAS_BUILD = """PyTorch built with:
  - GCC 9.3
  - C++ Version: 201703
  - OpenMP 201511 (a.k.a. OpenMP 4.5)
  - LAPACK is enabled (usually provided by MKL)
  - CPU capability usage: AVX2
  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release, CXX_FLAGS= -O2 -fPIC, LAPACK_INFO=open, USE_MKL=OFF,
"""


def test_kernel_env_keeps_only_the_variables_the_cpu_kernels_read() -> None:
    environ = {"OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0", "MKL_CBWR": "AVX2",
               "OPENBLAS_NUM_THREADS": "1", "DNNL_MAX_CPU_ISA": "AVX2", "ONEDNN_VERBOSE": "0",
               "ATEN_CPU_CAPABILITY": "default", "PATH": "/bin", "HOME": "/root", "OMPX": "x", "MY_MKL_X": "y"}  # fmt: skip
    kept = kernel_env(environ)
    assert kept == {k: v for k, v in environ.items() if k not in ("PATH", "HOME", "OMPX", "MY_MKL_X")}
    assert list(kept) == sorted(kept)  # the same variables always in the same order


def test_torch_build_is_config_show_without_the_compiler() -> None:
    parallel = "ATen/Parallel:\n\tat::get_num_threads() : 4\nATen parallel backend: native thread pool\n"
    assert torch_build(OPENBLAS_BUILD, parallel) == [
        "OpenMP 201511 (a.k.a. OpenMP 4.5)", "LAPACK is enabled (usually provided by MKL)",
        "BLAS_INFO=open", "LAPACK_INFO=open", "ATen parallel backend: native thread pool",
    ]  # fmt: skip
    shown = torch.__config__.show()
    here = torch_build()
    assert here and not any(line.startswith(("GCC", "C++", "Build settings")) for line in here)
    for line in here:  # every line is torch's own words
        assert line in shown or line in torch.__config__.parallel_info(), line
