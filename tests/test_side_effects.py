"""No global side effects, and thread safety.

Requirement: importing or calling xploss changes no global state of any
framework (JAX x64 flag, torch default dtype, NumPy error state, ...), and
concurrent calls from several threads give the same results as serial ones.

What is recorded (:func:`snapshot`, compared by :func:`diff`)
--------------------------------------------------------------
* Python: ``warnings.filters``, the recursion limit, the thread switch
  interval, trace/profile hooks, ``sys.excepthook`` and friends, ``sys.path``
  and the import machinery, the ``decimal`` module's current and default
  contexts (precision, rounding, exponent limits, flags, traps: xploss uses
  ``decimal.localcontext`` at import), the ``random`` module's state, the
  locale, the working directory, ``os.environ``, SIGINT/SIGTERM handlers, the
  root logger, ``gc.isenabled()``;
* the CPU floating-point environment, probed by arithmetic: the rounding mode
  and whether subnormals are flushed (FTZ/DAZ), in float64 and float32;
* NumPy: ``geterr``, ``geterrcall``, ``getbufsize``, print options, the legacy
  global random generator's state;
* PyTorch: default dtype and device, grad / inference / anomaly modes,
  deterministic algorithms (and warn-only), intra- and inter-op thread counts,
  float32 matmul precision, cuDNN and TF32 flags, autocast, print options, the
  CPU random generator's state;
* JAX: every ``jax.config`` option (``jax_enable_x64``,
  ``jax_default_matmul_precision``, ``jax_default_device``, the promotion
  modes, debug flags, ...) and the default backend;
* array-api-strict's flags, Dask's configuration, mpmath's ``mp`` context.

How (two fresh interpreters, run side by side: the pytest process has JAX x64
on, set by ``tests/conftest.py``, so it cannot serve as a clean baseline)
--------------------------------------------------------------------------
1. *Defaults* (``python test_side_effects.py probe``): import the frameworks
   and let them do their lazy set-up (torch's first ``broadcast_shapes``
   imports sympy, which adds a warnings filter: torch's doing, not xploss's),
   then snapshot before and after each phase: ``import xploss``; building the
   registry's inputs (the harness); eager calls of every public function (the
   first two cases of its registry entry) on NumPy, array-api-strict and
   PyTorch in float32 and float64, and of a few (:data:`SUBSET`) on Dask and
   eager JAX (float32, x64 being off); every function traced by
   ``jax.make_jaxpr`` with and without ``jax.grad`` (this runs all of
   xploss's code as ``jax.jit`` does; XLA compilation, a second a function
   here, is left to :data:`SUBSET`, which runs under ``jax.jit``), and
   differentiated by torch autograd; then the concurrent calls below.
2. *Non-defaults* (``... probe-nondefault``): JAX x64 on, JAX matmul precision
   "highest", torch default dtype float64 and one thread, NumPy underflow
   "warn" and print precision 4, decimal precision 50 rounding down, an extra
   warnings filter, a higher recursion limit, all set *before* ``import
   xploss``; then every function traced on JAX in float64 and :data:`SUBSET`
   run eagerly and jitted on JAX and eagerly on NumPy and PyTorch. Nothing may
   change and x64 must still be on (and give float64 results).
3. ``import xploss`` alone imports neither mpmath nor any array library.

Any change is printed as a diff per phase and fails the test. The calls are
made bare: an ``np.errstate`` or ``warnings.catch_warnings`` block around them
would restore its state on exit and so hide a leak from inside the call.

Threads: in the first interpreter, the serial results of every function's
first case (float64 on NumPy, array-api-strict, PyTorch with its autograd
gradient; float32 on JAX: the jaxpr of every function, and :data:`SUBSET`
eager and jitted) are recomputed 3 times in shuffled order from 8 threads at
once; each must be bitwise identical to the serial result (so also in its NaN
pattern), each jaxpr textually identical, and the threads must leave the global
state as it was. (Not Dask: its graph building is not thread-safe as to
``warnings.filters``, see ``_probe``.)

The checks can fail: ``test_snapshot_detects_each_kind_of_change`` changes
each kind of setting and asserts the recorder reports it (and its undoing),
``test_fp_environment_probe_sees_rounding_mode`` switches the CPU rounding
mode, and ``test_concurrent_check_detects_differences`` feeds the thread check
calls whose results depend on the thread or raise.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import decimal
import difflib
import gc
import hashlib
import importlib.util
import json
import locale
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = "@@SIDE-EFFECTS@@"
HAVE = {m: importlib.util.find_spec(m) is not None
        for m in ("numpy", "torch", "jax", "dask", "array_api_strict", "mpmath")}


# --------------------------------------------------------------------------- recorder

def _hash(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else repr(p).encode())
    return h.hexdigest()[:16]


def _ctx(c: decimal.Context) -> str:
    flags = sorted(k.__name__ for k, v in c.flags.items() if v)
    traps = sorted(k.__name__ for k, v in c.traps.items() if v)
    return (f"prec={c.prec} rounding={c.rounding} Emin={c.Emin} Emax={c.Emax} "
            f"capitals={c.capitals} clamp={c.clamp} flags={flags} traps={traps}")


def _fp_environment() -> dict[str, str]:
    """The CPU rounding mode and subnormal handling, probed by runtime arithmetic
    (operands built at run time so the compiler cannot fold them)."""
    one = float(len("x"))
    ulp = one * 2.0 ** -52
    tiny = one * 2.0 ** -1022  # smallest normal float64
    f32_tiny = np.float32(one * 2.0 ** -126)
    return {
        "cpu.rounding": " ".join(float.hex(v) for v in (
            (one + ulp) + ulp / 2,  # a tie: to even gives 1 + 2 ulp
            one + ulp / 4,  # below half an ulp: 1 when rounding to nearest or down
            -one - ulp / 4,
        )),
        "cpu.subnormals.float64": float.hex(tiny * (one / 4)) + " " + float.hex(
            (tiny / 4) * one),
        "cpu.subnormals.float32": repr((f32_tiny * np.float32(0.25), np.float32(1e-45)
                                        * np.float32(one))),
    }


def snapshot() -> dict[str, str]:
    """Every recorded global setting, as ``name -> str``. Frameworks are read
    only when already imported (reading never imports one)."""
    s: dict[str, str] = {}
    s["python.warnings.filters"] = "\n".join(repr(f) for f in warnings.filters)
    s["python.recursionlimit"] = repr(sys.getrecursionlimit())
    s["python.switchinterval"] = repr(sys.getswitchinterval())
    s["python.trace"] = repr((sys.gettrace(), sys.getprofile(), threading.gettrace()
                              if hasattr(threading, "gettrace") else None))
    s["python.excepthook"] = repr((sys.excepthook, threading.excepthook, sys.displayhook))
    s["python.sys.path"] = repr(sys.path)
    s["python.import_machinery"] = repr((sys.meta_path, sys.path_hooks))
    s["python.decimal.context"] = _ctx(decimal.getcontext())
    s["python.decimal.DefaultContext"] = _ctx(decimal.DefaultContext)
    s["python.random.state"] = _hash(random.getstate())
    s["python.locale"] = repr(locale.setlocale(locale.LC_ALL, None))
    s["python.cwd"] = os.getcwd()
    for k, v in os.environ.items():
        s[f"python.os.environ[{k}]"] = v
    s["python.signals"] = repr((signal.getsignal(signal.SIGINT),
                                signal.getsignal(signal.SIGTERM)))
    s["python.logging.root"] = repr((logging.root.level, logging.root.handlers,
                                     logging.root.manager.disable))
    s["python.gc.enabled"] = repr(gc.isenabled())
    s.update(_fp_environment())

    s["numpy.geterr"] = repr(sorted(np.geterr().items()))
    s["numpy.geterrcall"] = repr(np.geterrcall())
    s["numpy.bufsize"] = repr(np.getbufsize())
    s["numpy.printoptions"] = repr(sorted(np.get_printoptions().items()))
    state = np.random.get_state()  # noqa: NPY002  (the legacy global generator's state)
    s["numpy.random.state"] = _hash(state[0], state[1].tobytes(), state[2:])

    torch = sys.modules.get("torch")
    if torch is not None:
        s["torch.default_dtype"] = repr(torch.get_default_dtype())
        if hasattr(torch, "get_default_device"):
            s["torch.default_device"] = repr(torch.get_default_device())
        s["torch.grad_enabled"] = repr(torch.is_grad_enabled())
        s["torch.inference_mode"] = repr(torch.is_inference_mode_enabled())
        s["torch.anomaly_mode"] = repr(torch.is_anomaly_enabled())
        s["torch.deterministic"] = repr((torch.are_deterministic_algorithms_enabled(),
                                         torch.is_deterministic_algorithms_warn_only_enabled()))
        s["torch.num_threads"] = repr(torch.get_num_threads())
        s["torch.num_interop_threads"] = repr(torch.get_num_interop_threads())
        s["torch.float32_matmul_precision"] = torch.get_float32_matmul_precision()
        s["torch.backends"] = repr((torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark,
                                    torch.backends.cudnn.deterministic,
                                    torch.backends.cudnn.allow_tf32,
                                    torch.backends.cuda.matmul.allow_tf32))
        s["torch.autocast"] = repr(torch.is_autocast_enabled("cpu"))
        s["torch.printoptions"] = repr(sorted(vars(torch._tensor_str.PRINT_OPTS).items()))
        s["torch.random.state"] = _hash(torch.get_rng_state().numpy().tobytes())

    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        s["jax.enable_x64"] = repr(jax.config.read("jax_enable_x64"))
        holders = getattr(jax.config, "_value_holders", None)
        if holders:  # every option (private; the named ones below are read publicly)
            for name, holder in holders.items():
                s[f"jax.config.{name}"] = repr(holder.value)
        for name in ("jax_default_matmul_precision", "jax_default_device",
                     "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion",
                     "jax_debug_nans", "jax_debug_infs", "jax_disable_jit"):
            s[f"jax.config.{name}"] = repr(getattr(jax.config, name))
        s["jax.default_backend"] = jax.default_backend()

    xps = sys.modules.get("array_api_strict")
    if xps is not None:
        s["array_api_strict.flags"] = repr(sorted(xps.get_array_api_strict_flags().items()))

    dask_config = sys.modules.get("dask.config")
    if dask_config is not None:
        s["dask.config"] = _hash(json.dumps(dask_config.config, sort_keys=True, default=repr))

    mpmath = sys.modules.get("mpmath")
    if mpmath is not None:
        mp = mpmath.mp
        s["mpmath.mp"] = repr((mp.prec, mp.dps, mp.pretty, mp.trap_complex))
    return s


def diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The settings recorded in both snapshots whose values differ, one line each
    (for a multi-line value, the lines removed and added)."""
    out = []
    for k in sorted(before.keys() & after.keys()):
        old, new = before[k], after[k]
        if old == new:
            continue
        if "\n" in old or "\n" in new:
            delta = [ln for ln in difflib.ndiff(old.splitlines(), new.splitlines())
                     if ln[:1] in "+-"]
            out.append(f"{k}: {delta}")
        else:
            out.append(f"{k}: {old!r} -> {new!r}")
    return out


