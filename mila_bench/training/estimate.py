"""How long runs will take on this device: said before a long one starts, and by ``reproduce --list``.

A run's training time is its steps (epochs × ⌈training images / batch⌉) times the time of one
step, and the records already measure that: every finished run's ``summary.json`` carries
``cost.step_ms``, its median training step. Recorded runs are *similar* to a planned one when
they trained the same model (every key of the planned ``model`` config equal) on the same dataset
on the same kind of device (cpu, cuda); at the same batch size their median step is taken as is,
at another the median time per image is scaled to the batch. Reading the records needs only json
(no torch, no pandas), so listings and bad input stay fast. Where no record is similar, a caller
about to train anyway may time a few steps instead (:func:`estimate_configs`, ``time_missing``);
failing both, a CIFAR ResNet v1 on CPU is estimated from the documented ResNet-20 v1 figure.

Evaluation, data loading and start-up are left out, and a record from another CPU or GPU model
counts as similar: an estimate, with its basis said, to decide whether to run something smaller.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mila_bench.data.checks import SIZES
from mila_bench.data.files import check_obtainable
from mila_bench.training.device_check import check_cuda_possible

#: A run estimated to train longer than this gets one line saying so before it starts.
LONG_S = 30 * 60
#: Steps are timed (when no record is similar) only for runs of at least this many steps in all,
#: so the few timed steps cost under 1 % of what they estimate; shorter runs just start.
TIMED_MIN_STEPS = 2000
#: Kinds of run timed at most, one after another, before a long run starts.
TIMED_MAX_KINDS = 3
#: Steps :func:`time_steps` times, after as many untimed ones (allocator growth, caches).
TIMED_STEPS = 3
#: The documented figure used where nothing is recorded or timed: ResNet-20 v1 training at batch 32 on CPU,
#: images/s, as docs/performance.md reports it (``benchmarks/cifar_speed.py``; a test keeps the two equal).
RESNET20_V1_CPU_IMAGES_PER_S = 242


@dataclass(frozen=True)
class Workload:
    """What decides one run's training time: the model on its dataset, the batch, the steps, the device kind."""

    dataset: str
    model: tuple[tuple[str, str], ...]  # the model config's items, values as JSON text (hashable)
    batch_size: int
    images: int  # training images per epoch
    epochs: int
    device: str  # cpu or cuda

    @property
    def steps(self) -> int:
        return self.epochs * math.ceil(self.images / self.batch_size)

    @property
    def kind(self) -> tuple:
        """What a step's time depends on; runs of one kind share a step cost."""
        return (self.dataset, self.model, self.batch_size, self.device)


def model_items(model: Mapping) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), json.dumps(_plain(v), sort_keys=True)) for k, v in model.items()))


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [_plain(v) for v in value]  # type: ignore[union-attr]
    return value


def workload(cfg: Mapping, device: str | None = None) -> Workload:
    """The workload of one composed run config (a DictConfig or plain data)."""
    dataset, trainer = cfg["dataset"], cfg["trainer"]
    full = SIZES[str(dataset["name"])][0]
    subset = dataset.get("train_subset")
    return Workload(
        str(dataset["name"]), model_items(cfg["model"]), int(trainer["batch_size"]),
        min(full, int(subset)) if subset else full, int(trainer["epochs"]), device or device_kind(str(cfg["device"])),
    )  # fmt: skip


def device_kind(setting: str) -> str:
    """``cpu`` or ``cuda``, as ``device=SETTING`` will resolve, without importing torch: ``auto`` is cuda
    when an NVIDIA GPU is visible (its device file, and ``CUDA_VISIBLE_DEVICES`` not hiding it)."""
    if setting.startswith("cuda"):
        return "cuda"
    if setting == "cpu":
        return "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return "cpu"
    return "cuda" if Path("/dev/nvidia0").exists() or any(Path("/proc/driver/nvidia/gpus").glob("*")) else "cpu"


@dataclass(frozen=True)
class Step:
    """One recorded run's measured step: what it trained, where, at which batch, and the median step."""

    dataset: str
    model: Mapping[str, object]
    device: str
    batch_size: int
    step_ms: float
    machine: str  # the CPU or GPU model and threads, to say where the figure comes from


