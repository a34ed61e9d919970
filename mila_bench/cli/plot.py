"""``mila-bench plot …``: one subcommand per analysis figure, each writing a PNG and its CSV.

Only typer is imported here, so ``mila-bench --help`` stays fast; each command loads its
study module (and with it torch and matplotlib) when it runs. Every argument is checked
before any computation, and nothing is written unless the command gets that far.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer

from mila_bench.cli.help_style import Group

plot_app = typer.Typer(
    help="Analysis figures, each a PNG plus the CSV of the numbers behind it, in results/figures/ or --out DIR.",
    no_args_is_help=True,
    cls=Group,
)

ACTIVATION_HELP = (
    "Activation, repeatable: NAME or NAME:KEY=VALUE[,KEY=VALUE], e.g. -a relu -a mila:beta=-0.25 "
    "(names: mila-bench list). Default: relu, swish, mila:beta=-0.25."
)
OVERRIDES_HELP = (
    "Hydra overrides for the training runs, KEY=VALUE as for 'mila-bench train', e.g. trainer.epochs=2 "
    "dataset.train_subset=10000 dataset.root=DIR device=cpu seed=0."
)


Activations = Annotated[Optional[list[str]], typer.Option("--activation", "-a", help=ACTIVATION_HELP, show_default=False)]
Out = Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: results/figures).", show_default=False)]
Dpi = Annotated[int, typer.Option("--dpi", help="Resolution of the PNG.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help=OVERRIDES_HELP, show_default=False)]
Hidden = Annotated[
    Optional[list[int]],
    typer.Option("--hidden", help="Hidden widths of the random network, repeatable (default: 64 32 16).", show_default=False),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the random weights (the same weights for every activation).")]
Extent = Annotated[float, typer.Option("--extent", help="The input grid covers [-extent, extent]².")]
Points = Annotated[int, typer.Option("--points", help="Grid points per axis.")]
Seeds = Annotated[int, typer.Option("--seeds", help="Train N seeds (config seed, seed+1, ...) and plot mean ± std.")]


def _run(debug: bool, action: Callable[[], Sequence[Path]]) -> None:
    """Run ``action`` and print the paths it wrote, one per line; usage errors are one line, exit 2."""
    from mila_bench.cli.boundary import guarded

    def wrapped() -> None:
        for path in action():
            typer.echo(str(path))

    guarded(debug, wrapped)


def _progress(line: str) -> None:
    typer.echo(line, err=True)


def _common(out: Path | None, dpi: int) -> Path:
    """Check the options every command has; return the output folder (not yet created)."""
    from mila_bench.analysis.choices import at_least
    from mila_bench.analysis.style import output_dir

    at_least(dpi, "--dpi", 10)
    return output_dir(out)


def _check_overrides(overrides: list[str] | None, study: Sequence[str] = ()) -> None:
    """Compose the training overrides (with the ``study``'s own) before the study, and torch, loads:
    bad input is one line at once. The study then composes each variant's config (activation, depth)."""
    from mila_bench.analysis.training import STUDY_DEFAULTS
    from mila_bench.config import compose

    compose([*STUDY_DEFAULTS, *(overrides or []), *study])


def _widths(hidden: list[int] | None) -> list[int]:
    from mila_bench.analysis.choices import at_least
    from mila_bench.analysis.network import DEFAULT_WIDTHS

    return [at_least(w, "--hidden", 1) for w in (hidden or DEFAULT_WIDTHS)]


@plot_app.command("function")
def function_cmd(
    beta: Annotated[
        Optional[list[float]],
        typer.Option("--beta", help="Mila β values, repeatable (default: -0.25 0 0.5 1 1.5).", show_default=False),
    ] = None,
    activation: Annotated[
        Optional[list[str]],
        typer.Option("--activation", "-a", help="Other activations to add, repeatable: NAME or NAME:KEY=VALUE, e.g. -a relu "
             "-a swish.", show_default=False),
    ] = None,  # fmt: skip
    x_min: Annotated[float, typer.Option("--x-min", help="Left end of the x range.")] = -5.0,
    x_max: Annotated[float, typer.Option("--x-max", help="Right end of the x range.")] = 5.0,
    points: Annotated[int, typer.Option("--points", help="Points on the x range.")] = 1001,
    out: Out = None,
    dpi: Dpi = 90,
    debug: Debug = False,
) -> None:
    """f, f′ and f″ of Mila at each --beta plus any other --activation, on one shared x range (function.png/.csv)."""

    def action() -> list[Path]:
        from mila_bench.analysis import choices as ch
        from mila_bench.analysis import functions

        betas = ch.finite(beta or functions.DEFAULT_BETAS, "--beta")
        picked = ch.parse_activations([f"mila:beta={b!r}" for b in betas] + list(activation or []))
        low, high = ch.interval(x_min, x_max, "--x-min/--x-max")
        n = ch.at_least(points, "--points", 3)
        return functions.run(picked, low, high, n, _common(out, dpi), dpi)

    _run(debug, action)


@plot_app.command("contour")
def contour_cmd(
    x_min: Annotated[float, typer.Option("--x-min", help="Left end of the x range.")] = -6.0,
    x_max: Annotated[float, typer.Option("--x-max", help="Right end of the x range.")] = 6.0,
    beta_min: Annotated[float, typer.Option("--beta-min", help="Lowest β.")] = -3.0,
    beta_max: Annotated[float, typer.Option("--beta-max", help="Highest β.")] = 3.0,
    x_points: Annotated[int, typer.Option("--x-points", help="Grid points along x.")] = 241,
    beta_points: Annotated[int, typer.Option("--beta-points", help="Grid points along β (one minimum each).")] = 121,
    out: Out = None,
    dpi: Dpi = 90,
    debug: Debug = False,
) -> None:
    """Contours of Mila and ∂f/∂x over (x, β); Mila's global minimum per β, printed (contour.png/.csv, contour_minima.csv)."""

    def action() -> list[Path]:
        from mila_bench.analysis import choices as ch
        from mila_bench.analysis import contour

        x_range = ch.interval(x_min, x_max, "--x-min/--x-max")
        beta_range = ch.interval(beta_min, beta_max, "--beta-min/--beta-max")
        nx, nb = ch.at_least(x_points, "--x-points", 2), ch.at_least(beta_points, "--beta-points", 2)
        paths, table = contour.run(x_range, beta_range, nx, nb, _common(out, dpi), dpi)
        typer.echo("Global minimum of Mila per β: location x*, value f(x*), curvature f″(x*)")
        typer.echo(table.to_markdown(index=False, floatfmt=".6g"))
        return paths

    _run(debug, action)


@plot_app.command("landscape")
def landscape_cmd(
    activation: Activations = None,
    hidden: Hidden = None,
    seed: Seed = 0,
    seeds: Annotated[int, typer.Option("--seeds", help="Measure roughness for N weight seeds: seed, seed+1, ...")] = 1,
    extent: Extent = 3.0,
    points: Points = 200,
    out: Out = None,
    dpi: Dpi = 90,
    debug: Debug = False,
) -> None:
    """Output of a random scalar MLP over a 2-D input grid per activation, with its roughness (landscape*.png/.csv)."""

    def action() -> list[Path]:
        from mila_bench.analysis import choices as ch
        from mila_bench.analysis import landscape

        picked, widths = ch.parse_activations(activation), _widths(hidden)
        first = ch.at_least(seed, "--seed", 0)
        seed_list = list(range(first, first + ch.at_least(seeds, "--seeds", 1)))
        ch.finite([extent], "--extent", minimum=1e-6)
        n = ch.at_least(points, "--points", 3)
        paths, rough = landscape.landscape_run(picked, widths, seed_list, extent, n, _common(out, dpi), dpi)
        summary = rough.groupby("activation", sort=False)["roughness"].agg(["mean", "min", "max"]).reset_index()
        typer.echo(f"Roughness (mean |discrete Laplacian| / output std) over {len(seed_list)} seed(s):")
        typer.echo(summary.to_markdown(index=False, floatfmt=".4g"))
        return paths

    _run(debug, action)


@plot_app.command("gradients")
def gradients_cmd(
    activation: Activations = None,
    hidden: Hidden = None,
    seed: Seed = 0,
    extent: Extent = 3.0,
    points: Points = 200,
    arrows: Annotated[int, typer.Option("--arrows", help="Direction arrows per axis.")] = 16,
    out: Out = None,
    dpi: Dpi = 90,
    debug: Debug = False,
) -> None:
    """Gradient of that random scalar MLP w.r.t. its 2-D input: magnitude and direction (gradients.png/.csv)."""

    def action() -> list[Path]:
        from mila_bench.analysis import choices as ch
        from mila_bench.analysis import landscape

        picked, widths = ch.parse_activations(activation), _widths(hidden)
        ch.at_least(seed, "--seed", 0)
        ch.finite([extent], "--extent", minimum=1e-6)
        n, k = ch.at_least(points, "--points", 2), ch.at_least(arrows, "--arrows", 1)
        return landscape.gradients_run(picked, widths, seed, extent, n, k, _common(out, dpi), dpi)

    _run(debug, action)


@plot_app.command("noise")
def noise_cmd(
    overrides: Overrides = None,
    activation: Activations = None,
    sigma: Annotated[
        Optional[list[float]],
        typer.Option("--sigma", help="Noise σ values, repeatable (default: 0 0.05 ... 0.5).", show_default=False),
    ] = None,
    seeds: Seeds = 1,
    out: Out = None,
    dpi: Dpi = 90,
    debug: Debug = False,
) -> None:
    """Train the demo MLP per activation; test top-1 under Gaussian input noise of each σ (noise.png/.csv)."""

    def action() -> list[Path]:
        from mila_bench.analysis import choices as ch

        picked = ch.parse_activations(activation)
        ch.finite(sigma or [], "--sigma", minimum=0.0)
        n = ch.at_least(seeds, "--seeds", 1)
        out_dir = _common(out, dpi)
        _check_overrides(overrides)
        from mila_bench.analysis import noise

        sigmas = list(sigma or noise.DEFAULT_SIGMAS)
        return noise.run(picked, sigmas, n, overrides or [], out_dir, _progress, dpi)

    _run(debug, action)


@plot_app.command("depth")
def depth_cmd(
    overrides: Overrides = None,
    activation: Activations = None,
    depth: Annotated[
        Optional[list[int]],
        typer.Option("--depth", help="Numbers of hidden layers, repeatable (default: 2 4 8 15 25).", show_default=False),
    ] = None,
    width: Annotated[int, typer.Option("--width", help="Units per hidden layer.")] = 64,
    seeds: Seeds = 1,
    out: Out = None,
    dpi: Dpi = 90,
    debug: Debug = False,
) -> None:
    """Train a width-64 MLP with N hidden layers for each activation and N; test top-1 against N (depth.png/.csv)."""

    def action() -> list[Path]:
        from mila_bench.analysis import choices as ch

        picked = ch.parse_activations(activation)
        given = [ch.at_least(d, "--depth", 1) for d in (depth or [])]
        n, w = ch.at_least(seeds, "--seeds", 1), ch.at_least(width, "--width", 1)
        out_dir = _common(out, dpi)
        _check_overrides(overrides, ("model=deep_mlp", f"model.width={w}"))  # as depth.depth_overrides
        from mila_bench.analysis import depth as study

        return study.run(picked, given or list(study.DEFAULT_DEPTHS), w, n, overrides or [], out_dir, _progress, dpi)

    _run(debug, action)
