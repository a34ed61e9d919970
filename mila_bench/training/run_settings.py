"""What a run sets in its process, from its config alone, and gives back when it ends.

A run's numbers depend on more than its config: torch's CPU threads (they set the order of
parallel reductions), deterministic algorithms, the fp32 precision flags (TF32 on CUDA, bf16
in oneDNN on CPU), cuDNN's autotuner, and where Mila's ``auto`` kernels switch to compiled.
Runs that share a process (``reproduce``, Hydra's basic launcher, the analysis studies) must
neither inherit these from the run before nor leave theirs behind, so :func:`run_settings`
sets every one of them from the config when a run starts and restores what was there when it
ends, by exception or interrupt too. The config has no precision keys: a run uses torch's own
defaults (:data:`PRECISION`), whatever the process was set to before.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from mila_bench.activations import fused_mila

#: torch >= 2.9's fp32 precision flags, parents before children (the legacy allow_tf32 and
#: float32_matmul_precision flags are views of these; a parent set after its child would win).
PRECISION_FLAGS = (
    "fp32_precision",
    "cuda.matmul.fp32_precision",
    "cudnn.fp32_precision",
    "cudnn.conv.fp32_precision",
    "cudnn.rnn.fp32_precision",
    "mkldnn.fp32_precision",
    "mkldnn.matmul.fp32_precision",
    "mkldnn.conv.fp32_precision",
    "mkldnn.rnn.fp32_precision",
)
#: What a run uses, whatever the process held: torch's defaults in a fresh process (fp32 matmuls
#: in fp32; cuDNN convolutions may use TF32, as torch lets them by default).
PRECISION = {"float32_matmul_precision": "highest", "matmul_tf32": False, "cudnn_tf32": True}
FP32_PRECISION = {flag: "none" for flag in PRECISION_FLAGS} | {"cudnn.conv.fp32_precision": "tf32", "cudnn.rnn.fp32_precision": "tf32"}
#: What ``trainer.deterministic`` needs of cuBLAS (a value the user set is kept).
CUBLAS_WORKSPACE = ":4096:8"


@functools.cache
def default_threads() -> int:
    """torch's own intra-op thread count for this machine, captured once, before any run changes it.

    Called first when the first run starts; so ``trainer.threads=null`` means this number in
    every run of the process, not whatever the run before left.
    """
    return torch.get_num_threads()


@dataclass(frozen=True)
class ProcessState:
    """The process-wide torch settings that change a run's numbers (one snapshot)."""

    threads: int
    deterministic: bool
    deterministic_warn_only: bool
    cublas_workspace: str | None  # the CUBLAS_WORKSPACE_CONFIG environment variable
    float32_matmul_precision: str | None  # the legacy flags; None: unreadable (torch refuses to
    matmul_tf32: bool | None  # read them after a mix of legacy and new settings)
    cudnn_tf32: bool | None
    fp32_precision: tuple[tuple[str, str], ...]  # the flags of PRECISION_FLAGS this torch has
    cudnn_benchmark: bool
    cudnn_deterministic: bool
    mila_kernels: fused_mila.MilaKernels = field(compare=False)  # compared by identity in same_as

    def same_as(self, other: ProcessState) -> bool:
        """Equal settings and the very same Mila kernel state."""
        return self == other and self.mila_kernels is other.mila_kernels


def _flag(path: str):
    obj = torch.backends
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set_flag(path: str, value: object) -> None:
    *parents, name = path.split(".")
    obj = torch.backends
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, name, value)


def _legacy(read: Callable[[], object]) -> bool | str | None:
    try:
        return read()  # type: ignore[return-value]
    except RuntimeError:  # a mix of torch's legacy and new precision flags: the new ones are captured anyway
        return None


_MATMUL_PRECISION = torch.get_float32_matmul_precision
_MATMUL_TF32 = lambda: bool(torch.backends.cuda.matmul.allow_tf32)  # noqa: E731
_CUDNN_TF32 = lambda: bool(torch.backends.cudnn.allow_tf32)  # noqa: E731


