"""Mila as PyTorch custom operators (``torch.ops.mila_bench.*``), with autograd, per-device kernels.

Why a custom op and not a ``torch.autograd.Function``: ``torch.compile`` traces an
autograd.Function's Python forward and backward into its graph, and torch 2.11 routed the
backward gradient of such a function to the wrong output (pytorch/pytorch#180642): every layer
before Mila got a zero gradient and compiled runs did not learn, silently. A custom op is one
opaque node to Dynamo (its fake implementation gives shapes; its autograd formula is
registered with the dispatcher), so a compiled model calls exactly the kernels an eager one
does, with no graph break at Mila.

Kernels by device (the dispatcher picks): CUDA runs the Triton pair of
:mod:`~mila_bench.activations.kernels.triton_mila` when Triton is installed and
``activation.impl`` is ``auto``; every other case runs the kernels of
:mod:`~mila_bench.activations.fused_mila` under the run's kernel state. The kernel that ran is
recorded in that state (``mila_kernels.kernels`` in summary.json).

Every kernel sees one contiguous vector: x's elements in memory order (contiguous, or
channels_last as bf16 autocast runs use), so no layout costs a copy, and the output has x's
layout. β is a float (``mila``) or a learnable scalar tensor (``mila_tensor_beta``, whose
backward also returns dL/dβ). Backward recomputes from x: only x (and β's tensor) is saved.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.library import custom_op

from mila_bench.activations import fused_mila
from mila_bench.activations.kernels import triton_mila

_NHWC, _NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _channels_last(x: Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def as_vector(t: Tensor, like: Tensor) -> Tensor:
    """``t``'s elements in ``like``'s memory order, as one contiguous vector (a view where ``t``
    is laid out as ``like``; a copy otherwise, as for any non-dense tensor)."""
    return (t.permute(_NHWC) if _channels_last(like) else t).reshape(-1)


def from_vector(v: Tensor, like: Tensor) -> Tensor:
    """A vector in ``like``'s memory order, viewed with ``like``'s shape and layout."""
    if _channels_last(like):
        return v.view(like.permute(_NHWC).shape).permute(_NCHW)
    return v.view(like.shape)


def _on_vectors(kernel: Callable, x: Tensor, grad: Tensor | None = None):
    """Apply ``kernel(x_vector[, grad_vector])`` and give each tensor result x's shape and layout."""
    args = (as_vector(x, x),) if grad is None else (as_vector(x, x), as_vector(grad, x))
    out = kernel(*args)
    if isinstance(out, tuple):
        return from_vector(out[0], x), out[1]
    return from_vector(out, x)


def _triton(x: Tensor) -> bool:
    """Whether this CUDA call runs the Triton kernels (recording it in the run's kernel state)."""
    state = fused_mila.current()
    if state.impl != "auto" or not triton_mila.available():
        return False
    state.ran("triton")
    return True


def _torch_forward(x: Tensor, beta: float | Tensor) -> Tensor:
    return _on_vectors(lambda v: fused_mila.run_kernel("forward", v, beta), x)


def _torch_backward(grad: Tensor, x: Tensor, beta: float | Tensor, want_beta: bool) -> tuple[Tensor, Tensor | None]:
    return _on_vectors(lambda v, g: fused_mila.run_kernel("backward", v, beta, g, want_beta), x, grad)


def _cuda_forward(x: Tensor, beta: float | Tensor) -> Tensor:
    if not _triton(x):
        return _torch_forward(x, beta)
    return _on_vectors(lambda v: triton_mila.forward(v, beta), x)


def _cuda_backward(grad: Tensor, x: Tensor, beta: float | Tensor, want_beta: bool) -> tuple[Tensor, Tensor | None]:
    if not _triton(x):
        return _torch_backward(grad, x, beta, want_beta)
    return _on_vectors(lambda v, g: triton_mila.backward(v, beta, g, want_beta), x, grad)


def _forward(x: Tensor, beta: float | Tensor) -> Tensor:
    """The kernels for x's device, as the dispatcher picks them for the operators."""
    return (_cuda_forward if x.is_cuda else _torch_forward)(x, beta)


