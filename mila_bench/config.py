"""Compose a run's config with Hydra and check it once, before any work starts.

Hydra does composition and override parsing; this module turns its errors into one line and
hands each group to the module that owns its rules (``activations.catalog``, ``models.checks``,
``data.checks``, ``training.checks``, ``training.schedules``, ``trackers.checks``); it checks only the run's own keys
(seed, device, sweep objective). No check imports torch, so bad input is answered without it.
Every default lives in ``configs/`` (activation parameters: in the registry, which the
activation configs take them from), and code reads the composed values.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from mila_bench.checks import integer
from mila_bench.errors import UsageError, unknown_name
from mila_bench.overrides import override_key, split_override

#: What a sweep job can return to the sweeper (``sweep.objective``), and which way is better.
OBJECTIVES = {"top1": "maximize", "top3": "maximize", "top5": "maximize", "test_loss": "minimize"}

GROUPS = ("activation", "model", "dataset", "optimizer", "scheduler", "trainer", "experiment", "logger")


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


def defaults_file() -> dict:
    """``configs/config.yaml`` as written (unresolved, uncomposed): its own defaults, read in milliseconds."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(config_dir() / "config.yaml"))  # type: ignore[return-value]


def description(group: str, name: str) -> str:
    """An option's one-line description: the first comment line of its YAML file (``# @package`` aside),
    as the configuration reference shows it; a ``description:`` key (suites) where the file has one."""
    path = config_dir() / group / f"{name}.yaml"
    if not path.is_file():
        return ""
    lines = path.read_text().splitlines()
    for line in lines:
        if line.startswith("description:"):
            return line.split(":", 1)[1].strip()
    for line in lines:
        text = line.strip()
        if text.startswith("#") and not text.startswith("# @package"):
            return text.lstrip("#").strip()
        if text and not text.startswith("#"):
            break
    return ""


