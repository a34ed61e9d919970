"""The registry: each activation's entry (function, parameter defaults, what it learns), by name.

Built-ins register themselves (:mod:`mila_bench.activations.definitions`); installed plugins and
custom targets become entries of the same shape (:mod:`mila_bench.activations.plugins`). Lookups
that span both live in :mod:`mila_bench.activations.resolve`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor, nn

ActivationFn = Callable[..., "Tensor"]
#: Keys of the ``activation`` config group that configure the module rather than the function.
SETTINGS = ("name", "impl", "learnable_beta", "beta_init", "target")
#: Entry-point group through which installed packages add activations.
PLUGIN_GROUP = "mila_bench.activations"
#: The config option that runs ``activation.target`` (not a registry name).
CUSTOM = "custom"
TARGET_SYNTAX = "MODULE:NAME, e.g. activation.target=my_acts:serf (my_acts.py in the current directory, or installed)"


@dataclass(frozen=True)
class ActivationSpec:
    """A registry entry: the function, its parameters' defaults, and which are always learned.

    Plugins and custom targets also carry where they come from (``target``, ``origin``) and,
    for an ``nn.Module`` class, the class (built with the parameters, then called on x).
    """

    name: str
    fn: ActivationFn
    defaults: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    learnable: tuple[str, ...] = ()
    target: str | None = None
    origin: str = "built-in"
    module_class: "type[nn.Module] | None" = None


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


def alias(name: str, of: str) -> None:
    """Make ``name`` a second name of the entry ``of`` (the same entry, not a copy)."""
    if name in _REGISTRY:
        raise ValueError(f"activation {name!r} registered twice")
    _REGISTRY[name] = _REGISTRY[of]
