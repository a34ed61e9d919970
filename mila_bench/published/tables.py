"""The original project's published CIFAR tables, as data, and how each row is run here.

The numbers ship with the package (``published/original_results.csv``, every row of the
original tables). A table is one (dataset, ResNet depth, version), named like
``cifar10-resnet20-v1``; its recipe is ``configs/experiment/cifar10_resnet20_v1.yaml``. Each
published row becomes activation overrides (:class:`RowRecipe`); rows whose activation this
installation cannot run are skipped with the reason, not guessed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

# The CSV's `activation` column → (registry name, parameters the published label states).
# β comes from the `beta` column for activations that have a β parameter.
PUBLISHED_ACTIVATIONS: dict[str, tuple[str, dict[str, float]]] = {
    "mila": ("mila", {}),
    "mish": ("mish", {}),
    "swish": ("swish", {}),
    "relu": ("relu", {}),
    "beta_mish": ("beta_mish", {}),
    "ELU(α=1.0)": ("elu", {"alpha": 1.0}),
    "SELU": ("selu", {}),
    "Aria-2(β = 1, α=1.5)": ("aria2", {"beta": 1.0, "alpha": 1.5}),
    "Bent's Identity": ("bent_identity", {}),
    "Hard Sigmoid": ("hard_sigmoid", {}),
    "Leaky ReLU(α=0.3)": ("leaky_relu", {"alpha": 0.3}),
    "PReLU(Default Parameters)": ("prelu", {}),
    "Sigmoid": ("sigmoid", {}),
    "SoftPlus": ("softplus", {}),
    "SoftSign": ("softsign", {}),
    "TanH": ("tanh", {}),
    "Thresholded ReLU(θ=1.0)": ("thresholded_relu", {"theta": 1.0}),
}
@dataclass(frozen=True)
class PublishedRow:
    """One published result; accuracies in percent, None where the table has no value.

    ``loss`` is Keras' val_loss: the table's "Loss" column (printed as val_loss × 10 with a % sign)
    divided by 10.
    """

    label: str
    activation: str
    beta: float | None
    top1: float | None
    top3: float | None
    top5: float | None
    loss: float | None = None


@dataclass(frozen=True)
class Table:
    name: str  # cifar10-resnet20-v1
    dataset: str
    depth: int
    version: int
    rows: tuple[PublishedRow, ...]

    @property
    def experiment(self) -> str:
        return f"{self.dataset}_resnet{self.depth}_v{self.version}"


@dataclass
class RowRecipe:
    """How one published row is run here: registry name and overrides, or why it is skipped."""

    row: PublishedRow
    name: str | None = None
    overrides: list[str] = field(default_factory=list)
    skipped: str | None = None
    params: dict[str, float] = field(default_factory=dict)  # the activation parameters it sets

    @property
    def ran_as(self) -> str:
        params = [o.split("activation.", 1)[1] for o in self.overrides if "activation." in o]
        return " ".join([self.name or "—", *params])


def published_csv() -> Path:
    return Path(str(files("mila_bench") / "published" / "original_results.csv"))


def published_tables() -> dict[str, Table]:
    """Every published table, in the CSV's order."""
    import csv  # the stdlib's reader: `reproduce` answers bad input without loading pandas (or torch)

    def number(text: str) -> float | None:
        return float(text) if text.strip() else None

    groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    with open(published_csv(), newline="") as f:
        for r in csv.DictReader(f):
            groups.setdefault((r["dataset"], r["model"], r["resnet_version"]), []).append(r)
    tables: dict[str, Table] = {}
    for (dataset, model, version), group in groups.items():
        rows = tuple(
            PublishedRow(r["activation_label"], r["activation"], number(r["beta"]), number(r["top1_pct"]),
                         number(r["top3_pct"]), number(r["top5_pct"]),
                         None if number(r["loss_pct"]) is None else number(r["loss_pct"]) / 10)
            for r in group
        )  # fmt: skip
        name = f"{dataset}-{model}-{version}"
        tables[name] = Table(name, dataset, int(model.removeprefix("resnet")), int(version.removeprefix("v")), rows)
    return tables


