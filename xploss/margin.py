"""Margin and hinge losses: soft margin, multilabel soft margin, multi-class
margin, multilabel margin, binary hinge and squared hinge, Crammer–Singer hinge.

Names and semantics follow ``torch.nn.functional`` where torch has the loss,
optax and Keras otherwise (each docstring says whose). Margins are evaluated as
the exact sum of three numbers, ``margin + a - b``: the sum ``a - b`` is split
into its rounded value and rounding error (TwoSum), so a margin that nearly
cancels keeps full relative accuracy. ``-inf`` scores are masked classes: they
never violate a margin and contribute exactly 0, with zero gradient.

Known limitation: a single margin larger than finfo.max (scores of opposite
signs near ±finfo.max) is inf, also where the loss, an average of such
margins, would be finite.
"""

from __future__ import annotations

import math

from . import _checks
from ._reductions import mean, reduce, scaled_mean
from ._support import amax, compute_dtype, const, device, namespace, two_sum_error
from .classification import (
    _bce_terms,
    _binary_prepare,
    _class_index_terms,
    _index_prepare,
    _nan_where,
    _select,
)
from .primitives import _softplus_pair

__all__ = [
    "hinge_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "soft_margin_loss",
    "squared_hinge_loss",
]


def _margin_sum(xp, margin, a, b, keep=None, *, masked=False):
    """``margin + a - b``, rounded once. With ``masked``, -inf where ``a`` is -inf
    (a masked class, which contributes 0 whatever the other score holds);
    otherwise ``a = b = -inf`` gives NaN, like ``inf - inf``.

    ``s + e = a - b`` exactly (TwoSum); ``(s + margin) + e`` then rounds once more,
    and ``s + margin`` is exact (Sterbenz) exactly where the result cancels.
    Operands beyond finfo.max/4 are halved first (exact at that magnitude), so
    ``a - b`` never overflows; a sum beyond finfo.max becomes ±inf by
    selection, not by an overflowing operation. Elements outside ``keep``
    (discarded by the caller) are computed from zeros.
    """
    zero = const(xp, 0.0, a)
    if keep is not None:
        a, b = xp.where(keep, a, zero), xp.where(keep, b, zero)
    finite = xp.isfinite(a) & xp.isfinite(b)
    a_f, b_f = xp.where(finite, a, zero), xp.where(finite, b, zero)
    big = float(xp.finfo(a.dtype).max)
    huge = (a_f > big / 4) | (a_f < -big / 4) | (b_f > big / 4) | (b_f < -big / 4)
    scale = xp.where(huge, const(xp, 0.5, a), const(xp, 1.0, a))
    a_s, b_s = a_f * scale, -(b_f * scale)
    s = a_s + b_s
    e = two_sum_error(xp, a_s, b_s)
    # The margin joins at the operands' scale: the doubling that undoes a scale
    # of 1/2 is exact, so a margin that brings a difference beyond finfo.max
    # back into the range gives the finite sum. (Halving the margin is exact but
    # for a subnormal margin, off by at most a subnormal ULP after doubling.)
    h = (s + margin * scale) + e
    fits = (h <= big / 2) & (h >= -big / 2)  # h / scale cannot overflow
    inf, neg_inf = const(xp, math.inf, a), const(xp, -math.inf, a)
    value = xp.where(fits, xp.where(fits, h, zero) / scale, xp.where(h > 0, inf, neg_inf))
    # Non-finite operands: the plain expression is exact (±inf or NaN); finite
    # ones are zeroed there, so it cannot overflow.
    plain = (xp.where(finite, zero, a) + margin) - xp.where(finite, zero, b)
    value = xp.where(finite, value, plain)
    return xp.where(a == -math.inf, neg_inf, value) if masked else value


def _positive_part(xp, m, keep=None):
    """``max(0, m)`` (0 outside ``keep``) with NaN kept: a NaN score gives a NaN
    loss, never a silent 0. The derivative at the kink is 0."""
    take = (m > 0) | xp.isnan(m)
    if keep is not None:
        take = take & keep
    return xp.where(take, m, const(xp, 0.0, m))


