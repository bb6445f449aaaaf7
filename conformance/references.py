"""mpmath references: the exact value of every registered function.

Each reference receives NumPy float64 arrays holding exactly the values the
backend under test holds (float32, float16 and bfloat16 values are exact in
float64) and computes with mpmath at ``DIGITS`` significant digits. The result
is an object array of ``mpmath.mpf``. Conventions that the exact mathematics
leaves open (a probability of exactly 0 in ``binary_cross_entropy``, a fully
masked row) are the documented xploss conventions, written here a second time,
independently of the implementation.
"""

from __future__ import annotations

import mpmath
import numpy as np

DIGITS = 60

mp = mpmath.mp
INF = mpmath.inf
NAN = mpmath.nan


def mpf(v):
    return mpmath.mpf(float(v))


def isnan(v):
    return mpmath.isnan(v)


def _agree(cur, prev):
    if isinstance(cur, list):
        # Rows: an entry that is 0 at both precisions (exp(-inf), log 1) agrees.
        return all((c == 0 and p == 0) or _agree(c, p) for c, p in zip(cur, prev, strict=True))
    if not mpmath.isfinite(cur) or not mpmath.isfinite(prev):
        return cur == prev or (mpmath.isnan(cur) and mpmath.isnan(prev))
    if cur == 0:
        # A zero may be total cancellation: only the last precision may confirm it.
        return False
    return abs(cur - prev) <= abs(cur) * mpmath.mpf(10) ** (-DIGITS // 2)


def _is_zero(v):
    return all(_is_zero(x) for x in v) if isinstance(v, list) else v == 0


def settled(fn, *args):
    """``fn(*args)`` evaluated at DIGITS and at doubled precisions until two
    evaluations agree to DIGITS/2 digits: cancellation inside a formula (such as
    coth(x) - 1/x at x = 1e-300) is detected and outrun, never trusted. ``fn``
    returns an mpf or a list of them."""
    digits = DIGITS
    with mpmath.workdps(digits):
        prev = fn(*args)
    while digits < 4000:
        digits *= 2
        with mpmath.workdps(digits):
            cur = fn(*args)
        if _agree(cur, prev):
            return cur
        prev = cur
    if _is_zero(cur):
        return cur
    msg = f"reference {fn.__name__}{args} did not settle by {digits} digits"
    raise ArithmeticError(msg)


def elementwise(fn):
    """Lift a function of mpf scalars to broadcast NumPy arrays (precision settled)."""

    def ref(*arrays):
        arrays = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays])
        out = np.empty(arrays[0].shape, dtype=object)
        for idx in np.ndindex(out.shape):
            vals = [mpf(a[idx]) for a in arrays]
            out[idx] = NAN if any(isnan(v) for v in vals) else settled(fn, *vals)
        return out

    ref.__name__ = fn.__name__
    return ref


# --------------------------------------------------------------------- scalars


def softplus(x):
    if x == INF:
        return INF
    if x == -INF:
        return mpmath.mpf(0)
    return mpmath.log1p(mpmath.exp(x))


def log_sigmoid(x):
    return -softplus(-x)


def sigmoid(x):
    if x == INF:
        return mpmath.mpf(1)
    if x == -INF:
        return mpmath.mpf(0)
    return 1 / (1 + mpmath.exp(-x))


def log1mexp(x):
    if x > 0:
        return NAN
    if x == 0:
        return -INF
    # log1p(-e^x) needs no cancellation for x << 0; log(-expm1(x)) none near 0.
    return mpmath.log1p(-mpmath.exp(x)) if x < -1 else mpmath.log(-mpmath.expm1(x))


def xlogy(x, y):
    if x == 0:
        return mpmath.mpf(0) if y >= 0 else NAN
    if y < 0:
        return NAN
    if y == 0:
        return -INF * mpmath.sign(x)
    return x * mpmath.log(y)


def xlog1py(x, y):
    if x == 0:
        return mpmath.mpf(0) if y >= -1 else NAN
    if y < -1:
        return NAN
    if y == -1:
        return -INF * mpmath.sign(x)
    return x * mpmath.log1p(y)


def log_cosh(x):
    if mpmath.isinf(x):
        return INF
    return mpmath.log(mpmath.cosh(x))


def langevin(x):
    if mpmath.isinf(x):
        return mpmath.sign(x)
    if x == 0:
        return mpmath.mpf(0)
    return mpmath.coth(x) - 1 / x


# ------------------------------------------------------------------ class rows


