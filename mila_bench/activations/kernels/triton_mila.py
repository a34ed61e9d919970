"""Mila's CUDA kernels in Triton: one pass forward, one pass backward, both from x alone.

Why not Inductor or eager ops: an eager Mila is four to six kernels per direction and a
``torch.compile`` of the formula pays a fixed cost per call; one elementwise Triton kernel per
direction reads x (and the incoming gradient) once and writes once, which is the memory floor
that ``F.relu`` and ``F.silu`` set at the same size.

The arithmetic is :mod:`mila_bench.activations.fused_mila`'s, in float32 whatever the storage
type (bf16/fp16 in, the same type out)::

    e = exp(min(x + β, 20)),  n = e(e + 2),  d = n + 2
    y = x · n / d,   dy/dx = n/d + k,   dy/dβ = k,   k = x · 4e(e + 1) / d²

β is a float (a kernel argument) or a learnable scalar tensor, read in the kernel from its
pointer so no value ever travels back to the host. dL/dβ is reduced without atomics: each
program writes its partial sum and torch sums the partials, so the result is the same from run
to run (``trainer.deterministic``).

The kernels are built on first use (:func:`kernels`), so importing this module costs nothing
where Triton or CUDA is missing, and ``TRITON_INTERPRET=1`` set before the first use runs them
on the CPU (how the tests check them without a GPU).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import torch
from torch import Tensor

from mila_bench.activations.kernels.formula import CLAMP

#: Elements per Triton program and warps per program: Inductor's choice for pointwise kernels.
BLOCK = 1024
NUM_WARPS = 4


def available() -> bool:
    """Whether Triton can be imported (the CUDA builds of torch ship it)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def kernels() -> SimpleNamespace:
    """The jitted forward and backward kernels (built once per process).

    ``triton`` and ``tl`` become module globals, which is where every Triton version looks up the
    names a kernel uses (newer ones also read closures)."""
    global triton, tl
    import triton
    import triton.language as tl

    @triton.jit
    def forward_kernel(x_ptr, y_ptr, beta, beta_ptr, n_elements, BETA_IS_TENSOR: tl.constexpr,
                       CLAMP_AT: tl.constexpr, BLOCK_SIZE: tl.constexpr):  # fmt: skip
        offsets = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        if BETA_IS_TENSOR:
            b = tl.load(beta_ptr).to(tl.float32)
        else:
            b = beta
        e = tl.exp(tl.minimum(x + b, CLAMP_AT))
        n = e * (e + 2.0)
        y = x * n / (n + 2.0)
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def backward_kernel(x_ptr, g_ptr, dx_ptr, partial_ptr, beta, beta_ptr, n_elements,
                        BETA_IS_TENSOR: tl.constexpr, WANT_BETA: tl.constexpr, CLAMP_AT: tl.constexpr,
                        BLOCK_SIZE: tl.constexpr):  # fmt: skip
        pid = tl.program_id(0)
        offsets = pid.to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        if BETA_IS_TENSOR:
            b = tl.load(beta_ptr).to(tl.float32)
        else:
            b = beta
        e = tl.exp(tl.minimum(x + b, CLAMP_AT))
        n = e * (e + 2.0)
        d = n + 2.0
        k = x * (4.0 * e * (e + 1.0) / (d * d))
        tl.store(dx_ptr + offsets, (g * (n / d + k)).to(dx_ptr.dtype.element_ty), mask=mask)
        if WANT_BETA:
            tl.store(partial_ptr + pid, tl.sum(tl.where(mask, g * k, 0.0), axis=0))

    return SimpleNamespace(forward=forward_kernel, backward=backward_kernel)


def _beta_args(beta: float | Tensor, x: Tensor) -> tuple[float, Tensor, bool]:
    """(float β, β's pointer argument, whether the kernel reads β from the pointer)."""
    if isinstance(beta, Tensor):
        return 0.0, beta.detach(), True
    return float(beta), x, False  # the pointer is never read when β is a float


def forward(x: Tensor, beta: float | Tensor) -> Tensor:
    """Mila(x; β) of a contiguous vector ``x``, in one kernel (the op lays tensors out as vectors)."""
    y = torch.empty_like(x)
    n = x.numel()
    if n:
        scalar, pointer, is_tensor = _beta_args(beta, x)
        grid = (triton_cdiv(n, BLOCK),)
        kernels().forward[grid](x, y, scalar, pointer, n, BETA_IS_TENSOR=is_tensor, CLAMP_AT=CLAMP,
                                BLOCK_SIZE=BLOCK, num_warps=NUM_WARPS)  # fmt: skip
    return y


def backward(x: Tensor, beta: float | Tensor, grad: Tensor, want_beta: bool) -> tuple[Tensor, Tensor | None]:
    """(dL/dx, dL/dβ as a float32 scalar or None) of contiguous vectors, in one kernel plus a sum of partials."""
    dx = torch.empty_like(x)
    n = x.numel()
    programs = triton_cdiv(n, BLOCK)
    partial = torch.zeros(programs if want_beta else 1, dtype=torch.float32, device=x.device)
    if n:
        scalar, pointer, is_tensor = _beta_args(beta, x)
        kernels().backward[(programs,)](x, grad, dx, partial, scalar, pointer, n, BETA_IS_TENSOR=is_tensor,
                                        WANT_BETA=want_beta, CLAMP_AT=CLAMP, BLOCK_SIZE=BLOCK,
                                        num_warps=NUM_WARPS)  # fmt: skip
    return dx, (partial.sum() if want_beta else None)


def triton_cdiv(n: int, block: int) -> int:
    return -(-n // block)
