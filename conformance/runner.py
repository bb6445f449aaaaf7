"""Run registry entries on backends, devices and dtypes, and check every result.

A *cell* is one entry on one target (backend and device) in one dtype. For
each of its cases the runner checks:

* metadata: the result is an array of the input's namespace, on the input's
  device, with the documented dtype and the reference's shape;
* accuracy: the error against the mpmath reference, in ULP of the result
  dtype; non-finite results where the exact value is finite count as infinite
  error; results whose exact value is below the smallest normal number may
  flush to zero;
* gradients (differentiable backends, float32/float64): finite for every
  differentiable argument of every case whose exact value is finite, and
  accurate: the derivative along a tangent direction, in reverse mode
  (autograd, ``jax.grad``) and forward mode (``torch.func.jvp``, ``jax.jvp``),
  against the mpmath reference's (:mod:`.gradients`);
* compilation (``jax.jit``, ``torch.compile``): the compiled result matches the
  eager one within the accuracy bound;
* vectorisation (``jax.vmap``, ``torch.func.vmap``): the case stacked twice
  along a new leading axis and mapped over it gives the eager result twice,
  within the accuracy bound.

On a lazy library (Dask) a computation started before the result is read
fails the case. On a target whose arrays hold no values (torch's ``meta``)
only the metadata of each result and gradient is checked.

Across cells, :func:`agreement` checks that every pair of targets agrees within
the accuracy bound on every case.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field, replace

import array_api_compat
import mpmath
import numpy as np

from . import gradients
from .registry import Entry, as_float_args

__all__ = ["CellResult", "agreement", "input_magnitude", "run_cell", "ulp_errors"]

# Format constants for the result dtypes: (eps, smallest normal). bfloat16 is
# not a NumPy dtype; its values follow from its 8-bit exponent, 8-bit significand.
FORMATS = {
    "float64": (2.0**-52, 2.0**-1022),
    "float32": (2.0**-23, 2.0**-126),
    "float16": (2.0**-10, 2.0**-14),
    "bfloat16": (2.0**-7, 2.0**-126),
}

# Round-to-nearest overflow threshold: max + ulp(max)/2 = (2 - eps/2) * 2**emax.
OVERFLOW = {
    "float64": (2 - 2.0**-53) * 2.0**1023,
    "float32": (2 - 2.0**-24) * 2.0**127,
    "float16": (2 - 2.0**-11) * 2.0**15,
    "bfloat16": (2 - 2.0**-8) * 2.0**127,
}


@dataclass
class CellResult:
    entry: str
    target: str
    dtype: str
    worst_ulp: float = 0.0
    worst_case: str = ""
    grad: str = "n/a"
    #: Worst gradient error in ULP (normwise, see :mod:`.gradients`), and how many
    #: directions were checked and how many could not be resolved.
    grad_worst_ulp: float = 0.0
    grad_checked: int = 0
    grad_unresolved: int = 0
    compiled: str = "n/a"
    vmapped: str = "n/a"
    failures: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    #: Per case: (largest |input| of each result element, its error in ULP), for plots.
    errors: dict = field(default_factory=dict)
    seconds: float = 0.0
    flushes_subnormals: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures


def _split(exact):
    """Exact mpf values as (hi, lo) float64 arrays with hi + lo = exact to ~2**-106."""
    exact = np.asarray(exact, dtype=object)
    hi = np.empty(exact.shape)
    lo = np.zeros(exact.shape)
    for idx in np.ndindex(exact.shape):
        v = exact[idx]
        if mpmath.isnan(v):
            hi[idx] = math.nan
        elif mpmath.isinf(v):
            hi[idx] = math.inf if v > 0 else -math.inf
        else:
            with mpmath.workdps(60):
                h = float(v)
                hi[idx] = h
                if math.isfinite(h):
                    lo[idx] = float(v - mpmath.mpf(h))
    return hi, lo


def ulp_errors(result, hi, lo, scale, dtype, ftz=False):
    """Elementwise error in ULP: |result - exact| / (eps * max(scale, smallest_normal)).

    With ``ftz`` (a target that flushes subnormal intermediates to zero) an
    absolute error up to twice the smallest normal number is forgiven: that is
    what flushing the subnormal terms of a result can lose.
    """
    with np.errstate(all="ignore"):  # NaN and inf are data here
        return _ulp_errors(result, hi, lo, scale, dtype, ftz)


def _ulp_errors(result, hi, lo, scale, dtype, ftz):
    eps, tiny = FORMATS[dtype]
    r = np.asarray(result, dtype=np.float64)
    err = np.zeros(r.shape)
    nan_exact = np.isnan(hi)
    err[nan_exact & ~np.isnan(r)] = math.inf
    inf_exact = np.isinf(hi)
    fin = ~nan_exact & ~inf_exact
    # An exact value beyond the result format's range correctly rounds to ±inf.
    overflow = fin & (np.abs(hi) >= OVERFLOW[dtype])
    inf_exact = inf_exact | overflow
    fin = fin & ~overflow
    err[inf_exact & (r != np.sign(hi) * math.inf)] = math.inf
    bad = fin & ~np.isfinite(r)
    err[bad] = math.inf
    ok = fin & np.isfinite(r)
    diff = np.abs((r[ok] - hi[ok]) - lo[ok])
    if ftz:
        diff = np.maximum(diff - 2 * tiny, 0.0)
    denom = eps * np.maximum(np.asarray(scale, dtype=np.float64)[ok], tiny)
    e = diff / denom
    flushed = (np.abs(hi[ok]) < tiny) & (r[ok] == 0)
    e[flushed] = 0.0
    err[ok] = e
    return err


class _ReferenceCache:
    """Exact values per (entry, case, dtype, flushing), and exact directional
    derivatives per argument besides: every backend holds the same values for a
    dtype, so one read of the committed vectors (:mod:`.vectors`, the catalog's
    functions) or one mpmath evaluation (the others, and flushed inputs)
    serves them all."""

    def __init__(self):
        self._store = {}

    def derivative(self, entry, case, dtype, argnum, flush_tiny, compute):
        """The exact derivative for ``argnum``, from ``compute()`` on first use."""
        key = (entry.name, entry.reference, entry.cases, case.name, dtype, flush_tiny, argnum)
        if key not in self._store:
            self._store[key] = compute()
        return self._store[key]

    def get(self, entry, case, dtype, held_args, held_kwargs, flush_tiny):
        from . import vectors  # (imported here: it is also run as a script)

        args = [_flushed(a, flush_tiny) for a in held_args]
        kwargs = {k: _flushed(v, flush_tiny) for k, v in held_kwargs.items()}
        # Keyed by what the reference sees: targets may round a case's arrays
        # differently (torch rounds float64 to bfloat16 through float32), and a
        # user's entry may reuse a name.
        digest = vectors.input_digest(args, kwargs, dtype)
        key = (entry.name, entry.reference, case.name, dtype, digest)
        if key not in self._store:
            stored = None
            if dtype in vectors.DTYPES and vectors.is_catalog_entry(entry):
                stored = vectors.lookup(entry, case, dtype, digest)
            hi, lo = stored or vectors.compute(entry, case, dtype, args, kwargs)
            with np.errstate(all="ignore"):  # scales see the same infinities as hi
                scale = np.abs(hi) if entry.scale is None else np.asarray(
                    entry.scale(args, case.kwargs, hi), dtype=np.float64)
            self._store[key] = (hi, lo, scale)
        return self._store[key]


REFERENCES = _ReferenceCache()


def _flushed(a, flush_tiny):
    """What arithmetic that treats subnormals as zero (DAZ) sees of ``a``."""
    if _is_float_array(a) and flush_tiny:
        return np.where(np.abs(a) < flush_tiny, np.copysign(0.0, a), a)
    return a


def _is_float_array(v):
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def _build(target, case, dtype):
    """The case's arrays on ``target``: floats in ``dtype``, integers unchanged."""
    backend = target.backend
    arrays = []
    for a, is_float in zip(case.args, as_float_args(case.args), strict=True):
        arrays.append(backend.asarray(a, target, dtype if is_float else None))
    kwargs = {k: (backend.asarray(v, target, dtype) if _is_float_array(v) else v)
              for k, v in case.kwargs.items()}
    return arrays, kwargs


