"""How long the CLI takes to answer when it has nothing to train, beside ``import torch``.

``--help``, ``list`` and bad input should answer before torch is imported (torch alone costs
seconds on a cold, shared machine). Each command runs as a fresh subprocess, several times in
interleaved rounds (a passing slowdown hits all alike), and the median is printed with its ratio
to ``python -c "import torch"`` and whether the command imported torch (a wrapper prints
``'torch' in sys.modules`` at exit). The error paths a newcomer meets first are among them: a
key without its group, a misspelt timm name, a custom target that does not exist, CUDA on a
machine without it, a missing CIFAR root, ``runs`` filters no run can match.
Usage: python benchmarks/startup.py [--repeats 5] [--source DIR (another checkout, e.g. the commit before)]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARK = "STARTUP-TORCH-IMPORTED="
#: Runs the real CLI with ``args`` and reports, at exit, whether torch got imported.
WRAPPER = (
    "import sys, atexit; "
    f"atexit.register(lambda: print('{MARK}' + str('torch' in sys.modules), file=sys.stderr)); "
    "sys.argv = ['mila-bench', *sys.argv[1:]]; "
    "exec('try:\\n from mila_bench.cli.app import main\\nexcept ModuleNotFoundError:\\n from mila_bench.cli import main'); "
    "main()"
)  # checkouts from before the cli/ package had mila_bench.cli:main
#: A dataset root that does not exist (removed after every run: older checkouts leave an empty one behind).
MISSING_ROOT = Path(tempfile.gettempdir()) / "mila-bench-startup-no-such-root"
COMMANDS: dict[str, list[str] | None] = {
    "mila-bench --help": ["--help"],
    "mila-bench list": ["list"],
    "mila-bench suite (the suites listed)": ["suite"],
    "mila-bench reproduce --list": ["reproduce", "--list"],
    "mila-bench reproduce cpu_small (a suite's name)": ["reproduce", "cpu_small"],
    "mila-bench train activation=nope": ["train", "activation=nope"],
    "mila-bench train trainer.epochs=-1": ["train", "trainer.epochs=-1"],
    "mila-bench train beta=0.5 (a key without its group)": ["train", "beta=0.5"],
    "mila-bench train model=timm model.arch=resnet1888": ["train", "model=timm", "model.arch=resnet1888"],
    "mila-bench train activation=custom activation.target=nosuch:fn": ["train", "activation=custom", "activation.target=nosuch:fn"],
    "mila-bench train device=cuda (without CUDA, if this machine has none)": ["train", "device=cuda"],
    "mila-bench train dataset=cifar10 dataset.root=MISSING dataset.download=false":
        ["train", "dataset=cifar10", f"dataset.root={MISSING_ROOT}", "dataset.download=false"],
    "mila-bench train dataset=cifar10 dataset.root=MISSING (download on; offline here?)":
        ["train", "dataset=cifar10", f"dataset.root={MISSING_ROOT}"],
    "mila-bench runs activation=mila (the committed records)": ["runs", "activation=mila"],
    "mila-bench runs top1=abc": ["runs", "top1=abc"],
    "mila-bench runs activation=mlia": ["runs", "activation=mlia"],
    'python -c "import torch"': None,
}


def run_once(args: list[str] | None, env: dict[str, str], cwd: Path) -> tuple[float, bool | None]:
    """Seconds for one fresh process, and whether it imported torch (None: not a CLI command)."""
    cmd = [sys.executable, "-c", "import torch"] if args is None else [sys.executable, "-c", WRAPPER, *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    shutil.rmtree(MISSING_ROOT, ignore_errors=True)
    if args is None:
        return seconds, None
    marks = [line for line in proc.stderr.splitlines() if line.startswith(MARK)]
    if not marks:
        raise SystemExit(f"{' '.join(args)} did not finish normally:\n{proc.stderr}")
    return seconds, marks[-1] == MARK + "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (median reported)")
    parser.add_argument("--source", type=Path, default=None, help="run the mila_bench of this checkout instead")
    opts = parser.parse_args()
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    cwd = Path.cwd()
    if opts.source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(opts.source.resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cwd = opts.source.resolve()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    imported: dict[str, set[bool | None]] = {name: set() for name in COMMANDS}
    for name, args in COMMANDS.items():  # warm-up: the first run of each pays for cold file caches
        run_once(args, env, cwd)
    for _ in range(opts.repeats):
        for name, args in COMMANDS.items():
            seconds, torch_imported = run_once(args, env, cwd)
            times[name].append(seconds)
            imported[name].add(torch_imported)
    torch_time = statistics.median(times['python -c "import torch"'])
    width = max(map(len, COMMANDS))
    print(f"{'command':<{width}}  median (s)  × import torch  imports torch")
    for name in COMMANDS:
        median = statistics.median(times[name])
        flags = imported[name] - {None}
        said = "—" if not flags else ("yes" if flags == {True} else "no" if flags == {False} else "sometimes")
        print(f"{name:<{width}}  {median:10.2f}  {median / torch_time:14.2f}  {said}")
    print(f"({opts.repeats} runs each after one warm-up, interleaved; {sys.executable})")


if __name__ == "__main__":
    main()
