"""`mila-bench sweep`: Hydra multirun through the real command, on a tiny real Fashion-MNIST subset."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest
import yaml

from conftest import INTRO, markdown_table, recorded, run_cli, run_rows
from mila_bench.launch import job_settings, sweep
from mila_bench.records.jobs import read_jobs
from mila_bench.errors import UsageError
from mila_bench.report import build

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
def tiny(fashion_root: Path, *overrides: str) -> list[str]:
    """A sweep command on 1000 training images, one epoch, on the CPU (enough to learn: top-1 ≈ 0.55)."""
    return ["sweep", *overrides, "dataset.train_subset=1000", "trainer.epochs=1", f"dataset.root={fashion_root}", "device=cpu"]


def check_two_by_two(workdir: Path, launcher_threads: int) -> None:
    """4 runs (β 0, 1 × seeds 0, 1), each recorded and in Results.md; the report pools the seeds (n = 2)."""
    runs = recorded(workdir)
    assert sorted((r["activation_params"]["beta"], r["seed"]) for r in runs.values()) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["status"] == "completed" and r["final"]["top1"] > 0.4 for r in runs.values())  # chance: 0.1
    # Same seed (same initial weights and batch order), different β: the runs must differ, or β was ignored.
    final = {(r["activation_params"]["beta"], r["seed"]): r["final"] for r in runs.values()}
    for seed in (0, 1):
        assert final[(0, seed)]["test_loss"] != final[(1, seed)]["test_loss"], final
        assert final[(0, seed)] != final[(1, seed)]
    for run_id in runs:
        config = yaml.safe_load((workdir / "results" / run_id / "config.yaml").read_text())
        assert config["trainer"]["threads"] == launcher_threads and config["trainer"]["progress"] is False
    rows = run_rows(workdir)
    assert sorted(r[-1] for r in rows) == sorted(runs)
    assert (workdir / "Results.md").read_text().startswith(INTRO)
    [sweep_dir] = (workdir / "results" / "sweeps").iterdir()
    jobs = read_jobs(sweep_dir)
    assert [j["job"] for j in jobs] == [0, 1, 2, 3] and {j["status"] for j in jobs} == {"completed"}
    assert {j["run_id"] for j in jobs} == set(runs)

    build(workdir / "results", workdir / "Results.md")  # the command itself is tested in test_report.py
    summary = markdown_table((workdir / "Results.md").read_text(), "## fashion_mnist · mlp")
    assert [(r["β"], r["n"]) for r in summary] == [("0", "2"), ("1", "2")]
    for row in summary:
        top1 = [100 * r["final"]["top1"] for r in runs.values() if f"{r['activation_params']['beta']:g}" == row["β"]]
        mean, std = row["Top-1 (%)"].strip("*").split(" ± ")
        assert float(mean) == pytest.approx(statistics.fmean(top1), abs=0.006)
        assert float(std) == pytest.approx(statistics.stdev(top1), abs=0.006)


@pytest.mark.slow
def test_joblib_sweep_runs_four_jobs_two_at_a_time(workdir: Path, fashion_root: Path) -> None:
    proc = run_cli(
        tiny(fashion_root, "activation.beta=0,1", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"), workdir
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 completed, 0 failed" in proc.stdout
    check_two_by_two(workdir, launcher_threads=max(1, CORES // 2))


@pytest.mark.slow
def test_submitit_local_sweep_runs_the_same_jobs(workdir: Path, fashion_root: Path) -> None:
    proc = run_cli(tiny(fashion_root, "activation.beta=0,1", "seed=0,1", "hydra/launcher=submitit_local"), workdir)
    assert proc.returncode == 0, proc.stderr
    check_two_by_two(workdir, launcher_threads=1)
    [sweep_dir] = (workdir / "results" / "sweeps").iterdir()
    assert (sweep_dir / ".submitit").is_dir()  # the jobs really went through submitit


@pytest.mark.slow
def test_a_failing_job_is_reported_and_the_others_are_kept(workdir: Path, fashion_root: Path) -> None:
    from mila_bench.records.results_md import append_row

    earlier = {"Activation": "relu", "Seed": 7, "Run": "earlier-fashion_mnist-mlp-relu"}
    append_row(workdir / "Results.md", "fashion_mnist · mlp", earlier)
    before = (workdir / "Results.md").read_text()
    # 70000 > the 60000 training images: a valid config that fails inside its job, when the data is loaded.
    proc = run_cli(
        ["sweep", "dataset.train_subset=70000,300", "trainer.epochs=1", f"dataset.root={fashion_root}", "device=cpu",
         "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        workdir,
    )  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mila-bench: 1 of 2 sweep jobs failed: #0 (dataset.train_subset=70000 ")
    assert "larger than the 60000 training images" in last and "#1" not in last
    [run] = recorded(workdir).values()
    assert run["data"]["train_subset"] == 300 and run["status"] == "completed"
    text = (workdir / "Results.md").read_text()
    from mila_bench.records.results_md import Document, run_table_rows

    # the earlier rows are untouched (cell for cell; the table is re-aligned around the new row)
    assert text.split("## ")[0] == before.split("## ")[0]
    old_rows = run_table_rows(Document.parse(before).sections["fashion_mnist · mlp"])
    assert run_table_rows(Document.parse(text).sections["fashion_mnist · mlp"])[: len(old_rows)] == old_rows
    assert [r[-1] for r in run_rows(workdir)] == ["earlier-fashion_mnist-mlp-relu", run["run_id"]]
    [sweep_dir] = (workdir / "results" / "sweeps").iterdir()
    assert [(j["job"], j["status"]) for j in read_jobs(sweep_dir)] == [(0, "failed"), (1, "completed")]


@pytest.mark.slow
def test_optuna_search_maximises_top1_and_the_report_shows_it(workdir: Path, fashion_root: Path) -> None:
    proc = run_cli(
        tiny(fashion_root, "hydra/sweeper=optuna", "activation.beta=interval(-2,2)", "hydra.sweeper.n_trials=2",
             "hydra.sweeper.sampler.seed=0"),
        workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [sweep_dir] = (workdir / "results" / "sweeps").iterdir()
    result = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    runs = list(recorded(workdir).values())
    assert len(runs) == 2 and all(-2 <= r["activation_params"]["beta"] <= 2 for r in runs)
    best = max(runs, key=lambda r: r["final"]["top1"])  # maximised, not optuna's default minimise
    assert result["best_value"] == pytest.approx(best["final"]["top1"])
    assert result["best_params"]["activation.beta"] == pytest.approx(best["activation_params"]["beta"])

    build(workdir / "results", workdir / "Results.md")
    text = (workdir / "Results.md").read_text()
    section = f"## Optuna search · {sweep_dir.name}"
    assert "objective top1 (maximize), 2 trials (2 completed, 0 failed)" in text
    beta, top1 = best["activation_params"]["beta"], 100 * best["final"]["top1"]
    assert f"**Best: activation.beta={beta:.4g} → Top-1 {top1:.2f}%**" in text
    trials = markdown_table(text, section)
    assert sorted(t["Run"] for t in trials) == sorted(r["run_id"] for r in runs)
    assert {t["Status"] for t in trials} == {"completed"}


@pytest.mark.slow
def test_resumed_search_keeps_completed_runs_and_their_objective(workdir: Path, fashion_root: Path) -> None:
    """Re-running a finished optuna search with trainer.resume=true trains nothing and reports the same best."""
    args = tiny(fashion_root, "hydra/sweeper=optuna", "activation.beta=interval(-2,2)", "hydra.sweeper.n_trials=2",
                "hydra.sweeper.sampler.seed=0")  # fmt: skip
    first = run_cli(args, workdir)
    assert first.returncode == 0, first.stderr
    before = {run_id: (workdir / "results" / run_id / "summary.json").read_text() for run_id in recorded(workdir)}
    rows_before = run_rows(workdir)

    again = run_cli([*args, "trainer.resume=true"], workdir)
    assert again.returncode == 0, again.stderr
    assert "2 completed, 0 failed" in again.stdout
    assert {run_id: (workdir / "results" / run_id / "summary.json").read_text() for run_id in recorded(workdir)} == before
    assert run_rows(workdir) == rows_before  # no new rows
    first_dir, second_dir = sorted((workdir / "results" / "sweeps").iterdir())
    jobs = read_jobs(second_dir)
    assert [j.get("reused") for j in jobs] == [True, True] and {j["run_id"] for j in jobs} == set(before)
    best = [yaml.safe_load((d / "optimization_results.yaml").read_text()) for d in (first_dir, second_dir)]
    assert best[1]["best_value"] == best[0]["best_value"] and best[1]["best_params"] == best[0]["best_params"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["activation=gleu,mila"], "unknown activation 'gleu'; allowed:"),
        (["activation=relu,mila", "activation.beta=0.5"], "unknown config key 'activation.beta'"),
        (["activation.beta=interval(-2,2)"], "interval(...) needs hydra/sweeper=optuna"),
        (["hydra/launcher=jobli"], "unknown hydra/launcher 'jobli'; allowed: basic, joblib, packed, slurm, submitit_local"),
    ],
)
@pytest.mark.slow
def test_bad_sweep_input_is_one_line_and_writes_nothing(workdir: Path, args: list[str], expected: str) -> None:
    proc = run_cli(["sweep", *args, "seed=0,1"], workdir)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("mila-bench: error: ") and expected in proc.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["Results.md"] and (workdir / "Results.md").read_text() == INTRO


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["seed=0,1,x"], "seed='x' is not allowed"),
        (["hydra.launcher.n_jobs=1,2", "hydra/launcher=joblib"], "cannot be swept"),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=abc"], "could not be converted to Integer"),
        (["sweep.objective=accuracy"], "unknown sweep.objective 'accuracy'; allowed: test_loss, top1, top3, top5"),
        (["trainer.threads=0"], "trainer.threads=0 is not allowed"),
        (["activation.beta=0,1", "results.markdown=."], "is a folder"),
        (["a=b=c"], "malformed override"),
    ],
)
def test_plan_refuses_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=None) as err:
        sweep.plan(args)
    assert expected in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_plan_counts_jobs_and_points_optuna_the_right_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    grid = sweep.plan(["activation=mila,mish,relu", "seed=range(0,2)"])
    assert (grid.jobs, grid.checked, grid.sweeper, grid.launcher) == (6, 6, "basic", "basic")
    assert grid.sweep_dir.parent == Path("results/sweeps")
    search = sweep.plan(["hydra/sweeper=optuna", "activation.beta=interval(-2,2)", "sweep.objective=test_loss"])
    assert search.jobs == 20 and "hydra.sweeper.direction=minimize" in search.arguments
    preset = sweep.plan(["hydra/sweeper=beta_search", "hydra.sweeper.n_trials=5"])
    assert preset.jobs == 5 and "hydra.sweeper.direction=maximize" in preset.arguments
    mine = sweep.plan(["hydra/sweeper=optuna", "activation.beta=interval(-2,2)", "hydra.sweeper.direction=minimize"])
    assert [a for a in mine.arguments if "direction" in a] == ["hydra.sweeper.direction=minimize"]
    assert list(tmp_path.iterdir()) == []  # planning writes nothing


def test_parallel_jobs_share_the_cores() -> None:
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert job_settings.job_threads({"_target_": joblib, "n_jobs": 2}) == max(1, CORES // 2)
    assert job_settings.job_threads({"_target_": joblib, "n_jobs": -1}) == 1
    assert job_settings.job_threads({"_target_": joblib, "n_jobs": 1}) == CORES
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert job_settings.job_threads({"_target_": slurm, "cpus_per_task": 4}) == 4
    assert job_settings.job_threads({"_target_": slurm, "cpus_per_task": None}) == 1
    assert job_settings.job_threads({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}) is None
