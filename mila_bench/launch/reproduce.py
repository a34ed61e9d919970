"""Re-run a published table with its recipe and set our numbers beside the published ones.

Every (row, seed) is one ordinary run through :func:`mila_bench.pipeline.train`, recorded like
``mila-bench train`` records it and tagged with the reproduction it belongs to; the section
is then rendered from those records (:mod:`mila_bench.report.reproduction`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from mila_bench.errors import UsageError
from mila_bench.overrides import override_key
from mila_bench.published.tables import find_table, table_recipes
from mila_bench.records.schema import Reproduction
from mila_bench.report.reproduction import section_from_records, section_heading


def reproduce(
    table_name: str,
    seeds: int = 3,
    epochs: int | None = None,
    overrides: Sequence[str] = (),
    only: Sequence[str] = (),
    echo: Callable[[str], None] = print,
    packed: bool = False,
) -> list[str]:
    """Run ``table_name``'s rows × ``seeds`` with the recipe; write and return its Results.md section.
    ``packed``: the runs train as packs (``launch.packed``), each still recorded as its own run."""
    from mila_bench.config import compose

    table = find_table(table_name)
    plans = table_recipes(table)
    for override in overrides:
        key = override_key(override)
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
    section = section_heading(table.name, cfg.trainer.epochs, seeds, only, overrides)
    from mila_bench.training.estimate import estimate_configs, long_run_line

    long = long_run_line(
        f"reproduce {table.name}", estimate_configs([c for _, _, c in configs], time_missing=True),
        "--seeds 1, --epochs N, --only NAME (one row), or dataset.train_subset=N",
    )
    if long:
        echo(long)
    # Only now torch, pandas and the records: bad input above is answered without them.
    from mila_bench.pipeline import train
    from mila_bench.records import results_md
    from mila_bench.records import runs

    tags = [Reproduction(section, table.name, int(cfg.trainer.epochs), seeds, sorted(only), list(overrides), plan.row.label)
            for plan, _, _ in configs]  # fmt: skip
    results = _train_packed(configs, tags, echo) if packed else None
    for i, ((plan, seed, run_cfg), tag) in enumerate(zip(configs, tags), 1):
        result = results[i - 1] if results is not None else train(run_cfg, reproduction=tag)
        if isinstance(result, Exception):
            raise result
        final = result.history[-1]
        loss = f", loss {final.keras_val_loss:.4f}" if final.keras_val_loss is not None else ""
        echo(
            f"[{i}/{len(configs)}] {plan.ran_as} seed {seed}: top-1 {100 * final.top1:.2f}%, "
            f"top-3 {100 * final.top3:.2f}%, top-5 {100 * final.top5:.2f}%{loss}  ({result.run_id})"
        )

    # The section is a view of this reproduction's records (all of them, if it ran before), as `report` makes it.
    records = [r for r in runs.load(Path(cfg.results.dir))[0] if r.summary.reproduction and r.summary.reproduction.section == section]
    lines = section_from_records(records)
    results_md.write_section(Path(cfg.results.markdown), section, lines)
    return [f"## {section}", "", *lines]


def _train_packed(configs: list, tags: list[Reproduction], echo: Callable[[str], None]) -> list:
    """Every run's result (or error), trained as packs of the runs that may share one (``launch.packed``);
    a pack that cannot run batched trains its runs one by one, saying why."""
    from mila_bench.launch.packed import auto_max_pack, plan_packs
    from mila_bench.packing import NotPackable, train_pack
    from mila_bench.pipeline import train

    cfgs = [c for _, _, c in configs]
    packs, alone = plan_packs(cfgs, auto_max_pack(cfgs[0]))
    results: list = [None] * len(cfgs)
    for pack in packs:
        echo(f"pack of {len(pack)}: training as one batched model")
        try:
            found = train_pack([cfgs[i] for i in pack], [tags[i] for i in pack])
        except NotPackable as err:
            alone.update({i: str(err) for i in pack})
            continue
        for i, result in zip(pack, found):
            results[i] = result
    for i in sorted(alone):
        echo(f"run {i + 1} trains alone: {alone[i]}")
        results[i] = train(cfgs[i], reproduction=tags[i])
    return results

