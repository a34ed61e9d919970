"""Activations from outside the package: installed plugins (entry points) and custom targets.

Both become registry entries read from the object's signature, and are probed on a small tensor
(:func:`probe`) before any work, so a broken one is one line, not a crash mid-run.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from mila_bench.activations.registry import BUILTINS, CUSTOM, PLUGIN_GROUP, TARGET_SYNTAX, ActivationEntry
from mila_bench.checks import is_finite_number
from mila_bench.errors import UsageError

if TYPE_CHECKING:
    from torch import nn


def plugins() -> dict[str, object]:
    """Installed plugins' entry points by name, without importing them; a clash is one clear line."""
    found = _entry_points()
    for name, point in found.items():
        if name in BUILTINS or name == CUSTOM:
            raise UsageError(
                f"activation plugin {name!r} ({point.value}{_package(point)}) clashes with the built-in activation "
                f"{name!r}; rename it in that package's [project.entry-points.\"{PLUGIN_GROUP}\"]"
            )
    return found


@functools.cache
def _entry_points() -> dict[str, object]:
    from importlib.metadata import entry_points

    found: dict[str, object] = {}
    for point in entry_points(group=PLUGIN_GROUP):
        other = found.get(point.name)
        if other is not None and other.value != point.value:
            raise UsageError(
                f"activation plugin {point.name!r} is declared twice: {other.value}{_package(other)} and "
                f"{point.value}{_package(point)}; uninstall one"
            )
        found[point.name] = point
    return found


def _package(point) -> str:
    dist = getattr(point, "dist", None)
    return f" from {dist.name} {dist.version}" if dist is not None else ""


@functools.cache
def plugin_entry(name: str, value: str) -> ActivationEntry:
    point = plugins()[name]
    label = f"activation plugin {name!r} ({value})"
    return _target_entry(name, value, f"plugin{_package(point)}", label, point.load)


@functools.cache
def custom_entry(target: str) -> ActivationEntry:
    """The entry for ``activation=custom activation.target=MODULE:NAME``."""
    return _target_entry(CUSTOM, target, CUSTOM, f"activation.target={target!r}", lambda: _import(target))


def _import(target: str) -> object:
    """``MODULE:NAME`` imported with the current directory importable (as ``python`` makes it)."""
    module_name, sep, attr = str(target).partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise UsageError(f"activation.target={target!r} is not {TARGET_SYNTAX}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: object = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name.split(".")[0]:
            raise  # the module was found; something it imports was not
        raise ModuleNotFoundError(
            f"no module {module_name!r} in the current directory ({os.getcwd()}) or the installed packages"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AttributeError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _target_entry(name: str, target: str, origin: str, label: str, load: Callable[[], object]) -> ActivationEntry:
    """An entry for an imported function or ``nn.Module`` class, its defaults read from its signature.

    torch is imported after the target: one that cannot be imported is answered without it.
    """
    try:
        obj = load()
    except UsageError:
        raise
    except Exception as err:  # whatever importing user code raises, it is the user's to fix
        raise UsageError(f"{label} cannot be imported: {type(err).__name__}: {err}") from None
    from torch import nn

    is_module = isinstance(obj, type) and issubclass(obj, nn.Module)
    if not callable(obj) or (isinstance(obj, type) and not is_module):
        raise UsageError(
            f"{label} is a {type(obj).__name__}, not a function f(x, **params) or an nn.Module class"
        )
    try:
        parameters = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature: no declared parameters
        parameters = []
    if not is_module:
        parameters = parameters[1:]  # x
    defaults = {
        p.name: float(p.default)
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and is_finite_number(p.default)
    }  # fmt: skip
    doc = (inspect.getdoc(obj) or "").strip().splitlines()
    fn = obj if not is_module else (lambda x, **params: obj(**params)(x))
    summary = doc[0] if doc else ""
    return ActivationEntry(name, defaults, summary, (), target, origin, obj if is_module else None, loaded=fn)


PROBE_SHAPE = (2, 3, 5)
#: (label, parameters, learned) already probed in this process: a sweep composes many configs.
_PROBED: set[tuple] = set()


def probe(make: Callable[[], nn.Module], label: str, params: tuple = (), learn: tuple = ()) -> None:
    """Call a user's activation once on a small float32 tensor before any work is done.

    It must build, return a finite tensor of the input's shape and dtype, and pass a finite
    gradient back to the input; otherwise one line names the target and what failed.
    """
    key = (label, params, learn)
    if key in _PROBED:
        return
    import torch
    from torch import Tensor

    def failed(what: str) -> UsageError:
        return UsageError(f"{label} failed its check on a small tensor: {what}; nothing was run or written")

    x = torch.linspace(-3.0, 3.0, math.prod(PROBE_SHAPE)).reshape(PROBE_SHAPE).requires_grad_()
    where = f"a float32 tensor of shape {PROBE_SHAPE}"
    try:
        module = make()
    except UsageError:
        raise
    except Exception as err:
        raise failed(f"building it with parameters {dict(params)} raised {type(err).__name__}: {err}") from None
    try:
        y = module(x)
    except Exception as err:
        raise failed(f"calling it on {where} raised {type(err).__name__}: {err}") from None
    if not isinstance(y, Tensor):
        raise failed(f"it returned a {type(y).__name__}, not a tensor")
    if tuple(y.shape) != PROBE_SHAPE:
        raise failed(f"it returned shape {tuple(y.shape)} for {where}; an activation keeps the shape")
    if y.dtype != x.dtype:
        raise failed(f"it returned {y.dtype} for {where}; an activation keeps the dtype")
    if not torch.isfinite(y).all():
        raise failed("it returned nan or inf for inputs in [-3, 3]")
    if not y.requires_grad:
        raise failed("its output does not depend differentiably on x (detached, numpy or integer ops?)")
    try:
        y.sum().backward()
    except Exception as err:
        raise failed(f"its backward pass raised {type(err).__name__}: {err}") from None
    if x.grad is None or not torch.isfinite(x.grad).all():
        raise failed("its gradient with respect to x is missing or not finite")
    _PROBED.add(key)
