"""Side-by-side speed of the original demo's pipeline and mila-bench's, in one process.

The original pipeline is re-written here from its description (../shared/reference/
original_demo.md): torchvision FashionMNIST with a per-sample ``ToTensor`` transform, a
``DataLoader(batch_size=64, shuffle=True)``, the 784-256-128-64-10 MLP with Mila after the
first layer, NLLLoss, Adam(lr=0.003), 5 epochs. mila-bench runs the same model and settings
through ``mila_bench.pipeline.train`` (tensors in memory, per-epoch test evaluation, run
record written), seeded per round. Both read the same local copy of Fashion-MNIST. Each side runs
in a child process of its own (this script with --side), so each one's peak memory (maxrss of
that process, torch's import included) is measured apart; torch is imported before either
clock starts. This machine is noisy, so rounds alternate which side goes first and the ratios
are of medians.
Usage: python benchmarks/demo_speed.py [--epochs 5] [--repeats 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn


class OriginalMLP(nn.Module):
    """The original's class model: Mila after fc1, ReLU after fc2 and fc3, log_softmax."""

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 256), nn.Linear(256, 128)
        self.fc3, self.fc4 = nn.Linear(128, 64), nn.Linear(64, 10)
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.shape[0], -1)
        h = self.fc1(x)
        x = h * torch.tanh(F.softplus(h + self.beta))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return F.log_softmax(self.fc4(x), dim=1)


def original_pipeline(root: str, epochs: int, beta: float) -> tuple[float, float]:
    """Train as the original demo did, then evaluate top-1 on the test split."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    start = time.perf_counter()
    transform = transforms.ToTensor()
    train = DataLoader(datasets.FashionMNIST(root, train=True, transform=transform), batch_size=64, shuffle=True)
    test = DataLoader(datasets.FashionMNIST(root, train=False, transform=transform), batch_size=64, shuffle=True)
    model = OriginalMLP(beta)
    criterion = nn.NLLLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    for _ in range(epochs):
        running = 0.0
        for images, labels in train:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running += loss.item()  # the original summed and printed this each epoch
    correct = 0
    model.eval()
    with torch.no_grad():
        for images, labels in test:
            correct += (model(images).argmax(1) == labels).sum().item()
    return time.perf_counter() - start, correct / len(test.dataset)


def ours(root: str, epochs: int, beta: float, results: str) -> tuple[float, float]:
    from mila_bench.config import compose
    from mila_bench.pipeline import train

    start = time.perf_counter()
    cfg = compose(
        [
            "activation=mila", f"activation.beta={beta}", "model.initialization=class",
            f"trainer.epochs={epochs}", f"dataset.root={root}", "device=cpu", "trainer.progress=false",
            f"results.dir={results}/results", f"results.markdown={results}/Results.md",
        ]
    )  # fmt: skip
    result = train(cfg)
    return time.perf_counter() - start, result.history[-1].top1


def run_side(side: str, root: str, epochs: int, beta: float, results: str, seed: int) -> dict[str, float]:
    """One side in a fresh child process: its seconds, test top-1 and peak resident memory (MB)."""
    cmd = [sys.executable, __file__, "--side", side, "--data-dir", root, "--epochs", str(epochs),
           "--beta", str(beta), "--results", results, "--seed", str(seed)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def child(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    if args.side == "original":
        seconds, acc = original_pipeline(args.data_dir, args.epochs, args.beta)
    else:
        seconds, acc = ours(args.data_dir, args.epochs, args.beta, args.results)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    print(json.dumps({"seconds": seconds, "top1": acc, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--beta", type=float, default=-0.25)
    parser.add_argument("--repeats", type=int, default=3, help="rounds, alternating which side goes first")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST root (default: mila-bench's resolution)")
    parser.add_argument("--side", choices=["original", "ours"], help=argparse.SUPPRESS)  # one side, in a child
    parser.add_argument("--results", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return child(args)

    from mila_bench.config import compose
    from mila_bench.data.load import load_dataset
    from mila_bench.data.files import data_root

    dataset_cfg = compose([f"dataset.root={args.data_dir}"] if args.data_dir else []).dataset
    load_dataset(dataset_cfg)  # put the files in place (decompressed, cached) before either side runs
    root = str(data_root(dataset_cfg))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs, batch 64, "
          f"Mila beta={args.beta}, {args.repeats} rounds, each side in its own process")
    runs: dict[str, list[dict[str, float]]] = {"original": [], "ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            order = ["original", "ours"] if round_ % 2 == 0 else ["ours", "original"]
            for side in order:
                run = run_side(side, root, args.epochs, args.beta, tmp, seed=round_)
                runs[side].append(run)
                print(f"round {round_ + 1} {side:8s}: {run['seconds']:6.2f} s, test top-1 {100 * run['top1']:.2f}%, "
                      f"peak memory {run['peak_mb']:6.0f} MB")
    median = lambda side, key: statistics.median(r[key] for r in runs[side])  # noqa: E731
    mean = lambda side, key: statistics.mean(r[key] for r in runs[side])  # noqa: E731
    t_orig, t_ours = median("original", "seconds"), median("ours", "seconds")
    m_orig, m_ours = median("original", "peak_mb"), median("ours", "peak_mb")
    a_orig, a_ours = mean("original", "top1"), mean("ours", "top1")
    print(f"original pipeline : median {t_orig:7.2f} s   mean test top-1 {100 * a_orig:.2f}%   median peak {m_orig:6.0f} MB")
    print(f"mila-bench        : median {t_ours:7.2f} s   mean test top-1 {100 * a_ours:.2f}%   median peak {m_ours:6.0f} MB")
    print(f"ratio ours/original (medians): {t_ours / t_orig:.3f}   (goal <= 0.35)")
    print(f"top-1 difference (means)     : {100 * (a_ours - a_orig):+.2f} points (goal >= -1.00)")
    print(f"peak memory ours/original    : {m_ours / m_orig:.3f}   (goal <= 1.00)")


if __name__ == "__main__":
    main()
