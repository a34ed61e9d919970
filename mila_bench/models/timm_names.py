"""timm's model names without importing timm (and with it torch), so a misspelt ``model.arch``
is answered at once with the closest names.

The names are ``timm.list_models()`` written to ``timm_names.txt`` (first line: the timm version
they come from). ``python -m mila_bench.models.timm_names`` rewrites the file after a timm
upgrade; ``tests/test_timm_names.py`` fails while it differs from the installed timm's list. When
the installed timm is another version than the file's, or timm is already imported (a caller may
have registered models of its own), timm itself is asked.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

NAMES_FILE = Path(__file__).with_name("timm_names.txt")
HEADER = "# timm "


def installed_version() -> str | None:
    """The installed timm's version, read from its metadata (timm is not imported)."""
    try:
        return version("timm")
    except PackageNotFoundError:
        return None


def listed() -> tuple[str, list[str]]:
    """The timm version the file was written from, and its names."""
    first, *names = NAMES_FILE.read_text().splitlines()
    return first.removeprefix(HEADER), names


def names() -> list[str]:
    """Every model name the installed timm knows: the file's when it was written from this version
    and timm is not imported yet; once it is, its registry (which may hold models registered since)."""
    written_from, known = listed()
    if written_from == installed_version() and "timm" not in sys.modules:
        return known
    import timm

    return timm.list_models()


def write() -> Path:
    """Rewrite the file from the installed timm."""
    import timm

    NAMES_FILE.write_text("\n".join([HEADER + timm.__version__, *timm.list_models()]) + "\n")
    return NAMES_FILE


if __name__ == "__main__":
    print(f"wrote {write()}")
