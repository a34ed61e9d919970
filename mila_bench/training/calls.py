"""How a training step calls the model: one member directly, or N members as one batched model.

The loop (``engine.fit_members``) is the same for both; only these differ: :class:`LoneCall`
runs one model (through ``torch.compile`` when asked, or its whole step as a CUDA graph), and
:class:`PackCall` runs N members' models as one (``training.packed``) with one optimizer over
their stacked weights. Each gives the loop a member's state in a lone run's format for its checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from mila_bench.errors import UsageError
from mila_bench.training.checks import GRAPH_MODES, check_compile, check_step_graph
from mila_bench.training.member import Member


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy. For models ending in ``log_softmax`` it equals the original's NLLLoss,
    since log_softmax of log-probabilities is the identity; so one loss serves every model."""
    return F.cross_entropy(output, target)


def mixed_precision(enabled: bool):
    """bf16 autocast on CUDA (no loss scaling needed: bf16 has float32's exponent range)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled else nullcontext()


def compile_mode(value: object, device: torch.device) -> str | None:
    """:func:`check_compile` for ``device``: CUDA graphs exist only on CUDA, so elsewhere the
    CUDA-graph modes become their graph-free equivalents (CPU runs are unaffected by the choice)."""
    mode = check_compile(value)
    if mode is not None and device.type != "cuda":
        mode = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}.get(mode, mode)
    return mode


def check_cuda_graph(enabled: bool, device: torch.device, mode: str | None, packed: bool) -> None:
    """``trainer.cuda_graph=true`` replays a lone run's step on CUDA; anywhere else it is one clear line."""
    if not enabled:
        return
    if device.type != "cuda":
        raise UsageError(f"trainer.cuda_graph=true replays CUDA graphs, but this run's device is {device.type}; "
                         "allowed there: trainer.cuda_graph=false")  # fmt: skip
    check_step_graph(enabled, mode)
    if packed:
        raise UsageError("trainer.cuda_graph=true captures one model's step; a packed run does not take it; "
                         "allowed: trainer.cuda_graph=true unpacked")  # fmt: skip


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


class LoneCall:
    """One member's model, called directly (through torch.compile when asked; its whole step, the
    compiled model's included, replayed as a CUDA graph with ``graph``, see ``training.cuda_graph``)."""

    def __init__(self, member: Member, mode: str | None, amp: bool, graph: bool = False) -> None:
        self.member, self.amp = member, amp
        self.run_model = compile_model(member.model, mode)
        self.cuda_graphs = mode in GRAPH_MODES  # compile_mode keeps these on CUDA only
        self.graphed = None
        if graph:
            from mila_bench.training.cuda_graph import GraphedStep

            self.graphed = GraphedStep(member.model, member.optimizer, self._loss)

    def _loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with mixed_precision(self.amp):
            return loss_fn(self.run_model(images), labels)

    def train_step(self, images: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        """One step of training: the losses (one), detached."""
        if self.graphed is not None:
            return self.graphed(images[0], labels[0]).reshape(1)
        self.zero_grad()
        losses = self.losses(images, labels)
        losses.sum().backward()
        self.step()
        return losses.detach()

    def train(self, mode: bool) -> None:
        self.run_model.train(mode)

    def zero_grad(self) -> None:
        self.member.optimizer.zero_grad(set_to_none=True)

    def losses(self, images: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        if self.cuda_graphs:  # a new iteration: the graphs may reuse the last step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        return self._loss(images[0], labels[0]).reshape(1)

    def step(self) -> None:
        self.member.optimizer.step()

    def outputs(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [self.run_model(images)]

    def model_state(self, index: int) -> dict:
        return self.member.model.state_dict()

    def optimizer_state(self, index: int) -> dict:
        return self.member.optimizer.state_dict()

    def close(self) -> None: ...


class PackCall:
    """N members' models as one batched model (``training.packed``) with one optimizer over their stacks."""

    def __init__(self, members: Sequence[Member], amp: bool) -> None:
        from mila_bench.training.packed import PackedModel, PackOptimizer

        self.members, self.amp = list(members), amp
        self.pack = PackedModel([m.model for m in self.members])
        self.optimizer = PackOptimizer(self.pack, [m.optimizer for m in self.members])
        self.optimizer.load_member_states([m.optimizer.state_dict() for m in self.members])

    def train(self, mode: bool) -> None:
        self.pack.train(mode)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def losses(self, images: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        x, y = torch.stack(images), torch.stack(labels)
        with mixed_precision(self.amp):
            out = self.pack(x)
        n, batch = y.shape
        return F.cross_entropy(out.flatten(0, 1).float(), y.flatten(), reduction="none").view(n, batch).mean(dim=1)

    def step(self) -> None:
        self.optimizer.step()

    def train_step(self, images: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        """One step of training for every member: their losses, detached."""
        self.zero_grad()
        losses = self.losses(images, labels)
        losses.sum().backward()
        self.step()
        return losses.detach()

    def outputs(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(self.pack(images, shared_input=True).unbind())

    def model_state(self, index: int) -> dict:
        """A member's weights as a lone run's state dict: its own contiguous tensors, not views of the stacks."""
        state = self.members[index].model.state_dict()
        return {k: v.clone(memory_format=torch.contiguous_format) for k, v in state.items()}

    def optimizer_state(self, index: int) -> dict:
        return self.optimizer.member_state(index)

    def close(self) -> None:
        """Hand each member its optimizer state back (its own optimizer holds it while unpacked)."""
        for i, member in enumerate(self.members):
            member.optimizer.load_state_dict(self.optimizer.member_state(i))
