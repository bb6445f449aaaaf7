"""Namespace resolution, constants and dtype policy shared by every xploss function.

Everything here takes the array namespace ``xp`` explicitly. Nothing names an
array library: the namespace comes from :func:`array_api_compat.array_namespace`.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import array_api_compat

__all__ = [
    "amax",
    "compute_dtype",
    "const",
    "expm1_neg",
    "finfo_constants",
    "log1p_neg",
    "log_split",
    "mul0",
    "mul_exp",
    "mul_exp_power",
    "namespace",
    "reduced_axes",
    "result_dtype",
    "times_pow2",
    "to_compute",
    "to_output",
    "two_sum",
    "two_sum_error",
]


def namespace(fname, **arrays):
    """The common array namespace of the named arrays (``None`` values are skipped).

    Raises ``TypeError`` naming ``fname`` and every argument when they come from
    different array libraries, or when one of them is not an array at all, and
    ``ValueError`` naming the arguments when they lie on different devices
    (traced arrays without a device are not compared).
    """
    present = {name: a for name, a in arrays.items() if a is not None}
    for name, a in present.items():
        if not array_api_compat.is_array_api_obj(a):
            msg = f"{fname}: argument {name!r} must be an array, got {type(a).__name__}"
            raise TypeError(msg)
    try:
        xp = array_api_compat.array_namespace(*present.values())
    except TypeError as exc:
        kinds = ", ".join(f"{name}={type(a).__module__}.{type(a).__name__}"
                          for name, a in present.items())
        msg = f"{fname}: all array arguments must come from one array library, got {kinds}"
        raise TypeError(msg) from exc
    where = None
    for name, a in present.items():
        dev = array_api_compat.device(a)
        if dev is None:
            continue
        if where is None:
            where = (name, dev)
        elif dev != where[1]:
            msg = (f"{fname}: all array arguments must be on one device, got {where[0]!r} "
                   f"on {where[1]} and {name!r} on {dev}")
            raise ValueError(msg)
    return xp


def amax(xp, x, axis, keepdims=False, *, smallest=False):
    """``xp.max`` (``xp.min`` with ``smallest``) along ``axis``; an array with no
    elements but non-empty reduced axes (an empty batch) gives the empty result
    of a sum instead, since some libraries refuse any zero-size maximum (a sum
    also keeps it in the graph of differentiating libraries)."""
    axes = reduced_axes(x, axis)
    if 0 in x.shape and all(x.shape[a] != 0 for a in axes):
        return xp.sum(x, axis=axis, keepdims=keepdims)
    return (xp.min if smallest else xp.max)(x, axis=axis, keepdims=keepdims)


def reduced_axes(x, axis):
    """``axis`` (an int, a tuple, or None for all) as a tuple of non-negative axes of ``x``."""
    axes = range(x.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    return tuple([a % max(x.ndim, 1) for a in axes])


def device(x):
    return array_api_compat.device(x)


def const(xp, value, like, dtype=None):
    """A 0-d constant with ``like``'s dtype (or ``dtype``) and device.

    Built as an array, never passed as a Python scalar to a two-argument
    function: compat wrappers given scalars are slow on some libraries and break
    whole-graph compilation.
    """
    return xp.full((), value, dtype=like.dtype if dtype is None else dtype, device=device(like))


def result_dtype(xp, *arrays):
    """The promoted dtype of ``arrays``, from their dtypes alone.

    Equal dtypes need no promotion; otherwise dtypes (not arrays) are promoted,
    which every library answers statically (torch.result_type on tensors is
    not traceable by torch.compile).
    """
    dtypes = [a.dtype for a in arrays if a is not None]
    if all(d == dtypes[0] for d in dtypes):
        return dtypes[0]
    return xp.result_type(*dtypes)


def compute_dtype(xp, dtype):
    """The dtype arithmetic runs in: float32 for 16-bit floats, else ``dtype`` itself."""
    if xp.finfo(dtype).bits < 32:
        return xp.float32
    return dtype


def to_compute(xp, x):
    """``x`` cast to its compute dtype (a no-op for float32 and float64)."""
    target = compute_dtype(xp, x.dtype)
    return x if x.dtype == target else xp.astype(x, target)


def to_output(xp, result, dtype):
    """Primitives return their input's dtype: a 16-bit input is rounded once, at the end."""
    return result if result.dtype == dtype else xp.astype(result, dtype)


def finfo_constants(xp, dtype):
    """(eps, smallest normal, log of the smallest positive subnormal) of ``dtype``."""
    fi = xp.finfo(dtype)
    eps, tiny = float(fi.eps), float(fi.smallest_normal)
    # The smallest positive subnormal is smallest_normal * eps (2**-149, 2**-1074).
    return eps, tiny, math.log(tiny) + math.log(eps)


