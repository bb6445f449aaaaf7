"""Evaluate a loss over chunked data with Dask, without holding it in memory.

Run ``python examples/dask_eval.py [ROWS]`` (default 20 million rows of 10
classes: 800 MB of float32 logits, never materialised at once). The logits
are generated chunk by chunk; xploss builds a lazy Dask graph, and only the
final ``compute()`` runs it, one chunk at a time per worker.
"""

import sys

import dask.array as da
import numpy as np

import xploss

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000
classes, chunk = 10, 1_000_000

rng = da.random.default_rng(0)
logits = rng.standard_normal((rows, classes), chunks=(chunk, classes), dtype=np.float32)
labels = rng.integers(0, classes, size=rows, chunks=chunk)

loss = xploss.cross_entropy(logits, labels)  # lazy: nothing computed yet
assert isinstance(loss, da.Array)
print(f"{rows} rows in {logits.numblocks[0]} chunks; graph of {len(loss.dask)} tasks")

value = float(loss.compute())
print(f"mean cross-entropy: {value:.6f}")
# Standard-normal logits over 10 classes: the expected loss is about 2.8.
assert 2.5 < value < 3.1
