"""Every command's help through the real CLI: ``-h`` is ``--help``, flags print as flags, usage names
arguments in capitals (no ``{name}``), and none of it imports torch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from mila_bench.cli.app import app
from test_startup import cli


def command_paths(command=None, path=()) -> list[tuple[str, ...]]:
    """Every command and group of the app, as the words that reach it (the root is ())."""
    command = command or typer.main.get_command(app)
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += command_paths(sub, (*path, name))
    return found


PATHS = command_paths()
USAGE = re.compile(r"^Usage: mila-bench(?: [a-z]+)* \[OPTIONS\](?: COMMAND \[ARGS\]\.\.\.| \[?[A-Z_]+\]?(?:\.\.\.)?)*$")


def test_the_app_has_its_commands_and_the_plot_group() -> None:
    assert ("train",) in PATHS and ("plot", "noise") in PATHS and len(PATHS) > 12


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "mila-bench")
def test_help_prints_flags_as_flags_and_arguments_in_capitals(tmp_path: Path, path: tuple[str, ...]) -> None:
    short, _, heavy = cli([*path, "-h"], tmp_path)
    long, _, _ = cli([*path, "--help"], tmp_path)
    assert short.returncode == long.returncode == 0 and heavy == [], short.stderr
    assert short.stdout == long.stdout
    lines = [line.strip(" │") for line in short.stdout.splitlines()]
    usage = next(line.strip() for line in lines if line.strip().startswith("Usage:"))
    assert USAGE.match(usage), usage
    assert "<bool>" not in short.stdout and "{" not in usage
    options = [line for line in lines if line.startswith("--")]
    assert any(re.fullmatch(r"--help\s+-h\s+Show this message and exit\.", line) for line in options), options
    assert list(tmp_path.iterdir()) == []


def test_a_missing_argument_is_named_as_usage_names_it(tmp_path: Path) -> None:
    proc, lines, heavy = cli(["export"], tmp_path)
    assert proc.returncode == 2 and heavy == []
    assert lines == ["mila-bench: error: Missing argument 'TRACKER'. (see 'mila-bench export --help')"]
