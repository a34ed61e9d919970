"""Run records (``results/<run-id>/``: the source of truth), their checkpoints, and the Results.md view."""
