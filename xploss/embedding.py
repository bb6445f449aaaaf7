"""Embedding and ranking: cosine similarity and pairwise distance, and the
cosine-embedding, margin-ranking, hinge-embedding, triplet-margin and NT-Xent
losses.

Names, argument order and semantics follow ``torch.nn.functional``; every
deviation is listed in the function's Notes. Vectors are scaled exactly, by
the power of two at or below their largest magnitude, before any product, so
nothing overflows or underflows between 1e-300 and finfo.max.
"""

from __future__ import annotations

import functools
import math
import operator

from . import _checks
from ._reductions import reduce
from ._support import amax, compute_dtype, const, device, namespace, result_dtype, times_pow2
from .margin import _margin_sum, _positive_part
from .primitives import _shifted, _softplus

__all__ = [
    "cosine_embedding_loss",
    "cosine_similarity",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "ntxent_loss",
    "pairwise_distance",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]


def _scaled(xp, x, axis):
    """(u, nonzero, scale): ``x = u·scale`` with ``scale`` the power of two at or
    below max |x| along ``axis`` (kept; 1 for a zero or non-finite vector, so
    u = x = 0 for a zero vector), and whether the vector is nonzero.

    ``u`` is exact (its largest magnitude in [1, 2)) unless it is subnormal,
    that is, below 2^-126 (float32) of the largest. ``scale`` carries no
    derivative: the callers' results are invariant to it, and a scale that
    did would need the quotient's derivative, x/m², which underflows for m
    near finfo.max.
    """
    ax = xp.where(x < 0, -x, x)
    m = amax(xp, ax, axis=axis, keepdims=True)
    nonzero = m > 0
    one = const(xp, 1.0, m)
    m_safe = xp.where(nonzero & xp.isfinite(m), m, one)
    # s brings m into the normal range, where its exponent k = floor(log2(m·s))
    # is defined; 2^-k then brings it into [1, 2). Both are exact powers of two.
    half_range = math.log2(float(xp.finfo(x.dtype).max)) / 2
    down, up = 2.0 ** -math.floor(half_range), 2.0 ** math.floor(1.2 * half_range)
    s = xp.where(m_safe > 1 / down, const(xp, down, m),
                 xp.where(m_safe < down, const(xp, up, m), one))
    y = m_safe * s
    k = xp.floor(xp.log2(y))
    t = times_pow2(xp, one, xp.where(k < 0, -k, k))
    p2 = xp.where(k < 0, one / t, t)
    # log2 may round across a power of two: p2 = 2^floor(log2 y) exactly.
    p2 = xp.where(y < p2, p2 / 2, xp.where(y >= 2 * p2, 2 * p2, p2))
    return (x * s) / p2, nonzero, p2 / s


def _cosine(xp, x1, x2, axis, eps):
    """Cosine along ``axis`` (kept) of broadcast ``x1``, ``x2`` in compute dtype,
    and the pieces it is built from: ``(cos, (u1, nz1, n1), (u2, nz2, n2))`` with
    u = x / 2^k (:func:`_scaled`), nz whether the vector is nonzero, n = |u| (1
    for a zero vector).

    Nonzero vectors: (u1·u2) / sqrt(S1·S2) with S = u·u in [1, 4D): no overflow
    or underflow, and exactly 1 for a vector with itself (sqrt(S·S) = S in binary
    floating point). A zero vector: its norm is eps, i.e. torch's clamp, value 0
    with torch's (finite) derivative.
    """
    u1, nz1, _ = _scaled(xp, x1, axis)
    u2, nz2, _ = _scaled(xp, x2, axis)
    one = const(xp, 1.0, u1)
    # A safe 1 for zero vectors (u = x = 0 there): sqrt's derivative at 0 is infinite.
    s1 = xp.where(nz1, xp.sum(u1 * u1, axis=axis, keepdims=True), one)
    s2 = xp.where(nz2, xp.sum(u2 * u2, axis=axis, keepdims=True), one)
    n1, n2 = xp.sqrt(s1), xp.sqrt(s2)
    both = nz1 & nz2
    dot = xp.sum(u1 * u2, axis=axis, keepdims=True)
    d1 = xp.where(nz1, n1, const(xp, eps, s1))
    d2 = xp.where(nz2, n2, const(xp, eps, s2))
    den = xp.where(both, xp.sqrt(s1 * s2), d1 * d2)
    return dot / den, (u1, nz1, n1), (u2, nz2, n2)


