"""The ``mila-bench`` command line: parse, compose, call. No training logic lives here.

Only typer is imported at start-up; torch and Hydra load when a command needs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Optional, TypeVar

import typer

from mila_bench.errors import UsageError

T = TypeVar("T")

OVERRIDES_HELP = """Hydra overrides, KEY=VALUE, e.g.:

activation=mila|mish|swish|relu, activation.beta=-0.25,
model=mlp, model.initialization=class|sequential,
dataset=fashion_mnist, dataset.root=DIR, dataset.train_subset=N,
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
)

DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show the full traceback on errors (or set HYDRA_FULL_ERROR=1).")
]


def guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run ``action``; a :class:`UsageError` becomes one line on stderr and exit code 2."""
    try:
        return action()
    except UsageError as err:
        if debug or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        typer.echo(f"mila-bench: error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("mila-bench: interrupted; nothing was recorded for the unfinished run", err=True)
        raise typer.Exit(130) from None


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
        from mila_bench.pipeline import train as run_training

        def report(m) -> None:
            typer.echo(
                f"epoch {m.epoch}/{cfg.trainer.epochs}: train loss {m.train_loss:.4f} (sum {m.train_loss_sum:.2f}), "
                f"test loss {m.test_loss:.4f}, top-1 {100 * m.top1:.2f}%, top-3 {100 * m.top3:.2f}%, "
                f"top-5 {100 * m.top5:.2f}%, {m.seconds:.1f} s"
            )

        result = run_training(cfg, on_epoch=report)
        typer.echo(f"run recorded in {result.run_dir}; row added to {cfg.results.markdown}")

    guarded(debug, action)


@app.command("list")
def list_options() -> None:
    """List the choices of every config group (activations, models, datasets, ...)."""
    from mila_bench.config import GROUPS, group_options

    for group in GROUPS:
        typer.echo(f"{group}: {', '.join(group_options(group))}")


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
