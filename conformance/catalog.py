"""Registry entries for every public xploss function, with their input tables.

Inputs are NumPy float64 data; the runner casts floating arrays to the dtype
under test (values outside a dtype's range are left out of its tables). Each
table mixes the special values of DESIGN.md (0, subnormals, smallest normal,
±1e4, ±1e30, ±finfo.max, ±inf, NaN, -inf masks, labels 0/1 and 1 - ulp) with
a fixed-seed log-uniform sweep over the whole finite range.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

import xploss

from . import references as ref
from .registry import Case, Entry, register

INF, NAN = math.inf, math.nan

# (eps, smallest normal, smallest subnormal, max) per dtype under test.
FINFO = {
    "float64": (2.0**-52, 2.0**-1022, 2.0**-1074, float(np.finfo(np.float64).max)),
    "float32": (2.0**-23, 2.0**-126, 2.0**-149, float(np.finfo(np.float32).max)),
    "float16": (2.0**-10, 2.0**-14, 2.0**-24, 65504.0),
    "bfloat16": (2.0**-7, 2.0**-126, 2.0**-133, (2 - 2.0**-7) * 2.0**127),
}


def magnitudes(dtype):
    """Non-negative special magnitudes representable in ``dtype``."""
    eps, tiny, sub, big = FINFO[dtype]
    vals = [0.0, sub, 3 * sub, tiny, 1e-30, 1e-8, 1e-5, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0,
            20.0, 30.0, 40.0, 88.0, 100.0, 700.0, 1e4, 1e30, 1e300, big / 2, big]
    return sorted({v for v in vals if v <= big})


def signed(dtype):
    m = magnitudes(dtype)
    return np.array(sorted({-v for v in m} | set(m)))


def portable(fn, x):
    """``fn``, an mpmath function, of each element of ``x``, rounded to float64.

    Case inputs are built with it wherever they need a transcendental function:
    NumPy's ``exp``, ``log`` and ``power`` round differently in the last bit on
    different processors (their SIMD paths), which would change a case's inputs,
    and so its digest, and stale its committed oracle vector on that machine.
    mpmath gives every machine the same bits."""
    x = np.asarray(x, dtype=np.float64)
    with mpmath.workdps(40):
        out = [float(fn(mpmath.mpf(float(v)))) for v in x.ravel()]
    return np.array(out, dtype=np.float64).reshape(x.shape)


def sweep(dtype, n=48, seed=0, low=None, high=None):
    """Fixed-seed log-uniform magnitudes over the finite range, both signs."""
    eps, tiny, sub, big = FINFO[dtype]
    rng = np.random.default_rng(seed)
    lo = math.log10(tiny) if low is None else low
    hi = math.log10(big) - 0.01 if high is None else high
    mags = portable(lambda u: mpmath.power(10, u), rng.uniform(lo, hi, n))
    return mags * rng.choice([-1.0, 1.0], n)


def unit_values(dtype):
    """Probabilities / labels: 0, 1, subnormal, tiny, and 1 - ulp."""
    eps, tiny, sub, big = FINFO[dtype]
    vals = [0.0, sub, tiny, 1e-30, 1e-8, 1e-3, 0.25, 0.5, 0.75, 1 - 1e-3, 1 - eps / 2, 1.0]
    return np.array([v for v in vals if v == 0 or v >= sub])


def grid(a, b):
    """Every pair of ``a`` × ``b`` as two full (len(a), len(b)) arrays."""
    return (np.asarray(a, float)[:, None] * np.ones((1, len(b))),
            np.ones((len(a), 1)) * np.asarray(b, float)[None, :])


def arr(*rows):
    return np.array(rows, dtype=np.float64)


# ------------------------------------------------------------ elementwise unary


def _unary_cases(dtype, domain="all"):
    vals = signed(dtype)
    sw = sweep(dtype)
    # Uniform over (-4, 4), where the formulas switch branches (the log-uniform
    # sweep puts few points there).
    near = np.random.default_rng(16).uniform(-4.0, 4.0, 96)
    if domain == "nonpositive":
        vals, sw, near = -np.abs(vals), -np.abs(sw), -np.abs(near)
        vals = vals[vals != 0]
    cases = [Case("special", (np.unique(vals),)), Case("sweep", (sw,)),
             Case("branches", (near,))]
    if domain == "all":
        cases.append(Case("infinities", (arr(INF, -INF),)))
    cases.append(Case("nan", (arr(NAN, 0.0),)))
    return cases


def _langevin_cases(dtype):
    # The acceptance points of the design: 0, ±1e-300, ±1e-8, ±0.5, ±1e10.
    points = np.array([0.0, 1e-300, -1e-300, 1e-8, -1e-8, 0.5, -0.5, 1e10, -1e10])
    big = FINFO[dtype][3]
    points = points[np.abs(points) <= big]
    return [*_unary_cases(dtype), Case("acceptance_points", (points,))]


for _name, _ref in [("softplus", ref.softplus), ("log_sigmoid", ref.log_sigmoid),
                    ("sigmoid", ref.sigmoid), ("log_cosh", ref.log_cosh)]:
    register(Entry(_name, getattr(xploss, _name), ref.elementwise(_ref), _unary_cases))

register(Entry("langevin", xploss.langevin, ref.elementwise(ref.langevin), _langevin_cases))


def _log1mexp_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    special, *rest = _unary_cases(dtype, "nonpositive")
    normal = special.args[0][np.abs(special.args[0]) >= tiny]
    return [Case("special", (normal,)), *rest,
            Case("near_zero", (-np.array([tiny, 1e-30, 1e-8,
                                          math.log(2) * 0.999, math.log(2) * 1.001]),)),
            # d/dx log(1 - e^x) = -1/x near 0: beyond the float range for subnormal x.
            Case("subnormal", (-np.array([sub, 3 * sub]),), no_grad=(0,)),
            Case("pole", (arr(0.0, -INF),)),
            Case("outside_domain", (arr(1e-8, 1.0, INF),))]


register(Entry("log1mexp", xploss.log1mexp, ref.elementwise(ref.log1mexp), _log1mexp_cases))


def _xlogy_cases(dtype, log1p):
    eps, tiny, sub, big = FINFO[dtype]
    x = np.array([1e-30, 0.5, -2.0, 3.0])
    if log1p:
        y = [-(1 - eps / 2), -0.5, -1e-8, -tiny, 0.0, sub, tiny, 1e-8, 0.5, 1.0, 1e30, big]
        pole = -1.0
    else:
        y = [sub, tiny, 1e-30, 1e-8, 0.5, 1 - eps / 2, 1.0, 1 + eps, 2.0, 1e30, big]
        pole = 0.0
    y = np.array([v for v in y if abs(v) <= big and (v == 0 or abs(v) >= sub)])
    normal = (np.abs(y) >= tiny) | (y == 0)
    return [
        # Full-shape grids (no broadcasting), so each gradient element is one term.
        Case("grid", grid(x, y[normal])),
        # d/dy = x/y is beyond the float range for subnormal y.
        Case("subnormal_y", grid(x, y[~normal]), no_grad=(1,)),
        # x/y overflows for tiny y when x = 1e30: gradients in y are not checked.
        Case("huge_x", grid([min(1e30, big)], y), no_grad=(1,)),
        Case("zero_x", (np.zeros(4), arr(pole, INF, 0.5, 3.0))),
        Case("pole", (arr(0.5, -2.0), arr(pole, pole))),
        Case("nan", (arr(0.0, NAN, 1.0), arr(NAN, 1.0, NAN))),
    ]


register(Entry("xlogy", xploss.xlogy, ref.elementwise(ref.xlogy),
               lambda d: _xlogy_cases(d, False), differentiable=(0, 1)))
register(Entry("xlog1py", xploss.xlog1py, ref.elementwise(ref.xlog1py),
               lambda d: _xlogy_cases(d, True), differentiable=(0, 1)))


# ------------------------------------------------------------------ class rows

N_CLASSES = 5


def logit_rows(dtype):
    """Named (R, 5) logit tables: ordinary, confident, huge, tiny, masked, ties."""
    eps, tiny, sub, big = FINFO[dtype]
    rng = np.random.default_rng(1)
    h = min(1e30, big / 4)
    tables = {
        "ordinary": rng.normal(0.0, 3.0, (6, N_CLASSES)),
        "confident": arr([30.0, 0.0, -5.0, -10.0, -20.0], [15.0, -15.0, 0.0, 1.0, 2.0],
                         [-3.0, 18.5, -2.0, 0.0, -1.0], [8.0, -8.0, -8.0, -8.0, -8.0]),
        "huge": arr([1e4, -1e4, 0.0, 1.0, 2.0], [h, h, -h, 0.0, 5.0],
                    [big, big / 2, 0.0, -big, 1.0], [-big, -big, -big / 3, -1e4, -h]),
        "tiny": arr([1e-30, -1e-30, sub, 0.0, tiny], [tiny, -tiny, sub, -sub, 0.0]),
        "masked": arr([0.0, -INF, 1.0, -INF, 2.0], [-INF, -INF, -INF, -INF, 3.0],
                      [40.0, -INF, -INF, 0.0, -INF]),
        "ties": arr([1.0, 1.0, 1.0, 1.0, 1.0], [5.0, 5.0, -INF, 0.0, 0.0]),
    }
    # Finite values beyond this dtype's range are held at its max (masks stay -inf).
    return {k: np.where(np.isfinite(v) & (np.abs(v) > big), np.sign(v) * big, v)
            for k, v in tables.items()}


def _row_cases(dtype, with_axis=True):
    cases = [Case(k, (v,), summands=N_CLASSES) for k, v in logit_rows(dtype).items()]
    cases += [
        Case("fully_masked", (arr([-INF] * N_CLASSES),), summands=N_CLASSES),
        Case("posinf", (arr([INF, 0.0, 1.0, INF, -INF]),), summands=N_CLASSES),
        Case("nan", (arr([NAN, 0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0, 4.0]),),
             summands=N_CLASSES),
    ]
    if with_axis:
        x3 = np.random.default_rng(2).normal(0.0, 4.0, (2, N_CLASSES, 3))
        cases.append(Case("axis1_3d", (x3,), {"axis": 1}, summands=N_CLASSES))
    return cases


def _lse_scale(args, kwargs, exact):
    """|max| + |exact - max|: logsumexp = m + log(sum), accurate to a few ULP of both terms."""
    x = np.asarray(args[0], dtype=np.float64)
    axis = kwargs.get("axis", -1)
    with np.errstate(invalid="ignore"):
        m = np.max(x, axis=axis)
        m = np.where(np.isfinite(m), m, 0.0)
        return np.abs(m) + np.abs(np.where(np.isfinite(exact), exact, 0.0) - m)


register(Entry("logsumexp", xploss.logsumexp, ref.logsumexp, _row_cases, scale=_lse_scale))
register(Entry("log_softmax", xploss.log_softmax, ref.log_softmax, _row_cases))
register(Entry("softmax", xploss.softmax, ref.softmax, _row_cases))


# ------------------------------------------------------------- binary losses


def _bce_logits_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    x = signed(dtype)
    t = unit_values(dtype)
    rng = np.random.default_rng(3)
    xs = rng.normal(0.0, 4.0, (4, 3))
    ts = rng.uniform(0.0, 1.0, (4, 3))
    sw = sweep(dtype, n=24, seed=4)
    sweep_t = np.resize(t, sw.shape)
    return [
        Case("grid", grid(x, t), {"reduction": "none"}),
        Case("sweep", (sw, sweep_t), {"reduction": "none"}),
        Case("matching_infinities", (arr(INF, -INF), arr(1.0, 0.0)), {"reduction": "none"}),
        Case("opposite_infinities", (arr(INF, -INF), arr(0.0, 1.0)), {"reduction": "none"}),
        Case("mean", (xs, ts), {}, summands=xs.size),
        Case("sum_weighted", (xs, ts), {"reduction": "sum", "weight": rng.uniform(0, 2, 3),
                                        "pos_weight": rng.uniform(0.5, 3, 3)},
             summands=xs.size),
        Case("none_pos_weight", (xs, ts), {"reduction": "none",
                                           "pos_weight": rng.uniform(0.5, 3, 3)}),
        Case("empty_mean", (np.zeros((0, 3)), np.zeros((0, 3))), {}),
        Case("nan", (arr(NAN, 0.0), arr(0.0, NAN)), {"reduction": "none"}),
    ]


register(Entry("binary_cross_entropy_with_logits", xploss.binary_cross_entropy_with_logits,
               ref.binary_cross_entropy_with_logits, _bce_logits_cases, differentiable=(0, 1),
               half_result="float32"))


def _bce_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    values = unit_values(dtype)
    p = values[(values == 0) | (values >= tiny)]
    t = values
    rng = np.random.default_rng(5)
    ps = rng.uniform(0.01, 0.99, (4, 3))
    ts = rng.uniform(0.0, 1.0, (4, 3))
    return [
        Case("grid", grid(p, t), {"reduction": "none"}),
        # d/dp = -t/p: beyond the float range for subnormal p.
        Case("subnormal_p", grid([sub, 3 * sub], t), {"reduction": "none"}, no_grad=(0,)),
        Case("mean", (ps, ts), {}, summands=ps.size),
        Case("sum_weighted", (ps, ts), {"reduction": "sum", "weight": rng.uniform(0, 2, 3)},
             summands=ps.size),
        Case("outside_unit_interval", (arr(-0.5, 1.5, NAN), arr(1.0, 1.0, 1.0)),
             {"reduction": "none"}),
    ]


register(Entry("binary_cross_entropy", xploss.binary_cross_entropy, ref.binary_cross_entropy,
               _bce_cases, differentiable=(0, 1), half_result="float32",
               reference_takes_dtype=True))


# -------------------------------------------------------------- class losses


def _labels_for(table, rng):
    """Class-index targets: the arg-max (a confident, tiny loss) and random classes."""
    am = np.argmax(np.where(np.isnan(table), -INF, table), axis=-1)
    rnd = rng.integers(0, table.shape[-1], table.shape[0])
    return np.where(np.arange(table.shape[0]) % 2 == 0, am, rnd).astype(np.int64)


def _ce_cases(dtype):
    rng = np.random.default_rng(6)
    tables = logit_rows(dtype)
    c = N_CLASSES
    cases = []
    for name in ("ordinary", "confident", "huge", "tiny", "ties"):
        x = tables[name]
        y = _labels_for(x, rng)
        cases.append(Case(f"{name}_none", (x, y), {"reduction": "none"}))
    x = tables["ordinary"]
    y = _labels_for(x, rng)
    y_ign = y.copy()
    y_ign[1] = -100
    w = rng.uniform(0.2, 2.0, c)
    n = x.shape[0]
    cases += [
        Case("mean", (x, y), {}, summands=n),
        Case("weighted_mean_ignore", (x, y_ign), {"weight": w}, summands=n),
        Case("sum_smoothing", (x, y), {"reduction": "sum", "label_smoothing": 0.1},
             summands=n * c),
        Case("confident_smoothing_none", (tables["confident"], _labels_for(tables["confident"],
                                                                            rng)),
             {"reduction": "none", "label_smoothing": 0.05}, summands=c),
        # Targets on unmasked classes; smoothing spreads over unmasked ones only.
        Case("masked_none", (tables["masked"], np.array([2, 4, 0])), {"reduction": "none"}),
        Case("masked_smoothing", (tables["masked"], np.array([2, 4, 0])),
             {"reduction": "none", "label_smoothing": 0.2, "weight": w}, summands=c),
        # Ignored rows hold NaN and -inf: they must not reach the result.
        Case("ignored_garbage", (arr([NAN, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, -2.0, 0.5, 3.0],
                                     [-INF] * c), np.array([-100, 3, -100])),
             {"label_smoothing": 0.3}, summands=c),
        Case("all_ignored_mean", (x[:2], np.array([-100, -100])), {}),
        Case("custom_ignore_index", (x, y), {"ignore_index": int(y[0]), "reduction": "sum"},
             summands=n),
        Case("target_on_masked_class", (tables["masked"], np.array([1, 0, 1])),
             {"reduction": "none"}),
        Case("fully_masked_row", (arr([-INF] * c), np.array([0])), {"reduction": "none"}),
        Case("out_of_range_target", (x[:3], np.array([0, 5, -1])), {"reduction": "none"}),
        Case("unbatched", (x[0], np.array(int(y[0]))), {}),
        Case("axis1_3d", (rng.normal(0, 4, (2, c, 3)), rng.integers(0, c, (2, 3))),
             {"reduction": "none"}),
        Case("axis_last", (rng.normal(0, 4, (2, 3, c)), rng.integers(0, c, (2, 3))),
             {"reduction": "mean", "axis": -1}, summands=6),
    ]
    # Probability targets: soft labels near 0 and 1 with huge logits of both signs.
    eps = FINFO[dtype][0]
    soft = arr([1 - eps, eps / 2, eps / 2, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0],
               [0.2, 0.2, 0.2, 0.2, 0.2], [1e-8, 1 - 2e-8, 1e-8, 0.0, 0.0])
    cases += [
        # d loss / d target = -log p reaches 2·finfo.max for the row spanning ±max.
        Case("soft_huge_none", (tables["huge"], soft), {"reduction": "none"}, summands=c,
             no_grad=(1,)),
        Case("soft_ordinary_mean", (tables["ordinary"][:4], soft), {"weight": w},
             summands=4 * c),
        Case("soft_smoothing_none", (tables["confident"], soft),
             {"reduction": "none", "label_smoothing": 0.1}, summands=c),
        Case("soft_masked_none", (tables["masked"], arr([0.5, 0.0, 0.5, 0.0, 0.0],
                                                        [0.0, 0.0, 0.0, 0.0, 1.0],
                                                        [0.9, 0.0, 0.0, 0.1, 0.0])),
             {"reduction": "none", "label_smoothing": 0.1}, summands=c),
    ]
    return cases


register(Entry("cross_entropy", xploss.cross_entropy, ref.cross_entropy, _ce_cases,
               differentiable=(0, 1), half_result="float32"))


def _nll_cases(dtype):
    rng = np.random.default_rng(7)
    eps, tiny, sub, big = FINFO[dtype]
    logp = -np.abs(np.array([[v for v in (0.0, sub, 1e-30, 1e-8, 0.5)],
                             [2.0, 30.0, 1e4, min(1e30, big), big],
                             [0.1, 0.2, 0.3, 0.4, 0.5]]))
    garbage = arr([NAN, -1.0, -INF, -2.0, -3.0], [-0.5, -1.0, -INF, -2.0, -3.0])
    w = rng.uniform(0.2, 2.0, N_CLASSES)
    return [
        Case("special_none", (logp, np.array([0, 4, 2])), {"reduction": "none"}),
        Case("special_all_classes", (np.repeat(logp, N_CLASSES, axis=0),
                                     np.tile(np.arange(N_CLASSES), 3)), {"reduction": "none"}),
        Case("weighted_mean", (logp, np.array([1, 3, 0])), {"weight": w}, summands=3),
        Case("ignored_garbage", (garbage, np.array([-100, 1])), {"reduction": "sum"}),
        Case("masked_target", (garbage, np.array([2, 2])), {"reduction": "none"}),
        Case("all_ignored_mean", (garbage, np.array([-100, -100])), {}),
        Case("out_of_range_target", (logp, np.array([5, -1, 0])), {"reduction": "none"}),
        Case("axis1_3d", (-np.abs(rng.normal(0, 4, (2, N_CLASSES, 3))),
                          rng.integers(0, N_CLASSES, (2, 3))), {"reduction": "none"}),
    ]


register(Entry("nll_loss", xploss.nll_loss, ref.nll_loss, _nll_cases, half_result="float32"))


# ----------------------------------------------------------- divergences, focal


def _kl_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    logp = -np.array([v for v in magnitudes(dtype)
                      if (tiny <= v <= min(big, 1e30)) or v == 0])
    t = unit_values(dtype)
    t = t[(t == 0) | (t >= tiny)]
    rng = np.random.default_rng(8)
    lp = portable(mpmath.log, rng.dirichlet(np.ones(4), 3))
    tp = rng.dirichlet(np.ones(4), 3)
    tp[0, 1] = 0.0
    # Inputs equal to log t: the term cancels (the bound is relative to t(|log t| + |x|)).
    near = portable(mpmath.log, tp[1:]) * (1 + 1e-3)
    return [
        Case("grid", grid(logp, t), {"reduction": "none"}),
        Case("zero_target_masked_input", (arr(-INF, -INF, -2.0), arr(0.0, 0.5, 0.0)),
             {"reduction": "none"}, no_grad=(0, 1)),
        Case("near_cancellation", (near, tp[1:]), {"reduction": "none"}),
        Case("batchmean", (lp, tp), {"reduction": "batchmean"}, summands=lp.size),
        Case("mean", (lp, tp), {}, summands=lp.size),
        Case("log_target", (lp, portable(mpmath.log, tp + 1e-300)),
             {"reduction": "sum", "log_target": True}, summands=lp.size),
        Case("log_target_masked", (arr(-1.0, -INF, NAN), arr(-INF, -INF, -INF)),
             {"reduction": "none", "log_target": True}),
        Case("nan", (arr(NAN, -1.0), arr(0.0, NAN)), {"reduction": "none"}),
    ]


def _kl_scale(args, kwargs, exact):
    """t·(|log t| + |x|) (e^t·(|t| + |x|) for log targets): the term's cancellation scale."""
    x, t = (np.asarray(a, dtype=np.float64) for a in args)
    with np.errstate(all="ignore"):
        if kwargs.get("log_target"):
            s = np.exp(t) * (np.abs(t) + np.abs(x))
        else:
            s = t * (np.abs(np.log(np.where(t > 0, t, 1.0))) + np.abs(x))
        s = np.where(np.isfinite(s), s, 0.0)
    if kwargs.get("reduction", "mean") == "none":
        return np.maximum(s, np.abs(exact))
    total = np.sum(s)
    if kwargs.get("reduction", "mean") == "mean":
        total = total / max(s.size, 1)
    elif kwargs.get("reduction") == "batchmean":
        total = total / max(s.shape[0], 1)
    return np.maximum(total, np.abs(exact))


