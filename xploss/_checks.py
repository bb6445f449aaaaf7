"""Argument checks shared by every xploss function.

Each check raises ``TypeError`` (wrong kind of argument) or ``ValueError``
(wrong value) with a message naming the function, the argument, what was
expected and what was received. Checks look at dtypes, shapes and Python
options only: never at array values, so they cost no host synchronisation.

Invalid *values* (a class index out of range, a probability outside [0, 1], a
negative variance) are the exception: by default the affected elements come out
NaN, on every backend and without reading anything back. Inside
:func:`validation` the same places call :func:`values`, which reads the
invalid-element count on the host and raises ``ValueError``.
"""

from __future__ import annotations

import contextlib
import math
import threading

__all__ = [
    "broadcast_shapes",
    "broadcasts_to",
    "class_axis",
    "floating",
    "integer_or_floating",
    "probabilities",
    "reduction",
    "same_shape",
    "unit_interval",
    "validation",
    "values",
]

# Thread-local rather than a ContextVar: torch.compile traces attribute reads of
# a threading.local (and guards on them) but not ContextVar.get.
_STATE = threading.local()


@contextlib.contextmanager
def validation(*, enabled=True):
    """Context manager: inside it, invalid values raise ``ValueError``.

    By default xploss never inspects array values: an invalid element (a class
    index outside ``[0, C)`` that is not ``ignore_index``, a probability outside
    [0, 1], a negative variance, an impossible CTC length) makes its own result
    NaN, the same on every backend and without a host synchronisation. Inside
    ``with xploss.validation():`` each function instead counts the invalid
    elements and raises a ``ValueError`` naming the function, the argument, the
    valid range and the count. Counting reads a value back, so validation
    needs eager arrays: under ``jax.jit`` it raises ``TypeError``, and under
    ``torch.compile`` it breaks the graph.

    The setting is thread-local: it does not leak into other threads, is
    restored on leaving the block, and ``validation(enabled=False)`` switches it off
    for a nested block. (Coroutines sharing a thread share it.)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xploss
    >>> logits, labels = xp.asarray([[0.5, 1.5]]), xp.asarray([2])
    >>> xploss.cross_entropy(logits, labels, reduction="none")
    Array([nan], dtype=array_api_strict.float64)
    >>> with xploss.validation():
    ...     xploss.cross_entropy(logits, labels)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: cross_entropy: 'target' must hold class indices in [0, 2) or ignore_index ...
    """
    previous = getattr(_STATE, "validating", False)
    _STATE.validating = bool(enabled)
    try:
        yield
    finally:
        _STATE.validating = previous


def values(xp, fname, name, invalid, expected):
    """Value validation: raise if any element of the boolean array ``invalid`` is
    True, when :func:`validation` is on; nothing (and no host sync) otherwise.

    ``expected`` completes the sentence "``name`` must ...".
    """
    if not getattr(_STATE, "validating", False):
        return
    try:
        count = int(xp.count_nonzero(invalid))
    except TypeError as exc:  # a traced array has no value to read
        msg = (f"{fname}: validation mode reads values on the host and needs eager "
               f"arrays; switch it off under tracing (xploss.validation(enabled=False))")
        raise TypeError(msg) from exc
    if count:
        total = math.prod(invalid.shape)
        msg = f"{fname}: {name!r} must {expected}; {count} of {total} elements do not"
        raise ValueError(msg)

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


def broadcast_shapes(fname, **arrays):
    """The broadcast shape of the named arrays (array API rules), from shapes alone.

    Raises ``ValueError`` naming ``fname`` and the arguments when they do not
    broadcast together (the libraries' own errors differ in type and name
    neither).
    """
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    ndim = max(len(s) for s in shapes.values())
    out = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes.values() if len(s) - ndim + i >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            listed = ", ".join(f"{name!r} {s}" for name, s in shapes.items())
            msg = f"{fname}: {listed} do not broadcast together"
            raise ValueError(msg)
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcasts_to(fname, name, a, shape, what="the shape of 'input'"):
    """``a`` broadcasts to ``shape`` without enlarging it (weights, variances)."""
    shape = tuple(shape)
    pairs = zip(reversed(tuple(a.shape)), reversed(shape), strict=False)
    if len(a.shape) > len(shape) or any(n not in (1, m) for n, m in pairs):
        msg = f"{fname}: {name!r} must broadcast to {what} {shape}, got {tuple(a.shape)}"
        raise ValueError(msg)


def probabilities(xp, fname, name, t):
    """Where ``t`` lies outside [0, 1] (NaN is not flagged: it propagates), after
    the validation-mode check; callers make those elements NaN."""
    invalid = (t < 0.0) | (t > 1.0)
    values(xp, fname, name, invalid, "lie in [0, 1]")
    return invalid
