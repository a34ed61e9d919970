"""The real commands, in subprocesses: training through the CLI and demo.py, help, bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import INTRO, ROOT, cli_env, recorded, run_cli, run_rows, snapshot


def test_help_explains_the_overrides(tmp_path: Path) -> None:
    top = run_cli(["--help"], tmp_path)
    assert top.returncode == 0 and "train" in top.stdout
    sub = run_cli(["train", "--help"], tmp_path)
    assert sub.returncode == 0
    for key in ("activation.beta", "model.initialization", "dataset.train_subset", "trainer.epochs", "device"):
        assert key in sub.stdout


@pytest.mark.slow
def test_train_on_a_real_subset_learns_and_records(workdir: Path, fashion_root: Path) -> None:
    proc = run_cli(
        ["train", "activation=mila", "dataset.train_subset=2000", "trainer.epochs=2", f"dataset.root={fashion_root}",
         "device=cpu", "seed=0"],
        workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout
    [(run_id, summary)] = recorded(workdir).items()
    assert summary["final"]["top1"] > 0.65, summary["final"]  # chance is 0.10; lands near 0.70-0.75
    assert summary["epochs"] == 2 and summary["data"]["train_subset"] == 2000
    assert len((workdir / "results" / run_id / "metrics.csv").read_text().splitlines()) == 3
    assert (workdir / "Results.md").read_text().startswith(INTRO)
    [cells] = run_rows(workdir)
    assert cells[:5] == ["mila", "-0.25", "class", "0", "2"]
    assert float(cells[5]) == pytest.approx(100 * summary["final"]["top1"], abs=0.006)
    assert cells[-1] == run_id


@pytest.mark.slow
def test_demo_prints_losses_and_accuracy(workdir: Path, fashion_root: Path) -> None:
    proc = run_cli(
        ["demo.py", "--activation", "swish", "--model_initialization", "sequential", "--epochs", "2",
         "--data-dir", str(fashion_root), "--device", "cpu", "dataset.train_subset=2000", "trainer.progress=false"],
        workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    losses = [float(l.split(": ")[1]) for l in lines if l.startswith("Training loss: ")]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert lines[-1].startswith("Test accuracy (top-1): ")
    accuracy = float(lines[-1].split(": ")[1].split("%")[0])
    assert 50 < accuracy <= 100
    assert "| swish" in (workdir / "Results.md").read_text()


CUDA = torch.cuda.is_available()
BAD_TRAIN = [
    (["activation=foo"], "'foo'", "mila, mish, prelu, relu"),
    (["activation=mila", "activation.learnable_beta=true", "activation.beta_init=abc"], "'abc'", "finite number"),
    (["activation=relu", "+activation.learnable_beta=true"], "'relu'", "mila, beta_mish or aria2"),
    (["activation.impl=turbo"], "'turbo'", "auto, compiled, eager"),
    (["activation=aria2", "activation.gamma=1"], "'activation.gamma'", "no such key"),
    (["model=cnn"], "'cnn'", "mlp"),
    (["dataset=imagenet"], "'imagenet'", "fashion_mnist"),
    (["activation.beta=abc"], "'abc'", "finite number"),
    (["activation.beta=inf"], "inf", "finite number"),
    (["trainer.epochs=0"], "trainer.epochs=0", "integer >= 1"),
    (["trainer.batch_size=-3"], "trainer.batch_size=-3", "integer >= 1"),
    (["optimizer.lr=0"], "optimizer.lr=0", "> 0"),
    (["model.initialization=banana"], "'banana'", "class, sequential"),
    (["device=tpu"], "'tpu'", "auto, cpu, cuda"),
    (["activation=relu", "+activation.beta=1"], "'beta'", "none"),
    (["nokey=1"], "'nokey'", "no such key"),
    (["foo"], "'foo'", "malformed override"),
    (["trainer.epochs==3"], "trainer.epochs==3", "malformed override"),
    (["dataset.train_subset=70000"], "70000", "1..60000"),
    pytest.param(["device=cuda"], "'cuda'", "allowed here: auto, cpu", marks=pytest.mark.skipif(CUDA, reason="has CUDA")),
]


@pytest.mark.parametrize(("overrides", "names", "allowed"), BAD_TRAIN)
@pytest.mark.slow
def test_bad_input_is_one_clear_line(workdir: Path, fashion_root: Path, overrides, names: str, allowed: str) -> None:
    before = snapshot(workdir)
    proc = run_cli(["train", f"dataset.root={fashion_root}", "trainer.epochs=1", *overrides], workdir)
    assert proc.returncode == 2
    err_lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(err_lines) == 1, proc.stderr
    assert err_lines[0].startswith("mila-bench: error: ")
    assert names in err_lines[0] and allowed in err_lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_missing_data_offline_is_one_line_and_writes_nothing(workdir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no_system_copy"
    empty.mkdir()
    before = snapshot(workdir)
    proc = run_cli(
        ["train", f"dataset.root={tmp_path / 'nodata'}", f"dataset.system_dir={empty}", "dataset.download=false"], workdir
    )
    assert proc.returncode == 2
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert "Fashion-MNIST not found" in line and "dataset-fashion-mnist" in line and "dataset.root=DIR" in line
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_debug_flag_shows_the_traceback(workdir: Path) -> None:
    before = snapshot(workdir)
    proc = run_cli(["train", "--debug", "activation=foo"], workdir)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mila_bench.errors.UsageError: unknown activation 'foo'; allowed: ") and "mila, mish" in last
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    ("args", "names", "allowed"),
    [
        (["--activation", "foo"], "invalid choice: 'foo'", "(choose from 'aria2', "),
        (["--beta", "abc"], "argument --beta: invalid float value: 'abc'", "float"),
        (["--activation", "relu", "--beta", "0.5"], "activation 'relu' has no parameter 'beta'", "its parameters: none"),
        (["--epochs", "0"], "trainer.epochs=0", "expected an integer >= 1"),
    ],
)
@pytest.mark.slow
def test_demo_bad_input_is_one_clear_line(workdir: Path, args: list[str], names: str, allowed: str) -> None:
    before = snapshot(workdir)
    proc = run_cli(["demo.py", *args], workdir)
    assert proc.returncode == 2
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert line.startswith("demo.py: error: ") and names in line and allowed in line, line
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    ("overrides", "label", "beta"),
    [(["activation=aria2", "activation.alpha=1.0"], "aria2 (alpha=1)", "1"),
     (["activation=mila", "activation.learnable_beta=true", "activation.beta_init=0.5"], "mila", "learned 0.5 → ")],
)  # fmt: skip
@pytest.mark.slow
def test_wider_activations_and_learnable_beta_train_through_the_cli(
    workdir: Path, fashion_root: Path, overrides: list[str], label: str, beta: str
) -> None:
    proc = run_cli(
        ["train", *overrides, "dataset.train_subset=500", "trainer.epochs=1", f"dataset.root={fashion_root}", "device=cpu"],
        workdir,
    )
    assert proc.returncode == 0, proc.stderr
    [summary] = recorded(workdir).values()
    [row] = run_rows(workdir)
    assert row[0] == label and row[1].startswith(beta)
    if "activation.learnable_beta=true" in overrides:
        assert summary["learnable_beta"] and set(summary["learned"]) == {"activation.beta"}
        assert summary["learned"]["activation.beta"] != 0.5  # it was trained
    else:
        assert summary["learned"] == {} and summary["activation_params"] == {"beta": 1.0, "alpha": 1.0}


def first_comment(path: Path) -> str:
    """The line a config file's description is taken from, read here independently: its first comment line."""
    return next(l for l in path.read_text().splitlines() if l.startswith("#") and "@package" not in l).lstrip("# ")