def log_softmax_row(row):
    """Exact log-softmax of one row of mpf values, with xploss's conventions:
    -inf entries are masked classes; a row containing +inf spreads its mass over
    its +inf entries; a fully masked row is -inf everywhere; NaN makes all NaN."""
    if any(isnan(v) for v in row):
        return [NAN] * len(row)
    n_pos_inf = sum(1 for v in row if v == INF)
    if n_pos_inf:
        return [-mpmath.log(n_pos_inf) if v == INF else -INF for v in row]
    if all(v == -INF for v in row):
        return [-INF] * len(row)
    m, log_s = _shifted_row(row)
    # (v - m) - log1p(s): for the dominant class log p = -log1p(s) keeps its full
    # relative precision, where v - logsumexp would cancel it away.
    return [(v - m) - log_s for v in row]


def _shifted_row(row):
    """(m, log1p(s)) with m the row's maximum and s the sum of exp(v - m) over
    every finite entry but one maximum: logsumexp = m + log1p(s)."""
    finite = [v for v in row if v != -INF]
    m = max(finite)
    others = list(finite)
    others.remove(m)
    return m, mpmath.log1p(mpmath.fsum(mpmath.exp(v - m) for v in others))


def logsumexp_row(row):
    if any(isnan(v) for v in row):
        return NAN
    if any(v == INF for v in row):
        return INF
    if all(v == -INF for v in row):
        return -INF
    m, log_s = _shifted_row(row)
    return m + log_s


def along_axis(fn, x, axis, *, keepdims=True):
    """Apply ``fn`` (list of mpf -> list of mpf, or -> mpf) to every 1-d slice."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    rows = [[mpf(v) for v in r] for r in x.reshape(-1, x.shape[-1])]
    res = [settled(fn, r) for r in rows]
    if keepdims:
        out = np.empty((len(res), x.shape[-1]), dtype=object)
        for i, r in enumerate(res):
            out[i, :] = r
        return np.moveaxis(out.reshape(x.shape), -1, axis)
    out = np.empty(len(res), dtype=object)
    out[:] = res
    return out.reshape(x.shape[:-1])


def logsumexp(x, axis=-1, keepdims=False):
    out = along_axis(logsumexp_row, x, axis, keepdims=False)
    return np.expand_dims(out, axis) if keepdims else out


def log_softmax(x, axis=-1):
    return along_axis(log_softmax_row, x, axis)


def softmax(x, axis=-1):
    return along_axis(lambda r: [mpmath.exp(v) if not isnan(v) else NAN
                                 for v in log_softmax_row(r)], x, axis)


# -------------------------------------------------------------------- losses


def mul0(a, b):
    """a * b with 0 * ±inf = 0 (NaN still propagates)."""
    if a == 0 and mpmath.isinf(b):
        return mpmath.mpf(0)
    return a * b


def reduce(losses, reduction, weights=None):
    """Exact reduction; 'mean' over nothing (or zero total weight) is 0."""
    flat = list(np.asarray(losses, dtype=object).ravel())
    with mpmath.workdps(DIGITS):
        if reduction == "none":
            return np.asarray(losses, dtype=object)
        total = mpmath.fsum(flat) if flat else mpmath.mpf(0)
        if any(isnan(v) for v in flat):
            total = NAN
        if reduction == "sum":
            return np.asarray(total, dtype=object)
        if weights is None:
            den = mpmath.mpf(len(flat))
        else:
            den = mpmath.fsum(list(np.asarray(weights, dtype=object).ravel()))
        return np.asarray(total / den if den != 0 else total, dtype=object)


def _log_floor(dtype_name):
    """log of the smallest positive subnormal of the compute dtype (xploss's p = 0 value)."""
    fi = np.finfo(np.float64 if dtype_name == "float64" else np.float32)
    return mpmath.log(mpf(fi.smallest_subnormal))


def binary_cross_entropy(p, t, weight=None, reduction="mean", *, dtype_name="float64"):
    p, t = np.broadcast_arrays(np.asarray(p, np.float64), np.asarray(t, np.float64))
    w = None if weight is None else np.broadcast_to(np.asarray(weight, np.float64), p.shape)
    out = np.empty(p.shape, dtype=object)
    with mpmath.workdps(DIGITS):
        floor = _log_floor(dtype_name)
        for idx in np.ndindex(p.shape):
            pv, tv = mpf(p[idx]), mpf(t[idx])
            if isnan(pv) or isnan(tv) or pv < 0 or pv > 1:
                out[idx] = NAN
                continue
            log_p = floor if pv == 0 else mpmath.log(pv)
            log_q = floor if pv == 1 else mpmath.log1p(-pv)
            val = -(tv * log_p + (1 - tv) * log_q)
            out[idx] = val if w is None else mul0(mpf(w[idx]), val)
    return reduce(out, reduction)


def binary_cross_entropy_with_logits(x, t, weight=None, pos_weight=None, reduction="mean"):
    x, t = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(t, np.float64))
    w = None if weight is None else np.broadcast_to(np.asarray(weight, np.float64), x.shape)
    pw = None if pos_weight is None else np.broadcast_to(np.asarray(pos_weight, np.float64),
                                                         x.shape)
    out = np.empty(x.shape, dtype=object)
    with mpmath.workdps(DIGITS):
        for idx in np.ndindex(x.shape):
            xv, tv = mpf(x[idx]), mpf(t[idx])
            if isnan(xv) or isnan(tv):
                out[idx] = NAN
                continue
            pos = mul0(tv, softplus(-xv))
            pos = pos if pw is None else mul0(mpf(pw[idx]), pos)
            val = pos + mul0(1 - tv, softplus(xv))
            out[idx] = val if w is None else mul0(mpf(w[idx]), val)
    return reduce(out, reduction)


