"""``mila-bench sweep``: Hydra's multirun over the same configs and the same training as ``train``.

Hydra does the sweeping and launching: its sweepers expand the overrides (the basic grid, or
optuna's search) and its launchers run the jobs (basic: one after another; joblib: processes
on this machine; submitit: SLURM or local subprocesses). Each job is :func:`job`, which calls
:func:`mila_bench.pipeline.train`, so it records its run and Results.md row exactly as
``train`` does. This module adds only what Hydra leaves to the application:

- :func:`plan` composes and validates every combination first, so bad input is one line and
  nothing is launched or written;
- :func:`job` records a failing job (``mila_bench_job.json`` in its Hydra folder, written by
  :func:`mila_bench.records.jobs.write_job`) instead
  of raising, so one failure does not stop the other jobs, and :func:`run` reports it;
- parallel jobs get a share of the cores (``trainer.threads``) rather than each taking all;
- on SLURM (:mod:`mila_bench.launch.slurm`): a warning when job accounting (``sacct``) does not
  answer, since submitit then never learns that a job died; after a failure, the remaining jobs
  are waited for, and a job that left no record is named with its SLURM state (killed, out of
  memory, preempted...).

Re-running a sweep with ``trainer.resume=true`` is how to recover from a crash or preemption:
each job's ``train`` keeps a completed run, continues an unfinished one, or starts fresh.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mila_bench.config import OBJECTIVES
from mila_bench.errors import UsageError
from mila_bench.launch.job_settings import parallel_jobs, prepare
from mila_bench.launch.slurm import check_accounting, on_slurm, slurm_jobs, slurm_state, wait_for_slurm_jobs
from mila_bench.records.jobs import read_jobs, write_job

if TYPE_CHECKING:
    from mila_bench.pipeline import RunResult

# Up to this many combinations every one is composed and validated; beyond, a set covering every value.
FULL_CHECK_LIMIT = 64

log = logging.getLogger(__name__)


@dataclass
class SweepPlan:
    """What will be launched: Hydra's command line and what to expect back."""

    arguments: list[str]  # after --multirun
    sweep_dir: Path
    sweeper: str  # the hydra/sweeper choice, e.g. basic, optuna
    launcher: str  # the hydra/launcher choice, e.g. basic, joblib, submitit_local
    jobs: int | None  # jobs Hydra will run: the grid's size or optuna's n_trials (None: unknown sweeper)
    checked: int  # combinations composed and validated before launching
    objective: str
    combos: list[list[str]] | None = None  # job number → its overrides (grid sweeps), to name a job that died
    launcher_target: str = ""  # the launcher's class, e.g. ...submitit_launcher.SlurmLauncher
    configs: list = field(default_factory=list)  # the checked jobs' composed configs (what the estimate reads)
    parallel: int = 1  # jobs running at once on this machine (joblib's workers)


@dataclass
class Outcome:
    plan: SweepPlan
    records: list[dict] = field(default_factory=list)
    hydra_exit: int = 0  # non-zero when Hydra itself stopped (a launcher error, all optuna trials failed)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r.get("status") != "completed"]

    @property
    def missing(self) -> int:
        """Jobs that left no record: killed (timeout, out of memory) or never started."""
        return max(0, (self.plan.jobs or 0) - len(self.records))


