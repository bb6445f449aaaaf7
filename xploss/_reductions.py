"""The ``reduction`` option shared by every loss, and the sums and means behind it.

A sum of finite terms can overflow where the mean it feeds is finite (two terms
of 1e308), and terms of both signs near finfo.max can overflow or not depending
on the order a library adds them in. :func:`total` and :func:`mean` therefore
sum the terms times ``c``: 1 where every term is below ``finfo.max / 2**k``
in magnitude (with ``2**k`` at least the number of terms, so no order of
addition can overflow), else ``2**-k``, which brings every finite term there
and scales exactly. The result is divided by ``c`` last, so it overflows only
where the exact value does, and nothing overflows on the way (NumPy emits no
overflow warning for a finite result). Small terms are never scaled, so their
low bits near the subnormal range are kept.
"""

from __future__ import annotations

import math

from ._support import amax, const, mul0, reduced_axes

__all__ = ["mean", "reduce", "total"]


def _count(x, axis):
    return math.prod([x.shape[a] for a in reduced_axes(x, axis)])


def _magnitude(xp, x, axis):
    """max |x| along ``axis`` (kept), without an |x| temporary; NaN propagates."""
    return xp.maximum(amax(xp, x, axis, keepdims=True),
                      -amax(xp, x, axis, keepdims=True, smallest=True))


def _sums(xp, x, axis, weight=None):
    """``(sum of c * weight * x, c)`` with ``c`` as in the module docstring
    (``0 * inf`` taken as 0). ``c`` multiplies the weight before ``x``: a
    product ``weight * x`` that overflows on its own is then brought into range
    too. ``c`` is kept along ``axis``; None when there is nothing to scale."""
    n = _count(x, axis)
    if n < 2:
        return xp.sum(x if weight is None else mul0(xp, weight, x), axis=axis), None
    scale = 2.0 ** -math.ceil(math.log2(n))
    limit = float(xp.finfo(x.dtype).max) * scale
    one = const(xp, 1.0, x)
    bound = _magnitude(xp, x, axis)
    if weight is None:
        big = bound > limit
    else:
        # max|weight| · max|x| > limit, without overflowing the product.
        wb = _magnitude(xp, weight, axis)
        large = wb > 1.0
        big = xp.where(large, bound > limit / xp.where(large, wb, one),
                       bound * xp.where(large, one, wb) > limit)
    c = xp.where(big, const(xp, scale, x), one)
    terms = x * c if weight is None else mul0(xp, weight * c, x)
    return xp.sum(terms, axis=axis), c


def total(xp, x, axis=None, *, weight=None):
    """``sum(weight * x, axis)``, overflowing only where the exact sum does."""
    s, c = _sums(xp, x, axis, weight)
    return s if c is None else s / xp.reshape(c, s.shape)


def mean(xp, x, axis=None, *, count=None, weight=None):
    """``sum(weight * x, axis) / count`` (``count`` defaults to the number of
    terms, ``weight`` to 1), finite wherever the exact value is; an empty mean is 0."""
    count = max(_count(x, axis), 1) if count is None else count
    s, c = _sums(xp, x, axis, weight)
    if c is None:
        return s / count if count != 1 else s
    return s / (xp.reshape(c, s.shape) * count)


def reduce(xp, losses, reduction, *, weight=None, normalizer=None):
    """Reduce per-element losses: ``'none'``, ``'sum'`` or ``'mean'``.

    ``weight`` multiplies each loss here (``0 * inf`` taken as 0), so a product
    that overflows on its own does not make a finite sum or mean inf.
    ``'mean'`` divides by the number of elements, or by ``sum(normalizer)``
    when given (torch's weighted mean: the weights themselves). A mean over
    nothing (an empty batch, or every target ignored) is 0, not NaN: the sum is
    then an exact 0, and dividing it by a safe 1 keeps a NaN in the sum visible.
    """
    if reduction == "none":
        return losses if weight is None else mul0(xp, weight, losses)
    if reduction == "sum":
        return total(xp, losses, weight=weight)
    if normalizer is None:
        return mean(xp, losses, weight=weight)
    numerator, c_numerator = _sums(xp, losses, None, weight)
    denominator, c_denominator = _sums(xp, normalizer, None)
    one = const(xp, 1.0, denominator)
    ratio = numerator / xp.where(denominator == 0, one, denominator)
    if c_numerator is None:
        return ratio
    # Both sums are scaled by powers of two: their ratio is rescaled exactly.
    return ratio * (xp.reshape(c_denominator, ()) / xp.reshape(c_numerator, ()))