def _rows(x, axis):
    """(logits moved to the last axis as an (R, C) float64 array, the other shape)."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    return x.reshape(-1, x.shape[-1]), x.shape[:-1]


def _class_axis(ndim, axis):
    return (1 if ndim >= 2 else 0) if axis is None else axis % ndim


def _class_loss(x, target, weight, ignore_index, reduction, label_smoothing, axis, term):
    """Sum over classes of w_c * term(q_c, p_c, 1 - p_c, log p_c) per row, with
    q the one-hot of a class index (or the given probabilities), label smoothing
    spread over unmasked classes, ignored targets 0 and cross_entropy's mean."""
    axis = _class_axis(np.ndim(x), axis)
    rows, lead = _rows(x, axis)
    n_rows, n_classes = rows.shape
    eps = mpf(label_smoothing)
    probabilities = np.issubdtype(np.asarray(target).dtype, np.floating)
    losses = np.empty(n_rows, dtype=object)
    dens = np.empty(n_rows, dtype=object)
    with mpmath.workdps(DIGITS):
        w = [mpmath.mpf(1)] * n_classes if weight is None else [mpf(v) for v in weight]
        if probabilities:
            trows, _ = _rows(target, axis)
        else:
            labels = np.asarray(target).reshape(-1)
        for i in range(n_rows):
            if not probabilities and labels[i] == ignore_index:
                losses[i], dens[i] = mpmath.mpf(0), mpmath.mpf(0)
                continue
            if not probabilities and not 0 <= int(labels[i]) < n_classes:
                losses[i], dens[i] = NAN, mpmath.mpf(0)
                continue
            logp = log_softmax_row([mpf(v) for v in rows[i]])
            p = [NAN if isnan(v) else mpmath.exp(v) for v in logp]
            # 1 - p_c as the sum of the other probabilities: no cancellation.
            rest = [mpmath.fsum(p[:c] + p[c + 1:]) for c in range(n_classes)]
            unmasked = [v != -INF for v in rows[i]]
            n_unmasked = sum(unmasked)
            uniform = [mpmath.mpf(1) / n_unmasked if (u and n_unmasked) else mpmath.mpf(0)
                       for u in unmasked]
            if probabilities:
                t = [mpf(v) for v in trows[i]]
                dens[i] = mpmath.mpf(1)
            else:
                y = int(labels[i])
                t = [mpmath.mpf(c == y) for c in range(n_classes)]
                dens[i] = w[y]
            q = [(1 - eps) * tc + eps * uc for tc, uc in zip(t, uniform, strict=True)]
            if any(isnan(v) for v in q + logp):
                losses[i] = NAN
                continue
            # A zero class weight takes an infinite term (a target on a masked
            # class) as 0: xploss's documented 0·inf = 0. A class index without
            # smoothing reads the target's weight only (torch's semantics: the
            # other classes' terms are not formed, so a NaN weight there is unread).
            classes = ([y] if not probabilities and eps == 0 else range(n_classes))
            losses[i] = mpmath.fsum(mul0(w[c], term(q[c], p[c], rest[c], logp[c]))
                                    for c in classes)
    losses = losses.reshape(lead)
    return reduce(losses, reduction, None if probabilities else dens)


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, axis=None):
    return _class_loss(x, target, weight, ignore_index, reduction, label_smoothing, axis,
                       lambda q, p, rest, logp: mul0(q, -logp))


def softmax_focal_loss(x, target, alpha=None, gamma=2.0, weight=None, ignore_index=-100,
                       reduction="mean", label_smoothing=0.0, axis=None):
    a = 1 if alpha is None else mpf(alpha)
    g = mpf(gamma)

    def term(q, p, rest, logp):
        mod = mpmath.mpf(1) if g == 0 else rest**g
        return a * mul0(q, -logp) * mod

    return _class_loss(x, target, weight, ignore_index, reduction, label_smoothing, axis, term)


def poly1_cross_entropy(x, target, epsilon=1.0, weight=None, ignore_index=-100,
                        reduction="mean", label_smoothing=0.0, axis=None):
    e = mpf(epsilon)
    return _class_loss(x, target, weight, ignore_index, reduction, label_smoothing, axis,
                       lambda q, p, rest, logp: mul0(q, -logp) + e * q * rest)