def capture() -> ProcessState:
    """The process's settings now."""
    flags = []
    for path in PRECISION_FLAGS:
        try:
            flags.append((path, str(_flag(path))))
        except AttributeError:  # torch < 2.9: only the legacy flags exist
            pass
    return ProcessState(
        threads=torch.get_num_threads(),
        deterministic=torch.are_deterministic_algorithms_enabled(),
        deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
        cublas_workspace=os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        float32_matmul_precision=_legacy(_MATMUL_PRECISION),
        matmul_tf32=_legacy(_MATMUL_TF32),
        cudnn_tf32=_legacy(_CUDNN_TF32),
        fp32_precision=tuple(flags),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        mila_kernels=fused_mila.current(),
    )


def apply(state: ProcessState) -> None:
    """Set the process to ``state``, except the Mila kernels (:func:`run_settings` scopes those).

    The legacy precision flags go first, then the new ones they did not already set right. Each
    is written only where it differs: torch derives the flags from one another, and a needless
    write (say allow_tf32=True over precision "medium", which means "high") makes them a mix it
    refuses to read.
    """
    torch.set_num_threads(state.threads)
    torch.use_deterministic_algorithms(state.deterministic, warn_only=state.deterministic_warn_only)
    if state.cublas_workspace is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = state.cublas_workspace
    if state.float32_matmul_precision is not None and _legacy(_MATMUL_PRECISION) != state.float32_matmul_precision:
        torch.set_float32_matmul_precision(state.float32_matmul_precision)
    if state.matmul_tf32 is not None and _legacy(_MATMUL_TF32) != state.matmul_tf32:
        torch.backends.cuda.matmul.allow_tf32 = state.matmul_tf32
    if state.cudnn_tf32 is not None and _legacy(_CUDNN_TF32) != state.cudnn_tf32:
        torch.backends.cudnn.allow_tf32 = state.cudnn_tf32
    for path, value in state.fp32_precision:
        if str(_flag(path)) != value:
            _set_flag(path, value)
    torch.backends.cudnn.benchmark = state.cudnn_benchmark
    torch.backends.cudnn.deterministic = state.cudnn_deterministic


def for_config(cfg: Mapping) -> ProcessState:
    """What a run of ``cfg`` sets: threads and determinism from ``trainer``, torch's default precision,
    cuDNN's autotuner off (it picks algorithms by timing), and a fresh Mila kernel state for ``activation.impl``."""
    trainer = cfg["trainer"]
    deterministic = bool(trainer.get("deterministic") or False)
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    has_new_flags = hasattr(torch.backends, "fp32_precision")
    return ProcessState(
        threads=int(trainer.get("threads") or default_threads()),
        deterministic=deterministic,
        deterministic_warn_only=False,
        cublas_workspace=(workspace or CUBLAS_WORKSPACE) if deterministic else workspace,
        float32_matmul_precision=PRECISION["float32_matmul_precision"],
        matmul_tf32=PRECISION["matmul_tf32"],
        cudnn_tf32=PRECISION["cudnn_tf32"],
        fp32_precision=tuple(FP32_PRECISION.items()) if has_new_flags else (),
        cudnn_benchmark=False,
        cudnn_deterministic=deterministic,
        mila_kernels=fused_mila.MilaKernels(str(cfg["activation"].get("impl") or "auto")),
    )


@dataclass
class RunSettings:
    """The settings of the run in progress (``cfg`` is the config object it was opened for)."""

    cfg: object
    state: ProcessState

    def as_summary(self) -> dict[str, object]:
        """For summary.json (``process``): what the run set, and the Mila kernels that actually ran."""
        keep = ("threads", "deterministic", "float32_matmul_precision", "matmul_tf32", "cudnn_tf32",
                "cudnn_benchmark", "cudnn_deterministic")  # fmt: skip
        return {**{k: getattr(self.state, k) for k in keep}, "mila_kernels": self.state.mila_kernels.as_summary()}


_active: list[RunSettings] = []


@contextmanager
def run_settings(cfg: Mapping) -> Iterator[RunSettings]:
    """Set the process up for a run of ``cfg`` (:func:`for_config`); put back what was there after.

    Re-entering with the same config object (``train`` → ``fit_model``) keeps the run's context:
    one run, one Mila kernel state.
    """
    if _active and _active[-1].cfg is cfg:
        yield _active[-1]
        return
    default_threads()  # capture torch's default before the first run sets anything
    before = capture()
    settings = RunSettings(cfg, for_config(cfg))
    try:
        apply(settings.state)
        with fused_mila.kernels(settings.state.mila_kernels):
            _active.append(settings)
            try:
                yield settings
            finally:
                _active.pop()
    finally:
        apply(before)
