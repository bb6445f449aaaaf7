"""Shared assertions of the oracle tests (imported as ``helpers``: pytest puts
this folder on sys.path for its test modules)."""

import numpy as np
from numpy.testing import assert_allclose

RTOL, ATOL = 1e-10, 1e-12  # losses and gradients against an oracle, float64


def to_numpy(a):
    if hasattr(a, "detach"):  # a torch tensor
        return a.detach().cpu().numpy()
    return np.asarray(a)


def assert_close(ours, theirs, lib=None, *, rtol=RTOL, atol=ATOL):
    """``ours`` (an array of ``lib`` when given) equals the float64, finite ``theirs``."""
    if lib == "torch":
        assert hasattr(ours, "detach"), type(ours)
    elif lib == "numpy":
        assert isinstance(ours, (np.ndarray, np.generic)), type(ours)
    ours, theirs = to_numpy(ours), to_numpy(theirs)
    assert ours.shape == theirs.shape
    assert ours.dtype == np.float64
    assert theirs.dtype == np.float64
    assert np.all(np.isfinite(theirs))
    assert_allclose(ours, theirs, rtol=rtol, atol=atol)
