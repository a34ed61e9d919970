"""The built-in activations, each written once as a function of a tensor and its parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mila_bench.activations.fused_mila import fused_mila, would_compile
from mila_bench.activations.registry import alias, register

Param = float | Tensor


# --- The activations -------------------------------------------------------------------


@register("mila", "x * tanh(softplus(x + beta)); beta = 0 is Mish", beta=-0.25)
def mila(x: Tensor, beta: Param = -0.25) -> Tensor:
    """Mila through the fused kernel: finite everywhere, only x saved for backward."""
    return fused_mila(x, beta)


@register("mish", "x * tanh(softplus(x))")
def mish(x: Tensor) -> Tensor:
    """The fused kernel where it is compiled (it beats F.mish there), else PyTorch's F.mish."""
    return fused_mila(x, 0.0) if would_compile(x) else F.mish(x)


@register("swish", "x * sigmoid(x), Swish-1 (PyTorch's SiLU)")
def swish(x: Tensor) -> Tensor:
    return F.silu(x)


alias("silu", "swish")


@register("relu", "max(x, 0)")
def relu(x: Tensor) -> Tensor:
    return F.relu(x)


@register("beta_mish", "x * tanh(ln((1 + e^x)^beta)) = x * tanh(beta * softplus(x))", beta=1.5)
def beta_mish(x: Tensor, beta: Param = 1.5) -> Tensor:
    return x * torch.tanh(beta * F.softplus(x))


@register("elu", "x if x > 0 else alpha * (e^x - 1)", alpha=1.0)
def elu(x: Tensor, alpha: Param = 1.0) -> Tensor:
    return F.elu(x, float(alpha)) if not isinstance(alpha, Tensor) else torch.where(x > 0, x, alpha * torch.expm1(x))


@register("selu", "scale * elu(x, alpha) with the self-normalising constants")
def selu(x: Tensor) -> Tensor:
    return F.selu(x)


@register("softplus", "ln(1 + e^x)")
def softplus(x: Tensor) -> Tensor:
    return F.softplus(x)


@register("tanh", "tanh(x)")
def tanh(x: Tensor) -> Tensor:
    return torch.tanh(x)


@register("sigmoid", "1 / (1 + e^-x)")
def sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


@register("hard_sigmoid", "clip(0.2 x + 0.5, 0, 1), Keras's definition (the original tables used Keras)")
def hard_sigmoid(x: Tensor) -> Tensor:
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


@register("softsign", "x / (1 + |x|)")
def softsign(x: Tensor) -> Tensor:
    return F.softsign(x)


@register("leaky_relu", "x if x > 0 else alpha * x (alpha 0.3 as in the original table)", alpha=0.3)
def leaky_relu(x: Tensor, alpha: Param = 0.3) -> Tensor:
    return torch.where(x > 0, x, alpha * x)


@register("prelu", "x if x > 0 else alpha * x, alpha learned (starts at Keras's 0)", learnable=("alpha",), alpha=0.0)
def prelu(x: Tensor, alpha: Param = 0.0) -> Tensor:
    return torch.where(x > 0, x, alpha * x)


@register("bent_identity", "(sqrt(x^2 + 1) - 1) / 2 + x")
def bent_identity(x: Tensor) -> Tensor:
    return (torch.sqrt(x * x + 1.0) - 1.0) / 2.0 + x


@register("aria2", "x * (1 + e^(-beta x))^(-alpha), ARiA-2", beta=1.0, alpha=1.5)
def aria2(x: Tensor, beta: Param = 1.0, alpha: Param = 1.5) -> Tensor:
    """Written as x * exp(-alpha * softplus(-beta x)) so large |x| cannot overflow."""
    return x * torch.exp(-alpha * F.softplus(-beta * x))


@register("thresholded_relu", "x if x > theta else 0", theta=1.0)
def thresholded_relu(x: Tensor, theta: Param = 1.0) -> Tensor:
    return torch.where(x > theta, x, torch.zeros_like(x))


# --- The modern baselines --------------------------------------------------------------


@register("gelu", "x * Phi(x), exact (erf); today's default in transformers")
def gelu(x: Tensor) -> Tensor:
    return F.gelu(x)


@register("gelu_tanh", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), GELU's tanh approximation")
def gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


@register("hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)")
def hardswish(x: Tensor) -> Tensor:
    return F.hardswish(x)


@register("hardtanh", "clip(x, min_val, max_val)", min_val=-1.0, max_val=1.0)
def hardtanh(x: Tensor, min_val: Param = -1.0, max_val: Param = 1.0) -> Tensor:
    if isinstance(min_val, Tensor) or isinstance(max_val, Tensor):  # learned bounds keep their gradient
        return torch.minimum(torch.maximum(x, torch.as_tensor(min_val, dtype=x.dtype)), torch.as_tensor(max_val, dtype=x.dtype))
    return F.hardtanh(x, float(min_val), float(max_val))


@register("relu6", "min(max(x, 0), 6)")
def relu6(x: Tensor) -> Tensor:
    return F.relu6(x)


@register("squared_relu", "max(x, 0)^2 (Primer)")
def squared_relu(x: Tensor) -> Tensor:
    return torch.square(F.relu(x))


@register("celu", "max(0, x) + min(0, alpha * (e^(x / alpha) - 1))", alpha=1.0)
def celu(x: Tensor, alpha: Param = 1.0) -> Tensor:
    if isinstance(alpha, Tensor):
        return torch.where(x > 0, x, alpha * torch.expm1(x / alpha))
    return F.celu(x, float(alpha))
