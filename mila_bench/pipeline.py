"""One run, end to end: config → data → model (+activation) → fit/evaluate → record.

``train(cfg)`` is the single entry point that the CLI, ``demo.py`` and (later) sweeps call.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import torch

    from mila_bench.data import Dataset

from mila_bench.engine import EpochMetrics


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    history: list[EpochMetrics]
    summary: dict
    model: torch.nn.Module | None = None  # the trained model, for callers that inspect or reuse it


def train(cfg: DictConfig, on_epoch: Callable[[EpochMetrics], None] | None = None) -> RunResult:
    """Train and evaluate as ``cfg`` says, then record the run and its Results.md row.

    Every check that can fail on user input runs before training starts. The run's folder is
    created when training starts (status ``running``) and gets a checkpoint and the metrics
    so far after every epoch, so ``trainer.resume=true`` can continue a killed run; the
    Results.md row is written once, at completion. A diverged run is recorded as such.
    """
    import torch

    from mila_bench import activations, checkpoints, runs
    from mila_bench.config import validate
    from mila_bench.engine import Diverged
    from mila_bench.errors import RunDiverged
    from mila_bench.data import load_dataset
    from mila_bench.engine import select_device

    validate(cfg)
    results_dir, markdown = Path(cfg.results.dir), Path(cfg.results.markdown)
    runs.check_writable(results_dir, markdown)
    device = select_device(str(cfg.device))
    apply_threads(cfg)

    data = load_dataset(cfg.dataset)
    data.train, data.test = data.train.to(device), data.test.to(device)

    if cfg.trainer.get("deterministic"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
        torch.use_deterministic_algorithms(True)

    act_name = cfg.activation.name
    act_params = activations.activation_factory(cfg.activation)().params
    amp, compiled = bool(cfg.trainer.get("amp", False)), bool(cfg.trainer.get("compile", False))
    resume = None
    if cfg.trainer.get("resume"):
        run_dir = runs.find_resumable(results_dir, cfg)
        resume = checkpoints.load(run_dir / checkpoints.CHECKPOINT_NAME)
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["resumed_from_epoch"] = [*summary.get("resumed_from_epoch", []), int(resume["epoch"])]
        run_id = run_dir.name
    else:
        run_id = runs.new_run_id(data.name, cfg.model.name, act_name, cfg.seed)
        summary = {
            "run_id": run_id,
            "status": "running",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "dataset": data.name,
            "data": data.info,
            "model": cfg.model.name,
            "initialization": cfg.model.get("initialization"),
            "model_config": OmegaConf.to_container(cfg.model, resolve=True),
            "scheduler": OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None,
            "amp": "bf16 autocast + channels_last" if amp and device.type == "cuda" else ("off (CPU)" if amp else "off"),
            "compile": compiled,
            "deterministic": bool(cfg.trainer.get("deterministic", False)),
            "activation": act_name,
            "activation_params": act_params,
            "learnable_beta": bool(cfg.activation.get("learnable_beta", False)),
            "seed": cfg.seed,
            "epochs": cfg.trainer.epochs,
            "device": str(device),
            "versions": {"torch": torch.__version__, "python": platform.python_version()},
        }
        run_dir = runs.start_run(results_dir, run_id, OmegaConf.to_yaml(cfg, resolve=True), summary)

    def save_checkpoint(state: dict) -> None:
        runs.write_metrics(run_dir, state["history"])  # first: a checkpoint never runs ahead of its metrics
        checkpoints.save(run_dir / checkpoints.CHECKPOINT_NAME, state)

    try:
        model, history = fit_model(cfg, data, device, cfg.seed, on_epoch, resume, save_checkpoint)
    except Diverged as err:
        summary.update(status="diverged", diverged={"epoch": err.epoch, "step": err.step})
        runs.write_summary(run_dir, summary)
        raise RunDiverged(
            f"run diverged: non-finite training loss at epoch {err.epoch}, step {err.step} "
            f"(optimizer.lr={cfg.optimizer.lr}); recorded as diverged in {run_dir}, no Results.md row"
        ) from None

    summary.update(
        status="completed",
        learned=activations.learned_values(model),
        parameters=sum(p.numel() for p in model.parameters()),
        train_seconds=sum(m.seconds for m in history),
        final=history[-1].as_dict(),
        checkpoint_bytes=(run_dir / checkpoints.CHECKPOINT_NAME).stat().st_size,
    )
    runs.write_summary(run_dir, summary)
    runs.append_row(markdown, section_name(summary), results_row(summary))
    return RunResult(run_id, run_dir, history, summary, model)


def apply_threads(cfg: DictConfig) -> None:
    """Set torch's CPU threads to ``trainer.threads`` when given (parallel sweep jobs share the
    cores instead of each taking all; the thread count also changes the last bits of results)."""
    import torch

    if cfg.trainer.get("threads"):
        torch.set_num_threads(int(cfg.trainer.threads))


def fit_model(
    cfg: DictConfig,
    data: Dataset,
    device: torch.device,
    seed: int,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    resume: dict | None = None,
    on_checkpoint: Callable[[dict], None] | None = None,
) -> tuple[torch.nn.Module, list[EpochMetrics]]:
    """Build the configured model (with its activation), optimizer and schedule, seeded with
    ``seed``, and train it on ``data``. This is the part of a run that ``train`` records and
    the analysis studies reuse unrecorded; returns (model, per-epoch metrics). ``resume`` and
    ``on_checkpoint`` pass through to ``engine.fit``."""
    from mila_bench import activations
    from mila_bench.engine import build_optimizer, fit, seed_everything
    from mila_bench.models import build_model
    from mila_bench.schedules import build_scheduler

    make_activation = activations.activation_factory(cfg.activation)
    generator = seed_everything(seed)
    model = build_model(cfg.model, make_activation, data.input_shape, data.num_classes).to(device)
    # Models with per-parameter decay (ResNet's Keras-style kernel L2) give their own groups.
    param_groups = getattr(model, "param_groups", None)
    params = param_groups(cfg.optimizer.get("weight_decay", 0.0)) if param_groups else model.parameters()
    optimizer = build_optimizer(cfg.optimizer, params)
    history = fit(
        model,
        data,
        optimizer,
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        eval_batch_size=cfg.trainer.eval_batch_size,
        generator=generator,
        progress=cfg.trainer.progress,
        on_epoch=on_epoch,
        scheduler=build_scheduler(cfg.get("scheduler"), optimizer, cfg.trainer.epochs),
        amp=bool(cfg.trainer.get("amp", False)),
        compiled=bool(cfg.trainer.get("compile", False)),
        resume=resume,
        on_checkpoint=on_checkpoint,
    )
    return model, history


def section_name(summary: dict) -> str:
    """The Results.md section of a run: its (dataset, model), plus depth and version for ResNets."""
    section = f"{summary['dataset']} · {summary['model']}"
    if summary["model"] == "resnet":
        model = summary["model_config"]
        section += f" · depth {model['depth']} · v{model['version']}"
    return section


def results_row(summary: dict) -> dict[str, object]:
    """A run's Results.md row, from its summary.json (so ``mila-bench report`` rebuilds the same rows)."""
    final, params = summary["final"], summary["activation_params"]
    return {
        "Activation": activation_label(summary["activation"], params),
        "β": beta_label(params, summary["learned"] if summary.get("learnable_beta") else None),
        "Initialization": summary.get("initialization") or "—",
        "Seed": summary["seed"],
        "Epochs": summary["epochs"],
        "Top-1 (%)": f"{100 * final['top1']:.2f}",
        "Top-3 (%)": f"{100 * final['top3']:.2f}",
        "Top-5 (%)": f"{100 * final['top5']:.2f}",
        "Test loss": f"{final['test_loss']:.4f}",
        "Train time (s)": f"{summary['train_seconds']:.1f}",
        "Run": summary["run_id"],
    }


def activation_label(name: str, params: dict[str, float]) -> str:
    """The activation with its non-β parameters, e.g. ``aria2 (alpha=1.5)``."""
    others = ", ".join(f"{k}={v:g}" for k, v in params.items() if k != "beta")
    return f"{name} ({others})" if others else name


def beta_label(params: dict[str, float], learned: dict[str, float] | None) -> str:
    """β as configured; for a learned β, its start and the mean learned value."""
    if "beta" not in params:
        return "—"
    if learned:
        betas = [v for k, v in learned.items() if k.endswith("beta")]
        return f"learned {params['beta']:g} → {sum(betas) / len(betas):.3g}"
    return f"{params['beta']:g}"
