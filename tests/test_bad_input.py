"""Bad input, on every installed backend and device.

One table (``SPECS``) describes every public function: how to build valid
arguments for a batch of ``n`` rows, which arguments must be floating or
integer, its hyper-parameters and their invalid values, its shape rules, and
the invalid *values* it documents. The tests below are generated from it:

1. Argument checks raise the exact exception type with a message naming the
   function and the argument: arrays from another library or not arrays at all
   (TypeError), arrays on another device (ValueError), integer or bool arrays
   where floating is required and the reverse (TypeError), shapes that differ
   with no silent broadcasting (ValueError; documented broadcasting works),
   class axes out of range (ValueError), an unknown ``reduction`` (ValueError)
   and invalid hyper-parameters (ValueError).
2. Invalid values (labels out of range, probabilities outside [0, 1], negative
   variances, msle inputs below -1, CTC lengths and labels): with
   ``reduction='none'`` the affected elements are NaN and every other element
   is exactly what it is with valid values there.
3. Defined edge results: empty batches ('mean' and 'sum' 0 with zero
   gradient, 'none' empty of the right shape), 0-d and unbatched inputs, NaN
   propagating to exactly the affected elements, and ignored or masked
   positions contributing exactly 0 to the value and the gradient.

Adding a function is one ``Spec`` entry (``test_every_public_function_is_in_the_table``
fails until it is there).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import array_api_compat
import numpy as np
import pytest
from helpers import value_targets

import xploss
from xploss import backends

N, F, C = 4, 3, 3        # rows, elementwise width, classes (F = C: fewer shapes to compile)
T, S = 3, 2              # CTC frames and padded target width
NAN = math.nan
TARGETS = value_targets(backends.targets())

# Public names that are not functions of arrays.
NOT_LOSSES = {"validation"}


# ------------------------------------------------------------------ data


def _u(shape, lo=0.0, hi=1.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, shape)


def _z(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _signs(shape, seed=0):
    return np.where(_u(shape, seed=seed) < 0.5, -1.0, 1.0)


def _labels(n, seed=0):
    """Class indices in [0, C), every class used for n >= C."""
    return (np.arange(n, dtype=np.int64) * 3 + seed) % C


def _log_probs(shape, seed=0):
    z = _z(shape, seed)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def _probs(shape, seed=0):
    return np.exp(_log_probs(shape, seed))


# Label classes first, then -1; every row has a label and a non-label class.
MULTILABEL_ROWS = np.array([[2, 0, -1], [1, 2, -1], [0, -1, 2], [2, -1, 1]])


def _multilabel(n):
    return np.resize(MULTILABEL_ROWS, (n, C)).astype(np.int64)


def _ctc_args(n):
    """(T, n, C) log-probabilities, (n, S) labels in [1, C), lengths (blank 0)."""
    lengths = np.resize(np.array([3, 2, 3, 2]), n).astype(np.int64)
    target_lengths = np.resize(np.array([2, 1, 2, 1]), n).astype(np.int64)
    targets = (1 + np.arange(n * S, dtype=np.int64).reshape(n, S) % (C - 1))
    return _log_probs((T, n, C)), targets, lengths, target_lengths


def _with(args, pos, index, value):
    """A copy of the numpy ``args`` with ``args[pos][index] = value``."""
    out = [np.array(a, copy=True) for a in args]
    out[pos][index] = value
    return out


# ------------------------------------------------------------------ the table


@dataclass
class Spec:
    """One public function: valid arguments for ``n`` rows and its rules.

    kind: the shape of the ``'none'`` result: ``'elementwise'`` (the first
    argument's shape, one value per element), ``'rows'`` (one value per row,
    ``(n,)``), ``'row_block'`` (the first argument's shape, but a row depends on
    the whole row) or ``'scalar'``.
    """

    name: str
    make: Callable[[int], tuple]
    kind: str
    kwargs: dict = field(default_factory=dict)
    floating: tuple = ()          # positional arguments that must be real floating
    integer: tuple = ()           # positional arguments that must be integer
    class_target: bool = False    # 'target': integer indices or floating probabilities
    weights: dict = field(default_factory=dict)  # keyword array -> n -> valid array
    hyper: dict = field(default_factory=dict)    # option -> (exception, invalid values)
    bad_axes: tuple = ()          # invalid values of the keyword 'axis'
    needs_class_axis: bool = False
    same_shape: tuple = ()        # arguments that must all have one shape
    index_target: bool = False    # 'target' has the input's shape without the class axis
    bad_shapes: Callable | None = None    # args -> [(label, argument, array)]
    broadcasts: Callable | None = None    # args -> [(label, argument, small, full)]
    invalid: tuple = ()           # (label, args -> (valid, bad, kwargs), affected indices)
    nan_probes: Callable | None = None    # args -> [(argument, index)]
    batch_axis: dict = field(default_factory=dict)
    unbatched: bool = False       # accepts one sample without the batch axis
    zero_d: bool = False          # elementwise: accepts 0-d arrays

    @property
    def fn(self):
        return getattr(xploss, self.name)

    @property
    def params(self):
        return inspect.signature(self.fn).parameters

    @property
    def names(self):
        return [p.name for p in self.params.values()
                if p.kind is inspect.Parameter.POSITIONAL_ONLY]

    @property
    def has_reduction(self):
        return "reduction" in self.params

    def out_shape(self, args):
        n = args[0].shape[self.batch_axis.get(self.names[0], 0)]
        return {"elementwise": args[0].shape, "row_block": args[0].shape,
                "rows": (n,), "scalar": ()}[self.kind]

    def affected(self, out_shape, name, index):
        """The 'none' outputs that an element ``index`` of argument ``name`` reaches."""
        mask = np.zeros(out_shape, dtype=bool)
        if self.kind == "scalar":
            mask[...] = True
        elif self.kind == "elementwise":
            mask[index] = True
        else:
            mask[index[self.batch_axis.get(name, 0)]] = True
        return mask


# Shorthands for the families.

def _elementwise(name, make, *, floating=("input", "target"), same_shape=None, **kw):
    return Spec(name, make, "elementwise", floating=floating,
                same_shape=floating if same_shape is None else same_shape, zero_d=True, **kw)


def _unary(name, make):
    return Spec(name, make, "elementwise", floating=("x",), zero_d=True)


def _broadcast_variants(pos, ref=0):
    """Documented broadcasting of positional argument ``pos`` against ``args[ref]``."""
    def variants(args):
        a = args[pos]
        name = None  # filled by the test from spec.names
        return [(label, name, small, np.broadcast_to(small, args[ref].shape).copy())
                for label, small in (("one row", a[:1]), ("one column", a[:, :1]),
                                     ("without the first axis", a[0]))]
    variants.pos = pos
    return variants


def _prob_range(pos, row_level=False):
    """Invalid-value cases for a probability argument: above 1 and below 0 (its row's
    output, or its own, is affected)."""
    return tuple((label, _set_case(pos, index, value), [index[:1] if row_level else index])
                 for label, index, value in (("above 1", (1, 2), 1.5),
                                             ("below 0", (2, 0), -0.5)))


def _set_case(pos, index, value, kwargs=None):
    def case(args):
        return list(args), _with(args, pos, index, value), dict(kwargs or {})
    return case


def _label_cases(ignore_index=True):
    cases = [("label C", _set_case(1, 1, C), [(1,)]),
             ("label -1", _set_case(1, 2, -1), [(2,)])]
    if ignore_index:
        cases.append(("label -100 when ignore_index is -1",
                      _set_case(1, 3, -100, {"ignore_index": -1}), [(3,)]))
    else:
        cases.append(("label -100", _set_case(1, 3, -100), [(3,)]))
    return tuple(cases)


def _prob_target_case():
    """Class probabilities with one row outside [0, 1] (the row still sums to 1)."""
    def case(args):
        valid = [args[0], _probs(args[0].shape, seed=5)]
        return valid, _with(valid, 1, 1, [-0.25, 1.25, 0.0]), {}
    return (("probability target outside [0, 1]", case, [(1,)]),)


def _class_weight_shapes(args):
    w = np.ones(C)
    return [("weight (C - 1,)", "weight", w[:-1]), ("weight (1, C)", "weight", w[None]),
            ("weight (C, 1)", "weight", w[:, None]), ("weight 0-d", "weight", w[0]),
            ("weight (N, C)", "weight", np.ones(args[0].shape))]


def _index_target_dtype_shapes(args):
    """The target's dtype decides its meaning: indices have the input's shape without
    the class axis, probabilities the input's shape."""
    return [("floating target of the index shape", "target", args[1].astype(np.float64)),
            ("integer target of the probability shape", "target",
             np.zeros(args[0].shape, dtype=np.int64))]


