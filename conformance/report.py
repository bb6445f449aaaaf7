"""The HTML report of a conformance run: the matrix, and per function a plot of
error (ULP) against input magnitude for every backend and, where installed,
for the peer libraries' own version of the function.

The page is one self-contained file (inline SVG, no script, no external
resource): it opens in any browser and can be kept as a CI artifact.
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from xploss.backends import peers

from .runner import REFERENCES, _held_kwargs, _is_float_array, input_magnitude, ulp_errors

__all__ = ["PeerCurve", "html_report", "peer_curves"]

# Plot geometry (pixels) and axis ranges: log10 of the input magnitude per
# dtype (from the smallest subnormal to finfo.max), log10 of the error in ULP.
_W, _H = 430, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 10, 22, 34
_XRANGE = {"float64": (-324.0, 309.0), "float32": (-46.0, 39.0)}
_XSTEP = {"float64": 100, "float32": 10}
_YMIN, _YMAX = -2.0, 6.0  # 0.01 .. 1e6 ULP; infinite errors sit in a band above
_PALETTE = ("#1b7837", "#2166ac", "#8c510a", "#762a83", "#01665e", "#b2182b", "#4d4d4d")
_PEER_PALETTE = ("#e8710a", "#d81b60", "#6a3d9a")  # drawn hollow


@dataclass
class PeerCurve:
    """One peer's errors on one function in one dtype."""

    function: str
    peer: str
    dtype: str
    points: list = field(default_factory=list)  # (magnitudes, errors) per case
    cases: int = 0  # cases the peer computed
    raised: list = field(default_factory=list)  # (case, exception text)

    @property
    def worst_ulp(self) -> float:
        return max((float(np.max(e)) for _, e in self.points if e.size), default=0.0)


def peer_curves(entries, dtypes=("float64", "float32")):
    """The error of each installed peer's version of each entry, case by case,
    against the same mpmath values as the backends (NumPy inputs rounded to
    ``dtype``, as every backend holds them)."""
    curves = []
    for entry in entries:
        for peer in peers.peers_of(entry.name):
            for dtype in dtypes:
                curves.append(_peer_curve(entry, peer, dtype))
    return curves


def _peer_curve(entry, peer, dtype):
    curve = PeerCurve(entry.name, peer.label, dtype)
    for case in entry.cases(dtype):
        args = [a.astype(dtype) if _is_float_array(a) else a for a in case.args]
        kwargs = {k: (v.astype(dtype) if _is_float_array(v) else v)
                  for k, v in case.kwargs.items()}
        held = [a.astype(np.float64) if _is_float_array(a) else a for a in args]
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a peer's warnings on special values
                result = np.asarray(peer.call(entry.name, args, kwargs), dtype=np.float64)
        except peers.NotComparable:
            continue
        except Exception as exc:  # the peer refuses the input: shown, not plotted
            curve.raised.append((case.name, f"{type(exc).__name__}: {exc}".splitlines()[0]))
            continue
        hi, lo, scale = REFERENCES.get(entry, case, dtype, held, _held_kwargs(None, kwargs), 0.0)
        if result.shape != hi.shape:
            continue
        curve.cases += 1
        err = ulp_errors(result, hi, lo, scale, entry.result_dtype(dtype))
        curve.points.append((input_magnitude(held, hi.shape), err))
    return curve


# ------------------------------------------------------------------ plotting


def _fmt_ulp(v):
    if math.isinf(v):
        return "∞"
    return f"{v:.2g}"


def _px(mag, err, dtype):
    lo, hi = _XRANGE[dtype]
    with np.errstate(divide="ignore"):
        lx = np.where(mag > 0, np.log10(np.where(mag > 0, mag, 1.0)), lo)
        ly = np.log10(np.where(err > 0, err, 10.0**_YMIN))
    lx = np.clip(lx, lo, hi)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    x = _LEFT + (lx - lo) / (hi - lo) * plot_w
    y = _TOP + (_YMAX - np.clip(ly, _YMIN, _YMAX)) / (_YMAX - _YMIN) * plot_h
    return x, np.where(np.isinf(err), _TOP - 12, y)


