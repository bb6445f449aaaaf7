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

__all__ = ["mean", "reduce", "reduce_squares", "scaled_mean", "scaled_total", "total"]


def _count(x, axis):
    return math.prod([x.shape[a] for a in reduced_axes(x, axis)])


def _kept_shape(x, axis):
    """The shape of a reduction of ``x`` along ``axis``."""
    axes = reduced_axes(x, axis)
    return tuple([d for i, d in enumerate(x.shape) if i not in axes])


def _magnitude(xp, x, axis):
    """max |x| along ``axis`` (kept), without an |x| temporary; NaN propagates."""
    return xp.maximum(amax(xp, x, axis, keepdims=True),
                      -amax(xp, x, axis, keepdims=True, smallest=True))


def _sums(xp, x, axis, weight=None, weight_max=None):
    """``(s, c, g)`` with ``sum(weight * x) = (s / c) * g`` (``0 * inf`` taken
    as 0), ``c`` and ``g`` powers of two kept along ``axis``, or None when there
    is nothing to scale. Unweighted, ``s`` sums ``c * x`` with ``c`` as in the
    module docstring (``g`` is None).

    ``weight_max`` (a power of two) says that the weights are powers of two in
    [1, weight_max]: ``c`` then also covers ``weight_max``, with no pass over
    the weights (their products are exact). Other weights go to
    :func:`_weighted_sums`."""
    n = _count(x, axis)
    if n == 0 or (n == 1 and weight is None):
        return xp.sum(x if weight is None else mul0(xp, weight, x), axis=axis), None, None
    scale = 2.0 ** -math.ceil(math.log2(n))
    limit = float(xp.finfo(x.dtype).max) * scale
    one = const(xp, 1.0, x)
    if weight is None:
        c = xp.where(_magnitude(xp, x, axis) > limit, const(xp, scale, x), one)
        return xp.sum(x * c, axis=axis), c, None
    if weight_max is not None and scale / weight_max >= float(xp.finfo(x.dtype).smallest_normal):
        scale, limit = scale / weight_max, limit / weight_max
        c = xp.where(_magnitude(xp, x, axis) > limit, const(xp, scale, x), one)
        return xp.sum((weight * c) * x, axis=axis), c, None
    return _weighted_sums(xp, x, axis, weight, n)


def _split(xp, x, n):
    """``(a, b)`` of :func:`_weighted_sums` for ``n`` terms of ``x``'s dtype:
    ``a + b = K = k + emax + 1``, ``2**k >= n``, so that ``n`` products of
    magnitude up to finfo.max² sum to a finite value times ``2**-K``."""
    big_k = math.ceil(math.log2(n)) + math.ceil(math.log2(float(xp.finfo(x.dtype).max))) + 1
    return big_k // 2, big_k - big_k // 2


