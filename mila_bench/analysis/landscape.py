"""Output landscape and input gradients of the random scalar network, one panel per activation.

Roughness turns "ReLU's landscape has sharp transitions, smooth activations' do not" into a
number: the mean magnitude of the 5-point discrete Laplacian of the output (per unit²),
divided by the output's standard deviation over the grid, so that activations whose
outputs are merely smaller or larger compare fairly. A piecewise-linear landscape puts
all its curvature on kinks, which the Laplacian picks up at every grid spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mila_bench.analysis.choices import ActivationChoice
from mila_bench.analysis.network import grid, input_gradients, outputs, scalar_mlp
from mila_bench.analysis.paired import paired_tests
from mila_bench.analysis.style import DPI, pyplot, save_figure, save_table


def laplacian_roughness(values, spacing: float) -> tuple[float, float]:
    """(roughness, mean |Laplacian|) of a 2-D array of values on a square grid of ``spacing``."""
    v = values
    lap = (v[1:-1, 2:] + v[1:-1, :-2] + v[2:, 1:-1] + v[:-2, 1:-1] - 4 * v[1:-1, 1:-1]) / spacing**2
    mean_abs = float(lap.abs().mean())
    return mean_abs / float(v.std()), mean_abs


def roughness(choice: ActivationChoice, widths: Sequence[int], seed: int, extent: float, points: int) -> float:
    """Roughness of the landscape of ``choice``'s network built under ``seed``."""
    xs, X, Y = grid(extent, points)
    return laplacian_roughness(outputs(scalar_mlp(choice, widths, seed), X, Y), float(xs[1] - xs[0]))[0]


def _figure(count: int):
    fig, axes = pyplot().subplots(1, count, figsize=(4.3 * count, 3.9), squeeze=False)
    return fig, list(axes[0])


def _image(fig, ax, values, extent: float, cmap: str, label: str = "") -> None:
    image = ax.imshow(
        values.numpy(), origin="lower", extent=(-extent, extent, -extent, extent), cmap=cmap, interpolation="nearest"
    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set(xlabel="input x₁", ylabel="input x₂")


def _layers(widths: Sequence[int]) -> str:
    return " → ".join(str(w) for w in (2, *widths, 1))


def landscape_run(
    choices: Sequence[ActivationChoice],
    widths: Sequence[int],
    seeds: Sequence[int],
    extent: float,
    points: int,
    out: Path,
    dpi: int = DPI,
) -> tuple[list[Path], object]:
    """Write ``landscape.png``/``.csv`` (first seed), ``landscape_roughness.csv`` (every seed) and
    ``landscape_pairs.csv`` (roughness of each pair of activations compared seed by seed: every
    activation gets the same weights per seed)."""
    import pandas as pd

    xs, X, Y = grid(extent, points)
    spacing = float(xs[1] - xs[0])
    frames, rough_rows = [], []
    fig, axes = _figure(len(choices))
    for ax, choice in zip(axes, choices):
        for seed in seeds:
            values = outputs(scalar_mlp(choice, widths, seed), X, Y)
            score, mean_abs = laplacian_roughness(values, spacing)
            rough_rows.append(
                {"activation": choice.label, "seed": seed, "roughness": score, "mean_abs_laplacian": mean_abs,
                 "output_std": float(values.std())}
            )  # fmt: skip
            if seed == seeds[0]:
                frames.append(
                    pd.DataFrame({"activation": choice.label, "seed": seed, "x": X.flatten().numpy(),
                                  "y": Y.flatten().numpy(), "output": values.flatten().numpy()})
                )  # fmt: skip
                _image(fig, ax, values, extent, "viridis")
                ax.set_title(f"{choice.label}\nroughness {score:.3g}")
    fig.suptitle(f"Output landscape of a random {_layers(widths)} MLP (seed {seeds[0]})")
    fig.tight_layout()
    rough = pd.DataFrame(rough_rows)
    paths = [
        save_figure(fig, out / "landscape.png", dpi),
        save_table(pd.concat(frames, ignore_index=True), out / "landscape.csv"),
        save_table(rough, out / "landscape_roughness.csv"),
        save_table(paired_tests(rough, [], value="roughness"), out / "landscape_pairs.csv"),
    ]
    return paths, rough


def gradients_run(
    choices: Sequence[ActivationChoice],
    widths: Sequence[int],
    seed: int,
    extent: float,
    points: int,
    arrows: int,
    out: Path,
    dpi: int = DPI,
) -> list[Path]:
    """Write ``gradients.png``/``.csv``: |∇ output| as an image, its direction as arrows on a coarse grid."""
    import pandas as pd

    _, X, Y = grid(extent, points)
    stride = max(1, points // arrows)
    coarse = (slice(stride // 2, None, stride),) * 2  # arrows at a subset of the CSV's grid points
    frames = []
    fig, axes = _figure(len(choices))
    for ax, choice in zip(axes, choices):
        gx, gy = input_gradients(scalar_mlp(choice, widths, seed), X, Y)
        magnitude = (gx**2 + gy**2).sqrt()
        frames.append(
            pd.DataFrame({"activation": choice.label, "x": X.flatten().numpy(), "y": Y.flatten().numpy(),
                          "df_dx": gx.flatten().numpy(), "df_dy": gy.flatten().numpy(),
                          "magnitude": magnitude.flatten().numpy()})
        )  # fmt: skip
        _image(fig, ax, magnitude, extent, "magma", "|∇ output|")
        norm = magnitude[coarse].clamp_min(1e-12)
        ax.quiver(X[coarse].numpy(), Y[coarse].numpy(), (gx[coarse] / norm).numpy(), (gy[coarse] / norm).numpy(),
                  color="white", alpha=0.8, scale=arrows * 1.6, width=0.004)  # fmt: skip
        ax.set_title(choice.label)
    fig.suptitle(f"Gradient of the random {_layers(widths)} MLP's output w.r.t. its input (seed {seed})")
    fig.tight_layout()
    table = pd.concat(frames, ignore_index=True)
    return [save_figure(fig, out / "gradients.png", dpi), save_table(table, out / "gradients.csv")]
