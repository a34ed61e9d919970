"""What a run record holds, as types: the summary, the metrics row and the checkpoint.

``summary.json`` is written and read only through :class:`Summary` (``to_json`` /
``from_json``), so every reader gets attributes instead of string keys and a record missing
a field it needs is refused as unreadable instead of guessed at. Records carry
``schema_version``; one without it is version 1 (every record before the field existed) and
is upgraded when read, never rewritten on disk: committed records stay as they were made.

Version history (summary): 1 — the keys as first recorded; 2 — adds ``schema_version`` and the
optional ``process`` (the run's process-wide settings); 3 — adds the optional
``environment.git_commit`` (the source checkout the run ran from); 4 — adds the optional
``environment.cpu_capability``, ``interop_threads``, ``torch_build`` and ``env_vars`` (what picks
and steers the CPU kernels); 5 — adds the optional ``pack`` (the pack a run trained in, see
:class:`Pack`). Checkpoint: 1 — as :class:`Checkpoint`.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from mila_bench.errors import UnreadableRecord

if TYPE_CHECKING:
    import torch

SCHEMA_VERSION = 5
CHECKPOINT_VERSION = 1
Status = Literal["running", "completed", "diverged"]


#: Field metadata of a nested field added later with default None: left out of the JSON while unset,
#: so a record written before the field existed reads and writes back unchanged.
WRITTEN_WHEN_SET = {"written_when_set": True}


@dataclass
class EpochMetrics:
    """What one epoch produced; one row of a run's ``metrics.csv`` (and the summary's ``final``)."""

    epoch: int
    train_loss_sum: float  # sum of the batch losses, as the original demo printed it
    train_loss: float  # mean batch loss
    test_loss: float
    top1: float
    top3: float
    top5: float
    seconds: float  # training time of this epoch (evaluation excluded)
    lr: float | None = None  # the epoch's learning rate; recorded only when a scheduler sets it
    # Keras' val_loss (see engine.evaluate); recorded only for models with a kernel L2 penalty
    keras_val_loss: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The row as recorded: a column a run does not have (None) is left out, not written empty."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Versions:
    torch: str
    python: str


@dataclass
class Environment:
    """What changes the numbers beyond the config: two runs are bitwise equal only when these match too."""

    torch: str
    cuda: str | None
    cudnn: int | None
    device_type: str
    device_name: str | None
    cpu: str
    torch_threads: int
    deterministic: bool
    # the source checkout's commit (``git rev-parse HEAD``); absent in older records and outside a checkout
    git_commit: str | None = field(default=None, metadata=WRITTEN_WHEN_SET)
    # what picks and steers the CPU kernels (training.cpu_environment); absent in older records:
    # torch's dispatch level (DEFAULT, AVX2, AVX512 ...), its inter-op threads, the libraries it was
    # built with (BLAS, LAPACK, oneDNN, OpenMP) and the environment variables they read (OMP_*, MKL_* ...)
    cpu_capability: str | None = field(default=None, metadata=WRITTEN_WHEN_SET)
    interop_threads: int | None = field(default=None, metadata=WRITTEN_WHEN_SET)
    torch_build: list[str] | None = field(default=None, metadata=WRITTEN_WHEN_SET)
    env_vars: dict[str, str] | None = field(default=None, metadata=WRITTEN_WHEN_SET)


@dataclass
class Reproduction:
    """The tag ``reproduce`` gives each of its runs: which published table, row and section."""

    section: str
    table: str
    epochs: int
    seeds: int
    only: list[str]
    overrides: list[str]
    row: str


@dataclass
class Divergence:
    """Where a run's training loss first became non-finite."""

    epoch: int
    step: int


@dataclass
class Cost:
    """What the run cost besides accuracy (see ``training.cost``): time per training step on its
    device, and the memory its model keeps for backward, which does not depend on the device."""

    step_ms: float | None  # median training step (ms) after the warm-up steps
    images_per_s: float | None  # batch size / median step
    saved_bytes_per_image: float  # bytes kept for backward per image (one forward pass, counted)
    peak_cuda_bytes: int | None = None  # torch.cuda.max_memory_allocated over the run; None off CUDA


@dataclass
class Pack:
    """A run trained as one member of a pack (``hydra/launcher=packed``): N runs as one batched model.

    The run is its own experiment all the same (its own initial weights, data order, β); its
    ``cost.step_ms`` is its share of the pack's step (``step_ms`` / ``size``)."""

    id: str  # the same for every member of the pack
    member: int  # this run's place in the pack, 0..size-1
    size: int  # members at the start
    step_ms: float | None = None  # the pack's median step (all members), ms


#: Fields a record of that status must have (other fields defaulting to None may be absent).
REQUIRED_BY_STATUS: dict[str, tuple[str, ...]] = {
    "completed": ("learned", "parameters", "train_seconds", "final", "checkpoint_bytes"),
    "diverged": ("diverged",),
    "running": (),
}


