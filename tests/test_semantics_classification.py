"""Semantics of the margin, divergence, focal and poly classification losses.

Each loss is compared, on ordinary float64 inputs and over a grid of its
options, with an oracle: its ``torch.nn.functional`` namesake where there is
one (``kl_div``, ``soft_margin_loss``, ``multilabel_soft_margin_loss``,
``multi_margin_loss``, ``multilabel_margin_loss``), otherwise the defining
formula written out here with torch or NumPy operations (torchvision's
``sigmoid_focal_loss``, the hinge losses, optax's ``multiclass_hinge_loss``,
PolyLoss, the softmax focal loss). Inputs are NumPy arrays and torch tensors;
results must come back in the input's library and agree to a relative
tolerance of 1e-10. Where a loss reduces to one that xploss already has
(focal loss at ``gamma=0``, PolyLoss at ``epsilon=0``), the two must agree.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from helpers import as_torch, assert_close, opt, to_lib  # noqa: E402

import xploss  # noqa: E402

LIBS = ["numpy", "torch"]
REDUCTIONS = ["none", "mean", "sum"]
N_CLASSES = 5


# ---------------------------------------------------------------------------
# helpers


def logits(rng, shape, scale=3.0):
    return rng.normal(0.0, scale, size=shape)


def soft_targets(rng, shape, axis):
    """Class probabilities along ``axis``: a softmax of random numbers."""
    z = rng.normal(0.0, 1.0, size=shape)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sign_targets(rng, shape):
    """float64 targets in {-1, 1}, both values present."""
    t = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    flat = t.reshape(-1)
    flat[0], flat[1] = -1.0, 1.0
    return t


def class_weight(rng, weighted):
    return rng.uniform(0.5, 2.0, size=N_CLASSES) if weighted else None


def np_reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.sum(loss)
    assert reduction == "mean"
    return np.mean(loss)


def torch_reduce(loss, reduction, denominator=None):
    """'none', 'sum', or 'mean' (the sum over ``denominator``, default the count)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    assert reduction == "mean"
    if denominator is None:
        return loss.mean()
    return loss.sum() / denominator


# Class-axis losses: shapes with the class axis at 1.
CLASS_SHAPES = {"NC": (6, N_CLASSES), "NCd1": (4, N_CLASSES, 3)}
INDEX_KINDS = ["index-ignore_default", "index-ignore_1"]


def class_index_targets(rng, shape, kind):
    """int64 class indices of ``shape`` and ``(ignore_index, kwargs)`` for ``kind``.

    The first target is always the valid class 0 and the second always ignored,
    so every case has both.
    """
    if kind == "index-ignore_default":
        ignore, kwargs = -100, {}
    elif kind == "index-ignore_1":
        ignore, kwargs = 1, {"ignore_index": 1}
    else:
        raise AssertionError(kind)
    t = rng.integers(0, N_CLASSES, size=shape, dtype=np.int64)
    t[rng.uniform(size=shape) < 0.25] = ignore
    flat = t.reshape(-1)
    flat[0] = 0
    flat[1] = ignore
    return t, ignore, kwargs


def class_case(rng, shape, kind, class_axis=1):
    """Logits, target, ignore_index (None for probabilities) and kwargs."""
    x = logits(rng, shape)
    if kind == "probs":
        return x, soft_targets(rng, shape, class_axis), None, {}
    tshape = shape[:class_axis] + shape[class_axis + 1:]
    t, ignore, kwargs = class_index_targets(rng, tshape, kind)
    return x, t, ignore, kwargs


def smoothed_target_distribution(t, ignore, label_smoothing):
    """The (smoothed) target distribution q, class axis 1, as a torch tensor,
    and the validity mask (None for probability targets)."""
    tt = torch.from_numpy(np.array(t, copy=True))
    if ignore is None:
        q = tt
        valid = None
    else:
        valid = tt != ignore
        safe = torch.where(valid, tt, torch.zeros_like(tt))
        q = torch.movedim(F.one_hot(safe, N_CLASSES), -1, 1).to(torch.float64)
    q = (1.0 - label_smoothing) * q + label_smoothing / N_CLASSES
    return q, valid