register(Entry("kl_div", xploss.kl_div, ref.kl_div, _kl_cases, differentiable=(0, 1),
               half_result="float32", scale=_kl_scale))


def _sigmoid_focal_cases(dtype):
    x, t = signed(dtype), unit_values(dtype)
    rng = np.random.default_rng(9)
    xs, ts = rng.normal(0, 4, (3, 4)), rng.uniform(0, 1, (3, 4))
    cases = []
    for gamma in (0.0, 0.5, 2.0, 5.0):
        for alpha in (0.25, -1.0):
            cases.append(Case(f"grid_gamma{gamma:g}_alpha{alpha:g}", grid(x, t),
                              {"gamma": gamma, "alpha": alpha}))
    cases += [
        Case("matching_infinities", (arr(INF, -INF), arr(1.0, 0.0)), {"gamma": 0.5}),
        Case("mean", (xs, ts), {"reduction": "mean"}, summands=xs.size),
        Case("sum", (xs, ts), {"reduction": "sum", "gamma": 5.0}, summands=xs.size),
    ]
    return cases


def _focal_scale(args, kwargs, exact):
    """|loss|·(1 + γ·δ/4), i.e. a bound of 4 + γ·δ ULP: the modulating factor
    exp(γ·log(1 - p_t)) multiplies the absolute error of log(1 - p_t), δ·eps,
    by γ. The double-word log(1 - p_t) of sigmoid_focal_loss holds δ to about
    1/2 for hard labels (one log1p(e^-|x|)) and 2 for soft ones (two logs of
    the label, a log-add and log1p(e^-|x|)), whatever |log(1 - p_t)| is."""
    t = np.asarray(args[1], dtype=np.float64)
    delta = np.where((t == 0) | (t == 1), 0.5, 2.0)
    factor = 1 + kwargs.get("gamma", 2.0) * delta / 4
    if kwargs.get("reduction", "none") == "none":
        return np.abs(exact) * factor
    return np.abs(exact) * np.max(factor)