@dataclass(kw_only=True)
class Summary:
    """``summary.json``: one run, as started (``running``) and as finished (``completed``/``diverged``).

    Field order is the JSON key order; a field defaulting to None is written only when set (absent
    otherwise, as it always was). Keys this version does not know are kept in ``extra`` and written
    back after the known ones, so rewriting a record (resume, completion) never drops what it held.
    """

    schema_version: int = SCHEMA_VERSION
    run_id: str
    status: Status
    started: str
    dataset: str
    data: dict[str, Any]  # the loader's account of the data: root, source, checksum, subset
    model: str
    initialization: str | None
    model_config: dict[str, Any]
    scheduler: dict[str, Any] | None
    amp: str
    compile: bool | str
    deterministic: bool
    activation: str
    activation_params: dict[str, float]
    activation_target: str | None = None  # plugin or custom activation: what was imported...
    activation_origin: str | None = None  # ...and from where
    learnable_beta: bool
    seed: int
    epochs: int
    device: str
    versions: Versions
    environment: Environment
    reproduction: Reproduction | None = None
    process: dict[str, Any] | None = None  # the run's process-wide settings (threads, determinism, kernels)
    pack: Pack | None = None  # trained packed with other runs (schema 5)
    resumed_from_epoch: list[int] | None = None  # one entry per resumption: the epoch it continued after
    resumed_environment: list[Environment] | None = None
    learned: dict[str, float] | None = None  # learned activation parameters (e.g. β), by module name
    parameters: int | None = None
    # what a model adapter did to the architecture (timm: activation modules replaced by kind, the
    # kinds left as they were, any small-input adaptation)
    model_adaptation: dict[str, Any] | None = None
    cost: Cost | None = None
    train_seconds: float | None = None
    final: EpochMetrics | None = None
    checkpoint_bytes: int | None = None
    diverged: Divergence | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: known keys in field order (unset optional ones left out), then ``extra``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.default is None):
                continue
            out[f.name] = _plain(value)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: object) -> Summary:
        """A summary read from JSON, upgraded to this version; :class:`UnreadableRecord` names what is wrong."""
        if not isinstance(data, dict):
            raise UnreadableRecord(f"not a JSON object but {type(data).__name__}")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise UnreadableRecord(f"schema_version {version!r}; this mila-bench reads 1..{SCHEMA_VERSION}")
        data = {**data, "schema_version": SCHEMA_VERSION}  # 1 → 2 → 3 → 4 → 5: only the version and optional fields were added
        hints = _hints(cls)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and _required(f)]
        missing += [k for k in REQUIRED_BY_STATUS.get(data.get("status"), ()) if data.get(k) is None]
        if missing:
            raise UnreadableRecord(f"missing {', '.join(missing)}")
        known = {k: _typed(k, data[k], hints[k]) for k in hints if k in data and k != "extra"}
        return cls(**known, extra={k: v for k, v in data.items() if k not in hints})


#: Keys that ``configs/`` gained after runs were recorded, by (group, option), with the value the
#: code used before the key was written out. A recorded ``config.yaml`` without them is read with
#: them (:func:`upgrade_config`), so its run still compares equal to a new run of the same settings
#: (the report's configurations, ``trainer.resume``).
CONFIG_KEYS_ADDED: dict[tuple[str, str | None], dict[str, object]] = {
    ("optimizer", "adam"): {"eps": 1e-8},  # torch's Adam default, which build_optimizer used when unset
    ("trainer", None): {"cuda_graph": False},  # None: every option of the group (the trainer has one)
}


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded resolved config with the keys added since it was written (see :data:`CONFIG_KEYS_ADDED`)."""
    upgraded = dict(config)
    for (group, option), added in CONFIG_KEYS_ADDED.items():
        node = upgraded.get(group)
        if isinstance(node, dict) and (option is None or node.get("name") == option):
            upgraded[group] = {**node, **{k: v for k, v in added.items() if k not in node}}
    return upgraded


class RngState(TypedDict):
    """Every random state a run draws from (see ``checkpoints.rng_state``)."""

    torch: torch.Tensor
    cuda: list[torch.Tensor]
    numpy: tuple[str, torch.Tensor, int, int, float]
    python: tuple[int, tuple[int, ...], float | None]
    generators: dict[str, torch.Tensor]  # "batches", "augment" → torch.Generator states


class Checkpoint(TypedDict, total=False):
    """``checkpoint.pt``: everything needed to continue a run bit for bit after ``epoch``.

    ``version`` is absent in checkpoints written before it existed (read as 1).
    """

    version: int
    epoch: int
    model: dict[str, torch.Tensor]  # state_dict
    optimizer: dict[str, Any]  # state_dict
    scheduler: dict[str, Any] | None  # EpochScheduler.state_dict(), None without a scheduler
    history: list[dict[str, float]]  # EpochMetrics.as_dict() of every epoch so far
    rng: RngState


#: Keys a checkpoint must have to be continued from.
CHECKPOINT_KEYS = frozenset({"epoch", "model", "optimizer", "rng", "history"})


# ---------------------------------------------------------------- reading, field by field


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _plain(value: Any) -> Any:
    """A field value as JSON data (nested dataclasses become objects, keeping their own omissions)."""
    if isinstance(value, EpochMetrics):
        return value.as_dict()
    if dataclasses.is_dataclass(value):
        fields = dataclasses.fields(value)
        unset = {f.name for f in fields if f.metadata.get("written_when_set") and getattr(value, f.name) is None}
        return {k: v for k, v in asdict(value).items() if k not in unset}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _typed(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against ``hint`` one level deep (nested dataclasses are built from their objects)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        origin = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return None
        if origin is Literal and value in typing.get_args(option):
            return value
        if dataclasses.is_dataclass(origin) and isinstance(value, dict):
            try:
                return origin(**value)
            except TypeError as err:
                raise UnreadableRecord(f"{name}: {err}") from None
        if origin is list and isinstance(value, list):
            (item,) = typing.get_args(option)
            return [_typed(name, v, item) for v in value]
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is dict and isinstance(value, dict):
            values = typing.get_args(option)[1:] or (Any,)
            return value if values[0] is Any else {k: _typed(f"{name}.{k}", v, values[0]) for k, v in value.items()}
        if origin in (str, bool) and isinstance(value, origin):
            return value
    raise UnreadableRecord(f"{name} is {value!r}, expected {getattr(hint, '__name__', hint)}")