def _class(name, make=None, *, class_target=True, weight=True, ignore_index=True,
           label_smoothing=True, extra_hyper=None, axis=True, unbatched=False, **kw):
    hyper = dict(extra_hyper or {})
    if label_smoothing:
        hyper["label_smoothing"] = (ValueError, [-0.1, 1.5, NAN])

    def shapes(args):
        out = _class_weight_shapes(args) if weight else []
        if class_target:
            out += _index_target_dtype_shapes(args)
        return out

    invalid = _label_cases(ignore_index)
    if class_target:
        invalid += _prob_target_case()
    return Spec(name, make or (lambda n: (_z((n, C)), _labels(n))), "rows",
                floating=("input",), integer=() if class_target else ("target",),
                class_target=class_target, weights={"weight": lambda n: _u(C, 0.5, 2)}
                if weight else {}, hyper=hyper, bad_axes=(2, -3) if axis else (),
                needs_class_axis=True, index_target=True, bad_shapes=shapes,
                invalid=invalid, unbatched=unbatched, **kw)


def _weight_broadcasts(name):
    """binary cross-entropy's weights are "broadcast against input"."""
    def variants(args):
        shape = args[0].shape
        w = _u(shape, 0.5, 2, seed=7)
        return [(f"{name} {label}", name, small, np.broadcast_to(small, shape))
                for label, small in (("(F,)", w[0]), ("(N, 1)", w[:, :1]), ("(1, F)", w[:1]),
                                     ("0-d", w[0, 0]))]
    return variants


def _weight_non_broadcasts(*names):
    def variants(args):
        n, f = args[0].shape
        out = []
        for name in names:
            out += [(f"{name} (N,)", name, np.ones(n)), (f"{name} (F + 1,)", name, np.ones(f + 1)),
                    (f"{name} (1, N, F) enlarges the result", name, np.ones((1, n, f)))]
        return out
    return variants


def _elementwise_weight_shapes(args):
    """Per-element weights: exactly the input's shape."""
    w = np.ones(args[0].shape)
    return [("weight (F,)", "weight", w[0]), ("weight (1, F)", "weight", w[:1]),
            ("weight (N, 1)", "weight", w[:, :1]), ("weight 0-d", "weight", w[0, 0]),
            ("weight (1, N, F)", "weight", w[None])]


def _both(*fs):
    def combined(args):
        out = []
        for f in fs:
            out += f(args)
        return out
    return combined


def _var_broadcasts(args):
    """gaussian_nll_loss: var of the input's shape, without its last axis, or with one
    axis of size 1 (torch's rules)."""
    var = args[2]
    rows = var[:, 0]
    return [("var (N,)", "var", rows, np.broadcast_to(rows[:, None], var.shape)),
            ("var (N, 1)", "var", rows[:, None], np.broadcast_to(rows[:, None], var.shape)),
            ("var (1, F)", "var", var[:1], np.broadcast_to(var[:1], var.shape))]


def _var_shapes(args):
    var = args[2]
    return [("var (F,)", "var", var[0]), ("var (1, 1)", "var", var[:1, :1]),
            ("var 0-d array", "var", var[0, 0]), ("var (1, N, F)", "var", var[None]),
            ("var (N, F, 1)", "var", var[..., None])]


def _segmentation(name, hyper):
    return Spec(name, lambda n: (_u((n, F)), (_u((n, F), seed=1) < 0.5).astype(float)),
                "rows", kwargs={"axis": 1}, floating=("input", "target"),
                same_shape=("input", "target"), hyper=hyper, bad_axes=(2, -3, (1, -1)),
                invalid=(("input above 1", _set_case(0, (1, 2), 1.5), [(1,)]),
                         ("input below 0", _set_case(0, (2, 0), -0.5), [(2,)]),
                         ("target above 1", _set_case(1, (0, 1), 1.5), [(0,)]),
                         ("target below 0", _set_case(1, (3, 2), -0.5), [(3,)])))


def _triplet_shapes(args):
    a = args[0]
    return [("positive not broadcastable", "positive", np.ones((a.shape[0], a.shape[1] + 1))),
            ("positive with fewer dimensions", "positive", a[0]),
            ("negative with more dimensions", "negative", a[None]),
            ("3-d inputs", "anchor", a[None])]


def _triplet(name, hyper, shapes):
    return Spec(name, lambda n: (_z((n, F)), _z((n, F), 1), _z((n, F), 2)), "rows",
                floating=("anchor", "positive", "negative"), hyper=hyper,
                bad_shapes=shapes,
                broadcasts=lambda a: [("positive (1, D)", "positive", a[1][:1],
                                       np.broadcast_to(a[1][:1], a[0].shape).copy())])