def plan(overrides: Sequence[str]) -> SweepPlan:
    """Check the sweep as far as possible without running it; raise :class:`UsageError` on bad input."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from mila_bench.records import runs
    from mila_bench.config import first_line, compose

    parser = OverridesParser.create()

    def parse(lines: Sequence[str]) -> list:
        try:
            return parser.parse_overrides(list(lines))
        except HydraException as err:
            raise UsageError(f"malformed override: {first_line(err)}") from None

    parsed = parse(overrides)
    hydra_args = [o for o in parsed if o.is_hydra_override()]
    task_args = [o for o in parsed if not o.is_hydra_override()]
    for o in hydra_args:
        if o.is_sweep_override():
            raise UsageError(f"{o.input_line}: Hydra's own settings cannot be swept; sweep config keys instead")

    first = [_first_value(o) for o in task_args]
    cfg = compose([o.input_line for o in hydra_args] + first, with_hydra=True)
    choices = cfg.hydra.runtime.choices
    sweeper, launcher = str(choices.get("hydra/sweeper")), str(choices.get("hydra/launcher"))
    is_optuna = "optuna" in str(cfg.hydra.sweeper.get("_target_", "")).lower()

    # The sweepers' own rule: hydra.sweeper.params first, command-line overrides after (and winning).
    params = OmegaConf.to_container(cfg.hydra.sweeper).get("params") or {}
    sweep_args = parse([f"{k}={v}" for k, v in params.items()] + [o.input_line for o in task_args])
    for o in sweep_args:
        if o.is_sweep_override() and not o.is_discrete_sweep() and not is_optuna:
            raise UsageError(
                f"{o.input_line}: the {sweeper} sweeper takes lists (a,b,c), range(...) or choice(...); "
                "interval(...) needs hydra/sweeper=optuna"
            )
    # interval(a, b) (optuna) is checked at both ends; every other sweep value is checked as is.
    expanded = parse([_endpoints(o) if o.is_sweep_override() and not o.is_discrete_sweep() else o.input_line
                      for o in sweep_args])  # fmt: skip
    try:
        combos = BasicSweeper.split_arguments(expanded, None)[0]
    except HydraException as err:
        raise UsageError(first_line(err)) from None

    checked = combos if len(combos) <= FULL_CHECK_LIMIT else _covering(combos)
    objectives, outputs, configs = set(), set(), []
    for combo in checked:
        try:
            job_cfg = compose(combo)
        except UsageError as err:
            where = f" (job: {' '.join(combo)})" if len(combos) > 1 else ""
            raise UsageError(f"{err}{where}") from None
        configs.append(job_cfg)
        objectives.add(job_cfg.sweep.objective)
        outputs.add((job_cfg.results.dir, job_cfg.results.markdown))
    if len(objectives) > 1:
        raise UsageError(f"sweep.objective must be the same for every job; got {', '.join(sorted(objectives))}")
    objective = objectives.pop()

    sweep_dir = _fresh(Path(str(OmegaConf.select(cfg, "hydra.sweep.dir"))))
    for results_dir, markdown in sorted(outputs):
        runs.check_writable(Path(results_dir), Path(markdown))
    runs.check_writable(sweep_dir, Path(cfg.results.markdown))

    keep = [o.input_line for o in hydra_args if o.get_key_element() != "hydra.sweep.dir"]
    arguments = [*keep, f"hydra.sweep.dir={_quote(str(sweep_dir))}"]
    if is_optuna and not any(o.get_key_element() == "hydra.sweeper.direction" for o in hydra_args):
        arguments.append(f"hydra.sweeper.direction={OBJECTIVES[objective]}")
    arguments += [o.input_line for o in task_args]
    target = str(cfg.hydra.sweeper.get("_target_", ""))
    if is_optuna:  # optuna's grid sampler stops when the grid is done
        grid = "GridSampler" in str(OmegaConf.select(cfg, "hydra.sweeper.sampler._target_"))
        jobs = min(int(cfg.hydra.sweeper.n_trials), len(combos)) if grid else int(cfg.hydra.sweeper.n_trials)
    else:
        jobs = len(combos) if target.endswith("BasicSweeper") else None
    combos_by_job = combos if target.endswith("BasicSweeper") else None
    launcher_target = str(OmegaConf.select(cfg, "hydra.launcher._target_") or "")
    return SweepPlan(arguments, sweep_dir, sweeper, launcher, jobs, len(checked), objective, combos_by_job, launcher_target,
                     configs, parallel_jobs(cfg.hydra.launcher))  # fmt: skip


def run(the_plan: SweepPlan) -> Outcome:
    """Run Hydra's multirun as planned and collect every job's record."""
    import hydra

    from mila_bench.config import config_dir

    from mila_bench.launch.packed import register

    register()  # hydra/launcher=packed, whatever the install mode
    main = hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(job)
    argv = sys.argv
    # hydra.main is Hydra's public entry point and reads its command line from sys.argv.
    sys.argv = [argv[0] if argv else "mila-bench", "--multirun", *the_plan.arguments]
    code = 0
    try:
        main()
    except SystemExit as stop:  # Hydra reports its own errors, then exits; the jobs' records still count
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = argv
    if code and on_slurm(the_plan.launcher_target):
        wait_for_slurm_jobs(the_plan.sweep_dir)  # the launcher stops at the first job that died; the others run on
    return Outcome(the_plan, read_jobs(the_plan.sweep_dir), code)


def job(cfg, outcome: RunResult | Exception | None = None) -> float | None:
    """One sweep job: ``pipeline.train(cfg)``; returns the objective for the sweeper.

    ``outcome``: the job was already trained (a member of a pack, ``launch.packed``): its result
    or error, recorded here as a job trained alone would be. A failed job (or a non-finite
    objective) returns None, which optuna's sweeper records as a failed trial and carries on (a
    NaN would stop it: optuna refuses NaN values).
    """
    from hydra.core.hydra_config import HydraConfig

    from mila_bench.pipeline import train

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    objective = str(cfg.sweep.objective)
    optimised = "optuna" in str(hydra_cfg.sweeper.get("_target_")).lower()
    record: dict = {
        "job": int(hydra_cfg.job.num),
        "overrides": list(hydra_cfg.overrides.task),
        "objective": objective,
        "sweeper": str(hydra_cfg.runtime.choices.get("hydra/sweeper")),
        "direction": _name(hydra_cfg.sweeper.get("direction")) if optimised else None,
    }
    prepare(cfg, hydra_cfg.launcher)
    label = f"job #{record['job']} ({' '.join(record['overrides'])})"
    try:
        if isinstance(outcome, Exception):
            raise outcome
        result = train(cfg) if outcome is None else outcome
    except Exception as err:  # one job's failure is recorded and reported at the end; the other jobs go on
        message = str(err) if isinstance(err, UsageError) else f"{type(err).__name__}: {' '.join(str(err).split())}"
        record.update(status="failed", error=message)
        write_job(job_dir, record)
        if isinstance(err, UsageError):
            log.error("%s failed: %s", label, message)
        else:
            log.error("%s failed", label, exc_info=err)
        return None
    value = float(getattr(result.summary.final, objective))
    record.update(status="completed", run_id=result.run_id, run_dir=str(result.run_dir), value=value)
    if result.reused:  # trainer.resume=true: this config had completed; its record counts
        record["reused"] = True
    if result.summary.pack is not None:
        record["pack"] = {"id": result.summary.pack.id, "member": result.summary.pack.member, "size": result.summary.pack.size}
    write_job(job_dir, record)
    log.info("%s: %s = %.4f, run %s%s", label, objective, value, result.run_id, " (already complete)" if result.reused else "")
    return value if math.isfinite(value) else None


def sweep(
    overrides: Sequence[str],
    echo: Callable[[str], None],
    warn: Callable[[str], None] | None = None,
    say_estimate: bool = True,
) -> Outcome:
    """Plan, say what will run (and, when it is long, how long), run it, and say what happened (failures
    are left to the caller). ``say_estimate=False``: the caller (a suite) said it for all its sweeps."""
    the_plan = plan(overrides)
    if on_slurm(the_plan.launcher_target):
        problem = check_accounting()
        if problem:
            (warn or echo)(f"warning: {problem}")
    size = f"{the_plan.jobs} jobs" if the_plan.jobs is not None else "jobs"
    echo(
        f"sweep: {size}, sweeper {the_plan.sweeper}, launcher {the_plan.launcher}, objective {the_plan.objective}; "
        f"{the_plan.checked} combination{'s' if the_plan.checked != 1 else ''} checked; "
        f"Hydra's outputs in {the_plan.sweep_dir}"
    )
    if say_estimate:
        line = long_sweep_line("sweep", [the_plan], "fewer values per key, trainer.epochs=N or dataset.train_subset=N")
        if line:
            echo(line)
    outcome = run(the_plan)
    done = len(outcome.records) - len(outcome.failed)
    echo(
        f"sweep: {done} completed, {len(outcome.failed)} failed"
        + (f", {outcome.missing} without a record" if outcome.missing else "")
        + "; runs recorded as by `mila-bench train`; `mila-bench report` for mean ± std over seeds"
    )
    return outcome


def long_sweep_line(what: str, plans: Sequence[SweepPlan], smaller: str) -> str | None:
    """One line when these sweeps (run one after another) will train longer than ``training.estimate.LONG_S``
    here; None when shorter, when their jobs run elsewhere (SLURM) or their number is unknown."""
    from mila_bench.training.estimate import estimate_configs, long_run_line

    if any(on_slurm(p.launcher_target) or p.jobs is None or not p.configs for p in plans):
        return None
    # every job of a sweep of up to FULL_CHECK_LIMIT was checked; beyond, the checked ones stand for the others
    configs = [c for p in plans for c in p.configs * (p.jobs // len(p.configs)) + p.configs[: p.jobs % len(p.configs)]]
    found = estimate_configs(configs, time_missing=True)
    return long_run_line(what, found, smaller, parallel=min(p.parallel for p in plans))


def failure_line(outcome: Outcome) -> str | None:
    """One line naming the failed jobs, or None when every job completed."""
    parts = [f"#{r['job']} ({' '.join(r['overrides'])}): {r.get('error', 'failed')}" for r in outcome.failed]
    if outcome.missing:
        parts += _missing(outcome)
    if outcome.hydra_exit and not parts:
        parts.append(f"Hydra stopped with exit code {outcome.hydra_exit} (its message is above)")
    if not parts:
        return None
    total = outcome.plan.jobs if outcome.plan.jobs is not None else len(outcome.records)
    return f"{len(outcome.failed) + outcome.missing} of {total} sweep jobs failed: " + "; ".join(parts)


def _missing(outcome: Outcome) -> list[str]:
    """Each job without a record, by number and overrides (and SLURM state), when the plan can tell."""
    combos, sweep_dir = outcome.plan.combos, outcome.plan.sweep_dir
    if combos is None:
        return [f"{outcome.missing} job(s) left no record (see {sweep_dir})"]
    done = {r.get("job") for r in outcome.records}
    slurm = slurm_jobs(sweep_dir) if on_slurm(outcome.plan.launcher_target) else {}
    parts = []
    for number in (n for n in range(len(combos)) if n not in done):
        state = slurm_state(slurm[number]) if number in slurm else None
        ended = f"SLURM job {slurm[number]} ended {state}" if state else "ended"
        parts.append(
            f"#{number} ({' '.join(combos[number])}): {ended} without a record (killed, out of memory, preempted or never "
            f"started; log in {sweep_dir / '.submitit' / slurm[number] if number in slurm else sweep_dir}); "
            "re-run the same sweep with trainer.resume=true to finish it"
        )
    return parts


def _name(direction: object) -> str:
    """optuna's direction as text: ``maximize``, not ``Direction.maximize`` (lists for several objectives)."""
    if isinstance(direction, (list, tuple)) or type(direction).__name__ == "ListConfig":
        return ", ".join(_name(d) for d in direction)
    return str(getattr(direction, "name", direction))


def _first_value(override) -> str:
    """The override with a sweep replaced by its first value (to compose Hydra's own config once)."""
    if not override.is_sweep_override():
        return override.input_line
    key = override.get_key_element()
    if override.is_discrete_sweep():
        return f"{key}={next(iter(override.sweep_string_iterator()))}"
    return f"{key}={override.value().start}"


def _endpoints(override) -> str:
    value = override.value()
    return f"{override.get_key_element()}={value.start},{value.end}"


def _covering(combos: list[list[str]]) -> list[list[str]]:
    """Combinations that together contain every swept value at least once."""
    seen: set[str] = set()
    chosen = []
    for combo in combos:
        if not seen.issuperset(combo):
            chosen.append(combo)
            seen.update(combo)
    return chosen


def _fresh(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... when a sweep started in the same second already has it."""
    candidate, n = path, 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def _quote(text: str) -> str:
    return "'" + text.replace("'", "\\'") + "'"
