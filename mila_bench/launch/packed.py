"""``hydra/launcher=packed``: a sweep's jobs that differ only in seed and activation, as packs.

A β sweep or a published table is many small runs of one architecture; one small run cannot
fill a GPU (its step is launch-bound) and pays per-operation overhead on a CPU. This launcher
groups the jobs whose configs are equal but for ``seed`` and the ``activation`` group (name and
parameters; its kernel choice ``impl`` must match), into packs of up to ``max_pack``, and
trains each pack as one batched model (``packing.train_pack``). Each member is then recorded by
the sweep's own job function (``launch.sweep.job``) exactly as a job trained alone, so
``report``, the job files and optuna see no difference. Jobs that cannot be packed run one
after another as under Hydra's basic launcher, with one line saying why.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

#: Packs on a CPU gain little beyond this many members (2-core measurement: benchmarks/pack_speed.py).
CPU_MAX_PACK = 32
#: The most members a pack gets on CUDA whatever the memory (the H200 measurement went to 512).
CUDA_MAX_PACK = 512
#: The share of free memory packs may plan to use (the rest: the data, the allocator's slack).
MEMORY_SHARE = 0.6


def pack_key(cfg: DictConfig) -> str:
    """What members of one pack share: the whole config but ``seed`` and the activation (except its ``impl``)."""
    plain = OmegaConf.to_container(cfg, resolve=True)  # a task's config: no hydra node
    plain.pop("seed", None)
    activation = plain.pop("activation", {}) or {}
    plain["activation.impl"] = activation.get("impl", "auto")  # activations without kernels to choose: the default
    plain.get("trainer", {}).pop("progress", None)
    return json.dumps(plain, sort_keys=True, default=str)


def why_alone(cfg: DictConfig) -> str | None:
    """Why this job cannot join a pack, known from its config alone; None when it can."""
    compiled = cfg.trainer.get("compile")
    if compiled not in (False, None) and str(compiled).lower() != "false":
        return f"trainer.compile={compiled} compiles one model; packed members run as one batched model instead"
    if cfg.trainer.get("cuda_graph"):
        return "trainer.cuda_graph=true captures one model's step; packed members run as one batched model instead"
    return None


def plan_packs(cfgs: Sequence[DictConfig], max_pack: int) -> tuple[list[list[int]], dict[int, str]]:
    """(packs of job indices, in job order; jobs to run alone with the reason). A pack of one is a
    job run alone (nothing to share it with)."""
    alone: dict[int, str] = {}
    keyed: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        reason = why_alone(cfg)
        if reason is not None:
            alone[i] = reason
        else:
            keyed.setdefault(pack_key(cfg), []).append(i)
    packs = []
    for jobs in keyed.values():
        for start in range(0, len(jobs), max_pack):
            chunk = jobs[start : start + max_pack]
            if len(chunk) == 1 and len(jobs) == 1:
                alone[chunk[0]] = "no other job shares its config but for seed and activation"
            elif len(chunk) == 1:
                alone[chunk[0]] = f"left over after packs of max_pack={max_pack}"
            else:
                packs.append(chunk)
    return packs, alone


def auto_max_pack(cfg: DictConfig) -> int:
    """Members per pack that fit in this device's memory (``max_pack: null``): the free memory's
    share over one member's weights, gradients, optimizer moments and what a batch keeps for backward."""
    import torch

    from mila_bench.activations import activation_factory
    from mila_bench.data.checks import SIZES
    from mila_bench.models import build_model
    from mila_bench.training.cost import saved_bytes_per_image
    from mila_bench.training.engine import select_device

    device = select_device(str(cfg.device))
    _, shape, classes = SIZES[str(cfg.dataset.name)]
    model = build_model(cfg.model, activation_factory(cfg.activation), shape, classes)
    batch = torch.zeros(2, *shape)
    per_member = 4 * 4 * sum(p.numel() for p in model.parameters())  # weights, gradients, two moments (fp32)
    per_member += saved_bytes_per_image(model, batch) * int(cfg.trainer.batch_size) * 2
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cap = CUDA_MAX_PACK
    else:
        free, cap = _available_memory(), CPU_MAX_PACK
    return max(1, min(cap, int(MEMORY_SHARE * free // max(per_member, 1))))


def _available_memory() -> int:
    """Bytes of memory available on this machine (Linux: MemAvailable), else 8 GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def register() -> None:
    """Make sure Hydra knows the launcher class. Hydra finds launchers by scanning its
    ``hydra_plugins`` namespace, which an editable install (``pip install -e .``, the README's)
    hides behind an import hook that scan does not see; a regular install is found either way."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.mila_bench_packed.packed_launcher import PackedLauncher

    name = f"{PackedLauncher.__module__}.{PackedLauncher.__qualname__}"
    Plugins.instance().class_name_to_class.setdefault(name, PackedLauncher)


def launch(config: DictConfig, hydra_context, task_function, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int, max_pack: int | None):  # fmt: skip
    """What ``PackedLauncher.launch`` does: plan the packs, train each, record every job through ``task_function``."""
    from hydra.core.utils import configure_log, filter_overrides, run_job, setup_globals

    from mila_bench.launch.job_settings import prepare
    from mila_bench.packing import NotPackable, train_pack

    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    jobs = []
    for n, overrides in enumerate(job_overrides):
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = initial_job_idx + n
        jobs.append(sweep_config)
    tasks = [_task_config(job) for job in jobs]
    for cfg in tasks:
        prepare(cfg, config.hydra.launcher)
    size = max_pack if max_pack is not None else auto_max_pack(tasks[0]) if tasks else 1
    packs, alone = plan_packs(tasks, max(1, int(size)))
    outcomes: dict[int, object] = {}
    for pack in packs:
        label = ", ".join(f"#{initial_job_idx + i}" for i in pack)
        log.info("pack of %d (jobs %s): training as one batched model", len(pack), label)
        try:
            results = train_pack([tasks[i] for i in pack])
        except NotPackable as err:
            for i in pack:
                alone[i] = str(err)
            continue
        except Exception as err:  # the pack failed as a whole: each of its jobs is recorded as failed with why
            results = [err] * len(pack)
        outcomes.update(zip(pack, results))
    returns = []
    for i, sweep_config in enumerate(jobs):
        if i in alone:
            shown = " ".join(filter_overrides(job_overrides[i]))
            log.info("job #%d (%s) runs alone: %s", initial_job_idx + i, shown, alone[i])
        # The sweep's job function (launch.sweep.job) records a packed job's outcome as it would its own run.
        function = task_function if i not in outcomes else functools.partial(task_function, outcome=outcomes[i])
        returns.append(run_job(hydra_context=hydra_context, task_function=function, config=sweep_config,
                               job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))  # fmt: skip
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return returns


def _task_config(sweep_config: DictConfig) -> DictConfig:
    """The job's config as its task function gets it (run_job's copy, without the hydra node)."""
    cfg = copy.deepcopy(sweep_config)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.set_readonly(cfg, False)
    return cfg

