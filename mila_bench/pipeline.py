"""One run, end to end, in named steps: resolve → open (or resume) the record → fit → finish.

``train(cfg)`` is the single entry point that the CLI, ``demo.py``, sweeps and reproductions
call. ``cfg`` comes from ``config.compose``, which has already checked every value; the steps
read it as resolved (every key has its default in ``configs/``).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import torch

    from mila_bench.data.splits import Dataset
    from mila_bench.trackers.fanout import Trackers
    from mila_bench.training.run_settings import RunSettings

from mila_bench.errors import RunDiverged, RunInterrupted
from mila_bench.training.callbacks import Callback
from mila_bench.records.schema import Checkpoint, Cost, Divergence, EpochMetrics, Environment, Reproduction, Summary, Versions


@dataclass
class RunResult:
    """What ``train`` returns: the run's id and folder, every epoch's metrics, its summary as recorded, the model."""

    run_id: str
    run_dir: Path
    history: list[EpochMetrics]
    summary: Summary
    reused: bool = False  # trainer.resume=true found this config already completed: nothing was trained
    model: torch.nn.Module | None = None  # the trained model, for callers that inspect or reuse it


@dataclass
class Resolved:
    """What ``train`` will do for a checked config: where it records, on what, and whether it resumes."""

    results_dir: Path
    markdown: Path
    completed: Path | None = None  # trainer.resume: this config's run already completed here, train nothing
    unfinished: Path | None = None  # trainer.resume: this config's unfinished run, continued in its folder
    device: torch.device | None = None  # set when there is something to train


@dataclass
class OpenRun:
    """A run whose record exists (status ``running``): its folder, summary so far and checkpoint to continue."""

    run_dir: Path
    summary: Summary
    resume: Checkpoint | None = None

    @property
    def checkpoint(self) -> Path:
        from mila_bench.records.checkpoints import CHECKPOINT_NAME

        return self.run_dir / CHECKPOINT_NAME


def train(
    cfg: DictConfig, on_epoch: Callable[[EpochMetrics], None] | None = None, reproduction: Reproduction | None = None
) -> RunResult:
    """Train and evaluate as ``cfg`` says, then record the run and its Results.md row.

    The run's folder is created when training starts (status ``running``) and gets a checkpoint
    and the metrics so far after every epoch; the Results.md row is written once, at completion.
    The selected trackers (``logger``) follow each of these steps once the record has it.
    A diverged run is recorded as such; an interrupted one (Ctrl-C) keeps its folder and last
    checkpoint for ``trainer.resume=true`` (:class:`RunInterrupted`). ``reproduction`` tags the run
    with the published table row it reproduces.
    """
    resolved = resolve(cfg)
    if resolved.completed is not None:
        return recorded_result(resolved.completed)
    from mila_bench.models import check_buildable
    from mila_bench.training.run_settings import run_settings

    # Threads, determinism, precision flags and Mila's kernels from cfg alone, for data loading and
    # fit; restored when the run ends. What the run set and which kernels ran go into summary.process.
    with run_settings(cfg) as settings:
        data = load_data(cfg, resolved.device)
        check_buildable(cfg.model, data.input_shape, data.num_classes)  # before the record exists
        run = open_record(cfg, resolved, data, reproduction, settings.as_summary())
        views = start_trackers(cfg, resolved, run)
        try:
            model, history, cost = fit_run(cfg, data, run, _chain(views.log_epoch, on_epoch), settings)
        except BaseException:  # diverged (recorded so), interrupted or failed: the trackers end the run as recorded
            views.finish(run.summary, run.run_dir)
            raise
        process = settings.as_summary()
    result = finish(resolved, run, model, history, process, cost)
    views.finish(result.summary, run.run_dir)
    return result


def resolve(cfg: DictConfig) -> Resolved:
    """The resume policy, and every check that needs the filesystem or the machine, before any work.

    ``trainer.resume=true`` makes re-running the same command after a crash do the right thing:
    a completed run is returned as recorded (not trained again, no new row); an unfinished one
    continues from its last checkpoint in its own folder, or starts again there when it was
    killed before its first checkpoint; a diverged one is refused (it would diverge again);
    with no run, a fresh one starts.
    """
    from mila_bench.data.files import check_obtainable
    from mila_bench.records import runs
    from mila_bench.training.device_check import check_cuda_possible

    resolved = Resolved(Path(cfg.results.dir), Path(cfg.results.markdown))
    runs.check_writable(resolved.results_dir, resolved.markdown)
    previous = runs.find_resumable(resolved.results_dir, cfg) if cfg.trainer.resume else None
    if previous and previous[1] == "completed":
        return replace(resolved, completed=previous[0])
    if previous and previous[1] == "diverged":
        raise RunDiverged(
            f"trainer.resume=true: this config's run {previous[0]} already diverged (recorded, no Results.md row); "
            "the same config and seed would diverge again, so it is not re-run"
        )
    check_cuda_possible(str(cfg.device))  # these two answer before torch is imported where they can
    check_obtainable(cfg.dataset)
    from mila_bench.training.engine import check_cuda_graph, select_device

    device = select_device(str(cfg.device))
    check_cuda_graph(cfg.trainer.cuda_graph, device, None, packed=False)  # before any record exists
    return replace(resolved, unfinished=previous[0] if previous else None, device=device)


def load_data(cfg: DictConfig, device: torch.device) -> Dataset:
    """The configured dataset, both splits already on the training device."""
    from mila_bench.data.load import load_dataset

    data = load_dataset(cfg.dataset)
    data.train, data.test = data.train.to(device), data.test.to(device)
    return data


def open_record(
    cfg: DictConfig, resolved: Resolved, data: Dataset, reproduction: Reproduction | None, process: dict | None
) -> OpenRun:
    """Create the run's folder (config.yaml, summary.json with status ``running``), or reopen the
    unfinished run ``resolved`` resumes: its last checkpoint, and the resumption noted in its summary."""
    from mila_bench.records import checkpoints, runs

    if resolved.unfinished is None:
        summary = new_summary(cfg, data, resolved.device, reproduction, process)
        run_dir = runs.start_run(resolved.results_dir, summary.run_id, OmegaConf.to_yaml(cfg, resolve=True), summary)
        return OpenRun(run_dir, summary)
    run_dir = resolved.unfinished
    path = run_dir / checkpoints.CHECKPOINT_NAME
    # The checkpoint first: a corrupt one is refused before anything in the folder changes.
    resume = checkpoints.load(path) if path.exists() else None
    epoch = int(resume["epoch"]) if resume else 0
    summary = runs.read_summary(run_dir)
    summary = replace(
        summary,
        resumed_from_epoch=[*(summary.resumed_from_epoch or []), epoch],
        resumed_environment=[*(summary.resumed_environment or []), environment(resolved.device, cfg.trainer.deterministic)],
    )
    runs.write_summary(run_dir, summary)
    return OpenRun(run_dir, summary, resume)


def new_summary(
    cfg: DictConfig, data: Dataset, device: torch.device, reproduction: Reproduction | None, process: dict | None
) -> Summary:
    """The summary of a run that starts now (status ``running``), from its config, data and machine."""
    import torch

    from mila_bench import activations
    from mila_bench.records import runs

    amp = cfg.trainer.amp
    return Summary(
        run_id=runs.new_run_id(data.name, cfg.model.name, cfg.activation.name, cfg.seed),
        status="running",
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        dataset=data.name,
        data=data.info,
        model=cfg.model.name,
        initialization=cfg.model.get("initialization"),  # only some models have one
        model_config=OmegaConf.to_container(cfg.model, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None,
        amp="bf16 autocast + channels_last" if amp and device.type == "cuda" else ("off (CPU)" if amp else "off"),
        compile=cfg.trainer.compile,
        deterministic=cfg.trainer.deterministic,
        activation=cfg.activation.name,
        activation_params=activations.activation_factory(cfg.activation)().params,
        **_activation_source(cfg.activation),
        learnable_beta=bool(cfg.activation.get("learnable_beta", False)),  # only activations with a β have it
        seed=cfg.seed,
        epochs=cfg.trainer.epochs,
        device=str(device),
        versions=Versions(torch=torch.__version__, python=platform.python_version()),
        environment=environment(device, cfg.trainer.deterministic),
        reproduction=reproduction,
        process=process,
    )


def start_trackers(cfg: DictConfig, resolved: Resolved, run: OpenRun) -> Trackers:
    """The trackers ``cfg.logger`` selects, started on the record just written: the params they log are
    its config.yaml's, as ``mila-bench export`` logs them for a record made without them."""
    from mila_bench.records import runs
    from mila_bench.trackers.base import params
    from mila_bench.trackers.fanout import Trackers

    views = Trackers(cfg.get("logger"), resolved.results_dir)
    if views.active:
        views.start(run.summary, params(runs.read_config(run.run_dir)))
    return views