def _prepare_pair(fname, x1, x2, axis):
    xp = namespace(fname, x1=x1, x2=x2)
    _checks.floating(xp, fname, "x1", x1)
    _checks.floating(xp, fname, "x2", x2)
    dtype = compute_dtype(xp, result_dtype(xp, x1, x2))
    a = x1 if x1.dtype == dtype else xp.astype(x1, dtype)
    b = x2 if x2.dtype == dtype else xp.astype(x2, dtype)
    _checks.broadcast_shapes(fname, x1=x1, x2=x2)
    a, b = xp.broadcast_arrays(a, b)
    ndim = a.ndim
    if ndim == 0 or not -ndim <= axis < ndim:
        msg = f"{fname}: 'axis' {axis} is out of range for inputs of {ndim} dimensions"
        raise ValueError(msg)
    return xp, a, b, axis % ndim


def cosine_similarity(x1, x2, /, *, axis=-1, eps=1e-8):
    r"""Cosine of the angle between ``x1`` and ``x2`` along ``axis``.

    .. math:: \cos\theta = \frac{x_1 \cdot x_2}{\lVert x_1 \rVert \, \lVert x_2 \rVert}

    Parameters
    ----------
    x1, x2 : array
        Real floating arrays, broadcast together.
    axis : int, optional
        The vector axis (default -1; torch's ``dim`` defaults to 1).
    eps : float, optional
        Norm used for a zero vector.

    Returns
    -------
    array
        The broadcast shape without ``axis``, in the promoted dtype (16-bit
        inputs give their own dtype, computed in float32).

    Notes
    -----
    Each vector is first scaled exactly by a power of two near its largest
    magnitude, so the result neither overflows nor underflows, nor does its
    derivative: ``[1e20, 1e20]`` and ``[1e-30, 1e-30]``
    with themselves give exactly 1. The denominator is
    :math:`\sqrt{S_1 S_2}` with :math:`S` the scaled squared norms, which is
    exact for a vector with itself. The error is a few ULP of
    :math:`\sum_i |x_{1i} x_{2i}| / (\lVert x_1 \rVert \lVert x_2 \rVert)`,
    the dot product's condition (nearly orthogonal vectors cancel). Deviation from
    ``torch.nn.functional.cosine_similarity``: ``eps`` replaces only the norm
    of a zero vector (value 0 and torch's finite derivative there); torch
    also clamps nonzero norms below ``eps``, so it returns 2e-44 for
    ``[1e-30, 1e-30]`` with itself.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([[1e20, 1e20], [1e-30, 1e-30], [0.0, 0.0]])
    >>> xploss.cosine_similarity(x, x)
    Array([1., 1., 0.], dtype=array_api_strict.float64)
    """
    fname = "cosine_similarity"
    if not eps > 0:
        msg = f"{fname}: 'eps' must be > 0, got {eps!r}"
        raise ValueError(msg)
    xp, a, b, axis = _prepare_pair(fname, x1, x2, axis)
    out = xp.squeeze(_cosine(xp, a, b, axis, eps)[0], axis=axis)
    dtype = result_dtype(xp, x1, x2)
    return out if out.dtype == dtype else xp.astype(out, dtype)


def _pair_target(fname, x1, x2, target):
    """(xp, x1, x2, y) for the (x1, x2, target) losses: x1 and x2 of one shape,
    the target of their shape without the vector axis (cosine) or of their
    shape (ranking), checked by the caller."""
    xp = namespace(fname, x1=x1, x2=x2, target=target)
    for name, a in (("x1", x1), ("x2", x2), ("target", target)):
        _checks.floating(xp, fname, name, a)
    _checks.same_shape(fname, "x1", x1, "x2", x2)
    dtype = compute_dtype(xp, result_dtype(xp, x1, x2, target))
    return xp, *(a if a.dtype == dtype else xp.astype(a, dtype) for a in (x1, x2, target))


