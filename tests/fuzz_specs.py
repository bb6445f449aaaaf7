"""Per-function metadata for the property-based fuzz test (tests/test_fuzz.py).

For every public xploss function a :class:`Spec` says what the registry's
:class:`~xploss.conformance.Case` objects do not:

* ``layout``: which axis of each argument is the batch axis, and which axis of
  the ``reduction='none'`` output corresponds to it (None where the output has
  no batch axis, e.g. NT-Xent's scalar or a Dice score over every axis);
  ``broadcast``: arguments that may have size 1 there; ``unbatch``: whether
  dropping the batch axis is a documented call;
* ``domains``: the documented value range of each floating argument, from
  which the fuzz draws special and random values (``'real'`` where the
  docstring allows any real number or says what happens outside the range,
  e.g. "probabilities outside [0, 1] give NaN"); ``sanitize``: documented
  behaviour that couples arguments; ``grad_masks``: -inf inputs that are
  documented masks;
* ``indices``: how integer arguments (class indices, labels, lengths) may be
  replaced, invalid values included where the docstring says what they give;
* ``options``: valid ranges of the keyword options a case already uses;
* ``terms``/``n_out``/``reduce_terms``/``weighted_mean``: summands per output
  element and output elements, for the accuracy bound of a reduced result
  (half an ULP per addition, as the registry's ``Case.summands``);
* ``float_only``: arguments that must be floating (an integer or bool array
  there raises ``TypeError`` naming the function; ``bad_together``: replaced
  together); ``bool_only``: those that also take integers (class indices) but
  reject bool;
* ``pad``: how rows that must not change ``reduction='sum'`` are appended:
  ``'ignore_index'`` (targets equal to ``ignore_index``) or ``'weight'``
  (per-element weight 0, other inputs in ``pad_ranges``).

Every restriction of a domain cites the docstring it comes from.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

import xploss

INF = math.inf

REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class Layout:
    """Batch axes: one per positional argument (None: not batched), the array
    keyword arguments that are batched, and the batch axis of the 'none' output."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    out: int | None = 0


@dataclass(frozen=True)
class Spec:
    layout: Callable[[tuple, dict], Layout | None]
    domains: dict = field(default_factory=dict)
    indices: dict = field(default_factory=dict)
    options: Callable[[dict, tuple], Any] | None = None
    terms: Callable[[tuple, dict], int] = lambda args, kwargs: 1
    n_out: Callable[[tuple, dict], int] = lambda args, kwargs: int(np.size(args[0]))
    reduce_terms: int = 1
    float_only: tuple = ()
    bool_only: tuple = ()
    pad: str | None = None
    #: Positional arguments that may have size 1 along the batch axis (broadcast).
    broadcast: tuple = ()
    weighted_mean: Callable[[tuple, dict], bool] = lambda args, kwargs: False
    #: Valid values of the appended rows for pad='weight' (default (-10, 10)).
    pad_ranges: dict = field(default_factory=dict)
    #: Arguments replaced together by integer arrays (one at a time by default).
    bad_together: tuple = ()
    #: ``sanitize(args, kwargs)``: enforce documented behaviour that couples
    #: arguments after the values are drawn (in place).
    sanitize: Callable | None = None
    #: -inf inputs that are documented masks (masked classes, probability 0):
    #: kept in the moderated inputs of the gradient check.
    grad_masks: bool = False
    #: Whether dropping the batch axis is a documented call: True (any shape),
    #: "2d" (an (N, C) input becomes the unbatched (C,) one), False.
    unbatch: bool | str = True

    def domain(self, key):
        return self.domains.get(key, "real")


def default_reduction(name):
    p = inspect.signature(getattr(xploss, name)).parameters.get("reduction")
    return None if p is None else p.default


# ------------------------------------------------------------------ layouts


