"""What every tool ships: a version the CLI prints, the license the metadata names, a citation, a changelog."""

from __future__ import annotations

from importlib.metadata import metadata
from pathlib import Path

import yaml

import mila_bench
from conftest import ROOT
from test_startup import cli


def test_version_is_the_package_version_without_torch(tmp_path: Path) -> None:
    proc, lines, heavy = cli(["--version"], tmp_path)
    assert proc.returncode == 0 and lines == [] and heavy == [], proc.stderr
    assert proc.stdout == f"mila-bench {mila_bench.__version__}\n"
    assert metadata("mila-bench")["Version"] == mila_bench.__version__
    assert list(tmp_path.iterdir()) == []


def test_the_license_is_mit_in_the_file_and_the_metadata() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 the mila-bench authors" in text
    meta = metadata("mila-bench")
    assert meta["License-Expression"] == "MIT" and meta.get_all("License-File") == ["LICENSE"]


def test_the_citation_names_this_tool_and_what_it_builds_on() -> None:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    assert str(cff["version"]) == mila_bench.__version__
    titles = {ref["title"]: ref for ref in cff["references"]}
    assert titles["Mish: A Self Regularized Non-Monotonic Activation Function"]["year"] == 2019
    survey = titles["Activation functions in deep learning: A comprehensive survey and benchmark"]
    assert survey["journal"] == "Neurocomputing" and [a["family-names"] for a in survey["authors"]] == ["Dubey", "Singh", "Chaudhuri"]


def test_the_changelog_keeps_an_unreleased_section() -> None:
    lines = (ROOT / "CHANGELOG.md").read_text().splitlines()
    assert lines[0] == "# Changelog" and "## [Unreleased]" in lines
    assert any("keepachangelog.com" in line for line in lines)
