"""Run records: complete or absent, writable paths checked before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from mila_bench.records import results_md
from mila_bench.records import runs
from mila_bench.errors import UsageError
from test_schema import example_summary


def test_write_run_is_complete_or_absent(tmp_path: Path) -> None:
    summary = example_summary(run_id="rid")
    run_dir = runs.write_run(tmp_path / "results", "rid", "seed: 0\n", [summary.final], summary)
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "metrics.csv", "summary.json"]
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["rid"]
    assert runs.read_summary(run_dir) == summary and runs.read_metrics(run_dir) == [summary.final]


def test_results_path_under_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="file"):
        runs.check_writable(blocker / "results", tmp_path / "Results.md")
    with pytest.raises(UsageError, match="not a file"):
        runs.check_writable(tmp_path / "results", tmp_path)


def test_torn_table_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    md = tmp_path / "Results.md"
    results_md.append_row(md, "a · mlp", {"Activation": "mila", "Run": "r1"})
    torn = md.read_text().rstrip("\n").rsplit("|", 3)[0] + "\n"  # cut the last row short
    md.write_text(torn)
    with pytest.raises(UsageError, match="cells"):
        results_md.append_row(md, "a · mlp", {"Activation": "relu", "Run": "r2"})
    with pytest.raises(UsageError, match="cannot extend"):
        runs.check_writable(tmp_path / "results", md)
    assert md.read_text() == torn


def test_read_config_gives_what_omegaconf_reads_for_every_committed_record(tmp_path: Path, committed: Path) -> None:
    """The fast reader of config.yaml (libyaml) keeps OmegaConf's rules: same values, same types."""
    from omegaconf import OmegaConf

    from mila_bench.records.runs import read_config

    folders = sorted(p.parent for p in (committed / "results").glob("*/config.yaml"))
    assert len(folders) >= 165
    for folder in folders:
        expected = OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"))
        got = read_config(folder)
        assert got == expected and repr(got) == repr(expected), folder.name  # repr: 1 vs 1.0 vs True differ
    (tmp_path / "config.yaml").write_text("lr: 1e-3\neps: 1.0e-08\nn: 3\nflag: true\nname: '1e-3'\nnothing: null\n")
    assert read_config(tmp_path) == OmegaConf.to_container(OmegaConf.load(tmp_path / "config.yaml"))
    assert read_config(tmp_path) == {"lr": 1e-3, "eps": 1e-8, "n": 3, "flag": True, "name": "1e-3", "nothing": None}
