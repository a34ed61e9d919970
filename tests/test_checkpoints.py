"""Checkpoint files: round trip of every random state, and refusal of unsafe or broken files."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mila_bench.records import checkpoints
from mila_bench.errors import UsageError


def draws(generator: torch.Generator) -> list[float]:
    return [torch.rand(1).item(), float(np.random.rand()), random.random(), torch.rand(1, generator=generator).item()]


def test_random_states_round_trip_through_a_checkpoint_file(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(5)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    model = torch.nn.Linear(3, 2)
    path = tmp_path / checkpoints.CHECKPOINT_NAME
    checkpoints.save(
        path,
        {"epoch": 1, "model": model.state_dict(), "optimizer": {}, "history": [{"epoch": 1, "top1": 0.5}],
         "rng": checkpoints.rng_state({"batches": generator})},
    )  # fmt: skip
    expected = draws(generator)
    draws(generator)  # move every state on
    loaded = checkpoints.load(path)
    checkpoints.restore_rng_state(loaded["rng"], {"batches": generator})
    assert draws(generator) == expected
    assert torch.equal(loaded["model"]["weight"], model.weight.detach())
    assert loaded["history"] == [{"epoch": 1, "top1": 0.5}]


class Payload:
    """Unpickling this would run code; weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_arbitrary_object_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 1, "model": {}, "optimizer": {}, "rng": {}, "history": [], "evil": Payload()}, path)
    with pytest.raises(UsageError, match="cannot load checkpoint"):
        checkpoints.load(path)
    assert "pwned" not in capsys.readouterr().out
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UsageError, match="cannot load checkpoint"):
        checkpoints.load(plain)


def test_truncated_or_foreign_checkpoints_are_one_clear_error(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    checkpoints.save(good, {"epoch": 1, "model": {"w": torch.ones(1000)}, "optimizer": {}, "rng": {}, "history": []})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(UsageError, match="corrupt, truncated"):
        checkpoints.load(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(2)}, foreign)
    with pytest.raises(UsageError, match="keys missing"):
        checkpoints.load(foreign)
    with pytest.raises(UsageError, match="no checkpoint"):
        checkpoints.load(tmp_path / "absent.pt")
