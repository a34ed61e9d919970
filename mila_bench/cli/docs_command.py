"""The click command behind ``mila-bench``, read by mkdocs-click for the generated CLI reference.

Typer builds the click command from :data:`mila_bench.cli.app.app`, so the reference is the
app's own arguments, options and help. Only the docs build (and its tests) import this module.
"""

from __future__ import annotations

import typer

from mila_bench.cli.app import app

#: The ``mila-bench`` command with every subcommand, as ``main()`` runs it.
command = typer.main.get_command(app)
