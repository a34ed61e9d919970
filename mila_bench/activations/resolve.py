"""Building activation modules from a checked ``activation`` config: :class:`Activation` binds an
entry's function to its parameters (imports torch; the torch-free lookups and checks are
:mod:`mila_bench.activations.catalog`'s)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

from mila_bench.activations.catalog import checked_params, label, resolve_params, find_entry
from mila_bench.activations.plugins import custom_entry, probe
from mila_bench.activations.registry import CUSTOM
from mila_bench.errors import UsageError


class Activation(nn.Module):
    """Module form of a registered activation, with its parameters bound.

    Parameters named in ``learn`` (plus those the activation always learns, as PReLU's α)
    become scalar ``nn.Parameter``s trained with the network.
    """

    def __init__(self, name: str, learn: Iterable[str] = (), *, target: str | None = None, **params: float) -> None:
        super().__init__()
        entry = custom_entry(target) if target is not None else find_entry(name)
        self.name = name
        self.fn = entry.fn
        resolved = resolve_params(name, params, entry)
        learned = set(entry.learnable) | set(learn)
        for key in learned - set(resolved):
            raise UsageError(f"activation {name!r} has no parameter {key!r} to learn")
        if learned and entry.module_class is not None:
            raise UsageError(f"{entry.target} is an nn.Module class: its own nn.Parameters are learned, not {sorted(learned)}")
        self.fixed = {k: v for k, v in resolved.items() if k not in learned}
        self.learned = nn.ParameterDict({k: nn.Parameter(torch.tensor(resolved[k])) for k in sorted(learned)})
        self.learned_names = tuple(sorted(learned))
        self.held: tuple[str, ...] = ()  # fixed parameters held as tensors (see hold_as_tensors)
        # An nn.Module class is built once with its parameters, so its own weights train with the network.
        self.inner = entry.module_class(**self.fixed) if entry.module_class is not None else None

    @property
    def params(self) -> dict[str, float]:
        """All parameter values now (learned ones as they currently stand)."""
        held = {k: self.get_buffer(f"held_{k}").item() for k in self.held}
        return {**self.fixed, **held, **{k: p.item() for k, p in self.learned.items()}}

    def hold_as_tensors(self, keys: Iterable[str]) -> None:
        """Fixed parameters ``keys`` as 0-d tensors (non-persistent buffers), not floats: packed
        members (``training.packed``) differing in β stack them, one value per member. Not in the
        state dict, so a packed member's checkpoint is a lone run's."""
        for key in keys:
            self.register_buffer(f"held_{key}", torch.tensor(float(self.fixed.pop(key))), persistent=False)
            self.held += (key,)

    def forward(self, x: Tensor) -> Tensor:
        if self.inner is not None:
            return self.inner(x)
        # Each learned parameter by name: torch 2.11's Dynamo breaks the graph at ``**ParameterDict``.
        held = {key: self.get_buffer(f"held_{key}") for key in self.held}
        return self.fn(x, **self.fixed, **held, **{key: self.learned[key] for key in self.learned_names})

    def extra_repr(self) -> str:
        bound = [f"{k}={v:g}" for k, v in self.fixed.items()]
        bound += [f"{k}={self.get_buffer(f'held_{k}').item():g}" for k in self.held]
        bound += [f"{k}={p.item():g} (learned)" for k, p in self.learned.items()]
        return ", ".join([self.name, *bound])


def get_activation(name: str, **params: float) -> Activation:
    """Build the module form of activation ``name``."""
    return Activation(name, **params)


def activation_factory(cfg: Mapping) -> Callable[[], Activation]:
    """Check an ``activation`` config group; return a maker of fresh modules for the model.

    ``learnable_beta`` makes β a parameter (one per module) starting at ``beta_init``, or at
    ``beta`` when no start is given. ``impl`` (Mila's kernels, see ``fused_mila``) is only checked
    here: each run applies its own (``training.run_settings``). A plugin or custom target is
    probed first (:func:`probe`).
    """
    name = cfg["name"]
    entry, params, learn = checked_params(cfg)  # impl is checked there; each run applies it (training.run_settings)
    target = entry.target if name == CUSTOM else None
    make = lambda: Activation(name, learn=learn, target=target, **params)  # noqa: E731
    if entry.target is not None:
        probe(make, label(name, entry), tuple(sorted(params.items())), learn)
    return make


def learned_values(model: nn.Module) -> dict[str, float]:
    """Current values of every learned activation parameter, by module path."""
    return {
        f"{path}.{key}" if path else key: param.item()
        for path, module in model.named_modules()
        if isinstance(module, Activation)
        for key, param in module.learned.items()
    }