def target_class_weight(t, ignore, w):
    """w_{y_n} (1 without weights), 0 for ignored targets, as a torch tensor."""
    tt = torch.from_numpy(np.array(t, copy=True))
    valid = tt != ignore
    safe = torch.where(valid, tt, torch.zeros_like(tt))
    wy = torch.ones(tt.shape, dtype=torch.float64) if w is None else as_torch(w)[safe]
    return torch.where(valid, wy, torch.zeros_like(wy))


# ---------------------------------------------------------------------------
# kl_div


def kl_div_oracle(input, target, **kwargs):
    # torch warns that 'mean' will change meaning; the current meaning is the oracle.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides", category=UserWarning)
        return F.kl_div(as_torch(input), as_torch(target), **kwargs)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True], ids=["probs_target", "log_target"])
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_kl_div(lib, shape_name, log_target, reduction):
    rng = np.random.default_rng(3100)
    shape = CLASS_SHAPES[shape_name]
    x = torch.log_softmax(torch.from_numpy(logits(rng, shape)), dim=1).numpy()
    q = soft_targets(rng, shape, 1)
    if log_target:
        t = np.log(q)
    else:
        # Some exact zeros (0 log 0 = 0), then renormalised; class 0 stays positive.
        zero = rng.uniform(size=shape) < 0.3
        zero[:, 0] = False
        q = np.where(zero, 0.0, q)
        t = q / q.sum(axis=1, keepdims=True)
        assert np.any(t == 0.0)

    theirs = kl_div_oracle(x, t, reduction=reduction, log_target=log_target)
    ours = xploss.kl_div(to_lib(x, lib), to_lib(t, lib), reduction=reduction,
                         log_target=log_target)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("lib", LIBS)
def test_kl_div_defaults(lib):
    """Defaults: reduction='mean', log_target=False."""
    rng = np.random.default_rng(3101)
    x = torch.log_softmax(torch.from_numpy(logits(rng, (6, N_CLASSES))), dim=1).numpy()
    t = soft_targets(rng, (6, N_CLASSES), 1)
    theirs = kl_div_oracle(x, t, reduction="mean", log_target=False)
    assert_close(xploss.kl_div(to_lib(x, lib), to_lib(t, lib)), theirs, lib)


# ---------------------------------------------------------------------------
# soft_margin_loss

ELEMENTWISE_SHAPES = {"N": (8,), "NC": (6, 4), "NCd1": (3, 4, 2)}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape_name", list(ELEMENTWISE_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_soft_margin_loss(lib, shape_name, reduction):
    rng = np.random.default_rng(3200)
    shape = ELEMENTWISE_SHAPES[shape_name]
    x = logits(rng, shape)
    t = sign_targets(rng, shape)

    theirs = F.soft_margin_loss(as_torch(x), as_torch(t), reduction=reduction)
    ours = xploss.soft_margin_loss(to_lib(x, lib), to_lib(t, lib), reduction=reduction)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("lib", LIBS)
def test_soft_margin_loss_default_mean(lib):
    rng = np.random.default_rng(3201)
    x = logits(rng, (6, 4))
    t = sign_targets(rng, (6, 4))
    theirs = F.soft_margin_loss(as_torch(x), as_torch(t))
    assert_close(xploss.soft_margin_loss(to_lib(x, lib), to_lib(t, lib)), theirs, lib)


# ---------------------------------------------------------------------------
# multilabel_soft_margin_loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("lib", LIBS)
def test_multilabel_soft_margin_loss(lib, weighted, reduction):
    rng = np.random.default_rng(3300)
    shape = (6, N_CLASSES)
    x = logits(rng, shape)
    t = rng.integers(0, 2, size=shape).astype(np.float64)
    w = class_weight(rng, weighted)

    theirs = F.multilabel_soft_margin_loss(as_torch(x), as_torch(t), weight=as_torch(w),
                                           reduction=reduction)
    ours = xploss.multilabel_soft_margin_loss(to_lib(x, lib), to_lib(t, lib),
                                              weight=opt(w, lib), reduction=reduction)
    assert_close(ours, theirs, lib)


