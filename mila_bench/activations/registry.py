"""Activation functions resolved by name through one registry.

Each activation is written once, as a function of a tensor and its named parameters; the
``nn.Module`` form (:class:`Activation`) binds the parameters (as floats, or as learnable
``nn.Parameter`` scalars) and calls that same function, so the two forms cannot drift apart.
The set covers every activation of the original project's tables and the modern baselines.

Users add theirs without editing this file: installed packages declare entry points in the
group ``mila_bench.activations`` (plugins, resolved by name like a built-in), and
``activation=custom activation.target=MODULE:NAME`` runs any importable function
``f(x, **params)`` or ``nn.Module`` class. Both are probed on a small tensor (:func:`probe`)
before any work, so a broken one is one line, not a crash mid-run.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import sys
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
    module_class: type[nn.Module] | None = None


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


def available() -> list[str]:
    """Names of all activations, built-in and plugins, sorted."""
    return sorted({*_REGISTRY, *plugins()})


def spec(name: str) -> ActivationSpec:
    """The registry entry for ``name`` (a plugin is loaded on first use); an unknown name lists the known ones."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    found = plugins()
    if name in found:
        return _plugin_spec(name, found[name].value)
    raise unknown_name("activation", name, available())


def plugins() -> dict[str, object]:
    """Installed plugins' entry points by name, without importing them; a clash is one clear line."""
    found = _entry_points()
    for name, point in found.items():
        if name in _REGISTRY or name == CUSTOM:
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
def _plugin_spec(name: str, value: str) -> ActivationSpec:
    point = plugins()[name]
    label = f"activation plugin {name!r} ({value})"
    return _target_spec(name, value, f"plugin{_package(point)}", label, point.load)


@functools.cache
def custom_spec(target: str) -> ActivationSpec:
    """The entry for ``activation=custom activation.target=MODULE:NAME``."""
    return _target_spec(CUSTOM, target, CUSTOM, f"activation.target={target!r}", lambda: _import(target))


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


def _target_spec(name: str, target: str, origin: str, label: str, load: Callable[[], object]) -> ActivationSpec:
    """An entry for an imported function or ``nn.Module`` class, its defaults read from its signature."""
    try:
        obj = load()
    except UsageError:
        raise
    except Exception as err:  # whatever importing user code raises, it is the user's to fix
        raise UsageError(f"{label} cannot be imported: {type(err).__name__}: {err}") from None
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
        and isinstance(p.default, (int, float)) and not isinstance(p.default, bool) and math.isfinite(p.default)
    }  # fmt: skip
    doc = (inspect.getdoc(obj) or "").strip().splitlines()
    fn = obj if not is_module else (lambda x, **params: obj(**params)(x))
    return ActivationSpec(name, fn, defaults, doc[0] if doc else "", (), target, origin, obj if is_module else None)


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
    ``beta`` when no start is given; ``impl`` picks Mila's kernels (see ``fused_mila``). A
    plugin or custom target is probed first (:func:`probe`).
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
    if "impl" in cfg:
        set_impl(str(cfg["impl"]))
    target = entry.target if name == CUSTOM else None
    make = lambda: Activation(name, learn=learn, target=target, **params)  # noqa: E731
    if entry.target is not None:
        probe(make, _label(name, entry), tuple(sorted(params.items())), learn)
    return make


def _label(name: str, entry: ActivationSpec) -> str:
    return f"activation.target={entry.target!r}" if name == CUSTOM else f"activation plugin {name!r} ({entry.target})"


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


alias("silu", "swish")


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


# --- The modern baselines --------------------------------------------------------------


@register("gelu", "x * Phi(x), exact (erf); today's default in transformers")
def gelu(x: Tensor) -> Tensor:
    return F.gelu(x)


@register("gelu_tanh", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), GELU's tanh approximation")
def gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


@register("hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)")
def hardswish(x: Tensor) -> Tensor:
    return F.hardswish(x)


@register("hardtanh", "clip(x, min_val, max_val)", min_val=-1.0, max_val=1.0)
def hardtanh(x: Tensor, min_val: Param = -1.0, max_val: Param = 1.0) -> Tensor:
    if isinstance(min_val, Tensor) or isinstance(max_val, Tensor):  # learned bounds keep their gradient
        return torch.minimum(torch.maximum(x, torch.as_tensor(min_val, dtype=x.dtype)), torch.as_tensor(max_val, dtype=x.dtype))
    return F.hardtanh(x, float(min_val), float(max_val))


@register("relu6", "min(max(x, 0), 6)")
def relu6(x: Tensor) -> Tensor:
    return F.relu6(x)


@register("squared_relu", "max(x, 0)^2 (Primer)")
def squared_relu(x: Tensor) -> Tensor:
    return torch.square(F.relu(x))


@register("celu", "max(0, x) + min(0, alpha * (e^(x / alpha) - 1))", alpha=1.0)
def celu(x: Tensor, alpha: Param = 1.0) -> Tensor:
    if isinstance(alpha, Tensor):
        return torch.where(x > 0, x, alpha * torch.expm1(x / alpha))
    return F.celu(x, float(alpha))
