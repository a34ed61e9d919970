"""Resolving an ``activation`` config: a name (built-in or plugin) or a custom target, its
checked parameters, and the ``nn.Module`` that binds them (:class:`Activation`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

from mila_bench.activations import definitions  # noqa: F401  (registers the built-ins)
from mila_bench.activations.fused_mila import check_impl
from mila_bench.activations.plugins import custom_spec, plugin_spec, plugins, probe
from mila_bench.activations.registry import _REGISTRY, CUSTOM, SETTINGS, ActivationSpec
from mila_bench.errors import UsageError, unknown_name

def available() -> list[str]:
    """Names of all activations, built-in and plugins, sorted."""
    return sorted({*_REGISTRY, *plugins()})


def spec(name: str) -> ActivationSpec:
    """The registry entry for ``name`` (a plugin is loaded on first use); an unknown name lists the known ones."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    found = plugins()
    if name in found:
        return plugin_spec(name, found[name].value)
    raise unknown_name("activation", name, available())


def _finite(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"activation.{key}={value!r} is not a finite number; expected e.g. activation.{key}=-0.25")
    return float(value)


def resolve_params(name: str, params: Mapping[str, object], entry: ActivationSpec | None = None) -> dict[str, float]:
    """Defaults of ``name`` updated with ``params``, each checked to be a finite number.

    A plugin or custom target may take parameters its signature does not declare (``**params``);
    the probe tells whether it accepts them.
    """
    entry = entry or spec(name)
    resolved = dict(entry.defaults)
    for key, value in params.items():
        if key not in entry.defaults and entry.target is None:
            allowed = ", ".join(sorted(entry.defaults)) or "none"
            raise UsageError(f"activation {name!r} has no parameter {key!r}; its parameters: {allowed}")
        resolved[key] = _finite(key, value)
    return resolved


class Activation(nn.Module):
    """Module form of a registered activation, with its parameters bound.

    Parameters named in ``learn`` (plus those the activation always learns, as PReLU's α)
    become scalar ``nn.Parameter``s trained with the network.
    """

    def __init__(self, name: str, learn: Iterable[str] = (), *, target: str | None = None, **params: float) -> None:
        super().__init__()
        entry = custom_spec(target) if target is not None else spec(name)
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
        # An nn.Module class is built once with its parameters, so its own weights train with the network.
        self.inner = entry.module_class(**self.fixed) if entry.module_class is not None else None

    @property
    def params(self) -> dict[str, float]:
        """All parameter values now (learned ones as they currently stand)."""
        return {**self.fixed, **{k: p.item() for k, p in self.learned.items()}}

    def forward(self, x: Tensor) -> Tensor:
        if self.inner is not None:
            return self.inner(x)
        return self.fn(x, **self.fixed, **self.learned)

    def extra_repr(self) -> str:
        bound = [f"{k}={v:g}" for k, v in self.fixed.items()]
        bound += [f"{k}={p.item():g} (learned)" for k, p in self.learned.items()]
        return ", ".join([self.name, *bound])


def get_activation(name: str, **params: float) -> Activation:
    """Build the module form of activation ``name``."""
    return Activation(name, **params)


def entry_for(cfg: Mapping) -> ActivationSpec:
    """The registry entry an ``activation`` config group selects (``custom`` → its target)."""
    name = cfg["name"]
    if name != CUSTOM:
        return spec(name)
    target = cfg.get("target")
    if not target:
        raise UsageError(
            "activation=custom needs activation.target=MODULE:NAME (a function f(x, **params) or an nn.Module "
            "class), e.g. activation.target=my_acts:serf")
    return custom_spec(str(target))


def activation_factory(cfg: Mapping) -> Callable[[], Activation]:
    """Check an ``activation`` config group; return a maker of fresh modules for the model.

    ``learnable_beta`` makes β a parameter (one per module) starting at ``beta_init``, or at
    ``beta`` when no start is given. ``impl`` (Mila's kernels, see ``fused_mila``) is only checked
    here: each run applies its own (``training.run_settings``). A plugin or custom target is
    probed first (:func:`probe`).
    """
    name = cfg["name"]
    entry = entry_for(cfg)
    params = resolve_params(name, {k: v for k, v in cfg.items() if k not in SETTINGS}, entry)
    learn: tuple[str, ...] = ()
    if cfg.get("learnable_beta"):
        if "beta" not in params:
            raise UsageError(f"activation {name!r} has no beta to learn; learnable_beta needs mila, beta_mish or aria2")
        if cfg.get("beta_init") is not None:
            params["beta"] = _finite("beta_init", cfg["beta_init"])
        learn = ("beta",)
    if "impl" in cfg:  # checked here; the run applies it (training.run_settings), so no run sets it for the next
        check_impl(str(cfg["impl"]))
    target = entry.target if name == CUSTOM else None
    make = lambda: Activation(name, learn=learn, target=target, **params)  # noqa: E731
    if entry.target is not None:
        probe(make, _label(name, entry), tuple(sorted(params.items())), learn)
    return make


def _label(name: str, entry: ActivationSpec) -> str:
    return f"activation.target={entry.target!r}" if name == CUSTOM else f"activation plugin {name!r} ({entry.target})"


def describe() -> list[str]:
    """``mila-bench list``: one line per activation with its parameters and defaults, plugins marked."""
    rows: list[tuple[str, str, str]] = []
    for name in available():
        try:
            entry = spec(name)
        except UsageError as err:  # a broken plugin is listed with why, not hidden
            rows.append((name, "", f"[plugin, cannot be used: {err}]"))
            continue
        params = ", ".join(f"{k}={v:g}" for k, v in entry.defaults.items()) or "—"
        if entry.name != name:
            note = f"alias of {entry.name}"
        elif entry.target is not None:
            note = f"[{entry.origin}: {entry.target}] {entry.summary}".strip()
        else:
            note = entry.summary
        rows.append((name, params, note))
    rows.append((CUSTOM, "+activation.PARAM=X", "your own: activation.target=MODULE:NAME, f(x, **params) or nn.Module class"))
    width = max(len(r[0]) for r in rows)
    pwidth = max(len(r[1]) for r in rows)
    return [f"  {n:<{width}}  {p:<{pwidth}}  {note}".rstrip() for n, p, note in rows]


def plugin_configs() -> dict[str, dict[str, object]]:
    """The ``activation`` config of each plugin (its name and defaults), for Hydra's config store.

    A plugin that cannot be imported gets its name only: selecting it then fails with its reason.
    """
    configs: dict[str, dict[str, object]] = {}
    for name in plugins():
        try:
            configs[name] = {"name": name, **spec(name).defaults}
        except UsageError:
            configs[name] = {"name": name}
    return configs


def learned_values(model: nn.Module) -> dict[str, float]:
    """Current values of every learned activation parameter, by module path."""
    return {
        f"{path}.{key}" if path else key: param.item()
        for path, module in model.named_modules()
        if isinstance(module, Activation)
        for key, param in module.learned.items()
    }
