"""SLURM, as sweeps on it need it beyond what Hydra's submitit launcher does.

submitit learns that a job ended from SLURM's accounting (``sacct``), so :func:`check_accounting`
warns before a sweep when it does not answer; after a failure, :func:`wait_for_slurm_jobs` waits
for the jobs still running (the launcher stops at the first that died), and :func:`slurm_jobs`
with :func:`slurm_state` name what became of a job that left no record (killed, out of memory,
preempted...). Nothing here imports submitit until it waits.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def on_slurm(launcher_target: str) -> bool:
    """Whether a Hydra launcher (its ``_target_``) submits to SLURM: submitit's SlurmLauncher."""
    return launcher_target.endswith("SlurmLauncher")


def slurm_jobs(sweep_dir: Path) -> dict[int, str]:
    """SLURM job ids of a submitit sweep by Hydra job number (array task i is job i)."""
    jobs = {}
    for folder in (sweep_dir / ".submitit").glob("*_*"):
        match = re.fullmatch(r"(\d+)_(\d+)", folder.name)
        if match:
            jobs[int(match.group(2))] = folder.name
    return jobs


def wait_for_slurm_jobs(sweep_dir: Path) -> None:
    """Wait until every SLURM job of the sweep has ended (submitit polls ``sacct``)."""
    ids = slurm_jobs(sweep_dir)
    if not ids:
        return
    import submitit

    for job_id in ids.values():
        submitit.SlurmJob(folder=sweep_dir / ".submitit" / "%j", job_id=job_id).wait()


def slurm_state(job_id: str) -> str | None:
    """What SLURM's accounting says became of a job (FAILED, OUT_OF_MEMORY, PREEMPTED, ...)."""
    try:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = out.stdout.split()
    return states[0] if out.returncode == 0 and states else None


def check_accounting() -> str | None:
    """None when SLURM's job accounting answers; else the warning for a sweep that may never end.

    submitit learns that a job ended from ``sacct``; a job that dies without writing its result
    (SIGKILL, out of memory, node failure) is otherwise never noticed.
    """
    command = ["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID", "--starttime=now"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
        reason = None if out.returncode == 0 else (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[0]
    except FileNotFoundError:
        reason = "sacct is not installed"
    except subprocess.TimeoutExpired:
        reason = "sacct did not answer within 30 s"
    if reason is None:
        return None
    return (
        f"SLURM job accounting does not answer ({reason}): a job that dies (killed, out of memory, node failure) "
        "cannot be detected, so this sweep may wait forever. Fix: enable accounting (slurmdbd with "
        "AccountingStorageType=accounting_storage/slurmdbd, so `sacct` answers; see docs/sweeps.md, SLURM), or bound the "
        "wait yourself, e.g. `timeout 13h mila-bench sweep ... hydra.launcher.timeout_min=720`"
    )
