"""Augmentation of whole training batches on the device they live on: random shifts and flips.

The recipe (Keras' ImageDataGenerator: shifts up to 10% of width/height, horizontal flips,
``fill_mode='nearest'``) applied per batch with one gather instead of per image through PIL:
the batch is edge-padded (edge = Keras' 'nearest' fill), then every image gets its own crop
offset and, when flipped, its crop's columns read in reverse order. Shifts are whole pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
        rows = offsets[:, :1] + torch.arange(height, device=device)  # [N, H] rows of the padded image
        cols = offsets[:, 1:] + torch.arange(width, device=device)  # [N, W]
        if self.flip:
            flipped = torch.rand(n, 1, generator=generator, device=device) < 0.5
            cols = torch.where(flipped, cols.flip(1), cols)
        padded = F.pad(images, (s, s, s, s), mode="replicate") if s else images
        # One gather over each padded image's flattened pixels (several times faster on CPU
        # than 4-D advanced indexing): pixel (r, c) of the crop reads padded pixel rows[r], cols[c].
        index = (rows[:, :, None] * (width + 2 * s) + cols[:, None, :]).view(n, 1, height * width)
        pixels = padded.flatten(2).gather(2, index.expand(n, channels, height * width))
        return pixels.view(n, channels, height, width)
