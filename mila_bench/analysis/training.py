"""Training for the studies, assembled from the project's own pieces (no second loop).

Each study trains one model per (activation, seed[, depth]) the way a ``train`` run does:
config composed by Hydra and checked by ``config.validate``, data from ``load_dataset``,
then ``pipeline.fit_model`` (the same model, optimizer, schedule and ``engine.fit``). Study runs are not recorded in ``results/<run>`` or ``Results.md``: a
study's output is its figure and CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mila_bench.analysis.choices import ActivationChoice

# Studies train many models; a tqdm bar for each would bury the progress lines.
STUDY_DEFAULTS = ("trainer.progress=false",)

Reporter = Callable[[str], None]
Variant = tuple[ActivationChoice, tuple[str, ...]]  # an activation plus its extra overrides (e.g. a depth)


@dataclass
class Study:
    """What every run of a study shares: the checked config of each variant, the data, the device."""

    configs: dict[tuple[str, tuple[str, ...]], Any]
    data: Any
    device: Any
    base_seed: int

    def config(self, choice: ActivationChoice, extra: Sequence[str] = ()) -> Any:
        return self.configs[(choice.label, tuple(extra))]

    def seeds(self, count: int) -> list[int]:
        """``count`` consecutive seeds starting at the config's ``seed``."""
        return list(range(self.base_seed, self.base_seed + count))


def prepare(variants: Iterable[Variant], overrides: Sequence[str]) -> Study:
    """Compose and validate every variant's config first (bad input fails before any training), then load the data once."""
    from mila_bench.config import compose
    from mila_bench.data.load import load_dataset
    from mila_bench.training.engine import select_device

    configs = {
        (choice.label, tuple(extra)): compose([*STUDY_DEFAULTS, *overrides, *extra, *choice.overrides()])
        for choice, extra in variants
    }
    first = next(iter(configs.values()))
    device = select_device(str(first.device))
    data = load_dataset(first.dataset)
    data.train, data.test = data.train.to(device), data.test.to(device)
    return Study(configs, data, device, int(first.seed))


def train_one(study: Study, choice: ActivationChoice, seed: int, extra: Sequence[str] = ()):
    """Train ``choice``'s model (variant ``extra``) under ``seed`` exactly as ``pipeline.train``
    does (same ``fit_model``, so in its own run settings: ``trainer.threads``, determinism,
    a fresh Mila kernel state, all restored after), without recording it; return the model."""
    from mila_bench.pipeline import fit_model

    model, _ = fit_model(study.config(choice, extra), study.data, study.device, seed)
    return model
