"""The exceptions the CLI turns into a single clear line.

Anything the user can fix (a bad name, a bad number, missing data, an impossible device)
is raised as :class:`UsageError`; the CLI prints its message without a traceback and
exits non-zero. An interrupted run is :class:`RunInterrupted` (exit 130, says how to resume).
Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


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


class UnreadableRecord(UsageError):
    """A run record (summary.json) that does not hold what its schema requires; never guessed at."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a recorded run: its folder (status ``running``) and last checkpoint are kept.

    A KeyboardInterrupt still (so sweeps stop and nothing catches it as an ordinary error), with
    what the CLI needs to say how to continue: ``resume_command`` is filled in by whoever knows
    the command line that started the run.
    """

    exit_code = 130

    def __init__(self, run_dir: Path, checkpoint: Path | None, epoch: int = 0) -> None:
        super().__init__(str(run_dir))
        self.run_dir, self.checkpoint, self.epoch = run_dir, checkpoint, epoch
        self.resume_command: str | None = None

    def __str__(self) -> str:
        kept = (
            f"interrupted; run folder {self.run_dir} and its last checkpoint ({self.checkpoint.name}, after epoch "
            f"{self.epoch}) are kept"
            if self.checkpoint is not None
            else f"interrupted before the first epoch finished; run folder {self.run_dir} is kept (resuming starts it there)"
        )
        how = f"resume it with: {self.resume_command}" if self.resume_command else "resume it with trainer.resume=true"
        return f"{kept}; {how}"
