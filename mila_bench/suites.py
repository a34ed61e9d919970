"""Suite definitions: ``configs/suite/NAME.yaml``, read and checked (no torch, no Hydra run).

A suite names tasks, each a list of Hydra overrides (dataset, model, trainer and optimizer
settings), plus overrides ``common`` to all of them and the ``metric`` its section ranks by.
``mila-bench suite`` runs one (:mod:`mila_bench.launch.suite`); ``report`` reads its metric
from here for the suite's section, so neither needs the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mila_bench.errors import UsageError, unknown_name


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    metric: str
    common: tuple[str, ...]
    tasks: dict[str, tuple[str, ...]]


def suite_dir() -> Path:
    from mila_bench.config import config_dir

    return config_dir() / "suite"


def available() -> list[str]:
    return sorted(p.stem for p in suite_dir().glob("*.yaml"))


def suite_lines() -> list[str]:
    """Each suite with its description (``description:`` of its file), indented, for listings."""
    from mila_bench.config import description

    names = available()
    width = max(map(len, names), default=0)
    return [f"  {name:<{width}}  {description('suite', name)}" for name in names]


def load(name: str) -> Suite:
    """The suite ``name`` from ``configs/suite/NAME.yaml``; an unknown name lists the suites, and says
    where it belongs when it is a published table or an experiment."""
    from omegaconf import OmegaConf

    from mila_bench.config import OBJECTIVES

    if name not in available():
        from mila_bench.published.tables import published_tables

        error = unknown_name("suite", name, available())
        if name.replace("_", "-") in published_tables():
            table = name.replace("_", "-")
            raise UsageError(f"{error}; {name!r} is a published table: mila-bench reproduce {table} "
                             f"(its recipe alone: mila-bench train experiment={name.replace('-', '_')})")  # fmt: skip
        from mila_bench.config import belongs_elsewhere

        elsewhere = belongs_elsewhere(name)
        raise UsageError(f"{error}; {elsewhere}") if elsewhere else error
    raw = OmegaConf.to_container(OmegaConf.load(suite_dir() / f"{name}.yaml"))
    tasks = raw.get("tasks") or {}
    if not isinstance(tasks, dict) or not tasks:
        raise UsageError(f"configs/suite/{name}.yaml has no tasks; expected tasks: {{NAME: [OVERRIDE, ...]}}")
    metric = raw.get("metric", "top1")
    if metric not in OBJECTIVES:
        raise unknown_name(f"configs/suite/{name}.yaml metric", metric, OBJECTIVES)
    return Suite(
        name, str(raw.get("description", "")), metric, tuple(raw.get("common") or ()),
        {str(task): tuple(str(o) for o in overrides) for task, overrides in tasks.items()},
    )  # fmt: skip