# ---------------------------------------------------------------------------
# multi_margin_loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("margin", [1.0, 0.5], ids=lambda v: f"margin{v}")
@pytest.mark.parametrize("p", [1, 2], ids=lambda v: f"p{v}")
@pytest.mark.parametrize("lib", LIBS)
def test_multi_margin_loss(lib, p, margin, weighted, reduction):
    rng = np.random.default_rng(3400)
    # Unit-scale logits keep most hinge terms active.
    x = logits(rng, (6, N_CLASSES), scale=1.0)
    t = rng.integers(0, N_CLASSES, size=(6,), dtype=np.int64)
    w = class_weight(rng, weighted)

    theirs = F.multi_margin_loss(as_torch(x), as_torch(t), p=p, margin=margin,
                                 weight=as_torch(w), reduction=reduction)
    ours = xploss.multi_margin_loss(to_lib(x, lib), to_lib(t, lib), p=p, margin=margin,
                                    weight=opt(w, lib), reduction=reduction)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("lib", LIBS)
def test_multi_margin_loss_defaults(lib):
    """Defaults: p=1, margin=1.0, no weight, reduction='mean'."""
    rng = np.random.default_rng(3401)
    x = logits(rng, (6, N_CLASSES), scale=1.0)
    t = rng.integers(0, N_CLASSES, size=(6,), dtype=np.int64)
    theirs = F.multi_margin_loss(as_torch(x), as_torch(t))
    assert_close(xploss.multi_margin_loss(to_lib(x, lib), to_lib(t, lib)), theirs, lib)


# ---------------------------------------------------------------------------
# multilabel_margin_loss


def multilabel_index_row(rng, k, junk_after=False):
    """k distinct class indices, then -1 padding (junk indices after the first
    -1 if ``junk_after``: torch reads a row only up to its first -1)."""
    row = np.full(N_CLASSES, -1, dtype=np.int64)
    row[:k] = rng.permutation(N_CLASSES)[:k]
    if junk_after and k + 1 < N_CLASSES:
        row[k + 1:] = rng.integers(0, N_CLASSES, size=N_CLASSES - k - 1)
    return row


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape_name", ["unbatched", "NC"])
@pytest.mark.parametrize("lib", LIBS)
def test_multilabel_margin_loss(lib, shape_name, reduction):
    rng = np.random.default_rng(3500)
    if shape_name == "unbatched":
        x = logits(rng, (N_CLASSES,), scale=1.0)
        t = multilabel_index_row(rng, 2)
    else:
        # Rows with 0 targets (all -1) and with every class a target (no -1) included.
        ks = [2, 0, 1, 3, N_CLASSES, 4]
        x = logits(rng, (len(ks), N_CLASSES), scale=1.0)
        t = np.stack([multilabel_index_row(rng, k) for k in ks])

    theirs = F.multilabel_margin_loss(as_torch(x), as_torch(t), reduction=reduction)
    ours = xploss.multilabel_margin_loss(to_lib(x, lib), to_lib(t, lib), reduction=reduction)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("lib", LIBS)
def test_multilabel_margin_loss_stops_at_first_minus_one(lib):
    """Indices after a row's first -1 are not targets (torch's convention)."""
    rng = np.random.default_rng(3501)
    ks = [1, 2, 0, 3]
    x = logits(rng, (len(ks), N_CLASSES), scale=1.0)
    t = np.stack([multilabel_index_row(rng, k, junk_after=True) for k in ks])
    assert np.any(t[:, -1] != -1)

    theirs = F.multilabel_margin_loss(as_torch(x), as_torch(t), reduction="none")
    ours = xploss.multilabel_margin_loss(to_lib(x, lib), to_lib(t, lib), reduction="none")
    assert_close(ours, theirs, lib)