def cosine_embedding_loss(x1, x2, target, /, *, margin=0.0, reduction="mean"):
    r"""Cosine embedding loss: pull pairs with ``target = 1`` together, push
    pairs with ``target = -1`` below ``margin``.

    .. math::

        \ell = \begin{cases} 1 - \cos(x_1, x_2) & y = 1 \\
        \max(0, \cos(x_1, x_2) - \text{margin}) & y = -1 \end{cases}

    Parameters
    ----------
    x1, x2 : array
        ``(N, D)`` or ``(D,)`` embeddings of one shape.
    target : array
        ``(N,)`` or ``()`` labels in {1, -1}.
    margin : float, optional
        In [-1, 1].
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.cosine_embedding_loss`` semantics (torch adds
    1e-12 to each squared norm; here the cosine is :func:`cosine_similarity`'s).
    :math:`1 - \cos` is evaluated as :math:`\lVert \hat x_1 - \hat x_2 \rVert^2 / 2`
    with :math:`\hat x` the unit vectors, so nearly parallel pairs keep their
    small loss (``1 - cos`` rounds it to 0 or to a multiple of eps); its
    absolute error is about :math:`\varepsilon \lVert \hat x_1 - \hat x_2 \rVert \sqrt{D}`,
    since each unit-vector component rounds. Labels other than ±1 contribute
    0, as in torch.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x1 = xp.asarray([[1.0, 1e-9], [1.0, 0.0]])
    >>> x2 = xp.asarray([[1.0, 0.0], [0.0, 1.0]])
    >>> xploss.cosine_embedding_loss(x1, x2, xp.asarray([1.0, -1.0]), reduction="none")
    Array([5.e-19, 0.e+00], dtype=array_api_strict.float64)
    """
    fname = "cosine_embedding_loss"
    _checks.reduction(fname, reduction)
    if not -1.0 <= margin <= 1.0:
        msg = f"{fname}: 'margin' must lie in [-1, 1], got {margin!r}"
        raise ValueError(msg)
    xp, a, b, y = _pair_target(fname, x1, x2, target)
    if a.ndim not in (1, 2) or tuple(y.shape) != tuple(a.shape[:-1]):
        msg = (f"{fname}: expected 'x1' of shape (N, D) or (D,) and 'target' of shape "
               f"(N,) or (), got {tuple(x1.shape)} and {tuple(target.shape)}")
        raise ValueError(msg)
    axis = a.ndim - 1
    cos, (u1, nz1, n1), (u2, nz2, n2) = _cosine(xp, a, b, axis, 1e-8)
    cos = xp.squeeze(cos, axis=axis)
    # 1 - cos = |a/|a| - b/|b||² / 2 for nonzero vectors, without cancellation.
    w = u1 / n1 - u2 / n2
    half_sq = 0.5 * xp.squeeze(xp.sum(w * w, axis=axis, keepdims=True), axis=axis)
    both = xp.squeeze(nz1 & nz2, axis=axis)
    zero = const(xp, 0.0, cos)
    pull = xp.where(both, half_sq, 1.0 - cos)
    push = _positive_part(xp, cos - margin)
    # Other labels contribute 0 (torch), a NaN label NaN.
    loss = xp.where(y == 1, pull, xp.where(y == -1, push, xp.where(xp.isnan(y), y, zero)))
    return reduce(xp, loss, reduction)


def margin_ranking_loss(x1, x2, target, /, *, margin=0.0, reduction="mean"):
    r"""Margin ranking loss, :math:`\max(0, -y\,(x_1 - x_2) + \text{margin})`.

    Parameters
    ----------
    x1, x2 : array
        Scores of one shape.
    target : array
        Labels in {1, -1} (1: ``x1`` should rank higher), the same shape.
    margin : float, optional
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.margin_ranking_loss`` semantics, except that shapes
    must match. The margin is the exact sum ``margin + y·x2 - y·x1`` rounded
    once (TwoSum), so it never overflows where its value is finite and keeps
    its relative accuracy where it nearly cancels.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x1, x2 = xp.asarray([1.0, 1.0]), xp.asarray([0.5, 2.0])
    >>> xploss.margin_ranking_loss(x1, x2, xp.asarray([1.0, 1.0]), margin=1.0, reduction="none")
    Array([0.5, 2. ], dtype=array_api_strict.float64)
    """
    fname = "margin_ranking_loss"
    _checks.reduction(fname, reduction)
    xp, a, b, y = _pair_target(fname, x1, x2, target)
    _checks.same_shape(fname, "x1", x1, "target", target)
    m = _margin_sum(xp, margin, y * b, y * a)
    return reduce(xp, _positive_part(xp, m), reduction)


