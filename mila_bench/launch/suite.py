"""``mila-bench suite NAME``: every task × activation × seed of a suite, through the sweep launchers.

A suite (``configs/suite/NAME.yaml``, read by :mod:`mila_bench.suites`) names tasks, each a
list of Hydra overrides, plus overrides ``common`` to all of them. Each task is one Hydra
multirun of :mod:`mila_bench.launch.sweep` over ``activation=…`` and ``seed=range(0,N)`` on
whichever launcher the overrides pick (basic, joblib, SLURM), so every run is recorded as
``mila-bench train`` records it. Runs carry ``suite.name`` and ``suite.task`` in their config,
which is how ``report`` finds them, and run with ``trainer.resume=true``: re-running a suite
after a kill finishes what is missing and trains nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mila_bench.errors import UsageError
from mila_bench.overrides import override_key
from mila_bench.suites import Suite, load


def task_overrides(
    suite: Suite, task: str, activations: Sequence[str], seeds: int, overrides: Sequence[str]
) -> list[str]:
    """The sweep of one task: its settings, the activations × seeds, the suite's tags, the user's overrides."""
    return [
        *suite.common, *suite.tasks[task],
        f"activation={','.join(activations)}", f"seed=range(0,{seeds})",
        f"+suite.name={suite.name}", f"+suite.task={task}", "trainer.resume=true", *overrides,
    ]  # fmt: skip


def run_suite(
    name: str,
    activations: Sequence[str],
    seeds: int,
    overrides: Sequence[str] = (),
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """Check every task's sweep, then run them one after another; return the failure lines (empty: all done)."""
    from mila_bench.launch import sweep

    suite = load(name)
    if not activations:
        raise UsageError("--activations is empty; give e.g. --activations mila,mish,relu,gelu")
    for override in overrides:
        key = override_key(override)
        if key in ("seed", "activation", "suite.name", "suite.task"):
            raise UsageError(
                f"override {override!r} is not allowed here: the suite sets it; use --activations and --seeds"
            )
    # Every task is planned (composed and checked) before any runs: bad input trains nothing.
    plans = []
    for task in suite.tasks:
        try:
            plans.append(sweep.plan(task_overrides(suite, task, activations, seeds, overrides)))
        except UsageError as err:
            raise UsageError(f"suite {name}, task {task}: {err}") from None
    long = sweep.long_sweep_line(
        f"suite {name}", plans, "--seeds 1, fewer --activations, or a smaller suite (mila-bench suite lists them); "
        "runs already recorded are not trained again",
    )  # fmt: skip
    if long:
        echo(long)
    failures = []
    for i, task in enumerate(suite.tasks, 1):
        echo(f"suite {name}: task {i}/{len(suite.tasks)} {task} ({' '.join(suite.tasks[task])})")
        outcome = sweep.sweep(task_overrides(suite, task, activations, seeds, overrides), echo=echo, warn=warn,
                              say_estimate=False)  # fmt: skip
        failure = sweep.failure_line(outcome)
        if failure:
            failures.append(f"task {task}: {failure}")
    return failures