# ---------------------------------------------------------------------------
# sigmoid_focal_loss

FOCAL_SHAPE = (5, 4)


def binary_targets(rng, shape, kind):
    if kind == "hard":
        return rng.integers(0, 2, size=shape).astype(np.float64)
    return rng.uniform(0.0, 1.0, size=shape)


def sigmoid_focal_oracle(x, t, *, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss, written out."""
    x, t = as_torch(x), as_torch(t)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
        loss = alpha_t * loss
    return torch_reduce(loss, reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["hard", "soft"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0], ids=lambda v: f"gamma{v}")
@pytest.mark.parametrize("alpha", [0.25, -1.0], ids=lambda v: f"alpha{v}")
@pytest.mark.parametrize("lib", LIBS)
def test_sigmoid_focal_loss(lib, alpha, gamma, target_kind, reduction):
    rng = np.random.default_rng(3600)
    x = logits(rng, FOCAL_SHAPE)
    t = binary_targets(rng, FOCAL_SHAPE, target_kind)

    theirs = sigmoid_focal_oracle(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    ours = xploss.sigmoid_focal_loss(to_lib(x, lib), to_lib(t, lib), alpha=alpha, gamma=gamma,
                                     reduction=reduction)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("lib", LIBS)
def test_sigmoid_focal_loss_defaults(lib):
    """Defaults (torchvision's): alpha=0.25, gamma=2, reduction='none'."""
    rng = np.random.default_rng(3601)
    x = logits(rng, FOCAL_SHAPE)
    t = binary_targets(rng, FOCAL_SHAPE, "hard")
    theirs = sigmoid_focal_oracle(x, t, alpha=0.25, gamma=2.0, reduction="none")
    assert_close(xploss.sigmoid_focal_loss(to_lib(x, lib), to_lib(t, lib)), theirs, lib)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["hard", "soft"])
@pytest.mark.parametrize("lib", LIBS)
def test_sigmoid_focal_loss_gamma0_no_alpha_is_bce(lib, target_kind, reduction):
    rng = np.random.default_rng(3602)
    x = logits(rng, FOCAL_SHAPE)
    t = binary_targets(rng, FOCAL_SHAPE, target_kind)
    ours = xploss.sigmoid_focal_loss(to_lib(x, lib), to_lib(t, lib), alpha=-1.0, gamma=0.0,
                                     reduction=reduction)
    bce = xploss.binary_cross_entropy_with_logits(to_lib(x, lib), to_lib(t, lib),
                                                  reduction=reduction)
    assert_close(ours, bce, lib)


# ---------------------------------------------------------------------------
# hinge_loss, squared_hinge_loss


def hinge_oracle(fname, x, t, reduction):
    """max(0, 1 - t x) (squared for squared_hinge_loss), 0 targets read as -1."""
    t = np.where(t == 0, -1.0, t)
    loss = np.maximum(0.0, 1.0 - t * x)
    if fname == "squared_hinge_loss":
        loss = loss**2
    return np_reduce(loss, reduction)


HINGE_SHAPES = {"N": (8,), "NC": (5, 4)}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["pm1", "01"], ids=["targets_pm1", "targets_01"])
@pytest.mark.parametrize("shape_name", list(HINGE_SHAPES))
@pytest.mark.parametrize("fname", ["hinge_loss", "squared_hinge_loss"])
@pytest.mark.parametrize("lib", LIBS)
def test_hinge_losses(lib, fname, shape_name, target_kind, reduction):
    rng = np.random.default_rng(3700)
    shape = HINGE_SHAPES[shape_name]
    x = logits(rng, shape, scale=1.5)
    t = sign_targets(rng, shape)
    if target_kind == "01":
        t = np.where(t < 0, 0.0, 1.0)
    theirs = hinge_oracle(fname, x, t, reduction)
    assert np.any(theirs > 0)
    ours = getattr(xploss, fname)(to_lib(x, lib), to_lib(t, lib), reduction=reduction)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("fname", ["hinge_loss", "squared_hinge_loss"])
