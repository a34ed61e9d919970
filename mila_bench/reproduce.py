"""Re-run a published table with the recipe and set our numbers beside the published ones.

The published numbers ship with the package as data (``published/original_results.csv``,
every row of the original tables). A table is one (dataset, ResNet depth, version), named
like ``cifar10-resnet20-v1``; its recipe is ``configs/experiment/cifar10_resnet20_v1.yaml``.
Each published row becomes activation overrides; every (row, seed) is one ordinary run
through :func:`mila_bench.pipeline.train`, recorded like ``mila-bench train`` records it.
Rows whose activation this installation cannot run are skipped and reported, not guessed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from mila_bench.errors import UsageError, unknown_name

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
METRICS = ("top1", "top3", "top5")


@dataclass(frozen=True)
class PublishedRow:
    """One published result; accuracies in percent, None where the table has no value."""

    label: str
    activation: str
    beta: float | None
    top1: float | None
    top3: float | None
    top5: float | None


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
class Plan:
    """How one published row is run here: registry name and overrides, or why it is skipped."""

    row: PublishedRow
    name: str | None = None
    overrides: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ran_as(self) -> str:
        params = [o.split("activation.", 1)[1] for o in self.overrides if "activation." in o]
        return " ".join([self.name or "—", *params])


def published_csv() -> Path:
    return Path(str(files("mila_bench") / "published" / "original_results.csv"))


def published_tables() -> dict[str, Table]:
    """Every published table, in the CSV's order."""
    import pandas as pd

    frame = pd.read_csv(published_csv())
    number = lambda v: None if pd.isna(v) else float(v)  # noqa: E731
    tables: dict[str, Table] = {}
    for (dataset, model, version), group in frame.groupby(["dataset", "model", "resnet_version"], sort=False):
        rows = tuple(
            PublishedRow(r.activation_label, r.activation, number(r.beta), number(r.top1_pct), number(r.top3_pct),
                         number(r.top5_pct))
            for r in group.itertuples()
        )  # fmt: skip
        name = f"{dataset}-{model}-{version}"
        tables[name] = Table(name, dataset, int(model.removeprefix("resnet")), int(version.removeprefix("v")), rows)
    return tables


def plan_rows(rows: Sequence[PublishedRow], registry: Mapping[str, Collection[str]], configs: Collection[str]) -> list[Plan]:
    """Overrides per row; ``registry`` maps each runnable activation to its parameter names."""
    plans = []
    for row in rows:
        if row.activation not in PUBLISHED_ACTIVATIONS:
            plans.append(Plan(row, skipped=f"no mapping from the published activation {row.activation!r}"))
            continue
        name, stated = PUBLISHED_ACTIVATIONS[row.activation]
        params = dict(stated)
        if name not in registry:
            plans.append(Plan(row, name, skipped=f"{name!r} is not in the activation registry"))
            continue
        if name not in configs:
            plans.append(Plan(row, name, skipped=f"no configs/activation/{name}.yaml"))
            continue
        if row.beta is not None and "beta" in registry[name]:
            params["beta"] = row.beta
        missing = sorted(set(params) - set(registry[name]))
        if missing:
            plans.append(Plan(row, name, skipped=f"the registry's {name!r} has no parameter {missing[0]!r}"))
            continue
        overrides = [f"activation={name}", *(f"++activation.{k}={v:g}" for k, v in params.items())]
        plans.append(Plan(row, name, overrides))
    return plans


def table_lines() -> list[str]:
    """``--list``: one line per published table."""
    lines = []
    for table in published_tables().values():
        names = ", ".join(dict.fromkeys(PUBLISHED_ACTIVATIONS.get(r.activation, (r.activation,))[0] for r in table.rows))
        lines.append(f"{table.name}  ({len(table.rows)} rows: {names})")
    return lines


