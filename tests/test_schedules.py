"""Learning-rate schedules: the recipe's steps and plateau (both readings), cosine, checks, and resuming mid-schedule."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
import torch

from mila_bench.config import compose
from mila_bench.errors import UsageError
from mila_bench.training.schedules import build_scheduler, step_factor

BASE = 1e-3


def lrs(scheduler_overrides: list[str], losses: list[float]) -> list[float]:
    """The lr of each epoch when the test losses are ``losses``."""
    cfg = compose(["scheduler=recipe", *scheduler_overrides])
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=BASE)
    scheduler = build_scheduler(cfg.scheduler, optimizer, epochs=len(losses))
    seen = []
    for loss in losses:
        seen.append(scheduler.lr())
        optimizer.step()
        scheduler.step(loss)
    return seen


def test_step_factors_follow_the_keras_example() -> None:
    milestones, factors = [80, 120, 160, 180], [0.1, 0.01, 0.001, 0.0005]
    assert [step_factor(milestones, factors, e) for e in (0, 80, 81, 120, 121, 161, 180, 181, 199)] == [
        1, 1, 0.1, 0.1, 0.01, 0.001, 0.001, 0.0005, 0.0005
    ]


def test_recipe_without_plateau_effect_is_the_step_schedule() -> None:
    """Default (the Keras example): the step schedule sets the lr each epoch, so plateau cuts never last."""
    seen = lrs([], [1.0] * 200)  # a loss that never improves: the plateau fires again and again
    expected = [BASE * step_factor([80, 120, 160, 180], [0.1, 0.01, 0.001, 0.0005], e) for e in range(200)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert seen[81] == pytest.approx(1e-4) and seen[199] == pytest.approx(5e-7)


def test_persistent_plateau_cuts_compound_with_the_steps() -> None:
    losses = [1.0 - 0.01 * e for e in range(10)] + [1.0] * 40  # improves for 10 epochs, then stalls
    seen = lrs(["scheduler.plateau.persists=true", "scheduler.milestones=[30]", "scheduler.factors=[0.1]"], losses)
    assert seen[:15] == pytest.approx([BASE] * 15)  # best at epoch 9 (0-based); epochs 10..14 are five bad ones
    cut = BASE * math.sqrt(0.1)
    assert seen[15] == pytest.approx(cut)  # Keras cuts when wait reaches patience: after the fifth bad epoch
    assert seen[20] == pytest.approx(cut * math.sqrt(0.1))  # and five more
    assert seen[31] == pytest.approx(seen[30] * 0.1)  # the step (0-based epoch 31 > 30) multiplies what is there
    assert seen[35] == seen[-1] == 5e-7  # a cut stops at min_lr, and the lr stays there


class KerasReduceLROnPlateau:
    """Keras 2.2's ``ReduceLROnPlateau.on_epoch_end`` (the example's callback), line for line."""

    def __init__(self, factor: float, patience: int, min_lr: float, min_delta: float = 1e-4, cooldown: int = 0) -> None:
        self.factor, self.patience, self.min_lr, self.cooldown = factor, patience, min_lr, cooldown
        self.monitor_op = lambda a, b: a < b - min_delta  # mode 'min'
        self.best, self.wait, self.cooldown_counter, self.cuts = math.inf, 0, 0, 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, logs: dict, optimizer: dict) -> None:
        current = logs["val_loss"]
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer["lr"])
                if old_lr > self.min_lr:
                    new_lr = old_lr * self.factor
                    new_lr = max(new_lr, self.min_lr)
                    optimizer["lr"] = new_lr
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
                    self.cuts += 1


def keras_lr_schedule(epoch: int) -> float:
    """The example's ``lr_schedule``, as published."""
    lr = 1e-3
    if epoch > 180:
        lr *= 0.5e-3
    elif epoch > 160:
        lr *= 1e-3
    elif epoch > 120:
        lr *= 1e-2
    elif epoch > 80:
        lr *= 1e-1
    return lr


def keras_lrs(losses: list[float], persists: bool) -> list[float]:
    """The lr of each epoch in Keras: LearningRateScheduler at epoch begin, ReduceLROnPlateau at epoch end.

    The example's schedule sets lr_schedule(epoch) outright; the persisting reading multiplies the
    current lr by the schedule's change instead (Keras passes ``schedule(epoch, lr)`` the current
    lr), never below min_lr once the plateau has cut.
    """
    plateau = KerasReduceLROnPlateau(factor=math.sqrt(0.1), patience=5, min_lr=0.5e-6)
    optimizer = {"lr": 1e-3}

    def schedule(epoch: int, lr: float) -> float:
        if not persists:
            return keras_lr_schedule(epoch)
        lr *= keras_lr_schedule(epoch) / keras_lr_schedule(max(epoch - 1, 0))
        return max(lr, plateau.min_lr) if plateau.cuts else lr

    seen = []
    for epoch, loss in enumerate(losses):
        optimizer["lr"] = schedule(epoch, float(optimizer["lr"]))  # LearningRateScheduler.on_epoch_begin
        seen.append(optimizer["lr"])
        plateau.on_epoch_end({"val_loss": loss}, optimizer)
    return seen


def loss_sequences() -> dict[str, list[float]]:
    noise = random.Random(0)
    return {
        "flat": [1.0] * 200,
        "falling": [1 / (1 + e) for e in range(200)],  # improvements drop below min_delta after ~100 epochs
        "noisy": [0.99**e + noise.gauss(0, 0.02) for e in range(200)],
        "steps of 4e-5": [1 - 4e-5 * e for e in range(200)],  # below min_delta; every third epoch beats best
        "steps of 1.5e-5": [1 - 1.5e-5 * e for e in range(200)],  # best is beaten only every seventh epoch
        "stall then fall": [1.0] * 60 + [1.0 - 0.01 * e for e in range(140)],
    }


