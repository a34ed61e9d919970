"""A lone run's whole training step replayed as one CUDA graph (``trainer.cuda_graph=true``).

A small model's step on a GPU is bound by launching its kernels, not by running them (ResNet-20
at batch 32: hundreds of kernels of a few microseconds each). Captured once, the step's
forward, backward and optimizer update replay as one graph launch. What that needs: the batch
copied into static input buffers, the optimizer's state on the device (``capturable``), and
nothing in the step that reads the device from the host (the loop reads losses once an epoch).

A run is a function of its config, so capturing must not change it: the warm-up steps that CUDA
graphs need before capture run on a copy of the first batch and are then undone (weights,
buffers and optimizer state put back as they were), and the learning rate, a constant inside
the graph, is captured again whenever the schedule changes it. A batch of another size (the
last, partial one) runs eagerly through the same optimizer.

With ``trainer.compile`` in a mode without CUDA graphs of its own (``true``, ``default``,
``max-autotune-no-cudagraphs``) the model in the step is the compiled one: the warm-up steps
compile it, and the graph replays Inductor's fused kernels (BatchNorm with the activation, one
pass over memory), which a graph of the eager model cannot fuse.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

#: Steps run before capture (CUDA graphs need the kernels' lazy initialisation done; 3 is PyTorch's recipe).
WARMUP_STEPS = 3


class GraphedStep:
    """``step(images, labels) -> loss``: one training step, replayed from a CUDA graph when the
    batch has the captured shape, eager otherwise. ``loss(images, labels)`` runs the model (its
    autocast included) and returns the batch's loss."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.model, self.optimizer, self.loss = model, optimizer, loss
        if any(p.is_cuda for g in optimizer.param_groups for p in g["params"]):
            for group in optimizer.param_groups:  # the step count and moments stay on the device
                group["capturable"] = True
            optimizer.defaults["capturable"] = True
        self.graph: torch.cuda.CUDAGraph | None = None
        self.shape: tuple[int, ...] | None = None
        self.lrs: list[float] | None = None
        self.static: tuple[Tensor, Tensor, Tensor] | None = None  # images, labels, loss

    def _eager(self, images: Tensor, labels: Tensor) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(images, labels)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _snapshot(self) -> dict:
        tensors = {f"m.{k}": v.detach().clone() for k, v in self.model.state_dict(keep_vars=True).items()}
        state = {id(p): {k: v.clone() for k, v in s.items() if isinstance(v, Tensor)} for p, s in self.optimizer.state.items()}
        return {"model": tensors, "optimizer": state}

    @torch.no_grad()
    def _restore(self, snapshot: dict) -> None:
        for k, v in self.model.state_dict(keep_vars=True).items():
            v.copy_(snapshot["model"][f"m.{k}"])
        for param, state in self.optimizer.state.items():
            before = snapshot["optimizer"].get(id(param), {})
            for key, value in state.items():
                if isinstance(value, Tensor):
                    value.copy_(before[key]) if key in before else value.zero_()  # a fresh state is zeros, step 0

    def _capture(self, images: Tensor, labels: Tensor) -> None:
        self.static = (images.clone(), labels.clone(), torch.empty((), device=images.device))
        if self.graph is None:  # first capture: warm up on a side stream, then undo the warm-up steps
            snapshot = self._snapshot()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self._eager(self.static[0], self.static[1])
            torch.cuda.current_stream().wait_stream(side)
            self._restore(snapshot)
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            loss = self.loss(self.static[0], self.static[1])
            loss.backward()
            self.optimizer.step()
        self.static = (self.static[0], self.static[1], loss)
        self.shape = tuple(images.shape)
        self.lrs = [g["lr"] for g in self.optimizer.param_groups]

    def __call__(self, images: Tensor, labels: Tensor) -> Tensor:
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.shape is not None and tuple(images.shape) != self.shape:
            return self._eager(images, labels)
        if self.graph is None or lrs != self.lrs:
            self._capture(images, labels)
        assert self.static is not None and self.graph is not None
        self.static[0].copy_(images)
        self.static[1].copy_(labels)
        self.graph.replay()
        return self.static[2]
