"""Semantics of the segmentation losses: Keras's ``dice`` and ``tversky`` as
oracles where Keras is installed, and the defining formulas written naively in
torch (values and autograd gradients) on ordinary float64 inputs, where they
are accurate, over every option.

Keras adds 1e-7 to each denominator and has no ``smooth``; its value is
converted back to the exact ratio (its denominator is known) before the
comparison at 1e-10. ``keras.losses.tversky`` applies ``alpha`` to the false
negatives, so its ``(alpha, beta)`` is xploss's ``(beta, alpha)``.
"""

from __future__ import annotations

import numpy as np
import pytest

import xploss

torch = pytest.importorskip("torch")

from helpers import check_against_torch as check  # noqa: E402

LIBS = ["numpy", "torch"]
REDUCTIONS = ["none", "mean", "sum"]
AXES = [None, (1, 2), 1, -1, (0, 2)]
KERAS_EPSILON = 1e-7


def _inputs(seed, shape=(4, 3, 5)):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=shape), (rng.uniform(size=shape) > 0.5) * 1.0


def _sum(x, axis):
    return np.sum(x, axis=axis)


@pytest.mark.parametrize("axis", AXES)
def test_dice_loss_vs_keras(keras, axis):
    p, t = _inputs(0)
    keras_score = 1 - np.asarray(keras.losses.dice(t, p, axis=axis))
    total = _sum(p, axis) + _sum(t, axis)
    expected = 1 - keras_score * (total + KERAS_EPSILON) / total
    out = xploss.dice_loss(p, t, smooth=0.0, axis=axis, reduction="none")
    np.testing.assert_allclose(out, expected, rtol=1e-10)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("alpha", "beta"), [(0.5, 0.5), (0.3, 0.7), (1.0, 0.0), (0.9, 0.2)])
def test_tversky_loss_vs_keras(keras, alpha, beta, axis):
    p, t = _inputs(1)
    keras_score = 1 - np.asarray(keras.losses.tversky(t, p, alpha=beta, beta=alpha, axis=axis))
    tp = _sum(p * t, axis)
    den = tp + alpha * _sum(p * (1 - t), axis) + beta * _sum((1 - p) * t, axis)
    expected = 1 - keras_score * (den + KERAS_EPSILON) / den
    out = xploss.tversky_loss(p, t, alpha=alpha, beta=beta, smooth=0.0, axis=axis,
                              reduction="none")
    np.testing.assert_allclose(out, expected, rtol=1e-10)


def _reduced(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _torch_dice(p, t, smooth, axis, reduction):
    dims = tuple(range(p.ndim)) if axis is None else axis
    inter = torch.sum(p * t, dim=dims)
    return _reduced(1 - (2 * inter + smooth) / (p.sum(dim=dims) + t.sum(dim=dims) + smooth),
                    reduction)


def _torch_tversky(p, t, alpha, beta, smooth, axis, reduction):
    dims = tuple(range(p.ndim)) if axis is None else axis
    tp = torch.sum(p * t, dim=dims)
    fp, fn = torch.sum(p * (1 - t), dim=dims), torch.sum((1 - p) * t, dim=dims)
    return _reduced(1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth), reduction)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smooth", [1.0, 0.0, 0.5])
@pytest.mark.parametrize("axis", AXES)
def test_dice_loss_vs_formula(axis, smooth, reduction, lib):
    p, t = _inputs(2)
    p[0, 0, 0] = 1.0  # probabilities 0 and 1 are in the domain
    p[1, 1, 1] = 0.0
    check(lambda a, b: xploss.dice_loss(a, b, smooth=smooth, axis=axis, reduction=reduction),
          lambda a, b: _torch_dice(a, b, smooth, axis, reduction), (p, t), lib)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("alpha", "beta", "smooth"), [(0.5, 0.5, 1.0), (0.3, 0.7, 0.0),
                                                       (0.7, 0.3, 2.0), (1.0, 0.0, 1.0)])
@pytest.mark.parametrize("axis", AXES)
def test_tversky_loss_vs_formula(axis, alpha, beta, smooth, reduction, lib):
    p, t = _inputs(3)
    check(lambda a, b: xploss.tversky_loss(a, b, alpha=alpha, beta=beta, smooth=smooth,
                                           axis=axis, reduction=reduction),
          lambda a, b: _torch_tversky(a, b, alpha, beta, smooth, axis, reduction), (p, t), lib)


@pytest.mark.parametrize("name", ["dice_loss", "tversky_loss"])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_perfect_predictions_give_zero_with_finite_gradients(name, smooth):
    # Rows: a perfect mask, an empty perfect one (Keras's dice gives 1 there).
    t = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    x = torch.tensor(t, requires_grad=True)
    loss = getattr(xploss, name)(x, torch.tensor(t), smooth=smooth, axis=1, reduction="none")
    assert torch.equal(loss, torch.zeros(2, dtype=torch.float64))
    loss.sum().backward()
    assert torch.all(torch.isfinite(x.grad))


def test_near_perfect_prediction_keeps_its_small_loss():
    # Dice of p = [1 - 2^-40, 0] against [1, 0]: 1 - (2p + 1)/(p + 2) rounds to
    # a multiple of 2^-53; the mismatch over the total is exact:
    # (2^-40)/(3 - 2^-40) (mpmath: 3.0316490059106799e-13).
    out = xploss.dice_loss(np.array([1 - 2.0**-40, 0.0]), np.array([1.0, 0.0]))
    assert out == pytest.approx(3.0316490059106799e-13, rel=1e-15, abs=0)


@pytest.mark.parametrize("name", ["dice_loss", "tversky_loss"])
def test_values_outside_the_unit_interval_and_nan_give_nan(name):
    fn = getattr(xploss, name)
    p = np.array([[0.5, 1.5], [0.5, 0.5], [np.nan, 0.5], [0.25, 0.5]])
    t = np.array([[1.0, 0.0], [1.0, -0.5], [1.0, 0.0], [1.0, 0.0]])
    out = fn(p, t, axis=1, reduction="none")
    assert np.all(np.isnan(out[:3]))
    assert np.isfinite(out[3])


def test_segmentation_errors_name_function_and_argument():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="dice_loss: 'smooth' must be >= 0"):
        xploss.dice_loss(x, x, smooth=-1.0)
    with pytest.raises(ValueError, match="tversky_loss: 'alpha' must be >= 0"):
        xploss.tversky_loss(x, x, alpha=-0.1)
    with pytest.raises(ValueError, match="dice_loss: 'target' must have the shape"):
        xploss.dice_loss(x, np.zeros(3))
    with pytest.raises(ValueError, match="dice_loss: 'axis' 2 is not"):
        xploss.dice_loss(x, x, axis=2)
    with pytest.raises(ValueError, match="tversky_loss: 'axis' \\(1, -1\\) is not"):
        xploss.tversky_loss(x, x, axis=(1, -1))
    with pytest.raises(TypeError, match="dice_loss: 'input' must have a real floating dtype"):
        xploss.dice_loss(np.zeros((2, 3), dtype=np.int64), x)