def _weighted_sums(xp, x, axis, weight, n):
    """:func:`_sums` for arbitrary weights: the scale follows the largest
    product, not the largest weight times the largest term (a weight near
    finfo.max on a zero term beside a tiny weight made every product vanish).

    A product ``w·x`` beyond ``finfo.max / 2**k`` (``2**k >= n``) is big. With
    none, the products are summed as they are, each rounded once. With one,
    each is summed as ``(w·2**-a)·(x·2**-b)``, ``a + b = K`` large enough that
    ``n`` of them sum to a finite value however large ``w`` and ``x`` are:
    the factors of a finite big product exceed ``2**-k``, so they scale
    exactly; a smaller product may lose its subnormal part, below
    ``2**(K - emin)`` in the units of the result, which a big term outweighs
    by ``2**(emax - 2k)`` or more. Infinite terms are summed apart, as
    w·inf (a scaled weight could underflow to 0 beside them); an
    infinite weight on a term below ``2**(b + emin)`` (scaled to 0) gives NaN
    where a big product is present. ``s·2**K`` is returned as ``c = 2**-b``,
    ``g = 2**a``.
    """
    info = xp.finfo(x.dtype)
    limit = float(info.max) * 2.0 ** -math.ceil(math.log2(n))
    a, b = _split(xp, x, n)
    big_k = a + b
    # An infinite term under a zero weight is 0 (mul0's convention).
    x = xp.where((weight == 0) & xp.isinf(x), const(xp, 0.0, x), x)
    top = float(info.max)
    x_finite = xp.clip(x, -top, top)
    # The infinite terms apart, signed by their weights (finite x give 0).
    infinite = xp.sum(xp.clip(weight, -top, top) * (x - x_finite), axis=axis, keepdims=True)
    largest = amax(xp, xp.abs((weight * 2.0 ** -a) * (x_finite * 2.0 ** -b)), axis,
                   keepdims=True)
    # (A NaN counts as big: nothing may overflow beside it.)
    big = ~(largest <= limit * 2.0 ** -big_k)
    one = const(xp, 1.0, x)
    c = xp.where(big, const(xp, 2.0 ** -b, x), one)
    s = xp.sum((weight * xp.where(big, const(xp, 2.0 ** -a, x), one)) * (x_finite * c),
               axis=axis, keepdims=True) + infinite
    g = xp.where(big, const(xp, 2.0 ** a, x), one)
    return xp.reshape(s, _kept_shape(x, axis)), c, g


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


def scaled_total(xp, x, axis):
    """``sum(x, axis)`` as ``(s, scale, scale_min)``: ``s`` the sum times
    ``scale``, a power of two per result in ``[scale_min, 1]`` (1 unless the
    terms are large, see the module docstring), or ``scale`` None where
    nothing is scaled. A per-sample sum that may exceed finfo.max (a row of
    class terms), for :func:`reduce` (``scale=``, ``scale_min=``) to reduce
    without overflowing where the batch's mean is finite."""
    s, c, _ = _sums(xp, x, axis)
    if c is None:
        return s, None, None
    return s, xp.reshape(c, s.shape), 2.0 ** -math.ceil(math.log2(_count(x, axis)))


def scaled_mean(xp, x, axis, *, weight):
    """The weighted mean of :func:`mean` along ``axis`` as ``(v, scale,
    scale_min)``, ``v`` the mean times ``scale`` (powers of two in
    ``[scale_min, 1]``): a per-sample mean whose weights may take it beyond
    finfo.max, for :func:`reduce` (``scale=``, ``scale_min=``) to reduce
    without overflowing where the batch's mean is finite."""
    count = max(_count(x, axis), 1)
    s, c, g = _sums(xp, x, axis, weight)
    if g is None:
        return _unscale(xp, s, c, None, count=count), None, None
    return (_unscale(xp, s, c, None, count=count), 1.0 / xp.reshape(g, s.shape),
            2.0 ** -_split(xp, x, count)[0])


def reduce_squares(xp, d, reduction):
    """``reduce(xp, d * d, reduction)``, where a square beyond finfo.max does not
    make a finite mean inf.

    A square overflows for |d| beyond sqrt(finfo.max), where a mean over n
    terms may still be finite. The sum is taken over ``(d·r)²``: ``r`` is 1
    unless max |d| exceeds sqrt(finfo.max / 2**(k+1)) (``2**k >= n``), else
    ``2**-h``, which brings every finite square to at most
    ``2**(emax - k - 2)`` (finfo.max < ``2**emax``), so no order of addition
    overflows; the sum is divided by ``r`` twice last, and overflows only where
    its exact value does. The same passes as the plain form (``d·r``, its
    square, its sum; the magnitude is read from ``d``), and with ``r = 1`` the
    same values. The squares that the scaling pushes below the normal range
    total less than ``2**(3k + 7 - emax)`` of the largest square (2**-55 in
    float32 at n = 2**22), too little to change the sum.
    """
    n = _count(d, None)
    if reduction == "none" or n == 0:
        return reduce(xp, d * d, reduction)
    info = xp.finfo(d.dtype)
    k = math.ceil(math.log2(n))
    emax = math.frexp(float(info.max))[1]  # finfo.max < 2**emax
    h = math.ceil((emax + k + 2) / 2)
    one = const(xp, 1.0, d)
    r = xp.where(_magnitude(xp, d, None) > math.sqrt(float(info.max) * 2.0 ** -(k + 1)),
                 const(xp, 2.0 ** -h, d), one)
    r = xp.reshape(r, ())
    dr = d * r
    s = xp.sum(dr * dr)
    if reduction == "mean":
        s = s / n
    return (s / r) / r


