"""Evaluate losses on a GPU with CuPy arrays.

Run ``python examples/cupy_eval.py`` on a machine with a CUDA device and CuPy.
The arrays stay on the device: xploss returns CuPy arrays, and the result
matches the NumPy evaluation of the same data.
"""

import cupy as cp
import numpy as np

import xploss

rng = np.random.default_rng(0)
logits = rng.normal(size=(1000, 10)).astype(np.float32)
logits[:, 9] = -np.inf  # a masked class
labels = rng.integers(0, 9, size=1000)

on_gpu = xploss.cross_entropy(cp.asarray(logits), cp.asarray(labels), label_smoothing=0.1)
assert isinstance(on_gpu, cp.ndarray)
on_cpu = xploss.cross_entropy(logits, labels, label_smoothing=0.1)
print("cupy:", float(on_gpu), "numpy:", float(on_cpu))
assert np.isclose(float(on_gpu), float(on_cpu), rtol=1e-5)