def soft_margin_loss(input, target, /, *, reduction="mean"):
    r"""Two-class logistic loss, :math:`\log(1 + e^{-y x})`.

    Parameters
    ----------
    input : array
        Scores ``x``, real floating.
    target : array
        Labels ``y`` in {-1, 1}, the shape of ``input``.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss: 0-d, or the shape of ``input`` for ``'none'``.

    Notes
    -----
    Semantics of ``torch.nn.functional.soft_margin_loss``, evaluated as
    :math:`\operatorname{softplus}(-y x)`: finite for every finite input, where
    torch's ``log(1 + exp(-y x))`` overflows to ``inf`` once ``y x < -88.7`` in
    float32. Deviation from torch: a ``'mean'`` over an empty input is 0.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([-100.0, 30.0], dtype=xp.float32)
    >>> y = xp.asarray([1.0, 1.0], dtype=xp.float32)
    >>> xploss.soft_margin_loss(x, y, reduction="none")
    Array([1.000000e+02, 9.357623e-14], dtype=array_api_strict.float32)
    """
    fname = "soft_margin_loss"
    _checks.reduction(fname, reduction)
    xp, x, y = _binary_prepare(fname, input, target)
    sp_pos, _ = _softplus_pair(xp, -(y * x))
    return reduce(xp, sp_pos, reduction)


def multilabel_soft_margin_loss(input, target, /, *, weight=None, reduction="mean"):
    r"""Multi-label one-versus-all logistic loss, averaged over classes.

    .. math::

        \ell_n = \frac{1}{C} \sum_c w_c \left[ y_{nc} \log(1 + e^{-x_{nc}})
                 + (1 - y_{nc}) \log(1 + e^{x_{nc}}) \right]

    Parameters
    ----------
    input : array
        Scores, shape ``(N, C)`` or ``(C,)``.
    target : array
        Labels in {0, 1} (or soft labels in [0, 1]), the shape of ``input``.
    weight : array, optional
        Per-class weights, shape ``(C,)``.
    reduction : {'mean', 'sum', 'none'}, optional
        Over the batch; ``'none'`` gives shape ``(N,)``.

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Semantics of ``torch.nn.functional.multilabel_soft_margin_loss``. Each term
    is :func:`xploss.binary_cross_entropy_with_logits`'s: both parts are
    non-negative, so soft labels near 0 and 1 have no cancellation. A target
    outside [0, 1] makes its sample NaN (torch uses it as given).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([[40.0, -40.0]])
    >>> y = xp.asarray([[1.0, 0.0]])
    >>> xploss.multilabel_soft_margin_loss(x, y)
    Array(4.24835426e-18, dtype=array_api_strict.float64)
    """
    fname = "multilabel_soft_margin_loss"
    _checks.reduction(fname, reduction)
    xp, x, y = _binary_prepare(fname, input, target, weight)
    if x.ndim not in (1, 2):
        msg = f"{fname}: 'input' must have shape (N, C) or (C,), got {tuple(x.shape)}"
        raise ValueError(msg)
    if weight is not None and tuple(weight.shape) != (x.shape[-1],):
        msg = (f"{fname}: 'weight' must have shape ({x.shape[-1]},), one weight per class, "
               f"got {tuple(weight.shape)}")
        raise ValueError(msg)
    invalid = xp.any(_checks.probabilities(xp, fname, "target", y), axis=-1)
    terms = _bce_terms(xp, _softplus_pair(xp, x), y)
    w = None if weight is None else xp.astype(weight, x.dtype)
    if w is None:
        return reduce(xp, _nan_where(xp, invalid, mean(xp, terms, axis=-1)), reduction)
    # Weights near finfo.max may take a sample's mean beyond it: kept scaled.
    per_sample, scale, scale_min = scaled_mean(xp, terms, -1, weight=w)
    return reduce(xp, _nan_where(xp, invalid, per_sample), reduction, scale=scale,
                  scale_min=scale_min)


def _hinge_margins(fname, input, target, reduction):
    _checks.reduction(fname, reduction)
    xp, x, t = _binary_prepare(fname, input, target)
    # Keras's convention: labels in {0, 1} become {-1, 1}.
    t = xp.where(t == 0, const(xp, -1.0, t), t)
    # 1 - t·x, exact for t = ±1 up to one rounding (Sterbenz near the kink).
    m = 1.0 - t * x
    return xp, _positive_part(xp, m), reduction


def hinge_loss(input, target, /, *, reduction="mean"):
    r"""Binary hinge loss, :math:`\max(0, 1 - y x)`.

    Parameters
    ----------
    input : array
        Scores ``x``.
    target : array
        Labels ``y`` in {-1, 1}; labels in {0, 1} are accepted, 0 meaning -1
        (Keras's convention). The shape of ``input``.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Elementwise form of ``keras.losses.hinge`` (which averages over the last
    axis) and ``optax.hinge_loss``; the gradient at the kink is 0.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.hinge_loss(xp.asarray([0.3, -2.0]), xp.asarray([1.0, 0.0]), reduction="none")
    Array([0.7, 0. ], dtype=array_api_strict.float64)
    """
    xp, m, reduction = _hinge_margins("hinge_loss", input, target, reduction)
    return reduce(xp, m, reduction)


