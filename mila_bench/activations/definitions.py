"""The built-in activations' functions, one per registry entry, under the entry's name.

Each takes x and exactly the parameters its entry in :mod:`~mila_bench.activations.registry`
declares, without defaults: that entry is the one place a name, summary and default are
written (checked by ``registry.builtin_function`` on first use). Only runs and plots import
this module, and torch with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mila_bench.activations.fused_mila import would_compile
from mila_bench.activations.kernels.op import mila as mila_kernel

Param = float | Tensor


# --- The activations -------------------------------------------------------------------


def mila(x: Tensor, beta: Param) -> Tensor:
    """Mila through the fused kernel: finite everywhere, only x saved for backward."""
    return mila_kernel(x, beta)


def mish(x: Tensor) -> Tensor:
    """The fused kernel where it is compiled on CPU (it beats F.mish there), else PyTorch's F.mish
    (on CUDA, F.mish is already at the memory floor)."""
    return mila_kernel(x, 0.0) if not x.is_cuda and would_compile(x) else F.mish(x)


def swish(x: Tensor) -> Tensor:
    return F.silu(x)


def relu(x: Tensor) -> Tensor:
    return F.relu(x)


def beta_mish(x: Tensor, beta: Param) -> Tensor:
    return x * torch.tanh(beta * F.softplus(x))


def elu(x: Tensor, alpha: Param) -> Tensor:
    return F.elu(x, float(alpha)) if not isinstance(alpha, Tensor) else torch.where(x > 0, x, alpha * torch.expm1(x))


def selu(x: Tensor) -> Tensor:
    return F.selu(x)


def softplus(x: Tensor) -> Tensor:
    return F.softplus(x)


def tanh(x: Tensor) -> Tensor:
    return torch.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def hard_sigmoid(x: Tensor) -> Tensor:
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def softsign(x: Tensor) -> Tensor:
    return F.softsign(x)


def leaky_relu(x: Tensor, alpha: Param) -> Tensor:
    return torch.where(x > 0, x, alpha * x)


def prelu(x: Tensor, alpha: Param) -> Tensor:
    return torch.where(x > 0, x, alpha * x)


def bent_identity(x: Tensor) -> Tensor:
    return (torch.sqrt(x * x + 1.0) - 1.0) / 2.0 + x


def aria2(x: Tensor, beta: Param, alpha: Param) -> Tensor:
    """Written as x * exp(-alpha * softplus(-beta x)) so large |x| cannot overflow."""
    return x * torch.exp(-alpha * F.softplus(-beta * x))


def thresholded_relu(x: Tensor, theta: Param) -> Tensor:
    return torch.where(x > theta, x, torch.zeros_like(x))


# --- The modern baselines --------------------------------------------------------------


def gelu(x: Tensor) -> Tensor:
    return F.gelu(x)


def gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def hardswish(x: Tensor) -> Tensor:
    return F.hardswish(x)


def hardtanh(x: Tensor, min_val: Param, max_val: Param) -> Tensor:
    if isinstance(min_val, Tensor) or isinstance(max_val, Tensor):  # learned bounds keep their gradient
        return torch.minimum(torch.maximum(x, torch.as_tensor(min_val, dtype=x.dtype)), torch.as_tensor(max_val, dtype=x.dtype))
    return F.hardtanh(x, float(min_val), float(max_val))


def relu6(x: Tensor) -> Tensor:
    return F.relu6(x)


def squared_relu(x: Tensor) -> Tensor:
    return torch.square(F.relu(x))


def celu(x: Tensor, alpha: Param) -> Tensor:
    if isinstance(alpha, Tensor):
        return torch.where(x > 0, x, alpha * torch.expm1(x / alpha))
    return F.celu(x, float(alpha))
