"""The ``model`` config group checked without torch: names, layouts, sizes, published ResNet depths.

The builders (:mod:`mlp`, :mod:`deep_mlp`, :mod:`resnet`) import their rules from here, so a
config is checked (``config.compose``) before torch is imported, by the same rules that build it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping

from mila_bench.errors import UsageError, unknown_name

MODELS = ("mlp", "deep_mlp", "resnet", "timm")
#: The demo MLP's layouts (see :mod:`mila_bench.models.mlp`).
INITIALIZATIONS = ("class", "sequential")
#: The Keras example's ResNet depths per version: 6n+2 (v1) and 9n+2 (v2).
DEPTHS = {1: (20, 32, 44, 56, 110, 164), 2: (20, 56, 110, 164)}


def check_initialization(value: object) -> None:
    """One line naming the layouts when ``value`` is not one."""
    if value not in INITIALIZATIONS:
        raise UsageError(f"model.initialization={value!r} is not allowed; allowed: {', '.join(INITIALIZATIONS)}")


def check_sizes(depth: object, width: object) -> None:
    """Refuse a depth or width that is not an integer >= 1, naming the bad value."""
    for key, value in (("depth", depth), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"model.{key}={value!r} is not allowed; expected an integer >= 1")


def check_depth(depth: object, version: object) -> None:
    """One line naming the valid depths when (depth, version) is not a published architecture."""
    if isinstance(version, bool) or version not in DEPTHS:
        raise UsageError(f"model.version={version!r} is not allowed; allowed: 1, 2")
    if isinstance(depth, bool) or depth not in DEPTHS[version]:
        valid = ", ".join(map(str, DEPTHS[version]))
        raise UsageError(f"model.depth={depth!r} is not a ResNet v{version} depth; allowed for v{version}: {valid}")


def check_kernel_l2(value: object) -> None:
    """``model.kernel_l2``: a finite number >= 0 (0 turns the penalty off)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0:
        raise UsageError(f"model.kernel_l2={value!r} is not allowed; expected a finite number >= 0")


def check(cfg: Mapping) -> None:
    """Check a composed ``model`` config group; raise :class:`UsageError` naming the first bad value."""
    name = cfg["name"]
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    if name == "mlp":
        check_initialization(cfg["initialization"])
    elif name == "deep_mlp":
        check_sizes(cfg["depth"], cfg["width"])
    elif name == "timm":
        check_timm(cfg)
    else:
        check_depth(cfg["depth"], cfg["version"])
        check_kernel_l2(cfg["kernel_l2"])


def check_timm(cfg: Mapping) -> None:
    """``model=timm``: the settings' types, then the name against timm's names (without timm: :mod:`timm_names`)."""
    if not isinstance(cfg["replace_gates"], bool):
        raise UsageError(f"model.replace_gates={cfg['replace_gates']!r} is not allowed; expected true or false")
    if not isinstance(cfg["kwargs"], Mapping):
        raise UsageError(f"model.kwargs={cfg['kwargs']!r} is not allowed; expected a mapping, e.g. {{drop_rate: 0.1}}")
    check_arch(cfg["arch"])


def check_arch(arch: object) -> None:
    """One line with the closest timm names when ``arch`` is not a timm model."""
    from mila_bench.models.timm_names import names as timm_names

    names = timm_names()
    if not isinstance(arch, str) or arch not in names:
        close = difflib.get_close_matches(str(arch), names, n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else "see timm.list_models()"
        raise UsageError(f"model.arch={arch!r} is not a timm model; {hint}")
