"""Check your own loss with the xploss conformance suite.

The loss f(x) = 1/(1 - exp(-x)) - 1/x has a removable singularity at 0
(f(0) = 1/2). Written as it reads, it cancels near 0 and gives NaN at 0; the
stable form uses 1/(1 - e^{-x}) = (1 + coth(x/2))/2, i.e.
f(x) = 1/2 + langevin(x/2)/2, and for x < -2 (where that sum cancels, f -> 0)
the equivalent 1/t - e^{-t}/(1 - e^{-t}), t = -x.

Run ``python examples/user_loss.py``: it checks both forms on every installed
backend, device and dtype, and prints the two reports.
"""

import array_api_compat
import mpmath
import numpy as np
from xploss.conformance import Case, user

import xploss


def stable(x):
    xp = array_api_compat.array_namespace(x)
    tail = x < -2
    # Double where: the tail formula only ever sees t >= 2 (finite values and
    # gradients for every x), and its result is selected only where x < -2.
    t = xp.where(tail, -x, xp.full_like(x, 2.0))
    # f(x) = 1/t - 1/(e^t - 1) for t = -x; both terms < 1/2, the second < 0.32 of the first.
    left = 1 / t - xp.exp(-t) / -xp.expm1(-t)
    # f(x) = (1 + coth(x/2))/2 - 1/x = 1/2 + langevin(x/2)/2: no cancellation for x >= -2.
    return xp.where(tail, left, 0.5 + 0.5 * xploss.langevin(x / 2))


def naive(x):
    xp = array_api_compat.array_namespace(x)
    return 1 / (1 - xp.exp(-x)) - 1 / x


def exact(x):
    """f(x) at any precision (mpmath); expm1 avoids 1 - exp(-x) = 0 for tiny x."""
    if x == 0:
        return mpmath.mpf(1) / 2
    return -1 / mpmath.expm1(-x) - 1 / x


def cases(dtype):
    """The primitives' table (signed special values, sweeps, ±inf, NaN) and the
    neighbourhood of the singularity (values below a dtype's range become 0)."""
    near_zero = np.array([0.0, 1e-300, -1e-300, 1e-30, -1e-30, 1e-8, -1e-8, 1e-3, -1e-3])
    return [*user.real_line(dtype), Case("near_zero", (near_zero,))]


STABLE = user.entry(stable, exact, cases)
NAIVE = user.entry(naive, exact, cases)

if __name__ == "__main__":
    for loss in (STABLE, NAIVE):
        report = user.check(loss)
        print(f"== {loss.name} ==\n{report}\n")
