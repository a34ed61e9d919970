"""Models by name. Every model takes its activation from the registry.

Nothing here imports torch until a model is built; the config rules are :mod:`.checks`'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from mila_bench.models.checks import MODELS, check

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MODELS", "build_model"]


def build_model(
    model_cfg: Mapping, make_activation: Callable[[], nn.Module], input_shape: Sequence[int], num_classes: int
) -> nn.Module:
    """Build the model named by ``model_cfg.name`` (a composed ``model`` group: every key present);
    ``make_activation`` gives a fresh module per use."""
    check(model_cfg)
    name = model_cfg["name"]
    if name == "mlp":
        from mila_bench.models.mlp import build_mlp

        return build_mlp(model_cfg["initialization"], make_activation, math.prod(input_shape), num_classes)
    if name == "deep_mlp":
        from mila_bench.models.deep_mlp import build_deep_mlp

        return build_deep_mlp(model_cfg["depth"], model_cfg["width"], make_activation, math.prod(input_shape), num_classes)
    if name == "timm":
        from mila_bench.models.timm_adapter import build_timm  # timm loads only for timm models

        return build_timm(model_cfg, make_activation, input_shape, num_classes)
    from mila_bench.models.resnet import build_resnet

    return build_resnet(model_cfg, make_activation, input_shape[0], num_classes)


def check_buildable(model_cfg: Mapping, input_shape: Sequence[int], num_classes: int) -> None:
    """What only building can tell (a timm model that does not fit the input, or has nothing to
    replace), found before a run opens its record; the other models are fully checked by their config."""
    if model_cfg["name"] == "timm":
        from mila_bench.models.timm_adapter import check_buildable as check_timm_model

        check_timm_model(model_cfg, input_shape, num_classes)