def _lift_tiny(xp, weight, normalizer):
    """``weight`` and ``normalizer`` both times ``2**h`` (``h = emax // 2``)
    where every element of both is below ``2**-h`` in magnitude, else as they
    are: a weighted mean is unchanged, and the products of subnormal weights
    (the smallest weight times a loss of 0.68 rounds to the weight itself)
    keep their bits."""
    if _count(weight, None) == 0 or _count(normalizer, None) == 0:
        return weight, normalizer  # (a maximum over nothing is undefined)
    h = math.frexp(float(xp.finfo(weight.dtype).max))[1] // 2
    big = _magnitude(xp, weight, None)
    if normalizer is not weight:
        big = xp.maximum(big, _magnitude(xp, normalizer, None))
    c = xp.reshape(xp.where(big < 2.0 ** -h, const(xp, 2.0 ** h, weight),
                            const(xp, 1.0, weight)), ())
    lifted = weight * c
    return lifted, (lifted if normalizer is weight else normalizer * c)


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
        if weight is None and normalizer is None:
            count = max(_count(losses, None), 1) if reduction == "mean" else 1
            return _unscale(xp, *_sums(xp, losses, None, inverse, weight_max=1.0 / scale_min),
                            count=count)
        weight = inverse if weight is None else weight * inverse
    if reduction == "none":
        return losses if weight is None else mul0(xp, weight, losses)
    if reduction == "sum":
        return total(xp, losses, weight=weight)
    if normalizer is None:
        return mean(xp, losses, weight=weight)
    if weight is not None:
        weight, normalizer = _lift_tiny(xp, weight, normalizer)
    numerator, c_numerator, g = _sums(xp, losses, None, weight)
    denominator, c_denominator, _ = _sums(xp, normalizer, None)
    one = const(xp, 1.0, denominator)
    # The sums are scaled by powers of two, undone exactly, g (>= 1) last. The
    # numerator is rescaled before the division: a weighted numerator's s is
    # small (its products are scaled by about 2**-emax), and over a denominator
    # near finfo.max it would underflow. Where that rescaled numerator
    # overflows although the mean does not (unweighted terms of 1.7e308 and
    # 1.2e308: their sum), it is rescaled after the division, whose quotient
    # cannot underflow there: it is at least c_n / c_d (s·c_d/c_n exceeds
    # finfo.max, the denominator does not), a normal number: c_n >= 2**-543 in
    # float64 and 2**-85 in float32 for up to 2**60 and 2**40 terms.
    c_d = one if c_denominator is None else xp.reshape(c_denominator, ())
    c_n = one if c_numerator is None else xp.reshape(c_numerator, ())
    safe = xp.where(denominator == 0, one, denominator)
    factor = c_d / c_n
    # The numerator rescaled first exceeds finfo.max exactly where |s| exceeds
    # finfo.max / factor (factor >= 1 there; both scalings are exact).
    after = xp.abs(numerator) > float(xp.finfo(numerator.dtype).max) / xp.maximum(factor, one)
    zero = const(xp, 0.0, numerator)
    ratio = xp.where(after, (xp.where(after, numerator, zero) / safe) * factor,
                     (xp.where(after, zero, numerator) * factor) / safe)
    return ratio if g is None else ratio * xp.reshape(g, ())