def hinge_embedding_loss(input, target, /, *, margin=1.0, reduction="mean"):
    r"""Hinge embedding loss: ``x`` where ``y = 1``, :math:`\max(0, \text{margin} - x)`
    where ``y = -1``.

    Parameters
    ----------
    input : array
        Distances (or scores) ``x``.
    target : array
        Labels in {1, -1}, the shape of ``input``.
    margin : float, optional
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.hinge_embedding_loss`` semantics, including its
    treatment of other labels (both terms apply, ``x + max(0, margin - x)``,
    evaluated as the equal ``max(x, margin)``, which cannot cancel), except
    that shapes must match.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([0.5, 0.25, 2.0])
    >>> xploss.hinge_embedding_loss(x, xp.asarray([1.0, -1.0, -1.0]), reduction="none")
    Array([0.5 , 0.75, 0.  ], dtype=array_api_strict.float64)
    """
    fname = "hinge_embedding_loss"
    _checks.reduction(fname, reduction)
    xp = namespace(fname, input=input, target=target)
    _checks.floating(xp, fname, "input", input)
    _checks.floating(xp, fname, "target", target)
    _checks.same_shape(fname, "input", input, "target", target)
    dtype = compute_dtype(xp, result_dtype(xp, input, target))
    x = input if input.dtype == dtype else xp.astype(input, dtype)
    y = target if target.dtype == dtype else xp.astype(target, dtype)
    zero = const(xp, 0.0, x)
    hinge = _margin_sum(xp, margin, zero, x)
    hinge = _positive_part(xp, hinge)
    # Other labels get both terms, x + max(0, margin - x), which is max(x, margin).
    m = const(xp, margin, x)
    other = xp.where(x > m, x, xp.where(xp.isnan(x), x, m))
    loss = xp.where(y == 1, x, xp.where(y == -1, hinge, xp.where(xp.isnan(y), y, other)))
    return reduce(xp, loss, reduction)



def _p_norm(xp, v, p, axis):
    """The p-norm of ``v`` along ``axis`` (kept), for p > 0 or p = inf, as the
    pair ``(m, r)`` with norm ``m·r``, ``m`` the power of two at or below
    ``max|v|`` (1 for a zero or non-finite vector; no derivative, see
    :func:`_scaled`) and ``r = (Σ|v/m|^p)^(1/p)`` in ``[1, 2·D^(1/p))`` (0 for a
    zero vector). A caller that scales ``m`` by a power of two gets the norm
    scaled exactly where ``m·r`` itself would overflow.

    The sum lies in [1, 2^p·D), so nothing overflows or underflows, and |·|^p is
    taken of a magnitude (odd p included). A zero vector has norm 0 with
    derivative 0; a zero component has derivative 0 also for p < 1, where the
    exact one is infinite.
    """
    u, _, m = _scaled(xp, v, axis)
    a = xp.where(u < 0, -u, u)
    if p == math.inf:
        s = amax(xp, a, axis=axis, keepdims=True)
        return m, xp.where(s == 0, const(xp, 0.0, s), s)  # no derivative at 0
    if p == 1:
        powered = a
    elif p == 2:
        powered = a * a
    else:
        zero = a == 0
        powered = xp.where(zero, const(xp, 0.0, a), xp.where(zero, const(xp, 1.0, a), a) ** p)
    s = xp.sum(powered, axis=axis, keepdims=True)
    zero = s == 0
    s_safe = xp.where(zero, const(xp, 1.0, s), s)
    root = s_safe if p == 1 else xp.sqrt(s_safe) if p == 2 else s_safe ** (1.0 / p)
    return m, xp.where(zero, const(xp, 0.0, s), root)


def _distance(xp, x1, x2, p, eps, axis):
    """torch's pairwise distance, |x1 - x2 + eps|_p along ``axis`` (kept), as the
    pair ``(m, r)`` of :func:`_p_norm`. Each component is the exact sum
    ``eps + x1 - x2`` rounded once (no overflow where it is finite; where it
    is not, the norm is beyond the range too)."""
    return _p_norm(xp, _margin_sum(xp, eps, x1, x2), p, axis)