def log1p_neg(xp, x):
    """``log1p(x)`` for ``x >= -1``, accurate to ~1 ULP on every backend (the
    library's log1p above -0.25, Goldberg's form below).

    XLA's float64 log1p errs by up to 120 ULP on (-0.5, -0.3) (measured with
    jaxlib 0.10.2). There, and below, Goldberg's form is used:
    log1p(x) = log(u) * x / (u - 1) with u = 1 + x, where u - 1 is exact
    (Sterbenz) for u in [0.5, 1] (D. Goldberg, "What every computer scientist
    should know about floating-point arithmetic", 1991, Theorem 4).
    """
    low = x < -0.25
    xs = xp.where(low, x, const(xp, -0.5, x))
    u = 1.0 + xs
    return xp.where(low, xp.log(u) * (xs / (u - 1.0)), xp.log1p(x))


def expm1_neg(xp, x):
    """``expm1(x)`` for ``x`` in (-log 2, 0], accurate on every backend and compiler.

    torch.compile (inductor, 2.13) evaluates expm1 as exp(x) - 1, which returns
    0 for tiny x. Kahan's form needs only exp and log: with u = exp(x),
    expm1(x) = (u - 1) * x / log(u), and x itself where u rounds to 1; u - 1 is
    exact for u in [0.5, 1] (W. Kahan; Higham, "Accuracy and Stability of
    Numerical Algorithms", 2nd ed., §1.14.1).
    """
    u = xp.exp(x)
    one = u == 1.0
    us = xp.where(one, const(xp, 0.5, u), u)
    xs = xp.where(one, const(xp, -math.log(2.0), x), x)
    return xp.where(one, x, (us - 1.0) * (xs / xp.log(us)))


def mul_exp(xp, a, g):
    """``a * exp(g)`` for ``a >= 0`` and ``g <= 0``, without a subnormal intermediate.

    Where exp(g) would be subnormal (flushed to 0 by FTZ hardware and
    compilers, and short of bits even where kept) the product is
    (a·exp(g/2))·exp(g/2): the halving is exact, and a·exp(g/2) lies between the
    result and ``a``, so it is normal whenever the result is and never
    overflows. (Only a result within a factor e² of the smallest normal number,
    from ``a`` near finfo.max, still meets a subnormal exp(g/2).)
    """
    zero = const(xp, 0.0, a)
    small = g < math.log(float(xp.finfo(a.dtype).smallest_normal))
    half = xp.exp(xp.where(small, g, zero) * 0.5)
    via_half = (a * half) * half
    return xp.where(small, via_half, a * xp.exp(xp.where(small, zero, g)))


def mul0(xp, a, b):
    """``a * b`` with ``0 * ±inf = 0`` (the limit convention of x·log y at x = 0).

    Only an infinite ``b`` is replaced, so a NaN in either factor still propagates
    and the derivative with respect to ``a`` at ``a = 0`` stays ``b`` where finite.
    """
    zero = const(xp, 0.0, b)
    return a * xp.where((a == 0) & xp.isinf(b), zero, b)


def two_sum(xp, a, b):
    """``(fl(a + b), err)`` with ``fl(a + b) + err = a + b`` exactly (Knuth's TwoSum)."""
    s = a + b
    bv = s - a
    av = s - bv
    return s, (a - av) + (b - bv)


def two_sum_error(xp, a, b):
    """The rounding error of ``a + b`` (Knuth's TwoSum: fl(a+b) + err = a + b exactly)."""
    return two_sum(xp, a, b)[1]


def _precision(dtype_finfo):
    """Significand bits of a float format (53 for float64, 24 for float32)."""
    return round(-math.log2(float(dtype_finfo.eps))) + 1


def _ln2_split(bits):
    """(ln2_hi, ln2_lo): ln 2 = hi + lo to twice the format's precision, with ``hi``
    short enough (``bits`` significant bits) that k·hi is exact for every exponent k."""
    with localcontext() as ctx:
        ctx.prec = 60
        ln2 = Decimal(2).ln()
        hi = math.floor(ln2 * 2**bits) / 2**bits
        return hi, float(ln2 - Decimal(hi))


# Per format (by significand bits): the bits of the largest |exponent| k of a
# positive number, subnormals included (1075 < 2^11, 150 < 2^8), and the split of
# ln 2 whose high part times any such k is exact. Built at import, outside traced code.
_EXPONENT_BITS = {53: 11, 24: 8}
_LN2 = {p: _ln2_split(p - k) for p, k in _EXPONENT_BITS.items()}


