"""One training loop for every model: seeding, device choice, fit and evaluate.

Batches are sliced from tensors already in memory (on the training device), so a step
costs the model's arithmetic and little else. A step never reads a tensor back to the host
(on CUDA every such read waits for the GPU to finish): the epoch's loss sum and the losses of
its steps stay on the device and are read once, at the end of the epoch, which is also when
a non-finite loss is noticed and reported with the step it first appeared at.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from mila_bench.errors import UsageError
from mila_bench.records.schema import EpochMetrics  # the metrics row is defined with the record
from mila_bench.training.checks import COMPILE_MODES, check_compile  # noqa: F401  (torch-free, checked at compose)
from mila_bench.training.schedules import EpochScheduler
from mila_bench.data.splits import Dataset, Split
from mila_bench.training.cost import StepTimer
from mila_bench.training.device_check import no_cuda

TOP_K = (1, 3, 5)
#: Keras' backend epsilon: its categorical cross-entropy clips probabilities to [ε, 1 − ε].
KERAS_EPSILON = 1e-7


class Diverged(Exception):
    """The training loss became NaN or infinite; carries where, and the epochs completed before."""

    def __init__(self, epoch: int, step: int, history: list[EpochMetrics]) -> None:
        super().__init__(f"non-finite training loss at epoch {epoch}, step {step}")
        self.epoch, self.step, self.history = epoch, step, history


def select_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; an explicit cuda without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise no_cuda(name)
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise UsageError(
                f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s); "
                f"allowed: cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return the generator that orders the training batches."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def build_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    """Adam (the original's) or SGD with momentum, from the optimizer config group as composed
    (every default is in configs/optimizer/; the CIFAR recipe sets Keras' Adam ε 1e-7)."""
    name = cfg["name"]
    if name == "adam":
        # fused=True runs the whole update as one kernel per step (CPU and CUDA, torch >= 2.4):
        # with a model this small, per-step overhead is most of the cost.
        return torch.optim.Adam(
            params, lr=cfg["lr"], eps=float(cfg["eps"]), weight_decay=cfg["weight_decay"], fused=bool(cfg["fused"])
        )
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    raise UsageError(f"unknown optimizer {name!r}; allowed: adam, sgd")


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy. For models ending in ``log_softmax`` it equals the original's NLLLoss,
    since log_softmax of log-probabilities is the identity; so one loss serves every model."""
    return F.cross_entropy(output, target)


def mixed_precision(enabled: bool):
    """bf16 autocast on CUDA (no loss scaling needed: bf16 has float32's exponent range)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled else nullcontext()


def keras_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy as Keras computes it from softmax outputs: each probability clipped
    to [ε, 1 − ε] before the log (so one sample costs at most −log ε ≈ 16.1)."""
    log_p = F.log_softmax(output.float(), dim=1).gather(1, target[:, None]).squeeze(1)
    return -log_p.clamp(math.log(KERAS_EPSILON), math.log1p(-KERAS_EPSILON)).sum()


def compile_mode(value: object, device: torch.device) -> str | None:
    """:func:`check_compile` for ``device``: CUDA graphs exist only on CUDA, so elsewhere the
    CUDA-graph modes become their graph-free equivalents (CPU runs are unaffected by the choice)."""
    mode = check_compile(value)
    if mode is not None and device.type != "cuda":
        mode = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}.get(mode, mode)
    return mode


def compile_model(model: nn.Module, mode: str | None) -> nn.Module:
    """``model`` through torch.compile in ``mode`` (None: the model itself).

    With CUDA graphs each input shape gets its own recorded graph, so shapes are kept static
    (a run has a handful: the batch, the last partial batch, the evaluation batches).
    """
    if mode is None:
        return model
    if mode == "default":
        return torch.compile(model)
    return torch.compile(model, mode=mode, dynamic=False)


def epoch_totals(loss_sum: torch.Tensor, step_losses: torch.Tensor) -> tuple[float, int]:
    """(sum of the epoch's losses, first step with a non-finite loss or 0), in one host read."""
    bad = ~torch.isfinite(step_losses)
    first_bad = torch.where(bad.any(), bad.int().argmax() + 1, 0)
    total, step = torch.stack([loss_sum.double(), first_bad.double()]).tolist()
    return total, int(step)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int, amp: bool = False) -> dict[str, float]:
    """Mean loss and top-1/3/5 accuracy of ``model`` over ``split`` (``amp``: bf16, channels_last).

    For a model with a kernel penalty (``model.kernel_penalty()``, e.g. ResNet's Keras
    ``l2(1e-4)``) also ``keras_val_loss``: what Keras reports as val_loss, the mean clipped
    cross-entropy (:func:`keras_cross_entropy`) plus the penalty, so it compares with the
    published tables' Loss column. ``test_loss`` stays the plain cross-entropy.
    """
    model.eval()
    penalty = getattr(model, "kernel_penalty", lambda: None)()
    keras_total = None if penalty is None else torch.zeros((), dtype=torch.float64, device=split.labels.device)
    loss_total = torch.zeros((), dtype=torch.float64, device=split.labels.device)
    hits = torch.zeros(len(TOP_K), dtype=torch.int64, device=split.labels.device)
    for images, labels in split.batches(batch_size):
        if amp:
            images = images.contiguous(memory_format=torch.channels_last)
        with mixed_precision(amp):
            output = model(images)
        loss_total += F.cross_entropy(output.float(), labels, reduction="sum").double()
        if keras_total is not None:
            keras_total += keras_cross_entropy(output, labels).double()
        k = min(max(TOP_K), output.shape[1])
        top = output.topk(k, dim=1).indices == labels[:, None]
        hits += torch.stack([top[:, : min(kk, k)].any(dim=1).sum() for kk in TOP_K])
    n = len(split)
    rates = (hits.double() / n).tolist()
    metrics = {"test_loss": loss_total.item() / n, **{f"top{k}": r for k, r in zip(TOP_K, rates)}}
    if keras_total is not None:
        metrics["keras_val_loss"] = keras_total.item() / n + float(penalty)
    return metrics


def fit(
    model: nn.Module,
    data: Dataset,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    generator: torch.Generator,
    progress: bool = True,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    scheduler: EpochScheduler | None = None,
    amp: bool = False,
    compiled: bool | str = False,
    resume: dict | None = None,
    on_checkpoint: Callable[[dict], None] | None = None,
    step_timer: StepTimer | None = None,
) -> list[EpochMetrics]:
    """Train for ``epochs`` epochs, evaluating on the test split after each one.

    ``data.augment`` (if any) transforms training batches only, drawing from a generator
    on the data's device seeded from ``generator``. ``scheduler`` steps after each
    evaluation. ``amp`` (CUDA only) runs bf16 autocast with channels_last tensors;
    ``compiled`` (``trainer.compile``: true or a torch.compile mode, see :func:`compile_mode`)
    trains and evaluates through ``torch.compile(model)``.

    After each epoch ``on_checkpoint`` receives everything needed to continue bit for bit
    (see ``checkpoints``), Mila's kernel state included (where ``auto`` switches to compiled
    depends on the work done so far); ``resume`` is such a checkpoint to continue from. A non-finite
    loss raises :class:`Diverged` naming its epoch and step, at the end of that epoch (the
    steps after it are wasted work, never recorded: no metrics, no checkpoint). ``step_timer``
    (``training.cost``) gets a mark after every step and is read once per epoch.
    """
    from mila_bench.activations import fused_mila
    from mila_bench.records import checkpoints
    from tqdm.auto import tqdm

    device = data.train.labels.device
    amp = amp and device.type == "cuda"
    if amp:
        model = model.to(memory_format=torch.channels_last)
    mode = compile_mode(compiled, device)
    run_model = compile_model(model, mode)
    cuda_graphs = mode in ("reduce-overhead", "max-autotune")  # compile_mode keeps these on CUDA only
    augment_generator = None
    if data.augment is not None:
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        augment_generator = torch.Generator(device=device).manual_seed(seed)
    history: list[EpochMetrics] = []
    generators = {"batches": generator, "augment": augment_generator}
    kernels = fused_mila.current()  # this run's (training.run_settings gives each run a fresh one)
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        history = [EpochMetrics(**m) for m in resume["history"]]
        checkpoints.restore_rng_state(resume["rng"], generators)
        if resume.get("mila_kernels") is not None:  # absent from checkpoints written before it was kept
            kernels.load_state_dict(resume["mila_kernels"])
        first_epoch = int(resume["epoch"]) + 1
    steps = -(-len(data.train) // batch_size)
    for epoch in range(first_epoch, epochs + 1):
        model.train()
        lr = scheduler.lr() if scheduler is not None else None
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        step_losses = torch.zeros(steps, device=device)
        if step_timer is not None:
            step_timer.start()
        with tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress) as bar:
            for step, (images, labels) in enumerate(data.train.batches(batch_size, generator), start=1):
                kernels.where = (epoch, step)  # recorded if Mila's auto kernels switch during this step
                if augment_generator is not None:
                    images = data.augment(images, augment_generator)
                if amp:
                    images = images.contiguous(memory_format=torch.channels_last)
                if cuda_graphs:  # a new iteration: the graphs may reuse the last step's output memory
                    torch.compiler.cudagraph_mark_step_begin()
                optimizer.zero_grad(set_to_none=True)
                with mixed_precision(amp):
                    loss = loss_fn(run_model(images), labels)
                loss.backward()
                optimizer.step()
                loss = loss.detach()
                loss_sum += loss
                step_losses[step - 1] = loss  # kept on the device; checked once, after the epoch
                if step_timer is not None:
                    step_timer.mark()
                bar.update()
        total, bad_step = epoch_totals(loss_sum, step_losses)  # the epoch's one read (waits for the device)
        seconds = time.perf_counter() - start
        if step_timer is not None:
            step_timer.epoch_times()
        if bad_step:
            raise Diverged(epoch, bad_step, history)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss_sum=total,
            train_loss=total / steps,
            seconds=seconds,
            lr=lr,
            **evaluate(run_model, data.test, eval_batch_size, amp),
        )
        if scheduler is not None:  # Keras' plateau watched its val_loss, where it is recorded
            scheduler.step(metrics.test_loss if metrics.keras_val_loss is None else metrics.keras_val_loss)
        history.append(metrics)
        if on_checkpoint is not None:
            on_checkpoint(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "history": [m.as_dict() for m in history],
                    "rng": checkpoints.rng_state(generators),
                    "mila_kernels": kernels.state_dict(),
                }
            )
        if on_epoch is not None:
            on_epoch(metrics)
    return history
