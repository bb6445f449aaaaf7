"""Shared assertions of the oracle tests (imported as ``helpers``: pytest puts
this folder on sys.path for its test modules)."""

import numpy as np
from numpy.testing import assert_allclose

RTOL, ATOL = 1e-10, 1e-12  # losses and gradients against an oracle, float64


def naive_softplus(x):
    """The textbook log(1 + e^x), which overflows and underflows: a planted bug."""
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    return xp.log(1.0 + xp.exp(x))


def value_targets(targets):
    """The targets the tests build their inputs on: arrays that hold values, in
    float64 too, under the libraries' ordinary settings. (The conformance tests
    run every target, torch's meta device, JAX with x64 off and
    array-api-strict's devices without 64-bit types included.)"""
    return [t for t in targets
            if not t.abstract and t.setting is None and "float64" in t.backend.dtypes(t)]


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


def to_lib(a, lib):
    """A NumPy array as an array of ``lib`` ("numpy" or "torch"; a copy for torch)."""
    if lib == "numpy":
        return a
    import torch

    return torch.from_numpy(np.array(a, copy=True))


def opt(a, lib):
    """``to_lib`` for optional arguments (``None`` stays ``None``)."""
    return None if a is None else to_lib(a, lib)


def as_torch(a, grad=False):
    """A NumPy array as a fresh torch tensor (``None`` stays ``None``)."""
    if a is None:
        return None
    import torch

    return torch.tensor(np.asarray(a), requires_grad=grad)


def check_against_torch(ours_fn, torch_fn, arrays, lib, grad_args=(0, 1)):
    """``ours_fn`` on ``lib`` arrays equals ``torch_fn`` on torch tensors, and for
    torch inputs so do the gradients of the summed loss at ``grad_args``."""
    assert_close(ours_fn(*[to_lib(a, lib) for a in arrays]),
                 torch_fn(*[as_torch(a) for a in arrays]), lib)
    if lib != "torch":
        return
    mine = [as_torch(a, i in grad_args) for i, a in enumerate(arrays)]
    theirs = [as_torch(a, i in grad_args) for i, a in enumerate(arrays)]
    ours_fn(*mine).sum().backward()
    torch_fn(*theirs).sum().backward()
    for i in grad_args:
        assert_close(mine[i].grad, theirs[i].grad)