def squared_hinge_loss(input, target, /, *, reduction="mean"):
    r"""Squared binary hinge loss, :math:`\max(0, 1 - y x)^2`.

    Parameters
    ----------
    input : array
        Scores ``x``.
    target : array
        Labels ``y`` in {-1, 1} or {0, 1} (0 meaning -1), the shape of ``input``.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Elementwise form of ``keras.losses.squared_hinge``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.squared_hinge_loss(xp.asarray([0.5]), xp.asarray([-1.0]), reduction="sum")
    Array(2.25, dtype=array_api_strict.float64)
    """
    xp, m, reduction = _hinge_margins("squared_hinge_loss", input, target, reduction)
    return reduce(xp, m * m, reduction)


def _class_index_prepare(fname, input, target, reduction, axis, weight=None):
    """Class-index checks as in cross_entropy; returns ``xp``, the scores with the
    class axis last, the one-hot, the in-range mask, the target's score and weight."""
    xp, x, w = _index_prepare(fname, input, target, weight, axis, reduction)
    onehot, _, in_range = _class_index_terms(xp, fname, x, target)
    return xp, x, onehot, in_range, _select(xp, onehot, x), w


def multiclass_hinge_loss(input, target, /, *, margin=1.0, reduction="mean", axis=None):
    r"""Crammer–Singer multi-class hinge loss.

    .. math:: \ell_n = \max\left(0,\; \max_{c \ne y_n} x_{nc} + m - x_{n y_n}\right)

    Parameters
    ----------
    input : array
        Scores, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``; ``-inf`` marks
        masked classes.
    target : array
        Integer class indices, the shape of ``input`` without the class axis.
    margin : float, optional
    reduction : {'mean', 'sum', 'none'}, optional
    axis : int, optional
        The class axis; default torch's (1, or 0 for 1-d input).

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Semantics of ``optax.losses.multiclass_hinge_loss`` (there with
    ``margin = 1`` and the class axis last) [1]_. Masked classes never violate
    the margin; a row whose other classes are all masked has loss 0. A class
    index outside ``[0, C)`` gives NaN.

    References
    ----------
    .. [1] K. Crammer and Y. Singer, "On the algorithmic implementation of
       multiclass kernel-based vector machines", JMLR 2, 2001.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([[2.0, 1.5, -xp.inf]])
    >>> xploss.multiclass_hinge_loss(x, xp.asarray([0]))
    Array(0.5, dtype=array_api_strict.float64)
    """
    fname = "multiclass_hinge_loss"
    xp, x, onehot, in_range, x_target, _ = _class_index_prepare(fname, input, target,
                                                                reduction, axis)
    neg_inf = const(xp, -math.inf, x)
    if x.shape[-1] > 1:
        other = amax(xp, xp.where(onehot, neg_inf, x), axis=-1)
    else:
        other = xp.full(x_target.shape, -math.inf, dtype=x.dtype, device=device(x))
    m = _margin_sum(xp, margin, other, x_target, masked=True)
    loss = _positive_part(xp, m)
    return reduce(xp, _nan_where(xp, ~in_range, loss), reduction)


