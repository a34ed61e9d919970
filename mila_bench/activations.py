"""Activation functions resolved by name through one registry.

Each activation is written once, as a function of a tensor and its named parameters; the
``nn.Module`` form (:class:`Activation`) binds the parameters (as floats, or as learnable
``nn.Parameter`` scalars) and calls that same function, so the two forms cannot drift apart.
The set covers every activation of the original project's tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mila_bench.errors import UsageError, unknown_name
from mila_bench.fused_mila import fused_mila, set_impl, would_compile

ActivationFn = Callable[..., Tensor]
Param = float | Tensor
#: Keys of the ``activation`` config group that configure the module rather than the function.
SETTINGS = ("name", "impl", "learnable_beta", "beta_init")


@dataclass(frozen=True)
class ActivationSpec:
    """A registry entry: the function, its parameters' defaults, and which are always learned."""

    name: str
    fn: ActivationFn
    defaults: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    learnable: tuple[str, ...] = ()


_REGISTRY: dict[str, ActivationSpec] = {}


def register(
    name: str, summary: str, learnable: tuple[str, ...] = (), **defaults: float
) -> Callable[[ActivationFn], ActivationFn]:
    """Decorator adding ``fn`` to the registry under ``name``."""

    def add(fn: ActivationFn) -> ActivationFn:
        if name in _REGISTRY:
            raise ValueError(f"activation {name!r} registered twice")
        _REGISTRY[name] = ActivationSpec(name, fn, dict(defaults), summary, learnable)
        return fn

    return add


def available() -> list[str]:
    """Names of all registered activations, sorted."""
    return sorted(_REGISTRY)


def spec(name: str) -> ActivationSpec:
    """The registry entry for ``name``; an unknown name lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name("activation", name, _REGISTRY) from None


def _finite(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"activation.{key}={value!r} is not a finite number; expected e.g. activation.{key}=-0.25")
    return float(value)


def resolve_params(name: str, params: Mapping[str, object]) -> dict[str, float]:
    """Defaults of ``name`` updated with ``params``, each checked to be a finite number."""
    entry = spec(name)
    resolved = dict(entry.defaults)
    for key, value in params.items():
        if key not in entry.defaults:
            allowed = ", ".join(sorted(entry.defaults)) or "none"
            raise UsageError(f"activation {name!r} has no parameter {key!r}; its parameters: {allowed}")
        resolved[key] = _finite(key, value)
    return resolved


class Activation(nn.Module):
    """Module form of a registered activation, with its parameters bound.

    Parameters named in ``learn`` (plus those the activation always learns, as PReLU's α)
    become scalar ``nn.Parameter``s trained with the network.
    """

    def __init__(self, name: str, learn: Iterable[str] = (), **params: float) -> None:
        super().__init__()
        entry = spec(name)
        self.name = name
        self.fn = entry.fn
        resolved = resolve_params(name, params)
        learned = set(entry.learnable) | set(learn)
        for key in learned - set(resolved):
            raise UsageError(f"activation {name!r} has no parameter {key!r} to learn")
        self.fixed = {k: v for k, v in resolved.items() if k not in learned}
        self.learned = nn.ParameterDict({k: nn.Parameter(torch.tensor(resolved[k])) for k in sorted(learned)})

    @property
    def params(self) -> dict[str, float]:
        """All parameter values now (learned ones as they currently stand)."""
        return {**self.fixed, **{k: p.item() for k, p in self.learned.items()}}

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, **self.fixed, **self.learned)

    def extra_repr(self) -> str:
        bound = [f"{k}={v:g}" for k, v in self.fixed.items()]
        bound += [f"{k}={p.item():g} (learned)" for k, p in self.learned.items()]
        return ", ".join([self.name, *bound])


def get_activation(name: str, **params: float) -> Activation:
    """Build the module form of activation ``name``."""
    return Activation(name, **params)


def activation_factory(cfg: Mapping) -> Callable[[], Activation]:
    """Check an ``activation`` config group; return a maker of fresh modules for the model.

    ``learnable_beta`` makes β a parameter (one per module) starting at ``beta_init``, or at
    ``beta`` when no start is given; ``impl`` picks Mila's kernels (see ``fused_mila``).
    """
    name = cfg["name"]
    params = resolve_params(name, {k: v for k, v in cfg.items() if k not in SETTINGS})
    learn: tuple[str, ...] = ()
    if cfg.get("learnable_beta"):
        if "beta" not in params:
            raise UsageError(f"activation {name!r} has no beta to learn; learnable_beta needs mila, beta_mish or aria2")
        if cfg.get("beta_init") is not None:
            params["beta"] = _finite("beta_init", cfg["beta_init"])
        learn = ("beta",)
    if "impl" in cfg:
        set_impl(str(cfg["impl"]))
    return lambda: Activation(name, learn=learn, **params)


def learned_values(model: nn.Module) -> dict[str, float]:
    """Current values of every learned activation parameter, by module path."""
    return {
        f"{path}.{key}" if path else key: param.item()
        for path, module in model.named_modules()
        if isinstance(module, Activation)
        for key, param in module.learned.items()
    }


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
