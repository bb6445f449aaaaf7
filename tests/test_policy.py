"""Numerical-policy points of DESIGN.md §3 that the conformance tables do not
express as a value against a reference: exact zeros in gradients, derivative
accuracy, dtype policy, warnings, and argument errors."""

import warnings

import mpmath
import numpy as np
import pytest
from xploss.conformance import load_catalog

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
