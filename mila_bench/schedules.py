"""Learning-rate schedules stepped once per epoch, after the test evaluation.

``recipe`` is the published CIFAR recipe (the Keras CIFAR-10 ResNet example): a step
schedule on the base lr plus reduce-on-plateau on the test loss. In that example the step
schedule *sets* the lr at the start of every epoch, which undoes any plateau cut made at
the end of the previous one, so the plateau never reached a training step;
``plateau.persists=false`` keeps that behaviour, ``true`` lets cuts persist and compound
with the step factors. ``cosine`` anneals to ``min_lr`` over the run. PyTorch's schedulers
do the arithmetic; this module only chooses and orders them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, MultiplicativeLR, ReduceLROnPlateau

from mila_bench.errors import UsageError, unknown_name

SCHEDULERS = ("none", "recipe", "cosine")


def step_factor(milestones: Sequence[int], factors: Sequence[float], epoch_index: int) -> float:
    """Factor on the base lr for a 0-based epoch: that of the last milestone it is past.

    As in the Keras example (``if epoch > 80: lr *= 1e-1`` on 0-based epochs), so ×0.1
    applies from the 82nd epoch on.
    """
    factor = 1.0
    for milestone, f in zip(milestones, factors):
        if epoch_index > milestone:
            factor = f
    return factor


class EpochScheduler:
    """Steps torch schedulers after each epoch; ``step(test_loss)`` sets the next epoch's lr."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: Mapping, epochs: int) -> None:
        self.optimizer = optimizer
        self.plateau: ReduceLROnPlateau | None = None
        name = cfg["name"]
        if name == "cosine":
            self.main = CosineAnnealingLR(optimizer, T_max=epochs, eta_min=float(cfg.get("min_lr", 0.0)))
            return
        milestones, factors = list(cfg["milestones"]), [float(f) for f in cfg["factors"]]
        steps = lambda e: step_factor(milestones, factors, e)  # noqa: E731
        plateau = cfg["plateau"]
        if plateau.get("persists", False):  # chainable: multiply the current lr by the step's change
            self.main = MultiplicativeLR(optimizer, lambda e: steps(e) / steps(e - 1))
        else:  # the Keras example: lr = base × factor at every epoch, whatever the plateau did
            self.main = LambdaLR(optimizer, steps)
        self.plateau = ReduceLROnPlateau(
            optimizer, mode="min", factor=float(plateau["factor"]), patience=int(plateau["patience"]),
            min_lr=float(plateau["min_lr"]), threshold=1e-4, threshold_mode="abs",  # Keras' min_delta
        )  # fmt: skip

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, test_loss: float) -> None:
        if self.plateau is not None:
            self.plateau.step(test_loss)
        self.main.step()

    def state_dict(self) -> dict:
        """For checkpoints: both schedulers' states (plain data, loadable with weights_only)."""
        return {"main": self.main.state_dict(), "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, state: dict) -> None:
        self.main.load_state_dict(state["main"])
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])


def build_scheduler(cfg: Mapping | None, optimizer: torch.optim.Optimizer, epochs: int) -> EpochScheduler | None:
    """The scheduler of the ``scheduler`` config group; ``none`` (or no group) keeps the lr fixed."""
    if cfg is None or cfg["name"] == "none":
        return None
    return EpochScheduler(optimizer, cfg, epochs)


def check_scheduler(cfg: Mapping | None) -> None:
    """One line naming the first bad scheduler value."""
    if cfg is None:
        return
    name = cfg.get("name")
    if name not in SCHEDULERS:
        raise unknown_name("scheduler", name, SCHEDULERS)
    if name == "cosine":
        _number("scheduler.min_lr", cfg.get("min_lr", 0.0), minimum=0.0)
    if name != "recipe":
        return
    milestones, factors = cfg.get("milestones"), cfg.get("factors")
    if not _is_list(milestones) or not all(_is_int(m) and m >= 0 for m in milestones):
        raise UsageError(f"scheduler.milestones={_show(milestones)} is not allowed; expected a list of integers >= 0")
    if list(milestones) != sorted(milestones):
        raise UsageError(f"scheduler.milestones={_show(milestones)} is not allowed; expected increasing epochs")
    if not _is_list(factors) or len(factors) != len(milestones):
        raise UsageError(
            f"scheduler.factors={_show(factors)} is not allowed; expected one factor per milestone ({len(milestones)})"
        )
    for f in factors:
        _number("scheduler.factors", f, minimum=0.0, exclusive=True)
    plateau = cfg.get("plateau") or {}
    factor = plateau.get("factor")
    _number("scheduler.plateau.factor", factor, minimum=0.0, exclusive=True)
    if factor >= 1:
        raise UsageError(f"scheduler.plateau.factor={factor!r} is not allowed; expected a number in (0, 1)")
    patience = plateau.get("patience")
    if not _is_int(patience) or patience < 0:
        raise UsageError(f"scheduler.plateau.patience={patience!r} is not allowed; expected an integer >= 0")
    _number("scheduler.plateau.min_lr", plateau.get("min_lr"), minimum=0.0)
    if not isinstance(plateau.get("persists", False), bool):
        raise UsageError(f"scheduler.plateau.persists={plateau.get('persists')!r} is not allowed; expected true or false")


def _number(key: str, value: object, minimum: float, exclusive: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= minimum if exclusive else value < minimum):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        raise UsageError(f"{key}={value!r} is not allowed; expected a finite number {bound}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _show(value: object) -> str:
    return str(list(value)) if _is_list(value) else repr(value)
