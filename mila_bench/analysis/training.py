"""Training for the studies, assembled from the project's own pieces (no second loop).

Each study trains one model per (activation, seed[, depth]) the way a ``train`` run does:
config composed by Hydra and checked by ``config.validate``, data from ``load_dataset``,
model from ``build_model``, then ``seed_everything``, ``build_optimizer`` and
``engine.fit``. Study runs are not recorded in ``results/<run>`` or ``Results.md``: a
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
    from mila_bench.data import load_dataset
    from mila_bench.engine import select_device

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
    """Train ``choice``'s model (variant ``extra``) under ``seed`` as ``pipeline.train`` would; return it.

    Model, activation, optimizer, schedule and precision come from the composed config
    through the same builders ``pipeline.train`` uses; only the recording is left out.
    """
    from mila_bench.activations import activation_factory
    from mila_bench.engine import build_optimizer, fit, seed_everything
    from mila_bench.models import build_model
    from mila_bench.schedules import build_scheduler

    cfg = study.config(choice, extra)
    make_activation = activation_factory(cfg.activation)
    generator = seed_everything(seed)
    model = build_model(cfg.model, make_activation, study.data.input_shape, study.data.num_classes).to(study.device)
    param_groups = getattr(model, "param_groups", None)
    params = param_groups(cfg.optimizer.get("weight_decay", 0.0)) if param_groups else model.parameters()
    optimizer = build_optimizer(cfg.optimizer, params)
    fit(
        model,
        study.data,
        optimizer,
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        eval_batch_size=cfg.trainer.eval_batch_size,
        generator=generator,
        progress=cfg.trainer.progress,
        scheduler=build_scheduler(cfg.get("scheduler"), optimizer, cfg.trainer.epochs),
        amp=bool(cfg.trainer.get("amp", False)),
        compiled=bool(cfg.trainer.get("compile", False)),
    )
    return model