@pytest.mark.parametrize("lib", LIBS)
def test_hinge_losses_default_mean(lib, fname):
    rng = np.random.default_rng(3701)
    x = logits(rng, (5, 4), scale=1.5)
    t = sign_targets(rng, (5, 4))
    theirs = hinge_oracle(fname, x, t, "mean")
    assert_close(getattr(xploss, fname)(to_lib(x, lib), to_lib(t, lib)), theirs, lib)


# ---------------------------------------------------------------------------
# multiclass_hinge_loss (Crammer-Singer)


def multiclass_hinge_oracle(x, t, *, margin, class_axis, reduction):
    """optax.multiclass_hinge_loss with ``margin`` for its 1:
    max_c (x_c + margin (1 - onehot_c)) - x_y."""
    xl = np.moveaxis(x, class_axis, -1)
    onehot = t[..., None] == np.arange(xl.shape[-1])
    x_y = np.take_along_axis(xl, t[..., None], axis=-1)[..., 0]
    loss = np.max(xl + margin * (1.0 - onehot), axis=-1) - x_y
    return np_reduce(loss, reduction)


MARGINS = [None, 0.5, 2.0]  # None: not passed (default 1.0)


def margin_id(v):
    return "margin_default" if v is None else f"margin{v}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", MARGINS, ids=margin_id)
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_multiclass_hinge_loss(lib, shape_name, margin, reduction):
    rng = np.random.default_rng(3800)
    shape = CLASS_SHAPES[shape_name]
    x = logits(rng, shape, scale=1.0)
    t = rng.integers(0, N_CLASSES, size=shape[:1] + shape[2:], dtype=np.int64)
    kwargs = {} if margin is None else {"margin": margin}

    theirs = multiclass_hinge_oracle(x, t, margin=1.0 if margin is None else margin,
                                     class_axis=1, reduction=reduction)
    ours = xploss.multiclass_hinge_loss(to_lib(x, lib), to_lib(t, lib), reduction=reduction,
                                        **kwargs)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5], ids=lambda v: f"margin{v}")
@pytest.mark.parametrize("lib", LIBS)
def test_multiclass_hinge_loss_last_axis(lib, margin, reduction):
    """``axis=-1`` on (N, d1, C), channels-last."""
    rng = np.random.default_rng(3801)
    shape = (4, 3, N_CLASSES)
    x = logits(rng, shape, scale=1.0)
    t = rng.integers(0, N_CLASSES, size=shape[:-1], dtype=np.int64)

    theirs = multiclass_hinge_oracle(x, t, margin=margin, class_axis=-1, reduction=reduction)
    ours = xploss.multiclass_hinge_loss(to_lib(x, lib), to_lib(t, lib), margin=margin,
                                        reduction=reduction, axis=-1)
    assert_close(ours, theirs, lib)


# ---------------------------------------------------------------------------
# poly1_cross_entropy


def poly1_oracle(x, t, ignore, *, epsilon, weight, reduction, label_smoothing, ce_kwargs):
    """cross_entropy (torch, reduction='none') + epsilon * w_y * (1 - sum_c q_c p_c)."""
    xt = as_torch(x)
    ce = F.cross_entropy(xt, as_torch(t), weight=as_torch(weight), reduction="none",
                         label_smoothing=label_smoothing, **ce_kwargs)
    q, valid = smoothed_target_distribution(t, ignore, label_smoothing)
    p_t = torch.sum(q * torch.softmax(xt, dim=1), dim=1)
    if ignore is None:
        return torch_reduce(ce + epsilon * (1.0 - p_t), reduction)
    wy = target_class_weight(t, ignore, weight)
    poly = torch.where(valid, wy * (1.0 - p_t), torch.zeros_like(p_t))
    return torch_reduce(ce + epsilon * poly, reduction, wy.sum())


