"""The command examples of README.md and docs/*.md are checked against the real CLI.

Every ``mila-bench ...`` and ``python demo.py ...`` line of a fenced shell block (``bash``,
``sh``, ``console``: there only the ``$ `` lines) is

* **checked** without running it: the subcommand exists and its options parse (click's
  ``make_context`` on the Typer command, nothing invoked), and its Hydra overrides compose and
  pass the same checks the command makes before any work (``compose``, a sweep's ``plan``, each
  task of a suite, each row of a reproduction);
* **run**, in a subprocess in a temporary working directory, where that is cheap offline
  (``--help``, ``list``, ``suite`` without a name, ``--show-config``, ``reproduce --list``, error
  examples; a short ``train`` and ``report`` on a copy of the committed records, marked slow; ``runs``
  over the committed records as git tracks them, not the user's own runs), with its exit code
  and a key line of its output checked. A ``console`` block's output lines are the expected
  output (``...`` stands for any text, on its own line for any lines).

An example naming the example plugin (not installed here) is only parsed; examples that
train, sweep or draw for minutes are checked, not run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
SEPARATORS = {"&&", "||", ";", "|"}
PLUGIN = "serf"  # the example plugin of docs/activations.md, a package the reader builds and installs


@dataclass(frozen=True)
class Example:
    """One command of a fenced shell block: where it is, its argv, the output a console block shows."""

    path: Path
    line: int
    argv: tuple[str, ...]
    expected: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # heredocs of the same page

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {shlex.join(self.argv)}"[:150]

    @property
    def is_demo(self) -> bool:
        return self.argv[0] == "demo.py"


def fenced_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the first content line, lines) of every fenced block."""
    blocks, lines, at = [], text.splitlines(), 0
    while at < len(lines):
        opening = re.match(r"^(\s*)(```+|~~~+)\s*([\w-]*)", lines[at])
        if not opening:
            at += 1
            continue
        indent, fence, language = opening.groups()
        body, start = [], at + 1
        at += 1
        while at < len(lines) and not lines[at].strip().startswith(fence):
            body.append(lines[at][len(indent):] if lines[at].startswith(indent) else lines[at])
            at += 1
        blocks.append((language.lower(), start + 1, body))
        at += 1
    return blocks


def commands(argv: list[str]) -> list[tuple[str, ...]]:
    """The mila-bench / demo.py commands in one shell line (split at &&, ||, ;, |), as argv without the program."""
    found, segment, redirected = [], [], False
    for token in [*argv, ";"]:
        if token not in SEPARATORS:
            if re.match(r"^\d?[<>]", token):  # a redirection (> runs.csv) is the shell's, not the command's
                redirected = token.lstrip("0123456789") in ("<", ">", ">>")
            elif redirected:
                redirected = False
            else:
                segment.append(token)
            continue
        if segment:
            program = segment[0].removeprefix(".venv/bin/")
            if program == "mila-bench":
                found.append(tuple(segment[1:]))
            elif program in ("python", "python3") and len(segment) > 1 and segment[1].endswith("demo.py"):
                found.append(("demo.py", *segment[2:]))
        segment = []
    return found


def examples_in(path: Path) -> list[Example]:
    """Every command example of one page, with the files its heredocs write."""
    found: list[tuple[int, tuple[str, ...], list[str]]] = []
    files: dict[str, str] = {}
    for language, first, body in fenced_blocks(path.read_text()):
        if language not in SHELL_LANGUAGES:
            continue
        at = 0
        while at < len(body):
            number, line = first + at, body[at]
            at += 1
            if language == "console":
                if not line.startswith("$ "):
                    if found and found[-1][0] >= first:  # output of the last command of this block
                        found[-1][2].append(line.rstrip())
                    continue
                line = line[2:]
            while line.rstrip().endswith("\\") and at < len(body):
                line = line.rstrip()[:-1] + " " + body[at].strip()
                at += 1
            heredoc = re.search(r"cat\s*>\s*(\S+)\s*<<-?\s*'?(\w+)'?", line)
            if heredoc:
                name, tag = heredoc.groups()
                end = next(i for i in range(at, len(body)) if body[i].strip() == tag)
                files[name] = "\n".join(body[at:end]) + "\n"
                at = end + 1
                continue
            for argv in commands(shlex.split(line, comments=True)):
                found.append((number, argv, []))
    return [Example(path, n, argv, tuple(out), tuple(files.items())) for n, argv, out in found]


