"""Training speed on CIFAR: mila-bench's tensor pipeline vs a torchvision DataLoader pipeline.

Both sides train the same ResNet-20 v1 (same activation, Adam 1e-3, batch 32) on the same
images and report images/second of training (forward, backward, optimizer step, data):

- torchvision: ``CIFAR10`` with per-sample ``RandomCrop(32, padding=4)``,
  ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``, through a shuffling ``DataLoader``
  (``--workers`` processes), each batch copied to the device;
- mila-bench: ``mila_bench.training.engine.fit`` on the tensors ``load_dataset`` holds (on the device),
  with its whole-batch shift/flip augmentation; its epoch time excludes the test evaluation.

Without a real CIFAR-10 (``--data-dir``), random images of CIFAR's shape are written in
CIFAR-10's on-disk format to a temporary folder and read with ``dataset.verify=false``.
``--batches N`` times N batches per epoch instead of all 1563. Rounds alternate which side
goes first; medians are reported. The data pipelines are also timed alone (augmented
batches delivered on the device, no model), since on CPU the model's arithmetic dominates
a training step. On CUDA (when available) it also prints the full-epoch
time and the resulting estimate for the recipe's 200 epochs.
Usage: python benchmarks/cifar_speed.py [--batches 50] [--repeats 3] [--workers 0] [--threads N]
       [--device cpu|cuda|all] [--amp] [--activation relu] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BATCH = 32
TRAIN_IMAGES = 50000


def write_random_cifar10(root: Path, train: int = TRAIN_IMAGES, test: int = 1000, seed: int = 0) -> None:
    """Random uint8 images and labels in CIFAR-10's files (5 pickled batches, test batch, meta)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def dump(name: str, n: int) -> None:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))

    for i, part in enumerate(np.array_split(np.arange(train), 5), 1):
        dump(f"data_batch_{i}", len(part))
    dump("test_batch", test)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))


def build(cfg, device: torch.device):
    """ResNet-20 v1 with the configured activation, and its Adam, exactly as a run builds them."""
    from mila_bench import activations
    from mila_bench.training.build import build_optimizer
    from mila_bench.models import build_model

    torch.manual_seed(0)
    model = build_model(cfg.model, activations.activation_factory(cfg.activation), (3, 32, 32), 10).to(device)
    return model, build_optimizer(cfg.optimizer, model.param_groups(cfg.optimizer.weight_decay))


