"""Whole runs: entries × targets × dtypes, cross-backend agreement, reproduction."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from xploss import backends

from .registry import Entry
from .runner import (
    REFERENCES,
    CellResult,
    _build,
    _held,
    _held_kwargs,
    agreement,
    flush_threshold,
    run_cell,
)

__all__ = ["Report", "default_dtypes", "reproduce", "run"]


@dataclass
class Report:
    cells: list[CellResult] = field(default_factory=list)
    agreement_failures: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cells) and not self.agreement_failures

    def as_dict(self):
        combinations = list(dict.fromkeys((c.target, c.dtype) for c in self.cells))
        worst = {}
        worst_grad = {}
        for c in self.cells:
            worst.setdefault(c.entry, {})[f"{c.target} {c.dtype}"] = c.worst_ulp
            if c.grad_checked:
                worst_grad.setdefault(c.entry, {})[f"{c.target} {c.dtype}"] = c.grad_worst_ulp
        return {
            "passed": self.passed,
            "skipped_backends": self.skipped,
            "combinations": [{"backend": t.partition(":")[0], "device": t.partition(":")[2],
                              "dtype": d} for t, d in combinations],
            "worst_ulp": worst,
            # Only with the gradient oracle: per function and combination.
            "worst_gradient_ulp": worst_grad,
            "cells": [{"function": c.entry, "target": c.target, "dtype": c.dtype,
                       "passed": c.passed, "worst_ulp": c.worst_ulp,
                       "worst_case": c.worst_case, "gradients": c.grad,
                       "gradient_worst_ulp": c.grad_worst_ulp,
                       "gradient_directions": {"checked": c.grad_checked,
                                               "unresolved": c.grad_unresolved},
                       "compiled": c.compiled, "vmapped": c.vmapped, "seconds": round(c.seconds, 3),
                       "failures": c.failures} for c in self.cells],
            "agreement_failures": self.agreement_failures,
        }


def default_dtypes(target, quick=False):
    """float64 and float32 always (where the device has them); 16-bit unless quick."""
    dts = target.backend.dtypes(target)
    return tuple(d for d in dts if d in ("float64", "float32") or not quick)


def prepare(names=None):
    """Ready the selected backends (JAX x64) and list the unavailable ones with reasons."""
    skipped = {}
    for name, reason in backends.available().items():
        if names is not None and name not in names:
            continue
        if reason is None:
            backends.get(name).prepare()
        else:
            skipped[name] = reason
    return skipped


def run(entries, targets, *, dtypes=None, quick=False, compile_cases=None, progress=None,
        grad_oracle=False):
    """Run every entry on every target in each dtype (default: :func:`default_dtypes`);
    ``grad_oracle`` also checks gradients against the reference (:mod:`.gradients`)."""
    report = Report()
    columns = matrix_columns(targets, dtypes=dtypes, quick=quick)
    for entry in entries:
        by_dtype = {}
        for target, dtype in columns:
            cell = run_cell(entry, target, dtype, compile_cases=compile_cases,
                            grad_oracle=grad_oracle)
            report.cells.append(cell)
            by_dtype.setdefault(dtype, []).append(cell)
            if progress:
                progress(cell)
        for cells in by_dtype.values():
            report.agreement_failures += agreement(cells)
    return report


def matrix_columns(targets, *, dtypes=None, quick=False):
    """The (target, dtype) pairs :func:`run` checks each entry on, in its order."""
    return [(target, dtype) for target in targets
            for dtype in (dtypes or default_dtypes(target, quick))
            if dtype in target.backend.dtypes(target)]


def reproduce(function, case, target, dtype):
    """Print one case's inputs, result, exact value and per-element ULP error.

    ``function`` is a registered name, an :class:`Entry`, or ``'module:attribute'``
    naming a module variable that holds an Entry (a user's function).
    """
    from . import load_catalog

    if isinstance(function, Entry):
        entry = function
    elif ":" in function:
        module, _, attr = function.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    else:
        entry = load_catalog()[function]
    backend_name, _, label = target.partition(":")
    backend = backends.get(backend_name)
    backend.prepare()
    tgt = next(t for t in backend.targets() if t.label == label)
    (c,) = [c for c in entry.cases(dtype) if c.name == case]
    with tgt.active():
        return _reproduce(entry, c, tgt, target, dtype)


def _reproduce(entry, c, tgt, target, dtype):
    from .runner import ulp_errors

    backend = tgt.backend
    function = entry.name
    arrays, kwargs = _build(tgt, c, dtype)
    if tgt.abstract:  # no values to show: the result's metadata
        out = entry.func(*arrays, **kwargs)
        print(f"{function} [{c.name}] on {target} {dtype}: result {type(out).__name__} "
              f"shape {tuple(out.shape)} dtype {out.dtype}")
        return out, None, None
    held = _held(tgt, arrays, c)
    flush = flush_threshold(tgt, dtype)
    hi, lo, scale = REFERENCES.get(entry, c, dtype, held, _held_kwargs(tgt, kwargs), flush)
    out = backend.to_numpy(entry.func(*arrays, **kwargs)).astype(np.float64)
    err = ulp_errors(out, hi, lo, scale, entry.result_dtype(dtype))
    with np.printoptions(precision=17):
        print(f"{function}(*args, **{ {k: v for k, v in c.kwargs.items()} }) on {target} {dtype}")
        for i, a in enumerate(held):
            print(f"arg {i}: {a!r}")
        print(f"result: {out!r}\nexact:  {hi!r}\nULP:    {err!r}")
    return out, hi, err
