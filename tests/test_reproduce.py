"""`mila-bench reproduce`: the packaged published tables, their recipe configs, and real tiny re-runs."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from mila_bench.config import compose
from mila_bench.published.tables import (
    PUBLISHED_ACTIVATIONS, PublishedRow, plan_rows, published_csv, published_tables, table_recipes,
)  # fmt: skip
from mila_bench.records.schema import Summary
from mila_bench.report.reproduction import comparison_section
from test_schema import example_summary


def test_packaged_numbers_are_the_reference_csv() -> None:
    reference = ROOT.parent / "shared" / "reference" / "original_results.csv"
    if reference.is_file():
        assert published_csv().read_bytes() == reference.read_bytes()
    rows = list(csv.DictReader(published_csv().open()))
    tables = published_tables()
    assert sum(len(t.rows) for t in tables.values()) == len(rows) == 158
    assert len(tables) == 20 and "cifar10-resnet20-v1" in tables and "cifar100-resnet164-v2" in tables
    row = next(r for r in tables["cifar10-resnet56-v1"].rows if r.label == "Mila (β = -0.25)")
    assert (row.top1, row.top3, row.top5, row.beta) == (92.59, 98.98, 99.81, -0.25)  # the recipe's example row
    assert row.loss == pytest.approx(0.429828)  # "4.29828%" is Keras' val_loss × 10
    assert tables["cifar10-resnet20-v1"].rows[0].top3 is None  # not published for that table
    assert {r.activation for t in tables.values() for r in t.rows} <= set(PUBLISHED_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(published_tables()))
def test_every_table_has_its_recipe_config(name: str) -> None:
    table = published_tables()[name]
    cfg = compose([f"experiment={table.experiment}"])
    assert (cfg.dataset.name, cfg.model.name, cfg.model.depth, cfg.model.version) == (
        table.dataset, "resnet", table.depth, table.version
    )
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.trainer.batch_size, cfg.scheduler.name) == ("adam", 0.001, 32, "recipe")
    assert cfg.optimizer.eps == 1e-7  # Keras' Adam default, where PyTorch has 1e-8
    assert cfg.trainer.epochs == (200 if table.depth <= 56 else 100 if table.depth == 110 else 50)


def test_rows_become_overrides_and_unrunnable_rows_are_skipped() -> None:
    rows = [
        PublishedRow("Mila (β = 1.5)", "mila", 1.5, 91.44, None, None),
        PublishedRow("Mish", "mish", 0.0, 91.81, None, None),
        PublishedRow("ELU(α=1.0)", "ELU(α=1.0)", None, 91.48, 98.88, 99.78),
        PublishedRow("β-Mish (β = 1.5)", "beta_mish", 1.5, 91.75, None, None),
        PublishedRow("Leaky ReLU(α=0.3)", "Leaky ReLU(α=0.3)", None, 90.57, None, None),
        PublishedRow("Swish-2", "Swish-2", None, 90.0, None, None),
    ]
    registry = {"mila": ("beta",), "mish": (), "elu": ("alpha",), "leaky_relu": ("negative_slope",)}
    plans = plan_rows(rows, registry, configs=("mila", "mish", "elu", "leaky_relu"))
    assert plans[0].overrides == ["activation=mila", "++activation.beta=1.5"] and plans[0].ran_as == "mila beta=1.5"
    assert plans[1].overrides == ["activation=mish"]  # Mish is Mila's β = 0: no β of its own to set
    assert plans[2].overrides == ["activation=elu", "++activation.alpha=1"]
    assert plans[3].skipped == "'beta_mish' is not in the activation registry"
    assert plans[4].skipped == "the registry's 'leaky_relu' has no parameter 'alpha'"
    assert "no mapping" in plans[5].skipped
    assert [p.skipped is None for p in plans] == [True, True, True, False, False, False]
    no_config = plan_rows(rows[:1], registry, configs=())
    assert no_config[0].skipped == "no configs/activation/mila.yaml"


def test_list_shows_every_published_table(tmp_path: Path) -> None:
    proc = run_cli(["reproduce", "--list"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    tables = [l for l in lines if l.startswith("cifar")]
    assert len(tables) == 20 and lines[:20] == tables
    assert lines[0].startswith("cifar10-resnet20-v1  (8 rows: mish, swish, relu, beta_mish, mila)  24 runs × 200 epochs")
    assert any(l.startswith("cifar100-resnet164-v2  (7 rows: mila, mish, relu, swish)  21 runs × 50 epochs") for l in lines)
    assert not (tmp_path / "Results.md").exists()


@pytest.mark.parametrize("name", ["cifar10-resnet20-v1", "cifar10_resnet20_v1"])
def test_a_table_is_found_under_its_experiments_spelling_too(name: str) -> None:
    from mila_bench.published.tables import find_table

    assert find_table(name) == published_tables()["cifar10-resnet20-v1"]


def test_a_table_and_its_experiment_compose_the_same_config_under_either_spelling(tmp_path: Path) -> None:
    shown = [run_cli(["train", f"experiment={name}", "--show-config"], tmp_path) for name in
             ("cifar10_resnet20_v1", "cifar10-resnet20-v1")]  # fmt: skip
    assert shown[0].returncode == shown[1].returncode == 0, shown[1].stderr
    assert shown[0].stdout == shown[1].stdout and "depth: 20" in shown[0].stdout


@pytest.mark.parametrize(
    ("args", "pointer"),
    [(["reproduce", "cpu_small"], "'cpu_small' is a suite: mila-bench suite cpu_small"),
     (["reproduce", "fashion_mnist_demo"], "'fashion_mnist_demo' is an experiment: mila-bench train experiment=fashion_mnist_demo"),
     (["suite", "cifar10-resnet20-v1"], "'cifar10-resnet20-v1' is a published table: mila-bench reproduce cifar10-resnet20-v1 "
                                        "(its recipe alone: mila-bench train experiment=cifar10_resnet20_v1)"),
     (["suite", "fashion_mnist_demo"], "'fashion_mnist_demo' is an experiment: mila-bench train experiment=fashion_mnist_demo"),
     (["train", "experiment=cpu_small"], "'cpu_small' is a suite: mila-bench suite cpu_small")],
    ids=" ".join,
)  # fmt: skip
def test_a_name_given_to_the_wrong_command_points_to_its_own(tmp_path: Path, args: list[str], pointer: str) -> None:
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("mila-bench: error: unknown ") and line.endswith(f"; {pointer}")
    assert list(tmp_path.iterdir()) == []


def test_unknown_experiment_lists_each_experiment_once(tmp_path: Path) -> None:
    proc = run_cli(["train", "experiment=nope"], tmp_path)
    assert proc.returncode == 2
    allowed = proc.stderr.split("allowed: ", 1)[1].strip().split(", ")
    assert allowed == sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml"))  # not the tables' spellings too


@pytest.mark.slow
def test_tiny_reproduction_writes_the_comparison_table(tmp_path: Path, cifar_root: Path) -> None:
    proc = run_cli(
        ["reproduce", "cifar10-resnet20-v1", "--epochs", "1", "--seeds", "2", f"dataset.root={cifar_root}",
         "dataset.verify=false", "dataset.train_subset=32", "device=cpu", "trainer.progress=false"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    published = published_tables()["cifar10-resnet20-v1"].rows
    runs = sorted((tmp_path / "results").iterdir())
    assert len(runs) == 2 * len(published)  # every row of the table ran (the registry has all of them), twice
    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    assert all(s["epochs"] == 1 and s["data"]["md5_check"].startswith("skipped") for s in summaries)
    assert all(s["data"]["train_subset"] == 32 for s in summaries)
    assert sorted(s["seed"] for s in summaries) == sorted([0, 1] * len(published))

    assert all("keras_val_loss" in s["final"] for s in summaries)
    header_csv = (runs[0] / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "test_loss" in header_csv and "keras_val_loss" in header_csv

    text = (tmp_path / "Results.md").read_text()
    assert "## cifar10 · resnet · depth 20 · v1" in text  # each run's own row
    assert "## Reproduction · cifar10-resnet20-v1 · 1 epoch · 2 seeds" in text
    section = text.split("## Reproduction · cifar10-resnet20-v1")[1]
    table = [l for l in section.splitlines() if l.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:6] == ["Activation", "Ran as", "n", "Top-1 ours", "Top-1 published", "Δ Top-1"]
    assert header[-3:] == ["Loss ours", "Loss published", "Δ Loss"]
    rows = {cells[0]: dict(zip(header, cells)) for cells in ([c.strip() for c in l.strip("|").split("|")] for l in table[2:])}
    assert set(rows) == {r.label for r in published}
    mila = rows["Mila (β = 1.5)"]
    assert mila["Ran as"] == "mila beta=1.5" and mila["n"] == "2" and mila["Top-1 published"] == "91.44"
    mine = [s["final"] for s in summaries if s["activation"] == "mila" and s["activation_params"]["beta"] == 1.5]
    for key, title, scale, decimals, published in (("top1", "Top-1", 100, 2, 91.44), ("keras_val_loss", "Loss", 1, 4, 0.48906)):
        values = [scale * f[key] for f in mine]
        mean, std = sum(values) / 2, abs(values[0] - values[1]) / 2**0.5
        assert mila[f"{title} ours"] == f"{mean:.{decimals}f} ± {std:.{decimals}f}"
        reading = "within" if abs(mean - published) <= 2 * std else "beyond"
        assert mila[f"Δ {title}"] == f"{mean - published:+.{decimals}f} ({reading} 2σ)"
    assert mila["Loss published"] == "0.4891"  # the table's 4.8906% ÷ 10
    assert mila["Top-3 published"] == "—" and mila["Δ Top-3"] == "—"  # no published Top-3 for this table
    assert "one Keras run per row with no seed control" in section and "Loss column ÷ 10" in section
    assert "Trained 1 epoch, the published runs 200" in section
    assert "[16/16]" in proc.stdout and "Reproduction · cifar10-resnet20-v1" in proc.stdout and ", loss " in proc.stdout


def record(activation: str, seed: int, top1: float, loss: float, **params: float) -> Summary:
    """A run's summary with what the comparison reads set."""
    final = replace(example_summary().final, top1=top1 / 100, top3=0.99, top5=0.998, keras_val_loss=loss)
    return example_summary(activation=activation, activation_params=params, seed=seed, epochs=200, dataset="cifar10", final=final)


