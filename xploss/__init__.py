"""xploss: numerically stable loss functions for every array library.

Every function is written once against the Python array API standard and runs
unchanged on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays
through array-api-compat. Results come back in the input's namespace, on the
input's device.
"""

from ._checks import validation
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
from .embedding import (
    cosine_embedding_loss,
    cosine_similarity,
    hinge_embedding_loss,
    margin_ranking_loss,
    ntxent_loss,
    pairwise_distance,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
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
from .regression import (
    gaussian_nll_loss,
    huber_loss,
    l1_loss,
    log_cosh_loss,
    mape_loss,
    mse_loss,
    msle_loss,
    poisson_nll_loss,
    quantile_loss,
    smooth_l1_loss,
)
from .segmentation import dice_loss, tversky_loss
from .sequence import ctc_loss

__version__ = "0.1.0"

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "ctc_loss",
    "dice_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "hinge_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "langevin",
    "log1mexp",
    "log_cosh",
    "log_cosh_loss",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "mape_loss",
    "margin_ranking_loss",
    "mse_loss",
    "msle_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "ntxent_loss",
    "pairwise_distance",
    "poisson_nll_loss",
    "poly1_cross_entropy",
    "quantile_loss",
    "sigmoid",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "softmax",
    "softmax_focal_loss",
    "softplus",
    "squared_hinge_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "tversky_loss",
    "validation",
    "xlog1py",
    "xlogy",
]
