"""The ``reduction`` option shared by every loss."""

from __future__ import annotations

import math

from ._support import const

__all__ = ["reduce"]


def reduce(xp, losses, reduction, *, weights=None):
    """Reduce per-element losses: ``'none'``, ``'sum'`` or ``'mean'``.

    ``'mean'`` divides by the number of elements, or by ``sum(weights)`` when
    given (torch's weighted mean for class weights). A mean over nothing (an
    empty batch, or every target ignored) is 0, not NaN: the sum is then an
    exact 0, and dividing it by a safe 1 keeps a NaN in the sum visible.
    """
    if reduction == "none":
        return losses
    total = xp.sum(losses)
    if reduction == "sum":
        return total
    if weights is None:
        return total / max(math.prod(losses.shape), 1)
    denominator = xp.sum(weights)
    one = const(xp, 1.0, denominator)
    return total / xp.where(denominator == 0, one, denominator)
