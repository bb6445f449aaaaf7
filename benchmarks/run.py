"""Command line: time xploss against each library's native peer.

    python -m benchmarks [--quick] [--backend torch,jax] [--function mse_loss]
                         [--size small] [--threads 1] [--out PATH]

Backends and devices come from the adapters in ``xploss.backends``; what is
not installed (or has no device here) is skipped and listed in the report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from xploss import backends

from . import problems, report, timing
from .runners import RUNNERS

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
TOLERANCE = {"float32": 1e-4, "float64": 1e-9}


def _csv(values):
    return [v for item in values or () for v in item.split(",") if v]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a smoke test: small sizes, 3 repetitions of >= 2 ms, no timing claims")
    p.add_argument("--backend", action="append", metavar="NAME",
                   help=f"backends to run (repeat or comma-separate; default: all of "
                        f"{', '.join(RUNNERS)} that are available)")
    p.add_argument("--function", action="append", metavar="NAME",
                   help="functions to run (a prefix matches: 'cross_entropy' runs both "
                        f"variants); known: {', '.join(problems.PROBLEMS)}")
    p.add_argument("--size", action="append", metavar="NAME",
                   help=f"sizes to run; full: {', '.join(problems.SIZES)}; "
                        f"quick: {', '.join(problems.quick_sizes())}")
    p.add_argument("--mode", action="append", metavar="NAME",
                   help="modes to run: eager, compile (torch), jit (jax)")
    p.add_argument("--pass", dest="passes", action="append", metavar="NAME",
                   help="fwd and/or fwd+bwd (autograd backends only)")
    p.add_argument("--device", action="append", metavar="LABEL",
                   help="device labels to run, e.g. cpu, cuda:0, gpu:0")
    p.add_argument("--dtype", choices=sorted(TOLERANCE), default="float32")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads: torch.set_num_threads(N); Dask's scheduler "
                        "(synchronous for 1); XLA CPU single-threaded for 1 (only if JAX "
                        "is not yet imported). Default: each library's own")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved repetitions per side (default 7; quick 3)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds each repetition lasts at least (default 0.05; quick 0.002)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="Markdown report path (default benchmarks/results/<machine>.md; "
                        "'-' writes none)")
    return p.parse_args(argv)


def _select(names, known, what):
    if not names:
        return list(known)
    chosen = [k for k in known if any(k == n or k.startswith(n) for n in names)]
    unknown = [n for n in names if not any(k == n or k.startswith(n) for k in known)]
    if unknown:
        msg = f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}"
        raise SystemExit(msg)
    return chosen


def _set_threads(threads, notes):
    """Settings that must precede a framework's first use."""
    if threads != 1:
        return
    if "jax" in sys.modules:
        notes.append("JAX was imported before --threads took effect: XLA uses its own "
                     "thread count.")
    else:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()


def _dask_scheduler(threads):
    if threads is None:
        return contextlib.nullcontext()
    import dask

    if threads == 1:
        return dask.config.set(scheduler="synchronous")
    return dask.config.set(scheduler="threads", num_workers=threads)


def _agree(runner, a, b, tol):
    """'ok', or the worst relative disagreement between two results."""
    worst = 0.0
    for x, y in zip(runner.to_numpy(a), runner.to_numpy(b), strict=True):
        scale = max(float(np.max(np.abs(y))), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.max(np.abs(x - y))) / scale)
    return "ok" if worst <= tol else f"DIFF {worst:.1e}"


def _measure(runner, mode, pass_, problem, data, args, repeats, min_time):
    fx, fn = runner.build(mode, pass_, problem, data)
    # Warm-up (compilation happens here) doubles as the agreement check.
    check = _agree(runner, fx(), fn(), TOLERANCE[args.dtype])
    fx(), fn()
    mem = (runner.peak_memory(mode, pass_, fx), runner.peak_memory(mode, pass_, fn))
    tx, tn = timing.interleaved(fx, fn, repeats=repeats, min_time=min_time)
    return tx, tn, mem, check


def timed_targets(names):
    """The conformance targets of ``names`` that compute values under the
    library's own settings: not torch's ``meta`` device (no data), nor a target
    entered through a setting (JAX with x64 off: the same float32 programs)."""
    return [t for t in backends.targets(names) if not t.abstract and t.setting is None]


def main(argv=None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    _set_threads(args.threads, notes)
    sizes = problems.quick_sizes() if args.quick else problems.SIZES
    repeats = args.repeats or (3 if args.quick else 7)
    min_time = args.min_time if args.min_time is not None else (0.002 if args.quick else 0.05)

    names = _select(_csv(args.backend), list(RUNNERS), "backend")
    funcs = _select(_csv(args.function), list(problems.PROBLEMS), "function")
    size_names = _select(_csv(args.size), list(sizes), "size")
    for name, reason in backends.available().items():
        if name in names and reason is not None:
            notes.append(f"{name}: skipped, {reason}.")
    if args.dtype == "float64" and "jax" in names and backends.available()["jax"] is None:
        backends.get("jax").prepare()  # float64 needs x64 mode
    if "torch" in names and backends.available()["torch"] is None:
        backends.get("torch").prepare()
    targets = [t for t in timed_targets(names)
               if not args.device or t.label in _csv(args.device)]

    rows: list[report.Row] = []
    widths = [24, 8, 34, 10, 8, 9, 9, 6, 11, 11, 11, 10]
    print(report.terminal_line(report.COLUMNS, widths), flush=True)
    rng = np.random.default_rng(args.seed)
    with _dask_scheduler(args.threads):
        for target in targets:
            runner = RUNNERS[target.backend.name](target, args.dtype, args.threads)
            for mode in _select(_csv(args.mode), runner.modes, "mode") if args.mode \
                    else runner.modes:
                reason = runner.unavailable(mode)
                note = f"{target.id} {mode}: peer {runner.peer(mode)}; memory: "
                notes.append(note + (f"skipped, {reason}" if reason else runner.memory_method))
                if reason:
                    continue
                passes = [p for p in runner.passes if not args.passes or p in _csv(args.passes)]
                for fname in funcs:
                    problem = problems.PROBLEMS[fname]
                    for size in size_names:
                        shape = sizes[size]
                        if not problem.applies_to(shape):
                            continue
                        data = problem.make(rng, shape, args.dtype)
                        for pass_ in passes:
                            tx, tn, mem, check = _measure(runner, mode, pass_, problem, data,
                                                          args, repeats, min_time)
                            row = report.Row(target.id, mode, fname,
                                             "x".join(map(str, shape)), pass_,
                                             tx.median, tn.median, tx.min, tn.min, *mem, check)
                            rows.append(row)
                            print(report.terminal_line(row.cells(), widths), flush=True)

    settings = {
        "dtype": args.dtype,
        "threads": "library defaults" if args.threads is None else str(args.threads),
        "repeats": f"{repeats} per side, interleaved, each >= {min_time:g} s",
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    if args.quick:
        notes.insert(0, "--quick: a smoke test of the harness; these numbers are not "
                        "measurements.")
    text = report.markdown(rows, report.machine(settings), notes)
    out = args.out
    if out is None:
        out = RESULTS / (report.machine_slug() + ("-quick" if args.quick else "") + ".md")
    if str(out) != "-":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"\nwrote {out}")
    for n in notes:
        print(n)
    return 0 if rows and all(r.check == "ok" for r in rows) else 1
