"""One training loop for every model: seeding, device choice, fit and evaluate.

A run's members (``training.member``: one for a lone run, N for a pack) go through the same
loop; how a step calls their model is ``training.calls``'.

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
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mila_bench.errors import UsageError
from mila_bench.records.schema import EpochMetrics  # the metrics row is defined with the record
from mila_bench.training.checks import COMPILE_MODES, check_compile  # noqa: F401  (torch-free, checked at compose)
from mila_bench.training.schedules import EpochScheduler
from mila_bench.data.splits import Dataset, Split
from mila_bench.training.callbacks import Callback, KeepRunState
from mila_bench.training.calls import (  # noqa: F401  (loss_fn, compile_*, check_cuda_graph: what callers import from here)
    LoneCall, PackCall, check_cuda_graph, compile_mode, compile_model, loss_fn, mixed_precision,
)
from mila_bench.training.device_check import no_cuda
from mila_bench.training.member import Diverged, Member

TOP_K = (1, 3, 5)
#: Keras' backend epsilon: its categorical cross-entropy clips probabilities to [ε, 1 − ε].
KERAS_EPSILON = 1e-7


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


def keras_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy as Keras computes it from softmax outputs: each probability clipped
    to [ε, 1 − ε] before the log (so one sample costs at most −log ε ≈ 16.1)."""
    log_p = F.log_softmax(output.float(), dim=1).gather(1, target[:, None]).squeeze(1)
    return -log_p.clamp(math.log(KERAS_EPSILON), math.log1p(-KERAS_EPSILON)).sum()


def epoch_totals(loss_sums: torch.Tensor, step_losses: torch.Tensor) -> list[tuple[float, int]]:
    """Per member: (sum of the epoch's losses, first step with a non-finite loss or 0), in one host read.

    ``loss_sums`` is [members], ``step_losses`` [members, steps]."""
    bad = ~torch.isfinite(step_losses)
    first_bad = torch.where(bad.any(dim=1), bad.int().argmax(dim=1) + 1, 0)
    rows = torch.stack([loss_sums.double(), first_bad.double()], dim=1).tolist()
    return [(total, int(step)) for total, step in rows]


def _metrics(outputs: list[torch.Tensor], labels: torch.Tensor, keras: bool) -> torch.Tensor:
    """Per output: [summed cross-entropy, summed Keras cross-entropy (or 0), top-1/3/5 hits], float64."""
    rows = []
    for output in outputs:
        k = min(max(TOP_K), output.shape[1])
        top = output.topk(k, dim=1).indices == labels[:, None]
        hits = [top[:, : min(kk, k)].any(dim=1).sum().double() for kk in TOP_K]
        loss = F.cross_entropy(output.float(), labels, reduction="sum").double()
        keras_loss = keras_cross_entropy(output, labels).double() if keras else torch.zeros_like(loss)
        rows.append(torch.stack([loss, keras_loss, *hits]))
    return torch.stack(rows)


@torch.inference_mode()
def evaluate_outputs(
    call: Callable[[torch.Tensor], list[torch.Tensor]], penalties: list, split: Split, batch_size: int, amp: bool
) -> list[dict[str, float]]:
    """Each member's test metrics, from ``call`` (a batch → one output per member), in one host read."""
    keras = penalties[0] is not None
    totals = None
    for images, labels in split.batches(batch_size):
        if amp:
            images = images.contiguous(memory_format=torch.channels_last)
        with mixed_precision(amp):
            outputs = call(images)
        batch = _metrics(outputs, labels, keras)
        totals = batch if totals is None else totals + batch
    n = len(split)
    found = []
    for row, penalty in zip(totals.tolist(), penalties):
        metrics = {"test_loss": row[0] / n, **{f"top{k}": hits / n for k, hits in zip(TOP_K, row[2:])}}
        if keras:
            metrics["keras_val_loss"] = row[1] / n + float(penalty)
        found.append(metrics)
    return found


