"""Models by name. Every model takes its activation from the registry."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from torch import nn

from mila_bench.errors import UsageError, unknown_name
from mila_bench.models.deep_mlp import build_deep_mlp
from mila_bench.models.mlp import INITIALIZATIONS, build_mlp
from mila_bench.models.resnet import build_resnet

MODELS = ("mlp", "deep_mlp", "resnet")


def build_model(
    model_cfg: Mapping, make_activation: Callable[[], nn.Module], input_shape: Sequence[int], num_classes: int
) -> nn.Module:
    """Build the model named by ``model_cfg.name``; ``make_activation`` gives a fresh module per use."""
    name = model_cfg["name"]
    if name == "mlp":
        init = model_cfg.get("initialization", "class")
        if init not in INITIALIZATIONS:
            raise UsageError(
                f"model.initialization={init!r} is not allowed; allowed: {', '.join(INITIALIZATIONS)}"
            )
        return build_mlp(init, make_activation, math.prod(input_shape), num_classes)
    if name == "deep_mlp":
        return build_deep_mlp(
            model_cfg.get("depth", 8), model_cfg.get("width", 64), make_activation, math.prod(input_shape), num_classes
        )
    if name == "resnet":
        return build_resnet(model_cfg, make_activation, input_shape[0], num_classes)
    raise unknown_name("model", name, MODELS)
