"""`mila-bench report` on hand-made run records: statistics checked against values computed here."""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from scipy import stats

from by_hand import holm_by_hand
from conftest import markdown_table as table, run_cli
from mila_bench.records import results_md as runs
from mila_bench.records import runs as results_store
from mila_bench.records.schema import Divergence
from test_schema import example_summary
from mila_bench.config import compose
from mila_bench.errors import UsageError
from mila_bench.report import build

SECTION = "## fashion_mnist · mlp"
# (overrides, seed, final top-1, test loss): relu and mila β=0.5 three seeds each, mila β=1 two
RECORDS = [
    (["activation=relu"], 0, 0.8012, 0.52), (["activation=relu"], 1, 0.8133, 0.50), (["activation=relu"], 2, 0.8071, 0.51),
    (["activation.beta=0.5"], 0, 0.8420, 0.44), (["activation.beta=0.5"], 1, 0.8498, 0.43), (["activation.beta=0.5"], 2, 0.8377, 0.45),
    (["activation.beta=1"], 0, 0.8105, 0.49), (["activation.beta=1"], 1, 0.8010, 0.50),
]  # fmt: skip


def make_run(results: Path, overrides: list[str], seed: int, top1: float, loss: float, diverged: bool = False) -> str:
    """A run record as pipeline.train writes it, with the given final metrics and two epochs of curves
    (``diverged``: stopped in epoch 2, so no final metrics)."""
    cfg = compose([*overrides, f"seed={seed}", "trainer.epochs=2"])
    act = OmegaConf.to_container(cfg.activation)
    params = {"beta": act["beta"]} if "beta" in act else {}
    run_id = f"20260101-000000-fashion_mnist-mlp-{cfg.activation.name}-s{seed}-{len(list(results.glob('*'))):06d}"
    final = replace(example_summary().final, test_loss=loss, top1=top1, top3=min(1.0, top1 + 0.1), top5=min(1.0, top1 + 0.15))
    first = replace(final, epoch=1, top1=top1 - 0.05, test_loss=loss + 0.1)
    summary = example_summary(
        run_id=run_id, model_config=OmegaConf.to_container(cfg.model), activation=cfg.activation.name,
        activation_params=params, seed=seed, epochs=2, train_seconds=1.5, final=final,
    )  # fmt: skip
    if diverged:
        summary = replace(summary, status="diverged", diverged=Divergence(epoch=2, step=3), final=None, learned=None,
                          parameters=None, train_seconds=None, checkpoint_bytes=None)  # fmt: skip
    folder = results_store.start_run(results, run_id, OmegaConf.to_yaml(cfg, resolve=True), summary)
    results_store.write_metrics(folder, [first] if diverged else [first, final])
    return run_id