def _ctc_invalid():
    def concatenated(args):
        lp, targets, lengths, tlen = args
        flat = np.concatenate([row[:k] for row, k in zip(targets, tlen, strict=True)])
        valid = [lp, flat, lengths, tlen]
        return valid, _with(valid, 3, 3, tlen[3] + 1), {}  # the last span runs past the end

    return (("input length above T", _set_case(2, 1, T + 1), [(1,)]),
            ("negative input length", _set_case(2, 2, -1), [(2,)]),
            ("negative target length", _set_case(3, 0, -1), [(0,)]),
            ("padded target length above S", _set_case(3, 3, S + 1), [(3,)]),
            ("label C", _set_case(1, (1, 0), C), [(1,)]),
            ("label -1", _set_case(1, (0, 0), -1), [(0,)]),
            ("label equal to blank", _set_case(1, (2, 1), 0), [(2,)]),
            ("concatenated span outside targets", concatenated, [(3,)]))


def _ctc_shapes(args):
    lp, targets, lengths, tlen = args
    return [("targets with N + 1 rows", "targets", np.ones((N + 1, S), dtype=np.int64)),
            ("3-d targets", "targets", targets[None]),
            ("input_lengths (N + 1,)", "input_lengths", np.resize(lengths, N + 1)),
            ("input_lengths (N, 1)", "input_lengths", lengths[:, None]),
            ("target_lengths 0-d", "target_lengths", tlen[0]),
            ("target_lengths (1,)", "target_lengths", tlen[:1]),
            ("4-d log_probs", "log_probs", lp[None])]


def _kl_inputs(n):
    return _log_probs((n, F)), _probs((n, F), seed=1)


