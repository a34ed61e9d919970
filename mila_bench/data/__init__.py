"""Datasets as uint8 tensors in memory: the loaders (torchvision parses), the tensor cache,
the splits the loop batches, and per-batch augmentation. Entry point: :func:`load.load_dataset`."""
