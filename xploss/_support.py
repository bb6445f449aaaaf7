"""Namespace resolution, constants and dtype policy shared by every xploss function.

Everything here takes the array namespace ``xp`` explicitly. Nothing names an
array library: the namespace comes from :func:`array_api_compat.array_namespace`.
"""

from __future__ import annotations

import math

import array_api_compat

__all__ = [
    "compute_dtype",
    "const",
    "expm1_neg",
    "finfo_constants",
    "log1p_neg",
    "mul0",
    "mul_exp",
    "namespace",
    "result_dtype",
    "to_compute",
    "to_output",
]


def namespace(fname, **arrays):
    """The common array namespace of the named arrays (``None`` values are skipped).

    Raises ``TypeError`` naming ``fname`` and every argument when they come from
    different array libraries, or when one of them is not an array at all.
    """
    present = {name: a for name, a in arrays.items() if a is not None}
    for name, a in present.items():
        if not array_api_compat.is_array_api_obj(a):
            msg = f"{fname}: argument {name!r} must be an array, got {type(a).__name__}"
            raise TypeError(msg)
    try:
        return array_api_compat.array_namespace(*present.values())
    except TypeError as exc:
        kinds = ", ".join(f"{name}={type(a).__module__}.{type(a).__name__}"
                          for name, a in present.items())
        msg = f"{fname}: all array arguments must come from one array library, got {kinds}"
        raise TypeError(msg) from exc


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
    """``a * exp(g)`` for ``a >= 0``, without a subnormal intermediate.

    Where exp(g) would be subnormal (flushed to 0 by FTZ hardware and
    compilers) the product is exp(g + log a), which is normal whenever the
    result is.
    """
    zero, one = const(xp, 0.0, a), const(xp, 1.0, a)
    small = g < math.log(float(xp.finfo(a.dtype).smallest_normal))
    direct = a * xp.exp(xp.where(small, zero, g))
    positive = small & (a > 0)
    via_log = xp.exp(xp.where(positive, g, zero) + xp.log(xp.where(positive, a, one)))
    # a = 0 gives 0; a NaN stays NaN (chosen by where, not by arithmetic on inf).
    return xp.where(small, xp.where(a > 0, via_log, xp.where(xp.isnan(a), a, zero)), direct)


def mul0(xp, a, b):
    """``a * b`` with ``0 * ±inf = 0`` (the limit convention of x·log y at x = 0).

    Only an infinite ``b`` is replaced, so a NaN in either factor still propagates
    and the derivative with respect to ``a`` at ``a = 0`` stays ``b`` where finite.
    """
    zero = const(xp, 0.0, b)
    return a * xp.where((a == 0) & xp.isinf(b), zero, b)
