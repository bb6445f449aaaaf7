"""Check your own loss with the suite that checks xploss.

Describe the function once, with its exact value (an mpmath function) and the
inputs it must handle, then run every check of the suite on every installed
backend, device and dtype, in one call or from your own pytest tests:

* :func:`entry` builds the :class:`~xploss.conformance.Entry` (a scalar mpmath
  reference is lifted to arrays, with its precision raised until it settles);
* :func:`check` runs it everywhere and returns a :class:`CheckReport`, whose
  text is the matrix and every failure with a command that reproduces it;
* :func:`parametrize`, :func:`assert_cell` and :func:`assert_agreement` give
  one pytest test per backend × device × dtype (ids like ``torch:cpu-float32``)
  and one per dtype for cross-backend agreement.

A failure names the case, the worst element (its input, the result and the
exact value) and a reproduction: ``python -c "...reproduce('module:NAME', case,
target, dtype)"`` when the entry is a module variable (``NAME = entry(...)``),
else a call of :func:`~xploss.conformance.reproduce` on the Entry itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from xploss import backends as _backends

from . import references
from .registry import Case, Entry
from .runner import agreement, run_cell
from .suite import Report, default_dtypes, prepare, run

__all__ = ["CheckReport", "assert_agreement", "assert_cell", "check", "entry", "parametrize",
           "real_line", "targets"]


def entry(func: Callable, reference: Callable, cases, *, name: str | None = None,
          elementwise: bool = True, differentiable: tuple = (0,), ulps: float = 4.0,
          half_result: str = "input", scale: Callable | None = None,
          unrolled: bool = False) -> Entry:
    """Describe ``func`` for the suite.

    Parameters
    ----------
    func : callable
        The function under test, ``func(*arrays, **options)``, array-API generic.
    reference : callable
        With ``elementwise=True`` (the default): the exact value of one element,
        a function of ``mpmath.mpf`` scalars (``reference(x, y, ...) -> mpf``),
        evaluated at 60 digits and at doubled precision until two evaluations
        agree; a NaN input gives NaN without calling it. With
        ``elementwise=False``: ``reference(*float64_arrays, **options)``
        returning an object array of mpf (the :class:`Entry` contract).
    cases : callable, sequence of Case, or mapping
        The domain: ``cases(dtype_name) -> list[Case]``, a list of
        :class:`Case` used for every dtype, or ``{name: array or tuple of
        arrays}``. Floating arrays are cast to the dtype under test, so keep
        values representable in it (or use a callable of the dtype).
    name : str, optional
        Report and test id name (default ``func.__name__``).
    differentiable : tuple of int
        Argument positions whose gradients must be finite (torch, JAX).
    ulps : float
        Accuracy bound in ULP of the result dtype (plus half an ULP per
        addition for cases with ``summands``).
    half_result : {'input', 'float32'}
        Result dtype for float16/bfloat16 inputs.
    scale : callable, optional
        ``scale(args, kwargs, exact) -> array``: the magnitude errors are
        measured against where it is not ``|exact|``.
    unrolled : bool
        ``func`` loops in Python over an input dimension, so compiling it costs
        far more than running it: quick runs keep it eager on JAX too.
    """
    lifted = references.elementwise(reference) if elementwise else reference
    return Entry(name or func.__name__, func, lifted, _case_table(cases),
                 differentiable=tuple(differentiable), ulps=ulps, half_result=half_result,
                 scale=scale, unrolled=unrolled)


def _case_table(cases):
    if callable(cases):
        return cases
    if isinstance(cases, Mapping):
        cases = [Case(k, v if isinstance(v, tuple) else (np.asarray(v, dtype=np.float64),))
                 for k, v in cases.items()]
    table = list(cases)
    if not all(isinstance(c, Case) for c in table):
        msg = f"cases: expected a callable, Case objects or a mapping, got {cases!r}"
        raise TypeError(msg)
    return lambda dtype: table


def real_line(dtype: str) -> list[Case]:
    """The table the suite uses for xploss's elementwise primitives: signed
    special values (0, subnormals, the smallest normal, ±1e-30 … ±finfo.max),
    a log-uniform sweep of the finite range, uniform points in (-4, 4), ±inf
    and NaN, all representable in ``dtype``."""
    from .catalog import _unary_cases

    return _unary_cases(dtype)


def targets(backends=None):
    """The (backend, device) targets installed here, optionally limited to the
    ``backends`` names; readies them first (JAX float64)."""
    prepare(backends)
    return _backends.targets(backends)


# Failure kinds, recognised from the runner's messages, in the order shown.
_KINDS = (("raised", ("] raised", "run raised")), ("gradient", ("gradient wrt",)),
          ("compiled", ("compiled",)), ("accuracy", ("ULP > bound",)), ("metadata", ("",)))


def _kind(failure):
    return next(k for k, marks in _KINDS if any(m in failure for m in marks))


@dataclass
class CheckReport(Report):
    """A :class:`~xploss.conformance.Report` that prints itself readably: one row
    per target and dtype, then the failures grouped by kind (exceptions,
    gradients, compiled ≠ eager, accuracy, metadata, cross-backend agreement),
    each with its worst element and its reproduction."""

    functions: list = field(default_factory=list)

    def failures_by_kind(self) -> dict[str, list[str]]:
        """``{kind: ['target dtype [case] message ...']}`` for every failure."""
        out = {}
        for c in self.cells:
            for f in c.failures:
                out.setdefault(_kind(f), []).append(f"{c.target} {c.dtype} {f}")
        if self.agreement_failures:
            out["agreement"] = list(self.agreement_failures)
        return out

    def format(self, limit: int | None = 3) -> str:
        """The report as text, with at most ``limit`` failures of each kind (None: all)."""
        out = io.StringIO()
        rows = [("target", "dtype", "worst ULP", "worst case", "gradients", "compiled", "")]
        rows += [(c.target, c.dtype, f"{c.worst_ulp:.3g}", c.worst_case, c.grad, c.compiled,
                  "ok" if c.passed else "FAIL") for c in self.cells]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for name in dict.fromkeys(c.entry for c in self.cells):
            print(f"{name}: error in ULP of the result dtype", file=out)
            for r in rows[:1] + [r for r, c in zip(rows[1:], self.cells, strict=True)
                                 if c.entry == name]:
                print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))
                      .rstrip(), file=out)
        kinds = self.failures_by_kind()
        if kinds:
            counts = ", ".join(f"{k} {len(v)}" for k, v in kinds.items())
            print(f"\nfailures: {counts}", file=out)
            for kind, failures in kinds.items():
                print(f"{kind}:", file=out)
                for f in failures[:limit]:
                    print("  " + f.strip().replace("\n", "\n  "), file=out)
                if limit is not None and len(failures) > limit:
                    print(f"  ... {len(failures) - limit} more (report.format(limit=None))",
                          file=out)
        for name, reason in self.skipped.items():
            print(f"skipped {name}: {reason}", file=out)
        print("PASSED" if self.passed else "FAILED", end="", file=out)
        return out.getvalue()

    def __str__(self):
        return self.format()

    def assert_passed(self):
        """Raise AssertionError with the whole report unless every check passed."""
        if not self.passed:
            raise AssertionError("\n" + self.format(limit=None))


def check(func, reference=None, cases=None, *, backends=None, dtypes=None, quick=False,
          progress=None, **options) -> CheckReport:
    """Run every check of the suite on ``func`` on every installed target.

    ``func`` is a function (then ``reference`` and ``cases`` are required, and
    ``options`` go to :func:`entry`) or an :class:`Entry`. Checks: accuracy
    against the reference in ULP, finite values and gradients where the exact
    value is finite, compiled (``jax.jit``, ``torch.compile``) equal to eager,
    the result's namespace, device, dtype and shape, and agreement between
    every pair of targets.

    ``backends`` limits the backend names (``['numpy', 'torch']``), ``dtypes``
    the dtypes (default: every float dtype each device has); ``quick`` keeps
    float64/float32 and compiles one case per cell. Returns a
    :class:`CheckReport`; call ``.assert_passed()`` to raise on failure.
    """
    if isinstance(func, Entry):
        if reference is not None or cases is not None or options:
            msg = "check: pass either an Entry or a function with reference and cases"
            raise TypeError(msg)
        ent = func
    elif reference is None or cases is None:
        msg = "check: a function needs its reference and its cases"
        raise TypeError(msg)
    else:
        ent = entry(func, reference, cases, **options)
    skipped = prepare(backends)
    found = _backends.targets(backends)
    if not found:
        msg = f"check: no installed backend among {backends}"
        raise ValueError(msg)
    with np.errstate(all="ignore"):  # naive functions warn; the values are what is checked
        report = run([ent], found, dtypes=dtypes, quick=quick,
                     compile_cases=1 if quick else None, progress=progress)
    return CheckReport(cells=report.cells, agreement_failures=report.agreement_failures,
                       skipped=skipped, functions=[ent])


# ------------------------------------------------------------------- pytest

_CELLS = {}


def _cell(ent, target, dtype, quick):
    key = (ent, target.id, dtype, quick)
    if key not in _CELLS:
        with np.errstate(all="ignore"):
            _CELLS[key] = run_cell(ent, target, dtype, compile_cases=1 if quick else None)
    return _CELLS[key]


def _cells(backends, dtypes, quick):
    return [(t, d) for t in targets(backends) for d in default_dtypes(t, quick)
            if dtypes is None or d in dtypes]


def parametrize(*, backends=None, dtypes=None, quick=False):
    """``pytest.mark.parametrize`` over ``("target", "dtype")``: every installed
    backend × device × dtype (ids ``numpy:cpu-float64``), optionally limited."""
    import pytest

    cells = _cells(backends, dtypes, quick)
    if not cells:
        msg = f"parametrize: no installed target for backends={backends}, dtypes={dtypes}"
        raise ValueError(msg)
    return pytest.mark.parametrize(("target", "dtype"), cells,
                                   ids=[f"{t.id}-{d}" for t, d in cells])


def assert_cell(ent: Entry, target, dtype: str, *, quick=False):
    """Run every case of ``ent`` on one target and dtype; raise AssertionError
    listing each failing case with its reproduction. Results are cached for
    :func:`assert_agreement`."""
    cell = _cell(ent, target, dtype, quick)
    assert cell.passed, f"{ent.name} on {target.id} {dtype}:\n" + "\n".join(cell.failures)
    return cell


def assert_agreement(ent: Entry, dtype: str, *, backends=None, quick=False):
    """Every pair of installed targets agrees on every case of ``ent`` in ``dtype``."""
    cells = [_cell(ent, t, d, quick) for t, d in _cells(backends, (dtype,), quick)]
    failures = agreement(cells)
    assert not failures, "\n".join(failures)
    return cells
