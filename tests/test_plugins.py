"""Users' own activations: installed plugins (entry points) and `activation=custom` targets.

The plugins are real packages, built and installed by pip (into a folder put on PYTHONPATH
of the CLI's subprocess), found through their entry points as any installed plugin is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import INTRO, cli_env, recorded, run_rows

TINY = ["dataset.train_subset=2000", "trainer.epochs=2", "device=cpu", "seed=0", "trainer.progress=false"]

SERF_ACTS = '''
import torch
import torch.nn.functional as F
from torch import nn


def serf(x, alpha=1.0):
    """x * erf(alpha * softplus(x)), Serf."""
    return x * torch.erf(alpha * F.softplus(x))


class SoftClip(nn.Module):
    """A module plugin with its own learned scale."""

    def __init__(self, limit=3.0):
        super().__init__()
        self.limit = nn.Parameter(torch.tensor(limit))

    def forward(self, x):
        return self.limit * torch.tanh(x / self.limit)


def unstable(x):
    """log(x): nan for x < 0, as a careless plugin might be."""
    return torch.log(x)
'''

MY_ACTS = '''
import numpy as np
import torch
from torch import nn

CONSTANT = 0.5


def serf(x, alpha=1.0):
    return x * torch.erf(alpha * torch.nn.functional.softplus(x))


class ScaledTanh(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, x):
        return self.scale * torch.tanh(x)


def wrong_shape(x):
    return x.mean(0)


def to_double(x):
    return torch.relu(x).double()


def detached(x):
    return torch.relu(x).detach()


def explodes(x):
    return torch.exp(100 * x)


def numpy_out(x):
    return np.maximum(x.detach().numpy(), 0)
'''


def install(tmp: Path, name: str, module: str, source: str, entry_points: dict[str, str]) -> Path:
    """Build and install a plugin package with pip into ``tmp/site``; return that folder."""
    src = tmp / "src"
    src.mkdir(parents=True)
    points = "\n".join(f'{k} = "{v}"' for k, v in entry_points.items())
    (src / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = ["torch"]\n\n'
        f'[tool.setuptools]\npy-modules = ["{module}"]\n\n'
        f'[project.entry-points."mila_bench.activations"]\n{points}\n'
    )
    (src / f"{module}.py").write_text(source)
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (site / f"{name.replace('-', '_')}-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    points = {"serf": "serf_acts:serf", "soft_clip": "serf_acts:SoftClip", "unstable": "serf_acts:unstable"}
    return install(tmp_path_factory.mktemp("plugin"), "serf-acts", "serf_acts", SERF_ACTS, points)


@pytest.fixture(scope="module")
def clash_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = "import torch\n\ndef relu(x):\n    return torch.clamp(x, min=0)\n"
    return install(tmp_path_factory.mktemp("clash"), "clash-acts", "clash_acts", source, {"relu": "clash_acts:relu"})


@pytest.fixture
def workdir(workdir: Path) -> Path:
    """The shared working directory (conftest), with the custom targets' module in it."""
    (workdir / "my_acts.py").write_text(MY_ACTS)
    return workdir


