"""Any timm architecture, trained from scratch, with every activation taken from the registry.

timm builds the model (never with pretrained weights: nothing is downloaded); this adapter
only fits it to the dataset and to the activation under test:

- ``in_chans`` and ``num_classes`` come from the dataset, ``img_size`` too where the model takes it;
- the configured activation goes in through timm's ``act_layer`` where the model takes it, and
  the activation modules it still leaves (e.g. the ReLU inside MobileNetV3's squeeze-excite
  blocks) are replaced by type. Gates (sigmoid / hard-sigmoid in SE blocks, softmax) are kept
  unless ``replace_gates``; activations a model calls as functions (``F.relu`` in a forward,
  attention's softmax) are not modules and cannot be replaced, which is why what remains is
  counted and recorded (:class:`TimmReport`);
- on inputs too small for the model's stem and pools (28×28 Fashion-MNIST, 32×32 CIFAR), the
  model's own small-input arguments are used where timm has them (:data:`SMALL_INPUT_ARGS`),
  else a stride-1 stem without its first pooling (:func:`adapt_stem`); both are recorded,
  never a silent resize. A model in which nothing could be replaced is an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mila_bench.errors import UsageError

MakeActivation = Callable[[], nn.Module]

#: Activation modules replaced by the configured activation (by class name, so timm's own
#: classes of the same name, e.g. ``timm.layers.activations.GELU``, count as well).
ACTIVATION_TYPES = frozenset({
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "GELUTanh", "QuickGELU", "SiLU", "Swish",
    "Mish", "HardMish", "Hardswish", "HardSwish", "PReLU", "Softplus",
})  # fmt: skip
#: Gates: kept by default (they gate, they do not activate), replaced with ``replace_gates``.
GATE_TYPES = frozenset({"Sigmoid", "Hardsigmoid", "HardSigmoid", "Tanh", "Softmax", "GateLayer"})

#: The model's own arguments for small inputs, by architecture prefix (timm's names).
SMALL_INPUT_ARGS: dict[str, dict[str, object]] = {
    "convnext": {"patch_size": 1},  # a 1×1 stem (at 2, timm's first stage would downsample again): /8 in all
    "vit_": {"patch_size": 4},  # 8×8 patches of a 32×32 image instead of 2×2
}


@dataclass
class TimmReport:
    """What the adapter did to the model, recorded in the run's summary."""

    arch: str
    replaced: dict[str, int] = field(default_factory=dict)  # module kind → how many became the activation
    remaining: dict[str, int] = field(default_factory=dict)  # activation/gate kinds left as they were
    small_input: str | None = None  # the adaptation applied for small inputs, if any

    def as_dict(self) -> dict[str, object]:
        return {"arch": self.arch, "replaced": self.replaced, "remaining": self.remaining, "small_input": self.small_input}


def check_buildable(model_cfg: Mapping, input_shape: Sequence[int], num_classes: int) -> None:
    """Raise the :class:`UsageError` that building would raise (no small-input fit, nothing to
    replace), from a model on the meta device: before a run opens its record, in a fraction of a second."""
    build_timm(model_cfg, nn.ReLU, input_shape, num_classes, device="meta")


def build_timm(
    model_cfg: Mapping,
    make_activation: MakeActivation,
    input_shape: Sequence[int],
    num_classes: int,
    device: str = "cpu",
) -> nn.Module:
    """The timm model ``model_cfg.arch`` for ``input_shape`` (C, H, W) with the configured activation.

    The model carries its :class:`TimmReport` as ``model.timm_report``.
    """
    arch = model_cfg["arch"]
    channels, height, width = (int(d) for d in input_shape)
    kwargs: dict[str, object] = {**dict(model_cfg["kwargs"]), "in_chans": channels, "num_classes": num_classes}
    activation_class = _activation_class(make_activation)
    model, small_input = _create(arch, kwargs, activation_class, (channels, height, width), device)
    report = TimmReport(arch, small_input=small_input)
    report.replaced = replace_activations(model, make_activation, bool(model_cfg["replace_gates"]))
    if not report.replaced:
        raise UsageError(
            f"model.arch={arch!r}: no activation module could be replaced (it takes no act_layer and has no "
            f"activation modules); it would not test the configured activation"
        )
    report.remaining = dict(sorted(Counter(kind(m) for m in model.modules() if kind(m) in ACTIVATION_TYPES | GATE_TYPES).items()))
    model.timm_report = report
    return model


