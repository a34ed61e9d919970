"""Parse and check what the user asked to plot, before any work or any file is written.

Activations are written ``NAME`` or ``NAME:KEY=VALUE[,KEY=VALUE...]`` (e.g. ``relu``,
``mila:beta=-0.25``), resolved through the activation registry so every registered
activation and parameter works and a bad one is a one-line :class:`UsageError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mila_bench.errors import UsageError

DEFAULT_ACTIVATIONS = ("relu", "swish", "mila:beta=-0.25")
SYNTAX = "NAME or NAME:KEY=VALUE[,KEY=VALUE], e.g. relu or mila:beta=-0.25"


@dataclass(frozen=True)
class ActivationChoice:
    """One activation to plot: its registry name and its resolved parameters."""

    name: str
    params: dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        """Legend and CSV label, e.g. ``mila (β=-0.25)``."""
        bound = ", ".join(f"{'β' if k == 'beta' else k}={v:g}" for k, v in self.params.items())
        return f"{self.name} ({bound})" if bound else self.name

    def module(self):
        """A fresh module form of this activation."""
        from mila_bench.activations import get_activation

        return get_activation(self.name, **self.params)

    def overrides(self) -> list[str]:
        """The Hydra overrides that select this activation for a training run."""
        return [f"activation={self.name}", *(f"activation.{k}={v!r}" for k, v in self.params.items())]


def parse_activation(text: str) -> ActivationChoice:
    """``mila:beta=-0.25`` → ActivationChoice('mila', {'beta': -0.25}), checked by the registry."""
    from mila_bench import activations

    name, _, rest = text.strip().partition(":")
    activations.find_entry(name)  # unknown name → one line listing the known ones
    given: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--activation {text!r} is malformed; expected {SYNTAX}")
        given[key.strip()] = _parse_number(value, f"--activation {text!r}: {key.strip()}")
    choice = ActivationChoice(name, activations.resolve_params(name, given))
    entry = activations.find_entry(name)
    if entry.target is not None:  # a plugin: checked on a small tensor before any figure is computed
        label = f"activation plugin {name!r} ({entry.target})"
        activations.probe(choice.module, label, tuple(sorted(choice.params.items())))
    return choice


def parse_activations(texts: Iterable[str] | None, default: Sequence[str] = DEFAULT_ACTIVATIONS) -> list[ActivationChoice]:
    """Every ``--activation`` value parsed (``default`` when none given), duplicates dropped."""
    choices: list[ActivationChoice] = []
    for text in texts or default:
        choice = parse_activation(text)
        if choice.label not in [c.label for c in choices]:
            choices.append(choice)
    return choices


def finite(values: Iterable[float], option: str, minimum: float | None = None) -> list[float]:
    """``values`` unchanged if each is finite (and >= ``minimum``), else a one-line error."""
    out = list(values)
    for value in out:
        if not math.isfinite(value) or (minimum is not None and value < minimum):
            bound = f" >= {minimum:g}" if minimum is not None else ""
            raise UsageError(f"{option}={value!r} is not allowed; expected a finite number{bound}")
    return out


def at_least(value: int, option: str, minimum: int) -> int:
    """``value`` if it is >= ``minimum``, else a one-line error."""
    if value < minimum:
        raise UsageError(f"{option}={value!r} is not allowed; expected an integer >= {minimum}")
    return value


def interval(low: float, high: float, option: str) -> tuple[float, float]:
    """A finite, non-empty interval ``low < high``."""
    finite([low, high], option)
    if not low < high:
        raise UsageError(f"{option}=({low:g}, {high:g}) is not allowed; expected LOW < HIGH")
    return low, high


def _parse_number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}={text.strip()!r} is not a number; expected e.g. beta=-0.25") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}={text.strip()!r} is not a finite number; expected e.g. beta=-0.25")
    return value
