"""Keras' val_loss beside our test loss: clipped cross-entropy plus the kernel L2 penalty, by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mila_bench.activations import get_activation
from mila_bench.data.splits import Split
from mila_bench.training.engine import evaluate
from mila_bench.models.resnet import ResNet


def hand_made_resnet() -> tuple[ResNet, float]:
    """ResNet-20 v1 with every conv kernel set to its own constant; returns it and Σ‖kernel‖² by hand."""
    torch.manual_seed(0)
    model = ResNet(20, 1, lambda: get_activation("relu"), num_classes=10, kernel_l2=1e-4)
    squares = 0.0
    with torch.no_grad():
        for i, conv in enumerate(m for m in model.modules() if isinstance(m, nn.Conv2d)):
            value = 0.01 * (1 + i % 7) * (-1) ** i
            conv.weight.fill_(value)
            conv.bias.uniform_(-0.1, 0.1)
            squares += conv.weight.numel() * value**2
    return model.eval(), squares


@pytest.mark.slow
def test_keras_val_loss_is_cross_entropy_plus_the_kernel_penalty() -> None:
    model, squares = hand_made_resnet()
    images, labels = torch.randn(20, 3, 32, 32), torch.arange(20) % 10
    split = Split(images, labels)
    metrics = evaluate(model, split, batch_size=8)  # batches of 8, 8, 4: means weighted by samples
    with torch.no_grad():
        cross_entropy = F.cross_entropy(model(images), labels).item()
    assert squares > 1  # the penalty (1e-4 · Σw²) is large enough to see
    assert metrics["test_loss"] == pytest.approx(cross_entropy, rel=1e-6)
    assert metrics["keras_val_loss"] == pytest.approx(cross_entropy + 1e-4 * squares, rel=1e-6)
    assert model.kernel_penalty().item() == pytest.approx(1e-4 * squares, rel=1e-6)


class Confident(nn.Module):
    """Scores ±40 (a probability of e^-80 on a wrong answer) and a fixed penalty of 0.25."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 40.0 * x

    def kernel_penalty(self) -> torch.Tensor:
        return torch.tensor(0.25)


def test_keras_cross_entropy_clips_probabilities_like_keras() -> None:
    scores = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    labels = torch.tensor([0, 1])  # one confidently right, one confidently wrong
    metrics = evaluate(Confident(), Split(scores, labels), batch_size=2)
    assert metrics["test_loss"] == pytest.approx(80 / 2, rel=1e-5)  # plain cross-entropy is unbounded
    # Keras: -log(clip(p, 1e-7, 1 - 1e-7)): 1e-7 for the right one, 16.1 for the wrong one.
    expected = (-math.log1p(-1e-7) - math.log(1e-7)) / 2 + 0.25
    assert metrics["keras_val_loss"] == pytest.approx(expected, rel=1e-6)


def test_models_without_a_penalty_record_no_keras_loss() -> None:
    model = ResNet(20, 1, lambda: get_activation("relu"), num_classes=10, kernel_l2=0.0).eval()
    metrics = evaluate(model, Split(torch.randn(4, 3, 32, 32), torch.arange(4)), batch_size=4)
    assert "keras_val_loss" not in metrics and model.kernel_penalty() is None
