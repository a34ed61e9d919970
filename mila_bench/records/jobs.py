"""Sweep job files: ``mila_bench_job.json`` in each job's Hydra folder of a sweep.

``mila-bench sweep`` writes one per job (:func:`write_job`): its number, overrides, objective
and status, and the run it recorded or the error that stopped it. ``report`` reads them back
(:func:`read_jobs`) for an optuna search's section; so does the sweep itself, to say what failed.
"""

from __future__ import annotations

import json
from pathlib import Path

JOB_FILE = "mila_bench_job.json"


def write_job(job_dir: Path, record: dict) -> None:
    """Write a job's record into its Hydra folder (atomically: a reader never sees half of it)."""
    from mila_bench.atomic import atomic_write

    text = json.dumps(record, indent=2) + "\n"
    atomic_write(job_dir / JOB_FILE, lambda f: f.write(text), binary=False)


def read_jobs(sweep_dir: Path) -> list[dict]:
    """The job files of a sweep folder, by job number."""
    records = []
    for path in sweep_dir.rglob(JOB_FILE):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a record being written right now, or damaged: it is counted as missing
    return sorted(records, key=lambda r: r.get("job", -1))
