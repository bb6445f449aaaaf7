"""Numerical-policy points of DESIGN.md §3 that the conformance tables do not
express as a value against a reference: exact zeros in gradients, derivative
accuracy, dtype policy, warnings, and argument errors."""

import math
import warnings

import mpmath
import numpy as np
import pytest
from xploss.conformance import load_catalog, references
from xploss.conformance.runner import flush_threshold

import xploss

REGISTRY = load_catalog()


def _grad(target, fn, *args, argnum=0):
    b = target.backend
    return b.to_numpy(b.grad(fn, args, argnum))


# ---------------------------------------------------------------- ignored rows


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_ignored_rows_give_exact_zero_gradient_even_with_nan_logits(diff_target, smoothing):
    b, t = diff_target.backend, diff_target
    logits = b.asarray(np.array([[np.nan, 1.0, 2.0], [0.5, -1.0, 3.0], [-np.inf, np.inf, 0.0]]),
                       t, "float64")
    labels = b.asarray(np.array([-100, 2, -100]), t)
    xp = b.namespace()

    def loss(x):
        return xploss.cross_entropy(x, labels, label_smoothing=smoothing)

    value = b.to_numpy(loss(logits))
    g = _grad(t, loss, logits)
    assert np.isfinite(value)
    assert np.all(g[[0, 2]] == 0.0)  # exactly zero, not NaN
    assert np.all(np.isfinite(g[1]))
    assert np.any(g[1] != 0)
    xp.sum(logits)  # the namespace is the input's


def test_nll_ignored_rows_exact_zero_gradient(diff_target):
    b, t = diff_target.backend, diff_target
    log_probs = b.asarray(np.array([[np.nan, -np.inf], [-0.1, -2.4]]), t, "float32")
    labels = b.asarray(np.array([-100, 0]), t)
    g = _grad(t, lambda x: xploss.nll_loss(x, labels), log_probs)
    assert np.array_equal(g, np.array([[0.0, 0.0], [-1.0, 0.0]], dtype=np.float32))


@pytest.mark.parametrize("fn", [xploss.cross_entropy, xploss.nll_loss])
def test_mean_over_zero_valid_targets_is_zero_with_zero_gradient(diff_target, fn):
    b, t = diff_target.backend, diff_target
    x = b.asarray(np.array([[0.3, -1.0], [np.nan, 2.0]]), t, "float64")
    labels = b.asarray(np.array([-100, -100]), t)
    assert b.to_numpy(fn(x, labels)) == 0.0
    assert np.all(_grad(t, lambda v: fn(v, labels), x) == 0.0)


def test_empty_batch_mean_is_zero(target):
    b = target.backend
    x = b.asarray(np.zeros((0, 4)), target, "float32")
    y = b.asarray(np.zeros((0,), dtype=np.int64), target)
    assert b.to_numpy(xploss.cross_entropy(x, y)) == 0.0
    assert b.to_numpy(xploss.binary_cross_entropy_with_logits(x, x)) == 0.0


# ---------------------------------------------------------------- reductions

BIG = float(np.finfo(np.float64).max)


def _exact(expr):
    """An mpmath expression at 60 digits, rounded once to float64."""
    with mpmath.workdps(60):
        return float(expr())


def _float64_args(target, arrays):
    """``arrays`` on ``target``, floating ones as float64 (integer ones kept);
    skips targets without float64."""
    b = target.backend
    if "float64" not in b.dtypes(target):
        pytest.skip("float64 cases")
    return [b.asarray(np.array(a), target, None if np.array(a).dtype.kind == "i" else "float64")
            for a in arrays]


def _softmax_rows_mean(rows, targets, term):
    """The mean over rows of sum_c term(q_c, p_c, -log p_c), p = softmax(row)."""
    total = 0
    for row, q in zip(rows, targets, strict=True):
        x = [mpmath.mpf(v) for v in row]
        m = max(x)
        lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in x))
        total += mpmath.fsum(term(mpmath.mpf(c), mpmath.exp(v - lse), lse - v)
                             for v, c in zip(x, q, strict=True))
    return total / len(rows)


# Two classes whose terms are near max: the row's loss (1.8·max) overflows, the
# batch's mean does not.
FAR_ROWS = ([[0.9 * BIG, -0.9 * BIG, -0.9 * BIG], [0.0, 0.0, 0.0]],
            [[0.0, 0.5, 0.5], [0.25, 0.25, 0.5]])

# Class indices with label smoothing 0.75 over four classes (q exact in
# binary): three classes with terms 0.1875·1.8·max make the first row's loss
# 1.0125·max, beyond the range; the batch's mean is not.
SMOOTHED_ROWS = ([[0.9 * BIG, -0.9 * BIG, -0.9 * BIG, -0.9 * BIG], [0.0, 0.0, 0.0, 0.0]],
                 [0, 1])
SMOOTHED_Q = [[0.4375, 0.1875, 0.1875, 0.1875], [0.1875, 0.4375, 0.1875, 0.1875]]

# Class-index rows whose losses (about 1.7e308 and 1.2e308) sum beyond max.
BIG_INDEX_ROWS = ([[0.95 * BIG, 0.0], [0.65 * BIG, 0.0]], [1, 1])

