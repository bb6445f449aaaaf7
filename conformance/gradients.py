"""Gradients against the oracle: directional derivatives checked against mpmath.

For one case and one differentiable argument ``x`` the checked number is

    D = d/ds  sum_j w_j f_j(x + s t)   at s = 0,

with ``w`` fixed weights in {1, 1/2, 1/4, 1/8} (so that no sum of outputs is
constant, as the sum of a softmax row is) and ``t`` a tangent of one random
sign per element and the magnitude of its element (the power of two at or
below |x_i|; the arguments' median one for zeros). Reverse mode gives
``<grad, t>`` (computed exactly from the backend's gradient), forward mode
``jvp(t)``; both are compared with the exact ``D``. This is the directional
check of ``jax.test_util.check_grads``, with the finite differences taken on
the mpmath reference instead of in floating point.

The exact ``D`` comes from the reference at ``x + k h t`` for k = ±1, ±2 and
h = 2**-50: every such point is a float64 number (elements where it is not are
not perturbed), and the reference is exact there, so the differences carry no
rounding error; the precision is raised until they resolve ``D`` to far below
an ULP. Richardson's extrapolation of the two central differences leaves an
O(h**4) truncation error. Elements whose outer steps make the reference
non-finite (a probability of 0 or 1, one of whose steps leaves [0, 1]) are
found by bisection and left unperturbed: the derivative is taken along the rest of
the tangent. A direction is *not resolved* (and not checked)
when the one-sided derivatives at the point disagree (a kink: |x| at 0, a
hinge at its margin, where autodiff returns one of several subgradients), or
the two central differences disagree beyond 1/1024 ULP (the reference is not
linear on the steps' scale), or any reference value is not finite; the cell
counts these.

The error is measured normwise: in ULP of ``eps * max(|D|, max_i |g_i| *
sum_i |t_i|)``, the error of a gradient relative to its largest component,
which is what an update step sees. (Componentwise errors are not meaningful for
gradients that cancel by construction, such as p_i (w_i - sum_j w_j p_j) of a
softmax.)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import mpmath
import numpy as np

from . import references

__all__ = ["directional", "exact_derivative", "measure", "tangent", "weights"]

#: Relative step: x + k * 2**-STEP * t is exactly representable in float64.
STEP = 50


def _rng(entry_name, case_name, argnum):
    return np.random.default_rng(zlib.crc32(f"{entry_name}/{case_name}/{argnum}".encode()))


def weights(entry_name, case_name, shape):
    """The output weights w: fixed per case, in {1, 1/2, 1/4, 1/8}."""
    rng = _rng(entry_name, case_name, -1)
    return np.ldexp(1.0, -rng.integers(0, 4, size=shape))


def tangent(entry_name, case_name, argnum, x):
    """The tangent t for argument ``argnum`` held as ``x`` (float64); 0 marks an
    element that is not perturbed."""
    x = np.asarray(x, dtype=np.float64)
    rng = _rng(entry_name, case_name, argnum)
    sign = rng.choice([-1.0, 1.0], size=x.shape)
    nonzero = np.isfinite(x) & (x != 0)
    with np.errstate(all="ignore"):
        exponent = np.floor(np.log2(np.abs(np.where(nonzero, x, 1.0))))
    median = float(np.median(exponent[nonzero])) if nonzero.any() else 0.0
    exponent = np.where(x == 0, math.floor(median), exponent).astype(int)
    with np.errstate(all="ignore"):
        t = np.where(np.isfinite(x), sign * np.ldexp(1.0, exponent), 0.0)
        for k in (1, 2):
            step = np.ldexp(t, -STEP) * k
            up, down = x + step, x - step
            exact = (np.isfinite(up) & np.isfinite(down) & (up - x == step)
                     & (x - down == step) & (step != 0))
            t = np.where(exact, t, 0.0)
    return t


def _total(entry, args, kwargs, dtype, w):
    kw = dict(kwargs)
    if entry.reference_takes_dtype:
        kw["dtype_name"] = dtype
    out = np.asarray(entry.reference(*args, **kw), dtype=object)
    ws = np.broadcast_to(w, out.shape).ravel()
    return mpmath.fsum(mpmath.mpf(float(a)) * v for a, v in zip(ws, out.ravel(), strict=True))


@dataclass(frozen=True)
class Exact:
    """The exact directional derivative, or why there is none (``reason``)."""

    value: object = None  # mpf
    one_sided_gap: object = None  # |D+ - D-|
    central_gap: object = None  # |D(h) - D(2h)|
    reason: str = ""
    #: The tangent ``value`` is the derivative along: the one asked for, less
    #: the elements whose steps leave the reference's domain.
    tangent: object = None


def exact_derivative(entry, held, kwargs, dtype, argnum, w, t, magnitude):
    """``D`` for weights ``w`` and tangent ``t`` from the reference around
    ``held`` (float64 NumPy arguments).

    ``magnitude`` is max_j |f_j| (float): with the inputs' range it sets
    the precision at which the steps' differences are resolved.
    """
    steps = np.ldexp(t, -STEP)
    if not np.any(steps):
        return Exact(reason="no element can be perturbed")
    nonzero = np.abs(steps[steps != 0])
    finite_inputs = [np.abs(a[np.isfinite(a)]) for a in held
                     if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size]
    largest = max([float(np.max(a)) for a in finite_inputs if a.size] + [magnitude, 1.0])
    # Digits enough to see a step's effect next to the largest input or output
    # (a sum of 1e307-sized terms that cancel to 1 still holds them), plus 40.
    spread = math.log10(largest) - math.log10(float(np.min(nonzero))) if nonzero.size else 0.0
    digits = max(references.DIGITS, int(spread) + 40)
    saved = references.DIGITS
    references.DIGITS = digits
    try:
        with mpmath.workdps(digits):
            memo = {}

            def total(k, keep):
                key = (k, keep.tobytes())
                if key not in memo:
                    a = list(held)
                    a[argnum] = held[argnum] + k * np.where(keep, steps, 0.0)
                    memo[key] = _total(entry, a, kwargs, dtype, w)
                return memo[key]

            keep = _inside(steps != 0, lambda m: all(mpmath.isfinite(total(k, m))
                                                     for k in (-2, 2)))
            if not keep.any():
                return Exact(reason="every element's step leaves the reference's domain")
            s = {k: total(k, keep) for k in (-2, -1, 0, 1, 2)}
            if not all(mpmath.isfinite(v) for v in s.values()):
                return Exact(reason="a reference value next to the point is not finite")
            h = mpmath.ldexp(1, -STEP)
            right = (4 * (s[1] - s[0]) - (s[2] - s[0])) / (2 * h)
            left = (4 * (s[0] - s[-1]) - (s[0] - s[-2])) / (2 * h)
            d1 = (s[1] - s[-1]) / (2 * h)
            d2 = (s[2] - s[-2]) / (4 * h)
            return Exact((4 * d1 - d2) / 3, abs(right - left), abs(d1 - d2),
                         tangent=np.where(keep, t, 0.0))
    finally:
        references.DIGITS = saved


def _inside(mask, finite):
    """The elements of ``mask`` to keep perturbed: all of them if ``finite(mask)``,
    else, by bisection, those whose groups pass (an element on the edge of the
    reference's domain, such as a probability of 0 or 1, is dropped)."""
    if finite(mask):
        return mask
    ids = np.flatnonzero(mask)
    if ids.size <= 1:
        return np.zeros_like(mask)
    kept = np.zeros_like(mask)
    for part in (ids[: ids.size // 2], ids[ids.size // 2:]):
        sub = np.zeros_like(mask)
        sub.flat[part] = True
        kept |= _inside(sub, finite)
    return kept


def measure(exact, computed, g, tangent, eps, tiny, ftz_allowance=0.0, limit=math.inf):
    """(error in ULP, None) or (None, why the direction is not resolved).

    ``computed`` is the backend's directional derivative (float or mpf), ``g`` its
    gradient (for the scale); ``tiny`` the format's smallest normal number: a
    gradient component's ULP is at least that of ``tiny`` (subnormals are
    spaced evenly), so the norm of ``g`` is taken as at least ``tiny``.
    ``ftz_allowance`` is an absolute error forgiven on a target that flushes
    subnormals. A direction whose scale exceeds ``limit`` is not resolved (a
    derivative computed in the format, as forward mode's is, may overflow there
    with exact arithmetic's blessing).
    """
    if exact.reason:
        return None, exact.reason
    with mpmath.workdps(40):
        norm = max(mpmath.mpf(float(np.max(np.abs(g), initial=0.0))), mpmath.mpf(tiny))
        scale = max(abs(exact.value), norm * mpmath.fsum(abs(mpmath.mpf(float(v)))
                                                         for v in tangent.ravel()))
        if scale == 0:
            return (0.0, None) if computed == 0 else (math.inf, None)
        if scale > limit:
            return None, "the derivative along the direction is beyond the format's range"
        tol = eps * scale / 1024
        if exact.one_sided_gap > tol:
            return None, "not differentiable along the direction (one-sided derivatives differ)"
        if exact.central_gap > tol or (
                exact.central_gap > mpmath.ldexp(abs(exact.value), -20)):
            return None, "the reference is not linear on the steps' scale"
        diff = max(abs(mpmath.mpf(computed) - exact.value) - ftz_allowance, 0)
        return float(diff / (eps * scale)), None


def directional(g, tangent):
    """<g, t>, summed in mpmath (each product of a float and a power of two is exact)."""
    with mpmath.workdps(40):
        return mpmath.fsum(mpmath.mpf(float(a)) * mpmath.mpf(float(b))
                           for a, b in zip(np.ravel(g), np.ravel(tangent), strict=True))
