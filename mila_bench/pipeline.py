"""One run, end to end: config → data → model (+activation) → fit/evaluate → record.

``train(cfg)`` is the single entry point that the CLI, ``demo.py`` and (later) sweeps call.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mila_bench.engine import EpochMetrics


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    history: list[EpochMetrics]
    summary: dict


def train(cfg: DictConfig, on_epoch: Callable[[EpochMetrics], None] | None = None) -> RunResult:
    """Train and evaluate as ``cfg`` says, then record the run and its Results.md row.

    Every check that can fail on user input runs before training starts, and nothing is
    written to the results folder or Results.md unless the run completes.
    """
    import torch

    from mila_bench import activations, runs
    from mila_bench.config import ACTIVATION_SETTINGS, validate
    from mila_bench.data import load_dataset
    from mila_bench.engine import build_optimizer, fit, seed_everything, select_device
    from mila_bench.models import build_model

    validate(cfg)
    results_dir, markdown = Path(cfg.results.dir), Path(cfg.results.markdown)
    runs.check_writable(results_dir, markdown)
    device = select_device(str(cfg.device))

    data = load_dataset(cfg.dataset)
    data.train, data.test = data.train.to(device), data.test.to(device)

    act_name = cfg.activation.name
    act_params = activations.resolve_params(
        act_name, {k: v for k, v in cfg.activation.items() if k not in ACTIVATION_SETTINGS}
    )
    generator = seed_everything(cfg.seed)
    model = build_model(
        cfg.model, lambda: activations.get_activation(act_name, **act_params), data.input_shape, data.num_classes
    ).to(device)
    optimizer = build_optimizer(cfg.optimizer, model.parameters())

    started = time.time()
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
    )

    run_id = runs.new_run_id(data.name, cfg.model.name, act_name, cfg.seed)
    final = history[-1]
    train_seconds = sum(m.seconds for m in history)
    summary = {
        "run_id": run_id,
        "status": "completed",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "dataset": data.name,
        "data": data.info,
        "model": cfg.model.name,
        "initialization": cfg.model.get("initialization"),
        "activation": act_name,
        "activation_params": act_params,
        "seed": cfg.seed,
        "epochs": cfg.trainer.epochs,
        "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_seconds,
        "final": final.as_dict(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    run_dir = runs.write_run(
        results_dir, run_id, OmegaConf.to_yaml(cfg, resolve=True), [m.as_dict() for m in history], summary
    )
    section = f"{data.name} · {cfg.model.name}"
    runs.append_row(
        markdown,
        section,
        {
            "Activation": act_name,
            "β": f"{act_params['beta']:g}" if "beta" in act_params else "—",
            "Initialization": cfg.model.get("initialization", "—"),
            "Seed": cfg.seed,
            "Epochs": cfg.trainer.epochs,
            "Top-1 (%)": f"{100 * final.top1:.2f}",
            "Top-3 (%)": f"{100 * final.top3:.2f}",
            "Top-5 (%)": f"{100 * final.top5:.2f}",
            "Test loss": f"{final.test_loss:.4f}",
            "Train time (s)": f"{train_seconds:.1f}",
            "Run": run_id,
        },
    )
    return RunResult(run_id, run_dir, history, summary)
