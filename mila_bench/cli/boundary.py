"""How every command meets an error: a :class:`UsageError` is one line on stderr, never a traceback.

Shared by the main app (``cli``) and its sub-apps (``analysis.commands``), which is why it
lives below both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from mila_bench.errors import RunInterrupted, UsageError

T = TypeVar("T")

DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show the full traceback on errors (or set HYDRA_FULL_ERROR=1).")
]


def guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run ``action``; a :class:`UsageError` becomes one line on stderr and exit code 2 (or its own),
    Ctrl-C exit code 130 with what was kept (:class:`RunInterrupted` says how to resume the run)."""
    try:
        return action()
    except UsageError as err:
        if debug or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        typer.echo(f"mila-bench: error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except RunInterrupted as err:
        typer.echo(f"mila-bench: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:  # outside a recorded run's training: records already complete are kept
        typer.echo("mila-bench: interrupted", err=True)
        raise typer.Exit(130) from None
