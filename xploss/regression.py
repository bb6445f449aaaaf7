"""Regression losses: squared, absolute, Huber, smooth L1, log-cosh, quantile,
percentage and log errors, and the Poisson and Gaussian negative log-likelihoods.

Names, argument order and semantics follow ``torch.nn.functional`` where torch
has the loss (``mse_loss``, ``l1_loss``, ``huber_loss``, ``smooth_l1_loss``,
``poisson_nll_loss``, ``gaussian_nll_loss``), Keras's for ``mape_loss`` and
``msle_loss``, optax's for ``log_cosh_loss``; every deviation is listed in the
function's Notes. ``input`` and ``target`` must have the same shape: there is
no implicit broadcasting (torch broadcasts with a warning). 16-bit floating
inputs are computed in float32 and the loss is returned in float32.
"""

from __future__ import annotations

import math

from . import _checks
from ._reductions import reduce, reduce_squares
from ._support import const, device, log1p_neg, mul0, namespace, two_sum_error
from .classification import _binary_prepare, _cast_like, _nan_where
from .primitives import _log_cosh, _xlogy_like

__all__ = [
    "gaussian_nll_loss",
    "huber_loss",
    "l1_loss",
    "log_cosh_loss",
    "mape_loss",
    "mse_loss",
    "msle_loss",
    "poisson_nll_loss",
    "quantile_loss",
    "smooth_l1_loss",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _prepare(fname, input, target, reduction, weight=None):
    """Checks shared by the (input, target[, weight]) losses; returns ``xp`` and
    the arrays in their common compute dtype."""
    _checks.reduction(fname, reduction)
    xp, x, t = _binary_prepare(fname, input, target, weight)
    if weight is not None:
        _checks.same_shape(fname, "input", input, "weight", weight)
    return xp, x, t, _cast_like(xp, weight, x)


def _halved_residual(xp, a, b):
    """``(d, scale)`` with ``d = (a - b)·scale`` rounded once and ``scale`` 1, or
    1/2 where ``a - b`` itself overflows (operands of opposite signs near
    finfo.max): the losses pass ``scale`` to :func:`reduce`, so they overflow
    only where their exact value does."""
    d = a - b
    # Also where an operand is infinite: halving it changes nothing, and the
    # unselected half has a finite derivative (1/2), so no NaN reaches a gradient.
    over = xp.isinf(d)
    scale = xp.where(over, const(xp, 0.5, d), const(xp, 1.0, d))
    return xp.where(over, a * 0.5 - b * 0.5, d), scale


def mse_loss(input, target, /, *, weight=None, reduction="mean"):
    r"""Mean squared error, :math:`(x - y)^2`.

    Parameters
    ----------
    input, target : array
        Real floating arrays of one shape.
    weight : array, optional
        Per-element weights, the shape of ``input``; ``'mean'`` then divides by
        their sum (torch's weighted mean).
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.mse_loss`` semantics, except that shapes must match.
    Without ``weight``, a square beyond finfo.max (a residual beyond its
    square root) is inf under ``'none'`` and ``'sum'``, as exact, but does
    not make a finite mean inf (torch: inf).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.mse_loss(xp.asarray([1.0, 2.0]), xp.asarray([1.5, 2.0]))
    Array(0.125, dtype=array_api_strict.float64)
    """
    xp, x, t, w = _prepare("mse_loss", input, target, reduction, weight)
    d = x - t
    if w is None:
        return reduce_squares(xp, d, reduction)
    # torch's weighted 'mean' divides by sum(weight) (l1_loss too).
    return reduce(xp, d * d, reduction, weight=w, normalizer=w)


def l1_loss(input, target, /, *, weight=None, reduction="mean"):
    r"""Mean absolute error, :math:`|x - y|`.

    Parameters
    ----------
    input, target, weight, reduction
        As in :func:`mse_loss`.

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.l1_loss`` semantics, except that shapes must match.
    The derivative at ``x = y`` is 0 on every backend. A residual beyond
    finfo.max (operands of opposite signs near it) is inf under ``'none'``
    and ``'sum'``, as exact, but does not make a finite mean or weighted
    sum inf (torch: inf).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.l1_loss(xp.asarray([1.0, 2.0]), xp.asarray([1.5, 2.0]))
    Array(0.25, dtype=array_api_strict.float64)
    """
    xp, x, t, w = _prepare("l1_loss", input, target, reduction, weight)
    if w is None and reduction != "mean":
        # An element |x - y| beyond finfo.max is inf, and so is the sum: as exact.
        return reduce(xp, _abs(xp, x - t), reduction)
    d, scale = _halved_residual(xp, x, t)
    return reduce(xp, _abs(xp, d), reduction, weight=w, normalizer=w, scale=scale,
                  scale_min=0.5)


def _abs(xp, d):
    """|d| with derivative 0 at 0 on every library (abs's differs: JAX gives 1)."""
    return xp.where(d == 0, const(xp, 0.0, d), xp.abs(d))


def _half_residual(x, t):
    """``(x - y)/2``, which cannot overflow (``x - y`` itself overflows for
    operands of opposite signs near finfo.max); exact except where ``x`` or
    ``y`` is subnormal (a lost last bit, below which the quadratic losses
    that use it underflow anyway)."""
    return x * 0.5 - t * 0.5


def _huber_half(xp, h, delta, *, smooth=False):
    """Half the Huber loss of the residual ``d = 2h``: ``h²`` for ``|h| <
    delta/2``, else ``delta·(|h| - delta/4)``; with ``smooth``, half the
    smooth L1 loss: ``h²/delta``, else ``|h| - delta/4``. A loss beyond
    finfo.max is finite here, and the reduction then doubles a sum or mean
    that overflows only where its exact value does.

    Both branches are one product of ``m = min(|h|, delta/2)``: Huber is
    ``(2m)·(|h| - m/2)``, which is ``(2|h|)·(|h|/2)`` inside and
    ``delta·(|h| - delta/4)`` outside, with the same single roundings as each
    branch alone (the halvings and doublings are exact); smooth L1 is ``(|h| -
    m) + m·(m/delta)``, exactly ``0 + |h|·(|h|/delta)`` inside and ``(|h| -
    delta/2) + delta/4`` outside (no cancellation: both terms are >= 0). A NaN
    residual stays NaN through ``|h|``. ``m`` is a select, not a ``clip``:
    outside, the cotangent reaching ``m`` (about ``2|h|``) can overflow, and
    a clip's zero derivative times it is NaN in some autodiffs.
    """
    # abs's derivative at 0 differs between libraries, but it is multiplied
    # by 2|h| = 0 (inside) there.
    a = xp.abs(h)
    half_delta = const(xp, 0.5 * delta, h)
    # The test takes the Python scalar: against the 0-d array, torch.compile
    # saves the mask for the backward instead of recomputing it (10x slower).
    m = xp.where(a < 0.5 * delta, a, half_delta)
    if smooth:
        return (a - m) + m * (m / delta)
    return (m + m) * (a - m * 0.5)


def huber_loss(input, target, /, *, delta=1.0, weight=None, reduction="mean"):
    r"""Huber loss: quadratic within ``delta`` of the target, linear beyond.

    .. math::

        \ell = \begin{cases} \tfrac12 d^2 & |d| < \delta \\
        \delta\,(|d| - \tfrac12\delta) & \text{otherwise} \end{cases},
        \qquad d = x - y

    Parameters
    ----------
    input, target : array
        Real floating arrays of one shape.
    delta : float, optional
        Threshold, ``> 0``.
    weight : array, optional
        Per-element weights, the shape of ``input``; ``'mean'`` stays the mean
        over elements (torch's convention for ``huber_loss``).
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.huber_loss`` semantics, except that shapes must match.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.huber_loss(xp.asarray([0.5, 3.0]), xp.asarray([0.0, 0.0]), reduction="none")
    Array([0.125, 2.5  ], dtype=array_api_strict.float64)
    """
    fname = "huber_loss"
    if not delta > 0:
        msg = f"{fname}: 'delta' must be > 0, got {delta!r}"
        raise ValueError(msg)
    xp, x, t, w = _prepare(fname, input, target, reduction, weight)
    return 2.0 * reduce(xp, _huber_half(xp, _half_residual(x, t), delta), reduction, weight=w)


def smooth_l1_loss(input, target, /, *, beta=1.0, reduction="mean"):
    r"""Smooth L1 loss: Huber loss divided by ``beta``.

    .. math::

        \ell = \begin{cases} \tfrac12 d^2 / \beta & |d| < \beta \\
        |d| - \tfrac12\beta & \text{otherwise} \end{cases}

    Parameters
    ----------
    input, target : array
        Real floating arrays of one shape.
    beta : float, optional
        Threshold, ``>= 0``; 0 gives :func:`l1_loss`.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.smooth_l1_loss`` semantics, except that shapes must
    match.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.smooth_l1_loss(xp.asarray([0.5, 3.0]), xp.asarray([0.0, 0.0]), reduction="none")
    Array([0.125, 2.5  ], dtype=array_api_strict.float64)
    """
    fname = "smooth_l1_loss"
    if not beta >= 0:
        msg = f"{fname}: 'beta' must be >= 0, got {beta!r}"
        raise ValueError(msg)
    xp, x, t, _ = _prepare(fname, input, target, reduction)
    if beta == 0:
        return reduce(xp, _abs(xp, x - t), reduction)
    loss = _huber_half(xp, _half_residual(x, t), beta, smooth=True)
    return 2.0 * reduce(xp, loss, reduction)


def log_cosh_loss(input, target, /, *, reduction="mean"):
    r"""Log-cosh loss, :math:`\log\cosh(x - y)`.

    Parameters
    ----------
    input, target : array
        Real floating arrays of one shape.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``optax.losses.log_cosh`` semantics (which returns the elementwise loss:
    ``reduction='none'``), evaluated by :func:`xploss.log_cosh`: a residual
    of 1e-5 gives 5e-11 (``log(cosh(d))`` gives 0), and a residual of 1e30
    gives 1e30 - log 2 (``cosh`` overflows to inf).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.log_cosh_loss(xp.asarray([1e-5, 1e30]), xp.asarray([0.0, 0.0]), reduction="none")
    Array([5.e-11, 1.e+30], dtype=array_api_strict.float64)
    """
    xp, x, t, _ = _prepare("log_cosh_loss", input, target, reduction)
    d, scale = _halved_residual(xp, x, t)
    # A halved residual exceeds finfo.max/4, where log cosh(2h)/2 = |h| - log(2)/2
    # rounds to |h| = log_cosh(h): the loss is the same function of d either way.
    return reduce(xp, _log_cosh(xp, d), reduction, scale=scale, scale_min=0.5)


def quantile_loss(input, target, /, *, quantile=0.5, reduction="mean"):
    r"""Quantile (pinball) loss.

    .. math:: \ell = \max(q\,r,\ (q - 1)\,r), \qquad r = y - x

    Parameters
    ----------
    input : array
        Predicted quantile ``x``.
    target : array
        Observations ``y``, the shape of ``input``.
    quantile : float, optional
        ``q`` in (0, 1); 0.5 gives half the absolute error.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    torch has no quantile loss; this is the pinball loss of quantile
    regression (Koenker and Bassett, 1978), as in scikit-learn's
    ``mean_pinball_loss`` with ``alpha=q``.

    The residual is formed so that it overflows only where the loss does
    (``q·r`` is finite for ``|r|`` up to finfo.max / q).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x = xp.asarray([1.0, 3.0])
    >>> xploss.quantile_loss(x, xp.asarray([2.0, 2.0]), quantile=0.9, reduction="none")
    Array([0.9, 0.1], dtype=array_api_strict.float64)
    """
    fname = "quantile_loss"
    if not 0 < quantile < 1:
        msg = f"{fname}: 'quantile' must lie in (0, 1), got {quantile!r}"
        raise ValueError(msg)
    xp, x, t, _ = _prepare(fname, input, target, reduction)
    r, scale = _halved_residual(xp, t, x)
    loss = xp.where(r >= 0, quantile * r, (quantile - 1.0) * r)
    return reduce(xp, loss, reduction, scale=scale, scale_min=0.5)


def mape_loss(input, target, /, *, reduction="mean"):
    r"""Mean absolute percentage error, :math:`100\,|x - y| / |y|`.

    Parameters
    ----------
    input, target : array
        Real floating arrays of one shape.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Keras's ``mean_absolute_percentage_error``, without its clamp: Keras
    divides by ``max(|y|, 1e-7)``, which turns a target of 0 into a huge but
    finite number that depends on the constant. Here a target of 0 gives
    ``+inf``, except for a perfect prediction (``x = y = 0``), which gives 0
    with zero gradient. An infinite target gives 100 for a finite prediction
    (the limit of the ratio) and NaN for an infinite one. A ratio beyond
    finfo.max is inf under ``'none'``; ``'mean'`` and ``'sum'`` overflow
    only where their exact value does. ``reduction='none'`` is elementwise
    (Keras averages the last axis first; the overall mean is the same).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> xploss.mape_loss(xp.asarray([110.0, 0.0]), xp.asarray([100.0, 0.0]), reduction="none")
    Array([10.,  0.], dtype=array_api_strict.float64)
    """
    xp, x, t, _ = _prepare("mape_loss", input, target, reduction)
    d, scale = _halved_residual(xp, x, t)
    a, ta = _abs(xp, d), _abs(xp, t)
    zero, one = const(xp, 0.0, d), const(xp, 1.0, d)
    at_zero = ta == 0
    # A ratio that may exceed finfo.max (a small target) is computed times
    # s = 2**-64 and reduced as such (see reduce), so only a sum or mean whose
    # exact value overflows does.
    s = xp.where(a > ta * (float(xp.finfo(d.dtype).max) * 2.0 ** -16),
                 const(xp, 2.0 ** -64, d), one)
    t_inf = ta == math.inf
    ratio = (a * s) / (xp.where(at_zero | t_inf, one, ta) * scale)
    inf = const(xp, math.inf, d)
    # t = 0: 0 for x = 0, +inf otherwise (NaN stays NaN); constants, so the
    # derivative there is 0 rather than 0·inf.
    at_zero_value = xp.where(a == 0, zero, xp.where(xp.isnan(a), a, inf))
    # An infinite target and a finite prediction: the limit |x - y|/|y| -> 1
    # (an infinite prediction gives inf/inf, NaN).
    at_inf = t_inf & xp.isfinite(x)
    loss = xp.where(at_zero, at_zero_value,
                    xp.where(at_inf, const(xp, 100.0, d),
                             xp.where(t_inf, const(xp, math.nan, d), 100.0 * ratio)))
    return reduce(xp, loss, reduction, scale=s, scale_min=2.0 ** -64)


def msle_loss(input, target, /, *, reduction="mean"):
    r"""Mean squared logarithmic error, :math:`(\operatorname{log1p} x - \operatorname{log1p} y)^2`.

    Parameters
    ----------
    input, target : array
        Real floating arrays of one shape, ``>= -1``.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    Keras's ``mean_squared_logarithmic_error``, without its clamp: Keras
    replaces negative values by 1e-7. Here values in (-1, 0) are used as
    given, -1 gives ``+inf`` (log1p(-1) = -inf) unless both are -1, equal
    values give 0 (also at -1 and inf), and values below -1 give NaN.
    The difference of logs is evaluated as
    :math:`\operatorname{log1p}((x - y) / (1 + y))`, with the rounding errors of
    ``x - y`` and ``1 + y`` carried (TwoSum), so it keeps its relative accuracy
    when ``x`` and ``y`` nearly agree, where the difference of two rounded
    logs cancels. ``reduction='none'`` is elementwise.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x, y = xp.asarray([1e8 + 1.0]), xp.asarray([1e8])
    >>> (xp.log1p(x) - xp.log1p(y)) ** 2  # naive: the logs cancel
    Array([1.00000017e-16], dtype=array_api_strict.float64)
    >>> xploss.msle_loss(x, y, reduction="none")  # exact: 9.9999997000000069e-17
    Array([9.9999997e-17], dtype=array_api_strict.float64)
    """
    fname = "msle_loss"
    xp, x, t, _ = _prepare(fname, input, target, reduction)
    _checks.values(xp, fname, "input", x < -1.0, "be >= -1")
    _checks.values(xp, fname, "target", t < -1.0, "be >= -1")
    zero = const(xp, 0.0, x)
    d, d_err = x - t, two_sum_error(xp, x, -t)
    # log((1 + x)/(1 + y)) = log1p(r1) = -log1p(r2), r1 = (x - y)/(1 + y),
    # r2 = (y - x)/(1 + x): the form whose ratio is >= -1/2 has no cancellation.
    r1 = _ratio(xp, d, d_err, t)
    r2 = _ratio(xp, -d, -d_err, x)
    use_1 = xp.isfinite(r1) & (r1 >= -0.5)
    use_2 = ~use_1 & xp.isfinite(r2) & (r2 >= -0.5)
    form_1 = log1p_neg(xp, xp.where(use_1, r1, zero))
    form_2 = -log1p_neg(xp, xp.where(use_2, r2, zero))
    # Neither ratio representable (1 + x and 1 + y differ by more than the float
    # range): the logs have opposite signs, so their difference cannot cancel.
    rest = ~use_1 & ~use_2 & (x != t)
    form_3 = _log1p_at_least(xp, x, rest) - _log1p_at_least(xp, t, rest)
    # x = y is a perfect prediction, 0 also at -1 and at inf (no inf - inf).
    diff = xp.where(use_1, form_1, xp.where(use_2, form_2, xp.where(x == t, zero, form_3)))
    loss = diff * diff
    nan = const(xp, math.nan, x)
    # Below -1, and NaN in either argument, give NaN.
    return reduce(xp, xp.where((x >= -1.0) & (t >= -1.0), loss, nan), reduction)


def _log1p_at_least(xp, a, use):
    """log1p(a) where ``use``, for ``a >= -1`` (-inf at -1 as a constant); 0 elsewhere
    and for ``a < -1`` (NaN is applied by the caller), with no log of 0 evaluated."""
    inside = use & (a > -1.0)
    value = log1p_neg(xp, xp.where(inside, a, const(xp, 0.0, a)))
    return xp.where(use & (a == -1.0), const(xp, -math.inf, a), value)


def _ratio(xp, d, d_err, b):
    """(d + d_err)/(1 + b) for ``b > -1``, correcting for the rounding of both sums;
    NaN elsewhere (the caller selects another form there)."""
    one = const(xp, 1.0, b)
    s, s_err = b + 1.0, two_sum_error(xp, b, one)
    zero = const(xp, 0.0, b)
    # Where the ratio would overflow (|d| > s·finfo.max, possible only for s < 1)
    # it is not used: its operands are replaced first, so no 0·inf reaches a
    # derivative.
    # (|s| < 1: an invalid b < -2 gives s < -1, whose product could overflow.)
    fmax = float(xp.finfo(d.dtype).max)
    d_abs = _abs(xp, d)
    s_below = xp.where(_abs(xp, s) < 1.0, s, one)
    fits = (s >= 1.0) | (d_abs <= s_below * fmax)
    ok = xp.isfinite(d) & (s > 0) & fits
    # The numerator is scaled by c = 2^-h where |d| > 2^h, the denominator by
    # c_s = 2^-h where s > 2^h, and the quotient back by c_s/c, exactly: the
    # derivative of n/s with respect to s is formed by some libraries (JAX's
    # forward mode) as (-ds·n)·s^-2, whose products overflow for n near
    # finfo.max, or for a tangent ds as large as s beside a large n, though the
    # derivative is finite; others (torch) form ((n/s)/s), which the scaling
    # leaves unchanged. Every intermediate stays within 2^(h+2) of the result
    # or of 1, so none overflows or turns subnormal where the result does not.
    h = (math.frexp(fmax)[1] - 2) // 2  # 511 for float64
    small = const(xp, 2.0**-h, b)
    c = xp.where(ok & (d_abs > 2.0**h), small, one)
    s_safe = xp.where(ok, s, one)
    c_s = xp.where(s_safe > 2.0**h, small, one)
    s_scaled = s_safe * c_s
    r = (((xp.where(ok, d, zero) * c) / s_scaled) * c_s) / c
    r = r + ((((xp.where(ok, d_err, zero) - r * xp.where(ok, s_err, zero)) * c) / s_scaled)
             * c_s) / c
    return xp.where(ok, r, const(xp, math.nan, b))


def poisson_nll_loss(input, target, /, *, log_input=True, full=False, eps=1e-8,
                     reduction="mean"):
    r"""Poisson negative log-likelihood.

    .. math::

        \ell = e^{x} - y\,x \quad(\texttt{log\_input}), \qquad
        \ell = x - y \log(x + \varepsilon) \quad(\text{otherwise})

    plus, with ``full``, Stirling's approximation of :math:`\log y!`,
    :math:`y \log y - y + \tfrac12 \log(2\pi y)`, for :math:`y > 1`.

    Parameters
    ----------
    input : array
        Log-rate (``log_input=True``) or rate.
    target : array
        Counts ``y >= 0``, the shape of ``input`` (a negative count gives NaN).
    log_input : bool, optional
    full : bool, optional
        Add the Stirling term.
    eps : float, optional
        Added to the rate before its log when ``log_input=False`` (torch's
        convention; pass 0 for the exact likelihood).
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.poisson_nll_loss`` semantics, except that shapes must
    match and that a zero count contributes ``0·x = 0`` also where ``x`` is
    infinite (torch gives NaN for ``y = 0, x = -inf``, a rate of exactly 0).
    The terms can cancel (the loss is a difference); the result is accurate
    to a few ULP of the terms' magnitudes. Where ``y·x``, ``y log y`` or
    ``e^x`` may exceed finfo.max, the element is computed times ``2**-64``
    and reduced from there: ``'mean'`` and ``'sum'`` overflow only where
    their exact value does, and ``e^x - y·x`` with both beyond the range is
    their difference, not NaN (``-inf`` for an infinite count, ``e^x`` being
    finite). An infinite ``x`` gives the limit ``+inf`` for a finite count
    and NaN for an infinite one (torch: NaN for every positive count).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x, y = xp.asarray([0.0, -xp.inf]), xp.asarray([2.0, 0.0])
    >>> xploss.poisson_nll_loss(x, y, reduction="none")
    Array([1., 0.], dtype=array_api_strict.float64)
    """
    fname = "poisson_nll_loss"
    if not eps >= 0:
        msg = f"{fname}: 'eps' must be >= 0, got {eps!r}"
        raise ValueError(msg)
    xp, x, t, _ = _prepare(fname, input, target, reduction)
    # A term can exceed finfo.max where the mean it feeds does not (a count near
    # finfo.max times a log-rate of -2): where y·x, y·log y or e^x could, the
    # term is computed times s = 2**-64 (exact scalings) and reduced as such.
    big = float(xp.finfo(x.dtype).max)
    log_max = math.log(big)
    one = const(xp, 1.0, x)
    ax = xp.where(x < 0, -x, x)
    at = xp.where(t < 0, -t, t)
    over = at > (big / 8) / xp.maximum(ax, const(xp, log_max, x))
    if log_input:
        over = over | (x > log_max)
    s = xp.where(over, const(xp, 2.0 ** -64, x), one)
    ts = t * s
    if log_input:
        # x = -inf (rate 0) with y = 0: exp gives 0, and mul0 takes 0·(-inf) as 0.
        # Beyond log(finfo.max), e^x·s is (e^(x/2)·2^-32)^2. Beyond 2·log(finfo.max)
        # e^x exceeds y·x for every finite y, where both would overflow (inf - inf):
        # the term is finite but beyond the range even times s. It stands as
        # finfo.max times s, so that a reduction is +inf unless another term is
        # -inf (an infinite count); an infinite count here gives -inf (e^x finite).
        # An infinite logit gives +inf, the limit, for a finite count, and NaN
        # (no limit) for an infinite one.
        huge = x > 2.0 * log_max
        half = x > log_max
        xs = xp.where(huge, const(xp, 0.0, x), x)
        e = xp.exp(xp.where(half, xs * 0.5, xs))
        e_s = xp.where(half, (e * 2.0 ** -32) * (e * 2.0 ** -32), e * s)
        inf, neg_inf = const(xp, math.inf, x), const(xp, -math.inf, x)
        beyond = xp.where(t == inf, xp.where(x == inf, const(xp, math.nan, x), neg_inf),
                          xp.where(x == inf, inf, const(xp, big, x)))
        yx = mul0(xp, xp.where(huge, const(xp, 0.0, x), ts), xs)
        loss = xp.where(huge, xp.where(xp.isnan(t), t, beyond), e_s - yx)
    else:
        # log(x + eps) of the exact sum: log(s) + e/s with s + e = x + eps (TwoSum);
        # near x = 1 the rounding of s would otherwise dominate log(s).
        eps_c = const(xp, eps, x)
        r = x + eps_c
        positive = r > 0
        r_safe = xp.where(positive, r, one)
        correction = xp.where(positive, two_sum_error(xp, x, eps_c) / r_safe,
                              const(xp, 0.0, x))
        # (An infinite count takes its sign from log(s) alone: inf·correction
        # could be inf of the other sign.)
        ts_finite = xp.where(xp.isinf(ts), const(xp, 0.0, x), ts)
        loss = x * s - (_xlogy_like(fname, ts, r, log1p=False) + mul0(xp, ts_finite, correction))
    if full:
        above = t > 1.0
        tf = xp.where(above, t, const(xp, 2.0, t))
        tfs = tf * s
        log_t = xp.log(tf)  # log(2π·t) as a sum: the product overflows near finfo.max
        # t·(log t - 1): t log t - t would be inf - inf at t = inf.
        stirling = tfs * (log_t - 1.0) + (0.5 * s) * (log_t + math.log(2.0 * math.pi))
        loss = loss + xp.where(above, stirling, const(xp, 0.0, t))
    # A negative count is not a count: NaN, never a number.
    negative = t < 0.0
    _checks.values(xp, fname, "target", negative, "be >= 0 (counts)")
    return reduce(xp, _nan_where(xp, negative, loss), reduction, scale=s, scale_min=2.0 ** -64)


def _var_like(fname, xp, var, x, input):
    """``var`` as an array broadcastable to ``input`` under torch's rules."""
    if isinstance(var, (int, float)):
        return xp.full(x.shape, float(var), dtype=x.dtype, device=device(x))
    _checks.floating(xp, fname, "var", var)
    v = _cast_like(xp, var, x)
    shape, vshape = tuple(input.shape), tuple(var.shape)
    if vshape == shape:
        return v
    if vshape == shape[:-1]:
        return xp.expand_dims(v, axis=-1)  # one variance per row (homoscedastic)
    mismatched = [(a, b) for a, b in zip(shape, vshape, strict=False) if a != b]
    if len(vshape) == len(shape) and len(mismatched) == 1 and mismatched[0][1] == 1:
        return v
    msg = (f"{fname}: 'var' must have the shape of 'input' {shape}, that shape without "
           f"its last axis, or that shape with one axis of size 1; got {vshape}")
    raise ValueError(msg)


def gaussian_nll_loss(input, target, var, /, *, full=False, eps=1e-6, reduction="mean"):
    r"""Gaussian negative log-likelihood with predicted variance.

    .. math::

        \ell = \tfrac12 \left(\log v + \frac{(x - y)^2}{v}\right)
        \;[+\ \tfrac12 \log 2\pi], \qquad v = \max(\mathrm{var}, \varepsilon)

    Parameters
    ----------
    input : array
        Predicted mean.
    target : array
        Observations, the shape of ``input``.
    var : array or float
        Predicted variance: the shape of ``input``, that shape without its last
        axis, or that shape with one axis of size 1 (torch's rules).
    full : bool, optional
        Add the constant :math:`\tfrac12\log 2\pi`.
    eps : float, optional
        Floor of the variance, ``>= 0``.
    reduction : {'mean', 'sum', 'none'}, optional

    Returns
    -------
    array
        The loss.

    Notes
    -----
    ``torch.nn.functional.gaussian_nll_loss`` semantics, with two deviations.
    The floor is visible to autograd: below ``eps`` the loss does not depend
    on ``var`` and its derivative is 0 (torch clamps without recording it and
    returns the derivative at ``eps`` as if it were ``var``'s). A negative
    variance gives NaN in its elements rather than an exception, so the check
    needs no host synchronisation. :math:`(x - y)^2 / v` is evaluated as
    :math:`|d| \cdot (|d| / v)` (or :math:`d^2 / v` where :math:`|d| / v`
    overflows), which overflows only where the quotient does.
    The two terms can cancel (``log v < 0``); the result is accurate to a
    few ULP of the terms' magnitudes.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> x, y = xp.asarray([0.0, 1.0]), xp.asarray([1.0, 1.0])
    >>> xploss.gaussian_nll_loss(x, y, xp.asarray([1.0, 0.0]), reduction="none")
    Array([ 0.5       , -6.90775528], dtype=array_api_strict.float64)
    """
    fname = "gaussian_nll_loss"
    if not eps >= 0:
        msg = f"{fname}: 'eps' must be >= 0, got {eps!r}"
        raise ValueError(msg)
    if not isinstance(var, (int, float)):
        namespace(fname, input=input, target=target, var=var)
    xp, x, t, _ = _prepare(fname, input, target, reduction)
    v = _var_like(fname, xp, var, x, input)
    floor = const(xp, eps, v)
    nan = const(xp, math.nan, v)
    _checks.values(xp, fname, "var", v < 0, "be >= 0")
    v = xp.where(v < 0, nan, xp.where(v < floor, floor, v))
    a = _abs(xp, x - t)
    # d²/(2v) as (|d|/2)·(|d|/v), or (|d|/2·|d|)/v where |d|/v alone overflows:
    # one of the two stays finite wherever the quotient is. The 1/2 comes first,
    # so a quotient up to twice finfo.max still gives a finite loss.
    v_safe = xp.where(v > 0, v, const(xp, 1.0, v))  # v = 0 is the limit below
    quotient = a / v_safe
    over = ~xp.isfinite(quotient) & xp.isfinite(a) & (v > 0)
    a_over = xp.where(over, a, const(xp, 0.0, a))
    half_ratio = xp.where(over, (0.5 * a_over * a_over) / xp.where(over, v_safe, const(xp, 1.0, v)),
                          (0.5 * a) * xp.where(over, const(xp, 0.0, a), quotient))
    # Without a floor (eps = 0) a zero variance is the limit: -inf for a zero
    # residual, +inf otherwise.
    at_zero = v == 0
    limit = xp.where(a == 0, const(xp, -math.inf, v),
                     xp.where(xp.isnan(a), a, const(xp, math.inf, v)))
    loss = xp.where(at_zero, limit,
                    0.5 * xp.log(xp.where(at_zero, const(xp, 1.0, v), v)) + half_ratio)
    if full:
        loss = loss + 0.5 * _LOG_2PI
    return reduce(xp, loss, reduction)