SPECS = [
    # ---- primitives
    _unary("softplus", lambda n: (_z((n, F)),)),
    _unary("log_sigmoid", lambda n: (_z((n, F)),)),
    _unary("sigmoid", lambda n: (_z((n, F)),)),
    _unary("log_cosh", lambda n: (_z((n, F)),)),
    _unary("langevin", lambda n: (_z((n, F)),)),
    Spec("log1mexp", lambda n: (-_u((n, F), 0.1, 3),), "elementwise", floating=("x",),
         zero_d=True, invalid=(("x > 0", _set_case(0, (1, 2), 0.5), [(1, 2)]),)),
    Spec("xlogy", lambda n: (_u((n, F), 0.1, 1), _u((n, F), 0.1, 2, seed=1)), "elementwise",
         floating=("x", "y"), zero_d=True,
         bad_shapes=lambda a: [("y not broadcastable", "y", a[1][:, :2])],
         broadcasts=_broadcast_variants(1),
         invalid=(("y < 0", _set_case(1, (1, 2), -1.0), [(1, 2)]),)),
    Spec("xlog1py", lambda n: (_u((n, F), 0.1, 1), _u((n, F), -0.5, 2, seed=1)), "elementwise",
         floating=("x", "y"), zero_d=True,
         bad_shapes=lambda a: [("y not broadcastable", "y", a[1][:, :2])],
         broadcasts=_broadcast_variants(1),
         invalid=(("y < -1", _set_case(1, (1, 2), -2.0), [(1, 2)]),)),
    Spec("logsumexp", lambda n: (_z((n, C)),), "rows", floating=("x",),
         bad_axes=(2, -3, (1, -1))),
    Spec("log_softmax", lambda n: (_z((n, C)),), "row_block", floating=("x",),
         bad_axes=(2, -3, (1, -1))),
    Spec("softmax", lambda n: (_z((n, C)),), "row_block", floating=("x",),
         bad_axes=(2, -3, (1, -1))),
    # ---- classification
    _elementwise("binary_cross_entropy", lambda n: (_u((n, F), 0.05, 0.95), _u((n, F), seed=1)),
                 weights={"weight": lambda n: _u(F, 0.5, 2)},
                 bad_shapes=_weight_non_broadcasts("weight"),
                 broadcasts=_weight_broadcasts("weight"),
                 invalid=(("input above 1", _set_case(0, (1, 2), 1.5), [(1, 2)]),
                          ("input below 0", _set_case(0, (2, 0), -0.5), [(2, 0)]),
                          ("target above 1", _set_case(1, (0, 1), 1.5), [(0, 1)]),
                          ("target below 0", _set_case(1, (3, 2), -0.5), [(3, 2)]))),
    _elementwise("binary_cross_entropy_with_logits",
                 lambda n: (_z((n, F)), _u((n, F), seed=1)),
                 weights={"weight": lambda n: _u(F, 0.5, 2),
                          "pos_weight": lambda n: _u(F, 0.5, 2, seed=3)},
                 bad_shapes=_weight_non_broadcasts("weight", "pos_weight"),
                 broadcasts=_both(_weight_broadcasts("weight"), _weight_broadcasts("pos_weight")),
                 invalid=_prob_range(1)),
    _elementwise("sigmoid_focal_loss", lambda n: (_z((n, F)), _u((n, F), seed=1)),
                 hyper={"gamma": (ValueError, [-1.0, NAN]),
                        # torchvision: alpha in [0, 1], or negative to disable.
                        "alpha": (ValueError, [1.5, NAN])},
                 invalid=_prob_range(1)),
    # kl_div's target is a non-negative measure (documented): only t < 0 is invalid.
    _elementwise("kl_div", _kl_inputs, invalid=_prob_range(1)[1:]),
    _class("cross_entropy", unbatched=True),
    _class("nll_loss", lambda n: (_log_probs((n, C)), _labels(n)), class_target=False,
           label_smoothing=False,
           nan_probes=lambda a: [("input", (1, int(a[1][1])))]),
    _class("softmax_focal_loss", extra_hyper={"gamma": (ValueError, [-1.0, NAN])}),
    _class("poly1_cross_entropy"),
    # ---- embedding and ranking
    Spec("cosine_embedding_loss", lambda n: (_z((n, F)), _z((n, F), 1), _signs((n,), 2)),
         "rows", floating=("x1", "x2", "target"), same_shape=("x1", "x2"),
         hyper={"margin": (ValueError, [1.5, -1.5, NAN])}, unbatched=True,
         bad_shapes=lambda a: [(label, "target", t) for label, t in (
             ("target (1,)", a[2][:1]), ("target 0-d", a[2][0]), ("target (N, 1)", a[2][:, None]),
             ("target (N, D)", np.ones(a[0].shape)))] + [("3-d x1 and x2", "x1", a[0][None])]),
    Spec("cosine_similarity", lambda n: (_z((n, F)), _z((n, F), 1)), "rows",
         floating=("x1", "x2"), hyper={"eps": (ValueError, [0.0, -1.0, NAN])},
         bad_axes=(2, -3),
         bad_shapes=lambda a: [("x2 not broadcastable", "x2", a[1][:, :2])],
         broadcasts=_broadcast_variants(1)),
    _elementwise("hinge_embedding_loss", lambda n: (_u((n, F), 0, 2), _signs((n, F), 1))),
    _elementwise("margin_ranking_loss", lambda n: (_z((n,)), _z((n,), 1), _signs((n,), 2)),
                 floating=("x1", "x2", "target")),
    Spec("ntxent_loss", lambda n: (_z((n, F)), np.arange(n, dtype=np.int64) // 2), "scalar",
         floating=("embeddings",), integer=("labels",),
         hyper={"temperature": (ValueError, [0.0, -1.0, NAN])},
         bad_shapes=lambda a: [(label, "labels", lab) for label, lab in (
             ("labels (N + 1,)", np.arange(N + 1)), ("labels (N, 1)", a[1][:, None]),
             ("labels 0-d", a[1][0]), ("labels (1, N)", a[1][None]))] + [
             ("3-d embeddings", "embeddings", a[0][None])]),
    Spec("pairwise_distance", lambda n: (_z((n, F)), _z((n, F), 1)), "rows",
         floating=("x1", "x2"), hyper={"p": (ValueError, [0.0, -1.0, NAN])},
         bad_shapes=lambda a: [("x2 not broadcastable", "x2", a[1][:, :2])],
         broadcasts=_broadcast_variants(1)),
    _triplet("triplet_margin_loss", {"margin": (ValueError, [0.0, -1.0, NAN]),
                                     "p": (ValueError, [0.0, -1.0, NAN])}, _triplet_shapes),
    _triplet("triplet_margin_with_distance_loss", {"margin": (ValueError, [0.0, -1.0, NAN])},
             lambda a: _triplet_shapes(a)[:3]),
    # ---- margin
    _elementwise("hinge_loss", lambda n: (_z((n, F)), _signs((n, F), 1))),
    _elementwise("squared_hinge_loss", lambda n: (_z((n, F)), _signs((n, F), 1))),
    _elementwise("soft_margin_loss", lambda n: (_z((n, F)), _signs((n, F), 1))),
    _class("multi_margin_loss", class_target=False, ignore_index=False, label_smoothing=False,
           axis=False, extra_hyper={"p": (ValueError, [0, 3, 1.5, -1])}, unbatched=True),
    _class("multiclass_hinge_loss", class_target=False, weight=False, ignore_index=False,
           label_smoothing=False),
    Spec("multilabel_margin_loss", lambda n: (_z((n, C)), _multilabel(n)), "rows",
         floating=("input",), integer=("target",), same_shape=("input", "target"),
         unbatched=True,
         bad_shapes=lambda a: [("3-d input and target", "input", a[0][None])],
         invalid=(("label C", _set_case(1, (1, 0), C), [(1,)]),
                  ("label -2", _set_case(1, (2, 0), -2), [(2,)]))),
    Spec("multilabel_soft_margin_loss",
         lambda n: (_z((n, C)), (_u((n, C), seed=1) < 0.5).astype(float)), "rows",
         floating=("input", "target"), same_shape=("input", "target"),
         weights={"weight": lambda n: _u(C, 0.5, 2)},
         bad_shapes=lambda a: [s for s in _class_weight_shapes(a)] + [
             ("3-d input and target", "input", a[0][None])],
         invalid=_prob_range(1, row_level=True)),
    # ---- regression
    _elementwise("mse_loss", lambda n: (_z((n, F)), _z((n, F), 1)),
                 weights={"weight": lambda n: _u((n, F), 0.5, 2)},
                 bad_shapes=_elementwise_weight_shapes),
    _elementwise("l1_loss", lambda n: (_z((n, F)), _z((n, F), 1)),
                 weights={"weight": lambda n: _u((n, F), 0.5, 2)},
                 bad_shapes=_elementwise_weight_shapes),
    _elementwise("huber_loss", lambda n: (_z((n, F)), _z((n, F), 1)),
                 weights={"weight": lambda n: _u((n, F), 0.5, 2)},
                 bad_shapes=_elementwise_weight_shapes,
                 hyper={"delta": (ValueError, [0.0, -1.0, NAN])}),
    _elementwise("smooth_l1_loss", lambda n: (_z((n, F)), _z((n, F), 1)),
                 hyper={"beta": (ValueError, [-1.0, NAN])}),
    _elementwise("log_cosh_loss", lambda n: (_z((n, F)), _z((n, F), 1))),
    _elementwise("quantile_loss", lambda n: (_z((n, F)), _z((n, F), 1)),
                 hyper={"quantile": (ValueError, [0.0, 1.0, -0.5, 1.5, NAN])}),
    _elementwise("mape_loss", lambda n: (_z((n, F)), _u((n, F), 0.5, 2, seed=1))),
    _elementwise("msle_loss", lambda n: (_u((n, F), 0, 3), _u((n, F), 0, 3, seed=1)),
                 invalid=(("input below -1", _set_case(0, (1, 2), -1.5), [(1, 2)]),
                          ("target below -1", _set_case(1, (2, 0), -2.0), [(2, 0)]))),
    _elementwise("poisson_nll_loss", lambda n: (_z((n, F)), np.floor(_u((n, F), 0, 5, seed=1))),
                 hyper={"eps": (ValueError, [-1e-8, NAN])},
                 # "Counts y >= 0".
                 invalid=(("negative count", _set_case(1, (1, 2), -1.0), [(1, 2)]),)),
    _elementwise("gaussian_nll_loss",
                 lambda n: (_z((n, F)), _z((n, F), 1), _u((n, F), 0.5, 2, seed=2)),
                 floating=("input", "target", "var"), same_shape=("input", "target"),
                 hyper={"eps": (ValueError, [-1e-6, NAN])},
                 bad_shapes=_var_shapes, broadcasts=_var_broadcasts,
                 invalid=(("negative variance", _set_case(2, (1, 2), -1.0), [(1, 2)]),)),
    # ---- segmentation
    _segmentation("dice_loss", {"smooth": (ValueError, [-1.0, NAN])}),
    _segmentation("tversky_loss", {"alpha": (ValueError, [-1.0, NAN]),
                                   "beta": (ValueError, [-1.0, NAN]),
                                   "smooth": (ValueError, [-1.0, NAN])}),
    # ---- sequence
    Spec("ctc_loss", _ctc_args, "rows", floating=("log_probs",),
         integer=("targets", "input_lengths", "target_lengths"),
         hyper={"blank": (ValueError, [-1, C, 1.5, True]),
                "zero_infinity": (TypeError, [1, "yes"])},
         bad_shapes=_ctc_shapes, invalid=_ctc_invalid(), batch_axis={"log_probs": 1},
         nan_probes=lambda a: [("log_probs", (0, 1, 0))], unbatched=True),
]

BY_NAME = {s.name: s for s in SPECS}


def _ids(rows):
    return [r if isinstance(r, str) else "-".join(map(str, r)) for r in rows]


# ------------------------------------------------------------------ helpers


def _arr(t, a):
    return t.backend.asarray(np.asarray(a), t)


def _arrays(t, args):
    return [_arr(t, a) for a in args]


def _numpy(t, x):
    return np.asarray(t.backend.to_numpy(x))


def _pattern(*words):
    """A regex found when the message names every one of ``words`` (whole words)."""
    return "^" + "".join(rf"(?=[\s\S]*(?<![\w.]){re.escape(w)}(?!\w))" for w in words)


def _raises_each(cases, exc, pattern):
    """``pytest.raises(exc, match=pattern)`` for every ``(label, call)``; all
    failures are reported together."""
    failures = []
    for label, call in cases:
        try:
            with pytest.raises(exc, match=pattern):
                call()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # pytest's Failed, another exception type, a mismatch
            failures.append(f"{label}: {type(e).__name__}: {str(e)[:300]}")
    assert not failures, f"expected {exc.__name__} matching {pattern!r}:\n" + "\n".join(failures)


@contextlib.contextmanager
def _quiet():
    """Invalid values and NaN may warn (DESIGN: only valid inputs must not)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _none(spec):
    return {"reduction": "none"} if spec.has_reduction else {}


def _call(t, spec, args, **kwargs):
    return spec.fn(*_arrays(t, args), **{**spec.kwargs, **kwargs})


_BATCH = {}


def _batch_none(t, spec):
    """The 'none' result of the table's valid N-row arguments (computed once per target)."""
    key = (t.id, spec.name)
    if key not in _BATCH:
        _BATCH[key] = _numpy(t, _call(t, spec, spec.make(N), **_none(spec)))
    return _BATCH[key]


def _split(spec, args, name, value):
    """Positional args and keyword arrays with ``name`` set to ``value``."""
    args = list(args)
    if name in spec.names:
        args[spec.names.index(name)] = value
        return args, {}
    return args, {name: value}


def _cases(kind):
    """(spec name, case label) rows of one kind, for parametrisation."""
    rows = []
    for spec in SPECS:
        args = spec.make(N)
        if kind == "arrays":
            names = list(spec.names) + list(spec.weights)
            rows += [(spec.name, name) for name in names
                     if len(names) > 1 and name != spec.names[0]]
        elif kind == "dtype":
            rows += [(spec.name, name) for name in (*spec.floating, *spec.weights)]
            rows += [(spec.name, name) for name in spec.integer]
            if spec.class_target:
                rows.append((spec.name, "target"))
        elif kind == "shape":
            if spec.same_shape or spec.index_target or spec.bad_shapes:
                rows.append((spec.name,))
        elif kind == "broadcast" and spec.broadcasts:
            rows += [(spec.name, label) for label, *_ in _broadcasts(spec, args)]
        elif kind == "hyper":
            rows += [(spec.name, option) for option in spec.hyper]
        elif kind == "nan":
            rows += [(spec.name, name, index) for name, index in _nan_probes(spec, args)]
    return rows


def _broadcasts(spec, args):
    out = []
    for label, name, small, full in spec.broadcasts(args):
        if name is None:
            name = spec.names[spec.broadcasts.pos]
        out.append((label, name, small, full))
    return out


def _nan_probes(spec, args):
    if spec.nan_probes is not None:
        return spec.nan_probes(args)
    probes = []
    for name in spec.floating:
        a = args[spec.names.index(name)]
        probes.append((name, tuple(min(i, n - 1) for i, n in zip((1, 2, 2), a.shape,
                                                                  strict=False))))
    return probes


# ------------------------------------------------------------------ the table itself


def test_every_public_function_is_in_the_table():
    assert set(BY_NAME) == set(xploss.__all__) - NOT_LOSSES
    assert len(BY_NAME) == len(SPECS)
    for spec in SPECS:
        names = spec.names
        for name in (*spec.floating, *spec.integer, *spec.same_shape):
            assert name in names, (spec.name, name)
        for option in (*spec.hyper, *spec.weights):
            assert option in spec.params, (spec.name, option)
        assert not spec.bad_axes or "axis" in spec.params, spec.name


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_table_arguments_are_valid(name):
    """The table's own arguments are accepted and finite (NumPy), so every error
    below comes from the bad part alone."""
    spec = BY_NAME[name]
    args = spec.make(N)
    weights = {k: make(N) for k, make in spec.weights.items()}
    out = np.asarray(spec.fn(*args, **spec.kwargs, **weights, **_none(spec)))
    assert out.shape == spec.out_shape(args)
    assert np.all(np.isfinite(out))


# ------------------------------------------------------------------ 1. argument checks


def _foreign(t):
    """A target of another array library than ``t``'s (NumPy, or for NumPy arrays
    the first other library installed)."""
    for name in ("numpy", "array_api_strict", "torch", "jax", "dask"):
        other = backends.get(name)
        if name != t.backend.name and other.unavailable_reason() is None:
            return other.targets()[0]
    pytest.skip("only one array library is installed")


def _replacing(spec, target, argument, replace):
    """A call of ``spec``'s function on ``target`` arrays with ``argument`` replaced
    by ``replace(value)`` (``value`` its NumPy data)."""
    args = spec.make(N)
    weights = {k: make(N) for k, make in spec.weights.items()}
    value = {**dict(zip(spec.names, args, strict=True)), **weights}[argument]

    def call():
        arrays = _arrays(target, args)
        kw = {k: _arr(target, w) for k, w in weights.items() if k != argument}
        arrays, extra = _split(spec, arrays, argument, replace(value))
        spec.fn(*arrays, **spec.kwargs, **kw, **extra)

    return call


@pytest.mark.parametrize(("name", "argument"), _cases("arrays"), ids=_ids(_cases("arrays")))
def test_array_from_another_library_raises_type_error(target, name, argument):
    spec = BY_NAME[name]
    other = _foreign(target)
    call = _replacing(spec, target, argument,
                      lambda value: other.backend.asarray(np.asarray(value), other))

    _raises_each([(f"{argument} from {other.id}", call)], TypeError,
                 _pattern(name, argument))


@pytest.mark.parametrize(("name", "argument"),
                         [(s.name, a) for s in SPECS for a in (*s.names, *s.weights)],
                         ids=_ids([(s.name, a) for s in SPECS for a in (*s.names, *s.weights)]))
def test_non_array_argument_raises_type_error(target, name, argument):
    """A Python list (or tuple) where an array is expected."""
    spec = BY_NAME[name]
    call = _replacing(spec, target, argument, lambda value: np.asarray(value).tolist())

    _raises_each([(f"{argument} as a list", call)], TypeError, _pattern(name, argument))


DEVICE_PAIRS = [(t, o) for t in TARGETS for o in value_targets(t.backend.targets())
                if o.device != t.device]
DEVICE_CASES = [(t, o, name, argument) for t, o in DEVICE_PAIRS
                for name, argument in _cases("arrays")]


@pytest.mark.parametrize(("here", "there", "name", "argument"), DEVICE_CASES,
                         ids=[f"{t.id}->{o.label}-{n}-{a}" for t, o, n, a in DEVICE_CASES])
def test_array_on_another_device_raises_value_error(here, there, name, argument):
    spec = BY_NAME[name]
    call = _replacing(spec, here, argument, lambda value: _arr(there, value))

    _raises_each([(f"{argument} on {there.label}", call)], ValueError,
                 _pattern(name, spec.names[0], argument))


@pytest.mark.parametrize(("name", "argument"), _cases("dtype"), ids=_ids(_cases("dtype")))
def test_wrong_dtype_raises_type_error(target, name, argument):
    """Integer and bool arrays where floating is required; floating and bool
    where integer indices are required; bool where a class target (indices or
    probabilities, decided by the dtype) is expected."""
    spec = BY_NAME[name]
    args = spec.make(N)
    weights = {k: make(N) for k, make in spec.weights.items()}
    value = np.asarray({**dict(zip(spec.names, args, strict=True)), **weights}[argument])
    if argument in (*spec.floating, *spec.weights):
        bad = {"int64": np.round(value).astype(np.int64), "bool": value > 0.5}
    elif argument in spec.integer:
        bad = {"float64": value.astype(np.float64), "bool": value > 0}
    else:  # class target
        bad = {"bool": value > 0}

    def caller(b):
        def call():
            arrays, extra = _split(spec, args, argument, b)
            kw = {k: w for k, w in weights.items() if k not in extra}
            spec.fn(*_arrays(target, arrays), **spec.kwargs,
                    **{k: _arr(target, w) for k, w in {**kw, **extra}.items()})
        return call

    _raises_each([(f"{argument} {dtype}", caller(b)) for dtype, b in bad.items()], TypeError,
                 _pattern(name, argument))


def _shape_cases(spec, args):
    """(label, argument, array) with a shape the function must reject."""
    out = []
    for name in spec.same_shape:
        a = args[spec.names.index(name)]
        variants = []
        if a.ndim >= 1 and a.shape[0] > 1:
            variants.append(("first axis 1", a[:1]))
        if a.ndim >= 2 and a.shape[-1] > 1:
            variants.append(("last axis 1", a[..., :1]))
        if a.ndim >= 1:
            variants.append(("first axis dropped", a[0]))
        variants += [("leading axis added", a[None]), ("trailing axis added", a[..., None])]
        out += [(f"{name} {label} {v.shape}", name, v) for label, v in variants]
    if spec.index_target:
        t = args[1]
        out += [(f"target {label}", "target", v) for label, v in (
            ("(1,)", t[:1]), ("0-d", t[0]), ("(N, 1)", t[:, None]), ("(1, N)", t[None]),
            ("(N + 1,)", np.resize(t, t.shape[0] + 1)))]
    if spec.bad_shapes is not None:
        out += [(label, name, np.asarray(v)) for label, name, v in spec.bad_shapes(args)]
    return out


@pytest.mark.parametrize("name", [r[0] for r in _cases("shape")])
def test_shape_mismatch_raises_value_error(target, name):
    """No silent broadcasting: each argument, weights included, has the shape its
    docstring gives, or the call raises naming the function and the argument."""
    spec = BY_NAME[name]
    args = spec.make(N)
    failures = []
    for label, argument, bad in _shape_cases(spec, args):
        arrays, extra = _split(spec, args, argument, bad)

        def call(arrays=arrays, extra=extra):
            spec.fn(*_arrays(target, arrays), **spec.kwargs,
                    **{k: _arr(target, v) for k, v in extra.items()})

        try:
            _raises_each([(label, call)], ValueError, _pattern(name, argument))
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("name", "label"), _cases("broadcast"), ids=_ids(_cases("broadcast")))
def test_documented_broadcasting_works(target, name, label):
    """A broadcast argument gives exactly what its explicit broadcast gives."""
    spec = BY_NAME[name]
    args = spec.make(N)
    [(_, argument, small, full)] = [c for c in _broadcasts(spec, args) if c[0] == label]
    outs = []
    for value in (small, full):
        arrays, extra = _split(spec, args, argument, np.asarray(value))
        outs.append(_numpy(target, spec.fn(*_arrays(target, arrays), **spec.kwargs,
                                           **_none(spec),
                                           **{k: _arr(target, v) for k, v in extra.items()})))
    assert outs[0].shape == outs[1].shape == spec.out_shape(args)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-15, atol=0)