def _held(target, arrays, case):
    """The values the backend holds, as float64 NumPy (exact for every float format)."""
    out = []
    for a, arr, is_float in zip(case.args, arrays, as_float_args(case.args), strict=True):
        out.append(target.backend.to_numpy(arr).astype(np.float64) if is_float else a)
    return out


def _held_kwargs(target, kwargs):
    """The options as the reference takes them: arrays as float64 NumPy
    (``target`` None: they are NumPy arrays already)."""
    to_numpy = np.asarray if target is None else target.backend.to_numpy
    return {k: (v if isinstance(v, (str, int, float, tuple, type(None)))
                else to_numpy(v).astype(np.float64))
            for k, v in kwargs.items()}


def reproduction(entry, case, target, dtype):
    where, path = _locate(entry)
    call = f"reproduce({where!r}, {case.name!r}, {target.id!r}, {dtype!r})"
    if where is None:  # an entry held by no module: call reproduce where it is in scope
        return (f"from xploss.conformance import reproduce; "
                f"reproduce(<the Entry {entry.name!r}>, {case.name!r}, {target.id!r}, {dtype!r})")
    prefix = f"import sys; sys.path.insert(0, {path!r}); " if path else ""
    return f"python -c \"{prefix}from xploss.conformance import reproduce; {call}\""


