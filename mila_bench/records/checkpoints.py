"""Per-epoch checkpoints: everything needed to continue a run bit for bit.

A checkpoint holds the model, optimizer and scheduler states, the metrics so far, every
random state a run draws from (torch CPU/CUDA, numpy, python, the batch-order and
augmentation generators) and Mila's kernel state (``mila_kernels``: the large-tensor work so
far decides where ``impl=auto`` switches to the compiled kernels, which changes the last bits).
The process settings (threads, determinism, precision) are not saved: the resumed run sets
them from the same config (``training.run_settings``). It is written atomically (temporary file, then rename) so a
kill mid-write leaves the previous checkpoint intact, and read with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects. Its contents are
:class:`~mila_bench.records.schema.Checkpoint` (versioned; a checkpoint without a version is 1).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from mila_bench.errors import UsageError
from mila_bench.atomic import atomic_write
from mila_bench.records.schema import CHECKPOINT_KEYS, CHECKPOINT_VERSION, Checkpoint

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state(generators: dict[str, torch.Generator | None]) -> dict[str, Any]:
    """The global random states plus those of the named generators, as plain tensors/tuples."""
    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss),
        "python": random.getstate(),
        "generators": {name: g.get_state() for name, g in generators.items() if g is not None},
    }


def restore_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator | None]) -> None:
    """Put back what :func:`rng_state` captured."""
    import numpy as np

    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    for name, g in generators.items():
        if g is not None and name in state["generators"]:
            g.set_state(state["generators"][name])


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` atomically, stamped with the checkpoint version."""
    stamped = {"version": CHECKPOINT_VERSION, **checkpoint}
    atomic_write(path, lambda f: torch.save(stamped, f))


def load(path: Path) -> Checkpoint:
    """Read a checkpoint safely; a corrupt, truncated or unsafe file is one clear error."""
    if not path.is_file():
        raise UsageError(f"no checkpoint at {path}; the run has not finished an epoch yet, so start it afresh")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(
            f"cannot load checkpoint {path}: {first[:200]}; it is corrupt, truncated or not a mila-bench "
            "checkpoint (only tensors and plain data are accepted)"
        ) from None
    if not isinstance(checkpoint, dict) or not CHECKPOINT_KEYS <= set(checkpoint):
        raise UsageError(f"cannot load checkpoint {path}: not a mila-bench checkpoint (keys missing)")
    version = checkpoint.get("version", 1)
    if version != CHECKPOINT_VERSION:
        raise UsageError(
            f"cannot load checkpoint {path}: checkpoint version {version!r}; this mila-bench reads {CHECKPOINT_VERSION}"
        )
    return checkpoint
