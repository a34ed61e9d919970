"""The docs site builds with ``mkdocs build --strict`` (what ``make docs`` runs): no warning, no broken
link or missing page; its generated pages cover every command, config group, Results.md table and
API entry point; and what the pages say by hand matches what the code does (the demo's flags, the
activations' parameters, one name per page)."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def build(config: Path, site: Path, **env_vars: str) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``config`` into ``site``, in a subprocess, as ``make docs`` runs it."""
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1", **env_vars}
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
    shutil.copy(ROOT / "Results.md", tmp_path / "Results.md")  # the Results page's source and figures
    shutil.copytree(ROOT / "results" / "figures", tmp_path / "results" / "figures")
    with (tmp_path / "docs" / "index.md").open("a") as page:
        page.write("\nSee [a page that does not exist](no_such_page.md).\n")
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert any("no_such_page.md" in line for line in warnings(proc)), proc.stdout + proc.stderr


def text_of(fragment: str) -> str:
    """An HTML fragment's text, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def test_the_results_page_is_results_md_with_its_figures(site: Path) -> None:
    """Generated from Results.md at build time: every section and table, every figure it shows, then
    every analysis figure of docs/figures/."""
    source = (ROOT / "Results.md").read_text()
    page = (site / "results" / "index.html").read_text()
    article = page[page.index("<article"):page.index("</article>")]
    sections = re.findall(r"^## (.+)$", source, re.M)
    assert len(sections) >= 5
    for title in sections:
        assert re.search(rf"<h2 id=\"[^\"]*\">{re.escape(html.escape(title, quote=False))}", article), title
    assert article.count("<table>") == len(re.findall(r"^\|:?-", source, re.M))  # one per table of Results.md
    first_run = re.search(r"^\| [^|]*\| \S.*?(\d{8}-\d{6}-[\w-]+)", source, re.M)
    assert first_run and first_run.group(1) in article
    shown = re.findall(r"<img alt=\"[^\"]*\" src=\"([^\"]+)\"", article)
    linked = re.findall(r"\]\(results/figures/([^)]+)\)", source)
    assert linked and [f"figures/{name}" for name in linked] == shown[: len(linked)]
    for name in linked:
        assert (site / "results" / "figures" / name).read_bytes() == (ROOT / "results" / "figures" / name).read_bytes()
    analysis = sorted(p.name for p in (ROOT / "docs" / "figures").glob("*.png"))
    assert shown[len(linked):] == [f"../figures/{name}" for name in analysis] and analysis


def test_the_api_reference_is_generated_from_the_docstrings(site: Path) -> None:
    from mila_bench.config import compose
    from mila_bench.pipeline import train
    from mila_bench.records.frame import load_metrics, load_runs, select_runs

    page = (site / "reference" / "api" / "index.html").read_text()
    for function, name in [(load_runs, "mila_bench.records.frame.load_runs"), (load_metrics, "mila_bench.records.frame.load_metrics"),
                           (select_runs, "mila_bench.records.frame.select_runs"), (compose, "mila_bench.config.compose"),
                           (train, "mila_bench.pipeline.train")]:  # fmt: skip
        assert f'id="{name}"' in page, name
        first_line = function.__doc__.strip().splitlines()[0].replace("``", "")
        assert first_line in text_of(page), (name, first_line)


def test_the_404_page_links_start_at_site_url(tmp_path: Path) -> None:
    """site_url is read from SITE_URL (or Read the Docs' READTHEDOCS_CANONICAL_URL): a site served
    below a path (GitHub Pages: /mila-bench/) gets a 404 page whose links keep that path, instead
    of pointing to the server's root."""
    proc = build(ROOT / "mkdocs.yml", tmp_path / "site", SITE_URL="https://example.org/mila-bench/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    links = re.findall(r'(?:href|src)="([^"#]+)"', (tmp_path / "site" / "404.html").read_text())
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert len(local) >= 10 and all(link.startswith("/mila-bench/") for link in local), local


def demo_flags() -> dict[str, set[str] | None]:
    """demo.py's options from its --help (unwrapped): each flag and its choices (None: a free value or none)."""
    proc = subprocess.run([sys.executable, str(ROOT / "demo.py"), "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "10000"}, check=True)  # fmt: skip
    flags = {}
    for flag, choices in re.findall(r"^  (--[\w-]+)(?: \{([^}]*)\})?", proc.stdout.split("options:")[1], re.M):
        flags[flag] = set(choices.split(",")) if choices else None
    return flags


def test_getting_started_names_the_demo_flags_as_demo_py_has_them() -> None:
    """Every flag of demo.py, each `{choices}` the page shows equal to demo.py's (`--activation NAME`: all of list's)."""
    from mila_bench.config import group_options

    flags = demo_flags()
    assert flags["--activation"] == set(group_options("activation")) and len(flags["--activation"]) > 20
    text = (ROOT / "docs" / "getting-started.md").read_text()
    paragraph = text[text.index("Flags:"):].split("\n\n")[0]
    shown = dict(re.findall(r"`(--[\w-]+)(?: \{([^}]*)\}| [A-Z]+)?`", paragraph))
    assert set(shown) == set(flags) - {"--help"}, paragraph
    for flag, choices in shown.items():
        if choices:
            assert set(choices.split(",")) == flags[flag], (flag, choices)


def nav_pages() -> dict[str, str]:
    """Page file → its title in mkdocs.yml's nav."""
    found = re.findall(r"^\s*- ([^:\n]+): ([\w/-]+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    return {page: title.strip() for title, page in found}


def test_each_page_has_one_name() -> None:
    """A link naming a page (README and docs) calls it by its nav title, the start of it ("Run
    records" for "Run records, resume and statistics") or the title qualified ("CLI reference"),
    never by another name ("Reading runs" for "Runs as a DataFrame")."""
    pages = nav_pages()
    assert pages["runs.md"] == "Runs as a DataFrame" and pages["results.md"] == "Results"
    assert (ROOT / "docs" / "runs.md").read_text().startswith(f"# {pages['runs.md']}\n")
    wrong = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for name, target in re.findall(r"\[([^]`]+)\]\((?:docs/)?([\w/-]+\.md)\)", path.read_text()):
            title = pages.get(target)
            name = " ".join(name.split())
            if title and name[:1].isupper() and not (title.startswith(name) or name.startswith(title)):
                wrong.append(f"{path.name}: [{name}]({target}) is {title!r} in the nav")
    assert not wrong, wrong


SYMBOLS = {"α": "alpha", "β": "beta", "θ": "theta"}


def test_the_activations_table_gives_each_activation_the_parameters_list_shows() -> None:
    """docs/activations.md's registry table: every built-in, each with exactly the parameters and
    defaults of the registry (what `mila-bench list` prints)."""
    from mila_bench.activations.catalog import find_entry
    from mila_bench.activations.registry import BUILTINS

    text = (ROOT / "docs" / "activations.md").read_text()
    table = text[text.index("| name | function | parameters (defaults) |"):].split("\n\n")[0].splitlines()[2:]
    seen = set()
    for row in table:
        names_cell, _, params_cell = [c.strip() for c in row.strip("|").split(" | ")]
        shown = {SYMBOLS.get(k, k): float(v) for k, v in re.findall(r"(\w+|[αβθ]) (?:=|starts at) (-?[\d.]+)", params_cell)}
        for name in re.findall(r"`(\w+)`", names_cell):
            assert shown == dict(find_entry(name).defaults), (name, params_cell)
            seen.add(name)
    assert seen == set(BUILTINS) - {"custom"}, set(BUILTINS) ^ seen


def test_each_config_option_s_description_is_a_whole_sentence(site: Path) -> None:
    """The configuration reference describes an option by the first sentence of its YAML comment,
    whole (a comment's first line can stop mid-sentence: "no package file to edit:")."""
    page = (site / "reference" / "configuration" / "index.html").read_text()
    page = page[page.index('<h2 id="activation"'):]  # the groups' option tables, after the defaults list
    rows = re.findall(r"<tr>\s*<td><code>(\w+)</code>(?: \(default\))?</td>(.*?)</tr>", page, re.S)
    assert len(rows) >= 60
    for option, cells in rows:
        description = text_of(re.findall(r"<td>(.*?)</td>", cells, re.S)[-1])
        assert description == "" or description.endswith("."), (option, description)
    described = {option: text_of(re.findall(r"<td>(.*?)</td>", cells, re.S)[-1]) for option, cells in rows}
    assert described["custom"].endswith("no package file to edit.")
