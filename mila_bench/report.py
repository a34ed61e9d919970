"""``mila-bench report``: rebuild Results.md from the recorded runs, with honest statistics.

Single runs differ by noise; this turns ``results/*/summary.json`` into one row per
configuration (every setting but the seed) with n, mean ± sample std of the final test metrics,
and Welch's t-test of Top-1 against a baseline configuration (``scipy.stats.ttest_ind`` with
``equal_var=False``) that differs only in the activation. Runs that did not complete or whose
metrics are not finite are listed apart, never averaged. Figures (matplotlib) go to
``results/figures/report-*.png`` and are linked under their table; optuna searches run by
``mila-bench sweep`` get a section with the best parameters and every trial.

Rebuilding is idempotent. Each (dataset, model) section keeps its per-run table (rebuilt from
the records, below the summary) so ``train`` and ``sweep`` keep appending rows to it;
sections this command does not own (e.g. ``reproduce``'s) are kept as they are.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mila_bench.errors import UsageError, unknown_name

# (summary.json "final" key, column title, scale to display, format, True when higher is better)
METRICS = (
    ("top1", "Top-1 (%)", 100.0, ".2f", True),
    ("top3", "Top-3 (%)", 100.0, ".2f", True),
    ("top5", "Top-5 (%)", 100.0, ".2f", True),
    ("test_loss", "Test loss", 1.0, ".4f", False),
)
SIGNIFICANCE = 0.05
# Config keys that do not change what is measured, so runs differing only in them are pooled:
# the seed (what we average over), where data and results live, and how fast or how visibly it ran.
POOLED_KEYS = ("seed", "device", "results.", "sweep.", "trainer.progress", "trainer.threads",
               "trainer.eval_batch_size", "dataset.root", "dataset.default_root", "dataset.system_dir",
               "dataset.download", "dataset.verify", "activation.impl")  # fmt: skip
# Shown in their own columns (Activation, β, Initialization, Epochs) rather than under "Other settings".
SHOWN_KEYS = ("activation.", "model.initialization", "trainer.epochs")
FIGURE_PREFIX = "report-"
REPORT_TITLE = """# Results

