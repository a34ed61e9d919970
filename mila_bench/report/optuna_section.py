"""Sections for optuna searches run by ``mila-bench sweep``: the best parameters and every trial.

They are rebuilt from Hydra's sweep folders (``results/sweeps/``, not tracked in git), so a
report run where those folders are absent keeps the sections it finds in Results.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from mila_bench.report.configurations import METRICS
from mila_bench.records.results_md import markdown_table
from mila_bench.overrides import split_override

PREFIX = "Optuna search · "

def optuna_sections(sweeps_dir: Path, base: Path) -> list[tuple[str, list[str]]]:
    """A section per optuna sweep (Hydra's optimization_results.yaml): the best parameters and every trial."""
    from omegaconf import OmegaConf

    from mila_bench.records.jobs import read_jobs

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
            params = ", ".join(f"{k}={_format_number(v)}" for k, v in best.items())
            best_value = format(scale * float(result["best_value"]), fmt) + ("%" if scale == 100 else "")
            lines += [f"**Best: {params} → {title.removesuffix(' (%)')} {best_value}**", ""]
        else:
            lines += ["Several objectives: see optimization_results.yaml for the Pareto front.", ""]
        rows = []
        for job in jobs:
            given = dict(split_override(o) for o in job.get("overrides", []) if "=" in o)
            row = {"Trial": job["job"], **{k: _format_number(given.get(k, "—")) for k in best}}
            value = job.get("value")
            cell = format(scale * value, fmt) if isinstance(value, (int, float)) else "—"
            row[title] = f"**{cell}**" if value is not None and value == result.get("best_value") else cell
            row["Status"] = job.get("status", "?") + (f": {job['error']}" if job.get("error") else "")
            row["Run"] = job.get("run_id", "—")
            rows.append(row)
        if rows:
            lines += markdown_table(rows)
        out.append((f"{PREFIX}{folder.name}", lines))
    return out

def _format_number(value: object) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
