"""xploss against ``torch.nn.functional`` on ordinary float64 inputs.

Every classification loss is compared with its torch namesake over the full
grid of options (reduction, weights, ignore_index, label smoothing, target
kind, input rank, class axis), on torch tensors and on NumPy arrays, to a
relative tolerance of 1e-10. On such inputs both libraries are accurate to a
few ULP, so any larger difference is a difference in semantics.

The only intended deviation on ordinary inputs, a ``'mean'`` over zero valid
class-index targets (0 in xploss, NaN in torch), has its own test.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from helpers import as_torch, assert_close, opt, to_lib, to_numpy  # noqa: E402

import xploss  # noqa: E402

PRIM_RTOL = 1e-12  # primitives, elementwise

LIBS = ["numpy", "torch"]
REDUCTIONS = ["none", "mean", "sum"]
N_CLASSES = 5

# name -> input shape (class axis 0 for the unbatched shape, 1 otherwise)
CLASS_SHAPES = {
    "unbatched": (N_CLASSES,),
    "NC": (6, N_CLASSES),
    "NCd1": (4, N_CLASSES, 3),
    "NCd1d2": (3, N_CLASSES, 2, 3),
}
# Class-index targets with ignore_index left at its default (-100, some targets
# set to -100), class-index targets with a custom in-range ignore_index (1,
# some targets equal to 1), and probability targets.
TARGET_KINDS = ["index-ignore_default", "index-ignore_1", "probs"]
LABEL_SMOOTHINGS = [0.0, 0.1, 0.7]


# ---------------------------------------------------------------------------
# helpers


def logits(rng, shape):
    return rng.normal(0.0, 3.0, size=shape)


def soft_targets(rng, shape, axis):
    """Class probabilities along ``axis``: a softmax of random numbers."""
    z = rng.normal(0.0, 1.0, size=shape)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def class_index_targets(rng, shape, kind):
    """int64 class indices of ``shape`` and the ignore_index kwargs for ``kind``.

    Returns ``(target, kwargs)``: ``kwargs`` is empty for the default
    ignore_index (-100) and ``{"ignore_index": 1}`` for the custom one. The
    first target is always a valid class, so a mean never runs over zero valid
    targets; for batched shapes the second one is always ignored.
    """
    if kind == "index-ignore_default":
        ignore, kwargs = -100, {}
    elif kind == "index-ignore_1":
        ignore, kwargs = 1, {"ignore_index": 1}
    else:
        raise AssertionError(kind)
    if shape == ():
        return np.asarray(2, dtype=np.int64), kwargs
    t = rng.integers(0, N_CLASSES, size=shape, dtype=np.int64)
    t[rng.uniform(size=shape) < 0.25] = ignore
    flat = t.reshape(-1)
    flat[0] = 0
    flat[1] = ignore
    assert np.any(t != ignore)
    assert np.any(t == ignore)
    return t, kwargs


def class_case(rng, shape, class_axis, kind):
    """Logits, target and ignore_index kwargs for one cross-entropy case."""
    x = logits(rng, shape)
    if kind == "probs":
        return x, soft_targets(rng, shape, class_axis), {}
    tshape = shape[:class_axis] + shape[class_axis + 1:]
    t, kwargs = class_index_targets(rng, tshape, kind)
    return x, t, kwargs


def class_weight(rng, weighted):
    return rng.uniform(0.5, 2.0, size=N_CLASSES) if weighted else None


# ---------------------------------------------------------------------------
# cross_entropy


@pytest.mark.parametrize("label_smoothing", LABEL_SMOOTHINGS, ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_cross_entropy(lib, shape_name, kind, weighted, reduction, label_smoothing):
    rng = np.random.default_rng(1234)
    shape = CLASS_SHAPES[shape_name]
    class_axis = 0 if len(shape) == 1 else 1
    x, t, kwargs = class_case(rng, shape, class_axis, kind)
    w = class_weight(rng, weighted)

    ours = xploss.cross_entropy(
        to_lib(x, lib), to_lib(t, lib), weight=opt(w, lib), reduction=reduction,
        label_smoothing=label_smoothing, **kwargs,
    )
    theirs = F.cross_entropy(
        as_torch(x), as_torch(t), weight=as_torch(w), reduction=reduction,
        label_smoothing=label_smoothing, **kwargs,
    )
    assert_close(ours, theirs)


@pytest.mark.parametrize("label_smoothing", LABEL_SMOOTHINGS, ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("lib", LIBS)
def test_cross_entropy_last_axis(lib, kind, weighted, reduction, label_smoothing):
    """``axis=-1`` on (N, d1, C) equals torch on the input with the class axis moved to 1."""
    rng = np.random.default_rng(99)
    shape = (4, 3, N_CLASSES)
    x, t, kwargs = class_case(rng, shape, 2, kind)
    w = class_weight(rng, weighted)

    ours = xploss.cross_entropy(
        to_lib(x, lib), to_lib(t, lib), weight=opt(w, lib), reduction=reduction,
        label_smoothing=label_smoothing, axis=-1, **kwargs,
    )
    tt = as_torch(t)
    if kind == "probs":
        tt = torch.movedim(tt, -1, 1)
    theirs = F.cross_entropy(
        torch.movedim(as_torch(x), -1, 1), tt, weight=as_torch(w), reduction=reduction,
        label_smoothing=label_smoothing, **kwargs,
    )
    assert_close(ours, theirs)


# ---------------------------------------------------------------------------
# nll_loss

INDEX_KINDS = ["index-ignore_default", "index-ignore_1"]


def log_probs(x, class_axis):
    return torch.log_softmax(torch.from_numpy(x), dim=class_axis).numpy()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", INDEX_KINDS)
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_nll_loss(lib, shape_name, kind, weighted, reduction):
    rng = np.random.default_rng(4321)
    shape = CLASS_SHAPES[shape_name]
    class_axis = 0 if len(shape) == 1 else 1
    x, t, kwargs = class_case(rng, shape, class_axis, kind)
    lp = log_probs(x, class_axis)
    w = class_weight(rng, weighted)

    ours = xploss.nll_loss(
        to_lib(lp, lib), to_lib(t, lib), weight=opt(w, lib), reduction=reduction, **kwargs,
    )
    theirs = F.nll_loss(
        as_torch(lp), as_torch(t), weight=as_torch(w), reduction=reduction, **kwargs,
    )
    assert_close(ours, theirs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", INDEX_KINDS)
@pytest.mark.parametrize("lib", LIBS)
def test_nll_loss_last_axis(lib, kind, weighted, reduction):
    rng = np.random.default_rng(98)
    shape = (4, 3, N_CLASSES)
    x, t, kwargs = class_case(rng, shape, 2, kind)
    lp = log_probs(x, 2)
    w = class_weight(rng, weighted)

    ours = xploss.nll_loss(
        to_lib(lp, lib), to_lib(t, lib), weight=opt(w, lib), reduction=reduction, axis=-1,
        **kwargs,
    )
    theirs = F.nll_loss(
        torch.movedim(as_torch(lp), -1, 1), as_torch(t), weight=as_torch(w),
        reduction=reduction, **kwargs,
    )
    assert_close(ours, theirs)


# ---------------------------------------------------------------------------
# the documented deviation: a mean over zero valid targets


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    ("fname", "label_smoothing"),
    [("cross_entropy", 0.0), ("cross_entropy", 0.1), ("nll_loss", None)],
    ids=["cross_entropy", "cross_entropy-ls0.1", "nll_loss"],
)
@pytest.mark.parametrize("lib", LIBS)
def test_mean_over_no_valid_target_is_zero_not_nan(lib, fname, label_smoothing, weighted):
    """Deviation from torch: every target ignored, ``'mean'`` gives exactly 0 (torch: NaN)."""
    rng = np.random.default_rng(7)
    x = logits(rng, (4, N_CLASSES, 2))
    if fname == "nll_loss":
        x = log_probs(x, 1)
    t = np.full((4, 2), -100, dtype=np.int64)
    w = class_weight(rng, weighted)
    kwargs = {} if label_smoothing is None else {"label_smoothing": label_smoothing}

    ours = getattr(xploss, fname)(to_lib(x, lib), to_lib(t, lib), weight=opt(w, lib), **kwargs)
    theirs = getattr(F, fname)(as_torch(x), as_torch(t), weight=as_torch(w), **kwargs)
    assert bool(torch.isnan(theirs))
    ours = to_numpy(ours)
    assert ours.shape == ()
    assert ours == 0.0


# ---------------------------------------------------------------------------
# binary cross-entropy

BINARY_SHAPES = {"NC": (5, 4), "NdC": (3, 2, 4)}
BINARY_WEIGHTS = ["none", "per_class", "full"]


def binary_targets(rng, shape, kind):
    if kind == "hard":
        return rng.integers(0, 2, size=shape).astype(np.float64)
    return rng.uniform(0.0, 1.0, size=shape)


def binary_weight(rng, shape, kind):
    if kind == "none":
        return None
    if kind == "per_class":
        return rng.uniform(0.5, 2.0, size=shape[-1:])
    return rng.uniform(0.5, 2.0, size=shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_kind", BINARY_WEIGHTS, ids=lambda v: f"weight_{v}")
@pytest.mark.parametrize("target_kind", ["hard", "soft"])
@pytest.mark.parametrize("shape_name", list(BINARY_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_binary_cross_entropy(lib, shape_name, target_kind, weight_kind, reduction):
    rng = np.random.default_rng(2024)
    shape = BINARY_SHAPES[shape_name]
    p = rng.uniform(0.01, 0.99, size=shape)
    t = binary_targets(rng, shape, target_kind)
    w = binary_weight(rng, shape, weight_kind)

    ours = xploss.binary_cross_entropy(
        to_lib(p, lib), to_lib(t, lib), weight=opt(w, lib), reduction=reduction,
    )
    theirs = F.binary_cross_entropy(
        as_torch(p), as_torch(t), weight=as_torch(w), reduction=reduction,
    )
    assert_close(ours, theirs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weighted", [False, True], ids=["no_pos_weight", "pos_weight"])
@pytest.mark.parametrize("weight_kind", BINARY_WEIGHTS, ids=lambda v: f"weight_{v}")
@pytest.mark.parametrize("target_kind", ["hard", "soft"])
@pytest.mark.parametrize("shape_name", list(BINARY_SHAPES))
@pytest.mark.parametrize("lib", LIBS)
def test_binary_cross_entropy_with_logits(lib, shape_name, target_kind, weight_kind,
                                          pos_weighted, reduction):
    rng = np.random.default_rng(2025)
    shape = BINARY_SHAPES[shape_name]
    x = logits(rng, shape)
    t = binary_targets(rng, shape, target_kind)
    w = binary_weight(rng, shape, weight_kind)
    pw = rng.uniform(0.5, 3.0, size=shape[-1:]) if pos_weighted else None

    ours = xploss.binary_cross_entropy_with_logits(
        to_lib(x, lib), to_lib(t, lib), weight=opt(w, lib), pos_weight=opt(pw, lib),
        reduction=reduction,
    )
    theirs = F.binary_cross_entropy_with_logits(
        as_torch(x), as_torch(t), weight=as_torch(w), pos_weight=as_torch(pw),
        reduction=reduction,
    )
    assert_close(ours, theirs)


# ---------------------------------------------------------------------------
# gradients with respect to the input (torch autograd through both)


def input_grad(fn, x, *args, cotangent=None, **kwargs):
    """d(loss)/d(input) of ``fn(x, *args, **kwargs)``; 'none' losses are
    contracted with ``cotangent``."""
    xt = torch.from_numpy(np.array(x, copy=True)).requires_grad_(True)
    loss = fn(xt, *args, **kwargs)
    if cotangent is not None:
        loss = torch.sum(loss * torch.from_numpy(cotangent))
    loss.backward()
    return xt.grad


@pytest.mark.parametrize(
    ("shape_name", "kind", "weighted", "reduction", "label_smoothing"),
    [
        pytest.param("NC", "index-ignore_default", False, "mean", 0.0,
                     id="NC-index-ignore_default-unweighted-mean-ls0.0"),
        pytest.param("NC", "index-ignore_default", True, "mean", 0.1,
                     id="NC-index-ignore_default-weighted-mean-ls0.1"),
        pytest.param("NCd1", "index-ignore_1", True, "sum", 0.7,
                     id="NCd1-index-ignore_1-weighted-sum-ls0.7"),
        pytest.param("NCd1d2", "index-ignore_default", True, "none", 0.1,
                     id="NCd1d2-index-ignore_default-weighted-none-ls0.1"),
        pytest.param("unbatched", "index-ignore_default", True, "mean", 0.1,
                     id="unbatched-index-ignore_default-weighted-mean-ls0.1"),
        pytest.param("NC", "probs", True, "mean", 0.0, id="NC-probs-weighted-mean-ls0.0"),
        pytest.param("NCd1", "probs", False, "sum", 0.1, id="NCd1-probs-unweighted-sum-ls0.1"),
        pytest.param("NCd1d2", "probs", True, "none", 0.7,
                     id="NCd1d2-probs-weighted-none-ls0.7"),
    ],
)
def test_cross_entropy_grad(shape_name, kind, weighted, reduction, label_smoothing):
    rng = np.random.default_rng(555)
    shape = CLASS_SHAPES[shape_name]
    class_axis = 0 if len(shape) == 1 else 1
    x, t, kwargs = class_case(rng, shape, class_axis, kind)
    w = class_weight(rng, weighted)
    cot = None
    if reduction == "none":
        cot = rng.normal(size=shape[:class_axis] + shape[class_axis + 1:])
    kwargs.update(weight=as_torch(w), reduction=reduction, label_smoothing=label_smoothing)

    ours = input_grad(xploss.cross_entropy, x, as_torch(t), cotangent=cot, **kwargs)
    theirs = input_grad(F.cross_entropy, x, as_torch(t), cotangent=cot, **kwargs)
    assert_close(ours, theirs)


@pytest.mark.parametrize(
    ("target_kind", "weight_kind", "pos_weighted", "reduction"),
    [
        pytest.param("hard", "none", False, "mean", id="hard-weight_none-no_pos_weight-mean"),
        pytest.param("soft", "none", True, "mean", id="soft-weight_none-pos_weight-mean"),
        pytest.param("soft", "per_class", True, "sum", id="soft-weight_per_class-pos_weight-sum"),
        pytest.param("hard", "full", True, "none", id="hard-weight_full-pos_weight-none"),
        pytest.param("soft", "full", False, "mean", id="soft-weight_full-no_pos_weight-mean"),
    ],
)
def test_binary_cross_entropy_with_logits_grad(target_kind, weight_kind, pos_weighted,
                                               reduction):
    rng = np.random.default_rng(556)
    shape = BINARY_SHAPES["NdC"]
    x = logits(rng, shape)
    t = binary_targets(rng, shape, target_kind)
    w = binary_weight(rng, shape, weight_kind)
    pw = rng.uniform(0.5, 3.0, size=shape[-1:]) if pos_weighted else None
    cot = rng.normal(size=shape) if reduction == "none" else None
    kwargs = {"weight": as_torch(w), "pos_weight": as_torch(pw), "reduction": reduction}

    ours = input_grad(xploss.binary_cross_entropy_with_logits, x, as_torch(t),
                      cotangent=cot, **kwargs)
    theirs = input_grad(F.binary_cross_entropy_with_logits, x, as_torch(t),
                        cotangent=cot, **kwargs)
    assert_close(ours, theirs)


# ---------------------------------------------------------------------------
# primitives

PRIM_SHAPE = (4, 5, 6)


def prim_input(seed=31):
    return logits(np.random.default_rng(seed), PRIM_SHAPE)


ELEMENTWISE = {
    "softplus": (xploss.softplus, F.softplus),
    "log_sigmoid": (xploss.log_sigmoid, F.logsigmoid),
    "sigmoid": (xploss.sigmoid, torch.sigmoid),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("lib", LIBS)
def test_elementwise_primitive(lib, name):
    ours_fn, torch_fn = ELEMENTWISE[name]
    x = prim_input()
    assert_close(ours_fn(to_lib(x, lib)), torch_fn(as_torch(x)), rtol=PRIM_RTOL, atol=0.0)


@pytest.mark.parametrize("keepdims", [False, True], ids=["squeeze", "keepdims"])
@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2)], ids=lambda a: f"axis{a}")
@pytest.mark.parametrize("lib", LIBS)
def test_logsumexp(lib, axis, keepdims):
    x = prim_input()
    ours = xploss.logsumexp(to_lib(x, lib), axis=axis, keepdims=keepdims)
    theirs = torch.logsumexp(as_torch(x), dim=axis, keepdim=keepdims)
    assert_close(ours, theirs, rtol=PRIM_RTOL, atol=0.0)


SOFTMAXES = {
    "log_softmax": (xploss.log_softmax, torch.log_softmax),
    "softmax": (xploss.softmax, torch.softmax),
}


@pytest.mark.parametrize("axis", [0, 1, -1], ids=lambda a: f"axis{a}")
@pytest.mark.parametrize("name", list(SOFTMAXES))
@pytest.mark.parametrize("lib", LIBS)
def test_softmax_family(lib, name, axis):
    ours_fn, torch_fn = SOFTMAXES[name]
    x = prim_input()
    assert_close(ours_fn(to_lib(x, lib), axis=axis), torch_fn(as_torch(x), dim=axis),
                 rtol=PRIM_RTOL, atol=0.0)
