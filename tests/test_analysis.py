"""Analysis figures: the numbers in every CSV checked against mathematics, the PNGs readable,
the training studies tied to the real engine, and every `mila-bench plot` command run for real."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from mila_bench.analysis import contour, functions, landscape, network
from mila_bench.analysis.choices import ActivationChoice, parse_activation, parse_activations
from mila_bench.analysis.style import FIXED_COLOURS, colour
from mila_bench.errors import UsageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MILA = parse_activation("mila:beta=-0.25")
RELU, SWISH = parse_activation("relu"), parse_activation("swish")


def assert_png(path: Path) -> None:
    """A real PNG matplotlib can read back, of a sensible size, not one flat colour."""
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 5_000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 150 and image.shape[1] > 300
    assert float(image[..., :3].std()) > 0.02


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def mila_np(x: np.ndarray, beta: float) -> np.ndarray:
    return x * np.tanh(np.logaddexp(0, x + beta))


def mila_prime_np(x: np.ndarray, beta: float) -> np.ndarray:
    """Analytic f′ = t + x(1 − t²)σ(z), z = x + β, s = softplus(z), t = tanh(s)."""
    z = x + beta
    t = np.tanh(np.logaddexp(0, z))
    return t + x * (1 - t**2) * sigmoid(z)


def roughness_by_hand(rows: pd.DataFrame) -> tuple[float, np.ndarray]:
    """One landscape's roughness from its CSV rows, with numpy's own 5-point stencil: mean |Laplacian| over the
    interior divided by the outputs' sd; also the Laplacian (for where it is flat)."""
    v = rows.pivot(index="y", columns="x", values="output").to_numpy()
    h = float(np.diff(np.sort(rows["x"].unique())).mean())
    lap = (v[1:-1, 2:] + v[1:-1, :-2] + v[2:, 1:-1] + v[:-2, 1:-1] - 4 * v[1:-1, 1:-1]) / h**2
    return float(np.abs(lap).mean() / v.std(ddof=1)), lap


# ------------------------------------------------------------------ parsing and colours


def test_activation_syntax_resolves_through_the_registry() -> None:
    assert parse_activation("relu") == ActivationChoice("relu", {})
    mila = parse_activation("mila:beta=0.5")
    assert (mila.name, mila.params, mila.label) == ("mila", {"beta": 0.5}, "mila (β=0.5)")
    assert parse_activation("mila").params == {"beta": -0.25}  # the registry's default
    assert mila.overrides() == ["activation=mila", "activation.beta=0.5"]
    picked = parse_activations(None)
    assert [c.label for c in picked] == ["relu", "swish", "mila (β=-0.25)"]
    assert [c.label for c in parse_activations(["relu", "relu", "mila:beta=1", "mila:beta=1.0"])] == ["relu", "mila (β=1)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("banana", "unknown activation 'banana'"),
        ("relu:beta=1", "has no parameter 'beta'"),
        ("mila:beta=abc", "not a number"),
        ("mila:beta=nan", "not a finite number"),
        ("mila:beta", "malformed"),
    ],
)
def test_bad_activation_specs_are_usage_errors(text: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected):
        parse_activation(text)


def test_colours_belong_to_the_activation_not_the_order() -> None:
    from matplotlib.colors import to_hex

    forward = [colour(c) for c in parse_activations(["relu", "swish", "mila:beta=-0.25", "mish"])]
    backward = [colour(c) for c in parse_activations(["mish", "mila:beta=-0.25", "swish", "relu"])]
    assert forward == backward[::-1]
    assert len(set(map(str, forward))) == 4
    family = [colour(parse_activation(f"mila:beta={b}")) for b in functions.DEFAULT_BETAS]
    hexes = [to_hex(c) for c in family]
    assert len(set(hexes)) == len(family)
    assert hexes[0] == FIXED_COLOURS["mila"]  # the demo's β = -0.25 is Mila's own red
    assert not set(hexes[1:]) & set(FIXED_COLOURS.values())  # other β never take another activation's colour


# ----------------------------------------------------------------------------- function