def evaluate(model: nn.Module, split: Split, batch_size: int, amp: bool = False) -> dict[str, float]:
    """Mean loss and top-1/3/5 accuracy of ``model`` over ``split`` (``amp``: bf16, channels_last).

    For a model with a kernel penalty (``model.kernel_penalty()``, e.g. ResNet's Keras
    ``l2(1e-4)``) also ``keras_val_loss``: what Keras reports as val_loss, the mean clipped
    cross-entropy (:func:`keras_cross_entropy`) plus the penalty, so it compares with the
    published tables' Loss column. ``test_loss`` stays the plain cross-entropy.
    """
    model.eval()
    penalty = getattr(model, "kernel_penalty", lambda: None)()
    return evaluate_outputs(lambda images: [model(images)], [penalty], split, batch_size, amp)[0]


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
    scheduler: EpochScheduler | None = None,
    amp: bool = False,
    compiled: bool | str = False,
    cuda_graph: bool = False,
    resume: dict | None = None,
    callbacks: Sequence[Callback] = (),
) -> list[EpochMetrics]:
    """Train one model (a lone run: :func:`fit_members` with one member); raise :class:`Diverged`
    if its loss becomes non-finite. ``callbacks`` get every moment, the member's included."""
    member = Member(model, optimizer, generator, scheduler, list(callbacks), resume)
    fit_members([member], data, epochs=epochs, batch_size=batch_size, eval_batch_size=eval_batch_size,
                progress=progress, amp=amp, compiled=compiled, cuda_graph=cuda_graph, callbacks=callbacks)  # fmt: skip
    if member.diverged is not None:
        raise member.diverged
    return member.history


def fit_members(
    members: Sequence[Member],
    data: Dataset,
    *,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    progress: bool = True,
    amp: bool = False,
    compiled: bool | str = False,
    cuda_graph: bool = False,
    packed: bool = False,
    callbacks: Sequence[Callback] = (),
) -> None:
    """Train every member for ``epochs`` epochs, evaluating on the test split after each one.

    ``packed``: the members run as one batched model (``training.packed``), else there is one
    member, called directly. Everything else is the same loop: ``data.augment`` (if any)
    transforms training batches only, drawing from a generator on the data's device seeded from
    the member's ``generator``; a member's ``scheduler`` steps after each evaluation. ``amp``
    (CUDA only) runs bf16 autocast (channels_last for a lone model); ``compiled``
    (``trainer.compile``, lone runs only: see :func:`compile_mode`) trains and evaluates through
    ``torch.compile(model)``; ``cuda_graph`` (``trainer.cuda_graph``, CUDA and lone runs only)
    replays each full-size step as one CUDA graph (``training.cuda_graph``).

    After each epoch each member's callbacks get ``on_checkpoint`` with everything needed to
    continue bit for bit (``records.checkpoints``), the state of every stateful callback
    included (an activation's kernel state: where ``auto`` switches kernels depends on the work
    done so far); a member's ``resume`` is such a checkpoint. A member whose loss becomes
    non-finite gets ``Diverged`` (its epoch and step) in :attr:`Member.diverged` and
    ``on_diverged`` at the end of that epoch (the steps after it are wasted work, never
    recorded), and trains no further; the others go on. A step never reads the device: losses
    are read once per epoch.
    """
    from mila_bench.activations import run_state
    from mila_bench.records import checkpoints
    from tqdm.auto import tqdm

    device = data.train.labels.device
    amp = amp and device.type == "cuda"
    mode = compile_mode(compiled, device)
    if packed and mode is not None:
        raise UsageError("trainer.compile does not apply to packed runs; allowed: trainer.compile=false with packing")
    check_cuda_graph(cuda_graph, device, mode, packed)
    loop_callbacks = [*callbacks, *(KeepRunState(state) for state in run_state())]
    stateful = [c for c in loop_callbacks if c.state_key is not None]
    for member in members:
        if not packed and amp:
            member.model = member.model.to(memory_format=torch.channels_last)
        if data.augment is not None:
            seed = int(torch.randint(0, 2**62, (), generator=member.generator))
            member.augment_generator = torch.Generator(device=device).manual_seed(seed)
        if member.resume is not None:
            _resume(member, member.resume, stateful, checkpoints)
    steps = -(-len(data.train) // batch_size)
    call, active = None, []
    for epoch in range(min(m.first_epoch for m in members), epochs + 1):
        now = [m for m in members if m.diverged is None and m.first_epoch <= epoch]
        if not now:
            break
        if now != active:  # the first epoch, or members diverged or (resumed behind) joined: (re)pack
            if call is not None:
                call.close()
            call, active = (PackCall(now, amp) if packed else LoneCall(now[0], mode, amp, cuda_graph)), now
        call.train(True)
        start = time.perf_counter()
        loss_sums = torch.zeros(len(active), device=device)
        step_losses = torch.zeros(len(active), steps, device=device)
        for c in loop_callbacks:
            c.on_epoch_start(epoch)
        batches = zip(*(data.train.batches(batch_size, m.generator) for m in active))
        with tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress) as bar:
            for step, drawn in enumerate(batches, start=1):
                for c in loop_callbacks:
                    c.on_step_start(epoch, step)
                images, labels = [], []
                for member, (x, y) in zip(active, drawn):
                    if member.augment_generator is not None:
                        x = data.augment(x, member.augment_generator)
                    if amp and not packed:
                        x = x.contiguous(memory_format=torch.channels_last)
                    images.append(x)
                    labels.append(y)
                losses = call.train_step(images, labels)
                loss_sums += losses
                step_losses[:, step - 1] = losses  # kept on the device; checked once, after the epoch
                for c in loop_callbacks:
                    c.on_step_end(epoch, step)
                bar.update()
        totals = epoch_totals(loss_sums, step_losses)  # the epoch's one read (waits for the device)
        seconds = time.perf_counter() - start
        for c in loop_callbacks:
            c.on_epoch_trained(epoch)
        going = []
        for member, (total, bad_step) in zip(active, totals):
            if bad_step:
                member.diverged = Diverged(epoch, bad_step, member.history)
                for c in member.callbacks:
                    c.on_diverged(member.diverged)
            else:
                going.append((member, total))
        if not going:
            continue
        call.train(False)
        penalties = [getattr(m.model, "kernel_penalty", lambda: None)() for m in active]
        tested = evaluate_outputs(call.outputs, penalties, data.test, eval_batch_size, amp)
        for (member, total), found in zip(going, [t for t, (_, bad) in zip(tested, totals) if not bad]):
            _end_epoch(member, active.index(member), call, epoch, total / steps, total, seconds, found, stateful)
    if call is not None:
        call.close()