def cli(args: list[str], cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess:
    """The installed ``mila-bench`` script (not ``python -m``: the current directory must be made importable)."""
    env = cli_env()
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    script = Path(sys.executable).parent / "mila-bench"
    return subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_list_shows_plugins_marked_with_their_defaults(workdir: Path, plugin_site: Path) -> None:
    proc = cli(["list"], workdir, plugin_site)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "alpha=1" in lines["serf"] and "[plugin from serf-acts 0.1.0: serf_acts:serf]" in lines["serf"]
    assert "limit=3" in lines["soft_clip"] and "plugin" in lines["soft_clip"]
    assert "plugin" not in lines["relu"] and "beta=-0.25" in lines["mila"]
    assert "gelu" in lines and "squared_relu" in lines and "alias of swish" in lines["silu"]
    without = cli(["list"], workdir)
    assert "serf" not in without.stdout and without.returncode == 0


@pytest.mark.slow
def test_plugin_trains_is_recorded_reported_and_plotted_like_a_built_in(
    workdir: Path, fashion_root: Path, plugin_site: Path
) -> None:
    proc = cli(["train", "activation=serf", "activation.alpha=0.5", *TINY, f"dataset.root={fashion_root}"], workdir, plugin_site)
    assert proc.returncode == 0, proc.stderr
    [summary] = list(recorded(workdir).values())
    assert summary["activation"] == "serf" and summary["activation_params"] == {"alpha": 0.5}
    assert summary["activation_target"] == "serf_acts:serf"
    assert summary["activation_origin"] == "plugin from serf-acts 0.1.0"
    assert summary["final"]["top1"] > 0.65, summary["final"]  # learned: chance is 0.10
    [row] = run_rows(workdir)
    assert row[0] == "serf serf_acts:serf (alpha=0.5)" and row[-1] == summary["run_id"]

    report = cli(["report", "--baseline", "serf"], workdir, plugin_site)
    assert report.returncode == 0, report.stderr
    assert "| serf serf_acts:serf (alpha=0.5)" in (workdir / "Results.md").read_text()

    plot = cli(["plot", "function", "-a", "serf:alpha=2", "-a", "soft_clip", "--out", "figs"], workdir, plugin_site)
    assert plot.returncode == 0, plot.stderr
    [csv] = (workdir / "figs").glob("function*.csv")
    text = csv.read_text()
    assert "serf (alpha=2)" in text and "soft_clip (limit=3)" in text


@pytest.mark.slow
def test_a_plugin_reaches_every_activation_of_a_timm_model(workdir: Path, fashion_root: Path, plugin_site: Path) -> None:
    import torch
    import timm

    proc = cli(["train", "model=timm", "model.arch=regnetx_002", "activation=serf", "activation.alpha=0.5",
                "dataset.train_subset=512", "trainer.epochs=1", "trainer.threads=1", "trainer.progress=false",
                f"dataset.root={fashion_root}"], workdir, plugin_site)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [summary] = list(recorded(workdir).values())
    assert summary["activation"] == "serf" and summary["activation_target"] == "serf_acts:serf"
    # As many serf modules as timm's own regnetx_002 has ReLUs, counted here on a meta-device copy.
    with torch.device("meta"):
        default = timm.create_model("regnetx_002", pretrained=False)
    relus = sum(isinstance(m, torch.nn.ReLU) for m in default.modules())
    assert relus > 0 and summary["model_adaptation"]["replaced"] == {"act_layer": relus}


@pytest.mark.slow
def test_plugin_module_class_in_a_sweep(workdir: Path, fashion_root: Path, plugin_site: Path) -> None:
    proc = cli(["sweep", "activation=soft_clip", "activation.limit=1,4", *TINY, f"dataset.root={fashion_root}"], workdir,
               plugin_site)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 completed, 0 failed" in proc.stdout
    runs = list(recorded(workdir).values())
    assert sorted(r["activation_params"]["limit"] for r in runs) == [1.0, 4.0]
    assert all(r["activation_target"] == "serf_acts:SoftClip" and r["final"]["top1"] > 0.6 for r in runs)
    assert sorted(r[0] for r in run_rows(workdir)) == ["soft_clip serf_acts:SoftClip (limit=1)",
                                                   "soft_clip serf_acts:SoftClip (limit=4)"]  # fmt: skip


@pytest.mark.slow
def test_custom_targets_from_the_current_directory_train_and_are_recorded(workdir: Path, fashion_root: Path) -> None:
    common = [*TINY, f"dataset.root={fashion_root}"]
    fn = cli(["train", "activation=custom", "activation.target=my_acts:serf", "+activation.alpha=0.5", *common], workdir)
    assert fn.returncode == 0, fn.stderr
    module = cli(["train", "activation=custom", "activation.target=my_acts:ScaledTanh", "+activation.scale=2", *common],
                 workdir)  # fmt: skip
    assert module.returncode == 0, module.stderr
    by_target = {s["activation_target"]: s for s in recorded(workdir).values()}
    assert set(by_target) == {"my_acts:serf", "my_acts:ScaledTanh"}
    assert by_target["my_acts:serf"]["activation_params"] == {"alpha": 0.5}
    assert by_target["my_acts:ScaledTanh"]["activation_params"] == {"scale": 2.0}
    assert all(s["activation"] == "custom" and s["activation_origin"] == "custom" for s in by_target.values())
    assert all(s["final"]["top1"] > 0.65 for s in by_target.values()), [s["final"] for s in by_target.values()]
    assert sorted(r[0] for r in run_rows(workdir)) == ["custom my_acts:ScaledTanh (scale=2)", "custom my_acts:serf (alpha=0.5)"]


@pytest.mark.slow
def test_the_trained_model_computes_the_custom_target(workdir: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What was computed, not what was recorded: the trained model's activation modules give the
    target's values (written out here), and its losses are not ReLU's for the same seed."""
    import torch

    from mila_bench.activations import Activation
    from mila_bench.config import compose
    from mila_bench.pipeline import train

    monkeypatch.chdir(workdir)  # custom targets import from the current directory
    common = [f"dataset.root={fashion_root}", "dataset.train_subset=500", "trainer.epochs=1", "device=cpu", "seed=0",
              "trainer.progress=false"]  # fmt: skip
    fn = train(compose(["activation=custom", "activation.target=my_acts:serf", "+activation.alpha=0.5", *common]))
    module = train(compose(["activation=custom", "activation.target=my_acts:ScaledTanh", "+activation.scale=2", *common]))
    relu = train(compose(["activation=relu", *common]))
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    serf = x * torch.special.erf(0.5 * torch.log1p(torch.exp(x)))  # x·erf(α·softplus(x)), α = 0.5
    [act] = [m for m in fn.model.modules() if isinstance(m, Activation)]
    torch.testing.assert_close(act(x.float()).double(), serf, rtol=1e-5, atol=1e-6)
    [act] = [m for m in module.model.modules() if isinstance(m, Activation)]
    [scale] = [p for name, p in module.model.named_parameters() if name.endswith("scale")]
    assert scale.item() != 2.0  # the class's own parameter was trained with the network
    torch.testing.assert_close(act(x.float()).double(), scale.item() * torch.tanh(x), rtol=1e-5, atol=1e-6)
    losses = {r.summary.activation_target or "relu": r.history[0].train_loss for r in (fn, module, relu)}
    assert len(set(losses.values())) == 3, losses  # same seed, same batches: only the activation differs


BROKEN_TARGETS = [
    ("my_acts", {}, "activation.target='my_acts' is not MODULE:NAME"),
    ("no_such_module:f", {}, "cannot be imported: ModuleNotFoundError: no module 'no_such_module' in the current directory"),
    ("my_acts:nothing", {}, "cannot be imported: AttributeError: 'my_acts' has no attribute 'nothing'"),
    ("my_acts:CONSTANT", {}, "is a float, not a function f(x, **params) or an nn.Module class"),
    ("my_acts:wrong_shape", {}, "returned shape (3, 5) for a float32 tensor of shape (2, 3, 5)"),
    ("my_acts:to_double", {}, "returned torch.float64"),
    ("my_acts:detached", {}, "does not depend differentiably on x"),
    ("my_acts:explodes", {}, "returned nan or inf"),
    ("my_acts:numpy_out", {}, "returned a ndarray, not a tensor"),
    ("my_acts:serf", {"gamma": 1.0}, "raised TypeError: serf() got an unexpected keyword argument 'gamma'"),
    (None, {}, "activation=custom needs activation.target=MODULE:NAME"),
]


@pytest.mark.parametrize(("target", "params", "expected"), BROKEN_TARGETS, ids=[str(t) for t, _, _ in BROKEN_TARGETS])
def test_a_broken_custom_target_fails_the_check_naming_it(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, target: str | None, params: dict, expected: str
) -> None:
    from mila_bench.activations import activation_factory
    from mila_bench.errors import UsageError

    monkeypatch.chdir(workdir)
    with pytest.raises(UsageError) as err:
        activation_factory({"name": "custom", "target": target, **params})
    assert expected in str(err.value) and (target is None or repr(target) in str(err.value)), str(err.value)


@pytest.mark.parametrize("target", ["my_acts", "no_such_module:f", "my_acts:wrong_shape"])
def test_a_broken_custom_target_is_one_line_and_nothing_is_written(workdir: Path, target: str) -> None:
    before = sorted(p.name for p in workdir.iterdir())
    proc = cli(["train", "activation=custom", f"activation.target={target}", "device=cpu"], workdir)
    assert proc.returncode == 2
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    expected = next(e for t, _, e in BROKEN_TARGETS if t == target)
    assert line.startswith("mila-bench: error: ") and expected in line, line
    assert sorted(p.name for p in workdir.iterdir() if p.name != "__pycache__") == before
    assert (workdir / "Results.md").read_text() == INTRO


@pytest.mark.slow
def test_a_plugin_that_fails_the_check_is_one_line(workdir: Path, fashion_root: Path, plugin_site: Path) -> None:
    proc = cli(["sweep", "activation=unstable,relu", "device=cpu", f"dataset.root={fashion_root}"], workdir, plugin_site)
    assert proc.returncode == 2
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert "activation plugin 'unstable' (serf_acts:unstable) failed its check on a small tensor: it returned nan or inf" in line
    plot = cli(["plot", "function", "-a", "unstable", "--out", "figs"], workdir, plugin_site)
    assert plot.returncode == 2
    [line] = [l for l in plot.stderr.splitlines() if l.strip()]
    assert "activation plugin 'unstable' (serf_acts:unstable) failed its check on a small tensor" in line
    assert sorted(p.name for p in workdir.iterdir()) == ["Results.md", "my_acts.py"]


@pytest.mark.slow
def test_a_plugin_clashing_with_a_built_in_is_one_line(workdir: Path, clash_site: Path) -> None:
    for args in (["train", "activation=mila", "device=cpu"], ["list"]):
        proc = cli(args, workdir, clash_site)
        assert proc.returncode == 2, proc.stdout
        [line] = [l for l in proc.stderr.splitlines() if l.strip()]
        assert line == (
            "mila-bench: error: activation plugin 'relu' (clash_acts:relu from clash-acts 0.1.0) clashes with the "
            'built-in activation \'relu\'; rename it in that package\'s [project.entry-points."mila_bench.activations"]'
        )
    assert sorted(p.name for p in workdir.iterdir()) == ["Results.md", "my_acts.py"]