REDUCTION_CASES = [
    # (function, arrays, kwargs, mpmath expression of the exact value)
    ("weighted class-index mean with a subnormal weight", xploss.poly1_cross_entropy,
     ([[0.5, -1.0, 2.0]], [2]), {"weight": [1.0, 0.5, 5e-324]},
     lambda: _softmax_rows_mean([[0.5, -1.0, 2.0]], [[0.0, 0.0, 1.0]],
                                lambda q, p, nl: q * (nl + (1 - p)))),
    ("weighted mse mean with subnormal weights", xploss.mse_loss,
     ([0.5, 3.0], [0.0, 0.0]), {"weight": [5e-324, 1e-323]},
     lambda: (mpmath.mpf(0.25) * 1 + 9 * 2) / 3),
    ("class-index cross-entropy: mean of losses whose sum exceeds max", xploss.cross_entropy,
     BIG_INDEX_ROWS, {},
     lambda: _softmax_rows_mean(BIG_INDEX_ROWS[0], [[0.0, 1.0]] * 2, lambda q, p, nl: q * nl)),
    ("nll_loss: the same", xploss.nll_loss, ([[0.0, -0.95 * BIG], [0.0, -0.65 * BIG]], [1, 1]),
     {}, lambda: (0.95 * mpmath.mpf(BIG) + 0.65 * mpmath.mpf(BIG)) / 2),
    ("weighted nll_loss: the same", xploss.nll_loss,
     ([[0.0, -0.95 * BIG], [0.0, -0.65 * BIG]], [1, 1]), {"weight": [1.0, 0.5]},
     lambda: (0.95 * mpmath.mpf(BIG) + 0.65 * mpmath.mpf(BIG)) / 2),
    ("smoothed cross-entropy: a row's loss beyond max, the mean not", xploss.cross_entropy,
     SMOOTHED_ROWS, {"label_smoothing": 0.75},
     lambda: _softmax_rows_mean(SMOOTHED_ROWS[0], SMOOTHED_Q, lambda q, p, nl: q * nl)),
    ("smoothed focal: the same", xploss.softmax_focal_loss, SMOOTHED_ROWS,
     {"label_smoothing": 0.75, "gamma": 2.0},
     lambda: _softmax_rows_mean(SMOOTHED_ROWS[0], SMOOTHED_Q,
                                lambda q, p, nl: q * (1 - p) ** 2 * nl)),
    ("smoothed poly1: the same", xploss.poly1_cross_entropy, SMOOTHED_ROWS,
     {"label_smoothing": 0.75, "epsilon": 1.0},
     lambda: _softmax_rows_mean(SMOOTHED_ROWS[0], SMOOTHED_Q,
                                lambda q, p, nl: q * (nl + (1 - p)))),
    ("smoothed cross-entropy: a one-row mean beyond max is inf", xploss.cross_entropy,
     ([SMOOTHED_ROWS[0][0]], [0]), {"label_smoothing": 0.75}, lambda: mpmath.inf),
    ("soft-label cross-entropy: a row's loss beyond max, the mean not", xploss.cross_entropy,
     FAR_ROWS, {}, lambda: _softmax_rows_mean(*FAR_ROWS, lambda q, p, nl: q * nl)),
    ("soft-label focal: the same", xploss.softmax_focal_loss, FAR_ROWS, {"gamma": 2.0},
     lambda: _softmax_rows_mean(*FAR_ROWS, lambda q, p, nl: q * (1 - p) ** 2 * nl)),
    ("soft-label poly1: the same", xploss.poly1_cross_entropy, FAR_ROWS, {"epsilon": 1.0},
     lambda: _softmax_rows_mean(*FAR_ROWS, lambda q, p, nl: q * (nl + (1 - p)))),
    ("soft-label cross-entropy: the sum is beyond max", xploss.cross_entropy,
     FAR_ROWS, {"reduction": "sum"}, lambda: mpmath.inf),
    ("l1 mean of three terms near max", xploss.l1_loss,
     ([BIG, BIG, 0.5 * BIG], [0.0, 0.0, 0.0]), {},
     lambda: (2 * mpmath.mpf(BIG) + mpmath.mpf(BIG) / 2) / 3),
    ("l1 sum whose partial sums overflow", xploss.l1_loss,
     ([BIG, BIG, BIG], [0.0, 0.0, 0.0]), {"reduction": "sum"},
     lambda: mpmath.inf),
    ("hinge mean of +-max margins", xploss.hinge_loss,
     ([BIG, -BIG], [-1.0, 1.0]), {},
     lambda: (2 * (mpmath.mpf(BIG) + 1)) / 2),
    ("mse mean with a square beyond max", xploss.mse_loss,
     ([2e154, 0.0, 1.0, -3.0], [0.0, 0.0, 0.0, 0.0]), {},
     lambda: (mpmath.mpf(2e154) ** 2 + 1 + 9) / 4),
    ("mse sum with a square beyond max", xploss.mse_loss,
     ([2e154, 0.0, 1.0, -3.0], [0.0, 0.0, 0.0, 0.0]), {"reduction": "sum"},
     lambda: mpmath.inf),
    ("mse mean of squares near max over n, the plain sum overflowing",
     xploss.mse_loss, ([5e153, -5e153, 5e153], [-5e153, 5e153, -5e153]), {},
     lambda: mpmath.mpf(1e154) ** 2),
    ("weighted mse: weight 0 on an overflowing term", xploss.mse_loss,
     ([1e200, 1.0, 2.0], [0.0, 0.0, 0.0]), {"weight": [0.0, 1.0, 1.0]},
     lambda: mpmath.mpf(5) / 2),
    # A zero weight or pos_weight switches a term off, an infinite one included
    # (docs/robustness.md): 0, never 0 * inf = NaN.
    ("bce with logits: pos_weight 0 on an infinite positive term",
     xploss.binary_cross_entropy_with_logits, ([-np.inf, 1.0], [1.0, 0.0]),
     {"pos_weight": [0.0, 1.0], "reduction": "sum"}, lambda: mpmath.log1p(mpmath.e)),
    ("bce with logits: weight 0 on an infinite term",
     xploss.binary_cross_entropy_with_logits, ([-np.inf, 1.0], [0.5, 0.0]),
     {"weight": [0.0, 1.0], "reduction": "sum"}, lambda: mpmath.log1p(mpmath.e)),
    ("nll: class weight 0 on an infinite term", xploss.nll_loss,
     ([[-np.inf, 0.0], [0.0, -2.0]], [0, 1]), {"weight": [0.0, 1.0]}, lambda: 2),
    ("multilabel soft margin: weight x term overflows, its mean does not",
     xploss.multilabel_soft_margin_loss,
     ([[2.0, 3.0]], [[0.0, 0.0]]), {"weight": [0.75 * BIG, 0.75 * BIG]},
     lambda: 0.75 * mpmath.mpf(BIG) * (mpmath.log1p(mpmath.exp(2))
                                       + mpmath.log1p(mpmath.exp(3))) / 2),
    ("weighted mse: weights near max, products beyond it", xploss.mse_loss,
     ([2.0, 3.0], [0.0, 0.0]), {"weight": [BIG, 0.5 * BIG]},
     lambda: (4 * mpmath.mpf(BIG) + 9 * mpmath.mpf(0.5 * BIG)) / (mpmath.mpf(1.5) * BIG)),
    # An infinite term under a zero weight, a weight near max on a zero term:
    # the tiny weight's term is the whole sum, and must not vanish beside them.
    ("weighted huber: a tiny weight beside one near max keeps its term", xploss.huber_loss,
     ([0.0, np.inf, 0.0], [0.0, -1.0, -1.5]), {"weight": [BIG, 0.0, 1e-300], "delta": 2.0,
                                              "reduction": "sum"},
     lambda: mpmath.mpf(1e-300) * mpmath.mpf(1.5) ** 2 / 2),
    ("weighted huber: the same with an infinite term under the tiny weight", xploss.huber_loss,
     ([0.0, np.inf, np.inf], [0.0, -1.0, -1.5]), {"weight": [BIG, 0.0, 1e-300],
                                                 "reduction": "sum"},
     lambda: mpmath.inf),
    # A residual beyond max: the loss of that element overflows, the mean not.
    ("huber mean: a residual beyond max", xploss.huber_loss,
     ([BIG, 0.0], [-0.5 * BIG, 0.0]), {"delta": 0.5},
     lambda: 0.5 * (mpmath.mpf(1.5) * BIG - 0.25) / 2),
    ("smooth l1 mean: a residual beyond max", xploss.smooth_l1_loss,
     ([BIG, 0.0], [-0.5 * BIG, 0.0]), {},
     lambda: (mpmath.mpf(1.5) * BIG - 0.5) / 2),
    ("log-cosh mean: a residual beyond max", xploss.log_cosh_loss,
     ([BIG, 0.0], [-0.5 * BIG, 0.0]), {},
     lambda: (mpmath.mpf(1.5) * BIG - mpmath.log(2)) / 2),
    ("l1 mean: a residual beyond max", xploss.l1_loss,
     ([BIG, 0.0], [-0.5 * BIG, 0.0]), {},
     lambda: mpmath.mpf(1.5) * BIG / 2),
    ("weighted l1 sum: a residual beyond max under a weight below 1/2", xploss.l1_loss,
     ([BIG, 1.0], [-BIG, 0.0]), {"weight": [0.25, 1.0], "reduction": "sum"},
     lambda: mpmath.mpf(0.25) * 2 * mpmath.mpf(BIG) + 1),
    ("weighted l1 mean: the same", xploss.l1_loss,
     ([BIG, 1.0], [-BIG, 0.0]), {"weight": [0.25, 1.0]},
     lambda: (mpmath.mpf(0.25) * 2 * mpmath.mpf(BIG) + 1) / mpmath.mpf(1.25)),
    ("quantile mean: a residual beyond max", xploss.quantile_loss,
     ([-BIG, 0.0], [0.5 * BIG, 0.0]), {"quantile": 0.9},
     lambda: mpmath.mpf(0.9) * mpmath.mpf(1.5) * BIG / 2),
    # A sample's weighted mean beyond max, the batch's mean not.
    ("multi margin: a sample's weighted mean beyond max", xploss.multi_margin_loss,
     ([[0.0, 3.0], [0.0, 3.0]], [0, 1]), {"weight": [0.75 * BIG, 1.0]},
     lambda: mpmath.mpf(0.75 * BIG) * 4 / 2 / 2),
    ("multilabel soft margin: the same", xploss.multilabel_soft_margin_loss,
     ([[2.0, 3.0], [-30.0, -30.0]], [[0.0, 0.0], [0.0, 0.0]]),
     {"weight": [0.75 * BIG, 0.75 * BIG]},
     lambda: 0.75 * mpmath.mpf(BIG) * (mpmath.log1p(mpmath.exp(2)) + mpmath.log1p(mpmath.exp(3))
                                       + 2 * mpmath.log1p(mpmath.exp(-30))) / 4),
    ("multi margin: class weights near max", xploss.multi_margin_loss,
     ([[0.0, 3.0, 5.0]], [0]), {"weight": [0.25 * BIG, 1.0, 1.0]},
     lambda: mpmath.mpf(0.25 * BIG) * (4 + 6) / 3),
    ("triplet: a distance beyond max, the loss not", xploss.triplet_margin_loss,
     ([[0.0, 0.0], [0.0, 0.0]], [[0.8 * BIG, 0.8 * BIG], [0.0, 0.0]],
      [[0.1 * BIG, 0.1 * BIG], [0.0, 0.0]]), {"eps": 0.0},
     lambda: (mpmath.hypot(0.8 * BIG, 0.8 * BIG) - mpmath.hypot(0.1 * BIG, 0.1 * BIG) + 2) / 2),
    ("triplet with the default distance: the same", xploss.triplet_margin_with_distance_loss,
     ([[0.0, 0.0], [0.0, 0.0]], [[0.8 * BIG, 0.8 * BIG], [0.0, 0.0]],
      [[0.1 * BIG, 0.1 * BIG], [0.0, 0.0]]), {"reduction": "sum"},
     lambda: mpmath.hypot(0.8 * BIG - 1e-6, 0.8 * BIG - 1e-6)
     - mpmath.hypot(0.1 * BIG - 1e-6, 0.1 * BIG - 1e-6) + 2),
    # A component of a - p beyond max: the distances overflow and so does each
    # component's difference, their difference in the loss does not.
    ("triplet: a component of a difference beyond max", xploss.triplet_margin_loss,
     ([[0.9 * BIG, 0.0], [1.0, 2.0]], [[-0.9 * BIG, 0.0], [0.0, 0.0]],
      [[0.0, 0.6 * BIG], [1.0, -1.0]]), {"eps": 0.0},
     lambda: (1 + 2 * mpmath.mpf(0.9 * BIG) - mpmath.hypot(0.9 * BIG, 0.6 * BIG)
              + 1 + mpmath.hypot(1, 2) - 3) / 2),
    ("triplet with the default distance and swap: the same",
     xploss.triplet_margin_with_distance_loss,
     ([[0.9 * BIG, 0.0]], [[-0.9 * BIG, 0.0]], [[0.0, 0.6 * BIG]]),
     {"reduction": "sum", "swap": True},
     lambda: 1 + mpmath.hypot(2 * mpmath.mpf(0.9 * BIG) + 1e-6, 1e-6)
     - min(mpmath.hypot(mpmath.mpf(0.9 * BIG) + 1e-6, 1e-6 - mpmath.mpf(0.6 * BIG)),
           mpmath.hypot(1e-6 - mpmath.mpf(0.9 * BIG), 1e-6 - mpmath.mpf(0.6 * BIG)))),
    ("BCE-with-logits: pos_weight x term beyond max, under a weight below 1",
     xploss.binary_cross_entropy_with_logits, ([-10.0, 1.0], [1.0, 0.0]),
     {"pos_weight": [1e308, 1.0], "weight": [0.01, 1.0]},
     lambda: (mpmath.mpf(0.01) * mpmath.mpf(1e308) * mpmath.log1p(mpmath.exp(10))
              + mpmath.log1p(mpmath.exp(1))) / 2),
    ("BCE-with-logits: the same under a weight of 1e-300",
     xploss.binary_cross_entropy_with_logits, ([-1e10], [1.0]),
     {"pos_weight": [1e308], "weight": [1e-300], "reduction": "sum"},
     lambda: mpmath.mpf(1e-300) * mpmath.mpf(1e308) * (1e10 + mpmath.log1p(mpmath.exp(-1e10)))),
    ("mape: a ratio beyond max, the mean of 64 not", xploss.mape_loss,
     ([1e306] + [0.0] * 63, [0.5] + [1.0] * 63), {},
     lambda: (100 * mpmath.mpf(1e306) / mpmath.mpf(0.5) + 63 * 100) / 64),
    ("poisson: a count near max at log-rate -2, term beyond max, mean not",
     xploss.poisson_nll_loss, ([-2.0, 0.0], [0.75 * BIG, 0.0]), {},
     lambda: (mpmath.exp(-2) + 2 * mpmath.mpf(0.75 * BIG) + 1) / 2),
    ("poisson: e^x and y*x beyond max, their difference not",
     xploss.poisson_nll_loss, (710.0, 1.5e305), {"reduction": "none"},
     lambda: mpmath.exp(710) - 710 * mpmath.mpf(1.5e305)),
    ("poisson: e^x and y*x beyond max, their difference too (not NaN)",
     xploss.poisson_nll_loss, (710.0, BIG), {"reduction": "none"},
     lambda: mpmath.exp(710) - 710 * mpmath.mpf(BIG)),
    ("poisson, rate input: y*log(x) beyond max, the mean not",
     xploss.poisson_nll_loss, ([100.0, 1.0], [0.25 * BIG, 0.0]),
     {"log_input": False, "eps": 0.0},
     lambda: (100 - mpmath.mpf(0.25 * BIG) * mpmath.log(100) + 1) / 2),
    ("poisson, Stirling term beyond max, the mean of 256 not",
     xploss.poisson_nll_loss, ([0.0] * 256, [0.25 * BIG] + [0.0] * 255), {"full": True},
     lambda: (256 + (lambda t: t * mpmath.log(t) - t + mpmath.log(2 * mpmath.pi * t) / 2)(
         mpmath.mpf(0.25 * BIG))) / 256),
]


