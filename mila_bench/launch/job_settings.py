"""What every sweep job changes in its config, whichever launcher runs it (``launch.sweep``'s job
function, and ``launch.packed`` before it trains a pack): no progress bars, and a share of the
cores when jobs run side by side."""

from __future__ import annotations

import os
from collections.abc import Mapping


def prepare(cfg, launcher: Mapping) -> None:
    """What every sweep job changes in its config: no progress bars (bars of jobs side by side would
    interleave; one log line each instead), and a share of the cores when jobs run side by side."""
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.trainer.progress = False
        if cfg.trainer.get("threads") is None:
            cfg.trainer.threads = job_threads(launcher)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parallel_jobs(launcher: Mapping) -> int:
    """Jobs the launcher runs at once on this machine: joblib's workers (its ``n_jobs``, -1 = all cores), else 1."""
    if not str(launcher.get("_target_", "")).endswith("JoblibLauncher"):
        return 1
    n_jobs = launcher.get("n_jobs", -1)
    n_jobs = 1 if n_jobs is None else int(n_jobs)
    return n_jobs if n_jobs > 0 else max(1, _cores() + 1 + n_jobs)  # joblib's meaning of -1, -2, ...


def job_threads(launcher: Mapping) -> int | None:
    """Torch CPU threads per job, so jobs side by side share the cores instead of fighting over them.

    joblib: the cores divided by the parallel jobs; submitit: the job's ``cpus_per_task``, else 1
    (local jobs all start at once; SLURM gives one CPU unless asked). Sequential: torch's default.
    """
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        return max(1, _cores() // parallel_jobs(launcher))
    if "hydra_submitit_launcher" in target:
        return int(launcher.get("cpus_per_task") or 1)
    return None