def _check_p(fname, p):
    if not p > 0:
        msg = f"{fname}: 'p' must be > 0 (or inf), got {p!r}"
        raise ValueError(msg)


def pairwise_distance(x1, x2, /, *, p=2.0, eps=1e-6, keepdim=False):
    r"""The p-norm distance :math:`\lVert x_1 - x_2 + \varepsilon \rVert_p` along
    the last axis.

    Parameters
    ----------
    x1, x2 : array
        Real floating arrays, broadcast together; vectors along the last axis.
    p : float, optional
        Norm degree, > 0 or ``inf``.
    eps : float, optional
        Added to every component of the difference (torch's convention; 0 gives
        the plain distance).
    keepdim : bool, optional
        Keep the vector axis with size 1.

    Returns
    -------
    array
        The broadcast shape without the last axis, in the promoted dtype
        (16-bit inputs give their own dtype, computed in float32).

    Notes
    -----
    ``torch.nn.functional.pairwise_distance`` semantics. Each component
    ``x1 - x2 + eps`` is the exact sum rounded once, and the norm is taken of
    the vector scaled exactly by a power of two near its largest magnitude, so
    neither it nor its derivative overflows or underflows: ``[1e200, 1e200]``
    against its negative gives 2.83e200 (torch: inf). A zero difference
    (``eps = 0``) has distance 0 and derivative 0. Deviation: ``p`` must be
    positive (torch also accepts ``p = 0``, a count of nonzero components, and
    negative ``p``, neither a distance). Known limit: for ``p < 1`` the
    derivative at a difference near finfo.max with a component below about
    ``eps·finfo.max`` overflows in an intermediate product, although it is
    finite.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([[1e200, 1e200], [3.0, 4.0]])
    >>> xploss.pairwise_distance(x, -x, eps=0.0)
    Array([2.82842712e+200, 1.00000000e+001], dtype=array_api_strict.float64)
    """
    fname = "pairwise_distance"
    _check_p(fname, p)
    xp, a, b, axis = _prepare_pair(fname, x1, x2, -1)
    m, r = _distance(xp, a, b, p, eps, axis)
    d = m * r
    out = d if keepdim else xp.squeeze(d, axis=axis)
    dtype = result_dtype(xp, x1, x2)
    return out if out.dtype == dtype else xp.astype(out, dtype)


def _triplet_check(fname, margin, reduction, anchor, positive, negative):
    """Checks shared by the triplet losses; returns the namespace."""
    _checks.reduction(fname, reduction)
    if not margin > 0:
        msg = f"{fname}: 'margin' must be > 0, got {margin!r}"
        raise ValueError(msg)
    xp = namespace(fname, anchor=anchor, positive=positive, negative=negative)
    names = ("anchor", "positive", "negative")
    for name, a in zip(names, (anchor, positive, negative), strict=True):
        _checks.floating(xp, fname, name, a)
    ndims = [a.ndim for a in (anchor, positive, negative)]
    if len(set(ndims)) != 1:
        msg = (f"{fname}: 'anchor', 'positive' and 'negative' must have the same number "
               f"of dimensions, got {ndims[0]}, {ndims[1]} and {ndims[2]}")
        raise ValueError(msg)
    _checks.broadcast_shapes(fname, anchor=anchor, positive=positive, negative=negative)
    return xp


def _triplet_loss(xp, d_ap, d_an, d_pn, margin, reduction):
    """max(0, margin + d(a, p) - d(a, n)) with the swap's min(d(a, n), d(p, n))."""
    if d_pn is not None:
        d_an = xp.minimum(d_an, d_pn)
    return reduce(xp, _positive_part(xp, _margin_sum(xp, margin, d_ap, d_an)), reduction)


