"""Mila as one fused, memory-lean autograd function.

The naive ``x * tanh(softplus(x + β))`` makes several passes over memory and autograd keeps
several intermediates alive for backward. Here forward and backward each recompute from the
input alone, so only ``x`` is saved, using the algebraic form

    e = exp(z), z = x + β,   n = e(e + 2),   tanh(softplus(z)) = n / (n + 2)
    d/dx = t + x(1 − t²)σ(z) = n/(n+2) + x · 4e(e + 1) / (n + 2)²
    d/dβ = x · 4e(e + 1) / (n + 2)²

with z clamped at 20 (where t = 1 to double precision), so nothing overflows anywhere and
there is no cancellation for very negative z. Half-precision inputs are computed in float32.

Each pass is one elementwise kernel when ``torch.compile`` (Inductor: C++ on CPU, Triton on
CUDA) is available; compilation costs seconds on first use (then it is cached on disk), so
``auto`` compiles only once a run has done enough large-tensor work to pay it back, and the
same formulas run eagerly before that or when compilation is unavailable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

CLAMP = 20.0
#: With impl=auto, only tensors this large count towards compiling, and compilation starts once
#: that many elements went through the eager kernels: about where a compile (a few seconds,
#: tens on a cold cache) is paid back by the faster kernels on CPU.
COMPILE_MIN_NUMEL = int(os.environ.get("MILA_BENCH_COMPILE_MIN_NUMEL", 1 << 16))
COMPILE_AFTER_ELEMENTS = int(float(os.environ.get("MILA_BENCH_COMPILE_AFTER_ELEMENTS", 5e8)))
IMPLS = ("auto", "compiled", "eager")
_impl = os.environ.get("MILA_BENCH_MILA_IMPL", "auto")


def set_impl(impl: str) -> None:
    """Choose the kernels: ``auto`` (compiled once it pays off, when possible), ``compiled``, ``eager``."""
    global _impl
    if impl not in IMPLS:
        from mila_bench.errors import UsageError

        raise UsageError(f"activation.impl={impl!r} is not allowed; allowed: {', '.join(IMPLS)}")
    _impl = impl


def _compute_dtype(x: Tensor) -> Tensor:
    """float16/bfloat16 are computed in float32 (e^20 overflows float16); others as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _forward(x: Tensor, beta: float | Tensor) -> Tensor:
    xf = _compute_dtype(x)
    e = torch.exp(torch.clamp(xf + beta, max=CLAMP))
    n = e * (e + 2.0)
    return (xf * n / (n + 2.0)).to(x.dtype)


def _backward(x: Tensor, beta: float | Tensor, grad: Tensor, want_beta: bool) -> tuple[Tensor, Tensor | None]:
    """(dL/dx, dL/dβ per element before summation, or None when β is fixed)."""
    xf = _compute_dtype(x)
    e = torch.exp(torch.clamp(xf + beta, max=CLAMP))
    n = e * (e + 2.0)
    d = n + 2.0
    k = xf * (4.0 * e * (e + 1.0) / (d * d))
    g = grad.to(xf.dtype)
    return (g * (n / d + k)).to(x.dtype), (g * k if want_beta else None)


_compiled: dict[str, Callable] = {}
_compile_failed = False
_eager_elements = 0


def _use_compiled(x: Tensor) -> bool:
    """Compiled kernels when forced, or (auto) once enough large-tensor work has gone by that
    compiling pays back: a short run never compiles, a long one compiles early on."""
    global _eager_elements
    if _impl == "eager" or torch.compiler.is_compiling():  # inside a compiled model Inductor fuses anyway
        return False
    if _impl == "compiled":
        return True
    if _compile_failed or x.numel() < COMPILE_MIN_NUMEL:
        return False
    if _compiled:
        return True
    _eager_elements += x.numel()
    return _eager_elements >= COMPILE_AFTER_ELEMENTS


def would_compile(x: Tensor) -> bool:
    """Whether ``x`` would go through the compiled kernels (so callers can pick a faster path)."""
    return _use_compiled(x)


def _compiled_kernel(kind: str) -> Callable:
    if not _compiled:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # a CUDA_HOME notice on CPU-only boxes
        _compiled["forward"] = torch.compile(_forward, dynamic=True)
        _compiled["backward"] = torch.compile(_backward, dynamic=True)
    return _compiled[kind]


def _run(kind: str, x: Tensor, *args: float | bool | Tensor):
    """Run the compiled kernel when worth it; fall back to the eager one if compiling fails."""
    global _compile_failed
    eager = _forward if kind == "forward" else _backward
    if not _use_compiled(x):
        return eager(x, *args)
    try:
        return _compiled_kernel(kind)(x, *args)
    except Exception:  # no C++ compiler, unsupported platform, ...: stay correct, just slower
        if _impl == "compiled":
            raise
        _compile_failed = True
        return eager(x, *args)


class FusedMila(torch.autograd.Function):
    """Mila whose backward needs only the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, beta: float | Tensor) -> Tensor:
        ctx.save_for_backward(x)
        # β is a float, or a scalar tensor when learnable: kept on ctx, so x is the one tensor saved.
        ctx.beta = beta
        return _run("forward", x, beta)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        (x,) = ctx.saved_tensors
        want_beta = isinstance(ctx.beta, Tensor) and ctx.needs_input_grad[1]
        grad_x, grad_beta_elems = _run("backward", x, ctx.beta, grad, want_beta)
        grad_beta = grad_beta_elems.sum().to(ctx.beta.dtype).reshape(ctx.beta.shape) if want_beta else None
        return (grad_x if ctx.needs_input_grad[0] else None), grad_beta


def fused_mila(x: Tensor, beta: float | Tensor) -> Tensor:
    """Mila via :class:`FusedMila`; ``beta`` a float or a (learnable) scalar tensor."""
    return FusedMila.apply(x, beta)
