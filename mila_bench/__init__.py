"""mila-bench: benchmark activation functions with seeded, recorded, repeatable runs.

The package is laid out like the pipeline of one run:
``config`` → ``data`` → ``models`` (+ ``activations``) → ``engine`` → ``runs`` → Results.md.
"""

__version__ = "0.1.0"