Rebuilt by `mila-bench report` from the run records in `results/`. One section per (dataset,
model): first one row per configuration over its seeds (mean ± sample std of the test metrics
after the last epoch, accuracies in percent, Welch's t-test of Top-1 against the baseline),
then one row per run, to which `mila-bench train` and `mila-bench sweep` keep appending; run
`mila-bench report` again to refresh the summaries. Each run's record (resolved config,
per-epoch metrics, summary) is in `results/<run>/`.
"""


@dataclass
class Run:
    run_id: str
    summary: dict
    settings: dict[str, object]  # the flattened resolved config
    metrics: object | None  # pandas DataFrame of metrics.csv
    problem: str | None  # why it is not averaged, None when it is

    @property
    def key(self) -> tuple:
        """The configuration: every setting except the pooled ones."""
        return tuple(
            sorted((k, _canonical(v)) for k, v in self.settings.items() if not _matches(k, POOLED_KEYS))
        )  # fmt: skip

    @property
    def beta(self) -> float | None:
        value = self.settings.get("activation.beta")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def learnable(self) -> bool:
        return bool(self.settings.get("activation.learnable_beta"))


@dataclass
class Config:
    """One row of a summary table: the runs of one configuration."""

    key: tuple
    runs: list[Run] = field(default_factory=list)

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def done(self) -> list[Run]:
        return [r for r in self.runs if r.problem is None]

    def values(self, metric: str) -> list[float]:
        return [float(r.summary["final"][metric]) for r in self.done]

    def label(self) -> str:
        return f"{_activation(self.first)} β {beta_text(self.first)}"


def build(results_dir: Path, markdown: Path, baseline: str = "relu") -> list[str]:
    """Rebuild ``markdown`` from the runs in ``results_dir``; return what was written, line by line."""
    from filelock import FileLock, Timeout

    from mila_bench import runs as records
    from mila_bench.files import atomic_write

    selector = parse_baseline(baseline)
    if not results_dir.is_dir():
        raise UsageError(f"--results {results_dir}: no such folder; give the folder of recorded runs (e.g. results)")
    if markdown.is_dir():
        raise UsageError(f"--markdown {markdown} is a folder, not a file; give a file path")
    records.check_writable(results_dir / "figures", markdown)
    runs, skipped = load_runs(results_dir)
    if not runs:
        raise UsageError(f"no recorded runs in {results_dir}/ (no */summary.json); run `mila-bench train` first")

    figures_dir = results_dir / "figures"
    by_section: dict[str, list[Run]] = {}
    for run in runs:
        by_section.setdefault(_section(run), []).append(run)
    sections: dict[str, list[str]] = {}
    written: list[Path] = []
    for name in sorted(by_section):
        body, figures = section_body(name, by_section[name], selector, baseline, figures_dir, markdown.parent)
        sections[name] = body
        written += figures
    for name, body in optuna_sections(results_dir / "sweeps", markdown.parent):
        sections[name] = body
    _remove_stale_figures(figures_dir, written)

    try:
        with FileLock(str(markdown) + ".lock", timeout=records.LOCK_TIMEOUT_S):
            old = markdown.read_text() if markdown.exists() else ""
            text = assemble(old, sections)
            atomic_write(markdown, lambda f: f.write(text), binary=False)
    except Timeout:
        raise UsageError(f"could not lock {markdown}; another process holds {markdown}.lock") from None

    lines = [f"skipped {s}" for s in skipped]
    counted = sum(len(v) for v in by_section.values())
    lines.append(f"{markdown}: {len(sections)} section{'s' if len(sections) != 1 else ''} from {counted} runs")
    lines += [f"figure {path}" for path in written]
    return lines


def parse_baseline(text: str) -> tuple[str, float | None]:
    """``relu`` → (relu, None); ``mila:0.5`` → (mila, 0.5)."""
    from mila_bench.config import group_options

    name, _, beta = text.partition(":")
    allowed = group_options("activation")
    if name not in allowed:
        raise unknown_name("baseline activation", name, allowed)
    if not beta:
        return name, None
    try:
        value = float(beta)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(f"--baseline {text}: β {beta!r} is not a finite number; use NAME or NAME:BETA, e.g. mila:0.5")
    return name, value


def load_runs(results_dir: Path) -> tuple[list[Run], list[str]]:
    """Every readable run record under ``results_dir``, oldest first, and the unreadable ones by name."""
    import pandas as pd
    from omegaconf import OmegaConf

    from mila_bench.pipeline import activation_label, section_name

    runs, skipped = [], []
    for path in sorted(results_dir.glob("*/summary.json")):
        folder = path.parent
        if folder.name.startswith("."):  # a run still being written (runs.write_run's temporary folder)
            continue
        try:
            summary = json.loads(path.read_text())
            config = OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"))
            section_name(summary), activation_label(summary["activation"], summary["activation_params"])
            summary["final"].items()  # noqa: B018  (records without these are unreadable, not guessed)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            skipped.append(f"{folder.name}: unreadable record ({type(err).__name__})")
            continue
        settings = pd.json_normalize(config, sep=".").iloc[0].to_dict()
        metrics = pd.read_csv(folder / "metrics.csv") if (folder / "metrics.csv").is_file() else None
        runs.append(Run(summary.get("run_id", folder.name), summary, settings, metrics, _problem(summary)))
    return runs, skipped


def section_body(
    name: str, runs: list[Run], selector: tuple[str, float | None], baseline: str, figures_dir: Path, base: Path
) -> tuple[list[str], list[Path]]:
    """The Markdown lines of one (dataset, model) section, and the figures written for it."""
    from mila_bench.pipeline import results_row
    from mila_bench.runs import render_table

    configs = _configs(runs)
    done = [c for c in configs if c.done]
    lines = [
        "Over seeds: n runs, mean ± sample std of the test metrics after the last epoch; "
        f"p: Welch's t-test of Top-1 against {baseline} with otherwise identical settings, "
        f"n.s. = not significant (p ≥ {SIGNIFICANCE:g}); best mean per column in bold.",
        "",
    ]
    lines += summary_table(done, selector, baseline) if done else ["No completed runs."]
    left_out = [r for c in configs for r in c.runs if r.problem is not None]
    if left_out:
        lines += ["", "Not averaged (did not complete or diverged):", ""]
        lines += [f"- `{r.run_id}`: {Config(r.key, [r]).label()}, seed {r.summary.get('seed')}: {r.problem}"
                  for r in sorted(left_out, key=lambda r: r.run_id)]  # fmt: skip
    figures = []
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    beta_plot = plot_beta(done, name, figures_dir / f"{FIGURE_PREFIX}{slug}-beta.png")
    curves = plot_curves(done, name, figures_dir / f"{FIGURE_PREFIX}{slug}-curves.png")
    for path, title in ((beta_plot, "Test top-1 vs β"), (curves, "Test top-1 and loss per epoch")):
        if path is not None:
            lines += ["", f"![{title}, {name}]({Path(os.path.relpath(path, base)).as_posix()})"]
            figures.append(path)
    lines += ["", "Runs (one row each; `mila-bench train` and `mila-bench sweep` append here):", ""]
    lines += render_table([results_row(r.summary) for r in sorted(runs, key=lambda r: r.run_id)])
    return lines, figures


def summary_table(configs: list[Config], selector: tuple[str, float | None], baseline: str) -> list[str]:
    """One row per configuration: labels, n, mean ± std per metric (best in bold), p against the baseline."""
    import pandas as pd
    from scipy import stats

    varying = _varying(configs)
    best = {}
    for metric, _, _, _, higher in METRICS:
        means = [_mean(c.values(metric)) for c in configs]
        finite = [m for m in means if math.isfinite(m)]
        if len(configs) > 1 and finite:
            best[metric] = max(finite) if higher else min(finite)
    p_title = f"p vs {baseline} (Top-1)"
    rows = []
    for config in configs:
        run = config.first
        row = {
            "Activation": _activation(run),
            "β": beta_text(run),
            "Initialization": run.summary.get("initialization") or "—",
            "Epochs": run.summary.get("epochs"),
        }
        if varying:
            row["Other settings"] = ", ".join(f"{k}={_text(run.settings.get(k))}" for k in varying)
        row["n"] = len(config.done)
        for metric, title, scale, fmt, _ in METRICS:
            values = config.values(metric)
            cell = _mean_std(values, scale, fmt)
            row[title] = f"**{cell}**" if metric in best and _mean(values) == best[metric] else cell
        row[p_title] = _p_cell(config, _counterparts(config, configs, selector), stats)
        rows.append(row)
    from mila_bench.runs import escape_cell

    frame = pd.DataFrame([{k: escape_cell(v) for k, v in row.items()} for row in rows])
    return frame.to_markdown(index=False, tablefmt="pipe", disable_numparse=True).splitlines()


def beta_text(run: Run) -> str:
    """β as configured (a learned β by its start), or — for activations without one."""
    if run.beta is None:
        return "—"
    return f"learned from {run.beta:g}" if run.learnable else f"{run.beta:g}"


def plot_beta(configs: list[Config], title: str, path: Path) -> Path | None:
    """Top-1 against β (mean, ±std bars) for every series that sweeps β; None when none does."""
    series: dict[tuple, list[Config]] = {}
    flat: list[Config] = []
    for config in configs:
        run = config.first
        if run.beta is None:
            flat.append(config)
        elif not run.learnable:
            rest = tuple(item for item in config.key if item[0] != "activation.beta")
            series.setdefault(rest, []).append(config)
    swept = [sorted(group, key=lambda c: c.first.beta) for group in series.values() if len(group) > 1]
    if not swept:
        return None
    fig, ax = _figure(1)
    for group in sorted(swept, key=lambda g: g[0].label()):
        betas = [c.first.beta for c in group]
        means = [100 * _mean(c.values("top1")) for c in group]
        stds = [100 * _std(c.values("top1")) for c in group]
        ax.errorbar(betas, means, yerr=[0 if math.isnan(s) else s for s in stds], marker="o", capsize=3,
                    label=_activation(group[0].first) + _other(group[0], configs))  # fmt: skip
    for i, config in enumerate(sorted(flat, key=lambda c: c.label()), start=len(swept)):
        label = _activation(config.first) + _other(config, configs)
        ax.axhline(100 * _mean(config.values("top1")), linestyle="--", linewidth=1, color=f"C{i % 10}", label=label)
    ax.set(xlabel="β", ylabel="test top-1 (%)", title=f"{title}: top-1 vs β (mean ± std over seeds)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_curves(configs: list[Config], title: str, path: Path) -> Path | None:
    """Per-epoch test top-1 and loss per configuration: mean over seeds with a ±std band."""
    import pandas as pd

    def usable(run: Run) -> bool:
        return run.metrics is not None and {"epoch", "top1", "test_loss"} <= set(run.metrics.columns)

    drawn = [c for c in configs if any(usable(r) for r in c.done)]
    if not drawn:
        return None
    fig, (top, loss) = _figure(2)
    for i, config in enumerate(drawn):
        frame = pd.concat([r.metrics for r in config.done if usable(r)])
        stats = frame.groupby("epoch")[["top1", "test_loss"]].agg(["mean", "std"]).fillna(0.0)
        label = config.label() + _other(config, configs)
        for ax, column, scale in ((top, "top1", 100.0), (loss, "test_loss", 1.0)):
            mean, std = scale * stats[(column, "mean")], scale * stats[(column, "std")]
            ax.plot(stats.index, mean, marker=".", color=f"C{i % 10}", label=label)
            ax.fill_between(stats.index, mean - std, mean + std, color=f"C{i % 10}", alpha=0.2)
    from matplotlib.ticker import MaxNLocator

    for ax in (top, loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.set(xlabel="epoch", ylabel="test top-1 (%)", title=f"{title}: test top-1")
    loss.set(xlabel="epoch", ylabel="test loss", title="test loss (mean ± std over seeds)")
    top.legend(fontsize="x-small")
    return _save(fig, path)


def optuna_sections(sweeps_dir: Path, base: Path) -> list[tuple[str, list[str]]]:
    """A section per optuna sweep (Hydra's optimization_results.yaml): the best parameters and every trial."""
    import pandas as pd
    from omegaconf import OmegaConf

    from mila_bench.runs import escape_cell
    from mila_bench.sweep import read_jobs

    out = []
    for result_file in sorted(sweeps_dir.glob("*/optimization_results.yaml")) if sweeps_dir.is_dir() else []:
        folder = result_file.parent
        result = OmegaConf.to_container(OmegaConf.load(result_file))
        best = result.get("best_params") or {}
        jobs = read_jobs(folder)
        objective = jobs[0]["objective"] if jobs else "top1"
        direction = jobs[0].get("direction", "?") if jobs else "?"
        title, scale, fmt = next(((t, s, f) for m, t, s, f, _ in METRICS if m == objective), (objective, 1.0, ".4g"))
        completed = sum(j.get("status") == "completed" for j in jobs)
        lines = [
            f"Hydra's optuna sweeper, `{Path(os.path.relpath(folder, base)).as_posix()}`: objective {objective} "
            f"({direction}), {len(jobs)} trials ({completed} completed, {len(jobs) - completed} failed).",
            "",
        ]
        if "best_value" in result:
            params = ", ".join(f"{k}={_number(v)}" for k, v in best.items())
            best_value = format(scale * float(result["best_value"]), fmt) + ("%" if scale == 100 else "")
            lines += [f"**Best: {params} → {title.removesuffix(' (%)')} {best_value}**", ""]
        else:
            lines += ["Several objectives: see optimization_results.yaml for the Pareto front.", ""]
        rows = []
        for job in jobs:
            given = dict(o.lstrip("+~").split("=", 1) for o in job.get("overrides", []) if "=" in o)
            row = {"Trial": job["job"], **{k: _number(given.get(k, "—")) for k in best}}
            value = job.get("value")
            cell = format(scale * value, fmt) if isinstance(value, (int, float)) else "—"
            row[title] = f"**{cell}**" if value is not None and value == result.get("best_value") else cell
            row["Status"] = job.get("status", "?") + (f": {job['error']}" if job.get("error") else "")
            row["Run"] = job.get("run_id", "—")
            rows.append({k: escape_cell(v) for k, v in row.items()})
        if rows:
            lines += pd.DataFrame(rows).to_markdown(index=False, tablefmt="pipe", disable_numparse=True).splitlines()
        out.append((f"Optuna search · {folder.name}", lines))
    return out


def assemble(old: str, sections: dict[str, list[str]]) -> str:
    """The new file: the old introduction, then our sections, then the old sections we do not own."""
    from mila_bench.runs import COLUMNS, RESULTS_TITLE

    preamble, old_sections = _split(old)
    if not preamble.strip() or preamble.strip() == RESULTS_TITLE.strip():
        preamble = REPORT_TITLE
    run_header = "| " + " | ".join(COLUMNS) + " |"
    kept = [
        (heading, body) for heading, body in old_sections
        if heading not in sections and not heading.startswith("Optuna search · ")
        and not any(_cells(line) == _cells(run_header) for line in body)  # a run section whose runs are gone
    ]  # fmt: skip
    parts = [preamble.rstrip("\n")]
    for heading, body in [*sections.items(), *kept]:
        parts.append("\n".join([f"## {heading}", "", *_trim(body)]))
    return "\n\n".join(parts) + "\n"


def _split(text: str) -> tuple[str, list[tuple[str, list[str]]]]:
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble) + "\n", sections