# epsilon=0 is checked against xploss.cross_entropy over every option below.
EPSILONS = [1.0, 2.0]
# Options with class-index targets: no weights and no smoothing, class weights,
# label smoothing (weights and smoothing together only at epsilon=0, below).
POLY_INDEX_OPTIONS = {
    "plain": (False, 0.0),
    "weighted": (True, 0.0),
    "ls0.1": (False, 0.1),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", list(POLY_INDEX_OPTIONS))
@pytest.mark.parametrize("epsilon", EPSILONS, ids=lambda v: f"eps{v}")
@pytest.mark.parametrize("kind", INDEX_KINDS)
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_poly1_cross_entropy_index(lib, shape_name, kind, epsilon, options, reduction):
    rng = np.random.default_rng(3900)
    weighted, label_smoothing = POLY_INDEX_OPTIONS[options]
    x, t, ignore, kwargs = class_case(rng, CLASS_SHAPES[shape_name], kind)
    w = class_weight(rng, weighted)

    theirs = poly1_oracle(x, t, ignore, epsilon=epsilon, weight=w, reduction=reduction,
                          label_smoothing=label_smoothing, ce_kwargs=kwargs)
    ours = xploss.poly1_cross_entropy(
        to_lib(x, lib), to_lib(t, lib), epsilon=epsilon, weight=opt(w, lib),
        reduction=reduction, label_smoothing=label_smoothing, **kwargs,
    )
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("epsilon", EPSILONS, ids=lambda v: f"eps{v}")
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_poly1_cross_entropy_probs(lib, shape_name, epsilon, label_smoothing, reduction):
    rng = np.random.default_rng(3901)
    x, t, ignore, kwargs = class_case(rng, CLASS_SHAPES[shape_name], "probs")

    theirs = poly1_oracle(x, t, ignore, epsilon=epsilon, weight=None, reduction=reduction,
                          label_smoothing=label_smoothing, ce_kwargs=kwargs)
    ours = xploss.poly1_cross_entropy(to_lib(x, lib), to_lib(t, lib), epsilon=epsilon,
                                      reduction=reduction, label_smoothing=label_smoothing)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", [*INDEX_KINDS, "probs"])
@pytest.mark.parametrize("lib", LIBS)
def test_poly1_cross_entropy_last_axis(lib, kind, reduction):
    """``axis=-1`` on (N, d1, C) equals the oracle on the class axis moved to 1."""
    rng = np.random.default_rng(3902)
    x, t, ignore, kwargs = class_case(rng, (4, 3, N_CLASSES), kind, class_axis=2)
    w = None if kind == "probs" else class_weight(rng, True)
    t1 = np.moveaxis(t, -1, 1) if kind == "probs" else t

    theirs = poly1_oracle(np.moveaxis(x, -1, 1), t1, ignore, epsilon=2.0, weight=w,
                          reduction=reduction, label_smoothing=0.0, ce_kwargs=kwargs)
    ours = xploss.poly1_cross_entropy(to_lib(x, lib), to_lib(t, lib), epsilon=2.0,
                                      weight=opt(w, lib), reduction=reduction, axis=-1,
                                      **kwargs)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("kind", [*INDEX_KINDS, "probs"])
@pytest.mark.parametrize("lib", LIBS)
def test_poly1_cross_entropy_default_epsilon(lib, kind):
    """Defaults: epsilon=1, reduction='mean'."""
    rng = np.random.default_rng(3903)
    x, t, ignore, kwargs = class_case(rng, CLASS_SHAPES["NCd1"], kind)
    theirs = poly1_oracle(x, t, ignore, epsilon=1.0, weight=None, reduction="mean",
                          label_smoothing=0.0, ce_kwargs=kwargs)
    ours = xploss.poly1_cross_entropy(to_lib(x, lib), to_lib(t, lib), **kwargs)
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", [*INDEX_KINDS, "probs"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize(("name", "options"),
                         [("poly1_cross_entropy", {"epsilon": 0.0}),
                          ("softmax_focal_loss", {"alpha": None, "gamma": 0.0})],
                         ids=["poly1_epsilon0", "focal_gamma0"])
