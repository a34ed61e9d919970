"""The one exception type the CLI turns into a single clear line.

Anything the user can fix (a bad name, a bad number, missing data, an impossible device)
is raised as :class:`UsageError`; the CLI prints its message without a traceback and
exits non-zero. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class UsageError(Exception):
    """An error caused by the user's input, reported as one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def unknown_name(kind: str, name: object, allowed: Iterable[str]) -> UsageError:
    """Build the standard 'unknown X; allowed: ...' error."""
    return UsageError(f"unknown {kind} {name!r}; allowed: {', '.join(sorted(allowed))}")


class RunDiverged(UsageError):
    """Training stopped on a non-finite loss; its own exit code so scripts can tell."""

    exit_code = 3
