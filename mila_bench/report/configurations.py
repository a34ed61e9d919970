"""Runs grouped into configurations, and a configuration's replicates (one per seed).

A configuration is every setting but the seed and those that do not change what is measured
(paths, device, threads, progress bars, trackers): runs differing only in those are replicates of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mila_bench.records.runs import Record

# Config keys that do not change what is measured, so runs differing only in them are pooled:
# the seed (what we average over), where data and results live, how fast or how visibly it ran, where it was viewed.
POOLED_KEYS = ("seed", "device", "results.", "sweep.", "trainer.progress", "trainer.threads", "trainer.resume",
               "trainer.eval_batch_size", "dataset.root", "dataset.default_root", "dataset.system_dir",
               "dataset.download", "dataset.verify", "activation.impl", "suite.", "logger.")  # fmt: skip
# Shown in their own columns (Activation, β, Initialization, Epochs) rather than under "Other settings".
SHOWN_KEYS = ("activation.", "model.initialization", "trainer.epochs")
# (attribute of the summary's final metrics, column title, scale to display, format, True when higher is better)
METRICS = (
    ("top1", "Top-1 (%)", 100.0, ".2f", True),
    ("top3", "Top-3 (%)", 100.0, ".2f", True),
    ("top5", "Top-5 (%)", 100.0, ".2f", True),
    ("test_loss", "Test loss", 1.0, ".4f", False),
)


def key(record: Record) -> tuple:
    """The configuration of a run: every setting except the pooled ones."""
    return tuple(sorted((k, _canonical(v)) for k, v in record.settings.items() if not matches(k, POOLED_KEYS)))


def problem(record: Record) -> str | None:
    """Why a run is not averaged (did not complete, non-finite metrics), None when it is."""
    summary = record.summary
    if summary.status != "completed":
        return f"status {summary.status}"
    bad = [m for m, *_ in METRICS if not math.isfinite(getattr(summary.final, m))]
    return f"diverged: {', '.join(bad)} not finite" if bad else None


@dataclass
class Configuration:
    """One row of a summary table: the runs of one configuration."""

    key: tuple
    runs: list[Record] = field(default_factory=list)

    @property
    def first(self) -> Record:
        return self.runs[0]

    @property
    def replicates(self) -> dict[int, Record]:
        """Seed → the newest completed run with that seed (run ids sort by start time)."""
        chosen: dict[int, Record] = {}
        for run in sorted((r for r in self.runs if problem(r) is None), key=lambda r: r.run_id):
            chosen[run.seed] = run
        return dict(sorted(chosen.items()))

    @property
    def repeats(self) -> list[Record]:
        """Completed runs repeating a seed whose newer run counts instead."""
        counted = {id(r) for r in self.replicates.values()}
        return sorted((r for r in self.runs if problem(r) is None and id(r) not in counted), key=lambda r: r.run_id)

    @property
    def left_out(self) -> list[Record]:
        return sorted((r for r in self.runs if problem(r) is not None), key=lambda r: r.run_id)

    def by_seed(self, metric: str) -> dict[int, float]:
        return {seed: float(getattr(run.summary.final, metric)) for seed, run in self.replicates.items()}

    def values(self, metric: str) -> list[float]:
        return list(self.by_seed(metric).values())

    @property
    def beta(self) -> float | None:
        return beta_of(self.first)

    @property
    def learnable(self) -> bool:
        return bool(self.first.settings.get("activation.learnable_beta"))

    def activation(self) -> str:
        from mila_bench.records.results_md import activation_label

        summary = self.first.summary
        return activation_label(summary.activation, summary.activation_params, summary.activation_target)

    def beta_text(self) -> str:
        """β as configured (a learned β by its start), or — for activations without one."""
        if self.beta is None:
            return "—"
        return f"learned from {self.beta:g}" if self.learnable else f"{self.beta:g}"

    def label(self) -> str:
        return f"{self.activation()} β {self.beta_text()}"


def group(runs: Iterable[Record]) -> list[Configuration]:
    """Configurations in a stable order: activation, β, initialization, then the rest."""
    groups: dict[tuple, Configuration] = {}
    for run in runs:
        k = key(run)
        groups.setdefault(k, Configuration(k)).runs.append(run)
    return sorted(groups.values(), key=_order)


def beta_of(record: Record) -> float | None:
    value = record.settings.get("activation.beta")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def varying(configs: Sequence[Configuration]) -> list[str]:
    """Settings that differ between the configurations and have no column of their own."""
    keys = sorted({k for c in configs for k, _ in c.key if not matches(k, SHOWN_KEYS)})
    return [k for k in keys if len({text(c.first.settings.get(k)) for c in configs}) > 1]


def others(config: Configuration, configs: Sequence[Configuration]) -> str:
    """`` (key=value, ...)`` for the varying settings, to tell configurations apart in legends."""
    keys = varying(configs)
    return " (" + ", ".join(f"{k}={text(config.first.settings.get(k))}" for k in keys) + ")" if keys else ""


def counterparts(config: Configuration, configs: Sequence[Configuration], selector: tuple[str, float | None]) -> list:
    """Baseline configurations with the same settings as ``config`` apart from the activation."""
    name, beta = selector
    rest = {item for item in config.key if not item[0].startswith("activation.")}
    return [
        c for c in configs
        if c.first.settings.get("activation.name") == name
        and (beta is None or (c.beta is not None and math.isclose(c.beta, beta)))
        and {item for item in c.key if not item[0].startswith("activation.")} == rest
    ]  # fmt: skip


def matches(key: str, patterns: Sequence[str]) -> bool:
    return any(key.startswith(p) if p.endswith(".") else key == p for p in patterns)


def text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _order(config: Configuration) -> tuple:
    beta = config.beta if config.beta is not None else -math.inf
    return (config.activation(), config.learnable, beta, str(config.first.summary.initialization), config.key)


def _canonical(value: object) -> str:
    """A setting as identity text: β 1 and β 1.0 are the same configuration."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return json.dumps(value, sort_keys=True, default=str)