def _trim(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []


def _section(run: Run) -> str:
    from mila_bench.pipeline import section_name

    return section_name(run.summary)


def _configs(runs: Iterable[Run]) -> list[Config]:
    groups: dict[tuple, Config] = {}
    for run in runs:
        groups.setdefault(run.key, Config(run.key)).runs.append(run)
    return sorted(groups.values(), key=_order)


def _order(config: Config) -> tuple:
    run = config.first
    beta = run.beta if run.beta is not None else -math.inf
    return (_activation(run), run.learnable, beta, str(run.summary.get("initialization")), config.key)


def _varying(configs: Sequence[Config]) -> list[str]:
    """Settings that differ between the section's configurations and have no column of their own."""
    keys = sorted({k for c in configs for k, _ in c.key if not _matches(k, SHOWN_KEYS)})
    return [k for k in keys if len({_text(c.first.settings.get(k)) for c in configs}) > 1]


def _other(config: Config, configs: Sequence[Config]) -> str:
    varying = _varying(configs)
    return " (" + ", ".join(f"{k}={_text(config.first.settings.get(k))}" for k in varying) + ")" if varying else ""


def _counterparts(config: Config, configs: Sequence[Config], selector: tuple[str, float | None]) -> list[Config]:
    """Baseline configurations with the same settings as ``config`` apart from the activation."""
    name, beta = selector
    rest = {item for item in config.key if not item[0].startswith("activation.")}
    return [
        c for c in configs
        if c.first.settings.get("activation.name") == name
        and (beta is None or (c.first.beta is not None and math.isclose(c.first.beta, beta)))
        and {item for item in c.key if not item[0].startswith("activation.")} == rest
    ]  # fmt: skip


def _p_cell(config: Config, baselines: list[Config], stats) -> str:
    if any(b is config for b in baselines):
        return "baseline"
    if not baselines:
        return "—"
    if len(baselines) > 1:
        return "— (several baselines match; give NAME:BETA)"
    ours, theirs = config.values("top1"), baselines[0].values("top1")
    if len(ours) < 2 or len(theirs) < 2:
        return "— (n < 2)"
    p = float(stats.ttest_ind(ours, theirs, equal_var=False).pvalue)
    if not math.isfinite(p):
        return "—"
    return f"{p:.3g}" + (" (n.s.)" if p >= SIGNIFICANCE else "")


def _activation(run: Run) -> str:
    from mila_bench.pipeline import activation_label

    return activation_label(run.summary["activation"], run.summary["activation_params"], run.summary.get("activation_target"))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1), NaN below two values."""
    import statistics

    return statistics.stdev(values) if len(values) > 1 else math.nan


def _mean_std(values: Sequence[float], scale: float, fmt: str) -> str:
    if not values:
        return "—"
    mean = format(scale * _mean(values), fmt)
    return mean if len(values) < 2 else f"{mean} ± {format(scale * _std(values), fmt)}"


def _problem(summary: dict) -> str | None:
    status = summary.get("status", "completed")
    if status != "completed":
        return f"status {status}"
    final = summary["final"]
    bad = [m for m, *_ in METRICS if not isinstance(final.get(m), (int, float)) or not math.isfinite(final[m])]
    return f"diverged: {', '.join(bad)} not finite" if bad else None


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(key.startswith(p) if p.endswith(".") else key == p for p in patterns)


def _canonical(value: object) -> str:
    """A setting as identity text: β 1 and β 1.0 are the same configuration."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return json.dumps(value, sort_keys=True, default=str)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _number(value: object) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def _figure(panels: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4 * panels, 4.2), layout="constrained")
    axes = fig.subplots(1, panels)
    return fig, axes


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return path


def _remove_stale_figures(figures_dir: Path, written: list[Path]) -> None:
    """Drop our figures of sections or sweeps that no longer exist; other figures in the folder stay."""
    keep = {p.resolve() for p in written}
    for path in figures_dir.glob(f"{FIGURE_PREFIX}*.png") if figures_dir.is_dir() else []:
        if path.resolve() not in keep:
            path.unlink()
