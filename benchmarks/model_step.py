"""A training step of timm models with Mila against the same step with Mish and ReLU, in one process.

What a user pays for Mila in a real network, not in an isolated call: for each architecture
(timm ResNet-50 and MobileNetV2 by default, built by mila-bench as a run builds them, with the
activation in every place the model takes one) and each activation, one training step on 32×32
images of CIFAR's shape (forward, cross-entropy, backward, Adam) is timed; steps are timed in
interleaved rounds (one step of each activation per round) so a passing slowdown of a shared
machine hits all alike, and the median is reported. Each architecture ends with the ratios and
the goals of issue 23 (on CUDA): Mila's step within 1.10× of Mish's and within 1.3× of ReLU's.
Mila runs the kernels a run would (``activation.impl=auto``: Triton on CUDA). ``--amp`` times
bf16 autocast + channels_last, as ``trainer.amp=true`` trains.
Usage: python benchmarks/model_step.py [--archs resnet50 mobilenetv2_100] [--activations mila mish relu]
       [--batch 128] [--repeats 20] [--device cpu|cuda] [--amp] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from mila_bench import activations
from mila_bench.config import compose
from mila_bench.models import build_model

GOALS = {"mila/mish": 1.10, "mila/relu": 1.3}


def build(arch: str, activation: str, device: torch.device, amp: bool):
    """The model as ``mila-bench train model=timm model.arch=ARCH activation=NAME`` builds it, and Adam."""
    cfg = compose(["model=timm", f"model.arch={arch}", f"activation={activation}", "dataset=cifar10"])
    torch.manual_seed(0)
    model = build_model(cfg.model, activations.activation_factory(cfg.activation), (3, 32, 32), 10).to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def timed_steps(models: dict, images: torch.Tensor, labels: torch.Tensor, repeats: int, amp: bool) -> dict[str, float]:
    """Median milliseconds of one training step of each model, interleaved rounds after 3 warm-up rounds."""
    sync = torch.cuda.synchronize if images.is_cuda else (lambda: None)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(repeats + 3):
        for name, (model, optimizer) in models.items():
            sync()
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            sync()
            if i >= 3:
                times[name].append(1e3 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["resnet50", "mobilenetv2_100"])
    parser.add_argument("--activations", nargs="+", default=["mila", "mish", "relu"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast + channels_last (CUDA)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    amp = args.amp and device.type == "cuda"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}, batch {args.batch}, {'bf16 + channels_last' if amp else 'fp32'}, "
          f"median of {args.repeats} steps")  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (args.batch,), generator=generator).to(device)
    if amp:
        images = images.contiguous(memory_format=torch.channels_last)
    results = {"device": name, "torch": torch.__version__, "batch": args.batch, "amp": amp, "archs": {}}
    for arch in args.archs:
        models = {act: build(arch, act, device, amp) for act in args.activations}
        ms = timed_steps(models, images, labels, args.repeats, amp)
        del models
        ratios = {f"{a}/{b}": ms[a] / ms[b] for a in args.activations for b in args.activations if a != b and a == "mila"}
        results["archs"][arch] = {"step_ms": ms, "ratios": ratios}
        print(f"{arch}: " + ", ".join(f"{act} {t:.2f} ms" for act, t in ms.items()))
        for key, ratio in ratios.items():
            goal = GOALS.get(key)
            verdict = "" if goal is None else f"  (goal on CUDA <= {goal:.2f}" + (
                f": {'met' if ratio <= goal else 'NOT met'})" if device.type == "cuda" else ")")
            print(f"  {key} {ratio:.3f}{verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
