"""A plain MLP of adjustable depth, for the depth study (how deep each activation still trains).

``depth`` hidden layers of ``width`` units, the activation under test after every one of
them, no normalisation, dropout or skip connections: nothing else helps the signal through,
so what depth does to accuracy is down to the activation (and PyTorch's default init).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mila_bench.models.checks import check_sizes


def build_deep_mlp(
    depth: int, width: int, make_activation: Callable[[], nn.Module], in_features: int, num_classes: int
) -> nn.Sequential:
    """Flatten → [Linear → activation] × depth → Linear to class scores (logits)."""
    check_sizes(depth, width)
    layers: list[nn.Module] = [nn.Flatten()]
    previous = in_features
    for _ in range(depth):
        layers += [nn.Linear(previous, width), make_activation()]
        previous = width
    layers.append(nn.Linear(previous, num_classes))
    return nn.Sequential(*layers)