def nll_loss(x, target, weight=None, ignore_index=-100, reduction="mean", axis=None):
    axis = _class_axis(np.ndim(x), axis)
    rows, lead = _rows(x, axis)
    labels = np.asarray(target).reshape(-1)
    losses = np.empty(len(rows), dtype=object)
    dens = np.empty(len(rows), dtype=object)
    with mpmath.workdps(DIGITS):
        for i, row in enumerate(rows):
            y = int(labels[i])
            if y == ignore_index:
                losses[i], dens[i] = mpmath.mpf(0), mpmath.mpf(0)
            elif not 0 <= y < len(row):
                losses[i], dens[i] = NAN, mpmath.mpf(0)
            else:
                wy = mpmath.mpf(1) if weight is None else mpf(weight[y])
                losses[i], dens[i] = mul0(wy, -mpf(row[y])), wy
    return reduce(losses.reshape(lead), reduction, dens)


# ------------------------------------------------------- divergences, focal


def kl_div(x, t, reduction="mean", log_target=False):
    def term(xv, tv):
        if log_target:
            if tv == -INF:
                return mpmath.mpf(0)
            return mpmath.exp(tv) * (tv - xv)
        if tv == 0:
            return mpmath.mpf(0)
        if tv < 0:
            return NAN
        return tv * (mpmath.log(tv) - xv)

    out = elementwise(term)(x, t)
    if reduction == "batchmean":
        total = reduce(out, "sum")
        return total / max(np.shape(x)[0], 1) if np.ndim(x) else total
    return reduce(out, reduction)


def sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="none"):
    g = mpf(gamma)

    def term(xv, tv):
        ce = mul0(tv, softplus(-xv)) + mul0(1 - tv, softplus(xv))
        q = tv * sigmoid(-xv) + (1 - tv) * sigmoid(xv)  # 1 - p_t
        loss = ce * (mpmath.mpf(1) if g == 0 else q**g)
        if alpha >= 0:
            loss = (mpf(alpha) * tv + (1 - mpf(alpha)) * (1 - tv)) * loss
        return loss

    return reduce(elementwise(term)(x, t), reduction)


# -------------------------------------------------------------- margins


def soft_margin_loss(x, y, reduction="mean"):
    return reduce(elementwise(lambda xv, yv: softplus(-yv * xv))(x, y), reduction)


def multilabel_soft_margin_loss(x, y, weight=None, reduction="mean"):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    bce = binary_cross_entropy_with_logits(x, y, weight=None if weight is None else
                                           np.broadcast_to(weight, x.shape), reduction="none")
    with mpmath.workdps(DIGITS):
        per = np.empty(x.shape[:-1], dtype=object)
        for idx in np.ndindex(per.shape):
            row = list(bce[idx])
            per[idx] = NAN if any(isnan(v) for v in row) else mpmath.fsum(row) / x.shape[-1]
    return reduce(per, reduction)


def _pos(v):
    """max(0, v) with NaN kept (Python's max would return 0 or NaN by argument order)."""
    return v if isnan(v) or v > 0 else mpmath.mpf(0)


def _margin_term(margin, other, target):
    """max(0, margin + other - target); a masked (-inf) other class gives 0,
    whatever the target score holds."""
    return mpmath.mpf(0) if other == -INF else _pos(margin + other - target)


def _hinge(xv, tv):
    tv = -1 if tv == 0 else tv
    return max(mpmath.mpf(0), 1 - tv * xv)


def hinge_loss(x, t, reduction="mean"):
    return reduce(elementwise(_hinge)(x, t), reduction)


def squared_hinge_loss(x, t, reduction="mean"):
    return reduce(elementwise(lambda xv, tv: _hinge(xv, tv) ** 2)(x, t), reduction)


def _index_rows(x, target, axis, fn):
    """fn(row of mpf, label) per row; NaN for labels outside [0, C)."""
    axis = _class_axis(np.ndim(x), axis)
    rows, lead = _rows(x, axis)
    labels = np.asarray(target).reshape(-1)
    out = np.empty(len(rows), dtype=object)
    with mpmath.workdps(DIGITS):
        for i, row in enumerate(rows):
            vals = [mpf(v) for v in row]
            y = int(labels[i])
            out[i] = NAN if (not 0 <= y < len(row) or any(isnan(v) for v in vals)) \
                else fn(vals, y)
    return out.reshape(lead)


def multiclass_hinge_loss(x, target, margin=1.0, reduction="mean", axis=None):
    def fn(row, y):
        others = [v for c, v in enumerate(row) if c != y]
        if not others:
            return mpmath.mpf(0)
        return max(mpmath.mpf(0), max(others) + mpf(margin) - row[y])

    return reduce(_index_rows(x, target, axis, fn), reduction)


