"""N members' models trained as one batched model: ``torch.func.vmap`` over stacked weights.

One small run cannot fill a GPU (its step is launch-bound) and pays per-operation overhead on a
CPU; N runs of the same architecture can share each operation instead. Each member stays its
own ``nn.Module`` with its own parameters, buffers and optimizer, so its record, checkpoint and
optimizer state are exactly a lone run's; the pack only *places* them: every parameter of a
group of members lives as one slice of a stacked tensor (``[N, ...]``), the member's parameter
an alias of its slice. A forward runs the group's one structure (a copy on the meta device)
through ``torch.func.functional_call`` under ``vmap``: each member its own weights, batch and
BatchNorm statistics (the stacked buffers are updated in place, so the members' aliases see
it). Backward fills the stacked gradients, and one optimizer steps the stacks
(:class:`PackOptimizer`): Adam and SGD act elementwise, so that is each member's own step.

Members whose structure differs (another activation: a published table's rows) form separate
groups, each one ``vmap``; fixed activation parameters that differ inside a group (β) become
per-member tensors (``Activation.hold_as_tensors``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def structure(model: nn.Module) -> tuple:
    """What must be equal for two models to run as one ``vmap``: their modules (and each
    activation's function, learned and fixed parameter names) and their parameters' shapes."""
    from mila_bench.activations.resolve import Activation

    modules = []
    for path, module in model.named_modules():
        entry: tuple = (path, type(module).__qualname__, module.training)
        if isinstance(module, Activation):
            entry += (module.name, module.fn, module.learned_names, tuple(sorted(module.fixed)), module.held)
        modules.append(entry)
    shapes = tuple((name, tuple(t.shape), t.dtype) for name, t in [*model.named_parameters(), *model.named_buffers()])
    return tuple(modules), shapes


def groups(models: Sequence[nn.Module]) -> list[list[int]]:
    """Member indices grouped by :func:`structure`, in order of first appearance."""
    found: dict[tuple, list[int]] = {}
    for i, model in enumerate(models):
        found.setdefault(structure(model), []).append(i)
    return list(found.values())


def hold_differing(models: Sequence[nn.Module]) -> list[str]:
    """Turn fixed activation parameters that differ between ``models`` (of one structure) into
    per-member tensors; returns what was held, as ``path.key``."""
    from mila_bench.activations.resolve import Activation

    held = []
    for path, first in models[0].named_modules():
        if not isinstance(first, Activation):
            continue
        same = [m.get_submodule(path) for m in models]
        differing = [k for k in first.fixed if len({a.fixed[k] for a in same}) > 1]
        for activation in same:
            activation.hold_as_tensors(differing)
        held += [f"{path}.{k}" if path else k for k in differing]
    return held


class Group:
    """Members of one structure, their parameters and buffers stacked, run as one ``vmap``."""

    def __init__(self, index: list[int], models: Sequence[nn.Module]) -> None:
        self.index = index
        self.models = list(models)
        self.base = copy.deepcopy(self.models[0]).to("meta")  # the structure; functional_call supplies the tensors
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}
        self.place: dict[int, tuple[Tensor, int, bool]] = {}  # id(member parameter) → its stack, row, transposed
        for name, _ in self.models[0].named_parameters():
            members = [m.get_parameter(name) for m in self.models]
            # Matrices are stacked transposed ([N, in, out]): vmap's batched linear then computes
            # their gradient in this layout directly instead of transposing a copy every step.
            flip = members[0].dim() == 2
            rows = [p.detach().t() if flip else p.detach() for p in members]
            stack = torch.stack(rows).requires_grad_(members[0].requires_grad)
            self.params[name] = stack.mT if flip else stack
            for row, param in enumerate(members):
                param.data = stack.detach()[row].t() if flip else stack.detach()[row]  # the same Parameter, in the stack
                self.place[id(param)] = (stack, row, flip)
        for name, _ in self.models[0].named_buffers():
            stack = torch.stack([m.get_buffer(name) for m in self.models])
            self.buffers[name] = stack
            owner, _, leaf = name.rpartition(".")
            for row, model in enumerate(self.models):
                model.get_submodule(owner)._buffers[leaf] = stack[row]  # BatchNorm's updates land in the member's

    def _call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return torch.func.functional_call(self.base, (params, buffers), (x,))

    def __call__(self, x: Tensor, shared_input: bool = False) -> Tensor:
        """[members, batch, ...] → [members, batch, classes]; ``shared_input``: one [batch, ...] for all."""
        run = torch.func.vmap(self._call, in_dims=(0, 0, None if shared_input else 0), randomness="different")
        return run(self.params, self.buffers, x)


class PackedModel:
    """The models of N members as one callable: [N, batch, ...] images → [N, batch, classes]."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        self.models = list(models)
        self.groups = []
        for index in groups(self.models):
            members = [self.models[i] for i in index]
            hold_differing(members)
            self.groups.append(Group(index, members))
        self.order = [i for g in self.groups for i in g.index]
        self.inverse = None if self.order == list(range(len(self.models))) else torch.tensor(self.order).argsort()

    def __len__(self) -> int:
        return len(self.models)

    def train(self, mode: bool = True) -> None:
        for model in self.models:
            model.train(mode)
        for group in self.groups:
            group.base.train(mode)

    def eval(self) -> None:
        self.train(False)

    def __call__(self, images: Tensor, shared_input: bool = False) -> Tensor:
        """Every member's output, in member order; ``shared_input``: the same [batch, ...] for all
        (evaluation), else each member its own batch ([N, batch, ...])."""
        if len(self.groups) == 1:
            return self.groups[0](images, shared_input)
        outputs = []
        for group in self.groups:
            x = images if shared_input else images[group.index]
            outputs.append(group(x, shared_input))
        out = torch.cat(outputs)
        return out if self.inverse is None else out[self.inverse.to(out.device)]

    def where(self, member: int, param: nn.Parameter) -> tuple[Tensor, int, bool]:
        """The stack holding ``param`` of member ``member``, its row, and whether it is transposed."""
        for group in self.groups:
            if member in group.index:
                return group.place[id(param)]
        raise KeyError(member)


class PackOptimizer:
    """The members' optimizers as one: the same optimizer class and settings over the stacks.

    Adam and SGD act elementwise, so one step over a stack is each member's own step on its row,
    state (moments, step count) included. Each member keeps its own optimizer object for what is
    its own: the learning rate its schedule sets, and its state in a lone run's format
    (:meth:`member_state`, :meth:`load_member_state`) for its checkpoint. When the members'
    learning rates differ (their schedules cut at different epochs), one step at learning rate 1
    gives each member's update direction, and each row moves by its own rate along it (the
    moments of Adam and SGD do not depend on the rate; only the last rounding differs from a lone step).
    """

    def __init__(self, pack: PackedModel, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.pack, self.optimizers = pack, list(optimizers)
        template = self.optimizers[0]
        self.layout: list[tuple[Group, int]] = []  # stacked group → (structure group, member group index)
        stacked_groups = []
        for group in pack.groups:
            first = self.optimizers[group.index[0]]
            for k, member_group in enumerate(first.param_groups):
                settings = {key: value for key, value in member_group.items() if key != "params"}
                stacks = [group.place[id(p)][0] for p in member_group["params"]]
                stacked_groups.append({**settings, "params": stacks})
                self.layout.append((group, k))
        self.stacked = type(template)(stacked_groups, **template.defaults)

    def zero_grad(self) -> None:
        self.stacked.zero_grad(set_to_none=True)

    def step(self) -> None:
        rates = []
        for (group, k), stacked_group in zip(self.layout, self.stacked.param_groups):
            lrs = [self.optimizers[i].param_groups[k]["lr"] for i in group.index]
            rates.append(lrs)
            stacked_group["lr"] = lrs[0]
        if all(len(set(lrs)) == 1 for lrs in rates):
            self.stacked.step()
            return
        with torch.no_grad():
            before = [[p.detach().clone() for p in g["params"]] for g in self.stacked.param_groups]
            for g in self.stacked.param_groups:
                g["lr"] = 1.0
            self.stacked.step()
            for g, olds, lrs in zip(self.stacked.param_groups, before, rates):
                for p, old in zip(g["params"], olds):
                    rate = torch.tensor(lrs, dtype=p.dtype, device=p.device).view(-1, *[1] * (p.dim() - 1))
                    p.copy_(old + rate * (p - old))

    def member_state(self, member: int) -> dict:
        """Member ``member``'s optimizer state dict, as its own optimizer would have it."""
        optimizer = self.optimizers[member]
        own = optimizer.state_dict()
        state = {}
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for index, param in enumerate(params):
            stack, row, flip = self.pack.where(member, param)
            stacked_state = self.stacked.state.get(stack)
            if not stacked_state:
                continue
            state[index] = {
                key: (value.clone() if value.dim() == 0 else (value[row].t() if flip else value[row]).contiguous().clone())
                for key, value in stacked_state.items()
            }
        return {"state": state, "param_groups": own["param_groups"]}

    def load_member_states(self, states: Sequence[dict]) -> None:
        """Every member's optimizer state (each as its own optimizer saved it) into the stacks."""
        for member, state in enumerate(states):
            self.optimizers[member].load_state_dict({"state": {}, "param_groups": state["param_groups"]})
        if not any(state["state"] for state in states):
            return
        position = {id(p): i for i, p in enumerate(p for g in self.stacked.param_groups for p in g["params"])}
        stacked: dict[int, dict] = {}
        for member, state in enumerate(states):
            own = [p for g in self.optimizers[member].param_groups for p in g["params"]]
            for index, values in state["state"].items():
                stack, row, flip = self.pack.where(member, own[int(index)])
                slot = stacked.setdefault(position[id(stack)], {})
                for key, value in values.items():
                    if value.dim() == 0:
                        slot[key] = value
                        continue
                    if key not in slot:
                        slot[key] = torch.zeros_like(stack, dtype=value.dtype)
                    slot[key][row].copy_(value.t() if flip else value)
        self.stacked.load_state_dict({"state": stacked, "param_groups": self.stacked.state_dict()["param_groups"]})


def why_not_packable(model: nn.Module, example: Tensor) -> str | None:
    """None when two copies of ``model`` run under ``vmap`` (forward and backward) on ``example``
    (a small [batch, ...] input); else the reason, in one line. Run before packing a model family
    whose operations may not all have batching rules (timm's)."""
    twins = [copy.deepcopy(model) for _ in range(2)]
    try:
        pack = PackedModel(twins)
        pack.train()
        pack(torch.stack([example, example])).float().sum().backward()
    except Exception as err:  # whatever vmap refuses: an operation without a batching rule, data-dependent flow
        return f"torch.func.vmap cannot run it ({type(err).__name__}: {' '.join(str(err).split())[:160]})"
    return None
