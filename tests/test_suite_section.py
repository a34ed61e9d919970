"""A suite's Results.md section from hand-made suite records: which run of a repeated
(task, activation, seed) counts, and which way the suite's metric ranks."""

from __future__ import annotations

import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import ROOT
from mila_bench.config import compose
from mila_bench.records import runs
from mila_bench.report import build
from mila_bench.report.suite_section import newest
from test_schema import example_summary

TASKS = ("deep_mlp", "mlp")
ACTIVATIONS = ("gelu", "mila", "relu")
SEEDS = (0, 1, 2)
#: Per activation: test loss lowest for gelu, top-1 highest for relu, so the two metrics rank in opposite orders.
LOSS = {"gelu": 0.30, "mila": 0.40, "relu": 0.50}
TOP1 = {"gelu": 0.70, "mila": 0.75, "relu": 0.80}


@pytest.fixture
def suite_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The project's configs plus suite ``tiny`` with the given metric, used through MILA_BENCH_CONFIG_DIR."""

    def make(metric: str) -> None:
        target = tmp_path / "configs"
        shutil.copytree(ROOT / "configs", target)
        (target / "suite" / "tiny.yaml").write_text(f"metric: {metric}\ntasks:\n  mlp: [model=mlp]\n  deep_mlp: [model=mlp]\n")
        monkeypatch.setenv("MILA_BENCH_CONFIG_DIR", str(target))

    return make


def suite_run(results: Path, task: str, activation: str, seed: int, top1: float, loss: float, stamp: str) -> str:
    """A completed run of suite ``tiny`` as pipeline.train records it, started at ``stamp`` (run ids sort by time)."""
    cfg = compose([f"activation={activation}", f"seed={seed}", "trainer.epochs=2", "+suite.name=tiny", f"+suite.task={task}"])
    run_id = f"{stamp}-fashion_mnist-mlp-{activation}-s{seed}-{task.replace('_', '')}"
    final = replace(example_summary().final, top1=top1, test_loss=loss)
    summary = example_summary(
        run_id=run_id, model_config=OmegaConf.to_container(cfg.model), activation=activation,
        activation_params={"beta": cfg.activation.beta} if "beta" in cfg.activation else {}, seed=seed, final=final,
    )  # fmt: skip
    folder = runs.start_run(results, run_id, OmegaConf.to_yaml(cfg, resolve=True), summary)
    runs.write_metrics(folder, [replace(final, epoch=1), final])
    return run_id


def shift(task: str, seed: int) -> float:
    """What each block adds to every activation's values (blocks differ; the order within them does not)."""
    return 0.01 * (TASKS.index(task) + seed)


def suite_records(results: Path) -> None:
    """Every task × activation × seed once: 6 blocks, each with the per-activation order of LOSS and TOP1."""
    for task in TASKS:
        for seed in SEEDS:
            for act in ACTIVATIONS:
                suite_run(results, task, act, seed, TOP1[act] + shift(task, seed), LOSS[act] + shift(task, seed), "20260101-000000")


def section(markdown: Path) -> str:
    return markdown.read_text().split("## Suite tiny\n", 1)[1].split("\n## ", 1)[0]


def mean_ranks(text: str) -> dict[str, float]:
    """The section's across-task ranking table, in its order (best first)."""
    rows = [l for l in text.split("**Across tasks**", 1)[1].splitlines() if l.startswith("|")][2:]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return {name: float(rank) for name, rank in cells}


def task_cell(text: str, task: str, activation: str) -> str:
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in text.splitlines() if l.startswith("|")]
    header = rows[0]
    [row] = [r for r in rows if r[0] == task]
    return row[header.index(activation)]


@pytest.mark.parametrize(
    ("metric", "order"), [("top1", ["relu", "mila", "gelu"]), ("test_loss", ["gelu", "mila", "relu"])]
)
def test_a_suites_metric_ranks_in_its_own_direction(metric: str, order: list[str], tmp_path: Path, suite_configs) -> None:
    """top1: higher is better; test_loss: lower is better (rank 1 = best, in every block here)."""
    suite_configs(metric)
    suite_records(tmp_path / "results")
    build(tmp_path / "results", tmp_path / "Results.md")
    text = section(tmp_path / "Results.md")
    assert f"Cells: {metric}" in text and "6 blocks (2 tasks × 3 seeds" in text
    assert mean_ranks(text) == {order[0]: 1.0, order[1]: 2.0, order[2]: 3.0}
    assert list(mean_ranks(text)) == order


def test_the_newest_of_repeated_runs_counts(tmp_path: Path, suite_configs) -> None:
    """A (task, activation, seed) run twice: the later run (its id starts with its start time) counts,
    in the table, in the ranking and in the count of runs, whichever order the records come in."""
    suite_configs("top1")
    results = tmp_path / "results"
    suite_records(results)
    older = suite_run(results, "mlp", "gelu", 0, 0.10, 2.0, "20251231-235959")  # started before the others
    newer = suite_run(results, "mlp", "gelu", 1, 0.99, 0.01, "20260102-000000")  # started after them
    build(results, tmp_path / "Results.md")
    text = section(tmp_path / "Results.md")
    assert "18 completed runs" in text
    counted = [TOP1["gelu"] + shift("mlp", s) for s in SEEDS]
    counted[1] = 0.99  # seed 1: the newer run; seed 0: the run started after the older repeat
    assert task_cell(text, "mlp", "gelu") == f"{100 * statistics.fmean(counted):.2f} ± {100 * statistics.stdev(counted):.2f} (3)"
    assert mean_ranks(text)["gelu"] == pytest.approx((1 + 3 + 3 + 3 + 3 + 3) / 6, abs=0.005)  # first in the one block it won

    records, _ = runs.load(results)
    for order in (records, records[::-1]):
        chosen = newest(order)
        assert chosen[("mlp", "gelu", 1)].run_id == newer
        assert chosen[("mlp", "gelu", 0)].run_id != older and chosen[("mlp", "gelu", 0)].summary.final.top1 == counted[0]