def test_reduces_to_cross_entropy(name, options, lib, kind, weighted, label_smoothing,
                                  reduction):
    rng = np.random.default_rng(3904)
    x, t, _, kwargs = class_case(rng, CLASS_SHAPES["NCd1"], kind)
    w = class_weight(rng, weighted)
    kwargs.update(weight=opt(w, lib), reduction=reduction, label_smoothing=label_smoothing)

    ours = getattr(xploss, name)(to_lib(x, lib), to_lib(t, lib), **options, **kwargs)
    ce = xploss.cross_entropy(to_lib(x, lib), to_lib(t, lib), **kwargs)
    assert_close(ours, ce, lib)


# ---------------------------------------------------------------------------
# softmax_focal_loss


def softmax_focal_oracle(x, t, ignore, *, alpha, gamma, weight, reduction, label_smoothing):
    """-sum_c a w_c q_c (1 - p_c)^gamma log p_c over the class axis 1; 'mean' over
    sum of w_{y_n} (class indices) or the number of rows (probabilities)."""
    xt = as_torch(x)
    log_p = torch.log_softmax(xt, dim=1)
    p = torch.softmax(xt, dim=1)
    q, valid = smoothed_target_distribution(t, ignore, label_smoothing)
    terms = q * (1.0 - p) ** gamma * log_p
    if weight is not None:
        shape = (1, N_CLASSES) + (1,) * (x.ndim - 2)
        terms = as_torch(weight).reshape(shape) * terms
    if alpha is not None:
        terms = alpha * terms
    loss = -torch.sum(terms, dim=1)
    if ignore is None:
        return torch_reduce(loss, reduction)
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return torch_reduce(loss, reduction, target_class_weight(t, ignore, weight).sum())


FOCAL_CASES = {
    "NC-index-ignore_default": ("NC", "index-ignore_default"),
    "NCd1-index-ignore_1": ("NCd1", "index-ignore_1"),
    "NCd1-probs": ("NCd1", "probs"),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("alpha", [None, 0.25], ids=lambda v: f"alpha{v}")
# gamma=0 with alpha=None is checked against xploss.cross_entropy above.
@pytest.mark.parametrize("gamma", [0.5, 2.0], ids=lambda v: f"gamma{v}")
@pytest.mark.parametrize("case", list(FOCAL_CASES))
@pytest.mark.parametrize("lib", LIBS)
def test_softmax_focal_loss(lib, case, gamma, alpha, weighted, label_smoothing, reduction):
    rng = np.random.default_rng(4000)
    shape_name, kind = FOCAL_CASES[case]
    x, t, ignore, kwargs = class_case(rng, CLASS_SHAPES[shape_name], kind)
    w = class_weight(rng, weighted)

    theirs = softmax_focal_oracle(x, t, ignore, alpha=alpha, gamma=gamma, weight=w,
                                  reduction=reduction, label_smoothing=label_smoothing)
    ours = xploss.softmax_focal_loss(
        to_lib(x, lib), to_lib(t, lib), alpha=alpha, gamma=gamma, weight=opt(w, lib),
        reduction=reduction, label_smoothing=label_smoothing, **kwargs,
    )
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", [*INDEX_KINDS, "probs"])
@pytest.mark.parametrize("lib", LIBS)
def test_softmax_focal_loss_last_axis(lib, kind, reduction):
    """``axis=-1`` on (N, d1, C) equals the oracle on the class axis moved to 1."""
    rng = np.random.default_rng(4001)
    x, t, ignore, kwargs = class_case(rng, (4, 3, N_CLASSES), kind, class_axis=2)
    w = class_weight(rng, True)
    t1 = np.moveaxis(t, -1, 1) if kind == "probs" else t

    theirs = softmax_focal_oracle(np.moveaxis(x, -1, 1), t1, ignore, alpha=0.25, gamma=2.0,
                                  weight=w, reduction=reduction, label_smoothing=0.1)
    ours = xploss.softmax_focal_loss(
        to_lib(x, lib), to_lib(t, lib), alpha=0.25, gamma=2.0, weight=opt(w, lib),
        reduction=reduction, label_smoothing=0.1, axis=-1, **kwargs,
    )
    assert_close(ours, theirs, lib)


@pytest.mark.parametrize("kind", [*INDEX_KINDS, "probs"])
@pytest.mark.parametrize("lib", LIBS)
def test_softmax_focal_loss_defaults(lib, kind):
    """Defaults: alpha=None, gamma=2, no weight, reduction='mean', no smoothing."""
    rng = np.random.default_rng(4002)
    x, t, ignore, kwargs = class_case(rng, CLASS_SHAPES["NCd1"], kind)
    theirs = softmax_focal_oracle(x, t, ignore, alpha=None, gamma=2.0, weight=None,
                                  reduction="mean", label_smoothing=0.0)
    ours = xploss.softmax_focal_loss(to_lib(x, lib), to_lib(t, lib), **kwargs)
    assert_close(ours, theirs, lib)




@pytest.mark.parametrize("fn", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_bce_weight_times_loss_beyond_range_keeps_mean_finite(fn):
    # weight·loss of the first element exceeds float32's range; the mean of the
    # four does not. The weight multiplies inside the reduction (it was applied
    # first, and the mean was inf).
    import mpmath

    big = np.finfo(np.float32).max
    w = np.array([big / 30, 0.0, 0.0, 0.0], np.float32)
    t = np.ones(4, np.float32)
    if fn == "binary_cross_entropy":
        x = np.array([1e-30, 0.5, 0.5, 0.5], np.float32)
        first = -mpmath.log(mpmath.mpf(float(x[0])))  # -log p at target 1
    else:
        x = np.array([-60.0, 0.0, 0.0, 0.0], np.float32)
        first = mpmath.log1p(mpmath.exp(60))  # softplus(-x) at target 1
    exact = mpmath.mpf(float(w[0])) * first / 4
    out = getattr(xploss, fn)(x, t, weight=w)
    assert float(exact) < big
    assert float(out) == pytest.approx(float(exact), rel=4 * float(np.finfo(np.float32).eps))


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss", "softmax_focal_loss",
                                "poly1_cross_entropy"])
