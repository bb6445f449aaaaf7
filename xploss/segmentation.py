"""Segmentation: the Dice and Tversky overlap losses, on probabilities.

Both are written as a ratio of non-negative sums, ``1 - overlap`` taken in
closed form (the mismatch over the total), so a near-perfect prediction keeps
its small loss instead of cancelling in ``1 - ratio``, and a perfect
prediction, an empty one included, gives exactly 0.
"""

from __future__ import annotations

import math

from . import _checks
from ._reductions import reduce
from ._support import compute_dtype, const, namespace, result_dtype

__all__ = ["dice_loss", "tversky_loss"]


def _prepare(fname, input, target, smooth, axis, reduction):
    """(xp, p, t, sum_axes, invalid): the probabilities in compute dtype, the
    axes to sum, and where an element lies outside [0, 1]."""
    _checks.reduction(fname, reduction)
    if not smooth >= 0:
        msg = f"{fname}: 'smooth' must be >= 0, got {smooth!r}"
        raise ValueError(msg)
    xp = namespace(fname, input=input, target=target)
    _checks.floating(xp, fname, "input", input)
    _checks.floating(xp, fname, "target", target)
    _checks.same_shape(fname, "input", input, "target", target)
    ndim = input.ndim
    axes = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    if any(not -ndim <= a < ndim for a in axes) or len({a % ndim for a in axes}) != len(axes):
        msg = f"{fname}: 'axis' {axis!r} is not a set of distinct axes of a {ndim}-d input"
        raise ValueError(msg)
    dtype = compute_dtype(xp, result_dtype(xp, input, target))
    p = input if input.dtype == dtype else xp.astype(input, dtype)
    t = target if target.dtype == dtype else xp.astype(target, dtype)
    bad_p, bad_t = (p < 0.0) | (p > 1.0), (t < 0.0) | (t > 1.0)
    _checks.values(xp, fname, "input", bad_p, "lie in [0, 1]")
    _checks.values(xp, fname, "target", bad_t, "lie in [0, 1]")
    return xp, p, t, tuple(a % ndim for a in axes), bad_p | bad_t


def _mismatch(p, t):
    """The false-positive and false-negative masses p(1 - t) and t(1 - p): 1 - p
    and 1 - t are exact on [1/2, 1] and within half an ULP below, and both
    masses are non-negative, so no sum of them cancels."""
    return p * (1.0 - t), t * (1.0 - p)


def _ratio_loss(xp, num, den, smooth, invalid, axes, reduction):
    """sum(num) / (sum(den) + smooth) over ``axes``: 0 for 0/0 (an empty,
    perfect prediction with smooth = 0), NaN where any element was outside [0, 1]."""
    if axes:
        num, den = xp.sum(num, axis=axes), xp.sum(den, axis=axes)
        invalid = xp.any(invalid, axis=axes)
    den = den + smooth
    empty = den == 0
    loss = num / xp.where(empty, const(xp, 1.0, den), den)
    loss = xp.where(empty, const(xp, 0.0, loss), loss)
    return reduce(xp, xp.where(invalid, const(xp, math.nan, loss), loss), reduction)


def dice_loss(input, target, /, *, smooth=1.0, axis=None, reduction="mean"):
    r"""Dice loss, :math:`1 - \frac{2\sum p t + s}{\sum p + \sum t + s}`.

    Parameters
    ----------
    input : array
        Predicted probabilities ``p`` in [0, 1].
    target : array
        Target probabilities ``t`` in [0, 1] (masks), the shape of ``input``.
    smooth : float, optional
        :math:`s \ge 0`, added to the overlap and to the total.
    axis : int, tuple of int or None, optional
        The axes summed into one Dice score (None: all, one score). The loss
        has the remaining axes, reduced by ``reduction``.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss (float32 for 16-bit inputs).

    Notes
    -----
    Keras's ``keras.losses.dice`` semantics with a smoothing term (Keras
    adds 1e-7 to the denominator instead; ``smooth=0`` here is its formula
    without that constant). Evaluated as
    :math:`\sum [p(1-t) + t(1-p)] / (\sum p + \sum t + s)`, which equals it
    and has no cancellation: a perfect prediction gives exactly 0, an empty
    one (every ``p`` and ``t`` 0) included, also for ``smooth=0`` (0/0 is
    taken as the perfect score; Keras gives 1 there). An element outside
    [0, 1] makes its score NaN.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> t = xp.asarray([[1.0, 0.0], [0.0, 0.0]])
    >>> xploss.dice_loss(t, t, smooth=0.0, axis=1, reduction="none")
    Array([0., 0.], dtype=array_api_strict.float64)
    """
    xp, p, t, axes, invalid = _prepare("dice_loss", input, target, smooth, axis, reduction)
    fp, fn = _mismatch(p, t)
    return _ratio_loss(xp, fp + fn, p + t, smooth, invalid, axes, reduction)


def tversky_loss(input, target, /, *, alpha=0.5, beta=0.5, smooth=1.0, axis=None,
                 reduction="mean"):
    r"""Tversky loss, :math:`1 - \frac{TP + s}{TP + \alpha\,FP + \beta\,FN + s}`.

    With :math:`TP = \sum p t`, :math:`FP = \sum p (1 - t)` and
    :math:`FN = \sum (1 - p) t` (Salehi et al., "Tversky loss function for
    image segmentation using 3D fully convolutional deep networks", 2017).

    Parameters
    ----------
    input : array
        Predicted probabilities ``p`` in [0, 1].
    target : array
        Target probabilities ``t`` in [0, 1], the shape of ``input``.
    alpha, beta : float, optional
        Weights of the false positives and the false negatives, >= 0.
    smooth : float, optional
        :math:`s \ge 0`.
    axis : int, tuple of int or None, optional
        The axes summed into one score (None: all).
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss (float32 for 16-bit inputs).

    Notes
    -----
    Evaluated as :math:`(\alpha\,FP + \beta\,FN) / (TP + \alpha\,FP + \beta\,FN + s)`,
    a ratio of non-negative sums; a perfect prediction gives exactly 0, an
    empty one included (0/0 is taken as the perfect score). ``alpha``
    weights the false positives as in the paper and in Keras's documentation;
    ``keras.losses.tversky`` applies ``alpha`` to the false negatives in its
    code, so its ``(alpha, beta)`` is this function's ``(beta, alpha)``. Keras
    adds 1e-7 to the denominator and has no ``smooth``. With
    ``alpha = beta = 1/2`` this is the Dice loss with smoothing ``2s``. An
    element outside [0, 1] makes its score NaN.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> p, t = xp.asarray([0.9, 0.2, 0.0]), xp.asarray([1.0, 0.0, 0.0])
    >>> xploss.tversky_loss(p, t, alpha=0.3, beta=0.7, smooth=0.0)  # 0.13 / 1.03
    Array(0.12621359, dtype=array_api_strict.float64)
    """
    fname = "tversky_loss"
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not value >= 0:
            msg = f"{fname}: {name!r} must be >= 0, got {value!r}"
            raise ValueError(msg)
    xp, p, t, axes, invalid = _prepare(fname, input, target, smooth, axis, reduction)
    fp, fn = _mismatch(p, t)
    mismatch = alpha * fp + beta * fn
    return _ratio_loss(xp, mismatch, t * p + mismatch, smooth, invalid, axes, reduction)
