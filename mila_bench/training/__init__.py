"""Training: the one loop (``engine``: fit, evaluate, optimizer, devices) and learning-rate schedules."""