def _chain(*calls: Callable[[EpochMetrics], None] | None) -> Callable[[EpochMetrics], None]:
    def each(metrics: EpochMetrics) -> None:
        for call in calls:
            if call is not None:
                call(metrics)

    return each


class KeepRecord(Callback):
    """A run's record after every epoch: its metrics so far, then its checkpoint (never behind it);
    a diverged run's summary when its loss becomes non-finite."""

    def __init__(self, run: OpenRun, settings: RunSettings, lr: float) -> None:
        self.run, self.settings, self.lr = run, settings, lr

    def on_checkpoint(self, state: Checkpoint) -> None:
        from mila_bench.records import checkpoints, runs

        runs.write_metrics(self.run.run_dir, [EpochMetrics(**m) for m in state["history"]])
        checkpoints.save(self.run.checkpoint, state)

    def on_diverged(self, error: Exception) -> None:
        from mila_bench.records import runs

        where = Divergence(error.epoch, error.step)
        self.run.summary = replace(self.run.summary, status="diverged", diverged=where, process=self.settings.as_summary())
        runs.write_summary(self.run.run_dir, self.run.summary)

    def error(self) -> RunDiverged:
        where = self.run.summary.diverged
        return RunDiverged(
            f"run diverged: non-finite training loss at epoch {where.epoch}, step {where.step} "
            f"(optimizer.lr={self.lr}); recorded as diverged in {self.run.run_dir}, no Results.md row"
        )


