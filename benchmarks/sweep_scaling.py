"""Wall time of one 4-job sweep with Hydra's basic launcher (one job after another) and with
joblib (``hydra.launcher.n_jobs=2``, jobs side by side), in one run.

Both go through the real ``mila-bench sweep`` command in a subprocess, in separate temporary
working folders, with the same jobs (activation.beta=0,1 × seed=0,1 on the CPU), so the times
include what a user waits for: start-up, Hydra, data loading, training, records. The basic
launcher runs each job with torch's default threads (all cores), and once more with one
thread per job (``trainer.threads=1``) so the gain of running jobs side by side can be told
from the cost of torch's threads competing for busy cores; joblib gives each job
cores / n_jobs threads (``trainer.threads``, set by the sweep). The ratio is of medians over
``--repeats`` rounds, alternating which launcher goes first. Same seeds, so both sides' mean
top-1 should agree (equal thread counts give equal numbers; a different count changes the
float summation order, and so the last digits of training).
Usage: python benchmarks/sweep_scaling.py [--subset N] [--epochs N] [--repeats N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHERS = {
    "basic": [],
    # the same sequential sweep with one thread per job: separates parallel jobs from thread effects
    "basic, 1 thread": ["trainer.threads=1"],
    "joblib n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def one_sweep(extra: list[str], common: list[str]) -> tuple[float, float]:
    """Wall seconds of one ``mila-bench sweep`` and the mean top-1 of its runs."""
    with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as tmp:
        cmd = [sys.executable, "-m", "mila_bench", "sweep", "activation.beta=0,1", "seed=0,1", *common, *extra]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"sweep failed ({' '.join(extra) or 'basic'}):\n{proc.stderr[-2000:]}")
        tops = [json.loads(p.read_text())["final"]["top1"] for p in Path(tmp, "results").glob("*/summary.json")]
        if len(tops) != 4:
            sys.exit(f"expected 4 runs, found {len(tops)}")
        return seconds, statistics.fmean(tops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The demo's size: jobs much shorter than this measure mostly start-up (importing torch per worker).
    parser.add_argument("--subset", type=int, default=60000, help="training images per job (dataset.train_subset)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-dir", default=None, help="dataset.root (default: mila-bench's default root)")
    args = parser.parse_args()
    common = [f"dataset.train_subset={args.subset}", f"trainer.epochs={args.epochs}", "device=cpu"]
    if args.data_dir:
        common.append(f"dataset.root={args.data_dir}")

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"4 jobs (activation.beta=0,1 × seed=0,1), {args.subset} training images, {args.epochs} epochs, "
          f"CPU, {cores} cores, {args.repeats} round(s)")  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    tops: dict[str, float] = {}
    order = list(LAUNCHERS)
    for round_ in range(args.repeats):
        for name in order if round_ % 2 == 0 else order[::-1]:
            seconds, tops[name] = one_sweep(LAUNCHERS[name], common)
            times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name in LAUNCHERS:
        print(f"{name:>16}: {medians[name]:7.1f} s wall   mean top-1 {100 * tops[name]:.2f}%   "
              f"(rounds: {', '.join(f'{t:.1f}' for t in times[name])})")  # fmt: skip
    joblib = medians["joblib n_jobs=2"]
    print(f"speed-up (basic / joblib): {medians['basic'] / joblib:.2f}x   "
          f"(basic with 1 thread / joblib: {medians['basic, 1 thread'] / joblib:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
