"""One prepared check of the CUDA path: one JSON summary (stdout, and --out FILE), then a verdict.

Nothing is downloaded: the script writes CIFAR-10 (pickled batches, as tests/cifar_files.py
does) and Fashion-MNIST (IDX files) of class-coloured images into a temporary folder, and every
run reads them through torchvision like real data. Parts, in order (each is timed; a part that
fails is recorded with its error and the rest still run; once --budget seconds have passed,
the remaining parts are skipped and say so):

1. ``agreement``: the demo MLP and ResNet-20 v1, same initial weights, fp32 (TF32 off), the
   first N training steps on the CPU and on the device: per-step losses and their largest
   relative difference.
2. ``resume``: a deterministic ResNet-20 v1 run (2,048 images, 3 epochs) killed (SIGKILL)
   after epoch 1's checkpoint and resumed with ``trainer.resume=true``, against the same run
   uninterrupted: same metrics.csv?
3. ``throughput``: ResNet-20 v1 training (the recipe, batch 32) through the real
   ``mila-bench train`` command, one process per variant: plain, the whole step as one CUDA
   graph (``trainer.cuda_graph=true``, fp32 and amp), compile, the compiled model's whole step as
   one CUDA graph (``trainer.compile=true trainer.cuda_graph=true``: Inductor's fused kernels,
   BatchNorm with Mila, replayed), CUDA graphs (``trainer.compile=reduce-overhead``), amp,
   deterministic; per-epoch
   train loss and final top-1 of each, images/s from the median epoch after the first (which
   pays compilation), and the 200-epoch recipe's training time extrapolated from it (50,000
   images/epoch; test evaluation not included). The cost of ``trainer.deterministic`` is its
   epoch time over plain's.
4. ``mila``: the fused Mila on the device (compiled and eager kernels) against a float64
   reference, values and gradients at normal and extreme inputs; and forward+backward time
   against F.mish and F.silu at 4M, 16M and 64M elements (a size is skipped once over budget).

The verdict (:func:`verdict`, a function of the summary alone) fails the check, exit code 1, one
line on stderr per failed check after the summary, when: a part or variant errored or was left
out by the budget; a step's loss differs between CPU and device by more than
``5e-3·|cpu| + 1e-5``; a Mila accuracy is outside its tolerance; the resumed run's metrics are
not identical to the uninterrupted run's; or a variant's train loss in some epoch differs from
plain's by more than ``rel·plain + abs`` or its final top-1 by more than ``top1`` (fractions):
fp32 variants (the step graph, compile, the compiled step graph, CUDA graphs, deterministic) rel
0.10, abs 0.05, top1 0.05; bf16 variants (amp, the step graph + amp) rel 0.25, abs 0.10, top1 0.10 (:data:`TOLERANCES`, also in the JSON).
Class-coloured images are learnt to top-1 ~1.00 within the first epoch, so a run that does not
learn (loss ln 10 = 2.3026, top-1 0.10, as compiled runs on torch 2.11 did) is far outside these,
while the reduction-order and bf16 differences of a run that learns are well inside.
Speed is reported, never judged. Exit code 0 and "all checks passed" otherwise.

Time on one H200 (estimated from the per-epoch times measured there on 2026-12-04, plain
4.3 s and amp 8.5 s per epoch of 10,240 images, ~10 s to start a process, 30-60 s of
compilation per compiling process; the whole script not yet timed end to end): agreement
~15 s, resume ~40 s (three short processes), throughput ~330 s (2 epochs each: plain ~20 s,
the step as one CUDA graph ~15 s and with amp ~20 s (not yet run on a GPU), amp ~30 s,
deterministic ~20 s, the three compiling variants (compile, the compiled step graph,
reduce-overhead) ~70 s each, later ones reusing Triton's kernel
cache), mila ~60 s: ~445 s, at the default budget of 450 s (8 minutes with set-up; what does not
fit is skipped and fails, so a GPU session sees it). Two epochs tell learning from not learning (the failing runs' top-1 was at chance
from epoch 1) and the second is a steady epoch for images/s. A variant's process is stopped after
``variant_timeout`` seconds (180 on CUDA) so one stuck compilation cannot eat the others' time.

``--device cpu`` runs the same parts at tiny sizes (a CI test runs it); compile variants are
skipped there unless ``--compile`` (compiling ResNet-20 on a small CPU takes minutes).
Usage: python benchmarks/gpu_check.py [--device cuda] [--out gpu_check.json] [--budget 450] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]
from activation_speed import time_fwd_bwd  # noqa: E402
from cifar_files import write_cifar10  # noqa: E402

RECIPE_IMAGES, RECIPE_EPOCHS = 50_000, 200
SIZES = {
    # train/test images written, epochs per throughput run, seconds before a variant's process is stopped,
    # resume run (train images, epochs), steps compared, Mila sizes, timing repeats, Fashion-MNIST (train, test)
    # (test images: enough that one image's top-1, 1/test, is well under the top-1 tolerance)
    "cuda": {"train": 10_240, "test": 2_000, "epochs": 2, "variant_timeout": 180, "resume": (2_048, 3), "steps": 20,
             "mila": [4e6, 16e6, 64e6], "repeats": 20, "fashion": (4_096, 1_000)},
    "cpu": {"train": 32, "test": 256, "epochs": 2, "variant_timeout": 600, "resume": (32, 3), "steps": 3,
            "mila": [1e5], "repeats": 3, "fashion": (256, 100)},
}  # fmt: skip
#: The throughput variants, in the order they run (plain first: the others are compared with it;
#: the compiling ones together, so the later reuse the kernels the first compiled), with the
#: overrides of each and which tolerance of TOLERANCES["variants"] it is held to.
VARIANTS: dict[str, tuple[list[str], str]] = {
    "plain": ([], "fp32"),
    "step_graph": (["trainer.cuda_graph=true"], "fp32"),
    "step_graph_amp": (["trainer.cuda_graph=true", "trainer.amp=true"], "bf16"),
    "compile": (["trainer.compile=true"], "fp32"),
    "step_graph_compile": (["trainer.cuda_graph=true", "trainer.compile=true"], "fp32"),
    "cuda_graphs": (["trainer.compile=reduce-overhead"], "fp32"),
    "amp": (["trainer.amp=true"], "bf16"),
    "deterministic": (["trainer.deterministic=true"], "fp32"),
}
#: What the verdict allows (written into the JSON summary as stated).
TOLERANCES = {
    "agreement": {"rel": 5e-3, "abs": 1e-5,
                  "rule": "every step: |loss_device - loss_cpu| <= rel*|loss_cpu| + abs (fp32, TF32 off)"},
    "variants": {
        "rule": "every epoch: |train_loss - plain's| <= train_loss_rel*plain's + train_loss_abs; "
                "final top-1 (a fraction): |top1 - plain's| <= top1_abs",
        "fp32": {"train_loss_rel": 0.10, "train_loss_abs": 0.05, "top1_abs": 0.05},
        "bf16": {"train_loss_rel": 0.25, "train_loss_abs": 0.10, "top1_abs": 0.10},
    },
    "resume": "every column of metrics.csv but seconds identical to the uninterrupted run's",
    "mila": "each accuracy's within_tolerance (its tolerance stated beside it)",
}  # fmt: skip
OVER_BUDGET = "over the time budget"  # a part or variant skipped for time: a failed check (it did not run)
PARTS = ("agreement", "resume", "throughput", "mila")


def log(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ data


def write_fashion_mnist(root: Path, train: int, test: int) -> Path:
    """``root/FashionMNIST/raw/`` in the IDX format torchvision parses: class-dependent blobs plus noise."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", train, 0), ("t10k", test, 1)):
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % 10
        rows = np.arange(28)[None, :, None]
        centre = 4 + 2 * labels[:, None, None]  # each class a bright band at its own height
        images = 200 * (np.abs(rows - centre) < 3) + rng.normal(0, 20, size=(n, 28, 28))
        images = np.clip(images, 0, 255).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())
    return root