def multi_margin_loss(x, target, p=1, margin=1.0, weight=None, reduction="mean"):
    def fn(row, y):
        wy = mpmath.mpf(1) if weight is None else mpf(weight[y])
        terms = [_margin_term(mpf(margin), v, row[y]) ** p
                 for c, v in enumerate(row) if c != y]
        return mul0(wy, mpmath.fsum(terms)) / len(row)

    return reduce(_index_rows(x, target, None, fn), reduction)


def multilabel_margin_loss(x, target, reduction="mean"):
    x = np.asarray(x, np.float64)
    target = np.asarray(target)
    rows = x.reshape(-1, x.shape[-1])
    trows = target.reshape(-1, x.shape[-1])
    out = np.empty(len(rows), dtype=object)
    with mpmath.workdps(DIGITS):
        for n, (row, trow) in enumerate(zip(rows, trows, strict=True)):
            labels = set()
            for v in trow:
                if v == -1:
                    break
                labels.add(int(v))
            vals = [mpf(v) for v in row]
            terms = [_margin_term(mpmath.mpf(1), vals[i], vals[j])
                     for j in labels for i in range(len(row)) if i not in labels]
            out[n] = mpmath.fsum(terms) / len(row) if terms else mpmath.mpf(0)
    return reduce(out.reshape(x.shape[:-1]), reduction)


# -------------------------------------------------------------- regression


def _weighted(out, weight, reduction, weighted_mean=True):
    """torch's per-element ``weight``: 'mean' divides by sum(weight) for mse/l1
    (``weighted_mean``), by the element count for huber."""
    if weight is None:
        return reduce(out, reduction)
    w = np.asarray(weight, np.float64)
    with mpmath.workdps(DIGITS):
        # A zero weight takes an infinite term as 0 (xploss's documented 0·inf = 0).
        out = np.asarray([mul0(mpf(v), o)
                          for o, v in zip(out.ravel(), w.ravel(), strict=True)],
                         dtype=object).reshape(out.shape)
    return reduce(out, reduction, [mpf(v) for v in w.ravel()] if weighted_mean else None)


def mse_loss(x, t, weight=None, reduction="mean"):
    return _weighted(elementwise(lambda a, b: (a - b) ** 2)(x, t), weight, reduction)


def l1_loss(x, t, weight=None, reduction="mean"):
    return _weighted(elementwise(lambda a, b: abs(a - b))(x, t), weight, reduction)


def huber_loss(x, t, delta=1.0, weight=None, reduction="mean"):
    dl = mpf(delta)

    def term(a, b):
        d = abs(a - b)
        return d * d / 2 if d < dl else dl * (d - dl / 2)

    return _weighted(elementwise(term)(x, t), weight, reduction, weighted_mean=False)


def smooth_l1_loss(x, t, beta=1.0, reduction="mean"):
    bt = mpf(beta)

    def term(a, b):
        d = abs(a - b)
        return d * d / (2 * bt) if d < bt else d - bt / 2

    return reduce(elementwise(term)(x, t), reduction)


def log_cosh_loss(x, t, reduction="mean"):
    return reduce(elementwise(lambda a, b: log_cosh(a - b))(x, t), reduction)


def quantile_loss(x, t, quantile=0.5, reduction="mean"):
    q = mpf(quantile)

    def term(a, b):
        r = b - a
        return q * r if r >= 0 else (q - 1) * r

    return reduce(elementwise(term)(x, t), reduction)


def mape_loss(x, t, reduction="mean"):
    def term(a, b):
        if b == 0:
            return mpmath.mpf(0) if a == 0 else INF
        if mpmath.isinf(b):  # |a - b| / |b| -> 1 as b -> ±inf; inf / inf for infinite a
            return NAN if mpmath.isinf(a) else mpmath.mpf(100)
        return 100 * abs(a - b) / abs(b)

    return reduce(elementwise(term)(x, t), reduction)


def msle_loss(x, t, reduction="mean"):
    def term(a, b):
        if a < -1 or b < -1:
            return NAN
        if a == b:  # a perfect prediction, also at -1 and inf
            return mpmath.mpf(0)
        if a == -1 or b == -1 or mpmath.isinf(a) or mpmath.isinf(b):
            return INF
        return (mpmath.log1p(a) - mpmath.log1p(b)) ** 2

    return reduce(elementwise(term)(x, t), reduction)


def _stirling(b):
    """Stirling's term of torch's full Poisson NLL: y log y - y + log(2 pi y)/2 for y > 1."""
    if b <= 1:
        return mpmath.mpf(0)
    if mpmath.isinf(b):
        return INF
    return b * mpmath.log(b) - b + mpmath.log(2 * mpmath.pi * b) / 2