AXIS_SPECS = [s.name for s in SPECS if s.bad_axes or s.needs_class_axis]


@pytest.mark.parametrize("name", AXIS_SPECS)
def test_axis_out_of_range_raises_value_error(target, name):
    spec = BY_NAME[name]
    args = spec.make(N)
    cases = [(f"axis={axis!r}", lambda axis=axis: _call(target, spec, args, axis=axis))
             for axis in spec.bad_axes]
    if cases:
        _raises_each(cases, ValueError, _pattern(name, "axis"))
    if spec.needs_class_axis:
        # A 0-d input has no class axis.
        zero_d = [np.asarray(args[0][0, 0]), np.asarray(args[1][0])]
        _raises_each([("0-d input", lambda: _call(target, spec, zero_d))], ValueError,
                     _pattern(name, "input"))


BAD_REDUCTIONS = ["avg", "MEAN", "", None, "batchmean", "elementwise_mean"]


@pytest.mark.parametrize("name", [s.name for s in SPECS if s.has_reduction])
def test_unknown_reduction_raises_value_error(target, name):
    spec = BY_NAME[name]
    args = _arrays(target, spec.make(N))
    bad = [r for r in BAD_REDUCTIONS if not (name == "kl_div" and r == "batchmean")]
    _raises_each([(f"reduction={r!r}", lambda r=r: spec.fn(*args, **{**spec.kwargs,
                                                                     "reduction": r}))
                  for r in bad], ValueError, _pattern(name, "reduction"))


