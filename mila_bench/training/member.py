"""One experiment in the training loop (a lone run, or one member of a pack), and how it ends early."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mila_bench.records.schema import EpochMetrics
from mila_bench.training.callbacks import Callback
from mila_bench.training.schedules import EpochScheduler


class Diverged(Exception):
    """The training loss became NaN or infinite; carries where, and the epochs completed before."""

    def __init__(self, epoch: int, step: int, history: list[EpochMetrics]) -> None:
        super().__init__(f"non-finite training loss at epoch {epoch}, step {step}")
        self.epoch, self.step, self.history = epoch, step, history


@dataclass(eq=False)  # a member is itself: compared by identity (its fields hold modules and tensors)
class Member:
    """One experiment in the loop: what it trains with, its random streams, what it has done.

    A lone run is one member; a pack (``training.packed``) is N, each its own experiment: its
    own initial weights, optimizer, schedule, shuffle and augmentation streams and history.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # orders the training batches (and seeds the augmentation stream)
    scheduler: EpochScheduler | None = None
    callbacks: Sequence[Callback] = ()
    resume: dict | None = None  # a checkpoint to continue from
    history: list[EpochMetrics] = field(default_factory=list)
    diverged: Diverged | None = None
    first_epoch: int = 1
    augment_generator: torch.Generator | None = None

    def generators(self) -> dict[str, torch.Generator | None]:
        return {"batches": self.generator, "augment": self.augment_generator}