# --------------------------------------------------------------------------- the probe

#: The functions also run eagerly on JAX and Dask, and compiled by ``jax.jit``:
#: an eager JAX call compiles every primitive it meets and ``jax.jit`` the whole
#: function (each about a second a function on a slow machine), and Dask builds
#: a graph per call. Every function is traced by ``jax.make_jaxpr`` (with and
#: without ``jax.grad``), which runs all of xploss's code as ``jax.jit`` does,
#: without XLA's compilation.
SUBSET = ("softplus", "logsumexp", "mse_loss", "cross_entropy")
THREADS = 8
ROUNDS = 3


def _set_non_defaults(mods) -> None:
    """Settings a user may have chosen, each away from its default: a library that
    reset any of them (to its default or another value) would show in the diff."""
    jax, torch = mods.get("jax"), mods.get("torch")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", "highest")
    if torch is not None:
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(1)
    np.seterr(under="warn")
    np.set_printoptions(precision=4)
    ctx = decimal.getcontext()
    ctx.prec, ctx.rounding = 50, decimal.ROUND_DOWN
    warnings.simplefilter("default", UserWarning)
    sys.setrecursionlimit(sys.getrecursionlimit() + 345)


def _warm_up(nondefault: bool) -> dict:
    """Import the frameworks and let each do its own lazy set-up before the baseline
    (with ``nondefault``, first move the settings of :func:`_set_non_defaults`)."""
    mods = {name: importlib.import_module(name)
            for name in ("torch", "jax", "array_api_strict", "dask") if HAVE[name]}
    import array_api_compat  # noqa: F401  (xploss's dependency, imported first)

    if nondefault:
        _set_non_defaults(mods)
    jax = mods.get("jax")
    if jax is not None:
        import jax.numpy as jnp

        jax.jit(lambda a: jnp.sum(a * 2))(jnp.ones(3)).block_until_ready()
        jax.grad(lambda a: jnp.sum(a * a))(jnp.ones(3))
    torch = mods.get("torch")
    if torch is not None:
        t = torch.ones(3, requires_grad=True)
        (t * t).sum().backward()
        # torch's first broadcast_shapes imports torch.fx.experimental.symbolic_shapes
        # and so sympy, whose import adds a warnings filter (SymPyDeprecationWarning,
        # 'once'): torch's own lazy set-up, done here so it is not laid at xploss's door.
        torch.broadcast_shapes((2, 1), (1, 3))
    if "dask" in mods:
        import dask.array as da

        da.from_array(np.ones(4), chunks=2).sum().compute()
    return mods


