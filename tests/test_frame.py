"""Runs as DataFrames (``mila_bench.load_runs`` / ``load_metrics``) and ``mila-bench runs``.

Checked against the committed record (as git tracks it: the user's own runs do not count), read
here independently with json, yaml and csv: every committed run is a row, with its whole config
and its final metrics, and its epochs in long form.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

import mila_bench
from mila_bench.errors import UsageError
from mila_bench.records.frame import select_runs
from conftest import ROOT
from test_startup import cli

@pytest.fixture(scope="module")
def results(committed: Path) -> Path:
    """The committed ``results/``."""
    return committed / "results"


def folders(results: Path) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sorted(results.glob("*/summary.json"))}


def flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def same(cell, value) -> bool:
    if value is None:
        return cell is None or (isinstance(cell, float) and math.isnan(cell))
    if isinstance(value, list):
        return cell == str(value)
    return cell == value


@pytest.fixture(scope="module")
def runs(results: Path):
    return mila_bench.load_runs(results)


def test_load_runs_has_every_committed_run_with_its_config_and_final_metrics(runs, results: Path) -> None:
    found = folders(results)
    assert len(found) >= 165
    assert list(runs["run_id"]) == list(found)  # every run, oldest first, once
    indexed = runs.set_index("run_id")
    for run_id, folder in found.items():
        row = indexed.loc[run_id]
        summary = json.loads((folder / "summary.json").read_text())
        config = flat(yaml.safe_load((folder / "config.yaml").read_text()))
        assert row["status"] == summary["status"]
        for key, value in config.items():
            if value == {}:  # an empty mapping (e.g. model.kwargs) has no leaf to be a column
                continue
            assert same(row[f"params.{key}"], value), (run_id, key, row[f"params.{key}"], value)
        for key in ("top1", "top3", "top5", "test_loss", "train_loss"):
            assert row[f"metrics.{key}"] == summary["final"][key], (run_id, key)
        assert row["metrics.epochs"] == summary["final"]["epoch"]
        assert row["env.torch"] == summary["environment"]["torch"]
        if "cost" in summary:
            assert row["cost.step_ms"] == summary["cost"]["step_ms"]


def test_load_metrics_is_every_epoch_of_every_run_in_long_form(results: Path) -> None:
    long = mila_bench.load_metrics(results)
    assert list(long.columns) == ["run_id", "epoch", "metric", "value"]
    expected = {}
    for run_id, folder in folders(results).items():
        with open(folder / "metrics.csv", newline="") as f:
            for line in csv.DictReader(f):
                for metric, value in line.items():
                    if metric != "epoch":
                        expected[(run_id, int(line["epoch"]), metric)] = float(value)
    got = {(r.run_id, r.epoch, r.metric): r.value for r in long.itertuples()}
    assert len(long) == len(expected)
    assert got == pytest.approx(expected, rel=1e-15)


def test_filters_match_independent_counts(runs, results: Path) -> None:
    summaries = [json.loads((f / "summary.json").read_text()) for f in folders(results).values()]
    mila_01 = [s for s in summaries if s["activation"] == "mila" and s["seed"] in (0, 1)]
    chosen = select_runs(runs, ["activation=mila", "seed=0,1"])
    assert len(chosen) == len(mila_01) > 0
    assert set(chosen["params.activation.name"]) == {"mila"} and set(chosen["params.seed"]) <= {0, 1}
    zero = select_runs(runs, ["activation=mila", "activation.beta=0"])  # 0 matches 0.0
    assert len(zero) == sum(s["activation"] == "mila" and s["activation_params"]["beta"] == 0 for s in summaries) > 0
    assert len(select_runs(runs, ["params.model.name=timm", "top1=0.6434"])) == 1
    assert select_runs(runs, ["seed=99"]).empty


@pytest.mark.parametrize(
    "bad, message",
    [("activaton=mila", "no column 'activaton'"), ("activation", "not KEY=VALUE"), ("=1", "not KEY=VALUE")],
)
def test_bad_filters_are_one_clear_error(runs, bad: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        select_runs(runs, [bad])


def test_an_unreadable_record_is_left_out_with_a_warning(tmp_path: Path, results: Path) -> None:
    first, second = list(folders(results).values())[:2]
    for folder in (first, second):
        shutil.copytree(folder, tmp_path / folder.name)
    (tmp_path / second.name / "summary.json").write_text('{"status": "completed"}')
    with pytest.warns(UserWarning, match=second.name):
        frame = mila_bench.load_runs(tmp_path)
    assert list(frame["run_id"]) == [first.name]


def test_cli_runs_filters_and_prints_json_csv_and_a_table_without_torch(committed: Path) -> None:
    summaries = [json.loads((f / "summary.json").read_text()) for f in folders(committed / "results").values()]
    expected = sorted(s["run_id"] for s in summaries if s["activation"] == "swish" and s["model"] == "deep_mlp")

    proc, _, heavy = cli(["runs", "activation=swish", "model=deep_mlp", "--format", "json"], committed)
    assert proc.returncode == 0 and heavy == [], proc.stderr
    rows = json.loads(proc.stdout)
    assert sorted(r["run_id"] for r in rows) == expected
    assert {r["params.activation.name"] for r in rows} == {"swish"}

    proc, _, _ = cli(["runs", "activation=swish", "model=deep_mlp", "--format", "csv"], committed)
    assert sorted(r["run_id"] for r in csv.DictReader(proc.stdout.splitlines())) == expected

    proc, _, _ = cli(["runs", "activation=swish", "model=deep_mlp", "--columns", "seed,top1"], committed)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["seed", "top1"]
    assert lines[-1] == f"{len(expected)} of {len(summaries)} runs"


@pytest.mark.parametrize(
    "args, message",
    [(["runs", "activaton=mila"], "no column 'activaton'"), (["runs", "--format", "xml"], "--format 'xml'"),
     (["runs", "--results", "nowhere"], "'nowhere' does not exist")],
)  # fmt: skip
def test_cli_runs_bad_input_is_one_line(tmp_path: Path, results: Path, args: list[str], message: str) -> None:
    shutil.copytree(next(iter(folders(results).values())), tmp_path / "results" / "one")
    proc, lines, heavy = cli(args, tmp_path)
    assert proc.returncode == 2 and heavy == []
    assert len(lines) == 1 and message in lines[0], lines


def test_the_docs_page_cells_print_what_the_page_shows(committed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/runs.md: its python cells run in order over the committed record (in a copy of it, as the
    user's own runs would change what they print); a text block after a cell is what that cell prints."""
    import contextlib
    import io
    import re

    blocks = re.findall(r"```(python|text)\n(.*?)```", (ROOT / "docs" / "runs.md").read_text(), re.S)
    assert [kind for kind, _ in blocks].count("python") >= 4
    monkeypatch.chdir(committed)
    namespace: dict = {}
    printed = ""
    for kind, body in blocks:
        if kind == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, "docs/runs.md", "exec"), namespace)
            printed = out.getvalue()
        else:
            assert printed == body, f"docs/runs.md shows:\n{body}\nthe cell printed:\n{printed}"