EXAMPLES = [e for path in DOC_FILES for e in examples_in(path)]


def skip_reason(example: Example) -> str | None:
    """Why an example cannot be checked here, or None."""
    for token in example.argv:
        if re.search(r"<[^>]+>", token):
            return "a placeholder for the user's own value"
        if token.startswith("activation.target"):
            continue  # a custom target's MODULE:NAME, not an activation's name
        names = {token.split(":")[0], *(v.split(":")[0] for v in token.split("=", 1)[-1].split(","))}
        if PLUGIN in names:
            return f"names the example plugin {PLUGIN!r}, which is not installed here (tests/test_plugins.py builds, installs and runs one)"
    return None


# ---------------------------------------------------------------- checked without running


def command_contexts(argv: tuple[str, ...]) -> list:
    """Parse argv with click through the Typer app's command tree, invoking nothing; the contexts, outermost first.

    Raises what click raises on an unknown command or a bad option; ``--help`` ends the walk early.
    """
    from mila_bench.cli.docs_command import command

    contexts, cmd, name, args = [], command, "mila-bench", list(argv)
    parent = None
    while True:
        try:
            ctx = cmd.make_context(name, args, parent=parent)
        except Exception as err:  # click's Exit(0) is how an eager --help stops parsing
            if type(err).__name__ == "Exit" and getattr(err, "exit_code", 1) == 0:
                return contexts
            raise
        contexts.append(ctx)
        rest = [*getattr(ctx, "_protected_args", []), *getattr(ctx, "protected_args", []), *ctx.args]
        if not hasattr(cmd, "resolve_command") or not rest:
            return contexts
        name, cmd, args = cmd.resolve_command(ctx, rest)
        parent = ctx