def test_class_weight_times_loss_beyond_range_keeps_mean_finite(fn):
    # Row 0: class weight big/30 times a loss of 60 exceeds float32's range; the
    # weighted mean sum(w·l)/sum(w) does not (it was inf when the weight was
    # applied before the reduction).
    import mpmath

    big = np.finfo(np.float32).max
    w = np.array([big / 30, 1.0], np.float32)
    y = np.array([0, 0, 1, 1])
    kwargs = {}
    if fn != "nll_loss":
        x = np.array([[0.0, 60.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
        losses = []
        for r, c in zip(x, y, strict=True):
            # p_y = softmax(x)_y; cross-entropy -log p_y, at mpmath's precision
            p = mpmath.exp(float(r[c])) / (mpmath.exp(float(r[0])) + mpmath.exp(float(r[1])))
            losses.append({"cross_entropy": -mpmath.log(p),
                           # focal (Lin et al. 2017), gamma = 2, no alpha
                           "softmax_focal_loss": -((1 - p) ** 2) * mpmath.log(p),
                           # PolyLoss (Leng et al. 2022), epsilon = 1
                           "poly1_cross_entropy": -mpmath.log(p) + (1 - p)}[fn])
        if fn == "softmax_focal_loss":
            kwargs = {"gamma": 2.0}
    else:
        x = np.array([[-60.0, -1.0], [-2.0, -1.0], [-1.0, -3.0], [-1.0, -5.0]], np.float32)
        losses = [-mpmath.mpf(float(r[c])) for r, c in zip(x, y, strict=True)]
    wt = [mpmath.mpf(float(w[c])) for c in y]
    exact = sum(a * b for a, b in zip(wt, losses, strict=True)) / sum(wt)
    out = getattr(xploss, fn)(x, y, weight=w, **kwargs)
    assert float(exact) < big
    assert float(out) == pytest.approx(float(exact), rel=4 * float(np.finfo(np.float32).eps))
