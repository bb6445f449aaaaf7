"""Shared fixtures: the backends and devices, built from one list (xploss.backends),
and the optional peer libraries used as test-only oracles."""

import os

# Keras reads its backend once, on first import: the peer-oracle tests use JAX.
os.environ.setdefault("KERAS_BACKEND", "jax")

import pytest
from helpers import value_targets
from xploss.conformance.suite import prepare

from xploss import backends

# JAX float64 needs x64 mode; the conformance runner sets it the same way.
SKIPPED = prepare()
TARGETS = value_targets(backends.targets())


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


# ----------------------------------------------------------- fuzzing (test_fuzz.py)

from hypothesis import HealthCheck, Phase, settings  # noqa: E402

# Two profiles for tests/test_fuzz.py (no other test uses hypothesis):
# - xploss-ci, the default: deterministic (derandomize), no example database,
#   60 examples per function (every example on NumPy, array-api-strict and
#   torch; 3 on JAX, whose eager mode compiles every operation per shape), about
#   2.5 minutes for the whole file on 2 cores;
# - xploss-heavy: 300 fresh random examples per function (30 on JAX), about 20
#   minutes:  python -m pytest tests/test_fuzz.py --hypothesis-profile=xploss-heavy
# (hypothesis's --hypothesis-profile option overrides the default loaded here).
_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                HealthCheck.large_base_example]
settings.register_profile("xploss-ci", max_examples=60, derandomize=True, deadline=None,
                          database=None, print_blob=False, suppress_health_check=_FUZZ_HEALTH,
                          phases=[Phase.explicit, Phase.generate, Phase.shrink])
settings.register_profile("xploss-heavy", max_examples=300, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH)
settings.load_profile("xploss-ci")

FUZZ_TALLY: dict = {}  # (function, backend) -> [examples, failing examples]
FUZZ_FAILURES: dict = {}  # function -> distinct failure messages


@pytest.fixture(scope="session")
def fuzz_tally():
    return FUZZ_TALLY


@pytest.fixture(scope="session")
def fuzz_failures():
    return FUZZ_FAILURES


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Examples and failing examples per function × backend of the fuzz run
    (and, with XPLOSS_FUZZ_REPORT=path, the same as JSON)."""
    if not FUZZ_TALLY:
        return
    names = sorted({f for f, _ in FUZZ_TALLY})
    cols = [b for b in ("numpy", "array_api_strict", "torch", "jax")
            if any(k[1] == b for k in FUZZ_TALLY)]
    tr = terminalreporter
    tr.section("fuzz: examples / failing examples "
               f"(profile {settings.get_current_profile_name()})")
    width = max(len(n) for n in names)
    tr.write_line(f"{'function':<{width}}  " + "  ".join(f"{c:>16}" for c in cols))
    for n in names:
        cells = [FUZZ_TALLY.get((n, c)) for c in cols]
        tr.write_line(f"{n:<{width}}  " + "  ".join(
            f"{'-' if v is None else f'{v[0]} / {v[1]}':>16}" for v in cells))
    total = [sum(FUZZ_TALLY.get((n, c), [0, 0])[i] for n in names for c in cols) for i in (0, 1)]
    tr.write_line(f"{'total':<{width}}  {total[0]} examples, {total[1]} failing")
    path = os.environ.get("XPLOSS_FUZZ_REPORT")
    if path:
        import json

        rows = [{"function": n, "backend": c, "examples": v[0], "failures": v[1]}
                for (n, c), v in sorted(FUZZ_TALLY.items())]
        with open(path, "w") as fh:
            json.dump({"profile": settings.get_current_profile_name(), "cells": rows,
                       "failures": FUZZ_FAILURES}, fh, indent=1)
