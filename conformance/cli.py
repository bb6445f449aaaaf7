"""``xploss-conformance``: the conformance matrix on the backends installed here."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from xploss import backends

from . import load_catalog
from .report import html_report, peer_curves
from .suite import matrix_columns, prepare, run

_GREEN, _RED, _RESET = "\033[32m", "\033[31m", "\033[0m"


def use_colour(stream) -> bool:
    """Colour for a terminal that supports it: ``NO_COLOR`` (https://no-color.org)
    turns it off, ``FORCE_COLOR`` on; ``TERM=dumb`` and pipes get none."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def _paint(text, ok, colour):
    return f"{_GREEN if ok else _RED}{text}{_RESET}" if colour else text


def _parser():
    p = argparse.ArgumentParser(
        prog="xploss-conformance",
        description="Check every xploss function on every installed backend, device and "
                    "dtype against an mpmath oracle (accuracy in ULP, cross-backend "
                    "agreement, finite gradients, compiled = eager, output metadata).")
    p.add_argument("--backend", action="append", help="limit to this backend (repeatable)")
    p.add_argument("--function", action="append", help="limit to this function (repeatable)")
    p.add_argument("--device", action="append",
                   help="limit to targets whose device label starts with this, e.g. cpu, "
                        "cuda, cuda:1, device1 (repeatable)")
    p.add_argument("--dtype", action="append", help="limit to this dtype (repeatable)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="float64/float32 only, and one compiled case per cell")
    mode.add_argument("--full", action="store_true",
                      help="every dtype and every case compiled (the default)")
    p.add_argument("--gradients", action="store_true",
                   help="also check gradient accuracy (torch, JAX): the derivative along a "
                        "tangent, reverse and forward mode, against the mpmath reference")
    p.add_argument("--json", metavar="PATH", help="write the full results as JSON")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the matrix as a Markdown table (function x backend)")
    p.add_argument("--report", metavar="PATH",
                   help="write an HTML report: the matrix, and per function the error "
                        "against input magnitude on each backend and each installed peer "
                        "library (torch.nn.functional, jax.nn/optax, keras)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every failure in full")
    return p


def _cell_text(cell):
    if cell.passed:
        return f"ok {cell.worst_ulp:.2g}"
    return f"FAIL {cell.worst_ulp:.2g}"


def print_matrix(report, out=None, colour=False):
    out = out or sys.stdout
    columns = []
    for c in report.cells:
        key = (c.target, c.dtype)
        if key not in columns:
            columns.append(key)
    rows = []
    for c in report.cells:
        if c.entry not in rows:
            rows.append(c.entry)
    cells = {(c.entry, c.target, c.dtype): c for c in report.cells}
    headers = [f"{t} {d}" for t, d in columns]
    width0 = max([len("function"), *map(len, rows)])
    widths = [max(len(h), 10) for h in headers]
    print("worst error in ULP of the result dtype (ok = within bound)", file=out)
    def line(first, texts, marks):
        # Padded before painting: escape codes take no columns on the screen.
        padded = (s.rjust(w) if ok is None else _paint(s.rjust(w), ok, colour)
                  for s, w, ok in zip(texts, widths, marks, strict=True))
        return "  ".join([first.ljust(width0), *padded])

    print(line("function", headers, [None] * len(headers)), file=out)
    for r in rows:
        found = [cells.get((r, t, d)) for t, d in columns]
        texts = [_cell_text(c) if c else "-" for c in found]
        print(line(r, texts, [c.passed if c else None for c in found]), file=out)


def markdown_matrix(report):
    """Function × backend:device table; each cell the worst ULP over its dtypes."""
    targets, rows, worst, ok = [], [], {}, {}
    for c in report.cells:
        if c.target not in targets:
            targets.append(c.target)
        if c.entry not in rows:
            rows.append(c.entry)
        key = (c.entry, c.target)
        worst[key] = max(worst.get(key, 0.0), c.worst_ulp)
        ok[key] = ok.get(key, True) and c.passed
    dtypes = sorted({c.dtype for c in report.cells})
    lines = [f"Worst error in ULP over {', '.join(dtypes)} (✓ = every check passed)", "",
             "| function | " + " | ".join(targets) + " |",
             "|---|" + "---:|" * len(targets)]
    for r in rows:
        cells = [(f"{'✓' if ok[(r, t)] else '✗'} {worst[(r, t)]:.2g}" if (r, t) in ok else "-")
                 for t in targets]
        lines.append(f"| `{r}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = _parser().parse_args(argv)
    registry = load_catalog()
    names = args.function or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        print(f"xploss-conformance: unknown function(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    skipped = prepare(args.backend)
    # Optional (slow) targets run only when a --device names them.
    targets = backends.targets(args.backend, optional=bool(args.device))
    if args.device:
        targets = [t for t in targets if any(t.label.startswith(d) for d in args.device)]
        for d in args.device:
            if not any(t.label.startswith(d) for t in targets):
                skipped[f"device {d}"] = "no installed backend has it"
                print(f"xploss-conformance: no installed backend has device {d}",
                      file=sys.stderr)
    if not targets:
        print("xploss-conformance: no backend available", file=sys.stderr)
        return 2
    start = time.perf_counter()
    colour = use_colour(sys.stdout)
    print(f"backends: {', '.join(t.id for t in targets)}", flush=True)
    total = len(names) * len(matrix_columns(targets, dtypes=args.dtype, quick=args.quick))
    done = 0

    def progress(cell):
        # A mark per cell, and the count and time at the end of each line of marks.
        nonlocal done
        done += 1
        print(_paint("." if cell.passed else "F", cell.passed, colour), end="", flush=True)
        if done % 60 == 0 or done == total:
            print(f" {done}/{total} cells, {time.perf_counter() - start:.0f} s", flush=True)

    report = run([registry[n] for n in names], targets, dtypes=args.dtype, quick=args.quick,
                 compile_cases=1 if args.quick else None, progress=progress,
                 grad_oracle=args.gradients)
    report.skipped = skipped
    print_matrix(report, colour=colour)
    failures = [f for c in report.cells for f in c.failures]
    if failures or report.agreement_failures:
        print(f"\n{len(failures)} failed case(s), "
              f"{len(report.agreement_failures)} cross-backend disagreement(s):")
        shown = failures if args.verbose else failures[:20]
        for f in shown + report.agreement_failures[: None if args.verbose else 20]:
            print(f"  {f}")
    grads = {c.grad for c in report.cells if c.grad != "n/a"}
    checked = sum(c.grad_checked for c in report.cells)
    if args.gradients and checked:
        unresolved = sum(c.grad_unresolved for c in report.cells)
        worst = max(c.grad_worst_ulp for c in report.cells)
        print(f"gradient oracle: {checked} directional derivatives checked, worst "
              f"{worst:.3g} ULP (normwise); {unresolved} directions not resolved (kinks, "
              f"steps beyond the linear range, non-finite neighbours)")
    print(f"\n{len(report.cells)} cells ({len(names)} functions x {len(targets)} targets x "
          f"dtypes), gradients: {'/'.join(sorted(grads)) or 'n/a'}, "
          f"{time.perf_counter() - start:.0f} s")
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown_matrix(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report.as_dict(), fh, indent=1)
    if args.report:
        entries = [registry[n] for n in names]
        with open(args.report, "w", encoding="utf-8") as fh:
            fh.write(html_report(report, entries, peer_curves(entries)))
        print(f"report: {args.report}")
    print(_paint("PASSED" if report.passed else "FAILED", report.passed, colour))
    return 0 if report.passed else 1
