"""The peer libraries' own versions of xploss functions, for the conformance report.

The report draws, beside each backend's error curve, the error of the loss a
user would otherwise call: ``torch.nn.functional`` (and ``torch.logsumexp``),
``jax.nn`` / ``jax.scipy.special`` / ``optax.losses``, and ``keras.losses`` on
JAX. A peer is called only on cases it defines the same way: same arguments,
options it has, the same reduction; otherwise it raises :class:`NotComparable`
and the case is left out of its curve. Peers are measured, never trusted: they
are not oracles.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["NotComparable", "Peer", "peers_of"]


class NotComparable(Exception):
    """The peer has no version of this case (an option or layout it lacks)."""


@dataclass(frozen=True)
class Peer:
    """One peer library: ``call(name, args, kwargs)`` evaluates its version of
    xploss's ``name`` on NumPy inputs (floats in the dtype under test) and
    returns a float64 NumPy array."""

    label: str
    modules: tuple
    names: frozenset
    call: Callable

    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)


def _refuse(why):
    raise NotComparable(why)


def _options(kwargs, allowed):
    """``kwargs`` without the options the peer lacks; NotComparable if one is set."""
    extra = set(kwargs) - set(allowed)
    if extra:
        _refuse(", ".join(sorted(extra)))
    return dict(kwargs)


def _reduced(xp, values, reduction):
    if reduction == "none":
        return values
    return xp.mean(values) if reduction == "mean" else xp.sum(values)


# ------------------------------------------------------------------- torch

_TORCH_AXIS = {"softmax", "log_softmax", "cosine_similarity", "logsumexp"}
_TORCH_NAMES = frozenset({
    "softplus", "sigmoid", "log_softmax", "softmax", "logsumexp",
    "binary_cross_entropy_with_logits", "binary_cross_entropy", "cross_entropy", "nll_loss",
    "kl_div", "soft_margin_loss", "multilabel_soft_margin_loss", "multi_margin_loss",
    "multilabel_margin_loss", "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss",
    "poisson_nll_loss", "gaussian_nll_loss", "cosine_similarity", "cosine_embedding_loss",
    "margin_ranking_loss", "hinge_embedding_loss", "pairwise_distance", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "ctc_loss"})


def _torch_call(name, args, kwargs):
    import torch
    import torch.nn.functional as F

    tensors = [torch.as_tensor(a) for a in args]
    kw = {k: (torch.as_tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    if name in _TORCH_AXIS:
        kw["dim"] = kw.pop("axis", -1)
    elif "axis" in kw:
        # xploss's class axis is torch's dim 1 (0 for one unbatched row).
        if kw.pop("axis") not in (None, min(1, tensors[0].ndim - 1)):
            _refuse("axis")
    fn = torch.logsumexp if name == "logsumexp" else getattr(F, name)
    with torch.no_grad():
        return fn(*tensors, **kw).double().numpy()


# ------------------------------------------------------------ jax and optax


def _jax_call(name, args, kwargs):
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_enable_x64", True)  # float64 cases stay float64
    a = [jnp.asarray(v) for v in args]
    losses = optax.losses
    reduction = kwargs.get("reduction", "mean")
    if name in ("softplus", "sigmoid", "log_sigmoid"):
        _options(kwargs, ())
        out = getattr(jax.nn, name)(a[0])
    elif name in ("log_softmax", "softmax", "logsumexp"):
        out = getattr(jax.nn, name)(a[0], axis=_options(kwargs, ("axis",)).get("axis", -1))
    elif name in ("xlogy", "xlog1py"):
        _options(kwargs, ())
        out = getattr(jax.scipy.special, name)(*a)
    elif name == "log_cosh":
        _options(kwargs, ())
        out = losses.log_cosh(a[0])
    elif name == "log_cosh_loss":
        _options(kwargs, ("reduction",))
        out = _reduced(jnp, losses.log_cosh(a[0], a[1]), reduction)
    elif name == "huber_loss":
        delta = _options(kwargs, ("reduction", "delta")).get("delta", 1.0)
        out = _reduced(jnp, losses.huber_loss(a[0], a[1], delta=delta), reduction)
    elif name == "binary_cross_entropy_with_logits":
        _options(kwargs, ("reduction",))
        out = _reduced(jnp, losses.sigmoid_binary_cross_entropy(a[0], a[1]), reduction)
    elif name == "cross_entropy":
        _options(kwargs, ("reduction",))
        if a[0].ndim > 2:
            _refuse("class axis not last")
        if jnp.issubdtype(a[1].dtype, jnp.integer):
            per_row = losses.softmax_cross_entropy_with_integer_labels(a[0], a[1])
        else:
            per_row = losses.softmax_cross_entropy(a[0], a[1])
        out = _reduced(jnp, per_row, reduction)
    elif name == "poly1_cross_entropy":
        eps = _options(kwargs, ("reduction", "epsilon")).get("epsilon", 1.0)
        if jnp.issubdtype(a[1].dtype, jnp.integer) or a[0].ndim > 2:
            _refuse("class indices or class axis not last")
        out = _reduced(jnp, losses.poly_loss_cross_entropy(a[0], a[1], epsilon=eps), reduction)
    elif name == "hinge_loss":
        _options(kwargs, ("reduction",))
        if not bool(jnp.all(jnp.abs(a[1]) == 1)):
            _refuse("targets in {0, 1}")
        out = _reduced(jnp, losses.hinge_loss(a[0], a[1]), reduction)
    elif name == "multiclass_hinge_loss":
        _options(kwargs, ("reduction",))
        if a[0].ndim > 2:
            _refuse("class axis not last")
        out = _reduced(jnp, losses.multiclass_hinge_loss(a[0], a[1]), reduction)
    elif name == "sigmoid_focal_loss":
        kw = _options(kwargs, ("reduction", "alpha", "gamma"))
        alpha = kw.get("alpha", 0.25)
        per = losses.sigmoid_focal_loss(a[0], a[1], alpha=None if alpha < 0 else alpha,
                                        gamma=kw.get("gamma", 2.0))
        out = _reduced(jnp, per, kw.get("reduction", "none"))
    elif name == "ntxent_loss":
        tau = _options(kwargs, ("temperature",)).get("temperature", 0.07)
        out = losses.ntxent(a[0], a[1], temperature=tau)
    else:
        raise NotComparable(name)
    return np.asarray(out, dtype=np.float64)


_JAX_NAMES = frozenset({
    "softplus", "sigmoid", "log_sigmoid", "log_softmax", "softmax", "logsumexp", "xlogy",
    "xlog1py", "log_cosh", "log_cosh_loss", "huber_loss", "binary_cross_entropy_with_logits",
    "cross_entropy", "poly1_cross_entropy", "hinge_loss", "multiclass_hinge_loss",
    "sigmoid_focal_loss", "ntxent_loss"})


# ------------------------------------------------------------------- keras

# Keras's losses take (y_true, y_pred) and average over the last axis: they
# match xploss's 'mean' reduction (rows of equal length), nothing else.
_KERAS = {
    "mse_loss": ("mean_squared_error", {}),
    "l1_loss": ("mean_absolute_error", {}),
    "log_cosh_loss": ("log_cosh", {}),
    "mape_loss": ("mean_absolute_percentage_error", {}),
    "msle_loss": ("mean_squared_logarithmic_error", {}),
    "hinge_loss": ("hinge", {}),
    "squared_hinge_loss": ("squared_hinge", {}),
    "binary_cross_entropy": ("binary_crossentropy", {}),
    "binary_cross_entropy_with_logits": ("binary_crossentropy", {"from_logits": True}),
}


def _keras_call(name, args, kwargs):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    if keras.backend.backend() != "jax":
        _refuse("keras is not on the JAX backend")
    if _options(kwargs, ("reduction",)).get("reduction", "mean") != "mean" or len(args) != 2:
        _refuse("reduction")
    loss, options = _KERAS[name]
    x, t = args
    out = getattr(keras.losses, loss)(t, x, **options)
    return np.asarray(np.mean(np.asarray(out, dtype=np.float64)))


PEERS = (
    Peer("torch.nn.functional", ("torch",), _TORCH_NAMES, _torch_call),
    Peer("jax.nn / optax", ("jax", "optax"), _JAX_NAMES, _jax_call),
    Peer("keras (JAX)", ("keras", "jax"), frozenset(_KERAS), _keras_call),
)


def peers_of(name: str) -> list[Peer]:
    """The installed peers that have a version of xploss's ``name``."""
    return [p for p in PEERS if name in p.names and p.installed()]
