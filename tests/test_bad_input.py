"""One matrix of bad input over every command: one clear line, exit 2, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from mila_bench.data.fashion_mnist import FASHION_MNIST_FILES

TORN_RESULTS = """# Results

## fashion_mnist · mlp

| Activation | β | Initialization | Seed | Epochs | Top-1 (%) | Top-3 (%) | Top-5 (%) | Test loss | Train time (s) | Run |
|:--|:--|:--|:--|:--|:--|:--|:--|:--|:--|:--|
| mila | -0.25 | class | 0 | 5 | 87.17 | 98.76 |
"""


def snapshot(cwd: Path) -> list[object]:
    files = sorted(p for p in cwd.rglob("*") if p.is_file() and "data" not in p.relative_to(cwd).parts[:1])
    return [(str(p.relative_to(cwd)), p.read_bytes()) for p in files]


def broken_roots(tmp: Path, fashion_root: Path) -> dict[str, Path]:
    """Data folders with one defect each: a truncated .gz (system copy) and a wrong magic number (root)."""
    system = tmp / "data" / "truncated_system"
    system.mkdir(parents=True)
    for name in FASHION_MNIST_FILES:
        shutil.copy(f"/usr/share/datasets/fashion-mnist/{name}.gz", system / f"{name}.gz")
    gz = system / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100])
    magic = tmp / "data" / "bad_magic"
    shutil.copytree(fashion_root / "FashionMNIST" / "raw", magic / "FashionMNIST" / "raw")
    labels = magic / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x00\x00" + labels.read_bytes()[4:])
    empty = tmp / "data" / "empty"
    empty.mkdir()
    return {"system": system, "magic": magic, "empty": empty}


def cases() -> list:
    train = ["train", "trainer.epochs=1", "dataset.train_subset=500"]
    rows = [
        ("unknown group option", [*train, "activation=nope"], "unknown activation 'nope'"),
        ("unknown key", [*train, "trainer.epoch=3"], "unknown config key 'trainer.epoch'"),
        ("wrong type", [*train, "trainer.batch_size=big"], "trainer.batch_size='big'"),
        ("beta not finite", [*train, "activation.beta=nan"], "activation.beta=nan is not a finite number"),
        ("epochs < 1", ["train", "trainer.epochs=0"], "trainer.epochs=0"),
        ("batch size < 1", [*train, "trainer.batch_size=0"], "trainer.batch_size=0"),
        ("lr <= 0", [*train, "optimizer.lr=-0.1"], "optimizer.lr=-0.1"),
        ("compile mode", [*train, "trainer.compile=fast"], "trainer.compile='fast' is not allowed; allowed: false, true, default, reduce-overhead"),
        ("subset too large", ["train", "dataset.train_subset=60001"], "dataset.train_subset=60001"),
        ("missing data", [*train, "dataset.root=data/nothing", "dataset.system_dir=data/empty", "dataset.download=false"], "Fashion-MNIST not found"),
        ("truncated gz", [*train, "dataset.root=data/fresh", "dataset.system_dir=data/truncated_system", "dataset.download=false"], "could not decompress"),
        ("wrong magic number", [*train, "dataset.root=data/bad_magic"], "could not read the Fashion-MNIST files"),
        ("unwritable results dir", [*train, "results.dir=Results.md/sub"], "is a file"),
        ("torn Results.md", [*train], "edited into a shape mila-bench cannot extend"),
        ("sweep bad value", ["sweep", "activation.beta=abc,0", "trainer.epochs=1"], "activation.beta='abc'"),
        ("sweep unknown option", ["sweep", "activation=mila,nope"], "unknown activation 'nope'"),
        ("reproduce unknown table", ["reproduce", "cifar10-resnet21-v1"], "unknown published table 'cifar10-resnet21-v1'"),
        ("report unknown baseline", ["report", "--baseline", "nope"], "unknown baseline activation 'nope'"),
        ("plot unknown activation", ["plot", "function", "-a", "nope"], "unknown activation 'nope'"),
        ("demo bad epochs", ["demo.py", "--epochs", "0"], "trainer.epochs=0"),
        ("demo bad activation", ["demo.py", "--activation", "nope"], "invalid choice: 'nope'"),
    ]
    if not torch.cuda.is_available():
        rows.append(("cuda without CUDA", [*train, "device=cuda"], "CUDA is not available"))
        rows.append(("cuda graph on cpu", [*train, "trainer.cuda_graph=true"],
                     "trainer.cuda_graph=true replays CUDA graphs, but this run's device is cpu; allowed there: trainer.cuda_graph=false"))
    rows.append(("cuda graph inside compile's graphs", [*train, "trainer.cuda_graph=true", "trainer.compile=reduce-overhead"],
                 "trainer.compile=reduce-overhead replays CUDA graphs of its own inside it; allowed with "
                 "trainer.cuda_graph=true: trainer.compile=false, true, default, max-autotune-no-cudagraphs"))
    return [pytest.param(args, expected, id=name) for name, args, expected in rows]


@pytest.mark.parametrize(("args", "expected"), cases())
@pytest.mark.slow
def test_bad_input_matrix(tmp_path: Path, fashion_root: Path, args: list[str], expected: str) -> None:
    broken_roots(tmp_path, fashion_root)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "keep.txt").write_text("an earlier run's file\n")
    (tmp_path / "Results.md").write_text(TORN_RESULTS if "torn" in expected or "cannot extend" in expected else "# Results\n")
    if args[0] == "train" and not any(a.startswith("dataset.root=") for a in args):
        args = [*args, f"dataset.root={fashion_root}"]
    before = snapshot(tmp_path)
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0] and "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before