def _svg(series, dtype, bound, title):
    """An SVG scatter plot; ``series`` is a list of (label, colour, hollow, points)."""
    lo, hi = _XRANGE[dtype]
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
           f'viewBox="0 0 {_W} {_H}" role="img"><title>{html.escape(title)}</title>',
           f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
           'stroke="#999"/>',
           f'<text x="{_LEFT - 4}" y="{_TOP - 8}" class="t" text-anchor="end">∞</text>',
           f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP - 12}" y2="{_TOP - 12}" '
           'stroke="#eee"/>']
    for k in range(int(_YMIN), int(_YMAX) + 1, 2):
        y = _TOP + (_YMAX - k) / (_YMAX - _YMIN) * plot_h
        label = f"{10.0**k:g}" if k < 4 else f"1e{k}"
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#e4e4e4"/>')
        out.append(f'<text x="{_LEFT - 4}" y="{y + 3:.1f}" class="t" text-anchor="end">'
                   f'{label}</text>')
    step = _XSTEP[dtype]
    for k in range(math.ceil(lo / step) * step, int(hi) + 1, step):
        x = _LEFT + (k - lo) / (hi - lo) * plot_w
        if x < _LEFT + 24:  # the left edge is labelled 0
            continue
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_H - _BOTTOM}" '
                   'stroke="#e4e4e4"/>')
        out.append(f'<text x="{x:.1f}" y="{_H - _BOTTOM + 12}" class="t" '
                   f'text-anchor="middle">1e{k}</text>')
    out.append(f'<text x="{_LEFT}" y="{_H - _BOTTOM + 12}" class="t" text-anchor="middle">0</text>')
    out.append(f'<text x="{_LEFT + plot_w / 2:.0f}" y="{_H - 4}" class="t" '
               f'text-anchor="middle">largest |input| ({dtype})</text>')
    yb = _TOP + (_YMAX - math.log10(bound)) / (_YMAX - _YMIN) * plot_h
    out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{yb:.1f}" y2="{yb:.1f}" '
               f'stroke="#d33" stroke-dasharray="4 3"><title>bound {bound:g} ULP</title></line>')
    for label, colour, hollow, points in series:
        seen = set()
        for mag, err in points:
            xs, ys = _px(mag.ravel(), err.ravel(), dtype)
            seen.update(zip(np.round(xs).astype(int).tolist(), np.round(ys).astype(int).tolist(),
                            strict=True))
        paint = (f'fill="none" stroke="{colour}"' if hollow
                 else f'fill="{colour}" fill-opacity="0.6"')
        out.append(f'<g {paint} data-series="{html.escape(label)}">'
                   + "".join(f'<circle cx="{x}" cy="{y}" r="{3 if hollow else 2.2}"/>'
                             for x, y in sorted(seen))
                   + "</g>")
    out.append("</svg>")
    return "".join(out)