def poisson_nll_loss(x, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
    def term(a, b):
        if log_input:
            if a == INF:  # e^x - y·x -> inf for a finite count; no limit for an infinite one
                value = NAN if mpmath.isinf(b) else INF
            else:
                value = mpmath.exp(a) - (mpmath.mpf(0) if b == 0 else b * a)
        else:
            value = a - xlogy(b, a + mpf(eps))
        return value + _stirling(b) if full else value

    return reduce(elementwise(term)(x, t), reduction)


def _var_for(x, var):
    x = np.asarray(x, np.float64)
    v = np.asarray(var, np.float64)
    if v.shape != x.shape and v.shape == x.shape[:-1]:
        v = v[..., None]
    return np.broadcast_to(v, x.shape)


def gaussian_nll_loss(x, t, var, full=False, eps=1e-6, reduction="mean"):
    e = mpf(eps)

    def term(a, b, v):
        if v < 0:
            return NAN
        v = max(v, e)
        if v == 0:  # no floor: the limit
            return -INF if a == b else INF
        value = (mpmath.log(v) + (a - b) ** 2 / v) / 2
        return value + mpmath.log(2 * mpmath.pi) / 2 if full else value

    return reduce(elementwise(term)(x, t, _var_for(x, var)), reduction)


# ----------------------------------------------------------------- embedding


def _cos_row(a, b, eps):
    """Cosine of two mpf vectors; a zero vector's norm is ``eps`` (xploss's convention)."""
    if any(isnan(v) for v in a + b):
        return NAN
    dot = mpmath.fsum(x * y for x, y in zip(a, b, strict=True))
    n1 = mpmath.sqrt(mpmath.fsum(x * x for x in a)) or mpf(eps)
    n2 = mpmath.sqrt(mpmath.fsum(y * y for y in b)) or mpf(eps)
    return dot / (n1 * n2)


def _vector_rows(x1, x2, axis):
    x1, x2 = np.broadcast_arrays(np.asarray(x1, np.float64), np.asarray(x2, np.float64))
    a, b = np.moveaxis(x1, axis, -1), np.moveaxis(x2, axis, -1)
    lead = a.shape[:-1]
    return a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]), lead


def cosine_similarity(x1, x2, axis=-1, eps=1e-8):
    a, b, lead = _vector_rows(x1, x2, axis)
    out = np.empty(len(a), dtype=object)
    with mpmath.workdps(2 * DIGITS):
        for i in range(len(a)):
            out[i] = _cos_row([mpf(v) for v in a[i]], [mpf(v) for v in b[i]], eps)
    return out.reshape(lead)


def cosine_embedding_loss(x1, x2, y, margin=0.0, reduction="mean"):
    a, b, lead = _vector_rows(x1, x2, -1)
    labels = np.asarray(y, np.float64).reshape(-1)
    out = np.empty(len(a), dtype=object)
    with mpmath.workdps(2 * DIGITS):
        for i in range(len(a)):
            cos = _cos_row([mpf(v) for v in a[i]], [mpf(v) for v in b[i]], 1e-8)
            if isnan(cos) or isnan(labels[i]):
                out[i] = NAN
            elif labels[i] == 1:
                out[i] = 1 - cos
            elif labels[i] == -1:
                out[i] = max(cos - mpf(margin), mpmath.mpf(0))
            else:
                out[i] = mpmath.mpf(0)
    return reduce(out.reshape(lead), reduction)


def margin_ranking_loss(x1, x2, y, margin=0.0, reduction="mean"):
    m = mpf(margin)
    return reduce(elementwise(lambda a, b, t: max(-t * (a - b) + m, mpmath.mpf(0)))(x1, x2, y),
                  reduction)


def hinge_embedding_loss(x, y, margin=1.0, reduction="mean"):
    m = mpf(margin)

    def term(xv, yv):
        out = mpmath.mpf(0)
        if yv != -1:
            out += xv
        if yv != 1:
            out += max(m - xv, mpmath.mpf(0))
        return out

    return reduce(elementwise(term)(x, y), reduction)


def _as_held(value, dtype_name):
    """A Python float option as the backend holds it: rounded to float32 for
    float32 and for 16-bit inputs (computed in float32)."""
    return float(value) if dtype_name == "float64" else float(np.float32(value))


def _p_norm(v, p):
    if any(isnan(x) for x in v):
        return NAN
    if p == np.inf:
        return max(abs(x) for x in v)
    return mpmath.fsum(abs(x) ** p for x in v) ** (1 / p)


