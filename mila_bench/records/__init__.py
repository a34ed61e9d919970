"""Run records (``results/<run-id>/``: the source of truth), their checkpoints, the Results.md view, and a
sweep's job records (``mila_bench_job.json``)."""
