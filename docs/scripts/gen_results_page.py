"""Write the Results page at build time (mkdocs-gen-files): ``Results.md`` of the checkout as it
is, the figures it shows (``results/figures/``, drawn by ``mila-bench report``), then the analysis
figures of ``docs/figures/`` (``make figures``). Nothing is copied by hand: the page is a view of
Results.md, as Results.md is a view of the run records.
"""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files

PAGE = "results.md"
ROOT = Path(mkdocs_gen_files.config.config_file_path).resolve().parent  # where mkdocs.yml and Results.md live
FIGURE_LINK = re.compile(r"\]\((results/figures/[^)\s]+)\)")


def figures_section(docs: Path) -> list[str]:
    """The analysis figures under docs/figures/, each as an image, found by listing the folder."""
    lines = ["", "## Analysis figures", "",
             "Drawn by `make figures` (`mila-bench plot ...`); what each shows and the numbers behind",
             "it are in [Analysis figures](figures.md).", ""]  # fmt: skip
    for png in sorted((docs / "figures").glob("*.png")):
        lines += [f"![{png.stem}](figures/{png.name})", ""]
    return lines


def page(root: Path, docs: Path) -> tuple[str, list[str]]:
    """The page's text and the figure paths (relative to root) it links."""
    text = (root / "Results.md").read_text()
    return text.rstrip() + "\n" + "\n".join(figures_section(docs)), FIGURE_LINK.findall(text)


text, figures = page(ROOT, Path(mkdocs_gen_files.config.docs_dir))
with mkdocs_gen_files.open(PAGE, "w") as out:
    out.write(text)
for figure in figures:  # a missing one is left out, so the strict build names the broken image link
    if (ROOT / figure).is_file():
        with mkdocs_gen_files.open(figure, "wb") as out:
            out.write((ROOT / figure).read_bytes())
