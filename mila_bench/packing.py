"""N runs as one pack, end to end: the pipeline's steps for each member, one training loop for all.

The runs of a pack differ only in seed and activation (its name and parameters: β); everything
else in their configs is equal (``launch.packed`` groups them). Each member is resolved,
recorded and finished exactly as ``pipeline.train`` does a lone run, with its own folder,
summary (plus which pack and which member it was: ``records.schema.Pack``), checkpoint,
Results.md row and trackers; only training is shared: ``engine.fit_members(packed=True)``
trains them as one batched model (``training.packed``). A member that diverges is recorded as
diverged and stops; the others go on. Killed, each member resumes from its own checkpoint
(``trainer.resume=true``), and the pack continues exactly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mila_bench import pipeline
from mila_bench.errors import UsageError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from mila_bench.records.schema import Reproduction


class NotPackable(Exception):
    """These runs cannot train as one batched model (the reason is the message); run them one by one."""


def train_pack(
    cfgs: Sequence[DictConfig], reproductions: Sequence[Reproduction | None] | None = None
) -> list[pipeline.RunResult | Exception]:
    """Train ``cfgs`` as one pack; per config its :class:`~mila_bench.pipeline.RunResult`, or the
    error that ended it (``RunDiverged``, or a ``UsageError`` found when resolving it).
    ``reproductions``: each run's published table row, as ``pipeline.train`` takes it.

    Raises :class:`NotPackable` (before any record is written) when the model cannot run under
    ``torch.func.vmap``; ``RunInterrupted`` (Ctrl-C) naming the first member's folder, every
    member keeping its checkpoint.
    """
    from mila_bench.models import check_buildable
    from mila_bench.records import runs
    from mila_bench.records.schema import Pack
    from mila_bench.training.build import build_member
    from mila_bench.training.callbacks import EpochEnd
    from mila_bench.training.cost import StepTimer, run_cost
    from mila_bench.training.engine import fit_members
    from mila_bench.training.packed import why_not_packable
    from mila_bench.training.run_settings import run_settings

    results: list[pipeline.RunResult | Exception | None] = [None] * len(cfgs)
    todo: list[tuple[int, pipeline.Resolved]] = []
    for i, cfg in enumerate(cfgs):
        try:
            resolved = pipeline.resolve(cfg)
        except UsageError as err:  # a diverged run not re-run, an unwritable folder: this member's answer
            results[i] = err
            continue
        if resolved.completed is not None:
            results[i] = pipeline.recorded_result(resolved.completed)
        else:
            todo.append((i, resolved))
    if not todo:
        return results  # type: ignore[return-value]
    first = cfgs[todo[0][0]]
    device = todo[0][1].device
    with run_settings(first) as settings:
        data = pipeline.load_data(first, device)
        check_buildable(first.model, data.input_shape, data.num_classes)
        members = [build_member(cfgs[i], data, device, int(cfgs[i].seed)) for i, _ in todo]
        example, _ = next(data.train.batches(2))
        reason = why_not_packable(members[0].model, example)
        if reason is not None:
            raise NotPackable(reason)
        pack_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        opened, records, views = [], [], []
        for k, ((i, resolved), member) in enumerate(zip(todo, members)):
            tag = reproductions[i] if reproductions is not None else None
            run = pipeline.open_record(cfgs[i], resolved, data, tag, settings.as_summary())
            if run.summary.pack is None:  # a resumed member keeps the pack it started in
                run.summary = replace(run.summary, pack=Pack(pack_id, k, len(todo)))
                runs.write_summary(run.run_dir, run.summary)
            opened.append(run)
            record = pipeline.KeepRecord(run, settings, cfgs[i].optimizer.lr)
            records.append(record)
            views.append(pipeline.start_trackers(cfgs[i], resolved, run))
            member.resume = run.resume
            member.callbacks = [record, EpochEnd(views[-1].log_epoch)]
        timer = StepTimer(device)
        try:
            fit_members(
                members,
                data,
                epochs=first.trainer.epochs,
                batch_size=first.trainer.batch_size,
                eval_batch_size=first.trainer.eval_batch_size,
                progress=first.trainer.progress,
                amp=first.trainer.amp,
                packed=True,
                callbacks=[timer],
            )
        except BaseException as err:
            for run, view in zip(opened, views):
                view.finish(run.summary, run.run_dir)
            if isinstance(err, KeyboardInterrupt):
                raise pipeline.interrupted(opened[0]) from None
            raise
        process = settings.as_summary()
    for (i, resolved), member, run, record, view in zip(todo, members, opened, records, views):
        run.summary = replace(run.summary, pack=replace(run.summary.pack, step_ms=timer.median_ms()))
        if member.diverged is not None:
            results[i] = record.error()
        else:
            results[i] = pipeline.finish(resolved, run, member.model, member.history, process,
                                         member_cost(run_cost(member.model, data.train, first.trainer.batch_size, timer), len(todo)))  # fmt: skip
            run.summary = results[i].summary
        view.finish(run.summary, run.run_dir)
    return results  # type: ignore[return-value]


def member_cost(pack_cost, size: int):
    """A member's cost: its share of the pack's step (the pack's median step / members)."""
    if pack_cost.step_ms is None:
        return pack_cost
    share = pack_cost.step_ms / size
    return replace(pack_cost, step_ms=share, images_per_s=pack_cost.images_per_s * size if pack_cost.images_per_s else None)
