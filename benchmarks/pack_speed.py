"""The same sweep with hydra/launcher=packed against Hydra's basic launcher: whole wall time, side by side.

Each side is the command a user types (``mila-bench sweep ... hydra/launcher=basic|packed``), run
from this script in a fresh folder of its own, so the time includes everything a sweep costs
(start-up, data, every job's record and Results.md row). Presets:

- ``seeds``: 16 seeds of the demo MLP (Fashion-MNIST, the demo's settings). Goal on a 2-core CPU: ≥ 1.5×.
- ``beta``: the original project's β sweep, 21 β in [-1, 1] × 5 seeds of the demo (105 runs).
  Goal on an H200: packed ≤ 2× the wall time of one run (``--one-run`` times that run too).
- ``table``: a published table's 24 ResNet-20 runs (8 activations × 3 seeds, the recipe).
  Goal on an H200: ≥ 67,000 images/s over all runs (printed from the records).

Usage: python benchmarks/pack_speed.py --preset seeds [--epochs N] [--subset N] [--device cpu|cuda]
       [--only packed|basic] [--one-run] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESETS = {
    "seeds": ["experiment=fashion_mnist_demo", "seed=range(0,16)"],
    "beta": ["experiment=fashion_mnist_demo", "activation.beta=range(-1,1.01,0.1)", "seed=range(0,5)"],
    "table": ["experiment=cifar10_resnet20_v1", "activation=relu,elu,selu,swish,mish,leaky_relu,softplus,mila",
              "seed=range(0,3)"],  # fmt: skip
}


def sweep(args: list[str], launcher: str, work: Path) -> tuple[float, list[dict]]:
    """Wall seconds of ``mila-bench sweep`` with ``launcher``, and the summaries it recorded."""
    work.mkdir(parents=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mila_bench", "sweep", *args, f"hydra/launcher={launcher}"],
                          cwd=work, capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{launcher} sweep failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    summaries = [json.loads(p.read_text()) for p in (work / "results").glob("*/summary.json")]
    return seconds, summaries


#: Training images per epoch of each dataset (its subset when one is set).
TRAIN_IMAGES = {"fashion_mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000}


def images_per_s(summaries: list[dict], seconds: float) -> float:
    """Training images over all runs per second of the sweep's wall time."""
    images = sum((s["data"].get("train_subset") or TRAIN_IMAGES[s["dataset"]]) * s["epochs"] for s in summaries)
    return images / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="seeds")
    parser.add_argument("--epochs", type=int, help="trainer.epochs (default: the preset's experiment)")
    parser.add_argument("--subset", type=int, help="dataset.train_subset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=["packed", "basic"], help="run one side only")
    parser.add_argument("--one-run", action="store_true", help="also time one run alone (the β goal's yardstick)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("extra", nargs="*", help="more overrides, e.g. dataset.root=DIR")
    opts = parser.parse_args()
    args = [*PRESETS[opts.preset], f"device={opts.device}", *opts.extra]
    args += [f"trainer.epochs={opts.epochs}"] if opts.epochs else []
    args += [f"dataset.train_subset={opts.subset}"] if opts.subset else []
    found: dict[str, object] = {"preset": opts.preset, "overrides": args}
    with tempfile.TemporaryDirectory() as tmp:
        for launcher in ("packed", "basic"):
            if opts.only and opts.only != launcher:
                continue
            seconds, summaries = sweep(args, launcher, Path(tmp) / launcher)
            found[launcher] = {"seconds": seconds, "runs": len(summaries), "images_per_s": images_per_s(summaries, seconds)}
            print(f"{launcher:>7}: {len(summaries)} runs in {seconds:8.1f} s  ({found[launcher]['images_per_s']:,.0f} images/s)")
        if opts.one_run:
            one = [a for a in args if not a.startswith(("seed=", "activation.beta=", "activation="))]
            seconds, _ = sweep([*one, "seed=0"], "basic", Path(tmp) / "one")
            found["one_run_seconds"] = seconds
            print(f"one run: {seconds:8.1f} s")
    if "packed" in found and "basic" in found:
        ratio = found["basic"]["seconds"] / found["packed"]["seconds"]
        found["speedup"] = ratio
        print(f"packed is {ratio:.2f}x the basic launcher's speed (wall time basic / packed)")
    if "packed" in found and "one_run_seconds" in found:
        print(f"packed sweep / one run: {found['packed']['seconds'] / found['one_run_seconds']:.2f}x (goal <= 2)")
    if opts.json:
        opts.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
