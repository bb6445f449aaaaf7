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


def _sums(xp, x, axis, weight=None, weight_max=None):
    """``(s, c, g)`` with ``sum(weight * x) = s * g / c`` (``0 * inf`` taken as
    0): ``s`` sums ``c * weight * x``, with ``c`` as in the module docstring.
    Where ``c`` applies and a weight exceeds 1, the weights are also divided by
    their largest magnitude ``g``, so ``c * weight * x`` stays within
    ``finfo.max / 2**k`` however large the weights are (``g`` is 1 elsewhere:
    the products of moderate weights are not rounded twice). ``c`` and ``g``
    are kept along ``axis``, None when there is nothing to scale. Undo the
    scaling as ``(s / c) * g``: ``|s / c|`` is the exact value over ``g >= 1``.

    ``weight_max`` (a power of two) says that the weights are powers of two in
    [1, weight_max]: ``c`` then also covers ``weight_max``, with no pass over
    the weights (their products are exact)."""
    n = _count(x, axis)
    if n == 0 or (n == 1 and weight is None):
        return xp.sum(x if weight is None else mul0(xp, weight, x), axis=axis), None, None
    scale = 2.0 ** -math.ceil(math.log2(n))
    limit = float(xp.finfo(x.dtype).max) * scale
    one = const(xp, 1.0, x)
    bound = _magnitude(xp, x, axis)
    if weight is None:
        c = xp.where(bound > limit, const(xp, scale, x), one)
        return xp.sum(x * c, axis=axis), c, None
    if weight_max is not None and scale / weight_max >= float(xp.finfo(x.dtype).smallest_normal):
        scale, limit = scale / weight_max, limit / weight_max
        c = xp.where(bound > limit, const(xp, scale, x), one)
        return xp.sum((weight * c) * x, axis=axis), c, None
    # max|weight| · max|x| > limit, without overflowing the product.
    wb = _magnitude(xp, weight, axis)
    large = wb > 1.0
    # (An infinite loss under zero weights only is not big: 0·inf = 0.)
    big = xp.where(large, bound > limit / xp.where(large, wb, one),
                   mul0(xp, xp.where(large, one, wb), bound) > limit)
    c = xp.where(big, const(xp, scale, x), one)
    g = xp.where(big & large, wb, one)
    # Over g/4, not g: a compiler may divide by g as a product with 1/g, which
    # is subnormal (flushed to 0) for g near finfo.max; 4/g is normal.
    w = (weight / (g * 0.25)) * (c * 0.25)
    return xp.sum(mul0(xp, w, x), axis=axis), c, g


def _unscale(xp, s, c, g, count=1):
    """``(s / (c * count)) * g``, the exact sum (over ``count``) of :func:`_sums`."""
    if c is None:
        return s / count if count != 1 else s
    c = xp.reshape(c, s.shape)
    out = s / (c * count) if count != 1 else s / c
    return out if g is None else out * xp.reshape(g, s.shape)


def total(xp, x, axis=None, *, weight=None):
    """``sum(weight * x, axis)``, overflowing only where the exact sum does."""
    return _unscale(xp, *_sums(xp, x, axis, weight))


def mean(xp, x, axis=None, *, count=None, weight=None):
    """``sum(weight * x, axis) / count`` (``count`` defaults to the number of
    terms, ``weight`` to 1), finite wherever the exact value is; an empty mean is 0."""
    count = max(_count(x, axis), 1) if count is None else count
    return _unscale(xp, *_sums(xp, x, axis, weight), count=count)


def reduce(xp, losses, reduction, *, weight=None, normalizer=None, scale=None,
           scale_min=None):
    """Reduce per-element losses: ``'none'``, ``'sum'`` or ``'mean'``.

    ``weight`` multiplies each loss here (``0 * inf`` taken as 0), so a product
    that overflows on its own does not make a finite sum or mean inf.
    ``'mean'`` divides by the number of elements, or by ``sum(normalizer)``
    when given (torch's weighted mean: the weights themselves). A mean over
    nothing (an empty batch, or every target ignored) is 0, not NaN: the sum is
    then an exact 0, and dividing it by a safe 1 keeps a NaN in the sum visible.
    ``scale`` (powers of two in [scale_min, 1], per loss) marks losses
    computed times ``scale`` because the loss itself may overflow: the result
    is that of ``losses / scale``, reduced without overflowing on the way.
    With ``weight`` too, the weights are ``weight / scale``: that product
    overflows only where ``weight`` exceeds finfo.max·scale_min, and a scaled
    loss is at least finfo.max/4·scale, so the weighted loss is then beyond
    the range anyway (for weights of one sign).
    """
    if scale is not None:
        # Pre-scaled terms: the loss is losses / scale, an exact weight 1/scale.
        inverse = const(xp, 1.0, scale) / scale
        if reduction == "none":
            return inverse * (losses if weight is None else mul0(xp, weight, losses))
        count = max(_count(losses, None), 1) if reduction == "mean" else 1
        if weight is None:
            return _unscale(xp, *_sums(xp, losses, None, inverse, weight_max=1.0 / scale_min),
                            count=count)
        return _unscale(xp, *_sums(xp, losses, None, weight * inverse), count=count)
    if reduction == "none":
        return losses if weight is None else mul0(xp, weight, losses)
    if reduction == "sum":
        return total(xp, losses, weight=weight)
    if normalizer is None:
        return mean(xp, losses, weight=weight)
    numerator, c_numerator, g = _sums(xp, losses, None, weight)
    denominator, c_denominator, _ = _sums(xp, normalizer, None)
    one = const(xp, 1.0, denominator)
    ratio = numerator / xp.where(denominator == 0, one, denominator)
    # The sums are scaled by powers of two: their ratio is rescaled exactly
    # (|ratio * c_d / c_n| is the exact value over g >= 1).
    c_d = one if c_denominator is None else xp.reshape(c_denominator, ())
    c_n = one if c_numerator is None else xp.reshape(c_numerator, ())
    ratio = ratio * (c_d / c_n)
    return ratio if g is None else ratio * xp.reshape(g, ())
