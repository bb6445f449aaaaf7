"""Stability gallery: value and gradient errors of classic numerical traps.

Run by the documentation build as ``main(outdir)``, or by hand as
``python docs/gallery.py OUTDIR``. For each trap it evaluates, on one grid of
float32 inputs, the textbook formula, every installed peer library
(``torch.nn.functional``, optax, Keras on JAX) and xploss; measures the error
of the value and of the derivative against mpmath; and writes one PNG per trap
and the MyST page ``gallery.md`` that shows them, with every number in its text
computed here. A peer that does not import is left out: NumPy, mpmath and
matplotlib (and xploss) are enough to build the page.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mpmath
import numpy as np
from array_api_compat import array_namespace
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from xploss.conformance.references import log_cosh, settled, sigmoid, softplus

import xploss

DPI = 110
FLOOR = 1e-2  # errors below this many ULP (exact results included) sit on the bottom line
F32 = np.float32
F32_MAX = float(np.finfo(F32).max)

# (colour, marker, filled): the peers are drawn hollow, so that coinciding curves show through.
NAIVE_STYLE = ("#7f7f7f", "s", True)
TORCH_STYLE = ("#e8710a", "v", False)
OPTAX_STYLE = ("#1f6fb4", "^", False)
KERAS_STYLE = ("#c2185b", "D", False)
XPLOSS_STYLE = ("#1b7837", "o", True)


# --------------------------------------------------------------------- peers


@dataclass
class Peers:
    """The optional libraries that imported, with the version of each."""

    torch: object = None
    F: object = None
    jax: object = None
    jnp: object = None
    optax: object = None
    keras: object = None
    versions: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)


def load_peers():
    """Import every optional peer; any failure to import one leaves it out."""
    peers = Peers()
    try:
        import torch
        import torch.nn.functional as F
    except Exception:
        peers.missing.append("torch")
    else:
        peers.torch, peers.F = torch, F
        peers.versions["torch"] = torch.__version__
    try:
        import jax
        import jax.numpy as jnp
    except Exception:
        peers.missing += ["optax", "keras"]
        return peers
    peers.jax, peers.jnp = jax, jnp
    try:
        import optax
    except Exception:
        peers.missing.append("optax")
    else:
        peers.optax = optax
        peers.versions["optax"] = optax.__version__
    # Keras picks its backend when first imported; its gradients here come from jax.grad.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except Exception:
        peers.missing.append("keras")
    else:
        if keras.backend.backend() == "jax":
            peers.keras = keras
            peers.versions["keras"] = f"{keras.__version__} on JAX {jax.__version__}"
        else:
            peers.missing.append("keras (not on the JAX backend)")
    return peers


# ------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One way of computing a trap's function.

    ``fn(v, c)`` returns one result per point: ``v`` is the input the
    derivative is taken with respect to, ``c`` a dict of the other inputs,
    both arrays of ``engine``: "torch", "jax", or "any" (torch where it is
    installed, else JAX, else NumPy without gradients).
    """

    name: str
    engine: str
    fn: Callable
    style: tuple  # (colour, marker, filled)
    formula: str = ""  # shown in the legend after the name
    needs: str = ""  # the optional peer it calls ("torch", "optax", "keras"): left out without it

    @property
    def label(self):
        return f"{self.name}: {self.formula}" if self.formula else self.name


def run_method(method, peers, v, consts):
    """(values, derivatives) of ``method`` at the float32 points ``v``, as float32
    NumPy arrays; derivatives are None where no autodiff library is installed."""
    engine = method.engine
    if engine == "any":
        engine = "torch" if peers.torch else "jax" if peers.jax else "numpy"
    if engine == "torch":
        torch = peers.torch
        leaf = torch.tensor(v, requires_grad=True)
        out = method.fn(leaf, {k: torch.as_tensor(a) for k, a in consts.items()})
        # Each result depends on its own point only: the gradient of the sum is
        # the derivative at every point.
        (grad,) = torch.autograd.grad(out.sum(), leaf)
        return out.detach().numpy().astype(F32), grad.numpy().astype(F32)
    if engine == "jax":
        jax, jnp = peers.jax, peers.jnp
        c = {k: jnp.asarray(a) for k, a in consts.items()}

        def value_and_derivative(u, c):
            return method.fn(u, c), jax.grad(lambda w: jnp.sum(method.fn(w, c)))(u)

        # Under jax.jit, as JAX code usually runs, with every input an argument
        # (inputs closed over would be constants that XLA folds at compile time).
        out, grad = jax.jit(value_and_derivative)(jnp.asarray(v), c)
        return np.asarray(out, dtype=F32), np.asarray(grad, dtype=F32)
    with np.errstate(all="ignore"):
        return np.asarray(method.fn(v, consts), dtype=F32), None


def with_row(v, rest):
    """Logit rows [v_i, rest_i...]: the swept logit in class 0."""
    xp = array_namespace(v)
    return xp.concat([v[:, None], rest], axis=1)


# --------------------------------------------------------------------- traps