# ------------------------------------------------------------------------------- agreement


def loss_agreement(overrides: list[str], device: torch.device, steps: int) -> dict:
    """Per-step losses of the same model (same initial weights, same batches) on CPU and ``device``."""
    from mila_bench.activations import fused_mila
    from mila_bench.activations import activation_factory
    from mila_bench.config import compose
    from mila_bench.data.load import load_dataset
    from mila_bench.training.build import build_optimizer
    from mila_bench.training.engine import loss_fn, seed_everything
    from mila_bench.models import build_model

    cfg = compose([*overrides, "device=cpu"])
    data = load_dataset(cfg.dataset)
    with fused_mila.kernels("eager"):  # the same formulas on both sides (the compiled ones are checked in 'mila')
        seed_everything(0)
        reference = build_model(cfg.model, activation_factory(cfg.activation), data.input_shape, data.num_classes)
        losses = {}
        for side, dev in (("cpu", torch.device("cpu")), ("device", device)):
            model = copy.deepcopy(reference).to(dev)
            groups = getattr(model, "param_groups", None)
            params = groups(cfg.optimizer.get("weight_decay", 0.0)) if groups else model.parameters()
            optimizer = build_optimizer(cfg.optimizer, params)
            split, out = data.train.to(dev), []
            for step, (images, labels) in enumerate(split.batches(cfg.trainer.batch_size)):
                if step == steps:
                    break
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(images), labels)
                loss.backward()
                optimizer.step()
                out.append(loss.detach())
            losses[side] = torch.stack(out).double().cpu()
    rel = ((losses["cpu"] - losses["device"]).abs() / losses["cpu"].abs()).tolist()
    return {
        "steps": len(rel),
        "loss_cpu": losses["cpu"].tolist(),
        "loss_device": losses["device"].tolist(),
        "max_rel_diff": max(rel),
        "rel_diff_first_step": rel[0],
    }