@pytest.mark.parametrize("case", REDUCTION_CASES, ids=[c[0] for c in REDUCTION_CASES])
def test_reductions_overflow_only_where_the_exact_value_does(target, case):
    """A sum or mean of finite terms is finite (and accurate) wherever its exact
    value is, whatever order a library adds in; a zero weight takes an
    overflowing term as 0."""
    name, fn, arrays, kwargs, exact = case
    b = target.backend
    if "subnormal" in name and flush_threshold(target, "float64"):
        pytest.skip("the target reads subnormal inputs as 0")
    args = _float64_args(target, arrays)
    kw = {k: b.asarray(np.array(v), target, "float64") if isinstance(v, list) else v
          for k, v in kwargs.items()}
    with np.errstate(all="ignore"):
        got = float(b.to_numpy(fn(*args, **kw)))
    want = _exact(exact)
    if np.isinf(want):
        assert got == want
    else:
        assert np.isfinite(got)
        ulp = np.spacing(np.nextafter(abs(want), 0.0))  # finite at finfo.max too
        assert abs(got - want) <= 2 * ulp, (got, want)


ZERO_WEIGHT_CASES = [c for c in REDUCTION_CASES if "weight 0" in c[0]]


@pytest.mark.parametrize("case", ZERO_WEIGHT_CASES, ids=[c[0] for c in ZERO_WEIGHT_CASES])
def test_oracle_takes_a_zero_weight_on_an_infinite_term_as_zero(case):
    """The conformance oracle follows the same convention as the library, so the
    suite and the fuzz compare against the documented value, not NaN."""
    _, fn, arrays, kwargs, exact = case
    ref = getattr(references, fn.__name__)
    kw = {k: np.array(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    got = ref(*[np.array(a) for a in arrays], **kw)
    assert float(got) == _exact(exact)


def test_sum_of_opposite_terms_near_max_is_exact(target):
    """[max, max, -max, -max] sums to exactly 0 (the plain sum gives inf - inf)."""
    b = target.backend
    if "float64" not in b.dtypes(target):
        pytest.skip("float64 cases")
    x = b.asarray(np.array([BIG, BIG, -BIG, -BIG]), target, "float64")
    y = b.asarray(np.ones(4), target, "float64")
    with np.errstate(all="ignore"):
        # kl_div's terms are y·(log y - x) = -x here.
        got = float(b.to_numpy(xploss.kl_div(x, y, reduction="sum")))
    assert got == 0.0


INF = math.inf

EDGE_CASES = [
    # (name, function, arrays, kwargs, exact value by definition)
    ("xlogy(0, -inf): below the domain", xploss.xlogy, ([0.0], [-INF]), {}, [math.nan]),
    ("xlog1py(0, -inf): below the domain", xploss.xlog1py, ([0.0], [-INF]), {}, [math.nan]),
    ("xlogy(0, inf) = 0", xploss.xlogy, ([0.0], [INF]), {}, [0.0]),
    ("margin_ranking(inf, inf, -1) = max(0, inf - inf)", xploss.margin_ranking_loss,
     ([INF], [INF], [-1.0]), {"reduction": "none"}, [math.nan]),
    ("pairwise_distance of equal infinite components", xploss.pairwise_distance,
     ([[-INF, 1.0]], [[-INF, 1.0]]), {}, [math.nan]),
    ("triplet: an infinite d(a, p) against a d(a, n) beyond max", xploss.triplet_margin_loss,
     ([[0.6 * BIG, 0.0]], [[-INF, 4.0]], [[0.0, -0.9 * BIG]]), {"reduction": "none"}, [INF]),
    ("kl_div, log_target: a -inf input where exp(target) underflows", xploss.kl_div,
     ([-INF], [-1e300]), {"reduction": "none", "log_target": True}, [INF]),
    ("poisson_nll_loss, full: an infinite count", xploss.poisson_nll_loss,
     ([-0.5], [INF]), {"reduction": "none", "full": True}, [INF]),
    # e^x - y·x: e^x is finite at x = 1e4 (beyond the range), y·x infinite.
    ("poisson_nll_loss: a logit beyond 2·log(max) and an infinite count",
     xploss.poisson_nll_loss, ([1e4, 1e4, INF, INF, INF], [INF, 1.0, 3.0, 0.0, INF]),
     {"reduction": "none"}, [-INF, INF, INF, INF, math.nan]),
    # x - y·log(x + eps) with y = inf: log(2e-8) < 0, so +inf (the rounding
    # correction of x + eps must not meet the infinite count: inf - inf).
    ("poisson_nll_loss, rate input: an infinite count", xploss.poisson_nll_loss,
     ([1e-8, 1e-8], [INF, INF]), {"reduction": "none", "log_input": False, "full": True},
     [INF, INF]),
    ("poisson_nll_loss: the mean of a term beyond the range and a -inf one",
     xploss.poisson_nll_loss, ([1e4, 5.0], [1.0, INF]), {}, -INF),
    ("softmax of a logit near max and one below it (no inf - inf inside)", xploss.softmax,
     ([8.987729732804285e307, BIG],), {}, [0.0, 1.0]),
    # x - max(x) = -(max + 1) rounds to -max: finite (exp gives 0, the log does not);
    # it is -inf only from -(max + h) on, h = 2**970 half an ULP of max, where the
    # tie rounds to even, beyond the range.
    ("log_softmax: x - max rounds to -max, not beyond", xploss.log_softmax,
     ([BIG, -1.0],), {}, [0.0, -BIG]),
    ("log_softmax: x - max half an ULP of max beyond -max", xploss.log_softmax,
     ([BIG, -(2.0**970)],), {}, [0.0, -INF]),
    ("log_softmax: x - max just inside half an ULP beyond -max", xploss.log_softmax,
     ([BIG, -math.nextafter(2.0**970, 0.0)],), {}, [0.0, -BIG]),
    ("log_softmax: a maximum of 2**971 against -max", xploss.log_softmax,
     ([2.0**971, -BIG],), {}, [0.0, -INF]),
    ("log_softmax: a maximum just below 2**970 against -max", xploss.log_softmax,
     ([math.nextafter(2.0**970, 0.0), -BIG],), {}, [0.0, -BIG]),
    ("cross_entropy: the target's logit max + 1 below the maximum", xploss.cross_entropy,
     ([[BIG, -1.0]], [1]), {"reduction": "none"}, [BIG]),
    # Full smoothing: the target's own term (inf here) has weight 0 and is dropped.
    ("cross_entropy: full label smoothing, a +inf logit in the row", xploss.cross_entropy,
     ([[-1.0, INF, 0.0]], [0]), {"reduction": "none", "label_smoothing": 1.0}, [INF]),
    ("mape: an infinite target, a finite prediction: the limit", xploss.mape_loss,
     ([1000.0, 5.0, INF], [INF, -INF, INF]), {"reduction": "none"}, [100.0, 100.0, math.nan]),
    ("ntxent: no negatives, an infinite embedding", xploss.ntxent_loss,
     ([[1.0, -INF], [0.5, 2.0]], [0, 0]), {}, 0.0),
    ("ntxent: a positive pair and a NaN embedding", xploss.ntxent_loss,
     ([[1.0, math.nan], [0.5, 2.0], [1.0, 0.0]], [0, 0, 1]), {}, math.nan),
]


@pytest.mark.parametrize("case", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_infinite_operands(target, case):
    _, fn, arrays, kwargs, exact = case
    b = target.backend
    args = _float64_args(target, arrays)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = b.to_numpy(fn(*args, **kwargs))
    np.testing.assert_array_equal(got, np.array(exact))


def test_ntxent_without_negatives_has_zero_gradient_with_inf(diff_target):
    b, t = diff_target.backend, diff_target
    e = b.asarray(np.array([[1.0, -INF], [0.5, 2.0]]), t, "float64")
    labels = b.asarray(np.array([0, 0]), t)
    assert np.all(_grad(t, lambda v: xploss.ntxent_loss(v, labels), e) == 0.0)


def test_empty_infinity_norm_stays_differentiable(diff_target):
    """p = inf on an empty batch: a zero-size gradient, not an error."""
    b, t = diff_target.backend, diff_target
    a = b.asarray(np.zeros((0, 3)), t, "float64")
    g = _grad(t, lambda v: xploss.triplet_margin_loss(v, v * 2.0, v * 3.0, p=INF), a)
    assert g.shape == (0, 3)



# Vectors near finfo.max and near the smallest normal, where a norm scaled by the
# vector's maximum has a scale whose own derivative (x/m²) leaves the range.
def _norm_rows(dtype):
    fi = np.finfo(dtype)
    big, small = float(fi.max), float(fi.tiny) * 2.0**20
    return np.array([[big / 2, big / 4, -big / 8], [big, 1.0, -2.0], [small, -small / 2, small / 8],
                     [3.0, -4.0, 0.5]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_norm_gradient_is_exact_near_the_range_ends(diff_target, dtype, p):
    """d/dx of sum_i w_i ||x_i||_p is w_i sign(x)|x|^(p-1) / ||x_i||_p^(p-1), which is
    at most 1 however large or small x is (mpmath at 60 digits; no zero components,
    where p = 1 has a kink)."""
    b, t = diff_target.backend, diff_target
    xp = b.namespace()
    rows = _norm_rows(dtype).astype(dtype)
    w_np = np.array([1.0, 0.5, 0.25, 0.125])
    w = b.asarray(w_np, t, dtype)
    x, zero = b.asarray(rows, t, dtype), b.asarray(np.zeros_like(rows), t, dtype)
    g = _grad(t, lambda v: xp.sum(xploss.pairwise_distance(v, zero, p=p, eps=0.0) * w), x)
    with mpmath.workdps(60):
        exact = []
        for wi, row in zip(w_np, rows, strict=True):
            r = [mpmath.mpf(float(v)) for v in row]
            norm = mpmath.fsum(abs(v) ** p for v in r) ** (1 / mpmath.mpf(p))
            exact.append([float(wi * mpmath.sign(v) * (abs(v) / norm) ** (p - 1)) for v in r])
    err = np.abs(g.astype(np.float64) - np.array(exact)) / np.finfo(dtype).eps
    assert np.max(err) <= 4, (g, exact)

# ---------------------------------------------------------------- langevin


LANGEVIN_POINTS = [0.0, 1e-300, -1e-300, 1e-8, -1e-8, 0.5, -0.5, 1e10, -1e10]


def _langevin_derivative(x):
    """L'(x) = 1/x² - 1/sinh²(x), L'(0) = 1/3 (mpmath at 60 digits, precision raised
    until the cancellation near 0 is resolved)."""
    if x == 0:
        return 1.0 / 3.0
    with mpmath.workdps(60 + 3 * max(0, -int(mpmath.log10(abs(mpmath.mpf(x)))))):
        v = mpmath.mpf(x)
        return float(1 / v**2 - 1 / mpmath.sinh(v) ** 2)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_langevin_derivative_finite_and_accurate(diff_target, dtype):
    b, t = diff_target.backend, diff_target
    pts = np.array(LANGEVIN_POINTS)
    if dtype == "float32":
        pts = pts[(pts == 0) | (np.abs(pts) > 1e-37)]
    x = b.asarray(pts, t, dtype)
    held = b.to_numpy(x).astype(np.float64)
    xp = b.namespace()
    g = _grad(t, lambda v: xp.sum(xploss.langevin(v)), x).astype(np.float64)
    exact = np.array([_langevin_derivative(v) for v in held])
    eps = np.finfo(dtype).eps
    assert np.all(np.isfinite(g))
    # 1/x² for |x| = 1e10 is 1e-20: normal in both dtypes, so measured in ULP.
    err = np.abs(g - exact) / (eps * np.abs(exact))
    assert np.max(err) <= 8, (held, g, exact, err)


def test_langevin_continued_fraction_depth():
    """The truncation error of the continued fraction at |x| = 2 (the switch point)
    is far below float64 resolution, measured against mpmath."""
    from xploss.primitives import _LANGEVIN_CF_DEPTH

    with mpmath.workdps(50):
        x = mpmath.mpf(2)
        d = 2 * _LANGEVIN_CF_DEPTH + 3
        for k in range(_LANGEVIN_CF_DEPTH, 0, -1):
            d = (2 * k + 1) + x * x / d
        assert abs(x / d - (mpmath.coth(x) - 1 / x)) / (mpmath.coth(x) - 1 / x) < 1e-19


def test_log_cosh_series_coefficients():
    """The Bernoulli-number coefficients equal mpmath's Taylor coefficients of log cosh."""
    from xploss.primitives import _LOG_COSH_SERIES

    with mpmath.workdps(40):
        taylor = mpmath.taylor(lambda v: mpmath.log(mpmath.cosh(v)), 0, 2 * len(_LOG_COSH_SERIES))
    expected = [float(taylor[2 * k]) for k in range(1, len(_LOG_COSH_SERIES) + 1)]
    np.testing.assert_allclose(_LOG_COSH_SERIES, expected, rtol=1e-15)


# ---------------------------------------------------------------- dtype policy


def _half_targets(target):
    return [d for d in ("float16", "bfloat16") if d in target.backend.dtypes(target)]


def test_half_precision_dtype_policy(target):
    """Primitives return the 16-bit input dtype; losses return float32."""
    b = target.backend
    for dtype in _half_targets(target):
        x = b.asarray(np.array([[-3.0, 0.5, 8.0]]), target, dtype)
        assert xploss.softplus(x).dtype == b.native_dtype(dtype)
        assert xploss.log_softmax(x).dtype == b.native_dtype(dtype)
        y = b.asarray(np.array([2]), target)
        assert xploss.cross_entropy(x, y).dtype == b.native_dtype("float32")
        assert xploss.binary_cross_entropy_with_logits(x, x * 0).dtype == \
            b.native_dtype("float32")


# ---------------------------------------------------------------- no warnings


INVALID_CASES = {"nan", "outside_domain", "outside_unit_interval", "out_of_range_target"}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_floating_point_warnings_on_valid_inputs(name):
    """NumPy emits no invalid/divide warnings for inputs in the domain, including
    poles and infinities, and an overflow warning only where the returned value
    itself overflows, as NumPy's own functions do (invalid inputs may warn)."""
    entry = REGISTRY[name]
    for case in entry.cases("float64"):
        if case.name in INVALID_CASES:
            continue
        with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
            warnings.simplefilter("error")
            try:
                entry.func(*case.args, **case.kwargs)
                overflow = None
            except FloatingPointError as exc:
                if "overflow" not in str(exc):
                    raise
                overflow = str(exc)
        if overflow:
            with np.errstate(all="ignore"):
                value = entry.func(*case.args, **case.kwargs)
            assert np.any(np.isinf(value)), (case.name, overflow)


# ---------------------------------------------------------------- NaN in, NaN out

# Cases whose outputs do not depend on the NaN argument, by definition.
NAN_INDEPENDENT = {
    "all_ignored_mean",  # every target ignored: exactly 0
    "other_labels",      # cosine_embedding_loss: labels other than ±1 contribute 0
    "no_positives",      # ntxent_loss without a positive pair: the mean over nothing, 0
}


def _has_label_pairs(target, n_classes):
    """Rows of a multilabel_margin_loss target with a label and a non-label
    (other rows hold no margin, so they are 0 whatever the scores)."""
    rows = target.reshape(-1, target.shape[-1])
    counts = []
    for row in rows:
        stop = np.flatnonzero(row == -1)
        labels = set(row[:stop[0] if stop.size else row.size].tolist())
        counts.append(0 < len(labels) < n_classes)
    return np.array(counts).reshape(target.shape[:-1])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_nan_in_any_argument_gives_nan(name):
    """A differentiable argument filled with NaN gives NaN in every output element."""
    entry = REGISTRY[name]
    for case in entry.cases("float64"):
        if case.name in NAN_INDEPENDENT:
            continue
        for pos in entry.differentiable:
            args = list(case.args)
            if not args[pos].size or not np.issubdtype(args[pos].dtype, np.floating):
                continue
            args[pos] = np.full_like(args[pos], np.nan)
            with np.errstate(all="ignore"):
                out = np.asarray(entry.func(*args, **case.kwargs))
            if name == "multilabel_margin_loss" and out.ndim:
                out = out[_has_label_pairs(case.args[1], case.args[0].shape[-1])]
            if name == "ctc_loss" and out.ndim:
                out = out[case.args[2] > 0]  # an input of length 0 reads no frame
            assert np.all(np.isnan(out)), (case.name, pos, out)


# ---------------------------------------------------------------- argument errors


def test_mixed_libraries_name_the_function():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="cross_entropy: all array arguments"):
        xploss.cross_entropy(torch.zeros((2, 3)), np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        (lambda: xploss.softplus(np.arange(3)), TypeError, "softplus: 'x' must have a real"),
        (lambda: xploss.cross_entropy(np.zeros((2, 3)), np.zeros(2, dtype=np.int64),
                                      reduction="avg"), ValueError, "'reduction' must be one"),
        (lambda: xploss.cross_entropy(np.zeros((2, 3)), np.zeros(2, dtype=np.int64),
                                      label_smoothing=1.5), ValueError, "'label_smoothing'"),
        (lambda: xploss.cross_entropy(np.zeros((2, 3)), np.zeros(3, dtype=np.int64)),
         ValueError, "class-index 'target' must have the shape"),
        (lambda: xploss.cross_entropy(np.zeros((2, 3)), np.zeros((2, 3), dtype=bool)),
         TypeError, "'target' must hold integer class indices or floating"),
        (lambda: xploss.cross_entropy(np.zeros((2, 3)), np.zeros(2, dtype=np.int64), axis=2),
         ValueError, "'axis' 2 is out of range"),
        (lambda: xploss.cross_entropy(np.zeros((2, 3)), np.zeros(2, dtype=np.int64),
                                      weight=np.ones(2)), ValueError, "'weight' must have shape"),
        (lambda: xploss.nll_loss(np.zeros((2, 3)), np.zeros((2, 3))), TypeError,
         "nll_loss: 'target' must hold integer class indices"),
        (lambda: xploss.binary_cross_entropy(np.zeros(3), np.zeros((3, 1))), ValueError,
         "'target' must have the shape of 'input'"),
        (lambda: xploss.binary_cross_entropy_with_logits(np.zeros(3), [0.0, 1.0, 0.0]),
         TypeError, "'target' must be an array"),
        (lambda: xploss.logsumexp(np.zeros((2, 3)), axis=3), ValueError, "'axis' 3"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ------------------------------------------------------- tied maxima in a row

# Rows whose maximum is tied: all equal (a zero-initialised classifier gives this
# for every sample), two tied maxima with others, and tied maxima near finfo.max.
TIE_ROWS = np.array([[0.0, 0.0, 0.0, 0.0],
                     [3.0, 3.0, -1.0, 0.5],
                     [1e300, 1e300, 0.0, -1e300]])
TIE_TARGETS = np.array([0, 1, 2])


def _exact_softmax_rows(rows):
    with mpmath.workdps(60):
        out = []
        for r in rows:
            r = [mpmath.mpf(float(v)) for v in r]
            m = max(r)
            e = [mpmath.exp(v - m) for v in r]
            s = mpmath.fsum(e)
            out.append([v / s for v in e])
        return out


@pytest.mark.parametrize("fn", ["cross_entropy", "log_softmax", "softmax"])
def test_tied_maxima_have_the_exact_gradient(diff_target, fn):
    """With tied maxima the gradient is the softmax's, not 0: d CE / dx = p - onehot;
    d sum(w * log_softmax) / dx_i = w_i - p_i sum(w); d sum(w * softmax) / dx_i =
    p_i (w_i - sum_j w_j p_j). p and the derivatives from mpmath at 60 digits."""
    b, t = diff_target.backend, diff_target
    xp = b.namespace()
    x = b.asarray(TIE_ROWS, t, "float64")
    w_np = np.array([1.0, 0.5, 0.25, 0.125])
    w = b.asarray(w_np, t, "float64")
    if fn == "cross_entropy":
        target = b.asarray(TIE_TARGETS, t)
        g = _grad(t, lambda v: xploss.cross_entropy(v, target, reduction="sum"), x)
    else:
        g = _grad(t, lambda v: xp.sum(getattr(xploss, fn)(v) * w), x)
    p = _exact_softmax_rows(TIE_ROWS)
    with mpmath.workdps(60):
        exact = []
        for i, row in enumerate(p):
            ws = [mpmath.mpf(v) for v in w_np]
            if fn == "cross_entropy":
                exact.append([pj - (j == TIE_TARGETS[i]) for j, pj in enumerate(row)])
            elif fn == "log_softmax":
                exact.append([ws[j] - pj * mpmath.fsum(ws) for j, pj in enumerate(row)])
            else:
                avg = mpmath.fsum(wj * pj for wj, pj in zip(ws, row, strict=True))
                exact.append([pj * (ws[j] - avg) for j, pj in enumerate(row)])
        exact = np.array([[float(v) for v in r] for r in exact])
    # Every component is O(1) or exactly 0: measured against the row's largest.
    err = np.abs(g - exact) / (np.finfo(np.float64).eps * np.max(np.abs(exact), axis=1,
                                                                   keepdims=True))
    assert np.max(err) <= 4, (g, exact)


# ---------------------------------------------------------------- msle_loss


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_msle_derivatives_near_the_largest_target(diff_target, dtype):
    """d/dx (log1p x - log1p y)^2 = 2 (log1p x - log1p y)/(1 + x), finite and
    accurate in reverse and forward mode for y near finfo.max: the ratio
    (y - x)/(1 + x) has a numerator near finfo.max, which JAX's forward-mode
    quotient rule multiplied by the tangent before dividing (inf, then NaN).
    Reference: mpmath at 60 digits."""
    b, t = diff_target.backend, diff_target
    big = float(np.finfo(dtype).max)
    x_np = np.array([3.0, 1e4, 1e30, -0.5])
    y_np = np.full_like(x_np, big)
    x, y = b.asarray(x_np, t, dtype), b.asarray(y_np, t, dtype)
    tangent = b.asarray(np.ones_like(x_np), t, dtype)
    with mpmath.workdps(60):
        exact = []
        for xi, yi in zip(x_np.astype(dtype), y_np, strict=True):
            xm, ym = mpmath.mpf(float(xi)), mpmath.mpf(float(yi))
            exact.append(2 * (mpmath.log1p(xm) - mpmath.log1p(ym)) / (1 + xm))

    def total(v):
        return b.namespace().sum(xploss.msle_loss(v, y, reduction="none"))

    g = b.to_numpy(b.grad(total, (x,), 0)).astype(np.float64)
    forward = float(b.to_numpy(b.jvp(total, (x,), 0, tangent)))
    # Normwise, as the conformance suite measures gradients: in ULP of the
    # largest component.
    scale = 4 * float(np.finfo(dtype).eps) * max(abs(float(e)) for e in exact)
    assert np.max(np.abs(g - np.array([float(e) for e in exact]))) <= scale, (g, exact)
    assert abs(forward - float(mpmath.fsum(exact))) <= len(exact) * scale, forward


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_msle_forward_derivative_along_a_tangent_as_large_as_the_input(diff_target, dtype):
    """Input 1e300 (1e30 in float32), target finfo.max, tangent the input itself:
    (-ds·n)·s^-2 of JAX's forward-mode quotient rule overflowed although the
    directional derivative, 2 (log1p x - log1p y) x/(1 + x), is about -2 ln(y/x).
    Reference: mpmath at 60 digits."""
    b, t = diff_target.backend, diff_target
    x_np = np.array([1e300 if dtype == "float64" else 1e30])
    y_np = np.array([float(np.finfo(dtype).max)])
    x, y = b.asarray(x_np, t, dtype), b.asarray(y_np, t, dtype)
    xm, ym = (mpmath.mpf(float(v)) for v in (x_np.astype(dtype)[0], y_np[0]))
    with mpmath.workdps(60):
        exact = float(2 * (mpmath.log1p(xm) - mpmath.log1p(ym)) / (1 + xm) * xm)

    def total(v):
        return b.namespace().sum(xploss.msle_loss(v, y, reduction="none"))

    for mode, value in (("reverse", float(b.to_numpy(b.grad(total, (x,), 0))[0]) * float(xm)),
                        ("forward", float(b.to_numpy(b.jvp(total, (x,), 0, x))))):
        assert abs(value - exact) <= 4 * float(np.finfo(dtype).eps) * abs(exact), (mode, value,
                                                                                  exact)