def _locate(entry):
    """How a fresh interpreter finds ``entry``: its registered name, or
    ``'module:attribute'`` of a module variable holding it (with the folder to put
    on ``sys.path`` for a script or test file), else ``(None, None)``."""
    from .registry import REGISTRY

    if REGISTRY.get(entry.name) is entry:
        return entry.name, None
    for name in dict.fromkeys((getattr(entry.func, "__module__", None), "__main__")):
        module = sys.modules.get(name) if name else None
        attr = next((k for k, v in vars(module).items() if v is entry), None) if module else None
        file = getattr(module, "__file__", None)
        if attr is None or (name == "__main__" and not file):
            continue
        folder = os.path.dirname(os.path.abspath(file)) if file else ""
        if file and (name == "__main__" or ("." not in name and "-packages" not in folder)):
            # A script or a test file: importable by its stem from its folder.
            stem = os.path.splitext(os.path.basename(file))[0]
            return f"{stem}:{attr}", os.path.relpath(folder)
        return f"{name}:{attr}", None
    # A stand-in under a registered name (a planted bug): the registered entry's case.
    return (entry.name, None) if entry.name in REGISTRY else (None, None)


def _describe_worst(err, held, result, hi):
    idx = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), -1, err))), err.shape) \
        if err.ndim else ()
    inputs = []
    for a in held:
        if isinstance(a, np.ndarray) and a.ndim == len(err.shape) and a.shape == err.shape:
            inputs.append(repr(a[idx].item()))
        elif isinstance(a, np.ndarray) and a.size <= 8:
            inputs.append(np.array2string(a, precision=17))
        else:
            inputs.append(f"<array {getattr(a, 'shape', ())}>")
    r = np.asarray(result, dtype=np.float64)
    return (f"at index {tuple(int(i) for i in idx)}: inputs ({', '.join(inputs)}) -> "
            f"{r[idx]!r}, exact {hi[idx]!r}")


def _meta_problems(entry, target, dtype, out, first, shape):
    problems = []
    expected_ns = array_api_compat.array_namespace(first)
    try:
        ns = array_api_compat.array_namespace(out)
    except TypeError:
        return [f"result is not an array of the input's library: {type(out).__name__}"]
    if ns is not expected_ns:
        problems.append(f"result namespace {ns.__name__} is not the input's "
                        f"{expected_ns.__name__}")
    if array_api_compat.device(out) != array_api_compat.device(first):
        problems.append(f"result on device {array_api_compat.device(out)}, input on "
                        f"{array_api_compat.device(first)}")
    want = target.backend.native_dtype(entry.result_dtype(dtype))
    if out.dtype != want:
        problems.append(f"result dtype {out.dtype}, expected {want}")
    if tuple(out.shape) != tuple(shape):
        problems.append(f"result shape {tuple(out.shape)}, expected {tuple(shape)}")
    return problems


