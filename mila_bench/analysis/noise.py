"""Accuracy under additive Gaussian input noise: the original README's "early analysis".

Each activation's model is trained on clean data, then evaluated on the test split with
σ·ε added to every pixel (ε ~ N(0, 1), no clipping). ε is drawn once per seed and shared
by every σ and every activation, so the curves differ only by the model, not the draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mila_bench.analysis.choices import ActivationChoice
from mila_bench.analysis.style import DPI, save_table
from mila_bench.analysis.curves import plot_lines, summarise
from mila_bench.analysis.paired import paired_tests
from mila_bench.analysis.training import Reporter, prepare, train_one

DEFAULT_SIGMAS = tuple(round(0.05 * i, 2) for i in range(11))  # 0, 0.05, ..., 0.5


def noise_runs(
    choices: Sequence[ActivationChoice], sigmas: Sequence[float], seeds: int, overrides: Sequence[str], report: Reporter
):
    """One row per (activation, seed, σ): the test top-1 of that seed's model under that noise."""
    import pandas as pd
    import torch

    from mila_bench.data.splits import Split
    from mila_bench.training.engine import evaluate

    study = prepare([(c, ()) for c in choices], overrides)
    test = study.data.test
    images = test.float_images()  # the test split as the model sees it, noise added on top
    rows = []
    for seed in study.seeds(seeds):
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)).to(study.device)
        for choice in choices:
            model = train_one(study, choice, seed)
            batch = study.config(choice).trainer.eval_batch_size
            top1 = [evaluate(model, Split(images + s * noise, test.labels), batch)["top1"] for s in sigmas]
            rows += [{"activation": choice.label, "seed": seed, "sigma": s, "top1": t} for s, t in zip(sigmas, top1)]
            report(
                f"noise: {choice.label}, seed {seed}: top-1 {100 * top1[0]:.2f}% at σ={sigmas[0]:g}, "
                f"{100 * top1[-1]:.2f}% at σ={sigmas[-1]:g}"
            )
    return pd.DataFrame(rows)


def run(
    choices: Sequence[ActivationChoice],
    sigmas: Sequence[float],
    seeds: int,
    overrides: Sequence[str],
    out: Path,
    report: Reporter,
    dpi: int = DPI,
) -> list[Path]:
    """Write ``noise.png``, ``noise.csv`` (mean ± std per σ), ``noise_runs.csv`` (every seed)
    and ``noise_pairs.csv`` (each pair of activations compared seed by seed, see ``paired``)."""
    runs = noise_runs(choices, sigmas, seeds, overrides, report)
    summary = summarise(runs, ["activation", "sigma"])
    title = "Test accuracy under additive Gaussian input noise"
    xlabel = "noise standard deviation σ (pixels in [0, 1])"
    return [
        plot_lines(summary, choices, "sigma", xlabel, title, out / "noise.png", dpi),
        save_table(summary, out / "noise.csv"),
        save_table(runs, out / "noise_runs.csv"),
        save_table(paired_tests(runs, ["sigma"]), out / "noise_pairs.csv"),
    ]
