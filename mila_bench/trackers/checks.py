"""The logger group's rules, torch-free and without importing any tracker: a selected tracker's
package must be installed, and its settings must be of the right kind."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.util import find_spec

from mila_bench.checks import flag
from mila_bench.errors import UsageError, unknown_name

#: Tracker name (the logger option) → the package it needs, which is also its pip extra.
PACKAGES = {"mlflow": "mlflow", "tensorboard": "tensorboard", "wandb": "wandb"}
WANDB_MODES = ("offline", "online", "disabled")


def selected(logger: Mapping | None) -> list[str]:
    """The trackers a composed ``logger`` node selects (``logger=none`` and ``logger=[]`` select none)."""
    return list(logger or {})


def tracker_name(name: str) -> str:
    """``name`` if it is a tracker (``mila-bench export NAME``)."""
    if name not in PACKAGES:
        raise unknown_name("tracker", name, PACKAGES)
    return name


def check(logger: Mapping | None) -> list[str]:
    """The selected trackers, each checked; raise :class:`UsageError` naming the first problem."""
    names = selected(logger)
    for name in names:
        if name not in PACKAGES:
            raise unknown_name("logger", name, PACKAGES)
        package = PACKAGES[name]
        if find_spec(package) is None:
            raise UsageError(f"logger={name} needs the {package} package: pip install 'mila-bench[{package}]'")
    if "mlflow" in names:
        flag("logger.mlflow.artifacts", logger["mlflow"].artifacts)
    if "wandb" in names and logger["wandb"].mode not in WANDB_MODES:
        raise UsageError(f"logger.wandb.mode={logger['wandb'].mode!r} is not allowed; allowed: {', '.join(WANDB_MODES)}")
    return names
