"""How ``--help`` prints, as most command lines do: a flag as itself (``--debug``), arguments in
capitals (``mila-bench suite [OPTIONS] NAME [OVERRIDES]...``), ``-h`` as well as ``--help``.

Typer's rich help shows every option with a value placeholder, flags included (``--debug <bool>``),
and a required argument as ``{name}``. :class:`Command` and :class:`Group` keep Typer's layout and
change only that: a flag's placeholder is empty and the usage line is built from the arguments' names.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

#: For the root app: its sub-apps and commands inherit it.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def _plain(params: list[Any]) -> list[Any]:
    """Flags without a value placeholder, arguments named in capitals (help panels and errors alike)."""
    for param in params:
        if param.param_type_name == "option" and param.is_flag and param.metavar is None:
            param.metavar = ""  # the help prints an option's metavar in place of its type
        elif param.param_type_name == "argument" and param.metavar is None:
            param.metavar = param.name.upper()
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] NAME [OVERRIDES]...``: optional arguments in brackets, repeatable ones with ``...``."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar if param.required else f"[{param.metavar}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


def apply(app: typer.Typer) -> None:
    """Every command of ``app`` and of its sub-apps printed by :class:`Command` (apps are made with ``cls=Group``)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # not a class of its own
            info.cls = Command
    for group in app.registered_groups:
        apply(group.typer_instance)