def run_cell(entry: Entry, target, dtype: str, *, compile_cases: int | None = None,
             grads: bool = True, grad_oracle: bool = False) -> CellResult:
    """Run every case of ``entry`` on ``target`` in ``dtype`` and check it.

    ``compile_cases`` limits how many cases are also run compiled (None: all,
    0: none). When it is a positive limit and the backend is
    ``compiled_first`` (JAX), the roles swap unless the entry is ``unrolled``:
    every case, with its gradients, runs compiled, and ``compile_cases`` of
    them also eagerly. ``grad_oracle`` checks the gradients' accuracy
    against the reference, not only their finiteness.
    """
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(target.active())
        except Exception as exc:  # a setting that cannot be entered (a cluster that won't start)
            cell = CellResult(entry.name, target.id, dtype)
            cell.failures.append(f"the target's setting raised {type(exc).__name__}: {exc}")
            return cell
        if target.abstract:
            return _run_abstract(entry, target, dtype, grads)
        return _run_cell(entry, target, dtype, compile_cases, grads, grad_oracle)


def _run_cell(entry, target, dtype, compile_cases, grads, grad_oracle):
    start = time.perf_counter()
    cell = CellResult(entry.name, target.id, dtype)
    backend = target.backend
    result_dtype = entry.result_dtype(dtype)
    bound_of = _bound(entry)
    flush_tiny = flush_threshold(target, dtype)
    cell.flushes_subnormals = flush_tiny > 0
    cases = entry.cases(dtype)
    if not cases:
        cell.failures.append(f"{entry.name}: no cases for {dtype}")
    compiled_done = vmapped_done = 0
    compiled_first = bool(compile_cases) and backend.compiled_first and not entry.unrolled
    # How each case is run, and how the run it is compared with is made.
    transform, other, other_name = ((backend.compile, _eager, "eager") if compiled_first
                                    else (_eager, backend.compile, "compiled"))
    grad_status = []
    for case in cases:
        repro = reproduction(entry, case, target, dtype)
        try:
            arrays, kwargs = _build(target, case, dtype)
            held = _held(target, arrays, case)
            hi, lo, scale = REFERENCES.get(entry, case, dtype, held,
                                           _held_kwargs(target, kwargs), flush_tiny)
            # Invalid-domain cases make NumPy warn (Dask when computing); the value
            # is what is checked.
            with np.errstate(all="ignore"):
                with backend.computations() as computed:
                    out = transform(_with_options(entry, kwargs))(*arrays)
                problems = _meta_problems(entry, target, dtype, out, arrays[0], hi.shape)
                if computed:
                    problems.append(f"not lazy: {len(computed)} computation(s) started "
                                    f"before the result was read")
                result = backend.to_numpy(out).astype(np.float64)
        except Exception as exc:  # an exception is a failure of that case, with its trace
            cell.failures.append(f"[{case.name}] raised {type(exc).__name__}: {exc}\n"
                                 f"    {repro}\n{traceback.format_exc(limit=3)}")
            continue
        for p in problems:
            cell.failures.append(f"[{case.name}] {p}\n    {repro}")
        if result.shape != hi.shape:
            continue
        err = ulp_errors(result, hi, lo, scale, result_dtype, ftz=flush_tiny > 0)
        bound = bound_of(case)
        worst = float(np.max(err)) if err.size else 0.0
        cell.outputs[case.name] = (result, hi, scale, bound)
        cell.errors[case.name] = (input_magnitude(held, hi.shape), err)
        if worst > cell.worst_ulp or not cell.worst_case:
            cell.worst_ulp, cell.worst_case = max(worst, cell.worst_ulp), case.name
        if worst > bound:
            cell.failures.append(
                f"[{case.name}] error {worst:.3g} ULP > bound {bound:g} "
                f"{_describe_worst(err, held, result, hi)}\n    {repro}")
        # Gradients are checked where every exact value is representable in the
        # result dtype (beyond it the value, and so the loss surface, overflows).
        finite_exact = bool(np.all(np.abs(hi) < OVERFLOW[result_dtype]))
        if grads and backend.differentiable and dtype in ("float32", "float64") and finite_exact:
            grad_status.append(_check_grads(entry, case, target, dtype, arrays, kwargs, held,
                                            hi, bound, flush_tiny, cell, repro, grad_oracle,
                                            transform))
        if backend.compilable and (compile_cases is None or compiled_done < compile_cases):
            compiled_done += 1
            cell.compiled = _check_transformed(other_name, other, entry, case,
                                               target, arrays, kwargs, result, scale, bound,
                                               result_dtype, cell, repro, cell.compiled)
        if backend.vmappable and (compile_cases is None or vmapped_done < compile_cases):
            vmapped_done += 1
            cell.vmapped = _check_vmapped(entry, case, target, dtype, result, scale, bound,
                                          result_dtype, cell, repro, cell.vmapped, transform)
    if grad_status:
        cell.grad = "ok" if all(grad_status) else "FAIL"
    cell.seconds = time.perf_counter() - start
    return cell