def test_comparison_reads_each_delta_against_our_spread() -> None:
    table = published_tables()["cifar10-resnet56-v1"]  # Mila β = -0.25: 92.59 %, loss 0.429828, 200 epochs
    plans = [p for p in table_recipes(table) if p.name == "mila" and p.params == {"beta": -0.25}]
    records = [
        record("mila", 0, 92.0, 0.38, beta=-0.25), record("mila", 1, 93.0, 0.39, beta=-0.25),
        record("mila", 2, 92.5, 0.40, beta=-0.25),  # top-1 92.5 ± 0.5: Δ -0.09 within; loss 0.39 ± 0.01: Δ -0.0398 beyond
        record("mila", 3, 10.0, 9.9, beta=0.5),  # another row's run: not this row's
    ]  # fmt: skip
    lines = comparison_section(table, plans, records)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    row = dict(zip(header, [c.strip() for c in lines[2].strip("|").split("|")]))
    assert row["n"] == "3" and row["Top-1 ours"] == "92.50 ± 0.50" and row["Top-1 published"] == "92.59"
    assert row["Δ Top-1"] == "-0.09 (within 2σ)"
    assert row["Loss ours"] == "0.3900 ± 0.0100" and row["Loss published"] == "0.4298"
    assert row["Δ Loss"] == "-0.0398 (beyond 2σ)"
    assert row["Δ Top-3"] == "+0.02 (beyond 2σ)"  # 99.00 ± 0.00 against 98.98
    text = "\n".join(lines)
    assert "Here 1 of 4 Δs are within the spread." in text and "Trained" not in text  # 200 epochs: the recipe's
    one_seed = comparison_section(table, plans, records[:1])
    assert "(within" not in "\n".join(one_seed) and "no spread of ours" in "\n".join(one_seed)