def test_list_shows_every_choice_experiments_and_suites_described(tmp_path: Path) -> None:
    proc = run_cli(["list"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = lines.index(next(l for l in lines if l.startswith("experiment: NAME  WHAT")))
    experiments = sorted((ROOT / "configs" / "experiment").glob("*.yaml"))
    for path, line in zip(experiments, lines[start + 1 : start + 1 + len(experiments)]):
        assert line.split(None, 1) == [path.stem, first_comment(path)]
    assert "cifar10_resnet20_v1" in proc.stdout and "cifar10-resnet20-v1" in lines[start]  # both spellings said
    launchers = next(l for l in lines if l.startswith("hydra/launcher: ")).split("  (")[0]
    assert {"basic", "joblib", "packed", "submitit_local", "submitit_slurm", "slurm"} <= set(launchers.split(": ")[1].split(", "))
    sweepers = next(l for l in lines if l.startswith("hydra/sweeper: ")).split("  (")[0]
    assert {"basic", "optuna", "beta_search"} <= set(sweepers.split(": ")[1].split(", "))
    suites = lines[lines.index("suite: NAME  WHAT  (mila-bench suite NAME)") + 1 :]
    shipped = sorted((ROOT / "configs" / "suite").glob("*.yaml"))
    assert [l.split(None, 1) for l in suites] == [[p.stem, yaml.safe_load(p.read_text())["description"]] for p in shipped]
    assert list(tmp_path.iterdir()) == []


def test_suite_without_a_name_lists_the_suites_it_finds(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "suite" / "mine.yaml").write_text("description: my own suite\ntasks:\n  mlp: [model=mlp]\n")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "mila_bench", "suite"], cwd=work, capture_output=True, text=True,
                          env=cli_env(MILA_BENCH_CONFIG_DIR=str(configs)), timeout=120)  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("suite: NAME  WHAT  (run one: mila-bench suite NAME")
    assert [l.split(None, 1)[0] for l in lines[1:]] == ["cpu_small", "dubey_cifar", "mine"]
    assert lines[3].split(None, 1)[1] == "my own suite"
    assert list(work.iterdir()) == []
