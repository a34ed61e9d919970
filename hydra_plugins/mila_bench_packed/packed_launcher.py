"""``hydra/launcher=packed``: the Launcher class Hydra instantiates (configs/hydra/launcher/packed.yaml)."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class PackedLauncher(Launcher):
    """Jobs that differ only in seed and activation trained as packs (one batched model each);
    the others one after another, as Hydra's basic launcher runs them. See ``mila_bench.launch.packed``."""

    def __init__(self, max_pack: int | None = None) -> None:
        self.max_pack = max_pack
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from mila_bench.launch.packed import launch

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        return launch(self.config, self.hydra_context, self.task_function, job_overrides, initial_job_idx, self.max_pack)
