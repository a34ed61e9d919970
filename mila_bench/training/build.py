"""What a run trains, built from its config: model (with its activation), optimizer, schedule,
seeded random streams: one :class:`~mila_bench.training.member.Member` per run.

A lone run and a packed member are built the same way, so a member's initial weights and
random streams are those of the lone run with the same config and seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mila_bench.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch
    from omegaconf import DictConfig

    from mila_bench.data.splits import Dataset
    from mila_bench.training.member import Member


def build_optimizer(cfg: Mapping, params) -> torch.optim.Optimizer:
    """Adam (the original's) or SGD with momentum, from the optimizer config group as composed
    (every default is in configs/optimizer/; the CIFAR recipe sets Keras' Adam ε 1e-7)."""
    import torch

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


def build_member(cfg: DictConfig, data: Dataset, device: torch.device, seed: int) -> Member:
    """The configured model, optimizer and schedule, seeded with ``seed`` (python, numpy, torch;
    the batch order's generator too), on ``device``."""
    from mila_bench import activations
    from mila_bench.models import build_model
    from mila_bench.training.engine import seed_everything
    from mila_bench.training.member import Member
    from mila_bench.training.schedules import build_scheduler

    make_activation = activations.activation_factory(cfg.activation)
    generator = seed_everything(seed)
    model = build_model(cfg.model, make_activation, data.input_shape, data.num_classes).to(device)
    # Models with per-parameter decay (ResNet's Keras-style kernel L2) give their own groups.
    param_groups = getattr(model, "param_groups", None)
    params = param_groups(cfg.optimizer.weight_decay) if param_groups else model.parameters()
    optimizer = build_optimizer(cfg.optimizer, params)
    scheduler = build_scheduler(cfg.get("scheduler"), optimizer, cfg.trainer.epochs)
    return Member(model, optimizer, generator, scheduler)
