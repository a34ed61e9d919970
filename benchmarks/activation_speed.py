"""Forward+backward speed and saved-for-backward memory of Mila versus PyTorch's natives.

For each size, times (median of repeats after warm-up, in interleaved rounds, all in one
process so the ratios compare like with like on this noisy machine) forward+backward of:
mila-bench's Mila (fused kernel compiled, as a long run uses it; and its eager kernels, used
before that and wherever no compiler exists), the naive expression x*tanh(softplus(x+β)),
F.mish, F.silu and F.relu, prints the ratio of each to F.mish, and the bytes each keeps saved
for backward (counted with torch.autograd.graph.saved_tensors_hooks). Each size ends with one
line: compiled/F.mish (goal <= 0.5 from 4M elements), eager/F.mish (goal <= 1.0 at every size)
and both against F.silu. On CUDA, ``mila triton`` (the Triton kernels that ``activation.impl=auto``
runs there) is timed too, in each ``--dtypes``, with its goal: within 1.10x of F.mish at every size,
and its ratio to the memory floor (F.silu, F.relu). ``--threads`` sets torch's CPU threads (on a shared, oversubscribed
machine many small parallel ops suffer more than one large one; 1 thread measures the arithmetic).
Usage: python benchmarks/activation_speed.py [--sizes 1e5 4e6 1.6e7] [--repeats 15] [--device cpu|cuda]
       [--dtypes float32 bfloat16] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mila_bench.activations import fused_mila
from mila_bench.activations import mila


def naive_mila(x: torch.Tensor, beta: float = -0.25) -> torch.Tensor:
    return x * torch.tanh(F.softplus(x + beta))


def with_impl(impl: str):
    state = fused_mila.MilaKernels(impl)  # its backward runs under the same state

    def run(x: torch.Tensor) -> torch.Tensor:
        with fused_mila.kernels(state):
            return mila(x, -0.25)

    return run


CANDIDATES = {
    "mila triton": with_impl("auto"),  # CUDA only (removed from the list elsewhere)
    "mila (ours)": with_impl("compiled"),
    "mila eager": with_impl("eager"),
    "naive mila": naive_mila,
    "F.mish": F.mish,
    "F.silu": F.silu,
    "F.relu": F.relu,
}


def saved_bytes(fn, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for backward when running ``fn(x)``."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x.detach().requires_grad_())
    return total


def time_fwd_bwd(fns: dict[str, Callable], x: torch.Tensor, grad: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median seconds of forward + backward of each of ``fns``, timed in interleaved rounds (one
    call of each per round), so a passing slowdown of a shared machine hits them all alike."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats + 3):  # 3 warm-up rounds (and compilation, for the fused kernel)
        for name, fn in fns.items():
            leaf = x.detach().requires_grad_()
            sync()
            start = time.perf_counter()
            fn(leaf).backward(grad)
            sync()
            if i >= 3:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 4e6, 1.6e7])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, median of {args.repeats}")
    candidates = {k: v for k, v in CANDIDATES.items() if device.type == "cuda" or k != "mila triton"}
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for size in (int(s) for s in args.sizes):
            measure(candidates, size, dtype, device, args.repeats)


def measure(candidates: dict[str, Callable], size: int, dtype: torch.dtype, device: torch.device, repeats: int) -> None:
    x = (torch.randn(size, device=device) * 3).to(dtype)
    grad = torch.randn(size, device=device).to(dtype)
    start = time.perf_counter()
    candidates["mila (ours)"](x.detach().requires_grad_()).sum().backward()  # compiles on first use
    first = time.perf_counter() - start
    results = time_fwd_bwd(candidates, x, grad, repeats)
    print(f"\n{size:,} elements, {str(dtype).removeprefix('torch.')} (first compiled Mila call, incl. compiling: {first:.2f} s)")
    print(f"  {'':14s} {'fwd+bwd ms':>10s} {'/ F.mish':>9s} {'saved for backward':>20s}")
    for name, seconds in results.items():
        saved = saved_bytes(candidates[name], x)
        print(
            f"  {name:14s} {1e3 * seconds:10.3f} {seconds / results['F.mish']:9.2f} "
            f"{saved / 2**20:12.1f} MiB ({saved / (size * x.element_size()):.0f}x input)"
        )
    compiled, eager = results["mila (ours)"] / results["F.mish"], results["mila eager"] / results["F.mish"]
    print(f"  compiled/F.mish {compiled:.2f} ({verdict(compiled, 0.5, size >= 4_000_000)})   "
          f"eager/F.mish {eager:.2f} ({verdict(eager, 1.0, True)})   "
          f"compiled/F.silu {results['mila (ours)'] / results['F.silu']:.2f}   "
          f"eager/F.silu {results['mila eager'] / results['F.silu']:.2f}")
    if "mila triton" in results:
        triton = results["mila triton"]
        print(f"  triton/F.mish {triton / results['F.mish']:.2f} ({verdict(triton / results['F.mish'], 1.10, True)})   "
              f"triton/F.silu {triton / results['F.silu']:.2f}   triton/F.relu {triton / results['F.relu']:.2f}")


def verdict(ratio: float, goal: float, judged: bool) -> str:
    """Eager Mila is to match F.mish at every size (1e5, 4M, 16M); the compiled kernel's goal is
    set at 4M and 16M, where compiling pays (below, a kernel launch costs about as much as the work)."""
    if not judged:
        return f"goal <= {goal:.2f} is set from 4M elements"
    return f"goal <= {goal:.2f}: {'met' if ratio <= goal else 'NOT met'}"


if __name__ == "__main__":
    main()
