"""Shared fixtures: the backends and devices, built from one list (xploss.backends)."""

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