def _elementwise(args, kwargs):
    """Batch axis 0 of every array argument of the input's rank (a keyword array
    of lower rank, such as a per-column weight, broadcasts and is shared)."""
    x = args[0]
    if np.ndim(x) == 0:
        return None
    n = x.shape[0]
    axes = tuple(0 if (isinstance(a, np.ndarray) and a.ndim == x.ndim and a.shape[0] == n)
                 else None for a in args)
    kw = {k: 0 for k, v in kwargs.items()
          if isinstance(v, np.ndarray) and v.ndim == x.ndim and v.shape[0] == n}
    return Layout(axes, kw, 0)


def _gaussian_rows(args, kwargs):
    """var has the input's shape, that shape without its last axis, or one axis of
    size 1: batch axis 0 unless it is that axis of size 1 (shared)."""
    x, var = args[0], args[2]
    if x.ndim == 0:
        return None
    shared = var.ndim == 0 or (var.shape[0] != x.shape[0] and var.shape[0] == 1)
    return Layout((0, 0, None if shared else 0), {}, 0)


def _class_axis(x, kwargs):
    axis = kwargs.get("axis")
    if axis is None:
        return 1 if x.ndim >= 2 else 0
    return axis % x.ndim


def _class_rows(args, kwargs):
    """(N, C, ...) inputs with class-index (N, ...) or probability targets:
    batch axis 0 unless the input is unbatched or 0 is the class axis."""
    x = args[0]
    if x.ndim < 2 or _class_axis(x, kwargs) == 0:
        return None
    return Layout(tuple(0 for _ in args), {}, 0)


def _primitive_rows(args, kwargs):
    """logsumexp / log_softmax / softmax: the class axis is ``axis`` (default -1)."""
    x = args[0]
    axis = kwargs.get("axis", -1)
    if x.ndim < 2 or isinstance(axis, tuple) or axis % x.ndim == 0:
        return None
    return Layout((0,), {}, 0)


def _vector_rows(args, kwargs):
    """Vectors along ``axis`` (default -1): the batch axis is the other one of a
    2-d input. An argument of size 1 there broadcasts (shared by every row)."""
    x = args[0]
    if x.ndim != 2:
        return None
    batch = 1 if kwargs.get("axis", -1) % 2 == 0 else 0
    n = max(a.shape[batch] for a in args)
    return Layout(tuple(batch if a.shape[batch] == n else None for a in args), {}, 0)


def _overlap_rows(args, kwargs):
    """Dice/Tversky: rows of axis 0 can always be resampled; the 'none' output has
    batch axis 0 only when axis 0 is not summed into the score."""
    x = args[0]
    axis = kwargs.get("axis")
    if axis is None:
        return Layout((0, 0), {}, None)
    axes = (axis,) if isinstance(axis, int) else axis
    return Layout((0, 0), {}, None if 0 in {a % x.ndim for a in axes} else 0)


def _pair_rows(args, kwargs):
    """(N, D) vector pairs with (N,) labels: batch axis 0 (unbatched (D,) has none)."""
    return None if args[0].ndim != 2 else Layout((0, 0, 0), {}, 0)


def _ntxent_rows(args, kwargs):
    return Layout((0, 0), {}, None)  # rows resample freely; the loss is one scalar


def _ctc_rows(args, kwargs):
    """(T, N, C) log-probabilities, padded (N, S) targets, (N,) lengths. Concatenated
    1-d targets cannot be resampled by row (their spans depend on every length)."""
    lp, targets = args[0], args[1]
    if lp.ndim != 3 or targets.ndim != 2:
        return None
    return Layout((1, 0, 0, 0), {}, 0)


# ------------------------------------------------------ terms per output element


def _n_classes(args, kwargs):
    x = args[0]
    return x.shape[_class_axis(x, kwargs)] if x.ndim else 1


