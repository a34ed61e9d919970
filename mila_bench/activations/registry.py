"""The registry: each built-in activation declared once, by name, without importing torch.

An entry gives the name, the parameters with their defaults (the one place a default is
written: the ``activation`` configs take theirs from here, see ``config.store_activation_configs``),
a one-line summary and which parameters are always learned. The function itself is
``definitions.<name>``, imported (with torch) only when a run or a plot needs it, so
``mila-bench list`` and a config check cost no torch import. Installed plugins and custom
targets become entries of the same shape (:mod:`mila_bench.activations.plugins`); lookups that
span both live in :mod:`mila_bench.activations.catalog`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor, nn

ActivationFn = Callable[..., "Tensor"]
#: Keys of the ``activation`` config group that configure the module rather than the function.
SETTINGS = ("name", "impl", "learnable_beta", "beta_init", "target")
#: ``activation.impl``: Mila's kernels (see ``fused_mila``), here so a config is checked without torch.
IMPLS = ("auto", "compiled", "eager")
#: Entry-point group through which installed packages add activations.
PLUGIN_GROUP = "mila_bench.activations"
#: The config option that runs ``activation.target`` (not a registry name).
CUSTOM = "custom"
TARGET_SYNTAX = "MODULE:NAME, e.g. activation.target=my_acts:serf (my_acts.py in the current directory, or installed)"
#: Where each built-in's function lives, under the entry's name.
DEFINITIONS = "mila_bench.activations.definitions"


@dataclass(frozen=True)
class ActivationEntry:
    """A registry entry: parameters' defaults, summary, which are always learned, and the function.

    Plugins and custom targets carry their imported object (``loaded``), where it comes from
    (``target``, ``origin``) and, for an ``nn.Module`` class, the class (built with the
    parameters, then called on x). A built-in's function is looked up on first use (:attr:`fn`).
    """

    name: str
    defaults: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    learnable: tuple[str, ...] = ()
    target: str | None = None
    origin: str = "built-in"
    module_class: "type[nn.Module] | None" = None
    loaded: ActivationFn | None = field(default=None, repr=False)

    @property
    def fn(self) -> ActivationFn:
        """The function f(x, **params); a built-in's is imported from :mod:`definitions` here."""
        return self.loaded if self.loaded is not None else builtin_function(self.name)


#: The built-in activations by name (aliases too); plugins are found separately.
BUILTINS: dict[str, ActivationEntry] = {}


def builtin(name: str, summary: str, learnable: tuple[str, ...] = (), **defaults: float) -> None:
    """Declare the built-in ``name``: its parameters with their defaults; ``definitions.<name>`` computes it."""
    if name in BUILTINS:
        raise ValueError(f"activation {name!r} registered twice")
    BUILTINS[name] = ActivationEntry(name, dict(defaults), summary, learnable)


def alias(name: str, of: str) -> None:
    """Make ``name`` a second name of the entry ``of`` (the same entry, not a copy)."""
    if name in BUILTINS:
        raise ValueError(f"activation {name!r} registered twice")
    BUILTINS[name] = BUILTINS[of]


@functools.cache
def builtin_function(name: str) -> ActivationFn:
    """``definitions.<name>``, checked to take exactly the entry's parameters, none defaulted there.

    The check keeps the registry the only place a default is written: a default in the
    signature, or a parameter the entry does not declare, is a bug found on first use.
    """
    fn = getattr(importlib.import_module(DEFINITIONS), name)
    params = list(inspect.signature(fn).parameters.values())[1:]  # after x
    declared = set(BUILTINS[name].defaults)
    if {p.name for p in params} != declared or any(p.default is not p.empty for p in params):
        raise TypeError(
            f"{DEFINITIONS}.{name} must take (x, {', '.join(sorted(declared))}) with no defaults: "
            "the registry entry gives them"
        )
    return fn


# --- The activations: name, summary, parameters with their defaults ----------------------

builtin("mila", "x * tanh(softplus(x + beta)); beta = 0 is Mish", beta=-0.25)
builtin("mish", "x * tanh(softplus(x))")
builtin("swish", "x * sigmoid(x), Swish-1 (PyTorch's SiLU)")
alias("silu", "swish")
builtin("relu", "max(x, 0)")
builtin("beta_mish", "x * tanh(ln((1 + e^x)^beta)) = x * tanh(beta * softplus(x))", beta=1.5)
builtin("elu", "x if x > 0 else alpha * (e^x - 1)", alpha=1.0)
builtin("selu", "scale * elu(x, alpha) with the self-normalising constants")
builtin("softplus", "ln(1 + e^x)")
builtin("tanh", "tanh(x)")
builtin("sigmoid", "1 / (1 + e^-x)")
builtin("hard_sigmoid", "clip(0.2 x + 0.5, 0, 1), Keras's definition (the original tables used Keras)")
builtin("softsign", "x / (1 + |x|)")
builtin("leaky_relu", "x if x > 0 else alpha * x (alpha 0.3 as in the original table)", alpha=0.3)
builtin("prelu", "x if x > 0 else alpha * x, alpha learned (starts at Keras's 0)", learnable=("alpha",), alpha=0.0)
builtin("bent_identity", "(sqrt(x^2 + 1) - 1) / 2 + x")
builtin("aria2", "x * (1 + e^(-beta x))^(-alpha), ARiA-2", beta=1.0, alpha=1.5)
builtin("thresholded_relu", "x if x > theta else 0", theta=1.0)

# The modern baselines
builtin("gelu", "x * Phi(x), exact (erf); today's default in transformers")
builtin("gelu_tanh", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), GELU's tanh approximation")
builtin("hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)")
builtin("hardtanh", "clip(x, min_val, max_val)", min_val=-1.0, max_val=1.0)
builtin("relu6", "min(max(x, 0), 6)")
builtin("squared_relu", "max(x, 0)^2 (Primer)")
builtin("celu", "max(0, x) + min(0, alpha * (e^(x / alpha) - 1))", alpha=1.0)