def recorded_steps(results_dir: Path) -> list[Step]:
    """The step cost of every completed run under ``results_dir`` that recorded one; others are passed over."""
    steps = []
    for path in sorted(results_dir.glob("*/summary.json")) if results_dir.is_dir() else []:
        try:
            summary = json.loads(path.read_text())
            cost, env = summary.get("cost") or {}, summary.get("environment") or {}
            step_ms, per_s = cost.get("step_ms"), cost.get("images_per_s")
            if summary.get("status") != "completed" or not step_ms or not per_s:
                continue
            device = str(env.get("device_type") or summary["device"]).split(":")[0]
            machine = env.get("device_name") or env.get("cpu") or device
            threads = env.get("torch_threads")
            where = f"{machine}, {threads} thread{'s' if threads != 1 else ''}" if device == "cpu" and threads else str(machine)
            steps.append(Step(str(summary["dataset"]), dict(summary["model_config"]), device,
                              round(per_s * step_ms / 1000), float(step_ms), where))  # fmt: skip
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
    return steps


@dataclass(frozen=True)
class StepCost:
    ms: float
    basis: str  # where the figure comes from, said with the estimate
    records: int = 0  # recorded runs it comes from (0: timed here)
    machines: tuple[str, ...] = ()


def similar(work: Workload, steps: Sequence[Step]) -> list[Step]:
    """The recorded steps of the same model on the same dataset and kind of device."""
    wanted = dict(work.model)
    return [
        s for s in steps
        if s.dataset == work.dataset and s.device == work.device
        and all(k in s.model and json.dumps(_plain(s.model[k]), sort_keys=True) == v for k, v in wanted.items())
    ]  # fmt: skip


def step_cost(work: Workload, steps: Sequence[Step]) -> StepCost | None:
    """The step time of ``work`` from similar records: their median at its batch size, else the median
    time per image scaled to it; None when no record is similar."""
    found = similar(work, steps)
    if not found:
        return None
    same = [s for s in found if s.batch_size == work.batch_size]
    machines = tuple(sorted({s.machine for s in (same or found)}))
    on = "; ".join(machines)
    if same:
        ms = statistics.median(s.step_ms for s in same)
        return StepCost(ms, f"the median step of {_count(len(same), 'recorded run')} like it, {ms:.0f} ms on {on}",
                        len(same), machines)  # fmt: skip
    ms = statistics.median(s.step_ms / s.batch_size for s in found) * work.batch_size
    batches = ", ".join(str(b) for b in sorted({s.batch_size for s in found}))
    return StepCost(ms, f"{_count(len(found), 'recorded run')} like it at batch {batches} on {on}, "
                        f"scaled to batch {work.batch_size}: {ms:.0f} ms", len(found), machines)  # fmt: skip


def reference_cost(work: Workload) -> StepCost | None:
    """A CIFAR ResNet v1's step on CPU from the documented ResNet-20 v1 figure, scaled by depth: every block
    of a v1 network costs about the same (filters double as the image halves), so a step's arithmetic
    grows with depth − 2. Rough (another CPU, another load); None for other models and devices."""
    model = {k: json.loads(v) for k, v in work.model}
    if work.device != "cpu" or work.dataset not in ("cifar10", "cifar100") or model.get("name") != "resnet" or model.get("version") != 1:
        return None
    ms = 1000 * work.batch_size / RESNET20_V1_CPU_IMAGES_PER_S * (int(model["depth"]) - 2) / (20 - 2)
    return StepCost(ms, f"a rough figure: ResNet-20 v1's {RESNET20_V1_CPU_IMAGES_PER_S} images/s on a 2-core CPU "
                        "(docs/performance.md), scaled by batch and depth")  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    seconds: float  # training time of the runs estimated, one after another
    runs: int
    device: str
    basis: str
    unknown: int = 0  # runs left out (no figure for their kind): the time is then a lower bound


def estimate(
    works: Sequence[Workload], steps: Sequence[Step], known: Mapping[tuple, StepCost] | None = None, partial: bool = False
) -> Estimate | None:
    """The training time of ``works`` from recorded step costs, else ``known`` (timed) ones, else the documented
    figure (:func:`reference_cost`). A kind with none of them makes it None, or with ``partial`` is left
    out (counted in ``unknown``); None when nothing is left."""
    costs: dict[tuple, StepCost | None] = {}
    for work in works:
        if work.kind not in costs:
            costs[work.kind] = step_cost(work, steps) or (known or {}).get(work.kind) or reference_cost(work)
    known_works = [w for w in works if costs[w.kind] is not None]
    if not known_works or (len(known_works) < len(works) and not partial):
        return None
    seconds = sum(w.steps * costs[w.kind].ms for w in known_works) / 1000  # type: ignore[union-attr]
    used = [c for c in {w.kind: costs[w.kind] for w in known_works}.values() if c is not None]
    if len(used) == 1:
        basis = used[0].basis
    else:
        recorded = [c for c in used if c.records]
        machines = "; ".join(sorted({m for c in recorded for m in c.machines}))
        parts = [f"the median steps of {_count(sum(c.records for c in recorded), 'recorded run')} like them on {machines}"] if recorded else []
        parts += list(dict.fromkeys(c.basis.split(", ")[0] if "timed here" in c.basis else c.basis for c in used if not c.records))
        basis = f"{len(used)} kinds of run: " + "; ".join(parts)
    return Estimate(seconds, len(works), works[0].device, basis, len(works) - len(known_works))


