"""Re-run a published table with the recipe and set our numbers beside the published ones.

The published numbers ship with the package as data (``published/original_results.csv``,
every row of the original tables). A table is one (dataset, ResNet depth, version), named
like ``cifar10-resnet20-v1``; its recipe is ``configs/experiment/cifar10_resnet20_v1.yaml``.
Each published row becomes activation overrides; every (row, seed) is one ordinary run
through :func:`mila_bench.pipeline.train`, recorded like ``mila-bench train`` records it.
Rows whose activation this installation cannot run are skipped and reported, not guessed.

:func:`comparison_section` renders the comparison from the runs' records (``summary.json``
contents) alone, so the section can be rebuilt from ``results/`` as well as written here.
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
#: (our summary's final key, published attribute, column title, our scale, decimals)
COLUMNS = (
    ("top1", "top1", "Top-1", 100.0, 2),
    ("top3", "top3", "Top-3", 100.0, 2),
    ("top5", "top5", "Top-5", 100.0, 2),
    ("keras_val_loss", "loss", "Loss", 1.0, 4),
)
#: A Δ within this many sample standard deviations of our runs reads as run-to-run spread.
SPREAD_STDS = 2.0


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
class Plan:
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
    import pandas as pd

    frame = pd.read_csv(published_csv())
    number = lambda v: None if pd.isna(v) else float(v)  # noqa: E731
    tables: dict[str, Table] = {}
    for (dataset, model, version), group in frame.groupby(["dataset", "model", "resnet_version"], sort=False):
        rows = tuple(
            PublishedRow(r.activation_label, r.activation, number(r.beta), number(r.top1_pct), number(r.top3_pct),
                         number(r.top5_pct), None if pd.isna(r.loss_pct) else float(r.loss_pct) / 10)
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
        plans.append(Plan(row, name, overrides, params={k: float(f"{v:g}") for k, v in params.items()}))
    return plans


def table_plans(table: Table) -> list[Plan]:
    """:func:`plan_rows` for ``table`` against this installation's registry and activation configs."""
    from mila_bench import activations
    from mila_bench.config import group_options

    published = {name for name, _ in PUBLISHED_ACTIVATIONS.values()} & set(activations.available())
    registry = {n: tuple(activations.spec(n).defaults) for n in published}  # plugins are never published rows
    return plan_rows(table.rows, registry, group_options("activation"))


def recipe_epochs(table: Table) -> int:
    """The epochs of the published runs: those of the table's recipe config."""
    from omegaconf import OmegaConf

    from mila_bench.config import config_dir

    return int(OmegaConf.load(config_dir() / "experiment" / f"{table.experiment}.yaml").trainer.epochs)


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
    from mila_bench import results_md, runs
    from mila_bench.config import compose
    from mila_bench.pipeline import train

    tables = published_tables()
    if table_name not in tables:
        raise unknown_name("published table", table_name, tables)
    table = tables[table_name]
    plans = table_plans(table)
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
    cfg = configs[0][2]
    tag = {
        "section": section_heading(table.name, cfg.trainer.epochs, seeds, only, overrides),
        "table": table.name,
        "epochs": int(cfg.trainer.epochs),
        "seeds": seeds,
        "only": sorted(only),
        "overrides": list(overrides),
    }
    for i, (plan, seed, run_cfg) in enumerate(configs, 1):
        result = train(run_cfg, tags={"reproduction": {**tag, "row": plan.row.label}})
        final = result.history[-1]
        loss = f", loss {final.keras_val_loss:.4f}" if final.keras_val_loss is not None else ""
        echo(
            f"[{i}/{len(configs)}] {plan.ran_as} seed {seed}: top-1 {100 * final.top1:.2f}%, "
            f"top-3 {100 * final.top3:.2f}%, top-5 {100 * final.top5:.2f}%{loss}  ({result.run_id})"
        )

    # The section is a view of this reproduction's records (all of them, if it ran before), as `report` makes it.
    records = [r for r in runs.load(Path(cfg.results.dir))[0] if (r.summary.get("reproduction") or {}).get("section") == tag["section"]]
    lines = section_from_records(records)
    results_md.write_section(Path(cfg.results.markdown), tag["section"], lines)
    return [f"## {tag['section']}", "", *lines]


def section_heading(table: str, epochs: int, seeds: int, only: Sequence[str], overrides: Sequence[str]) -> str:
    """The Results.md heading of a reproduction: everything that tells one reproduction from another."""
    from mila_bench.report.configurations import POOLED_KEYS, matches as pooled

    parts = ["Reproduction", table, _plural(epochs, "epoch"), _plural(seeds, "seed")]
    if only:
        parts.append("only " + ", ".join(sorted(only)))
    # Overrides that change what is measured; where data lives or how visibly it runs does not.
    measured = [o for o in overrides if not pooled(o.lstrip("+~").split("=", 1)[0], POOLED_KEYS)]
    if measured:
        parts.append(" ".join(measured))
    return " · ".join(parts)


