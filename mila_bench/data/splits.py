"""What every dataset loader returns and the training loop consumes: splits as tensors in memory.

The images stay in their native uint8 (a quarter of float32's bytes: 47 MB instead of 188 MB
for Fashion-MNIST's training split) and each batch is scaled (and mean-subtracted) as it is
drawn, on the device the split lives on, giving exactly the numbers ``ToTensor`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor


@dataclass
class Split:
    """Images in their native dtype (uint8 [N, C, H, W]) and labels (int64).

    Batches come out as float32: uint8 pixels scaled to [0, 1] exactly as ``ToTensor`` does
    (``float() / 255``), then ``mean`` (float32 [1, C, H, W], in [0, 1] units; CIFAR's
    per-pixel training mean) subtracted when set. Float images pass through unscaled.
    """

    images: Tensor
    labels: Tensor
    mean: Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> Split:
        mean = self.mean.to(device) if self.mean is not None else None
        return Split(self.images.to(device), self.labels.to(device), mean)

    def head(self, n: int) -> Split:
        """The first ``n`` samples, normalised the same way (the mean stays the full split's)."""
        return replace(self, images=self.images[:n], labels=self.labels[:n])

    def normalise(self, images: Tensor) -> Tensor:
        """uint8 images (a batch, or all of them) → float32 as the model sees them."""
        if images.dtype == torch.uint8:  # a fresh float tensor: scale and centre it in place
            images = images.float().div_(255)
            return images.sub_(self.mean) if self.mean is not None else images
        return images - self.mean if self.mean is not None else images

    def float_images(self) -> Tensor:
        """The whole split as the model sees it (a float copy: for small splits, e.g. noise studies)."""
        return self.normalise(self.images)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Normalised mini-batches in order, or shuffled by ``generator`` (a seeded permutation per call)."""
        n = len(self)
        if generator is None:
            for start in range(0, n, batch_size):
                images = self.images[start : start + batch_size]
                yield self.normalise(images), self.labels[start : start + batch_size]
            return
        order = torch.randperm(n, generator=generator).to(self.labels.device)
        for idx in order.split(batch_size):
            yield self.normalise(self.images[idx]), self.labels[idx]


@dataclass
class Dataset:
    """A train and a test split plus what a model needs to know about their shape."""

    name: str
    train: Split
    test: Split
    num_classes: int
    info: dict[str, object] = field(default_factory=dict)
    # Applied by engine.fit to training batches only: (images, generator on their device) → images.
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])