@pytest.mark.parametrize(("name", "option"), _cases("hyper"), ids=_ids(_cases("hyper")))
def test_invalid_hyper_parameter_raises(target, name, option):
    spec = BY_NAME[name]
    exc, values = spec.hyper[option]
    args = _arrays(target, spec.make(N))
    _raises_each([(f"{option}={v!r}", lambda v=v: spec.fn(*args, **{**spec.kwargs, option: v}))
                  for v in values], exc, _pattern(name, option))


# ------------------------------------------------------------------ 2. invalid values


def _check_only_affected(bad_out, good_out, mask):
    """NaN exactly at ``mask``; every other output is what it is with valid values."""
    assert bad_out.shape == good_out.shape == mask.shape
    assert np.all(np.isfinite(good_out))
    assert np.all(np.isnan(bad_out[mask])), (bad_out, mask)
    np.testing.assert_array_equal(bad_out[~mask], good_out[~mask])


def _changed(valid, bad):
    """Per argument, where ``bad`` differs from ``valid`` (NaN counts as a value)."""
    out = []
    for v, b in zip(valid, bad, strict=True):
        if v.shape != b.shape:
            return None
        out.append(~((v == b) | (np.isnan(v) & np.isnan(b))) if v.dtype.kind == "f"
                   else v != b)
    return out


