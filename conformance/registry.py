"""The registry: one entry per checked function, the single source of every run.

An :class:`Entry` names a function, its mpmath reference, the argument
positions that are differentiable, the dtype its result has, and a generator
of :class:`Case` objects (inputs as NumPy data, options, and what the case
exercises). Tests, the command-line report and user checks are all generated
from the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["REGISTRY", "Case", "Entry", "register"]


@dataclass(frozen=True)
class Case:
    """One input set. Floating arrays in ``args`` are cast to the dtype under
    test; integer arrays (class indices) are passed unchanged.

    ``summands`` is the number of terms added to form one output value (class
    terms times batch terms): the accuracy bound grows by half an ULP per
    addition, the worst-case rounding of a sum of same-signed terms.
    """

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    summands: int = 1
    #: Argument positions whose exact derivative exceeds the float range in this
    #: case (so an infinite gradient is the correct rounding), with the reason.
    no_grad: tuple = ()

    def __hash__(self):
        return hash(self.name)


@dataclass(frozen=True)
class Entry:
    """A function under conformance.

    Parameters
    ----------
    name : str
        Identifier used in reports and test ids.
    func : callable
        The function under test, called as ``func(*arrays, **kwargs)``.
    reference : callable
        ``reference(*numpy_float64_args, **kwargs, [dtype_name=...])`` returning
        an object array of ``mpmath.mpf`` (the exact result).
    cases : callable
        ``cases(dtype_name) -> list[Case]``.
    differentiable : tuple of int
        Argument positions whose gradients must be finite.
    ulps : float
        Accuracy bound in ULP of the result dtype (plus the summation term).
    half_result : {'input', 'float32'}
        The result dtype for float16/bfloat16 input: the input's own (primitives)
        or float32 (losses).
    scale : callable, optional
        ``scale(args, exact) -> array``: the magnitude the error is measured
        against where it is not ``|exact|`` (functions whose result cancels,
        such as logsumexp near 0).
    reference_takes_dtype : bool
        Pass ``dtype_name=`` to the reference (conventions that depend on it).
    unrolled : bool
        The function loops in Python over an input dimension (``ctc_loss``
        over frames), so a compiler sees a program that grows with the input
        and compiles it far more slowly than eager mode runs it: quick runs
        keep such a function eager on every backend (one case compiled).
    """

    name: str
    func: Callable
    reference: Callable
    cases: Callable[[str], list]
    differentiable: tuple = (0,)
    ulps: float = 4.0
    half_result: str = "input"
    scale: Callable | None = None
    reference_takes_dtype: bool = False
    unrolled: bool = False

    def result_dtype(self, dtype_name: str) -> str:
        if dtype_name in ("float16", "bfloat16") and self.half_result == "float32":
            return "float32"
        return dtype_name


REGISTRY: dict[str, Entry] = {}


def register(entry: Entry, registry: dict[str, Any] | None = None) -> Entry:
    """Add ``entry`` to ``registry`` (default: the global one); returns it."""
    target = REGISTRY if registry is None else registry
    if entry.name in target:
        msg = f"register: an entry named {entry.name!r} is already registered"
        raise ValueError(msg)
    target[entry.name] = entry
    return entry


def as_float_args(args) -> list[bool]:
    return [isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating) for a in args]