def multi_margin_loss(input, target, /, *, p=1, margin=1.0, weight=None, reduction="mean"):
    r"""Multi-class margin loss (sum over the wrong classes).

    .. math::

        \ell_n = \frac{1}{C} \sum_{c \ne y_n} w_{y_n}
                 \max(0,\; m - x_{n y_n} + x_{nc})^p

    Parameters
    ----------
    input : array
        Scores, shape ``(N, C)`` or ``(C,)``.
    target : array
        Integer class indices, shape ``(N,)`` or ``()``.
    p : {1, 2}, optional
    margin : float, optional
    weight : array, optional
        Per-class weights, shape ``(C,)``.
    reduction : {'mean', 'sum', 'none'}, optional
        ``'mean'`` is the plain mean over the batch.

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Semantics of ``torch.nn.functional.multi_margin_loss``; ``-inf`` scores are
    masked classes and contribute 0. A class index outside ``[0, C)`` gives NaN.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([[0.1, 0.2, 0.4, 0.8]])
    >>> xploss.multi_margin_loss(x, xp.asarray([3]))
    Array(0.325, dtype=array_api_strict.float64)
    """
    fname = "multi_margin_loss"
    if p not in (1, 2):
        msg = f"{fname}: 'p' must be 1 or 2, got {p!r}"
        raise ValueError(msg)
    xp, x, onehot, in_range, x_target, w = _class_index_prepare(
        fname, input, target, reduction, None, weight)
    if x.ndim > 2:
        msg = f"{fname}: 'input' must have shape (N, C) or (C,), got {tuple(input.shape)}"
        raise ValueError(msg)
    zero = const(xp, 0.0, x)
    m = _margin_sum(xp, margin, x, x_target[..., None], keep=~onehot, masked=True)
    terms = _positive_part(xp, m, ~onehot)
    if p == 2:
        terms = terms * terms
    w_target = None if w is None else xp.sum(xp.where(onehot, w, zero), axis=-1, keepdims=True)
    if w_target is None:
        return reduce(xp, _nan_where(xp, ~in_range, mean(xp, terms, axis=-1)), reduction)
    # As in multilabel_soft_margin_loss: a class weight may take a sample's
    # mean beyond finfo.max, kept scaled for the batch's reduction.
    loss, scale, scale_min = scaled_mean(xp, terms, -1, weight=w_target)
    return reduce(xp, _nan_where(xp, ~in_range, loss), reduction, scale=scale,
                  scale_min=scale_min)


def multilabel_margin_loss(input, target, /, *, reduction="mean"):
    r"""Multi-label margin loss: every label class should outscore every other by 1.

    .. math::

        \ell_n = \frac{1}{C} \sum_{j \in Y_n} \sum_{i \notin Y_n}
                 \max(0,\; 1 - (x_{nj} - x_{ni}))

    Parameters
    ----------
    input : array
        Scores, shape ``(N, C)`` or ``(C,)``.
    target : array
        Integer array of the shape of ``input``: the label classes ``Y_n`` of each
        row, in its first positions, followed by ``-1`` (torch's layout; entries
        after the first ``-1`` are ignored).
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Semantics of ``torch.nn.functional.multilabel_margin_loss``. The label set is
    found without data-dependent control flow: a one-hot over the valid
    prefix, then every (label, non-label) pair through a ``(C, C)`` mask. A
    label outside ``[0, C)`` before the first ``-1`` gives NaN for its sample
    (torch raises on the CPU and reads out of bounds on CUDA).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([[0.1, 0.2, 0.4, 0.8]])
    >>> y = xp.asarray([[3, 0, -1, 1]])
    >>> xploss.multilabel_margin_loss(x, y)
    Array(0.85, dtype=array_api_strict.float64)
    """
    fname = "multilabel_margin_loss"
    xp = namespace(fname, input=input, target=target)
    _checks.reduction(fname, reduction)
    _checks.floating(xp, fname, "input", input)
    if not xp.isdtype(target.dtype, "integral"):
        msg = f"{fname}: 'target' must hold integer class indices, got dtype {target.dtype}"
        raise TypeError(msg)
    _checks.same_shape(fname, "input", input, "target", target)
    if input.ndim not in (1, 2):
        msg = f"{fname}: 'input' must have shape (N, C) or (C,), got {tuple(input.shape)}"
        raise ValueError(msg)
    dtype = compute_dtype(xp, input.dtype)
    x = input if input.dtype == dtype else xp.astype(input, dtype)
    n_classes = x.shape[-1]
    # Positions before the first -1 hold labels.
    stopped = xp.cumulative_sum(xp.astype(target == -1, xp.int32), axis=-1, dtype=xp.int32) > 0
    # A label outside [0, C) before the first -1 makes its sample NaN.
    bad = ~stopped & ((target < -1) | (target >= n_classes))
    _checks.values(xp, fname, "target", bad,
                   f"hold class indices in [0, {n_classes}) before the first -1")
    classes = xp.arange(n_classes, dtype=target.dtype, device=device(target))
    hits = (target[..., :, None] == classes) & ~stopped[..., :, None]
    is_label = xp.any(hits, axis=-2)                      # (..., C)
    # pairs[..., j, i]: label j against non-label i.
    pair = is_label[..., :, None] & ~is_label[..., None, :]
    m = _margin_sum(xp, 1.0, x[..., None, :], x[..., :, None], keep=pair, masked=True)
    terms = _positive_part(xp, m, pair)
    loss = mean(xp, terms, axis=(-2, -1), count=n_classes)
    return reduce(xp, _nan_where(xp, xp.any(bad, axis=-1), loss), reduction)
