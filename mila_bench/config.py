"""Compose a run's config with Hydra, then check every value before any work starts.

Hydra does composition and override parsing; this module only turns its errors into one
line and checks the values Hydra cannot type-check (ranges, names, devices).
"""

from __future__ import annotations

import math
import re
import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mila_bench.errors import UsageError, unknown_name

#: What a sweep job can return to the sweeper (``sweep.objective``), and which way is better.
OBJECTIVES = {"top1": "maximize", "top3": "maximize", "top5": "maximize", "test_loss": "minimize"}

GROUPS = ("activation", "model", "dataset", "optimizer", "scheduler", "trainer", "experiment")


def config_dir() -> Path:
    """``configs/`` of a source checkout, else the copy installed inside the package."""
    env = os.environ.get("MILA_BENCH_CONFIG_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent / "configs"
    if (checkout / "config.yaml").is_file():
        return checkout
    from importlib.resources import files

    return Path(str(files("mila_bench") / "configs"))


def group_options(group: str) -> list[str]:
    """Option names of a config group: its yaml files, and for ``activation`` the installed plugins."""
    names = {p.stem for p in (config_dir() / group).glob("*.yaml")}
    if group == "activation":
        from mila_bench.activations.plugins import plugins

        names |= set(plugins())
    return sorted(names)


def store_plugin_configs() -> None:
    """Make each installed activation plugin a choice of the ``activation`` group, as its yaml would."""
    from hydra.core.config_store import ConfigStore

    from mila_bench.activations import plugin_configs

    store = ConfigStore.instance()
    for name, node in plugin_configs().items():
        store.store(group="activation", name=name, node=node)


def compose(overrides: Sequence[str] = (), with_hydra: bool = False) -> DictConfig:
    """The composed and validated config for ``overrides`` (Hydra override syntax).

    ``with_hydra`` keeps Hydra's own node (``cfg.hydra``: sweeper, launcher), which sweeps check.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    store_plugin_configs()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="mila-bench"):
            cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)
    except MissingConfigException as err:
        missing = str(err.missing_cfg_file or "")
        group, _, option = missing.rpartition("/")
        if (group in GROUPS or group.startswith("hydra/")) and err.options is not None:
            raise unknown_name(group, option, err.options) from None
        raise UsageError(_first_line(err)) from None
    except OverrideParseException as err:
        raise UsageError(f"malformed override: {_first_line(err)}") from None
    except HydraException as err:
        unknown_key = re.match(r"Could not override '([^']+)'", str(err))
        if unknown_key:
            raise UsageError(
                f"unknown config key {unknown_key.group(1)!r}: the composed config has no such key "
                "(all keys: mila-bench train --show-config)"
            ) from None
        if str(err).startswith("Error merging override") and err.__cause__ is not None:
            # a typed setting (Hydra's launchers and sweepers): say why the value does not fit
            raise UsageError(f"{_first_line(err)}: {str(err.__cause__).splitlines()[0]}") from None
        raise UsageError(_first_line(err)) from None
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    """Check names and ranges; raise :class:`UsageError` naming the first bad value."""
    from mila_bench import activations
    from mila_bench.models import MODELS
    from mila_bench.models.mlp import INITIALIZATIONS

    activations.activation_factory(cfg.activation)

    if cfg.model.name not in MODELS:
        raise unknown_name("model", cfg.model.name, MODELS)
    if cfg.model.name == "mlp" and cfg.model.initialization not in INITIALIZATIONS:
        raise UsageError(
            f"model.initialization={cfg.model.initialization!r} is not allowed; allowed: {', '.join(INITIALIZATIONS)}"
        )
    if cfg.model.name == "deep_mlp":
        from mila_bench.models.deep_mlp import check_sizes

        check_sizes(cfg.model.get("depth"), cfg.model.get("width"))
    if cfg.model.name == "resnet":
        from mila_bench.models.resnet import check_depth

        check_depth(cfg.model.get("depth"), cfg.model.get("version"))
        _check_finite(cfg, "model.kernel_l2", positive=False)
    from mila_bench.training.schedules import check_scheduler

    check_scheduler(cfg.get("scheduler"))
    from mila_bench.training.engine import check_compile

    check_compile(OmegaConf.select(cfg, "trainer.compile"))  # true, false or a torch.compile mode
    for key in ("trainer.amp", "trainer.resume", "trainer.deterministic", "dataset.verify", "dataset.flip"):
        _flag(cfg, key)
    if OmegaConf.select(cfg, "dataset.shift") is not None:
        _integer(cfg, "dataset.shift", minimum=0)

    _integer(cfg, "trainer.epochs", minimum=1)
    _integer(cfg, "trainer.batch_size", minimum=1)
    _integer(cfg, "trainer.eval_batch_size", minimum=1)
    if OmegaConf.select(cfg, "trainer.threads") is not None:
        _integer(cfg, "trainer.threads", minimum=1)
    if OmegaConf.select(cfg, "sweep.objective") is not None:
        if cfg.sweep.objective not in OBJECTIVES:
            raise unknown_name("sweep.objective", cfg.sweep.objective, OBJECTIVES)
    _integer(cfg, "seed", minimum=0)
    if cfg.dataset.get("train_subset") is not None:
        _integer(cfg, "dataset.train_subset", minimum=1)
    _check_finite(cfg, "optimizer.lr", positive=True)
    _check_finite(cfg, "optimizer.weight_decay", positive=False)
    if OmegaConf.select(cfg, "optimizer.eps") is not None:
        _check_finite(cfg, "optimizer.eps", positive=True)
    if cfg.optimizer.name not in ("adam", "sgd"):
        raise unknown_name("optimizer", cfg.optimizer.name, ("adam", "sgd"))
    _device(cfg.device)


def _integer(cfg: DictConfig, key: str, minimum: int) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{key}={value!r} is not allowed; expected an integer >= {minimum}")


def _flag(cfg: DictConfig, key: str) -> None:
    """Optional true/false keys: absent is fine, anything but a boolean is not."""
    value = OmegaConf.select(cfg, key)
    if value is not None and not isinstance(value, bool):
        raise UsageError(f"{key}={value!r} is not allowed; expected true or false")


def _check_finite(cfg: DictConfig, key: str, positive: bool) -> None:
    value = OmegaConf.select(cfg, key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        bound = "> 0" if positive else ">= 0"
        raise UsageError(f"{key}={value!r} is not allowed; expected a finite number {bound}")


def _device(value: object) -> None:
    text = str(value)
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return
    raise UsageError(f"device={value!r} is not allowed; allowed: auto, cpu, cuda, cuda:N")


def _first_line(err: BaseException) -> str:
    """Hydra's message, or its cause's when Hydra wraps without one, on one line."""
    while not str(err).strip() and err.__cause__ is not None:
        err = err.__cause__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(err).__name__