def _run_abstract(entry, target, dtype, grads):
    """A cell on a target whose arrays hold no values (torch's ``meta``): each
    case, and the gradient of its sum for each differentiable argument, must
    run and give the documented namespace, device, dtype and shape (NumPy's
    result's shape). A value read on the way (a host synchronisation, Python
    control flow on data) raises there, and fails the case."""
    from xploss import backends

    start = time.perf_counter()
    cell = CellResult(entry.name, target.id, dtype)
    backend = target.backend
    numpy_cpu = backends.get("numpy").targets()[0]
    for case in entry.cases(dtype):
        repro = reproduction(entry, case, target, dtype)
        try:
            # The shape of the result, from NumPy (float32 for a dtype it lacks).
            with np.errstate(all="ignore"):  # float32 casts overflow, as they should
                np_arrays, np_kwargs = _build(numpy_cpu, case, "float32")
                shape = np.shape(entry.func(*np_arrays, **np_kwargs))
            arrays, kwargs = _build(target, case, dtype)
            out = _with_options(entry, kwargs)(*arrays)
            problems = _meta_problems(entry, target, dtype, out, arrays[0], shape)
            if grads and backend.differentiable:
                problems += _gradient_metadata(entry, case, backend, arrays, kwargs)
        except Exception as exc:
            cell.failures.append(f"[{case.name}] raised {type(exc).__name__}: {exc}\n"
                                 f"    {repro}\n{traceback.format_exc(limit=3)}")
            continue
        cell.failures += [f"[{case.name}] {p}\n    {repro}" for p in problems]
    if grads and backend.differentiable:
        cell.grad = "FAIL" if any("] gradient wrt" in f for f in cell.failures) else "ok"
    cell.worst_case = "(shapes only)"
    cell.seconds = time.perf_counter() - start
    return cell


def _gradient_metadata(entry, case, backend, arrays, kwargs):
    """Problems with the shape or dtype of the gradient of the sum of ``entry``
    with respect to each differentiable argument (which must have its argument's)."""
    xp = array_api_compat.array_namespace(arrays[0])
    float_args = as_float_args(case.args)
    problems = []
    for argnum in entry.differentiable:
        if argnum >= len(arrays) or not float_args[argnum] or argnum in case.no_grad:
            continue
        try:
            g = backend.grad(lambda *a: xp.sum(entry.func(*a, **kwargs)), arrays, argnum)
        except Exception as exc:
            problems.append(f"gradient wrt argument {argnum} raised {type(exc).__name__}: {exc}")
            continue
        a = arrays[argnum]
        if tuple(g.shape) != tuple(a.shape) or g.dtype != a.dtype:
            problems.append(f"gradient wrt argument {argnum} has shape {tuple(g.shape)} and "
                            f"dtype {g.dtype}, its argument {tuple(a.shape)} and {a.dtype}")
    return problems


def input_magnitude(held, shape):
    """For each result element, the largest finite |input| it depends on (0 if
    none): an argument of the result's shape (or broadcast to it) element by
    element, one whose leading axes are the result's (a row per result) by row,
    any other as a whole."""
    mag = np.zeros(shape)
    for a in held:
        if not _is_float_array(a):
            continue
        with np.errstate(invalid="ignore"):
            m = np.where(np.isfinite(a), np.abs(a), 0.0)
        try:
            m = np.broadcast_to(m, shape)
        except ValueError:
            rows = len(shape)
            if m.ndim > rows and m.shape[:rows] == tuple(shape):
                m = np.max(m, axis=tuple(range(rows, m.ndim)), initial=0.0)
            else:
                m = np.max(m, initial=0.0)
        mag = np.maximum(mag, m)
    return mag


def flush_threshold(target, dtype):
    """The smallest normal number where ``target`` treats subnormal inputs as zero, else 0."""
    # bfloat16 has float32's exponent range: its subnormals are float32 subnormals.
    probe = "float32" if dtype == "bfloat16" else dtype
    if probe in ("float32", "float64") and target.backend.flushes_subnormals(target, probe):
        return FORMATS[dtype][1]
    return 0.0


