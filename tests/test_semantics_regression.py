"""Semantics of the regression losses against their defining peers.

``mse_loss``, ``l1_loss``, ``huber_loss``, ``smooth_l1_loss``,
``poisson_nll_loss`` and ``gaussian_nll_loss`` are compared with their
``torch.nn.functional`` namesakes over every option, values and gradients, on
ordinary float64 inputs (relative tolerance 1e-10), with NumPy and torch
inputs. ``log_cosh_loss`` is compared with optax's ``log_cosh``, ``mape_loss``
and ``msle_loss`` with Keras where those are installed; ``quantile_loss`` with
the pinball formula written out in NumPy. Each documented deviation from the
peer is tested as such.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from helpers import as_torch, assert_close, check_against_torch  # noqa: E402

import xploss  # noqa: E402

LIBS = ["numpy", "torch"]
REDUCTIONS = ["none", "mean", "sum"]
SHAPE = (6, 5)


def inputs(seed, positive=False):
    rng = np.random.default_rng(seed)
    x, t = rng.normal(0, 2, SHAPE), rng.normal(0, 2, SHAPE)
    if positive:
        x, t = np.abs(x) + 0.1, rng.poisson(3.0, SHAPE).astype(np.float64)
    return x, t, rng.uniform(0.2, 2.0, SHAPE)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_mse_l1_vs_torch(name, weighted, reduction, lib):
    x, t, w = inputs(0)
    if weighted:
        check_against_torch(
            lambda a, b, c: getattr(xploss, name)(a, b, weight=c, reduction=reduction),
            lambda a, b, c: getattr(F, name)(a, b, weight=c, reduction=reduction),
            (x, t, w), lib, grad_args=(0, 1, 2))
    else:
        check_against_torch(lambda a, b: getattr(xploss, name)(a, b, reduction=reduction),
                            lambda a, b: getattr(F, name)(a, b, reduction=reduction),
                            (x, t), lib)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("delta", [0.3, 1.0, 4.0])
def test_huber_vs_torch(delta, weighted, reduction, lib):
    x, t, w = inputs(1)
    kw = {"delta": delta, "reduction": reduction}
    if weighted:
        check_against_torch(lambda a, b, c: xploss.huber_loss(a, b, weight=c, **kw),
                            lambda a, b, c: F.huber_loss(a, b, weight=c, **kw),
                            (x, t, w), lib, grad_args=(0, 1, 2))
    else:
        check_against_torch(lambda a, b: xploss.huber_loss(a, b, **kw),
                            lambda a, b: F.huber_loss(a, b, **kw), (x, t), lib)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 4.0])
def test_smooth_l1_vs_torch(beta, reduction, lib):
    x, t, _ = inputs(2)
    kw = {"beta": beta, "reduction": reduction}
    check_against_torch(lambda a, b: xploss.smooth_l1_loss(a, b, **kw),
                        lambda a, b: F.smooth_l1_loss(a, b, **kw), (x, t), lib)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_poisson_nll_vs_torch(eps, log_input, full, reduction, lib):
    x, t, _ = inputs(3, positive=True)
    if log_input:
        x = np.log(x)
    kw = {"log_input": log_input, "full": full, "eps": eps, "reduction": reduction}
    # torch's Stirling term has no derivative with respect to the target.
    check_against_torch(lambda a, b: xploss.poisson_nll_loss(a, b, **kw),
                        lambda a, b: F.poisson_nll_loss(a, b, **kw), (x, t), lib,
                        grad_args=(0,) if full else (0, 1))


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", ["same", "row", "broadcast"])
@pytest.mark.parametrize("eps", [1e-6, 0.5])
def test_gaussian_nll_vs_torch(eps, var_shape, full, reduction, lib):
    x, t, v = inputs(4)
    v = {"same": v, "row": v[:, 0], "broadcast": v[:, :1]}[var_shape]
    if eps == 0.5:  # some variances below the floor: values agree, gradients differ
        v = v * 0.3
    kw = {"full": full, "eps": eps, "reduction": reduction}
    below = np.broadcast_to(v if v.shape != SHAPE[:-1] else v[:, None], SHAPE) < eps
    check_against_torch(lambda a, b, c: xploss.gaussian_nll_loss(a, b, c, **kw),
                        lambda a, b, c: F.gaussian_nll_loss(a, b, c, **kw), (x, t, v), lib,
                        grad_args=(0, 1) if below.any() else (0, 1, 2))


def test_gaussian_nll_floor_is_visible_to_autograd():
    # Below eps the loss does not depend on var: derivative 0 (torch reports the
    # derivative at eps instead).
    x, t = as_torch([0.0, 1.0]), as_torch([1.0, 1.0])
    v = as_torch([1e-9, 2.0], grad=True)
    xploss.gaussian_nll_loss(x, t, v, reduction="sum").backward()
    assert v.grad[0] == 0
    assert v.grad[1] == pytest.approx(0.5 * (1 / 2.0 - 0.0), rel=1e-15, abs=0)


def test_gaussian_nll_negative_variance_is_nan():
    out = xploss.gaussian_nll_loss(np.zeros(3), np.ones(3), np.array([1.0, -1.0, 2.0]),
                                   reduction="none")
    assert np.isnan(out[1])
    assert np.isfinite(out[[0, 2]]).all()


def test_gaussian_nll_half_before_the_quotient_overflows():
    # d²/v beyond finfo.max, d²/(2v) within it: the loss is finite (it was inf
    # when the 1/2 was applied after the quotient).
    import mpmath

    big = np.finfo(np.float32).max
    x = np.array([big, big / 2], np.float32)
    v = np.array([big / np.float32(1.5), np.float32(big / 6)], np.float32)
    out = xploss.gaussian_nll_loss(x, np.zeros(2, np.float32), v, reduction="none")
    for o, d, var in zip(out, x, v, strict=True):
        d, var = mpmath.mpf(float(d)), mpmath.mpf(float(var))
        exact = (mpmath.log(var) + d * d / var) / 2  # the definition, at mpmath's precision
        assert float(exact) < big
        assert o == pytest.approx(float(exact), rel=4 * float(np.finfo(np.float32).eps))


def test_poisson_zero_count_at_zero_rate():
    # Rate exactly 0 (log-rate -inf) with count 0: probability 1, loss 0 (torch: NaN).
    out = xploss.poisson_nll_loss(np.array([-np.inf, -np.inf]), np.array([0.0, 2.0]),
                                  reduction="none")
    assert out[0] == 0
    assert out[1] == np.inf


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_quantile_loss_is_pinball(q):
    x, t, _ = inputs(5)
    r = t - x
    expected = np.maximum(q * r, (q - 1) * r)
    assert_close(xploss.quantile_loss(x, t, quantile=q, reduction="none"), expected, "numpy")
    assert_close(xploss.quantile_loss(x, t, quantile=q), expected.mean(), "numpy")


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "log_cosh_loss",
                                  "quantile_loss", "mape_loss", "msle_loss"])
def test_no_implicit_broadcasting(name):
    with pytest.raises(ValueError, match=f"{name}: 'target' must have the shape"):
        getattr(xploss, name)(np.zeros((4, 1)), np.zeros(4))


def test_log_cosh_loss_vs_optax():
    optax = pytest.importorskip("optax")
    jnp = pytest.importorskip("jax").numpy
    x, t, _ = inputs(6)
    expected = np.asarray(optax.losses.log_cosh(jnp.asarray(x), jnp.asarray(t)))
    assert_close(xploss.log_cosh_loss(x, t, reduction="none"), expected, "numpy")


def test_log_cosh_loss_tiny_and_huge_residuals():
    out = xploss.log_cosh_loss(np.array([1e-5, 1e30]), np.zeros(2), reduction="none")
    # log cosh of the double nearest 1e-5, about 5e-11 - 1e-20/12 (mpmath:
    # 4.9999999999166674847e-11)
    assert out[0] == pytest.approx(4.9999999999166674847e-11, rel=1e-15, abs=0)
    # log cosh(1e30) = 1e30 - log 2 = 1e30 in float64
    assert out[1] == 1e30


# Keras reduces float64 input in float32 (its mean promotes 64-bit results to
# 32 bits, see test_peer_oracles.py), so these oracles hold to float32 precision.
KERAS_RTOL = 1e-6


@pytest.mark.parametrize(("name", "peer_name"), [("mape_loss", "mean_absolute_percentage_error"),
                                               ("msle_loss", "mean_squared_logarithmic_error")])
def test_vs_keras(keras, name, peer_name):
    rng = np.random.default_rng(7)
    x, t = rng.uniform(0.1, 5, SHAPE), rng.uniform(0.1, 5, SHAPE)
    expected = np.asarray(getattr(keras.losses, peer_name)(t, x))
    # Keras averages the last axis; xploss's 'none' is elementwise.
    ours = np.mean(np.asarray(getattr(xploss, name)(x, t, reduction="none")), axis=-1)
    np.testing.assert_allclose(ours, expected, rtol=KERAS_RTOL)


def test_mape_and_msle_without_keras_clamps():
    # Keras divides by max(|y|, 1e-7) and clamps negative values to 1e-7.
    mape = xploss.mape_loss(np.array([1.0, 0.0]), np.array([0.0, 0.0]), reduction="none")
    assert mape[0] == np.inf
    assert mape[1] == 0
    msle = xploss.msle_loss(np.array([-0.5, -1.5, -1.0]), np.array([0.0, 0.0, 0.0]),
                            reduction="none")
    assert msle[0] == pytest.approx(np.log(0.5) ** 2, rel=1e-15, abs=0)
    assert np.isnan(msle[1])
    assert msle[2] == np.inf
