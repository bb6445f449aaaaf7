"""Semantics of the embedding and ranking functions against their peers.

``cosine_similarity``, ``pairwise_distance``, ``cosine_embedding_loss``,
``margin_ranking_loss``, ``hinge_embedding_loss``, ``triplet_margin_loss`` and
``triplet_margin_with_distance_loss`` are compared with their
torch.nn.functional namesakes on ordinary float64 inputs, values and gradients,
over every option (relative tolerance 1e-10), with NumPy and torch inputs;
``ntxent_loss`` with optax's ``ntxent`` where optax is installed. The documented
deviations (the eps of ``cosine_similarity`` applies to zero vectors only; no
overflow in distances; 0 for NT-Xent without positive pairs) are tested as such.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from helpers import check_against_torch as check  # noqa: E402

import xploss  # noqa: E402

LIBS = ["numpy", "torch"]
REDUCTIONS = ["none", "mean", "sum"]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize(("shape1", "shape2", "axis"),
                         [((6, 4), (6, 4), 1), ((6, 4), (1, 4), 1), ((3, 5, 2), (3, 5, 2), 1),
                          ((4,), (4,), 0), ((5, 3), (5, 3), -1)])
def test_cosine_similarity_vs_torch(shape1, shape2, axis, lib):
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(0, 2, shape1), rng.normal(0, 2, shape2)
    check(lambda a, b: xploss.cosine_similarity(a, b, axis=axis),
          lambda a, b: F.cosine_similarity(a, b, dim=axis), (x1, x2), lib)


def test_cosine_similarity_zero_vector_matches_torch():
    # Value 0, and torch's derivative x2 / (eps·|x2|) for the zero vector.
    x1, x2 = np.zeros((1, 3)), np.array([[1.0, 2.0, 2.0]])
    check(lambda a, b: xploss.cosine_similarity(a, b, eps=1e-8),
          lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-8), (x1, x2), "torch")


def test_cosine_similarity_tiny_and_huge_vectors():
    # torch clamps each norm below eps and gives 2e-44 for [1e-30, 1e-30]; the
    # exact cosine of a vector with itself is 1 at every scale.
    x = np.array([[1e-30, 1e-30], [1e20, 1e20], [1e300, -1e300], [1e-300, 2e-300]])
    assert np.all(xploss.cosine_similarity(x, x) == 1.0)
    assert np.all(xploss.cosine_similarity(x, -x) == -1.0)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.5])
@pytest.mark.parametrize("batched", [True, False])
def test_cosine_embedding_loss_vs_torch(batched, margin, reduction, lib):
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(0, 2, (8, 5)), rng.normal(0, 2, (8, 5))
    y = rng.choice([1.0, -1.0], 8)
    if not batched:
        x1, x2, y = x1[0], x2[0], y[:1].reshape(())
    kw = {"margin": margin, "reduction": reduction}
    check(lambda a, b, c: xploss.cosine_embedding_loss(a, b, c, **kw),
          lambda a, b, c: F.cosine_embedding_loss(a, b, c, **kw), (x1, x2, y), lib)


def test_cosine_embedding_loss_nearly_parallel():
    # 1 - cos of [1, 1e-9] and [1, 0] is 5e-19 (mpmath: 5.0000000000000006e-19);
    # 1 - cos rounds it to 0.
    out = xploss.cosine_embedding_loss(np.array([[1.0, 1e-9]]), np.array([[1.0, 0.0]]),
                                       np.array([1.0]), reduction="none")
    assert out[0] == pytest.approx(5.0000000000000006e-19, rel=1e-15, abs=0)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5, 2.0])
def test_margin_ranking_loss_vs_torch(margin, reduction, lib):
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(0, 2, (4, 6)), rng.normal(0, 2, (4, 6))
    y = rng.choice([1.0, -1.0], (4, 6))
    kw = {"margin": margin, "reduction": reduction}
    check(lambda a, b, c: xploss.margin_ranking_loss(a, b, c, **kw),
          lambda a, b, c: F.margin_ranking_loss(a, b, c, **kw), (x1, x2, y), lib)


def test_margin_ranking_margin_brings_overflowing_difference_back():
    # -y(x1 - x2) = 2e308 is beyond float64's range; the margin -1.5e308 brings
    # the sum back to 5e307 (exact, as mpmath's sum of the three decimals shows:
    # mpf('1e308') + mpf('1e308') - mpf('1.5e308')). It was inf.
    out = xploss.margin_ranking_loss(np.array([1e308, 1e308]), np.array([-1e308, -1e308]),
                                     np.array([-1.0, 1.0]), margin=-1.5e308, reduction="none")
    assert out[0] == pytest.approx(5e307, rel=2**-52, abs=0)
    assert out[1] == 0  # -2e308 - 1.5e308: far below 0, and no overflow warning


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.25, 3.0])
@pytest.mark.parametrize("labels", [(1.0, -1.0), (1.0, -1.0, 0.0, 0.5)])
def test_hinge_embedding_loss_vs_torch(labels, margin, reduction, lib):
    rng = np.random.default_rng(3)
    x = np.abs(rng.normal(0, 2, (5, 4)))
    y = rng.choice(labels, (5, 4))
    kw = {"margin": margin, "reduction": reduction}
    check(lambda a, b: xploss.hinge_embedding_loss(a, b, **kw),
          lambda a, b: F.hinge_embedding_loss(a, b, **kw), (x, y), lib, grad_args=(0,))


@pytest.mark.parametrize("name", ["margin_ranking_loss", "cosine_embedding_loss"])
def test_shape_mismatch_is_an_error(name):
    with pytest.raises(ValueError, match=name):
        getattr(xploss, name)(np.zeros((4, 3)), np.zeros((4, 3)), np.zeros(5))


NORMS = [2.0, 1.0, 3.0, 0.5, 1.5, float("inf")]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("eps", [1e-6, 0.0, 0.1])
@pytest.mark.parametrize(("shape1", "shape2"), [((6, 4), (6, 4)), ((6, 4), (1, 4)), ((4,), (4,)),
                                                ((2, 3, 5), (2, 3, 5))])
def test_pairwise_distance_vs_torch(shape1, shape2, eps, p, lib):
    rng = np.random.default_rng(4)
    x1, x2 = rng.normal(0, 2, shape1), rng.normal(0, 2, shape2)
    check(lambda a, b: xploss.pairwise_distance(a, b, p=p, eps=eps),
          lambda a, b: F.pairwise_distance(a, b, p=p, eps=eps), (x1, x2), lib)


def test_pairwise_distance_keepdim_and_extremes():
    x = np.array([[1e200, 1e200], [3.0, 4.0], [0.0, 0.0]])
    d = xploss.pairwise_distance(x, -x, eps=0.0, keepdim=True)
    assert d.shape == (3, 1)
    # mpmath: 2·sqrt(2)·1e200 = 2.8284271247461901e200; torch's norm overflows to inf.
    assert d[0, 0] == pytest.approx(2.8284271247461901e200, rel=4e-16, abs=0)
    assert d[1, 0] == 10.0
    assert d[2, 0] == 0.0
    assert torch.isinf(F.pairwise_distance(torch.tensor(x), torch.tensor(-x), eps=0.0)[0])
    # An odd p is a norm of magnitudes: |(-1, -2)|_3 = 9^(1/3).
    assert xploss.pairwise_distance(np.array([-1.0, -2.0]), np.zeros(2), p=3.0, eps=0.0) \
        == pytest.approx(9.0 ** (1 / 3), rel=1e-15, abs=0)


def test_pairwise_distance_zero_difference_has_zero_gradient():
    x = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    for p in NORMS:
        x.grad = None
        xploss.pairwise_distance(x, x.detach(), p=p, eps=0.0).sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x)), p


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize(("p", "eps", "margin"), [(2.0, 1e-6, 1.0), (1.0, 0.0, 0.5),
                                                  (3.0, 1e-3, 2.0), (0.5, 1e-6, 1.0),
                                                  (float("inf"), 1e-6, 0.25)])
@pytest.mark.parametrize("batched", [True, False])
def test_triplet_margin_loss_vs_torch(batched, p, eps, margin, swap, reduction, lib):
    rng = np.random.default_rng(5)
    a, pos, neg = (rng.normal(0, 1, (7, 5)) for _ in range(3))
    if not batched:
        a, pos, neg = a[0], pos[0], neg[0]
    kw = {"margin": margin, "p": p, "eps": eps, "swap": swap, "reduction": reduction}
    check(lambda x, y, z: xploss.triplet_margin_loss(x, y, z, **kw),
          lambda x, y, z: F.triplet_margin_loss(x, y, z, **kw), (a, pos, neg), lib,
          grad_args=(0, 1, 2))


def _cosine_distance(lib):
    if lib == "torch":
        return lambda x, y: 1.0 - F.cosine_similarity(x, y, dim=-1)
    return lambda x, y: 1.0 - xploss.cosine_similarity(x, y)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("distance", ["default", "cosine", "l1"])
def test_triplet_margin_with_distance_loss_vs_torch(distance, swap, reduction, lib):
    rng = np.random.default_rng(6)
    a, pos, neg = (rng.normal(0, 1, (6, 4)) for _ in range(3))
    ours = {"default": None, "cosine": _cosine_distance(lib),
            "l1": lambda x, y: xploss.pairwise_distance(x, y, p=1.0)}[distance]
    theirs = {"default": None, "cosine": _cosine_distance("torch"),
              "l1": lambda x, y: F.pairwise_distance(x, y, p=1.0)}[distance]
    kw = {"margin": 0.75, "swap": swap, "reduction": reduction}
    check(lambda x, y, z: xploss.triplet_margin_with_distance_loss(
              x, y, z, distance_function=ours, **kw),
          lambda x, y, z: F.triplet_margin_with_distance_loss(
              x, y, z, distance_function=theirs, **kw), (a, pos, neg), lib,
          grad_args=(0, 1, 2))


def test_triplet_margin_loss_cancelling_margin_is_exact():
    # d(a, p) = 5 and d(a, n) = 6 exactly: margin 1 cancels to exactly 0.
    out = xploss.triplet_margin_loss(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]),
                                     np.array([[0.0, 6.0]]), eps=0.0, reduction="none")
    assert out[0] == 0.0


@pytest.mark.parametrize("name", ["triplet_margin_loss", "triplet_margin_with_distance_loss"])
def test_triplet_errors_name_function_and_argument(name):
    fn = getattr(xploss, name)
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=f"{name}: 'margin' must be > 0"):
        fn(x, x, x, margin=0.0)
    with pytest.raises(ValueError, match=f"{name}: 'anchor', 'positive' and 'negative' must"):
        fn(x, x[0], x)
    with pytest.raises(ValueError, match="'reduction'"):
        fn(x, x, x, reduction="avg")
    if name == "triplet_margin_loss":
        with pytest.raises(ValueError, match="'p' must be > 0"):
            fn(x, x, x, p=0.0)


def test_nan_propagates_through_the_triplet_margin():
    a = np.array([[np.nan, 0.0], [1.0, 0.0]])
    out = xploss.triplet_margin_loss(a, np.zeros((2, 2)), np.full((2, 2), 5.0), reduction="none")
    assert np.isnan(out[0])
    assert out[1] == 0.0


# ---------------------------------------------------------------- NT-Xent


def _ntxent_inputs(seed, n=12, d=6, groups=4):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, d)), rng.integers(0, groups, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0, 3.0])
def test_ntxent_loss_vs_optax(seed, temperature):
    optax = pytest.importorskip("optax")
    jnp = pytest.importorskip("jax").numpy
    e, labels = _ntxent_inputs(seed)
    expected = np.asarray(optax.losses.ntxent(jnp.asarray(e), jnp.asarray(labels),
                                              temperature=temperature))
    assert expected.dtype == np.float64
    out = xploss.ntxent_loss(e, labels, temperature=temperature)
    np.testing.assert_allclose(out, expected, rtol=1e-10)


def test_ntxent_loss_gradient_vs_optax():
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    e, labels = _ntxent_inputs(3)
    expected = jax.grad(lambda v: optax.losses.ntxent(v, jax.numpy.asarray(labels)))(
        jax.numpy.asarray(e))
    ours = jax.grad(lambda v: xploss.ntxent_loss(v, jax.numpy.asarray(labels)))(
        jax.numpy.asarray(e))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), rtol=1e-10, atol=1e-12)


def test_ntxent_loss_zero_embedding_and_edge_groups():
    e, labels = _ntxent_inputs(4, n=6, groups=2)
    e[1] = 0.0
    x = torch.tensor(e, requires_grad=True)
    loss = xploss.ntxent_loss(x, torch.tensor(labels))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.all(torch.isfinite(x.grad))
    # No positive pair: 0 (optax: 0/0 = NaN). One group: no negatives, every term 0.
    assert xploss.ntxent_loss(e, np.arange(6)) == 0.0
    assert xploss.ntxent_loss(e, np.zeros(6, dtype=np.int64)) == 0.0


def test_ntxent_loss_confident_pairs_keep_their_tiny_loss():
    # Two orthogonal pairs at temperature 0.05: s = 1/0.05 = 20 for the positive,
    # 0 for both negatives, so every term is log1p(2·e^(-20)) (mpmath:
    # 4.1223072363804072e-9).
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    out = xploss.ntxent_loss(e, np.array([0, 0, 1, 1]), temperature=0.05)
    assert out == pytest.approx(4.1223072363804072e-9, rel=1e-14, abs=0)


def test_ntxent_loss_errors():
    e = np.zeros((4, 3))
    with pytest.raises(ValueError, match="ntxent_loss: 'temperature' must be > 0"):
        xploss.ntxent_loss(e, np.zeros(4, dtype=np.int64), temperature=0.0)
    with pytest.raises(TypeError, match="ntxent_loss: 'labels' must have an integer dtype"):
        xploss.ntxent_loss(e, np.zeros(4))
    with pytest.raises(ValueError, match=r"ntxent_loss: expected 'embeddings' of shape \(N, D\)"):
        xploss.ntxent_loss(e, np.zeros(3, dtype=np.int64))
