"""Stable primitives: the building blocks every loss is written with.

Each function is written once against the array API standard. The formulas
avoid overflow, cancellation and NaN gradients over the whole floating range;
the comment above each formula names the identity it uses. Branches are
selected with a "double where": the input of the branch that is *not* taken
is first replaced by a harmless value, so that neither its value nor its
derivative can be inf or NaN (a single ``where`` still multiplies a zero
cotangent by an infinite local derivative, which is NaN in every autodiff).

The derivative of ``abs`` and of ``maximum`` at a tie differs between
libraries (JAX: d|x|/dx = 1 at 0, torch: 0), so the sign of an argument is
always chosen with a ``where`` on the same test that selects the branch.

16-bit floating inputs are computed in float32 and rounded once to the
input's dtype at the end.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from . import _checks
from ._support import (
    amax,
    const,
    device,
    expm1_neg,
    log1p_neg,
    log_split,
    mul0,
    namespace,
    result_dtype,
    to_compute,
    to_output,
)

__all__ = [
    "langevin",
    "log1mexp",
    "log_cosh",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softplus",
    "xlog1py",
    "xlogy",
]

_LN2 = math.log(2.0)


# ---------------------------------------------------------------------------
# private kernels: take ``xp`` explicitly, no checks, compute dtype in and out


def _softplus_pair(xp, x):
    """(softplus(x), softplus(-x)) from one exponential.

    softplus(x) = max(x, 0) + log1p(exp(-|x|)); softplus(-x) = softplus(x) - x,
    taken from the same log1p term so that neither side cancels.
    """
    pos = x > 0
    # z = -|x|; the where picks the sign with the same test as the result, so
    # the derivative is right at 0 on every library.
    tail = xp.log1p(xp.exp(xp.where(pos, -x, x)))
    return xp.where(pos, x + tail, tail), xp.where(pos, tail, tail - x)


def _softplus(xp, x):
    neg = x <= 0
    tail = xp.log1p(xp.exp(xp.where(neg, x, -x)))
    return xp.where(neg, tail, x + tail)


def _sigmoid(xp, x):
    # sigmoid(x) = 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: the
    # exponential never exceeds 1.
    neg = x < 0
    e = xp.exp(xp.where(neg, x, -x))
    return xp.where(neg, e, const(xp, 1.0, x)) / (1.0 + e)


class Shifted(NamedTuple):
    """The pieces of a stable log-sum-exp (see :func:`_shifted`); every row-sized
    piece keeps the reduced axes (size 1)."""

    m: object         # the row's maximum
    d: object         # x - m, rounded; 0 at a maximum held constant; -inf masked or far
    err: object       # d's rounding error: d + err = x - m exactly
    e: object         # exp(x - m), d's rounding error carried in
    u: object         # sum(e) - 1, without cancellation
    near: object      # False exactly at -inf and far elements, and NaN
    finite_m: object  # rows whose maximum is finite
    keep: object      # rows whose maxima are ordinary elements (tied, finite)


def _difference(xp, x, m, keep, is_max=None):
    """``(d, err, near, fixed)``, elementwise, for elements ``x`` of rows with
    maximum ``m`` (broadcast) whose maxima are ordinary elements where ``keep``.

    ``d + err = x - m`` exactly, ``d`` rounded; at a *fixed* maximum (a finite
    row's sole maximum, every maximum of a row whose maximum is not finite)
    ``d = 0`` with no derivative; ``-inf`` where ``x`` is ``-inf`` (a masked
    class), *far* (finite, with ``x - m`` rounding beyond -finfo.max: only
    logits of opposite signs near ±finfo.max have them) or finite in a row
    whose maximum is ``+inf``. ``near`` is False exactly there (and at NaN).

    Far elements: x - m rounds to -inf exactly where x - m <= -(finfo.max + h),
    h half an ULP of finfo.max. Halved, x/2 - m/2 <= -(finfo.max/2 + h/2), a
    midpoint between -finfo.max/2 and the next float (the tie rounds away from
    finfo.max/2, whose last bit is odd): exactly where x/2 - m/2 rounds below
    -finfo.max/2. The halves are exact wherever it matters (they round only for
    subnormal x or m, never near the threshold) and their difference cannot
    overflow. In a row whose maximum is not finite the threshold is +inf: only
    its +inf maxima are near.

    The subtraction sees only finite operands: every element that is not an
    ordinary near one subtracts ``m`` from itself (0, with no error), so nothing
    overflows, meets an infinity or warns. Its rounding error comes from
    Fast2Sum with the operand of larger magnitude first (an ordinary x < m
    exceeds |m| only below -|m|): TwoSum's intermediates would overflow where
    |x| + |m| nears finfo.max (softmax of [1.6e38, 3.4e38] in float32). Both
    operands are chosen by one test, so the error's derivative is exactly 0.
    """
    finite_m = xp.isfinite(m)
    m_safe = xp.where(finite_m, m, const(xp, 0.0, m))
    big = float(xp.finfo(x.dtype).max)
    threshold = xp.where(finite_m, const(xp, -big / 2, m), const(xp, math.inf, m))
    near = x * 0.5 - m_safe * 0.5 >= threshold
    fixed = (x == m if is_max is None else is_max) & ~keep
    a = xp.where(near & ~fixed, x, m_safe)
    b = -m_safe
    x_first = a < b
    p, q = xp.where(x_first, a, b), xp.where(x_first, b, a)
    del a, x_first  # input-sized temporaries are released as soon as they are spent
    d = p + q
    err = q - (d - p)
    del p, q
    return xp.where(near, d, const(xp, -math.inf, d)), err, near, fixed


def _shifted(xp, x, axis):
    """The pieces of a stable log-sum-exp along ``axis``: a :class:`Shifted`.

    With ``m = max(x)``, ``d + err = x - m`` exactly (``d`` the rounded
    difference, ``err`` its rounding error, :func:`_difference`),
    ``e = exp(x - m)`` and ``u = sum(e) - 1``, so that with ``log_s = log1p(u)``

        logsumexp(x) = m + log_s,   log_softmax(x) = (d - log_s) + err.

    In a row with one maximum, ``u`` is the sum over every other element, and the
    maximum's ``d = 0`` and ``e = 1`` are constants: ``u`` keeps full relative
    accuracy when one class dominates (a confident prediction has ``log_s`` ~
    1e-9, which a ``log`` of a sum near 1 would round away), and no derivative
    is formed as 1 minus a number near 1. In a row with tied maxima every maximum
    is an ordinary element (``d = x - m``, exactly 0, with its derivative) and
    ``u`` is the sum of all, less 1: each maximum has p <= 1/2, so nothing
    cancels, and the derivative is right (with the maxima held constant a row of
    equal logits would have a zero gradient). ``err`` carries the rounding of
    ``x - m`` into the exponentials: ``exp(d + err) = exp(d) * (1 + err)`` to
    within eps**2; without it exp(x - m) loses |x - m|·eps/2 of relative accuracy.

    Special rows: ``-inf`` elements are masked classes (exp gives exactly 0). A
    row whose maximum is ``+inf`` puts all its mass on its ``+inf`` elements.
    A row that is entirely ``-inf`` has ``logsumexp = -inf``; the caller
    decides its log-softmax. A NaN anywhere in a row makes the row NaN
    (``m`` and ``u`` are NaN).
    """
    if math.prod(x.shape) == 0:
        # An empty array has no maximum to read (and Dask's max over zero rows
        # raises); -inf is the maximum of an empty set. Shapes are static.
        shape = tuple(1 if i in axis else n for i, n in enumerate(x.shape))
        m = xp.full(shape, -math.inf, dtype=x.dtype, device=device(x))
    else:
        m = amax(xp, x, axis=axis, keepdims=True)
    is_max = x == m
    # The maxima are counted as int8 flags summed in int32 (count_nonzero's
    # result is int64 on some libraries whatever the device supports), then
    # converted row by row. A count above 2^24 in float32 rounds but stays > 1.
    n_max = xp.astype(is_max, xp.int8)
    if axis:
        n_max = xp.sum(n_max, axis=axis, keepdims=True, dtype=xp.int32)
    n_max = xp.astype(n_max, x.dtype)
    tied = n_max > 1
    finite_m = xp.isfinite(m)
    keep = tied & finite_m
    d, err, near, fixed = _difference(xp, x, m, keep, is_max)
    del is_max
    e = xp.exp(d)
    e = e + e * err
    # The fixed maxima (e = 1) are left out of u. A finite row's tied maxima
    # are summed, less 1. A row whose maximum is +inf or -inf has e = 0 off its
    # maxima and u = n_max - 1 >= 0; a NaN row has no maximum (NaN != NaN) and
    # u = NaN. In every case u >= 0 or NaN.
    rest = xp.where(finite_m, -xp.astype(tied, x.dtype), xp.where(m == m, n_max - 1.0, m))
    u = xp.sum(xp.where(fixed, const(xp, 0.0, e), e), axis=axis, keepdims=True) + rest
    return Shifted(m, d, err, e, u, near, finite_m, keep)


def _far(xp, x, sh):
    """The finite elements whose difference from their row's maximum overflows
    to -inf, from the pieces of :func:`_shifted` (NaN and +inf are near). (Only
    :func:`_cross_terms` needs it: formed there.)"""
    return ~sh.near & (x > -math.inf) & sh.finite_m


def _log_p(xp, x, sh):
    """log_softmax from the pieces of :func:`_shifted`. A row with every class
    masked has no distribution: every class keeps log-probability -inf
    (probability 0), like any masked class."""
    m, d, err, u = sh.m, sh.d, sh.err, sh.u
    return xp.where(m == -math.inf, const(xp, -math.inf, x), (d - xp.log1p(u)) + err)


def _softmax_complement(xp, x, sh):
    """1 - p of the softmax, from the pieces of :func:`_shifted`.

    Never formed by subtracting from 1 where it would cancel: where p > 1/2
    (only a row's sole maximum) it is u / (1 + u), the sum of the other classes;
    elsewhere 1 - p has no cancellation. A fully masked row has p = 0.
    """
    m, e, u = sh.m, sh.e, sh.u
    s = 1.0 + u
    p = e / s
    q = xp.where(p > 0.5, u / s, 1.0 - p)
    return xp.where(m == -math.inf, const(xp, 1.0, x), q)


def _log_softmax_complement(xp, x, sh):
    """log(1 - p) of the softmax as a double word ``(hi, lo)``, from the pieces of
    :func:`_shifted`.

    Where p > 1/2 (only a maximum) it is log(u) - log1p(u), with log u a double
    word (:func:`log_split`), so its absolute error does not grow with |log u|;
    elsewhere log1p(-p), which lies in (-ln 2, 0]. A fully masked row gives 0.
    Where p is exactly 0 (an underflowed or masked class) p is held constant,
    so its derivative (0) is not multiplied by an overflowed cotangent.
    """
    m, e, u = sh.m, sh.e, sh.u
    zero, one = const(xp, 0.0, x), const(xp, 1.0, x)
    p = e / (1.0 + u)
    big = p > 0.5
    u_hi, u_lo = log_split(xp, xp.where(big, u, one))
    hi = xp.where(big, u_hi, log1p_neg(xp, -xp.where(big | (p == 0), zero, p)))
    lo = xp.where(big, u_lo - xp.log1p(xp.where(big, u, zero)), zero)
    masked_row = m == -math.inf
    return xp.where(masked_row, zero, hi), xp.where(masked_row, zero, lo)


def _cross_terms(xp, x, q, sh):
    """``q * -log_softmax(x)`` elementwise from the pieces of :func:`_shifted`,
    with 0 * inf = 0 (masked classes).

    Also where ``-log p`` alone overflows but the product does not (logits of
    opposite signs near ±finfo.max in one row): there the term is evaluated as
    q·log_s + q·m - q·x, three non-negative products with no cancellation.
    """
    m, u = sh.m, sh.u
    far = _far(xp, x, sh)
    terms = mul0(xp, q, -_log_p(xp, x, sh))
    zero = const(xp, 0.0, x)
    # (Inline, so that each input-sized temporary is released once spent.)
    far_terms = q * xp.log1p(u) + (q * xp.where(far, m, zero) - q * xp.where(far, x, zero))
    return xp.where(far, far_terms, terms)


def _normalize_axis(fname, ndim, axis):
    axes = tuple(range(ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            msg = f"{fname}: 'axis' {axis} is out of range for an array of {ndim} dimensions"
            raise ValueError(msg)
    normalized = tuple(a % max(ndim, 1) for a in axes)
    if len(set(normalized)) != len(normalized):
        msg = f"{fname}: 'axis' {axis} names an axis twice"
        raise ValueError(msg)
    return normalized


def _prepare(fname, x):
    xp = namespace(fname, x=x)
    _checks.floating(xp, fname, "x", x)
    return xp, to_compute(xp, x)


# ---------------------------------------------------------------------------
# public elementwise primitives


def softplus(x, /):
    r"""Softplus, :math:`\log(1 + e^x)`, accurate and finite for every input.

    .. math:: \operatorname{softplus}(x) = \log(1 + e^{x})

    Parameters
    ----------
    x : array
        Real floating array.

    Returns
    -------
    array
        Same shape, dtype and device as ``x``.

    Notes
    -----
    Semantics of ``torch.nn.functional.softplus`` with ``beta=1``. Deviation:
    there is no ``threshold``; torch returns ``x`` itself above 20, which drops
    the term :math:`e^{-x}` (``softplus(30.0)`` in float64 is 30.000000000000092
    here and 30.0 in torch).

    Computed as :math:`\max(x, 0) + \operatorname{log1p}(e^{-|x|})`: the
    exponential never overflows, and for very negative ``x`` the result is
    ``log1p(e^x)``, accurate down to the smallest normal number. The derivative
    is :math:`\sigma(x)`, finite everywhere, including at ``x = ±inf``.

    References
    ----------
    .. [1] M. Mächler, "Accurately Computing log(1 − exp(−|a|))", Rmpfr
       vignette, 2012.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([-1000.0, 0.0, 1000.0])
    >>> xp.log(1.0 + xp.exp(x))  # naive: overflows at 1000
    Array([0. , 0.69314718, inf], dtype=array_api_strict.float64)
    >>> xploss.softplus(x)
    Array([0.00000000e+00, 6.93147181e-01, 1.00000000e+03], dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("softplus", x)
    return to_output(xp, _softplus(xp, xc), x.dtype)


def log_sigmoid(x, /):
    r"""Log of the logistic sigmoid, :math:`\log \sigma(x) = -\operatorname{softplus}(-x)`.

    Parameters
    ----------
    x : array
        Real floating array.

    Returns
    -------
    array
        Same shape, dtype and device as ``x``.

    Notes
    -----
    Semantics of ``torch.nn.functional.logsigmoid`` and
    ``jax.nn.log_sigmoid``, with no deviation.

    :math:`\log\sigma(x) = -\log(1 + e^{-x})`, evaluated as
    :math:`-\operatorname{softplus}(-x)`; for large positive ``x`` the result is
    :math:`-e^{-x}`, not a rounded 0.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([-800.0, 40.0])
    >>> xp.log(1.0 / (1.0 + xp.exp(-x)))  # naive: -inf, and 0 instead of -4e-18
    Array([-inf,  0.], dtype=array_api_strict.float64)
    >>> xploss.log_sigmoid(x)
    Array([-8.00000000e+02, -4.24835426e-18], dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("log_sigmoid", x)
    return to_output(xp, -_softplus(xp, -xc), x.dtype)


def sigmoid(x, /):
    r"""The logistic sigmoid, :math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Parameters
    ----------
    x : array
        Real floating array.

    Returns
    -------
    array
        Same shape, dtype and device as ``x``.

    Notes
    -----
    Semantics of ``torch.sigmoid`` and ``jax.nn.sigmoid``, with no deviation.

    For :math:`x < 0` it is evaluated as :math:`e^{x} / (1 + e^{x})`, so the
    exponential never overflows and small results keep their relative accuracy.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.sigmoid(xp.asarray([-800.0, -50.0, 0.0, 800.0]))
    Array([0.00000000e+000, 1.92874985e-022, 5.00000000e-001, 1.00000000e+000],
          dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("sigmoid", x)
    return to_output(xp, _sigmoid(xp, xc), x.dtype)


def log1mexp(x, /):
    r""":math:`\log(1 - e^{x})` for :math:`x \le 0`.

    Parameters
    ----------
    x : array
        Real floating array; ``x > 0`` is outside the domain and gives NaN.

    Returns
    -------
    array
        Same shape, dtype and device as ``x``; ``-inf`` at ``x = 0``.

    Notes
    -----
    torch, JAX and SciPy have no such function; this is the function of
    Mächler [1]_ written in the sign of its argument, :math:`x = -a \le 0`.

    Following Mächler [1]_: :math:`\log(-\operatorname{expm1}(x))` for
    :math:`x > -\log 2` and :math:`\operatorname{log1p}(-e^{x})` otherwise; each
    branch is accurate where it is used.

    References
    ----------
    .. [1] M. Mächler, "Accurately Computing log(1 − exp(−|a|))", Rmpfr
       vignette, 2012.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([-1e-20, -50.0])
    >>> xp.log(1.0 - xp.exp(x))  # naive: -inf and 0
    Array([-inf,  -0.], dtype=array_api_strict.float64)
    >>> xploss.log1mexp(x)
    Array([-4.60517019e+01, -1.92874985e-22], dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("log1mexp", x)
    near = xc > -_LN2
    pole = xc == 0
    half = const(xp, -_LN2, xc)
    # The pole at 0 is returned as -inf directly, not as log(0).
    near_value = xp.log(-expm1_neg(xp, xp.where(near & ~pole, xc, half)))
    far_value = log1p_neg(xp, -xp.exp(xp.where(near, half, xc)))
    out = xp.where(pole, const(xp, -math.inf, xc), xp.where(near, near_value, far_value))
    return to_output(xp, out, x.dtype)


def _xlogy_like(fname, x, y, *, log1p):
    xp = namespace(fname, x=x, y=y)
    _checks.broadcast_shapes(fname, x=x, y=y)
    _checks.floating(xp, fname, "x", x)
    _checks.floating(xp, fname, "y", y)
    dtype = result_dtype(xp, x, y)
    xc = to_compute(xp, xp.astype(x, dtype))
    yc = to_compute(xp, xp.astype(y, dtype))
    pole = -1.0 if log1p else 0.0
    # x = 0 makes the product 0 even where the log is infinite (y at the pole or
    # y = inf): that y is replaced by a harmless one before the log, so the value
    # and both derivatives are finite. A NaN y still gives NaN, and so does a y
    # below the pole (-inf too), whose log is never evaluated.
    at_pole = yc == pole
    below = yc < pole
    unsafe = at_pole | below | ((xc == 0) & (yc == math.inf))
    ys = xp.where(unsafe, const(xp, pole + 1.0, yc), yc)
    if log1p:
        # log1p(y) rounds to y below the smallest normal; some libraries' log1p
        # returns 0 for the smallest subnormals, which a large x would magnify.
        tiny = float(xp.finfo(ys.dtype).smallest_normal)
        logs = xp.where((ys < tiny) & (ys > -tiny), ys, log1p_neg(xp, ys))
    else:
        logs = xp.log(ys)
    # At the pole: x * (-inf), i.e. -inf * sign(x), and 0 for x = 0; no log(0) evaluated.
    logs = xp.where(at_pole & (xc != 0), const(xp, -math.inf, ys), logs)
    return to_output(xp, xp.where(below, const(xp, math.nan, ys), xc * logs), dtype)


def xlogy(x, y, /):
    r""":math:`x \log y`, with :math:`0 \log y = 0` for every ``y >= 0``.

    Parameters
    ----------
    x, y : array
        Real floating arrays, broadcast together.

    Returns
    -------
    array
        The broadcast shape, in the promoted dtype of ``x`` and ``y``.

    Notes
    -----
    SciPy's convention (``scipy.special.xlogy``) for ``x = 0``: the result is 0
    for ``y = 0`` and ``y = inf`` too. The derivatives are finite there: with
    respect to ``y`` it is ``x / y = 0``; with respect to ``x`` at ``y = 0`` it
    is 0 (the exact value, ``log 0``, is not finite). ``y < 0`` (``-inf`` too)
    gives NaN whatever ``x`` (SciPy: 0 for ``x = 0``).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([0.0, 0.5])
    >>> y = xp.asarray([0.0, 0.25])
    >>> x * xp.log(y)  # naive: 0 * -inf
    Array([        nan, -0.69314718], dtype=array_api_strict.float64)
    >>> xploss.xlogy(x, y)
    Array([ 0.        , -0.69314718], dtype=array_api_strict.float64)
    """
    return _xlogy_like("xlogy", x, y, log1p=False)


def xlog1py(x, y, /):
    r""":math:`x \operatorname{log1p}(y)`, with 0 for ``x = 0`` and ``y >= -1``.

    Parameters
    ----------
    x, y : array
        Real floating arrays, broadcast together.

    Returns
    -------
    array
        The broadcast shape, in the promoted dtype of ``x`` and ``y``.

    Notes
    -----
    SciPy's convention (``scipy.special.xlog1py``): 0 for ``x = 0`` even at
    ``y = -1`` or ``y = inf``, with finite derivatives there. ``y < -1``
    (``-inf`` too) gives NaN whatever ``x`` (SciPy: 0 for ``x = 0``).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.xlog1py(xp.asarray([0.0, 2.0]), xp.asarray([-1.0, 1e-20]))
    Array([0.e+00, 2.e-20], dtype=array_api_strict.float64)
    """
    return _xlogy_like("xlog1py", x, y, log1p=True)


def log_cosh(x, /):
    r""":math:`\log\cosh x`, accurate for tiny and for huge ``x``.

    Parameters
    ----------
    x : array
        Real floating array.

    Returns
    -------
    array
        Same shape, dtype and device as ``x``.

    Notes
    -----
    The elementwise term of ``optax.losses.log_cosh`` and
    ``keras.losses.log_cosh`` (which apply it to a residual); torch has none.

    For :math:`|x| < 1/2` the Maclaurin series
    :math:`\sum_n 2^{2n}(2^{2n}-1)B_{2n}\,x^{2n} / (2n\,(2n)!)` to 18 terms
    (truncation below 1e-19 relative: ``x = 1e-5`` gives 5e-11, where
    ``log(cosh(x))`` gives 0); for :math:`1/2 \le |x| < 1`, with
    :math:`z = x/2`, :math:`2\log\cosh z + \operatorname{log1p}(\tanh^2 z)`
    (two positive terms; :math:`\tanh z` from its own series), so no library
    ``sinh``/``tanh`` enters (XLA's float32 ``sinh`` errs by 2.6 ULP).
    Otherwise :math:`|x| - \log 2 + \operatorname{log1p}(e^{-2|x|})`, which
    never overflows.
    The derivative is :math:`\tanh x`.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([1e-5, 1000.0])
    >>> xp.log(xp.cosh(x))  # naive: 0 and inf
    Array([0., inf], dtype=array_api_strict.float64)
    >>> xploss.log_cosh(x)
    Array([5.00000000e-11, 9.99306853e+02], dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("log_cosh", x)
    return to_output(xp, _log_cosh(xp, xc), x.dtype)


def _log_cosh(xp, xc):
    # Plain arithmetic below |x| = 1: no library sinh or tanh (XLA's float32 sinh
    # errs by 2.6 ULP). |x| by a where on the sign (abs's derivative at 0 differs
    # between libraries).
    ax = xp.where(xc < 0, -xc, xc)
    tiny = ax < 0.5
    mid = (ax >= 0.5) & (ax < 1.0)
    zero, one = const(xp, 0.0, xc), const(xp, 1.0, xc)
    # The Maclaurin series of log cosh and tanh in z² (z = |x| < 1/2, or |x|/2 on
    # [1/2, 1), where log cosh 2z = 2 log cosh z + log1p(tanh² z): two positive terms).
    z = xp.where(tiny, ax, xp.where(mid, 0.5 * ax, zero))
    z2 = z * z
    log_cosh_z = z2 * _series(xp, _LOG_COSH_SERIES, z2)
    tanh_z = z * _series(xp, _TANH_SERIES, z2)
    small_value = xp.where(tiny, log_cosh_z, 2.0 * log_cosh_z + xp.log1p(tanh_z * tanh_z))
    # |x| >= 1: |x| - log 2 + log1p(e^-2|x|), two positive terms, never overflowing.
    a = xp.where(tiny | mid, one, ax)
    e = xp.exp(-a)  # e**2 = exp(-2|x|); -2|x| itself could overflow
    large_value = (a - _LN2) + xp.log1p(e * e)
    return xp.where(tiny | mid, small_value, large_value)


def _series(xp, coefficients, z2):
    """Horner's scheme for sum_k c_k z2^k (the constant term first)."""
    out = const(xp, coefficients[-1], z2) + 0.0 * z2
    for c in reversed(coefficients[:-1]):
        out = c + z2 * out
    return out


def _bernoulli_even(n_terms):
    """B_2, B_4, ..., B_2n as exact fractions (Akiyama–Tanigawa algorithm)."""
    from fractions import Fraction

    out, a = [], []
    for m in range(2 * n_terms + 1):
        a.append(Fraction(1, m + 1))
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        if m >= 2 and m % 2 == 0:
            out.append(a[0])
    return out


# log cosh x = sum_{n>=1} 2^{2n} (2^{2n} - 1) B_{2n} x^{2n} / (2n (2n)!), in powers of x²
# after the leading x²: coefficient k multiplies x^{2k}. 18 terms: at |x| = 0.5 the
# first omitted term is below 1e-19 of the sum.
_LOG_COSH_SERIES = [
    float(4**n * (4**n - 1) * b / (2 * n * math.factorial(2 * n)))
    for n, b in enumerate(_bernoulli_even(18), start=1)
]
# tanh z = sum_{n>=1} 2^{2n} (2^{2n} - 1) B_{2n} z^{2n-1} / (2n)!, in powers of z² after
# the leading z. 20 terms: at |z| = 0.5 the first omitted term is below 1e-20 of the sum.
_TANH_SERIES = [
    float(4**n * (4**n - 1) * b / math.factorial(2 * n))
    for n, b in enumerate(_bernoulli_even(20), start=1)
]


# Depth of the continued fraction for the Langevin function on |x| < 2; the
# truncation error at |x| = 2 is below 1e-19 relative (checked against mpmath in
# tests/test_primitives.py::test_langevin_continued_fraction_depth).
_LANGEVIN_CF_DEPTH = 14


def _langevin(xp, x):
    # L is odd: evaluate at |x| with the sign chosen by a where on x < 0.
    neg = x < 0
    ax = xp.where(neg, -x, x)
    small = ax < 2.0
    two, forty = const(xp, 2.0, x), const(xp, 40.0, x)
    # Lambert's continued fraction: coth x - 1/x = x/(3 + x²/(5 + x²/(7 + ...))),
    # all terms positive, so bottom-up evaluation is stable.
    xs = xp.where(small, ax, two)
    x2 = xs * xs
    denom = const(xp, 2.0 * _LANGEVIN_CF_DEPTH + 3.0, x) + 0.0 * x2
    for k in range(_LANGEVIN_CF_DEPTH, 0, -1):
        denom = (2.0 * k + 1.0) + x2 / denom
    small_value = xs / denom
    # |x| >= 2: coth x - 1/x = (1 - 1/x) + 2/expm1(2x); beyond 40 the last term is
    # below 1e-34 and its argument is held there, so expm1 never overflows.
    xl = xp.where(small, two, ax)
    xe = xp.where(xl < 40.0, xl, forty)
    large_value = (1.0 - 1.0 / xl) + 2.0 / xp.expm1(2.0 * xe)
    value = xp.where(small, small_value, large_value)
    return xp.where(neg, -value, value)


def langevin(x, /):
    r"""The Langevin function :math:`L(x) = \coth x - 1/x`, with :math:`L(0) = 0`.

    Parameters
    ----------
    x : array
        Real floating array.

    Returns
    -------
    array
        Same shape, dtype and device as ``x``.

    Notes
    -----
    The Langevin function of statistical physics; torch, JAX and SciPy have
    none.

    For :math:`|x| < 2` Lambert's continued fraction
    :math:`L(x) = x / (3 + x^2 / (5 + x^2 / (7 + \dots)))`, which has no
    cancellation and is exact to the last bit at 0 and for tiny ``x``
    (:math:`L(x) \approx x/3`). For :math:`|x| \ge 2`,
    :math:`L(x) = 1 - 1/x + 2/\operatorname{expm1}(2x)`. Value and derivative
    (:math:`L'(x) = 1/x^2 - 1/\sinh^2 x`, :math:`L'(0) = 1/3`) are finite for
    every finite input.

    It turns expressions with a removable singularity at 0 into stable ones, for
    example :math:`1/(1 - e^{-x}) - 1/x = \tfrac12 (1 + L(x/2))` for
    :math:`x \ge -2` (below, :math:`1 + L(x/2)` cancels as :math:`L \to -1`;
    docs/user-losses.md checks the complete function).

    References
    ----------
    .. [1] J. H. Lambert, "Mémoire sur quelques propriétés remarquables des
       quantités transcendantes circulaires et logarithmiques", 1768
       (continued fraction of tanh).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([0.0, 1e-8, 1e10])
    >>> 1.0 / xp.tanh(x) - 1.0 / x  # naive: NaN at 0, cancellation at 1e-8
    Array([nan,  0., 1.], dtype=array_api_strict.float64)
    >>> xploss.langevin(x)
    Array([0.00000000e+00, 3.33333333e-09, 1.00000000e+00], dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("langevin", x)
    return to_output(xp, _langevin(xp, xc), x.dtype)


# ---------------------------------------------------------------------------
# public reductions along an axis


def logsumexp(x, /, *, axis=-1, keepdims=False):
    r""":math:`\log \sum_i e^{x_i}` along ``axis``, without overflow or underflow.

    Parameters
    ----------
    x : array
        Real floating array; ``-inf`` elements are masked (contribute 0).
    axis : int, tuple of int or None, optional
        Axis or axes to reduce (default the last; None for all).
    keepdims : bool, optional
        Keep the reduced axes with size 1.

    Returns
    -------
    array
        ``x`` reduced along ``axis``, same dtype and device.

    Notes
    -----
    Semantics of ``torch.logsumexp`` and ``scipy.special.logsumexp``
    (without SciPy's ``b`` and ``return_sign``), with ``axis`` optional and
    keyword-only.

    :math:`m + \operatorname{log1p}(\sum_{i \ne k} e^{x_i - m})` with
    :math:`m = x_k = \max x`. A row of only ``-inf`` gives ``-inf``; a row
    containing ``+inf`` gives ``+inf``. The result is accurate to a few ULP of
    :math:`|m| + |\log \sum e^{x_i - m}|`: where the two cancel (the result near
    0 with large inputs) the relative error grows with the condition number.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([1000.0, 1000.0, -xp.inf])
    >>> xp.log(xp.sum(xp.exp(x)))  # naive: overflows
    Array(inf, dtype=array_api_strict.float64)
    >>> xploss.logsumexp(x)
    Array(1000.69314718, dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("logsumexp", x)
    axes = _normalize_axis("logsumexp", x.ndim, axis)
    sh = _shifted(xp, xc, axes)
    m, u = sh.m, sh.u
    out = m + xp.log1p(u)
    if not keepdims:
        out = xp.squeeze(out, axis=axes) if axes else out
    return to_output(xp, out, x.dtype)


def log_softmax(x, /, *, axis=-1):
    r"""Log-softmax, :math:`x_i - \log \sum_j e^{x_j}`, along ``axis``.

    Parameters
    ----------
    x : array
        Real floating array; ``-inf`` elements are masked classes.
    axis : int or tuple of int, optional
        The class axis (default the last).

    Returns
    -------
    array
        Same shape, dtype and device as ``x``.

    Notes
    -----
    Semantics of ``torch.nn.functional.log_softmax`` (``dim`` is ``axis``, the
    last by default). Deviation: a row whose classes are all masked gives
    ``-inf`` (torch: NaN).

    :math:`(x_i - m) - \operatorname{log1p}(\sum_{j \ne k} e^{x_j - m})`: both
    terms have the same sign, so every entry is accurate to a few ULP,
    including the tiny :math:`-\log p` of a dominant class. Masked (``-inf``)
    classes get ``-inf``; so does every class of a row that is entirely masked.
    With logits of opposite signs near ±finfo.max an entry is ``-inf`` exactly
    where :math:`x_i - m` rounds beyond the range: ``[finfo.max, -1]`` gives
    ``[0, -finfo.max]``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([0.0, -20.0, -xp.inf])
    >>> x - xp.log(xp.sum(xp.exp(x)))  # naive: log of a sum near 1, 8 digits lost
    Array([-2.06115369e-09, -2.00000000e+01,            -inf], dtype=array_api_strict.float64)
    >>> xploss.log_softmax(x)
    Array([-2.06115362e-09, -2.00000000e+01,            -inf], dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("log_softmax", x)
    axes = _normalize_axis("log_softmax", x.ndim, axis)
    return to_output(xp, _log_p(xp, xc, _shifted(xp, xc, axes)), x.dtype)


def softmax(x, /, *, axis=-1):
    r"""Softmax, :math:`e^{x_i} / \sum_j e^{x_j}`, along ``axis``.

    Parameters
    ----------
    x : array
        Real floating array; ``-inf`` elements are masked classes (probability 0).
    axis : int or tuple of int, optional
        The class axis (default the last).

    Returns
    -------
    array
        Same shape, dtype and device as ``x``.

    Notes
    -----
    Semantics of ``torch.nn.functional.softmax`` (``dim`` is ``axis``, the
    last by default). Deviation: a row whose classes are all masked gives 0
    (torch: NaN).

    :math:`e^{x_i - m} / \sum_j e^{x_j - m}`, with the rounding error of each
    :math:`x_i - m` carried into the exponential, so entries far below the
    maximum keep their relative accuracy. A row that is entirely masked gives 0.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([1000.0, 0.0, -xp.inf])
    >>> xp.exp(x) / xp.sum(xp.exp(x))  # naive: inf / inf
    Array([nan,  0.,  0.], dtype=array_api_strict.float64)
    >>> xploss.softmax(x)
    Array([1., 0., 0.], dtype=array_api_strict.float64)
    """
    xp, xc = _prepare("softmax", x)
    axes = _normalize_axis("softmax", x.ndim, axis)
    sh = _shifted(xp, xc, axes)
    m, e, u = sh.m, sh.e, sh.u
    out = xp.where(m == -math.inf, const(xp, 0.0, xc), e / (1.0 + u))
    return to_output(xp, out, x.dtype)
