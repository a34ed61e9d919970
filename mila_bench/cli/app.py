"""The ``mila-bench`` command line: parse, compose, call. No training logic lives here.

Only typer is imported at start-up; torch and Hydra load when a command needs them.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from mila_bench import __version__
from mila_bench.errors import RunInterrupted, UsageError
from mila_bench.cli import help_style
from mila_bench.cli.boundary import DebugOption, guarded
from mila_bench.overrides import override_key

OVERRIDES_HELP = """Hydra overrides, KEY=VALUE, e.g.:

activation=mila|mish|swish|relu|gelu|... (all: mila-bench list), activation.beta=-0.25,
activation=custom activation.target=MODULE:NAME +activation.PARAM=X (your own),
model=mlp, model.initialization=class|sequential,
dataset=fashion_mnist|cifar10|cifar100, dataset.root=DIR, dataset.train_subset=N,
model=resnet model.depth=20 model.version=1|2, scheduler=none|recipe|cosine, trainer.amp=true,
trainer.epochs=N, trainer.batch_size=N, optimizer.lr=X, seed=N,
device=auto|cpu|cuda, results.dir=DIR, results.markdown=FILE,
experiment=NAME.  See all keys with --show-config."""

app = typer.Typer(
    name="mila-bench",
    help="Benchmark activation functions (Mila, Mish, Swish, ReLU) with seeded, recorded runs. "
    "Configs are Hydra configs under configs/; every value can be overridden as KEY=VALUE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=help_style.Group,
    context_settings=help_style.CONTEXT_SETTINGS,
)


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"mila-bench {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool, typer.Option("--version", help="Print mila-bench's version and exit.", is_eager=True, callback=show_version)
    ] = False,
) -> None:
    # The app's own options; its help is the app's (Typer would take a docstring here for it).
    pass

@app.command()
def train(
    overrides: Annotated[Optional[list[str]], typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Print the composed config and exit without training.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Train one model, evaluate it on the test split, record the run and add its Results.md row."""

    def action() -> None:
        from omegaconf import OmegaConf

        from mila_bench.config import compose

        cfg = compose(overrides or [])
        if show_config:
            typer.echo(OmegaConf.to_yaml(cfg), nl=False)
            return
        if not cfg.trainer.resume:  # from the records only (milliseconds, no torch): a long run says so first
            from mila_bench.training.estimate import estimate_configs, long_run_line

            long = long_run_line("train", estimate_configs([cfg]), "trainer.epochs=N or dataset.train_subset=N")
            if long:
                typer.echo(long)
        from mila_bench.pipeline import train as run_training

        def report(m) -> None:
            typer.echo(
                f"epoch {m.epoch}/{cfg.trainer.epochs}: train loss {m.train_loss:.4f} (sum {m.train_loss_sum:.2f}), "
                f"test loss {m.test_loss:.4f}, top-1 {100 * m.top1:.2f}%, top-3 {100 * m.top3:.2f}%, "
                f"top-5 {100 * m.top5:.2f}%, {m.seconds:.1f} s"
            )

        try:
            result = run_training(cfg, on_epoch=report)
        except RunInterrupted as err:
            err.resume_command = resume_command(overrides or [])
            raise
        if result.reused:
            typer.echo(f"trainer.resume=true: run {result.run_dir} with this config is already complete; nothing trained")
        else:
            typer.echo(f"run recorded in {result.run_dir}; row added to {cfg.results.markdown}")

    guarded(debug, action)


def resume_command(overrides: list[str]) -> str:
    """The command that continues an interrupted ``train``: the same overrides, ``trainer.resume=true``."""
    import shlex

    kept = [o for o in overrides if override_key(o) != "trainer.resume"]
    return shlex.join(["mila-bench", "train", *kept, "trainer.resume=true"])


SWEEP_HELP = """Hydra overrides; comma lists, range() and choice() are swept, e.g.
activation=mila activation.beta=-0.25,0,0.5,1 seed=range(0,3).
Launchers: hydra/launcher=joblib hydra.launcher.n_jobs=N (parallel here),
hydra/launcher=submitit_local, hydra/launcher=submitit_slurm or slurm (cluster).
Optuna: hydra/sweeper=optuna 'activation.beta=interval(-2,2)' hydra.sweeper.n_trials=N
(or hydra/sweeper=beta_search); it optimises sweep.objective=top1|top3|top5|test_loss."""


@app.command()
def sweep(
    overrides: Annotated[Optional[list[str]], typer.Argument(help=SWEEP_HELP, show_default=False)] = None,
    debug: DebugOption = False,
) -> None:
    """Run many trainings through Hydra's multirun (grid, parallel, SLURM, optuna); each is recorded like `train`."""

    def action() -> None:
        from mila_bench.launch import sweep as sweeping

        outcome = sweeping.sweep(overrides or [], echo=typer.echo, warn=lambda line: typer.echo(f"mila-bench: {line}", err=True))
        failure = sweeping.failure_line(outcome)
        if failure:
            typer.echo(f"mila-bench: {failure}", err=True)
            raise typer.Exit(1)

    guarded(debug, action)


