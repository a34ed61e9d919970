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
same mathematics runs eagerly before that or when compilation is unavailable.

The eager kernels (:func:`_eager_forward`, :func:`_eager_backward`) are written for speed
without a compiler: a handful of in-place PyTorch ops on one or two scratch buffers, and on CPU
applied block by block (:data:`EAGER_BLOCK` elements), so the scratch stays in cache, the
tensor itself is read and written once per pass direction, not once per op, and no full-size
temporary has to be allocated and faulted in. They need a
single transcendental (exp) where ``F.mish`` needs three or four, so they keep up with it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from mila_bench.activations.registry import IMPLS  # the kernels' names; a config is checked without torch

CLAMP = 20.0
#: With impl=auto, only tensors this large count towards compiling, and compilation starts once
#: that many elements went through the eager kernels: about where a compile (a few seconds,
#: tens on a cold cache) is paid back by the faster kernels on CPU.
COMPILE_MIN_NUMEL = int(os.environ.get("MILA_BENCH_COMPILE_MIN_NUMEL", 1 << 16))
COMPILE_AFTER_ELEMENTS = int(float(os.environ.get("MILA_BENCH_COMPILE_AFTER_ELEMENTS", 5e8)))
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


#: Elements per block of the eager kernels on CPU: small enough that a block's scratch, input
#: and output stay in cache, large enough that per-op dispatch and thread fork/join cost little.
#: Measured with benchmarks/activation_speed.py over 2^14..2^19 (1 and 2 threads, 4M and 16M
#: elements): 2^17..2^18 were fastest. On CUDA a block is the whole tensor.
EAGER_BLOCK = int(os.environ.get("MILA_BENCH_EAGER_BLOCK", 1 << 18))


def _blocks(n: int, device: torch.device) -> range:
    block = n if device.type != "cpu" or n <= 2 * EAGER_BLOCK else EAGER_BLOCK
    return range(0, n, max(block, 1))


def _eager_forward(x: Tensor, beta: float | Tensor) -> Tensor:
    """Mila without a compiler: per block, y = x / (1 + 1/h), h = e + e²/2 = n/2, e = exp(x + β).

    The output's own block is the scratch (no buffer to allocate and fault in) unless half
    precision is computed in float32. No clamp is needed: where e or e² overflow, h = inf and
    y = x exactly (t = 1 there).
    """
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    flat_x = x.reshape(-1)
    out = torch.empty(flat_x.shape, dtype=x.dtype, device=x.device)
    blocks = _blocks(flat_x.numel(), x.device)
    buf = None if work == x.dtype else torch.empty(min(blocks.step, flat_x.numel()), dtype=work, device=x.device)
    for start in blocks:
        xb, ob = flat_x[start : start + blocks.step], out[start : start + blocks.step]
        if buf is None:
            b = torch.add(xb, beta, out=ob)
        else:
            b = buf[: len(xb)].copy_(xb).add_(beta)
        b.exp_()  # e
        b.addcmul_(b, b, value=0.5)  # h = e + e²/2
        b.reciprocal_().add_(1)  # 1 + 1/h = (n + 2)/n
        torch.div(xb, b, out=ob)  # x·n/(n + 2)
    return out.view(x.shape)


def _eager_backward(x: Tensor, beta: float | Tensor, grad: Tensor, want_beta: bool) -> tuple[Tensor, Tensor | None]:
    """(dL/dx, dL/dβ summed, or None when β is fixed), per block, from x alone:

    q = 1/(h + 1) = 2/(n + 2) (so t = 1 − q), k = x·e(e + 1)·q² (= dt/dβ·x), dL/dx = g·(1 − q + k).
    As in the forward, the output's block holds e and q (one scratch buffer besides it).
    """
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    out = torch.empty(flat_x.shape, dtype=x.dtype, device=x.device)
    blocks = _blocks(flat_x.numel(), x.device)
    size = min(blocks.step, flat_x.numel())
    b = None if work == x.dtype else torch.empty(size, dtype=work, device=x.device)
    c = torch.empty(size, dtype=work, device=x.device)
    grad_beta = torch.zeros((), dtype=torch.float64, device=x.device) if want_beta else None
    for start in blocks:
        xb, gb = flat_x[start : start + blocks.step], flat_g[start : start + blocks.step]
        ob, m = out[start : start + blocks.step], c[: len(xb)]
        if b is None:
            e = torch.add(xb, beta, out=ob)
        else:
            e = b[: len(xb)].copy_(xb).add_(beta)
        e.clamp_(max=CLAMP).exp_()  # e (clamped: t = 1 and k ≈ 0 beyond, and e² stays finite)
        torch.addcmul(e, e, e, out=m)  # e(e + 1)
        q = e.addcmul_(e, e, value=0.5).add_(1).reciprocal_()  # 1/(h + 1)
        k = m.mul_(q).mul_(xb).mul_(q)  # x·e(e + 1)·q²
        if grad_beta is not None:
            grad_beta += torch.dot(k, gb.to(work))
        torch.addcmul(gb, gb, k.sub_(q), out=ob)  # g·(1 − q + k); q (in ob) is not read by it
    return out.view(x.shape), grad_beta


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
    """Run the compiled kernel when worth it; fall back to the eager one if compiling fails.

    Inside a model being compiled the plain formulas are traced (Inductor fuses them).
    """
    global _compile_failed
    if torch.compiler.is_compiling():
        return (_forward if kind == "forward" else _backward)(x, *args)
    eager = _eager_forward if kind == "forward" else _eager_backward
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
