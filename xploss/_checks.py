"""Argument checks shared by every xploss function.

Each check raises ``TypeError`` (wrong kind of argument) or ``ValueError``
(wrong value) with a message naming the function, the argument, what was
expected and what was received. Checks look at dtypes, shapes and Python
options only: never at array values, so they cost no host synchronisation.
"""

from __future__ import annotations

__all__ = [
    "class_axis",
    "floating",
    "integer_or_floating",
    "reduction",
    "same_shape",
    "unit_interval",
]

REDUCTIONS = ("none", "mean", "sum")


def floating(xp, fname, name, x):
    if not xp.isdtype(x.dtype, "real floating"):
        msg = f"{fname}: {name!r} must have a real floating dtype, got {x.dtype}"
        raise TypeError(msg)


def integer_or_floating(xp, fname, name, x):
    """Class targets: an integer dtype (class indices) or a real floating one (probabilities)."""
    if xp.isdtype(x.dtype, "bool") or not (
        xp.isdtype(x.dtype, "integral") or xp.isdtype(x.dtype, "real floating")
    ):
        msg = (f"{fname}: {name!r} must hold integer class indices or floating "
               f"class probabilities, got dtype {x.dtype}")
        raise TypeError(msg)


def reduction(fname, value, allowed=REDUCTIONS):
    if value not in allowed:
        msg = f"{fname}: 'reduction' must be one of {', '.join(map(repr, allowed))}, got {value!r}"
        raise ValueError(msg)


def same_shape(fname, name_a, a, name_b, b):
    if tuple(a.shape) != tuple(b.shape):
        msg = (f"{fname}: {name_b!r} must have the shape of {name_a!r} {tuple(a.shape)}, "
               f"got {tuple(b.shape)} (no implicit broadcasting)")
        raise ValueError(msg)


def unit_interval(fname, name, value):
    if not 0.0 <= value <= 1.0:
        msg = f"{fname}: {name!r} must lie in [0, 1], got {value!r}"
        raise ValueError(msg)


def class_axis(fname, ndim, axis):
    """The class axis as a non-negative int: torch's convention when ``axis`` is None
    (1 for inputs of two or more dimensions, 0 for an unbatched 1-d input)."""
    if ndim == 0:
        msg = f"{fname}: 'input' must have a class axis, got a 0-d array"
        raise ValueError(msg)
    if axis is None:
        return 1 if ndim >= 2 else 0
    if not -ndim <= axis < ndim:
        msg = f"{fname}: 'axis' {axis} is out of range for an input of {ndim} dimensions"
        raise ValueError(msg)
    return axis % ndim