def test_function_csv_matches_the_analytic_derivatives(tmp_path: Path) -> None:
    betas = [-0.25, 0.0, 1.5]
    picked = [parse_activation(f"mila:beta={b}") for b in betas] + [SWISH, RELU]
    paths = functions.run(picked, -4.0, 4.0, 161, tmp_path)
    assert [p.name for p in paths] == ["function.png", "function.csv"]
    assert_png(paths[0])
    table = pd.read_csv(paths[1])
    assert set(table["activation"]) == {c.label for c in picked}
    for beta in betas:
        rows = table[table["activation"] == f"mila (β={beta:g})"]
        x = rows["x"].to_numpy()
        assert len(x) == 161 and x[0] == -4.0 and x[-1] == 4.0
        np.testing.assert_allclose(rows["f"], mila_np(x, beta), atol=1e-12)
        np.testing.assert_allclose(rows["df_dx"], mila_prime_np(x, beta), atol=1e-10)
        h = 1e-5
        second = (mila_prime_np(x + h, beta) - mila_prime_np(x - h, beta)) / (2 * h)
        np.testing.assert_allclose(rows["d2f_dx2"], second, atol=1e-6)
    swish = table[table["activation"] == "swish"]
    x = swish["x"].to_numpy()
    s = sigmoid(x)
    np.testing.assert_allclose(swish["df_dx"], s * (1 + x * (1 - s)), atol=1e-12)
    np.testing.assert_allclose(swish["d2f_dx2"], s * (1 - s) * (2 + x * (1 - 2 * s)), atol=1e-12)
    relu = table[table["activation"] == "relu"]
    assert (relu["df_dx"] == (relu["x"] > 0)).all() and (relu["d2f_dx2"] == 0).all()


# ------------------------------------------------------------------------------ contour


def test_global_minimum_of_mish_is_the_known_one() -> None:
    x_min, f_min, curvature = contour.global_minimum(0.0)
    assert x_min == pytest.approx(-1.19237, abs=1e-4)
    assert f_min == pytest.approx(-0.30884, abs=1e-4)
    assert mila_prime_np(np.array(x_min), 0.0) == pytest.approx(0.0, abs=1e-7)
    h = 1e-5  # f″ at the minimum, from the analytic f′ by central differences: positive, a minimum
    assert curvature == pytest.approx((mila_prime_np(x_min + h, 0.0) - mila_prime_np(x_min - h, 0.0)) / (2 * h), rel=1e-6)
    assert curvature > 0


def test_contour_csvs_hold_the_surface_and_the_minima(tmp_path: Path) -> None:
    paths, printed = contour.run((-6.0, 6.0), (-3.0, 3.0), 49, 25, tmp_path)
    assert [p.name for p in paths] == ["contour.png", "contour.csv", "contour_minima.csv"]
    assert_png(paths[0])
    grid = pd.read_csv(paths[1])
    assert len(grid) == 49 * 25 and grid["x"].min() == -6 and grid["beta"].max() == 3
    np.testing.assert_allclose(grid["f"], mila_np(grid["x"].to_numpy(), grid["beta"].to_numpy()), atol=1e-12)
    np.testing.assert_allclose(grid["df_dx"], mila_prime_np(grid["x"].to_numpy(), grid["beta"].to_numpy()), atol=1e-10)
    minima = pd.read_csv(paths[2])
    assert len(minima) == 25 and 1 < len(printed) <= contour.TABLE_ROWS
    betas, xs = minima["beta"].to_numpy(), minima["x_min"].to_numpy()
    np.testing.assert_allclose(mila_prime_np(xs, betas), 0.0, atol=1e-7)  # stationary...
    np.testing.assert_allclose(minima["f_min"], mila_np(xs, betas), atol=1e-12)
    assert (minima["d2f_at_min"] > 0).all()  # ...and a minimum
    for x, beta, value in zip(xs, betas, minima["f_min"]):  # the global one: nothing lower anywhere
        line = np.linspace(-60, 10, 70001)
        assert mila_np(line, beta).min() >= value - 1e-9
    assert (np.diff(xs) < 0).all() and (np.diff(minima["f_min"]) < 0).all()  # deeper and further left as β grows
    row = minima[minima["beta"] == 0.0].iloc[0]
    assert row["x_min"] == pytest.approx(-1.19237, abs=1e-4) and row["f_min"] == pytest.approx(-0.30884, abs=1e-4)


# --------------------------------------------------------------- landscape and gradients