def fit_run(
    cfg: DictConfig, data: Dataset, run: OpenRun, on_epoch: Callable[[EpochMetrics], None] | None, settings: RunSettings
) -> tuple[torch.nn.Module, list[EpochMetrics], Cost]:
    """Train the opened run, recording its metrics and a checkpoint after every epoch; measure its cost.

    Divergence is recorded (status ``diverged``) and raised as :class:`RunDiverged`; Ctrl-C
    becomes :class:`RunInterrupted`, naming the folder and the checkpoint kept for resuming.
    """
    import torch

    from mila_bench.training.callbacks import EpochEnd
    from mila_bench.training.cost import StepTimer, run_cost
    from mila_bench.training.engine import Diverged

    device = data.train.labels.device
    timer = StepTimer(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    record = KeepRecord(run, settings, cfg.optimizer.lr)
    callbacks = [timer, record, *([EpochEnd(on_epoch)] if on_epoch else [])]
    try:
        model, history = fit_model(cfg, data, device, cfg.seed, callbacks, run.resume)
        return model, history, run_cost(model, data.train, cfg.trainer.batch_size, timer)
    except Diverged:
        raise record.error() from None
    except KeyboardInterrupt:
        raise interrupted(run) from None


def interrupted(run: OpenRun) -> RunInterrupted:
    """Ctrl-C: what is on disk is what was kept (the interrupt may land mid-save)."""
    from mila_bench.records import checkpoints

    kept = checkpoints.load(run.checkpoint)["epoch"] if run.checkpoint.exists() else None
    return RunInterrupted(run.run_dir, run.checkpoint if kept else None, int(kept or 0))


def finish(
    resolved: Resolved,
    run: OpenRun,
    model: torch.nn.Module,
    history: list[EpochMetrics],
    process: dict[str, object],
    cost: Cost,
) -> RunResult:
    """Complete the summary (learned values, size, time, final metrics, the kernels that ran) and
    append the Results.md row."""
    from mila_bench import activations
    from mila_bench.records import results_md, runs

    summary = replace(
        run.summary,
        status="completed",
        learned=activations.learned_values(model),
        parameters=sum(p.numel() for p in model.parameters()),
        model_adaptation=model.timm_report.as_dict() if hasattr(model, "timm_report") else None,
        cost=cost,
        train_seconds=sum(m.seconds for m in history),
        final=history[-1],
        checkpoint_bytes=run.checkpoint.stat().st_size,
        process=process,
    )
    runs.write_summary(run.run_dir, summary)
    results_md.append_row(resolved.markdown, results_md.section_name(summary), results_md.results_row(summary))
    return RunResult(summary.run_id, run.run_dir, history, summary, model=model)


def recorded_result(run_dir: Path) -> RunResult:
    """A completed run as its record holds it (summary.json, metrics.csv), without training."""
    from mila_bench.records import runs

    summary = runs.read_summary(run_dir)
    return RunResult(summary.run_id, run_dir, runs.read_metrics(run_dir), summary, reused=True)


def fit_model(
    cfg: DictConfig,
    data: Dataset,
    device: torch.device,
    seed: int,
    callbacks: Sequence[Callback] = (),
    resume: dict | None = None,
) -> tuple[torch.nn.Module, list[EpochMetrics]]:
    """Build the configured model (with its activation), optimizer and schedule, seeded with
    ``seed`` (``training.build``), and train it on ``data``. This is the part of a run that
    ``train`` records and the analysis studies reuse unrecorded; returns (model, per-epoch
    metrics). ``callbacks`` and ``resume`` pass through to ``engine.fit``. Runs in ``cfg``'s run
    settings (``training.run_settings``): those of the ``train`` that called it, else its own."""
    from mila_bench.training.build import build_member
    from mila_bench.training.engine import fit
    from mila_bench.training.run_settings import run_settings

    with run_settings(cfg):  # the calling train's settings, or (analysis studies) their own
        member = build_member(cfg, data, device, seed)
        history = fit(
            member.model,
            data,
            member.optimizer,
            epochs=cfg.trainer.epochs,
            batch_size=cfg.trainer.batch_size,
            eval_batch_size=cfg.trainer.eval_batch_size,
            generator=member.generator,
            progress=cfg.trainer.progress,
            scheduler=member.scheduler,
            amp=cfg.trainer.amp,
            compiled=cfg.trainer.compile,
            cuda_graph=cfg.trainer.cuda_graph,
            resume=resume,
            callbacks=callbacks,
        )
        return member.model, history


def environment(device: torch.device, deterministic: bool) -> Environment:
    """What changes the numbers beyond the config: two runs are bitwise equal only when these match too."""
    import torch

    from mila_bench.training import cpu_environment

    cuda = device.type == "cuda"
    return Environment(
        torch=torch.__version__,
        cuda=torch.version.cuda if cuda else None,
        cudnn=torch.backends.cudnn.version() if cuda else None,
        device_type=device.type,
        device_name=torch.cuda.get_device_name(device) if cuda else None,
        cpu=cpu_model(),
        torch_threads=torch.get_num_threads(),
        deterministic=deterministic,
        git_commit=source_commit(),
        cpu_capability=cpu_environment.cpu_capability(),
        interop_threads=cpu_environment.interop_threads(),
        torch_build=cpu_environment.torch_build(),
        env_vars=cpu_environment.kernel_env(),
    )


def cpu_model() -> str:
    """The CPU's model name (floating-point results can differ between instruction sets)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def source_commit() -> str | None:
    """The commit of the source checkout this code runs from (trackers tag runs with it). None when the
    package is not the top of a git checkout (an installed copy inside some other repository is not) or
    git is missing: a run never fails over its provenance."""
    import subprocess

    checkout = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=checkout, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != checkout:
        return None
    return lines[1]


def _activation_source(cfg: DictConfig) -> dict[str, str]:
    """For a plugin or custom target: what was imported and from where (summary.json)."""
    from mila_bench.activations import entry_for

    entry = entry_for(cfg)
    return {"activation_target": entry.target, "activation_origin": entry.origin} if entry.target else {}
