"""Semantics of the embedding and ranking functions against torch.nn.functional.

``cosine_similarity``, ``cosine_embedding_loss``, ``margin_ranking_loss`` and
``hinge_embedding_loss`` are compared with their torch namesakes on ordinary
float64 inputs, values and gradients, over every option (relative tolerance
1e-10), with NumPy and torch inputs. The documented deviations (the eps of
``cosine_similarity`` applies to zero vectors only) are tested as such.
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
    assert out[0] == pytest.approx(5.0000000000000006e-19, rel=1e-15)


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
