"""What the trackers cost a run: the same training with ``logger=none`` and with trackers on, in one process.

Each round trains the same seeded run (the demo's MLP on a Fashion-MNIST subset) once per
logger setting, in alternating order (a passing slowdown hits both alike), each setting into its
own results folder (as a user's runs share one), through ``mila_bench.pipeline.train``; the wall
time of ``train`` is measured. An untimed run first loads the data and warms torch up. The first
round pays the trackers' imports (mlflow, tensorboard, wandb) and MLflow's database creation; it
is printed apart and the ratios are of the medians of the later rounds. Test
top-1 is printed too: trackers are views, so it must be identical with and without them.
Usage: python benchmarks/tracker_overhead.py [--epochs 3] [--subset 6000] [--repeats 3]
       [--loggers mlflow,tensorboard,wandb]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def one_run(logger: str, epochs: int, subset: int, workdir: Path) -> tuple[float, float]:
    """Seconds of ``train`` and the final test top-1, for one run with this ``logger=`` choice."""
    from mila_bench.config import compose
    from mila_bench.pipeline import train

    cfg = compose([
        f"logger={logger}", f"trainer.epochs={epochs}", f"dataset.train_subset={subset}", "trainer.threads=1",
        "trainer.progress=false", f"results.dir={workdir / 'results'}", f"results.markdown={workdir / 'Results.md'}", "seed=0",
    ])  # fmt: skip
    start = time.perf_counter()
    result = train(cfg)
    seconds = time.perf_counter() - start
    from mila_bench.records.runs import read_summary

    return seconds, read_summary(result.run_dir).final.top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=6000, help="training images (dataset.train_subset)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds after the first (median reported)")
    parser.add_argument("--loggers", default="mlflow,tensorboard,wandb", help="the trackers switched on")
    opts = parser.parse_args()
    settings = {"none": "none", opts.loggers: f"[{opts.loggers}]"}
    times: dict[str, list[float]] = {name: [] for name in settings}
    top1: dict[str, set[float]] = {name: set() for name in settings}
    with tempfile.TemporaryDirectory() as tmp:
        one_run("none", opts.epochs, opts.subset, Path(tmp) / "warm-up")
        for round_ in range(opts.repeats + 1):
            order = list(settings) if round_ % 2 == 0 else list(reversed(settings))
            for name in order:
                folder = Path(tmp) / ("none" if name == "none" else "trackers")  # one results folder each, as a user has
                seconds, accuracy = one_run(settings[name], opts.epochs, opts.subset, folder)
                times[name].append(seconds)
                top1[name].add(accuracy)
                print(f"round {round_}: logger={settings[name]:<32} {seconds:7.2f} s  top-1 {accuracy:.4f}", flush=True)
    base, tracked = times["none"], times[opts.loggers]
    print(f"\nfirst round (imports, database creation): none {base[0]:.2f} s, trackers {tracked[0]:.2f} s "
          f"(+{tracked[0] - base[0]:.2f} s)")  # fmt: skip
    later_base, later_tracked = statistics.median(base[1:]), statistics.median(tracked[1:])
    print(f"later rounds, median of {opts.repeats}: none {later_base:.2f} s, trackers {later_tracked:.2f} s; "
          f"ratio trackers/none = {later_tracked / later_base:.3f} "
          f"(+{later_tracked - later_base:.2f} s per run of {opts.epochs} epochs)")  # fmt: skip
    same = top1["none"] == top1[opts.loggers] and len(top1["none"]) == 1
    print(f"test top-1 identical with and without trackers: {same} ({sorted(top1['none'])} vs {sorted(top1[opts.loggers])})")


if __name__ == "__main__":
    main()