# -------------------------------------------------------------------- page

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f0f0f0} td.f{text-align:left;font-family:monospace}
td.ok{background:#e6f4e6} td.fail{background:#f8d7d7;font-weight:bold}
section{margin:1.2em 0;border-top:1px solid #ddd} .plots{display:flex;flex-wrap:wrap;gap:8px}
.t{font-size:10px;fill:#444} .legend span{margin-right:1em;font-size:13px;white-space:nowrap}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:3px}
pre{font-size:12px;white-space:pre-wrap}
"""


def html_report(report, entries, curves=(), title="xploss conformance report"):
    """The page, as a string: ``report`` from :func:`run`, the ``entries`` it ran
    (for their bounds), ``curves`` from :func:`peer_curves`."""
    by_name = {e.name: e for e in entries}
    columns = list(dict.fromkeys((c.target, c.dtype) for c in report.cells))
    rows = list(dict.fromkeys(c.entry for c in report.cells))
    cells = {(c.entry, c.target, c.dtype): c for c in report.cells}
    status = "PASSED" if report.passed else "FAILED"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}: {status}</h1>",
             f"<p>{len(report.cells)} cells: {len(rows)} functions on "
             f"{len({t for t, _ in columns})} targets. Each cell: the worst error in ULP of the "
             "result dtype against the mpmath oracle (green: every check passed).</p>"]
    for name, reason in report.skipped.items():
        parts.append(f"<p>Skipped {html.escape(name)}: {html.escape(reason)}</p>")
    parts.append("<table><tr><th>function</th>"
                 + "".join(f"<th>{html.escape(t)}<br>{d}</th>" for t, d in columns) + "</tr>")
    for r in rows:
        tds = []
        for t, d in columns:
            c = cells.get((r, t, d))
            if c is None:
                tds.append("<td>-</td>")
            else:
                cls = "ok" if c.passed else "fail"
                tds.append(f"<td class='{cls}' title='worst case: {html.escape(c.worst_case)}'>"
                           f"{_fmt_ulp(c.worst_ulp)}</td>")
        parts.append(f"<tr><td class='f'><a href='#{r}'>{html.escape(r)}</a></td>"
                     + "".join(tds) + "</tr>")
    parts.append("</table>")
    if report.agreement_failures:
        parts.append("<h2>Cross-backend disagreements</h2><pre>"
                     + html.escape("\n".join(report.agreement_failures)) + "</pre>")
    for r in rows:
        parts.append(_section(r, by_name.get(r), [c for c in report.cells if c.entry == r],
                              [p for p in curves if p.function == r]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _section(name, entry, cells, curves):
    targets = list(dict.fromkeys(c.target for c in cells))
    colour = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(targets)}
    peer_names = list(dict.fromkeys(p.peer for p in curves))
    peer_colour = {p: _PEER_PALETTE[i % len(_PEER_PALETTE)] for i, p in enumerate(peer_names)}
    bound = entry.ulps if entry is not None else 4.0
    out = [f"<section id='{html.escape(name)}'><h2>{html.escape(name)}</h2>"]
    legend = [f"<span><i class='dot' style='background:{colour[t]}'></i>{html.escape(t)}</span>"
              for t in targets]
    legend += [f"<span><i class='dot' style='border:2px solid {peer_colour[p]}'></i>"
               f"{html.escape(p)}</span>" for p in peer_names]
    legend.append("<span style='color:#d33'>- - bound</span>")
    out.append("<div class='legend'>" + "".join(legend) + "</div><div class='plots'>")
    for dtype in ("float64", "float32"):
        series = [(c.target, colour[c.target], False, list(c.errors.values()))
                  for c in cells if c.dtype == dtype]
        series += [(p.peer, peer_colour[p.peer], True, p.points)
                   for p in curves if p.dtype == dtype]
        if series:
            out.append(_svg(series, dtype, bound, f"{name} {dtype}: error against input "
                                                  "magnitude"))
    out.append("</div>")
    lines = [f"{p.peer} {p.dtype}: worst {_fmt_ulp(p.worst_ulp)} ULP over {p.cases} case(s)"
             + (f"; raised on {len(p.raised)} case(s), e.g. [{p.raised[0][0]}] {p.raised[0][1]}"
                if p.raised else "") for p in curves]
    failures = [f for c in cells for f in c.failures]
    if lines:
        out.append("<p>Peers: " + "<br>".join(html.escape(s) for s in lines) + "</p>")
    if failures:
        out.append("<details open><summary>failures</summary><pre>"
                   + html.escape("\n".join(failures)) + "</pre></details>")
    out.append("</section>")
    return "\n".join(out)
