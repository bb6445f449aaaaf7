"""Shared fixtures: the backends and devices, built from one list (xploss.backends),
and the optional peer libraries used as test-only oracles."""

import os

# Keras reads its backend once, on first import: the peer-oracle tests use JAX.
os.environ.setdefault("KERAS_BACKEND", "jax")

import pytest
from xploss.conformance.suite import prepare

from xploss import backends

# JAX float64 needs x64 mode; the conformance runner sets it the same way.
SKIPPED = prepare()
TARGETS = backends.targets()


def target_id(t):
    return t.id


@pytest.fixture(params=TARGETS, ids=target_id)
def target(request):
    return request.param


@pytest.fixture(params=[t for t in TARGETS if t.backend.differentiable], ids=target_id)
def diff_target(request):
    return request.param


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on its JAX backend, or a skip where it is not installed."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"keras backend is {keras.backend.backend()!r}, not 'jax'")
    return keras
