"""The original demo's Fashion-MNIST MLP (784 → 256 → 128 → 64 → 10), in both layouts.

The activation under test sits where the original put Mila (after the first layer);
the later hidden layers keep ReLU, as in the original, so results stay comparable.
Both layouts end in ``log_softmax``, as the original did.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from mila_bench.models.checks import INITIALIZATIONS  # noqa: F401  (the layouts below, by name)


class DemoMLP(nn.Module):
    """The ``class`` layout: four linear layers, no normalisation or dropout."""

    def __init__(self, activation: nn.Module, in_features: int = 784, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 64)
        self.fc4 = nn.Linear(64, num_classes)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        x = self.activation(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return F.log_softmax(self.fc4(x), dim=1)


def sequential_mlp(activation: nn.Module, in_features: int = 784, num_classes: int = 10) -> nn.Sequential:
    """The ``sequential`` layout: adds BatchNorm and Dropout(0.3) after the second layer."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 256),
        activation,
        nn.Linear(256, 128),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
        nn.LogSoftmax(dim=1),
    )


def build_mlp(
    initialization: str, make_activation: Callable[[], nn.Module], in_features: int, num_classes: int
) -> nn.Module:
    """Build the demo MLP in the ``class`` or ``sequential`` layout."""
    if initialization == "class":
        return DemoMLP(make_activation(), in_features, num_classes)
    return sequential_mlp(make_activation(), in_features, num_classes)
