"""`mila-bench reproduce`: the packaged published tables, their recipe configs, and real tiny re-runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from mila_bench.config import compose
from mila_bench.reproduce import PUBLISHED_ACTIVATIONS, PublishedRow, plan_rows, published_csv, published_tables


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
    assert len(lines) == 20
    assert lines[0].startswith("cifar10-resnet20-v1  (8 rows: mish, swish, relu, beta_mish, mila)")
    assert any(l.startswith("cifar100-resnet164-v2  (7 rows") for l in lines)
    assert not (tmp_path / "Results.md").exists()


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

    text = (tmp_path / "Results.md").read_text()
    assert "## cifar10 · resnet · depth 20 · v1" in text  # each run's own row
    assert "## Reproduction · cifar10-resnet20-v1 · 1 epoch · 2 seeds" in text
    section = text.split("## Reproduction · cifar10-resnet20-v1")[1]
    table = [l for l in section.splitlines() if l.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:6] == ["Activation", "Ran as", "n", "Top-1 ours", "Top-1 published", "Δ Top-1"]
    rows = {cells[0]: cells for cells in ([c.strip() for c in l.strip("|").split("|")] for l in table[2:])}
    assert set(rows) == {r.label for r in published}
    mila = rows["Mila (β = 1.5)"]
    assert mila[1] == "mila beta=1.5" and mila[2] == "2" and mila[4] == "91.44"
    ours = [100 * s["final"]["top1"] for s in summaries if s["activation"] == "mila" and s["activation_params"]["beta"] == 1.5]
    mean = sum(ours) / 2
    std = abs(ours[0] - ours[1]) / 2**0.5
    assert mila[3] == f"{mean:.2f} ± {std:.2f}"
    assert mila[5] == f"{mean - 91.44:+.2f}"
    assert mila[7] == "—" and mila[8] == "—"  # no published Top-3 for this table
    assert "[16/16]" in proc.stdout and "Reproduction · cifar10-resnet20-v1" in proc.stdout


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
