"""Running many runs: ``mila-bench sweep`` (Hydra's multirun over the same configs as ``train``),
``suite`` (a suite's tasks × activations × seeds, one sweep per task), ``reproduce`` (a published
table's rows × seeds) and the SLURM helpers they share. Each run is still one ordinary
:func:`mila_bench.pipeline.train`, recorded as ``mila-bench train`` records it; ``report`` reads
those records (and the sweep job files in :mod:`mila_bench.records.jobs`) without importing any
module of this package. Importing this package imports nothing: it stays cheap and torch-free.
"""
