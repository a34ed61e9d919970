"""``mila-bench runs`` with filters no run can match: one line naming what can, exit 2, without torch.

Read against the records in ``results/`` as the command reads them (``load_runs``), so the values
the errors must list are computed here from the same folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mila_bench
from conftest import ROOT
from test_startup import cli

RESULTS = ROOT / "results"


@pytest.fixture(scope="module")
def runs():
    return mila_bench.load_runs(RESULTS)


def runs_cli(args: list[str], cwd: Path):
    proc, lines, heavy = cli(["runs", "--results", str(RESULTS), *args], cwd)
    assert heavy == [], f"{args} imported {heavy}"
    assert list(cwd.iterdir()) == []  # nothing written
    return proc, lines


def test_a_word_for_a_numeric_column_names_the_range(tmp_path: Path, runs) -> None:
    proc, lines = runs_cli(["top1=abc"], tmp_path)
    top1 = runs["metrics.top1"].dropna()
    assert proc.returncode == 2 and proc.stdout == ""
    assert lines == [f"mila-bench: error: top1='abc' is not a number; metrics.top1 holds numbers from {top1.min():g} to {top1.max():g}"]


def test_a_value_no_run_has_lists_the_values_present_closest_first(tmp_path: Path, runs) -> None:
    proc, lines = runs_cli(["activation=mila,mlia"], tmp_path)
    assert proc.returncode == 2 and proc.stdout == "" and len(lines) == 1, proc.stderr
    head, _, listed = lines[0].partition("values present, closest first: ")
    assert head == "mila-bench: error: no run has activation=mlia (params.activation.name); "
    names = listed.split(", ")
    assert names[0] == "mila" and set(names) == set(runs["params.activation.name"])  # five: all are shown


def test_a_number_no_run_has_lists_the_nearest_numbers_first(tmp_path: Path, runs) -> None:
    seeds = sorted(set(runs["params.seed"]))
    proc, lines = runs_cli([f"seed={max(seeds) + 100}"], tmp_path)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    listed = lines[0].partition("values present, closest first: ")[2].split(" (")[0].split(", ")
    assert listed == [str(s) for s in sorted(seeds, reverse=True)][: len(listed)] and len(listed) == min(8, len(seeds))


def test_filters_each_met_but_not_together_still_print_no_runs_match(tmp_path: Path, runs) -> None:
    first = runs.iloc[0]
    other_seed = next(s for s in runs["params.seed"] if s != first["params.seed"])
    proc, lines = runs_cli([f"run_id={first['run_id']}", f"seed={other_seed}"], tmp_path)
    assert proc.returncode == 0 and lines == [], proc.stderr
    assert proc.stdout == f"no runs match run_id={first['run_id']} seed={other_seed} ({len(runs)} runs in {RESULTS})\n"
