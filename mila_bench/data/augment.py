"""Augmentation of whole training batches on the device they live on: random shifts and flips.

The recipe (Keras' ImageDataGenerator: shifts up to 10% of width/height, horizontal flips,
``fill_mode='nearest'``) applied per batch with one gather instead of per image through PIL:
every image gets its own offset and, when flipped, its columns read in reverse order; source
rows and columns outside the image are clamped to its edge, which is Keras' 'nearest' fill
(the same as reading from an edge-padded copy, without making one). Shifts are whole pixels.
Any dtype works (uint8 pixels as well as normalised floats): it only moves pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ShiftFlip:
    """Shift each image by up to ``shift`` pixels per axis and flip half of them left-right."""

    shift: int = 3
    flip: bool = True

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """A new [N, C, H, W] batch; ``generator`` (on ``images``' device) draws every choice."""
        n, channels, height, width = images.shape
        device, s = images.device, self.shift
        offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=generator, device=device)
        rows = offsets[:, :1] + torch.arange(height, device=device)  # [N, H] rows of an edge-padded image
        cols = offsets[:, 1:] + torch.arange(width, device=device)  # [N, W]
        if self.flip:
            flipped = torch.rand(n, 1, generator=generator, device=device) < 0.5
            cols = torch.where(flipped, cols.flip(1), cols)
        # Pixel (r, c) of the result reads pixel (rows[r], cols[c]) of the image: one gather over
        # each image's flattened pixels (several times faster on CPU than 4-D advanced indexing).
        rows, cols = (rows - s).clamp_(0, height - 1), (cols - s).clamp_(0, width - 1)
        index = (rows[:, :, None] * width + cols[:, None, :]).view(n, 1, height * width)
        pixels = images.flatten(2).gather(2, index.expand(n, channels, height * width))
        return pixels.view(n, channels, height, width)