register(Entry("sigmoid_focal_loss", xploss.sigmoid_focal_loss, ref.sigmoid_focal_loss,
               _sigmoid_focal_cases, differentiable=(0,), half_result="float32",
               scale=_focal_scale))


def _softmax_class_cases(dtype, options):
    """Class-distribution cases (as cross_entropy's) for each option set."""
    rng = np.random.default_rng(10)
    tables = logit_rows(dtype)
    c = N_CLASSES
    w = rng.uniform(0.2, 2.0, c)
    eps = FINFO[dtype][0]
    soft = arr([1 - eps, eps / 2, eps / 2, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0],
               [0.2, 0.2, 0.2, 0.2, 0.2], [1e-8, 1 - 2e-8, 1e-8, 0.0, 0.0])
    cases = []
    for tag, opts in options:
        for name in ("ordinary", "confident", "huge", "ties"):
            x = tables[name]
            cases.append(Case(f"{name}_{tag}", (x, _labels_for(x, rng)),
                              {"reduction": "none", **opts}, summands=c))
        x = tables["ordinary"]
        y = _labels_for(x, rng)
        y[1] = -100
        cases += [
            Case(f"weighted_mean_ignore_{tag}", (x, y), {"weight": w, **opts},
                 summands=c * x.shape[0]),
            Case(f"masked_smoothing_{tag}", (tables["masked"], np.array([2, 4, 0])),
                 {"reduction": "none", "label_smoothing": 0.2, **opts}, summands=c),
            # d/d target = -log p reaches 2·finfo.max.
            Case(f"soft_huge_{tag}", (tables["huge"], soft), {"reduction": "none", **opts},
                 summands=c, no_grad=(1,)),
            Case(f"ignored_garbage_{tag}", (arr([NAN, 1.0, 2.0, 3.0, 4.0],
                                                [0.0, 1.0, -2.0, 0.5, 3.0]),
                                            np.array([-100, 3])), opts, summands=c),
        ]
    return cases