def _invalid_groups(spec):
    """The table's invalid-value cases of ``spec``, merged into as few calls as
    possible: cases with the same valid arguments and options that touch
    different elements and different outputs share one call.

    Returns [(labels, valid, bad, kwargs, [(label, affected indices)])].
    """
    groups = []
    for label, case, affected in spec.invalid:
        valid, bad, kwargs = case(spec.make(N))
        valid = [np.asarray(a) for a in valid]
        bad = [np.asarray(a) for a in bad]
        changed = _changed(valid, bad)
        for g in groups:
            same = (g["kwargs"] == kwargs and len(g["valid"]) == len(valid)
                    and all(a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
                            for a, b in zip(g["valid"], valid, strict=True)))
            if not same or changed is None or g["changed"] is None:
                continue
            overlap = any(np.any(a & b) for a, b in zip(g["changed"], changed, strict=True))
            if overlap or set(map(tuple, affected)) & g["affected"]:
                continue
            for i, c in enumerate(changed):
                g["bad"][i] = np.where(c, bad[i], g["bad"][i])
                g["changed"][i] = g["changed"][i] | c
            g["cases"].append((label, affected))
            g["affected"] |= set(map(tuple, affected))
            break
        else:
            groups.append({"valid": valid, "bad": [b.copy() for b in bad], "kwargs": kwargs,
                           "changed": changed, "cases": [(label, affected)],
                           "affected": set(map(tuple, affected))})
    return [(" + ".join(c[0] for c in g["cases"]), g["valid"], g["bad"], g["kwargs"], g["cases"])
            for g in groups]


INVALID_GROUPS = [(s.name, labels) for s in SPECS for labels, *_ in _invalid_groups(s)]


@pytest.mark.parametrize(("name", "labels"), INVALID_GROUPS, ids=_ids(INVALID_GROUPS))
def test_invalid_values_give_nan_only_where_they_are(target, name, labels):
    spec = BY_NAME[name]
    [(_, valid, bad, kwargs, cases)] = [g for g in _invalid_groups(spec) if g[0] == labels]
    standard = not kwargs and all(
        a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
        for a, b in zip(valid, spec.make(N), strict=True))
    with _quiet():
        good_out = (_batch_none(target, spec) if standard else
                    _numpy(target, _call(target, spec, valid, **_none(spec), **kwargs)))
        bad_out = _numpy(target, _call(target, spec, bad, **_none(spec), **kwargs))
    assert bad_out.shape == good_out.shape
    mask = np.zeros(good_out.shape, dtype=bool)
    failures = []
    for label, affected in cases:
        for index in affected:
            mask[index] = True
            if not np.all(np.isnan(bad_out[index])):
                failures.append(f"{label}: output {index} is {bad_out[index]}, not NaN")
    assert not failures, "\n".join(failures)
    np.testing.assert_array_equal(bad_out[~mask], good_out[~mask])
    assert np.all(np.isfinite(good_out))


# ------------------------------------------------------------------ 3. defined edge results


def _grad(t, fn, args, argnum):
    return _numpy(t, t.backend.grad(fn, args, argnum))


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_empty_batch(target, name):
    """0 rows: 'mean' and 'sum' are 0, 'none' is empty of the documented shape."""
    spec = BY_NAME[name]
    args = spec.make(0)
    weights = {k: _arr(target, make(0)) for k, make in spec.weights.items()}
    arrays = _arrays(target, args)
    if not spec.has_reduction:
        out = _numpy(target, spec.fn(*arrays, **spec.kwargs))
        assert out.shape == spec.out_shape(args)
        assert out.dtype == np.float64
        if spec.kind == "scalar":  # ntxent: a mean over no pair
            assert out == 0.0
        return
    reductions = ["mean", "sum"] + (["batchmean"] if name == "kl_div" else [])
    for reduction in reductions:
        out = _numpy(target, spec.fn(*arrays, **spec.kwargs, **weights, reduction=reduction))
        assert out.shape == (), reduction
        assert out.dtype == np.float64, reduction
        assert out == 0.0, (reduction, out)
    out = _numpy(target, spec.fn(*arrays, **spec.kwargs, **weights, reduction="none"))
    assert out.shape == spec.out_shape(args)
    assert out.dtype == np.float64


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_empty_batch_gradient_is_zero(diff_target, name):
    """The gradient of the 'mean' of 0 rows (the sum of the result where there is no
    reduction) with respect to the input (empty) and to the weights (not empty) is
    exactly 0: the mean over nothing is a constant 0, not 0/0."""
    t = diff_target
    spec = BY_NAME[name]
    args = _arrays(t, spec.make(0))
    weights = {k: _arr(t, make(0)) for k, make in spec.weights.items()}
    red = {"reduction": "mean"} if spec.has_reduction else {}

    def total(out):
        return array_api_compat.array_namespace(out).sum(out)

    checked = []
    g = _grad(t, lambda *a: total(spec.fn(*a, **spec.kwargs, **weights, **red)), args, 0)
    checked.append((spec.names[0], g, args[0].shape))
    for key, w in weights.items():
        others = {k: v for k, v in weights.items() if k != key}

        def f(w, key=key, others=others):
            return total(spec.fn(*args, **spec.kwargs, **others, **{key: w}, **red))

        checked.append((key, _grad(t, f, [w], 0), w.shape))
    for name_, g, shape in checked:
        assert tuple(g.shape) == tuple(shape), name_
        assert np.all(g == 0.0), (name_, g)


@pytest.mark.parametrize("name", [s.name for s in SPECS if s.zero_d])
def test_zero_d_inputs_of_elementwise_functions(target, name):
    """0-d arguments give a 0-d result, the value of that element in a batch."""
    spec = BY_NAME[name]
    args = spec.make(N)
    index = (1, 2)[:args[0].ndim]
    batch = _batch_none(target, spec)[index]
    scalars = [np.asarray(a[index]) for a in args]
    for kw in ({"reduction": r} for r in ("none", "mean")) if spec.has_reduction else ({},):
        out = _numpy(target, _call(target, spec, scalars, **kw))
        assert out.shape == (), kw
        np.testing.assert_allclose(out, batch, rtol=1e-14, atol=0, err_msg=str(kw))


