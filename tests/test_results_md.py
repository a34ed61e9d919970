"""Results.md: layout, escaping, alignment, and appends from many processes at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from mila_bench.records import results_md
from mila_bench.records import runs
from mila_bench.errors import UsageError


def row(activation: str, seed: int = 0, **extra: object) -> dict[str, object]:
    return {"Activation": activation, "β": "-0.25", "Seed": seed, "Top-1 (%)": "87.00", "Run": f"r-{activation}-{seed}", **extra}


def table_rows(text: str, heading: str) -> list[list[str]]:
    """Cells of the data rows of the table under ``heading``."""
    lines = text.splitlines()
    at = lines.index(heading) + 2  # blank line, then the table
    table = []
    while at < len(lines) and lines[at].startswith("|"):
        table.append(lines[at])
        at += 1
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in table[2:]]


def test_first_run_creates_file_section_and_header(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    results_md.append_row(md, "fashion_mnist · mlp", row("mila"))
    text = md.read_text()
    assert text.startswith("# Results")
    assert "## fashion_mnist · mlp" in text
    header = [l for l in text.splitlines() if l.startswith("| Activation")]
    assert len(header) == 1 and all(c in header[0] for c in results_md.COLUMNS)
    assert table_rows(text, "## fashion_mnist · mlp")[0][0] == "mila"


def test_rows_go_to_their_own_section(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    results_md.append_row(md, "a · mlp", row("mila"))
    results_md.append_row(md, "b · mlp", row("relu"))
    results_md.append_row(md, "a · mlp", row("swish"))
    text = md.read_text()
    assert [r[0] for r in table_rows(text, "## a · mlp")] == ["mila", "swish"]
    assert [r[0] for r in table_rows(text, "## b · mlp")] == ["relu"]
    assert text.count("| Activation") == 2


def test_pipes_and_newlines_cannot_break_a_table(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    results_md.append_row(md, "x · mlp", row("evil|name\nsecond line"))
    rows = table_rows(md.read_text(), "## x · mlp")
    assert len(rows) == 1 and rows[0][0] == "evil\\|name second line"


def _append_many(args: tuple[str, int]) -> None:
    path, worker = args
    for i in range(5):
        results_md.append_row(Path(path), "fashion_mnist · mlp", row(f"w{worker}", seed=i))


def test_concurrent_appends_keep_every_row_exactly_once(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        pool.map(_append_many, [(str(md), w) for w in range(8)])
    rows = table_rows(md.read_text(), "## fashion_mnist · mlp")
    keys = sorted((r[0], r[3]) for r in rows)
    assert keys == sorted((f"w{w}", str(i)) for w in range(8) for i in range(5))
    assert all(len(r) == len(results_md.COLUMNS) for r in rows)


def test_a_held_lock_times_out_with_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    md = tmp_path / "Results.md"
    results_md.append_row(md, "a · mlp", row("mila"))
    before = md.read_text()
    monkeypatch.setattr(results_md, "LOCK_TIMEOUT_S", 0.2)
    with FileLock(str(md) + ".lock"):  # another process appending, as far as append_row can tell
        with pytest.raises(UsageError, match="could not lock .*Results.md within"):
            results_md.append_row(md, "a · mlp", row("relu"))
    assert md.read_text() == before


def test_torn_table_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    results_md.append_row(md, "a · mlp", row("mila"))
    torn = md.read_text().rstrip("\n").rsplit("|", 3)[0] + "\n"  # cut the last row short
    md.write_text(torn)
    with pytest.raises(UsageError, match="cells"):
        results_md.append_row(md, "a · mlp", row("relu"))
    with pytest.raises(UsageError, match="cannot extend"):
        runs.check_writable(tmp_path / "results", md)
    assert md.read_text() == torn


def test_escaped_pipes_do_not_count_as_cells(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    results_md.append_row(md, "a · mlp", row("x|y"))
    results_md.check_results_file(md)  # the escaped pipe stays one cell: no error
    results_md.append_row(md, "a · mlp", row("z"))
    assert len(table_rows(md.read_text(), "## a · mlp")) == 2



def test_appended_rows_line_up_with_the_table(tmp_path: Path) -> None:
    """Every row of a per-run table has its pipes at the same columns, whatever order cells of different
    widths (a '—' β after a '-0.25' β, a long run id) were appended in."""
    md = tmp_path / "Results.md"
    results_md.append_row(md, "a · mlp", row("mila"))
    results_md.append_row(md, "a · mlp", {**row("relu"), "β": "—", "Run": "a-much-longer-run-id-than-before"})
    results_md.append_row(md, "a · mlp", row("swish"))
    lines = [l for l in md.read_text().splitlines() if l.startswith("|")]
    pipes = {tuple(i for i, ch in enumerate(l) if ch == "|") for l in lines}
    assert len(lines) == 5 and len(pipes) == 1
    assert [r[1] for r in table_rows(md.read_text(), "## a · mlp")] == ["-0.25", "—", "-0.25"]


def test_appending_keeps_other_content_of_the_section(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    results_md.append_row(md, "a · mlp", row("mila"))
    text = md.read_text().replace("## a · mlp\n", "## a · mlp\n\nA summary written by report.\n")
    md.write_text(text + "\n## other\n\nkept\n")
    results_md.append_row(md, "a · mlp", row("relu"))
    after = md.read_text()
    assert "A summary written by report." in after and "## other\n\nkept\n" in after
    section = results_md.Document.parse(after).sections["a · mlp"]
    assert [r["Activation"] for r in results_md.run_table_rows(section)] == ["mila", "relu"]