def estimate_configs(configs: Sequence[Mapping], time_missing: bool = False) -> Estimate | None:
    """The estimate for these composed run configs, from the records in their ``results.dir``.

    With ``time_missing`` (callers that train next anyway), kinds of run no record resembles are
    timed here for a few steps (imports torch) when the runs are long enough for that to cost under
    1 % of them, at most :data:`TIMED_MAX_KINDS` kinds; runs of kinds beyond those are left out of
    the estimate, which then says it is a lower bound.
    """
    if not configs:
        return None
    works = [workload(c) for c in configs]
    steps = recorded_steps(Path(str(configs[0]["results"]["dir"])))
    missing = {w.kind: c for w, c in zip(works, configs) if not similar(w, steps)}
    known: dict[tuple, StepCost] = {}
    if missing and time_missing and sum(w.steps for w in works) >= TIMED_MIN_STEPS:
        for kind, cfg in list(missing.items())[:TIMED_MAX_KINDS]:
            # a run that cannot start here (no CUDA, no data) is refused as its run would be, before any timing
            check_cuda_possible(str(cfg["device"]))
            check_obtainable(cfg["dataset"])
            ms = time_steps(cfg)
            known[kind] = StepCost(ms, f"{TIMED_STEPS} steps timed here just now, {ms:.0f} ms each")
    return estimate(works, steps, known, partial=time_missing)


def time_steps(cfg, steps: int = TIMED_STEPS) -> float:
    """Median ms of ``steps`` training steps of ``cfg``'s model, optimizer and batch on its device, in its
    run settings (threads), on random images of the dataset's shape: what a step costs before any data
    is loaded, when no recorded run resembles ``cfg``. Eager, without amp; imports torch."""
    import torch

    from mila_bench import activations
    from mila_bench.models import build_model
    from mila_bench.training.cost import StepTimer
    from mila_bench.training.build import build_optimizer
    from mila_bench.training.engine import loss_fn, select_device
    from mila_bench.training.run_settings import run_settings

    _, shape, classes = SIZES[str(cfg.dataset.name)]
    device = select_device(str(cfg.device))
    batch = int(cfg.trainer.batch_size)
    with run_settings(cfg):
        generator = torch.Generator().manual_seed(0)
        model = build_model(cfg.model, activations.activation_factory(cfg.activation), shape, classes).to(device)
        param_groups = getattr(model, "param_groups", None)
        optimizer = build_optimizer(cfg.optimizer, param_groups(cfg.optimizer.weight_decay) if param_groups else model.parameters())
        images = torch.randn(batch, *shape, generator=generator).to(device)
        labels = torch.randint(classes, (batch,), generator=generator).to(device)
        timer = StepTimer(device)
        for i in range(2 * steps):
            if i == steps:
                timer.start()
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(images), labels).backward()
            optimizer.step()
            if i >= steps:
                timer.mark()
        return statistics.median(timer.epoch_times())


def long_run_line(what: str, found: Estimate | None, smaller: str, parallel: int = 1) -> str | None:
    """The one line said before a run longer than :data:`LONG_S` starts; None for shorter (or unknown) ones."""
    if found is None or found.seconds / max(1, parallel) <= LONG_S:
        return None
    side = f", {parallel} at a time" if parallel > 1 else ""
    bound = "at least" if found.unknown else "about"
    left_out = f", {found.unknown} of them not estimated (kinds not timed)" if found.unknown else ""
    return (
        f"{what}: {bound} {duration(found.seconds / max(1, parallel))} of training on this {found.device} "
        f"({_count(found.runs, 'run')}{side}{left_out}; from {found.basis}); to run it smaller: {smaller}"
    )


def duration(seconds: float) -> str:
    """A rough duration for people: ``11 d 3 h``, ``5 h 20 min``, ``25 min``, ``40 s``."""
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"
