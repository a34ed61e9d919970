"""One run, end to end: config → data → model (+activation) → fit/evaluate → record.

``train(cfg)`` is the single entry point that the CLI, ``demo.py`` and (later) sweeps call.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import torch

    from mila_bench.data.splits import Dataset

from mila_bench.training.engine import EpochMetrics
from mila_bench.errors import RunDiverged


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    history: list[EpochMetrics]
    summary: dict
    reused: bool = False  # trainer.resume=true found this config already completed: nothing was trained
    model: torch.nn.Module | None = None  # the trained model, for callers that inspect or reuse it


def train(
    cfg: DictConfig, on_epoch: Callable[[EpochMetrics], None] | None = None, tags: Mapping | None = None
) -> RunResult:
    """Train and evaluate as ``cfg`` says, then record the run and its Results.md row.

    Every check that can fail on user input runs before training starts. The run's folder is
    created when training starts (status ``running``) and gets a checkpoint and the metrics
    so far after every epoch; the Results.md row is written once, at completion. A diverged
    run is recorded as such. ``tags`` go into summary.json as they are (e.g. the reproduction a
    run belongs to).

    ``trainer.resume=true`` makes re-running the same command after a crash do the right thing
    for this config: a completed run is returned as recorded (not trained again, no new row);
    an unfinished one continues from its last checkpoint in its own folder, or starts again
    there when it was killed before its first checkpoint; with no run, a fresh one starts.
    """
    import torch

    from mila_bench import activations
    from mila_bench.records import checkpoints
    from mila_bench.records import results_md
    from mila_bench.records import runs
    from mila_bench.config import validate
    from mila_bench.training.engine import Diverged
    from mila_bench.data.load import load_dataset
    from mila_bench.training.engine import select_device
    from mila_bench.training.run_settings import run_settings

    validate(cfg)
    results_dir, markdown = Path(cfg.results.dir), Path(cfg.results.markdown)
    runs.check_writable(results_dir, markdown)
    previous = runs.find_resumable(results_dir, cfg) if cfg.trainer.get("resume") else None
    if previous and previous[1] == "completed":
        return recorded_result(previous[0])
    if previous and previous[1] == "diverged":
        raise RunDiverged(
            f"trainer.resume=true: this config's run {previous[0]} already diverged (recorded, no Results.md row); "
            "the same config and seed would diverge again, so it is not re-run"
        )
    device = select_device(str(cfg.device))
    # Threads, determinism, precision flags and Mila's kernels from cfg alone; restored after the run.
    with run_settings(cfg) as settings:
        data = load_dataset(cfg.dataset)
        data.train, data.test = data.train.to(device), data.test.to(device)

        act_name = cfg.activation.name
        act_params = activations.activation_factory(cfg.activation)().params
        amp, compiled = bool(cfg.trainer.get("amp", False)), cfg.trainer.get("compile", False)
        resume = None
        if previous:  # unfinished: continue from its checkpoint, or start again in its folder (epoch 0)
            run_dir = previous[0]
            if (run_dir / checkpoints.CHECKPOINT_NAME).exists():
                resume = checkpoints.load(run_dir / checkpoints.CHECKPOINT_NAME)
            summary = json.loads((run_dir / "summary.json").read_text())
            summary["resumed_from_epoch"] = [*summary.get("resumed_from_epoch", []), int(resume["epoch"]) if resume else 0]
            summary["resumed_environment"] = [
                *summary.get("resumed_environment", []), environment(device, bool(cfg.trainer.get("deterministic", False)))
            ]
            runs.write_summary(run_dir, summary)
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
                **_activation_source(cfg.activation),
                "learnable_beta": bool(cfg.activation.get("learnable_beta", False)),
                "seed": cfg.seed,
                "epochs": cfg.trainer.epochs,
                "device": str(device),
                "versions": {"torch": torch.__version__, "python": platform.python_version()},
                "environment": environment(device, bool(cfg.trainer.get("deterministic", False))),
                **(tags or {}),
            }
            run_dir = runs.start_run(results_dir, run_id, OmegaConf.to_yaml(cfg, resolve=True), summary)

        def save_checkpoint(state: dict) -> None:
            runs.write_metrics(run_dir, state["history"])  # first: a checkpoint never runs ahead of its metrics
            checkpoints.save(run_dir / checkpoints.CHECKPOINT_NAME, state)

        try:
            model, history = fit_model(cfg, data, device, cfg.seed, on_epoch, resume, save_checkpoint)
        except Diverged as err:
            summary.update(status="diverged", diverged={"epoch": err.epoch, "step": err.step}, process=settings.record())
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
        process=settings.record(),
    )
    runs.write_summary(run_dir, summary)
    results_md.append_row(markdown, results_md.section_name(summary), results_md.results_row(summary))
    return RunResult(run_id, run_dir, history, summary, model=model)


def recorded_result(run_dir: Path) -> RunResult:
    """A completed run as its record holds it (summary.json, metrics.csv), without training."""
    import pandas as pd

    summary = json.loads((run_dir / "summary.json").read_text())
    rows = pd.read_csv(run_dir / "metrics.csv").to_dict("records")
    history = [EpochMetrics(**{k: (None if pd.isna(v) else v) for k, v in row.items()}) for row in rows]
    return RunResult(summary.get("run_id", run_dir.name), run_dir, history, summary, reused=True)


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
    ``on_checkpoint`` pass through to ``engine.fit``. Runs in ``cfg``'s run settings
    (``training.run_settings``): those of the ``train`` that called it, else its own."""
    from mila_bench.training.run_settings import run_settings

    with run_settings(cfg):  # the calling train's settings, or (analysis studies) its own
        from mila_bench import activations
        from mila_bench.training.engine import build_optimizer, fit, seed_everything
        from mila_bench.models import build_model
        from mila_bench.training.schedules import build_scheduler

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
            compiled=cfg.trainer.get("compile", False),
            resume=resume,
            on_checkpoint=on_checkpoint,
        )
        return model, history


def environment(device: torch.device, deterministic: bool) -> dict[str, object]:
    """What changes the numbers beyond the config: two runs are bitwise equal only when these match too."""
    import torch

    cuda = device.type == "cuda"
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device_type": device.type,
        "device_name": torch.cuda.get_device_name(device) if cuda else None,
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "deterministic": deterministic,
    }


def cpu_model() -> str:
    """The CPU's model name (floating-point results can differ between instruction sets)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _activation_source(cfg: DictConfig) -> dict[str, str]:
    """For a plugin or custom target: what was imported and from where (summary.json)."""
    from mila_bench.activations import entry_for

    entry = entry_for(cfg)
    return {"activation_target": entry.target, "activation_origin": entry.origin} if entry.target else {}
