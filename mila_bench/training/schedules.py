"""Learning-rate schedules stepped once per epoch, after the test evaluation.

``recipe`` is the published CIFAR recipe (the Keras CIFAR-10 ResNet example): a step
schedule on the base lr (Keras' ``LearningRateScheduler``, at the start of each epoch) plus
reduce-on-plateau on the test loss (Keras' ``ReduceLROnPlateau``, at the end of each epoch).
In that example the step schedule *sets* the lr at the start of every epoch, which undoes
any plateau cut made at the end of the previous one, so the plateau never reached a training
step; ``plateau.persists=false`` keeps that behaviour, ``true`` lets cuts persist and compound
with the step factors. The plateau is :class:`KerasPlateau`, not PyTorch's
``ReduceLROnPlateau``, whose cuts come one epoch later (``num_bad_epochs > patience`` where
Keras has ``wait >= patience``) and which forgets its count when it can cut no further.
``cosine`` anneals to ``min_lr`` over the run with PyTorch's scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mila_bench.checks import finite, flag
from mila_bench.errors import UsageError, unknown_name

if TYPE_CHECKING:  # torch loads with a scheduler, not with the config check
    import torch
    from torch.optim.lr_scheduler import CosineAnnealingLR

SCHEDULERS = ("none", "recipe", "cosine")
#: Keras' ``ReduceLROnPlateau(min_delta=1e-4)``: a smaller improvement of the loss does not count.
MIN_DELTA = 1e-4


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


class KerasPlateau:
    """Keras' ``ReduceLROnPlateau`` in mode ``min`` with cooldown 0, as its ``on_epoch_end`` does it.

    A loss below ``best - min_delta`` is an improvement (``wait`` back to 0); otherwise ``wait``
    grows, and once it reaches ``patience`` the lr is cut to ``max(lr · factor, min_lr)``, but only
    while ``lr > min_lr`` (only a cut resets ``wait``).
    """

    def __init__(self, factor: float, patience: int, min_lr: float, min_delta: float = MIN_DELTA) -> None:
        self.factor, self.patience, self.min_lr, self.min_delta = factor, patience, min_lr, min_delta
        self.best, self.wait = math.inf, 0

    def cut(self, loss: float, lr: float) -> float | None:
        """End of an epoch trained at ``lr`` with test ``loss``: the new lr if Keras would cut now."""
        if loss < self.best - self.min_delta:
            self.best, self.wait = loss, 0
            return None
        self.wait += 1
        if self.wait >= self.patience and lr > self.min_lr:
            self.wait = 0
            return max(lr * self.factor, self.min_lr)
        return None

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: Mapping) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])


class EpochScheduler:
    """Sets each epoch's lr; ``step(test_loss)`` after an epoch sets the next one's.

    Recipe: the lr of 0-based epoch e is base × step_factor(e), times (``persists``) the
    product of the plateau cuts so far, never below ``min_lr`` once a cut happened.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: Mapping, epochs: int) -> None:
        from torch.optim.lr_scheduler import CosineAnnealingLR

        self.optimizer = optimizer
        self.cosine: CosineAnnealingLR | None = None
        if cfg["name"] == "cosine":
            self.cosine = CosineAnnealingLR(optimizer, T_max=epochs, eta_min=float(cfg["min_lr"]))
            return
        self.milestones, self.factors = list(cfg["milestones"]), [float(f) for f in cfg["factors"]]
        plateau = cfg["plateau"]
        self.plateau = KerasPlateau(float(plateau["factor"]), int(plateau["patience"]), float(plateau["min_lr"]))
        self.persists = bool(plateau["persists"])
        self.base = [float(group["lr"]) for group in optimizer.param_groups]
        self.epoch, self.scale = 0, 1.0  # next 0-based epoch; product of the plateau cuts that persist
        self._set_lr()

    def _set_lr(self) -> None:
        factor = step_factor(self.milestones, self.factors, self.epoch) * self.scale
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = max(base * factor, self.plateau.min_lr) if self.scale < 1 else base * factor

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, test_loss: float) -> None:
        if self.cosine is not None:
            self.cosine.step()
            return
        lr = self.lr()
        cut = self.plateau.cut(test_loss, lr)
        if cut is not None and self.persists:
            self.scale *= cut / lr
        self.epoch += 1
        self._set_lr()

    def state_dict(self) -> dict:
        """For checkpoints: plain data, loadable with weights_only."""
        if self.cosine is not None:
            return {"cosine": self.cosine.state_dict()}
        return {"epoch": self.epoch, "scale": self.scale, "base": self.base, "plateau": self.plateau.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.cosine is not None:
            self.cosine.load_state_dict(state["cosine"])
            return
        if "plateau" not in state or "scale" not in state:
            raise UsageError("the checkpoint's scheduler state is from an older mila-bench; start the run afresh")
        self.epoch, self.scale, self.base = int(state["epoch"]), float(state["scale"]), [float(b) for b in state["base"]]
        self.plateau.load_state_dict(state["plateau"])
        self._set_lr()


def build_scheduler(cfg: Mapping | None, optimizer: torch.optim.Optimizer, epochs: int) -> EpochScheduler | None:
    """The scheduler of the ``scheduler`` config group; ``none`` (or no group) keeps the lr fixed."""
    if cfg is None or cfg["name"] == "none":
        return None
    return EpochScheduler(optimizer, cfg, epochs)


def check_scheduler(cfg: Mapping | None) -> None:
    """One line naming the first bad scheduler value (torch-free: run at compose time)."""
    if cfg is None:
        return
    name = cfg.get("name")
    if name not in SCHEDULERS:
        raise unknown_name("scheduler", name, SCHEDULERS)
    if name == "cosine":
        finite("scheduler.min_lr", cfg["min_lr"], minimum=0.0)
    if name != "recipe":
        return
    milestones, factors = cfg["milestones"], cfg["factors"]
    if not _is_list(milestones) or not all(_is_int(m) and m >= 0 for m in milestones):
        raise UsageError(f"scheduler.milestones={_show(milestones)} is not allowed; expected a list of integers >= 0")
    if list(milestones) != sorted(milestones):
        raise UsageError(f"scheduler.milestones={_show(milestones)} is not allowed; expected increasing epochs")
    if not _is_list(factors) or len(factors) != len(milestones):
        raise UsageError(
            f"scheduler.factors={_show(factors)} is not allowed; expected one factor per milestone ({len(milestones)})"
        )
    for f in factors:
        finite("scheduler.factors", f, minimum=0.0, exclusive=True)
    plateau = cfg["plateau"]
    factor = plateau["factor"]
    finite("scheduler.plateau.factor", factor, minimum=0.0, exclusive=True)
    if factor >= 1:
        raise UsageError(f"scheduler.plateau.factor={factor!r} is not allowed; expected a number in (0, 1)")
    patience = plateau["patience"]
    if not _is_int(patience) or patience < 0:
        raise UsageError(f"scheduler.plateau.patience={patience!r} is not allowed; expected an integer >= 0")
    finite("scheduler.plateau.min_lr", plateau["min_lr"], minimum=0.0)
    flag("scheduler.plateau.persists", plateau["persists"])


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _show(value: object) -> str:
    return str(list(value)) if _is_list(value) else repr(value)
