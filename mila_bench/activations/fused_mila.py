"""Mila's CPU kernels (eager and compiled) and the per-run kernel state, memory-lean.

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
same mathematics runs eagerly before that or when compilation is unavailable. On CUDA with
``auto``, the Triton kernels of :mod:`mila_bench.activations.kernels.triton_mila` run instead;
:mod:`mila_bench.activations.kernels.op` is the operator that picks (and what models call).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from mila_bench.activations.kernels.formula import CLAMP  # the formula's constant, shared with the CUDA kernels
from mila_bench.activations.registry import IMPLS  # the kernels' names; a config is checked without torch

#: With impl=auto, only tensors this large count towards compiling, and compilation starts once
#: a run has put that many elements through the eager kernels: about where a compile (a few
#: seconds, tens on a cold cache) is paid back by the faster kernels on CPU.
COMPILE_MIN_NUMEL = int(os.environ.get("MILA_BENCH_COMPILE_MIN_NUMEL", 1 << 16))
COMPILE_AFTER_ELEMENTS = int(float(os.environ.get("MILA_BENCH_COMPILE_AFTER_ELEMENTS", 5e8)))


def check_impl(impl: str) -> str:
    """``impl`` if it is one of :data:`IMPLS`; else one clear error naming the allowed ones."""
    if impl not in IMPLS:
        from mila_bench.errors import UsageError

        raise UsageError(f"activation.impl={impl!r} is not allowed; allowed: {', '.join(IMPLS)}")
    return impl


class MilaKernels:
    """Which kernels Mila runs, and (``auto``) the large-tensor work done so far: the state of ONE run.

    The numbers a run produces depend on where ``auto`` switches from the eager to the compiled
    kernels, so that switch must be a function of the run alone: every run starts a fresh
    state (see ``training.run_settings``), the engine saves it in each checkpoint and a resumed
    run restores it, so the switch lands on the same step as in the uninterrupted run. ``where``
    is the (epoch, step) the engine is at, kept only to record where the switch happened.
    """

    def __init__(self, impl: str = "auto", after_elements: int | None = None) -> None:
        self.impl = check_impl(impl)
        self.after_elements = COMPILE_AFTER_ELEMENTS if after_elements is None else int(after_elements)
        self.elements = 0  # large-tensor elements through the eager kernels so far (auto)
        self.switched: dict[str, int] | None = None  # where auto switched to the compiled kernels
        self.used: list[str] = []  # the kernels that ran, in order of first use
        self.compile_failed = False
        self.where: tuple[int, int] | None = None

    def use_compiled(self, x: Tensor) -> bool:
        """Compiled kernels when forced, or (auto) once this run has done enough large-tensor work
        that compiling pays back: a short run never compiles, a long one compiles early on."""
        if self.impl == "eager" or torch.compiler.is_compiling():  # inside a compiled model Inductor fuses anyway
            return False
        if self.impl == "compiled":
            return True
        if _compile_failed or x.numel() < COMPILE_MIN_NUMEL:
            return False
        if self.switched is not None:
            return True
        self.elements += x.numel()
        if self.elements < self.after_elements:
            return False
        epoch, step = self.where or (0, 0)
        self.switched = {"elements": self.elements, "epoch": epoch, "step": step}
        return True

    #: where the training loop keeps this state in a checkpoint
    state_key = "mila_kernels"

    def at(self, epoch: int, step: int) -> None:
        """The training loop is at this step (recorded if ``auto`` switches during it)."""
        self.where = (epoch, step)

    def ran(self, kernel: str) -> None:
        if kernel not in self.used:
            self.used.append(kernel)

    def state_dict(self) -> dict[str, object]:
        """What a checkpoint keeps (plain data, loadable with ``weights_only=True``)."""
        return {"impl": self.impl, "after_elements": self.after_elements, "elements": self.elements,
                "switched": self.switched, "used": list(self.used), "compile_failed": self.compile_failed}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint's state: its threshold too, so the switch lands where it would have."""
        self.impl = check_impl(str(state["impl"]))
        self.after_elements, self.elements = int(state["after_elements"]), int(state["elements"])
        self.switched = dict(state["switched"]) if state["switched"] is not None else None
        self.used, self.compile_failed = list(state["used"]), bool(state["compile_failed"])

    def as_summary(self) -> dict[str, object]:
        """For summary.json: the impl, the kernels that ran and, for auto, where it switched."""
        out: dict[str, object] = {"impl": self.impl, "kernels": list(self.used)}
        if self.impl == "auto":
            out["compile_after_elements"] = self.after_elements
            out["switched_to_compiled"] = self.switched
        if self.compile_failed:
            out["compile_failed"] = True
        return out


#: The state Mila's kernels use now: a run's own while it runs (:func:`kernels`); outside any
#: run, this process-wide one (MILA_BENCH_MILA_IMPL, default auto) for direct calls.
_current = MilaKernels(os.environ.get("MILA_BENCH_MILA_IMPL", "auto"))


def current() -> MilaKernels:
    """The kernel state Mila uses now."""
    return _current


def run_state() -> list[MilaKernels]:
    """The activations' per-run kernel state, for the training loop to keep in its checkpoints and
    tell where it is (``state_key``, ``state_dict``, ``load_state_dict``, ``at``): Mila's only, today."""
    return [_current]


@contextmanager
def kernels(state: str | MilaKernels) -> Iterator[MilaKernels]:
    """Use ``state`` (or a fresh state for impl ``state``) inside the block; the previous one after.

    Mila's backward uses the state of its forward, so a block may end before ``backward()``.
    """
    global _current
    new = state if isinstance(state, MilaKernels) else MilaKernels(state)
    previous, _current = _current, new
    try:
        yield new
    finally:
        _current = previous


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


#: Process-wide and harmless to share: the compiled functions (code, not numbers) and whether
#: this machine can compile at all (if not, every run falls back to the same eager kernels).
_compiled: dict[str, Callable] = {}
_compile_failed = False


def would_compile(x: Tensor) -> bool:
    """Whether ``x`` would go through the compiled kernels (so callers can pick a faster path)."""
    return _current.use_compiled(x)


def _compiled_kernel(kind: str) -> Callable:
    if not _compiled:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # a CUDA_HOME notice on CPU-only boxes
        _compiled["forward"] = torch.compile(_forward, dynamic=True)
        _compiled["backward"] = torch.compile(_backward, dynamic=True)
    return _compiled[kind]


def _run(kind: str, state: MilaKernels, x: Tensor, *args: float | bool | Tensor):
    """Run the compiled kernel when ``state`` says so; fall back to the eager one if compiling fails."""
    global _compile_failed
    eager = _eager_forward if kind == "forward" else _eager_backward
    if not state.use_compiled(x):
        state.ran("eager")
        return eager(x, *args)
    try:
        out = _compiled_kernel(kind)(x, *args)
    except Exception:  # no C++ compiler, unsupported platform, ...: stay correct, just slower
        if state.impl == "compiled":
            raise
        _compile_failed = state.compile_failed = True
        state.ran("eager")
        return eager(x, *args)
    state.ran("compiled")
    return out


def run_kernel(kind: str, x: Tensor, *args: float | bool | Tensor):
    """The forward or backward of this module's kernels on ``x`` under the current run's state
    (what the custom op in ``activations.kernels.op`` runs on every device but CUDA with Triton)."""
    return _run(kind, _current, x, *args)