@pytest.mark.parametrize("name", [s.name for s in SPECS if s.unbatched])
def test_unbatched_inputs(target, name):
    """One sample without its batch axis gives a 0-d result, that sample's value
    (one function per kind of unbatched layout: a 0-d class index, a label row,
    a 0-d pair label, CTC's (T, C))."""
    spec = BY_NAME[name]
    args = spec.make(N)
    batch = _batch_none(target, spec)
    i = 1
    sample = [np.asarray(np.take(a, i, axis=spec.batch_axis.get(n, 0)))
              for n, a in zip(spec.names, args, strict=True)]
    out = _numpy(target, _call(target, spec, sample, **_none(spec)))
    assert out.shape == ()
    np.testing.assert_allclose(out, batch[i], rtol=1e-14, atol=0)


@pytest.mark.parametrize(("name", "argument", "index"), _cases("nan"), ids=_ids(_cases("nan")))
def test_nan_reaches_exactly_the_affected_outputs(target, name, argument, index):
    spec = BY_NAME[name]
    args = spec.make(N)
    bad = _with(args, spec.names.index(argument), index, NAN)
    good_out = _batch_none(target, spec)
    with _quiet():
        bad_out = _numpy(target, _call(target, spec, bad, **_none(spec)))
    mask = spec.affected(good_out.shape, argument, index)
    _check_only_affected(bad_out, good_out, mask)


# ---- NaN where it must not matter: ignored targets, other classes, masked frames

IGNORED = [("cross_entropy", 0.0), ("cross_entropy", 0.2), ("nll_loss", 0.0),
           ("softmax_focal_loss", 0.0), ("softmax_focal_loss", 0.2),
           ("poly1_cross_entropy", 0.0), ("poly1_cross_entropy", 0.2)]


def _ignored_args():
    """Row 1 ignored (-100) with NaN, -inf and +inf logits."""
    x, labels = _z((N, C)), _labels(N)
    bad = _with([x, labels], 1, 1, -100)
    bad = _with(bad, 0, 1, [NAN, -np.inf, np.inf])
    good = _with([x, labels], 1, 1, -100)
    return good, bad


@pytest.mark.parametrize(("name", "smoothing"), IGNORED, ids=_ids(IGNORED))
def test_ignored_targets_contribute_exactly_zero(target, name, smoothing):
    spec = BY_NAME[name]
    kw = {"label_smoothing": smoothing} if smoothing else {}
    good, bad = _ignored_args()
    with _quiet():
        out = _numpy(target, _call(target, spec, bad, reduction="none", **kw))
        ref = _numpy(target, _call(target, spec, good, reduction="none", **kw))
        mean = _numpy(target, _call(target, spec, bad, reduction="mean", **kw))
    assert out[1] == 0.0
    keep = np.arange(N) != 1
    np.testing.assert_array_equal(out[keep], ref[keep])
    assert np.all(np.isfinite(out))
    # The mean is over the targets that are not ignored.
    np.testing.assert_allclose(mean, np.sum(out[keep]) / (N - 1), rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", ["softmax_focal_loss", "poly1_cross_entropy"])
def test_ignored_targets_have_exactly_zero_gradient(diff_target, name):
    """With label smoothing, which spreads over the row's classes. (cross_entropy and
    nll_loss: test_policy.py.)"""
    t = diff_target
    spec = BY_NAME[name]
    kw = {"label_smoothing": 0.2}
    _, (x, labels) = _ignored_args()
    y = _arr(t, labels)
    g = _grad(t, lambda v: spec.fn(v, y, **kw), [_arr(t, x)], 0)
    assert np.all(g[1] == 0.0), g
    assert np.all(np.isfinite(g))
    assert np.any(g[0] != 0)
    # Every target ignored: the mean over nothing is 0, with zero gradient.
    none = _arr(t, np.full(N, -100))
    assert _numpy(t, spec.fn(_arr(t, x), none, **kw)) == 0.0
    assert np.all(_grad(t, lambda v: spec.fn(v, none, **kw), [_arr(t, x)], 0) == 0.0)


def _nll_other_class_nan():
    x, labels = _log_probs((N, C)), _labels(N)
    other = (int(labels[1]) + 1) % C
    return [x, labels], _with([x, labels], 0, (1, other), NAN)


def test_nll_other_classes_nan_does_not_reach_the_value(target):
    """nll_loss: "values of other classes (-inf, NaN) never reach the result"."""
    spec = BY_NAME["nll_loss"]
    good, bad = _nll_other_class_nan()
    with _quiet():
        out = _numpy(target, _call(target, spec, bad, reduction="none"))
    np.testing.assert_array_equal(out, _numpy(target, _call(target, spec, good,
                                                            reduction="none")))


def test_nll_other_classes_nan_does_not_reach_the_gradient(diff_target):
    t = diff_target
    _, (x, labels) = _nll_other_class_nan()
    y = _arr(t, labels)
    g = _grad(t, lambda v: xploss.nll_loss(v, y, reduction="sum"), [_arr(t, x)], 0)
    expected = np.zeros((N, C))
    expected[np.arange(N), labels] = -1.0
    np.testing.assert_array_equal(g, expected)


def _ctc_masked_frames():
    """Frames at or beyond an input length hold NaN (every class)."""
    args = list(_ctc_args(N))
    lengths = args[2]
    bad = [np.array(a, copy=True) for a in args]
    for n, k in enumerate(lengths):
        bad[0][k:, n, :] = NAN
    return args, bad


def test_ctc_frames_beyond_the_input_length_are_not_read(target):
    spec = BY_NAME["ctc_loss"]
    good, bad = _ctc_masked_frames()
    assert np.any(np.isnan(bad[0]))
    assert all(np.array_equal(a, b) for a, b in zip(good, spec.make(N), strict=True))
    with _quiet():
        out = _numpy(target, _call(target, spec, bad, reduction="none"))
    np.testing.assert_array_equal(out, _batch_none(target, spec))


def test_ctc_frames_beyond_the_input_length_have_zero_gradient(diff_target):
    t = diff_target
    _, bad = _ctc_masked_frames()
    rest = _arrays(t, bad[1:])
    g = _grad(t, lambda v: xploss.ctc_loss(v, *rest), [_arr(t, bad[0])], 0)
    masked = np.isnan(bad[0])
    assert np.all(g[masked] == 0.0)
    assert np.all(np.isfinite(g))
    assert np.any(g[~masked] != 0)
