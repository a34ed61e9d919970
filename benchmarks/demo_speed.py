"""Side-by-side speed of the original demo's pipeline and mila-bench's, in one process.

The original pipeline is re-written here from its description (../shared/reference/
original_demo.md): torchvision FashionMNIST with a per-sample ``ToTensor`` transform, a
``DataLoader(batch_size=64, shuffle=True)``, the 784-256-128-64-10 MLP with Mila after the
first layer, NLLLoss, Adam(lr=0.003), 5 epochs. mila-bench runs the same model and settings
through ``mila_bench.pipeline.train`` (tensors in memory, per-epoch test evaluation, run
record written), seeded per round. Both read the same local copy of Fashion-MNIST; torch is imported before
either clock starts. This machine is noisy, so rounds alternate which side goes
first and the ratio is of medians.
Usage: python benchmarks/demo_speed.py [--epochs 5] [--repeats 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--beta", type=float, default=-0.25)
    parser.add_argument("--repeats", type=int, default=3, help="rounds, alternating which side goes first")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST root (default: mila-bench's resolution)")
    args = parser.parse_args()

    from mila_bench.config import compose
    from mila_bench.data import data_root, load_dataset

    dataset_cfg = compose([f"dataset.root={args.data_dir}"] if args.data_dir else []).dataset
    load_dataset(dataset_cfg)  # put the files in place (decompressed, cached) before either clock starts
    root = str(data_root(dataset_cfg))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs, batch 64, "
          f"Mila beta={args.beta}, {args.repeats} rounds")
    times: dict[str, list[float]] = {"original": [], "ours": []}
    accs: dict[str, list[float]] = {"original": [], "ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        sides = {
            "original": lambda: original_pipeline(root, args.epochs, args.beta),
            "ours": lambda: ours(root, args.epochs, args.beta, tmp),
        }
        for round_ in range(args.repeats):
            order = ["original", "ours"] if round_ % 2 == 0 else ["ours", "original"]
            for side in order:
                torch.manual_seed(round_)
                seconds, acc = sides[side]()
                times[side].append(seconds)
                accs[side].append(acc)
                print(f"round {round_ + 1} {side:8s}: {seconds:6.2f} s, test top-1 {100 * acc:.2f}%")
    t_orig, t_ours = statistics.median(times["original"]), statistics.median(times["ours"])
    a_orig, a_ours = statistics.mean(accs["original"]), statistics.mean(accs["ours"])
    print(f"original pipeline : median {t_orig:7.2f} s   mean test top-1 {100 * a_orig:.2f}%")
    print(f"mila-bench        : median {t_ours:7.2f} s   mean test top-1 {100 * a_ours:.2f}%")
    print(f"ratio ours/original (medians): {t_ours / t_orig:.3f}   (goal <= 0.35)")
    print(f"top-1 difference (means)     : {100 * (a_ours - a_orig):+.2f} points (goal >= -1.00)")


if __name__ == "__main__":
    main()
