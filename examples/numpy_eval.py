"""Evaluate a classifier's predictions with NumPy arrays.

Run ``python examples/numpy_eval.py``. xploss takes the NumPy arrays as they
are and returns NumPy arrays: no framework is imported.
"""

import numpy as np

import xploss

rng = np.random.default_rng(0)

# Logits of 6 examples over 4 classes; the last class is masked (-inf) in
# every row, and row 0 is a confident, correct prediction.
logits = rng.normal(size=(6, 4))
logits[:, 3] = -np.inf
logits[0] = [30.0, 0.0, 0.0, -np.inf]
labels = np.array([0, 1, 2, 0, 1, -100])  # -100: ignored (a padding row)

per_example = xploss.cross_entropy(logits, labels, reduction="none")
print("per example:", per_example)
# The confident row keeps its loss, 2·e^-30 (a naive log-sum-exp gives 0), and
# the ignored row is exactly 0 whatever its logits hold.
assert np.isclose(per_example[0], 2 * np.exp(-30.0), rtol=1e-15)
assert per_example[5] == 0.0

# The mean is over the 5 targets that are not ignored.
mean = xploss.cross_entropy(logits, labels)
assert np.isclose(mean, per_example[:5].mean(), rtol=1e-15)
print("mean:", mean)

# Label smoothing spreads over the 3 classes that are not masked: the loss
# stays finite (spreading onto the -inf class would make it inf).
smoothed = xploss.cross_entropy(logits, labels, label_smoothing=0.1)
assert np.isfinite(smoothed)
print("mean with label smoothing 0.1:", smoothed)

# Binary labels from logits, with soft targets: a confident logit of 40 and
# target 1 gives e^-40, not 0.
x = np.array([40.0, -3.0, 0.5])
t = np.array([1.0, 0.2, 0.7])
print("BCE with logits:", xploss.binary_cross_entropy_with_logits(x, t, reduction="none"))