def torchvision_epoch(cfg, root: str, batches: int, workers: int, device: torch.device) -> float:
    """Images/second of ``batches`` training steps fed by DataLoader + per-sample transforms."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms

    from mila_bench.data.cifar import torchvision_class
    from mila_bench.training.engine import loss_fn

    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])  # fmt: skip
    dataset = torchvision_class("cifar10", verify=False)(root, train=True, transform=transform)
    loader = DataLoader(
        Subset(dataset, range(batches * BATCH)), batch_size=BATCH, shuffle=True, num_workers=workers,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    model, optimizer = build(cfg, device)
    warm_up(model, optimizer, device)
    model.train()
    synchronize(device)
    start = time.perf_counter()
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return batches * BATCH / (time.perf_counter() - start)


def mila_bench_epoch(cfg, batches: int, device: torch.device) -> tuple[float, float]:
    """Images/second of ``batches`` steps of ``engine.fit`` (and that epoch's seconds)."""
    from mila_bench.data.load import load_dataset
    from mila_bench.training.engine import fit

    data = load_dataset(cfg.dataset)
    n = batches * BATCH
    data.train = data.train.head(n).to(device)
    data.test = data.test.head(BATCH).to(device)
    model, optimizer = build(cfg, device)
    warm_up(model, optimizer, device)
    [metrics] = fit(
        model, data, optimizer, epochs=1, batch_size=BATCH, eval_batch_size=1000,
        generator=torch.Generator().manual_seed(0), progress=False, amp=cfg.trainer.amp,
    )  # fmt: skip
    return n / metrics.seconds, metrics.seconds


def data_only(cfg, root: str, batches: int, workers: int, device: torch.device) -> tuple[float, float]:
    """Images/second of producing augmented batches on the device, without a model: (torchvision, ours)."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms

    from mila_bench.data.cifar import torchvision_class
    from mila_bench.data.load import load_dataset

    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])  # fmt: skip
    dataset = torchvision_class("cifar10", verify=False)(root, train=True, transform=transform)
    loader = DataLoader(Subset(dataset, range(batches * BATCH)), batch_size=BATCH, shuffle=True, num_workers=workers)
    synchronize(device)
    start = time.perf_counter()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
    synchronize(device)
    theirs = batches * BATCH / (time.perf_counter() - start)

    data = load_dataset(cfg.dataset)
    split = data.train.to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    synchronize(device)
    start = time.perf_counter()
    for i, (images, labels) in enumerate(split.batches(BATCH, torch.Generator().manual_seed(0))):
        images = data.augment(images, generator)
        if i + 1 == batches:
            break
    synchronize(device)
    return theirs, batches * BATCH / (time.perf_counter() - start)


def warm_up(model, optimizer, device: torch.device, steps: int = 3) -> None:
    """A few steps on throwaway data, so one-off kernel setup is not timed; weights restored after."""
    from mila_bench.training.engine import loss_fn

    state = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(torch.randn(BATCH, 3, 32, 32, device=device)), torch.zeros(BATCH, dtype=torch.long, device=device)).backward()
    optimizer.zero_grad(set_to_none=True)
    model.load_state_dict(state)
    synchronize(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=None, help="batches per timed epoch (default: a full epoch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes for the torchvision side")
    parser.add_argument("--device", default="all", help="cpu, cuda, or all (cpu, plus cuda when available)")
    parser.add_argument("--activation", default="relu", help="registry activation in both models")
    parser.add_argument("--data-dir", default=None, help="a folder with cifar-10-batches-py/ (default: random images)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast + channels_last on CUDA (mila-bench side)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for both sides (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from mila_bench.config import compose

    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])] if args.device == "all" else [args.device]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir
        if root is None:
            root = tmp
            write_random_cifar10(Path(tmp))
            print(f"no --data-dir: random images of CIFAR-10's shape written to {tmp} ({TRAIN_IMAGES} training images)")
        cfg = compose([
            "experiment=cifar10_resnet20_v1", f"activation={args.activation}", f"dataset.root={root}",
            f"dataset.verify={str(args.data_dir is not None).lower()}", f"trainer.amp={str(args.amp).lower()}",
        ])  # fmt: skip
        batches = args.batches or -(-TRAIN_IMAGES // BATCH)
        print(f"ResNet-20 v1 ({args.activation}), Adam 1e-3, batch {BATCH}, {batches} batches per timed epoch, "
              f"{args.repeats} rounds, torch threads {torch.get_num_threads()}, DataLoader workers {args.workers}")  # fmt: skip
        for name in devices:
            device = torch.device(name)
            ours, theirs, seconds = [], [], []
            for r in range(args.repeats):
                order = ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")
                for side in order:
                    if side == "ours":
                        rate, s = mila_bench_epoch(cfg, batches, device)
                        ours.append(rate)
                        seconds.append(s)
                    else:
                        theirs.append(torchvision_epoch(cfg, root, batches, args.workers, device))
            o, t = statistics.median(ours), statistics.median(theirs)
            print(f"[{name}] torchvision DataLoader + per-sample transforms: {t:8.1f} images/s  (rounds: "
                  + ", ".join(f"{x:.1f}" for x in theirs) + ")")
            print(f"[{name}] mila-bench tensors + batch augmentation:       {o:8.1f} images/s  (rounds: "
                  + ", ".join(f"{x:.1f}" for x in ours) + ")")
            print(f"[{name}] ratio mila-bench / torchvision (training): {o / t:.2f}x")
            theirs_data, ours_data = data_only(cfg, root, batches, args.workers, device)
            print(f"[{name}] data pipeline alone (augmented batches on the device, no model): torchvision "
                  f"{theirs_data:.0f} images/s, mila-bench {ours_data:.0f} images/s, ratio {ours_data / theirs_data:.1f}x")
            if device.type == "cuda":
                epoch = statistics.median(seconds) * (-(-TRAIN_IMAGES // BATCH)) / batches
                print(f"[{name}] full epoch (1563 batches) ≈ {epoch:.1f} s → 200-epoch recipe ≈ {200 * epoch / 60:.1f} min "
                      "(plus per-epoch test evaluation)")


if __name__ == "__main__":
    main()
