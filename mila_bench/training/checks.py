"""The ``optimizer`` and ``trainer`` config groups checked without torch (``engine`` builds from them).

Every key is read as composed: its default is written once, in ``configs/``.
"""

from __future__ import annotations

from collections.abc import Mapping

from mila_bench.checks import finite, flag, integer
from mila_bench.errors import UsageError, unknown_name

OPTIMIZERS = ("adam", "sgd")
#: ``trainer.compile`` values besides true/false: torch.compile's modes. ``reduce-overhead``
#: replays the compiled model through CUDA graphs, removing the per-kernel launch cost that
#: dominates small-batch CUDA training (ResNet-20, batch 32); on CPU it means ``default``.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The modes that replay CUDA graphs of their own (on CUDA).
GRAPH_MODES = ("reduce-overhead", "max-autotune")


def check_compile(value: object) -> str | None:
    """``trainer.compile`` → torch.compile's mode (``true`` is ``default``), or None for eager."""
    if value is False or value is None:
        return None
    mode = "default" if value is True else value
    if mode not in COMPILE_MODES:
        allowed = ", ".join(("false", "true", *COMPILE_MODES))
        raise UsageError(f"trainer.compile={value!r} is not allowed; allowed: {allowed}")
    return mode


def check_optimizer(cfg: Mapping) -> None:
    """Name, lr > 0, and the name's own numbers (Adam's ε > 0, SGD's momentum >= 0), decay >= 0."""
    name = cfg["name"]
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", name, OPTIMIZERS)
    finite("optimizer.lr", cfg["lr"], exclusive=True)
    finite("optimizer.weight_decay", cfg["weight_decay"])
    if name == "adam":
        finite("optimizer.eps", cfg["eps"], exclusive=True)
        flag("optimizer.fused", cfg["fused"])
    else:
        finite("optimizer.momentum", cfg["momentum"])


def check_trainer(cfg: Mapping) -> None:
    """Epochs and batch sizes >= 1, threads null or >= 1, the switches true or false, a compile mode."""
    integer("trainer.epochs", cfg["epochs"], 1)
    integer("trainer.batch_size", cfg["batch_size"], 1)
    integer("trainer.eval_batch_size", cfg["eval_batch_size"], 1)
    if cfg["threads"] is not None:
        integer("trainer.threads", cfg["threads"], 1)
    for key in ("progress", "amp", "resume", "deterministic", "cuda_graph"):
        flag(f"trainer.{key}", cfg[key])
    check_step_graph(cfg["cuda_graph"], check_compile(cfg["compile"]))


def check_step_graph(cuda_graph: bool, mode: str | None) -> None:
    """``trainer.cuda_graph=true`` captures the whole step, a compiled model's included, but not
    inside a compile mode that captures CUDA graphs of its own (graphs do not nest)."""
    if cuda_graph is True and mode in GRAPH_MODES:
        allowed = ", ".join(("false", "true", *(m for m in COMPILE_MODES if m not in GRAPH_MODES)))
        raise UsageError(f"trainer.cuda_graph=true captures the whole step as one CUDA graph; trainer.compile={mode} "
                         f"replays CUDA graphs of its own inside it; allowed with trainer.cuda_graph=true: "
                         f"trainer.compile={allowed}")  # fmt: skip