@pytest.mark.slow
def test_reproduce_again_with_resume_reuses_the_completed_runs(tmp_path: Path, cifar_root: Path) -> None:
    args = ["reproduce", "cifar10-resnet20-v1", "--only", "relu", "--epochs", "1", "--seeds", "2", f"dataset.root={cifar_root}",
            "dataset.verify=false", "dataset.train_subset=32", "device=cpu", "trainer.progress=false"]  # fmt: skip
    first = run_cli(args, tmp_path)
    assert first.returncode == 0, first.stderr
    runs = sorted((tmp_path / "results").iterdir())
    records = [(r / "summary.json").read_text() for r in runs]
    section = (tmp_path / "Results.md").read_text().split("## Reproduction")[1]

    again = run_cli([*args, "trainer.resume=true"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted((tmp_path / "results").iterdir()) == runs  # nothing trained again
    assert [(r / "summary.json").read_text() for r in runs] == records
    text = (tmp_path / "Results.md").read_text()
    assert text.split("## Reproduction")[1].split("Overrides:")[0] == section.split("Overrides:")[0]  # the same numbers
    assert text.count(f"| {runs[0].name}") == 1  # no second row for the same run


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["cifar10-resnet21-v1"], "unknown published table 'cifar10-resnet21-v1'; allowed: cifar10-resnet110-v1"),
        (["cifar10-resnet20-v1", "optimizer.lr=0"], "optimizer.lr=0"),
        (["cifar10-resnet20-v1", "--only", "gelu"], "--only 'gelu' is not an activation of cifar10-resnet20-v1"),
        (["cifar10-resnet20-v1", "--seeds", "0"], "--seeds"),
        (["cifar10-resnet20-v1", "activation=relu"], "override 'activation=relu' is not allowed here"),
        ([], "name a published table"),
    ],
)
def test_bad_reproduce_input_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = run_cli(["reproduce", *args], tmp_path)
    assert proc.returncode == 2
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert expected in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "Results.md").exists() and not (tmp_path / "results").exists()