def reproduce(
    table_name: str,
    seeds: int = 3,
    epochs: int | None = None,
    overrides: Sequence[str] = (),
    only: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Run ``table_name``'s rows × ``seeds`` with the recipe; write and return its Results.md section."""
    from mila_bench import activations, runs
    from mila_bench.config import compose, group_options
    from mila_bench.pipeline import train

    tables = published_tables()
    if table_name not in tables:
        raise unknown_name("published table", table_name, tables)
    table = tables[table_name]
    published = {name for name, _ in PUBLISHED_ACTIVATIONS.values()} & set(activations.available())
    registry = {n: tuple(activations.spec(n).defaults) for n in published}  # plugins are never published rows
    plans = plan_rows(table.rows, registry, group_options("activation"))
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key == "seed" or key.split(".")[0] == "activation":
            raise UsageError(
                f"override {override!r} is not allowed here: reproduce sets each row's activation and the seeds "
                "itself; use --only NAME to pick rows and --seeds N for the number of seeds"
            )
    if only:
        names = sorted({p.name for p in plans if p.name})
        for wanted in only:
            if wanted not in names:
                raise UsageError(f"--only {wanted!r} is not an activation of {table.name}; allowed: {', '.join(names)}")
        plans = [p for p in plans if p.name in only]
    for plan in plans:
        if plan.skipped:
            echo(f"skipped: {plan.row.label} ({plan.skipped})")
    runnable = [p for p in plans if not p.skipped]
    if not runnable:
        raise UsageError(f"no row of {table.name} can run here; see the skipped rows above")

    shared = [f"experiment={table.experiment}", *([f"trainer.epochs={epochs}"] if epochs else []), *overrides]
    # Compose (and so check) every run before training any, so a bad value records nothing.
    configs = [(plan, seed, compose([*shared, *plan.overrides, f"seed={seed}"])) for plan in runnable for seed in range(seeds)]
    finals: dict[int, list[dict[str, float]]] = {id(p): [] for p in runnable}
    for i, (plan, seed, cfg) in enumerate(configs, 1):
        result = train(cfg)
        final = result.history[-1]
        finals[id(plan)].append({k: getattr(final, k) for k in METRICS})
        echo(
            f"[{i}/{len(configs)}] {plan.ran_as} seed {seed}: top-1 {100 * final.top1:.2f}%, "
            f"top-3 {100 * final.top3:.2f}%, top-5 {100 * final.top5:.2f}%  ({result.run_id})"
        )

    cfg = configs[0][2]
    plural = lambda n, word: f"{n} {word}{'s' if n != 1 else ''}"  # noqa: E731
    body = comparison_table([(p, finals[id(p)]) for p in runnable])
    notes = [
        f"Recipe `experiment={table.experiment}`, {plural(cfg.trainer.epochs, 'epoch')}, seeds 0–{seeds - 1}, on "
        f"{cfg.dataset.name}; ours = mean ± sample std over the seeds of the last epoch's test accuracy (%), "
        "Δ = ours − published. Each run also has its own row (its dataset/model table) and record (results/).",
    ]
    if overrides:
        notes.append("Overrides: " + " ".join(f"`{o}`" for o in overrides))
    notes += [f"Skipped: {p.row.label} ({p.skipped})" for p in plans if p.skipped]
    section = f"Reproduction · {table.name} · {plural(cfg.trainer.epochs, 'epoch')} · {plural(seeds, 'seed')}"
    lines = [*body, "", *[f"{n}  " for n in notes]]
    runs.write_section(Path(cfg.results.markdown), section, lines)
    return [f"## {section}", "", *lines]


def comparison_table(results: Sequence[tuple[Plan, Sequence[Mapping[str, float]]]]) -> list[str]:
    """Markdown lines: per row, our mean ± std and n beside the published Top-1/3/5 and the difference."""
    import pandas as pd

    records = []
    for plan, finals in results:
        record: dict[str, str] = {"Activation": plan.row.label, "Ran as": plan.ran_as, "n": str(len(finals))}
        for metric, title in zip(METRICS, ("Top-1", "Top-3", "Top-5")):
            values = [100 * f[metric] for f in finals]
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) > 1 else None
            published = getattr(plan.row, metric)
            record[f"{title} ours"] = f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"
            record[f"{title} published"] = f"{published:.2f}" if published is not None else "—"
            record[f"Δ {title}"] = f"{mean - published:+.2f}" if published is not None else "—"
        records.append(record)
    return pd.DataFrame(records).to_markdown(index=False, tablefmt="pipe", disable_numparse=True).splitlines()