def section_from_records(records: Sequence) -> list[str]:
    """The body of a reproduction's section from its runs' records (``runs.Record``), as ``reproduce``
    writes it and ``report`` rebuilds it: the newest completed run per (row, seed) counts."""
    tag = records[0].summary["reproduction"]
    table = published_tables()[tag["table"]]
    plans = table_plans(table)
    if tag["only"]:
        plans = [p for p in plans if p.name in tag["only"]]
    newest: dict[tuple[str, int], object] = {}
    for record in sorted(records, key=lambda r: r.run_id):
        if record.summary.get("status") == "completed":
            newest[(record.summary["reproduction"]["row"], record.seed)] = record
    summaries = [r.summary for _, r in sorted(newest.items(), key=lambda item: item[0][1])]
    return comparison_section(table, plans, summaries, tag["overrides"])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"



def matches(plan: Plan, record: Mapping) -> bool:
    """Whether a run record (summary.json) is a run of ``plan``: its activation with the plan's parameters."""
    params = record.get("activation_params") or {}
    return record.get("activation") == plan.name and all(
        k in params and abs(float(params[k]) - v) <= 1e-9 * max(1.0, abs(v)) for k, v in plan.params.items()
    )


def comparison_section(
    table: Table, plans: Sequence[Plan], records: Sequence[Mapping], overrides: Sequence[str] = ()
) -> list[str]:
    """The body of a reproduction section (comparison table, then notes) from the runs' records.

    ``plans``: the table's rows as :func:`table_plans` gives them (skipped ones are listed);
    ``records``: ``summary.json`` contents of the reproduction's runs, matched to rows by
    activation and parameters; rows without runs are left out.
    """
    results = [(p, [r["final"] for r in records if matches(p, r)]) for p in plans if not p.skipped]
    results = [(p, finals) for p, finals in results if finals]
    body, within, judged = comparison_table(results)
    seeds = ", ".join(str(s) for s in sorted({int(r["seed"]) for r in records}))
    epochs = sorted({int(r["epochs"]) for r in records})
    trained = f"{epochs[0]} epoch{'s' if epochs[0] != 1 else ''}" if len(epochs) == 1 else f"{epochs} epochs"
    published_epochs = recipe_epochs(table)
    dataset = records[0]["dataset"] if records else table.dataset
    n = f"{SPREAD_STDS:g}"
    notes = [
        f"Recipe `experiment={table.experiment}`, {trained}, seeds {seeds}, on {dataset}. **Published**: one "
        f"Keras run per row with no seed control, the test metrics of its last epoch ({published_epochs}), not "
        "the best one; its Loss is the table's Loss column ÷ 10, which is Keras' val_loss (cross-entropy + "
        "the l2(1e-4) kernel penalty). **Ours**: mean ± sample std over the seeds of the last epoch "
        "(accuracies in %); Loss is the same Keras val_loss (`keras_val_loss` in each run's metrics.csv and "
        "summary.json).",
        "Δ = ours − published. A published number is a single draw from its own run-to-run spread, so Δ is "
        f"read against ours: *(within {n}σ)* marks a Δ within ±{n} sample std of our runs, i.e. within the "
        "spread that seeds alone produce, where the difference is no evidence that the two set-ups differ; "
        f"*(beyond {n}σ)* marks one outside it. With few seeds the std is itself rough. "
        f"Here {within} of {judged} Δs are within the spread."
        if judged
        else "Δ = ours − published. With one seed per row there is no spread of ours to read a Δ against, so "
        "none is called within or beyond run-to-run noise.",
    ]
    if epochs != [published_epochs]:
        notes.append(
            f"Trained {trained}, the published runs {published_epochs}: these Δs compare different training "
            "lengths, not the recipe."
        )
    notes.append("Each run also has its own row (its dataset/model table) and record (results/).")
    if overrides:
        notes.append("Overrides: " + " ".join(f"`{o}`" for o in overrides))
    notes += [f"Skipped: {p.row.label} ({p.skipped})" for p in plans if p.skipped]
    return [*body, "", *[f"{n}  " for n in notes]]


def comparison_table(results: Sequence[tuple[Plan, Sequence[Mapping[str, float]]]]) -> tuple[list[str], int, int]:
    """Markdown lines: per row, our mean ± std and n beside the published Top-1/3/5 and loss, and Δ
    read against our spread; also how many Δs were within the spread, of how many read."""
    import pandas as pd

    records, within, judged = [], 0, 0
    for plan, finals in results:
        record: dict[str, str] = {"Activation": plan.row.label, "Ran as": plan.ran_as, "n": str(len(finals))}
        for key, attribute, title, scale, decimals in COLUMNS:
            values = [scale * f[key] for f in finals if f.get(key) is not None]
            published = getattr(plan.row, attribute)
            mean = statistics.fmean(values) if values else None
            std = statistics.stdev(values) if len(values) > 1 else None
            if mean is None:
                record[f"{title} ours"] = "—"
            else:
                record[f"{title} ours"] = f"{mean:.{decimals}f}" + (f" ± {std:.{decimals}f}" if std is not None else "")
            record[f"{title} published"] = f"{published:.{decimals}f}" if published is not None else "—"
            if mean is None or published is None:
                record[f"Δ {title}"] = "—"
                continue
            delta = mean - published
            record[f"Δ {title}"] = f"{delta:+.{decimals}f}"
            if std is not None:
                judged += 1
                inside = abs(delta) <= SPREAD_STDS * std
                within += inside
                record[f"Δ {title}"] += f" ({'within' if inside else 'beyond'} {SPREAD_STDS:g}σ)"
        records.append(record)
    lines = pd.DataFrame(records).to_markdown(index=False, tablefmt="pipe", disable_numparse=True).splitlines()
    return lines, within, judged
