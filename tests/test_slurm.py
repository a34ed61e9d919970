"""Sweeps on a real SLURM cluster (with accounting), through the shipped `hydra/launcher=slurm` preset.

`.ci/slurm-up.sh` brings up a one-node cluster on this machine (CI runs it before `make test`).
Without a cluster these tests skip locally and fail in CI (CI=true), so CI cannot pass them by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mila_bench.launch import slurm
from mila_bench.records.jobs import read_jobs
from conftest import cli_env, recorded, run_rows
from test_sweep import check_two_by_two

pytestmark = pytest.mark.slurm

PARTITION = "debug"
# The preset asks for a GPU and 4 cores; the CI node has neither to spare.
SLURM = ["hydra/launcher=slurm", f"hydra.launcher.partition={PARTITION}", "hydra.launcher.gpus_per_node=0",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=20"]  # fmt: skip


def cluster_problem() -> str | None:
    """Why no usable cluster is here, or None."""
    for tool in ("sbatch", "sinfo", "sacct"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    state = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%a %t"], capture_output=True, text=True, timeout=30)
    if state.returncode != 0 or not state.stdout.startswith("up"):
        return f"partition {PARTITION!r} not up: {(state.stderr or state.stdout).strip()}"
    return slurm.check_accounting()


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    problem = cluster_problem()
    if problem is None:
        return
    message = f"no SLURM cluster with accounting ({problem}); start one with .ci/slurm-up.sh (as root)"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI must run the slurm tests: {message}")
    pytest.skip(message)


def sweep_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "mila_bench", "sweep", *args]


def run_sweep(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_command(args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=cli_env(**(env or {})))  # fmt: skip


def accounted(sweep_dir: Path) -> dict[str, str]:
    """SLURM job id → state, as `sacct` (the accounting database) has them, for the sweep's jobs."""
    ids = sorted(slurm.slurm_jobs(sweep_dir).values())
    return {i: slurm.slurm_state(i) for i in ids}


