"""Statistics written out by hand, for tests to check the library-backed code against."""

from __future__ import annotations


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm: the k-th smallest of m p-values times (m - k + 1), kept non-decreasing, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted
