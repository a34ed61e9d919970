"""The randomly initialised scalar network whose output landscape and gradients we look at.

A plain MLP from 2-D input coordinates to one number (2 → 64 → 32 → 16 → 1 by default),
the activation after every hidden layer. It is built under a fixed seed in a forked RNG,
so every activation gets exactly the same weights and only the nonlinearity differs, and
the caller's random state is left untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

from mila_bench.analysis.choices import ActivationChoice

DEFAULT_WIDTHS = (64, 32, 16)


def scalar_mlp(choice: ActivationChoice, widths: Sequence[int], seed: int):
    """2 → widths… → 1 in float64, PyTorch's default initialisation under ``seed``."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        previous = 2
        for width in widths:
            layers += [nn.Linear(previous, width), choice.module()]
            previous = width
        layers.append(nn.Linear(previous, 1))
        return nn.Sequential(*layers).double().eval()


def grid(extent: float, points: int):
    """(xs, X, Y): ``points`` coordinates per axis over [-extent, extent], and their mesh."""
    import torch

    xs = torch.linspace(-extent, extent, points, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    return xs, X, Y


def outputs(model, X, Y):
    """The network's output at every grid point, shaped like ``X``."""
    import torch

    with torch.no_grad():
        return model(torch.stack([X.flatten(), Y.flatten()], dim=1)).reshape(X.shape)


def input_gradients(model, X, Y):
    """(∂out/∂x, ∂out/∂y) at every grid point, by autograd."""
    import torch

    inputs = torch.stack([X.flatten(), Y.flatten()], dim=1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(inputs).sum(), inputs)
    return grad[:, 0].reshape(X.shape), grad[:, 1].reshape(X.shape)
