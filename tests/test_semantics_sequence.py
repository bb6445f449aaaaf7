"""Semantics of ``ctc_loss`` against ``torch.nn.functional.ctc_loss``.

Values and gradients (with respect to logits, through a log-softmax, where
torch's gradient is right) are compared in float64 at a relative tolerance of
1e-10 on random batches with varying input and target lengths, over every
reduction, ``zero_infinity``, a blank other than 0, padded and concatenated
targets and unbatched input. The documented deviations are tested as such: the
gradient with respect to ``log_probs`` is the true derivative (torch returns
exp(log_probs) minus it), and invalid values give NaN (torch raises).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from helpers import as_torch, assert_close, to_numpy  # noqa: E402

import xploss  # noqa: E402
from xploss import backends  # noqa: E402
from xploss.sequence import ctc_loss  # noqa: E402

LIBS = ["numpy", "torch"]
REDUCTIONS = ["none", "mean", "sum"]


def _batch(seed=0, *, blank=0, impossible=False, n_frames=10, n_classes=5):
    """(logits (T, N, C), padded targets (N, S), input lengths, target lengths):
    varying lengths, a repeated-label row, an empty target and a zero-length input
    with an empty target; with ``impossible``, a row too short for its target."""
    rng = np.random.default_rng(seed)
    labels = [c for c in range(n_classes) if c != blank]
    logits = rng.normal(0.0, 2.0, (n_frames, 6, n_classes))
    targets = rng.choice(labels, (6, 4))
    targets[1, :3] = labels[1]  # [a, a, a] needs 5 frames
    input_lengths = np.array([n_frames, n_frames - 1, 7, 5, 0, n_frames - 4])
    target_lengths = np.array([4, 3, 2, 0, 0, 3])
    if impossible:
        targets[5, :2] = labels[0]  # [a, a, ...] of 3 labels needs 4 frames: give 3
        input_lengths[5] = 3
    return logits, targets, input_lengths, target_lengths


def _concatenated(targets, target_lengths):
    return np.concatenate([targets[i, :k] for i, k in enumerate(target_lengths)])


def _ours(**kw):
    return lambda x, t, il, tl: ctc_loss(xploss.log_softmax(x), t, il, tl, **kw)


def _torch(**kw):
    return lambda x, t, il, tl: F.ctc_loss(torch.log_softmax(x, -1), t, il, tl, **kw)


def _to(a, lib):
    return a if lib == "numpy" else torch.from_numpy(np.array(a, copy=True))


def _check(arrays, lib, torch_arrays=None, **kw):
    """Values equal torch's (on ``torch_arrays`` where given); for torch inputs, so
    do the gradients wrt the logits."""
    torch_arrays = arrays if torch_arrays is None else torch_arrays
    assert_close(_ours(**kw)(*[_to(a, lib) for a in arrays]),
                 _torch(**kw)(*[as_torch(a) for a in torch_arrays]), lib)
    if lib != "torch":
        return
    mine = [as_torch(a, i == 0) for i, a in enumerate(arrays)]
    theirs = [as_torch(a, i == 0) for i, a in enumerate(torch_arrays)]
    _ours(**kw)(*mine).sum().backward()
    _torch(**kw)(*theirs).sum().backward()
    assert_close(mine[0].grad, theirs[0].grad)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("blank", [0, 3])
@pytest.mark.parametrize("form", ["padded", "concatenated"])
def test_ctc_loss_vs_torch(form, blank, zero_infinity, reduction, lib):
    # With zero_infinity an impossible row is included: 0, with zero gradient.
    x, t, il, tl = _batch(1, blank=blank, impossible=zero_infinity)
    if form == "concatenated":
        t = _concatenated(t, tl)
    _check((x, t, il, tl), lib, blank=blank, reduction=reduction, zero_infinity=zero_infinity)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_unbatched_vs_torch(reduction, lib):
    x, t, il, tl = _batch(2)
    _check((x[:, 0], t[0], np.array(il[0]), np.array(tl[0])), lib, reduction=reduction)


@pytest.mark.parametrize("lib", LIBS)
def test_ctc_loss_minus_inf_log_probs_vs_torch(lib):
    # Probability-0 classes in some frames, with alignments left open. torch's
    # backward gives NaN at -inf log-probabilities (exp(lp) - exp(... - lp) is
    # inf - inf), so its side gets logits of -1e4 there: probability
    # exp(-1e4) = 0 in float64 as well, the same loss and gradient.
    x, t, il, tl = _batch(3)
    x[2, :, 4] = x[0, 0, t[0, 0]] = x[5, 1, 0] = -math.inf
    _check((x, t, il, tl), lib, (np.where(np.isinf(x), -1e4, x), t, il, tl),
           reduction="none")


def test_ctc_loss_gradient_is_the_true_derivative():
    # torch's backward returns exp(log_probs) - gamma (the logits gradient of an
    # assumed log_softmax); the derivative with respect to log_probs is -gamma.
    x, t, il, tl = _batch(4)
    lp = torch.log_softmax(as_torch(x), -1)
    mine, theirs = lp.clone().requires_grad_(True), lp.clone().requires_grad_(True)
    args = (as_torch(t), as_torch(il), as_torch(tl))
    ctc_loss(mine, *args, reduction="sum").backward()
    F.ctc_loss(theirs, *args, reduction="sum").backward()
    used = (torch.arange(x.shape[0])[:, None] < as_torch(il)[None, :])[..., None]
    expected = theirs.grad - torch.where(used, lp.exp(), 0.0)
    assert_close(mine.grad, expected)
    # and it is the derivative: a central difference at one entry
    h = 1e-6
    bumped = [lp.clone(), lp.clone()]
    bumped[0][3, 0, 1] += h
    bumped[1][3, 0, 1] -= h
    diff = (ctc_loss(bumped[0], *args, reduction="sum")
            - ctc_loss(bumped[1], *args, reduction="sum")) / (2 * h)
    # Central difference: its rounding is ~eps·|loss|/h = 4e-9 for a summed loss
    # of ~20, about 5e-7 of this gradient (0.008); truncation ~h² is far below.
    assert float(diff) == pytest.approx(float(mine.grad[3, 0, 1]), rel=1e-6, abs=0)


def test_ctc_loss_impossible_alignment_matches_torch():
    x, t, il, tl = _batch(5, impossible=True)
    lp = torch.log_softmax(as_torch(x), -1)
    ours = ctc_loss(lp, as_torch(t), as_torch(il), as_torch(tl), reduction="none")
    theirs = F.ctc_loss(lp, as_torch(t), as_torch(il), as_torch(tl), reduction="none")
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    assert float(ours[5]) == math.inf
    assert_close(ours[:5], theirs[:5])


def _on(target, arrays, dtype="float64"):
    b = target.backend
    return [b.asarray(a, target, dtype if a.dtype.kind == "f" else None) for a in arrays]


def _lp(seed=6, *, n_frames=6):
    """A small batch for the backend, gradient and compiler tests (one shape for
    all of them: JAX compiles each eager operation once per shape): log-probs
    (T, 4, 4) and targets (4, 3) of an ordinary row, a repeated-label row, an
    empty target and an impossible row ([1, 1, 2] in 3 frames)."""
    rng = np.random.default_rng(seed)
    lp = to_numpy(torch.log_softmax(torch.from_numpy(rng.normal(0.0, 2.0, (n_frames, 4, 4))),
                                    -1))
    targets = np.array([rng.choice([1, 2, 3], 3), [2, 2, 2], [1, 2, 3], [1, 1, 2]])
    input_lengths = np.array([n_frames, n_frames, n_frames - 2, 3])
    return lp, targets, input_lengths, np.array([3, 3, 0, 3])


def test_ctc_loss_same_values_on_every_backend(target):
    lp, t, il, tl = _lp()
    expected = to_numpy(F.ctc_loss(*[as_torch(a) for a in (lp, t, il, tl)], reduction="none"))
    for form in ("padded", "concatenated"):
        tt = t if form == "padded" else _concatenated(t, tl)
        out = ctc_loss(*_on(target, (lp, tt, il, tl)), reduction="none")
        got = target.backend.to_numpy(out)
        assert got.dtype == np.float64
        assert np.array_equal(np.isinf(got), np.isinf(expected))
        fin = np.isfinite(expected)
        np.testing.assert_allclose(got[fin], expected[fin], rtol=1e-13)


def test_ctc_loss_impossible_gradients(diff_target):
    # +inf without zero_infinity, 0 with it; gradients finite (zero for the
    # impossible row) either way.
    lp, t, il, tl = _lp()
    b = diff_target.backend
    arrays = _on(diff_target, (lp, t, il, tl))
    xp = b.namespace()
    for zero_infinity in (False, True):

        def total(*a, zero_infinity=zero_infinity):
            losses = ctc_loss(*a, reduction="none", zero_infinity=zero_infinity)
            return xp.sum(xp.where(xp.isinf(losses), xp.zeros_like(losses), losses))

        out = b.to_numpy(ctc_loss(*arrays, reduction="none", zero_infinity=zero_infinity))
        assert out[3] == (0.0 if zero_infinity else math.inf)
        g = b.to_numpy(b.grad(total, tuple(arrays), 0))
        assert np.all(np.isfinite(g))
        assert np.all(g[:, 3] == 0)


def test_ctc_loss_all_minus_inf_frame_gradients_finite(diff_target):
    # A frame where every class is -inf closes every alignment: +inf, finite gradients.
    lp, t, il, tl = _lp(7)
    lp[3, 0, :] = -math.inf
    b = diff_target.backend
    arrays = _on(diff_target, (lp, t, il, tl))
    out = b.to_numpy(ctc_loss(*arrays, reduction="none", zero_infinity=True))
    assert out[0] == 0.0
    assert np.all(np.isfinite(out))
    g = b.to_numpy(b.grad(lambda *a: ctc_loss(*a, reduction="mean", zero_infinity=True),
                          tuple(arrays), 0))
    assert np.all(np.isfinite(g))
    assert np.all(g[:, 0] == 0)


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_ctc_loss_compiled_equals_eager(name):
    if backends.available().get(name) is not None:
        pytest.skip(f"{name} is not usable here")
    b = backends.get(name)
    target = b.targets()[0]
    # Small: torch.compile's time grows with the number of frames.
    lp, t, il, tl = _lp(8, n_frames=3)
    il = np.minimum(il, 3)
    arrays = _on(target, (lp, _concatenated(t, tl), il, tl))

    def fn(*a):
        return ctc_loss(*a, reduction="none", blank=0, zero_infinity=True)

    eager = b.to_numpy(fn(*arrays))
    compiled = b.to_numpy(b.compile(fn)(*arrays))
    np.testing.assert_allclose(compiled, eager, rtol=1e-14)


def test_ctc_loss_jit_gradient_matches_eager():
    jax = pytest.importorskip("jax")
    b = backends.get("jax")
    lp, t, il, tl = _lp(9)
    arrays = _on(b.targets()[0], (lp, t, il, tl))

    def total(x, *rest):
        return ctc_loss(x, *rest, reduction="mean", zero_infinity=True)

    eager = np.asarray(jax.grad(total)(*arrays))
    jitted = np.asarray(jax.jit(jax.grad(total))(*arrays))
    assert np.all(np.isfinite(jitted))
    np.testing.assert_allclose(jitted, eager, rtol=1e-12, atol=1e-15)


def test_ctc_loss_confident_tiny_loss():
    # Label 1 with probability 1 - 1e-12 in each of three frames; mpmath:
    # -log(q^3 + 2 q^2 d + 3 q d^2), q = 1 - d, d = 1e-12, is 9.999999999984999799e-13.
    d = 1e-12
    lp = np.array([[[math.log(d), math.log1p(-d)]]] * 3)
    out = ctc_loss(lp, np.array([[1]]), np.array([3]), np.array([1]), reduction="none")
    assert out[0] == pytest.approx(9.999999999984999799e-13, rel=4e-16, abs=0)


def test_ctc_loss_half_precision_computes_in_float32():
    lp, t, il, tl = _lp(10)
    half = torch.tensor(lp, dtype=torch.float16)
    args = (as_torch(t), as_torch(il), as_torch(tl))
    out = ctc_loss(half, *args, reduction="none")
    assert out.dtype == torch.float32
    expected = ctc_loss(half.float(), *args, reduction="none")
    assert torch.equal(out, expected)


@pytest.mark.parametrize(("change", "row"), [
    ("label_is_blank", 0), ("label_out_of_range", 0), ("negative_label", 0),
    ("input_length_above_T", 2), ("negative_input_length", 2),
    ("target_length_above_S", 1), ("negative_target_length", 1), ("nan_log_prob", 0),
])
def test_ctc_loss_invalid_values_give_nan(change, row):
    lp, t, il, tl = _lp(11)
    t, il, tl = t.copy(), il.copy(), tl.copy()
    if change == "label_is_blank":
        t[0, 1] = 0
    elif change == "label_out_of_range":
        t[0, 1] = 4
    elif change == "negative_label":
        t[0, 1] = -1
    elif change == "input_length_above_T":
        il[2] = lp.shape[0] + 1
    elif change == "negative_input_length":
        il[2] = -1
    elif change == "target_length_above_S":
        tl[1] = t.shape[1] + 1
    elif change == "negative_target_length":
        tl[1] = -1
    else:
        lp[1, 0, t[0, 0]] = math.nan
    out = ctc_loss(lp, t, il, tl, reduction="none")
    assert np.isnan(out[row])
    assert not np.any(np.isnan(np.delete(out, row)))
    assert np.isnan(ctc_loss(lp, t, il, tl))


def test_ctc_loss_nan_in_unused_class_or_frame_is_ignored():
    # Like torch: a class outside the target, or a frame past the input length, is never read.
    lp, t, il, tl = _lp(12)
    expected = ctc_loss(lp, t, il, tl, reduction="none")
    lp = lp.copy()
    unused = sorted(set(range(4)) - {0, *t[0, :tl[0]].tolist()})
    if unused:
        lp[:, 0, unused[0]] = math.nan
    lp[il[2]:, 2, :] = math.nan
    np.testing.assert_array_equal(ctc_loss(lp, t, il, tl, reduction="none"), expected)


def test_ctc_loss_empty_batch_mean_is_zero():
    out = ctc_loss(np.zeros((4, 0, 3)), np.zeros((0, 2), np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.int64))
    assert out == 0.0


def _args():
    return (np.zeros((4, 2, 3)), np.ones((2, 2), np.int64), np.array([4, 4]), np.array([2, 1]))


@pytest.mark.parametrize(("position", "value", "kwargs", "error", "match"), [
    (0, np.zeros((4, 2, 3), np.int64), {}, TypeError, "'log_probs' must have a real floating"),
    (1, np.ones((2, 2)), {}, TypeError, "'targets' must have an integer dtype"),
    (2, np.array([4.0, 4.0]), {}, TypeError, "'input_lengths' must have an integer dtype"),
    (3, np.array([True, False]), {}, TypeError, "'target_lengths' must have an integer dtype"),
    (0, np.zeros((4, 2, 3, 1)), {}, ValueError, r"'log_probs' must have shape \(T, N, C\)"),
    (1, np.ones((3, 2), np.int64), {}, ValueError, r"'targets' must have shape \(N, S\)"),
    (1, np.ones((2, 2, 1), np.int64), {}, ValueError, r"'targets' must have shape \(N, S\)"),
    (2, np.array([4, 4, 4]), {}, ValueError, r"'input_lengths' must have shape \(2,\)"),
    (3, np.array(2), {}, ValueError, r"'target_lengths' must have shape \(2,\)"),
    (None, None, {"blank": 3}, ValueError, r"'blank' must be an int in \[0, 3\)"),
    (None, None, {"blank": -1}, ValueError, "'blank' must be an int"),
    (None, None, {"blank": True}, ValueError, "'blank' must be an int"),
    (None, None, {"reduction": "batchmean"}, ValueError, "'reduction' must be one of"),
    (None, None, {"zero_infinity": 1}, TypeError, "'zero_infinity' must be a bool"),
])
def test_ctc_loss_argument_errors(position, value, kwargs, error, match):
    args = list(_args())
    if position is not None:
        args[position] = value
    with pytest.raises(error, match=f"ctc_loss: {match}"):
        ctc_loss(*args, **kwargs)


def test_ctc_loss_unbatched_shapes_are_checked():
    with pytest.raises(ValueError, match=r"ctc_loss: 'targets' must have shape \(S,\)"):
        ctc_loss(np.zeros((4, 3)), np.ones((1, 2), np.int64), np.array(4), np.array(2))
    with pytest.raises(ValueError, match=r"ctc_loss: 'input_lengths' must have shape \(\)"):
        ctc_loss(np.zeros((4, 3)), np.ones(2, np.int64), np.array([4]), np.array(2))


def test_ctc_loss_mixed_libraries_is_an_error():
    with pytest.raises(TypeError, match="ctc_loss: all array arguments"):
        ctc_loss(torch.zeros(4, 2, 3), *_args()[1:])