def _eager(backend, func, arrays, kwargs):
    return lambda: backend.to_numpy(func(*arrays, **kwargs))


def _jitted(jax, func, arrays, kwargs):
    import functools

    compiled = jax.jit(functools.partial(func, **kwargs))
    return lambda: np.asarray(compiled(*arrays))


def _traced(jax, func, arrays, kwargs, argnum=None):
    """The jaxpr of ``func`` (of the gradient of its sum wrt ``argnum`` when given),
    as text. A new function object per call, so JAX's trace cache never answers:
    each call runs xploss's Python code."""
    import array_api_compat

    xp = array_api_compat.array_namespace(arrays[0])

    def thunk():
        def fn(*a):
            return func(*a, **kwargs)

        def total(*a):
            return xp.sum(func(*a, **kwargs))

        f = fn if argnum is None else jax.grad(total, argnum)
        return str(jax.make_jaxpr(f)(*arrays))

    return thunk


def _autograd(backend, func, arrays, kwargs, argnum):
    import array_api_compat

    xp = array_api_compat.array_namespace(arrays[0])

    def total(*a):
        return xp.sum(func(*a, **kwargs))

    return lambda: backend.to_numpy(backend.grad(total, tuple(arrays), argnum))


def _same(got, want) -> bool:
    """Bitwise equality (so also the same NaN pattern), or equal text."""
    if isinstance(want, str):
        return got == want
    got, want = np.asarray(got), np.asarray(want)
    return got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()