def _backward(grad: Tensor, x: Tensor, beta: float | Tensor, want_beta: bool) -> tuple[Tensor, Tensor | None]:
    return (_cuda_backward if x.is_cuda else _torch_backward)(grad, x, beta, want_beta)


def _fake_like(x: Tensor) -> Tensor:
    return from_vector(torch.empty_like(as_vector(x, x)), x)


# --- the operators ----------------------------------------------------------------------------


@custom_op("mila_bench::mila", mutates_args=())
def mila_op(x: Tensor, beta: float) -> Tensor:
    """Mila(x; β) with a float β."""
    return _torch_forward(x, beta)


@custom_op("mila_bench::mila_tensor_beta", mutates_args=())
def mila_tensor_beta_op(x: Tensor, beta: Tensor) -> Tensor:
    """Mila(x; β) with β a scalar tensor (learnable)."""
    return _torch_forward(x, beta)


@custom_op("mila_bench::mila_backward", mutates_args=())
def mila_backward_op(grad: Tensor, x: Tensor, beta: float) -> Tensor:
    """dL/dx of :func:`mila_op`, from x and the incoming gradient."""
    return _torch_backward(grad, x, beta, False)[0]


@custom_op("mila_bench::mila_tensor_beta_backward", mutates_args=())
def mila_tensor_beta_backward_op(grad: Tensor, x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """(dL/dx, dL/dβ in β's dtype and shape) of :func:`mila_tensor_beta_op`."""
    grad_x, grad_beta = _torch_backward(grad, x, beta, True)
    return grad_x, grad_beta.sum().to(beta.dtype).reshape(beta.shape)


@mila_op.register_kernel("cuda")
def _(x: Tensor, beta: float) -> Tensor:
    return _cuda_forward(x, beta)


@mila_tensor_beta_op.register_kernel("cuda")
def _(x: Tensor, beta: Tensor) -> Tensor:
    return _cuda_forward(x, beta)


@mila_backward_op.register_kernel("cuda")
def _(grad: Tensor, x: Tensor, beta: float) -> Tensor:
    return _cuda_backward(grad, x, beta, False)[0]


@mila_tensor_beta_backward_op.register_kernel("cuda")
def _(grad: Tensor, x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    grad_x, grad_beta = _cuda_backward(grad, x, beta, True)
    return grad_x, grad_beta.sum().to(beta.dtype).reshape(beta.shape)


@mila_op.register_fake
def _(x: Tensor, beta: float) -> Tensor:
    return _fake_like(x)


@mila_tensor_beta_op.register_fake
def _(x: Tensor, beta: Tensor) -> Tensor:
    return _fake_like(x)


@mila_backward_op.register_fake
def _(grad: Tensor, x: Tensor, beta: float) -> Tensor:
    return _fake_like(x)


@mila_tensor_beta_backward_op.register_fake
def _(grad: Tensor, x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    return _fake_like(x), torch.empty_like(beta)


# --- autograd ---------------------------------------------------------------------------------


def _setup_context(ctx, inputs: tuple, output: Tensor) -> None:
    x, beta = inputs
    if isinstance(beta, Tensor):
        ctx.save_for_backward(x, beta)
    else:
        ctx.save_for_backward(x)
        ctx.beta = beta
    # Eager, backward runs under its forward's kernel state even once the run's block has ended;
    # in a compiled graph the kernels read the state current when they run.
    ctx.kernels = None if torch.compiler.is_compiling() else fused_mila.current()


def _mila_backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """Both operators' backward (and the eager function's): traced, the backward operators;
    eagerly, their kernels directly under the forward's kernel state."""
    float_beta = hasattr(ctx, "beta")
    x, beta = (ctx.saved_tensors[0], ctx.beta) if float_beta else ctx.saved_tensors
    if ctx.kernels is None:
        if float_beta:
            return mila_backward_op(grad, x, beta), None
        grad_x, grad_beta = mila_tensor_beta_backward_op(grad, x, beta)
    else:
        with fused_mila.kernels(ctx.kernels):
            grad_x, grad_beta = _backward(grad, x, beta, not float_beta and ctx.needs_input_grad[1])
        if grad_beta is not None:
            grad_beta = grad_beta.sum().to(beta.dtype).reshape(beta.shape)
    return grad_x, (grad_beta if not float_beta and ctx.needs_input_grad[1] else None)


mila_op.register_autograd(_mila_backward, setup_context=_setup_context)
mila_tensor_beta_op.register_autograd(_mila_backward, setup_context=_setup_context)


class _EagerMila(torch.autograd.Function):
    """The same kernels for eager calls, without the operator's dispatch: a custom op costs
    about 0.1 ms more per forward and backward on CPU, a tenth of the demo MLP's step.

    Written in the form ``torch.func`` transforms accept (forward without ctx, setup_context,
    a vmap rule), so packed members (``training.packed``, ``vmap`` over N models) run it too.
    """

    @staticmethod
    def forward(x: Tensor, beta: float | Tensor) -> Tensor:
        return _forward(x, beta)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: Tensor) -> None:
        _setup_context(ctx, inputs, output)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return _mila_backward(ctx, grad)

    @staticmethod
    def vmap(info, in_dims: tuple, x: Tensor, beta: float | Tensor) -> tuple[Tensor, int | None]:
        """Elementwise, so one β for every member is one call on the whole batched tensor; a β per
        member (packed members differing in β) is one call per member, each with its own β."""
        x_dim, beta_dim = in_dims
        if beta_dim is None:
            return _EagerMila.apply(x, beta), x_dim
        x = x.movedim(x_dim, 0) if x_dim is not None else x.expand(info.batch_size, *x.shape)
        return _MilaPerMember.apply(x, beta.movedim(beta_dim, 0).reshape(info.batch_size)), 0


class _MilaPerMember(torch.autograd.Function):
    """Mila with one β per leading index: x [N, ...], β [N] (packed members differing in β, one
    call for all of them, however many). The formula kernels (``fused_mila._forward`` and
    ``_backward``, β broadcast), so only x and β are kept for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, beta: Tensor) -> Tensor:
        ctx.save_for_backward(x, beta)
        return fused_mila._forward(x, _per_row(beta, x))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor | None]:
        x, beta = ctx.saved_tensors
        want_beta = ctx.needs_input_grad[1]
        grad_x, grad_beta = fused_mila._backward(x, _per_row(beta, x), grad, want_beta)
        if grad_beta is not None:
            grad_beta = grad_beta.reshape(len(beta), -1).sum(dim=1, dtype=torch.float64).to(beta.dtype)
        return grad_x, grad_beta


def _per_row(beta: Tensor, x: Tensor) -> Tensor:
    """β [N] shaped to broadcast over x [N, ...], in x's compute precision (float32 for half types)."""
    return beta.reshape(-1, *[1] * (x.dim() - 1)).to(torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype)


def mila(x: Tensor, beta: float | Tensor) -> Tensor:
    """Mila(x; β). Eagerly, the run's kernels through autograd directly. Under ``torch.compile``:

    - ``activation.impl=auto``: the formula in plain tensor operations (``fused_mila._forward``),
      which Inductor fuses with its neighbours (a BatchNorm's normalisation and Mila in one pass
      over memory, which no opaque kernel allows) and differentiates itself: its partitioner
      keeps what backward needs or recomputes it. No autograd.Function, so torch 2.11's bug does
      not apply. Recorded as the ``inductor`` kernel (Dynamo replays the record on every call).
    - ``eager`` or ``compiled``: the operator for ``beta``'s kind (a float, or a scalar tensor),
      which Dynamo does not trace into: exactly the kernels those impls name, no graph break.
    """
    if not torch.compiler.is_compiling():
        return _EagerMila.apply(x, beta if isinstance(beta, Tensor) else float(beta))
    state = fused_mila.current()
    if state.impl == "auto":
        state.ran("inductor")
        return fused_mila._forward(x, beta)
    if isinstance(beta, Tensor):
        return mila_tensor_beta_op(x, beta)
    return mila_op(x, float(beta))