def _distances(x1, x2, p, eps):
    """Per-row torch pairwise distances |x1 - x2 + eps|_p (mpf), and the rows' shape."""
    a, b, lead = _vector_rows(x1, x2, -1)
    pm = mpf(p) if p != np.inf else p
    with mpmath.workdps(2 * DIGITS):
        out = [_p_norm([mpf(u) - mpf(v) + mpf(eps) for u, v in zip(ra, rb, strict=True)], pm)
               for ra, rb in zip(a, b, strict=True)]
    return out, lead


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False, *, dtype_name="float64"):
    out, lead = _distances(x1, x2, p, _as_held(eps, dtype_name))
    shape = (*lead, 1) if keepdim else lead
    return np.array(out, dtype=object).reshape(shape)


def _triplet(d_ap, d_an, d_pn, margin, reduction):
    m = mpf(margin)
    out = []
    for i, (dp, dn) in enumerate(zip(d_ap, d_an, strict=True)):
        if d_pn is not None:
            dn = NAN if isnan(dn) or isnan(d_pn[i]) else min(dn, d_pn[i])
        out.append(NAN if isnan(dp) or isnan(dn) else max(m + dp - dn, mpmath.mpf(0)))
    return np.array(out, dtype=object)


def triplet_margin_loss(a, pos, neg, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        reduction="mean", *, dtype_name="float64"):
    a, pos, neg = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (a, pos, neg)))
    e = _as_held(eps, dtype_name)
    d_ap, lead = _distances(a, pos, p, e)
    d_an, _ = _distances(a, neg, p, e)
    d_pn = _distances(pos, neg, p, e)[0] if swap else None
    return reduce(_triplet(d_ap, d_an, d_pn, margin, reduction).reshape(lead), reduction)


def triplet_margin_with_distance_loss(a, pos, neg, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean", *, dtype_name="float64"):
    if distance_function is not None:
        msg = "the reference covers the default distance only"
        raise NotImplementedError(msg)
    return triplet_margin_loss(a, pos, neg, margin=margin, swap=swap, reduction=reduction,
                               dtype_name=dtype_name)


def _ntxent_pairs(e, labels, temperature):
    """[(term, L_i, s_ij)] per positive pair, in mpf (see ntxent_loss)."""
    n = len(e)
    rows = [[mpf(v) for v in row] for row in e]
    s = [[_cos_row(rows[i], rows[j], 1.0) / temperature for j in range(n)] for i in range(n)]
    pairs = []
    for i in range(n):
        negatives = [s[i][k] for k in range(n) if labels[k] != labels[i]]
        log_neg = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in negatives)) if negatives \
            else -INF
        for j in range(n):
            if j != i and labels[j] == labels[i]:
                term = mpmath.log1p(mpmath.exp(log_neg - s[i][j])) if negatives \
                    else mpmath.mpf(0)
                pairs.append((term, log_neg, s[i][j]))
    return pairs


def ntxent_loss(e, labels, temperature=0.07, *, dtype_name="float64"):
    e = np.asarray(e, np.float64)
    if np.isnan(e).any():
        return np.asarray(NAN, dtype=object)
    tau = mpf(_as_held(temperature, dtype_name))
    with mpmath.workdps(2 * DIGITS):
        pairs = _ntxent_pairs(e, np.asarray(labels).tolist(), tau)
        total = mpmath.fsum(t for t, _, _ in pairs) if pairs else mpmath.mpf(0)
        return np.asarray(total / len(pairs) if pairs else total, dtype=object)


# ----------------------------------------------------------------- segmentation