def check_statically(example: Example, committed: Path) -> None:
    """What the command checks before any work, done here without doing the work; raises on bad input.

    ``committed`` holds the committed ``results/`` (a ``runs`` example must match a committed run)."""
    if example.is_demo:
        spec = importlib.util.spec_from_file_location("demo_under_test", ROOT / "demo.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)  # type: ignore[union-attr]
        try:
            args = demo.parse_args(list(example.argv[1:]))
        except SystemExit as err:
            if err.code in (0, None):  # --help
                return
            raise AssertionError(f"demo.py refuses {example.argv[1:]}") from None
        from mila_bench.config import compose

        compose(demo.overrides_from(args))
        return
    contexts = command_contexts(example.argv)
    if not contexts or "--help" in example.argv:
        return
    path = contexts[-1].command_path.split()[1:]
    params = contexts[-1].params
    overrides = list(params.get("overrides") or [])
    from mila_bench.config import compose

    if path == ["train"]:
        compose(overrides)
    elif path == ["sweep"]:
        from mila_bench.launch.sweep import plan

        plan(overrides)
    elif path == ["suite"] and params["name"] is None:
        return  # the listing of the suites: run below
    elif path == ["suite"]:
        from mila_bench.launch.suite import task_overrides
        from mila_bench.suites import load
        from mila_bench.launch.sweep import plan

        suite = load(params["name"])
        chosen = [a.strip() for a in params["activations"].split(",") if a.strip()]
        for task in suite.tasks:
            plan(task_overrides(suite, task, chosen, params["seeds"], overrides))
    elif path == ["reproduce"] and not params.get("list_tables"):
        check_reproduction(params)
    elif path == ["runs"]:
        from mila_bench.records.frame import load_runs, resolve_column, select_runs

        frame = load_runs(committed / "results")
        assert not select_runs(frame, params.get("filters") or []).empty, "the example matches no committed run"
        for key in (params.get("columns") or "").split(","):
            if key.strip():
                resolve_column(frame, key.strip())
    elif path == ["export"]:
        from mila_bench.trackers.checks import tracker_name

        name = tracker_name(params["tracker"])
        compose([f"logger=[{name}]", *overrides])
    elif path[:1] == ["plot"]:
        from mila_bench.analysis.choices import parse_activations
        from mila_bench.analysis.training import STUDY_DEFAULTS

        if params.get("activation") and path != ["plot", "function"]:
            parse_activations(params["activation"])
        if path[1:] in (["noise"], ["depth"]):
            compose([*STUDY_DEFAULTS, *overrides])


class _Composed(Exception):
    """Raised in place of the first training: every run of the reproduction was composed and checked."""


def check_reproduction(params: dict) -> None:
    """``reproduce``'s own checks (table, --only, every row's config), stopped before its first training
    (and its estimate given a step time instead of timing steps: seconds of ResNet steps, not a check;
    nor is the data's presence)."""
    import mila_bench.pipeline
    import mila_bench.training.estimate
    from mila_bench.launch.reproduce import reproduce

    def stop(*_args, **_kwargs):
        raise _Composed

    original, mila_bench.pipeline.train = mila_bench.pipeline.train, stop
    timing, mila_bench.training.estimate.time_steps = mila_bench.training.estimate.time_steps, lambda _cfg: 1.0
    # the data's presence is the run's check, not the example's (CIFAR is not on this machine)
    data_check, mila_bench.training.estimate.check_obtainable = mila_bench.training.estimate.check_obtainable, lambda _cfg: None
    try:
        reproduce(params["table"], params["seeds"], params["epochs"], params.get("overrides") or [],
                  params.get("only") or [], echo=lambda _line: None)  # fmt: skip
    except _Composed:
        pass
    finally:
        mila_bench.pipeline.train = original
        mila_bench.training.estimate.time_steps = timing
        mila_bench.training.estimate.check_obtainable = data_check


def test_the_docs_have_examples_to_check() -> None:
    """The extraction finds the examples (so an empty list cannot pass everything below)."""
    found = {e.argv[0] for e in EXAMPLES}
    assert {"train", "sweep", "report", "reproduce", "suite", "plot", "list"} <= found, found
    assert len(EXAMPLES) >= 30


# A suite's check composes every job of every task (a hundred configs for cpu_small): seconds, so slow.
CHECKS = [pytest.param(e, marks=[pytest.mark.slow] if e.argv[0] == "suite" else [], id=e.id) for e in EXAMPLES]


@pytest.mark.parametrize("example", CHECKS)
def test_example_parses_and_composes(example: Example, tmp_path: Path, committed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if skip_reason(example):  # e.g. the example plugin, not installed here: its command line still parses
        command_contexts(example.argv)
        return
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, text in example.files:
        (tmp_path / name).write_text(text)
    if example.expected[:1] and example.expected[0].startswith("mila-bench: error"):
        command_contexts(example.argv)  # an error example: its error is checked by running it (below)
        return
    try:
        check_statically(example, committed)
    finally:  # a page's module (my_acts.py) must not stand in for another test's module of that name
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
                del sys.modules[name]


@pytest.mark.parametrize(
    "argv",
    [("trian",), ("train", "--no-such-option"), ("train", "activation=swishh"), ("train", "trainer.epochs=0"),
     ("sweep", "activation=mila,swishh"), ("suite", "no_such_suite"), ("reproduce", "cifar10-resnet21-v1"),
     ("plot", "noise", "--sigmaa", "0.1"), ("plot", "depth", "model.depthh=3"), ("demo.py", "--activation", "swishh")],
    ids=" ".join,
)  # fmt: skip
def test_a_broken_example_fails_the_check(argv: tuple[str, ...], tmp_path: Path, committed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises((Exception, SystemExit)):
        check_statically(Example(ROOT / "README.md", 1, argv), committed)


# ---------------------------------------------------------------- run, where cheap offline

NO_CUDA = shutil.which("nvidia-smi") is None and not Path("/dev/nvidia0").exists()


def key_line(example: Example, committed: Path) -> str | None:
    """The line a run of this example must print, when its page shows no output (``committed``: see check_statically)."""
    argv = example.argv
    if "--help" in argv:
        return "Usage:"
    if argv[0] == "list":
        return "activation: NAME  PARAMETERS (defaults)  WHAT"
    if argv == ("suite",):
        return "suite: NAME  WHAT"
    if argv[:2] == ("reproduce", "--list"):
        return "cifar10-resnet20-v1  (8 rows: mish, swish, relu, beta_mish, mila)  24 runs × 200 epochs"
    if argv[0] == "train" and "--show-config" in argv:
        return "activation:"
    if argv[0] == "train":
        return "run recorded in results/"
    if argv[0] == "report":
        return "Results.md: "
    if argv[0] == "runs":  # a CSV's first column, a JSON record's first key; a table's count line
        return "run_id" if "--format" in argv else f" of {len(list((committed / 'results').glob('*/summary.json')))} runs"
    return None


def run_plan(example: Example) -> tuple[str | None, bool]:
    """(why it is not run here, or None; whether the run is slow)."""
    argv = example.argv
    reason = skip_reason(example)
    if reason:
        return reason, False
    error_example = bool(example.expected) and example.expected[0].startswith("mila-bench: error")
    if "--help" in argv or argv[0] == "list" or argv == ("suite",) or argv[:2] == ("reproduce", "--list") or "--show-config" in argv:
        return None, False
    if error_example and "device=cuda" in argv:
        return (None, True) if NO_CUDA else ("shows the error of a machine without CUDA; this one has CUDA", False)
    if error_example:
        return None, False
    if argv[0] == "report" and len(argv) == 1:
        return None, True  # on a copy of the committed records
    if argv[0] == "runs":
        return None, False  # reads the committed records (writes nothing): seconds
    if argv[0] == "train" and "dataset.train_subset=2000" in argv and "trainer.epochs=2" in argv:
        return None, True
    return "trains, sweeps or draws for minutes (its parsing and config are checked above)", False


def matches(expected: tuple[str, ...], output: str) -> bool:
    """Doctest-like: the expected lines in order from the start, ``...`` matching any text (any lines on its own)."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:.*\n)*?")
        else:
            parts.append(".*".join(re.escape(piece) for piece in line.rstrip().split("...")) + r"[ \t]*\n")
    lines = [line.rstrip() for line in output.splitlines()]
    return re.match("".join(parts), "\n".join(lines) + "\n") is not None


def test_the_output_matcher() -> None:
    assert matches(("a", "...", "c ...", "d"), "a\nb\nb\nc x y\nd\ne\n")
    assert not matches(("a", "c"), "a\nb\nc\n")
    assert not matches(("x: 0.001",), "x: 0.003\n")


# Only the examples cheap to run here (the others train, sweep or draw for minutes, or need the
# example plugin: they are checked above without running).
RUNS = [pytest.param(e, marks=[pytest.mark.slow] if run_plan(e)[1] else [], id=e.id)
        for e in EXAMPLES if run_plan(e)[0] is None]  # fmt: skip


def test_every_kind_of_cheap_example_is_run() -> None:
    """The run list is not empty by accident: each kind the docs show cheaply is in it."""
    kinds = {e.values[0].argv[0] for e in RUNS}
    assert {"list", "train", "report", "runs", "reproduce", "suite"} <= kinds, kinds


@pytest.mark.parametrize("example", RUNS)
def test_example_runs(example: Example, tmp_path: Path, committed: Path, fashion_root_dir: Path) -> None:
    for name, text in example.files:
        (tmp_path / name).write_text(text)
    if example.argv[0] == "report":
        shutil.copytree(committed / "results", tmp_path / "results")
        shutil.copy(committed / "Results.md", tmp_path / "Results.md")
    argv = list(example.argv)
    if example.argv[0] == "train" and "--show-config" not in argv and not example.expected:
        argv += [f"dataset.root={fashion_root_dir}", "trainer.progress=false"]
    proc = run_cli(argv, committed if argv[0] == "runs" else tmp_path, timeout=300)  # runs only reads the records
    output = proc.stdout + proc.stderr
    if example.expected:
        error = example.expected[0].startswith("mila-bench: error")
        assert proc.returncode == (2 if error else 0), output
        assert matches(example.expected, output), f"expected (from {example.id}):\n" + "\n".join(example.expected) + f"\n\ngot:\n{output}"
    else:
        assert proc.returncode == 0, output
        line = key_line(example, committed)
        assert line is not None and line in output, f"{line!r} not in:\n{output}"


@pytest.fixture(scope="module")
def fashion_root_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty data root: the run fills it from Debian's copy as a user's first run would (no download offline)."""
    return tmp_path_factory.mktemp("fashion")