def test_two_by_two_sweep_runs_as_four_slurm_jobs(workdir: Path, fashion_root: Path) -> None:
    proc = run_sweep([*SLURM, "activation.beta=0,1", "seed=0,1", "dataset.train_subset=1000", "trainer.epochs=1",
                      f"dataset.root={fashion_root}", "device=cpu"], workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "launcher slurm" in proc.stdout and "4 completed, 0 failed" in proc.stdout
    assert "accounting" not in proc.stderr  # sacct answered: no warning
    check_two_by_two(workdir, launcher_threads=1)  # 4 records, 4 rows, the report pools the seeds
    [sweep_dir] = (workdir / "results" / "sweeps").iterdir()
    deadline = time.time() + 60  # the controller marks a job COMPLETED a moment after its result is written
    while set(accounted(sweep_dir).values()) != {"COMPLETED"} and time.time() < deadline:
        time.sleep(1)
    states = accounted(sweep_dir)
    assert len(states) == 4 and set(states.values()) == {"COMPLETED"}, states


def training_pid(sweep_dir: Path, array_job: str, task: int) -> int | None:
    """The Python process running SLURM array task ``array_job``_``task`` of this sweep (not srun, not slurmstepd)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"submitit.core._submit" not in argv or argv[0].endswith(b"srun"):
                continue
            if not any(str(sweep_dir.resolve()).encode() in a or str(sweep_dir).encode() in a for a in argv):
                continue
            # only this sweep's own job processes: their SLURM variables tell the array task apart
            env = dict(item.split(b"=", 1) for item in (proc / "environ").read_bytes().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if env.get(b"SLURM_ARRAY_JOB_ID") == array_job.encode() and env.get(b"SLURM_ARRAY_TASK_ID") == str(task).encode():
            return int(proc.name)
    return None


def test_killed_job_is_named_and_resuming_the_sweep_finishes_it(workdir: Path, fashion_root: Path) -> None:
    activations = ["mila", "relu"]
    args = [*SLURM, f"activation={','.join(activations)}", "seed=0", "dataset.train_subset=20000", "trainer.epochs=4",
            f"dataset.root={fashion_root}", "device=cpu"]  # fmt: skip
    sweeping = subprocess.Popen(sweep_command(args), cwd=workdir, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.time() + 300
    while killed is None and sweeping.poll() is None and time.time() < deadline:
        for checkpoint in (workdir / "results").glob("*/checkpoint.pt"):
            run = json.loads((checkpoint.parent / "summary.json").read_text())
            job = activations.index(run["activation"])
            [sweep_dir] = (workdir / "results" / "sweeps").iterdir()
            array_job = slurm.slurm_jobs(sweep_dir)[job].split("_")[0]
            pid = training_pid(sweep_dir, array_job, job)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)  # as the OOM killer or a node failure would
                killed = (job, checkpoint.parent)
                break
        time.sleep(0.05)
    out, err = sweeping.communicate(timeout=600)
    assert killed is not None, f"no job was killed after its first checkpoint:\n{out}\n{err}"
    job, run_dir = killed
    other = activations[1 - job]

    assert sweeping.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"mila-bench: 1 of 2 sweep jobs failed: #{job} (activation={activations[job]} seed=0 "), last
    assert "ended FAILED without a record" in last and "trainer.resume=true" in last
    interrupted = json.loads((run_dir / "summary.json").read_text())
    assert interrupted["status"] == "running"
    epochs_done = len((run_dir / "metrics.csv").read_text().splitlines()) - 1
    assert 1 <= epochs_done < 4
    [row] = run_rows(workdir)  # the other job's row is intact
    [survivor] = [r for r in recorded(workdir).values() if r["activation"] == other]
    assert survivor["status"] == "completed" and survivor["run_id"] in row
    survivor_record = (workdir / "results" / survivor["run_id"] / "summary.json").read_bytes()

    again = run_sweep([*args, "trainer.resume=true"], workdir)
    assert again.returncode == 0, again.stderr
    assert "2 completed, 0 failed" in again.stdout
    runs = recorded(workdir)
    assert len(runs) == 2 and {r["status"] for r in runs.values()} == {"completed"}
    resumed = runs[run_dir.name]
    assert resumed["resumed_from_epoch"] == [epochs_done] and resumed["final"]["top1"] > 0.5
    assert (workdir / "results" / survivor["run_id"] / "summary.json").read_bytes() == survivor_record  # not retrained
    assert sorted(r[-1] for r in run_rows(workdir)) == sorted(runs)
    newest = max((workdir / "results" / "sweeps").iterdir())
    jobs = read_jobs(newest)
    assert {j["job"]: (j["status"], j.get("reused", False)) for j in jobs} == {
        job: ("completed", False), 1 - job: ("completed", True)  # the survivor's record counts, untrained
    }


def test_sweep_warns_when_accounting_does_not_answer(workdir: Path, fashion_root: Path) -> None:
    """The same cluster seen through a slurm.conf without accounting: `sacct` refuses, the sweep says so."""
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text()
    no_accounting = workdir / "slurm.conf"
    no_accounting.write_text(
        "\n".join("AccountingStorageType=accounting_storage/none" if line.startswith("AccountingStorageType=") else line
                  for line in conf.splitlines()) + "\n"
    )  # fmt: skip
    proc = run_sweep([*SLURM, "activation=relu", "seed=0,1", "dataset.train_subset=300", "trainer.epochs=1",
                      f"dataset.root={fashion_root}", "device=cpu"], workdir, env={"SLURM_CONF": str(no_accounting)})  # fmt: skip
    [warning] = [line for line in proc.stderr.splitlines() if "accounting does not answer" in line]
    assert warning.startswith("mila-bench: warning: SLURM job accounting does not answer (")
    assert "cannot be detected" in warning and "may wait forever" in warning and "enable accounting" in warning
    assert proc.returncode == 0, proc.stderr  # jobs that finish still report (their result files appear)
    assert len(run_rows(workdir)) == 2
