"""What a model costs besides accuracy: memory saved for backward, and time per training step.

The memory figure is counted, not sampled: one forward pass under
``torch.autograd.graph.saved_tensors_hooks`` sees every tensor autograd keeps for backward; the
distinct storages among them that are not the model's parameters (or its input batch, which
the data pipeline holds anyway) are what the activations cost. It depends on the model and
its activation, not on the device, which is why it is comparable across machines; an
activation that saves several intermediates (naive Mish) shows up here at once.

Step times are taken by the training loop without reading the device each step
(:class:`StepTimer`): host clocks on CPU, CUDA events on a GPU, read once per epoch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from mila_bench.data.splits import Split
from mila_bench.records.schema import Cost
from mila_bench.training.callbacks import Callback

#: Steps left out of the step-time median: the first steps pay allocator growth, caches, compilation.
WARMUP_STEPS = 5


def saved_bytes_per_image(model: nn.Module, batch: Tensor) -> float:
    """Bytes autograd keeps for backward per image of ``batch`` (one forward pass, training mode).

    Storages are counted once however many saved tensors view them; parameters and ``batch``
    itself are left out (they exist whether or not anything is trained).
    """
    excluded = {p.untyped_storage().data_ptr() for p in model.parameters()}
    excluded |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    excluded.add(batch.untyped_storage().data_ptr())
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in excluded and t.device.type != "meta":
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(batch)
        del out
    finally:
        model.train(was_training)
    return sum(seen.values()) / len(batch)


class StepTimer(Callback):
    """Per-step wall times with no host read per step: ``mark()`` after each step, ``epoch_times()`` once per epoch
    (as a training-loop callback: at each epoch's start, each step's end, and once the epoch is trained).

    On CUDA each mark records an event on the stream (the read waits for the GPU once, at the
    end of the epoch, where the loop reads its losses anyway); on CPU steps run synchronously,
    so the host clock is the step's time.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.times_ms: list[float] = []
        self._marks: list[object] = []
        self._clock: Callable[[], object] = self._cuda_event if self.cuda else time.perf_counter

    @staticmethod
    def _cuda_event() -> object:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        self._marks = [self._clock()]

    def mark(self) -> None:
        self._marks.append(self._clock())

    def epoch_times(self) -> list[float]:
        """The epoch's step times in ms (added to :attr:`times_ms`); call at the end of the epoch."""
        marks, self._marks = self._marks, []
        if self.cuda:
            if marks:
                marks[-1].synchronize()
            times = [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]
        else:
            times = [1000.0 * (b - a) for a, b in zip(marks, marks[1:])]
        self.times_ms.extend(times)
        return times

    def on_epoch_start(self, epoch: int) -> None:
        self.start()

    def on_step_end(self, epoch: int, step: int) -> None:
        self.mark()

    def on_epoch_trained(self, epoch: int) -> None:
        self.epoch_times()

    def median_ms(self) -> float | None:
        """Median step time after the warm-up steps (all steps when there are no more than those)."""
        steps = self.times_ms[WARMUP_STEPS:] or self.times_ms
        return statistics.median(steps) if steps else None


def run_cost(model: nn.Module, train: Split, batch_size: int, timer: StepTimer) -> Cost:
    """The cost of a finished run: its timer's median step, and the bytes saved for backward,
    counted on a copy of the model (so batch-norm statistics of the trained model stay as they are)
    with the first training batch in order (no random numbers drawn)."""
    import copy

    images, _ = next(train.batches(batch_size))
    step_ms = timer.median_ms()
    device = images.device
    return Cost(
        step_ms=step_ms,
        images_per_s=1000.0 * len(images) / step_ms if step_ms else None,
        saved_bytes_per_image=saved_bytes_per_image(copy.deepcopy(model), images),
        peak_cuda_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    )