@dataclass
class Variant:
    """One row of a trap's figure: a grid, the exact function and the methods."""

    label: str
    x: np.ndarray  # float32 grid of the swept (differentiated) input
    consts: dict  # the other inputs, NumPy arrays
    exact: Callable  # mpf -> [value, derivative], at any mpmath precision
    methods: list


@dataclass
class Trap:
    slug: str
    title: str
    what: str  # markdown: what the trap is
    formula: str  # markdown: the formula xploss uses
    var: str  # name of the swept input in the text
    xlabel: str
    xscale: dict  # arguments of Axes.set_xscale
    variants: list


def symlog_grid(lo, hi, n):
    """n float32 points, log-spaced in |x| from lo to hi, of both signs, sorted."""
    half = np.geomspace(lo, hi, n // 2)
    return np.unique(np.concatenate([-half, half]).astype(F32))


def full(x, value):
    return np.full(x.shape, value, dtype=F32)


def trap_bce_logits(p):
    t = F32(1 - 2.0**-20)
    x = symlog_grid(1e-3, 1e4, 300)
    tm = mpmath.mpf(float(t))

    def exact(v):
        # t·softplus(-x) + (1 - t)·softplus(x); derivative σ(x) - t.
        return [tm * softplus(-v) + (1 - tm) * softplus(v), sigmoid(v) - tm]

    def naive(v, c):
        xp = array_namespace(v)
        s = 1 / (1 + xp.exp(-v))
        return -(c["t"] * xp.log(s) + (1 - c["t"]) * xp.log(1 - s))

    methods = [Method("naive", "any", naive, NAIVE_STYLE, "−t·log σ(x) − (1−t)·log(1−σ(x))")]
    methods.append(Method("torch", "torch", lambda v, c: p.F.binary_cross_entropy_with_logits(
        v, c["t"], reduction="none"), TORCH_STYLE, needs="torch"))
    methods.append(Method("optax", "jax", lambda v, c: p.optax.losses.
                          sigmoid_binary_cross_entropy(v, c["t"]), OPTAX_STYLE, needs="optax"))
    methods.append(Method("keras", "jax", lambda v, c: p.keras.losses.binary_crossentropy(
        c["t"][:, None], v[:, None], from_logits=True), KERAS_STYLE, needs="keras"))
    methods.append(Method("xploss", "any", lambda v, c: xploss.binary_cross_entropy_with_logits(
        v, c["t"], reduction="none"), XPLOSS_STYLE))
    return Trap(
        "bce-logits", "Binary cross-entropy from logits, soft label",
        "With a soft label $t = 1 - 2^{-20}$ the loss "
        "$t\\log(1+e^{-x}) + (1-t)\\log(1+e^{x})$ is finite for every logit, "
        "but a formula that forms $\\sigma(x)$ first takes the log of 0 once "
        "$\\sigma(x)$ rounds to 0 or 1; and the gradient $\\sigma(x) - t$, "
        "formed as written, keeps little more than the rounding error of "
        "$\\sigma(x)$ where $\\sigma(x)$ and $t$ are both close to 1.",
        "{func}`xploss.binary_cross_entropy_with_logits` evaluates "
        "$\\operatorname{log1p}(e^{-|x|}) + c\\,|x|$ with $c = 1 - t$ for $x > 0$ "
        "and $c = t$ otherwise: two non-negative terms, no cancellation.",
        "x", "logit x", {"value": "symlog", "linthresh": 1e-3, "linscale": 0.3},
        [Variant("", x, {"t": full(x, t)}, exact, methods)])


def trap_bce_probabilities(p):
    t = F32(0.3)
    low = np.geomspace(1e-45, 0.5, 160)
    high = 1 - np.geomspace(0.5, 2.0**-24, 160)
    x = np.unique(np.concatenate([low, high]).astype(F32))
    x = x[(x > 0) & (x < 1)]
    tm = mpmath.mpf(float(t))

    def exact(v):
        # -(t·log p + (1 - t)·log1p(-p)); derivative -t/p + (1 - t)/(1 - p).
        return [-(tm * mpmath.log(v) + (1 - tm) * mpmath.log1p(-v)), -tm / v + (1 - tm) / (1 - v)]

    def naive(v, c):
        xp = array_namespace(v)
        return -(c["t"] * xp.log(v) + (1 - c["t"]) * xp.log(1 - v))

    methods = [Method("naive", "any", naive, NAIVE_STYLE, "−t·log p − (1−t)·log(1−p)")]
    methods.append(Method("torch", "torch", lambda v, c: p.F.binary_cross_entropy(
        v, c["t"], reduction="none"), TORCH_STYLE, needs="torch"))
    methods.append(Method("keras", "jax", lambda v, c: p.keras.losses.binary_crossentropy(
        c["t"][:, None], v[:, None]), KERAS_STYLE, needs="keras"))
    methods.append(Method("xploss", "any", lambda v, c: xploss.binary_cross_entropy(
        v, c["t"], reduction="none"), XPLOSS_STYLE))
    return Trap(
        "bce-probabilities", "Binary cross-entropy from probabilities near 0 and 1",
        "Probabilities a few ULP from 0 or 1 (here down to the smallest subnormal "
        "and up to $1 - 2^{-24}$), soft label $t = 0.3$: clamping the logarithms "
        "or clipping $p$ to $[\\epsilon, 1 - \\epsilon]$ changes the loss and its "
        "gradient there. optax has no loss on probabilities.",
        "{func}`xploss.binary_cross_entropy` evaluates "
        "$-(t\\log p + (1-t)\\operatorname{log1p}(-p))$ with every probability "
        "strictly between 0 and 1 used as given: no clamp, no epsilon.",
        "p", "probability p (logit scale)", {"value": "logit"},
        [Variant("", x, {"t": full(x, t)}, exact, methods)])


def trap_confident_ce(p):
    n_classes = 10
    x = np.geomspace(0.1, 1000, 300).astype(F32)
    others = mpmath.mpf(n_classes - 1)

    def exact(v):
        # Logits [x, 0, ..., 0], label 0: log1p((C - 1)e^-x);
        # derivative -(C - 1)e^-x / (1 + (C - 1)e^-x).
        e = others * mpmath.exp(-v)
        return [mpmath.log1p(e), -e / (1 + e)]

    def naive(v, c):
        xp = array_namespace(v)
        return xp.log(xp.sum(xp.exp(with_row(v, c["rest"])), axis=1)) - v

    consts = {"rest": np.zeros((x.size, n_classes - 1), F32),
              "label": np.zeros(x.size, np.int64)}
    methods = [Method("naive", "any", naive, NAIVE_STYLE, "log Σ exp(xⱼ) − x_y")]
    methods.append(Method("torch", "torch", lambda v, c: p.F.cross_entropy(
        with_row(v, c["rest"]), c["label"], reduction="none"), TORCH_STYLE, needs="torch"))
    methods.append(Method("optax", "jax", lambda v, c: p.optax.losses.
                          softmax_cross_entropy_with_integer_labels(
                              with_row(v, c["rest"]), c["label"]), OPTAX_STYLE, needs="optax"))
    methods.append(Method("keras", "jax", lambda v, c: p.keras.losses.
                          sparse_categorical_crossentropy(
                              c["label"], with_row(v, c["rest"]), from_logits=True),
                          KERAS_STYLE, needs="keras"))
    methods.append(Method("xploss", "any", lambda v, c: xploss.cross_entropy(
        with_row(v, c["rest"]), c["label"], reduction="none"), XPLOSS_STYLE))
    return Trap(
        "confident-ce", "Cross-entropy of a confident prediction",
        f"Logits $[x, 0, \\dots, 0]$ over {n_classes} classes, label 0: the loss is "
        f"$\\operatorname{{log1p}}({n_classes - 1}e^{{-x}}) \\approx {n_classes - 1}e^{{-x}}$, "
        "but $\\log\\sum_j e^{x_j} - x$ loses it as the sum approaches $e^x$, "
        "returns 0 when the sum rounds to $e^x$ (its gradient is then 0 or a "
        "rounding error), and inf once $e^x$ overflows.",
        "{func}`xploss.cross_entropy` takes "
        "$\\log p_y = (x_y - m) - \\operatorname{log1p}(\\sum_{j} e^{x_j - m})$, "
        "the sum over every class but one maximum $m$: the small loss keeps its "
        "relative accuracy.",
        "x", "logit x of the labelled class", {"value": "log"},
        [Variant("", x, consts, exact, methods)])


def trap_masked_ce(p):
    eps = 0.125  # exact in binary: every method receives exactly the same targets
    x = symlog_grid(1e-3, 1e3, 300)
    q0, q1 = 1 - eps + eps / 2, eps / 2

    def exact(v):
        # Classes 2 and 3 are masked: -q0·log σ(x) - q1·log σ(-x); derivative σ(x) - q0.
        return [q0 * softplus(-v) + q1 * softplus(v), sigmoid(v) - q0]

    def naive(v, c):
        xp = array_namespace(v)
        e = xp.exp(with_row(v, c["rest"]))
        return -xp.sum(c["q"] * xp.log(e / xp.sum(e, axis=1, keepdims=True)), axis=1)

    consts = {"rest": np.tile(np.array([0, -np.inf, -np.inf], F32), (x.size, 1)),
              "q": np.tile(np.array([q0, q1, 0, 0], F32), (x.size, 1)),
              "label": np.zeros(x.size, np.int64)}
    methods = [Method("naive", "any", naive, NAIVE_STYLE, "−Σ qⱼ·log softmax(x)ⱼ")]
    methods.append(Method("torch", "torch", lambda v, c: p.F.cross_entropy(
        with_row(v, c["rest"]), c["q"], reduction="none"), TORCH_STYLE, needs="torch"))
    methods.append(Method("optax", "jax", lambda v, c: p.optax.losses.softmax_cross_entropy(
        with_row(v, c["rest"]), c["q"]), OPTAX_STYLE, needs="optax"))
    methods.append(Method("optax safe_softmax_cross_entropy", "jax",
                          lambda v, c: p.optax.losses.safe_softmax_cross_entropy(
                              with_row(v, c["rest"]), c["q"]), ("#6baed6", "<", False),
                          needs="optax"))
    methods.append(Method("keras", "jax", lambda v, c: p.keras.losses.
                          categorical_crossentropy(c["q"], with_row(v, c["rest"]),
                                                   from_logits=True), KERAS_STYLE, needs="keras"))
    methods.append(Method(f"xploss (label_smoothing={eps})", "any",
                          lambda v, c: xploss.cross_entropy(
                              with_row(v, c["rest"]), c["label"], label_smoothing=eps,
                              reduction="none"), XPLOSS_STYLE))
    return Trap(
        "masked-ce", "Cross-entropy with masked classes and label smoothing",
        "Logits $[x, 0, -\\infty, -\\infty]$ (two masked classes), label 0, label "
        f"smoothing {eps} spread over the two unmasked classes: targets "
        f"$q = [{q0}, {q1}, 0, 0]$. The loss is finite, but the term "
        "$0 \\cdot \\log 0$ of $-\\sum_j q_j \\log p_j$ is NaN in floating point. "
        "The peers receive these targets $q$ as probabilities: the label "
        "smoothing of torch, of optax's `smooth_labels` and of Keras spreads "
        "mass over the masked classes too, which makes the exact loss infinite.",
        "{func}`xploss.cross_entropy` with `label_smoothing` spreads the "
        "smoothing over the unmasked classes only and takes "
        "$0 \\cdot (-\\infty) = 0$ for the masked ones, in value and gradient.",
        "x", "logit x of the labelled class", {"value": "symlog", "linthresh": 1e-3,
                                                "linscale": 0.3},
        [Variant("", x, consts, exact, methods)])


def trap_log_cosh(p):
    x = np.geomspace(1e-20, 1e3, 300).astype(F32)

    def exact(v):
        # log cosh r; derivative tanh r.
        return [log_cosh(v), mpmath.tanh(v)]

    def naive(v, c):
        xp = array_namespace(v)
        return xp.log(xp.cosh(v - c["zero"]))

    methods = [Method("naive", "any", naive, NAIVE_STYLE, "log(cosh(r))")]
    methods.append(Method("optax", "jax", lambda v, c: p.optax.losses.log_cosh(
        v, c["zero"]), OPTAX_STYLE, needs="optax"))
    methods.append(Method("keras", "jax", lambda v, c: p.keras.losses.log_cosh(
        c["zero"][:, None], v[:, None]), KERAS_STYLE, needs="keras"))
    methods.append(Method("xploss", "any", lambda v, c: xploss.log_cosh_loss(
        v, c["zero"], reduction="none"), XPLOSS_STYLE))
    return Trap(
        "log-cosh", "Log-cosh of tiny and of huge residuals",
        "$\\log\\cosh r \\approx r^2/2$ for tiny residuals, where "
        "$\\cosh r$ rounds to 1 and the logarithm returns 0; for $r > 89$ "
        "$\\cosh r$ overflows to inf. Rewritten as "
        "$\\operatorname{logaddexp}(r, -r) - \\log 2$ (optax) or "
        "$r + \\operatorname{softplus}(-2r) - \\log 2$ (Keras) it no longer "
        "overflows, but cancels for small $r$. torch has no log-cosh loss.",
        "{func}`xploss.log_cosh_loss` calls {func}`xploss.log_cosh`: Maclaurin "
        "series (of $\\log\\cosh$ and $\\tanh$) for $|r| < 1$, and "
        "$|r| - \\log 2 + \\operatorname{log1p}(e^{-2|r|})$ above.",
        "r", "residual r", {"value": "log"},
        [Variant("", x, {"zero": full(x, 0.0)}, exact, methods)])


def trap_focal(p):
    x = symlog_grid(1e-2, 1e3, 300)

    def variant(gamma):
        g = mpmath.mpf(gamma)

        def exact(v):
            # Label 1, no alpha: ce·q^γ with ce = softplus(-x), q = 1 - p_t = σ(-x);
            # derivative (σ(x) - 1)·q^γ - ce·γ·q^(γ-1)·σ(x)·σ(-x).
            ce, q, s = softplus(-v), sigmoid(-v), sigmoid(v)
            return [ce * q**g, (s - 1) * q**g - ce * g * q ** (g - 1) * s * q]

        def naive(v, c):
            xp = array_namespace(v)
            s = 1 / (1 + xp.exp(-v))
            p_t = s * c["t"] + (1 - s) * (1 - c["t"])
            return -((1 - p_t) ** gamma) * xp.log(p_t)

        def torchvision(v, c):
            # torchvision.ops.sigmoid_focal_loss, alpha < 0 (no weighting).
            prob = p.torch.sigmoid(v)
            ce = p.F.binary_cross_entropy_with_logits(v, c["t"], reduction="none")
            p_t = prob * c["t"] + (1 - prob) * (1 - c["t"])
            return ce * ((1 - p_t) ** gamma)

        methods = [Method("naive", "any", naive, NAIVE_STYLE, "−(1−p_t)^γ·log p_t")]
        methods.append(Method("torchvision formula", "torch", torchvision, TORCH_STYLE,
                              needs="torch"))
        methods.append(Method("optax", "jax", lambda v, c: p.optax.losses.
                              sigmoid_focal_loss(v, c["t"], gamma=gamma), OPTAX_STYLE,
                              needs="optax"))
        methods.append(Method("keras", "jax", lambda v, c: p.keras.losses.
                              binary_focal_crossentropy(
                                  c["t"][:, None], v[:, None], gamma=gamma,
                                  from_logits=True), KERAS_STYLE, needs="keras"))
        methods.append(Method("xploss", "any", lambda v, c: xploss.sigmoid_focal_loss(
            v, c["t"], alpha=-1, gamma=gamma), XPLOSS_STYLE))
        return Variant(f"γ = {gamma}", x, {"t": full(x, 1.0)}, exact, methods)

    return Trap(
        "focal", "Sigmoid focal loss at saturated logits",
        "Focal loss $(1 - p_t)^\\gamma\\,\\mathrm{BCE}(x, t)$ with label 1 and no "
        "$\\alpha$ weighting, logits up to $\\pm 10^3$. Once $\\sigma(x)$ rounds to "
        "1, $1 - p_t = 0$: the value is 0 while the exact one is still "
        "representable, and for $\\gamma < 1$ the derivative of $(1 - p_t)^\\gamma$ "
        "is infinite there, so the gradient is $0 \\cdot \\infty$ = NaN. "
        "torchvision is not needed: its formula is written here in torch.",
        "{func}`xploss.sigmoid_focal_loss` evaluates $(1 - p_t)^\\gamma$ as "
        "$\\exp(\\gamma \\log(1 - p_t))$, with $\\log(1 - p_t)$ formed in log "
        "space from the logits (never from $1 - \\sigma(x)$).",
        "x", "logit x (label 1)", {"value": "symlog", "linthresh": 1e-2, "linscale": 0.3},
        [variant(2.0), variant(0.5)])


def trap_cosine(p):
    s = np.geomspace(1e-37, 1e38, 300).astype(F32)

    def exact(v):
        # x1 = (s, 2s), x2 = (2s, s): cos = 0.8 for every s; derivative with
        # respect to x1[0]: x2[0]/(|x1||x2|) - cos·x1[0]/|x1|².
        x1, x2 = [v, 2 * v], [2 * v, v]
        n1 = mpmath.sqrt(mpmath.fsum(a * a for a in x1))
        n2 = mpmath.sqrt(mpmath.fsum(b * b for b in x2))
        cos = mpmath.fsum(a * b for a, b in zip(x1, x2, strict=True)) / (n1 * n2)
        return [cos, x2[0] / (n1 * n2) - cos * x1[0] / n1**2]

    def naive(v, c):
        xp = array_namespace(v)
        x1 = with_row(v, c["x1_rest"])
        norm1 = xp.sqrt(xp.sum(x1 * x1, axis=1))
        norm2 = xp.sqrt(xp.sum(c["x2"] * c["x2"], axis=1))
        return xp.sum(x1 * c["x2"], axis=1) / (norm1 * norm2)

    consts = {"x1_rest": (2 * s)[:, None], "x2": np.stack([2 * s, s], axis=1)}
    methods = [Method("naive", "any", naive, NAIVE_STYLE, "x₁·x₂ / (|x₁| |x₂|)")]
    methods.append(Method("torch", "torch", lambda v, c: p.F.cosine_similarity(
        with_row(v, c["x1_rest"]), c["x2"], dim=1), TORCH_STYLE, needs="torch"))
    methods.append(Method("optax", "jax", lambda v, c: p.optax.losses.cosine_similarity(
        with_row(v, c["x1_rest"]), c["x2"]), OPTAX_STYLE, needs="optax"))
    # Keras's loss is the negated cosine.
    methods.append(Method("keras (−loss)", "jax", lambda v, c: -p.keras.losses.
                          cosine_similarity(c["x2"], with_row(v, c["x1_rest"])),
                          KERAS_STYLE, needs="keras"))
    methods.append(Method("xploss", "any", lambda v, c: xploss.cosine_similarity(
        with_row(v, c["x1_rest"]), c["x2"]), XPLOSS_STYLE))
    return Trap(
        "cosine", "Cosine similarity of tiny and of huge vectors",
        "$x_1 = (s, 2s)$, $x_2 = (2s, s)$ have cosine $0.8$ for every scale $s$. "
        "Squared norms overflow float32 above $s \\approx 10^{19}$, and below "
        "$s \\approx 10^{-19}$ they lose precision and then underflow to 0; an "
        "$\\epsilon$ clamp on the norm changes the result for small vectors. The "
        "gradient is taken with respect to $x_1[0]$.",
        "{func}`xploss.cosine_similarity` divides each vector by its largest "
        "magnitude first, so that neither the dot product nor the norms overflow "
        "or underflow.",
        "s", "scale s", {"value": "log"},
        [Variant("", s, consts, exact, methods)])


def trap_removable_singularity(p):
    x = symlog_grid(1e-10, 1e3, 300)

    def exact(v):
        # f(x) = 1/(1 - e^-x) - 1/x = -1/expm1(-x) - 1/x (expm1: no 1 - e^-x = 0);
        # derivative 1/x² - e^-x / expm1(-x)².
        return [-1 / mpmath.expm1(-v) - 1 / v, 1 / v**2 - mpmath.exp(-v) / mpmath.expm1(-v) ** 2]

    def naive(v, c):
        xp = array_namespace(v)
        return 1 / (1 - xp.exp(-v)) - 1 / v

    def langevin_form(v, c):
        # 1/(1 - e^-x) = (1 + coth(x/2))/2, so f(x) = (1 + L(x/2))/2 with L(y) = coth y - 1/y.
        return 0.5 * (1 + xploss.langevin(v / 2))

    def complete_form(v, c):
        # The worked example of docs/user-losses.md: for x < -2, where 1 + L(x/2)
        # cancels, the equivalent 1/t - e^-t/(1 - e^-t) with t = -x.
        return user_loss.stable(v)

    methods = [Method("naive", "any", naive, NAIVE_STYLE, "1/(1−e⁻ˣ) − 1/x"),
               Method("xploss ½(1 + langevin(x/2))", "any", langevin_form, ("#41ab5d", "P", False)),
               Method("xploss complete form", "any", complete_form, XPLOSS_STYLE)]
    return Trap(
        "removable-singularity", "A removable singularity: 1/(1 − e⁻ˣ) − 1/x",
        "A loss of your own, $f(x) = 1/(1 - e^{-x}) - 1/x$, is smooth with "
        "$f(0) = 1/2$, but as written both terms grow like $1/x$ near 0 and "
        "their difference cancels. No peer library has this function.",
        "$f(x) = \\tfrac12(1 + L(x/2))$ with {func}`xploss.langevin` "
        "$L(y) = \\coth y - 1/y$ (checked against mpmath); that sum cancels for "
        "$x \\ll 0$, where $L \\to -1$, so the complete form (the worked example of "
        "docs/user-losses.md) uses $1/t - 1/(e^t - 1)$, $t = -x$, for $x < -2$.",
        "x", "x", {"value": "symlog", "linthresh": 1e-10, "linscale": 0.3},
        [Variant("", x, {}, exact, methods)])


# The stable form of the worked example is the script's own function.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import user_loss  # noqa: E402

TRAPS = [trap_bce_logits, trap_bce_probabilities, trap_confident_ce, trap_masked_ce,
         trap_log_cosh, trap_focal, trap_cosine, trap_removable_singularity]


# -------------------------------------------------------------------- errors


def exact_values(variant):
    """(values, derivatives) of the exact function at the float32 grid, as float64.

    mpmath at 60 digits, then at doubled precision until two evaluations agree
    (``settled``), so that cancellation inside a formula is outrun.
    """
    pairs = [settled(variant.exact, mpmath.mpf(float(v))) for v in variant.x]
    return (np.array([float(a) for a, _ in pairs]), np.array([float(b) for _, b in pairs]))


def ulp_error(computed, exact):
    """|computed − exact| in ULP of float32 at the exact value: inf where the
    computed value is NaN or ±inf, NaN (not plotted) where the exact value is
    outside the float32 range."""
    _, expo = np.frexp(np.abs(exact))  # |exact| = m·2^expo, m in [0.5, 1)
    ulp = np.ldexp(1.0, np.where(exact == 0, -149, np.maximum(expo - 24, -149)))
    with np.errstate(invalid="ignore"):
        err = np.abs(computed.astype(np.float64) - exact) / ulp
    err[~np.isfinite(computed)] = np.inf
    err[np.abs(exact) > F32_MAX] = np.nan
    return err


@dataclass
class Curve:
    method: Method
    value_err: np.ndarray
    grad_err: np.ndarray | None  # None: no autodiff library installed


def measure(variant, peers):
    """The curves of every method of ``variant``, and the exact derivatives."""
    value, deriv = exact_values(variant)
    curves = []
    for method in variant.methods:
        if method.needs and not getattr(peers, method.needs):
            continue  # that peer is not installed
        try:
            got, grad = run_method(method, peers, variant.x, variant.consts)
        except Exception as exc:
            # A peer whose API changed must not break the documentation build.
            if method.engine == "any":
                raise
            print(f"gallery: left out {method.label}: {exc!r}", file=sys.stderr)
            continue
        curves.append(Curve(method, ulp_error(got, value),
                            None if grad is None else ulp_error(grad, deriv)))
    return curves, deriv


# ------------------------------------------------------------------ plotting


def sign_changes(deriv):
    """Indices i where the exact derivative changes sign between points i and i + 1."""
    return np.flatnonzero(np.sign(deriv[:-1]) * np.sign(deriv[1:]) < 0)


def panel_limits(errs):
    """(top decade of the numeric part, band bottom, band top) of a panel, in log10."""
    finite = [e[np.isfinite(e)] for e in errs]
    worst = max([FLOOR, *(float(f.max()) for f in finite if f.size)])
    top = max(2, math.ceil(math.log10(worst)))
    span = top - math.log10(FLOOR)
    band_lo = top + 0.06 * span
    return top, band_lo, band_lo + 0.16 * span


def scatter(ax, x, y, style, size):
    color, marker, filled = style
    if filled:  # naive and xploss: small, on top
        ax.scatter(x, y, s=12, color=color, marker=marker, linewidths=0, zorder=4)
    else:
        ax.scatter(x, y, s=size, facecolors="none", edgecolors=color, marker=marker,
                   linewidths=0.8, zorder=3)


def symlog_ticks(ax, linthresh, x_max):
    """0 and ±10^k for at most 4 decades k per sign, counted down from the largest."""
    k_max, k_min = math.floor(math.log10(x_max)), round(math.log10(linthresh))
    step = max(1, math.ceil((k_max - k_min) / 4))
    decades = range(k_max, k_min + 1, -step)  # none next to linthresh: its label meets 0's
    ax.set_xticks([*(-(10.0**k) for k in decades), 0, *(10.0**k for k in decades)])


def draw_panel(ax, trap, variant, curves, which, deriv):
    x = variant.x.astype(np.float64)
    ax.set_xscale(**trap.xscale)
    ax.set_xlim(x.min(), x.max())
    if trap.xscale["value"] == "symlog":
        symlog_ticks(ax, trap.xscale["linthresh"], x.max())
    ax.set_xlabel(trap.xlabel)
    title = f"{which} error" + (f", {variant.label}" if variant.label else "")
    ax.set_title(title, fontsize=10)
    drawn = [(c, c.value_err if which == "value" else c.grad_err) for c in curves]
    drawn = [(c, e) for c, e in drawn if e is not None]
    if not drawn:
        ax.text(0.5, 0.5, "no autodiff library installed", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_yticks([])
        return
    ax.set_yscale("log")
    top, band_lo, band_hi = panel_limits([e for _, e in drawn])
    ax.axhspan(10**band_lo, 10**band_hi, color="#f3d9d9", zorder=0)
    hollow = 0
    for i, (curve, err) in enumerate(drawn):
        # Hollow markers shrink from one peer to the next, so that peers with
        # equal errors stay visible inside each other.
        size = max(12, 40 - 10 * hollow)
        hollow += not curve.method.style[2]
        ok = np.isfinite(err)
        scatter(ax, x[ok], np.maximum(err[ok], FLOOR), curve.method.style, size)
        # NaN/inf: one row of the band per method.
        bad = np.isinf(err)
        y_band = 10 ** (band_lo + (i + 0.5) / len(drawn) * (band_hi - band_lo))
        scatter(ax, x[bad], np.full(bad.sum(), y_band), curve.method.style, size)
    if which == "gradient":
        for i in sign_changes(deriv):
            ax.axvline(0.5 * (x[i] + x[i + 1]), color="#444444", ls=":", lw=1, zorder=1)
    step = max(1, math.ceil((top + 2) / 7))
    decades = range(-2, top + 1, step)
    labels = ["≤10⁻²" if k == -2 else f"$10^{{{k}}}$" for k in decades]
    ax.set_yticks([*(10.0**k for k in decades), 10 ** ((band_lo + band_hi) / 2)],
                  [*labels, "NaN/inf"])
    ax.minorticks_off()
    ax.set_ylim(FLOOR / 2, 10**band_hi)
    ax.grid(True, which="major", color="#dddddd", lw=0.6)


def legend_handle(method):
    color, marker, filled = method.style
    return Line2D([], [], ls="", marker=marker, markersize=6, label=method.label,
                  color=color, markerfacecolor=color if filled else "none")


def plot(trap, measured, path):
    rows = len(trap.variants)
    fig = Figure(figsize=(11, 1.0 + 3.6 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2, squeeze=False)
    for row, (variant, (curves, deriv)) in enumerate(zip(trap.variants, measured, strict=True)):
        for col, which in enumerate(("value", "gradient")):
            draw_panel(axes[row, col], trap, variant, curves, which, deriv)
        axes[row, 0].set_ylabel("error (ULP of float32)")
    handles = [legend_handle(c.method) for c in measured[0][0]]
    if any(sign_changes(deriv).size for _, deriv in measured):
        handles.append(Line2D([], [], color="#444444", ls=":", label="exact gradient = 0"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               frameon=False, fontsize=9)
    fig.suptitle(trap.title, fontsize=12)
    fig.savefig(path, dpi=DPI)


# ------------------------------------------------------------------- reading


def fmt(v):
    """A number for the text: 0.52, 37, 1.6e7."""
    if v < 10:
        return f"{v:.2f}"
    if v < 1e4:
        return f"{v:.0f}"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_x(v):
    """An input for the text: -95.5, 3.46e-8, 1e4."""
    text = f"{v:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def describe(err, x, var):
    """One method's errors in words: the worst finite error (and where, when it
    reaches 10 ULP), and where NaN/inf occur."""
    parts = []
    finite = np.flatnonzero(np.isfinite(err))
    if finite.size:
        i = finite[np.argmax(err[finite])]
        worst = f"{fmt(err[i])} ULP"
        parts.append(worst if err[i] < 10 else f"{worst} at {var} = {fmt_x(x[i])}")
    bad = np.isinf(err)
    if bad.any():
        # Contiguous runs of NaN/inf along the grid.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(int), [0]])))
        runs = [(x[a], x[b - 1]) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        n, total = int(bad.sum()), int((~np.isnan(err)).sum())
        if n == total:
            parts.append("NaN/inf everywhere")
        else:
            where = " and ".join(f"{var} = {fmt_x(a)}" if a == b else
                                 f"{var} from {fmt_x(a)} to {fmt_x(b)}" for a, b in runs)
            parts.append(f"NaN/inf at {n} of {total} points"
                         + (f" ({where})" if len(runs) <= 2 else ""))
    return ", ".join(parts)


def reading(trap, variant, curves, deriv):
    """Markdown lines: for each panel, the worst error of each method."""
    lines = []
    for which in ("value", "gradient"):
        errs = [(c.method.name, c.value_err if which == "value" else c.grad_err)
                for c in curves]
        errs = [(name, e) for name, e in errs if e is not None]
        head = f"**{which.capitalize()}{', ' + variant.label if variant.label else ''}**"
        if not errs:
            lines.append(f"- {head}: not measured (neither torch nor JAX is installed).")
            continue
        line = f"- {head}: " + "; ".join(f"{name} {describe(e, variant.x, trap.var)}"
                                          for name, e in errs) + "."
        # The exact result is the same for every method: so are the points left out.
        left_out = int(np.isnan(errs[0][1]).sum())
        if left_out:
            line += (f" The {left_out} points where the exact {which} is outside the "
                     "float32 range are left out.")
        if which == "gradient":
            for i in sign_changes(deriv):
                line += (f" The exact gradient changes sign between {trap.var} = "
                         f"{fmt_x(variant.x[i])} and {fmt_x(variant.x[i + 1])}.")
        lines.append(line)
    return lines



# ---------------------------------------------------------------------- page

INTRO = """\
# Stability gallery

Each figure below sweeps one input of a loss across a range where a textbook
formula breaks, and compares the textbook formula, the loss of every peer
library installed when this page was built, and xploss. Every method receives
the same **float32** inputs and computes in float32.

- **Horizontal axis**: the swept input.
- **Vertical axis**: the error against the exact result, in **ULP of float32**
  (the spacing of float32 numbers at the exact value; $2^{{-149}}$ in the
  subnormal range), on a log scale. A correctly rounded result is within 0.5
  ULP. Errors below 0.01 ULP, exact results included, are drawn on the bottom
  line.
- **NaN/inf band** (shaded, at the top): points where a method returns NaN or
  ±inf although the exact result is finite, one row of the band per method.
  Points whose exact result lies outside the float32 range are left out.
- **Left panel**: the value. **Right panel**: the derivative with respect to the
  swept input, by torch autograd for torch (and for the textbook formula and
  xploss, which run on torch when it is installed) and by `jax.grad` under
  `jax.jit` for optax and Keras. A dotted vertical line marks where the exact
  derivative changes sign: next to it the derivative is a difference of nearly
  equal numbers, which float32 cannot resolve to a few ULP of the result.
- Peers are drawn hollow, the textbook formula and xploss filled. Where
  methods have the same errors their markers cover each other: the list under
  each figure gives every method's worst error.

The exact values and derivatives are evaluated by mpmath at 60 digits, then at
doubled precision until two evaluations agree, at the float32 inputs
themselves; the derivatives are the analytic ones. JAX on CPU flushes
subnormal float32 numbers (below 1.2e-38) to zero, in inputs and results: the
curves computed with JAX include that. The text under each figure is computed
from the same numbers as the figure.

Peers in this build: {peers}.
"""


def page(sections, peers):
    names = [f"{name} {version}" for name, version in peers.versions.items()]
    listed = ", ".join(names) if names else "none"
    if peers.missing:
        listed += "; not installed: " + ", ".join(peers.missing)
    out = [INTRO.format(peers=listed)]
    for number, (trap, png, lines) in enumerate(sections, start=1):
        out += [f"## {number}. {trap.title}", "", trap.what, "", f"**xploss**: {trap.formula}",
                "", f"```{{figure}} {png}", f":alt: {trap.title}: value and gradient errors",
                ":width: 100%", "```", "", *lines, ""]
    return "\n".join(out)


def main(outdir):
    """Write the gallery's PNGs and ``gallery.md`` into ``outdir``; return the paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    peers = load_peers()
    sections, written = [], []
    for make in TRAPS:
        trap = make(peers)
        measured = [measure(v, peers) for v in trap.variants]
        png = f"{trap.slug}.png"
        plot(trap, measured, outdir / png)
        written.append(outdir / png)
        lines = [line for v, (curves, deriv) in zip(trap.variants, measured, strict=True)
                 for line in reading(trap, v, curves, deriv)]
        sections.append((trap, png, lines))
    md = outdir / "gallery.md"
    md.write_text(page(sections, peers), encoding="utf-8")
    written.append(md)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        usage = "usage: python docs/gallery.py OUTDIR"
        raise SystemExit(usage)
    for path in main(sys.argv[1]):
        print(path)
