"""The committed record: every Results.md row is backed by a tracked run record, and
`mila-bench report` on a fresh clone rebuilds the committed Results.md byte for byte. Both read
what git tracks, so the user's own runs in the working tree (``make demo``) change neither."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_cli


@pytest.mark.slow
def test_a_fresh_clone_rebuilds_results_md_byte_for_byte(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    committed = (clone / "Results.md").read_bytes()
    proc = run_cli(["report"], clone)
    assert proc.returncode == 0, proc.stderr
    assert (clone / "Results.md").read_bytes() == committed
    assert "rebuilt ## fashion_mnist · mlp" in proc.stdout


def test_every_recorded_row_on_main_has_its_record_tracked(committed: Path) -> None:
    from mila_bench.records import results_md

    tracked = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = set(tracked.stdout.split())
    doc = results_md.read(committed / "Results.md")  # the tracked Results.md, not the working tree's
    ids = [
        results_md.row_run_id(row)
        for body in doc.sections.values()
        for row in results_md.run_table_rows(body)
        if results_md.NO_RECORD not in row["Run"]
    ]
    assert len(ids) >= 65  # the committed comparison (4 × 10 seeds) and β sweep (5 more β × 5 seeds)
    for run_id in ids:
        for name in ("config.yaml", "metrics.csv", "summary.json"):
            assert f"results/{run_id}/{name}" in files, f"{run_id}/{name} is not tracked"
    assert not any(f.endswith("checkpoint.pt") for f in files)
