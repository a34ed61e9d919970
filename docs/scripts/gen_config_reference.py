"""Write docs/reference/configuration.md at build time (mkdocs-gen-files) from configs/ itself.

Every group under configs/ (found by walking the folder, so a new group appears without an edit
here), each option with the first sentence of its comment and its YAML verbatim (comments
included), the defaults list of configs/config.yaml, the composed default config (what
``mila-bench train --show-config`` prints), and the options Hydra and its plugins add to a group.
Nothing here is committed as a page: the page is a view of the files.
"""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files
from omegaconf import OmegaConf

from mila_bench.config import GROUPS, compose, config_dir

PAGE = "reference/configuration.md"


#: The end of a sentence: a full stop before a space or the end (not the one of "e.g." or "i.e.").
SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.(?=\s|$)")


def summary(path: Path) -> str:
    """A YAML file's description: the first sentence of its leading comment, however many lines it
    spans (a first line alone can stop mid-sentence), without ``# @package`` lines or indented examples."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("# @package"):
            continue
        body = text[1:] if text.startswith("#") else ""
        if not body.strip() or body.startswith("   "):  # a blank line, a key, an empty comment, an example
            if words or (text and not text.startswith("#")):
                break
            continue
        words.append(body.strip())
        if SENTENCE_END.search(body):
            break
    joined = " ".join(words)
    end = SENTENCE_END.search(joined)
    return (joined[: end.end()] if end else joined).replace("|", "\\|")


def groups(root: Path) -> list[str]:
    """Every folder under ``root`` holding YAML files, as a group name (``hydra/launcher``), in a stable order."""
    found = {p.parent.relative_to(root).as_posix() for p in root.rglob("*.yaml") if p.parent != root}
    known = [g for g in GROUPS if g in found]
    return known + sorted(found - set(known))


def hydra_options(group: str) -> list[str]:
    """The options Hydra sees for ``group``: the YAML files plus those of Hydra's plugins and the config store."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from mila_bench.config import store_configs

    store_configs()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return list(GlobalHydra.instance().config_loader().get_group_options(group))


def default_choices(root: Path) -> dict[str, str]:
    """Group → default option, from the defaults list of config.yaml."""
    chosen: dict[str, str] = {}
    for entry in OmegaConf.to_container(OmegaConf.load(root / "config.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            for group, option in entry.items():
                chosen[str(group)] = "null" if option is None else str(option)
    return chosen


def parameters(option: str) -> str:
    """An activation's parameters with their defaults, from the registry (the one place they are written)."""
    from mila_bench.activations.catalog import find_entry
    from mila_bench.errors import UsageError

    try:
        entry = find_entry(option)
    except UsageError:
        return ""
    return ", ".join(f"{k}={v:g}" for k, v in entry.defaults.items()) or "—"


def indented(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())


def group_section(root: Path, group: str, default: str | None) -> list[str]:
    """One group: a table of its options, then each option's YAML in a collapsed block."""
    files = sorted((root / group).glob("*.yaml"))
    lines = [f"## `{group}`", ""]
    if default is not None:
        lines += [f"Default: `{group}={default}`" if default != "null" else "Default: none (`null`): choose one with "
                  f"`{group}=NAME`.", ""]  # fmt: skip
    activation = group == "activation"
    header = "| option | parameters (defaults) | description |" if activation else "| option | description |"
    lines += [header, "| --- | --- | --- |" if activation else "| --- | --- |"]
    for path in files:
        mark = " (default)" if path.stem == default else ""
        extra = f" {parameters(path.stem)} |" if activation else ""
        lines.append(f"| `{path.stem}`{mark} |{extra} {summary(path)} |")
    lines.append("")
    others = sorted(set(hydra_options(group)) - {p.stem for p in files}) if group.startswith("hydra/") else []
    if others:
        lines += ["Also available, from Hydra and its plugins (no file here): "
                  + ", ".join(f"`{o}`" for o in others) + ".", ""]  # fmt: skip
    for path in files:
        lines += [f'??? note "`configs/{group}/{path.name}`"', "", "    ```yaml", indented(path.read_text().rstrip()),
                  "    ```", ""]  # fmt: skip
    return lines


def page(root: Path) -> str:
    defaults = default_choices(root)
    composed = OmegaConf.to_yaml(compose([])).rstrip()
    lines = [
        "# Configuration reference",
        "",
        "Generated from `configs/` when the site is built: every group, every option with its YAML and",
        "comments, the defaults list. Override any value on the command line with Hydra's syntax",
        "(`KEY=VALUE`, `group=option`, `+new.key=VALUE`); `mila-bench list` prints the choices of each",
        "group and `mila-bench train --show-config` the composed config.",
        "",
        "## Defaults list",
        "",
        "`configs/config.yaml` composes one option of each group, then its own keys (`_self_`):",
        "",
        "| group | default |",
        "| --- | --- |",
        *[f"| `{g}` | `{o}` |" for g, o in defaults.items()],
        "",
        '??? note "`configs/config.yaml`"',
        "",
        "    ```yaml",
        indented((root / "config.yaml").read_text().rstrip()),
        "    ```",
        "",
        "## The composed default config",
        "",
        "What `mila-bench train` runs with no overrides (`mila-bench train --show-config`):",
        "",
        "```yaml",
        composed,
        "```",
        "",
    ]
    for group in groups(root):
        lines += group_section(root, group, defaults.get(group))
    return "\n".join(lines) + "\n"


with mkdocs_gen_files.open(PAGE, "w") as out:
    out.write(page(config_dir()))
