"""What is timed: each loss, its inputs, and its native peer on every library.

One :class:`Problem` per benchmarked call. A problem knows how to draw its
inputs (NumPy data, moved to a device by the backend adapters), how to call
xploss, and how to call the peer each library's users would write instead:

* torch: ``torch.nn.functional`` (same names, same semantics);
* JAX: optax, scaled to torch's definitions (``squared_error(...).mean()`` is
  ``mse_loss``; ``l2_loss`` would be half of it; optax's ``huber_loss`` is
  torch's with the same ``delta``; per-example losses are averaged);
* NumPy (and Dask, and CuPy through ``cupyx.scipy.special``): the best
  NumPy/SciPy formulation (``log_expit``, ``logsumexp``, ``log_softmax``,
  ``huber``), each a stable formula a careful user would write.

Every peer returns the 'mean' reduction, as xploss does by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import xploss

__all__ = ["PROBLEMS", "SIZES", "Problem", "quick_sizes"]

HUBER_DELTA = 1.0

# Size name -> shape. 'small' shows dispatch overhead; the others show throughput.
SIZES: dict[str, tuple[int, ...]] = {
    "small": (64, 10),
    "large": (4096, 1000),
    "1e7": (10**7,),
}


def quick_sizes() -> dict[str, tuple[int, ...]]:
    """The ``--quick`` sizes: a smoke test, not a measurement."""
    return {"small": (64, 10), "medium": (256, 100)}


@dataclass(frozen=True)
class Problem:
    """One benchmarked loss call.

    ``make(rng, shape, dtype)`` returns NumPy arrays: the differentiated input
    first. ``torch``, ``optax`` and ``scipy`` are the native peers: the first
    two take ``(lib, *arrays)``, the last ``(xp, special, *arrays)`` so that
    NumPy/SciPy and CuPy/cupyx share it. ``elementwise`` problems also run on a
    1-d input (the ``1e7`` size); class problems need ``(N, C)``.
    """

    name: str
    make: Callable[..., tuple[np.ndarray, ...]]
    xploss: Callable[..., Any]
    torch: Callable[..., Any]
    optax: Callable[..., Any]
    scipy: Callable[..., Any]
    elementwise: bool = True

    def applies_to(self, shape: tuple[int, ...]) -> bool:
        return self.elementwise or len(shape) == 2


# ---------------------------------------------------------------------------
# inputs


def _logits_soft_targets(rng, shape, dtype):
    x = 3.0 * rng.standard_normal(shape)
    return x.astype(dtype), rng.uniform(size=shape).astype(dtype)


def _logits_labels(rng, shape, dtype):
    n, c = shape
    return (3.0 * rng.standard_normal(shape)).astype(dtype), rng.integers(0, c, size=n)


def _logits_probs(rng, shape, dtype):
    x = 3.0 * rng.standard_normal(shape)
    q = rng.exponential(size=shape)
    return x.astype(dtype), (q / q.sum(axis=1, keepdims=True)).astype(dtype)


def _regression(rng, shape, dtype):
    return (rng.standard_normal(shape).astype(dtype),
            rng.standard_normal(shape).astype(dtype))


# ---------------------------------------------------------------------------
# NumPy/SciPy peers (also CuPy/cupyx): ``xp`` the array module, ``special`` its
# scipy.special


def _scipy_bce(xp, special, x, t):
    # torch's formula: (1 - t)·x + softplus(-x), with softplus(-x) = -log_expit(x).
    return xp.mean((1.0 - t) * x - special.log_expit(x))


def _scipy_ce_index(xp, special, x, labels):
    picked = xp.take_along_axis(x, labels[:, None], axis=1)[:, 0]
    return xp.mean(special.logsumexp(x, axis=1) - picked)


def _scipy_ce_probs(xp, special, x, q):
    return -xp.mean(xp.sum(q * special.log_softmax(x, axis=1), axis=1))


def _scipy_mse(xp, special, x, t):
    d = (x - t).ravel()
    return xp.dot(d, d) / d.size


def _scipy_huber(xp, special, x, t):
    # scipy.special.huber(delta, r): r²/2 for |r| <= delta, delta·(|r| - delta/2) beyond.
    return xp.mean(special.huber(HUBER_DELTA, x - t))


# ---------------------------------------------------------------------------
# optax peers (jax.numpy arrays)


def _optax_bce(optax, x, t):
    return optax.sigmoid_binary_cross_entropy(x, t).mean()


def _optax_ce_index(optax, x, labels):
    return optax.softmax_cross_entropy_with_integer_labels(x, labels).mean()


def _optax_ce_probs(optax, x, q):
    return optax.softmax_cross_entropy(x, q).mean()


def _optax_mse(optax, x, t):
    # optax.l2_loss is 0.5·(x - t)²; squared_error is torch's mse_loss term.
    return optax.squared_error(x, t).mean()


def _optax_huber(optax, x, t):
    return optax.huber_loss(x, t, delta=HUBER_DELTA).mean()


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "binary_cross_entropy_with_logits", _logits_soft_targets,
            xploss.binary_cross_entropy_with_logits,
            torch=lambda F, x, t: F.binary_cross_entropy_with_logits(x, t),
            optax=_optax_bce, scipy=_scipy_bce,
        ),
        Problem(
            "cross_entropy[index]", _logits_labels, xploss.cross_entropy,
            torch=lambda F, x, y: F.cross_entropy(x, y),
            optax=_optax_ce_index, scipy=_scipy_ce_index, elementwise=False,
        ),
        Problem(
            "cross_entropy[probs]", _logits_probs, xploss.cross_entropy,
            torch=lambda F, x, q: F.cross_entropy(x, q),
            optax=_optax_ce_probs, scipy=_scipy_ce_probs, elementwise=False,
        ),
        Problem(
            "mse_loss", _regression, xploss.mse_loss,
            torch=lambda F, x, t: F.mse_loss(x, t),
            optax=_optax_mse, scipy=_scipy_mse,
        ),
        Problem(
            "huber_loss", _regression,
            lambda x, t: xploss.huber_loss(x, t, delta=HUBER_DELTA),
            torch=lambda F, x, t: F.huber_loss(x, t, delta=HUBER_DELTA),
            optax=_optax_huber, scipy=_scipy_huber,
        ),
    )
}