def _show(a) -> str:
    if isinstance(a, str):
        return a[:300]
    a = np.asarray(a)
    nan = np.isnan(a).tolist() if a.dtype.kind == "f" else None
    return f"{a.dtype}{list(a.shape)} {np.array2string(a, precision=17)[:300]} NaN at {nan}"


def _concurrent(serial: dict, rounds: int = ROUNDS, threads: int = THREADS) -> dict:
    """Repeat every call of ``serial`` (label -> (thunk, serial result)) ``rounds``
    times in shuffled order from ``threads`` threads; list results that differ."""
    rng = random.Random(20241123)
    mismatches, done = [], 0
    for r in range(rounds):
        order = list(serial)
        rng.shuffle(order)
        barrier = threading.Barrier(threads)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            # Every worker thread exists (and waits) before the first call is queued.
            for f in [pool.submit(barrier.wait, 120) for _ in range(threads)]:
                f.result()
            futures = {pool.submit(serial[label][0]): label for label in order}
            for fut in concurrent.futures.as_completed(futures):
                label, done = futures[fut], done + 1
                try:
                    got = fut.result()
                except Exception as exc:
                    mismatches.append(f"round {r} {label}: raised {type(exc).__name__}: {exc}")
                    continue
                want = serial[label][1]
                if not _same(got, want):
                    mismatches.append(f"round {r} {label}:\n      serial   {_show(want)}"
                                      f"\n      threaded {_show(got)}")
    return {"calls": done, "distinct": len(serial), "threads": threads, "rounds": rounds,
            "mismatches": mismatches}


