"""The gradient oracle of the conformance runner (``--gradients``): directional
derivatives, reverse and forward mode, against the mpmath reference."""

import dataclasses
import math

import array_api_compat
import mpmath
import numpy as np
import pytest
from xploss.conformance import gradients, load_catalog
from xploss.conformance.registry import Case
from xploss.conformance.runner import run_cell

REGISTRY = load_catalog()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["softplus", "cross_entropy", "huber_loss"])
def test_oracle_passes_and_checks_directions(diff_target, name, dtype):
    cell = run_cell(REGISTRY[name], diff_target, dtype, compile_cases=0, grad_oracle=True)
    assert cell.passed, cell.failures
    # Both modes, for every case whose direction resolves: never vacuous.
    assert cell.grad_checked >= 4
    assert cell.grad_worst_ulp <= REGISTRY[name].ulps


def _held_max_log_softmax(x, /, *, axis=-1):
    """A planted bug: log-softmax whose maxima have d = 0 as a constant. Its values
    are right; along tied maxima its derivative is not (a row of equal logits
    has a zero gradient)."""
    xp = array_api_compat.array_namespace(x)
    m = xp.max(x, axis=axis, keepdims=True)
    d = xp.where(x == m, xp.zeros_like(x), x - m)
    return d - xp.log(xp.sum(xp.exp(d), axis=axis, keepdims=True))


def test_planted_gradient_bug_is_caught(diff_target):
    ties = Case("ties", (np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 3.0, -1.0, 0.5]]),))
    entry = dataclasses.replace(REGISTRY["log_softmax"], func=_held_max_log_softmax,
                                cases=lambda dtype: [ties])
    finite_only = run_cell(entry, diff_target, "float64", compile_cases=0)
    assert finite_only.passed, finite_only.failures  # values right, gradients finite
    cell = run_cell(entry, diff_target, "float64", compile_cases=0, grad_oracle=True)
    assert not cell.passed
    modes = {f.split("]")[1].split("-mode")[0].strip() for f in cell.failures}
    assert modes == {"reverse", "forward"}, cell.failures
    assert "reproduce('log_softmax', 'ties'" in cell.failures[0]


def test_kinks_are_not_resolved():
    """|x| at 0: the one-sided derivatives differ, so no exact derivative is claimed."""
    entry = REGISTRY["l1_loss"]
    x, t = np.array([0.0, 1.0]), np.array([0.0, 2.0])
    tan = gradients.tangent("l1_loss", "kink", 0, x)
    exact = gradients.exact_derivative(entry, [x, t], {"reduction": "sum"}, "float64", 0,
                                       np.ones(()), tan, 1.0)
    err, why = gradients.measure(exact, 0.0, np.array([0.0, -1.0]), tan, 2.0**-52, 2.0**-1022)
    assert err is None
    assert "one-sided" in why


def test_directions_are_exact_steps():
    x = np.array([0.0, 1e-300, -3.0, 1.7976931348623157e308, np.inf, 5e-324])
    tan = gradients.tangent("f", "c", 0, x)
    step = np.ldexp(tan, -gradients.STEP)
    f = np.isfinite(x)
    for k in (1, 2):
        assert np.all((x[f] + k * step[f]) - x[f] == k * step[f])
        assert np.all(x[f] - (x[f] - k * step[f]) == k * step[f])
    # Not perturbed: finfo.max (a step up overflows), inf, and the smallest
    # subnormal (no step 2**-50 of it exists).
    assert np.flatnonzero(tan).tolist() == [0, 1, 2]
    assert set(np.unique(gradients.weights("f", "c", (40,)))) <= {1.0, 0.5, 0.25, 0.125}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_subnormal_gradients_are_measured_in_their_own_ulp(diff_target, dtype):
    """d xlog1py / dx = log1p(y) = y for subnormal y: each component is rounded to
    the subnormal grid, whose spacing is the ULP of the smallest normal number,
    not a fraction of the (subnormal) derivative itself."""
    (case,) = [c for c in REGISTRY["xlog1py"].cases(dtype) if c.name == "subnormal_y"]
    entry = dataclasses.replace(REGISTRY["xlog1py"], cases=lambda dtype: [case])
    cell = run_cell(entry, diff_target, dtype, compile_cases=0, grad_oracle=True)
    assert cell.passed, cell.failures
    assert cell.grad_checked >= 2


def test_forward_derivative_beyond_the_range_is_not_measured():
    """Along a tangent as large as the inputs, the exact directional derivative can
    exceed finfo.max: forward mode then rounds to inf, correctly, and no error is
    measured; reverse mode (summed exactly) still is."""
    big = float(np.finfo(np.float64).max)
    exact = gradients.Exact(mpmath.mpf(big) * 1.5, mpmath.mpf(0), mpmath.mpf(0), None)
    g, t = np.array([1.5]), np.array([big])
    err, why = gradients.measure(exact, math.inf, g, t, 2.0**-52, 2.0**-1022, limit=big)
    assert err is None
    assert "range" in why
    err, why = gradients.measure(exact, mpmath.mpf(big) * 1.5, g, t, 2.0**-52, 2.0**-1022)
    assert err == 0
    assert why is None


def test_elements_on_the_domain_edge_are_left_unperturbed():
    """A probability of 0 or 1 has one of its two steps outside [0, 1], where the
    reference is NaN: such elements are dropped from the tangent (found by
    bisection), and the derivative is taken along the others."""
    entry = REGISTRY["dice_loss"]
    p = np.array([[0.0, 0.25, 1.0, 0.5], [1.0, 0.0, 0.75, 0.125]])
    y = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    tan = gradients.tangent("dice_loss", "edge", 0, p)
    exact = gradients.exact_derivative(entry, [p, y], {}, "float64", 0, np.ones(()), tan, 1.0)
    assert not exact.reason
    inside = (p > 0) & (p < 1)
    assert np.array_equal(exact.tangent[inside], tan[inside])
    assert not np.any(exact.tangent[~inside])
    # The derivative along the kept tangent, from the closed form of dice:
    # loss = sum(p(1 - y) + y(1 - p)) / (sum p + sum y + 1).
    num, den = np.sum(p * (1 - y) + y * (1 - p)), np.sum(p) + np.sum(y) + 1
    grad = ((1 - 2 * y) * den - num) / den**2
    assert float(exact.value) == pytest.approx(float(np.sum(grad * exact.tangent)), rel=1e-14)


@pytest.mark.parametrize("name", ["dice_loss", "tversky_loss"])
def test_oracle_checks_losses_of_probabilities(diff_target, name):
    """Their tables hold probabilities of 0 and 1, so no tangent of every element
    resolves; along the interior elements the gradients are checked."""
    cell = run_cell(REGISTRY[name], diff_target, "float64", compile_cases=0, grad_oracle=True)
    assert cell.passed, cell.failures
    assert cell.grad_checked >= 4
