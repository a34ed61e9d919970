"""mila-bench: benchmark activation functions with seeded, recorded, repeatable runs.

The package is laid out like the pipeline of one run:
``config`` → ``data`` → ``models`` (+ ``activations``) → ``engine`` → ``runs`` → Results.md.
"""

__version__ = "0.1.0"

__all__ = ["load_metrics", "load_runs"]


def __getattr__(name: str):
    """``mila_bench.load_runs`` / ``load_metrics`` for notebooks, imported on first use (pandas is not light)."""
    if name in __all__:
        from mila_bench.records import frame

        return getattr(frame, name)
    raise AttributeError(f"module 'mila_bench' has no attribute {name!r}")