def _triplet_norm_loss(xp, a, pos, neg, margin, p, eps, swap, reduction):
    """The triplet loss of p-norm distances along the last axis of broadcast
    ``a``, ``pos``, ``neg`` (compute dtype).

    A triplet with a component beyond finfo.max/4 is first halved whole (its
    vectors and ``eps``; exact at that magnitude, and below it off by at most
    half a subnormal ULP, far below the distances' rounding), so no component
    of a difference overflows. Each distance is then ``m·r`` (:func:`_p_norm`)
    with ``r < 2·D^(1/p)``. Where one exceeds finfo.max/4 (overflowing, perhaps,
    where the difference of two does not), every distance and the margin of
    that triplet are scaled by ``2**-k`` with ``2**k >= 4·D^(1/p)``: ``(m·c)·r``
    is then below ``m/2``. The loss is reduced from the terms scaled
    by ``c`` (the product of both factors) with weight ``1/c`` (see
    :func:`reduce`), exact powers of two.
    """
    axis = a.ndim - 1
    big = float(xp.finfo(a.dtype).max)
    one = const(xp, 1.0, a)
    huge = functools.reduce(operator.or_, [
        (amax(xp, v, axis=axis, keepdims=True) > big / 4)
        | (amax(xp, v, axis=axis, keepdims=True, smallest=True) < -big / 4)
        for v in (a, pos, neg)])
    half = xp.where(huge, const(xp, 0.5, a), one)
    a, pos, neg = a * half, pos * half, neg * half
    parts = [_distance(xp, x1, x2, p, eps * half, axis)
             for x1, x2 in ([(a, pos), (a, neg)] + ([(pos, neg)] if swap else []))]
    r_max = 1.0 if p == math.inf else math.exp(min(math.log(max(a.shape[-1], 1)) / p, 700.0))
    # c stays a normal number; for tiny p and long vectors (r_max beyond the
    # range) a difference of distances near finfo.max may still overflow.
    k = min(math.ceil(math.log2(r_max)) + 2, math.floor(math.log2(big)) - 2)
    over = [m > (big / 4) / xp.maximum(r, one) for m, r in parts]
    over = functools.reduce(operator.or_, over)
    scale = xp.where(over, const(xp, 2.0 ** -k, one), one)
    d_ap, d_an, *d_pn = [xp.squeeze((m * scale) * r, axis=axis) for m, r in parts]
    if swap:
        d_an = xp.minimum(d_an, d_pn[0])
    scale = xp.squeeze(scale * half, axis=axis)
    terms = _positive_part(xp, _margin_sum(xp, margin * scale, d_ap, d_an))
    return reduce(xp, terms, reduction, scale=scale, scale_min=2.0 ** -(k + 1))