def _softmax_focal_scale(args, kwargs, exact):
    """As _focal_scale, with δ = 2 + (C - 2)/2 for log(1 - p) of C classes: the
    exponentials of the other classes (TwoSum-corrected), their sum, and the
    double-word log of that sum."""
    x = np.asarray(args[0])
    axis = kwargs.get("axis")
    n_classes = x.shape[(1 if x.ndim >= 2 else 0) if axis is None else axis]
    factor = 1 + kwargs.get("gamma", 2.0) * (2 + (n_classes - 2) / 2) / 4
    return np.abs(exact) * factor


register(Entry("softmax_focal_loss", xploss.softmax_focal_loss, ref.softmax_focal_loss,
               lambda d: _softmax_class_cases(d, [("g0.5", {"gamma": 0.5}),
                                                  ("g2_a", {"gamma": 2.0, "alpha": 0.25}),
                                                  ("g5", {"gamma": 5.0})]),
               differentiable=(0, 1), half_result="float32", scale=_softmax_focal_scale))
register(Entry("poly1_cross_entropy", xploss.poly1_cross_entropy, ref.poly1_cross_entropy,
               lambda d: _softmax_class_cases(d, [("e1", {}), ("e2", {"epsilon": 2.0})]),
               differentiable=(0, 1), half_result="float32"))


# ------------------------------------------------------------------ margins


def _pm_one_cases(dtype, zero_labels):
    x = signed(dtype)
    eps = FINFO[dtype][0]
    labels = [-1.0, 1.0] + ([0.0] if zero_labels else [])
    kink = np.array([1.0, 1 - eps / 2, 1 + eps, 0.5, 2.0, 1 - 1e-3])
    rng = np.random.default_rng(11)
    xs = rng.normal(0, 2, (3, 4))
    ys = rng.choice(labels, (3, 4))
    return [
        Case("grid", grid(x, labels), {"reduction": "none"}),
        Case("near_kink", grid(np.concatenate([kink, -kink]), labels), {"reduction": "none"}),
        Case("masked", (arr(-INF, -INF), arr(-1.0, -1.0)), {"reduction": "none"}),
        Case("mean", (xs, ys), {}, summands=xs.size),
        Case("sum", (xs, ys), {"reduction": "sum"}, summands=xs.size),
    ]


register(Entry("soft_margin_loss", xploss.soft_margin_loss, ref.soft_margin_loss,
               lambda d: _pm_one_cases(d, False), half_result="float32"))
register(Entry("hinge_loss", xploss.hinge_loss, ref.hinge_loss,
               lambda d: _pm_one_cases(d, True), half_result="float32"))
register(Entry("squared_hinge_loss", xploss.squared_hinge_loss, ref.squared_hinge_loss,
               lambda d: _pm_one_cases(d, True), half_result="float32"))


def _multilabel_soft_cases(dtype):
    tables = logit_rows(dtype)
    rng = np.random.default_rng(12)
    c = N_CLASSES
    hard = rng.integers(0, 2, (6, c)).astype(np.float64)
    eps = FINFO[dtype][0]
    soft = np.resize(np.array([0.0, 1.0, eps / 2, 1 - eps / 2, 0.5]), (4, c))
    return [
        Case("ordinary_none", (tables["ordinary"], hard), {"reduction": "none"}, summands=c),
        Case("huge_soft_none", (tables["huge"], soft), {"reduction": "none"}, summands=c),
        Case("weighted_mean", (tables["ordinary"], hard), {"weight": rng.uniform(0, 2, c)},
             summands=6 * c),
        Case("unbatched", (tables["confident"][0], hard[0]), {}, summands=c),
    ]


register(Entry("multilabel_soft_margin_loss", xploss.multilabel_soft_margin_loss,
               ref.multilabel_soft_margin_loss, _multilabel_soft_cases, half_result="float32"))


def _index_margin_cases(dtype, extra):
    rng = np.random.default_rng(13)
    tables = logit_rows(dtype)
    cases = []
    for name in ("ordinary", "confident", "huge", "tiny", "masked", "ties"):
        x = tables[name]
        y = _labels_for(x, rng)
        if name == "masked":
            y = np.array([2, 4, 0])
        for tag, opts in extra:
            cases.append(Case(f"{name}_{tag}", (x, y), {"reduction": "none", **opts},
                              summands=N_CLASSES))
    x = tables["ordinary"]
    cases += [
        Case("mean", (x, _labels_for(x, rng)), {}, summands=x.shape[0] * N_CLASSES),
        Case("out_of_range_target", (x[:2], np.array([5, -1])), {"reduction": "none"}),
        Case("unbatched", (x[0], np.array(2)), {}, summands=N_CLASSES),
    ]
    return cases


def _multiclass_hinge_cases(dtype):
    rng = np.random.default_rng(14)
    channels_last = (rng.normal(0, 3, (2, 3, N_CLASSES)), rng.integers(0, N_CLASSES, (2, 3)))
    return [*_index_margin_cases(dtype, [("m1", {}), ("m0.5", {"margin": 0.5})]),
            Case("axis_last", channels_last, {"reduction": "none", "axis": -1})]


register(Entry("multiclass_hinge_loss", xploss.multiclass_hinge_loss, ref.multiclass_hinge_loss,
               _multiclass_hinge_cases, half_result="float32"))
register(Entry("multi_margin_loss", xploss.multi_margin_loss, ref.multi_margin_loss,
               lambda d: _index_margin_cases(
                   d, [("p1", {}), ("p2", {"p": 2}),
                       ("weighted", {"margin": 0.5,
                                     "weight": np.linspace(0.5, 2.0, N_CLASSES)})]),
               half_result="float32"))


def _multilabel_margin_cases(dtype):
    tables = logit_rows(dtype)
    labels = np.array([[3, 0, -1, 1, 2], [1, -1, -1, -1, -1], [0, 1, 2, 3, 4],
                       [-1, 2, 3, 0, 0], [4, 2, -1, 0, 0], [0, 4, -1, -1, -1]])
    return [
        Case(f"{name}_none", (x, labels[: x.shape[0]]), {"reduction": "none"},
             summands=N_CLASSES * N_CLASSES)
        for name, x in tables.items() if name != "masked"
    ] + [
        Case("masked_none", (tables["masked"], np.array([[2, 4, -1, 0, 0], [4, -1, 0, 0, 0],
                                                        [0, 3, -1, 1, 1]])),
             {"reduction": "none"}, summands=N_CLASSES * N_CLASSES),
        Case("mean", (tables["ordinary"], labels), {}, summands=6 * N_CLASSES * N_CLASSES),
        Case("unbatched", (tables["ordinary"][0], labels[0]), {},
             summands=N_CLASSES * N_CLASSES),
    ]


register(Entry("multilabel_margin_loss", xploss.multilabel_margin_loss,
               ref.multilabel_margin_loss, _multilabel_margin_cases, half_result="float32"))


# --------------------------------------------------------------- regression


def representable(values, dtype):
    """The entries of ``values`` within ``dtype``'s finite range."""
    values = np.asarray(values, dtype=np.float64)
    return values[~(np.abs(values) > FINFO[dtype][3])]


def _pair_tables(dtype):
    """Residual-type inputs: every signed special value against a few targets,
    and pairs that nearly agree (residuals 1e-30, 1e-5 relative, one ulp)."""
    eps = FINFO[dtype][0]
    targets = representable([0.0, 1.0, -3.0, 1e4, -1e30], dtype)
    base = np.array([1.0, -2.5, 1e8 if dtype == "float64" else 1e3, 1e-20])
    near = np.concatenate([base * (1 + eps), base * (1 + 1e-5), base * (1 - 4 * eps), base])
    return grid(signed(dtype), targets), (near, np.tile(base, 4))


def _pair_cases(dtype, options=(("", {}),), weight=False):
    """Cases for a loss of (input, target): the special-value grid, near pairs,
    and mean/sum (weighted when ``weight``), for each option set."""
    grid_xt, near = _pair_tables(dtype)
    rng = np.random.default_rng(12)
    xs, ts = rng.normal(0, 3, (3, 4)), rng.normal(0, 3, (3, 4))
    w = rng.uniform(0.1, 2.0, (3, 4))
    cases = []
    for tag, opts in options:
        cases += [
            Case(f"grid{tag}", grid_xt, {"reduction": "none", **opts}),
            Case(f"near{tag}", near, {"reduction": "none", **opts}),
            Case(f"mean{tag}", (xs, ts), dict(opts), summands=xs.size),
            Case(f"sum{tag}", (xs, ts), {"reduction": "sum", **opts}, summands=xs.size),
        ]
        if weight:
            cases.append(Case(f"weighted_mean{tag}", (xs, ts), {"weight": w, **opts},
                              summands=2 * xs.size))
    return cases