def test_laplacian_roughness_of_known_surfaces() -> None:
    xs = torch.linspace(-1, 1, 41, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    spacing = float(xs[1] - xs[0])
    plane = 3 * X - 2 * Y + 1
    assert landscape.laplacian_roughness(plane, spacing)[1] == pytest.approx(0.0, abs=1e-9)
    bowl = X**2 + Y**2  # Laplacian 4 everywhere
    score, mean_abs = landscape.laplacian_roughness(bowl, spacing)
    assert mean_abs == pytest.approx(4.0, rel=1e-9) and score == pytest.approx(4.0 / float(bowl.std()), rel=1e-9)
    assert landscape.laplacian_roughness(10 * bowl, spacing)[0] == pytest.approx(score, rel=1e-9)  # scale-free


def test_every_activation_gets_the_same_random_weights() -> None:
    state = {c.label: network.scalar_mlp(c, (16, 8), seed=5).state_dict() for c in (RELU, SWISH, MILA)}
    first = state["relu"]
    assert [(k, tuple(v.shape)) for k, v in first.items()][0] == ("0.weight", (16, 2))
    for other in state.values():
        assert all(torch.equal(first[k], other[k]) for k in first)
    before = torch.random.get_rng_state()
    other_seed = network.scalar_mlp(RELU, (16, 8), seed=6).state_dict()
    assert torch.equal(before, torch.random.get_rng_state())  # the caller's RNG is untouched
    assert not torch.equal(first["0.weight"], other_seed["0.weight"])


ROUGHNESS_SEEDS = range(6)


def test_relu_landscape_is_rougher_than_swish_and_mila_for_every_seed() -> None:
    """The README's claim, measured: it held for every seed tried (0-5), so it is asserted per seed."""
    for seed in ROUGHNESS_SEEDS:
        r = {c.label: landscape.roughness(c, network.DEFAULT_WIDTHS, seed, extent=3.0, points=80) for c in (RELU, SWISH, MILA)}
        assert r["relu"] > r["swish"] and r["relu"] > r["mila (β=-0.25)"], (seed, r)


def test_landscape_csvs(tmp_path: Path) -> None:
    paths, rough = landscape.landscape_run([RELU, SWISH, MILA], (16, 8), [0, 1, 2], 2.0, 41, tmp_path)
    assert [p.name for p in paths] == ["landscape.png", "landscape.csv", "landscape_roughness.csv", "landscape_pairs.csv"]
    assert_png(paths[0])
    table = pd.read_csv(paths[1])
    assert len(table) == 3 * 41 * 41 and set(table["seed"]) == {0}
    assert table["x"].min() == -2 and table["y"].max() == 2
    # Recompute each roughness from the CSV's outputs with numpy's own 5-point stencil.
    saved = pd.read_csv(paths[2])
    assert len(saved) == 9 and list(saved["seed"]) == [0, 1, 2] * 3
    np.testing.assert_allclose(saved["roughness"], rough["roughness"], rtol=1e-12)
    h = 4.0 / 40
    for label, rows in table.groupby("activation"):
        expected, lap = roughness_by_hand(rows)
        got = saved[(saved["activation"] == label) & (saved["seed"] == 0)]["roughness"].item()
        assert got == pytest.approx(expected, rel=1e-9)
        # ReLU's landscape is piecewise linear: zero curvature away from the kinks; Swish's nowhere.
        flat = (np.abs(lap) < 1e-9 * rows["output"].abs().max() / h**2).mean()
        assert (flat > 0.3) if label == "relu" else (flat < 0.05), (label, flat)


def test_gradients_csv_matches_finite_differences_of_the_landscape(tmp_path: Path) -> None:
    widths, extent, points = (16, 8), 2.0, 81
    grad_paths = landscape.gradients_run([SWISH, MILA], widths, 3, extent, points, 8, tmp_path / "g")
    land_paths, _ = landscape.landscape_run([SWISH, MILA], widths, [3], extent, points, tmp_path / "l")
    assert [p.name for p in grad_paths] == ["gradients.png", "gradients.csv"]
    assert_png(grad_paths[0])
    grads, land = pd.read_csv(grad_paths[1]), pd.read_csv(land_paths[1])
    h = 2 * extent / (points - 1)
    for label in ("swish", "mila (β=-0.25)"):
        g = grads[grads["activation"] == label]
        v = land[land["activation"] == label].pivot(index="y", columns="x", values="output").to_numpy()
        dx = g.pivot(index="y", columns="x", values="df_dx").to_numpy()
        dy = g.pivot(index="y", columns="x", values="df_dy").to_numpy()
        scale = np.abs(dx).max() + np.abs(dy).max()
        np.testing.assert_allclose(dx[1:-1, 1:-1], (v[1:-1, 2:] - v[1:-1, :-2]) / (2 * h), atol=1e-3 * scale)
        np.testing.assert_allclose(dy[1:-1, 1:-1], (v[2:, 1:-1] - v[:-2, 1:-1]) / (2 * h), atol=1e-3 * scale)
        np.testing.assert_allclose(g["magnitude"], np.hypot(g["df_dx"], g["df_dy"]), rtol=1e-12)


# ------------------------------------------------------------------ the training studies


def tiny(fashion_root: Path, subset: int = 500) -> list[str]:
    return [f"dataset.root={fashion_root}", f"dataset.train_subset={subset}", "trainer.epochs=1", "device=cpu"]


@pytest.mark.slow
def test_noise_study_trains_with_the_engine_and_applies_the_noise(tmp_path: Path, fashion_root: Path) -> None:
    from mila_bench.analysis import noise
    from mila_bench.config import compose
    from mila_bench.pipeline import train

    lines: list[str] = []
    paths = noise.run([RELU, MILA], [0.0, 3.0], 1, tiny(fashion_root), tmp_path / "fig", lines.append)
    assert [p.name for p in paths] == ["noise.png", "noise.csv", "noise_runs.csv", "noise_pairs.csv"]
    assert_png(paths[0])
    summary, runs = pd.read_csv(paths[1]), pd.read_csv(paths[2])
    assert list(summary.columns) == ["activation", "sigma", "top1_mean", "top1_std", "seeds"]
    assert len(runs) == 4 and set(runs["seed"]) == {0} and (summary["seeds"] == 1).all() and len(lines) == 2
    clean = runs[runs["sigma"] == 0.0].set_index("activation")["top1"]
    noisy = runs[runs["sigma"] == 3.0].set_index("activation")["top1"]
    assert (clean > 0.3).all()  # learned: chance is 0.1
    assert (noisy < clean - 0.05).all(), (clean, noisy)  # σ = 3 on [0, 1] pixels really hurts
    # σ = 0 is exactly what `mila-bench train` gets for the same config and seed: same engine, same builders.
    cfg = compose([*tiny(fashion_root), *MILA.overrides(), "trainer.progress=false", f"results.dir={tmp_path / 'r'}",
                   f"results.markdown={tmp_path / 'Results.md'}"])  # fmt: skip
    assert train(cfg).history[-1].top1 == clean["mila (β=-0.25)"]


def test_depth_study_builds_deep_mlps_of_each_depth(tmp_path: Path, fashion_root: Path) -> None:
    from mila_bench.analysis import depth

    paths = depth.run([SWISH], [1, 3], 16, 2, tiny(fashion_root), tmp_path, lambda _: None)
    assert [p.name for p in paths] == ["depth.png", "depth.csv", "depth_runs.csv", "depth_pairs.csv"]
    assert_png(paths[0])
    summary, runs = pd.read_csv(paths[1]), pd.read_csv(paths[2])
    assert list(runs["depth"]) == [1, 1, 3, 3] and list(runs["seed"]) == [0, 1, 0, 1] and (runs["width"] == 16).all()
    assert list(summary["depth"]) == [1, 3] and (summary["seeds"] == 2).all()
    for depth_value, rows in runs.groupby("depth"):
        row = summary[summary["depth"] == depth_value].iloc[0]
        assert row["top1_mean"] == pytest.approx(rows["top1"].mean())
        assert row["top1_std"] == pytest.approx(rows["top1"].std())
    assert runs["top1"].iloc[0] != runs["top1"].iloc[1]  # two seeds, two models
    assert (runs[runs["depth"] == 1]["top1"] > 0.3).all()


def test_deep_mlp_model() -> None:
    from torch import nn

    from mila_bench.activations import Activation
    from mila_bench.config import compose
    from mila_bench.models import MODELS, build_model

    assert "deep_mlp" in MODELS
    model = build_model({"name": "deep_mlp", "depth": 5, "width": 64}, MILA.module, (1, 28, 28), 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 64)] + [(64, 64)] * 4 + [(64, 10)]
    acts = [m for m in model.modules() if isinstance(m, Activation)]
    assert len(acts) == 5 and all(a.name == "mila" and a.params == {"beta": -0.25} for a in acts)
    assert len({id(a) for a in acts}) == 5
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    cfg = compose(["model=deep_mlp", "model.depth=25"])
    assert (cfg.model.depth, cfg.model.width) == (25, 64)
    for bad in ("model.depth=0", "model.width=-1", "model.depth=2.5"):
        with pytest.raises(UsageError, match=bad.split("=")[0]):
            compose(["model=deep_mlp", bad])