def _overlap(p, t, axis, score):
    """score(p_values, t_values) per group of ``axis`` (None: all), NaN for any
    value outside [0, 1]."""
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    axes = tuple(range(p.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    axes = tuple(a % p.ndim for a in axes)
    keep = [a for a in range(p.ndim) if a not in axes]
    pm = np.moveaxis(p, keep, list(range(len(keep))))
    tm = np.moveaxis(t, keep, list(range(len(keep))))
    lead = pm.shape[:len(keep)]
    pm, tm = pm.reshape((*lead, -1)), tm.reshape((*lead, -1))
    out = np.empty(lead, dtype=object)
    with mpmath.workdps(2 * DIGITS):
        for idx in np.ndindex(lead):
            pv, tv = pm[idx], tm[idx]
            if not (np.all((pv >= 0) & (pv <= 1)) and np.all((tv >= 0) & (tv <= 1))):
                out[idx] = NAN
            else:
                out[idx] = score([mpf(v) for v in pv], [mpf(v) for v in tv])
    return out


def dice_loss(p, t, smooth=1.0, axis=None, reduction="mean", *, dtype_name="float64"):
    s = mpf(_as_held(smooth, dtype_name))

    def score(pv, tv):
        # 1 - (2·sum(pt) + s)/(sum p + sum t + s), as the mismatch over the total
        # (the same number; 1 - ratio would need more digits than p = 1e-300 has).
        mismatch = mpmath.fsum(a * (1 - b) + b * (1 - a) for a, b in zip(pv, tv, strict=True))
        den = mpmath.fsum(pv) + mpmath.fsum(tv) + s
        return mismatch / den if den != 0 else mpmath.mpf(0)

    return reduce(_overlap(p, t, axis, score), reduction)


def tversky_loss(p, t, alpha=0.5, beta=0.5, smooth=1.0, axis=None, reduction="mean", *,
                 dtype_name="float64"):
    s = mpf(_as_held(smooth, dtype_name))
    al, be = mpf(_as_held(alpha, dtype_name)), mpf(_as_held(beta, dtype_name))

    def score(pv, tv):
        tp = mpmath.fsum(a * b for a, b in zip(pv, tv, strict=True))
        fp = mpmath.fsum(a * (1 - b) for a, b in zip(pv, tv, strict=True))
        fn = mpmath.fsum((1 - a) * b for a, b in zip(pv, tv, strict=True))
        den = tp + al * fp + be * fn + s
        return (al * fp + be * fn) / den if den != 0 else mpmath.mpf(0)

    return reduce(_overlap(p, t, axis, score), reduction)


# ----------------------------------------------------------------- sequence


def _ctc_alignments(frames, labels, blank):
    """-log of the summed probability of every alignment of ``labels`` to
    ``frames`` (a (T_n, C) float64 array of log-probabilities): the forward
    algorithm of Graves et al. in probability space, where mpf has no underflow
    (exp(-1e30) is an ordinary mpf), so every sum is of non-negative terms."""
    ext = [blank]
    for y in labels:
        ext += [int(y), blank]
    # Before the first frame all the mass is in a virtual start that feeds s = 0, 1:
    # alpha_{-1} = (1, 0, 0, ...) with the ordinary recursion does exactly that.
    alpha = [mpmath.mpf(1)] + [mpmath.mpf(0)] * (len(ext) - 1)
    for row in frames:
        p = {c: mpmath.exp(mpf(row[c])) for c in set(ext)}
        new = []
        for s, c in enumerate(ext):
            total = alpha[s] + (alpha[s - 1] if s >= 1 else 0)
            if s >= 2 and c != blank and c != ext[s - 2]:
                total += alpha[s - 2]
            new.append(p[c] * total)
        alpha = new
    total = alpha[-1] + (alpha[-2] if labels.size else 0)
    return INF if total == 0 else -mpmath.log(total)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """torch.nn.functional.ctc_loss exactly, with xploss's conventions for invalid
    values (NaN for that sample: lengths out of range, labels outside [0, C) or
    equal to ``blank``, a NaN or +inf log-probability of a used class in a used
    frame) and a mean over an empty batch of 0."""
    lp = np.asarray(log_probs, dtype=np.float64)
    tg = np.asarray(targets)
    il, tl = np.asarray(input_lengths).reshape(-1), np.asarray(target_lengths).reshape(-1)
    batched = lp.ndim == 3
    if not batched:
        lp, tg = lp[:, None, :], tg[None, :]
    n_frames, n, n_classes = lp.shape
    losses = np.empty(n, dtype=object)
    offset = 0
    with mpmath.workdps(DIGITS):
        for i in range(n):
            length, t_n = int(tl[i]), int(il[i])
            if tg.ndim == 1:
                labels = tg[max(offset, 0):max(offset + length, 0)]
                ok = offset >= 0 and 0 <= length and offset + length <= tg.shape[0]
                offset += length
            else:
                labels = tg[i, :max(length, 0)]
                ok = 0 <= length <= tg.shape[1]
            ok = ok and 0 <= t_n <= n_frames and all(
                0 <= int(y) < n_classes and int(y) != blank for y in labels)
            if not ok:
                losses[i] = NAN
                continue
            frames = lp[:t_n, i, :]
            used = frames[:, sorted({blank, *(int(y) for y in labels)})]
            if np.any(np.isnan(used) | (used == np.inf)):
                losses[i] = NAN
                continue
            if t_n == 0:
                losses[i] = mpmath.mpf(0) if length == 0 else INF
            else:
                losses[i] = settled(_ctc_alignments, frames, labels, blank)
            if zero_infinity and losses[i] == INF:
                losses[i] = mpmath.mpf(0)
        if reduction == "none":
            return losses if batched else np.asarray(losses[0], dtype=object)
        if reduction == "sum":
            terms = list(losses)
        else:  # torch: each loss over its target length (at least 1), then the mean
            terms = [v / max(int(tl[i]), 1) for i, v in enumerate(losses)]
        total = NAN if any(isnan(v) for v in terms) else (
            mpmath.fsum(terms) if terms else mpmath.mpf(0))
        if reduction == "mean" and n:
            total = total / n
        return np.asarray(total, dtype=object)


# ============================================================================
