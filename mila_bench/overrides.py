"""Reading a Hydra override ``[+|~|++]KEY[@PKG]=VALUE`` apart, the one way every module does (no Hydra import)."""

from __future__ import annotations


def split_override(override: str) -> tuple[str, str | None]:
    """(KEY, VALUE) of an override, its ``+``/``~`` prefix dropped; VALUE is None without ``=``."""
    key, sep, value = override.lstrip("+~").partition("=")
    return key, (value if sep else None)


def override_key(override: str) -> str:
    """The key an override sets (``+activation.beta=1`` → ``activation.beta``)."""
    return split_override(override)[0]
