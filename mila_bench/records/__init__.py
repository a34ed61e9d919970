"""Run records (``results/<run-id>/``: the source of truth), their checkpoints, the Results.md view, and a
sweep's job files (``mila_bench_job.json``)."""
