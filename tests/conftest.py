"""Shared fixtures and helpers: one real Fashion-MNIST root per test session (resolved the way
users get it), the committed record as git tracks it, a working directory with a hand-written
Results.md, the CLI in a subprocess, and readers of what a run leaves behind (summary.json,
Results.md rows and tables)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INTRO = "# Results\n\nhand-written intro\n"


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root filled by mila-bench's own resolution (Debian copy, else download)."""
    from mila_bench.config import compose
    from mila_bench.data.load import load_dataset

    root = tmp_path_factory.mktemp("fashion_root")
    load_dataset(compose([f"dataset.root={root}"]).dataset)
    return root


@pytest.fixture(scope="session")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``results/`` and ``Results.md`` as git tracks them (the index), for the tests
    that check the committed record: the working tree's copies also hold whatever the user ran
    (``make demo``, the README's tour), which is theirs, not the project's record."""
    out = tmp_path_factory.mktemp("committed")
    files = subprocess.run(["git", "ls-files", "-z", "--", "results", "Results.md"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["git", "checkout-index", "-z", "--stdin", f"--prefix={out}/"], cwd=ROOT, input=files.stdout, check=True)
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory whose Results.md has a hand-written intro, so 'kept' and 'unchanged' are real checks."""
    (tmp_path / "Results.md").write_text(INTRO)
    return tmp_path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: HYDRA_FULL_ERROR off (its tracebacks are not what users see)."""
    return {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, **extra}


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``mila-bench`` (or ``demo.py`` when args[0] ends in .py) in a subprocess."""
    if args and args[0].endswith(".py"):
        cmd = [sys.executable, str(ROOT / args[0]), *args[1:]]
    else:
        cmd = [sys.executable, "-m", "mila_bench", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=cli_env())


def snapshot(cwd: Path) -> list[tuple[str, bytes | None]]:
    """Every path under ``cwd``, folders included, with each file's bytes: equal snapshots mean nothing was written."""
    return [(str(p.relative_to(cwd)), p.read_bytes() if p.is_file() else None) for p in sorted(cwd.rglob("*"))]


def recorded(cwd: Path) -> dict[str, dict]:
    """summary.json of every run folder under ``cwd/results``, by folder (run id)."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((cwd / "results").glob("*/summary.json"))}


def run_rows(cwd: Path, section: str = "-fashion_mnist-mlp-") -> list[list[str]]:
    """Cells of the per-run rows of ``cwd/Results.md`` whose run id contains ``section``."""
    lines = (cwd / "Results.md").read_text().splitlines()
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if section in line]


def markdown_table(text: str, heading: str) -> list[dict[str, str]]:
    """The first table under ``heading`` as dicts (header → cell)."""
    lines = text.splitlines()
    at = lines.index(heading)
    while not lines[at].startswith("|"):
        at += 1
    rows = []
    while at < len(lines) and lines[at].startswith("|"):
        rows.append([c.strip() for c in lines[at].strip().strip("|").split("|")])
        at += 1
    return [dict(zip(rows[0], r)) for r in rows[2:]]


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny CIFAR-10 and CIFAR-100 in their real on-disk formats (see cifar_files.py); load with dataset.verify=false."""
    from cifar_files import write_cifar10, write_cifar100

    root = tmp_path_factory.mktemp("cifar_root")
    write_cifar10(root)
    write_cifar100(root)
    return root