@pytest.mark.slow
def test_reproductions_with_different_rows_both_survive_report(tmp_path: Path, cifar_root: Path) -> None:
    shared = ["reproduce", "cifar10-resnet20-v1", "--epochs", "1", "--seeds", "2", f"dataset.root={cifar_root}",
              "dataset.verify=false", "dataset.train_subset=32", "device=cpu", "trainer.progress=false"]  # fmt: skip
    for only in ("relu", "mila"):
        proc = run_cli([*shared, "--only", only], tmp_path)
        assert proc.returncode == 0, proc.stderr
    before = (tmp_path / "Results.md").read_text()
    headings = [l for l in before.splitlines() if l.startswith("## Reproduction")]
    assert headings == [
        "## Reproduction · cifar10-resnet20-v1 · 1 epoch · 2 seeds · only relu · dataset.train_subset=32",
        "## Reproduction · cifar10-resnet20-v1 · 1 epoch · 2 seeds · only mila · dataset.train_subset=32",
    ]
    proc = run_cli(["report"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    after = (tmp_path / "Results.md").read_text()
    tagged = [json.loads(f.read_text()).get("reproduction", {}).get("section") for f in (tmp_path / "results").glob("*/summary.json")]
    for heading in headings:
        count = tagged.count(heading.removeprefix("## "))
        assert count >= 2 and f"rebuilt {heading}: {count} records" in proc.stdout
        body = lambda text: text.split(heading)[1].split("\n## ")[0]  # noqa: E731
        assert body(after) == body(before)  # rebuilt from the records, the same as reproduce wrote it
    # a rebuild from a results folder without those records keeps the sections as they are
    (tmp_path / "elsewhere").mkdir()
    proc = run_cli(["report", "--results", "elsewhere"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for heading in headings:
        assert heading in (tmp_path / "Results.md").read_text()


def test_missing_data_is_refused_in_one_line_before_any_step_is_timed(workdir: Path) -> None:
    """No record resembles the table's runs here, so its estimate would time a few steps; a run that
    cannot start (no CIFAR files, download off) is refused first, alone, with nothing written."""
    before = sorted(p.name for p in workdir.iterdir())
    proc = run_cli(["reproduce", "cifar10-resnet20-v1", f"dataset.root={workdir / 'nowhere'}", "dataset.download=false"], workdir)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""  # no estimate line before the error
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CIFAR-10 not found" in lines[0] and "dataset.root=DIR" in lines[0]
    assert sorted(p.name for p in workdir.iterdir()) == before


@pytest.mark.slow
def test_a_packed_reproduction_records_the_same_runs_as_one_trained_run_by_run(tmp_path: Path, cifar_root: Path) -> None:
    args = ["reproduce", "cifar10-resnet20-v1", "--epochs", "1", "--seeds", "2", "--only", "relu", "--only", "mila",
            f"dataset.root={cifar_root}", "dataset.verify=false", "dataset.train_subset=32", "device=cpu"]  # fmt: skip
    (tmp_path / "packed").mkdir()
    (tmp_path / "lone").mkdir()
    packed = run_cli([*args, "--packed"], tmp_path / "packed")
    lone = run_cli(args, tmp_path / "lone")
    assert packed.returncode == 0 and lone.returncode == 0, packed.stderr + lone.stderr
    assert "pack of" in packed.stdout and "pack of" not in lone.stdout

    def by_run(where: Path) -> dict[tuple, dict]:
        found = {}
        for run in (where / "results").iterdir():
            s = json.loads((run / "summary.json").read_text())
            found[(s["reproduction"]["row"], s["seed"])] = s
        return found

    ours, theirs = by_run(tmp_path / "packed"), by_run(tmp_path / "lone")
    assert ours.keys() == theirs.keys() and len(ours) >= 4
    for key, summary in ours.items():
        assert summary["pack"]["size"] == len(ours) and theirs[key].get("pack") is None
        ours_sum, theirs_sum = summary["final"]["train_loss_sum"], theirs[key]["final"]["train_loss_sum"]  # epoch 1's
        assert abs(ours_sum - theirs_sum) <= 1e-4 * abs(theirs_sum), key
    section = lambda where: (where / "Results.md").read_text().split("## Reproduction")[1].splitlines()[0]  # noqa: E731
    assert section(tmp_path / "packed") == section(tmp_path / "lone")