# ------------------------------------------------------------------------- the commands


def function_csv(table: pd.DataFrame) -> None:
    """`plot function -a relu --beta -0.25 --beta 1 --points 101`: values and slopes of each curve."""
    assert sorted(set(table["activation"])) == ["mila (β=-0.25)", "mila (β=1)", "relu"]
    for label, rows in table.groupby("activation"):
        x = rows["x"].to_numpy()
        assert len(x) == 101 and (np.diff(x) > 0).all()
        if label == "relu":
            np.testing.assert_array_equal(rows["f"], np.maximum(x, 0))
            continue
        beta = -0.25 if "-0.25" in label else 1.0
        np.testing.assert_allclose(rows["f"], mila_np(x, beta), atol=1e-12)
        np.testing.assert_allclose(rows["df_dx"], mila_prime_np(x, beta), atol=1e-10)


def contour_csvs(grid: pd.DataFrame, minima: pd.DataFrame) -> None:
    """`plot contour --x-points 41 --beta-points 13`: the surface and each β's minimum."""
    assert len(grid) == 41 * 13 and grid["beta"].nunique() == 13
    np.testing.assert_allclose(grid["f"], mila_np(grid["x"].to_numpy(), grid["beta"].to_numpy()), atol=1e-12)
    assert sorted(minima["beta"]) == sorted(grid["beta"].unique())
    np.testing.assert_allclose(mila_prime_np(minima["x_min"].to_numpy(), minima["beta"].to_numpy()), 0.0, atol=1e-7)
    np.testing.assert_allclose(minima["f_min"], mila_np(minima["x_min"].to_numpy(), minima["beta"].to_numpy()), atol=1e-12)