register(Entry("mse_loss", xploss.mse_loss, ref.mse_loss,
               lambda d: _pair_cases(d, [("", {})], weight=True),
               differentiable=(0, 1), half_result="float32"))
register(Entry("l1_loss", xploss.l1_loss, ref.l1_loss,
               lambda d: _pair_cases(d, [("", {})], weight=True),
               differentiable=(0, 1), half_result="float32"))
register(Entry("huber_loss", xploss.huber_loss, ref.huber_loss,
               lambda d: _pair_cases(d, [("", {}), ("_delta0.25", {"delta": 0.25}),
                                         ("_delta1e4", {"delta": 1e4})], weight=True),
               differentiable=(0, 1), half_result="float32"))
register(Entry("smooth_l1_loss", xploss.smooth_l1_loss, ref.smooth_l1_loss,
               lambda d: _pair_cases(d, [("", {}), ("_beta0", {"beta": 0.0}),
                                         ("_beta0.01", {"beta": 0.01})]),
               differentiable=(0, 1), half_result="float32"))
register(Entry("log_cosh_loss", xploss.log_cosh_loss, ref.log_cosh_loss, _pair_cases,
               differentiable=(0, 1), half_result="float32"))
register(Entry("quantile_loss", xploss.quantile_loss, ref.quantile_loss,
               lambda d: _pair_cases(d, [("_q0.1", {"quantile": 0.1}), ("", {}),
                                         ("_q0.9", {"quantile": 0.9})]),
               differentiable=(0, 1), half_result="float32"))


def _mape_cases(dtype):
    sub = FINFO[dtype][2]
    cases = [c for c in _pair_cases(dtype) if not c.name.startswith(("grid", "near"))]
    eps = FINFO[dtype][0]
    base = np.array([1.0, -2.5, 1e3, 1e-12])
    near = np.concatenate([base * (1 + eps), base * (1 + 1e-5), base * (1 - 4 * eps), base])
    cases.append(Case("near", (near, np.tile(base, 4)), {"reduction": "none"}))
    # d/dy = 100·x/y²: autodiff squares y, which flushes to 0 below 1e-19 in
    # float32 on FTZ backends (the exact derivative is finite).
    cases.append(Case("near_tiny_target", (1e-20 * (1 + np.array([eps, 1e-5, 0.0])),
                                           np.full(3, 1e-20)), {"reduction": "none"},
                      no_grad=(1,)))
    x = signed(dtype)
    targets = representable([0.0, 1.0, -3.0, 1e-30, 1e4, -1e30, FINFO[dtype][3]], dtype)
    cases.append(Case("grid", grid(x, targets), {"reduction": "none"}))
    # d/dx = 100/|y| exceeds the float range for a subnormal y.
    cases.append(Case("subnormal_target", grid(x[np.abs(x) < 1e4], [sub, -3 * sub]),
                      {"reduction": "none"}, no_grad=(0, 1)))
    return cases


register(Entry("mape_loss", xploss.mape_loss, ref.mape_loss, _mape_cases,
               differentiable=(0, 1), half_result="float32"))


def _msle_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    vals = np.unique(representable([-1.0, -1 + eps / 2, -0.5, -1e-8, 0.0, sub, tiny, 1e-8,
                                    0.5, 1.0, 3.0, 1e4, 1e30, 1e300, big], dtype))
    near_base = representable([0.5, 3.0, 1e3, -0.5, 1e30], dtype)
    near = np.concatenate([near_base * (1 + eps), near_base * (1 + 1e-5), near_base])
    rng = np.random.default_rng(13)
    xs, ts = rng.uniform(-0.9, 20, (3, 4)), rng.uniform(-0.9, 20, (3, 4))
    return [
        # d/dx = 2·diff/(1 + x) exceeds the float range next to x = -1.
        Case("grid", grid(vals, vals), {"reduction": "none"}, no_grad=(0, 1)),
        Case("grid_interior", grid(vals[2:], vals[2:]), {"reduction": "none"}),
        Case("near", (near, np.tile(near_base, 3)), {"reduction": "none"}),
        Case("below_minus_one", (arr(-1.5, 0.5, -2.0), arr(0.5, -1.5, -2.0)),
             {"reduction": "none"}),
        Case("mean", (xs, ts), {}, summands=xs.size),
    ]


register(Entry("msle_loss", xploss.msle_loss, ref.msle_loss, _msle_cases,
               differentiable=(0, 1), half_result="float32"))


def _terms_scale(per_element):
    """A scale for losses written as a difference of terms: the sum of the terms'
    magnitudes per element (the loss's condition), summed or averaged like the loss."""
    def scale(args, kwargs, exact):
        with np.errstate(all="ignore"):
            s = np.asarray(per_element(*[np.asarray(a, np.float64) if isinstance(a, np.ndarray)
                                         else a for a in args], **kwargs), dtype=np.float64)
        reduction = kwargs.get("reduction", "mean")
        if reduction == "sum":
            s = np.sum(s)
        elif reduction == "mean":
            s = np.mean(s) if s.size else 0.0
        return np.maximum(s, np.abs(exact))
    return scale


def _stirling_terms(t):
    ts = np.where(t > 1, t, 2.0)
    return np.where(t > 1, np.abs(ts * np.log(ts)) + ts + np.abs(0.5 * np.log(2 * np.pi * ts)), 0)