@app.command()
def report(
    baseline: Annotated[
        str, typer.Option("--baseline", help="Configuration the p-values compare against: an activation, or NAME:BETA.")
    ] = "relu",
    results: Annotated[str, typer.Option("--results", help="Folder of recorded runs.")] = "results",
    markdown: Annotated[str, typer.Option("--markdown", help="The Markdown file to rebuild.")] = "Results.md",
    drop_unrecorded: Annotated[
        bool,
        typer.Option(
            "--drop-unrecorded",
            help="Remove per-run rows whose record is not in --results (each removed row is named). "
            "Without it such rows are kept, marked, and left out of the statistics.",
        ),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Rebuild Results.md from the run records: statistics over seeds (paired where seeds match), figures."""

    def action() -> None:
        from pathlib import Path

        from mila_bench.report import build

        for line in build(Path(results), Path(markdown), baseline, drop_unrecorded):
            typer.echo(line)

    guarded(debug, action)


RUNS_FILTER_HELP = """Filters, KEY=VALUE (all must hold; VALUE may be a,b for either), e.g.
activation=mila activation.beta=-0.25 dataset=fashion_mnist seed=0,1 status=completed.
KEY is a column (params.*, metrics.*, cost.*, env.*), a column without its prefix, or a group (activation = activation.name)."""


@app.command()
def runs(
    filters: Annotated[Optional[list[str]], typer.Argument(help=RUNS_FILTER_HELP, show_default=False)] = None,
    output: Annotated[
        str, typer.Option("--format", help="table (chosen columns), csv or json (every column).")
    ] = "table",
    columns: Annotated[
        Optional[str], typer.Option("--columns", help="Comma-separated columns of the table (keys as for filters).")
    ] = None,
    results: Annotated[str, typer.Option("--results", help="Folder of recorded runs.")] = "results",
    debug: DebugOption = False,
) -> None:
    """List the recorded runs, filtered: one row per run, its config, final metrics, cost and environment."""

    def action() -> None:
        from mila_bench.cli.runs_output import render

        typer.echo(render(results, filters or [], output, columns), nl=False)

    guarded(debug, action)


EXPORT_HELP = """The tracker's settings as for train, e.g. logger.mlflow.tracking_uri=URI, logger.mlflow.experiment=NAME,
logger.tensorboard.dir=DIR, logger.wandb.project=NAME logger.wandb.mode=online."""


@app.command()
def export(
    tracker: Annotated[str, typer.Argument(help="mlflow, tensorboard or wandb.", show_default=False)],
    overrides: Annotated[Optional[list[str]], typer.Argument(help=EXPORT_HELP, show_default=False)] = None,
    results: Annotated[str, typer.Option("--results", help="Folder of recorded runs.")] = "results",
    debug: DebugOption = False,
) -> None:
    """Backfill the finished run records into a tracker; runs it already holds are skipped (safe to repeat)."""

    def action() -> None:
        from pathlib import Path

        from mila_bench.config import compose
        from mila_bench.trackers.checks import tracker_name
        from mila_bench.trackers.export import export as export_records

        name = tracker_name(tracker)
        cfg = compose([f"logger=[{name}]", *(overrides or [])])  # the tracker's settings, checked as for train
        typer.echo(export_records(name, cfg.logger[name], Path(results)))

    guarded(debug, action)


@app.command("list")
def list_options() -> None:
    """List every choice: each config group's options (activations with their parameters and defaults, plugins
    marked; experiments with what they are), Hydra's launchers and sweepers, and the suites."""

    def action() -> None:
        from mila_bench.activations import describe
        from mila_bench.config import GROUPS, description, group_options, hydra_options
        from mila_bench.suites import suite_lines

        for group in GROUPS:
            if group == "activation":
                typer.echo("activation: NAME  PARAMETERS (defaults)  WHAT")
                for line in describe():
                    typer.echo(line)
            elif group == "experiment":
                typer.echo("experiment: NAME  WHAT  (train experiment=NAME; a published table's recipe also by the table's name, "
                           "e.g. cifar10-resnet20-v1, and `mila-bench reproduce NAME` runs the table)")  # fmt: skip
                names = group_options(group)
                width = max(map(len, names))
                for name in names:
                    typer.echo(f"  {name:<{width}}  {description(group, name)}")
            else:
                typer.echo(f"{group}: {', '.join(group_options(group))}")
        typer.echo(f"hydra/launcher: {', '.join(hydra_options('hydra/launcher'))}  (sweep, suite: hydra/launcher=NAME)")
        typer.echo(f"hydra/sweeper: {', '.join(hydra_options('hydra/sweeper'))}  (sweep: hydra/sweeper=NAME)")
        typer.echo("suite: NAME  WHAT  (mila-bench suite NAME)")
        for line in suite_lines():
            typer.echo(line)

    guarded(False, action)


@app.command()
def reproduce(
    table: Annotated[
        Optional[str],
        typer.Argument(help="A published table, e.g. cifar10-resnet20-v1 or its experiment's spelling cifar10_resnet20_v1 "
                       "(see --list).", show_default=False),
    ] = None,
    overrides: Annotated[
        Optional[list[str]], typer.Argument(help="Hydra overrides for every run, KEY=VALUE (e.g. dataset.root=DIR).")
    ] = None,
    list_tables: Annotated[
        bool,
        typer.Option("--list", help="List the published tables (runs at --seeds, epochs, estimated time here) and exit."),
    ] = False,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs per activation, seeds 0..N-1.")] = 3,
    epochs: Annotated[
        Optional[int], typer.Option("--epochs", min=1, help="Shorten (or lengthen) the recipe's epochs.")
    ] = None,
    only: Annotated[
        Optional[list[str]], typer.Option("--only", help="Run only this activation's rows (repeatable).")
    ] = None,
    packed: Annotated[
        bool,
        typer.Option("--packed", help="Train the runs as packs, one batched model each (as hydra/launcher=packed does)."),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Re-run a published table with the recipe; write our mean ± std beside the published numbers in Results.md."""

    def action() -> None:
        if list_tables:
            from mila_bench.published.tables import table_lines

            for line in table_lines(seeds, epochs):
                typer.echo(line)
            return
        if table is None:
            raise UsageError("name a published table, e.g. 'mila-bench reproduce cifar10-resnet20-v1' (all: --list)")
        from mila_bench.launch.reproduce import reproduce as run_reproduction

        for line in run_reproduction(table, seeds, epochs, overrides or [], only or [], echo=typer.echo, packed=packed):
            typer.echo(line)

    guarded(debug, action)


SUITE_HELP = """Hydra overrides for every run of the suite, e.g. hydra/launcher=joblib hydra.launcher.n_jobs=2,
dataset.root=DIR, device=cuda. The suite sets activation, seed, suite.* and trainer.resume=true itself."""


@app.command()
def suite(
    name: Annotated[
        Optional[str],
        typer.Argument(help="A suite of configs/suite/, e.g. cpu_small or dubey_cifar; without it, the suites are listed.",
                       show_default=False),
    ] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(help=SUITE_HELP, show_default=False)] = None,
    activations: Annotated[
        str, typer.Option("--activations", help="Comma-separated activations to run on every task.")
    ] = "mila,mish,swish,relu,gelu",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs per task and activation, seeds 0..N-1.")] = 5,
    debug: DebugOption = False,
) -> None:
    """Run every task x activation x seed of a suite through the sweep launchers; resumable, each run recorded."""

    def action() -> None:
        from mila_bench.launch.suite import run_suite
        from mila_bench.suites import suite_lines

        if name is None:
            typer.echo("suite: NAME  WHAT  (run one: mila-bench suite NAME [--activations A,B] [--seeds N] [OVERRIDES])")
            for line in suite_lines():
                typer.echo(line)
            return

        chosen = [a.strip() for a in activations.split(",") if a.strip()]
        failures = run_suite(name, chosen, seeds, overrides or [], echo=typer.echo,
                             warn=lambda line: typer.echo(f"mila-bench: {line}", err=True))  # fmt: skip
        if failures:
            typer.echo(f"mila-bench: {'; '.join(failures)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"suite {name}: done; `mila-bench report` ranks the activations across its tasks")

    guarded(debug, action)


from mila_bench.cli.plot import plot_app  # noqa: E402  (typer only; studies load lazily)

app.add_typer(plot_app, name="plot", help="Analysis figures: function, contour, landscape, gradients, noise, depth.")
help_style.apply(app)


def main() -> None:
    """Entry point. click's own usage errors (unknown option, missing command) are one line too.

    Typer vendors click in recent releases and depends on it in older ones, so its
    exceptions are recognised by their interface rather than imported.
    """
    import sys

    try:
        code = app(standalone_mode=False)
    except Exception as err:
        kind = type(err).__name__
        if kind == "NoArgsIsHelpError":
            typer.echo(err.ctx.get_help())  # type: ignore[attr-defined]
            code = 2
        elif hasattr(err, "format_message") and hasattr(err, "ctx") and hasattr(err, "exit_code"):
            ctx = err.ctx  # type: ignore[attr-defined]
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            typer.echo(f"mila-bench: error: {err.format_message()}{hint}", err=True)  # type: ignore[attr-defined]
            code = err.exit_code  # type: ignore[attr-defined]
        elif kind == "Abort":
            typer.echo("mila-bench: interrupted", err=True)
            code = 130
        else:
            raise
    sys.exit(code if isinstance(code, int) else 0)