def _rows_out(args, kwargs):
    return max(int(np.size(args[0])) // max(_n_classes(args, kwargs), 1), 1)


def _prim_classes(args, kwargs):
    x = args[0]
    axis = kwargs.get("axis", -1)
    axes = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(x.shape[a] for a in axes) if x.ndim else 1


def _vector_len(args, kwargs):
    x = args[0]
    return x.shape[kwargs.get("axis", -1)] if x.ndim else 1


def _broadcast_rows(args, kwargs, axis=-1):
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    return max(math.prod(shape) // max(shape[axis], 1), 0) if shape else 1


def _overlap_terms(args, kwargs):
    x = args[0]
    axis = kwargs.get("axis")
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return 2 * max(math.prod(x.shape[a] for a in axes), 1)


def _overlap_out(args, kwargs):
    return max(int(np.size(args[0])) * 2 // _overlap_terms(args, kwargs), 1)


def _ntxent_terms(args, kwargs):
    labels = np.asarray(args[1]).tolist()
    pairs = sum(1 for i, a in enumerate(labels) for j, b in enumerate(labels) if i != j and a == b)
    return max(pairs, 1) + len(labels)


# ------------------------------------------------------------------ sanitizers


def _other_labels(y):
    return ~np.isnan(y) & (y != 1) & (y != -1)


def _finite_rows_for_other_labels(args, kwargs):
    """cosine_embedding_loss: "Labels other than ±1 contribute 0, as in torch",
    whatever the embeddings hold; the oracle gives NaN for a NaN or infinite
    embedding there. Such rows get finite embeddings."""
    y = args[2]
    other = _other_labels(y)
    for a in args[:2]:
        rows = other if a.ndim == 1 or y.ndim == a.ndim else other[..., None]
        np.copyto(a, np.where(rows & ~np.isfinite(a), 1.0, a))


def _finite_input_for_other_labels(args, kwargs):
    """hinge_embedding_loss: other labels give x + max(0, margin - x), "evaluated
    as the equal max(x, margin)" (its limit at x = ±inf, where the oracle's
    literal sum is inf - inf = NaN). Infinite inputs with other labels are
    replaced by a finite one."""
    x, y = args
    np.copyto(x, np.where(_other_labels(y) & np.isinf(x), 0.5, x))


# ------------------------------------------------------------------ options

# Strategies of option values within the documented ranges. Each takes the case's
# keyword arguments and returns a strategy of the keyword arguments to use.


def _vary(*, reduction=True, extra_reductions=(), **ranges):
    """Vary ``reduction`` and, where the case sets them, the options in ``ranges``
    (each a strategy of valid values)."""

    def options(kwargs, args):
        parts = {}
        if reduction:
            parts["reduction"] = st.sampled_from((*REDUCTIONS, *extra_reductions))
        for key, strat in ranges.items():
            if key in kwargs:
                parts[key] = strat
        if not parts:
            return st.just(dict(kwargs))
        return st.fixed_dictionaries(parts).map(lambda d: {**kwargs, **d})

    return options


def floats(lo, hi, **kw):
    """Option values exactly representable in float32, the compute dtype of 16-bit
    and float32 inputs (the oracle uses the option's exact value)."""
    return st.floats(float(np.float32(lo)), float(np.float32(hi)), width=32, **kw)


unit = floats(0.0, 1.0)
nonneg = floats(0.0, 8.0)
positive = floats(0.01, 8.0)
gammas = st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]) | floats(0.0, 5.0)
margins = st.sampled_from([0.0, 0.5, 1.0, 2.0]) | floats(0.0, 4.0)
norms = st.sampled_from([1.0, 2.0, 3.0, 0.5, INF]) | floats(0.5, 4.0)
small_eps = st.sampled_from([0.0, 1e-6, 2.0**-20, 2.0**-10])  # 1e-6: the default
bools = st.booleans()


# ------------------------------------------------------------------ the table

_PAIR = dict(layout=_elementwise, float_only=(0, 1))
# Weights are rescaling factors: non-negative and finite.
_BCE_T = {1: "unit", "weight": "weight", "pos_weight": "weight"}
_CLASS = dict(layout=_class_rows, terms=_n_classes, n_out=_rows_out, unbatch="2d")
# "-inf logits are masked classes" (and -inf log-probabilities probability 0):
# their derivatives are documented finite (0).
_MASKS = dict(grad_masks=True)


def _index_weighted(args, kwargs):
    """cross_entropy's 'mean' with class indices divides by the targets' weights."""
    return args[1].dtype.kind in "iu" and kwargs.get("weight") is not None


SPECS: dict[str, Spec] = {
    # ---- elementwise primitives: any real input (log1mexp: "x > 0 is outside
    # the domain and gives NaN"; xlogy: "y < 0 gives NaN"; xlog1py: "y < -1
    # gives NaN").
    "softplus": Spec(_elementwise, float_only=(0,)),
    "log_sigmoid": Spec(_elementwise, float_only=(0,)),
    "sigmoid": Spec(_elementwise, float_only=(0,)),
    "log_cosh": Spec(_elementwise, float_only=(0,)),
    "langevin": Spec(_elementwise, float_only=(0,)),
    "log1mexp": Spec(_elementwise, float_only=(0,)),
    "xlogy": Spec(_elementwise, float_only=(0, 1), broadcast=(0, 1)),
    "xlog1py": Spec(_elementwise, float_only=(0, 1), broadcast=(0, 1)),
    # ---- class-axis primitives
    "logsumexp": Spec(_primitive_rows, **_MASKS, float_only=(0,), terms=_prim_classes,
                      options=lambda kw, args: bools.map(lambda k: {**kw, "keepdims": k})),
    "log_softmax": Spec(_primitive_rows, **_MASKS, float_only=(0,), terms=_prim_classes),
    "softmax": Spec(_primitive_rows, **_MASKS, float_only=(0,), terms=_prim_classes),
    # ---- binary. Targets "t in [0, 1]"; binary_cross_entropy's probabilities
    # "outside [0, 1] give NaN" (so its input is fuzzed over the reals).
    "binary_cross_entropy_with_logits": Spec(
        **_PAIR, domains=_BCE_T, pad="weight", pad_ranges={1: (0.0, 1.0)}, options=_vary()),
    "binary_cross_entropy": Spec(
        **_PAIR, domains=_BCE_T, pad="weight", pad_ranges={0: (0.0, 1.0), 1: (0.0, 1.0)},
        options=_vary()),
    # ---- class losses. Probability targets: "real floating class probabilities";
    # class indices outside [0, C) that are not ignore_index "give NaN".
    "cross_entropy": Spec(
        **_MASKS,
        **_CLASS, domains={1: "unit", "weight": "weight"}, indices={1: "class"},
        options=_vary(label_smoothing=unit), float_only=(0, "weight"), bool_only=(1,),
        pad="ignore_index", weighted_mean=_index_weighted),
    "nll_loss": Spec(
        **_MASKS,
        # input: "Log-probabilities" (non-positive).
        **{**_CLASS, "terms": lambda a, k: 1}, domains={0: "nonpos", "weight": "weight"},
        indices={1: "class"}, options=_vary(), float_only=(0, "weight"), pad="ignore_index",
        weighted_mean=lambda a, k: k.get("weight") is not None),
    "kl_div": Spec(
        **_MASKS,
        # input "Log-probabilities x"; target "Probabilities t (log-probabilities
        # with log_target=True)" (test_fuzz switches the domain with log_target).
        **_PAIR, domains={0: "nonpos", 1: "unit"},
        options=_vary(extra_reductions=("batchmean",), log_target=bools)),
    "sigmoid_focal_loss": Spec(
        **_PAIR, domains={1: "unit"},  # "Targets t in [0, 1]"
        options=_vary(gamma=gammas, alpha=st.sampled_from([0.25, -1.0]) | unit)),
    "softmax_focal_loss": Spec(
        **_MASKS,
        **_CLASS, domains={1: "unit", "weight": "weight"}, indices={1: "class"},
        options=_vary(gamma=gammas, alpha=st.none() | unit, label_smoothing=unit),
        float_only=(0, "weight"), bool_only=(1,), pad="ignore_index",
        weighted_mean=_index_weighted),
    "poly1_cross_entropy": Spec(
        **_MASKS,
        **_CLASS, domains={1: "unit", "weight": "weight"}, indices={1: "class"},
        options=_vary(epsilon=nonneg, label_smoothing=unit), float_only=(0, "weight"),
        bool_only=(1,), pad="ignore_index", weighted_mean=_index_weighted),
    # ---- margins. Labels "in {-1, 1}" (hinge and squared hinge: "{0, 1}" too).
    "soft_margin_loss": Spec(**_PAIR, domains={1: "pm1"}, options=_vary()),
    "hinge_loss": Spec(**_PAIR, domains={1: "pm1_0"}, options=_vary()),
    "squared_hinge_loss": Spec(**_PAIR, domains={1: "pm1_0"}, options=_vary()),
    "multilabel_soft_margin_loss": Spec(
        # "Labels in {0, 1} (or soft labels in [0, 1])".
        **_CLASS, domains={1: "unit", "weight": "weight"}, options=_vary(),
        float_only=(0, 1, "weight")),
    # Scores: "-inf marks masked classes" (+inf is left out: see value_strategy).
    "multiclass_hinge_loss": Spec(
        **_MASKS,
        **_CLASS, domains={0: "scores"}, indices={1: "class_no_ignore"},
        options=_vary(margin=margins), float_only=(0,)),
    "multi_margin_loss": Spec(
        **_MASKS,
        **_CLASS, domains={0: "scores", "weight": "weight"}, indices={1: "class_no_ignore"},
        options=_vary(margin=margins, p=st.sampled_from([1, 2])), float_only=(0, "weight")),
    "multilabel_margin_loss": Spec(
        **{**_CLASS, "terms": lambda a, k: _n_classes(a, k) ** 2}, domains={0: "scores"},
        indices={1: "multilabel"}, options=_vary(), float_only=(0,)),
    # ---- regression: any real input and target, except where documented.
    "mse_loss": Spec(**_PAIR, domains={"weight": "weight"}, pad="weight", options=_vary(),
                     weighted_mean=lambda a, k: "weight" in k),
    "l1_loss": Spec(**_PAIR, domains={"weight": "weight"}, pad="weight", options=_vary(),
                    weighted_mean=lambda a, k: "weight" in k),
    "huber_loss": Spec(**_PAIR, domains={"weight": "weight"}, pad="weight",
                       options=_vary(delta=floats(1e-3, 1e4))),  # "delta > 0"
    "smooth_l1_loss": Spec(**_PAIR, options=_vary(beta=nonneg)),  # "beta >= 0"
    "log_cosh_loss": Spec(**_PAIR, options=_vary()),
    "quantile_loss": Spec(**_PAIR, options=_vary(  # "q in (0, 1)"
        quantile=floats(0.0, 1.0, exclude_min=True, exclude_max=True))),
    "mape_loss": Spec(**_PAIR, options=_vary()),
    # msle: "values below -1 give NaN" (documented, so the reals).
    "msle_loss": Spec(**_PAIR, options=_vary()),
    "poisson_nll_loss": Spec(
        **_PAIR, domains={1: "nonneg"}, reduce_terms=2,  # target "Counts y >= 0"
        options=_vary(full=bools, log_input=bools, eps=small_eps)),
    "gaussian_nll_loss": Spec(
        # var: "A negative variance gives NaN in its elements" (so the reals).
        _gaussian_rows, float_only=(0, 1, 2), broadcast=(2,), reduce_terms=2,
        options=_vary(full=bools, eps=st.sampled_from([1e-6, 2.0**-10, 0.5]))),
    # ---- embeddings
    "cosine_similarity": Spec(
        _vector_rows, float_only=(0, 1), broadcast=(0, 1), terms=_vector_len,
        n_out=lambda a, k: _broadcast_rows(a, k, k.get("axis", -1))),
    "cosine_embedding_loss": Spec(
        # target "labels in {1, -1}"; "Labels other than ±1 contribute 0".
        _pair_rows, domains={2: "pm1_other"}, options=_vary(margin=floats(-1.0, 1.0)),
        sanitize=_finite_rows_for_other_labels, terms=_vector_len,
        n_out=lambda a, k: _broadcast_rows(a[:2], k), float_only=(0, 1, 2)),
    "margin_ranking_loss": Spec(
        _elementwise, domains={2: "pm1"}, float_only=(0, 1, 2), options=_vary(margin=margins)),
    "hinge_embedding_loss": Spec(
        # "Labels in {1, -1}"; other labels: "both terms apply".
        **_PAIR, domains={1: "pm1_other"}, options=_vary(margin=margins),
        sanitize=_finite_input_for_other_labels),
    "pairwise_distance": Spec(
        # p: "> 0 or inf"; eps is "added to every component".
        lambda args, kwargs: _vector_rows(args, {}), float_only=(0, 1), broadcast=(0, 1),
        terms=_vector_len, n_out=lambda a, k: _broadcast_rows(a, k),
        options=lambda kw, args: st.fixed_dictionaries(
            {"p": norms, "eps": small_eps, "keepdim": bools}).map(lambda d: {**kw, **d})),
    "triplet_margin_loss": Spec(
        # margin "> 0"; p "> 0 or inf".
        lambda args, kwargs: _vector_rows(args, {}), float_only=(0, 1, 2),
        broadcast=(0, 1, 2), terms=lambda a, k: 2 * _vector_len(a, k),
        n_out=lambda a, k: _broadcast_rows(a, k),
        options=lambda kw, args: st.fixed_dictionaries(
            {"reduction": st.sampled_from(REDUCTIONS), "margin": positive, "p": norms,
             "eps": small_eps, "swap": bools}).map(lambda d: {**kw, **d})),
    "triplet_margin_with_distance_loss": Spec(
        # The embeddings' dtype is documented through the default distance,
        # pairwise_distance ("Real floating arrays"); one integer argument among
        # floating ones would be promoted, so all three are replaced together.
        lambda args, kwargs: _vector_rows(args, {}), float_only=(0, 1, 2),
        bad_together=(0, 1, 2), broadcast=(0, 1, 2), terms=lambda a, k: 2 * _vector_len(a, k),
        n_out=lambda a, k: _broadcast_rows(a, k),
        options=lambda kw, args: st.fixed_dictionaries(
            {"reduction": st.sampled_from(REDUCTIONS), "margin": positive,
             "swap": bools}).map(lambda d: {**kw, **d})),
    "ntxent_loss": Spec(
        # embeddings "(N, D)" only; temperature "> 0".
        _ntxent_rows, indices={1: "group"}, terms=_ntxent_terms, n_out=lambda a, k: 1,
        float_only=(0,), unbatch=False,
        options=lambda kw, args: (st.sampled_from([0.05, 0.07, 0.1, 0.5, 1.0, 2.0])
                                  | floats(0.05, 4.0)).map(lambda t: {**kw, "temperature": t})),
    # ---- segmentation: p and t "in [0, 1]"; "An element outside [0, 1] makes
    # its score NaN" (so the reals). smooth, alpha, beta ">= 0".
    "dice_loss": Spec(_overlap_rows, float_only=(0, 1), terms=_overlap_terms,
                      n_out=_overlap_out, options=_vary(smooth=nonneg)),
    "tversky_loss": Spec(_overlap_rows, float_only=(0, 1), terms=_overlap_terms,
                         n_out=_overlap_out,
                         options=_vary(smooth=nonneg, alpha=nonneg, beta=nonneg)),
    # ---- sequence: "(T, N, C) ... log-probabilities" (non-positive; -inf is
    # probability 0). Labels outside [0, C) or equal to blank, and lengths out
    # of range, "give NaN for that sample".
    "ctc_loss": Spec(
        _ctc_rows, **_MASKS, domains={0: "nonpos"},
        indices={1: "ctc_label", 2: "input_length", 3: "target_length"},
        n_out=lambda a, k: a[0].shape[1] if a[0].ndim == 3 else 1, float_only=(0,),
        options=_vary(zero_infinity=bools)),
}
