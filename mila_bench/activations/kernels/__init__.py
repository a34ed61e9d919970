"""Mila's kernels by device, behind one PyTorch custom op (:mod:`.op`).

The CPU kernels and the per-run kernel state live in :mod:`mila_bench.activations.fused_mila`;
the CUDA kernels are Triton's (:mod:`.triton_mila`). :mod:`.op` registers the pair as
``torch.ops.mila_bench`` operators with their autograd, so ``torch.compile`` treats Mila as one
opaque call instead of tracing a Python ``autograd.Function``.
"""