def _end_epoch(member: Member, index: int, call, epoch: int, mean: float, total: float, seconds: float,
               found: dict[str, float], stateful: Sequence[Callback]) -> None:  # fmt: skip
    """A member's epoch recorded: its metrics, its schedule's step, its checkpoint."""
    from mila_bench.records import checkpoints

    scheduler = member.scheduler
    lr = scheduler.lr() if scheduler is not None else None
    metrics = EpochMetrics(epoch=epoch, train_loss_sum=total, train_loss=mean, seconds=seconds, lr=lr, **found)
    if scheduler is not None:  # Keras' plateau watched its val_loss, where it is recorded
        scheduler.step(metrics.test_loss if metrics.keras_val_loss is None else metrics.keras_val_loss)
    member.history.append(metrics)
    state = {
        "epoch": epoch,
        "model": call.model_state(index),
        "optimizer": call.optimizer_state(index),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": [m.as_dict() for m in member.history],
        "rng": checkpoints.rng_state(member.generators()),
        **{c.state_key: c.state_dict() for c in stateful},
    }
    for c in member.callbacks:
        c.on_checkpoint(state)
    for c in member.callbacks:
        c.on_epoch_end(metrics)


def _resume(member: Member, resume: dict, stateful: Sequence[Callback], checkpoints) -> None:
    """Continue ``member`` from a checkpoint: weights, optimizer, schedule, random streams, history,
    and the state of the stateful callbacks (absent from checkpoints written before it was kept)."""
    member.model.load_state_dict(resume["model"])
    member.optimizer.load_state_dict(resume["optimizer"])
    if member.scheduler is not None:
        member.scheduler.load_state_dict(resume["scheduler"])
    member.history = [EpochMetrics(**m) for m in resume["history"]]
    checkpoints.restore_rng_state(resume["rng"], member.generators())
    for c in stateful:
        if resume.get(c.state_key) is not None:
            c.load_state_dict(resume[c.state_key])
    member.first_epoch = int(resume["epoch"]) + 1
