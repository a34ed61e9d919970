"""The docs site builds with ``mkdocs build --strict`` (what ``make docs`` runs): no warning, no broken
link or missing page, and its generated references cover every command and every config group."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``config`` into ``site``, in a subprocess, as ``make docs`` runs it."""
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def warnings(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if "WARNING" in line or "ERROR" in line]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0 and not warnings(proc), proc.stdout + proc.stderr
    return out


def test_mkdocs_build_strict_passes(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "figures" / "noise.png").is_file()


def test_the_cli_reference_has_every_command(site: Path) -> None:
    """Generated from the Typer app: every command and plot subcommand, with its options."""
    from mila_bench.cli.docs_command import command

    page = (site / "reference" / "cli" / "index.html").read_text()
    for name, sub in command.commands.items():
        assert f'id="mila-bench-{name}"' in page, name
        for option in [o for p in sub.params for o in getattr(p, "opts", []) if o.startswith("--")]:
            assert option in page, (name, option)
        for inner in getattr(sub, "commands", {}):
            assert f'id="mila-bench-{name}-{inner}"' in page, (name, inner)


def test_the_configuration_reference_has_every_group_and_option(site: Path) -> None:
    """Generated from configs/: every group folder, every option file, the defaults list."""
    page = (site / "reference" / "configuration" / "index.html").read_text()
    configs = ROOT / "configs"
    for path in configs.rglob("*.yaml"):
        if path.parent == configs:
            continue
        group = path.parent.relative_to(configs).as_posix()
        assert f"<code>{group}</code>" in page, group
        assert f"configs/{group}/{path.name}" in page, path
    assert "Defaults list" in page and "mila-bench train --show-config" in page


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    """The strict build can fail: the same site with one link to a missing page does."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    with (tmp_path / "docs" / "index.md").open("a") as page:
        page.write("\nSee [a page that does not exist](no_such_page.md).\n")
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert any("no_such_page.md" in line for line in warnings(proc)), proc.stdout + proc.stderr
