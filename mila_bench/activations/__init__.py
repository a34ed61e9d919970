"""Activation functions, resolved by name through one registry.

- :mod:`~mila_bench.activations.registry`: each built-in declared once (name, defaults, what it learns); no torch.
- :mod:`~mila_bench.activations.definitions`: the built-ins' functions, bound to those entries by name.
- :mod:`~mila_bench.activations.fused_mila`: Mila's CPU kernels (compiled and eager) and each run's kernel state.
- :mod:`~mila_bench.activations.kernels`: Mila's CUDA kernels (Triton) and the custom operator that picks by device.
- :mod:`~mila_bench.activations.plugins`: entry-point plugins and ``activation=custom`` targets.
- :mod:`~mila_bench.activations.catalog`: every name (built-in or plugin), its entry, a config checked; no torch.
- :mod:`~mila_bench.activations.resolve`: a checked ``activation`` config → modules.

The names below are loaded on first use, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "catalog": ("available", "check", "describe", "entry_for", "plugin_config", "plugin_configs", "resolve_params", "find_entry"),
    "resolve": ("Activation", "activation_factory", "get_activation", "learned_values"),
    "plugins": ("custom_entry", "probe"),
    "definitions": ("mila", "mish"),
    "fused_mila": ("run_state",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