def hydra_options(group: str) -> list[str]:
    """The options Hydra offers for one of its own groups (``hydra/launcher``, ``hydra/sweeper``): its
    plugins' and ours (``configs/hydra/``), as Hydra lists them; the plugins are not imported."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def experiment_alias(name: str) -> str:
    """An experiment's other spelling, a published table's (``cifar10_resnet20_v1`` → ``cifar10-resnet20-v1``)."""
    return name.replace("_", "-")


def belongs_elsewhere(name: str) -> str | None:
    """Where ``name``, given to the wrong command, belongs: ``train experiment=NAME`` or ``suite NAME``."""
    spelled = name.replace("-", "_")
    if spelled in group_options("experiment"):
        return f"{name!r} is an experiment: mila-bench train experiment={spelled}"
    if (config_dir() / "suite" / f"{name}.yaml").is_file():
        return f"{name!r} is a suite: mila-bench suite {name}"
    return None


def store_configs(overrides: Sequence[str] = ()) -> None:
    """Put into Hydra's config store what the yaml files take from code, without importing torch.

    ``activation/parameters/<name>``: a built-in's parameters with their defaults, from the registry
    (each ``configs/activation/<name>.yaml`` includes its own, so a default is written only there).
    Each installed plugin becomes a choice of the ``activation`` group, as its yaml would: the one
    ``overrides`` select is imported to read its defaults; the others are named only, unimported.
    Each experiment is a choice under its published table's spelling too (``experiment=cifar10-resnet20-v1``
    composes ``cifar10_resnet20_v1``), so the names ``reproduce`` takes work here as well.
    """
    from hydra.core.config_store import ConfigStore

    from mila_bench.activations.catalog import plugin_config
    from mila_bench.activations.plugins import plugins
    from mila_bench.activations.registry import BUILTINS

    store = ConfigStore.instance()
    for name, entry in BUILTINS.items():
        if entry.defaults:
            store.store(group="activation/parameters", name=name, node=dict(entry.defaults))
    selected = _selected("activation", overrides)
    for name in plugins():
        store.store(group="activation", name=name, node=plugin_config(name) if name in selected else {"name": name})
    for name in group_options("experiment"):
        if experiment_alias(name) != name:
            store.store(group="experiment", name=experiment_alias(name), node={"defaults": [name]}, package="_global_")


def _selected(group: str, overrides: Sequence[str]) -> set[str]:
    """The options ``overrides`` choose for ``group`` (``group=a`` or a sweep's ``group=a,b``)."""
    chosen: set[str] = set()
    for override in overrides:
        key, value = split_override(override)
        if value is not None and key.split("@")[0] == group:
            chosen.update(v.strip() for v in value.split(","))
    return chosen


def compose(overrides: Sequence[str] = (), with_hydra: bool = False) -> DictConfig:
    """The composed config for ``overrides`` (Hydra override syntax), checked once: callers use it as is.

    ``with_hydra`` keeps Hydra's own node (``cfg.hydra``: sweeper, launcher), which sweeps check.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    store_configs(overrides)
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="mila-bench"):
            cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)
    except MissingConfigException as err:
        missing = str(err.missing_cfg_file or "")
        group, _, option = missing.rpartition("/")
        if group in GROUPS or (group.startswith("hydra/") and err.options is not None):
            # our groups' options are their files (and plugins), without the experiments' other spelling;
            # a list selection (logger=[mlflow,nope]) fails without Hydra's options
            error = unknown_name(group, option, group_options(group) if group in GROUPS else err.options)
            elsewhere = belongs_elsewhere(option) if group == "experiment" else None
            raise (UsageError(f"{error}; {elsewhere}") if elsewhere else error) from None
        raise UsageError(first_line(err)) from None
    except OverrideParseException as err:
        raise UsageError(f"malformed override: {first_line(err)}") from None
    except HydraException as err:
        unknown_key = re.match(r"Could not override '([^']+)'", str(err))
        if unknown_key:
            key = unknown_key.group(1)
            close = closest_keys(key, _leaf_keys([o for o in overrides if override_key(o) != key]))
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"unknown config key {key!r}: the composed config has no such key{hint} "
                "(all keys: mila-bench train --show-config)"
            ) from None
        if str(err).startswith("Error merging override") and err.__cause__ is not None:
            # a typed setting (Hydra's launchers and sweepers): say why the value does not fit
            raise UsageError(f"{first_line(err)}: {str(err.__cause__).splitlines()[0]}") from None
        raise UsageError(first_line(err)) from None
    validate(cfg)
    return cfg


def closest_keys(key: str, keys: Sequence[str], n: int = 3) -> list[str]:
    """The full keys whose last part is closest to ``key``'s, the most like ``key`` first: a key typed
    without its group finds it (``beta`` → ``activation.beta``, ``epochs`` → ``trainer.epochs``)."""
    by_last: dict[str, list[str]] = {}
    for full in keys:
        by_last.setdefault(full.rpartition(".")[2], []).append(full)
    close = difflib.get_close_matches(key.rpartition(".")[2], list(by_last), n=n, cutoff=0.6)
    found = [full for last in close for full in by_last[last]]
    return sorted(found, key=lambda full: -difflib.SequenceMatcher(None, key, full).ratio())[:n]


def _leaf_keys(overrides: Sequence[str]) -> list[str]:
    """The dotted leaf keys of the config ``overrides`` compose to (the defaults' when they do not)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from mila_bench.records.runs import flat_config

    for attempt in (list(overrides), []):
        try:
            with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="mila-bench"):
                cfg = hydra_compose("config", overrides=attempt)
            return list(flat_config(OmegaConf.to_container(cfg, resolve=False)))
        except Exception:  # another bad override: the defaults' keys will do
            continue
    return []


def validate(cfg: DictConfig) -> None:
    """Each group checked by the module that owns its rules; raise :class:`UsageError` naming the first bad value.

    :func:`compose` calls this; a config it returned needs no second check.
    """
    from omegaconf.errors import ConfigKeyError

    from mila_bench.activations.catalog import check as check_activation
    from mila_bench.data.checks import check as check_dataset
    from mila_bench.models.checks import check as check_model
    from mila_bench.training.checks import check_optimizer, check_trainer
    from mila_bench.trackers.checks import check as check_logger
    from mila_bench.training.schedules import check_scheduler

    checks = (
        ("activation", check_activation), ("model", check_model), ("dataset", check_dataset),
        ("optimizer", check_optimizer), ("scheduler", check_scheduler), ("trainer", check_trainer),
    )  # fmt: skip
    for group, check in checks:
        try:
            checked = check(cfg[group])
        except ConfigKeyError as err:  # a key removed with ~KEY: every key the code reads must be there
            key = getattr(err, "full_key", "") or group
            raise UsageError(f"{key} is missing from the composed config; it is needed (see mila-bench train --show-config)") from None
        if group == "activation" and checked.target is not None:
            # a selected plugin or custom target: built and probed on a small tensor now (imports torch)
            from mila_bench.activations.resolve import activation_factory

            activation_factory(cfg.activation)
    check_logger(cfg.get("logger"))
    integer("seed", cfg.seed, 0)
    if cfg.sweep.objective not in OBJECTIVES:
        raise unknown_name("sweep.objective", cfg.sweep.objective, OBJECTIVES)
    _device(cfg.device)


def _device(value: object) -> None:
    text = str(value)
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return
    raise UsageError(f"device={value!r} is not allowed; allowed: auto, cpu, cuda, cuda:N")


def first_line(err: BaseException) -> str:
    """Hydra's message, or its cause's when Hydra wraps without one, on one line."""
    while not str(err).strip() and err.__cause__ is not None:
        err = err.__cause__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(err).__name__