def _bound(entry):
    def bound(case):
        return entry.ulps + 0.5 * (case.summands - 1)

    return bound


def _eager(fn):
    return fn


def _with_options(entry, kwargs):
    """``entry.func`` with the case's options bound: a function of the arrays only."""

    def fn(*arrays):
        return entry.func(*arrays, **kwargs)

    return fn


def _check_grads(entry, case, target, dtype, arrays, kwargs, held, hi, bound, flush_tiny,
                 cell, repro, oracle, transform=_eager):
    """Finite gradients, and with ``oracle`` directional derivatives (reverse
    and forward mode) within ``bound`` of the reference's, each computed under
    ``transform`` (a compiler, or eager); returns whether all held."""
    backend = target.backend
    xp = array_api_compat.array_namespace(arrays[0])
    ok = True
    float_args = as_float_args(case.args)
    # The oracle differentiates a weighted sum (no sum of outputs is constant,
    # as a softmax row's is); finiteness needs only the plain one.
    w = gradients.weights(entry.name, case.name, hi.shape) if oracle else None
    w_b = backend.asarray(w, target, dtype) if oracle else 1.0
    eps = FORMATS[dtype][0]
    if oracle:  # the point as the reference sees it
        point = [_flushed(a, flush_tiny) for a in held]
        point_kwargs = {k: _flushed(v, flush_tiny)
                        for k, v in _held_kwargs(target, kwargs).items()}

    def total(*a):
        return xp.sum(entry.func(*a, **kwargs) * w_b)

    for argnum in entry.differentiable:
        if argnum >= len(arrays) or not float_args[argnum] or argnum in case.no_grad:
            continue
        what = f"gradient wrt argument {argnum}"
        try:
            g = transform(lambda *a, argnum=argnum: backend.grad(total, a, argnum))(*arrays)
            g = backend.to_numpy(g).astype(np.float64)
        except Exception as exc:
            cell.failures.append(f"[{case.name}] {what} raised "
                                 f"{type(exc).__name__}: {exc}\n    {repro}")
            ok = False
            continue
        if not np.all(np.isfinite(g)):
            bad = np.argwhere(~np.isfinite(np.atleast_1d(g)))[:3].tolist()
            cell.failures.append(f"[{case.name}] {what} is not finite "
                                 f"at {bad} (exact value finite)\n    {repro}")
            ok = False
            continue
        if not oracle:
            continue
        t = gradients.tangent(entry.name, case.name, argnum, point[argnum])
        if not np.any(t):
            continue
        exact = REFERENCES.derivative(entry, case, dtype, argnum, flush_tiny, functools.partial(
            gradients.exact_derivative, entry, point, point_kwargs, dtype, argnum, w, t,
            float(np.max(np.abs(hi), initial=0.0))))
        # The reference may perturb fewer elements (those inside its domain).
        t = t if exact.tangent is None else exact.tangent
        # A flushing target may lose subnormal terms of each product g_i t_i.
        allowance = 2 * FORMATS[dtype][1] * float(np.sum(np.abs(t))) if flush_tiny else 0
        for mode in ("reverse", "forward"):
            try:
                if mode == "reverse":
                    value = gradients.directional(g, t)
                else:
                    tangent = backend.asarray(t, target, dtype)
                    jvp = transform(lambda tan, *a, argnum=argnum:
                                    backend.jvp(total, a, argnum, tan))
                    value = float(backend.to_numpy(jvp(tangent, *arrays)))
            except Exception as exc:
                cell.failures.append(f"[{case.name}] {mode}-mode derivative wrt argument "
                                     f"{argnum} raised {type(exc).__name__}: {exc}\n    {repro}")
                ok = False
                continue
            # Forward mode computes the derivative in the format: beyond its
            # range, inf is the right answer and no error can be measured.
            limit = float(np.finfo(dtype).max) if mode == "forward" else math.inf
            err, unresolved = gradients.measure(exact, value, g, t, eps, FORMATS[dtype][1],
                                                allowance, limit)
            if unresolved:
                cell.grad_unresolved += 1
                continue
            cell.grad_checked += 1
            cell.grad_worst_ulp = max(cell.grad_worst_ulp, err)
            if not err <= bound:
                cell.failures.append(
                    f"[{case.name}] {mode}-mode derivative wrt argument {argnum} along a "
                    f"tangent: error {err:.3g} ULP > bound {bound:g} (computed "
                    f"{mpmath.nstr(mpmath.mpf(value), 17)}, exact "
                    f"{mpmath.nstr(exact.value, 17)})\n    {repro}")
                ok = False
    return ok


