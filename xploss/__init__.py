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
    kl_div,
    nll_loss,
    poly1_cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from .margin import (
    hinge_loss,
    multi_margin_loss,
    multiclass_hinge_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    soft_margin_loss,
    squared_hinge_loss,
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
    "hinge_loss",
    "kl_div",
    "langevin",
    "log1mexp",
    "log_cosh",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "poly1_cross_entropy",
    "sigmoid",
    "sigmoid_focal_loss",
    "soft_margin_loss",
    "softmax",
    "softmax_focal_loss",
    "softplus",
    "squared_hinge_loss",
    "xlog1py",
    "xlogy",
]