@pytest.mark.parametrize("persists", [False, True])
@pytest.mark.parametrize("name", sorted(loss_sequences()))
def test_recipe_lr_is_kerass_in_every_epoch(name: str, persists: bool) -> None:
    losses = loss_sequences()[name]
    ours = lrs([f"scheduler.plateau.persists={str(persists).lower()}"], losses)
    keras = keras_lrs(losses, persists)
    assert ours == pytest.approx(keras, rel=1e-9, abs=0)
    assert len(ours) == 200 and min(ours) >= 5e-7 * (1 - 1e-12)
    if persists and name in ("flat", "noisy", "steps of 1.5e-5"):
        assert min(ours[:81]) < 1e-3  # the plateau did act before the first step
    if not persists:
        assert ours == pytest.approx([keras_lr_schedule(e) for e in range(200)], rel=1e-12)


def test_cosine_anneals_to_min_lr() -> None:
    cfg = compose(["scheduler=cosine", "scheduler.min_lr=1e-5"])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = build_scheduler(cfg.scheduler, optimizer, epochs=10)
    seen = []
    for _ in range(10):
        seen.append(scheduler.lr())
        optimizer.step()
        scheduler.step(0.0)
    assert seen[0] == pytest.approx(0.1) and seen[5] == pytest.approx((0.1 + 1e-5) / 2)
    assert scheduler.lr() == pytest.approx(1e-5)
    assert all(a > b for a, b in zip(seen, seen[1:]))


def test_no_scheduler_by_default() -> None:
    cfg = compose([])
    assert cfg.scheduler.name == "none"
    assert build_scheduler(cfg.scheduler, torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), 5) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler=step"], "unknown scheduler 'step'; allowed: cosine, none, recipe"),
        (["scheduler=recipe", "scheduler.factors=[0.1]"], "one factor per milestone"),
        (["scheduler=recipe", "scheduler.milestones=[120,80,160,180]"], "increasing"),
        (["scheduler=recipe", "scheduler.plateau.factor=1.5"], "(0, 1)"),
        (["scheduler=recipe", "scheduler.plateau.patience=-1"], "integer >= 0"),
        (["scheduler=cosine", "scheduler.min_lr=-1"], "scheduler.min_lr=-1"),
    ],
)
def test_bad_scheduler_values_are_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        compose(overrides)


@pytest.mark.slow
def test_fit_steps_the_scheduler_and_records_each_epochs_lr(cifar_root: Path, tmp_path: Path) -> None:
    from mila_bench.pipeline import train

    result = train(compose([
        "experiment=cifar10_resnet20_v1", "trainer.epochs=3", "scheduler.milestones=[0,1,2,3]", f"dataset.root={cifar_root}",
        "dataset.verify=false", "device=cpu", "trainer.progress=false", "dataset.train_subset=32",
        f"results.dir={tmp_path / 'r'}", f"results.markdown={tmp_path / 'R.md'}",
    ]))  # fmt: skip
    assert [m.lr for m in result.history] == pytest.approx([1e-3, 1e-4, 1e-5])
    header = (result.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith(",seconds,lr,keras_val_loss")  # ResNet has Keras' kernel penalty


@pytest.mark.parametrize(
    "schedule",
    [["scheduler=cosine"], ["scheduler=recipe", "scheduler.milestones=[0,1]", "scheduler.factors=[0.1,0.01]"]],
    ids=["cosine", "recipe"],
)
def test_a_run_interrupted_after_its_first_epoch_resumes_its_schedule(
    schedule: list[str], fashion_root: Path, tmp_path: Path
) -> None:
    """The lr changes every epoch, so a resume that started the schedule afresh (the optimizer's
    state gives back only the current lr, not where the schedule is) differs from epoch 3 on."""
    from mila_bench.errors import RunInterrupted
    from mila_bench.pipeline import train

    def cfg(folder: str, *extra: str):
        return compose([
            *schedule, f"dataset.root={fashion_root}", "dataset.train_subset=1000", "trainer.epochs=3", "seed=5",
            "device=cpu", "trainer.threads=1", "trainer.progress=false", f"results.dir={tmp_path / folder / 'results'}",
            f"results.markdown={tmp_path / folder / 'Results.md'}", *extra,
        ])  # fmt: skip

    def after_first_epoch(metrics) -> None:
        if metrics.epoch == 1:  # its checkpoint is written: the same moment as Ctrl-C during epoch 2
            raise KeyboardInterrupt

    reference = train(cfg("reference"))
    with pytest.raises(RunInterrupted):
        train(cfg("work"), on_epoch=after_first_epoch)
    resumed = train(cfg("work", "trainer.resume=true"))

    assert resumed.summary.resumed_from_epoch == [1] and resumed.summary.status == "completed"
    lrs = [m.lr for m in reference.history]
    assert len(set(lrs)) == 3, lrs  # the schedule changes the lr in each epoch of this run
    assert "lr" in metrics_without_seconds(reference.run_dir)[0]
    assert metrics_without_seconds(resumed.run_dir) == metrics_without_seconds(reference.run_dir)


def metrics_without_seconds(run_dir: Path) -> list[list[str]]:
    """metrics.csv, lr column included, without the (timing) seconds column."""
    rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if name != "seconds"]
    return [[row[i] for i in keep] for row in rows]