def agreement(sizes: dict, device: torch.device, roots: dict[str, Path]) -> dict:
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here
    try:
        return {
            "precision": "fp32, TF32 off",
            "mlp": loss_agreement([f"dataset.root={roots['fashion']}", "dataset.download=false"], device, sizes["steps"]),
            "resnet20_v1": loss_agreement(
                ["experiment=cifar10_resnet20_v1", f"dataset.root={roots['cifar']}", "dataset.verify=false"],
                device, sizes["steps"],
            ),
        }  # fmt: skip
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


# ------------------------------------------------------------------------------------ mila


def reference(x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 Mila and d/dx from the textbook formulas (as tests/test_fused_mila.py)."""
    x = x.double()
    z = x + beta
    t = torch.tanh(torch.logaddexp(torch.zeros_like(z), z))
    return x * t, t + x * (1 - t * t) * torch.sigmoid(z)


def mila_accuracy(device: torch.device, impl: str, dtype: torch.dtype) -> dict:
    from mila_bench.activations import fused_mila, mila

    edges = torch.tensor([-1e4, -1e3, -100.0, -30.0, -20.0, -1.0, 0.0, 1e-6, 1.0, 19.5, 20.0, 25.0, 100.0, 1e4])
    x = torch.cat([edges, torch.randn((1 << 17) - len(edges), generator=torch.Generator().manual_seed(0)) * 4])
    worst = {"value_abs": 0.0, "grad_abs": 0.0}
    with fused_mila.kernels(impl):
        for beta in (-5.0, -0.25, 0.0, 1.5, 5.0):
            leaf = x.to(device, dtype, copy=True).requires_grad_()
            out = mila(leaf, beta)
            out.backward(torch.ones_like(out))
            value, slope = reference(leaf.detach().cpu(), beta)  # exact maths at the (rounded) inputs
            # error beyond the tests' tolerance: |err| - rtol*|ref| (<= 1e-6 passes for float32)
            rtol = 1e-6 if dtype == torch.float32 else 1e-2
            for key, got, want in (("value_abs", out, value), ("grad_abs", leaf.grad, slope)):
                err = (got.detach().cpu().double() - want).abs() - rtol * want.abs()
                worst[key] = max(worst[key], float(err.max()))
                if not torch.isfinite(got).all():
                    worst[key] = float("inf")
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    return {**worst, "within_tolerance": max(worst.values()) <= tol, "tolerance": f"|err| <= {tol:g} + {tol:g}*|ref|"}


def mila(sizes: dict, device: torch.device, with_compile: bool, remaining: Callable[[], float]) -> dict:
    from mila_bench.activations import fused_mila
    from mila_bench.activations import mila as mila_fn

    # auto: the Triton kernels on CUDA (what a run uses there), eager-then-compiled on CPU
    impls = ("auto", "compiled", "eager") if with_compile else ("auto", "eager")
    result: dict = {"accuracy": {}, "speed": {}}
    for impl in impls:
        for dtype in (torch.float32, torch.bfloat16):
            key = f"{impl}_{str(dtype).removeprefix('torch.')}"
            result["accuracy"][key] = mila_accuracy(device, impl, dtype)
    for size in (int(s) for s in sizes["mila"]):
        if remaining() <= 0:
            result["speed"][f"{size:.0e}"] = {"skipped": OVER_BUDGET}
            continue
        x = torch.randn(size, device=device) * 3
        grad = torch.randn(size, device=device)

        def with_impl(impl: str) -> Callable:
            state = fused_mila.MilaKernels(impl)  # its backward runs under the same state

            def run(v: torch.Tensor) -> torch.Tensor:
                with fused_mila.kernels(state):
                    return mila_fn(v, -0.25)

            return run

        fns = {**{impl: with_impl(impl) for impl in impls}, "F.mish": F.mish, "F.silu": F.silu, "F.relu": F.relu}
        ms = {name: 1e3 * seconds for name, seconds in time_fwd_bwd(fns, x, grad, sizes["repeats"]).items()}
        result["speed"][f"{size:.0e}"] = {
            "ms": ms,
            **{f"{impl}/{ref}": ms[impl] / ms[ref] for impl in impls for ref in ("F.mish", "F.silu", "F.relu")},
        }
        del x, grad
    return result


# ---------------------------------------------------------------------- runs of the command


def train_command(device: torch.device, cifar: Path, work: Path, epochs: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "mila_bench", "train", "experiment=cifar10_resnet20_v1", f"dataset.root={cifar}",
        "dataset.verify=false", f"trainer.epochs={epochs}", f"device={device}", "trainer.progress=false",
        f"results.dir={work / 'results'}", f"results.markdown={work / 'Results.md'}", *extra,
    ]  # fmt: skip


def read_metrics(work: Path) -> list[dict[str, float]]:
    [run_dir] = [p for p in (work / "results").iterdir() if p.is_dir() and not p.name.startswith(".")]
    with open(run_dir / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit code {proc.returncode}"


def throughput_run(device: torch.device, cifar: Path, sizes: dict, extra: list[str], timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "TORCH_LOGS": "perf_hints"}  # so skipped CUDA graphs say so on stderr
        start = time.perf_counter()
        proc = subprocess.run(train_command(device, cifar, work, sizes["epochs"], extra), cwd=work, env=env,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"error": error_line(proc), "returncode": proc.returncode}
        metrics = read_metrics(work)
    seconds = [m["seconds"] for m in metrics]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    images_per_s = sizes["train"] / steady
    skips = sorted({line.strip()[:200] for line in proc.stderr.splitlines() if "skipping cudagraphs" in line})
    return {
        "images_per_s": images_per_s,
        "epoch_seconds": seconds,
        "recipe_200_epochs_train_minutes": RECIPE_EPOCHS * RECIPE_IMAGES / images_per_s / 60,
        "process_wall_s": wall,
        "train_loss": [m["train_loss"] for m in metrics],
        "top1": [m["top1"] for m in metrics],
        "final_top1": metrics[-1]["top1"],
        "final_test_loss": metrics[-1]["test_loss"],
        "cudagraph_skips": skips,
    }


def throughput(sizes: dict, device: torch.device, cifar: Path, with_compile: bool, remaining: Callable[[], float]) -> dict:
    result: dict = {"train_images": sizes["train"], "epochs": sizes["epochs"], "batch": 32}
    for name, (extra, precision) in VARIANTS.items():
        if any(e.startswith("trainer.compile=") for e in extra) and not with_compile:
            result[name] = {"skipped": f"compile variants are off on {device.type} (pass --compile)"}
            continue
        if "trainer.cuda_graph=true" in extra and device.type != "cuda":
            result[name] = {"skipped": f"trainer.cuda_graph replays CUDA graphs: not on {device.type}"}
            continue
        if remaining() < 30:
            result[name] = {"skipped": OVER_BUDGET}
            continue
        log(f"throughput: {name}")
        timeout = min(sizes["variant_timeout"], max(30.0, remaining()))
        try:
            result[name] = throughput_run(device, cifar, sizes, extra, timeout=timeout)
        except subprocess.TimeoutExpired:
            result[name] = {"error": f"timed out after {timeout:.0f} s"}
        result[name] |= {"overrides": extra, "tolerance": precision}
    plain, det = result.get("plain", {}), result.get("deterministic", {})
    if "images_per_s" in plain and "images_per_s" in det:
        result["deterministic_cost"] = {"time_ratio_vs_plain": plain["images_per_s"] / det["images_per_s"]}
    timed = {k: v["recipe_200_epochs_train_minutes"] for k, v in result.items() if isinstance(v, dict) and "images_per_s" in v}
    if timed:
        best = min(timed, key=timed.get)
        result["best"] = {"variant": best, "recipe_200_epochs_train_minutes": timed[best], "images_per_s": result[best]["images_per_s"],
                          "goal_minutes": 8.5, "goal_images_per_s": 20_000}  # fmt: skip
    return result


def resume(sizes: dict, device: torch.device, cifar: Path, remaining: Callable[[], float]) -> dict:
    """Deterministic run killed after epoch 1's checkpoint, resumed; against the same run uninterrupted.

    On the first ``sizes["resume"][0]`` images: whether a resume is exact does not depend on the
    epoch's length, and three short processes cost little of the budget.
    """
    images, epochs = sizes["resume"]
    extra = ["trainer.deterministic=true", "seed=1", f"dataset.train_subset={images}"]
    with tempfile.TemporaryDirectory() as tmp:
        ref, work = Path(tmp) / "ref", Path(tmp) / "work"
        ref.mkdir(), work.mkdir()
        log("resume: uninterrupted reference")
        done = subprocess.run(train_command(device, cifar, ref, epochs, extra), cwd=ref, capture_output=True, text=True,
                              timeout=max(30.0, remaining()))  # fmt: skip
        if done.returncode != 0:
            return {"error": f"reference run: {error_line(done)}"}
        log("resume: run to be killed")
        proc = subprocess.Popen(train_command(device, cifar, work, epochs, extra), cwd=work,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.time() + max(30.0, remaining())
        while not list(work.glob("results/*/checkpoint.pt")) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stopped_after = len(read_metrics(work))
        if stopped_after >= epochs:
            return {"error": "the kill landed after the run had finished; nothing to resume"}
        log(f"resume: resuming after epoch {stopped_after}")
        resumed = subprocess.run([*train_command(device, cifar, work, epochs, extra), "trainer.resume=true"], cwd=work,
                                 capture_output=True, text=True, timeout=max(30.0, remaining()))  # fmt: skip
        if resumed.returncode != 0:
            return {"error": f"resumed run: {error_line(resumed)}"}
        a, b = read_metrics(ref), read_metrics(work)
    keys = [k for k in a[0] if k != "seconds"]
    diff = max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in keys) if len(a) == len(b) else float("nan")
    return {
        "train_images": images,
        "epochs": epochs,
        "stopped_after_epoch": stopped_after,
        "same_metrics": len(a) == len(b) and diff == 0.0,
        "max_abs_diff": diff,
        "final_top1": b[-1]["top1"],
        "deterministic": True,
    }


# ----------------------------------------------------------------------------------- verdict


def _not_run(name: str, entry: object) -> str | None:
    """Why a part or variant has nothing to check (a failure), or None."""
    if not isinstance(entry, dict):
        return f"{name}: missing from the summary"
    if "error" in entry:
        return f"{name}: errored: {entry['error']}"
    if entry.get("skipped") == OVER_BUDGET:
        return f"{name}: did not run ({OVER_BUDGET})"
    return None


def _agreement_failures(agreement: dict, tol: dict) -> list[str]:
    failures = []
    for model, run in agreement.items():
        if not isinstance(run, dict) or "loss_cpu" not in run:
            continue
        cpu, dev = run["loss_cpu"], run["loss_device"]
        if len(cpu) != len(dev) or not cpu:
            failures.append(f"agreement.{model}: {len(cpu)} CPU losses against {len(dev)} on the device")
            continue
        excess = [abs(d - c) - (tol["rel"] * abs(c) + tol["abs"]) for c, d in zip(cpu, dev)]
        excess = [e if e == e else float("inf") for e in excess]  # a NaN loss is the worst step
        step = max(range(len(excess)), key=lambda i: excess[i])
        if excess[step] > 0:
            failures.append(
                f"agreement.{model}: step {step + 1} loss {dev[step]:.6g} on the device vs {cpu[step]:.6g} on the CPU, "
                f"|diff| {abs(dev[step] - cpu[step]):.3g} > {tol['rel']:g}*|cpu| + {tol['abs']:g}"
            )
    return failures


def _variant_failures(name: str, run: dict, plain: dict, tol: dict) -> list[str]:
    ours, theirs = run["train_loss"], plain["train_loss"]
    if len(ours) != len(theirs):
        return [f"throughput.{name}: {len(ours)} epochs against plain's {len(theirs)}"]
    failures = []
    for epoch, (mine, reference) in enumerate(zip(ours, theirs), start=1):
        allowed = tol["train_loss_rel"] * abs(reference) + tol["train_loss_abs"]
        if not abs(mine - reference) <= allowed:
            failures.append(
                f"throughput.{name}: epoch {epoch} train loss {mine:.4f} vs plain's {reference:.4f}, "
                f"|diff| {abs(mine - reference):.4f} > {allowed:.4f} "
                f"({tol['train_loss_rel']:g}*plain's + {tol['train_loss_abs']:g})"
            )
    if not abs(run["final_top1"] - plain["final_top1"]) <= tol["top1_abs"]:
        failures.append(
            f"throughput.{name}: final top-1 {run['final_top1']:.4f} vs plain's {plain['final_top1']:.4f}, "
            f"|diff| {abs(run['final_top1'] - plain['final_top1']):.4f} > {tol['top1_abs']:g}"
        )
    return failures


def verdict(summary: dict, tolerances: dict = TOLERANCES) -> list[str]:
    """One line per failed check of ``summary`` (empty: every check passed); nothing but the summary is read.

    A part or variant that errored or ran out of budget fails (a check that did not run has not
    passed); one deliberately left out (compile variants on CPU without --compile) does not.
    """
    failures = [line for part in PARTS if (line := _not_run(part, summary.get(part)))]
    agreement = summary.get("agreement")
    if isinstance(agreement, dict) and "error" not in agreement:
        failures += _agreement_failures(agreement, tolerances["agreement"])
    mila = summary.get("mila")
    if isinstance(mila, dict):
        for key, accuracy in mila.get("accuracy", {}).items():
            if not accuracy.get("within_tolerance"):
                failures.append(
                    f"mila.accuracy.{key}: worst value error {accuracy.get('value_abs')}, gradient error "
                    f"{accuracy.get('grad_abs')}, beyond {accuracy.get('tolerance')}"
                )
    resume = summary.get("resume")
    if isinstance(resume, dict) and "same_metrics" in resume and resume["same_metrics"] is not True:
        failures.append(
            f"resume: the resumed run's metrics differ from the uninterrupted run's "
            f"(largest difference {resume.get('max_abs_diff')}, stopped after epoch {resume.get('stopped_after_epoch')})"
        )
    throughput = summary.get("throughput")
    if isinstance(throughput, dict) and "error" not in throughput and "skipped" not in throughput:
        plain = throughput.get("plain")
        for name, (_extra, precision) in VARIANTS.items():
            run = throughput.get(name)
            line = _not_run(f"throughput.{name}", run)
            if line:
                failures.append(line)
            elif name != "plain" and "train_loss" in run and isinstance(plain, dict) and "train_loss" in plain:
                failures += _variant_failures(name, run, plain, tolerances["variants"][precision])
    return failures


def conclude(summary: dict, out: str | None) -> int:
    """Print (and write) the whole summary with its verdict, then each failure on stderr; the exit code."""
    failures = verdict(summary)
    summary = {**summary, "tolerances": TOLERANCES, "failures": failures}
    text = json.dumps(summary, indent=2)
    if out:
        Path(out).write_text(text + "\n")
    print(text, flush=True)
    for line in failures:
        print(f"gpu_check: FAILED {line}", file=sys.stderr)
    if failures:
        print(f"gpu_check: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("gpu_check: all checks passed", file=sys.stderr)
    return 0


# -------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for the short version")
    parser.add_argument("--out", default=None, help="also write the JSON summary here")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds; parts after it are skipped")
    parser.add_argument("--compile", action="store_true", help="run the compile variants on CPU too")
    args = parser.parse_args()

    from mila_bench.training.engine import select_device
    from mila_bench.errors import UsageError

    try:
        device = select_device(args.device)
    except UsageError as err:
        sys.exit(f"gpu_check: error: {err}")
    sizes = SIZES["cuda" if device.type == "cuda" else "cpu"]
    started = time.perf_counter()
    remaining = lambda: args.budget - (time.perf_counter() - started)  # noqa: E731
    summary: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "sizes": sizes,
    }
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"cifar": write_cifar10(Path(tmp) / "cifar", sizes["train"], sizes["test"]),
                 "fashion": write_fashion_mnist(Path(tmp) / "fashion", *sizes["fashion"])}  # fmt: skip
        with_compile = device.type == "cuda" or args.compile
        parts: dict[str, Callable[[], dict]] = {
            "agreement": lambda: agreement(sizes, device, roots),
            "resume": lambda: resume(sizes, device, roots["cifar"], remaining),
            "throughput": lambda: throughput(sizes, device, roots["cifar"], with_compile, remaining),
            "mila": lambda: mila(sizes, device, with_compile, remaining),
        }
        assert tuple(parts) == PARTS
        for name, part in parts.items():
            if remaining() <= 0:
                summary[name] = {"skipped": OVER_BUDGET}
                continue
            log(name)
            start = time.perf_counter()
            try:
                summary[name] = part()
            except Exception as err:  # recorded; the other parts still run
                summary[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
            summary[name]["part_seconds"] = time.perf_counter() - start
    summary["total_seconds"] = time.perf_counter() - started
    sys.exit(conclude(summary, args.out))


if __name__ == "__main__":
    main()