def triplet_margin_loss(anchor, positive, negative, /, *, margin=1.0, p=2.0, eps=1e-6,
                        swap=False, reduction="mean"):
    r"""Triplet margin loss, :math:`\max(0, \text{margin} + d(a, p) - d(a, n))`,
    with :math:`d` the :func:`pairwise_distance`.

    Parameters
    ----------
    anchor, positive, negative : array
        ``(N, D)`` or ``(D,)`` embeddings (vectors along the last axis) with the
        same number of dimensions, broadcast together.
    margin : float, optional
        > 0.
    p : float, optional
        Norm degree, > 0 or ``inf``.
    eps : float, optional
        Added to each component of the differences, as in torch.
    swap : bool, optional
        Use :math:`\min(d(a, n), d(p, n))` as the negative distance (Balntas et
        al., "Learning local feature descriptors with triplets and shallow
        convolutional neural networks", BMVC 2016).
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.triplet_margin_loss`` semantics. The norm of every p
    is taken of magnitudes, so odd p is a norm (a plain ``sum(d**p)**(1/p)``
    is not); distances neither overflow nor underflow (see
    :func:`pairwise_distance`), and the margin is the exact sum
    ``margin + d(a, p) - d(a, n)`` rounded once. Its error is a few ULP of
    ``margin + d(a, p) + d(a, n)``, the sum's condition. Distances beyond
    finfo.max are scaled by a power of two before their difference, so the
    loss overflows only where its exact value does (torch: inf or NaN once a
    distance overflows).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> a = xp.asarray([[0.0, 0.0]])
    >>> pos, neg = xp.asarray([[3.0, 4.0]]), xp.asarray([[1.0, 1.0]])
    >>> xploss.triplet_margin_loss(a, pos, neg, p=1.0, eps=0.0)
    Array(6., dtype=array_api_strict.float64)
    """
    fname = "triplet_margin_loss"
    xp = _triplet_check(fname, margin, reduction, anchor, positive, negative)
    _check_p(fname, p)
    if anchor.ndim not in (1, 2):
        msg = (f"{fname}: expected inputs of shape (N, D) or (D,), got "
               f"{tuple(anchor.shape)}")
        raise ValueError(msg)
    dtype = compute_dtype(xp, result_dtype(xp, anchor, positive, negative))
    arrays = [a if a.dtype == dtype else xp.astype(a, dtype)
              for a in (anchor, positive, negative)]
    a, pos, neg = xp.broadcast_arrays(*arrays)

    return _triplet_norm_loss(xp, a, pos, neg, margin, p, eps, swap, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, /, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    r"""Triplet margin loss with any distance,
    :math:`\max(0, \text{margin} + d(a, p) - d(a, n))`.

    Parameters
    ----------
    anchor, positive, negative : array
        Embeddings with the same number of dimensions.
    distance_function : callable, optional
        ``d(x1, x2)`` returning non-negative distances, one per triplet (for
        example ``lambda x, y: 1 - xploss.cosine_similarity(x, y)``). Default:
        :func:`pairwise_distance` (p = 2, eps = 1e-6).
    margin : float, optional
        > 0.
    swap : bool, optional
        Use :math:`\min(d(a, n), d(p, n))` as the negative distance.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.triplet_margin_with_distance_loss`` semantics. The
    margin is the exact sum ``margin + d(a, p) - d(a, n)`` rounded once, as
    in :func:`triplet_margin_loss`; the default distance is computed in
    float32 for 16-bit inputs, and scaled as there where it exceeds
    finfo.max. A ``distance_function``'s results are taken as they are.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> a = xp.asarray([[1.0, 0.0]])
    >>> pos, neg = xp.asarray([[1.0, 1.0]]), xp.asarray([[0.0, 1.0]])
    >>> def cos_dist(x, y):
    ...     return 1.0 - xploss.cosine_similarity(x, y)
    >>> xploss.triplet_margin_with_distance_loss(a, pos, neg, distance_function=cos_dist,
    ...                                          margin=1.0, reduction="none")
    Array([0.29289322], dtype=array_api_strict.float64)
    """
    fname = "triplet_margin_with_distance_loss"
    xp = _triplet_check(fname, margin, reduction, anchor, positive, negative)
    if distance_function is None:
        # pairwise_distance (p = 2, eps = 1e-6), computed in float32 for 16-bit inputs.
        dtype = compute_dtype(xp, result_dtype(xp, anchor, positive, negative))
        arrays = [a if a.dtype == dtype else xp.astype(a, dtype)
                  for a in (anchor, positive, negative)]
        a, pos, neg = xp.broadcast_arrays(*arrays)
        return _triplet_norm_loss(xp, a, pos, neg, margin, 2.0, 1e-6, swap, reduction)
    distances = [distance_function(anchor, positive), distance_function(anchor, negative)]
    if swap:
        distances.append(distance_function(positive, negative))
    for d in distances:
        _checks.floating(xp, fname, "distance_function's result", d)
    dtype = compute_dtype(xp, result_dtype(xp, *distances))
    d_ap, d_an, *d_pn = (d if d.dtype == dtype else xp.astype(d, dtype) for d in distances)
    return _triplet_loss(xp, d_ap, d_an, d_pn[0] if swap else None, margin, reduction)


def ntxent_loss(embeddings, labels, /, *, temperature=0.07):
    r"""NT-Xent (normalized temperature-scaled cross-entropy, InfoNCE) loss.

    With :math:`s_{ij} = \cos(e_i, e_j) / \tau`, every positive pair
    :math:`(i, j)` (equal labels, :math:`i \ne j`) contributes

    .. math:: -\log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k:\, y_k \ne y_i} e^{s_{ik}}}

    and the loss is the mean over the positive pairs.

    Parameters
    ----------
    embeddings : array
        ``(N, D)`` real floating embeddings.
    labels : array
        ``(N,)`` integer group labels: equal labels mark positive pairs.
    temperature : float, optional
        :math:`\tau > 0`.

    Returns
    -------
    array
        0-d loss (float32 for 16-bit embeddings).

    Notes
    -----
    ``optax.losses.ntxent`` semantics (Chen et al., "A Simple Framework for
    Contrastive Learning of Visual Representations", 2020): the denominator
    holds the positive itself and the anchor's negatives, not its other
    positives. Each term is :math:`\operatorname{softplus}(L_i - s_{ij})`
    with :math:`L_i` the log-sum-exp over the anchor's negatives, so a
    confident pair keeps its tiny loss; an anchor without negatives gives 0
    (with a zero gradient), even when an embedding holds inf. Given a positive
    pair, a NaN embedding makes the loss NaN.
    Cosines are :func:`cosine_similarity`'s (scaled, so no overflow or
    underflow; a zero embedding has cosine 0 with everything and finite
    gradients). Deviation: with no positive pair at all the loss is 0
    (optax: NaN, 0/0). The error is a few ULP of each term plus its
    sensitivity to the rounding of the cosines,
    :math:`\sigma(L_i - s_{ij})\,(|L_i| + |s_{ij}| + 2/\tau)`.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> e = xp.asarray([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> xploss.ntxent_loss(e, xp.asarray([0, 0, 1, 1]), temperature=0.1)
    Array(0.00032565, dtype=array_api_strict.float64)
    """
    fname = "ntxent_loss"
    if not temperature > 0:
        msg = f"{fname}: 'temperature' must be > 0, got {temperature!r}"
        raise ValueError(msg)
    xp = namespace(fname, embeddings=embeddings, labels=labels)
    _checks.floating(xp, fname, "embeddings", embeddings)
    if xp.isdtype(labels.dtype, "bool") or not xp.isdtype(labels.dtype, "integral"):
        msg = f"{fname}: 'labels' must have an integer dtype, got {labels.dtype}"
        raise TypeError(msg)
    if embeddings.ndim != 2 or tuple(labels.shape) != tuple(embeddings.shape[:1]):
        msg = (f"{fname}: expected 'embeddings' of shape (N, D) and 'labels' of shape "
               f"(N,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}")
        raise ValueError(msg)
    dtype = compute_dtype(xp, embeddings.dtype)
    e = embeddings if embeddings.dtype == dtype else xp.astype(embeddings, dtype)
    # A row holding inf or NaN has NaN cosines; it is replaced by zeros before
    # any arithmetic, so that an anchor without negatives, which is 0 whatever
    # its cosines, gets a zero gradient rather than 0 * NaN. With a positive
    # pair, a NaN anywhere still makes the loss NaN (below).
    bad = ~xp.all(xp.isfinite(e), axis=1)
    has_nan = xp.any(xp.isnan(e))
    e = xp.where(bad[:, None], const(xp, 0.0, e), e)
    u, nz, _ = _scaled(xp, e, 1)
    one = const(xp, 1.0, u)
    unit = u / xp.sqrt(xp.where(nz, xp.sum(u * u, axis=1, keepdims=True), one))
    s = xp.matmul(unit, xp.matrix_transpose(unit)) / temperature
    s = xp.where(bad[:, None] | bad[None, :], const(xp, math.nan, s), s)
    n = e.shape[0]
    index = xp.arange(n, device=device(labels))
    same = labels[:, None] == labels[None, :]
    positive = same & (index[:, None] != index[None, :])
    neg_inf, zero = const(xp, -math.inf, s), const(xp, 0.0, s)
    # L_i: log-sum-exp over the anchor's negatives (-inf without any).
    sh = _shifted(xp, xp.where(same, neg_inf, s), (1,))
    m, rest = sh.m, sh.u
    m_safe = xp.where(xp.isfinite(m), m, zero)
    log_neg = xp.where(m == -math.inf, m, m_safe + xp.log1p(rest))
    # An anchor without negatives (L_i = -inf) gives 0, even with NaN cosines.
    terms = _softplus(xp, xp.where(positive & (m != -math.inf), log_neg - s, neg_inf))
    count = xp.sum(xp.astype(positive, dtype))
    total = xp.sum(xp.where(positive, terms, zero))
    loss = total / xp.where(count == 0, const(xp, 1.0, count), count)
    return xp.where(has_nan & (count > 0), const(xp, math.nan, loss), loss)
