"""Experiment trackers (MLflow, TensorBoard, W&B) as views of the run record, live and by ``export``."""
