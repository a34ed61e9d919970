"""What the training loop calls out to: its extension points, as one protocol.

The loop (``training.engine``) trains and evaluates; everything else that happens at its
moments is a callback: writing the record and a checkpoint after each epoch (the pipeline),
timing steps (``training.cost.StepTimer``), and an activation's per-run kernel state (saved in
each checkpoint, so a resumed run continues exactly: see ``activations.run_state``). A callback
with a ``state_key`` has state that goes into every checkpoint under that key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mila_bench.records.schema import EpochMetrics


class Callback:
    """Every hook does nothing by default; a callback overrides the moments it cares about.

    Loop-wide callbacks see every step; a member's callbacks (``training.member.Member``) get that
    member's epoch end, checkpoint and divergence.
    """

    state_key: str | None = None  # set: state_dict() is saved in each checkpoint under this key

    def on_epoch_start(self, epoch: int) -> None: ...

    def on_step_start(self, epoch: int, step: int) -> None: ...

    def on_step_end(self, epoch: int, step: int) -> None: ...

    def on_epoch_trained(self, epoch: int) -> None:
        """After the epoch's one host read (the device has finished its steps), before evaluation."""

    def on_epoch_end(self, metrics: EpochMetrics) -> None: ...

    def on_checkpoint(self, state: dict) -> None:
        """Everything needed to continue bit for bit after this epoch (``records.checkpoints``)."""

    def on_diverged(self, error: Exception) -> None:
        """The member's training loss became non-finite (``training.member.Diverged``); it trains no further."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class EpochEnd(Callback):
    """A plain function called with each epoch's metrics (``train(cfg, on_epoch=...)``)."""

    def __init__(self, call: OnEpoch) -> None:
        self.call = call

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.call(metrics)


class RunState(Protocol):
    """Per-run state an activation keeps (its kernels' progress): see ``activations.run_state``."""

    state_key: str

    def at(self, epoch: int, step: int) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class KeepRunState(Callback):
    """An activation's per-run state as a callback: told each step, saved in each checkpoint."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.state_key = state.state_key

    def on_step_start(self, epoch: int, step: int) -> None:
        self.state.at(epoch, step)

    def state_dict(self) -> dict:
        return self.state.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.state.load_state_dict(state)


class OnEpoch(Protocol):
    def __call__(self, metrics: EpochMetrics) -> None: ...