def kind(module: nn.Module) -> str:
    return type(module).__name__


def _activation_class(make_activation: MakeActivation) -> type:
    """A class timm can use as ``act_layer``: calling it (with or without ``inplace``) gives a fresh
    module from the registry factory."""

    class ConfiguredActivation:
        def __new__(cls, *args: object, **kwargs: object) -> nn.Module:  # inplace and the like are ignored
            module = make_activation()
            module.made_by_act_layer = True
            return module

    return ConfiguredActivation


def _create(
    arch: str, kwargs: dict[str, object], act_layer: type, shape: tuple[int, int, int], device: str
) -> tuple[nn.Module, str | None]:
    """Create the model with ``act_layer`` and ``img_size`` where it takes them, fitted to small inputs.

    Which fitting is needed is found on the meta device (shapes only, no weights, no random
    numbers drawn), so the real model is built once, from the run's seed.
    """
    import timm

    def create(extra: dict[str, object], layer: type, device: str) -> nn.Module:
        optional = {"img_size": shape[1] if shape[1] == shape[2] else shape[1:], "act_layer": layer}
        args = {**kwargs, **extra}
        while True:
            try:
                with torch.device(device):
                    return timm.create_model(arch, pretrained=False, **args, **optional)
            except TypeError as err:  # an optional argument this model does not take: drop it, try again
                dropped = next((k for k in optional if f"'{k}'" in str(err)), None)
                if dropped is None:
                    raise UsageError(f"model.arch={arch!r} cannot be built with {args}: {err}") from None
                optional.pop(dropped)

    # The model's own small-input arguments whenever the input is smaller than the size it was
    # designed for (so 28×28 and 32×32 get the same model), unless the user set those arguments.
    own = next((args for prefix, args in SMALL_INPUT_ARGS.items() if arch.startswith(prefix)), {})
    try:
        designed = timm.get_pretrained_cfg_value(arch, "input_size") or (3, 224, 224)
    except RuntimeError:  # a model registered without a pretrained config: timm's usual size
        designed = (3, 224, 224)
    if any(k in kwargs for k in own) or min(shape[1:]) >= min(designed[1:]):
        own = {}
    for extra, adapt in ((own, False), ({}, False), ({}, True)):
        probe = create(extra, nn.ReLU, "meta")
        if adapt and not adapt_stem(probe):
            continue
        if _fits(probe, shape):
            model = create(extra, act_layer, device)
            if adapt:
                return model, adapt_stem(model)
            return model, ("timm arguments " + ", ".join(f"{k}={v}" for k, v in extra.items())) if extra else None
    raise UsageError(
        f"model.arch={arch!r} does not run on {shape[1]}x{shape[2]} inputs, even with a stride-1 stem and no "
        "first pooling; choose another architecture"
    )


def _fits(model: nn.Module, shape: tuple[int, int, int]) -> bool:
    """Whether one image of ``shape`` goes through the meta-device ``model`` (shapes only)."""
    try:
        with torch.no_grad():
            model.eval()(torch.empty((1, *shape), device="meta"))
        return True
    except (RuntimeError, ValueError, AssertionError):
        return False


def adapt_stem(model: nn.Module) -> str | None:
    """The documented small-input adaptation: the first strided convolution gets stride 1 and the
    first pooling layer is removed, so a 28×28 or 32×32 image is not shrunk 4× before the first stage."""
    changes = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and max(module.stride) > 1:
            changes.append(f"{name} stride {tuple(module.stride)}→(1, 1)")
            module.stride = (1, 1)
            break
    for name, module in model.named_modules():
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, nn.Identity())
            changes.append(f"{name} ({kind(module)}) removed")
            break
    return "stride-1 stem: " + "; ".join(changes) if changes else None


def replace_activations(model: nn.Module, make_activation: MakeActivation, replace_gates: bool) -> dict[str, int]:
    """Swap every activation module timm left (and gates, if asked) for a fresh configured one;
    count what was replaced by kind, plus the modules ``act_layer`` made (as ``act_layer``)."""
    targets = ACTIVATION_TYPES | (GATE_TYPES if replace_gates else frozenset())
    replaced: Counter[str] = Counter()
    for name, module in list(model.named_modules()):
        if getattr(module, "made_by_act_layer", False):
            replaced["act_layer"] += 1
            continue
        if kind(module) not in targets or not name:
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, make_activation())
        replaced[kind(module)] += 1
    return dict(sorted(replaced.items()))