def landscape_csvs(table: pd.DataFrame, rough: pd.DataFrame, pairs: pd.DataFrame) -> None:
    """`plot landscape --points 41 --seeds 2`: seed 0's roughness recomputed from its landscape; the
    pairs' mean differences from the per-seed roughness."""
    assert len(table) == 3 * 41 * 41 and sorted(rough["seed"]) == [0, 0, 0, 1, 1, 1]
    for label, rows in table.groupby("activation"):
        got = rough[(rough["activation"] == label) & (rough["seed"] == 0)]["roughness"].item()
        assert got == pytest.approx(roughness_by_hand(rows)[0], rel=1e-9), label
    by_seed = rough.pivot(index="seed", columns="activation", values="roughness")
    assert len(pairs) == 3
    for row in pairs.itertuples():
        assert row.n == 2 and row.mean_diff == pytest.approx((by_seed[row.a] - by_seed[row.b]).mean(), rel=1e-12)


def gradients_csv(table: pd.DataFrame) -> None:
    """`plot gradients -a swish -a mila:beta=0.5 --points 41`: one field per activation, magnitudes of its components."""
    assert sorted(set(table["activation"])) == ["mila (β=0.5)", "swish"] and len(table) == 2 * 41 * 41
    np.testing.assert_allclose(table["magnitude"], np.hypot(table["df_dx"], table["df_dy"]), rtol=1e-12)
    assert table.groupby("activation")["magnitude"].std().min() > 0  # a field, not a constant


PLOT_CSV_CHECKS = {"function": function_csv, "contour": contour_csvs, "landscape": landscape_csvs, "gradients": gradients_csv}


