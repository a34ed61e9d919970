"""Learning-rate schedules: the recipe's steps and plateau (both readings), cosine, and checks."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from mila_bench.config import compose
from mila_bench.errors import UsageError
from mila_bench.schedules import build_scheduler, step_factor

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
    assert seen[:16] == pytest.approx([BASE] * 16)  # best at epoch 10, five bad epochs are patience
    cut = BASE * math.sqrt(0.1)
    assert seen[16] == pytest.approx(cut)  # the sixth bad epoch cuts
    assert seen[22] == pytest.approx(cut * math.sqrt(0.1))  # and six more
    assert seen[31] == pytest.approx(seen[30] * 0.1)  # the step (0-based epoch 31 > 30) multiplies what is there
    assert seen[-1] == pytest.approx(5e-7)  # plateau cuts stop at min_lr


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


def test_fit_steps_the_scheduler_and_records_each_epochs_lr(cifar_root: Path, tmp_path: Path) -> None:
    from mila_bench.pipeline import train

    result = train(compose([
        "experiment=cifar10_resnet20_v1", "trainer.epochs=3", "scheduler.milestones=[0,1,2,3]", f"dataset.root={cifar_root}",
        "dataset.verify=false", "device=cpu", "trainer.progress=false", "dataset.train_subset=32",
        f"results.dir={tmp_path / 'r'}", f"results.markdown={tmp_path / 'R.md'}",
    ]))  # fmt: skip
    assert [m.lr for m in result.history] == pytest.approx([1e-3, 1e-4, 1e-5])
    header = (result.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith(",seconds,lr")
