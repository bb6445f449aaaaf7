"""xploss: numerically stable loss functions for every array library.

Every function is written once against the Python array API standard and runs
unchanged on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays
through array-api-compat. Results come back in the input's namespace, on the
input's device.
"""

from .classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    nll_loss,
)
from .primitives import (
    langevin,
    log1mexp,
    log_cosh,
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
    softplus,
    xlog1py,
    xlogy,
)

__version__ = "0.1.0"

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "langevin",
    "log1mexp",
    "log_cosh",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "nll_loss",
    "sigmoid",
    "softmax",
    "softplus",
    "xlog1py",
    "xlogy",
]
