"""Help, ``list`` and bad input answer without importing torch (or torchvision, or a tracker's package).

The real CLI runs in a subprocess whose wrapper reports, at exit, which of them got imported;
each bad input must exit non-zero with one line naming the bad value and write nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MARK = "HEAVY-IMPORTED="
WRAPPER = (
    "import sys, atexit; "
    f"atexit.register(lambda: print('{MARK}' + ','.join(m for m in ('torch', 'torchvision', 'mlflow', 'wandb', 'tensorboard') if m in sys.modules), "
    "file=sys.stderr)); "
    "sys.argv = ['mila-bench', *sys.argv[1:]]; "
    "from mila_bench.cli.app import main; main()"
)


def cli(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, list[str], list[str]]:
    """The finished process, its stderr lines without the wrapper's, and the heavy modules it imported."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    marks = [line for line in lines if line.startswith(MARK)]
    assert marks, proc.stderr  # the wrapper always reports, unless the process died
    return proc, [line for line in lines if not line.startswith(MARK)], [m for m in marks[-1][len(MARK):].split(",") if m]


@pytest.mark.parametrize(
    "args", [["--help"], ["train", "--help"], ["sweep", "--help"], ["reproduce", "--help"], ["report", "--help"],
             ["plot", "--help"], ["plot", "noise", "--help"], ["reproduce", "--list"], ["export", "--help"], ["suite"]],
    ids=" ".join,
)  # fmt: skip
def test_help_answers_without_torch(tmp_path: Path, args: list[str]) -> None:
    proc, _, heavy = cli(args, tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
    assert heavy == []


def test_list_prints_every_activation_with_its_defaults_without_torch(tmp_path: Path) -> None:
    from mila_bench.activations import available, find_entry

    proc, _, heavy = cli(["list"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert heavy == []
    assert "logger: mlflow, none, tensorboard, wandb" in proc.stdout.splitlines()
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert set(available()) <= set(lines)
    for name in available():
        for key, value in find_entry(name).defaults.items():
            assert f"{key}={value:g}" in lines[name], lines[name]


BAD_INPUT = [
    ("unknown activation", ["train", "activation=nope"], "unknown activation 'nope'"),
    ("unknown model", ["train", "model=nope"], "unknown model 'nope'"),
    ("unknown dataset", ["train", "dataset=nope"], "unknown dataset 'nope'"),
    ("unknown optimizer", ["train", "optimizer=nope"], "unknown optimizer 'nope'"),
    ("unknown scheduler", ["train", "scheduler=nope"], "unknown scheduler 'nope'"),
    ("epochs < 1", ["train", "trainer.epochs=-1"], "trainer.epochs=-1"),
    ("lr <= 0", ["train", "optimizer.lr=-0.1"], "optimizer.lr=-0.1"),
    ("not a ResNet depth", ["train", "model=resnet", "model.depth=21"], "model.depth=21"),
    ("negative shift", ["train", "dataset=cifar10", "dataset.shift=-1"], "dataset.shift=-1"),
    ("plateau factor", ["train", "scheduler=recipe", "scheduler.plateau.factor=2"], "scheduler.plateau.factor=2"),
    ("compile mode", ["train", "trainer.compile=fast"], "trainer.compile='fast'"),
    ("kernel choice", ["train", "activation.impl=fast"], "activation.impl='fast'"),
    ("beta not finite", ["train", "activation.beta=nan"], "activation.beta=nan"),
    ("unknown parameter", ["train", "activation=relu", "+activation.gamma=1"], "no parameter 'gamma'"),
    ("unknown key", ["train", "trainer.epoch=3"], "unknown config key 'trainer.epoch'"),
    ("key without its group", ["train", "beta=0.5"], "unknown config key 'beta': the composed config has no such key; did you mean activation.beta"),
    ("epochs without trainer.", ["train", "epochs=3"], "did you mean trainer.epochs"),
    ("key of the selected model", ["train", "model=timm", "arch=resnet18"], "did you mean model.arch?"),
    ("unknown timm model", ["train", "model=timm", "model.arch=resnet1888"], "model.arch='resnet1888' is not a timm model; closest: resnet18,"),
    ("custom target not found", ["train", "activation=custom", "activation.target=nosuch:fn"], "no module 'nosuch'"),
    ("CIFAR root missing", ["train", "dataset=cifar10", "dataset.root=nodata", "dataset.download=false"],
     "CIFAR-10 not found in nodata (no such folder) and download is disabled"),
    ("malformed override", ["train", "activation=["], "malformed override"),
    ("bad device", ["train", "device=tpu"], "device='tpu'"),
    ("unknown logger", ["train", "logger=nope"], "unknown logger 'nope'; allowed: mlflow, none, tensorboard, wandb"),
    ("unknown logger in a list", ["train", "logger=[mlflow,nope]"], "unknown logger 'nope'"),
    ("bad wandb mode", ["train", "logger=wandb", "logger.wandb.mode=x"], "logger.wandb.mode='x'"),
    ("export unknown tracker", ["export", "nope"], "unknown tracker 'nope'; allowed: mlflow, tensorboard, wandb"),
    ("bad flag", ["train", "--bogus"], "--bogus"),
    ("sweep unknown option", ["sweep", "activation=mila,nope"], "unknown activation 'nope'"),
    ("sweep bad number", ["sweep", "trainer.batch_size=64,0"], "trainer.batch_size=0"),
    ("unknown published table", ["reproduce", "cifar10-resnet21-v1"], "unknown published table 'cifar10-resnet21-v1'"),
    ("--only not in the table", ["reproduce", "cifar10-resnet20-v1", "--only", "nope"], "--only 'nope'"),
    ("suite given a table", ["suite", "cifar10-resnet20-v1"], "mila-bench reproduce cifar10-resnet20-v1"),
    ("reproduce given a suite", ["reproduce", "cpu_small"], "mila-bench suite cpu_small"),
    ("train given a suite", ["train", "experiment=cpu_small"], "mila-bench suite cpu_small"),
    ("report unknown baseline", ["report", "--baseline", "nope"], "unknown baseline activation 'nope'"),
    ("plot unknown activation", ["plot", "function", "-a", "nope"], "unknown activation 'nope'"),
    ("plot unknown parameter", ["plot", "function", "-a", "mila:gamma=1"], "no parameter 'gamma'"),
    ("plot training override", ["plot", "noise", "trainer.epochs=0"], "trainer.epochs=0"),
    ("plot depth", ["plot", "depth", "--depth", "0"], "--depth=0"),
]


@pytest.mark.parametrize(("args", "expected"), [pytest.param(a, e, id=n) for n, a, e in BAD_INPUT])
def test_bad_input_is_one_line_without_torch(tmp_path: Path, args: list[str], expected: str) -> None:
    proc, lines, heavy = cli(args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert heavy == [], f"{' '.join(args)} imported {heavy} before answering"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_each_builtin_function_takes_exactly_its_registry_parameters() -> None:
    """The registry is the one place a default is written: a definition may neither add nor default one."""
    from mila_bench.activations.registry import BUILTINS, builtin_function

    for name, entry in BUILTINS.items():
        builtin_function(entry.name)  # raises TypeError on a mismatch


def test_every_loader_has_a_checked_name() -> None:
    from mila_bench.data.checks import DATASETS
    from mila_bench.data.load import LOADERS

    assert set(LOADERS) == set(DATASETS)


def offline() -> bool:
    """Whether torchvision's download hosts do not resolve here (the tests never download)."""
    import socket

    from mila_bench.data.files import HOSTS

    try:
        for host in set(HOSTS.values()):
            socket.getaddrinfo(host, 443)
    except OSError:
        return True
    return False


@pytest.mark.skipif(not offline(), reason="online: the download would be tried")
@pytest.mark.parametrize("dataset", ["cifar10", "fashion_mnist"])
def test_a_misspelt_root_offline_is_one_line_without_torch_and_leaves_no_folder(tmp_path: Path, dataset: str) -> None:
    proc, lines, heavy = cli(["train", f"dataset={dataset}", "dataset.root=data/cifra", "++dataset.system_dir=null"], tmp_path)
    assert proc.returncode == 2 and heavy == [], proc.stderr
    assert len(lines) == 1 and "not found in data/cifra (no such folder) and the download would fail" in lines[0], lines
    assert "dataset.root=DIR" in lines[0] and "MILA_BENCH_DATA=DIR" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    any(Path(node).exists() for node in ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")),
    reason="a GPU driver is present: torch decides",
)
def test_cuda_without_a_gpu_driver_is_one_line_without_torch(tmp_path: Path) -> None:
    proc, lines, heavy = cli(["train", "device=cuda"], tmp_path)
    assert proc.returncode == 2 and heavy == [], proc.stderr
    assert lines == ["mila-bench: error: device='cuda' but CUDA is not available on this machine; allowed here: auto, cpu"]
    assert list(tmp_path.iterdir()) == []