def plan_rows(rows: Sequence[PublishedRow], registry: Mapping[str, Collection[str]], configs: Collection[str]) -> list[RowRecipe]:
    """Overrides per row; ``registry`` maps each runnable activation to its parameter names."""
    plans = []
    for row in rows:
        if row.activation not in PUBLISHED_ACTIVATIONS:
            plans.append(RowRecipe(row, skipped=f"no mapping from the published activation {row.activation!r}"))
            continue
        name, stated = PUBLISHED_ACTIVATIONS[row.activation]
        params = dict(stated)
        if name not in registry:
            plans.append(RowRecipe(row, name, skipped=f"{name!r} is not in the activation registry"))
            continue
        if name not in configs:
            plans.append(RowRecipe(row, name, skipped=f"no configs/activation/{name}.yaml"))
            continue
        if row.beta is not None and "beta" in registry[name]:
            params["beta"] = row.beta
        missing = sorted(set(params) - set(registry[name]))
        if missing:
            plans.append(RowRecipe(row, name, skipped=f"the registry's {name!r} has no parameter {missing[0]!r}"))
            continue
        overrides = [f"activation={name}", *(f"++activation.{k}={v:g}" for k, v in params.items())]
        plans.append(RowRecipe(row, name, overrides, params={k: float(f"{v:g}") for k, v in params.items()}))
    return plans


def table_recipes(table: Table) -> list[RowRecipe]:
    """:func:`plan_rows` for ``table`` against this installation's registry and activation configs."""
    from mila_bench import activations
    from mila_bench.config import group_options

    published = {name for name, _ in PUBLISHED_ACTIVATIONS.values()} & set(activations.available())
    registry = {n: tuple(activations.find_entry(n).defaults) for n in published}  # plugins are never published rows
    return plan_rows(table.rows, registry, group_options("activation"))


def find_table(name: str) -> Table:
    """The published table ``name``, also under its experiment's spelling (``cifar10_resnet20_v1``);
    an unknown name lists the tables, and says where it belongs when it is an experiment or a suite."""
    from mila_bench.config import belongs_elsewhere
    from mila_bench.errors import UsageError, unknown_name

    tables = published_tables()
    found = tables.get(name) or tables.get(name.replace("_", "-"))
    if found is not None:
        return found
    error, elsewhere = unknown_name("published table", name, tables), belongs_elsewhere(name)
    raise UsageError(f"{error}; {elsewhere}") if elsewhere else error


def recipe(table: Table) -> dict:
    """What the table's recipe (``configs/experiment/…``) trains, read from its file without composing
    (composing all twenty takes seconds): dataset, model settings, epochs and batch size."""
    from omegaconf import OmegaConf

    from mila_bench.config import config_dir

    raw = OmegaConf.to_container(OmegaConf.load(config_dir() / "experiment" / f"{table.experiment}.yaml"))
    chosen = {k.removeprefix("override /"): v for entry in raw.get("defaults", []) if isinstance(entry, dict) for k, v in entry.items()}
    return {"dataset": chosen["dataset"], "model": {"name": chosen["model"], **raw["model"]},
            "epochs": int(raw["trainer"]["epochs"]), "batch_size": int(raw["trainer"]["batch_size"])}  # fmt: skip


def recipe_epochs(table: Table) -> int:
    """The epochs of the published runs: those of the table's recipe config."""
    return recipe(table)["epochs"]


def table_lines(seeds: int = 3, epochs: int | None = None) -> list[str]:
    """``--list``: one line per published table (its rows, the runs at ``seeds``, the epochs, the estimated
    time here from similar recorded runs in the default ``results.dir``), then what the estimates rest on."""
    from mila_bench.config import defaults_file
    from mila_bench.data.checks import SIZES
    from mila_bench.training.estimate import Workload, device_kind, duration, estimate, model_items, recorded_steps

    defaults = defaults_file()
    device, results_dir = device_kind(str(defaults["device"])), Path(str(defaults["results"]["dir"]))
    steps = recorded_steps(results_dir)
    lines, bases = [], {}
    for table in published_tables().values():
        names = ", ".join(dict.fromkeys(PUBLISHED_ACTIVATIONS.get(r.activation, (r.activation,))[0] for r in table.rows))
        runs = seeds * sum(1 for p in table_recipes(table) if not p.skipped)
        plan = recipe(table)
        n = epochs or plan["epochs"]
        work = Workload(plan["dataset"], model_items(plan["model"]), plan["batch_size"], SIZES[plan["dataset"]][0], n, device)
        found = estimate([work] * runs, steps)
        if found is None:
            time = "no estimate yet"
        else:
            time = f"about {duration(found.seconds)} [{bases.setdefault(found.basis, len(bases) + 1)}]"
        lines.append(f"{table.name}  ({len(table.rows)} rows: {names})  {runs} runs × {n} epochs: {time}")
    lines.append(f"runs: rows × --seeds {seeds}; time: training on this {device}, one run after another, from")
    lines += [f"  [{mark}] {basis}" for basis, mark in bases.items()]
    if any(line.endswith("no estimate yet") for line in lines):
        lines.append(f"  no estimate yet: no run like it recorded in {results_dir}/ (same model and dataset on a {device}); "
                     "`reproduce TABLE` times a few steps and says its estimate before it starts")  # fmt: skip
    return lines