def _check_transformed(what, transform, entry, case, target, arrays, kwargs, expected, scale,
                       bound, result_dtype, cell, repro, status):
    """``transform(fn)(*arrays)`` (a compiler, eager, or a vmap) gives ``expected``,
    the case's result, within the bound; ``status`` is the cell's status so far."""
    try:
        with np.errstate(all="ignore"):
            got = target.backend.to_numpy(
                transform(_with_options(entry, kwargs))(*arrays)).astype(np.float64)
    except Exception as exc:
        cell.failures.append(f"[{case.name}] {what} run raised {type(exc).__name__}: "
                             f"{exc}\n    {repro}")
        return "FAIL"
    if got.shape != expected.shape:
        cell.failures.append(f"[{case.name}] {what} result shape {got.shape}, expected "
                             f"{expected.shape}\n    {repro}")
        return "FAIL"
    # Compiled kernels may flush subnormal intermediates (FTZ, as Triton and XLA do
    # on CUDA): the same absolute allowance as for flushing targets.
    err = ulp_errors(got, expected, np.zeros_like(expected), scale, result_dtype, ftz=True)
    worst = float(np.max(err)) if err.size else 0.0
    if worst > bound:
        cell.failures.append(f"[{case.name}] {what} differs from eager by {worst:.3g} ULP "
                             f"> {bound:g}\n    {repro}")
        return "FAIL"
    return "FAIL" if status == "FAIL" else "ok"


def _check_vmapped(entry, case, target, dtype, result, scale, bound, result_dtype, cell,
                   repro, status, transform=_eager):
    """The case stacked twice along a new axis 0, under the backend's vmap (and
    ``transform``, as the case's ``result`` was computed): that result twice."""
    stacked = replace(case, args=tuple(np.stack([a, a]) for a in case.args))
    arrays, kwargs = _build(target, stacked, dtype)
    twice = np.stack([np.broadcast_to(scale, result.shape)] * 2)
    return _check_transformed("vmapped", lambda f: transform(target.backend.vmap(f)), entry,
                              case, target, arrays, kwargs, np.stack([result, result]), twice,
                              bound, result_dtype, cell, repro, status)


def agreement(cells: list[CellResult]) -> list[str]:
    """Every pair of cells (same entry and dtype) agrees within the bound on every case."""
    failures = []
    for i, a in enumerate(cells):
        for b in cells[i + 1:]:
            for name, (ra, hi, scale, bound) in a.outputs.items():
                if name not in b.outputs:
                    continue
                rb, hi_b = b.outputs[name][:2]
                if ra.shape != rb.shape:
                    continue
                # Compare where both targets computed the same exact value: a target
                # that treats subnormal inputs as zero computes another function there.
                same = (hi == hi_b) | (np.isnan(hi) & np.isnan(hi_b))
                ra, rb, hi, scale = ra[same], rb[same], hi[same], scale[same]
                dtype = a.dtype if a.dtype in FORMATS else "float64"
                eps, tiny = FORMATS[dtype]
                same_special = np.array_equal(np.isnan(ra), np.isnan(rb)) and np.array_equal(
                    np.where(np.isinf(ra), ra, 0), np.where(np.isinf(rb), rb, 0))
                fin = np.isfinite(ra) & np.isfinite(rb)
                with np.errstate(over="ignore", invalid="ignore"):
                    diff = np.abs(ra[fin] - rb[fin])
                    if a.flushes_subnormals or b.flushes_subnormals:
                        diff = np.maximum(diff - 2 * tiny, 0.0)  # as in ulp_errors
                    diff = diff / (eps * np.maximum(scale[fin], tiny))
                diff[(np.abs(hi[fin]) < tiny)] = 0.0
                worst = float(np.max(diff)) if diff.size else 0.0
                if not same_special or worst > bound:
                    failures.append(f"{a.entry} {a.dtype} [{name}]: {a.target} and {b.target} "
                                    f"differ by {worst:.3g} ULP (bound {bound:g})"
                                    + ("" if same_special else ", and in NaN/inf pattern"))
    return failures