@pytest.mark.parametrize(
    ("args", "files"),
    [
        (["function", "-a", "relu", "--beta", "-0.25", "--beta", "1", "--points", "101"], ["function.png", "function.csv"]),
        (["contour", "--x-points", "41", "--beta-points", "13"], ["contour.png", "contour.csv", "contour_minima.csv"]),
        (["landscape", "--points", "41", "--seeds", "2", "--hidden", "16", "--hidden", "8"],
         ["landscape.png", "landscape.csv", "landscape_roughness.csv", "landscape_pairs.csv"]),
        (["gradients", "-a", "swish", "-a", "mila:beta=0.5", "--points", "41"], ["gradients.png", "gradients.csv"]),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_plot_commands_write_and_print_their_files(tmp_path: Path, args: list[str], files: list[str]) -> None:
    proc = run_cli(["plot", *args, "--out", "figs"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = [l for l in proc.stdout.splitlines() if l.startswith("figs/")]
    assert printed == [f"figs/{name}" for name in files]
    assert_png(tmp_path / "figs" / files[0])
    PLOT_CSV_CHECKS[args[0]](*(pd.read_csv(tmp_path / "figs" / name) for name in files[1:]))
    if args[0] == "contour":
        assert "-1.19243" in proc.stdout and "-0.308843" in proc.stdout  # the β = 0 row of the printed table
    if args[0] == "landscape":
        assert "relu" in proc.stdout and "Roughness" in proc.stdout


@pytest.mark.parametrize(
    ("args", "files"),
    [
        (["noise", "--sigma", "0", "--sigma", "0.5", "-a", "relu"], ["noise.png", "noise.csv", "noise_runs.csv", "noise_pairs.csv"]),
        (["depth", "--depth", "2", "-a", "mila:beta=0", "--width", "32"],
         ["depth.png", "depth.csv", "depth_runs.csv", "depth_pairs.csv"]),
    ],
)
@pytest.mark.slow
def test_study_commands_train_and_write(tmp_path: Path, fashion_root: Path, args: list[str], files: list[str]) -> None:
    proc = run_cli(["plot", *args, *tiny(fashion_root)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = Path("results") / "figures"
    assert proc.stdout.splitlines() == [str(out / name) for name in files]
    assert_png(tmp_path / out / files[0])
    summary = pd.read_csv(tmp_path / out / files[1])
    assert len(summary) == (2 if args[0] == "noise" else 1) and (summary["top1_mean"] > 0.3).all()
    assert args[0] in proc.stderr  # a progress line per trained model


def test_number_checks_name_the_bad_value() -> None:
    from mila_bench.analysis.choices import at_least, finite, interval

    assert finite([0.0, -2.5], "--beta") == [0.0, -2.5] and at_least(3, "--points", 3) == 3
    for call, expected in [
        (lambda: finite([0.5, math.inf], "--beta"), "--beta=inf is not allowed"),
        (lambda: finite([-0.1], "--sigma", minimum=0.0), "--sigma=-0.1 is not allowed; expected a finite number >= 0"),
        (lambda: at_least(1, "--points", 3), "--points=1 is not allowed; expected an integer >= 3"),
        (lambda: interval(2.0, 1.0, "--x-min/--x-max"), "LOW < HIGH"),
    ]:
        with pytest.raises(UsageError, match=expected):
            call()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["landscape", "-a", "banana"], "unknown activation 'banana'; allowed: "),
        (["function", "--beta", "nan"], "--beta=nan"),
        (["depth", "--depth", "0"], "--depth=0"),
        (["noise", "trainer.epochs=0"], "trainer.epochs=0"),  # the overrides are checked before any training
        (["contour", "--out", "taken/figs"], "'taken' is a file"),
    ],
)
def test_bad_plot_input_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "taken").write_text("not a folder")
    proc = run_cli(["plot", *args], tmp_path)
    assert proc.returncode == 2, proc.stderr
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert line.startswith("mila-bench: error: ") and expected in line, line
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_the_cli_still_starts_without_heavy_imports() -> None:
    """Registering `plot` must not pull torch, matplotlib or pandas into every `mila-bench` start."""
    import subprocess
    import sys

    code = "import sys, mila_bench.cli.app; print(sorted(m for m in ('torch', 'matplotlib', 'pandas', 'scipy') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