def _probe(nondefault: bool) -> dict:
    """Run in a fresh interpreter: import and call xploss between snapshots.

    ``nondefault``: first move settings away from their defaults (JAX x64 on,
    torch's default dtype float64, ...: :func:`_set_non_defaults`), then run
    every function traced on JAX in float64 and a few eagerly on JAX, NumPy and
    PyTorch, and report whether x64 is still on. Returns a JSON-able dict: the differences per
    phase, the calls made (and any that raised), the modules ``import xploss``
    loaded, the outcome of the concurrent calls.
    """
    import time
    import traceback

    mods = _warm_up(nondefault)
    jax = mods.get("jax")
    out: dict = {"phases": {}, "errors": [], "calls": {}, "seconds": {}, "threads": None}
    clock = time.perf_counter()

    def phase(name, before):
        nonlocal clock
        after = snapshot()
        out["phases"][name] = diff(before, after)
        out["seconds"][name] = time.perf_counter() - clock
        clock = time.perf_counter()
        return after

    modules_before = set(sys.modules)
    state = snapshot()

    import xploss

    state = phase("import xploss", state)
    packages_before = {m.split(".")[0] for m in modules_before}
    out["imported_by_xploss"] = sorted({m.split(".")[0] for m in sys.modules} - packages_before)
    # (torch's sympy imports mpmath in the warm-up: what counts is who imported it)
    out["mpmath_imported_by_xploss"] = "mpmath" in set(sys.modules) - modules_before

    # The harness: the registry's inputs on every backend (the catalog imports
    # mpmath, the conformance oracle), built before the baseline of the calls.
    from xploss.conformance import load_catalog

    from xploss import backends

    registry = load_catalog()
    registered = {e.func for e in registry.values()}
    public = {n: getattr(xploss, n) for n in xploss.__all__}
    assert registered <= set(public.values()), "a registered function is not public"
    out["functions"] = len(registry)
    out["public_not_registered"] = sorted(n for n, f in public.items() if f not in registered)

    if nondefault:
        plan = [("jax", ("float64",), 1), ("numpy", ("float64",), 1), ("torch", ("float64",), 1)]
    else:
        both = ("float64", "float32")
        plan = [("numpy", both, 2), ("array_api_strict", both, 2), ("torch", both, 2),
                ("dask", ("float64",), 1),
                ("jax", ("float32",), 1)]
    cells = []  # (label, backend, entry, case index, dtype, arrays, kwargs, float positions)
    for name, dtypes, n_cases in plan:
        if not HAVE[name]:
            continue
        backend = backends.get(name)
        target = backend.targets()[0]
        for dtype in dtypes:
            for entry in registry.values():
                for i, case in enumerate(entry.cases(dtype)[:n_cases]):
                    is_float = [isinstance(a, np.ndarray) and a.dtype.kind == "f"
                                for a in case.args]
                    arrays = [backend.asarray(a, target, dtype if f else None)
                              for a, f in zip(case.args, is_float, strict=True)]
                    kwargs = {k: (backend.asarray(v, target, dtype)
                                  if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
                              for k, v in case.kwargs.items()}
                    label = f"{entry.name}[{case.name}] {name} {dtype}"
                    cells.append((label, backend, entry, i, dtype, arrays, kwargs, is_float))
    state = phase("(harness: load the catalog, build the inputs)", state)

    serial = {}  # label -> (thunk, its serial result): what the threads repeat

    def attempt(kind, label, thunk, keep):
        out["calls"][kind] = out["calls"].get(kind, 0) + 1
        start = time.perf_counter()
        try:
            # Called bare: no np.errstate or warnings.catch_warnings around it, as
            # they restore their state on exit and would hide a leak from the call.
            # (Invalid-domain cases make NumPy warn on stderr, which is not read.)
            value = thunk()
        except Exception:
            out["errors"].append(f"{kind} {label}: {traceback.format_exc(limit=-3)}")
            return None
        finally:
            took = out["seconds"].get(kind, 0) + time.perf_counter() - start
            out["seconds"][kind] = took
        if keep:
            serial[f"{kind} | {label}"] = (thunk, value)
        return value

    f64_dtypes = set()
    for label, backend, entry, i, dtype, arrays, kwargs, _ in cells:
        if (backend.name in ("jax", "dask") or nondefault) and entry.name not in SUBSET:
            continue
        # Dask stays out of the threads: its graph building wraps meta computation in
        # warnings.catch_warnings(), which is not thread-safe (before Python 3.14),
        # so concurrent Dask calls may leave an ('ignore', RuntimeWarning) filter
        # behind, with or without xploss: 8 threads each building
        # `da.where(x > 0, da.exp(-x), da.log1p(x * x))` 300 times do it in about one
        # run in five (dask 2026.8, Python 3.11). NumPy, array-api-strict, PyTorch and
        # JAX never enter catch_warnings on these paths.
        keep = (i == 0 and not nondefault and backend.name != "dask"
                and (dtype == "float64" or backend.name == "jax"))
        value = attempt("eager", label, _eager(backend, entry.func, arrays, kwargs), keep)
        if value is not None and backend.name == "jax" and dtype == "float64":
            f64_dtypes.add(str(value.dtype))
    out["jax_float64_result_dtypes"] = sorted(f64_dtypes)
    state = phase("eager calls", state)

    for label, backend, entry, i, dtype, arrays, kwargs, is_float in cells:
        if i != 0 or backend.name not in ("jax", "torch"):
            continue
        argnum = next((a for a in entry.differentiable if a < len(arrays) and is_float[a]), None)
        keep = not nondefault and (dtype == "float64" or backend.name == "jax")
        if backend.name == "jax":
            if entry.name in SUBSET:
                attempt("jax.jit", label, _jitted(jax, entry.func, arrays, kwargs), keep)
            attempt("jax.make_jaxpr", label, _traced(jax, entry.func, arrays, kwargs), keep)
            if argnum is not None and not nondefault:
                attempt("jax.make_jaxpr(jax.grad)", label,
                        _traced(jax, entry.func, arrays, kwargs, argnum), keep=False)
        elif argnum is not None and not nondefault:
            attempt("torch autograd", label,
                    _autograd(backend, entry.func, arrays, kwargs, argnum), keep)
    state = phase("traced, compiled and differentiated calls", state)

    if not nondefault:
        out["threads"] = _concurrent(serial)
        kinds = [k.split(" | ")[0] + " on " + " ".join(k.split()[-2:]) for k in serial]
        out["threads"]["per_kind"] = {k: kinds.count(k) for k in sorted(set(kinds))}
        state = phase(f"concurrent calls from {THREADS} threads", state)
    out["x64_at_end"] = bool(jax.config.read("jax_enable_x64")) if jax is not None else None
    return out


def _start_probe(mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, mode], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish_probe(proc: subprocess.Popen) -> dict:
    try:
        stdout, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    lines = [ln for ln in stdout.splitlines() if ln.startswith(MARKER)]
    failed = (f"probe {proc.args[2:]} failed (rc={proc.returncode})\n"
              f"{stdout[-4000:]}\n{stderr[-4000:]}")
    assert proc.returncode == 0, failed
    assert lines, failed
    return json.loads(lines[-1][len(MARKER):])


def _report(result: dict) -> str:
    lines = []
    for phase, changes in result["phases"].items():
        took = result["seconds"].get(phase, 0)
        lines.append(f"{phase} ({took:.1f} s): {'unchanged' if not changes else 'CHANGED'}")
        lines += [f"    {c}" for c in changes]
    took = {k: round(result["seconds"][k], 1) for k in result["calls"]}
    lines.append(f"calls: {result['calls']}, seconds: {took}")
    lines.append(f"{result['functions']} registered functions; public names not registered: "
                 f"{result['public_not_registered']}")
    lines.append(f"top-level modules first imported by `import xploss`: "
                 f"{result['imported_by_xploss']}")
    lines += [f"raised: {e}" for e in result["errors"][:10]]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def probes():
    """Both fresh interpreters, run side by side (results by mode)."""
    modes = ["probe", "probe-nondefault"]
    procs = {mode: _start_probe(mode) for mode in modes}
    try:
        return {mode: _finish_probe(proc) for mode, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def probe_default(probes):
    return probes["probe"]


@pytest.fixture(scope="module")
def probe_nondefault(probes):
    return probes["probe-nondefault"]


def _assert_calls_clean(result):
    report = _report(result)
    print(report)
    changed = {p: c for p, c in result["phases"].items() if c}
    assert not changed, f"global state changed:\n{report}"
    assert not result["errors"], f"calls raised, so not every function ran:\n{report}"


def test_import_changes_no_global_state(probe_default):
    report = _report(probe_default)
    assert probe_default["phases"]["import xploss"] == [], report
    assert not probe_default["mpmath_imported_by_xploss"], "import xploss imported mpmath"


def test_calls_change_no_global_state(probe_default):
    _assert_calls_clean(probe_default)
    calls, n = probe_default["calls"], probe_default["functions"]
    assert n > 0
    present = [b for b in ("numpy", "array_api_strict", "torch") if HAVE[b]]
    assert calls["eager"] >= n * 2 * len(present)  # every function, float32 and float64
    if HAVE["jax"]:
        assert calls["jax.make_jaxpr"] == n
        assert calls["jax.jit"] == len(SUBSET)
        assert calls["jax.make_jaxpr(jax.grad)"] > 0
        assert probe_default["x64_at_end"] is False
    if HAVE["torch"]:
        assert calls["torch autograd"] > 0


def test_concurrent_calls_match_serial(probe_default):
    threads = probe_default["threads"]
    assert not threads["mismatches"], (
        f"{len(threads['mismatches'])} of {threads['calls']} concurrent calls differ from "
        "the serial ones:\n" + "\n".join(threads["mismatches"][:20]))
    assert threads["calls"] == threads["rounds"] * threads["distinct"]
    # Every function took part on every backend (JAX: traced; see SUBSET).
    n, per_kind = probe_default["functions"], threads["per_kind"]
    full = [f"eager on {b} float64" for b in ("numpy", "array_api_strict", "torch") if HAVE[b]]
    full += ["jax.make_jaxpr on jax float32"] if HAVE["jax"] else []
    assert all(per_kind.get(k) == n for k in full), per_kind
    if HAVE["torch"]:
        assert per_kind["torch autograd on torch float64"] > 0, per_kind
    print(f"{threads['calls']} concurrent calls on {threads['threads']} threads, "
          f"{threads['distinct']} distinct ({per_kind}): all bitwise equal to serial")


def test_jax_x64_on_and_other_non_default_settings_are_preserved(probe_nondefault):
    """JAX x64 on (and torch float64 default, decimal precision 50, ...) before
    ``import xploss`` stays so through the import and the calls."""
    result = probe_nondefault
    _assert_calls_clean(result)
    assert result["phases"]["import xploss"] == []
    assert result["calls"]["eager"] > 0
    if HAVE["jax"]:
        assert result["x64_at_end"] is True
        assert result["jax_float64_result_dtypes"] == ["float64"]
        assert result["calls"]["jax.make_jaxpr"] == result["functions"]


def test_import_xploss_loads_no_array_library_nor_mpmath():
    code = textwrap.dedent("""
        import sys
        import xploss
        heavy = ("mpmath", "torch", "jax", "dask", "array_api_strict", "cupy", "scipy")
        print(sorted(m for m in heavy if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"import xploss alone imported {proc.stdout.strip()}"


# --------------------------------------------------------------------------- the recorder is honest

@contextlib.contextmanager
def _swapped(get, set_, change):
    """Set a global to ``change(old)`` for the block, then back to ``old``."""
    old = get()
    set_(change(old))
    try:
        yield
    finally:
        set_(old)


@contextlib.contextmanager
def _changed(what):
    """Change one global setting ``what`` for the duration of the block."""
    if what == "warnings":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    elif what == "recursionlimit":
        with _swapped(sys.getrecursionlimit, sys.setrecursionlimit, lambda old: old + 7):
            yield
    elif what == "decimal":
        with decimal.localcontext() as ctx:
            ctx.prec = 60  # what xploss sets inside its own local context
            yield
    elif what == "decimal-flags":
        ctx = decimal.getcontext()
        flags = dict(ctx.flags)
        decimal.Decimal(2).ln()  # sets Inexact and Rounded on the current context
        try:
            yield
        finally:
            for k, v in flags.items():
                ctx.flags[k] = v
    elif what == "environ":
        os.environ["XPLOSS_SIDE_EFFECT_PROBE"] = "1"
        try:
            yield
        finally:
            del os.environ["XPLOSS_SIDE_EFFECT_PROBE"]
    elif what == "numpy-err":
        with np.errstate(over="raise"):
            yield
    elif what == "numpy-print":
        with np.printoptions(precision=3):
            yield
    elif what == "numpy-random":
        state = np.random.get_state()  # noqa: NPY002  (the legacy global generator)
        np.random.random()  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(state)  # noqa: NPY002
    elif what == "torch-dtype":
        import torch

        with _swapped(torch.get_default_dtype, torch.set_default_dtype,
                      lambda old: torch.float64 if old == torch.float32 else torch.float32):
            yield
    elif what == "torch-grad":
        import torch

        with torch.no_grad():
            yield
    elif what == "torch-deterministic":
        import torch

        with _swapped(torch.are_deterministic_algorithms_enabled,
                      torch.use_deterministic_algorithms, lambda old: not old):
            yield
    elif what == "torch-threads":
        import torch

        with _swapped(torch.get_num_threads, torch.set_num_threads, lambda old: old + 1):
            yield
    elif what == "flush-denormal":
        import torch

        if not torch.set_flush_denormal(True):
            pytest.skip("this CPU cannot flush subnormals")
        try:
            yield
        finally:
            torch.set_flush_denormal(False)
    elif what == "jax-x64":
        import jax

        with _swapped(lambda: jax.config.read("jax_enable_x64"),
                      lambda v: jax.config.update("jax_enable_x64", v), lambda old: not old):
            yield
    elif what == "jax-precision":
        import jax

        with jax.default_matmul_precision("highest"):
            yield
    elif what == "mpmath":
        import mpmath

        with mpmath.workdps(50):
            yield
    else:
        raise AssertionError(what)


CHANGES = {
    "warnings": "python.warnings.filters",
    "recursionlimit": "python.recursionlimit",
    "decimal": "python.decimal.context",
    "decimal-flags": "python.decimal.context",
    "environ": "python.os.environ[XPLOSS_SIDE_EFFECT_PROBE]",
    "numpy-err": "numpy.geterr",
    "numpy-print": "numpy.printoptions",
    "numpy-random": "numpy.random.state",
    "torch-dtype": "torch.default_dtype",
    "torch-grad": "torch.grad_enabled",
    "torch-deterministic": "torch.deterministic",
    "torch-threads": "torch.num_threads",
    "flush-denormal": "cpu.subnormals.float64",
    "jax-x64": "jax.enable_x64",
    "jax-precision": "jax.config.jax_default_matmul_precision",
    "mpmath": "mpmath.mp",
}
NEEDS = {"torch": "torch", "flush": "torch", "jax": "jax", "mpmath": "mpmath"}


@pytest.mark.parametrize("what", list(CHANGES))
def test_snapshot_detects_each_kind_of_change(what):
    need = NEEDS.get(what.split("-")[0])
    if need and not HAVE[need]:
        pytest.skip(f"{need} is not installed")
    if need:
        __import__(need)
    with _changed(what):  # once first: the framework's own lazy imports (torch's of
        pass  # sympy adds a warnings filter) happen here, not between the snapshots
    before = snapshot()
    with _changed(what):
        during = snapshot()
    after = snapshot()
    key = CHANGES[what]
    if key in during and key not in before:  # a new environment variable
        assert key not in after
    else:
        changes = diff(before, during)
        assert any(c.startswith(key + ":") for c in changes), changes
    assert diff(before, after) == [], "the change was not undone"


def test_fp_environment_probe_sees_rounding_mode():
    """The rounding probe tells round-to-nearest from round-down (glibc's fesetround)."""
    import ctypes
    import platform

    if platform.machine() not in ("x86_64", "AMD64") or not sys.platform.startswith("linux"):
        pytest.skip("fesetround constants are those of glibc on x86-64")
    libm = ctypes.CDLL("libm.so.6")
    before = _fp_environment()["cpu.rounding"]
    assert libm.fesetround(0x400) == 0  # FE_DOWNWARD
    try:
        during = _fp_environment()["cpu.rounding"]
    finally:
        assert libm.fesetround(0) == 0  # FE_TONEAREST
    assert during != before
    assert _fp_environment()["cpu.rounding"] == before


def test_concurrent_check_detects_differences():
    counter = iter(range(10**6))
    serial = {
        "thread id": (lambda: np.array([threading.get_ident()], dtype=np.int64),
                      np.array([threading.get_ident()], dtype=np.int64)),
        "counter": (lambda: np.array([float(next(counter))]), np.array([-1.0])),
        "NaN sign": (lambda: np.array([-np.nan]), np.array([np.nan])),
        "text": (lambda: "b", "a"),
        "raises": (lambda: 1 / 0, np.array([0.0])),
        "same": (lambda: np.array([1.0, np.nan]), np.array([1.0, np.nan])),
    }
    result = _concurrent(serial, rounds=2, threads=4)
    assert result["calls"] == 12
    flagged = {m.split(":")[0].split(" ", 2)[2] for m in result["mismatches"]}
    assert flagged == set(serial) - {"same"}, result["mismatches"]


if __name__ == "__main__":  # the fresh interpreter of the probes
    mode = sys.argv[1] if len(sys.argv) > 1 else "probe"
    sys.path.insert(0, str(ROOT))  # the xploss that pytest imports (the checkout's)
    result = _probe(nondefault=(mode == "probe-nondefault"))
    print(MARKER + json.dumps(result))
