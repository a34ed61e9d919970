"""Activation functions resolved by name through one registry.

Each activation is written once, as a function of a tensor and its named float
parameters; the ``nn.Module`` form (:class:`Activation`) binds the parameters and calls
that same function, so the two forms cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mila_bench.errors import UsageError, unknown_name

ActivationFn = Callable[..., Tensor]


@dataclass(frozen=True)
class ActivationSpec:
    """A registry entry: the function and the defaults of its parameters."""

    name: str
    fn: ActivationFn
    defaults: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""


_REGISTRY: dict[str, ActivationSpec] = {}


def register(name: str, summary: str, **defaults: float) -> Callable[[ActivationFn], ActivationFn]:
    """Decorator adding ``fn`` to the registry under ``name``."""

    def add(fn: ActivationFn) -> ActivationFn:
        if name in _REGISTRY:
            raise ValueError(f"activation {name!r} registered twice")
        _REGISTRY[name] = ActivationSpec(name, fn, dict(defaults), summary)
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


def resolve_params(name: str, params: Mapping[str, object]) -> dict[str, float]:
    """Defaults of ``name`` updated with ``params``, each checked to be a finite number."""
    entry = spec(name)
    resolved = dict(entry.defaults)
    for key, value in params.items():
        if key not in entry.defaults:
            allowed = ", ".join(sorted(entry.defaults)) or "none"
            raise UsageError(f"activation {name!r} has no parameter {key!r}; its parameters: {allowed}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"activation.{key}={value!r} is not a finite number; expected e.g. activation.{key}=-0.25")
        resolved[key] = float(value)
    return resolved


class Activation(nn.Module):
    """Module form of a registered activation, with its parameters bound."""

    def __init__(self, name: str, **params: float) -> None:
        super().__init__()
        self.name = name
        self.fn = spec(name).fn
        self.params = resolve_params(name, params)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, **self.params)

    def extra_repr(self) -> str:
        bound = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}" + (f", {bound}" if bound else "")


def get_activation(name: str, **params: float) -> Activation:
    """Build the module form of activation ``name``."""
    return Activation(name, **params)


@register("mila", "x * tanh(softplus(x + beta)); beta = 0 is Mish", beta=-0.25)
def mila(x: Tensor, beta: float = -0.25) -> Tensor:
    """Mila. softplus switches to the identity for large inputs, so nothing overflows."""
    return x * torch.tanh(F.softplus(x + beta))


@register("mish", "x * tanh(softplus(x)) (PyTorch's native kernel)")
def mish(x: Tensor) -> Tensor:
    return F.mish(x)


@register("swish", "x * sigmoid(x), Swish-1 (PyTorch's SiLU)")
def swish(x: Tensor) -> Tensor:
    return F.silu(x)


@register("relu", "max(x, 0)")
def relu(x: Tensor) -> Tensor:
    return F.relu(x)