def times_pow2(xp, x, n):
    """``x·2^n`` for an integer-valued array ``n >= 0`` (of ``x``'s dtype) below
    the format's exponent range, subnormals included.

    ``x`` is multiplied by exact powers of two, the largest first, each selected
    by one bit of ``n``: every partial product lies between ``x`` and the
    result, so none overflows where the result does not, and the result is
    exact unless it is subnormal. ``n`` carries no derivative (it only selects).
    Each bit is read from ``n`` itself and ``x`` is used once per factor: a
    chain that selects between ``x·2^b`` and ``x`` doubles the expression per
    bit, which compilers that inline elementwise code (torch.compile) expand
    exponentially.
    """
    fi = xp.finfo(x.dtype)
    one = const(xp, 1.0, x)
    for b in reversed(range(_EXPONENT_BITS[_precision(fi)])):
        step = 2 ** b
        take = (xp.floor(n * 2.0 ** -b) % 2) == 1
        # 2^step itself overflows for the top bit: apply it as two halves.
        halves = 2 if step >= math.log2(float(fi.max)) else 1
        factor = xp.where(take, const(xp, 2.0 ** (step // halves), x), one)
        for _ in range(halves):
            x = x * factor
    return x


def log_split(xp, c):
    """``log(c)`` for ``0 <= c <= 1`` as an unevaluated sum ``hi + lo``
    (other values give ``(log c, 0)``).

    The reduction of Cody and Waite: ``c = m·2^k`` with ``k = ceil(log2 c)``
    and ``m`` in (1/2, 1] (scaled by exact powers of two), then
    ``log c = k·ln2_hi + (k·ln2_lo + log m)`` where ``k·ln2_hi`` is exact. The
    absolute error of the sum is about one rounding of ``log m`` (at most
    ln 2·eps/2), however large ``|log c|`` is, where ``log(c)`` rounded to one
    float errs by up to ``|log c|·eps/2``. ``lo <= 0``. (W. J. Cody and
    W. Waite, "Software Manual for the Elementary Functions", 1980, ch. 5.)
    """
    fi = xp.finfo(c.dtype)
    one, zero = const(xp, 1.0, c), const(xp, 0.0, c)
    ln2_hi, ln2_lo = _LN2[_precision(fi)]
    positive = (c > 0) & (c <= 1)
    k = xp.ceil(xp.log2(xp.where(positive, c, one)))
    # A flushing (DAZ) backend reads a subnormal c as 0: log2 gives -inf there.
    vanishing = (c == 0) | (positive & ~xp.isfinite(k))
    positive = positive & xp.isfinite(k)
    k = xp.where(positive, k, zero)
    # m = c·2^-k: every factor moves m towards (1/2, 1].
    m = times_pow2(xp, xp.where(positive, c, one), -k)
    # Outside (0, 1]: -inf at 0 (a constant, so its derivative is 0, not inf), and
    # the plain log elsewhere (NaN for NaN and negative c, which must propagate).
    other = xp.where(vanishing, const(xp, -math.inf, c),
                     xp.log(xp.where(positive | vanishing, one, c)))
    hi = xp.where(positive, k * ln2_hi, other)
    lo = xp.where(positive, k * ln2_lo + xp.log(m), zero)
    return hi, lo


def _split_float(value, bits):
    """``value`` as ``v1 + v2`` with ``v1`` rounded to ``bits`` significant bits."""
    if value == 0 or not math.isfinite(value):
        return value, 0.0
    mant, exp = math.frexp(value)
    v1 = math.ldexp(round(math.ldexp(mant, bits)), exp - bits)
    return v1, value - v1


def mul_exp_power(xp, a, gamma, hi, lo):
    """``a·exp(gamma·(hi + lo))`` for ``a >= 0``, ``gamma > 0`` (a Python float)
    and ``hi + lo <= 0`` a double-word logarithm (``lo`` small).

    ``gamma·hi`` is formed exactly as a rounded product plus its error (Dekker's
    TwoProduct, with ``gamma`` split on the host and ``hi`` by Veltkamp's
    splitting), so the result's relative error does not grow with
    ``gamma·|hi|``: only ``lo`` and the two exponentials round. ``gamma`` is
    used at full double precision also for float32 arrays. Where
    ``gamma·(hi + lo)`` is below the log of the smallest subnormal over any
    finite ``a``, the factor is 0 with zero derivative. (T. J. Dekker, "A
    floating-point technique for extending the available precision", Numer.
    Math. 18, 1971.)
    """
    fi = xp.finfo(hi.dtype)
    bits = _precision(fi)
    s = (bits + 1) // 2
    fmax = float(fi.max)
    # Below this the factor underflows for every finite a; the hold also keeps
    # the splitting below from overflowing.
    span = math.log(fmax) - finfo_constants(xp, hi.dtype)[2] + 2.0
    floor = -min(span / gamma, fmax / 2.0 ** (s + 2))
    low = hi < floor
    h = xp.where(low, const(xp, floor, hi), hi)
    lo = xp.where(low, const(xp, 0.0, lo), lo)
    # gamma = g + g_lo with g the nearest float of the format, g = g1 + g2 exactly.
    g = _split_float(gamma, bits)[0]  # gamma rounded to the format
    g_lo = gamma - g
    g1, g2 = _split_float(g, bits - s)
    c = h * float(2**s + 1)
    h1 = c - (c - h)
    h2 = h - h1
    p = g * h
    err = ((g1 * h1 - p) + g1 * h2 + g2 * h1) + g2 * h2
    small = err + g * lo + g_lo * (h + lo)
    return mul_exp(xp, a * xp.exp(small), p)
