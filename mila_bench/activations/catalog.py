"""Every activation by name (built-ins and installed plugins), its entry, and its config checked,
without importing torch: ``mila-bench list`` and bad input answer before torch loads.

A plugin or custom target is imported (and so torch with it) only when it is selected;
building modules from a checked config is :mod:`mila_bench.activations.resolve`'s.
"""

from __future__ import annotations

from collections.abc import Mapping

from mila_bench.activations.plugins import custom_entry, plugin_entry, plugins
from mila_bench.checks import is_finite_number
from mila_bench.activations.registry import BUILTINS, CUSTOM, IMPLS, SETTINGS, ActivationEntry
from mila_bench.errors import UsageError, unknown_name


def available() -> list[str]:
    """Names of all activations, built-in and plugins, sorted."""
    return sorted({*BUILTINS, *plugins()})


def find_entry(name: str) -> ActivationEntry:
    """The registry entry for ``name`` (a plugin is loaded on first use); an unknown name lists the known ones."""
    if name in BUILTINS:
        return BUILTINS[name]
    found = plugins()
    if name in found:
        return plugin_entry(name, found[name].value)
    raise unknown_name("activation", name, available())


def finite(key: str, value: object) -> float:
    """``value`` as a float if it is a finite number; else one line naming ``activation.<key>``."""
    if not is_finite_number(value):
        raise UsageError(f"activation.{key}={value!r} is not a finite number; expected e.g. activation.{key}=-0.25")
    return float(value)


def resolve_params(name: str, params: Mapping[str, object], entry: ActivationEntry | None = None) -> dict[str, float]:
    """Defaults of ``name`` updated with ``params``, each checked to be a finite number.

    A plugin or custom target may take parameters its signature does not declare (``**params``);
    the probe tells whether it accepts them.
    """
    entry = entry or find_entry(name)
    resolved = dict(entry.defaults)
    for key, value in params.items():
        if key not in entry.defaults and entry.target is None:
            allowed = ", ".join(sorted(entry.defaults)) or "none"
            raise UsageError(f"activation {name!r} has no parameter {key!r}; its parameters: {allowed}")
        resolved[key] = finite(key, value)
    return resolved


def entry_for(cfg: Mapping) -> ActivationEntry:
    """The registry entry an ``activation`` config group selects (``custom`` → its target)."""
    name = cfg["name"]
    if name != CUSTOM:
        return find_entry(name)
    target = cfg.get("target")
    if not target:
        raise UsageError(
            "activation=custom needs activation.target=MODULE:NAME (a function f(x, **params) or an nn.Module "
            "class), e.g. activation.target=my_acts:serf")
    return custom_entry(str(target))


def checked_params(cfg: Mapping) -> tuple[ActivationEntry, dict[str, float], tuple[str, ...]]:
    """An ``activation`` config group checked: its entry, resolved parameters, and what is learned.

    ``learnable_beta`` makes β learned, starting at ``beta_init`` (else at ``beta``); ``impl``
    must name one of Mila's kernels. A built-in needs no torch for any of this.
    """
    name = cfg["name"]
    entry = entry_for(cfg)
    params = resolve_params(name, {k: v for k, v in cfg.items() if k not in SETTINGS}, entry)
    learn: tuple[str, ...] = ()
    if cfg.get("learnable_beta"):
        if "beta" not in params:
            raise UsageError(f"activation {name!r} has no beta to learn; learnable_beta needs mila, beta_mish or aria2")
        if cfg.get("beta_init") is not None:
            params["beta"] = finite("beta_init", cfg["beta_init"])
        learn = ("beta",)
    if "impl" in cfg and cfg["impl"] not in IMPLS:
        raise UsageError(f"activation.impl={cfg['impl']!r} is not allowed; allowed: {', '.join(IMPLS)}")
    return entry, params, learn


def check(cfg: Mapping) -> ActivationEntry:
    """Check an ``activation`` config group; return its entry.

    A built-in is then fully checked: its module cannot fail once its parameters are finite
    numbers. A plugin or custom target (``entry.target``) still needs its probe, which builds
    it with torch (``resolve.activation_factory``); the caller runs it, so this module stays below
    ``resolve``.
    """
    return checked_params(cfg)[0]


def label(name: str, entry: ActivationEntry) -> str:
    """How messages name a plugin or custom target."""
    return f"activation.target={entry.target!r}" if name == CUSTOM else f"activation plugin {name!r} ({entry.target})"


def describe() -> list[str]:
    """``mila-bench list``: one line per activation with its parameters and defaults, plugins marked."""
    rows: list[tuple[str, str, str]] = []
    for name in available():
        try:
            entry = find_entry(name)
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


def plugin_config(name: str) -> dict[str, object]:
    """The ``activation`` config of plugin ``name`` (its name and defaults, which loads it), for Hydra's config store.

    A plugin that cannot be imported gets its name only: selecting it then fails with its reason.
    """
    try:
        return {"name": name, **find_entry(name).defaults}
    except UsageError:
        return {"name": name}


def plugin_configs() -> dict[str, dict[str, object]]:
    """:func:`plugin_config` of every installed plugin (imports them all)."""
    return {name: plugin_config(name) for name in plugins()}