@pytest.fixture
def records(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    for overrides, seed, top1, loss in RECORDS:
        make_run(results, overrides, seed, top1, loss)
    return tmp_path


def welch_p(a: list[float], b: list[float]) -> float:
    """Welch's t-test written out: t with the Welch–Satterthwaite degrees of freedom, two-sided."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return 2 * stats.t.sf(abs(t), df)


def paired(a: list[float], b: list[float]) -> tuple[float, float, float, float]:
    """Paired t-test written out: mean difference, 95 % CI and two-sided p on n − 1 degrees of freedom."""
    d = [x - y for x, y in zip(a, b)]
    n, mean, sd = len(d), statistics.fmean(d), statistics.stdev(d)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, 2 * stats.t.sf(abs(mean / (sd / math.sqrt(n))), n - 1)


def detectable_paired(n: int, sd: float) -> float:
    """Smallest mean difference a two-sided paired t-test (α 0.05) finds with 80 % power, solved here:
    the noncentral t's tail probabilities integrated over the χ² of the variance estimate."""
    from scipy.integrate import quad
    from scipy.optimize import brentq

    df, crit = n - 1, stats.t.ppf(0.975, n - 1)

    def power(effect: float) -> float:
        nc = effect * math.sqrt(n)

        def given(v: float) -> float:
            scale = crit * math.sqrt(v / df)
            return (stats.norm.cdf(nc - scale) + stats.norm.cdf(-nc - scale)) * stats.chi2.pdf(v, df)

        return quad(given, 0, math.inf, limit=200)[0]

    return brentq(lambda e: power(e) - 0.8, 1e-6, 100) * sd


def number(cell: str) -> float:
    return float(cell.strip("*").split()[0])


def test_mean_std_paired_statistics_and_holm_match_independent_computation(records: Path) -> None:
    build(records / "results", records / "Results.md")
    text = (records / "Results.md").read_text()
    rows = {r["β"]: r for r in table(text, SECTION)}
    assert list(rows) == ["0.5", "1", "—"]  # mila β 0.5, mila β 1, relu
    given = {"0.5": ["activation.beta=0.5"], "1": ["activation.beta=1"], "—": ["activation=relu"]}
    by_seed = {b: {r[1]: r for r in RECORDS if r[0] == o} for b, o in given.items()}
    delta_title = "Δ Top-1 vs relu [95 % CI]"
    ps, detectables = {}, []
    for beta, row in rows.items():
        top1, loss = [100 * r[2] for r in by_seed[beta].values()], [r[3] for r in by_seed[beta].values()]
        assert row["n"] == str(len(top1))
        mean, std = row["Top-1 (%)"].strip("*").split(" ± ")
        assert float(mean) == pytest.approx(statistics.fmean(top1), abs=0.005)
        assert float(std) == pytest.approx(statistics.stdev(top1), abs=0.005)
        mean, std = row["Test loss"].strip("*").split(" ± ")
        assert float(mean) == pytest.approx(statistics.fmean(loss), abs=5e-5)
        assert float(std) == pytest.approx(statistics.stdev(loss), abs=5e-5)
        if beta == "—":
            assert row[delta_title] == "baseline"
            continue
        seeds = sorted(by_seed[beta])  # every seed of these runs also ran with relu: paired
        ours, relu = [100 * by_seed[beta][s][2] for s in seeds], [100 * by_seed["—"][s][2] for s in seeds]
        delta, low, high, ps[beta] = paired(ours, relu)
        assert row["Test"] == f"paired, {len(seeds)} seeds"
        assert row[delta_title] == f"{delta:+.2f} [{low:+.2f}, {high:+.2f}]"
        sd = statistics.stdev(x - y for x, y in zip(ours, relu))
        detectables.append(detectable_paired(len(seeds), sd))
        assert float(row["Detectable"]) == pytest.approx(detectables[-1], abs=0.006)
    for beta, adjusted in zip(ps, holm_by_hand(list(ps.values()))):
        cell = rows[beta]["p (Holm)"]
        assert number(cell) == pytest.approx(adjusted, rel=0.005)
        assert cell.endswith("(n.s.)") == (adjusted >= 0.05)
    # β 0.5 beats relu clearly; β 1 does not: one significant, one marked n.s.
    assert not rows["0.5"]["p (Holm)"].endswith("(n.s.)") and rows["1"]["p (Holm)"].endswith("(n.s.)")
    line = next(l for l in text.splitlines() if l.startswith("Detectable difference"))
    assert f"{min(detectables):.2f}–{max(detectables):.2f} points" in line
    # best mean per column in bold: highest accuracy (β 0.5), lowest loss (β 0.5)
    assert [b for b, r in rows.items() if r["Top-1 (%)"].startswith("**")] == ["0.5"]
    assert [b for b, r in rows.items() if r["Test loss"].startswith("**")] == ["0.5"]


def test_welch_is_used_when_seeds_do_not_pair(records: Path) -> None:
    for seed, top1 in ((10, 0.8300), (11, 0.8410), (12, 0.8350)):
        make_run(records / "results", ["activation.beta=2"], seed, top1, 0.45)
    build(records / "results", records / "Results.md")
    row = next(r for r in table((records / "Results.md").read_text(), SECTION) if r["β"] == "2")
    ours, relu = [83.00, 84.10, 83.50], [100 * r[2] for r in RECORDS if r[0] == ["activation=relu"]]
    assert row["Test"] == "Welch"
    assert number(row["Δ Top-1 vs relu [95 % CI]"]) == pytest.approx(statistics.fmean(ours) - statistics.fmean(relu), abs=0.006)
    raw = welch_p(ours, relu)
    assert raw * 1 <= number(row["p (Holm)"]) <= min(1.0, 3 * raw) * 1.005  # Holm over three comparisons


def test_repeated_seeds_count_once_and_the_newest_counts(records: Path) -> None:
    results = records / "results"
    repeat = make_run(results, ["activation=relu"], 0, 0.9000, 0.30)  # seed 0 again, newer (ids sort by time)
    build(results, records / "Results.md")
    text = (records / "Results.md").read_text()
    relu = next(r for r in table(text, SECTION) if r["Activation"] == "relu")
    assert relu["n"] == "3"
    values = [90.00, 100 * 0.8133, 100 * 0.8071]
    assert number(relu["Top-1 (%)"]) == pytest.approx(statistics.fmean(values), abs=0.005)
    listed = text.split("Repeats of a configuration and seed")[1].split("Runs (")[0]
    older = next(p.name for p in sorted(results.glob("*-relu-s0-*")) if p.name != repeat)
    assert f"`{older}`" in listed and f"`{repeat}`" not in listed


def test_tied_means_are_all_bold(records: Path) -> None:
    for seed, top1 in ((0, 0.8012), (1, 0.8133), (2, 0.8071)):  # relu's values again, as β 3: the same mean
        make_run(records / "results", ["activation.beta=3"], seed, top1, 0.40)
    build(records / "results", records / "Results.md")
    rows = {r["β"]: r for r in table((records / "Results.md").read_text(), SECTION)}
    assert rows["3"]["Top-1 (%)"].split(" ± ")[0] == rows["—"]["Top-1 (%)"].split(" ± ")[0]
    assert [b for b, r in rows.items() if r["Test loss"].startswith("**")] == ["3"]
    assert rows["3"]["Top-1 (%)"].startswith("**") is rows["—"]["Top-1 (%)"].startswith("**")


def test_rows_without_records_survive_and_are_left_out(records: Path) -> None:
    md = records / "Results.md"
    build(records / "results", md)
    lost = [p for p in sorted((records / "results").glob("*-relu-*"))][:2]
    elsewhere = records / "elsewhere"
    elsewhere.mkdir()
    for path in lost:
        path.rename(elsewhere / path.name)
    md.write_text(md.read_text() + "\n## cifar10 · resnet · depth 20 · v1\n\n"
                  + "\n".join(runs.render_table([{"Activation": "x", "Run": "only-in-markdown"}])) + "\n")
    before_ids = set(re.findall(r"\| (20260101-\S+|only-in-markdown)", md.read_text()))
    out = build(records / "results", md)
    text = md.read_text()
    assert set(re.findall(r"\| (20260101-\S+|only-in-markdown)", text)) == before_ids
    for path in lost:
        assert f"{path.name} (no record)" in text
    assert "2 per-run rows below have no record in the results folder" in text
    relu = next(r for r in table(text, SECTION) if r["Activation"] == "relu")
    assert relu["n"] == "1"  # only the run still on record counts
    assert any(line.startswith("kept ## cifar10 · resnet · depth 20 · v1") for line in out)
    assert build(records / "results", md) and md.read_text() == text  # marks are stable
    out = build(records / "results", md, drop_unrecorded=True)
    text = md.read_text()
    assert all(path.name not in text for path in lost) and "only-in-markdown" not in text
    assert sum(line.startswith("removed row") for line in out) == 3


def test_preamble_names_the_results_folder_used(records: Path) -> None:
    (records / "results").rename(records / "other-runs")
    build(records / "other-runs", records / "Results.md")
    preamble = (records / "Results.md").read_text().split("\n## ")[0]
    assert "`other-runs/`" in preamble and "`results/`" not in preamble


def test_diverged_and_unfinished_runs_are_listed_apart(records: Path) -> None:
    results = records / "results"
    nan_run = make_run(results, ["activation.beta=0.5"], 3, 0.1, float("nan"))
    stopped = make_run(results, ["activation.beta=0.5"], 4, 0.9, 0.3, diverged=True)
    build(results, records / "Results.md")
    text = (records / "Results.md").read_text()
    rows = {r["β"]: r for r in table(text, SECTION)}
    assert rows["0.5"]["n"] == "3"  # the two extra runs are not averaged in
    expected = statistics.fmean(100 * r[2] for r in RECORDS if r[0] == ["activation.beta=0.5"])
    assert float(rows["0.5"]["Top-1 (%)"].strip("*").split(" ± ")[0]) == pytest.approx(expected, abs=0.005)
    listed = text.split("Not averaged")[1].split("Runs (")[0]
    assert f"`{nan_run}`" in listed and "test_loss not finite" in listed
    assert f"`{stopped}`" in listed and "status diverged" in listed


def test_report_is_idempotent_and_draws_linked_figures(records: Path) -> None:
    md, figures = records / "Results.md", records / "results" / "figures"
    build(records / "results", md)
    first = md.read_text()
    pngs = {p.name: p.read_bytes() for p in figures.glob("*.png")}
    assert sorted(pngs) == ["report-fashion-mnist-mlp-beta.png", "report-fashion-mnist-mlp-curves.png"]
    assert all(data.startswith(b"\x89PNG") for data in pngs.values())
    for name in pngs:
        assert f"](results/figures/{name})" in first
    build(records / "results", md)
    assert md.read_text() == first
    assert {p.name: p.read_bytes() for p in figures.glob("*.png")} == pngs


def test_rows_appended_after_a_report_land_in_the_run_table(records: Path) -> None:
    md = records / "Results.md"
    build(records / "results", md)
    new = make_run(records / "results", ["activation=relu"], 3, 0.8200, 0.49)
    summary = results_store.read_summary(records / "results" / new)
    runs.append_row(md, runs.section_name(summary), runs.results_row(summary))  # what train does when a run finishes
    run_table = md.read_text().split("Runs (")[1]
    assert run_table.count("| 20260101-") == len(RECORDS) + 1 and new in run_table
    assert table(md.read_text(), SECTION)[-1]["n"] == "3"  # the summary is refreshed by the next report
    build(records / "results", md)
    assert table(md.read_text(), SECTION)[-1]["n"] == "4"


def test_other_sections_are_kept_and_settings_are_not_pooled(records: Path) -> None:
    md = records / "Results.md"
    md.write_text(
        "# Results\n\nmy notes\n\n## Reproduction · cifar10-resnet20-v1\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "## gone · mlp\n\n" + "\n".join(runs.render_table([{"Activation": "x", "Run": "deleted-run"}])) + "\n"
    )
    make_run(records / "results", ["activation=relu", "optimizer.lr=0.001"], 0, 0.7, 0.6)
    build(records / "results", md)
    text = md.read_text()
    assert text.startswith("# Results\n\nmy notes\n")
    assert "## Reproduction · cifar10-resnet20-v1\n\n| a | b |\n|---|---|\n| 1 | 2 |\n" in text
    assert "## gone · mlp" in text and "deleted-run" in text  # a run table whose runs are not here is kept
    rows = table(text, SECTION)
    assert [(r["Activation"], r["Other settings"], r["n"]) for r in rows if r["Activation"] == "relu"] == [
        ("relu", "optimizer.lr=0.001", "1"),
        ("relu", "optimizer.lr=0.003", "3"),
    ]
    # each row is compared with the relu of its own settings
    assert [r["Δ Top-1 vs relu [95 % CI]"] for r in rows if r["Activation"] == "relu"] == ["baseline", "baseline"]


def test_baseline_can_be_any_activation_and_beta(records: Path) -> None:
    build(records / "results", records / "Results.md", baseline="mila:1")
    rows = {r["β"]: r for r in table((records / "Results.md").read_text(), SECTION)}
    title = "Δ Top-1 vs mila:1 [95 % CI]"
    assert rows["1"][title] == "baseline" and rows["0.5"][title] != "baseline"
    for bad, message in (("gleu", "unknown baseline activation 'gleu'"), ("mila:abc", "not a finite number")):
        with pytest.raises(UsageError, match=message):
            build(records / "results", records / "Results.md", baseline=bad)


def test_optuna_sweep_folders_get_a_section(records: Path) -> None:
    folder = records / "results" / "sweeps" / "20260101-000000"
    for job, (beta, value) in enumerate([(0.25, 0.83), (1.5, 0.81)]):
        (folder / str(job)).mkdir(parents=True)
        record = {"job": job, "overrides": [f"activation.beta={beta}"], "objective": "top1", "direction": "maximize",
                  "status": "completed", "run_id": f"run-{job}", "value": value}  # fmt: skip
        (folder / str(job) / "mila_bench_job.json").write_text(json.dumps(record))
    (folder / "optimization_results.yaml").write_text("name: optuna\nbest_params:\n  activation.beta: 0.25\nbest_value: 0.83\n")
    build(records / "results", records / "Results.md")
    text = (records / "Results.md").read_text()
    assert "**Best: activation.beta=0.25 → Top-1 83.00%**" in text
    trials = table(text, "## Optuna search · 20260101-000000")
    cells = [(t["Trial"], t["activation.beta"], t["Top-1 (%)"]) for t in trials]
    assert cells == [("0", "0.25", "**83.00**"), ("1", "1.5", "81.00")]


@pytest.mark.slow
def test_report_command_writes_and_refuses_in_one_line(records: Path) -> None:
    proc = run_cli(["report", "--baseline", "relu"], records)
    assert proc.returncode == 0, proc.stderr
    assert "Results.md: 1 sections from 8 records" in proc.stdout and "rebuilt ## fashion_mnist · mlp: 8 records" in proc.stdout
    before = (records / "Results.md").read_text()
    for args in (["--baseline", "gleu"], ["--results", "nowhere"]):
        bad = run_cli(["report", *args], records)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("mila-bench: error: ")
    assert (records / "Results.md").read_text() == before


def test_a_value_written_differently_is_the_same_configuration(records: Path) -> None:
    make_run(records / "results", ["activation.beta=1.0"], 2, 0.8050, 0.50)  # the others say activation.beta=1
    build(records / "results", records / "Results.md")
    rows = {r["β"]: r for r in table((records / "Results.md").read_text(), SECTION)}
    assert list(rows) == ["0.5", "1", "—"] and rows["1"]["n"] == "3"


def test_welch_interval_and_detectable_difference_match_the_hand_computation(records: Path) -> None:
    """The Welch row's CI (Welch–Satterthwaite df) and Detectable (two-sample power, pooled sd), computed by hand."""
    from by_hand import detectable_independent_by_hand, pooled_sd, welch_by_hand

    ours = [83.00, 86.10, 80.50, 84.40]  # seeds 10-13: none shared with relu's 0-2; four against three, wider spread
    for seed, top1 in zip(range(10, 14), ours):
        make_run(records / "results", ["activation.beta=2"], seed, top1 / 100, 0.45)
    build(records / "results", records / "Results.md")
    row = next(r for r in table((records / "Results.md").read_text(), SECTION) if r["β"] == "2")
    relu = [100 * r[2] for r in RECORDS if r[0] == ["activation=relu"]]
    delta, low, high, _ = welch_by_hand(ours, relu)
    assert row["Test"] == "Welch"
    shown = [float(v) for v in re.findall(r"[+-]\d+\.\d+", row["Δ Top-1 vs relu [95 % CI]"])]
    assert shown == pytest.approx([delta, low, high], abs=0.006)
    assert float(row["Detectable"]) == pytest.approx(detectable_independent_by_hand(4, 3, pooled_sd(ours, relu)), abs=0.006)