def _poisson_terms(x, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
    if log_input:
        s = np.exp(x) + np.abs(np.where(t == 0, 0.0, t * x))
    else:
        s = np.abs(x) + np.abs(np.where(t == 0, 0.0, t * np.log(x + eps)))
    return s + (_stirling_terms(t) if full else 0)


def _poisson_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    counts = representable([0.0, 1.0, 2.0, 3.5, 10.0, 1e4, 1e30], dtype)
    rates = np.array([v for v in magnitudes(dtype) if v < big / 2])
    rng = np.random.default_rng(14)
    xs, ts = rng.normal(0, 2, (3, 4)), rng.poisson(3.0, (3, 4)).astype(float)
    cases = []
    for full in (False, True):
        tag = "_full" if full else ""
        cases += [
            Case(f"log_grid{tag}", grid(signed(dtype), counts),
                 {"reduction": "none", "full": full}),
            # A count of 1e30 over a rate of 1e-8 puts d/dx near -1e38, at the top of
            # float32's range: its gradient is checked in the float64 tables only.
            Case(f"rate_grid{tag}", grid(rates[rates >= 1e-30], counts if dtype ==
                                         "float64" else counts[counts < 1e29]),
                 {"reduction": "none", "full": full, "log_input": False}),
            # d/dx = 1 - y/x exceeds the float range for a subnormal rate with eps = 0.
            Case(f"rate_grid_eps0{tag}", grid(rates, counts),
                 {"reduction": "none", "full": full, "log_input": False, "eps": 0.0},
                 no_grad=(0,)),
            Case(f"mean{tag}", (xs, ts), {"full": full}, summands=2 * xs.size),
        ]
    cases.append(Case("sum", (portable(mpmath.exp, xs), ts),
                      {"reduction": "sum", "log_input": False}, summands=2 * xs.size))
    return cases


register(Entry("poisson_nll_loss", xploss.poisson_nll_loss, ref.poisson_nll_loss,
               _poisson_cases, differentiable=(0, 1), half_result="float32",
               scale=_terms_scale(_poisson_terms)))


def _gaussian_terms(x, t, var, full=False, eps=1e-6, reduction="mean"):
    v = np.asarray(var, np.float64)
    if v.shape != np.shape(x) and v.shape == np.shape(x)[:-1]:
        v = v[..., None]
    v = np.maximum(np.broadcast_to(v, np.shape(x)), eps)
    d = np.abs(x - t)
    return 0.5 * (np.abs(np.log(v)) + d * (d / v)) + (0.5 * np.log(2 * np.pi) if full else 0)


def _gaussian_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    variances = representable([0.0, sub, tiny, 1e-8, 1e-6, 0.5, 1.0, 10.0, 1e30, big, -1.0],
                              dtype)
    residuals = representable([0.0, 1e-30, 1e-5, 0.5, 1.0, -3.0, 1e4, -1e30, big / 2], dtype)
    x_grid, v_grid = grid(residuals, variances)
    rng = np.random.default_rng(15)
    xs, ts = rng.normal(0, 3, (3, 4)), rng.normal(0, 3, (3, 4))
    vs = rng.uniform(0.1, 4.0, (3, 4))
    cases = []
    for full in (False, True):
        tag = "_full" if full else ""
        cases += [
            # d/dvar = (1/v - d²/v²)/2 exceeds the float range for large residuals
            # over small variances (where the loss itself is still finite).
            Case(f"grid{tag}", (x_grid, np.zeros_like(x_grid), v_grid),
                 {"reduction": "none", "full": full}, no_grad=(2,)),
            # Without a floor, a zero variance has no defined loss: left out.
            Case(f"grid_eps0{tag}", (x_grid[:, 1:], np.zeros_like(x_grid[:, 1:]), v_grid[:, 1:]),
                 {"reduction": "none", "full": full, "eps": 0.0}, no_grad=(0, 1, 2)),
            Case(f"mean{tag}", (xs, ts, vs), {"full": full}, summands=2 * xs.size),
        ]
    cases += [
        Case("ordinary", (xs, ts, vs), {"reduction": "none"}),
        Case("row_variance", (xs, ts, vs[:, 0]), {"reduction": "none"}),
        Case("broadcast_variance", (xs, ts, vs[:, :1]), {"reduction": "sum"},
             summands=2 * xs.size),
    ]
    return cases


register(Entry("gaussian_nll_loss", xploss.gaussian_nll_loss, ref.gaussian_nll_loss,
               _gaussian_cases, differentiable=(0, 1, 2), half_result="float32",
               scale=_terms_scale(_gaussian_terms)))


# ---------------------------------------------------------------- embedding


def _vector_pairs(dtype):
    """(x1, x2) rows of 3-vectors: a vector with itself across the whole range
    (1e20, 1e-30, near finfo.max, subnormal), zero vectors, orthogonal, opposite
    and nearly parallel pairs, and random ones."""
    eps, tiny, sub, big = FINFO[dtype]
    rng = np.random.default_rng(17)
    # (A subnormal vector has derivatives ~1/|x| beyond the float range: it is
    # in _cosine_cases' "subnormal" case.)
    selves = [[1e20, 1e20, 0.0], [1e-30, 1e-30, 1e-30], [big / 2, big / 2, -big / 2],
              [tiny, -tiny, 3 * tiny], [1.0, 2.0, 3.0], [1e-30, 1.0, 1e30]]
    selves = [r for r in selves if max(abs(v) for v in r) <= big]
    rows1 = [*selves, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, -2.0, 0.5],
             [1.0, 1e-5, 0.0], [3.0, 4.0, 0.0]]
    rows2 = [*selves, [0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [0.0, 1.0, 0.0], [-1.0, 2.0, -0.5],
             [1.0, 0.0, 0.0], [3.0, 4.0 * (1 + 4 * eps), 0.0]]
    a, b = np.array(rows1), np.array(rows2)
    return (np.concatenate([a, rng.normal(0, 3, (6, 3))]),
            np.concatenate([b, rng.normal(0, 3, (6, 3))]))


def _dot_scale(args, kwargs, exact):
    """Σ|x1_i x2_i| / (|x1| |x2|): the condition of the dot product (the cosine of
    nearly orthogonal vectors cancels), per vector, from the scaled vectors."""
    x1, x2 = (np.asarray(a, np.float64) for a in args[:2])
    axis = kwargs.get("axis", -1)
    with np.errstate(all="ignore"):
        u1 = x1 / np.max(np.abs(x1), axis=axis, keepdims=True)
        u2 = x2 / np.max(np.abs(x2), axis=axis, keepdims=True)
        s = np.sum(np.abs(u1 * u2), axis=axis) / np.sqrt(
            np.sum(u1 * u1, axis=axis) * np.sum(u2 * u2, axis=axis))
    return np.maximum(np.nan_to_num(s), np.abs(exact))


def _cosine_cases(dtype):
    a, b = _vector_pairs(dtype)
    rng = np.random.default_rng(18)
    return [
        Case("pairs", (a, b), summands=3),
        Case("axis0", (a.T, b.T), {"axis": 0}, summands=3),
        Case("broadcast", (a, b[:1]), summands=3),
        Case("nan", (arr([NAN, 1.0, 0.0]), arr([1.0, 1.0, 1.0])), summands=3),
        Case("subnormal", (arr([FINFO[dtype][2], 2 * FINFO[dtype][2], 0.0], [1.0, 1.0, 0.0]),
                           arr([FINFO[dtype][2], 2 * FINFO[dtype][2], 0.0],
                               [3 * FINFO[dtype][2], 0.0, 0.0])), summands=3, no_grad=(0, 1)),
        Case("long", (rng.normal(0, 1, (4, 64)), rng.normal(0, 1, (4, 64))), summands=64),
    ]


register(Entry("cosine_similarity", xploss.cosine_similarity, ref.cosine_similarity,
               _cosine_cases, differentiable=(0, 1), scale=_dot_scale))


def _pull_scale(args, kwargs, exact):
    """For 1 - cos = |û1 - û2|²/2: the unit vectors round by eps in each component,
    so the loss is good to about eps·|û1 - û2|·sqrt(D) = eps·sqrt(2·loss·D); and the
    dot-product condition for the push side."""
    x1, x2, y = (np.asarray(a, np.float64) for a in args)
    with np.errstate(all="ignore"):
        theta = np.sqrt(2 * np.abs(np.asarray(exact, np.float64)) * x1.shape[-1])
        s = np.maximum(_dot_scale((x1, x2), {}, exact), theta)
    reduction = kwargs.get("reduction", "mean")
    if reduction == "none":
        return s
    return np.maximum(np.abs(exact), np.sum(s) if reduction == "sum" else np.mean(s))


def _cosine_embedding_cases(dtype):
    a, b = _vector_pairs(dtype)
    n = len(a)
    rng = np.random.default_rng(19)
    pull, push = np.ones(n), -np.ones(n)
    return [
        Case("pull", (a, b, pull), {"reduction": "none"}, summands=3),
        Case("push", (a, b, push), {"reduction": "none"}, summands=3),
        Case("push_margin", (a, b, push), {"reduction": "none", "margin": 0.5}, summands=3),
        Case("mixed_mean", (a, b, rng.choice([1.0, -1.0], n)), {"margin": -0.2},
             summands=3 * n),
        Case("other_labels", (a[:3], b[:3], arr(0.0, 2.0, 1.0)), {"reduction": "none"},
             summands=3),
    ]


register(Entry("cosine_embedding_loss", xploss.cosine_embedding_loss,
               ref.cosine_embedding_loss, _cosine_embedding_cases, differentiable=(0, 1),
               half_result="float32", scale=_pull_scale))


def _ranking_cases(dtype):
    x = signed(dtype)
    rng = np.random.default_rng(20)
    xs, ys = rng.normal(0, 2, (3, 4)), rng.normal(0, 2, (3, 4))
    labels = rng.choice([1.0, -1.0], (3, 4))
    g1, g2 = grid(x, [0.0, 1.0, -2.5, 1e4])
    cases = []
    for y in (1.0, -1.0):
        for margin in (0.0, 1.0):
            cases.append(Case(f"grid_y{y:g}_m{margin:g}", (g1, g2, np.full(g1.shape, y)),
                              {"reduction": "none", "margin": margin}))
    cases += [Case("mean", (xs, ys, labels), {"margin": 0.5}, summands=xs.size),
              Case("sum", (xs, ys, labels), {"reduction": "sum"}, summands=xs.size)]
    return cases


register(Entry("margin_ranking_loss", xploss.margin_ranking_loss, ref.margin_ranking_loss,
               _ranking_cases, differentiable=(0, 1), half_result="float32"))


def _hinge_embedding_cases(dtype):
    x = signed(dtype)
    rng = np.random.default_rng(21)
    xs = np.abs(rng.normal(0, 2, (3, 4)))
    labels = rng.choice([1.0, -1.0], (3, 4))
    return [
        Case("grid", grid(x, [1.0, -1.0, 0.0, 0.5]), {"reduction": "none"}),
        Case("grid_margin", grid(x, [1.0, -1.0]), {"reduction": "none", "margin": 2.5}),
        Case("mean", (xs, labels), {}, summands=xs.size),
        Case("sum", (xs, labels), {"reduction": "sum", "margin": 0.5}, summands=xs.size),
    ]


register(Entry("hinge_embedding_loss", xploss.hinge_embedding_loss, ref.hinge_embedding_loss,
               _hinge_embedding_cases, half_result="float32"))


# --------------------------------------------------------- distances and triplets

NORMS = (2.0, 1.0, 3.0, 0.5, INF)


def _np_distance(x1, x2, p=2.0, eps=1e-6):
    """Float64 p-norm distance |x1 - x2 + eps|_p (scaled: no overflow), for scales."""
    with np.errstate(all="ignore"):
        v = np.abs(x1 - x2 + eps)
        m = np.max(v, axis=-1, keepdims=True)
        u = np.nan_to_num(v / np.where(m > 0, m, 1.0))
        s = np.max(u, axis=-1) if p == INF else np.sum(u ** p, axis=-1) ** (1 / p)
        return np.nan_to_num(m[..., 0] * s)


def _distance_cases(dtype):
    a, b = _vector_pairs(dtype)
    eps, tiny, sub, big = FINFO[dtype]
    rng = np.random.default_rng(22)
    # Differences near the top of the range: torch's plain norm overflows there.
    far = arr([big / 4, big / 4, -big / 4], [big / 2, 0.0, 0.0])
    cases = []
    for p in NORMS:
        cases += [Case(f"pairs_p{p:g}", (a, b), {"p": p}, summands=3),
                  Case(f"pairs_p{p:g}_eps0", (a, b), {"p": p, "eps": 0.0}, summands=3),
                  Case(f"far_p{p:g}", (far, -far), {"p": p, "eps": 0.0}, summands=3)]
    cases += [
        Case("keepdim", (a, b), {"keepdim": True}, summands=3),
        Case("broadcast", (a, b[:1]), {"eps": 2.0**-20}, summands=3),
        Case("long", (rng.normal(0, 1, (4, 64)), rng.normal(0, 1, (4, 64))), summands=64),
        Case("nan", (arr([NAN, 1.0, 0.0]), arr([1.0, 1.0, 1.0])), summands=3),
    ]
    return cases


register(Entry("pairwise_distance", xploss.pairwise_distance, ref.pairwise_distance,
               _distance_cases, differentiable=(0, 1), reference_takes_dtype=True))


def _triplet_terms(a, pos, neg, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    """margin + d(a, p) + d(a, n) (+ d(p, n) with swap): the condition of the margin sum."""
    s = margin + _np_distance(a, pos, p, eps) + _np_distance(a, neg, p, eps)
    return s + _np_distance(pos, neg, p, eps) if swap else s


def _triplets(dtype):
    """(anchor, positive, negative) rows: random, identical anchor and positive,
    zero vectors, margins that nearly cancel, and vectors near overflow/underflow."""
    eps, tiny, sub, big = FINFO[dtype]
    rng = np.random.default_rng(23)
    a, pos, neg = (rng.normal(0, 1, (6, 3)) for _ in range(3))
    special_a = arr([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1e-30, 1e-30, 0.0],
                    [big / 8, -big / 8, 0.0], [3.0, 0.0, 0.0])
    special_p = arr([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [2e-30, 0.0, 0.0],
                    [big / 8, big / 8, 0.0], [0.0, 0.0, 0.0])
    special_n = arr([0.0, 0.0, 0.0], [1.0, 2.0, 4.0], [0.0, 1e-30, 0.0],
                    [-big / 8, -big / 8, 0.0], [0.0, 4.0, 0.0])
    return (np.concatenate([a, special_a]), np.concatenate([pos, special_p]),
            np.concatenate([neg, special_n]))


def _triplet_cases(dtype, with_norm=True):
    a, pos, neg = _triplets(dtype)
    n = len(a)
    cases = [Case("none", (a, pos, neg), {"reduction": "none"}, summands=6),
             Case("swap", (a, pos, neg), {"reduction": "none", "swap": True}, summands=6),
             Case("margin", (a, pos, neg), {"reduction": "none", "margin": 0.25}, summands=6),
             Case("mean", (a, pos, neg), {"margin": 2.0}, summands=6 * n),
             Case("sum_swap", (a, pos, neg), {"reduction": "sum", "swap": True},
                  summands=6 * n),
             Case("single", (a[0], pos[0], neg[0]), {}, summands=6),
             # d(a, p) = d(a, n) - margin exactly: the margin cancels to 0.
             Case("cancel", (arr([0.0, 0.0]), arr([3.0, 4.0]), arr([0.0, 6.0])),
                  {"reduction": "none", "eps": 0.0} if with_norm else {"reduction": "none"},
                  summands=4)]
    if with_norm:
        # For p < 1 the derivative at a vector near finfo.max with a component
        # near eps passes through m·|u|^(p-1) (m the largest magnitude), beyond
        # the range though the derivative itself is finite (documented): that
        # row is left out there.
        below_max = np.max(np.abs(np.stack([a, pos, neg])), axis=(0, 2)) < 1e30
        for p in NORMS[1:]:
            rows = below_max if p < 1 else slice(None)
            cases.append(Case(f"p{p:g}", (a[rows], pos[rows], neg[rows]),
                              {"reduction": "none", "p": p}, summands=6))
        cases.append(Case("eps0", (a, pos, neg), {"reduction": "none", "eps": 0.0}, summands=6))
    return cases


register(Entry("triplet_margin_loss", xploss.triplet_margin_loss, ref.triplet_margin_loss,
               _triplet_cases, differentiable=(0, 1, 2), half_result="float32",
               scale=_terms_scale(_triplet_terms), reference_takes_dtype=True))
register(Entry("triplet_margin_with_distance_loss", xploss.triplet_margin_with_distance_loss,
               ref.triplet_margin_with_distance_loss,
               lambda dtype: _triplet_cases(dtype, with_norm=False), differentiable=(0, 1, 2),
               half_result="float32", scale=_terms_scale(_triplet_terms),
               reference_takes_dtype=True))


def _ntxent_scale(args, kwargs, exact):
    """Mean over the positive pairs of term + sigmoid(z)·(|L| + |s| + 2/tau), with
    z = L - s the softplus argument: each term plus its sensitivity to the
    rounding of the similarities s = cos/tau (cosines good to ~eps absolute)."""
    e, labels = np.asarray(args[0], np.float64), np.asarray(args[1])
    tau = kwargs.get("temperature", 0.07)
    out = []
    with mpmath.workdps(30):
        for term, log_neg, s in ref._ntxent_pairs(e, labels.tolist(), ref.mpf(tau)):
            if log_neg == -INF:
                out.append(float(term))
                continue
            z = float(log_neg - s)
            sig = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
            out.append(float(term) + sig * (abs(float(log_neg)) + abs(float(s)) + 2 / tau))
    return np.maximum(np.mean(out) if out else 0.0, np.abs(exact))


def _ntxent_cases(dtype):
    eps, tiny, sub, big = FINFO[dtype]
    rng = np.random.default_rng(24)
    e = rng.normal(0, 1, (8, 4))
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 3])
    # Confident: each positive pair nearly parallel, the negatives far apart.
    directions = np.eye(4)[[0, 0, 1, 1, 2, 2, 3, 3]]
    confident = directions + rng.normal(0, 1e-3, (8, 4))
    pairs = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    zero = e.copy()
    zero[2] = 0.0
    scaled = [("huge", big / 16), ("tiny", 1e-30)]
    cases = [Case("random", (e, labels), summands=12),
             Case("random_t05", (e, labels), {"temperature": 0.5}, summands=12),
             Case("random_t2", (e, labels), {"temperature": 2.0}, summands=12),
             Case("confident", (confident, pairs), {"temperature": 0.05}, summands=12),
             Case("zero_embedding", (zero, labels), summands=12),
             Case("no_positives", (e, np.arange(8)), summands=1),
             Case("no_negatives", (e[:4], np.zeros(4, dtype=np.int64)), summands=1)]
    cases += [Case(name, (e * f, labels), summands=12) for name, f in scaled]
    return cases


register(Entry("ntxent_loss", xploss.ntxent_loss, ref.ntxent_loss, _ntxent_cases,
               half_result="float32", scale=_ntxent_scale, reference_takes_dtype=True))


# ----------------------------------------------------------------- segmentation


def _masks(dtype):
    """(p, t) of shape (3, 2, 4): soft predictions against binary masks, a perfect
    prediction, an empty perfect one, and predictions at 0, 1 - ulp, tiny."""
    eps, tiny, sub, big = FINFO[dtype]
    rng = np.random.default_rng(25)
    t = (rng.uniform(size=(3, 2, 4)) > 0.5) * 1.0
    p = rng.uniform(size=(3, 2, 4))
    t[1], p[1] = [[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]], [[1.0, 0.0, 1.0, 0.0],
                                                              [0.0, 0.0, 1.0, 1.0]]
    t[2], p[2] = 0.0, 0.0
    near = arr([1 - eps / 2, tiny, 1e-30, 0.25], [1.0, sub, 0.0, 0.75])
    target = arr([1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0])
    return (np.concatenate([p, near[None]]), np.concatenate([t, target[None]]))


def _overlap_cases(dtype, options):
    p, t = _masks(dtype)
    cases = []
    for suffix, extra in options:
        cases += [
            Case(f"global{suffix}", (p, t), extra, summands=2 * p.size),
            Case(f"per_sample{suffix}", (p, t), {"axis": (1, 2), "reduction": "none", **extra},
                 summands=16),
            Case(f"per_row{suffix}", (p, t), {"axis": -1, "reduction": "none", **extra},
                 summands=8),
            Case(f"no_smooth{suffix}", (p, t),
                 {"axis": (1, 2), "reduction": "none", "smooth": 0.0, **extra}, summands=16),
            Case(f"mean{suffix}", (p, t), {"axis": (1, 2), **extra}, summands=16 * len(p)),
        ]
    bad = arr([0.5, 1.5], [0.5, 0.5])
    cases.append(Case("outside_unit_interval", (bad, arr([1.0, 0.0], [1.0, 0.0])),
                      {"axis": 1, "reduction": "none"}, summands=4))
    return cases


register(Entry("dice_loss", xploss.dice_loss, ref.dice_loss,
               lambda dtype: _overlap_cases(dtype, (("", {}),)), differentiable=(0, 1),
               half_result="float32", reference_takes_dtype=True))
register(Entry("tversky_loss", xploss.tversky_loss, ref.tversky_loss,
               lambda dtype: _overlap_cases(dtype, (("", {}),
                                                    ("_fn", {"alpha": 0.25, "beta": 0.75}),
                                                    ("_fp_only", {"alpha": 1.0, "beta": 0.0}))),
               differentiable=(0, 1), half_result="float32", reference_takes_dtype=True))


# ------------------------------------------------------------------ sequence


def _log_softmax_np(x):
    """float64 log-softmax along the last axis for building inputs: the
    reference's, rounded, so the same on every machine (see :func:`portable`)."""
    return ref.log_softmax(x).astype(np.float64)


def _ctc_inputs(rng, n_frames, n_classes, input_lengths, target_lengths, *, width=None,
                blank=0, scale=2.0):
    """(log_probs (T, N, C), padded targets (N, S)) with random labels != blank."""
    n = len(input_lengths)
    width = max(target_lengths) if width is None else width
    lp = _log_softmax_np(rng.normal(0.0, scale, (n_frames, n, n_classes)))
    labels = [c for c in range(n_classes) if c != blank]
    targets = rng.choice(labels, (n, width)).astype(np.int64)
    return lp, targets, np.array(input_lengths), np.array(target_lengths)


def _ctc_confident(gap):
    """Log-probs whose arg-max path spells the target: each frame gives its class
    a margin ``gap`` over the rest (half of it in the last sample), so the loss is
    about T·C·e^-gap (~1e-11 at 30)."""
    paths = [[1, 1, 0, 2, 2, 0, 3, 3], [1, 0, 2, 2, 2, 0, 3, 0], [4, 4, 4, 4, 4, 4, 4, 4]]
    logits = np.zeros((8, 3, 5))
    for n, path in enumerate(paths):
        for t, c in enumerate(path):
            logits[t, n, c] = gap
    logits[:, 2, :] *= 0.5
    return (_log_softmax_np(logits), np.array([[1, 2, 3], [1, 2, 3], [4, 0, 0]]),
            np.array([8, 8, 8]), np.array([3, 3, 1]))


def _ctc_cases(dtype):
    """Nearly every case has N = 3, C = 5 and S = 3, so the recursion's arrays have
    one shape across cases: JAX compiles each eager operation once per shape, which
    dominates the run time otherwise."""
    rng = np.random.default_rng(31)
    none = {"reduction": "none"}
    small = _ctc_inputs(rng, 4, 5, [4, 3, 2], [3, 1, 1])
    ordinary = _ctc_inputs(rng, 8, 5, [8, 7, 5], [3, 2, 1])
    long = _ctc_inputs(rng, 24, 5, [24, 19, 11], [3, 3, 2], scale=0.5)
    # Repeated labels need a blank between them: [2, 2, 2] needs 5 frames.
    repeated = (_log_softmax_np(rng.normal(0.0, 1.0, (8, 3, 5))),
                np.array([[2, 2, 2], [2, 2, 2], [1, 1, 3]]), np.array([5, 8, 4]),
                np.array([3, 3, 3]))
    # Logits of ±1e4 and ±1e30 (and ±1e300 in float64): log-probs down to -2e30.
    h = 1e300 if dtype == "float64" else 1e30
    ext_logits = np.array([[1e4, -1e4, 0.0, 1.0, -1.0], [h, -h, 0.0, 1e30, 2.0],
                           [-1e30, 5.0, h, 0.0, 1e4], [0.0, 1e4, -1e4, -h, 3.0],
                           [2.0, 1.0, 0.0, -1.0, -2.0], [0.0, 0.0, 1e4, 0.0, -h],
                           [h, 0.0, -h, 1.0, 0.0], [3.0, -h, 0.0, 0.0, 1e4]])
    extreme = (_log_softmax_np(np.stack([ext_logits, ext_logits[::-1], -ext_logits], axis=1)),
               np.array([[1, 2, 0], [2, 3, 4], [4, 4, 1]]), np.array([8, 6, 8]),
               np.array([2, 3, 3]))
    # -inf log-probabilities (probability 0) that leave some alignments open.
    masked_lp = _log_softmax_np(rng.normal(0.0, 1.0, (8, 3, 5)))
    masked_lp[0, 0, 2] = masked_lp[2, :, 0] = masked_lp[4, 1, 3] = masked_lp[:, 2, 4] = -INF
    masked = (masked_lp, np.array([[1, 2, 3], [3, 1, 1], [1, 2, 0]]), np.array([8, 8, 7]),
              np.array([3, 3, 2]))
    # Too few frames ([1, 1] needs 3, [1, 2, 3] needs 3), and every path through a
    # probability-0 label closed.
    imp_lp = _log_softmax_np(rng.normal(0.0, 1.0, (8, 3, 5)))
    imp_lp[:, 2, 3] = -INF
    impossible = (imp_lp, np.array([[1, 1, 0], [1, 2, 3], [3, 1, 0]]), np.array([2, 2, 8]),
                  np.array([2, 3, 2]))
    # Invalid values give NaN for their sample: a label equal to the blank or out
    # of range; an input length above T, a target length above S, a NaN
    # log-probability of a used class.
    inv_lp, inv_t, _, _ = _ctc_inputs(rng, 8, 5, [8] * 3, [3] * 3)
    inv_t[1, 0], inv_t[2, 1] = 0, 5
    invalid_labels = (inv_lp, inv_t, np.array([8, 8, 8]), np.array([3, 3, 3]))
    inv_lp = inv_lp.copy()
    inv_lp[2, 2, int(inv_t[2, 0])] = NAN
    inv_t = inv_t.copy()
    inv_t[2] = [1, 2, 3]
    invalid_lengths = (inv_lp, inv_t, np.array([9, 8, 8]), np.array([3, 4, 3]))
    concat_lp, padded_t, concat_il, concat_tl = _ctc_inputs(rng, 8, 5, [8, 6, 5], [2, 0, 1])
    concatenated = np.concatenate([padded_t[i, :k] for i, k in enumerate(concat_tl)])
    unbatched = (ordinary[0][:, 0], ordinary[1][0], np.array(8), np.array(3))
    blank_last = _ctc_inputs(rng, 8, 5, [8, 7, 6], [3, 2, 2], blank=4)
    empty = (ordinary[0], np.zeros((3, 0), np.int64), np.array([8, 3, 0]), np.array([0, 0, 0]))
    zero_len = (ordinary[0], ordinary[1], np.array([0, 0, 3]), np.array([0, 1, 1]))
    return [
        # First: the case compiled in the quick profile, kept small (torch.compile
        # time grows with T).
        Case("small", small, none),
        Case("ordinary", ordinary, none),
        Case("ordinary_mean", ordinary, {}, summands=3),
        Case("ordinary_sum", ordinary, {"reduction": "sum"}, summands=3),
        Case("long", long, none),
        Case("confident", _ctc_confident(30.0), none),
        *([Case("extreme_logits", extreme, none)]  # log-probs to -2e30: not in float16
          if np.max(np.abs(extreme[0][np.isfinite(extreme[0])])) <= FINFO[dtype][3] else []),
        Case("masked", masked, none),
        Case("repeated_labels", repeated, none),
        Case("impossible", impossible, none),
        Case("impossible_zero_infinity", impossible, {"reduction": "none", "zero_infinity": True}),
        Case("impossible_mean_zero_infinity", impossible, {"zero_infinity": True}, summands=3),
        Case("empty_targets", empty, none),
        Case("zero_input_length", zero_len, none),
        Case("concatenated", (concat_lp, concatenated, concat_il, concat_tl), none),
        Case("concatenated_mean", (concat_lp, concatenated, concat_il, concat_tl), {},
             summands=3),
        Case("unbatched", unbatched, none),
        Case("unbatched_mean", unbatched, {}),
        Case("blank_last", blank_last, {"reduction": "none", "blank": 4}),
        Case("invalid_labels", invalid_labels, none),
        Case("invalid_lengths", invalid_lengths, none),
    ]


register(Entry("ctc_loss", xploss.ctc_loss, ref.ctc_loss, _ctc_cases, half_result="float32",
               unrolled=True))
